// The block-locality index: which content blocks of model versions each server caches,
// so that "bytes of this version already on every server" is one cheap query.
//
// A model version is a list of blocks (content hashes with sizes in bytes). intern()
// maps each distinct hash to a dense block id. Every server has a block cache of a
// fixed number of bytes with least-recently-used eviction; fetch() is a cold start of
// a version on a server (it downloads what is missing and may evict other blocks).
//
// Layout: blocks with the same set of holding servers share one sorted server list
// (a "holder set", hash-consed: at most one list per distinct set). Versions are
// fetched as a whole, so a version's blocks fall into few holder sets, and a query
// costs O(n_servers + k + the summed length of the distinct holder sets of its
// blocks), at most O(n_servers + k + total holders). A mutation that adds or removes
// a server for blocks of a set builds (or finds) the neighbouring set once per call:
// O(set length) per distinct set touched, not per block. The price: when a version's
// blocks each have a different, long holder set (no shared history), a fetch costs
// the summed length of those sets, where per-block holder lists would cost O(k).
// Memory: one server list per distinct holder set, never more than per-block lists.
// Each server's cache is its own LRU list and block table (BlockLru, 28-44 bytes per
// cached block), so a fetch touches only that server's cache memory.
//
// Threading contract: every public member function takes an internal mutex, so any
// number of threads may call any operation concurrently; each operation is atomic.
//
// Errors: invalid arguments throw InvalidArgument, bad snapshots throw CorruptSnapshot
// (the exception classes shared with ClusterState). A throwing operation leaves the
// index exactly as it was (same snapshot bytes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "fastplace/block_lru.hpp"
#include "fastplace/cluster_state.hpp"  // InvalidArgument, CorruptSnapshot, ServerId

namespace fastplace {

using BlockId = std::int32_t;      // dense id from intern(), 0 .. n_blocks - 1
using BlockHash = std::uint64_t;   // content hash of a block (any 64-bit value)
using Bytes = std::int64_t;        // a size or sum of sizes in bytes

constexpr std::uint32_t kBlockSnapshotVersion = 1;
// Server ids are int32 in holder sets; the constructor and add_servers refuse more.
constexpr std::size_t kBlockIndexMaxServers = 2147483647;

class BlockIndex {
public:
    // n_servers servers with empty caches; cache_bytes[s] >= 0 is server s's cache size.
    BlockIndex(const Bytes* cache_bytes, std::size_t n_servers);
    // Rebuilds an index from snapshot() bytes; throws CorruptSnapshot on any defect.
    BlockIndex(const std::uint8_t* data, std::size_t size);

    BlockIndex(const BlockIndex&) = delete;
    BlockIndex& operator=(const BlockIndex&) = delete;

    std::size_t n_servers() const;
    // Distinct hashes interned so far.
    std::size_t n_blocks() const;
    // Appends n servers with empty caches of cache_bytes[i] bytes; returns the first new id.
    ServerId add_servers(const Bytes* cache_bytes, std::size_t n);

    // Writes the block id of each of n (hash, size) pairs to ids_out, interning unseen
    // hashes in order; throws InvalidArgument (nothing interned) when a size is <= 0, a
    // hash comes with a size other than the one it was first interned with, or the sizes
    // of all distinct blocks would sum to more than 2^63 - 1 bytes.
    void intern(const BlockHash* hashes, const Bytes* sizes, std::size_t n, BlockId* ids_out);
    // Size in bytes and hash of every block, indexed by block id.
    std::vector<Bytes> block_sizes() const;
    std::vector<BlockHash> block_hashes() const;

    // Writes to out[0 .. n_servers) the bytes of the k blocks that each server caches (a
    // block listed twice counts once) and returns n_servers; when out_size differs from
    // n_servers (servers were added meanwhile) it writes nothing and returns n_servers.
    // Throws InvalidArgument on an unknown block id.
    std::size_t cached_bytes(const BlockId* blocks, std::size_t k, Bytes* out, std::size_t out_size) const;
    // The same for the m listed servers only (out[i] belongs to servers[i]), without a
    // pass over all servers; throws InvalidArgument on a server out of range.
    void cached_bytes_on(const ServerId* servers, std::size_t m, const BlockId* blocks, std::size_t k,
                         Bytes* out) const;
    // Bytes of the k blocks (each counted once) that server does not cache; throws
    // InvalidArgument on a server out of range or an unknown block id.
    Bytes missing_bytes(ServerId server, const BlockId* blocks, std::size_t k) const;

    // Cold start of the k blocks on server; returns the bytes downloaded (the missing
    // blocks, each counted once). Cached blocks of the call are refreshed; missing ones
    // are kept, in call order, while they fit beside the call's cached blocks (a block
    // that does not fit is downloaded but not kept, later smaller ones may still be);
    // least-recently-used blocks not in the call are evicted only as far as needed to
    // make room. Afterwards the call's blocks are the most recently used, in call order.
    // Throws InvalidArgument on a server out of range or an unknown block id.
    Bytes fetch(ServerId server, const BlockId* blocks, std::size_t k);
    // Drops server's whole cache (e.g. the server left); returns the bytes it held.
    // Like every per-server call, throws InvalidArgument on a server out of range.
    Bytes evict_server(ServerId server);

