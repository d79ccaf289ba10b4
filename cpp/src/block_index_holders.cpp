// BlockIndex::holder_bytes: the servers caching any block of a version and how many of
// its bytes each holds, from the hash-consed holder sets alone (no pass over servers).
// Kept apart from block_index.cpp: it only reads size_, set_of_ and sets_ under the lock.
#include <algorithm>
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
    servers_out.clear();
    bytes_out.clear();
    std::vector<BlockId> distinct(blocks, blocks + k);
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());

    std::lock_guard<std::mutex> lock(mutex_);
    const auto n_blocks = static_cast<BlockId>(size_.size());
    if (!distinct.empty() && (distinct.front() < 0 || distinct.back() >= n_blocks)) {
        for (std::size_t i = 0; i < k; ++i) {
            if (blocks[i] < 0 || blocks[i] >= n_blocks) {
                throw InvalidArgument("block_ids[" + std::to_string(i) + "] = " + std::to_string(blocks[i]) +
                                      " is not a block id: must be in [0, " + std::to_string(n_blocks) + ")");
            }
        }
    }
    // Bytes per holder set: blocks sharing a set add to the same servers.
    Bytes total = 0;
    std::vector<std::pair<std::uint32_t, Bytes>> per_set;
    for (const BlockId block : distinct) {
        const auto b = static_cast<std::size_t>(block);
        total += size_[b];
        if (set_of_[b] != 0) per_set.emplace_back(set_of_[b], size_[b]);
    }
    std::sort(per_set.begin(), per_set.end());
    std::vector<Run> runs;
    for (std::size_t i = 0; i < per_set.size();) {
        const std::uint32_t set = per_set[i].first;
        Bytes bytes = 0;
        for (; i < per_set.size() && per_set[i].first == set; ++i) bytes += per_set[i].second;
        const std::vector<std::int32_t>& members = sets_[set].servers;
        Run run;
        run.servers.assign(members.begin(), members.end());
        run.bytes.assign(members.size(), bytes);
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
