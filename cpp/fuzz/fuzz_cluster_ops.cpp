// Fuzz target: the input decodes into a cluster and a sequence of operations on it
// (place, place_with, place_gang, release, cordon, add_servers, the queries, replay,
// snapshot/restore), each checked against a plain model kept here: capacities, exact
// (128-bit) free amounts, cordon flags and the live containers. First fit must be the
// plain scan's answer, best fit a feasible server of least score, totals exact, ids
// never reused, ids of another cluster never found; a call that throws must leave the
// snapshot bytes as they were. Capacities range over all of int64: a construction or
// add_servers whose per-resource sum passes 2^63 - 1 must throw (and change nothing),
// one that reaches it exactly must succeed.
//
// Input format (read front to back, 0 past the end; see Input in fuzz_common.hpp):
//   u8 dims | u8 servers | u8 n_shapes, n_shapes capacity rows | u8 stride (>= 248:
//   first try bad constructions; else stride / 5 % 8 == 7: the last server takes
//   what is left below 2^63 - 1 in every resource, so the totals reach it exactly)
//   then per operation: u8 op code, then its arguments (see run_op).
// cpp/fuzz/make_corpus.cpp writes seeds in this format.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "fastplace/cluster_state.hpp"
#include "fuzz_common.hpp"

using namespace fastplace;
using namespace fastplace::fuzz;

namespace {

using Int128 = __int128;

constexpr std::size_t kMaxOps = 256;
// validate() walks dims x 64 level bitsets, each at least a 4,096-server summary
// block: ~1 ms under the fuzzer's instrumentation whatever the cluster size, the
// model checks of a small cluster ~20 us. It runs after every kValidateEvery-th op and
// at the end (and inside every restore); the model is compared after every op.
constexpr std::size_t kValidateEvery = 32;
// A cluster past the free tree's 4,096-server blocks: a snapshot, restore or validate
// costs ~10 ms there under the instrumentation, so such inputs are rare (one header
// byte value), have at most two dimensions, run fewer ops and are validated at the
// end only.
constexpr std::size_t kLargeCluster = 4100;
constexpr std::size_t kMaxOpsLarge = 12;
constexpr std::size_t kMaxServers = 4400;
constexpr Amount kMaxAmount = std::numeric_limits<Amount>::max();

struct Live {
    ServerId server;
    std::vector<Amount> amounts;
};

// The obviously correct cluster.
struct Model {
    std::size_t dims = 0;
    std::vector<Amount> capacity;  // n x dims
    std::vector<Int128> free;      // n x dims, exact
    std::vector<std::uint8_t> cordoned;
    std::unordered_map<ContainerId, Live> live;
    std::unordered_set<ContainerId> issued;  // every id ever handed out

