// ro_decide / ro_candidates_features: see ro_decision.hpp. Every feature expression
// below mirrors features.py's numpy expression (float64 operations, one rounding to
// float32 at the end), so that the two produce identical rows.
#include "fastplace/ro_decision.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

namespace fastplace {

namespace {

constexpr double kRankScale = 64.0;         // features.py _RANK_SCALE
constexpr double kMaxContainers = 32.0;     // features.py _MAX_CONTAINERS
constexpr std::size_t kRankedServers = 64;  // ranks beyond this are capped at 1

// Per-thread scratch, so that a decision allocates nothing once warm.
struct Scratch {
    std::vector<ServerId> holders;
    std::vector<Bytes> holder_bytes;
    std::vector<std::size_t> order;  // holders by most bytes first, then lower index
    std::vector<ServerId> head;      // the first max(k, 64) feasible servers
    std::vector<ServerId> local;
    std::vector<Bytes> cached;       // per candidate
};

Scratch& scratch() {
    thread_local Scratch s;
    return s;
}

// Indices of holders ordered by bytes descending, ties by server ascending (holders
// are ascending already): the distinct byte values are sorted, then a counting sort
// over them places the holders stably, so equal bytes keep server order without
// comparing servers. O(h log h) for the sort of values; versions fetched whole give
// few distinct values, so the common case is one bucket and no reordering at all.
void order_by_bytes(const std::vector<Bytes>& bytes, std::vector<std::size_t>& order) {
    const std::size_t h = bytes.size();
    order.resize(h);
    std::vector<Bytes> values(bytes);
    std::sort(values.begin(), values.end(), [](Bytes a, Bytes b) { return a > b; });
    values.erase(std::unique(values.begin(), values.end()), values.end());
    if (values.size() == 1) {
        for (std::size_t i = 0; i < h; ++i) order[i] = i;
        return;
    }
    std::vector<std::size_t> start(values.size() + 1, 0);
    std::vector<std::size_t> bucket(h);
    for (std::size_t i = 0; i < h; ++i) {
        // values is descending: the bucket is the position of bytes[i] in it.
        bucket[i] = static_cast<std::size_t>(
            std::lower_bound(values.begin(), values.end(), bytes[i], [](Bytes a, Bytes b) { return a > b; }) -
            values.begin());
        ++start[bucket[i] + 1];
    }
    for (std::size_t v = 0; v < values.size(); ++v) start[v + 1] += start[v];
    for (std::size_t i = 0; i < h; ++i) order[start[bucket[i]]++] = i;  // stable: ascending servers
}

}  // namespace

void ro_candidates_features(const ClusterState& cluster, const BlockIndex* blocks, const Amount* request,
                            const BlockId* block_ids, std::size_t n_blocks, std::size_t k, RoDecision& out) {
    const std::size_t dims = cluster.n_dims();
    if (k == 0) throw InvalidArgument("k = 0 must be > 0");
    for (std::size_t d = 0; d < dims; ++d) {
        if (request[d] < 0) {
            throw InvalidArgument("request[" + std::to_string(d) + "] (" + cluster.resources()[d] +
                                  ") = " + std::to_string(request[d]) + " must be >= 0");
        }
    }
    out.candidates.clear();
    out.features.clear();
    out.scores.clear();
    out.server = -1;
    out.finite = true;
    Scratch& s = scratch();

    // 1. The block index, under its lock: who caches what of this version.
    const bool locality = blocks != nullptr && n_blocks > 0;
    Bytes file_bytes = 0;
    s.holders.clear();
    s.holder_bytes.clear();
    if (locality) {
        file_bytes = blocks->holder_bytes(block_ids, n_blocks, s.holders, s.holder_bytes);
        const std::size_t index_servers = blocks->n_servers();
        const std::size_t cluster_servers = cluster.n_servers();
        if (index_servers < cluster_servers) {
            throw InvalidArgument("the block index has " + std::to_string(index_servers) +
                                  " servers, the cluster " + std::to_string(cluster_servers));
        }
    }
    const auto cached_on = [&](ServerId server) -> Bytes {
        const auto it = std::lower_bound(s.holders.begin(), s.holders.end(), server);
        return it != s.holders.end() && *it == server ? s.holder_bytes[static_cast<std::size_t>(it - s.holders.begin())]
                                                      : Bytes{0};
    };

    // 2. The cluster, under its lock: candidates, their rows and the global features.
    cluster.read([&](const ClusterState::View& view) {
        const std::size_t n_feasible = view.count_feasible(request);
        s.head.clear();
        view.feasible(request, std::max(k, kRankedServers), s.head);
        std::vector<ServerId>& candidates = out.candidates;
        if (n_feasible <= k) {
            candidates.assign(s.head.begin(), s.head.begin() + static_cast<std::ptrdiff_t>(std::min(n_feasible, s.head.size())));
        } else {
            // features.py _select: up to k / 2 feasible holders with the most bytes, then
            // the first k feasible servers not among them, k in all.
            const std::size_t n_local = k / 2;
            s.local.clear();
            if (n_local > 0 && locality && !s.holders.empty()) {
                order_by_bytes(s.holder_bytes, s.order);
                for (const std::size_t i : s.order) {
                    if (view.fits(s.holders[i], request)) {
                        s.local.push_back(s.holders[i]);
                        if (s.local.size() == n_local) break;
                    }
                }
                std::sort(s.local.begin(), s.local.end());
            }
            const std::size_t n_rest = k - s.local.size();
            std::size_t taken = 0;
            for (std::size_t i = 0; i < k && taken < n_rest; ++i) {
                if (!std::binary_search(s.local.begin(), s.local.end(), s.head[i])) {
                    candidates.push_back(s.head[i]);
                    ++taken;
                }
            }
            const auto middle = static_cast<std::ptrdiff_t>(candidates.size());
            candidates.insert(candidates.end(), s.local.begin(), s.local.end());
            std::inplace_merge(candidates.begin(), candidates.begin() + middle, candidates.end());
        }
        const std::size_t n = candidates.size();
        if (n == 0) return;

        // Cached bytes per candidate and the most any candidate caches.
        s.cached.assign(n, 0);
        Bytes best_bytes = 0;
        if (locality) {
            for (std::size_t i = 0; i < n; ++i) {
                s.cached[i] = cached_on(candidates[i]);
                best_bytes = std::max(best_bytes, s.cached[i]);
            }
        }
        const auto best = static_cast<double>(best_bytes);
        const auto file = static_cast<double>(file_bytes);

        // The cluster's features, the same on every row.
        const std::size_t cpu = dims > 1 ? 1 : 0;
        const auto load = [&](std::size_t d) {
            const Amount total = std::max<Amount>(view.capacity_total(d), 1);
            return 1.0 - static_cast<double>(view.free_total(d)) / static_cast<double>(total);
        };
        const double n_servers = static_cast<double>(std::max<std::size_t>(view.n_servers(), 1));
        const double largest = std::max(static_cast<double>(view.largest_capacity(0)), 1.0);
        const auto memory_load = static_cast<float>(load(0));
        const auto cpu_load = static_cast<float>(load(cpu));
        const auto active_share = static_cast<float>(static_cast<double>(view.n_active_servers()) / n_servers);
        const auto feasible_share = static_cast<float>(static_cast<double>(n_feasible) / n_servers);

        out.features.resize(n * kRoFeatures);
        double before[kMaxDims];
        double after[kMaxDims];
        for (std::size_t i = 0; i < n; ++i) {
            const ServerId server = candidates[i];
            const Amount* free = view.free_row(server);
            const Amount* capacity_row = view.capacity_row(server);
            for (std::size_t d = 0; d < dims; ++d) {
                const auto capacity = static_cast<double>(std::max<Amount>(capacity_row[d], 1));
                const auto f = static_cast<double>(free[d]);
                before[d] = f / capacity;
                after[d] = (f - static_cast<double>(request[d])) / capacity;
            }
            std::size_t tight = cpu;
            if (dims > 2) {  // np.argmin: the first of equal minima
                for (std::size_t d = 2; d < dims; ++d) {
                    if (after[d] < after[tight]) tight = d;
                }
            }
            // rank: feasible servers below this one; exact within the head, else >= 64.
            const auto at = std::lower_bound(s.head.begin(), s.head.end(), server);
            const double rank = at != s.head.end() && *at == server ? static_cast<double>(at - s.head.begin())
                                                                    : kRankScale;
            const auto capacity0 = static_cast<double>(std::max<Amount>(capacity_row[0], 1));
            const auto cached = static_cast<double>(s.cached[i]);
            const auto containers = static_cast<double>(view.containers(server));
            float* row = &out.features[i * kRoFeatures];
            row[0] = static_cast<float>(std::min(rank / kRankScale, 1.0));
            row[1] = rank == 0.0 ? 1.0F : 0.0F;
            row[2] = static_cast<float>(before[0]);
            row[3] = static_cast<float>(before[tight]);
            row[4] = static_cast<float>(after[0]);
            row[5] = static_cast<float>(after[tight]);
            row[6] = static_cast<float>(std::fabs(after[0] - after[tight]));
            row[7] = static_cast<float>(static_cast<double>(request[0]) / capacity0);
            row[8] = file > 0 ? static_cast<float>(cached / file) : 0.0F;
            row[9] = best > 0 ? static_cast<float>(cached / best) : 0.0F;
            row[10] = containers > 0 ? 1.0F : 0.0F;
            row[11] = static_cast<float>(std::min(containers / kMaxContainers, 1.0));
            row[12] = static_cast<float>(capacity0 / largest);
            row[13] = memory_load;
            row[14] = cpu_load;
            row[15] = active_share;
            row[16] = feasible_share;
        }
    });
}

void ro_decide(const ClusterState& cluster, const BlockIndex* blocks, const MlpScorer& scorer,
               const Amount* request, const BlockId* block_ids, std::size_t n_blocks, std::size_t k,
               RoDecision& out) {
    if (scorer.n_features() != kRoFeatures) {
        throw InvalidArgument("the scorer takes " + std::to_string(scorer.n_features()) + " features, the decision computes " +
                              std::to_string(kRoFeatures));
    }
    ro_candidates_features(cluster, blocks, request, block_ids, n_blocks, k, out);
    const std::size_t n = out.candidates.size();
    if (n == 0) return;
    out.scores.resize(n);
    // The cluster-wide columns are equal on every row: the scorer folds them in once.
    scorer.score_decision(out.features.data(), n, kRoFeatures, out.scores.data(), kRoGlobalFeatures);
    std::size_t best = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (!std::isfinite(out.scores[i])) {
            out.finite = false;
            return;
        }
        if (out.scores[i] > out.scores[best]) best = i;
    }
    // Identical rows (say, two idle servers past the 64th feasible one, whose ranks are
    // clipped) score equal in TorchScript, and the first wins there. The decision path
    // folds block-constant columns per 16-row block, so such rows can land one rounding
    // apart: take the first row identical to the best one, as the reference does.
    const float near = 1e-5F * std::max(1.0F, std::fabs(out.scores[best]));
    const float* best_row = out.features.data() + best * kRoFeatures;
    for (std::size_t i = 0; i < best; ++i) {
        if (out.scores[best] - out.scores[i] <= near &&
            std::memcmp(out.features.data() + i * kRoFeatures, best_row, kRoFeatures * sizeof(float)) == 0) {
            best = i;
            break;
        }
    }
    out.server = out.candidates[best];
}

}  // namespace fastplace
