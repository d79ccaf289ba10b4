// Conversion of Python request objects (sequences, numpy arrays, scalars of either
// integer or whole-valued float type) into fixed-size integer rows. Conversion only:
// range and capacity checks live in the core.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>
#include <vector>

#include "fastplace/cluster_state.hpp"
#include "integer_args.hpp"

namespace fastplace::bindings {

namespace py = pybind11;

inline std::string dim_label(const std::vector<std::string>& names, const char* what, std::size_t d) {
    return std::string(what) + "[" + std::to_string(d) + "] (" + names[d] + ")";
}

// One element: exact ints take the fast path; floats must be finite whole numbers.
inline Amount convert_amount(PyObject* item, const std::vector<std::string>& names, const char* what,
                             std::size_t d) {
    if (PyLong_CheckExact(item)) {
        int overflow = 0;
        const long long value = PyLong_AsLongLongAndOverflow(item, &overflow);
        if (overflow) throw py::value_error(dim_label(names, what, d) + " is too large for int64");
        return static_cast<Amount>(value);
    }
    if (PyBool_Check(item)) {
        throw py::type_error(dim_label(names, what, d) + " must be an integer, got bool");
    }
    if (PyFloat_Check(item)) {
        const double value = PyFloat_AS_DOUBLE(item);
        if (!std::isfinite(value)) {
            throw py::value_error(dim_label(names, what, d) + " = " + py::repr(item).cast<std::string>() +
                                  " is not finite");
        }
        if (value != std::floor(value)) {
            throw py::value_error(dim_label(names, what, d) + " = " + py::repr(item).cast<std::string>() +
                                  " is not a whole number");
        }
        if (std::fabs(value) >= 9.2e18) throw py::value_error(dim_label(names, what, d) + " is too large for int64");
        return static_cast<Amount>(value);
    }
    if (PyIndex_Check(item)) {  // numpy integer scalars and other int-likes
        py::object as_int = py::reinterpret_steal<py::object>(PyNumber_Index(item));
        if (!as_int) throw py::error_already_set();
        return convert_amount(as_int.ptr(), names, what, d);
    }
    // numpy floating scalars that are not float subclasses (float32, float16)
    if (PyObject_HasAttrString(item, "dtype") && PyNumber_Check(item)) {
        // numpy.bool_ has no __index__ but converts to float: reject it like bool.
        if (py::getattr(py::getattr(item, "dtype"), "kind").cast<std::string>() == "b") {
            throw py::type_error(dim_label(names, what, d) + " must be an integer, got " +
                                 std::string(Py_TYPE(item)->tp_name));
        }
        py::object as_float = py::reinterpret_steal<py::object>(PyNumber_Float(item));
        if (!as_float) throw py::error_already_set();
        return convert_amount(as_float.ptr(), names, what, d);
    }
    throw py::type_error(dim_label(names, what, d) + " must be a number, got " +
                         std::string(Py_TYPE(item)->tp_name));
}

// Fills out[0..dims) from a length-dims sequence or 1-D array.
inline void convert_request(py::handle obj, const std::vector<std::string>& names, Amount* out,
                            const char* what = "request") {
    const std::size_t dims = names.size();
    PyObject* raw = obj.ptr();
    if (PyList_CheckExact(raw) || PyTuple_CheckExact(raw)) {
        const Py_ssize_t n = PySequence_Fast_GET_SIZE(raw);
        if (static_cast<std::size_t>(n) != dims) {
            throw py::value_error(std::string(what) + " has " + std::to_string(n) + " values, expected " +
                                  std::to_string(dims));
        }
        PyObject** items = PySequence_Fast_ITEMS(raw);
        for (std::size_t d = 0; d < dims; ++d) out[d] = convert_amount(items[d], names, what, d);
        return;
    }
    if (PyUnicode_Check(raw) || PyBytes_Check(raw)) {
        throw py::type_error(std::string(what) + " must be a sequence of numbers, got " +
                             std::string(Py_TYPE(raw)->tp_name));
    }
    if (py::isinstance<py::array>(obj)) {
        auto array = py::reinterpret_borrow<py::array>(obj);
        if (array.ndim() != 1 || static_cast<std::size_t>(array.shape(0)) != dims) {
            std::string shape;
            for (py::ssize_t i = 0; i < array.ndim(); ++i) shape += (i ? ", " : "") + std::to_string(array.shape(i));
            throw py::value_error(std::string(what) + " has shape (" + shape + "), expected (" +
                                  std::to_string(dims) + ",)");
        }
        const char kind = array.dtype().kind();
        if (kind == 'i' || kind == 'u') {
            auto as_i64 = py::array_t<Amount, py::array::forcecast>::ensure(obj);
            if (kind == 'u') {
                auto as_u64 = py::array_t<std::uint64_t, py::array::forcecast>::ensure(obj);
                for (std::size_t d = 0; d < dims; ++d) {
                    if (as_u64.at(static_cast<py::ssize_t>(d)) > static_cast<std::uint64_t>(INT64_MAX)) {
                        throw py::value_error(dim_label(names, what, d) + " is too large for int64");
                    }
                }
            }
            for (std::size_t d = 0; d < dims; ++d) out[d] = as_i64.at(static_cast<py::ssize_t>(d));
            return;
        }
        if (kind != 'f' && kind != 'b') {
            throw py::type_error(std::string(what) + " must hold numbers, got dtype " +
                                 py::str(array.dtype()).cast<std::string>());
        }
        if (kind == 'b') throw py::type_error(std::string(what) + " must hold numbers, got dtype bool");
    }
    // Sets and dicts iterate, but have no order: a request must be a real sequence.
    if (!PySequence_Check(raw)) {
        throw py::type_error(std::string(what) + " must be a sequence of " + std::to_string(dims) +
                             " numbers, got " + std::string(Py_TYPE(raw)->tp_name));
    }
    py::object seq = py::reinterpret_steal<py::object>(PySequence_Fast(raw, "request must be a sequence"));
    if (!seq) {
        PyErr_Clear();
        throw py::type_error(std::string(what) + " must be a sequence of " + std::to_string(dims) +
                             " numbers, got " + std::string(Py_TYPE(raw)->tp_name));
    }
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq.ptr());
    if (static_cast<std::size_t>(n) != dims) {
        throw py::value_error(std::string(what) + " has " + std::to_string(n) + " values, expected " +
                              std::to_string(dims));
    }
    PyObject** items = PySequence_Fast_ITEMS(seq.ptr());
    for (std::size_t d = 0; d < dims; ++d) out[d] = convert_amount(items[d], names, what, d);
}

