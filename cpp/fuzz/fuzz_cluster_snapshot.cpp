// Fuzz target: bytes -> ClusterState restore (layout in cpp/src/cluster_snapshot.cpp).
//
// An input whose checksum does not match must be refused; it is then resealed (the
// checksum rewritten) and restored again, so that mutations reach the content checks.
// A plain parser written here, independent of the core's, reads the same layout
// (versions 2 and 3): the core must restore exactly the snapshots that parse and keep
// every content invariant (the plain defect() list), and the restored state must
// answer every read as the parsed content says, ids carrying the snapshot's key. A
// version 3 snapshot re-snapshots byte for byte; a version 2 one as the same content
// in version 3 with key 0 (its ids unchanged). Ids under another key are not found.
// Then a few operations (place the free row, release every container, snapshot,
// restore) must keep validate() clean and snapshots byte-identical.
#include <algorithm>
#include <limits>
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
    std::uint32_t version = 0;
    std::uint64_t key = 0;  // version 3's id key; 0 for version 2 (ids unkeyed)
    std::size_t dims = 0;
    std::size_t n = 0;
    std::vector<std::string> names;
    std::vector<Amount> thresholds;  // dims x kLevels
    std::vector<Amount> capacity;    // n x dims
    std::vector<std::uint8_t> cordoned;
    std::vector<PlainSlot> slots;
    std::vector<std::uint32_t> free_list;

    // The public id of a slot: (generation << 32 | slot) XOR the cluster's key.
    ContainerId id(std::size_t slot, std::uint64_t with_key) const {
        return static_cast<ContainerId>(((std::uint64_t{slots[slot].generation} << 32) | slot) ^ with_key);
    }
    ContainerId id(std::size_t slot) const { return id(slot, key); }
};

