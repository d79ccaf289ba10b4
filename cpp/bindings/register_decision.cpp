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
#include "integer_args.hpp"
#include "native_self.hpp"
#include "request_conversion.hpp"

namespace py = pybind11;

namespace fastplace::bindings {

namespace {

// Block ids as any 1-D integer sequence or array (as features.py's _ids takes them);
// floats and bools are refused as everywhere else (integer_args.hpp).
void convert_block_ids(py::handle obj, std::vector<BlockId>& out) {
    out.clear();
    if (obj.is_none()) return;
    out = integers<BlockId>(obj, "block_ids");
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (out[i] < 0) {
            throw py::value_error("block_ids[" + std::to_string(i) + "] = " + std::to_string(out[i]) +
                                  " is not a block id");
        }
    }
}

// The object behind an optional argument (None -> nullptr), checked by native<T>().
template <typename T>
const T* optional_native(py::handle obj) {
    return obj.is_none() ? nullptr : &native<T>(obj);
}

py::tuple decide(py::handle cluster_arg, py::handle blocks_arg, py::handle scorer_arg, py::handle request,
                 py::handle block_ids, py::handle k_arg) {
    const ClusterState& cluster = native<ClusterState>(cluster_arg);
    const BlockIndex* blocks = optional_native<BlockIndex>(blocks_arg);
    const MlpScorer* scorer = optional_native<MlpScorer>(scorer_arg);
    const std::size_t k = count_arg(k_arg.ptr(), "k");
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
