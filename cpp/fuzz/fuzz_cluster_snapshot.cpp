// Fuzz target: bytes -> ClusterState restore (layout in cpp/src/cluster_snapshot.cpp).
//
// An input whose checksum does not match must be refused; it is then resealed (the
// checksum rewritten) and restored again, so that mutations reach the content checks.
// A plain parser written here, independent of the core's, reads the same layout:
// whatever the core accepts must parse and keep every content invariant, and the
// restored state must answer every read as the parsed content says. Then a few
// operations (place the free row, release every container, snapshot, restore) must
// keep validate() clean and snapshots byte-identical.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fastplace/cluster_state.hpp"
#include "fuzz_common.hpp"

using namespace fastplace;
using namespace fastplace::fuzz;

namespace {

using Int128 = __int128;

struct PlainSlot {
    std::uint32_t generation = 0;
    std::int64_t server = -1;
    std::vector<Amount> amounts;
};

struct PlainCluster {
    std::size_t dims = 0;
    std::size_t n = 0;
    std::vector<std::string> names;
    std::vector<Amount> thresholds;  // dims x kLevels
    std::vector<Amount> capacity;    // n x dims
    std::vector<std::uint8_t> cordoned;
    std::vector<PlainSlot> slots;
    std::vector<std::uint32_t> free_list;
    Amount largest_amount = 0;  // of capacities and slot amounts, for the unfixed-core limit