    std::size_t n() const { return cordoned.size(); }
    bool in_range(ServerId s) const { return s >= 0 && static_cast<std::size_t>(s) < n(); }
    bool fits(ServerId s, const Amount* request) const {
        if (!in_range(s) || cordoned[static_cast<std::size_t>(s)]) return false;
        for (std::size_t d = 0; d < dims; ++d) {
            if (free[static_cast<std::size_t>(s) * dims + d] < request[d]) return false;
        }
        return true;
    }
    ServerId first_fit(const Amount* request) const {
        for (std::size_t s = 0; s < n(); ++s) {
            if (fits(static_cast<ServerId>(s), request)) return static_cast<ServerId>(s);
        }
        return -1;
    }
    // The best-fit score: free share left after placing, summed over dimensions.
    double score(ServerId s, const Amount* request) const {
        double total = 0.0;
        for (std::size_t d = 0; d < dims; ++d) {
            const std::size_t i = static_cast<std::size_t>(s) * dims + d;
            if (capacity[i] > 0) {
                total += static_cast<double>(static_cast<Amount>(free[i] - request[d])) /
                         static_cast<double>(capacity[i]);
            }
        }
        return total;
    }
    void take(ServerId s, const Amount* request) {
        for (std::size_t d = 0; d < dims; ++d) free[static_cast<std::size_t>(s) * dims + d] -= request[d];
    }
    void book(ContainerId id, ServerId s, const Amount* request) {
        FUZZ_CHECK(issued.insert(id).second, "container id " + std::to_string(id) + " handed out twice");
        FUZZ_CHECK(id >= 0, "negative container id");
        live[id] = Live{s, std::vector<Amount>(request, request + dims)};
        take(s, request);
    }
    // The exact capacity total of dimension d with k rows added.
    Int128 total(std::size_t d, const Amount* rows = nullptr, std::size_t k = 0) const {
        Int128 sum = 0;
        for (std::size_t i = d; i < capacity.size(); i += dims) sum += capacity[i];
        for (std::size_t i = 0; i < k; ++i) sum += rows[i * dims + d];
        return sum;
    }
    // Whether the per-dimension capacity sums stay within int64 with rows added.
    bool sums_fit(const Amount* rows, std::size_t k) const {
        for (std::size_t d = 0; d < dims; ++d) {
            if (total(d, rows, k) > kMaxAmount) return false;
        }
        return true;
    }
    void release(ContainerId id) {
        const Live& c = live.at(id);
        for (std::size_t d = 0; d < dims; ++d) free[static_cast<std::size_t>(c.server) * dims + d] += c.amounts[d];
        live.erase(id);
    }
    void add_server(const Amount* row) {
        capacity.insert(capacity.end(), row, row + dims);
        free.insert(free.end(), row, row + dims);
        cordoned.push_back(0);
    }
};

class Run {
public:
    Run(const std::uint8_t* data, std::size_t size) : in_(data, size) {}

    int go() {
        model_.dims = 1 + in_.u8() % kMaxDims;
        const std::uint8_t servers = in_.u8();
        const std::size_t n = servers == 255 ? kLargeCluster : servers % 70;
        if (n == kLargeCluster) model_.dims = 1 + (model_.dims - 1) % 2;  // validate is O(n x dims x 64)
        const std::size_t n_shapes = 1 + in_.u8() % 4;
        std::vector<Amount> shapes(n_shapes * dims());
        for (Amount& a : shapes) a = amount();
        const std::uint8_t stride_byte = in_.u8();
        const std::size_t stride = 1 + stride_byte % 5;
        std::vector<Amount> capacity;
        for (std::size_t s = 0; s < n; ++s) {
            const std::size_t shape = (s * stride + s / 7) % n_shapes;
            capacity.insert(capacity.end(), &shapes[shape * dims()], &shapes[(shape + 1) * dims()]);
        }
        std::vector<std::string> names;
        for (std::size_t d = 0; d < dims(); ++d) names.push_back("r" + std::to_string(d));
        if (stride_byte >= 248) {
            check_bad_constructions(stride_byte, names, capacity, n);
        } else if (stride_byte / 5 % 8 == 7 && n > 0) {
            fill_to_limit(capacity.data(), n);
        }
        for (std::size_t s = 0; s < n; ++s) model_.add_server(&capacity[s * dims()]);
        // The core's contract: capacities whose per-resource sum passes 2^63 - 1 are
        // refused; up to that limit construction succeeds.
        try {
            state_ = std::make_unique<ClusterState>(names, capacity.data(), n);
        } catch (const InvalidArgument&) {
            FUZZ_CHECK(!model_.sums_fit(nullptr, 0), "construction refused capacities whose sums fit in int64");
            return 0;
        }
        FUZZ_CHECK(model_.sums_fit(nullptr, 0), "construction took capacities whose sum passes 2^63 - 1");
        names_ = names;
        check_state(n != kLargeCluster);
        const std::size_t max_ops = n == kLargeCluster ? kMaxOpsLarge : kMaxOps;
        for (std::size_t op = 0; op < max_ops && !in_.empty(); ++op) {
            run_op();
            check_state(n != kLargeCluster && op % kValidateEvery == kValidateEvery - 1);
        }
        check_state(true);
        return 0;
    }

private:
    std::size_t dims() const { return model_.dims; }