// A (n, dims) matrix of requests from a 2-D array or a sequence of requests.
inline std::vector<Amount> convert_requests(py::handle obj, const std::vector<std::string>& names) {
    const std::size_t dims = names.size();
    if (py::isinstance<py::array>(obj)) {
        auto array = py::reinterpret_borrow<py::array>(obj);
        if (array.ndim() != 2 || static_cast<std::size_t>(array.shape(1)) != dims) {
            throw py::value_error("requests must have shape (n, " + std::to_string(dims) + ")");
        }
    }
    py::object seq = py::reinterpret_steal<py::object>(PySequence_Fast(obj.ptr(), "requests"));
    if (!seq) {
        PyErr_Clear();
        throw py::type_error("requests must be a sequence of requests, got " +
                             std::string(Py_TYPE(obj.ptr())->tp_name));
    }
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq.ptr());
    std::vector<Amount> out(static_cast<std::size_t>(n) * dims);
    PyObject** items = PySequence_Fast_ITEMS(seq.ptr());
    for (Py_ssize_t i = 0; i < n; ++i) {
        Amount* row = &out[static_cast<std::size_t>(i) * dims];
        try {
            convert_request(items[i], names, row, "requests");
        } catch (const py::error_already_set&) {
            throw;
        } catch (...) {
            // Convert again with the row's own name, only to word the error.
            const std::string what = "requests[" + std::to_string(i) + "]";
            convert_request(items[i], names, row, what.c_str());
            throw;
        }
    }
    return out;
}

// A placement policy by name ('first_fit' or 'best_fit').
inline PlacePolicy parse_policy(const std::string& name) {
    if (name == "first_fit") return PlacePolicy::first_fit;
    if (name == "best_fit") return PlacePolicy::best_fit;
    throw py::value_error("policy = '" + name + "' is not one of 'first_fit', 'best_fit'");
}

}  // namespace fastplace::bindings
