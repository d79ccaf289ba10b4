// Hot-path methods bound with the raw CPython vectorcall protocol (METH_FASTCALL).
// pybind11's generic dispatcher costs ~100 ns per call, more than the placement
// itself; these wrappers do the same conversion and forwarding in ~30 ns.
#pragma once

#include <pybind11/pybind11.h>

namespace fastplace::bindings {

// Replaces first_fit, fits, place, release and place_gang on the bound ClusterCore class.
void install_fast_methods(pybind11::handle cluster_class);

}  // namespace fastplace::bindings
