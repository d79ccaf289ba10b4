// The cluster state: N servers x D integer resource dimensions, the containers placed
// on them, and per-dimension level bitsets that answer "which servers can host this
// request" with a few word-wide ANDs.
//
// Threading contract: every public member function takes an internal mutex, so any
// number of threads may call any operation concurrently; each operation is atomic.
// Callers that need "find then book" atomically use place_first_fit / place_gang.
//
// Errors: invalid arguments throw InvalidArgument, unknown containers throw
// UnknownContainer, bad snapshots throw CorruptSnapshot. A throwing operation leaves
// the state exactly as it was (same snapshot bytes).
//
// Limits on amounts: every capacity is >= 0 and, per dimension, the capacities of all
// servers sum to at most 2^63 - 1 (checked with overflow-checked adds by the
// constructor, add_servers and restore). Requests are any amounts >= 0. Booking only
// subtracts a request from a free amount it does not exceed, so 0 <= free <= capacity
// on every server, and every sum the state forms (free and capacity totals, used
// amounts, a gang's partitions on one server) stays within int64: results are exact.
//
// Container ids are per cluster: an id is (generation << 32 | slot) XOR a random
// 63-bit key drawn when the cluster is built (and kept by its snapshot), so an id of
// another cluster names no live container here (UnknownContainer) except with
// probability below 2^-31 (about n_slots / 2^63).
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "fastplace/bitset.hpp"
#include "fastplace/feasible_counts.hpp"
#include "fastplace/free_tree.hpp"
#include "fastplace/slot_table.hpp"

namespace fastplace {

using Amount = std::int64_t;       // resource amount in the dimension's unit (MB, millicores, ...)
using ServerId = std::int64_t;     // index into the server array; -1 means "none"
using ContainerId = std::int64_t;  // (generation << 32) | slot; never reused after release

constexpr std::size_t kMaxDims = 8;
// Levels per dimension. Level l holds the servers whose free amount is at least
// threshold[l]; threshold[0] = 0 and the others are spaced geometrically, four per
// octave below the largest capacity, so that a request's boundary band (servers on
// its own level that may still fall short) is at most ~19% of the request wide,
// whatever its size, and power-of-two requests (128 MB, 1 GiB ...) have none.
constexpr std::size_t kLevels = 64;
constexpr int kLevelsPerOctave = 4;
// Slot generations use 31 bits so that ids stay positive as int64; a slot that reaches
// the last generation is retired.
constexpr std::uint32_t kGenerationMask = 0x7fffffffU;
// Slot numbers are the low 32 bits of an id.
constexpr std::uint64_t kMaxSlots = std::uint64_t{1} << 32;
// Resource names: 1 to kMaxNameLength bytes of valid UTF-8, at construction and restore.
constexpr std::size_t kMaxNameLength = 1024;
// Version 3 added the id key; version 2 snapshots restore with key 0.
constexpr std::uint32_t kSnapshotVersion = 3;

class InvalidArgument : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

class UnknownContainer : public std::out_of_range {
public:
    using std::out_of_range::out_of_range;
};

class CorruptSnapshot : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class PlacePolicy : std::uint8_t { first_fit = 0, best_fit = 1 };

struct Placement {
    ContainerId container;
    ServerId server;
};

// Event codes of ClusterState::replay.
enum class ReplayOp : std::uint8_t {
    place_first_fit = 0,  // place requests[i] on the first server that fits
    release_event = 1,    // release the container placed by event refs[i] (no-op if it failed)
    place_best_fit = 2,   // place requests[i] on the tightest server that fits
    release_container = 3,  // release the live container whose id is refs[i]
};

struct ReplayStats {
    std::int64_t placed = 0;
    std::int64_t unplaced = 0;  // place events for which no server fitted
    std::int64_t released = 0;
};

class ClusterState {
public:
    // capacity: n_servers rows of resources.size() amounts, row-major.
    ClusterState(std::vector<std::string> resources, const Amount* capacity,
                 std::size_t n_servers);
    // Rebuilds a state from snapshot() bytes; throws CorruptSnapshot on any defect.
    ClusterState(const std::uint8_t* data, std::size_t size);

    ClusterState(const ClusterState&) = delete;
    ClusterState& operator=(const ClusterState&) = delete;

    std::size_t n_servers() const;
    std::size_t n_dims() const { return resources_.size(); }
    const std::vector<std::string>& resources() const { return resources_; }
    std::size_t n_containers() const;
    // Servers hosting at least one container.
    std::size_t n_active_servers() const;

    // The (n_servers x n_dims, row-major) free and capacity matrices.
    std::vector<Amount> free_matrix() const;
    std::vector<Amount> capacity_matrix() const;
    // Containers hosted per server.
    std::vector<std::int64_t> container_counts() const;
    // Free amounts, capacities (k x n_dims each) and container counts of k listed
    // servers, under one lock: O(k), for scorers that look at a few candidates.
    void server_rows(const ServerId* servers, std::size_t k, Amount* free, Amount* capacity,
                     std::int64_t* counts) const;