    // Sets the last of k rows so that the model's capacity plus the k rows sums to
    // exactly 2^63 - 1 in every dimension (a dimension already past it is left alone).
    void fill_to_limit(Amount* rows, std::size_t k) const {
        for (std::size_t d = 0; d < dims(); ++d) {
            Amount& last = rows[(k - 1) * dims() + d];
            const Int128 others = model_.total(d, rows, k) - last;
            if (others <= kMaxAmount) last = static_cast<Amount>(kMaxAmount - others);
        }
    }

    // Bad construction arguments must throw InvalidArgument (there is no state to keep).
    void check_bad_constructions(std::uint8_t kind, const std::vector<std::string>& names,
                                 const std::vector<Amount>& capacity, std::size_t n) {
        std::vector<std::string> bad_names = names;
        std::vector<Amount> bad_capacity = capacity;
        switch (kind % 4) {
            case 0: bad_names.clear(); break;
            case 1: bad_names.assign(kMaxDims + 1, "x"); break;
            case 2: bad_names.back() = bad_names.front(); break;  // repeated (or 1 dim: fine)
            default:
                if (!bad_capacity.empty()) bad_capacity[in_.u8() % bad_capacity.size()] = -1 - in_.u8();
        }
        const bool bad = bad_names != names || bad_capacity != capacity;
        if (!bad) return;
        // Dimension counts other than the names' change the row width: size for the widest.
        bad_capacity.resize(std::max(bad_capacity.size(), n * bad_names.size()), 0);
        FUZZ_CHECK(throws<InvalidArgument>([&] { ClusterState(bad_names, bad_capacity.data(), n); }),
                   "construction with bad names or a negative capacity did not throw");
    }

    // Amounts of several scales: small, 16-bit, near the limit, powers of two, any.
    Amount amount() {
        const std::uint8_t kind = in_.u8();
        switch (kind % 5) {
            case 0: return kind / 5 % 16;
            case 1: return in_.get<std::uint16_t>();
            case 2: return kMaxAmount - in_.u8();
            case 3: return Amount{1} << (in_.u8() % 63);
            default: return static_cast<Amount>(in_.get<std::uint64_t>() >> 1) % kMaxAmount;
        }
    }

    // A server id: mostly in range, sometimes -1 or one past the end.
    ServerId server() {
        const auto v = in_.get<std::uint16_t>();
        return static_cast<ServerId>(v % (model_.n() + 2)) - 1;
    }

    // A request: its own amounts, or a server's free or capacity row (exact fits and
    // misses by one are where off-by-one bugs live), rarely with a negative amount.
    std::vector<Amount> request() {
        std::vector<Amount> r(dims());
        const std::uint8_t kind = in_.u8();
        const ServerId s = model_.n() ? static_cast<ServerId>(in_.get<std::uint16_t>() % model_.n()) : -1;
        const auto row = [&](bool free_row) {
            for (std::size_t d = 0; d < dims(); ++d) {
                const std::size_t i = static_cast<std::size_t>(s) * dims() + d;
                r[d] = free_row ? static_cast<Amount>(model_.free[i]) : model_.capacity[i];
            }
        };
        switch (kind % 8) {
            case 0:
            case 1:
                if (s >= 0) row(true);
                break;
            case 2:
                if (s >= 0) {
                    row(true);
                    Amount& a = r[kind / 8 % dims()];
                    if (a < std::numeric_limits<Amount>::max()) ++a;
                }
                break;
            case 3:
                if (s >= 0) row(false);
                break;
            case 4:
                if (s >= 0) {
                    row(true);
                    for (Amount& a : r) a /= 2;
                }
                break;
            case 5:
                for (Amount& a : r) a = amount();
                if (kind / 8 == 31) r[0] = -1 - in_.u8();  // invalid
                break;
            default:
                for (Amount& a : r) a = in_.u8() % 8;
        }
        return r;
    }

    std::vector<Amount> requests(std::size_t k) {
        std::vector<Amount> all;
        for (std::size_t i = 0; i < k; ++i) {
            const std::vector<Amount> r = request();
            all.insert(all.end(), r.begin(), r.end());
        }
        return all;
    }

