// Binds fastplace::BlockIndex as _core.BlockIndexCore. Each binding converts its
// arguments, forwards to the core and converts the result; nothing else. The C++
// exceptions (InvalidArgument -> ValueError, CorruptSnapshot) are translated by the
// translators register_cluster installs for the whole module.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "fastplace/block_index.hpp"

namespace py = pybind11;

namespace fastplace::bindings {

namespace {

// Queries over fewer servers are cheaper than a GIL release/re-acquire round trip.
constexpr std::size_t kReleaseGilFromServers = 4096;

std::string element(const char* field, std::size_t i) { return std::string(field) + "[" + std::to_string(i) + "]"; }

// Whether value converts to T without a message. The array loops test this first and
// build the element's name only for a value that fails: one string per element cost
// ~30 ns, more than the whole conversion (half of a 540-block fetch call).
template <typename T>
bool fits_signed(long long value) {
    if constexpr (std::is_unsigned_v<T>) {
        return value >= 0;
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
        if constexpr (std::is_unsigned_v<T>) {
            throw py::value_error(at + " = " + std::to_string(value) + " must be >= 0");
        } else {
            throw py::value_error(at + " = " + std::to_string(value) + " is out of range");
        }
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
    if (kind == 'i' && array.dtype().itemsize() == sizeof(T) && std::is_signed_v<T>) {
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

template <typename T>
py::array_t<T> to_array(const std::vector<T>& values) {
    return py::array_t<T>(static_cast<py::ssize_t>(values.size()), values.data());
}

std::unique_ptr<BlockIndex> from_cache_bytes(py::handle cache_bytes) {
    const std::vector<Bytes> sizes = integers<Bytes>(cache_bytes, "cache_bytes");
    return std::make_unique<BlockIndex>(sizes.data(), sizes.size());
}

std::unique_ptr<BlockIndex> from_snapshot(const py::bytes& data) {
    const std::string_view view = data;
    py::gil_scoped_release release;  // parsing and validation touch no Python objects
    return std::make_unique<BlockIndex>(reinterpret_cast<const std::uint8_t*>(view.data()), view.size());
}

py::array_t<BlockId> intern(BlockIndex& index, py::handle hashes, py::handle sizes) {
    const std::vector<BlockHash> h = integers<BlockHash>(hashes, "hashes");
    const std::vector<Bytes> s = integers<Bytes>(sizes, "sizes");
    if (h.size() != s.size()) {
        throw py::value_error("hashes and sizes must have the same length, got " + std::to_string(h.size()) + " and " +
                              std::to_string(s.size()));
    }
    py::array_t<BlockId> ids(static_cast<py::ssize_t>(h.size()));
    index.intern(h.data(), s.data(), h.size(), ids.mutable_data());
    return ids;
}

py::array_t<Bytes> cached_bytes(const BlockIndex& index, py::handle block_ids) {
    const std::vector<BlockId> blocks = integers<BlockId>(block_ids, "block_ids");
    for (;;) {  // servers added by another thread between sizing and filling: resize
        const std::size_t n = index.n_servers();
        py::array_t<Bytes> out(static_cast<py::ssize_t>(n));
        std::size_t written;
        if (n >= kReleaseGilFromServers) {
            py::gil_scoped_release release;  // reads only C++ state and the private copy of the ids
            written = index.cached_bytes(blocks.data(), blocks.size(), out.mutable_data(), n);
        } else {
            written = index.cached_bytes(blocks.data(), blocks.size(), out.mutable_data(), n);
        }
        if (written == n) return out;
    }
}

py::array_t<Bytes> cached_bytes_on(const BlockIndex& index, py::handle servers, py::handle block_ids) {
    const std::vector<ServerId> listed = integers<ServerId>(servers, "servers");
    const std::vector<BlockId> blocks = integers<BlockId>(block_ids, "block_ids");
    py::array_t<Bytes> out(static_cast<py::ssize_t>(listed.size()));
    index.cached_bytes_on(listed.data(), listed.size(), blocks.data(), blocks.size(), out.mutable_data());
    return out;
}

}  // namespace

void register_blocks(py::module_& m) {
    py::class_<BlockIndex>(m, "BlockIndexCore", py::dynamic_attr())
        .def(py::init(&from_snapshot), py::arg("snapshot"))  // first: cache_bytes takes any object
        .def(py::init(&from_cache_bytes), py::arg("cache_bytes"))
        .def_property_readonly("n_servers", &BlockIndex::n_servers)
        .def_property_readonly("n_blocks", &BlockIndex::n_blocks)
        .def_property_readonly("n_holder_sets", &BlockIndex::n_holder_sets)
        .def("add_servers",
             [](BlockIndex& index, py::handle cache_bytes) {
                 const std::vector<Bytes> sizes = integers<Bytes>(cache_bytes, "cache_bytes");
                 return index.add_servers(sizes.data(), sizes.size());
             },
             py::arg("cache_bytes"))
        .def("intern", &intern, py::arg("hashes"), py::arg("sizes"))
        .def("block_sizes", [](const BlockIndex& index) { return to_array(index.block_sizes()); })
        .def("block_hashes", [](const BlockIndex& index) { return to_array(index.block_hashes()); })
        .def("cached_bytes", &cached_bytes, py::arg("block_ids"))
        .def("holder_bytes",
             [](const BlockIndex& index, py::handle block_ids) {
                 const std::vector<BlockId> blocks = integers<BlockId>(block_ids, "block_ids");
                 std::vector<ServerId> servers;
                 std::vector<Bytes> bytes;
                 const Bytes total = index.holder_bytes(blocks.data(), blocks.size(), servers, bytes);
                 return py::make_tuple(py::array_t<ServerId>(static_cast<py::ssize_t>(servers.size()), servers.data()),
                                       py::array_t<Bytes>(static_cast<py::ssize_t>(bytes.size()), bytes.data()), total);
             },
             py::arg("block_ids"))
        .def("cached_bytes_on", &cached_bytes_on, py::arg("servers"), py::arg("block_ids"))
        .def("missing_bytes",
             [](const BlockIndex& index, py::handle server, py::handle block_ids) {
                 const auto s = integer_item<ServerId>(server.ptr(), "server");
                 const std::vector<BlockId> blocks = integers<BlockId>(block_ids, "block_ids");
                 return index.missing_bytes(s, blocks.data(), blocks.size());
             },
             py::arg("server"), py::arg("block_ids"))
        .def("fetch",
             [](BlockIndex& index, py::handle server, py::handle block_ids) {
                 const auto s = integer_item<ServerId>(server.ptr(), "server");
                 const std::vector<BlockId> blocks = integers<BlockId>(block_ids, "block_ids");
                 return index.fetch(s, blocks.data(), blocks.size());
             },
             py::arg("server"), py::arg("block_ids"))
        .def("evict_server",
             [](BlockIndex& index, py::handle server) {
                 return index.evict_server(integer_item<ServerId>(server.ptr(), "server"));
             },
             py::arg("server"))
        .def("holders",
             [](const BlockIndex& index, py::handle block) {
                 return to_array(index.holders(integer_item<BlockId>(block.ptr(), "block")));
             },
             py::arg("block"))
        .def("server_blocks",
             [](const BlockIndex& index, py::handle server) {
                 return to_array(index.server_blocks(integer_item<ServerId>(server.ptr(), "server")));
             },
             py::arg("server"))
        .def("used_bytes", [](const BlockIndex& index) { return to_array(index.used_bytes()); })
        .def("cache_bytes", [](const BlockIndex& index) { return to_array(index.cache_bytes()); })
        .def("snapshot",
             [](const BlockIndex& index) {
                 std::vector<std::uint8_t> bytes;
                 {
                     py::gil_scoped_release release;  // serialising reads only C++ state
                     bytes = index.snapshot();
                 }
                 return py::bytes(reinterpret_cast<const char*>(bytes.data()), bytes.size());
             })
        .def("validate_reason", [](const BlockIndex& index) {
            py::gil_scoped_release release;  // a full recomputation; other threads may go on
            return index.validate();
        });
}

}  // namespace fastplace::bindings
