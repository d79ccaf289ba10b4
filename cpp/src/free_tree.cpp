#include "fastplace/free_tree.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace fastplace {

double FreeTree::Rows::free_share(std::size_t s) const {
    if (!is_available(s)) return std::numeric_limits<double>::infinity();
    double share = 0.0;
    for (std::size_t d = 0; d < dims; ++d) {
        const Amount cap = capacity[s * dims + d];
        if (cap > 0) share += static_cast<double>(free[s * dims + d]) / static_cast<double>(cap);
    }
    return share;
}

void FreeTree::compute(const Rows& rows, std::size_t level, std::size_t node, Amount* max_free,
                       double& min_share) const {
    std::fill(max_free, max_free + dims_, kNone);
    min_share = std::numeric_limits<double>::infinity();
    const std::size_t first = node * kFanout;
    if (level == 0) {
        const std::size_t last = std::min(first + kFanout, n_);
        for (std::size_t s = first; s < last; ++s) {
            if (!rows.is_available(s)) continue;
            const Amount* free = &rows.free[s * dims_];
            for (std::size_t d = 0; d < dims_; ++d) max_free[d] = std::max(max_free[d], free[d]);
            if (shares_) min_share = std::min(min_share, share_[s]);
        }
        return;
    }
    const Level& below = levels_[level - 1];
    const std::size_t last = std::min(first + kFanout, below.size);
    for (std::size_t child = first; child < last; ++child) {
        const Amount* m = &below.max_free[child * dims_];
        for (std::size_t d = 0; d < dims_; ++d) max_free[d] = std::max(max_free[d], m[d]);
        if (shares_) min_share = std::min(min_share, below.min_share[child]);
    }
}

void FreeTree::track_shares(const Rows& rows) {
    shares_ = true;
    rebuild(rows);
}

void FreeTree::rebuild(const Rows& rows) {
    if (rows.dims < 1 || rows.dims > kMaxDims) throw std::invalid_argument("free tree: dims out of range");
    n_ = rows.n;
    dims_ = rows.dims;
    share_.assign(shares_ ? n_ : 0, 0.0);
    for (std::size_t s = 0; s < share_.size(); ++s) share_[s] = rows.free_share(s);
    levels_.clear();
    std::size_t below = n_;
    do {
        Level level;
        level.size = (below + kFanout - 1) / kFanout;
        level.max_free.assign(level.size * dims_, kNone);
        level.min_share.assign(level.size, std::numeric_limits<double>::infinity());
        levels_.push_back(std::move(level));
        below = levels_.back().size;
    } while (below > kFanout);
    for (std::size_t l = 0; l < levels_.size(); ++l) {
        Level& at = levels_[l];
        for (std::size_t node = 0; node < at.size; ++node) {
            compute(rows, l, node, &at.max_free[node * dims_], at.min_share[node]);
        }
    }
}

void FreeTree::update(const Rows& rows, std::size_t s, const Amount* before, bool was_available) {
    // What the child (first the server, then each node on the way up) held before and
    // holds now.
    Amount old_max[kMaxDims];
    Amount new_max[kMaxDims];
    const bool available = rows.is_available(s);
    for (std::size_t d = 0; d < dims_; ++d) {
        old_max[d] = was_available ? before[d] : kNone;
        new_max[d] = available ? rows.free[s * dims_ + d] : kNone;
    }
    // Without share tracking both stay +infinity, as every node's minimum does.
    double old_share = std::numeric_limits<double>::infinity();
    double new_share = old_share;
    if (shares_) {
        old_share = share_[s];
        new_share = rows.free_share(s);
        share_[s] = new_share;
    }
    std::size_t node = s / kFanout;
    for (std::size_t l = 0; l < levels_.size(); ++l, node /= kFanout) {
        Level& at = levels_[l];
        Amount* stored = &at.max_free[node * dims_];
        double& stored_share = at.min_share[node];
        const double previous_share = stored_share;
        bool recompute = false;
        // old_max takes the node's previous values as it goes (fused, not copied: a
        // runtime-sized copy is a memmove call): they are the parent's old child values.
        for (std::size_t d = 0; d < dims_; ++d) {
            const Amount previous = stored[d];
            if (new_max[d] >= previous) {
                stored[d] = new_max[d];
            } else if (old_max[d] == previous) {
                recompute = true;  // the child held the maximum and lost it
            }
            old_max[d] = previous;
        }
        if (new_share <= stored_share) {
            stored_share = new_share;
        } else if (old_share == stored_share) {
            recompute = true;
        }
        if (recompute) compute(rows, l, node, stored, stored_share);
        // A plain loop: std::equal becomes a memcmp call, a tenth of an update's time.
        bool changed = previous_share != stored_share;
        for (std::size_t d = 0; d < dims_; ++d) {
            changed |= old_max[d] != stored[d];
            new_max[d] = stored[d];
        }
        if (!changed) return;
        old_share = previous_share;
        new_share = stored_share;
    }
}

std::size_t FreeTree::memory_bytes() const {
    std::size_t bytes = sizeof(*this) + levels_.capacity() * sizeof(Level) + share_.capacity() * sizeof(double);
    for (const Level& level : levels_) {
        bytes += level.max_free.capacity() * sizeof(Amount) + level.min_share.capacity() * sizeof(double);
    }
    return bytes;
}

std::string FreeTree::validate(const Rows& rows) const {
    if (rows.n != n_ || rows.dims != dims_) return "free tree was built for another number of servers";
    if (n_ > 0 && levels_.empty()) return "free tree has no levels";
    if (share_.size() != (shares_ ? n_ : 0)) return "free tree keeps the free share of another number of servers";
    for (std::size_t s = 0; s < share_.size(); ++s) {
        if (!(share_[s] == rows.free_share(s))) {
            return "free tree's free share of server " + std::to_string(s) + " is stale";
        }
    }
    std::size_t below = n_;
    Amount max_free[kMaxDims];
    for (std::size_t l = 0; l < levels_.size(); ++l) {
        const Level& at = levels_[l];
        if (at.size != (below + kFanout - 1) / kFanout || at.max_free.size() != at.size * dims_ ||
            at.min_share.size() != at.size) {
            return "free tree level " + std::to_string(l) + " has the wrong number of nodes";
        }
        for (std::size_t node = 0; node < at.size; ++node) {
            double min_share = 0.0;
            compute(rows, l, node, max_free, min_share);
            if (!std::equal(max_free, max_free + dims_, &at.max_free[node * dims_]) ||
                !(min_share == at.min_share[node])) {
                return "free tree node " + std::to_string(node) + " of level " + std::to_string(l) +
                       " is stale (its largest free amounts or smallest free share differ from its children's)";
            }
        }
        below = at.size;
    }
    if (below > kFanout) return "free tree's top level has more than " + std::to_string(kFanout) + " nodes";
    return {};
}

}  // namespace fastplace
