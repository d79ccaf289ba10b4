// One server's block cache as an LRU-ordered set of block ids: a doubly linked list
// of nodes in a server-local arena, plus a server-local open-addressing table from
// block id to node. The byte accounting stays with the caller (BlockIndex).
//
// Why per server: a cold start touches hundreds of blocks of one server. With one
// global (server, block) table and one global node pool, every lookup, unlink and
// erase was a cache and TLB miss somewhere in hundreds of megabytes; here all of a
// fetch's accesses stay inside one server's table and arena (~200 KiB for 8k blocks).
//
// Table: 8-byte slots (block, node), linear probing, backward-shift deletion (no
// tombstones), a power-of-two size with load at most 1/2. Node ids are local to the
// server; a server caches at most one node per distinct block, so node ids stay below
// 2^31 (the block id range) and never reach kNone.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace fastplace {

class BlockLru {
public:
    using Block = std::int32_t;  // a BlockId: >= 0
    using Node = std::uint32_t;
    static constexpr Node kNone = ~Node{0};

    // Blocks in the table (linked or detached).
    std::size_t size() const { return size_; }
    Node head() const { return head_; }  // least recently used, kNone when empty
    Node next(Node node) const { return nodes_[node].next; }  // towards most recently used
    Block block(Node node) const { return nodes_[node].block; }

    // The node of block, or kNone when it is not in the set.
    Node find(Block block) const {
        if (size_ == 0) return kNone;
        const auto key = static_cast<std::uint32_t>(block);
        for (std::size_t i = home(key);; i = (i + 1) & mask_) {
            if (slots_[i].block == key) return slots_[i].node;
            if (slots_[i].block == kEmpty) return kNone;
        }
    }
    // Hints the CPU to load block's home slot: a lookup of it is coming soon.
    void prefetch_slot(Block block) const {
        if (!slots_.empty()) __builtin_prefetch(&slots_[home(static_cast<std::uint32_t>(block))]);
    }
    void prefetch_node(Node node) const { __builtin_prefetch(&nodes_[node]); }

    // Room for n blocks in total without allocating in insert_detached, so that the
    // allocations of a mutation can all happen before it changes anything.
    void reserve(std::size_t n) {
        if (2 * n > slots_.size()) grow_table(n);
        if (n > nodes_.capacity()) nodes_.reserve(std::max(n, 2 * nodes_.capacity()));
    }

    // Adds block (not in the set) to the table with a node that is not on the list yet;
    // returns the node. Call reserve(size() + 1) or more first.
    Node insert_detached(Block block) {
        Node node;
        if (free_ != kNone) {
            node = free_;
            free_ = nodes_[node].next;
        } else {
            node = static_cast<Node>(nodes_.size());
            nodes_.push_back(NodeData{});
        }
        nodes_[node].block = block;
        const auto key = static_cast<std::uint32_t>(block);
        std::size_t i = home(key);
        while (slots_[i].block != kEmpty) i = (i + 1) & mask_;
        slots_[i] = Slot{key, node};
        ++size_;
        return node;
    }

    // Links a detached node at the most recently used end.
    void append(Node node) {
        nodes_[node].prev = tail_;
        nodes_[node].next = kNone;
        if (tail_ != kNone) {
            nodes_[tail_].next = node;
        } else {
            head_ = node;
        }
        tail_ = node;
    }

    // Takes a linked node off the list; it stays in the table (append it again later).
    void detach(Node node) {
        const NodeData& n = nodes_[node];
        if (n.prev != kNone) {
            nodes_[n.prev].next = n.next;
        } else {
            head_ = n.next;
        }
        if (n.next != kNone) {
            nodes_[n.next].prev = n.prev;
        } else {
            tail_ = n.prev;
        }
    }

    // Removes the least recently used block (the set must not be empty); returns it.
    Block pop_head() {
        const Node node = head_;
        const Block block = nodes_[node].block;
        detach(node);
        erase_slot(static_cast<std::uint32_t>(block));
        nodes_[node].block = -1;
        nodes_[node].next = free_;
        free_ = node;
        --size_;
        return block;
    }

    // Recomputes the invariants (list, table, free list) from scratch; returns "" or a
    // description of the first broken one. Every node must be linked (between calls).
    std::string check() const;

private:
    static constexpr std::uint32_t kEmpty = ~std::uint32_t{0};  // no block id has it

    struct Slot {
        std::uint32_t block = kEmpty;
        Node node = kNone;
    };
    struct NodeData {
        Block block = -1;  // -1 on the free list
        Node prev = kNone;
        Node next = kNone;  // the next free node while on the free list
    };

    // Fibonacci hashing: the top bits of block * 2^64/phi; block ids of one model
    // version are consecutive, and this spreads runs evenly over the table.
    std::size_t home(std::uint32_t key) const {
        return static_cast<std::size_t>((key * 0x9e3779b97f4a7c15ULL) >> shift_);
    }
    void erase_slot(std::uint32_t key);
    void grow_table(std::size_t n);

    std::vector<Slot> slots_;
    std::size_t mask_ = 0;
    unsigned shift_ = 64;
    std::size_t size_ = 0;
    std::vector<NodeData> nodes_;
    Node head_ = kNone;
    Node tail_ = kNone;
    Node free_ = kNone;  // free nodes, chained through next
};

}  // namespace fastplace
