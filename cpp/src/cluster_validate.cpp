// ClusterState::validate: recomputes every invariant from capacity and the slot table.
// Every sum is overflow-checked: validate must report a state that breaks the limits
// on amounts, not wrap around into one that looks consistent.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "fastplace/cluster_state.hpp"

namespace fastplace {

std::string ClusterState::validate_unlocked() const {
    const std::size_t dims = n_dims();
    const auto at = [&](std::size_t s, std::size_t d) {
        return "server " + std::to_string(s) + " " + resources_[d];
    };
    if (capacity_.size() != n_servers_ * dims || free_.size() != n_servers_ * dims ||
        level_.size() != n_servers_ * dims || count_.size() != n_servers_) {
        return "per-server arrays do not have n_servers rows";
    }

    std::vector<Amount> used(n_servers_ * dims, 0);
    std::vector<std::int64_t> expected_count(n_servers_, 0);
    std::size_t live = 0;
    for (std::size_t slot = 0; slot < slots_.size(); ++slot) {
        const ServerId server = slots_.server(slot);
        if (server < 0) {
            for (std::size_t d = 0; d < dims; ++d) {
                if (slots_.amounts(slot)[d] != 0) {
                    return "free slot " + std::to_string(slot) + " keeps a non-zero amount";
                }
            }
            continue;
        }
        if (static_cast<std::size_t>(server) >= n_servers_) {
            return "slot " + std::to_string(slot) + " names server " + std::to_string(server) +
                   " beyond n_servers " + std::to_string(n_servers_);
        }
        const auto s = static_cast<std::size_t>(server);
        for (std::size_t d = 0; d < dims; ++d) {
            const Amount amount = slots_.amounts(slot)[d];
            if (amount < 0) {
                return "slot " + std::to_string(slot) + " holds " + resources_[d] + " " + std::to_string(amount) +
                       ", a negative amount";
            }
            if (__builtin_add_overflow(used[s * dims + d], amount, &used[s * dims + d])) {
                return at(s, d) + " is over capacity: its containers hold more than 2^63 - 1";
            }
        }
        ++expected_count[s];
        ++live;
    }
    for (std::size_t s = 0; s < n_servers_; ++s) {
        for (std::size_t d = 0; d < dims; ++d) {
            const Amount capacity = capacity_[s * dims + d];
            if (capacity < 0) return at(s, d) + " capacity " + std::to_string(capacity) + " is negative";
            if (used[s * dims + d] > capacity) {
                return at(s, d) + " is over capacity: containers hold " + std::to_string(used[s * dims + d]) +
                       " of " + std::to_string(capacity);
            }
            const Amount expected = capacity - used[s * dims + d];
            if (free_[s * dims + d] != expected) {
                return at(s, d) + " free is " + std::to_string(free_[s * dims + d]) +
                       " but capacity minus its containers is " + std::to_string(expected);
            }
            if (level_[s * dims + d] != level_of(d, expected)) {
                return at(s, d) + " level is " + std::to_string(level_[s * dims + d]) + ", expected " +
                       std::to_string(level_of(d, expected));
            }
            for (std::size_t l = 0; l < kLevels; ++l) {
                const bool want = level_[s * dims + d] >= l;
                if (level_bits_[d * kLevels + l].test(s) != want) {
                    return at(s, d) + " level bit " + std::to_string(l) + " is " + (want ? "clear" : "set") +
                           " but free is " + std::to_string(expected);
                }
            }
        }
        if (count_[s] != expected_count[s]) {
            return "server " + std::to_string(s) + " counts " + std::to_string(count_[s]) +
                   " containers but hosts " + std::to_string(expected_count[s]);
        }
    }
    std::size_t active = 0;
    for (const std::int64_t c : expected_count) active += c > 0 ? 1 : 0;
    if (active != n_active_) {
        return "active server count is " + std::to_string(n_active_) + ", expected " + std::to_string(active);
    }
    if (live != n_live_) {
        return "live container count is " + std::to_string(n_live_) + ", expected " + std::to_string(live);
    }

    // Bits past the last server must stay clear, or a scan would report phantom servers.
    const auto tail_clear = [&](const SummarisedBitset& bits) {
        if (bits.n_words() != words_for(n_servers_)) return false;
        for (std::size_t i = n_servers_; i < bits.n_words() * kWordBits; ++i) {
            if (bits.test(i)) return false;
        }
        return bits.summary_consistent();
    };
    for (std::size_t i = 0; i < level_bits_.size(); ++i) {
        if (!tail_clear(level_bits_[i])) {
            return "level bitset " + resources_[i / kLevels] + "/" + std::to_string(i % kLevels) +
                   " has stray bits or a stale summary";
        }
    }
    if (!tail_clear(available_)) return "available bitset has stray bits or a stale summary";
    if (std::string tree = free_tree_.validate(tree_rows()); !tree.empty()) return tree;
    for (std::size_t i = 0; i < feasible_counts_.size(); ++i) {
        const std::size_t expected = count_feasible_scan(feasible_counts_.request(i));
        if (feasible_counts_.count(i) != expected) {
            return "remembered feasible count " + std::to_string(feasible_counts_.count(i)) + " of request " +
                   describe_request(feasible_counts_.request(i)) + " is stale: " + std::to_string(expected) +
                   " servers fit";
        }
    }

    std::vector<std::uint8_t> seen(slots_.size(), 0);
    for (const std::uint32_t slot : free_slots_) {
        if (slot >= slots_.size()) return "free slot " + std::to_string(slot) + " is beyond the slot table";
        if (slots_.server(slot) >= 0) return "free slot " + std::to_string(slot) + " holds a live container";
        if (seen[slot]++) return "free slot " + std::to_string(slot) + " is listed twice";
    }
    for (std::size_t slot = 0; slot < slots_.size(); ++slot) {
        // Every free slot is on the free list, except retired ones (generation exhausted).
        if (slots_.server(slot) < 0 && !seen[slot] && slots_.generation(slot) != kGenerationMask) {
            return "free slot " + std::to_string(slot) + " is missing from the free list";
        }
    }
    return validate_totals();
}

std::string ClusterState::validate_totals() const {
    const std::size_t dims = n_dims();
    if (free_total_.size() != dims || capacity_total_.size() != dims || largest_capacity_.size() != dims ||
        smallest_capacity_.size() != dims) {
        return "running totals do not have n_dims entries";
    }
    for (std::size_t d = 0; d < dims; ++d) {
        Amount free_sum = 0;
        Amount capacity_sum = 0;
        Amount largest = 0;
        Amount smallest = 0;
        for (std::size_t s = 0; s < n_servers_; ++s) {
            // Free amounts are checked to lie in [0, capacity] before this runs.
            if (__builtin_add_overflow(capacity_sum, capacity_[s * dims + d], &capacity_sum)) {
                return "total capacity of " + resources_[d] + " exceeds 2^63 - 1";
            }
            free_sum += free_[s * dims + d];
            largest = std::max(largest, capacity_[s * dims + d]);
            keep_smallest_positive(smallest, capacity_[s * dims + d]);
        }
        if (static_cast<std::uint64_t>(free_sum) != free_total_[d]) {
            return "running total of free " + resources_[d] + " is stale";
        }
        if (static_cast<std::uint64_t>(capacity_sum) != capacity_total_[d]) {
            return "running total of capacity " + resources_[d] + " is stale";
        }
        if (largest != largest_capacity_[d]) return "largest capacity of " + resources_[d] + " is stale";
        if (smallest != smallest_capacity_[d]) return "smallest capacity of " + resources_[d] + " is stale";
    }
    return {};
}

}  // namespace fastplace
