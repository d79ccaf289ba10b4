// Binds fastplace::MlpScorer as _core.MlpScorerCore. Each binding converts its
// arguments, forwards to the core and converts the result; nothing else. InvalidArgument
// becomes ValueError through the translator register_cluster installs for the module.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#include "fastplace/mlp_scorer.hpp"
#include "integer_args.hpp"
#include "native_self.hpp"

namespace py = pybind11;

namespace fastplace::bindings {

namespace {

using Floats = py::array_t<float, py::array::c_style | py::array::forcecast>;

// Batches smaller than this score faster than a GIL release/re-acquire round trip.
constexpr std::size_t kReleaseGilFromRows = 4096;

Floats as_floats(const py::handle& obj, const std::string& what) {
    auto array = Floats::ensure(obj);
    if (!array) throw py::type_error(what + " must be a float array");
    return array;
}

std::unique_ptr<MlpScorer> make_scorer(const py::sequence& weights, const py::sequence& biases, const py::handle& mean,
                                       const py::handle& std_dev) {
    if (weights.size() == 0) throw py::value_error("weights must hold at least one layer");
    std::vector<std::size_t> sizes;
    std::vector<std::vector<float>> w;
    std::vector<std::vector<float>> b;
    for (std::size_t l = 0; l < weights.size(); ++l) {
        Floats matrix = as_floats(weights[l], "weights[" + std::to_string(l) + "]");
        if (matrix.ndim() != 2) {
            throw py::value_error("weights[" + std::to_string(l) + "] must have shape (out, in), got " +
                                  std::to_string(matrix.ndim()) + " dimensions");
        }
        if (l == 0) sizes.push_back(static_cast<std::size_t>(matrix.shape(1)));
        sizes.push_back(static_cast<std::size_t>(matrix.shape(0)));
        w.emplace_back(matrix.data(), matrix.data() + matrix.size());
    }
    for (std::size_t l = 0; l < biases.size(); ++l) {
        Floats vector = as_floats(biases[l], "biases[" + std::to_string(l) + "]");
        b.emplace_back(vector.data(), vector.data() + vector.size());
    }
    Floats m = as_floats(mean, "mean");
    Floats s = as_floats(std_dev, "std");
    return std::make_unique<MlpScorer>(std::move(sizes), std::move(w), std::move(b),
                                       std::vector<float>(m.data(), m.data() + m.size()),
                                       std::vector<float>(s.data(), s.data() + s.size()));
}

// score() and score_decision() share the argument handling; decision selects the entry
// point (and shared_tail, the cluster-wide columns, is used only there).
py::array_t<float> score_rows(const MlpScorer& scorer, const py::handle& obj, bool decision,
                              std::size_t shared_tail) {
    Floats features = as_floats(obj, "features");
    if (features.ndim() != 2) {
        throw py::value_error("features must have shape (k, " + std::to_string(scorer.n_features()) + "), got " +
                              std::to_string(features.ndim()) + " dimensions");
    }
    const auto k = static_cast<std::size_t>(features.shape(0));
    const auto f = static_cast<std::size_t>(features.shape(1));
    py::array_t<float> out(static_cast<py::ssize_t>(k));
    const float* in = features.data();
    float* dst = out.mutable_data();
    if (shared_tail > f) {
        throw py::value_error("shared_tail = " + std::to_string(shared_tail) + " exceeds the " + std::to_string(f) +
                              " feature columns");
    }
    // Fold only the trailing columns that really are equal on every row (checked in C++,
    // not numpy: a numpy check costs more than the scoring it would save).
    shared_tail = MlpScorer::equal_tail(in, k, f, shared_tail);
    const auto run = [&] {
        if (decision) {
            scorer.score_decision(in, k, f, dst, shared_tail);
        } else {
            scorer.score(in, k, f, dst);
        }
    };
    if (k >= kReleaseGilFromRows) {
        py::gil_scoped_release release;
        run();
    } else {
        run();
    }
    return out;
}

py::array_t<float> score(const MlpScorer& scorer, const py::handle& obj) { return score_rows(scorer, obj, false, 0); }

py::array_t<float> score_decision(const MlpScorer& scorer, const py::handle& obj, py::handle shared_tail) {
    return score_rows(scorer, obj, true, count_arg(shared_tail.ptr(), "shared_tail"));
}

}  // namespace

void register_scorer(py::module_& m) {
    // Docstrings carry their own signature line (see register_cluster).
    py::options options;
    options.disable_function_signatures();
    py::class_<MlpScorer>(m, "MlpScorerCore",
                          "A ReLU multilayer perceptron in C++ that scores candidate servers (the RO's network).")
        .def(py::init(&make_scorer), py::arg("weights"), py::arg("biases"), py::arg("mean"), py::arg("std"),
             "__init__(self, weights, biases, mean, std)\n--\n\n"
             "weights: one float32 (out, in) matrix per layer; biases: one float32 vector per layer;\n"
             "mean, std: float32 feature normalisation (features are (x - mean) / std).")
        .def("score", method<MlpScorer>(&score), py::arg("features"),
             "score(self, features)\n--\n\n"
             "One float32 score per row of a (k, n_features) float32 array (higher is better).")
        .def("score_decision", method<MlpScorer>(&score_decision), py::arg("features"), py::arg("shared_tail") = 0,
             "score_decision(self, features, shared_tail=0)\n--\n\n"
             "The rows of one decision: the same scores up to float32 rounding, skipping hidden units that "
             "are zero on whole blocks of rows; of the last shared_tail columns, those equal (bit for bit) on "
             "every row go into the first layer once.")
        .def_property_readonly("n_features", method<MlpScorer>(&MlpScorer::n_features), "Input width (int).")
        .def_property_readonly("sizes", method<MlpScorer>(&MlpScorer::sizes), "Layer widths, input first (list[int]).")
        .def_property_readonly("kernel", method<MlpScorer>(&MlpScorer::kernel_name),
                               "Name of the kernel in use (str; FASTPLACE_SCORER_GENERIC=1 picks the portable one).");
}

}  // namespace fastplace::bindings
