#include "fastplace/cluster_state.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <random>
#include <sstream>
#include <unordered_set>
#include <utility>

namespace fastplace {

namespace {

using Lock = std::lock_guard<std::mutex>;


ContainerId make_id(std::uint32_t generation, std::size_t slot) {
    return static_cast<ContainerId>((static_cast<std::uint64_t>(generation) << 32) |
                                    static_cast<std::uint64_t>(slot));
}

std::uint64_t splitmix64(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// A fresh id key below 2^63: a per-process random seed (so that clusters of different
// processes differ too) plus a counter, through a bijective mixer (so that clusters of
// one process never share a key unless the top bit is all that differs).
std::uint64_t new_id_key() {
    static const std::uint64_t seed = [] {
        std::random_device device;
        return (static_cast<std::uint64_t>(device()) << 32) ^ static_cast<std::uint64_t>(device());
    }();
    static std::atomic<std::uint64_t> counter{0};
    const std::uint64_t n = counter.fetch_add(1, std::memory_order_relaxed);
    return splitmix64(seed + n * 0x9e3779b97f4a7c15ULL) >> 1;
}

// Largest value of an int64 sum; every total of amounts must stay at or below it.
constexpr Amount kMaxAmount = std::numeric_limits<Amount>::max();

int lowest_bit(Word w) { return __builtin_ctzll(w); }

}  // namespace

ClusterState::ClusterState(std::vector<std::string> resources, const Amount* capacity,
                           std::size_t n_servers)
    : resources_(std::move(resources)), n_servers_(n_servers), slots_(resources_.size()) {
    const std::size_t dims = resources_.size();
    if (dims < 1 || dims > kMaxDims) {
        throw InvalidArgument("resources: expected 1 to " + std::to_string(kMaxDims) +
                              " dimensions, got " + std::to_string(dims));
    }
    for (std::size_t d = 0; d < dims; ++d) {
        if (const std::string problem = name_problem(resources_[d]); !problem.empty()) {
            throw InvalidArgument("resources[" + std::to_string(d) + "] " + problem);
        }
        for (std::size_t e = 0; e < d; ++e) {
            if (resources_[e] == resources_[d]) {
                throw InvalidArgument("resources: '" + resources_[d] + "' appears twice");
            }
        }
    }
    if (const std::string problem = capacity_problem(capacity, n_servers, std::vector<Amount>(dims, 0), "capacity");
        !problem.empty()) {
        throw InvalidArgument(problem);
    }
    capacity_.assign(capacity, capacity + n_servers * dims);
    thresholds_.assign(dims * kLevels, 0);
    for (std::size_t d = 0; d < dims; ++d) {
        Amount largest = 0;
        for (std::size_t s = 0; s < n_servers; ++s) largest = std::max(largest, capacity_[s * dims + d]);
        Amount* thresholds = &thresholds_[d * kLevels];
        for (std::size_t l = 1; l < kLevels; ++l) {
            const double octaves_below = static_cast<double>(kLevels - 1 - l) / kLevelsPerOctave;
            const double scaled = std::floor(static_cast<double>(largest) * std::exp2(-octaves_below));
            // A capacity near 2^63 rounds up to 2^63 as a double, which int64 cannot hold.
            const Amount geometric = scaled >= 0x1p63 ? kMaxAmount : static_cast<Amount>(scaled);
            // Below the top level geometric < 0.85 * 2^63, so the + 1 cannot overflow.
            thresholds[l] = std::max(geometric, thresholds[l - 1] + 1);
        }
    }
    rebuild_derived(std::vector<std::uint8_t>(n_servers, 0));
    id_key_ = new_id_key();
}

std::string ClusterState::name_problem(const std::string& name) {
    if (name.empty()) return "is empty";
    if (name.size() > kMaxNameLength) {
        return "is " + std::to_string(name.size()) + " bytes long, more than " + std::to_string(kMaxNameLength);
    }
    // Valid UTF-8: well-formed sequences only (no overlong forms, surrogates or code
    // points above U+10FFFF), as Python's strict decoder requires.
    const auto* p = reinterpret_cast<const unsigned char*>(name.data());
    const std::size_t n = name.size();
    for (std::size_t i = 0; i < n;) {
        const unsigned char c = p[i];
        std::size_t extra = 0;
        unsigned char low = 0x80;
        unsigned char high = 0xbf;
        if (c < 0x80) {
            ++i;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            extra = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            extra = 2;
            if (c == 0xe0) low = 0xa0;   // overlong
            if (c == 0xed) high = 0x9f;  // surrogates
        } else if (c >= 0xf0 && c <= 0xf4) {
            extra = 3;
            if (c == 0xf0) low = 0x90;   // overlong
            if (c == 0xf4) high = 0x8f;  // above U+10FFFF
        } else {
            return "is not valid UTF-8 (byte " + std::to_string(c) + " at offset " + std::to_string(i) + ")";
        }
        if (n - i <= extra) return "is not valid UTF-8 (truncated sequence at offset " + std::to_string(i) + ")";
        for (std::size_t k = 1; k <= extra; ++k) {
            const unsigned char b = p[i + k];
            if (b < (k == 1 ? low : 0x80) || b > (k == 1 ? high : 0xbf)) {
                return "is not valid UTF-8 (byte " + std::to_string(b) + " at offset " + std::to_string(i + k) + ")";
            }
        }
        i += extra + 1;
    }
    return {};
}

std::string ClusterState::capacity_problem(const Amount* capacity, std::size_t n, const std::vector<Amount>& totals,
                                           const char* what) const {
    const std::size_t dims = n_dims();
    std::vector<Amount> sums = totals;
    for (std::size_t s = 0; s < n; ++s) {
        for (std::size_t d = 0; d < dims; ++d) {
            const Amount c = capacity[s * dims + d];
            // The field's name is formatted only for a bad value: this runs over every
            // capacity of a million-server cluster.
            const auto field = [&] {
                return std::string(what) + "[" + std::to_string(s) + "][" + resources_[d] + "] = " + std::to_string(c);
            };
            if (c < 0) return field() + " must be >= 0";
            Amount sum;
            if (__builtin_add_overflow(sums[d], c, &sum)) {
                return field() + " takes the total " + resources_[d] +
                       " capacity over 2^63 - 1 (the servers before it hold " + std::to_string(sums[d]) +
                       "): every sum of amounts must fit in int64";
            }
            sums[d] = sum;
        }
    }
    return {};
}

void ClusterState::check_slot_room(std::size_t n) const {
    const std::uint64_t room = free_slots_.size() + (kMaxSlots - slots_.size());
    if (n > room) {
        throw InvalidArgument("cannot place " + std::to_string(n) + " more containers: only " + std::to_string(room) +
                              " of the 2^32 container slots are left");
    }
}

std::size_t ClusterState::level_of(std::size_t dim, Amount amount) const {
    const Amount* thresholds = &thresholds_[dim * kLevels];
    return static_cast<std::size_t>(std::upper_bound(thresholds + 1, thresholds + kLevels, amount) -
                                    thresholds - 1);
}

void ClusterState::rebuild_derived(const std::vector<std::uint8_t>& cordoned) {
    const std::size_t dims = n_dims();
    free_ = capacity_;
    count_.assign(n_servers_, 0);
    n_live_ = 0;
    for (std::size_t slot = 0; slot < slots_.size(); ++slot) {
        const ServerId server = slots_.server(slot);
        if (server < 0) continue;
        const auto s = static_cast<std::size_t>(server);
        for (std::size_t d = 0; d < dims; ++d) free_[s * dims + d] -= slots_.amounts(slot)[d];
        ++count_[s];
        ++n_live_;
    }
    n_active_ = static_cast<std::size_t>(
        std::count_if(count_.begin(), count_.end(), [](std::int64_t c) { return c > 0; }));

    level_bits_.assign(dims * kLevels, SummarisedBitset{});
    for (auto& bits : level_bits_) bits.resize(n_servers_);
    available_ = SummarisedBitset{};
    available_.resize(n_servers_);
    level_.assign(n_servers_ * dims, 0);
    for (std::size_t s = 0; s < n_servers_; ++s) {
        if (!cordoned[s]) available_.set(s);
        for (std::size_t d = 0; d < dims; ++d) {
            // A negative free amount is caught by validate(); clamp it to level 0 here.
            const std::size_t level = level_of(d, std::max<Amount>(0, free_[s * dims + d]));
            level_[s * dims + d] = static_cast<std::uint8_t>(level);
            for (std::size_t l = 0; l <= level; ++l) level_bits_[d * kLevels + l].set(s);
        }
    }
    rebuild_totals();
    free_tree_.rebuild(tree_rows());
    feasible_counts_ = FeasibleCounts(dims);
}

void ClusterState::server_changed(std::size_t server, const Amount* before, bool was_available) {
    free_tree_.update(tree_rows(), server, before, was_available);
    feasible_counts_.server_changed(before, was_available, &free_[server * n_dims()], available_.test(server));
}

void ClusterState::set_free(std::size_t server, std::size_t dim, Amount value) {
    const std::size_t dims = n_dims();
    free_total_[dim] += static_cast<std::uint64_t>(value) - static_cast<std::uint64_t>(free_[server * dims + dim]);
    free_[server * dims + dim] = value;
    const std::size_t old_level = level_[server * dims + dim];
    const Amount* thresholds = &thresholds_[dim * kLevels];
    // Most changes stay inside the current level's band: skip the search then.
    if (value >= thresholds[old_level] && (old_level + 1 == kLevels || value < thresholds[old_level + 1])) {
        return;
    }
    const std::size_t new_level = level_of(dim, value);
    level_[server * dims + dim] = static_cast<std::uint8_t>(new_level);
    SummarisedBitset* bits = &level_bits_[dim * kLevels];
    if (new_level < old_level) {
        for (std::size_t l = new_level + 1; l <= old_level; ++l) bits[l].reset(server);
    } else {
        for (std::size_t l = old_level + 1; l <= new_level; ++l) bits[l].set(server);
    }
}

// ---- argument checks (all run before any mutation) ---------------------------------

std::string ClusterState::describe_request(const Amount* request) const {
    std::ostringstream out;
    out << '(';
    for (std::size_t d = 0; d < n_dims(); ++d) {
        if (d) out << ", ";
        out << resources_[d] << '=' << request[d];
    }
    out << ')';
    return out.str();
}

void ClusterState::check_request(const Amount* request, const char* what) const {
    for (std::size_t d = 0; d < n_dims(); ++d) {
        if (request[d] < 0) {
            throw InvalidArgument(std::string(what) + "[" + std::to_string(d) + "] (" + resources_[d] +
                                  ") = " + std::to_string(request[d]) + " must be >= 0");
        }
    }
}

void ClusterState::check_server(ServerId server) const {
    if (server < 0 || static_cast<std::size_t>(server) >= n_servers_) {
        throw InvalidArgument("server = " + std::to_string(server) + " is out of range [0, " +
                              std::to_string(n_servers_) + ")");
    }
}

std::string ClusterState::fit_failure(std::size_t server, const Amount* request) const {
    if (!available_.test(server)) return "server " + std::to_string(server) + " is cordoned";
    const std::size_t dims = n_dims();
    for (std::size_t d = 0; d < dims; ++d) {
        if (free_[server * dims + d] < request[d]) {
            return "server " + std::to_string(server) + " lacks " + resources_[d] + ": request " +
                   std::to_string(request[d]) + " > free " + std::to_string(free_[server * dims + d]);
        }
    }
    return {};
}

ContainerId ClusterState::public_id(std::size_t slot) const {
    return make_id(slots_.generation(slot), slot) ^ static_cast<ContainerId>(id_key_);
}

std::size_t ClusterState::live_slot(ContainerId container) const {
    if (container >= 0) {
        // The key is below 2^63, so the internal id is >= 0 too and its generation fits.
        const ContainerId internal = container ^ static_cast<ContainerId>(id_key_);
        const auto slot = static_cast<std::size_t>(internal & 0xffffffffLL);
        const auto generation = static_cast<std::uint32_t>(internal >> 32);
        if (slot < slots_.size() && slots_.server(slot) >= 0 && slots_.generation(slot) == generation) {
            return slot;
        }
    }
    throw UnknownContainer("container " + std::to_string(container) +
                           " is not placed (never placed, already released, or an id of another cluster)");
}

// ---- queries ------------------------------------------------------------------------

std::size_t ClusterState::n_servers() const {
    Lock lock(mutex_);
    return n_servers_;
}

std::size_t ClusterState::n_containers() const {
    Lock lock(mutex_);
    return n_live_;
}

std::size_t ClusterState::n_active_servers() const {
    Lock lock(mutex_);
    return n_active_;
}

std::vector<Amount> ClusterState::free_matrix() const {
    Lock lock(mutex_);
    return free_;
}

std::vector<Amount> ClusterState::capacity_matrix() const {
    Lock lock(mutex_);
    return capacity_;
}

std::vector<std::int64_t> ClusterState::container_counts() const {
    Lock lock(mutex_);
    return count_;
}

void ClusterState::server_rows(const ServerId* servers, std::size_t k, Amount* free, Amount* capacity,
                               std::int64_t* counts) const {
    const std::size_t dims = n_dims();
    Lock lock(mutex_);
    for (std::size_t i = 0; i < k; ++i) check_server(servers[i]);
    for (std::size_t i = 0; i < k; ++i) {
        const auto s = static_cast<std::size_t>(servers[i]);
        std::copy_n(&free_[s * dims], dims, &free[i * dims]);
        std::copy_n(&capacity_[s * dims], dims, &capacity[i * dims]);
        counts[i] = count_[s];
    }
}

bool ClusterState::fits_unlocked(std::size_t server, const Amount* request) const {
    const Amount* free = &free_[server * n_dims()];
    for (std::size_t d = 0; d < n_dims(); ++d) {
        if (free[d] < request[d]) return false;
    }
    return true;
}

// Visits, in increasing order, every server that is available and fits the request,
// until visit returns true. The free tree skips every 4,096-server block (and larger
// run) whose largest free amounts fall short in some dimension, or that prune vetoes.
// Inside a block, the summaries of one level bitset per dimension and of the
// available bitset name the 64-server words holding a server at or above the
// request's level; a word whose tree node falls short (its servers sit in the
// request's boundary band and all miss) is skipped; in the others, the AND of the
// bitsets drops servers below the request's level and the rest get an exact check.
template <typename Visit, typename Prune>
void ClusterState::scan_candidates(const Amount* request, Visit&& visit, Prune&& prune) const {
    const std::size_t dims = n_dims();
    const SummarisedBitset* sets[kMaxDims];
    for (std::size_t d = 0; d < dims; ++d) sets[d] = &level_bits_[d * kLevels + level_of(d, request[d])];
    const Word* avail_words = available_.words();
    const Word* avail_summary = available_.summary();
    const bool word_nodes = free_tree_.n_levels() > FreeTree::kWordLevel;
    free_tree_.walk(
        request,
        [&](std::size_t block) {
            Word word_mask = avail_summary[block];
            for (std::size_t d = 0; d < dims && word_mask; ++d) word_mask &= sets[d]->summary()[block];
            while (word_mask) {
                const std::size_t w = block * kWordBits + static_cast<std::size_t>(lowest_bit(word_mask));
                word_mask &= word_mask - 1;
                if (word_nodes && (!free_tree_.passes(FreeTree::kWordLevel, w, request) ||
                                   prune(FreeTree::kWordLevel, w))) {
                    continue;
                }
                Word bits = avail_words[w];
                for (std::size_t d = 0; d < dims; ++d) bits &= sets[d]->words()[w];
                while (bits) {
                    const std::size_t server = w * kWordBits + static_cast<std::size_t>(lowest_bit(bits));
                    bits &= bits - 1;
                    if (fits_unlocked(server, request) && visit(server)) return true;
                }
            }
            return false;
        },
        prune);
}

template <typename Visit>
void ClusterState::scan_candidates(const Amount* request, Visit&& visit) const {
    scan_candidates(request, std::forward<Visit>(visit), [](std::size_t, std::size_t) { return false; });
}

ServerId ClusterState::first_fit_unlocked(const Amount* request) const {
    ServerId found = -1;
    scan_candidates(request, [&](std::size_t server) {
        found = static_cast<ServerId>(server);
        return true;
    });
    return found;
}

ServerId ClusterState::best_fit_unlocked(const Amount* request) const {
    const std::size_t dims = n_dims();
    if (!free_tree_.tracks_shares()) free_tree_.track_shares(tree_rows());
    ServerId best = -1;
    double best_score = std::numeric_limits<double>::infinity();
    // A server's score is its free share (sum of free/capacity) minus the request's
    // share of its capacities, which is at most request_share (the request over the
    // smallest capacities); a node's smallest free share minus request_share thus
    // bounds the score of every server below it.
    double request_share = 0.0;
    for (std::size_t d = 0; d < dims; ++d) {
        if (smallest_capacity_[d] > 0) {
            request_share += static_cast<double>(request[d]) / static_cast<double>(smallest_capacity_[d]);
        }
    }
    // The scan replaces the best only with a score below this (ties go to the lower
    // index); the threshold never rises, so a node whose bound is at or above it now
    // holds no server that would ever replace the best, and is skipped. The bound
    // keeps a margin far above the rounding of a few float operations. The tie band is
    // relative: a score sums at most 8 non-negative, correctly rounded shares, so equal
    // scores round within 8 ulps of each other, at any magnitude; an absolute band
    // would merge distinct scores near 0 (1 / 2^62 is a real difference).
    const auto threshold = [&] { return best_score * (1.0 - 1e-14); };
    const auto prune = [&](std::size_t level, std::size_t node) {
        if (best < 0) return false;
        const double limit = threshold();
        if (limit <= 0.0) return true;  // scores of feasible servers are >= 0
        const double bound = free_tree_.min_share(level, node) - request_share;
        return bound - 1e-9 * std::max(1.0, std::fabs(bound)) >= limit;
    };
    scan_candidates(
        request,
        [&](std::size_t server) {
            // Remaining free space after placing, each dimension as a share of the
            // server's capacity (a float is fine here: feasibility is already decided).
            double score = 0.0;
            for (std::size_t d = 0; d < dims; ++d) {
                const Amount cap = capacity_[server * dims + d];
                if (cap > 0) {
                    score += static_cast<double>(free_[server * dims + d] - request[d]) / static_cast<double>(cap);
                }
            }
            // Scores within a few ulps (relative) count as ties (sums of shares such as
            // 1/10 + 2/10 and 3/10 + 0/10 round differently), which go to the lowest index.
            if (best < 0 || score < threshold()) {
                best_score = score;
                best = static_cast<ServerId>(server);
            }
            return false;
        },
        prune);
    return best;
}

ServerId ClusterState::choose_unlocked(PlacePolicy policy, const Amount* request) const {
    return policy == PlacePolicy::best_fit ? best_fit_unlocked(request) : first_fit_unlocked(request);
}

ServerId ClusterState::first_fit(const Amount* request) const {
    check_request(request, "request");
    Lock lock(mutex_);
    return first_fit_unlocked(request);
}

ServerId ClusterState::best_fit(const Amount* request) const {
    check_request(request, "request");
    Lock lock(mutex_);
    return best_fit_unlocked(request);
}

std::vector<ServerId> ClusterState::feasible(const Amount* request, std::size_t limit) const {
    check_request(request, "request");
    Lock lock(mutex_);
    std::vector<ServerId> out;
    if (limit == 0) return out;
    scan_candidates(request, [&](std::size_t server) {
        out.push_back(static_cast<ServerId>(server));
        return out.size() >= limit;
    });
    return out;
}

bool ClusterState::fits(ServerId server, const Amount* request) const {
    check_request(request, "request");
    Lock lock(mutex_);
    check_server(server);
    const auto s = static_cast<std::size_t>(server);
    return available_.test(s) && fits_unlocked(s, request);
}

ServerId ClusterState::container_server(ContainerId container, Amount* amounts) const {
    Lock lock(mutex_);
    const std::size_t slot = live_slot(container);
    std::copy_n(slots_.amounts(slot), n_dims(), amounts);
    return slots_.server(slot);
}

bool ClusterState::is_cordoned(ServerId server) const {
    Lock lock(mutex_);
    check_server(server);
    return !available_.test(static_cast<std::size_t>(server));
}

// ---- mutations ----------------------------------------------------------------------

ContainerId ClusterState::book_unlocked(std::size_t server, const Amount* request) {
    const std::size_t dims = n_dims();
    std::size_t slot;
    if (!free_slots_.empty()) {
        slot = free_slots_.back();
        free_slots_.pop_back();
    } else {
        // Callers booking several containers check the room up front (check_slot_room);
        // this is the last line for single placements, before anything has changed.
        if (slots_.size() >= kMaxSlots) check_slot_room(1);
        slot = slots_.append();
    }
    slots_.set_server(slot, static_cast<ServerId>(server));
    Amount* amounts = slots_.amounts(slot);
    // before is copied inside the loop: a separate std::copy_n of a runtime-sized row
    // becomes a memmove call, a tenth of a placement's time.
    Amount before[kMaxDims];
    for (std::size_t d = 0; d < dims; ++d) {
        before[d] = free_[server * dims + d];
        amounts[d] = request[d];
        set_free(server, d, before[d] - request[d]);
    }
    server_changed(server, before, available_.test(server));
    if (count_[server]++ == 0) ++n_active_;
    ++n_live_;
    return public_id(slot);
}

void ClusterState::unbook_unlocked(ContainerId container) {
    // Exact inverse of the most recent book_unlocked: the id was never handed out, so
    // the generation stays and the slot goes back on the free stack (the caller pops
    // it off again if book_unlocked had appended it).
    const std::size_t dims = n_dims();
    const auto slot = static_cast<std::size_t>((container ^ static_cast<ContainerId>(id_key_)) & 0xffffffffLL);
    const auto server = static_cast<std::size_t>(slots_.server(slot));
    Amount* amounts = slots_.amounts(slot);
    Amount before[kMaxDims];
    for (std::size_t d = 0; d < dims; ++d) {
        before[d] = free_[server * dims + d];
        set_free(server, d, before[d] + amounts[d]);
        amounts[d] = 0;
    }
    server_changed(server, before, available_.test(server));
    slots_.set_server(slot, -1);
    if (--count_[server] == 0) --n_active_;
    --n_live_;
    free_slots_.push_back(static_cast<std::uint32_t>(slot));
}

void ClusterState::release_unlocked(ContainerId container) { release_slot(live_slot(container)); }

void ClusterState::release_slot(std::size_t slot) {
    const std::size_t dims = n_dims();
    const auto server = static_cast<std::size_t>(slots_.server(slot));
    Amount* amounts = slots_.amounts(slot);
    Amount before[kMaxDims];
    for (std::size_t d = 0; d < dims; ++d) {
        before[d] = free_[server * dims + d];
        set_free(server, d, before[d] + amounts[d]);
        amounts[d] = 0;
    }
    server_changed(server, before, available_.test(server));
    slots_.set_server(slot, -1);
    // A slot whose generation is exhausted is retired, never reused: its next id would
    // repeat one handed out before (ids stay unique for the state's lifetime).
    if (slots_.generation(slot) < kGenerationMask) {
        slots_.set_generation(slot, slots_.generation(slot) + 1);
        free_slots_.push_back(static_cast<std::uint32_t>(slot));
    }
    if (--count_[server] == 0) --n_active_;
    --n_live_;
}

ContainerId ClusterState::place(ServerId server, const Amount* request) {
    check_request(request, "request");
    Lock lock(mutex_);
    check_server(server);
    const auto s = static_cast<std::size_t>(server);
    if (!available_.test(s) || !fits_unlocked(s, request)) {
        throw InvalidArgument("cannot place " + describe_request(request) + ": " + fit_failure(s, request));
    }
    return book_unlocked(s, request);
}

Placement ClusterState::place_with(PlacePolicy policy, const Amount* request) {
    check_request(request, "request");
    Lock lock(mutex_);
    const ServerId server = choose_unlocked(policy, request);
    if (server < 0) return Placement{-1, -1};
    return Placement{book_unlocked(static_cast<std::size_t>(server), request), server};
}

std::vector<Placement> ClusterState::place_gang(const Amount* requests, std::size_t n,
                                                PlacePolicy policy) {
    const std::size_t dims = n_dims();
    for (std::size_t i = 0; i < n; ++i) {
        // The field name is formatted only for a bad row: a gang is placed in ~1 us.
        if (std::any_of(&requests[i * dims], &requests[(i + 1) * dims], [](Amount a) { return a < 0; })) {
            check_request(&requests[i * dims], ("requests[" + std::to_string(i) + "]").c_str());
        }
    }
    Lock lock(mutex_);
    check_slot_room(n);
    std::vector<Placement> placed;
    placed.reserve(n);
    // Slots appended (rather than reused) are popped again on rollback, so that a
    // failed gang leaves the slot table, and hence the snapshot, exactly as it was.
    std::vector<bool> appended;
    appended.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        const Amount* request = &requests[i * dims];
        const ServerId server = choose_unlocked(policy, request);
        if (server < 0) {
            for (std::size_t k = placed.size(); k-- > 0;) {
                unbook_unlocked(placed[k].container);
                if (appended[k]) {
                    free_slots_.pop_back();
                    slots_.pop_back();
                }
            }
            throw InvalidArgument("gang of " + std::to_string(n) + " partitions does not fit: partition " +
                                  std::to_string(i) + " " + describe_request(request) +
                                  " found no server once " + std::to_string(i) +
                                  " partitions were placed; nothing was placed");
        }
        const bool was_appended = free_slots_.empty();
        placed.push_back(Placement{book_unlocked(static_cast<std::size_t>(server), request), server});
        appended.push_back(was_appended);
    }
    return placed;
}

void ClusterState::release(ContainerId container) {
    Lock lock(mutex_);
    release_unlocked(container);
}

ServerId ClusterState::add_servers(const Amount* capacity, std::size_t n) {
    const std::size_t dims = n_dims();
    Lock lock(mutex_);
    // The totals are within int64 (the limits on amounts), so they convert exactly.
    const std::vector<Amount> totals(capacity_total_.begin(), capacity_total_.end());
    if (const std::string problem = capacity_problem(capacity, n, totals, "capacity"); !problem.empty()) {
        throw InvalidArgument(problem);
    }
    const std::size_t first = n_servers_;
    n_servers_ += n;
    capacity_.insert(capacity_.end(), capacity, capacity + n * dims);
    free_.insert(free_.end(), capacity, capacity + n * dims);
    level_.resize(n_servers_ * dims, 0);
    count_.resize(n_servers_, 0);
    for (auto& bits : level_bits_) bits.resize(n_servers_);
    available_.resize(n_servers_);
    for (std::size_t s = first; s < n_servers_; ++s) {
        for (std::size_t d = 0; d < dims; ++d) {
            const Amount c = capacity_[s * dims + d];
            free_total_[d] += static_cast<std::uint64_t>(c);
            capacity_total_[d] += static_cast<std::uint64_t>(c);
            largest_capacity_[d] = std::max(largest_capacity_[d], c);
            keep_smallest_positive(smallest_capacity_[d], c);
        }
        available_.set(s);
        for (std::size_t d = 0; d < dims; ++d) {
            const std::size_t level = level_of(d, free_[s * dims + d]);
            level_[s * dims + d] = static_cast<std::uint8_t>(level);
            for (std::size_t l = 0; l <= level; ++l) level_bits_[d * kLevels + l].set(s);
        }
    }
    free_tree_.rebuild(tree_rows());  // O(n): adding servers is rare
    feasible_counts_.clear();
    return static_cast<ServerId>(first);
}

void ClusterState::cordon(ServerId server) {
    Lock lock(mutex_);
    check_server(server);
    const auto s = static_cast<std::size_t>(server);
    const bool was_available = available_.test(s);
    available_.reset(s);
    server_changed(s, &free_[s * n_dims()], was_available);
}

void ClusterState::uncordon(ServerId server) {
    Lock lock(mutex_);
    check_server(server);
    const auto s = static_cast<std::size_t>(server);
    const bool was_available = available_.test(s);
    available_.set(s);
    server_changed(s, &free_[s * n_dims()], was_available);
}

ReplayStats ClusterState::replay(const std::uint8_t* ops, const Amount* requests,
                                 const std::int64_t* refs, std::size_t m, ServerId* servers_out,
                                 ContainerId* containers_out) {
    const std::size_t dims = n_dims();
    Lock lock(mutex_);
    check_replay_unlocked(ops, requests, refs, m);
    ReplayStats stats;
    // Releases hit random containers, so their slots are cache misses; fetch them
    // a few events ahead (the ids of earlier placements are known by then).
    constexpr std::size_t kAhead = 8;
    const auto prefetch_release = [&](std::size_t j, std::size_t now) {
        if (j >= m) return;
        const auto op = static_cast<ReplayOp>(ops[j]);
        const auto key = static_cast<ContainerId>(id_key_);
        if (op == ReplayOp::release_event && static_cast<std::size_t>(refs[j]) < now) {
            const ContainerId id = containers_out[refs[j]];
            if (id >= 0) slots_.prefetch(static_cast<std::size_t>((id ^ key) & 0xffffffffLL));
        } else if (op == ReplayOp::release_container) {
            slots_.prefetch(static_cast<std::size_t>((refs[j] ^ key) & 0xffffffffLL));
        }
    };
    for (std::size_t i = 0; i < m; ++i) {
        if (i + 2 * kAhead < m && static_cast<ReplayOp>(ops[i + 2 * kAhead]) == ReplayOp::release_event) {
            __builtin_prefetch(&containers_out[refs[i + 2 * kAhead]]);
        }
        prefetch_release(i + kAhead, i);
        const auto op = static_cast<ReplayOp>(ops[i]);
        if (op == ReplayOp::place_first_fit || op == ReplayOp::place_best_fit) {
            const Amount* request = &requests[i * dims];
            const ServerId server = op == ReplayOp::place_first_fit ? first_fit_unlocked(request)
                                                                    : best_fit_unlocked(request);
            servers_out[i] = server;
            if (server >= 0) {
                containers_out[i] = book_unlocked(static_cast<std::size_t>(server), request);
                ++stats.placed;
            } else {
                containers_out[i] = -1;
                ++stats.unplaced;
            }
            continue;
        }
        const ContainerId container =
            op == ReplayOp::release_event ? containers_out[refs[i]] : refs[i];
        containers_out[i] = container;
        if (container < 0) {  // releases a placement that found no server
            servers_out[i] = -1;
            continue;
        }
        const std::size_t slot = live_slot(container);
        servers_out[i] = slots_.server(slot);
        release_slot(slot);
        ++stats.released;
    }
    return stats;
}

void ClusterState::check_replay_unlocked(const std::uint8_t* ops, const Amount* requests,
                                         const std::int64_t* refs, std::size_t m) const {
    const std::size_t dims = n_dims();
    const auto where = [](std::size_t i) { return "events[" + std::to_string(i) + "]"; };
    std::vector<std::uint8_t> released(m, 0);
    std::unordered_set<ContainerId> released_ids;
    std::size_t places = 0;
    for (std::size_t i = 0; i < m; ++i) {
        switch (static_cast<ReplayOp>(ops[i])) {
            case ReplayOp::place_first_fit:
            case ReplayOp::place_best_fit:
                ++places;
                for (std::size_t d = 0; d < dims; ++d) {
                    if (requests[i * dims + d] < 0) check_request(&requests[i * dims], (where(i) + ".request").c_str());
                }
                break;
            case ReplayOp::release_event: {
                const std::int64_t ref = refs[i];
                if (ref < 0 || static_cast<std::size_t>(ref) >= i) {
                    throw InvalidArgument(where(i) + ".ref = " + std::to_string(ref) + " must name an earlier event");
                }
                const auto ref_op = static_cast<ReplayOp>(ops[ref]);
                if (ref_op != ReplayOp::place_first_fit && ref_op != ReplayOp::place_best_fit) {
                    throw InvalidArgument(where(i) + ".ref = " + std::to_string(ref) + " names an event that places nothing");
                }
                if (released[static_cast<std::size_t>(ref)]++) {
                    throw InvalidArgument(where(i) + ".ref = " + std::to_string(ref) +
                                          " releases that event's container a second time");
                }
                break;
            }
            case ReplayOp::release_container:
                live_slot(refs[i]);
                if (!released_ids.insert(refs[i]).second) {
                    throw InvalidArgument(where(i) + ".ref: container " + std::to_string(refs[i]) + " is released twice");
                }
                break;
            default:
                throw InvalidArgument(where(i) + ".op = " + std::to_string(ops[i]) + " is not an event code (0-3)");
        }
    }
    // Releases may free slots for later places, but counting on that would need a dry
    // run; 2^32 slots are far more than any stream holds at once.
    check_slot_room(places);
}

// ---- running totals, feasible counts and the locked read view -------------------------

void ClusterState::rebuild_totals() {
    const std::size_t dims = n_dims();
    free_total_.assign(dims, 0);
    capacity_total_.assign(dims, 0);
    largest_capacity_.assign(dims, 0);
    smallest_capacity_.assign(dims, 0);
    for (std::size_t s = 0; s < n_servers_; ++s) {
        for (std::size_t d = 0; d < dims; ++d) {
            const Amount c = capacity_[s * dims + d];
            free_total_[d] += static_cast<std::uint64_t>(free_[s * dims + d]);
            capacity_total_[d] += static_cast<std::uint64_t>(c);
            largest_capacity_[d] = std::max(largest_capacity_[d], c);
            keep_smallest_positive(smallest_capacity_[d], c);
        }
    }
}

void ClusterState::totals(Amount* free_total, Amount* capacity_total) const {
    Lock lock(mutex_);
    for (std::size_t d = 0; d < n_dims(); ++d) {
        free_total[d] = static_cast<Amount>(free_total_[d]);
        capacity_total[d] = static_cast<Amount>(capacity_total_[d]);
    }
}

Amount ClusterState::largest_capacity(std::size_t dim) const {
    if (dim >= n_dims()) {
        throw InvalidArgument("dim = " + std::to_string(dim) + " is out of range [0, " + std::to_string(n_dims()) + ")");
    }
    Lock lock(mutex_);
    return largest_capacity_[dim];
}

// Servers at a level above the request's own in every dimension have free amounts of
// at least the next threshold, which exceeds the request: they fit without a check.
// Only the band on the request's own level (in some dimension) is checked exactly.
std::size_t ClusterState::count_feasible_unlocked(const Amount* request) const {
    std::size_t count = 0;
    if (feasible_counts_.find(request, count)) return count;
    count = count_feasible_scan(request);
    feasible_counts_.remember(request, count);
    return count;
}

std::size_t ClusterState::count_feasible_scan(const Amount* request) const {
    const std::size_t dims = n_dims();
    const Word* at[kMaxDims];
    const Word* above[kMaxDims];  // nullptr: the request is on the top level, no server is surely above
    const Word* at_summary[kMaxDims];
    for (std::size_t d = 0; d < dims; ++d) {
        const std::size_t level = level_of(d, request[d]);
        at[d] = level_bits_[d * kLevels + level].words();
        at_summary[d] = level_bits_[d * kLevels + level].summary();
        above[d] = level + 1 < kLevels ? level_bits_[d * kLevels + level + 1].words() : nullptr;
    }
    const Word* avail_words = available_.words();
    const Word* avail_summary = available_.summary();
    std::size_t count = 0;
    for (std::size_t sw = 0; sw < available_.n_summary_words(); ++sw) {
        Word word_mask = avail_summary[sw];
        for (std::size_t d = 0; d < dims && word_mask; ++d) word_mask &= at_summary[d][sw];
        while (word_mask) {
            const std::size_t w = sw * kWordBits + static_cast<std::size_t>(lowest_bit(word_mask));
            word_mask &= word_mask - 1;
            Word bits = avail_words[w];
            for (std::size_t d = 0; d < dims; ++d) bits &= at[d][w];
            Word sure = bits;
            for (std::size_t d = 0; d < dims; ++d) sure &= above[d] ? above[d][w] : Word{0};
            count += static_cast<std::size_t>(__builtin_popcountll(sure));
            Word band = bits & ~sure;
            while (band) {
                const std::size_t server = w * kWordBits + static_cast<std::size_t>(lowest_bit(band));
                band &= band - 1;
                count += fits_unlocked(server, request) ? 1 : 0;
            }
        }
    }
    return count;
}

std::size_t ClusterState::count_feasible(const Amount* request) const {
    check_request(request, "request");
    Lock lock(mutex_);
    return count_feasible_unlocked(request);
}

void ClusterState::View::feasible(const Amount* request, std::size_t limit, std::vector<ServerId>& out) const {
    if (limit == 0) return;
    std::size_t found = 0;
    state_.scan_candidates(request, [&](std::size_t server) {
        out.push_back(static_cast<ServerId>(server));
        return ++found >= limit;
    });
}

bool ClusterState::View::fits(ServerId server, const Amount* request) const {
    if (server < 0 || static_cast<std::size_t>(server) >= state_.n_servers_) return false;
    const auto s = static_cast<std::size_t>(server);
    return state_.available_.test(s) && state_.fits_unlocked(s, request);
}

ClusterState::MemoryUse ClusterState::memory_use() const {
    Lock lock(mutex_);
    const auto bytes = [](const auto& v) { return v.capacity() * sizeof(v[0]); };
    const auto bitset_bytes = [](const SummarisedBitset& b) {
        return (b.n_words() + b.n_summary_words()) * sizeof(Word);
    };
    MemoryUse use;
    use.servers = bytes(capacity_) + bytes(free_) + bytes(level_) + bytes(count_) + bitset_bytes(available_) +
                  free_tree_.memory_bytes() + bytes(thresholds_);
    for (const SummarisedBitset& b : level_bits_) use.servers += bitset_bytes(b);
    use.containers = slots_.memory_bytes() + bytes(free_slots_);
    return use;
}

std::string ClusterState::validate() const {
    Lock lock(mutex_);
    return validate_unlocked();
}

}  // namespace fastplace
