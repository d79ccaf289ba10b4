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
    // Docstrings carry their own signature line (see register_cluster).
    py::options options;
    options.disable_function_signatures();
    py::class_<BlockIndex>(m, "BlockIndexCore", py::dynamic_attr(),
                           "The native block-locality index behind fastplace.BlockIndex (use that class).")
        .def(py::init(&from_snapshot), py::arg("snapshot"),  // first: cache_bytes takes any object
             "BlockIndexCore(snapshot) or BlockIndexCore(cache_bytes): from snapshot() bytes, or one cache\n"
             "size in bytes per server (fastplace.BlockIndex wraps both).")
        .def(py::init(&from_cache_bytes), py::arg("cache_bytes"))
        .def_property_readonly("n_servers", &BlockIndex::n_servers, "Number of servers (int).")
        .def_property_readonly("n_blocks", &BlockIndex::n_blocks,
                               "Number of distinct blocks interned so far (int); block ids are 0 .. n_blocks - 1.")
        .def_property_readonly("n_holder_sets", &BlockIndex::n_holder_sets,
                               "Distinct sets of holding servers stored (int): how well blocks share them.")
        .def("add_servers",
             [](BlockIndex& index, py::handle cache_bytes) {
                 const std::vector<Bytes> sizes = integers<Bytes>(cache_bytes, "cache_bytes");
                 return index.add_servers(sizes.data(), sizes.size());
             },
             py::arg("cache_bytes"),
             "add_servers(self, cache_bytes)\n--\n\n"
             "Appends one server with an empty cache per entry of cache_bytes (1-D integers, bytes);\n"
             "returns the first new server id (int).")
        .def("intern", &intern, py::arg("hashes"), py::arg("sizes"),
             "intern(self, hashes, sizes)\n--\n\n"
             "Block ids (an int32 array) for a version's blocks, interning unseen hashes in order.\n\n"
             "hashes: 1-D integers (64-bit content hashes); sizes: 1-D integers, bytes > 0, same length.\n"
             "Raises ValueError (nothing interned) when a size is <= 0 or a hash comes back with a\n"
             "different size.")
        .def("block_sizes", [](const BlockIndex& index) { return to_array(index.block_sizes()); },
             "block_sizes(self)\n--\n\n"
             "Size in bytes of every block, indexed by block id (an int64 array).")
        .def("block_hashes", [](const BlockIndex& index) { return to_array(index.block_hashes()); },
             "block_hashes(self)\n--\n\n"
             "Content hash of every block, indexed by block id (a uint64 array).")
        .def("cached_bytes", &cached_bytes, py::arg("block_ids"),
             "cached_bytes(self, block_ids)\n--\n\n"
             "Bytes of the listed blocks each server already caches: an (n_servers,) int64 array.\n\n"
             "block_ids: 1-D integers from intern() (a block listed twice counts once). Raises\n"
             "ValueError on an unknown id. Releases the GIL from 4,096 servers up.")
        .def("holder_bytes",
             [](const BlockIndex& index, py::handle block_ids) {
                 const std::vector<BlockId> blocks = integers<BlockId>(block_ids, "block_ids");
                 std::vector<ServerId> servers;
                 std::vector<Bytes> bytes;
                 const Bytes total = index.holder_bytes(blocks.data(), blocks.size(), servers, bytes);
                 return py::make_tuple(py::array_t<ServerId>(static_cast<py::ssize_t>(servers.size()), servers.data()),
                                       py::array_t<Bytes>(static_cast<py::ssize_t>(bytes.size()), bytes.data()), total);
             },
             py::arg("block_ids"),
             "holder_bytes(self, block_ids)\n--\n\n"
             "(servers, bytes, total): the servers caching any of the blocks, in increasing order\n"
             "(int64 array), the bytes of those blocks each caches (int64 array, all > 0), and the\n"
             "summed size of the distinct blocks (int).\n\n"
             "block_ids: 1-D integers from intern(). Reads only the blocks' holders, never every server.")
        .def("cached_bytes_on", &cached_bytes_on, py::arg("servers"), py::arg("block_ids"),
             "cached_bytes_on(self, servers, block_ids)\n--\n\n"
             "cached_bytes() for the listed servers only: out[i] belongs to servers[i] (int64 array).\n\n"
             "servers, block_ids: 1-D integers. Raises ValueError on a server out of range.")
        .def("missing_bytes",
             [](const BlockIndex& index, py::handle server, py::handle block_ids) {
                 const auto s = integer_item<ServerId>(server.ptr(), "server");
                 const std::vector<BlockId> blocks = integers<BlockId>(block_ids, "block_ids");
                 return index.missing_bytes(s, blocks.data(), blocks.size());
             },
             py::arg("server"), py::arg("block_ids"),
             "missing_bytes(self, server, block_ids)\n--\n\n"
             "Bytes of the blocks (each counted once) that server (int) does not cache (int):\n"
             "what a cold start there would download. Changes nothing.")
        .def("fetch",
             [](BlockIndex& index, py::handle server, py::handle block_ids) {
                 const auto s = integer_item<ServerId>(server.ptr(), "server");
                 const std::vector<BlockId> blocks = integers<BlockId>(block_ids, "block_ids");
                 return index.fetch(s, blocks.data(), blocks.size());
             },
             py::arg("server"), py::arg("block_ids"),
             "fetch(self, server, block_ids)\n--\n\n"
             "A cold start of the blocks on server (int): returns the bytes downloaded (int).\n\n"
             "The missing blocks are kept, in call order, while they fit beside the call's cached ones;\n"
             "least-recently-used blocks outside the call are evicted only as far as needed.\n"
             "Afterwards the call's blocks are the most recently used.")
        .def("evict_server",
             [](BlockIndex& index, py::handle server) {
                 return index.evict_server(integer_item<ServerId>(server.ptr(), "server"));
             },
             py::arg("server"),
             "evict_server(self, server)\n--\n\n"
             "Drops the whole cache of server (int), e.g. when it left; returns the bytes it held (int).")
        .def("holders",
             [](const BlockIndex& index, py::handle block) {
                 return to_array(index.holders(integer_item<BlockId>(block.ptr(), "block")));
             },
             py::arg("block"),
             "holders(self, block)\n--\n\n"
             "Servers caching block (int, an id from intern()), in increasing order (int64 array).")
        .def("server_blocks",
             [](const BlockIndex& index, py::handle server) {
                 return to_array(index.server_blocks(integer_item<ServerId>(server.ptr(), "server")));
             },
             py::arg("server"),
             "server_blocks(self, server)\n--\n\n"
             "Block ids cached on server (int), least to most recently used (int32 array).")
        .def("used_bytes", [](const BlockIndex& index) { return to_array(index.used_bytes()); },
             "used_bytes(self)\n--\n\n"
             "Bytes cached per server, an (n_servers,) int64 array.")
        .def("cache_bytes", [](const BlockIndex& index) { return to_array(index.cache_bytes()); },
             "cache_bytes(self)\n--\n\n"
             "Cache size in bytes per server, an (n_servers,) int64 array.")
        .def("snapshot",
             [](const BlockIndex& index) {
                 std::vector<std::uint8_t> bytes;
                 {
                     py::gil_scoped_release release;  // serialising reads only C++ state
                     bytes = index.snapshot();
                 }
                 return py::bytes(reinterpret_cast<const char*>(bytes.data()), bytes.size());
             },
             "snapshot(self)\n--\n\n"
             "The whole index as versioned, checksummed bytes, for BlockIndex.restore().")
        .def("validate_reason",
             [](const BlockIndex& index) {
                 py::gil_scoped_release release;  // a full recomputation; other threads may go on
                 return index.validate();
             },
             "validate_reason(self)\n--\n\n"
             "Recomputes every invariant: '' when consistent, else the first broken one (str).\n"
             "BlockIndex.validate() raises with it instead.");
}

}  // namespace fastplace::bindings
