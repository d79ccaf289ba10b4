// Fuzz target: bytes -> BlockIndex restore (layout in cpp/src/block_index_snapshot.cpp).
//
// As for the cluster: a wrong checksum must be refused, then the input is resealed and
// restored again; whatever the core accepts must parse with the plain parser below and
// keep every content invariant; every read must match the parsed content (holders and
// cached bytes by brute force); then fetches, an eviction and a snapshot round trip
// must keep validate() clean.
#include <algorithm>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "fastplace/block_index.hpp"
#include "fuzz_common.hpp"

using namespace fastplace;
using namespace fastplace::fuzz;

namespace {

struct PlainServer {
    Bytes capacity = 0;
    std::vector<BlockId> lru;  // least recently used first
};

struct PlainIndex {
    std::vector<BlockHash> hashes;
    std::vector<Bytes> sizes;
    std::vector<PlainServer> servers;
};

std::optional<PlainIndex> parse(const std::vector<std::uint8_t>& bytes) {
    if (!checksum_matches(bytes)) return std::nullopt;
    Layout in(bytes.data(), bytes.size() - kChecksumBytes);
    char magic[4];
    std::uint32_t version = 0;
    std::uint64_t n_servers = 0;
    std::uint64_t n_blocks = 0;
    if (!in.get(magic) || std::memcmp(magic, "FPBI", 4) != 0) return std::nullopt;
    if (!in.get(version) || version != kBlockSnapshotVersion) return std::nullopt;
    if (!in.get(n_servers) || !in.get(n_blocks) || !in.room_for(n_blocks, 16)) return std::nullopt;
    PlainIndex p;
    p.hashes.resize(static_cast<std::size_t>(n_blocks));
    p.sizes.resize(static_cast<std::size_t>(n_blocks));
    for (std::size_t b = 0; b < p.hashes.size(); ++b) {
        in.get(p.hashes[b]);
        in.get(p.sizes[b]);
    }
    if (!in.room_for(n_servers, 16)) return std::nullopt;
    p.servers.resize(static_cast<std::size_t>(n_servers));
    for (PlainServer& s : p.servers) {
        std::uint64_t count = 0;
        if (!in.get(s.capacity) || !in.get(count) || !in.room_for(count, 4)) return std::nullopt;
        s.lru.resize(static_cast<std::size_t>(count));
        for (BlockId& b : s.lru) in.get(b);
    }
    if (in.remaining() != 0) return std::nullopt;
    return p;
}

// Bytes of the distinct listed blocks that server caches, the slow obvious way.
Bytes plain_cached(const PlainIndex& p, std::size_t server, const std::vector<BlockId>& blocks) {
    std::unordered_set<BlockId> seen;
    Bytes total = 0;
    for (const BlockId b : blocks) {
        if (!seen.insert(b).second) continue;
        const auto& lru = p.servers[server].lru;
        if (std::find(lru.begin(), lru.end(), b) != lru.end()) total += p.sizes[static_cast<std::size_t>(b)];
    }
    return total;
}

std::string defect(const PlainIndex& p) {
    const std::size_t n_blocks = p.sizes.size();
    if (n_blocks > static_cast<std::size_t>(std::numeric_limits<BlockId>::max())) return "too many blocks";
    if (p.servers.size() > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
        return "too many servers";
    }
    __int128 total = 0;
    std::unordered_set<BlockHash> hashes;
    for (std::size_t b = 0; b < n_blocks; ++b) {
        if (p.sizes[b] <= 0) return "block size <= 0";
        total += p.sizes[b];
        if (!hashes.insert(p.hashes[b]).second) return "repeated hash";
    }
    if (total > std::numeric_limits<Bytes>::max()) return "block sizes sum past int64";
    for (const PlainServer& s : p.servers) {
        if (s.capacity < 0) return "negative cache";
        std::unordered_set<BlockId> listed;
        __int128 used = 0;
        for (const BlockId b : s.lru) {
            if (b < 0 || static_cast<std::size_t>(b) >= n_blocks) return "unknown block";
            if (!listed.insert(b).second) return "block listed twice on one server";
            used += p.sizes[static_cast<std::size_t>(b)];
        }
        if (used > s.capacity) return "cache over capacity";
    }
    return {};
}

void check_reads(const BlockIndex& index, const PlainIndex& p) {
    const std::size_t n = p.servers.size();
    FUZZ_CHECK(index.n_servers() == n && index.n_blocks() == p.sizes.size(), "shape");
    FUZZ_CHECK(index.block_sizes() == p.sizes && index.block_hashes() == p.hashes, "blocks");
    std::vector<Bytes> cache(n);
    std::vector<Bytes> used(n);
    std::vector<std::vector<ServerId>> holders(p.sizes.size());
    for (std::size_t s = 0; s < n; ++s) {
        cache[s] = p.servers[s].capacity;
        for (const BlockId b : p.servers[s].lru) {
            used[s] += p.sizes[static_cast<std::size_t>(b)];
            holders[static_cast<std::size_t>(b)].push_back(static_cast<ServerId>(s));
        }
        FUZZ_CHECK(index.server_blocks(static_cast<ServerId>(s)) == p.servers[s].lru, "server blocks in LRU order");
    }
    FUZZ_CHECK(index.cache_bytes() == cache && index.used_bytes() == used, "cache and used bytes");
    for (std::size_t b = 0; b < p.sizes.size() && b < 64; ++b) {
        FUZZ_CHECK(index.holders(static_cast<BlockId>(b)) == holders[b], "holders of a block");
    }
    // The query of a "version": the blocks listed on the last server plus block 0, twice.
    std::vector<BlockId> query;
    if (!p.sizes.empty()) query.push_back(0);
    if (n > 0) query.insert(query.end(), p.servers[n - 1].lru.begin(), p.servers[n - 1].lru.end());
    if (!p.sizes.empty()) query.push_back(0);
    std::vector<Bytes> out(n);
    FUZZ_CHECK(index.cached_bytes(query.data(), query.size(), out.data(), n) == n, "cached_bytes size");
    std::vector<ServerId> expected_holders;
    std::vector<Bytes> expected_bytes;
    for (std::size_t s = 0; s < n; ++s) {
        const Bytes want = plain_cached(p, s, query);
        FUZZ_CHECK(out[s] == want, "cached_bytes");
        if (want > 0) {
            expected_holders.push_back(static_cast<ServerId>(s));
            expected_bytes.push_back(want);
        }
    }
    std::vector<ServerId> got_holders;
    std::vector<Bytes> got_bytes;
    index.holder_bytes(query.data(), query.size(), got_holders, got_bytes);
    FUZZ_CHECK(got_holders == expected_holders && got_bytes == expected_bytes, "holder_bytes");
}

// Fetches the query on the first few servers, evicts one, interns a new block: the
// downloads must be the missing bytes, and validate() must stay clean.
void check_operations(BlockIndex& index, const PlainIndex& p) {
    const std::size_t n = p.servers.size();
    std::vector<BlockId> query;
    for (std::size_t b = 0; b < p.sizes.size() && b < 16; ++b) query.push_back(static_cast<BlockId>(b));
    for (std::size_t s = 0; s < std::min<std::size_t>(n, 3); ++s) {
        const auto server = static_cast<ServerId>(s);
        const Bytes missing = index.missing_bytes(server, query.data(), query.size());
        FUZZ_CHECK(index.fetch(server, query.data(), query.size()) == missing, "fetch downloads the missing bytes");
        const std::string broken = index.validate();
        FUZZ_CHECK(broken.empty(), "validate after fetch: " + broken);
        const std::vector<Bytes> used = index.used_bytes();
        FUZZ_CHECK(used[s] <= p.servers[s].capacity, "a fetch keeps the cache within its size");
    }
    if (n > 0) {
        const Bytes held = index.used_bytes()[n - 1];
        FUZZ_CHECK(index.evict_server(static_cast<ServerId>(n - 1)) == held, "evict_server returns the bytes held");
        FUZZ_CHECK(index.server_blocks(static_cast<ServerId>(n - 1)).empty(), "evicted server caches nothing");
    }
    // A hash not in the index: interning it must give the next id (sizes permitting).
    BlockHash fresh = 0;
    const std::unordered_set<BlockHash> known(p.hashes.begin(), p.hashes.end());
    while (known.count(fresh)) ++fresh;
    const Bytes one = 1;
    BlockId id = -1;
    const std::vector<std::uint8_t> before = index.snapshot();
    try {
        index.intern(&fresh, &one, 1, &id);
        FUZZ_CHECK(id == static_cast<BlockId>(p.sizes.size()), "a new hash gets the next id");
    } catch (const InvalidArgument&) {
        FUZZ_CHECK(index.snapshot() == before, "a refused intern leaves the index as it was");
    }
    const std::string broken = index.validate();
    FUZZ_CHECK(broken.empty(), "validate after the operations: " + broken);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::vector<std::uint8_t> bytes(data, data + size);
    if (!checksum_matches(bytes)) {
        FUZZ_CHECK(throws<CorruptSnapshot>([&] { BlockIndex(bytes.data(), bytes.size()); }),
                   "a snapshot with a wrong checksum restores");
        reseal(bytes);
    }
    const std::optional<PlainIndex> plain = parse(bytes);
    std::unique_ptr<BlockIndex> index;
    try {
        index = std::make_unique<BlockIndex>(bytes.data(), bytes.size());
    } catch (const CorruptSnapshot&) {
        return 0;
    }
    FUZZ_CHECK(plain.has_value(), "the core restored bytes that do not have the snapshot layout");
    const std::string why = defect(*plain);
    FUZZ_CHECK(why.empty(), "the core restored a snapshot that breaks an invariant: " + why);
    const std::string broken = index->validate();
    FUZZ_CHECK(broken.empty(), "validate after restore: " + broken);
    FUZZ_CHECK(index->snapshot() == bytes, "snapshot of a restored index differs from its bytes");
    check_reads(*index, *plain);
    check_operations(*index, *plain);
    const std::vector<std::uint8_t> again = index->snapshot();
    BlockIndex restored(again.data(), again.size());
    FUZZ_CHECK(restored.snapshot() == again, "restore of a fresh snapshot differs");
    return 0;
}
