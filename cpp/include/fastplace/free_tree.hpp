// A summary of the cluster's free space that lets a search skip, in bulk, servers
// that cannot host a request: an 8-ary tree over the servers whose node holds, for
// the available (not cordoned) servers below it, the largest free amount in every
// dimension and the smallest total free share (sum over dimensions of free/capacity).
//
// Why this shape: a level bitset (cluster_state.hpp) says "free is at least the
// request's level", which leaves a boundary band of servers that need an exact check;
// when the band is long (a cluster filling up leaves a sliver just below a common size
// on every server before the fill front) first fit walked all of it. A node whose
// largest free amount falls short in any dimension is skipped whole, whatever the
// cause. The cluster's search walks the tree down to 4,096-server blocks (one summary
// word of the bitsets, whose summaries then name the candidate words) and tests each
// candidate word's node (64 servers); the levels in between keep an update cheap: a
// node is recomputed from 8 children, never 64. Depth is log8(n): 7 levels for a
// million servers.
//
// Per-dimension maxima are exact in one dimension and an upper bound across several:
// a node may pass on one server's memory and another's CPU, and hold no server that
// fits. The search then backs out of it; servers whose free amounts trade off across
// dimensions like that (never seen in Lambda-style load, where CPU follows memory)
// cost a visit of the nodes they make pass.
//
// The minimum free share bounds best fit's score from below (a branch and bound that
// keeps best fit's exact answer and tie rule, see best_fit in cluster_state.cpp); it
// is tracked only once best fit is first used.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace fastplace {

class FreeTree {
public:
    using Amount = std::int64_t;
    static constexpr std::size_t kFanout = 8;  // 8^2 = 64 servers: one bitset word
    // A node with no available server below it: fails every request (amounts >= 0).
    static constexpr Amount kNone = -1;
    static constexpr std::size_t kMaxDims = 8;  // as the cluster state's

    // The rows the tree summarises, owned by the cluster state; pointers stay valid
    // only until the cluster's arrays grow, so they are passed on every call.
    struct Rows {
        const Amount* free;      // n x dims
        const Amount* capacity;  // n x dims
        const std::uint64_t* available;  // bit s set: server s takes containers
        std::size_t n;
        std::size_t dims;

        bool is_available(std::size_t s) const { return (available[s / 64] >> (s % 64)) & 1U; }
        // Sum over dimensions of free/capacity (dimensions without capacity count 0),
        // or +infinity for a cordoned server.
        double free_share(std::size_t s) const;
    };

    // Rebuilds every node from the rows: O(n).
    void rebuild(const Rows& rows);
    // Refreshes the nodes above server s after its free amounts (before: the old row)
    // or availability changed. Each node is adjusted from its child's old and new
    // values, and recomputed from its 8 children only when the child held the node's
    // maximum (or minimum share) and lost it; it stops at the first unchanged node.
    void update(const Rows& rows, std::size_t s, const Amount* before, bool was_available);

    std::size_t n_levels() const { return levels_.size(); }
    // The smallest free shares (for best fit's bound) are kept only once asked for:
    // tracking them costs every update a division and often a recomputed node, and a
    // cluster that is only ever searched by first fit never reads them.
    bool tracks_shares() const { return shares_; }
    void track_shares(const Rows& rows);  // O(n), once
    std::size_t memory_bytes() const;
    // "" or the first node that differs from a rebuild.
    std::string validate(const Rows& rows) const;

    // Levels whose nodes cover one bitset word (64 servers) and one summary word of
    // the bitsets (4,096 servers): 8^2 and 8^4.
    static constexpr std::size_t kWordLevel = 1;
    static constexpr std::size_t kBlockLevel = 3;

    // Whether node of level may hold a server fitting request (its maxima cover it).
    bool passes(std::size_t level, std::size_t node, const Amount* request) const {
        const Amount* m = &levels_[level].max_free[node * dims_];
        for (std::size_t d = 0; d < dims_; ++d) {
            if (m[d] < request[d]) return false;
        }
        return true;
    }
    // Calls block(b) for each node b of kBlockLevel (servers 4,096 * b ...) whose maxima
    // and every ancestor's cover request and that prune(level, node) does not veto, in
    // increasing order, until block returns true. A cluster of 4,096 servers or fewer
    // has no such level: block(0) is called once.
    template <typename Block, typename Prune>
    void walk(const Amount* request, Block&& block, Prune&& prune) const {
        if (n_ == 0) return;
        const std::size_t top = levels_.size() - 1;
        if (top < kBlockLevel) {
            block(std::size_t{0});
            return;
        }
        for (std::size_t node = 0; node < levels_[top].size; ++node) {
            if (passes(top, node, request) && !prune(top, node) && walk_node(top, node, request, block, prune)) return;
        }
    }

    // The smallest free share below a node (see Rows::free_share); +infinity unless
    // tracks_shares().
    double min_share(std::size_t level, std::size_t node) const { return levels_[level].min_share[node]; }
    const Amount* max_free(std::size_t level, std::size_t node) const { return &levels_[level].max_free[node * dims_]; }

private:
    // levels_[0] has one node per kFanout servers; levels_[k] one per kFanout nodes
    // of levels_[k - 1]; the last level has at most kFanout nodes.
    struct Level {
        std::size_t size = 0;
        std::vector<Amount> max_free;   // size x dims
        std::vector<double> min_share;  // size
    };

    template <typename Block, typename Prune>
    bool walk_node(std::size_t level, std::size_t node, const Amount* request, Block& block, Prune& prune) const {
        if (level == kBlockLevel) return block(node);
        const std::size_t first = node * kFanout;
        const std::size_t last = std::min(first + kFanout, levels_[level - 1].size);
        for (std::size_t child = first; child < last; ++child) {
            if (passes(level - 1, child, request) && !prune(level - 1, child) &&
                walk_node(level - 1, child, request, block, prune)) {
                return true;
            }
        }
        return false;
    }

    // What node of level would hold, from the rows and the level below.
    void compute(const Rows& rows, std::size_t level, std::size_t node, Amount* max_free, double& min_share) const;

    std::size_t n_ = 0;
    std::size_t dims_ = 0;
    // Rows::free_share of every server, so that recomputing a node of level 0 divides
    // nothing: only the server that changed is divided again.
    std::vector<double> share_;  // empty unless shares_
    bool shares_ = false;
    std::vector<Level> levels_;
};

}  // namespace fastplace
