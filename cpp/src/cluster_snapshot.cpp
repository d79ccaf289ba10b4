// Snapshot layout (little-endian), version 3:
//   "FPLC" | u32 version | u32 n_dims | u64 n_servers | u64 id key (< 2^63; absent in version 2)
//   per dimension: u32 name length, name bytes, kLevels i64 level thresholds
//   capacity: n_servers * n_dims i64 | cordoned: n_servers u8
//   u64 n_slots, per slot: u32 generation, i64 server (-1 free), n_dims i64 amounts
//   u64 n_free_slots, per entry: u32 slot
//   u64 FNV-1a checksum of every byte before it
// Free amounts, levels and bitsets are derived, so they are rebuilt rather than stored.
// Restore refuses any content that breaks an invariant, even under a correct checksum:
// the checksum catches accidents, not a hand-made (or fuzzed) image.
#include <cstring>

#include "fastplace/cluster_state.hpp"
#include "fastplace/snapshot_io.hpp"

namespace fastplace {

namespace {

using snapshot_io::Reader;
using snapshot_io::Writer;

constexpr char kMagic[4] = {'F', 'P', 'L', 'C'};
constexpr std::uint32_t kOldestVersion = 2;
using Lock = std::lock_guard<std::mutex>;

}  // namespace

std::vector<std::uint8_t> ClusterState::snapshot() const {
    Lock lock(mutex_);
    const std::size_t dims = n_dims();
    Writer w;
    w.put_bytes(kMagic, sizeof(kMagic));
    w.put<std::uint32_t>(kSnapshotVersion);
    w.put<std::uint32_t>(static_cast<std::uint32_t>(dims));
    w.put<std::uint64_t>(n_servers_);
    w.put<std::uint64_t>(id_key_);
    for (std::size_t d = 0; d < dims; ++d) {
        w.put<std::uint32_t>(static_cast<std::uint32_t>(resources_[d].size()));
        w.put_bytes(resources_[d].data(), resources_[d].size());
        w.put_bytes(&thresholds_[d * kLevels], kLevels * sizeof(Amount));
    }
    w.put_bytes(capacity_.data(), capacity_.size() * sizeof(Amount));
    for (std::size_t s = 0; s < n_servers_; ++s) w.put<std::uint8_t>(available_.test(s) ? 0 : 1);
    w.put<std::uint64_t>(slots_.size());
    for (std::size_t slot = 0; slot < slots_.size(); ++slot) {
        w.put<std::uint32_t>(slots_.generation(slot));
        w.put<std::int64_t>(slots_.server(slot));
        w.put_bytes(slots_.amounts(slot), dims * sizeof(Amount));
    }
    w.put<std::uint64_t>(free_slots_.size());
    for (const std::uint32_t slot : free_slots_) w.put<std::uint32_t>(slot);
    w.put_checksum();
    return std::move(w.bytes());
}

ClusterState::ClusterState(const std::uint8_t* data, std::size_t size) {
    const std::size_t body = snapshot_io::check_envelope(data, size, kMagic, kOldestVersion, kSnapshotVersion);
    Reader r(data, body);
    r.get_string(sizeof(kMagic), "magic");
    const auto version = r.get<std::uint32_t>("version");
    const auto dims = r.get<std::uint32_t>("n_dims");
    if (dims < 1 || dims > kMaxDims) {
        throw CorruptSnapshot("snapshot n_dims = " + std::to_string(dims) + " is outside 1.." +
                              std::to_string(kMaxDims));
    }
    const auto n_servers = r.get<std::uint64_t>("n_servers");
    r.need_items(n_servers, dims * sizeof(Amount) + 1, "n_servers");
    if (version >= 3) {
        id_key_ = r.get<std::uint64_t>("id key");
        if (id_key_ >> 63) {
            throw CorruptSnapshot("snapshot id key " + std::to_string(id_key_) + " is not below 2^63");
        }
    }
    for (std::uint32_t d = 0; d < dims; ++d) {
        const auto length = r.get<std::uint32_t>("resource name length");
        if (length == 0 || length > kMaxNameLength) {
            throw CorruptSnapshot("snapshot resource name length " + std::to_string(length) + " is outside 1.." +
                                  std::to_string(kMaxNameLength));
        }
        resources_.push_back(r.get_string(length, "resource name"));
        if (const std::string problem = name_problem(resources_.back()); !problem.empty()) {
            throw CorruptSnapshot("snapshot resource name " + std::to_string(d) + " " + problem);
        }
        for (std::uint32_t e = 0; e < d; ++e) {
            if (resources_[e] == resources_.back()) {
                throw CorruptSnapshot("snapshot resource name '" + resources_.back() + "' appears twice");
            }
        }
        for (std::size_t l = 0; l < kLevels; ++l) {
            const auto threshold = r.get<Amount>("level threshold");
            const Amount previous = l ? thresholds_.back() : -1;
            if ((l == 0 && threshold != 0) || threshold <= previous) {
                throw CorruptSnapshot("snapshot level thresholds of " + resources_.back() +
                                      " are not 0 followed by increasing amounts");
            }
            thresholds_.push_back(threshold);
        }
    }
    n_servers_ = static_cast<std::size_t>(n_servers);
    capacity_.resize(n_servers_ * dims);
    for (auto& c : capacity_) {
        c = r.get<Amount>("capacity");
        if (c < 0) throw CorruptSnapshot("snapshot capacity " + std::to_string(c) + " is negative");
    }
    if (const std::string problem = capacity_problem(capacity_.data(), n_servers_, std::vector<Amount>(dims, 0),
                                                     "capacity");
        !problem.empty()) {
        throw CorruptSnapshot("snapshot " + problem);
    }
    std::vector<std::uint8_t> cordoned(n_servers_);
    for (auto& flag : cordoned) {
        flag = r.get<std::uint8_t>("cordoned flag");
        if (flag > 1) throw CorruptSnapshot("snapshot cordoned flag " + std::to_string(flag) + " is not 0 or 1");
    }
    const auto n_slots = r.get<std::uint64_t>("n_slots");
    if (n_slots > kMaxSlots) {
        throw CorruptSnapshot("snapshot n_slots = " + std::to_string(n_slots) + " exceeds the 2^32 slot ids");
    }
    r.need_items(n_slots, sizeof(std::uint32_t) + sizeof(std::int64_t) + dims * sizeof(Amount), "n_slots");
    slots_ = SlotTable(dims);
    slots_.resize(static_cast<std::size_t>(n_slots));
    for (std::size_t slot = 0; slot < slots_.size(); ++slot) {
        const auto generation = r.get<std::uint32_t>("slot generation");
        // Ids are (generation << 32) | slot and must stay positive as int64.
        if (generation > 0x7fffffffU) {
            throw CorruptSnapshot("snapshot slot " + std::to_string(slot) + " generation " +
                                  std::to_string(generation) + " is out of range");
        }
        slots_.set_generation(slot, generation);
        slots_.set_server(slot, r.get<std::int64_t>("slot server"));
        if (slots_.server(slot) < -1 || slots_.server(slot) >= static_cast<ServerId>(n_servers_)) {
            throw CorruptSnapshot("snapshot slot " + std::to_string(slot) + " names server " +
                                  std::to_string(slots_.server(slot)) + " of " + std::to_string(n_servers_));
        }
        for (std::uint32_t d = 0; d < dims; ++d) {
            const auto amount = r.get<Amount>("slot amount");
            if (amount < 0) throw CorruptSnapshot("snapshot slot amount " + std::to_string(amount) + " is negative");
            slots_.amounts(slot)[d] = amount;
        }
    }
    // Containers must fit their servers before free amounts are derived: an overflowing
    // sum would wrap around to a plausible free amount.
    std::vector<Amount> used(n_servers_ * dims, 0);
    for (std::size_t slot = 0; slot < slots_.size(); ++slot) {
        if (slots_.server(slot) < 0) continue;
        const auto s = static_cast<std::size_t>(slots_.server(slot));
        for (std::size_t d = 0; d < dims; ++d) {
            Amount& u = used[s * dims + d];
            if (__builtin_add_overflow(u, slots_.amounts(slot)[d], &u) || u > capacity_[s * dims + d]) {
                throw CorruptSnapshot("snapshot is inconsistent: server " + std::to_string(s) + " " + resources_[d] +
                                      " is over capacity: its containers hold more than its " +
                                      std::to_string(capacity_[s * dims + d]));
            }
        }
    }
    const auto n_free = r.get<std::uint64_t>("n_free_slots");
    r.need_items(n_free, sizeof(std::uint32_t), "n_free_slots");
    free_slots_.resize(static_cast<std::size_t>(n_free));
    for (auto& slot : free_slots_) {
        // A slot at the last generation may be on the free list: released at the one
        // before, it has not yet handed out its last id (release_slot retires it after
        // that). validate() checks the free-list rules.
        slot = r.get<std::uint32_t>("free slot");
    }
    if (r.position() != body) {
        throw CorruptSnapshot("snapshot has " + std::to_string(body - r.position()) +
                              " unexpected trailing bytes");
    }
    rebuild_derived(cordoned);
    const std::string broken = validate_unlocked();
    if (!broken.empty()) throw CorruptSnapshot("snapshot is inconsistent: " + broken);
}

}  // namespace fastplace