    ContainerId id(std::size_t slot) const {
        return static_cast<ContainerId>((std::uint64_t{slots[slot].generation} << 32) | slot);
    }
};

// The layout alone (magic, version, counts, lengths, no trailing bytes); nullopt when
// the bytes do not have that shape, which the core must refuse too.
std::optional<PlainCluster> parse(const std::vector<std::uint8_t>& bytes) {
    if (!checksum_matches(bytes)) return std::nullopt;
    Layout in(bytes.data(), bytes.size() - kChecksumBytes);
    char magic[4];
    std::uint32_t version = 0;
    std::uint32_t dims = 0;
    std::uint64_t n = 0;
    if (!in.get(magic) || std::memcmp(magic, "FPLC", 4) != 0) return std::nullopt;
    if (!in.get(version) || version != kSnapshotVersion) return std::nullopt;
    if (!in.get(dims) || dims < 1 || dims > kMaxDims || !in.get(n)) return std::nullopt;
    PlainCluster c;
    c.dims = dims;
    for (std::uint32_t d = 0; d < dims; ++d) {
        std::uint32_t length = 0;
        if (!in.get(length) || !in.room_for(length, 1)) return std::nullopt;
        c.names.emplace_back(reinterpret_cast<const char*>(in.here()), length);
        in.skip(length);
        for (std::size_t l = 0; l < kLevels; ++l) {
            Amount t = 0;
            if (!in.get(t)) return std::nullopt;
            c.thresholds.push_back(t);
        }
    }
    if (!in.room_for(n, dims * sizeof(Amount) + 1)) return std::nullopt;
    c.n = static_cast<std::size_t>(n);
    c.capacity.resize(c.n * dims);
    for (Amount& a : c.capacity) {
        in.get(a);
        c.largest_amount = std::max(c.largest_amount, a);
    }
    c.cordoned.resize(c.n);
    for (std::uint8_t& f : c.cordoned) in.get(f);
    std::uint64_t n_slots = 0;
    if (!in.get(n_slots) || !in.room_for(n_slots, 12 + dims * sizeof(Amount))) return std::nullopt;
    c.slots.resize(static_cast<std::size_t>(n_slots));
    for (PlainSlot& s : c.slots) {
        in.get(s.generation);
        in.get(s.server);
        s.amounts.resize(dims);
        for (Amount& a : s.amounts) {
            in.get(a);
            c.largest_amount = std::max(c.largest_amount, a);
        }
    }
    std::uint64_t n_free = 0;
    if (!in.get(n_free) || !in.room_for(n_free, sizeof(std::uint32_t))) return std::nullopt;
    c.free_list.resize(static_cast<std::size_t>(n_free));
    for (std::uint32_t& f : c.free_list) in.get(f);
    if (in.remaining() != 0) return std::nullopt;
    return c;
}

// Free amounts from capacity minus live containers, exactly.
std::vector<Int128> plain_free(const PlainCluster& c) {
    std::vector<Int128> free(c.capacity.begin(), c.capacity.end());
    for (const PlainSlot& s : c.slots) {
        if (s.server < 0) continue;
        for (std::size_t d = 0; d < c.dims; ++d) free[static_cast<std::size_t>(s.server) * c.dims + d] -= s.amounts[d];
    }
    return free;
}

// The content invariants a restored state must keep: "" or the first broken one.
// (Only rules every valid state obeys: the core may refuse more, e.g. odd names.)
std::string defect(const PlainCluster& c) {
    for (std::size_t d = 0; d < c.dims; ++d) {
        if (c.names[d].empty()) return "empty resource name";
        for (std::size_t e = 0; e < d; ++e) {
            if (c.names[e] == c.names[d]) return "repeated resource name";
        }
        const Amount* t = &c.thresholds[d * kLevels];
        if (t[0] != 0) return "threshold 0 is not 0";
        for (std::size_t l = 1; l < kLevels; ++l) {
            if (t[l] <= t[l - 1]) return "thresholds not increasing";
        }
    }
    for (const Amount a : c.capacity) {
        if (a < 0) return "negative capacity";
    }
    for (const std::uint8_t f : c.cordoned) {
        if (f > 1) return "cordoned flag not 0/1";
    }
    for (const PlainSlot& s : c.slots) {
        if (s.generation > kGenerationMask) return "generation out of range";
        if (s.server < -1 || s.server >= static_cast<std::int64_t>(c.n)) return "slot server out of range";
        for (const Amount a : s.amounts) {
            if (a < 0) return "negative slot amount";
            if (s.server < 0 && a != 0) return "free slot keeps an amount";
        }
    }
    for (const Int128 f : plain_free(c)) {
        if (f < 0) return "server over capacity";
    }
    std::vector<std::uint8_t> listed(c.slots.size(), 0);
    for (const std::uint32_t f : c.free_list) {
        if (f >= c.slots.size()) return "free list names a slot beyond the table";
        if (c.slots[f].server >= 0) return "free list names a live slot";
        // A retired slot (last generation used) reused would hand out an old id again.
        if (c.slots[f].generation == kGenerationMask) return "free list names a retired slot";
        if (listed[f]++) return "free list repeats a slot";
    }
    for (std::size_t i = 0; i < c.slots.size(); ++i) {
        if (c.slots[i].server < 0 && !listed[i] && c.slots[i].generation != kGenerationMask) {
            return "free slot missing from the free list";
        }
    }
    return {};
}

// Lowest available server whose free row covers request, by a plain scan.
ServerId plain_first_fit(const PlainCluster& c, const std::vector<Int128>& free, const Amount* request) {
    for (std::size_t s = 0; s < c.n; ++s) {
        if (c.cordoned[s]) continue;
        bool fits = true;
        for (std::size_t d = 0; d < c.dims && fits; ++d) fits = free[s * c.dims + d] >= request[d];
        if (fits) return static_cast<ServerId>(s);
    }
    return -1;
}

// Every read of the restored state against the parsed content.
void check_reads(const ClusterState& state, const PlainCluster& c) {
    const std::size_t dims = c.dims;
    FUZZ_CHECK(state.n_servers() == c.n && state.n_dims() == dims, "shape");
    FUZZ_CHECK(state.resources() == c.names, "resource names");
    FUZZ_CHECK(state.capacity_matrix() == c.capacity, "capacity matrix");
    const std::vector<Int128> free = plain_free(c);
    const std::vector<Amount> got_free = state.free_matrix();
    FUZZ_CHECK(std::equal(got_free.begin(), got_free.end(), free.begin(), free.end()), "free matrix");
    std::vector<std::int64_t> counts(c.n, 0);
    std::size_t live = 0;
    for (const PlainSlot& s : c.slots) {
        if (s.server >= 0) {
            ++counts[static_cast<std::size_t>(s.server)];
            ++live;
        }
    }
    FUZZ_CHECK(state.container_counts() == counts, "container counts");
    FUZZ_CHECK(state.n_containers() == live, "n_containers");
    FUZZ_CHECK(state.n_active_servers() ==
                   static_cast<std::size_t>(std::count_if(counts.begin(), counts.end(), [](auto k) { return k > 0; })),
               "n_active_servers");
    for (std::size_t s = 0; s < c.n; ++s) {
        FUZZ_CHECK(state.is_cordoned(static_cast<ServerId>(s)) == (c.cordoned[s] != 0), "cordoned flag");
    }
    std::vector<Amount> free_total(dims);
    std::vector<Amount> capacity_total(dims);
    state.totals(free_total.data(), capacity_total.data());
    for (std::size_t d = 0; d < dims; ++d) {
        Int128 f = 0;
        Int128 k = 0;
        Amount largest = 0;
        for (std::size_t s = 0; s < c.n; ++s) {
            f += free[s * dims + d];
            k += c.capacity[s * dims + d];
            largest = std::max(largest, c.capacity[s * dims + d]);
        }
        FUZZ_CHECK(free_total[d] == f && capacity_total[d] == k, "totals exact");
        FUZZ_CHECK(state.largest_capacity(d) == largest, "largest capacity");
    }
    std::vector<Amount> amounts(dims);
    for (std::size_t i = 0; i < c.slots.size(); ++i) {
        const ContainerId id = c.id(i);
        if (c.slots[i].server >= 0) {
            FUZZ_CHECK(state.container_server(id, amounts.data()) == c.slots[i].server, "container server");
            FUZZ_CHECK(amounts == c.slots[i].amounts, "container amounts");
        } else {
            FUZZ_CHECK(throws<UnknownContainer>([&] { state.container_server(id, amounts.data()); }),
                       "a free slot's id is not a container");
        }
    }
}

// Places each of the first few servers' free row on it (and releases it again), then
// releases every container: the state must follow the plain arithmetic throughout.
void check_operations(ClusterState& state, const PlainCluster& c) {
    const std::size_t dims = c.dims;
    std::vector<Int128> free = plain_free(c);
    std::vector<Amount> request(dims);
    for (std::size_t s = 0; s < std::min<std::size_t>(c.n, 4); ++s) {
        for (std::size_t d = 0; d < dims; ++d) request[d] = static_cast<Amount>(free[s * dims + d]);
        FUZZ_CHECK(state.first_fit(request.data()) == plain_first_fit(c, free, request.data()), "first_fit");
        const ServerId best = state.best_fit(request.data());
        FUZZ_CHECK((best < 0) == (plain_first_fit(c, free, request.data()) < 0), "best_fit finds a server iff one fits");
        if (best >= 0) FUZZ_CHECK(state.fits(best, request.data()), "best_fit's server fits");
        const auto server = static_cast<ServerId>(s);
        if (c.cordoned[s]) {
            const std::vector<std::uint8_t> before = state.snapshot();
            FUZZ_CHECK(throws<InvalidArgument>([&] { state.place(server, request.data()); }),
                       "placing on a cordoned server throws");
            FUZZ_CHECK(state.snapshot() == before, "a refused place leaves the state as it was");
            continue;
        }
        const ContainerId id = state.place(server, request.data());
        const std::string broken = state.validate();
        FUZZ_CHECK(broken.empty(), "validate after place: " + broken);
        state.release(id);
    }
    for (std::size_t i = 0; i < c.slots.size(); ++i) {
        if (c.slots[i].server >= 0) state.release(c.id(i));
    }
    FUZZ_CHECK(state.free_matrix() == c.capacity, "free == capacity once everything is released");
    FUZZ_CHECK(state.n_containers() == 0 && state.n_active_servers() == 0, "no containers left");
    for (std::size_t i = 0; i < c.slots.size(); ++i) {
        if (c.slots[i].server >= 0) {
            FUZZ_CHECK(throws<UnknownContainer>([&] { state.release(c.id(i)); }), "a second release throws");
        }
    }
    const std::string broken = state.validate();
    FUZZ_CHECK(broken.empty(), "validate after releases: " + broken);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::vector<std::uint8_t> bytes(data, data + size);
    if (!checksum_matches(bytes)) {
        FUZZ_CHECK(throws<CorruptSnapshot>([&] { ClusterState(bytes.data(), bytes.size()); }),
                   "a snapshot with a wrong checksum restores");
        reseal(bytes);
    }
    const std::optional<PlainCluster> plain = parse(bytes);
    if (plain && plain->largest_amount > kMaxAmountWhileCoreUnfixed) return -1;  // see fuzz_common.hpp
    std::unique_ptr<ClusterState> state;
    try {
        state = std::make_unique<ClusterState>(bytes.data(), bytes.size());
    } catch (const CorruptSnapshot&) {
        return 0;
    }
    FUZZ_CHECK(plain.has_value(), "the core restored bytes that do not have the snapshot layout");
    const std::string why = defect(*plain);
    FUZZ_CHECK(why.empty(), "the core restored a snapshot that breaks an invariant: " + why);
    const std::string broken = state->validate();
    FUZZ_CHECK(broken.empty(), "validate after restore: " + broken);
    FUZZ_CHECK(state->snapshot() == bytes, "snapshot of a restored state differs from its bytes");
    check_reads(*state, *plain);
    check_operations(*state, *plain);
    const std::vector<std::uint8_t> again = state->snapshot();
    ClusterState restored(again.data(), again.size());
    FUZZ_CHECK(restored.snapshot() == again, "restore of a fresh snapshot differs");
    return 0;
}