// The oldest snapshot version the core restores (the newest is kSnapshotVersion = 3).
constexpr std::uint32_t kOldestVersion = 2;
// Bytes before the key in version 3 (magic, version, n_dims, n_servers).
constexpr std::size_t kKeyOffset = 4 + 4 + 4 + 8;

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
    if (!in.get(version) || version < kOldestVersion || version > kSnapshotVersion) return std::nullopt;
    if (!in.get(dims) || dims < 1 || dims > kMaxDims || !in.get(n)) return std::nullopt;
    PlainCluster c;
    c.version = version;
    if (version >= 3 && !in.get(c.key)) return std::nullopt;
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
    for (Amount& a : c.capacity) in.get(a);
    c.cordoned.resize(c.n);
    for (std::uint8_t& f : c.cordoned) in.get(f);
    std::uint64_t n_slots = 0;
    if (!in.get(n_slots) || !in.room_for(n_slots, 12 + dims * sizeof(Amount))) return std::nullopt;
    c.slots.resize(static_cast<std::size_t>(n_slots));
    for (PlainSlot& s : c.slots) {
        in.get(s.generation);
        in.get(s.server);
        s.amounts.resize(dims);
        for (Amount& a : s.amounts) in.get(a);
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

// Whether bytes are well-formed UTF-8, by decoding each code point: no stray or
// missing continuation bytes, no overlong form, no surrogate, nothing past U+10FFFF.
bool plain_utf8(const std::string& text) {
    for (std::size_t i = 0; i < text.size();) {
        const auto lead = static_cast<unsigned char>(text[i]);
        std::size_t length = 1;
        std::uint32_t point = lead;
        if (lead >= 0xf0) {
            length = 4;
            point = lead & 0x07;
        } else if (lead >= 0xe0) {
            length = 3;
            point = lead & 0x0f;
        } else if (lead >= 0xc0) {
            length = 2;
            point = lead & 0x1f;
        } else if (lead >= 0x80) {
            return false;  // a continuation byte first
        }
        if (lead >= 0xf8 || text.size() - i < length) return false;
        for (std::size_t k = 1; k < length; ++k) {
            const auto b = static_cast<unsigned char>(text[i + k]);
            if ((b & 0xc0) != 0x80) return false;
            point = (point << 6) | (b & 0x3f);
        }
        constexpr std::uint32_t kShortest[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (point < kShortest[length] || (point >= 0xd800 && point <= 0xdfff) || point > 0x10ffff) return false;
        i += length;
    }
    return true;
}

// The content invariants a restored state must keep: "" or the first broken one.
// The core must refuse a snapshot exactly when one is broken.
std::string defect(const PlainCluster& c) {
    if (c.key >> 63) return "id key not below 2^63";
    for (std::size_t d = 0; d < c.dims; ++d) {
        if (c.names[d].empty()) return "empty resource name";
        if (c.names[d].size() > kMaxNameLength) return "resource name longer than 1024 bytes";
        if (!plain_utf8(c.names[d])) return "resource name not UTF-8";
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
    for (std::size_t d = 0; d < c.dims; ++d) {
        Int128 total = 0;
        for (std::size_t s = 0; s < c.n; ++s) total += c.capacity[s * c.dims + d];
        if (total > std::numeric_limits<Amount>::max()) return "total capacity past 2^63 - 1";
    }
    if (c.slots.size() > kMaxSlots) return "more slots than 2^32";
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

// A version 2 snapshot as the core writes it back: version 3, key 0 after the header.
std::vector<std::uint8_t> as_version_3(const std::vector<std::uint8_t>& bytes) {
    std::vector<std::uint8_t> out(bytes);
    out[4] = 3;
    out.insert(out.begin() + kKeyOffset, 8, 0);
    reseal(out);
    return out;
}

// The same content under another key: the old ids must name nothing there (the key
// differs in generation bit 30, so every old id decodes to its slot at a generation
// that slot does not have).
void check_other_key(const std::vector<std::uint8_t>& v3, const PlainCluster& c) {
    std::vector<std::uint8_t> bytes(v3);
    const std::uint64_t other = c.key ^ (std::uint64_t{1} << 62);
    std::memcpy(&bytes[kKeyOffset], &other, sizeof(other));
    reseal(bytes);
    const ClusterState copy(bytes.data(), bytes.size());
    std::vector<Amount> amounts(c.dims);
    std::size_t checked = 0;
    for (std::size_t i = 0; i < c.slots.size() && checked < 4; ++i) {
        if (c.slots[i].server < 0) continue;
        ++checked;
        FUZZ_CHECK(throws<UnknownContainer>([&] { copy.container_server(c.id(i), amounts.data()); }),
                   "an id of another key found a container");
        FUZZ_CHECK(copy.container_server(c.id(i, other), amounts.data()) == c.slots[i].server,
                   "the same slot under the copy's key");
    }
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
    const std::string why = plain ? defect(*plain) : "no snapshot layout";
    std::unique_ptr<ClusterState> state;
    try {
        state = std::make_unique<ClusterState>(bytes.data(), bytes.size());
    } catch (const CorruptSnapshot& e) {
        FUZZ_CHECK(!why.empty(), std::string("the core refused a valid snapshot: ") + e.what());
        return 0;
    }
    FUZZ_CHECK(plain.has_value(), "the core restored bytes that do not have the snapshot layout");
    FUZZ_CHECK(why.empty(), "the core restored a snapshot that breaks an invariant: " + why);
    const std::string broken = state->validate();
    FUZZ_CHECK(broken.empty(), "validate after restore: " + broken);
    const std::vector<std::uint8_t> v3 = plain->version == 3 ? bytes : as_version_3(bytes);
    FUZZ_CHECK(state->snapshot() == v3, "snapshot of a restored state differs from its content in version 3");
    check_reads(*state, *plain);
    check_other_key(v3, *plain);
    check_operations(*state, *plain);
    const std::vector<std::uint8_t> again = state->snapshot();
    ClusterState restored(again.data(), again.size());
    FUZZ_CHECK(restored.snapshot() == again, "restore of a fresh snapshot differs");
    return 0;
}
