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
#include "integer_args.hpp"
#include "native_self.hpp"
#include "request_conversion.hpp"

namespace fastplace::bindings {

namespace {

// Scans shorter than this are cheaper than a GIL release/re-acquire round trip.
constexpr std::size_t kReleaseGilFromServers = 4096;

std::unique_ptr<ClusterState> from_capacity(const py::handle& capacity, const std::vector<std::string>& resources) {
    const auto matrix = amount_matrix(capacity, resources.size(), "capacity");
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

}  // namespace

void register_cluster(py::module_& m) {
    // Each docstring below starts with its own signature line ("name(self, ...)\n--\n\n",
    // CPython's __text_signature__ format, which inspect.signature and help() read);
    // pybind11's generated one would name every py::handle argument `object` and list
    // the constructor's overloads.
    py::options options;
    options.disable_function_signatures();
    py::register_exception<CorruptSnapshot>(m, "CorruptSnapshot", PyExc_ValueError).attr("__doc__") =
        "Snapshot bytes that are truncated, damaged (checksum) or inconsistent; a ValueError.";
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const InvalidArgument& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        } catch (const UnknownContainer& e) {
            PyErr_SetString(PyExc_KeyError, e.what());
        }
    });

    auto cls = py::class_<ClusterState>(m, "ClusterCore", py::dynamic_attr(),
                                        "The native cluster state behind fastplace.Cluster (use that class).")
        .def(py::init(&from_capacity), py::arg("capacity"), py::arg("resources"),
             "ClusterCore(capacity, resources) or ClusterCore(snapshot): from an (n_servers, n_dims) int64\n"
             "capacity matrix and the resource names, or from snapshot() bytes (fastplace.Cluster wraps both).")
        .def(py::init(&from_snapshot), py::arg("snapshot"))
        .def_property_readonly("n_servers", method<ClusterState>(&ClusterState::n_servers), "Number of servers (int).")
        .def_property_readonly("n_dims", method<ClusterState>(&ClusterState::n_dims),
                               "Number of resource dimensions (int, 1 to 8): the length of every request.")
        .def_property_readonly("resources", method<ClusterState>(&ClusterState::resources),
                               "Names of the resource dimensions (list[str]), in request order.")
        .def_property_readonly("n_containers", method<ClusterState>(&ClusterState::n_containers),
                               "Number of live containers (int).")
        .def_property_readonly("n_active_servers", method<ClusterState>(&ClusterState::n_active_servers),
                               "Number of servers hosting at least one container (int).")
        .def("free_copy", method<ClusterState>([](const ClusterState& s) { return as_matrix(s.free_matrix(), s.n_dims()); }),
             "free_copy(self)\n--\n\n"
             "Free amounts as a new, writable (n_servers, n_dims) int64 array (Cluster.free is read-only).")
        .def("capacity_copy",
             method<ClusterState>([](const ClusterState& s) { return as_matrix(s.capacity_matrix(), s.n_dims()); }),
             "capacity_copy(self)\n--\n\n"
             "Capacities as a new, writable (n_servers, n_dims) int64 array (Cluster.capacity is read-only).")
        .def("container_counts",
             method<ClusterState>([](const ClusterState& s) {
                 const std::vector<std::int64_t> counts = s.container_counts();
                 return py::array_t<std::int64_t>(static_cast<py::ssize_t>(counts.size()), counts.data());
             }),
             "container_counts(self)\n--\n\n"
             "Live containers per server, an (n_servers,) int64 array.")
        .def("server_rows",
             method<ClusterState>([](const ClusterState& s, py::handle server_ids) {
                 const auto servers = integer_array<ServerId>(server_ids, "servers");
                 const auto k = static_cast<py::ssize_t>(servers.shape(0));
                 const auto dims = static_cast<py::ssize_t>(s.n_dims());
                 py::array_t<Amount> free({k, dims});
                 py::array_t<Amount> capacity({k, dims});
                 py::array_t<std::int64_t> counts(k);
                 s.server_rows(servers.data(), static_cast<std::size_t>(k), free.mutable_data(),
                               capacity.mutable_data(), counts.mutable_data());
                 return py::make_tuple(free, capacity, counts);
             }),
             py::arg("servers"),
             "server_rows(self, servers)\n--\n\n"
             "(free, capacity, counts) of the listed servers only, read under one lock.\n\n"
             "servers: 1-D int64 array-like of server ids. Returns (k, n_dims) free and capacity int64\n"
             "arrays and a (k,) int64 array of container counts, row i for servers[i]: O(k), for\n"
             "scorers that look at a few candidates.")
        .def("best_fit",
             method<ClusterState>([](const ClusterState& s, py::handle request) {
                 Amount r[kMaxDims];
                 convert_request(request, s.resources(), r);
                 return s.best_fit(r);
             }),
             py::arg("request"),
             "best_fit(self, request)\n--\n\n"
             "The fitting server left with the least free space, or -1 when none fits.\n\n"
             "request: Sequence[int] | 1-D integer array, one amount per resource. Free space left is\n"
             "summed over the resources as shares of each server's capacity; ties go to the lowest\n"
             "index. Cordoned servers are skipped. Returns int.")
        .def(
            "memory_bytes",
            method<ClusterState>([](const ClusterState& s) {
                const ClusterState::MemoryUse use = s.memory_use();
                py::dict out;
                out["servers"] = use.servers;
                out["containers"] = use.containers;
                return out;
            }),
            "memory_bytes(self)\n--\n\n"
            "Bytes the core holds, as a dict[str, int]: 'servers' for the per-server structures\n"
            "(capacities, free amounts, levels, level bitsets, the free tree, counts) and\n"
            "'containers' for the slot table and its free list.")
        .def("count_feasible",
             method<ClusterState>([](const ClusterState& s, py::handle request) {
                 Amount r[kMaxDims];
                 convert_request(request, s.resources(), r);
                 return s.count_feasible(r);
             }),
             py::arg("request"),
             "count_feasible(self, request)\n--\n\n"
             "How many servers feasible(request) would list (int), without listing them.\n\n"
             "request: Sequence[int] | 1-D integer array. The counts of the 16 request sizes asked\n"
             "most recently are remembered and kept exact by every mutation (O(1) when asked\n"
             "again); a new size counts whole bitset words by popcount and checks only the\n"
             "request's boundary band exactly.")
        .def("totals",
             method<ClusterState>([](const ClusterState& s) {
                 const auto dims = static_cast<py::ssize_t>(s.n_dims());
                 py::array_t<Amount> free(dims);
                 py::array_t<Amount> capacity(dims);
                 s.totals(free.mutable_data(), capacity.mutable_data());
                 return py::make_tuple(std::move(free), std::move(capacity));
             }),
             "totals(self)\n--\n\n"
             "(free, capacity): per-resource sums over all servers, two (n_dims,) int64 arrays.\n\n"
             "Kept up to date by every mutation, so reading them is O(n_dims). Exact: the total\n"
             "capacity of each resource is limited to 2^63 - 1, and free never exceeds capacity.")
        .def("largest_capacity",
             method<ClusterState>([](const ClusterState& s, py::handle dim) {
                 return s.largest_capacity(count_arg(dim.ptr(), "dim"));
             }),
             py::arg("dim"),
             "largest_capacity(self, dim)\n--\n\n"
             "The largest capacity of any server in resource dimension dim (int; 0 without servers).")
        .def("feasible",
             method<ClusterState>([](const ClusterState& s, py::handle request, py::handle limit_arg) {
                 Amount r[kMaxDims];
                 convert_request(request, s.resources(), r);
                 const std::optional<std::size_t> limit =
                     limit_arg.is_none() ? std::nullopt : std::optional(count_arg(limit_arg.ptr(), "limit"));
                 const std::size_t cap = limit ? *limit : static_cast<std::size_t>(-1);
                 std::vector<ServerId> found;
                 if (!limit && s.n_servers() >= kReleaseGilFromServers) {
                     py::gil_scoped_release release;  // the scan reads only C++ state
                     found = s.feasible(r, cap);
                 } else {
                     found = s.feasible(r, cap);
                 }
                 return py::array_t<ServerId>(static_cast<py::ssize_t>(found.size()), found.data());
             }),
             py::arg("request"), py::arg("limit") = py::none(),
             "feasible(self, request, limit=None)\n--\n\n"
             "Every server that can host request now, in increasing order (an int64 array).\n\n"
             "request: Sequence[int] | 1-D integer array. limit: int | None, stop after this many.\n"
             "Cordoned servers are left out. The GIL is released for full scans of 4,096+ servers.")
        .def("place_with",
             method<ClusterState>([](ClusterState& s, py::handle request, const std::string& policy) {
                 Amount r[kMaxDims];
                 convert_request(request, s.resources(), r);
                 const Placement p = s.place_with(parse_policy(policy), r);
                 return py::make_tuple(p.container, p.server);
             }),
             py::arg("request"), py::arg("policy") = "first_fit",
             "place_with(self, request, policy='first_fit')\n--\n\n"
             "Finds a server and books request on it in one atomic step: (container, server).\n\n"
             "request: Sequence[int] | 1-D integer array. policy: 'first_fit' or 'best_fit'.\n"
             "Returns (-1, -1) and books nothing when no server fits; safe where another thread\n"
             "could book between first_fit() and place().")
        .def("container",
             method<ClusterState>([](const ClusterState& s, py::handle container) {
                 const ContainerId id = int_arg(container.ptr(), "container");
                 py::array_t<Amount> amounts(static_cast<py::ssize_t>(s.n_dims()));
                 const ServerId server = s.container_server(id, amounts.mutable_data());
                 return py::make_tuple(server, amounts);
             }),
             py::arg("container"),
             "container(self, container)\n--\n\n"
             "(server, amounts) of a live container: its server id (int) and an (n_dims,) int64 array.\n\n"
             "container: int, an id from place(). Raises KeyError if it is not live.")
        .def("add_servers",
             method<ClusterState>([](ClusterState& s, py::handle capacity) {
                 const auto matrix = amount_matrix(capacity, s.n_dims(), "capacity");
                 return s.add_servers(matrix.data(), static_cast<std::size_t>(matrix.shape(0)));
             }),
             py::arg("capacity"),
             "add_servers(self, capacity)\n--\n\n"
             "Appends servers from an (n, n_dims) int64 capacity matrix; returns the first new id (int).\n\n"
             "Raises ValueError, adding nothing, when a capacity is negative or would take its\n"
             "resource's total capacity over 2^63 - 1.")
        // Server ids go through int_arg (as in fast_methods) so that bool and float are
        // refused with a message naming the argument, instead of True meaning server 1.
        .def("cordon",
             method<ClusterState>([](ClusterState& s, py::handle server) { s.cordon(int_arg(server.ptr(), "server")); }),
             py::arg("server"),
             "cordon(self, server)\n--\n\n"
             "Stops server (int) from taking new containers; those it hosts stay until released.")
        .def("uncordon", method<ClusterState>([](ClusterState& s, py::handle server) {
                 s.uncordon(int_arg(server.ptr(), "server"));
             }),
             py::arg("server"),
             "uncordon(self, server)\n--\n\n"
             "Lets a cordoned server (int) take new containers again.")
        .def("is_cordoned",
             method<ClusterState>([](const ClusterState& s, py::handle server) {
                 return s.is_cordoned(int_arg(server.ptr(), "server"));
             }),
             py::arg("server"),
             "is_cordoned(self, server)\n--\n\n"
             "Whether server (int) is cordoned (bool).")
        .def("replay",
             method<ClusterState>([](ClusterState& s, py::handle op_codes, py::handle requests, py::handle ref_ids) {
                 const auto ops = integer_array<std::uint8_t>(op_codes, "ops");
                 // A private copy, like ops and refs: the loop runs without the GIL.
                 const auto checked = amount_matrix(requests, s.n_dims(), "requests");
                 const py::array_t<Amount, py::array::c_style> matrix({checked.shape(0), checked.shape(1)}, checked.data());
                 const auto refs = integer_array<std::int64_t>(ref_ids, "refs");
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
             }),
             py::arg("ops"), py::arg("requests"), py::arg("refs"),
             "replay(self, ops, requests, refs)\n--\n\n"
             "The event loop behind Cluster.replay, on checked arrays: ops (m,) uint8, requests\n"
             "(m, n_dims) int64, refs (m,) int64. Returns (servers, containers, {placed, unplaced,\n"
             "released}); call Cluster.replay, which checks and converts its arguments.")
        .def("snapshot",
             method<ClusterState>([](const ClusterState& s) {
                 std::vector<std::uint8_t> bytes;
                 {
                     py::gil_scoped_release release;  // serialising reads only C++ state
                     bytes = s.snapshot();
                 }
                 return py::bytes(reinterpret_cast<const char*>(bytes.data()), bytes.size());
             }),
             "snapshot(self)\n--\n\n"
             "The whole state as versioned, checksummed bytes, for Cluster.restore() or save().")
        .def("validate_reason",
             method<ClusterState>([](const ClusterState& s) {
                 py::gil_scoped_release release;  // a full recomputation; other threads may go on
                 return s.validate();
             }),
             "validate_reason(self)\n--\n\n"
             "Recomputes every invariant: '' when consistent, else the first broken one (str).\n"
             "Cluster.validate() raises with it instead.");
    install_fast_methods(cls);
}

}  // namespace fastplace::bindings