    // The servers caching any of the k blocks, in increasing order, and the bytes of
    // those blocks each caches (a block listed twice counts once): written to
    // servers_out and bytes_out (both cleared first; every byte count is > 0). Returns
    // the summed size of the distinct blocks (the whole version). Reads only the holder
    // sets of the blocks, never every server: O(k log k + h log s) for h holders in s
    // distinct holder sets. Throws InvalidArgument on an unknown block id.
    // (Defined in block_index_holders.cpp.)
    Bytes holder_bytes(const BlockId* blocks, std::size_t k, std::vector<ServerId>& servers_out,
                       std::vector<Bytes>& bytes_out) const;
    // holder_bytes, each block's size multiplied by how many servers cache it: for every
    // server caching some of the k blocks, the sum over those blocks of size * holders
    // (kube-scheduler's ImageLocality spread, with blocks as images). Same order, cost
    // and errors as holder_bytes; returns the summed size of the distinct blocks.
    // (Defined in block_index_holders.cpp.)
    Bytes holder_spread_bytes(const BlockId* blocks, std::size_t k, std::vector<ServerId>& servers_out,
                              std::vector<Bytes>& bytes_out) const;
    // Servers caching block, in increasing order; InvalidArgument on an unknown block.
    std::vector<ServerId> holders(BlockId block) const;
    // Blocks cached on server from least to most recently used.
    std::vector<BlockId> server_blocks(ServerId server) const;
    // Bytes cached and cache size, per server.
    std::vector<Bytes> used_bytes() const;
    std::vector<Bytes> cache_bytes() const;
    // Distinct holder sets currently stored (a measure of how well blocks share them).
    std::size_t n_holder_sets() const;

    // Versioned, checksummed byte image of the whole index.
    std::vector<std::uint8_t> snapshot() const;
    // Recomputes every invariant from scratch; returns "" or a description of the first
    // broken one.
    std::string validate() const;

private:
    struct ServerCache {
        Bytes capacity = 0;
        Bytes used = 0;
        BlockLru lru;  // the cached blocks, least recently used first
    };
    static constexpr std::uint32_t kNoSet = ~std::uint32_t{0};  // no holder set id

    struct HolderSet {
        std::vector<std::int32_t> servers;  // strictly increasing
        std::uint64_t hash = 0;             // sum of server_key() over servers
        std::size_t n_blocks = 0;           // blocks whose holders are this set; 0 = free
    };

    static std::uint64_t server_key(std::int32_t server);

    void check_cache_bytes(const Bytes* cache_bytes, std::size_t n) const;
    std::size_t check_server(ServerId server, const char* what) const;
    // what names the argument in messages ("block_ids" -> "block_ids[i]").
    void check_blocks(const BlockId* blocks, std::size_t k, const char* what = "block_ids") const;
    void next_epoch() const;
    void size_scratch() const;
    // The distinct blocks of a query grouped by holder set: set_bytes_[set] = bytes of
    // the query's blocks held by exactly the servers of set, for every non-empty set in
    // touched_sets_ (first-seen order). Returns the bytes of all the distinct blocks.
    // Blocks must be checked; needs the lock.
    Bytes group_by_holder_set(const BlockId* blocks, std::size_t k) const;
    // holder_bytes and holder_spread_bytes: each set's bytes times its size when spread.
    Bytes merged_holder_bytes(const BlockId* blocks, std::size_t k, bool spread, std::vector<ServerId>& servers_out,
                              std::vector<Bytes>& bytes_out) const;

    // The holder set that differs from old by server (memoised per call through the
    // epoch stamps).
    std::uint32_t toggled_set(std::uint32_t old, std::int32_t server);
    // Moves each of the n blocks into the holder set that differs from its current one
    // by server: a block entering or leaving server's cache.
    void toggle_holders(const BlockId* blocks, std::size_t n, std::int32_t server);
    // Stores the servers of set old with server inserted at, or removed from, position
    // pos as a new holder set of the given hash; returns its id.
    std::uint32_t add_toggled_set(std::uint32_t old, std::size_t pos, std::int32_t server, std::uint64_t hash);
    void release_empty_sets();
    Bytes evict_server_unlocked(std::size_t server);
    // Caches and holder sets from the blocks and the per-server LRU lists.
    void rebuild(const std::vector<std::vector<BlockId>>& lru_lists);
    std::string validate_unlocked() const;

    mutable std::mutex mutex_;
    std::vector<BlockHash> hash_;  // per block
    std::vector<Bytes> size_;      // per block, > 0
    Bytes total_bytes_ = 0;        // sum of size_, kept <= INT64_MAX so no byte sum overflows
    std::unordered_map<BlockHash, BlockId> id_of_;
    std::vector<ServerCache> servers_;
    std::vector<HolderSet> sets_;  // sets_[0] is the empty set, never released
    std::vector<std::uint32_t> free_sets_;
    std::unordered_multimap<std::uint64_t, std::uint32_t> set_by_hash_;
    std::vector<std::uint32_t> set_of_;  // per block
    std::vector<std::uint32_t> pending_release_;  // sets that dropped to 0 blocks this call

    // Per-call scratch, guarded by mutex_ like the rest: a stamp equal to epoch_ marks a
    // block or set as seen in the current call.
    mutable std::uint32_t epoch_ = 0;
    mutable std::vector<std::uint32_t> block_stamp_;
    mutable std::vector<std::uint32_t> set_stamp_;
    mutable std::vector<std::uint32_t> set_next_;  // toggle target of a stamped set (fetch)
    mutable std::vector<Bytes> set_bytes_;         // query bytes of a stamped set (queries)
    mutable std::vector<std::uint32_t> touched_sets_;
    mutable std::vector<Bytes> server_scratch_;  // all zero between calls
    std::vector<BlockId> call_blocks_;         // distinct blocks of the current fetch
    std::vector<BlockLru::Node> call_nodes_;  // their cache nodes, kNone while missing
    std::vector<BlockId> call_kept_;          // the missing blocks kept, in call order
    std::vector<BlockId> call_evicted_;       // blocks the current call evicts, LRU first
};

}  // namespace fastplace