    static bool valid_request(const Amount* r, std::size_t dims) {
        return std::all_of(r, r + dims, [](Amount a) { return a >= 0; });
    }

    // A container id: a live one, a released one, a live one of another generation,
    // one of another cluster, or anything.
    ContainerId container() {
        const std::uint8_t kind = in_.u8();
        const std::uint8_t pick = in_.u8();
        if (kind % 4 < 2 && !live_order_.empty()) {
            // Live ids in the order they were placed (the map's order is not stable).
            ContainerId id = live_order_[pick % live_order_.size()];
            return kind % 4 == 0 ? id : id + (ContainerId{1} << 32);
        }
        if (kind % 4 == 2 && !dead_.empty()) return dead_[pick % dead_.size()];
        if (kind % 8 == 7) return foreign_id();
        return static_cast<ContainerId>(in_.get<std::uint64_t>());
    }

    // A container id of a second cluster (same resources, one server of capacity 0,
    // made on first use, its own key): state_ must not know it. Placed and released in
    // turn, its ids run through slot 0's generations as state_'s own ids do.
    ContainerId foreign_id() {
        const std::vector<Amount> zero(dims(), 0);
        if (!other_) other_ = std::make_unique<ClusterState>(names_, zero.data(), 1);
        const ContainerId id = other_->place(0, zero.data());
        other_->release(id);
        // Two keys would have to differ in exactly the bits that tell the ids apart.
        FUZZ_CHECK(!model_.live.count(id), "an id of another cluster equals a live one");
        return id;
    }

    void forget(ContainerId id) {
        model_.release(id);
        live_order_.erase(std::find(live_order_.begin(), live_order_.end(), id));
        dead_.push_back(id);
    }

    void booked(ContainerId id, ServerId s, const Amount* request) {
        model_.book(id, s, request);
        live_order_.push_back(id);
    }

    // Calls f, which must throw E, and checks that the state is unchanged.
    template <typename E, typename F>
    void refused(F&& f, const std::string& what) {
        const std::vector<std::uint8_t> before = state_->snapshot();
        FUZZ_CHECK(throws<E>(f), what + " did not throw");
        FUZZ_CHECK(state_->snapshot() == before, what + " changed the state although it threw");
    }

    // best fit's answer: -1 exactly when nothing fits, else a feasible server whose
    // score is the least within rounding.
    void check_best(ServerId got, const Amount* r) const {
        const ServerId first = model_.first_fit(r);
        FUZZ_CHECK((got < 0) == (first < 0), "best_fit finds a server iff one fits");
        if (got < 0) return;
        FUZZ_CHECK(model_.fits(got, r), "best_fit chose a server that does not fit");
        double least = std::numeric_limits<double>::infinity();
        for (std::size_t s = 0; s < model_.n(); ++s) {
            if (model_.fits(static_cast<ServerId>(s), r)) least = std::min(least, model_.score(static_cast<ServerId>(s), r));
        }
        const double mine = model_.score(got, r);
        FUZZ_CHECK(mine <= least + 1e-9 * std::max(1.0, std::fabs(least)),
                   "best_fit chose score " + std::to_string(mine) + ", least is " + std::to_string(least));
    }

    void run_op() {
        switch (in_.u8() % 13) {
            case 0: return op_place();
            case 1:
            case 2: return op_place_with();
            case 3: return op_gang();
            case 4:
            case 5: return op_release();
            case 6: return op_cordon();
            case 7: return op_add_servers();
            case 8: return op_queries();
            case 9: return op_replay();
            case 10: return op_snapshot();
            case 11: return op_reads();
            default: return op_view();
        }
    }

    void op_place() {
        const ServerId s = server();
        const std::vector<Amount> r = request();
        if (!valid_request(r.data(), dims()) || !model_.fits(s, r.data())) {
            refused<InvalidArgument>([&] { state_->place(s, r.data()); }, "place that does not fit");
            return;
        }
        booked(state_->place(s, r.data()), s, r.data());
    }

