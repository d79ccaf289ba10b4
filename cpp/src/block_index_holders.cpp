// BlockIndex::holder_bytes: the servers caching any block of a version and how many of
// its bytes each holds, from the hash-consed holder sets alone (no pass over servers).
// The blocks are grouped by holder set as for cached_bytes (group_by_holder_set); the
// sets' server lists are then merged, so the result lists only servers that hold some.
#include <algorithm>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "fastplace/block_index.hpp"

namespace fastplace {

namespace {

struct Run {
    std::vector<ServerId> servers;
    std::vector<Bytes> bytes;
};

// a + b into out, servers in increasing order, bytes of a server in both summed.
void merge_runs(const Run& a, const Run& b, Run& out) {
    out.servers.clear();
    out.bytes.clear();
    out.servers.reserve(a.servers.size() + b.servers.size());
    out.bytes.reserve(a.servers.size() + b.servers.size());
    std::size_t i = 0;
    std::size_t j = 0;
    while (i < a.servers.size() || j < b.servers.size()) {
        if (j == b.servers.size() || (i < a.servers.size() && a.servers[i] < b.servers[j])) {
            out.servers.push_back(a.servers[i]);
            out.bytes.push_back(a.bytes[i++]);
        } else if (i == a.servers.size() || b.servers[j] < a.servers[i]) {
            out.servers.push_back(b.servers[j]);
            out.bytes.push_back(b.bytes[j++]);
        } else {
            out.servers.push_back(a.servers[i]);
            out.bytes.push_back(a.bytes[i++] + b.bytes[j++]);
        }
    }
}

}  // namespace

Bytes BlockIndex::holder_bytes(const BlockId* blocks, std::size_t k, std::vector<ServerId>& servers_out,
                               std::vector<Bytes>& bytes_out) const {
    return merged_holder_bytes(blocks, k, false, servers_out, bytes_out);
}

Bytes BlockIndex::holder_spread_bytes(const BlockId* blocks, std::size_t k, std::vector<ServerId>& servers_out,
                                      std::vector<Bytes>& bytes_out) const {
    return merged_holder_bytes(blocks, k, true, servers_out, bytes_out);
}

Bytes BlockIndex::merged_holder_bytes(const BlockId* blocks, std::size_t k, bool spread,
                                      std::vector<ServerId>& servers_out, std::vector<Bytes>& bytes_out) const {
    servers_out.clear();
    bytes_out.clear();
    std::lock_guard<std::mutex> lock(mutex_);
    check_blocks(blocks, k);
    const Bytes total = group_by_holder_set(blocks, k);
    // A server's spread sum is at most the query's bytes times the number of servers.
    const auto n_servers = static_cast<Bytes>(std::max<std::size_t>(servers_.size(), 1));
    if (spread && total > std::numeric_limits<Bytes>::max() / n_servers) {
        throw InvalidArgument("holder_spread_bytes: " + std::to_string(total) + " bytes times " +
                              std::to_string(n_servers) + " servers overflow int64");
    }
    std::vector<Run> runs;
    runs.reserve(touched_sets_.size());
    for (const std::uint32_t set : touched_sets_) {
        const std::vector<std::int32_t>& members = sets_[set].servers;
        Run run;
        run.servers.assign(members.begin(), members.end());
        // Every block of a set has the set's holders: spread weighs its bytes by their count.
        const Bytes weight = spread ? static_cast<Bytes>(members.size()) : 1;
        run.bytes.assign(members.size(), set_bytes_[set] * weight);
        runs.push_back(std::move(run));
    }
    if (runs.empty()) return total;
    // Pairwise merges, a tournament: every holder is copied O(log s) times.
    while (runs.size() > 1) {
        std::vector<Run> next((runs.size() + 1) / 2);
        for (std::size_t r = 0; r + 1 < runs.size(); r += 2) merge_runs(runs[r], runs[r + 1], next[r / 2]);
        if (runs.size() % 2) next.back() = std::move(runs.back());
        runs = std::move(next);
    }
    servers_out = std::move(runs.front().servers);
    bytes_out = std::move(runs.front().bytes);
    return total;
}

}  // namespace fastplace
