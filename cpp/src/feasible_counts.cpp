#include "fastplace/feasible_counts.hpp"

#include <algorithm>

namespace fastplace {

bool FeasibleCounts::find(const Amount* request, std::size_t& count) {
    for (std::size_t i = 0; i < size_; ++i) {
        if (std::equal(request, request + dims_, &requests_[i * dims_])) {
            last_used_[i] = ++clock_;
            count = counts_[i];
            return true;
        }
    }
    return false;
}

void FeasibleCounts::remember(const Amount* request, std::size_t count) {
    std::size_t i = size_;
    if (size_ < kCapacity) {
        ++size_;
    } else {
        i = static_cast<std::size_t>(std::min_element(last_used_, last_used_ + kCapacity) - last_used_);
    }
    std::copy_n(request, dims_, &requests_[i * dims_]);
    counts_[i] = count;
    last_used_[i] = ++clock_;
}

void FeasibleCounts::server_changed(const Amount* before, bool was_available, const Amount* after,
                                    bool is_available) {
    for (std::size_t i = 0; i < size_; ++i) {
        const bool fitted = was_available && fits(before, i);
        const bool fits_now = is_available && fits(after, i);
        if (fitted != fits_now) counts_[i] += fits_now ? 1 : static_cast<std::size_t>(-1);
    }
}

}  // namespace fastplace
