// The _core extension module: wires the per-area registrations together.
#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace fastplace::bindings {
void register_cluster(py::module_& m);
void register_blocks(py::module_& m);
void register_scorer(py::module_& m);
void register_decision(py::module_& m);
}

PYBIND11_MODULE(_core, m) {
    m.doc() = "fastplace native core (private; use the fastplace package)";
    fastplace::bindings::register_cluster(m);
    fastplace::bindings::register_blocks(m);  // after register_cluster: shares its exception translators
    fastplace::bindings::register_scorer(m);  // after register_cluster: shares its exception translators
    fastplace::bindings::register_decision(m);  // after the classes its arguments are
}
