// Conversion of Python integer arguments (scalars, 1-D sequences and arrays, amount
// matrices) for every binding. One rule everywhere: bool and fractional floats are
// refused with an error naming the argument and the value, never truncated; Python
// ints and numpy integers (scalars and arrays) are accepted when in range. Amount
// matrices also take whole floats, as the public Python layer documents.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

namespace fastplace::bindings {

namespace py = pybind11;

// A server or container id: an int or int-like (numpy integers), never bool or float.
inline std::int64_t int_arg(PyObject* obj, const char* name) {
    if (PyLong_CheckExact(obj)) {
        int overflow = 0;
        const long long value = PyLong_AsLongLongAndOverflow(obj, &overflow);
        if (!overflow) return value;
        throw py::value_error(std::string(name) + " = " + py::repr(obj).cast<std::string>() +
                              " is too large for int64");
    }
    if (PyBool_Check(obj) || !PyIndex_Check(obj)) {
        throw py::type_error(std::string(name) + " must be an integer, got " + Py_TYPE(obj)->tp_name);
    }
    py::object as_int = py::reinterpret_steal<py::object>(PyNumber_Index(obj));
    if (!as_int) throw py::error_already_set();
    return int_arg(as_int.ptr(), name);
}

// A count or index that must be >= 0 (a dimension, a limit, a number of rows).
inline std::size_t count_arg(PyObject* obj, const char* name) {
    const std::int64_t value = int_arg(obj, name);
    if (value < 0) throw py::value_error(std::string(name) + " = " + std::to_string(value) + " must be >= 0");
    return static_cast<std::size_t>(value);
}

inline std::string element(const char* field, std::size_t i) { return std::string(field) + "[" + std::to_string(i) + "]"; }

// Whether value converts to T without a message. The array loops test this first and
// build the element's name only for a value that fails: one string per element cost
// ~30 ns, more than the whole conversion (half of a 540-block fetch call).
template <typename T>
bool fits_signed(long long value) {
    if constexpr (std::is_unsigned_v<T>) {
        return value >= 0 && static_cast<unsigned long long>(value) <= std::numeric_limits<T>::max();
    } else {
        return value >= static_cast<long long>(std::numeric_limits<T>::min()) &&
               value <= static_cast<long long>(std::numeric_limits<T>::max());
    }
}

template <typename T>
bool fits_unsigned(unsigned long long value) {
    return value <= static_cast<unsigned long long>(std::numeric_limits<T>::max());
}

template <typename T>
T from_signed(long long value, const std::string& at) {
    if (!fits_signed<T>(value)) {
        if (std::is_unsigned_v<T> && value < 0) {
            throw py::value_error(at + " = " + std::to_string(value) + " must be >= 0");
        }
        throw py::value_error(at + " = " + std::to_string(value) + " is out of range");
    }
    return static_cast<T>(value);
}

template <typename T>
T from_unsigned(unsigned long long value, const std::string& at) {
    if (!fits_unsigned<T>(value)) throw py::value_error(at + " = " + std::to_string(value) + " is out of range");
    return static_cast<T>(value);
}

// One Python integer (int or numpy integer scalar); floats and bools are rejected with
// ValueError, other types with TypeError, each naming `at`.
template <typename T>
T integer_item(PyObject* item, const std::string& at) {
    if (PyBool_Check(item)) throw py::value_error(at + " = " + py::repr(item).cast<std::string>() + " is not an integer");
    if (PyFloat_Check(item) || (!PyIndex_Check(item) && PyNumber_Check(item))) {
        throw py::value_error(at + " = " + py::repr(item).cast<std::string>() + " is not an integer");
    }
    if (!PyIndex_Check(item)) {
        throw py::type_error(at + " must be an integer, got " + std::string(Py_TYPE(item)->tp_name));
    }
    py::object as_int = py::reinterpret_steal<py::object>(PyNumber_Index(item));
    if (!as_int) throw py::error_already_set();
    int overflow = 0;
    const long long value = PyLong_AsLongLongAndOverflow(as_int.ptr(), &overflow);
    if (!overflow) return from_signed<T>(value, at);
    if (overflow > 0) {
        const unsigned long long big = PyLong_AsUnsignedLongLong(as_int.ptr());
        if (!PyErr_Occurred()) return from_unsigned<T>(big, at);
        PyErr_Clear();
    }
    throw py::value_error(at + " = " + py::repr(as_int).cast<std::string>() + " is out of range");
}

// A 1-D sequence or array of integers as a private vector<T> (a copy, so that the core
// may read it with the GIL released). Float arrays and float items raise ValueError
// naming the field and the index of the first offending value.
template <typename T>
std::vector<T> integers(py::handle obj, const char* field) {
    PyObject* raw = obj.ptr();
    if (PyList_Check(raw) || PyTuple_Check(raw)) {
        const Py_ssize_t n = PySequence_Fast_GET_SIZE(raw);
        PyObject** items = PySequence_Fast_ITEMS(raw);
        std::vector<T> out(static_cast<std::size_t>(n));
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = integer_item<T>(items[i], element(field, i));
        return out;
    }
    if (PyUnicode_Check(raw) || PyBytes_Check(raw)) {
        throw py::type_error(std::string(field) + " must be a sequence of integers, got " + Py_TYPE(raw)->tp_name);
    }
    auto array = py::array::ensure(obj);
    if (!array) {
        PyErr_Clear();
        throw py::type_error(std::string(field) + " must be a sequence of integers, got " + Py_TYPE(raw)->tp_name);
    }
    if (array.ndim() != 1) {
        throw py::value_error(std::string(field) + " must be 1-D, got " + std::to_string(array.ndim()) + " dimensions");
    }
    const auto n = static_cast<std::size_t>(array.shape(0));
    std::vector<T> out(n);
    if (n == 0) return out;  // np.asarray([]) is float64, and an empty list is fine
    const char kind = array.dtype().kind();
    if (kind == (std::is_signed_v<T> ? 'i' : 'u') && array.dtype().itemsize() == sizeof(T)) {
        const auto same = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(obj);
        std::copy(same.data(), same.data() + n, out.begin());
        return out;
    }
    if (kind == 'i') {
        const auto wide = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(obj);
        const std::int64_t* values = wide.data();
        for (std::size_t i = 0; i < n; ++i) {
            out[i] = fits_signed<T>(values[i]) ? static_cast<T>(values[i])
                                               : from_signed<T>(values[i], element(field, i));
        }
        return out;
    }
    if (kind == 'u') {
        const auto wide = py::array_t<std::uint64_t, py::array::c_style | py::array::forcecast>::ensure(obj);
        const std::uint64_t* values = wide.data();
        for (std::size_t i = 0; i < n; ++i) {
            out[i] = fits_unsigned<T>(values[i]) ? static_cast<T>(values[i])
                                                 : from_unsigned<T>(values[i], element(field, i));
        }
        return out;
    }
    if (kind == 'f' || kind == 'c' || kind == 'b') {
        throw py::value_error(element(field, 0) + " = " + py::str(array[py::int_(0)]).cast<std::string>() +
                              " is not an integer (" + std::string(field) + " has dtype " +
                              py::str(array.dtype()).cast<std::string>() + ")");
    }
    if (kind == 'O') {  // e.g. a generator of Python ints, or mixed objects
        for (std::size_t i = 0; i < n; ++i) {
            py::object item = array[py::int_(i)];
            out[i] = integer_item<T>(item.ptr(), element(field, i));
        }
        return out;
    }
    throw py::type_error(std::string(field) + " must hold integers, got dtype " +
                         py::str(array.dtype()).cast<std::string>());
}

// integers<T> as a new C-contiguous 1-D array that nothing else references: the core
// may read it with the GIL released, while other threads run (and could change the
// caller's array under a check already made). An array of T is copied in one pass.
template <typename T>
py::array_t<T, py::array::c_style> integer_array(py::handle obj, const char* field) {
    if (py::isinstance<py::array>(obj)) {
        auto array = py::reinterpret_borrow<py::array>(obj);
        if (array.ndim() == 1 && array.dtype().is(py::dtype::of<T>())) {
            const auto same = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(obj);
            return py::array_t<T, py::array::c_style>(same.shape(0), same.data());
        }
    }
    const std::vector<T> values = integers<T>(obj, field);
    return py::array_t<T, py::array::c_style>(static_cast<py::ssize_t>(values.size()), values.data());
}

// An (n, dims) int64 matrix of amounts: integer arrays (uint64 values above int64
// refused) and float arrays of finite whole numbers within int64; anything else, or
// a value that would not convert exactly, raises naming what[row][col] and the value.
// The result may be the caller's own array: copy it before releasing the GIL.
inline py::array_t<std::int64_t, py::array::c_style> amount_matrix(py::handle obj, std::size_t dims,
                                                                  const char* what) {
    auto array = py::array::ensure(obj);
    if (!array) {
        PyErr_Clear();
        throw py::type_error(std::string(what) + " must be an integer array, got " + Py_TYPE(obj.ptr())->tp_name);
    }
    if (array.ndim() != 2 || static_cast<std::size_t>(array.shape(1)) != dims) {
        throw py::value_error(std::string(what) + " must have shape (n, " + std::to_string(dims) + ")");
    }
    const auto at = [&](std::size_t i) {
        return std::string(what) + "[" + std::to_string(i / dims) + "][" + std::to_string(i % dims) + "]";
    };
    const char kind = array.dtype().kind();
    const auto n = static_cast<std::size_t>(array.size());
    if (kind == 'u') {
        const auto wide = py::array_t<std::uint64_t, py::array::c_style | py::array::forcecast>::ensure(obj);
        for (std::size_t i = 0; i < n; ++i) {
            if (wide.data()[i] > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
                throw py::value_error(at(i) + " = " + std::to_string(wide.data()[i]) + " is too large for int64");
            }
        }
    } else if (kind == 'f') {
        const auto values = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(obj);
        for (std::size_t i = 0; i < n; ++i) {
            const double v = values.data()[i];
            const char* problem = !std::isfinite(v)          ? "is not finite"
                                  : v != std::floor(v)       ? "is not a whole number"
                                  : v < -0x1p63 || v >= 0x1p63 ? "is outside the int64 range"
                                                             : nullptr;
            if (problem != nullptr) {
                throw py::value_error(at(i) + " = " + py::repr(py::float_(v)).cast<std::string>() + " " + problem);
            }
        }
    } else if (kind != 'i') {
        throw py::type_error(std::string(what) + " must hold integers, got dtype " +
                             py::str(array.dtype()).cast<std::string>());
    }
    return py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(obj);
}

}  // namespace fastplace::bindings