    // Lowest-index server that is not cordoned and has free >= request in every
    // dimension, or -1.
    ServerId first_fit(const Amount* request) const;
    // Feasible server with the least normalised free space left after placing, or -1.
    ServerId best_fit(const Amount* request) const;
    // Feasible servers in increasing order: all of them, or the first limit.
    std::vector<ServerId> feasible(const Amount* request,
                                   std::size_t limit = static_cast<std::size_t>(-1)) const;
    // Whether server can host request now (false when cordoned).
    bool fits(ServerId server, const Amount* request) const;
    // How many servers feasible() would list, without listing them: servers above the
    // request's level in every dimension are counted by popcount, only the boundary
    // band gets an exact check. O(n_servers / 64 * n_dims + band).
    std::size_t count_feasible(const Amount* request) const;

    // Running totals, kept up to date by every mutation (O(n_dims) to read): the sums
    // of free amounts and of capacities over all servers, per dimension, written to
    // n_dims entries each. Exact: the limits on amounts keep them within int64.
    void totals(Amount* free_total, Amount* capacity_total) const;
    // The largest capacity of any server in dimension dim (0 without servers): O(1).
    Amount largest_capacity(std::size_t dim) const;

    // Several reads under one lock, consistent with each other: read(f) locks the
    // state, calls f(view) and returns what f returns. The View's functions are the
    // unlocked reads; f must not call any ClusterState member (the mutex is not
    // recursive: that would deadlock) nor keep the view or its pointers after it returns.
    class View;
    template <typename F>
    decltype(auto) read(F&& f) const;

    // "" when name is a valid resource name (1 to kMaxNameLength bytes of UTF-8), else
    // what is wrong with it.
    static std::string name_problem(const std::string& name);

    // Books request on server; throws InvalidArgument when it does not fit.
    ContainerId place(ServerId server, const Amount* request);
    // first_fit + place under one lock; server -1 (and container -1) when nothing fits.
    Placement place_with(PlacePolicy policy, const Amount* request);
    // Places n requests (row-major, n x n_dims) all or none: throws InvalidArgument
    // naming the first partition that found no server, leaving the state untouched.
    std::vector<Placement> place_gang(const Amount* requests, std::size_t n, PlacePolicy policy);
    // Frees a container's resources; throws UnknownContainer if it is not live.
    void release(ContainerId container);
    // Server and amounts of a live container (amounts has n_dims entries).
    ServerId container_server(ContainerId container, Amount* amounts) const;

    // Appends servers (n rows of n_dims amounts); returns the first new server id.
    // Throws InvalidArgument, adding nothing, when a capacity is negative or would take
    // its dimension's total capacity over 2^63 - 1.
    ServerId add_servers(const Amount* capacity, std::size_t n);
    void cordon(ServerId server);
    void uncordon(ServerId server);
    bool is_cordoned(ServerId server) const;

    // Runs m events without leaving C++. requests is m x n_dims (rows of release
    // events are ignored), refs has m entries (ignored for place events). Writes the
    // chosen server (or -1) and container id per event into servers_out/containers_out.
    // The whole stream is checked before the first event runs.
    ReplayStats replay(const std::uint8_t* ops, const Amount* requests, const std::int64_t* refs,
                       std::size_t m, ServerId* servers_out, ContainerId* containers_out);

    // Bytes the state holds: per-server structures (capacities, free amounts, levels,
    // bitsets, the free tree, counts) and per-container ones (slots, the free-slot list).
    struct MemoryUse {
        std::size_t servers = 0;
        std::size_t containers = 0;
    };
    MemoryUse memory_use() const;

