#include "fastplace/block_lru.hpp"

#include <string>
#include <vector>

namespace fastplace {

void BlockLru::erase_slot(std::uint32_t key) {
    std::size_t i = home(key);
    while (slots_[i].block != key) i = (i + 1) & mask_;
    // Backward shift: pull later members of the probe run into the hole, so that every
    // key stays reachable from its home slot without tombstones.
    for (std::size_t j = (i + 1) & mask_; slots_[j].block != kEmpty; j = (j + 1) & mask_) {
        const std::size_t h = home(slots_[j].block);
        const bool movable = i <= j ? (h <= i || h > j) : (h <= i && h > j);
        if (movable) {
            slots_[i] = slots_[j];
            i = j;
        }
    }
    slots_[i] = Slot{};
}

void BlockLru::grow_table(std::size_t n) {
    std::size_t n_slots = 16;
    unsigned shift = 60;
    while (n_slots < 2 * n) {
        n_slots *= 2;
        --shift;
    }
    std::vector<Slot> old(n_slots);
    old.swap(slots_);
    mask_ = n_slots - 1;
    shift_ = shift;
    for (const Slot& slot : old) {
        if (slot.block == kEmpty) continue;
        std::size_t i = home(slot.block);
        while (slots_[i].block != kEmpty) i = (i + 1) & mask_;
        slots_[i] = slot;
    }
}

std::string BlockLru::check() const {
    std::vector<std::uint8_t> seen(nodes_.size(), 0);
    std::size_t linked = 0;
    Node prev = kNone;
    for (Node node = head_; node != kNone; prev = node, node = nodes_[node].next) {
        if (node >= nodes_.size()) return "list links to node " + std::to_string(node) + " beyond the arena";
        if (seen[node]++) return "list reaches node " + std::to_string(node) + " twice (a cycle or a shared node)";
        if (nodes_[node].prev != prev) return "node " + std::to_string(node) + " has a wrong prev link";
        if (nodes_[node].block < 0) return "list holds node " + std::to_string(node) + " of no block";
        if (find(nodes_[node].block) != node) {
            return "block " + std::to_string(nodes_[node].block) + " is not found under its node in the table";
        }
        ++linked;
    }
    if (tail_ != prev) return "tail is not the last node of the list";
    if (linked != size_) {
        return "table counts " + std::to_string(size_) + " blocks but the list holds " + std::to_string(linked);
    }
    std::size_t occupied = 0;
    for (const Slot& slot : slots_) occupied += slot.block != kEmpty;
    if (occupied != size_) {
        return "table has " + std::to_string(occupied) + " occupied slots for " + std::to_string(size_) + " blocks";
    }
    if (!slots_.empty() && ((slots_.size() & mask_) != 0 || mask_ + 1 != slots_.size() ||
                            (std::size_t{1} << (64 - shift_)) != slots_.size())) {
        return "table size, mask and shift disagree";
    }
    if (2 * size_ > slots_.size()) return "table is more than half full";
    std::size_t n_free = 0;
    for (Node node = free_; node != kNone; node = nodes_[node].next) {
        if (node >= nodes_.size() || seen[node]++ || nodes_[node].block != -1) {
            return "free node " + std::to_string(node) + " is out of range, reached twice or in use";
        }
        ++n_free;
    }
    if (linked + n_free != nodes_.size()) {
        return "node arena leaks " + std::to_string(nodes_.size() - linked - n_free) + " nodes";
    }
    return {};
}

}  // namespace fastplace