    void op_place_with() {
        const bool best = in_.u8() % 2;
        const std::vector<Amount> r = request();
        const PlacePolicy policy = best ? PlacePolicy::best_fit : PlacePolicy::first_fit;
        if (!valid_request(r.data(), dims())) {
            refused<InvalidArgument>([&] { state_->place_with(policy, r.data()); }, "place_with of a negative amount");
            return;
        }
        const Placement p = state_->place_with(policy, r.data());
        if (best) {
            check_best(p.server, r.data());
        } else {
            FUZZ_CHECK(p.server == model_.first_fit(r.data()), "place_with first_fit differs from the plain scan");
        }
        FUZZ_CHECK((p.server < 0) == (p.container < 0), "placement without container or server");
        if (p.server >= 0) booked(p.container, p.server, r.data());
    }

    void op_gang() {
        const bool best = in_.u8() % 2;
        const std::size_t k = in_.u8() % 6;
        const std::vector<Amount> rs = requests(k);
        const PlacePolicy policy = best ? PlacePolicy::best_fit : PlacePolicy::first_fit;
        bool valid = true;
        for (std::size_t i = 0; i < k; ++i) valid = valid && valid_request(&rs[i * dims()], dims());
        if (!valid) {
            refused<InvalidArgument>([&] { state_->place_gang(rs.data(), k, policy); }, "gang with a negative amount");
            return;
        }
        // First fit: the plain model placing one partition after another decides.
        Model trial = model_;
        bool fits_all = true;
        for (std::size_t i = 0; i < k && fits_all; ++i) {
            const ServerId s = trial.first_fit(&rs[i * dims()]);
            fits_all = s >= 0;
            if (fits_all) trial.take(s, &rs[i * dims()]);
        }
        if (!best && !fits_all) {
            refused<InvalidArgument>([&] { state_->place_gang(rs.data(), k, policy); }, "gang that does not fit");
            return;
        }
        const std::vector<std::uint8_t> before = state_->snapshot();
        std::vector<Placement> placed;
        try {
            placed = state_->place_gang(rs.data(), k, policy);
        } catch (const InvalidArgument&) {
            FUZZ_CHECK(best, "first-fit gang refused although the plain model places it");
            FUZZ_CHECK(state_->snapshot() == before, "a refused gang changed the state");
            return;
        }
        FUZZ_CHECK(placed.size() == k, "gang placed a different number of partitions");
        for (std::size_t i = 0; i < k; ++i) {
            const Amount* r = &rs[i * dims()];
            if (best) {
                check_best(placed[i].server, r);
            } else {
                FUZZ_CHECK(placed[i].server == model_.first_fit(r), "gang partition differs from the plain first fit");
            }
            booked(placed[i].container, placed[i].server, r);
        }
    }

    void op_release() {
        const ContainerId id = container();
        if (!model_.live.count(id)) {
            refused<UnknownContainer>([&] { state_->release(id); }, "release of a container that is not live");
            return;
        }
        state_->release(id);
        forget(id);
    }

    void op_cordon() {
        const bool on = in_.u8() % 2;
        const ServerId s = server();
        if (!model_.in_range(s)) {
            refused<InvalidArgument>([&] { on ? state_->cordon(s) : state_->uncordon(s); }, "cordon out of range");
            return;
        }
        on ? state_->cordon(s) : state_->uncordon(s);
        model_.cordoned[static_cast<std::size_t>(s)] = on;
    }

    void op_add_servers() {
        const std::size_t k = in_.u8() % 4;
        std::vector<Amount> rows(k * dims());
        for (Amount& a : rows) a = amount();
        const std::uint8_t bad = in_.u8();
        if (k > 0 && bad == 255) rows[0] = -1;
        if (model_.n() + k > kMaxServers) return;
        if (k > 0 && bad == 255) {
            refused<InvalidArgument>([&] { state_->add_servers(rows.data(), k); }, "add_servers of a negative capacity");
            return;
        }
        // bad % 4 == 1: the rows take the totals to 2^63 - 1 exactly; == 2: one past it
        // in one dimension (where the rows before it leave room for that).
        if (k > 0 && bad % 4 != 0 && bad % 4 != 3) {
            fill_to_limit(rows.data(), k);
            Amount& one = rows[(k - 1) * dims() + bad / 4 % dims()];
            if (bad % 4 == 2 && one < kMaxAmount) ++one;
        }
        if (!model_.sums_fit(rows.data(), k)) {
            refused<InvalidArgument>([&] { state_->add_servers(rows.data(), k); },
                                     "add_servers past 2^63 - 1 in a total");
            return;
        }
        FUZZ_CHECK(state_->add_servers(rows.data(), k) == static_cast<ServerId>(model_.n()), "first new server id");
        for (std::size_t i = 0; i < k; ++i) model_.add_server(&rows[i * dims()]);
    }

