// Binds fastplace::ClusterState as _core.ClusterCore. Each binding converts its
// arguments, forwards to the core and converts the result; nothing else.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fastplace/cluster_state.hpp"
#include "fast_methods.hpp"
#include "request_conversion.hpp"

namespace fastplace::bindings {

namespace {

using Array = py::array_t<Amount, py::array::c_style | py::array::forcecast>;

// Scans shorter than this are cheaper than a GIL release/re-acquire round trip.
constexpr std::size_t kReleaseGilFromServers = 4096;

PlacePolicy parse_policy(const std::string& name) {
    if (name == "first_fit") return PlacePolicy::first_fit;
    if (name == "best_fit") return PlacePolicy::best_fit;
    throw py::value_error("policy = '" + name + "' is not one of 'first_fit', 'best_fit'");
}

Array check_matrix(const py::handle& obj, std::size_t dims, const char* what) {
    auto matrix = Array::ensure(obj);
    if (!matrix) throw py::type_error(std::string(what) + " must be an integer array");
    if (matrix.ndim() != 2 || static_cast<std::size_t>(matrix.shape(1)) != dims) {
        throw py::value_error(std::string(what) + " must have shape (n, " + std::to_string(dims) + ")");
    }
    return matrix;
}

std::unique_ptr<ClusterState> from_capacity(const py::handle& capacity, const std::vector<std::string>& resources) {
    Array matrix = check_matrix(capacity, resources.size(), "capacity");
    return std::make_unique<ClusterState>(resources, matrix.data(), static_cast<std::size_t>(matrix.shape(0)));
}

std::unique_ptr<ClusterState> from_snapshot(const py::bytes& data) {
    const std::string_view view = data;
    py::gil_scoped_release release;  // parsing and validation touch no Python objects
    return std::make_unique<ClusterState>(reinterpret_cast<const std::uint8_t*>(view.data()), view.size());
}

py::array_t<Amount> as_matrix(const std::vector<Amount>& values, std::size_t dims) {
    const auto rows = static_cast<py::ssize_t>(values.size() / dims);
    py::array_t<Amount> out({rows, static_cast<py::ssize_t>(dims)});
    std::copy(values.begin(), values.end(), out.mutable_data());
    return out;
}

py::list placements_to_list(const std::vector<Placement>& placed) {
    py::list out(placed.size());
    for (std::size_t i = 0; i < placed.size(); ++i) {
        out[i] = py::make_tuple(placed[i].container, placed[i].server);
    }
    return out;
}

}  // namespace

void register_cluster(py::module_& m) {
    py::register_exception<CorruptSnapshot>(m, "CorruptSnapshot", PyExc_ValueError);
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const InvalidArgument& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        } catch (const UnknownContainer& e) {
            PyErr_SetString(PyExc_KeyError, e.what());
        }
    });

    auto cls = py::class_<ClusterState>(m, "ClusterCore", py::dynamic_attr())
        .def(py::init(&from_capacity), py::arg("capacity"), py::arg("resources"))
        .def(py::init(&from_snapshot), py::arg("snapshot"))
        .def_property_readonly("n_servers", &ClusterState::n_servers)
        .def_property_readonly("n_dims", &ClusterState::n_dims)
        .def_property_readonly("resources", &ClusterState::resources)
        .def_property_readonly("n_containers", &ClusterState::n_containers)
        .def_property_readonly("n_active_servers", &ClusterState::n_active_servers)
        .def("free_copy", [](const ClusterState& s) { return as_matrix(s.free_matrix(), s.n_dims()); })
        .def("capacity_copy", [](const ClusterState& s) { return as_matrix(s.capacity_matrix(), s.n_dims()); })
        .def("container_counts",
             [](const ClusterState& s) {
                 const std::vector<std::int64_t> counts = s.container_counts();
                 return py::array_t<std::int64_t>(static_cast<py::ssize_t>(counts.size()), counts.data());
             })
        .def("server_rows",
             [](const ClusterState& s,
                const py::array_t<ServerId, py::array::c_style | py::array::forcecast>& servers) {
                 if (servers.ndim() != 1) throw py::value_error("servers must be 1-D");
                 const auto k = static_cast<py::ssize_t>(servers.shape(0));
                 const auto dims = static_cast<py::ssize_t>(s.n_dims());
                 py::array_t<Amount> free({k, dims});
                 py::array_t<Amount> capacity({k, dims});
                 py::array_t<std::int64_t> counts(k);
                 s.server_rows(servers.data(), static_cast<std::size_t>(k), free.mutable_data(),
                               capacity.mutable_data(), counts.mutable_data());
                 return py::make_tuple(free, capacity, counts);
             },
             py::arg("servers"))
        .def("best_fit",
             [](const ClusterState& s, py::handle request) {
                 Amount r[kMaxDims];
                 convert_request(request, s.resources(), r);
                 return s.best_fit(r);
             },
             py::arg("request"))
        .def(
            "memory_bytes",
            [](const ClusterState& s) {
                const ClusterState::MemoryUse use = s.memory_use();
                py::dict out;
                out["servers"] = use.servers;
                out["containers"] = use.containers;
                return out;
            },
            "Bytes the core holds: {'servers': per-server structures (capacities, free amounts, "
            "level bitsets, the free tree), 'containers': the slot table}.")
        .def("count_feasible",
             [](const ClusterState& s, py::handle request) {
                 Amount r[kMaxDims];
                 convert_request(request, s.resources(), r);
                 return s.count_feasible(r);
             },
             py::arg("request"))
        .def("totals",
             [](const ClusterState& s) {
                 const auto dims = static_cast<py::ssize_t>(s.n_dims());
                 py::array_t<Amount> free(dims);
                 py::array_t<Amount> capacity(dims);
                 s.totals(free.mutable_data(), capacity.mutable_data());
                 return py::make_tuple(std::move(free), std::move(capacity));
             })
        .def("largest_capacity", [](const ClusterState& s, std::size_t dim) { return s.largest_capacity(dim); },
             py::arg("dim"))
        .def("feasible",
             [](const ClusterState& s, py::handle request, std::optional<std::int64_t> limit) {
                 Amount r[kMaxDims];
                 convert_request(request, s.resources(), r);
                 if (limit && *limit < 0) {
                     throw py::value_error("limit = " + std::to_string(*limit) + " must be >= 0");
                 }
                 const std::size_t cap = limit ? static_cast<std::size_t>(*limit) : static_cast<std::size_t>(-1);
                 std::vector<ServerId> found;
                 if (!limit && s.n_servers() >= kReleaseGilFromServers) {
                     py::gil_scoped_release release;  // the scan reads only C++ state
                     found = s.feasible(r, cap);
                 } else {
                     found = s.feasible(r, cap);
                 }
                 return py::array_t<ServerId>(static_cast<py::ssize_t>(found.size()), found.data());
             },
             py::arg("request"), py::arg("limit") = py::none())
        .def("place_with",
             [](ClusterState& s, py::handle request, const std::string& policy) {
                 Amount r[kMaxDims];
                 convert_request(request, s.resources(), r);
                 const Placement p = s.place_with(parse_policy(policy), r);
                 return py::make_tuple(p.container, p.server);
             },
             py::arg("request"), py::arg("policy") = "first_fit")
        .def("place_gang",
             [](ClusterState& s, py::handle requests, const std::string& policy) {
                 const PlacePolicy parsed = parse_policy(policy);
                 const std::vector<Amount> matrix = convert_requests(requests, s.resources());
                 return placements_to_list(s.place_gang(matrix.data(), matrix.size() / s.n_dims(), parsed));
             },
             py::arg("requests"), py::arg("policy") = "first_fit")
        .def("container",
             [](const ClusterState& s, py::handle container) {
                 const ContainerId id = int_arg(container.ptr(), "container");
                 py::array_t<Amount> amounts(static_cast<py::ssize_t>(s.n_dims()));
                 const ServerId server = s.container_server(id, amounts.mutable_data());
                 return py::make_tuple(server, amounts);
             },
             py::arg("container"))
        .def("add_servers",
             [](ClusterState& s, const py::handle& capacity) {
                 Array matrix = check_matrix(capacity, s.n_dims(), "capacity");
                 return s.add_servers(matrix.data(), static_cast<std::size_t>(matrix.shape(0)));
             },
             py::arg("capacity"))
        // Server ids go through int_arg (as in fast_methods) so that bool and float are
        // refused with a message naming the argument, instead of True meaning server 1.
        .def("cordon", [](ClusterState& s, py::handle server) { s.cordon(int_arg(server.ptr(), "server")); },
             py::arg("server"))
        .def("uncordon", [](ClusterState& s, py::handle server) { s.uncordon(int_arg(server.ptr(), "server")); },
             py::arg("server"))
        .def("is_cordoned",
             [](const ClusterState& s, py::handle server) { return s.is_cordoned(int_arg(server.ptr(), "server")); },
             py::arg("server"))
        .def("replay",
             [](ClusterState& s, const py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast>& ops,
                const py::handle& requests,
                const py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>& refs) {
                 Array matrix = check_matrix(requests, s.n_dims(), "requests");
                 if (ops.ndim() != 1 || refs.ndim() != 1) throw py::value_error("ops and refs must be 1-D");
                 const auto m = static_cast<std::size_t>(ops.shape(0));
                 if (static_cast<std::size_t>(matrix.shape(0)) != m || static_cast<std::size_t>(refs.shape(0)) != m) {
                     throw py::value_error("ops, requests and refs must have the same length, got " +
                                           std::to_string(m) + ", " + std::to_string(matrix.shape(0)) + ", " +
                                           std::to_string(refs.shape(0)));
                 }
                 py::array_t<ServerId> servers(static_cast<py::ssize_t>(m));
                 py::array_t<ContainerId> containers(static_cast<py::ssize_t>(m));
                 ReplayStats stats;
                 {
                     py::gil_scoped_release release;  // the event loop reads only C++-owned buffers
                     stats = s.replay(ops.data(), matrix.data(), refs.data(), m, servers.mutable_data(),
                                      containers.mutable_data());
                 }
                 py::dict summary;
                 summary["placed"] = stats.placed;
                 summary["unplaced"] = stats.unplaced;
                 summary["released"] = stats.released;
                 return py::make_tuple(servers, containers, summary);
             },
             py::arg("ops"), py::arg("requests"), py::arg("refs"))
        .def("snapshot",
             [](const ClusterState& s) {
                 std::vector<std::uint8_t> bytes;
                 {
                     py::gil_scoped_release release;  // serialising reads only C++ state
                     bytes = s.snapshot();
                 }
                 return py::bytes(reinterpret_cast<const char*>(bytes.data()), bytes.size());
             })
        .def("validate_reason", [](const ClusterState& s) {
            py::gil_scoped_release release;  // a full recomputation; other threads may go on
            return s.validate();
        });
    install_fast_methods(cls);
}

}  // namespace fastplace::bindings
