// Writes the seed corpus of the fuzz targets: make_corpus DIR writes
// DIR/fuzz_cluster_snapshot/*, DIR/fuzz_block_index_snapshot/* (valid snapshots of a
// few shapes, made through the public API) and DIR/fuzz_cluster_ops/* (op sequences in
// fuzz_cluster_ops.cpp's input format). Deterministic: the same bytes on every run, so
// the committed corpus (cpp/fuzz/corpus) can be regenerated and compared (a cluster's
// id key is random, so every cluster snapshot gets a fixed one written in).
// Cluster snapshots are version 3, plus two in version 2 (which the core still
// restores); some sit at the limits: capacities summing to exactly 2^63 - 1.
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "fastplace/block_index.hpp"
#include "fastplace/cluster_state.hpp"
#include "fastplace/snapshot_io.hpp"

using namespace fastplace;

namespace {

std::string root;

void write(const std::string& target, const std::string& name, const std::vector<std::uint8_t>& bytes) {
    const std::string path = root + "/" + target + "/" + name;
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() || std::fclose(f) != 0) {
        std::fprintf(stderr, "make_corpus: cannot write %s\n", path.c_str());
        std::exit(1);
    }
}

// Bytes before the id key in a version 3 cluster snapshot (magic, version, n_dims,
// n_servers).
constexpr std::size_t kKeyOffset = 4 + 4 + 4 + 8;

void reseal(std::vector<std::uint8_t>& bytes) {
    const std::size_t body = bytes.size() - sizeof(std::uint64_t);
    const std::uint64_t sum = snapshot_io::fnv1a(bytes.data(), body);
    std::memcpy(bytes.data() + body, &sum, sizeof(sum));
}

// A version 3 snapshot with its random id key replaced by key (and checked to restore).
std::vector<std::uint8_t> keyed(std::vector<std::uint8_t> bytes, std::uint64_t key) {
    std::memcpy(&bytes[kKeyOffset], &key, sizeof(key));
    reseal(bytes);
    ClusterState check(bytes.data(), bytes.size());  // throws if the patch went wrong
    return bytes;
}

// The same content in version 2: no key (its ids are unkeyed).
std::vector<std::uint8_t> version_2(std::vector<std::uint8_t> bytes) {
    const std::uint32_t two = 2;
    std::memcpy(&bytes[4], &two, sizeof(two));
    bytes.erase(bytes.begin() + kKeyOffset, bytes.begin() + kKeyOffset + 8);
    reseal(bytes);
    ClusterState check(bytes.data(), bytes.size());
    return bytes;
}

constexpr Amount kMaxAmount = std::numeric_limits<Amount>::max();