    void op_queries() {
        const std::vector<Amount> r = request();
        const std::size_t limit = in_.u8() % 5;
        const ServerId s = server();
        if (!valid_request(r.data(), dims())) {
            refused<InvalidArgument>([&] { state_->first_fit(r.data()); }, "first_fit of a negative amount");
            refused<InvalidArgument>([&] { state_->count_feasible(r.data()); }, "count_feasible of a negative amount");
            return;
        }
        FUZZ_CHECK(state_->first_fit(r.data()) == model_.first_fit(r.data()), "first_fit differs from the plain scan");
        check_best(state_->best_fit(r.data()), r.data());
        std::vector<ServerId> all;
        for (std::size_t k = 0; k < model_.n(); ++k) {
            if (model_.fits(static_cast<ServerId>(k), r.data())) all.push_back(static_cast<ServerId>(k));
        }
        FUZZ_CHECK(state_->feasible(r.data()) == all, "feasible differs from the plain scan");
        const std::vector<ServerId> first(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(std::min(limit, all.size())));
        FUZZ_CHECK(state_->feasible(r.data(), limit) == first, "feasible with a limit");
        FUZZ_CHECK(state_->count_feasible(r.data()) == all.size(), "count_feasible differs from the plain scan");
        if (model_.in_range(s)) {
            FUZZ_CHECK(state_->fits(s, r.data()) == model_.fits(s, r.data()), "fits differs from the model");
        } else {
            refused<InvalidArgument>([&] { state_->fits(s, r.data()); }, "fits out of range");
        }
    }

    void op_replay() {
        // Up to 24 events: replay prefetches 8 and 16 events ahead.
        const std::size_t m = in_.u8() % 25;
        std::vector<std::uint8_t> ops(m);
        std::vector<Amount> rs(m * dims(), 0);
        std::vector<std::int64_t> refs(m, 0);
        for (std::size_t i = 0; i < m; ++i) {
            const std::uint8_t code = in_.u8();
            ops[i] = code % 16 == 15 ? 4 : code % 4;  // rarely an invalid code
            if (ops[i] == 0 || ops[i] == 2) {
                const std::vector<Amount> r = request();
                std::copy(r.begin(), r.end(), &rs[i * dims()]);
            } else if (ops[i] == 1) {
                refs[i] = static_cast<std::int64_t>(in_.u8() % (i + 2)) - (code >= 128 ? 1 : 0);
            } else if (ops[i] == 3) {
                refs[i] = container();
            }
        }
        // The plain validity rules of a stream (all checked before any event runs).
        bool valid = true;
        std::vector<std::uint8_t> event_released(m, 0);
        std::unordered_set<ContainerId> ids_released;
        for (std::size_t i = 0; i < m && valid; ++i) {
            switch (ops[i]) {
                case 0:
                case 2: valid = valid_request(&rs[i * dims()], dims()); break;
                case 1: {
                    const std::int64_t ref = refs[i];
                    valid = ref >= 0 && static_cast<std::size_t>(ref) < i &&
                            (ops[static_cast<std::size_t>(ref)] == 0 || ops[static_cast<std::size_t>(ref)] == 2) &&
                            !event_released[static_cast<std::size_t>(ref)]++;
                    break;
                }
                case 3: valid = model_.live.count(refs[i]) && ids_released.insert(refs[i]).second; break;
                default: valid = false;
            }
        }
        std::vector<ServerId> servers_out(m, -7);
        std::vector<ContainerId> containers_out(m, -7);
        if (!valid) {
            refused<std::exception>(
                [&] { state_->replay(ops.data(), rs.data(), refs.data(), m, servers_out.data(), containers_out.data()); },
                "an invalid replay stream");
            return;
        }
        const ReplayStats stats =
            state_->replay(ops.data(), rs.data(), refs.data(), m, servers_out.data(), containers_out.data());
        ReplayStats expected;
        for (std::size_t i = 0; i < m; ++i) {
            const Amount* r = &rs[i * dims()];
            if (ops[i] == 0 || ops[i] == 2) {
                if (ops[i] == 0) {
                    FUZZ_CHECK(servers_out[i] == model_.first_fit(r), "replay first fit differs from the plain scan");
                } else {
                    check_best(servers_out[i], r);
                }
                if (servers_out[i] >= 0) {
                    booked(containers_out[i], servers_out[i], r);
                    ++expected.placed;
                } else {
                    FUZZ_CHECK(containers_out[i] == -1, "replay: an unplaced event has a container");
                    ++expected.unplaced;
                }
                continue;
            }
            const ContainerId id = ops[i] == 1 ? containers_out[static_cast<std::size_t>(refs[i])] : refs[i];
            FUZZ_CHECK(containers_out[i] == id, "replay: a release reports another container");
            if (id < 0) {
                FUZZ_CHECK(servers_out[i] == -1, "replay: releasing nothing names a server");
                continue;
            }
            FUZZ_CHECK(servers_out[i] == model_.live.at(id).server, "replay: release names another server");
            forget(id);
            ++expected.released;
        }
        FUZZ_CHECK(stats.placed == expected.placed && stats.unplaced == expected.unplaced &&
                       stats.released == expected.released,
                   "replay stats");
    }