    // Versioned, checksummed byte image of the whole state.
    std::vector<std::uint8_t> snapshot() const;
    // Recomputes every invariant from scratch; returns "" or a description of the
    // first broken one.
    std::string validate() const;

private:
    // "" or a description of the first of n capacity rows (named what[s][resource])
    // that is negative or takes its dimension's total capacity, starting from totals
    // (n_dims entries), over 2^63 - 1.
    std::string capacity_problem(const Amount* capacity, std::size_t n, const std::vector<Amount>& totals,
                                 const char* what) const;
    // Throws InvalidArgument unless n more containers can get a slot (kMaxSlots in all).
    void check_slot_room(std::size_t n) const;
    void check_request(const Amount* request, const char* what) const;
    void check_server(ServerId server) const;
    std::size_t level_of(std::size_t dim, Amount amount) const;
    bool fits_unlocked(std::size_t server, const Amount* request) const;
    template <typename Visit>
    void scan_candidates(const Amount* request, Visit&& visit) const;
    template <typename Visit, typename Prune>
    void scan_candidates(const Amount* request, Visit&& visit, Prune&& prune) const;
    ServerId first_fit_unlocked(const Amount* request) const;
    ServerId best_fit_unlocked(const Amount* request) const;
    ServerId choose_unlocked(PlacePolicy policy, const Amount* request) const;
    ContainerId book_unlocked(std::size_t server, const Amount* request);
    void unbook_unlocked(ContainerId container);  // exact undo of the last book
    void release_unlocked(ContainerId container);
    void release_slot(std::size_t slot);
    void check_replay_unlocked(const std::uint8_t* ops, const Amount* requests, const std::int64_t* refs,
                               std::size_t m) const;
    std::size_t live_slot(ContainerId container) const;  // throws UnknownContainer
    // The id handed out for a slot's current generation (see "Container ids" above).
    ContainerId public_id(std::size_t slot) const;
    void set_free(std::size_t server, std::size_t dim, Amount value);
    std::string fit_failure(std::size_t server, const Amount* request) const;
    std::string describe_request(const Amount* request) const;
    std::string validate_unlocked() const;
    // Free amounts, levels, bitsets and counts from capacity, slots and cordon flags.
    void rebuild_derived(const std::vector<std::uint8_t>& cordoned);
    // The remembered count (feasible_counts_), or a scan whose result is remembered.
    std::size_t count_feasible_unlocked(const Amount* request) const;
    std::size_t count_feasible_scan(const Amount* request) const;
    // Tells the free tree and the remembered counts that server's free row changed
    // from before (n_dims amounts) and its availability from was_available.
    void server_changed(std::size_t server, const Amount* before, bool was_available);
    // Sums and maxima of capacity_ and free_ from scratch (construction, restore).
    void rebuild_totals();
    // smallest becomes c when c is a positive capacity below it (0 means none yet).
    static void keep_smallest_positive(Amount& smallest, Amount c) {
        if (c > 0 && (smallest == 0 || c < smallest)) smallest = c;
    }
    // The rows free_tree_ summarises (pointers valid until the arrays grow).
    FreeTree::Rows tree_rows() const {
        return FreeTree::Rows{free_.data(), capacity_.data(), available_.words(), n_servers_, n_dims()};
    }
    // What validate() checks of the running totals: "" or the first mismatch.
    std::string validate_totals() const;

    mutable std::mutex mutex_;
    std::vector<std::string> resources_;
    std::size_t n_servers_ = 0;
    std::vector<Amount> thresholds_;  // n_dims x kLevels, strictly increasing, [0] = 0
    std::vector<Amount> capacity_;    // n_servers x n_dims
    std::vector<Amount> free_;        // n_servers x n_dims
    std::vector<std::uint8_t> level_;  // n_servers x n_dims: current level of free
    std::vector<SummarisedBitset> level_bits_;  // [dim * kLevels + l]: free level >= l
    SummarisedBitset available_;      // not cordoned
    // Skips servers that cannot fit, in bulk. Mutable: the first best fit (a const
    // query, under the lock) turns on its tracking of free shares.
    mutable FreeTree free_tree_;
    mutable FeasibleCounts feasible_counts_;  // count_feasible of recent request sizes
    std::vector<std::int64_t> count_;  // containers per server
    std::size_t n_active_ = 0;
    // Running totals (see totals()): sums per dimension, modulo 2^64.
    std::vector<std::uint64_t> free_total_;
    std::vector<std::uint64_t> capacity_total_;
    std::vector<Amount> largest_capacity_;  // per dimension
    std::vector<Amount> smallest_capacity_;  // per dimension, the smallest positive one (0: none)
    SlotTable slots_;
    std::vector<std::uint32_t> free_slots_;  // stack of reusable slots
    std::size_t n_live_ = 0;
    std::uint64_t id_key_ = 0;  // < 2^63, XORed into every id so that ids stay positive
};

// Unlocked reads for ClusterState::read (see there); valid only inside the callback.
// Requests must have been checked (no negative amounts) and servers must be in range
// unless a function says otherwise.
class ClusterState::View {
public:
    std::size_t n_servers() const { return state_.n_servers_; }
    std::size_t n_dims() const { return state_.n_dims(); }
    std::size_t n_active_servers() const { return state_.n_active_; }
    // Appends the first limit feasible servers, increasing, to out.
    void feasible(const Amount* request, std::size_t limit, std::vector<ServerId>& out) const;
    std::size_t count_feasible(const Amount* request) const { return state_.count_feasible_unlocked(request); }
    // Whether server can host request now; false when cordoned or out of range.
    bool fits(ServerId server, const Amount* request) const;
    const Amount* free_row(ServerId server) const { return &state_.free_[index(server) * n_dims()]; }
    const Amount* capacity_row(ServerId server) const { return &state_.capacity_[index(server) * n_dims()]; }
    std::int64_t containers(ServerId server) const { return state_.count_[index(server)]; }
    Amount free_total(std::size_t dim) const { return static_cast<Amount>(state_.free_total_[dim]); }
    Amount capacity_total(std::size_t dim) const { return static_cast<Amount>(state_.capacity_total_[dim]); }
    Amount largest_capacity(std::size_t dim) const { return state_.largest_capacity_[dim]; }

private:
    friend class ClusterState;
    explicit View(const ClusterState& state) : state_(state) {}
    static std::size_t index(ServerId server) { return static_cast<std::size_t>(server); }
    const ClusterState& state_;
};

template <typename F>
decltype(auto) ClusterState::read(F&& f) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return std::forward<F>(f)(View(*this));
}

}  // namespace fastplace
