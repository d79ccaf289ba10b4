// BlockIndex::validate: recomputes every invariant from the blocks and the LRU lists.
#include <limits>
#include <string>
#include <vector>

#include "fastplace/block_index.hpp"

namespace fastplace {

std::string BlockIndex::validate() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return validate_unlocked();
}

std::string BlockIndex::validate_unlocked() const {
    const std::size_t n_blocks = size_.size();
    if (hash_.size() != n_blocks || set_of_.size() != n_blocks || id_of_.size() != n_blocks) {
        return "per-block arrays do not have n_blocks entries";
    }
    Bytes total = 0;
    for (std::size_t b = 0; b < n_blocks; ++b) {
        if (size_[b] <= 0) return "block " + std::to_string(b) + " has size " + std::to_string(size_[b]);
        if (size_[b] > std::numeric_limits<Bytes>::max() - total) return "block sizes overflow int64";
        total += size_[b];
        const auto it = id_of_.find(hash_[b]);
        if (it == id_of_.end() || it->second != static_cast<BlockId>(b)) {
            return "hash of block " + std::to_string(b) + " does not map back to it";
        }
    }
    if (total != total_bytes_) {
        return "total block bytes is " + std::to_string(total_bytes_) + ", expected " + std::to_string(total);
    }

    // Check every server's cache structure, then walk its LRU list; collect each
    // block's holders in increasing server order.
    std::vector<std::vector<std::int32_t>> expected(n_blocks);
    for (std::size_t s = 0; s < servers_.size(); ++s) {
        const ServerCache& cache = servers_[s];
        const std::string at = "server " + std::to_string(s);
        const std::string broken = cache.lru.check();
        if (!broken.empty()) return at + " cache: " + broken;
        Bytes used = 0;
        for (BlockLru::Node node = cache.lru.head(); node != BlockLru::kNone; node = cache.lru.next(node)) {
            const BlockId block = cache.lru.block(node);
            if (static_cast<std::size_t>(block) >= n_blocks) {
                return at + " caches unknown block " + std::to_string(block);
            }
            const auto b = static_cast<std::size_t>(block);
            expected[b].push_back(static_cast<std::int32_t>(s));  // check() rules out repeats
            used += size_[b];
        }
        if (used != cache.used) {
            return at + " used bytes is " + std::to_string(cache.used) + " but its blocks hold " + std::to_string(used);
        }
        if (cache.capacity < 0) return at + " has a negative cache size";
        if (used > cache.capacity) {
            return at + " caches " + std::to_string(used) + " bytes, more than its " + std::to_string(cache.capacity);
        }
    }

    // Holder sets: each block's set lists exactly its holders; counts, hashes, the hash
    // index and the free list agree; no two live sets are equal.
    if (sets_.empty() || !sets_[0].servers.empty() || sets_[0].hash != 0) return "set 0 is not the empty set";
    std::vector<std::size_t> blocks_in(sets_.size(), 0);
    for (std::size_t b = 0; b < n_blocks; ++b) {
        const std::uint32_t set = set_of_[b];
        if (set >= sets_.size()) return "block " + std::to_string(b) + " names holder set " + std::to_string(set);
        if (sets_[set].servers != expected[b]) {
            return "holder set of block " + std::to_string(b) + " differs from the servers caching it";
        }
        ++blocks_in[set];
    }
    std::vector<std::uint8_t> is_free(sets_.size(), 0);
    for (const std::uint32_t id : free_sets_) {
        if (id == 0 || id >= sets_.size() || is_free[id]++) {
            return "free holder set " + std::to_string(id) + " is set 0, out of range or listed twice";
        }
    }
    std::size_t n_live_sets = 0;
    for (std::size_t id = 0; id < sets_.size(); ++id) {
        const HolderSet& set = sets_[id];
        const std::string at = "holder set " + std::to_string(id);
        if (set.n_blocks != blocks_in[id]) {
            return at + " counts " + std::to_string(set.n_blocks) + " blocks, " + std::to_string(blocks_in[id]) +
                   " point to it";
        }
        if (is_free[id]) {
            if (set.n_blocks != 0 || !set.servers.empty()) return at + " is on the free list but in use";
            continue;
        }
        if (id != 0 && set.n_blocks == 0) return at + " holds no blocks but was not released";
        ++n_live_sets;
        std::uint64_t hash = 0;
        for (std::size_t i = 0; i < set.servers.size(); ++i) {
            const std::int32_t s = set.servers[i];
            if (s < 0 || static_cast<std::size_t>(s) >= servers_.size() || (i && set.servers[i - 1] >= s)) {
                return at + " is not a strictly increasing list of servers";
            }
            hash += server_key(s);
        }
        if (hash != set.hash) return at + " has a stale hash";
        std::size_t indexed = 0;
        const auto [first, last] = set_by_hash_.equal_range(set.hash);
        for (auto it = first; it != last; ++it) {
            if (it->second == id) {
                ++indexed;
            } else if (sets_[it->second].servers == set.servers) {
                return at + " and holder set " + std::to_string(it->second) + " hold the same servers";
            }
        }
        if (indexed != 1) return at + " appears " + std::to_string(indexed) + " times in the hash index";
    }
    if (set_by_hash_.size() != n_live_sets) return "the holder-set hash index lists released sets";
    if (!pending_release_.empty()) return "holder sets are pending release between calls";
    for (const Bytes value : server_scratch_) {
        if (value != 0) return "the per-server scratch row is not all zero";
    }
    return {};
}

}  // namespace fastplace
