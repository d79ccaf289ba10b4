// The resource optimizer's decision in the core: the K candidate servers for a request,
// their feature rows and (with a scorer) their scores, in one call. It is the C++ twin
// of fastplace/optimizer/features.py (candidates(), _features(), FEATURE_NAMES), which
// stays the readable reference; a differential test keeps the two equal.
//
// Candidates: the first k feasible servers in index order, plus, when more than k fit,
// up to k / 2 feasible servers caching the most bytes of the version's blocks (ties to
// the lower index), ascending. The servers with cached bytes are the union of the
// blocks' holder sets (BlockIndex::holder_bytes), so only they are tested for
// feasibility, most bytes first; no pass over all servers. Ranks only matter for the
// first 64 feasible servers (the rank feature is capped at rank / 64 = 1), the count of
// feasible servers is a popcount, and the cluster's load and largest server are running
// totals: the work is O(k + holders + n_servers / 64) words, not O(n_servers) rows.
//
// Features: float32, columns as FEATURE_NAMES in features.py, each computed in double
// with the same operations in the same order as numpy does, then rounded once to
// float32: the rows equal features.py's bit for bit.
//
// Threading: the block index is read first, under its own lock (one holder_bytes call),
// then the cluster under its lock (one ClusterState::read: feasibility, rows and totals
// from one consistent state), then the scorer, which is immutable, under none. No two
// locks are ever held together, so the call cannot deadlock with any other operation;
// the decision sees the block index and the cluster each at one instant, as the Python
// reference does with its separate calls. The cluster may change once the call returns:
// the caller books with ClusterState::place, which refuses a server that no longer fits.
#pragma once

#include <cstddef>
#include <vector>

#include "fastplace/block_index.hpp"
#include "fastplace/cluster_state.hpp"
#include "fastplace/mlp_scorer.hpp"

namespace fastplace {

constexpr std::size_t kRoFeatures = 17;  // len(FEATURE_NAMES)
constexpr std::size_t kRoGlobalFeatures = 4;  // the last 4 columns: the same on every row

struct RoDecision {
    std::vector<ServerId> candidates;  // ascending; empty when no server fits
    std::vector<float> features;       // candidates.size() x kRoFeatures, row-major
    std::vector<float> scores;         // one per candidate (empty without a scorer)
    // The best-scored candidate (the first of equal scores), or -1 when there are no
    // candidates, no scorer, or a score is not finite (finite is then false).
    ServerId server = -1;
    bool finite = true;
};

// Candidates and features for request (n_dims amounts, each >= 0) and the version's
// n_blocks block ids; blocks may be null (no block index: no locality features, the
// first k feasible servers). k >= 1. Throws InvalidArgument on a negative request
// amount, k = 0, an unknown block id, or (with block ids) a block index with fewer
// servers than the cluster. out is overwritten (its buffers are reused).
void ro_candidates_features(const ClusterState& cluster, const BlockIndex* blocks, const Amount* request,
                            const BlockId* block_ids, std::size_t n_blocks, std::size_t k, RoDecision& out);

// The same, then scores the rows with scorer (whose n_features() must be kRoFeatures)
// and picks the best candidate.
void ro_decide(const ClusterState& cluster, const BlockIndex* blocks, const MlpScorer& scorer,
               const Amount* request, const BlockId* block_ids, std::size_t n_blocks, std::size_t k,
               RoDecision& out);

}  // namespace fastplace