    void op_snapshot() {
        const std::vector<std::uint8_t> bytes = state_->snapshot();
        auto restored = std::make_unique<ClusterState>(bytes.data(), bytes.size());
        FUZZ_CHECK(restored->snapshot() == bytes, "snapshot round trip changed the bytes");
        state_ = std::move(restored);  // carry on with the restored state
    }

    void op_reads() {
        const std::size_t k = in_.u8() % 4;
        std::vector<ServerId> servers(k);
        for (ServerId& s : servers) s = server();
        std::vector<Amount> free(k * dims());
        std::vector<Amount> capacity(k * dims());
        std::vector<std::int64_t> counts(k);
        if (!std::all_of(servers.begin(), servers.end(), [&](ServerId s) { return model_.in_range(s); })) {
            refused<InvalidArgument>(
                [&] { state_->server_rows(servers.data(), k, free.data(), capacity.data(), counts.data()); },
                "server_rows out of range");
            return;
        }
        state_->server_rows(servers.data(), k, free.data(), capacity.data(), counts.data());
        const std::vector<std::int64_t> all_counts = state_->container_counts();
        for (std::size_t i = 0; i < k; ++i) {
            const auto s = static_cast<std::size_t>(servers[i]);
            for (std::size_t d = 0; d < dims(); ++d) {
                FUZZ_CHECK(free[i * dims() + d] == model_.free[s * dims() + d], "server_rows free");
                FUZZ_CHECK(capacity[i * dims() + d] == model_.capacity[s * dims() + d], "server_rows capacity");
            }
            FUZZ_CHECK(counts[i] == all_counts[s], "server_rows counts");
            FUZZ_CHECK(state_->is_cordoned(servers[i]) == (model_.cordoned[s] != 0), "is_cordoned");
        }
        const ContainerId id = container();
        std::vector<Amount> amounts(dims());
        if (model_.live.count(id)) {
            FUZZ_CHECK(state_->container_server(id, amounts.data()) == model_.live.at(id).server, "container_server");
            FUZZ_CHECK(amounts == model_.live.at(id).amounts, "container amounts");
        } else {
            FUZZ_CHECK(throws<UnknownContainer>([&] { state_->container_server(id, amounts.data()); }),
                       "container_server of a container that is not live");
        }
    }

