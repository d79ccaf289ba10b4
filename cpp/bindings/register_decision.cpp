// Binds fastplace::ro_decide as _core.ro_decide: the resource optimizer's candidates,
// features and scores in one native call. Conversion and forwarding only; the
// InvalidArgument -> ValueError translator comes from register_cluster. The GIL is
// held throughout (a decision takes microseconds, less than a release round trip);
// the core never waits for the GIL while it holds a lock, so this cannot deadlock.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "fastplace/ro_decision.hpp"
#include "request_conversion.hpp"

namespace py = pybind11;

namespace fastplace::bindings {

namespace {

using Int64s = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

// Block ids as any 1-D integer sequence or array (as features.py's _ids takes them).
void convert_block_ids(py::handle obj, std::vector<BlockId>& out) {
    out.clear();
    if (obj.is_none()) return;
    Int64s ids = Int64s::ensure(obj);
    if (!ids) throw py::type_error("block_ids must be a sequence of integers");
    const std::int64_t* data = ids.data();
    const auto n = static_cast<std::size_t>(ids.size());
    out.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        if (data[i] < 0 || data[i] > std::numeric_limits<BlockId>::max()) {
            throw py::value_error("block_ids[" + std::to_string(i) + "] = " + std::to_string(data[i]) +
                                  " is not a block id");
        }
        out[i] = static_cast<BlockId>(data[i]);
    }
}

py::tuple decide(const ClusterState& cluster, const BlockIndex* blocks, const MlpScorer* scorer, py::handle request,
                 py::handle block_ids, std::size_t k) {
    Amount amounts[kMaxDims];
    convert_request(request, cluster.resources(), amounts);
    thread_local std::vector<BlockId> ids;
    thread_local RoDecision decision;
    convert_block_ids(block_ids, ids);
    if (scorer != nullptr) {
        ro_decide(cluster, blocks, *scorer, amounts, ids.data(), ids.size(), k, decision);
    } else {
        ro_candidates_features(cluster, blocks, amounts, ids.data(), ids.size(), k, decision);
    }
    const auto n = static_cast<py::ssize_t>(decision.candidates.size());
    py::array_t<std::int64_t> candidates(n);
    std::memcpy(candidates.mutable_data(), decision.candidates.data(), decision.candidates.size() * sizeof(ServerId));
    py::array_t<float> features({n, static_cast<py::ssize_t>(kRoFeatures)});
    std::memcpy(features.mutable_data(), decision.features.data(), decision.features.size() * sizeof(float));
    py::object scores = py::none();
    if (scorer != nullptr) {
        py::array_t<float> s(n);
        std::memcpy(s.mutable_data(), decision.scores.data(), decision.scores.size() * sizeof(float));
        scores = std::move(s);
    }
    return py::make_tuple(decision.server, std::move(candidates), std::move(features), std::move(scores));
}

}  // namespace

void register_decision(py::module_& m) {
    // The docstring carries its own signature line (see register_cluster).
    py::options options;
    options.disable_function_signatures();
    m.def("ro_decide", &decide, py::arg("cluster"), py::arg("blocks"), py::arg("scorer"), py::arg("request"),
          py::arg("block_ids"), py::arg("k"),
          "ro_decide(cluster, blocks, scorer, request, block_ids, k)\n--\n\n"
          "(server, candidates, features, scores): the resource optimizer's decision in C++ "
          "(fastplace/optimizer/features.py's candidates and features, scored by scorer).");
    m.attr("RO_N_FEATURES") = kRoFeatures;
}

}  // namespace fastplace::bindings
