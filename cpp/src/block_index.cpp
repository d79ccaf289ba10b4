#include "fastplace/block_index.hpp"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <utility>

namespace fastplace {

namespace {

using Lock = std::lock_guard<std::mutex>;

constexpr std::size_t kMaxServers = kBlockIndexMaxServers;
constexpr std::size_t kMaxBlocks = static_cast<std::size_t>(std::numeric_limits<BlockId>::max());

std::string hex(BlockHash hash) {
    char text[19];
    std::snprintf(text, sizeof(text), "0x%016llx", static_cast<unsigned long long>(hash));
    return text;
}

}  // namespace

// A random-looking 64-bit key per server (splitmix64), so that a holder set's hash can
// be kept as the sum of its members' keys and updated in O(1) when one server changes.
std::uint64_t BlockIndex::server_key(std::int32_t server) {
    std::uint64_t z = static_cast<std::uint64_t>(server) + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

BlockIndex::BlockIndex(const Bytes* cache_bytes, std::size_t n_servers) {
    if (n_servers > kMaxServers) {
        throw InvalidArgument("n_servers = " + std::to_string(n_servers) + " exceeds " + std::to_string(kMaxServers));
    }
    check_cache_bytes(cache_bytes, n_servers);
    sets_.emplace_back();
    set_by_hash_.emplace(0, 0);
    servers_.resize(n_servers);
    for (std::size_t s = 0; s < n_servers; ++s) servers_[s].capacity = cache_bytes[s];
}

// ---- argument checks (all run before any mutation) ---------------------------------

void BlockIndex::check_cache_bytes(const Bytes* cache_bytes, std::size_t n) const {
    for (std::size_t i = 0; i < n; ++i) {
        if (cache_bytes[i] < 0) {
            throw InvalidArgument("cache_bytes[" + std::to_string(i) + "] = " + std::to_string(cache_bytes[i]) +
                                  " must be >= 0");
        }
    }
}

std::size_t BlockIndex::check_server(ServerId server, const char* what) const {
    if (server < 0 || static_cast<std::size_t>(server) >= servers_.size()) {
        throw InvalidArgument(std::string(what) + " = " + std::to_string(server) + " is out of range [0, " +
                              std::to_string(servers_.size()) + ")");
    }
    return static_cast<std::size_t>(server);
}

void BlockIndex::check_blocks(const BlockId* blocks, std::size_t k, const char* what) const {
    const auto n = static_cast<BlockId>(size_.size());
    for (std::size_t i = 0; i < k; ++i) {
        if (blocks[i] < 0 || blocks[i] >= n) {
            throw InvalidArgument(std::string(what) + "[" + std::to_string(i) + "] = " + std::to_string(blocks[i]) +
                                  " is not a block id: must be in [0, " + std::to_string(n) + ")");
        }
    }
}

// ---- per-call scratch ----------------------------------------------------------------

void BlockIndex::size_scratch() const {
    block_stamp_.resize(size_.size(), 0);
    set_stamp_.resize(sets_.size(), 0);
    set_next_.resize(sets_.size(), 0);
    set_bytes_.resize(sets_.size(), 0);
    server_scratch_.resize(servers_.size(), 0);
}

void BlockIndex::next_epoch() const {
    if (++epoch_ == 0) {  // wrapped: old stamps could now look current
        std::fill(block_stamp_.begin(), block_stamp_.end(), 0);
        std::fill(set_stamp_.begin(), set_stamp_.end(), 0);
        epoch_ = 1;
    }
}

// ---- servers and blocks ----------------------------------------------------------------

std::size_t BlockIndex::n_servers() const {
    Lock lock(mutex_);
    return servers_.size();
}

std::size_t BlockIndex::n_blocks() const {
    Lock lock(mutex_);
    return size_.size();
}

std::size_t BlockIndex::n_holder_sets() const {
    Lock lock(mutex_);
    return sets_.size() - free_sets_.size();
}

ServerId BlockIndex::add_servers(const Bytes* cache_bytes, std::size_t n) {
    Lock lock(mutex_);
    if (n > kMaxServers - servers_.size()) {
        throw InvalidArgument("add_servers: " + std::to_string(servers_.size()) + " + " + std::to_string(n) +
                              " servers exceed " + std::to_string(kMaxServers));
    }
    check_cache_bytes(cache_bytes, n);
    const auto first = static_cast<ServerId>(servers_.size());
    servers_.resize(servers_.size() + n);
    for (std::size_t i = 0; i < n; ++i) servers_[static_cast<std::size_t>(first) + i].capacity = cache_bytes[i];
    return first;
}

void BlockIndex::intern(const BlockHash* hashes, const Bytes* sizes, std::size_t n, BlockId* ids_out) {
    Lock lock(mutex_);
    // Sizes of hashes first seen in this call, and the index that introduced them.
    std::unordered_map<BlockHash, std::pair<Bytes, std::size_t>> fresh;
    Bytes total = total_bytes_;
    for (std::size_t i = 0; i < n; ++i) {
        // Named only when a block is refused: building the name for every block was most
        // of an intern call's time (~1-2 us per block, the simulator interns thousands).
        const auto at = [&] { return "sizes[" + std::to_string(i) + "] = " + std::to_string(sizes[i]); };
        if (sizes[i] <= 0) throw InvalidArgument(at() + " must be > 0 (hash " + hex(hashes[i]) + ")");
        const auto known = id_of_.find(hashes[i]);
        if (known != id_of_.end()) {
            const Bytes interned = size_[static_cast<std::size_t>(known->second)];
            if (interned != sizes[i]) {
                throw InvalidArgument(at() + " for hash " + hex(hashes[i]) + " differs from its interned size " +
                                      std::to_string(interned) + " (block " + std::to_string(known->second) + ")");
            }
            continue;
        }
        const auto [it, inserted] = fresh.emplace(hashes[i], std::make_pair(sizes[i], i));
        if (!inserted) {
            if (it->second.first != sizes[i]) {
                throw InvalidArgument(at() + " for hash " + hex(hashes[i]) + " differs from sizes[" +
                                      std::to_string(it->second.second) + "] = " + std::to_string(it->second.first) +
                                      " given for the same hash");
            }
            continue;
        }
        if (sizes[i] > std::numeric_limits<Bytes>::max() - total) {
            throw InvalidArgument(at() + ": the sizes of all interned blocks would exceed 2^63 - 1 bytes");
        }
        total += sizes[i];
    }
    if (fresh.size() > kMaxBlocks - size_.size()) {
        throw InvalidArgument("intern: " + std::to_string(size_.size()) + " + " + std::to_string(fresh.size()) +
                              " blocks exceed " + std::to_string(kMaxBlocks));
    }
    for (std::size_t i = 0; i < n; ++i) {
        const auto [it, inserted] = id_of_.emplace(hashes[i], static_cast<BlockId>(size_.size()));
        if (inserted) {
            hash_.push_back(hashes[i]);
            size_.push_back(sizes[i]);
            total_bytes_ += sizes[i];
            set_of_.push_back(0);
            ++sets_[0].n_blocks;
        }
        ids_out[i] = it->second;
    }
}

std::vector<Bytes> BlockIndex::block_sizes() const {
    Lock lock(mutex_);
    return size_;
}

std::vector<BlockHash> BlockIndex::block_hashes() const {
    Lock lock(mutex_);
    return hash_;
}

// ---- queries ------------------------------------------------------------------------

Bytes BlockIndex::group_by_holder_set(const BlockId* blocks, std::size_t k) const {
    size_scratch();
    next_epoch();
    Bytes total = 0;
    touched_sets_.clear();
    for (std::size_t i = 0; i < k; ++i) {
        const auto b = static_cast<std::size_t>(blocks[i]);
        if (block_stamp_[b] == epoch_) continue;
        block_stamp_[b] = epoch_;
        total += size_[b];
        const std::uint32_t set = set_of_[b];
        if (set == 0) continue;
        if (set_stamp_[set] != epoch_) {
            set_stamp_[set] = epoch_;
            set_bytes_[set] = 0;
            touched_sets_.push_back(set);
        }
        set_bytes_[set] += size_[b];
    }
    return total;
}

std::size_t BlockIndex::cached_bytes(const BlockId* blocks, std::size_t k, Bytes* out,
                                     std::size_t out_size) const {
    Lock lock(mutex_);
    check_blocks(blocks, k);
    if (out_size != servers_.size()) return servers_.size();
    // Each distinct set's bytes go to its servers once: the per-server work is one pass
    // over each distinct set, not one per block.
    group_by_holder_set(blocks, k);
    std::fill(out, out + servers_.size(), Bytes{0});
    for (const std::uint32_t set : touched_sets_) {
        const Bytes bytes = set_bytes_[set];
        for (const std::int32_t s : sets_[set].servers) out[s] += bytes;
    }
    return servers_.size();
}

void BlockIndex::cached_bytes_on(const ServerId* servers, std::size_t m, const BlockId* blocks, std::size_t k,
                                 Bytes* out) const {
    Lock lock(mutex_);
    for (std::size_t i = 0; i < m; ++i) {
        if (servers[i] < 0 || static_cast<std::size_t>(servers[i]) >= servers_.size()) {
            check_server(servers[i], ("servers[" + std::to_string(i) + "]").c_str());
        }
    }
    check_blocks(blocks, k);
    group_by_holder_set(blocks, k);
    // Either probe each listed server in each set (binary search), or scatter the sets
    // into the all-zero scratch row, gather, and zero exactly what the scatter touched;
    // whichever reads fewer entries. Neither makes a pass over all servers.
    std::size_t members = 0;
    std::size_t longest = 1;
    for (const std::uint32_t set : touched_sets_) {
        members += sets_[set].servers.size();
        longest = std::max(longest, sets_[set].servers.size());
    }
    const auto log_longest = static_cast<std::size_t>(64 - __builtin_clzll(longest));
    if (m * touched_sets_.size() * log_longest < 2 * members) {
        for (std::size_t i = 0; i < m; ++i) {
            Bytes bytes = 0;
            for (const std::uint32_t set : touched_sets_) {
                const std::vector<std::int32_t>& servers_of = sets_[set].servers;
                if (std::binary_search(servers_of.begin(), servers_of.end(), static_cast<std::int32_t>(servers[i]))) {
                    bytes += set_bytes_[set];
                }
            }
            out[i] = bytes;
        }
        return;
    }
    for (const std::uint32_t set : touched_sets_) {
        for (const std::int32_t s : sets_[set].servers) server_scratch_[static_cast<std::size_t>(s)] += set_bytes_[set];
    }
    for (std::size_t i = 0; i < m; ++i) out[i] = server_scratch_[static_cast<std::size_t>(servers[i])];
    for (const std::uint32_t set : touched_sets_) {
        for (const std::int32_t s : sets_[set].servers) server_scratch_[static_cast<std::size_t>(s)] = 0;
    }
}

Bytes BlockIndex::missing_bytes(ServerId server, const BlockId* blocks, std::size_t k) const {
    Lock lock(mutex_);
    const std::size_t s = check_server(server, "server");
    check_blocks(blocks, k);
    size_scratch();
    next_epoch();
    const BlockLru& lru = servers_[s].lru;
    Bytes missing = 0;
    for (std::size_t i = 0; i < k; ++i) {
        const auto b = static_cast<std::size_t>(blocks[i]);
        if (block_stamp_[b] == epoch_) continue;
        block_stamp_[b] = epoch_;
        if (lru.find(blocks[i]) == BlockLru::kNone) missing += size_[b];
    }
    return missing;
}

std::vector<ServerId> BlockIndex::holders(BlockId block) const {
    Lock lock(mutex_);
    if (block < 0 || static_cast<std::size_t>(block) >= size_.size()) {
        throw InvalidArgument("block = " + std::to_string(block) + " is not a block id: must be in [0, " +
                              std::to_string(size_.size()) + ")");
    }
    const std::vector<std::int32_t>& servers = sets_[set_of_[static_cast<std::size_t>(block)]].servers;
    return std::vector<ServerId>(servers.begin(), servers.end());
}

std::vector<BlockId> BlockIndex::server_blocks(ServerId server) const {
    Lock lock(mutex_);
    const BlockLru& lru = servers_[check_server(server, "server")].lru;
    std::vector<BlockId> blocks;
    blocks.reserve(lru.size());
    for (BlockLru::Node node = lru.head(); node != BlockLru::kNone; node = lru.next(node)) {
        blocks.push_back(lru.block(node));
    }
    return blocks;
}

std::vector<Bytes> BlockIndex::used_bytes() const {
    Lock lock(mutex_);
    std::vector<Bytes> used(servers_.size());
    for (std::size_t s = 0; s < servers_.size(); ++s) used[s] = servers_[s].used;
    return used;
}

std::vector<Bytes> BlockIndex::cache_bytes() const {
    Lock lock(mutex_);
    std::vector<Bytes> capacity(servers_.size());
    for (std::size_t s = 0; s < servers_.size(); ++s) capacity[s] = servers_[s].capacity;
    return capacity;
}

// ---- LRU lists and holder sets --------------------------------------------------------

// Every mutating call toggles one server only (fetch, evict_server, one server of a
// rebuild per epoch), so within an epoch a set's neighbour is a function of the set
// alone and the first block of a set pays for finding it; the others reuse it. An
// existing neighbour is found by its hash and compared in place; only a new one is
// built (a copy of the set's servers, with server added or removed).
std::uint32_t BlockIndex::toggled_set(std::uint32_t old, std::int32_t server) {
    if (set_stamp_[old] == epoch_) return set_next_[old];
    const std::vector<std::int32_t>& members = sets_[old].servers;
    const auto at = std::lower_bound(members.begin(), members.end(), server);
    const bool removes = at != members.end() && *at == server;
    const std::uint64_t hash = removes ? sets_[old].hash - server_key(server) : sets_[old].hash + server_key(server);
    const std::size_t size = removes ? members.size() - 1 : members.size() + 1;
    const auto [first, last] = set_by_hash_.equal_range(hash);
    std::uint32_t target = kNoSet;
    for (auto it = first; it != last && target == kNoSet; ++it) {
        const std::vector<std::int32_t>& other = sets_[it->second].servers;
        if (other.size() != size || !std::equal(members.begin(), at, other.begin())) continue;
        const auto mid = other.begin() + (at - members.begin());  // at most other.end()
        const bool same = removes ? std::equal(at + 1, members.end(), mid)
                                  : *mid == server && std::equal(at, members.end(), mid + 1);
        if (same) target = it->second;
    }
    if (target == kNoSet) {
        // May move sets_: members and at are stale afterwards.
        target = add_toggled_set(old, static_cast<std::size_t>(at - members.begin()), server, hash);
    }
    set_stamp_[old] = epoch_;
    set_next_[old] = target;
    return target;
}

// A version's blocks mostly share one holder set and are added or evicted together, so
// the counts of the two sets change once per run of blocks leaving the same set, not
// once per block (two fewer scattered writes per block).
void BlockIndex::toggle_holders(const BlockId* blocks, std::size_t n, std::int32_t server) {
    for (std::size_t i = 0; i < n;) {
        const std::uint32_t old = set_of_[static_cast<std::size_t>(blocks[i])];
        const std::uint32_t target = toggled_set(old, server);
        std::size_t run = 0;
        for (; i < n && set_of_[static_cast<std::size_t>(blocks[i])] == old; ++i, ++run) {
            set_of_[static_cast<std::size_t>(blocks[i])] = target;
        }
        sets_[target].n_blocks += run;
        sets_[old].n_blocks -= run;
        if (sets_[old].n_blocks == 0 && old != 0) pending_release_.push_back(old);
    }
}

// A released set keeps its list's memory and is reused first, so that the steady churn
// of holder sets (a fetch creates a few, evictions release a few) does not allocate.
std::uint32_t BlockIndex::add_toggled_set(std::uint32_t old, std::size_t pos, std::int32_t server,
                                          std::uint64_t hash) {
    std::uint32_t id;
    if (!free_sets_.empty()) {
        id = free_sets_.back();
        free_sets_.pop_back();
    } else {
        id = static_cast<std::uint32_t>(sets_.size());
        sets_.emplace_back();
        size_scratch();
    }
    const std::vector<std::int32_t>& from = sets_[old].servers;  // old is live, so id != old
    std::vector<std::int32_t>& to = sets_[id].servers;           // empty
    const bool removes = pos < from.size() && from[pos] == server;
    to.reserve(removes ? from.size() - 1 : from.size() + 1);
    to.insert(to.end(), from.begin(), from.begin() + static_cast<std::ptrdiff_t>(pos));
    if (!removes) to.push_back(server);
    to.insert(to.end(), from.begin() + static_cast<std::ptrdiff_t>(removes ? pos + 1 : pos), from.end());
    sets_[id].hash = hash;
    sets_[id].n_blocks = 0;
    set_by_hash_.emplace(hash, id);
    return id;
}

// Sets are released at the end of a call, not when they empty, so that a set id stays
// unique within the call's toggle memo (a set may also be refilled before the end).
void BlockIndex::release_empty_sets() {
    std::sort(pending_release_.begin(), pending_release_.end());
    pending_release_.erase(std::unique(pending_release_.begin(), pending_release_.end()), pending_release_.end());
    for (const std::uint32_t id : pending_release_) {
        HolderSet& set = sets_[id];
        if (set.n_blocks != 0) continue;
        const auto [first, last] = set_by_hash_.equal_range(set.hash);
        for (auto it = first; it != last; ++it) {
            if (it->second == id) {
                set_by_hash_.erase(it);
                break;
            }
        }
        set.servers.clear();  // keeps its memory for add_toggled_set
        set.hash = 0;
        free_sets_.push_back(id);
    }
    pending_release_.clear();
}

// ---- mutation -------------------------------------------------------------------------

// All of a fetch's cache accesses stay in the server's own BlockLru (see block_lru.hpp).
// Nothing changes until every allocation the cache needs is made, and each block is
// looked up once: its node is remembered for the final "call order" pass.
Bytes BlockIndex::fetch(ServerId server, const BlockId* blocks, std::size_t k) {
    Lock lock(mutex_);
    const std::size_t s = check_server(server, "server");
    check_blocks(blocks, k);
    size_scratch();
    next_epoch();
    ServerCache& cache = servers_[s];
    BlockLru& lru = cache.lru;

    // Distinct blocks in call order and their nodes. Each lookup is a likely cache
    // miss, so the home slot of the block kAhead places on is requested early (16 was
    // ~5% faster than 8 and no worse than 32 or 64 on replayed simulator fetches).
    constexpr std::size_t kAhead = 16;
    call_blocks_.clear();
    call_nodes_.clear();
    call_kept_.clear();
    call_evicted_.clear();
    for (std::size_t i = 0; i < std::min(k, kAhead); ++i) lru.prefetch_slot(blocks[i]);
    Bytes present = 0;
    Bytes downloaded = 0;
    for (std::size_t i = 0; i < k; ++i) {
        if (i + kAhead < k) lru.prefetch_slot(blocks[i + kAhead]);
        const BlockId block = blocks[i];
        const auto b = static_cast<std::size_t>(block);
        if (block_stamp_[b] == epoch_) continue;
        block_stamp_[b] = epoch_;
        const BlockLru::Node node = lru.find(block);
        call_blocks_.push_back(block);
        call_nodes_.push_back(node);
        if (node != BlockLru::kNone) {
            present += size_[b];
            lru.prefetch_node(node);
        } else {
            downloaded += size_[b];
        }
    }

    // Missing blocks that fit beside the call's cached ones, first come first kept;
    // their nodes are marked kKeep until they are inserted.
    constexpr BlockLru::Node kKeep = BlockLru::kNone - 1;  // node ids stay below 2^31
    Bytes budget = cache.capacity - present;
    Bytes kept_bytes = 0;
    for (std::size_t i = 0; i < call_blocks_.size(); ++i) {
        if (call_nodes_[i] != BlockLru::kNone) continue;
        const Bytes size = size_[static_cast<std::size_t>(call_blocks_[i])];
        if (size <= budget) {
            budget -= size;
            kept_bytes += size;
            call_nodes_[i] = kKeep;
            call_kept_.push_back(call_blocks_[i]);
        }
    }

    // The blocks to evict: least recently used first, skipping the call's own (stamped)
    // blocks. Evicting every block outside the call would leave present + kept_bytes <=
    // capacity, so the walk stops before it runs off the list.
    Bytes excess = cache.used + kept_bytes - cache.capacity;  // no overflow: <= total_bytes_
    Bytes evicted_bytes = 0;
    for (BlockLru::Node node = lru.head(); excess > evicted_bytes; node = lru.next(node)) {
        const BlockId block = lru.block(node);
        if (block_stamp_[static_cast<std::size_t>(block)] == epoch_) continue;
        evicted_bytes += size_[static_cast<std::size_t>(block)];
        call_evicted_.push_back(block);
    }
    lru.reserve(lru.size() - call_evicted_.size() + call_kept_.size());

    // Mutation. The call's cached blocks leave the list first, so that the head is
    // always the next block to evict, and all the call's blocks are appended at the end.
    for (const BlockLru::Node node : call_nodes_) {
        if (node != BlockLru::kNone && node != kKeep) lru.detach(node);
    }
    for (std::size_t i = 0; i < call_evicted_.size(); ++i) {
        if (i + kAhead < call_evicted_.size()) lru.prefetch_slot(call_evicted_[i + kAhead]);
        lru.pop_head();
    }
    for (std::size_t i = 0; i < call_blocks_.size(); ++i) {
        if (call_nodes_[i] == kKeep) call_nodes_[i] = lru.insert_detached(call_blocks_[i]);
    }
    for (const BlockLru::Node node : call_nodes_) {
        if (node != BlockLru::kNone) lru.append(node);
    }
    cache.used += kept_bytes - evicted_bytes;
    toggle_holders(call_evicted_.data(), call_evicted_.size(), static_cast<std::int32_t>(s));
    toggle_holders(call_kept_.data(), call_kept_.size(), static_cast<std::int32_t>(s));
    release_empty_sets();
    return downloaded;
}

Bytes BlockIndex::evict_server_unlocked(std::size_t server) {
    const Bytes freed = servers_[server].used;
    BlockLru& lru = servers_[server].lru;
    call_evicted_.clear();
    call_evicted_.reserve(lru.size());  // allocate before the cache changes
    while (lru.size() != 0) call_evicted_.push_back(lru.pop_head());
    servers_[server].used = 0;
    toggle_holders(call_evicted_.data(), call_evicted_.size(), static_cast<std::int32_t>(server));
    return freed;
}

Bytes BlockIndex::evict_server(ServerId server) {
    Lock lock(mutex_);
    const std::size_t s = check_server(server, "server");
    size_scratch();
    next_epoch();
    const Bytes freed = evict_server_unlocked(s);
    release_empty_sets();
    return freed;
}

void BlockIndex::rebuild(const std::vector<std::vector<BlockId>>& lru_lists) {
    size_scratch();
    for (std::size_t s = 0; s < lru_lists.size(); ++s) {
        next_epoch();  // one toggled server per epoch (see toggled_set)
        BlockLru& lru = servers_[s].lru;
        lru.reserve(lru_lists[s].size());
        for (const BlockId block : lru_lists[s]) {
            lru.append(lru.insert_detached(block));
            servers_[s].used += size_[static_cast<std::size_t>(block)];
        }
        toggle_holders(lru_lists[s].data(), lru_lists[s].size(), static_cast<std::int32_t>(s));
        release_empty_sets();
    }
}

}  // namespace fastplace