    // The locked read view (what the resource optimizer's decisions read).
    void op_view() {
        const std::vector<Amount> r = request();
        const std::size_t limit = 1 + in_.u8() % 6;
        const ServerId s = server();
        if (!valid_request(r.data(), dims())) return;  // the view's reads take checked requests
        state_->read([&](const ClusterState::View& view) {
            FUZZ_CHECK(view.n_servers() == model_.n() && view.n_dims() == dims(), "view shape");
            std::vector<ServerId> got;
            view.feasible(r.data(), limit, got);
            std::vector<ServerId> want;
            for (std::size_t k = 0; k < model_.n() && want.size() < limit; ++k) {
                if (model_.fits(static_cast<ServerId>(k), r.data())) want.push_back(static_cast<ServerId>(k));
            }
            FUZZ_CHECK(got == want, "view feasible differs from the plain scan");
            FUZZ_CHECK(view.fits(s, r.data()) == model_.fits(s, r.data()), "view fits (false out of range)");
            if (model_.in_range(s)) {
                const auto i = static_cast<std::size_t>(s);
                for (std::size_t d = 0; d < dims(); ++d) {
                    FUZZ_CHECK(view.free_row(s)[d] == model_.free[i * dims() + d], "view free row");
                    FUZZ_CHECK(view.capacity_row(s)[d] == model_.capacity[i * dims() + d], "view capacity row");
                }
            }
            return 0;
        });
        const ClusterState::MemoryUse use = state_->memory_use();
        FUZZ_CHECK(use.servers >= model_.n() * dims() * 2 * sizeof(Amount), "memory_use counts capacity and free");
        refused<InvalidArgument>([&] { state_->largest_capacity(dims()); }, "largest_capacity of a missing dimension");
    }

    // The whole state against the model (and validate() when asked).
    void check_state(bool full) {
        const std::size_t n = model_.n();
        const std::vector<Amount> free = state_->free_matrix();
        FUZZ_CHECK(state_->n_servers() == n, "n_servers");
        FUZZ_CHECK(std::equal(free.begin(), free.end(), model_.free.begin(), model_.free.end()), "free matrix");
        FUZZ_CHECK(state_->capacity_matrix() == model_.capacity, "capacity matrix");
        FUZZ_CHECK(state_->n_containers() == model_.live.size(), "n_containers");
        std::vector<std::int64_t> counts(n, 0);
        for (const auto& [id, c] : model_.live) ++counts[static_cast<std::size_t>(c.server)];
        FUZZ_CHECK(state_->container_counts() == counts, "container counts");
        FUZZ_CHECK(state_->n_active_servers() ==
                       static_cast<std::size_t>(std::count_if(counts.begin(), counts.end(), [](auto c) { return c > 0; })),
                   "n_active_servers");
        std::vector<Amount> free_total(dims());
        std::vector<Amount> capacity_total(dims());
        state_->totals(free_total.data(), capacity_total.data());
        for (std::size_t d = 0; d < dims(); ++d) {
            Int128 f = 0;
            Int128 c = 0;
            Amount largest = 0;
            for (std::size_t s = 0; s < n; ++s) {
                f += model_.free[s * dims() + d];
                c += model_.capacity[s * dims() + d];
                largest = std::max(largest, model_.capacity[s * dims() + d]);
            }
            FUZZ_CHECK(free_total[d] == f, "free total is not the exact sum");
            FUZZ_CHECK(capacity_total[d] == c, "capacity total is not the exact sum");
            FUZZ_CHECK(state_->largest_capacity(d) == largest, "largest capacity");
        }
        if (full) {
            const std::string broken = state_->validate();
            FUZZ_CHECK(broken.empty(), "validate: " + broken);
        }
    }

    Input in_;
    Model model_;
    std::unique_ptr<ClusterState> state_;
    std::unique_ptr<ClusterState> other_;  // the source of foreign ids
    std::vector<std::string> names_;
    std::vector<ContainerId> live_order_;
    std::vector<ContainerId> dead_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return Run(data, size).go();
}