void cluster_snapshots() {
    const std::string target = "fuzz_cluster_snapshot";
    std::uint64_t key = 0x0123456789abcdefULL;  // each snapshot's fixed key (< 2^63): the next one
    const auto next_key = [&] { return key += 0x0101010101010101ULL; };
    {  // one dimension, one server, nothing placed
        const Amount capacity[1] = {1024};
        const std::vector<std::uint8_t> bytes = keyed(ClusterState({"mem"}, capacity, 1).snapshot(), next_key());
        write(target, "one_server", bytes);
        write(target, "one_server_v2", version_2(bytes));
    }
    {  // no servers at all
        write(target, "no_servers",
              keyed(ClusterState({"mem", "cpu"}, static_cast<const Amount*>(nullptr), 0).snapshot(), next_key()));
    }
    {  // two dimensions: a live container, a released slot (on the free list), a cordon
        const Amount capacity[6] = {4096, 2000, 8192, 4000, 1024, 500};
        ClusterState state({"memory_mb", "cpu_millis"}, capacity, 3);
        const Amount request[2] = {1000, 300};
        state.place(1, request);
        state.release(state.place(0, request));
        const Amount small[2] = {300, 0};
        state.place(2, small);
        state.cordon(2);
        const std::vector<std::uint8_t> bytes = keyed(state.snapshot(), next_key());
        write(target, "two_dims_mixed", bytes);
        write(target, "two_dims_mixed_v2", version_2(bytes));
    }
    {  // 70 servers of three dimensions, churned: several words of level bits
        std::mt19937_64 rng(70);
        std::vector<Amount> capacity(70 * 3);
        for (auto& c : capacity) c = static_cast<Amount>(rng() % 100000);
        ClusterState state({"a", "b", "c"}, capacity.data(), 70);
        std::vector<ContainerId> live;
        for (int i = 0; i < 200; ++i) {
            const Amount request[3] = {static_cast<Amount>(rng() % 9000), static_cast<Amount>(rng() % 9000),
                                       static_cast<Amount>(rng() % 9000)};
            const Placement p = state.place_with(i % 2 ? PlacePolicy::best_fit : PlacePolicy::first_fit, request);
            if (p.server >= 0) live.push_back(p.container);
            if (i % 3 == 0 && !live.empty()) {
                const std::size_t k = rng() % live.size();
                state.release(live[k]);
                live[k] = live.back();
                live.pop_back();
            }
        }
        state.cordon(5);
        write(target, "seventy_servers", keyed(state.snapshot(), next_key()));
    }
    {  // a retired slot (released at its last generation): free, and off the free list.
        // The API needs 2^31 releases to get there, so the bytes are patched: slot 0's
        // generation, then the free list (its one entry dropped), then the checksum.
        const Amount capacity[1] = {10};
        ClusterState state({"mem"}, capacity, 1);
        const Amount request[1] = {1};
        state.release(state.place(0, request));
        std::vector<std::uint8_t> bytes = keyed(state.snapshot(), next_key());
        const std::size_t slots = kKeyOffset + 8 + (4 + 3 + kLevels * 8) + 8 + 1;  // n_slots field
        const std::uint32_t last = kGenerationMask;
        std::memcpy(&bytes[slots + 8], &last, sizeof(last));
        bytes.resize(bytes.size() - 8 - 4 - 8);  // checksum, the free entry, n_free_slots
        bytes.insert(bytes.end(), 8, 0);  // n_free_slots = 0
        const std::uint64_t sum = snapshot_io::fnv1a(bytes.data(), bytes.size());
        const auto* sum_bytes = reinterpret_cast<const std::uint8_t*>(&sum);
        bytes.insert(bytes.end(), sum_bytes, sum_bytes + sizeof(sum));
        ClusterState check(bytes.data(), bytes.size());  // throws if the patch went wrong
        write(target, "retired_slot", bytes);
    }
    {  // all eight dimensions, amounts near 2^40, a gang
        std::vector<Amount> capacity(5 * 8, Amount{1} << 40);
        ClusterState state({"d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7"}, capacity.data(), 5);
        std::vector<Amount> gang(3 * 8, Amount{1} << 39);
        state.place_gang(gang.data(), 3, PlacePolicy::first_fit);
        write(target, "eight_dims_large", keyed(state.snapshot(), next_key()));
    }
    {  // three servers whose capacities sum to exactly 2^63 - 1, nearly full; a gang
        const Amount capacity[6] = {Amount{1} << 62, 5, Amount{1} << 61, 7, (Amount{1} << 61) - 1, 0};
        ClusterState state({"bytes", "gpus"}, capacity, 3);
        const Amount big[2] = {(Amount{1} << 62) - 1, 5};
        state.place(0, big);
        const Amount gang[4] = {Amount{1} << 60, 3, Amount{1} << 60, 4};
        state.place_gang(gang, 2, PlacePolicy::best_fit);
        state.cordon(2);
        write(target, "at_the_limit", keyed(state.snapshot(), next_key()));
    }
    {  // one server of 2^63 - 1 holding one container of all of it, and a released slot
        const Amount capacity[1] = {kMaxAmount};
        ClusterState state({"mem"}, capacity, 1);
        const Amount all[1] = {kMaxAmount};
        state.release(state.place(0, all));
        state.place(0, all);
        write(target, "one_full_server", keyed(state.snapshot(), next_key()));
    }
    {  // names at the edges: 1,024 bytes, and multi-byte UTF-8 (2, 3 and 4 bytes)
        const Amount capacity[2] = {3, 4};
        ClusterState state({std::string(kMaxNameLength, 'n'), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"}, capacity, 1);
        write(target, "long_and_utf8_names", keyed(state.snapshot(), next_key()));
    }
}

void block_index_snapshots() {
    const std::string target = "fuzz_block_index_snapshot";
    {
        write(target, "empty", BlockIndex(static_cast<const Bytes*>(nullptr), 0).snapshot());
    }
    {  // three servers (one without a cache), four blocks, shared holder sets
        const Bytes cache[3] = {100, 60, 0};
        BlockIndex index(cache, 3);
        const BlockHash hashes[4] = {11, 22, 33, 44};
        const Bytes sizes[4] = {40, 30, 20, 50};
        BlockId ids[4];
        index.intern(hashes, sizes, 4, ids);
        index.fetch(0, ids, 3);
        index.fetch(1, ids, 2);
        index.fetch(0, ids + 2, 2);
        write(target, "three_servers", index.snapshot());
    }
    {  // 65 servers (past a 64-bit word), 40 blocks, random fetches and an eviction
        std::mt19937_64 rng(65);
        std::vector<Bytes> cache(65);
        for (auto& c : cache) c = static_cast<Bytes>(rng() % 400);
        BlockIndex index(cache.data(), cache.size());
        std::vector<BlockHash> hashes(40);
        std::vector<Bytes> sizes(40);
        std::vector<BlockId> ids(40);
        for (std::size_t i = 0; i < 40; ++i) {
            hashes[i] = rng();
            sizes[i] = static_cast<Bytes>(1 + rng() % 90);
        }
        index.intern(hashes.data(), sizes.data(), 40, ids.data());
        for (int i = 0; i < 120; ++i) {
            const std::size_t first = rng() % 35;
            index.fetch(static_cast<ServerId>(rng() % 65), &ids[first], 1 + rng() % 5);
        }
        index.evict_server(7);
        write(target, "sixty_five_servers", index.snapshot());
    }
}

// Op sequences for fuzz_cluster_ops: a header, then op codes with arguments. Random
// bytes decode too (every byte string is an input); these start it on useful shapes.
void op_sequences() {
    const std::string target = "fuzz_cluster_ops";
    // dims=2 (1 + 1), 6 servers, 2 shapes of small amounts, stride 1; then first-fit
    // placements of small requests, a release of the first, a gang, a snapshot, a replay.
    write(target, "small_place_release",
          {1, 6, 1, 0, 100, 0, 50, 0, 60, 0, 30, 0,
           1, 0, 7, 3, 2,             // place_with first fit, request "small" (3, 2)
           1, 1, 7, 1, 1,             // place_with best fit (1, 1)
           4, 0, 0,                   // release a live container
           3, 0, 2, 7, 2, 2, 7, 4, 4,  // gang of two, first fit
           10,                         // snapshot and restore
           9, 3, 0, 7, 1, 1, 1, 0, 2, 7, 2, 2});  // replay: place, release it, place best
    // One dimension, 64 servers (a full bitset word), exact-fit requests from free rows.
    write(target, "exact_fits", {0, 64, 0, 1, 0, 2, 0, 0, 0, 0, 1, 8, 0, 1, 0, 0, 0, 0, 2, 0, 5, 0, 6, 8, 1, 0, 5, 0,
                                 11, 2, 0, 0, 1, 0, 0, 0});
    std::mt19937_64 rng(2024);
    for (int i = 0; i < 6; ++i) {
        std::vector<std::uint8_t> bytes(64 + rng() % 400);
        for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
        bytes[1] = static_cast<std::uint8_t>(rng() % 200);  // small clusters (255 is a large one)
        write(target, "random_" + std::to_string(i), bytes);
    }
    // Totals at 2^63 - 1: 3 servers, one dimension, shapes 2^62 and 1; stride byte 35
    // (35 / 5 % 8 == 7) gives the last server what is left (2^62 - 2); then an
    // add_servers of one row of 0 (which fits), one past the limit (refused), best-fit
    // places of free rows, a foreign id's release, a snapshot, queries.
    write(target, "at_the_limit", {0, 3, 1, 3, 62, 5, 35,
                                   7, 1, 0, 0,        // add_servers: one row of 0, plain
                                   7, 1, 0, 2,        // add_servers: one row, one past the limit: refused
                                   2, 1, 0, 0, 0,     // place_with best fit, server 0's free row
                                   2, 1, 0, 2, 0,     // place_with best fit, server 2's free row
                                   4, 7, 0,           // release a foreign id
                                   10, 8, 3, 2, 0, 0, 0, 0});
    // Two dimensions, 3 servers of 2^63 - 1 each: refused at construction.
    write(target, "past_the_limit", {1, 3, 0, 2, 0, 2, 0, 0, 4, 0, 0, 0});
    // A cluster past the free tree's 4,096-server block (servers byte 255).
    write(target, "free_tree_block", {1, 255, 1, 0, 64, 0, 0, 3, 1, 9, 0, 0, 0, 0, 8, 5, 0, 1, 0, 2, 5, 1, 0, 8, 8, 8});
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: make_corpus DIR (DIR/<target>/ must exist)\n");
        return 2;
    }
    root = argv[1];
    cluster_snapshots();
    block_index_snapshots();
    op_sequences();
    return 0;
}
