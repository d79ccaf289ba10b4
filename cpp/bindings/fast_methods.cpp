#include "fast_methods.hpp"

#include <string>

#include "fastplace/cluster_state.hpp"
#include "native_self.hpp"
#include "request_conversion.hpp"

namespace fastplace::bindings {

namespace {

// The method descriptor has already checked that self is a ClusterCore (or subclass)
// instance; pybind11 keeps the C++ object behind its first value holder. native<T>()
// (native_self.hpp) in short: only the common simple layout is inlined here, a place
// is ~30 ns. The holder flag, not the value pointer, says whether __init__ ran: a
// pybind11 cast of an uninitialised self allocates (unconstructed) value memory.
ClusterState& state_of(PyObject* self) {
    auto* inst = reinterpret_cast<py::detail::instance*>(self);
    if (inst->simple_layout) {
        if (inst->simple_holder_constructed && inst->simple_value_holder[0] != nullptr) {
            return *static_cast<ClusterState*>(inst->simple_value_holder[0]);
        }
    } else {
        return native<ClusterState>(self);
    }
    throw py::type_error("fastplace._core.ClusterCore object is not initialised: its __init__ was never called");
}

// Gathers positional and keyword arguments (vectorcall layout: keyword values follow
// the positional ones, their names in kwnames) into out[], in the order of names[].
// The first `required` names must be given; the others are left nullptr when absent.
template <std::size_t N>
void collect_args(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames, const char* method,
                  const char* const (&names)[N], PyObject* (&out)[N], std::size_t required = N) {
    const auto positional = static_cast<std::size_t>(nargs);
    if (positional > N) {
        throw py::type_error(std::string(method) + "() takes " + std::to_string(N) + " argument" +
                             (N == 1 ? "" : "s") + ", got " + std::to_string(positional));
    }
    for (std::size_t i = 0; i < N; ++i) out[i] = i < positional ? args[i] : nullptr;
    const Py_ssize_t n_keywords = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < n_keywords; ++k) {
        const char* given = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, k));
        if (given == nullptr) throw py::error_already_set();
        std::size_t i = 0;
        while (i < N && std::string(names[i]) != given) ++i;
        if (i == N) {
            throw py::type_error(std::string(method) + "() got an unexpected keyword argument '" + given + "'");
        }
        if (out[i] != nullptr) {
            throw py::type_error(std::string(method) + "() got multiple values for argument '" + given + "'");
        }
        out[i] = args[nargs + k];
    }
    for (std::size_t i = 0; i < required; ++i) {
        if (out[i] == nullptr) {
            throw py::type_error(std::string(method) + "() missing required argument '" + names[i] + "'");
        }
    }
}

// Runs body, turning C++ and pybind11 exceptions into a set Python error + nullptr.
template <typename Body>
PyObject* guarded(Body&& body) {
    try {
        return body();
    } catch (py::error_already_set& e) {
        e.restore();
    } catch (const py::builtin_exception& e) {
        e.set_error();
    } catch (const InvalidArgument& e) {
        PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const UnknownContainer& e) {
        PyErr_SetString(PyExc_KeyError, e.what());
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
    }
    return nullptr;
}

PyObject* first_fit(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
    return guarded([&] {
        static const char* const names[] = {"request"};
        PyObject* given[1];
        collect_args(args, nargs, kwnames, "first_fit", names, given);
        ClusterState& state = state_of(self);
        Amount request[kMaxDims];
        convert_request(given[0], state.resources(), request);
        return PyLong_FromLongLong(state.first_fit(request));
    });
}

PyObject* fits(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
    return guarded([&] {
        static const char* const names[] = {"server", "request"};
        PyObject* given[2];
        collect_args(args, nargs, kwnames, "fits", names, given);
        ClusterState& state = state_of(self);
        const std::int64_t server = int_arg(given[0], "server");
        Amount request[kMaxDims];
        convert_request(given[1], state.resources(), request);
        return py::bool_(state.fits(server, request)).release().ptr();
    });
}

PyObject* place(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
    return guarded([&] {
        static const char* const names[] = {"server", "request"};
        PyObject* given[2];
        collect_args(args, nargs, kwnames, "place", names, given);
        ClusterState& state = state_of(self);
        const std::int64_t server = int_arg(given[0], "server");
        Amount request[kMaxDims];
        convert_request(given[1], state.resources(), request);
        return PyLong_FromLongLong(state.place(server, request));
    });
}

