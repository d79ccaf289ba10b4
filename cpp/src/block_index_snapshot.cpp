// Snapshot layout (little-endian), version 1:
//   "FPBI" | u32 version | u64 n_servers | u64 n_blocks
//   per block: u64 hash, i64 size
//   per server: i64 cache bytes, u64 n cached, n i32 block ids (least recently used first)
//   u64 FNV-1a checksum of every byte before it
// The per-server cache tables and the holder sets are derived, so they are
// rebuilt rather than stored.
#include <limits>
#include <string>
#include <vector>

#include "fastplace/block_index.hpp"
#include "fastplace/snapshot_io.hpp"

namespace fastplace {

namespace {

constexpr char kMagic[4] = {'F', 'P', 'B', 'I'};
using Lock = std::lock_guard<std::mutex>;
using snapshot_io::Reader;
using snapshot_io::Writer;

}  // namespace

std::vector<std::uint8_t> BlockIndex::snapshot() const {
    Lock lock(mutex_);
    Writer w;
    w.put_bytes(kMagic, sizeof(kMagic));
    w.put<std::uint32_t>(kBlockSnapshotVersion);
    w.put<std::uint64_t>(servers_.size());
    w.put<std::uint64_t>(size_.size());
    for (std::size_t b = 0; b < size_.size(); ++b) {
        w.put<std::uint64_t>(hash_[b]);
        w.put<std::int64_t>(size_[b]);
    }
    for (const ServerCache& cache : servers_) {
        w.put<std::int64_t>(cache.capacity);
        w.put<std::uint64_t>(cache.lru.size());
        for (BlockLru::Node node = cache.lru.head(); node != BlockLru::kNone; node = cache.lru.next(node)) {
            w.put<std::int32_t>(cache.lru.block(node));
        }
    }
    w.put_checksum();
    return std::move(w.bytes());
}

BlockIndex::BlockIndex(const std::uint8_t* data, std::size_t size) {
    const std::size_t body = snapshot_io::check_envelope(data, size, kMagic, kBlockSnapshotVersion, kBlockSnapshotVersion);
    Reader r(data, body);
    r.get<std::uint32_t>("magic");
    r.get<std::uint32_t>("version");
    const auto n_servers = r.get<std::uint64_t>("n_servers");
    const auto n_blocks = r.get<std::uint64_t>("n_blocks");
    if (n_blocks > static_cast<std::uint64_t>(std::numeric_limits<BlockId>::max())) {
        throw CorruptSnapshot("snapshot n_blocks = " + std::to_string(n_blocks) + " exceeds the block id range");
    }
    if (n_servers > static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max())) {
        throw CorruptSnapshot("snapshot n_servers = " + std::to_string(n_servers) + " exceeds the server id range");
    }
    r.need_items(n_blocks, sizeof(std::uint64_t) + sizeof(std::int64_t), "n_blocks");
    hash_.resize(static_cast<std::size_t>(n_blocks));
    size_.resize(static_cast<std::size_t>(n_blocks));
    id_of_.reserve(static_cast<std::size_t>(n_blocks));
    for (std::size_t b = 0; b < hash_.size(); ++b) {
        hash_[b] = r.get<std::uint64_t>("block hash");
        size_[b] = r.get<std::int64_t>("block size");
        if (size_[b] <= 0) throw CorruptSnapshot("snapshot block " + std::to_string(b) + " has size <= 0");
        if (size_[b] > std::numeric_limits<Bytes>::max() - total_bytes_) {
            throw CorruptSnapshot("snapshot block sizes sum to more than 2^63 - 1 bytes");
        }
        total_bytes_ += size_[b];
        if (!id_of_.emplace(hash_[b], static_cast<BlockId>(b)).second) {
            throw CorruptSnapshot("snapshot block " + std::to_string(b) + " repeats the hash of block " +
                                  std::to_string(id_of_[hash_[b]]));
        }
    }
    r.need_items(n_servers, sizeof(std::int64_t) + sizeof(std::uint64_t), "n_servers");
    servers_.resize(static_cast<std::size_t>(n_servers));
    std::vector<std::vector<BlockId>> lru_lists(servers_.size());
    std::vector<std::uint64_t> seen_on(size_.size(), 0);  // server + 1 that last listed the block
    for (std::size_t s = 0; s < servers_.size(); ++s) {
        const auto capacity = r.get<std::int64_t>("cache bytes");
        if (capacity < 0) throw CorruptSnapshot("snapshot server " + std::to_string(s) + " has a negative cache");
        servers_[s].capacity = capacity;
        const auto count = r.get<std::uint64_t>("cached block count");
        r.need_items(count, sizeof(std::int32_t), "cached block count");
        Bytes used = 0;
        lru_lists[s].resize(static_cast<std::size_t>(count));
        for (BlockId& block : lru_lists[s]) {
            block = r.get<std::int32_t>("cached block id");
            if (block < 0 || static_cast<std::size_t>(block) >= size_.size()) {
                throw CorruptSnapshot("snapshot server " + std::to_string(s) + " caches unknown block " +
                                      std::to_string(block));
            }
            const auto b = static_cast<std::size_t>(block);
            if (seen_on[b] == s + 1) {
                throw CorruptSnapshot("snapshot server " + std::to_string(s) + " lists block " +
                                      std::to_string(block) + " twice");
            }
            seen_on[b] = s + 1;
            if (size_[b] > capacity - used) {
                throw CorruptSnapshot("snapshot server " + std::to_string(s) + " caches more than its " +
                                      std::to_string(capacity) + " bytes");
            }
            used += size_[b];
        }
    }
    if (r.remaining() != 0) {
        throw CorruptSnapshot("snapshot has " + std::to_string(r.remaining()) + " unexpected trailing bytes");
    }
    sets_.emplace_back();
    set_by_hash_.emplace(0, 0);
    set_of_.assign(size_.size(), 0);
    sets_[0].n_blocks = size_.size();
    rebuild(lru_lists);
    const std::string broken = validate_unlocked();
    if (!broken.empty()) throw CorruptSnapshot("snapshot is inconsistent: " + broken);
}

}  // namespace fastplace
