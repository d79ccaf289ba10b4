// How many servers can host a request, remembered for the few request sizes asked
// most recently and kept exact by every change to a server.
//
// Why: the resource optimizer's features include the share of feasible servers, and
// counting them is a walk over the whole cluster (servers on the request's level
// boundary each need an exact check): 30 us at 100,000 servers when the cluster is
// churned. Serverless requests come in a handful of sizes (Lambda memory sizes, the
// partitions of the deployed models), so a count asked once is asked again; keeping
// it up to date costs each place, release or cordon one comparison per remembered
// size, and nothing at all while no count was ever asked (replay, plain first fit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace fastplace {

class FeasibleCounts {
public:
    using Amount = std::int64_t;
    static constexpr std::size_t kCapacity = 16;  // request sizes remembered

    explicit FeasibleCounts(std::size_t dims = 1) : dims_(dims) {}

    bool empty() const { return size_ == 0; }
    std::size_t size() const { return size_; }
    const Amount* request(std::size_t i) const { return &requests_[i * dims_]; }
    std::size_t count(std::size_t i) const { return counts_[i]; }

    // The remembered count for request, marking it as used; false when not remembered.
    bool find(const Amount* request, std::size_t& count);
    // Remembers a count just computed, in place of the least recently used one.
    void remember(const Amount* request, std::size_t count);
    // A server's free row (and availability) went from before to after: adjusts every
    // remembered count whose request it now fits, or no longer fits.
    void server_changed(const Amount* before, bool was_available, const Amount* after, bool is_available);
    void clear() { size_ = 0; }

private:
    bool fits(const Amount* free, std::size_t i) const {
        const Amount* r = request(i);
        for (std::size_t d = 0; d < dims_; ++d) {
            if (free[d] < r[d]) return false;
        }
        return true;
    }

    std::size_t dims_;
    std::size_t size_ = 0;
    std::uint64_t clock_ = 0;
    std::vector<Amount> requests_ = std::vector<Amount>(kCapacity * dims_);
    std::size_t counts_[kCapacity] = {};
    std::uint64_t last_used_[kCapacity] = {};
};

}  // namespace fastplace