PyObject* release(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
    return guarded([&] {
        static const char* const names[] = {"container"};
        PyObject* given[1];
        collect_args(args, nargs, kwnames, "release", names, given);
        ClusterState& state = state_of(self);
        state.release(int_arg(given[0], "container"));
        Py_RETURN_NONE;
    });
}

PyObject* place_gang(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
    return guarded([&] {
        static const char* const names[] = {"requests", "policy"};
        PyObject* given[2];
        collect_args(args, nargs, kwnames, "place_gang", names, given, 1);
        ClusterState& state = state_of(self);
        PlacePolicy policy = PlacePolicy::first_fit;
        if (given[1] != nullptr) {
            if (!PyUnicode_Check(given[1])) {
                throw py::type_error(std::string("policy must be a str, got ") + Py_TYPE(given[1])->tp_name);
            }
            const char* name = PyUnicode_AsUTF8(given[1]);
            if (name == nullptr) throw py::error_already_set();
            policy = parse_policy(name);
        }
        const std::vector<Amount> matrix = convert_requests(given[0], state.resources());
        const std::vector<Placement> placed = state.place_gang(matrix.data(), matrix.size() / state.n_dims(), policy);
        py::list out(placed.size());
        for (std::size_t i = 0; i < placed.size(); ++i) {
            py::tuple pair = py::make_tuple(placed[i].container, placed[i].server);
            PyList_SET_ITEM(out.ptr(), static_cast<Py_ssize_t>(i), pair.release().ptr());
        }
        return out.release().ptr();
    });
}

// Static storage: method descriptors keep pointers to their PyMethodDef. Each docstring
// starts with CPython's "name($self, ...)\n--\n\n" signature line, which becomes the
// method's __text_signature__ (what inspect.signature and help() show).
PyMethodDef kMethods[] = {
    {"first_fit", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&first_fit)), METH_FASTCALL | METH_KEYWORDS,
     "first_fit($self, request)\n--\n\n"
     "The lowest-index server that is not cordoned and fits request, or -1 (int).\n\n"
     "request: Sequence[int] | 1-D integer array, one amount per resource (whole floats are\n"
     "accepted). Books nothing: follow with place(), or use place_with() to do both atomically."},
    {"fits", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&fits)), METH_FASTCALL | METH_KEYWORDS,
     "fits($self, server, request)\n--\n\n"
     "Whether server (int) can host request now (bool; False when it is cordoned).\n\n"
     "request: Sequence[int] | 1-D integer array, one amount per resource."},
    {"place", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&place)), METH_FASTCALL | METH_KEYWORDS,
     "place($self, server, request)\n--\n\n"
     "Books request on server (int) and returns the new container's id (int).\n\n"
     "request: Sequence[int] | 1-D integer array. Raises ValueError, state untouched, when the\n"
     "server is unknown or request does not fit. Ids are never reused after release()."},
    {"release", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&release)), METH_FASTCALL | METH_KEYWORDS,
     "release($self, container)\n--\n\n"
     "Frees a live container's resources; container (int) is an id from place().\n\n"
     "Raises KeyError when the container is not live (never placed, or released already)."},
    {"place_gang", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&place_gang)),
     METH_FASTCALL | METH_KEYWORDS,
     "place_gang($self, requests, policy='first_fit')\n--\n\n"
     "Places every partition of a model or none: [(container, server), ...] in request order.\n\n"
     "requests: Sequence[Sequence[int]] | (n, n_dims) integer array, one row per partition.\n"
     "policy: 'first_fit' or 'best_fit', applied partition by partition. When a partition\n"
     "finds no server, raises ValueError naming it and leaves the state untouched."},
};

}  // namespace

void install_fast_methods(py::handle cluster_class) {
    auto* type = reinterpret_cast<PyTypeObject*>(cluster_class.ptr());
    for (PyMethodDef& def : kMethods) {
        py::object descriptor = py::reinterpret_steal<py::object>(PyDescr_NewMethod(type, &def));
        if (!descriptor) throw py::error_already_set();
        py::setattr(cluster_class, def.ml_name, descriptor);
    }
}

}  // namespace fastplace::bindings
