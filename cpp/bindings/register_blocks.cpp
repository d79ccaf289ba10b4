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
#include "integer_args.hpp"
#include "native_self.hpp"

namespace py = pybind11;

namespace fastplace::bindings {

namespace {

// Queries over fewer servers are cheaper than a GIL release/re-acquire round trip.
constexpr std::size_t kReleaseGilFromServers = 4096;

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
        .def_property_readonly("n_servers", method<BlockIndex>(&BlockIndex::n_servers), "Number of servers (int).")
        .def_property_readonly("n_blocks", method<BlockIndex>(&BlockIndex::n_blocks),
                               "Number of distinct blocks interned so far (int); block ids are 0 .. n_blocks - 1.")
        .def_property_readonly("n_holder_sets", method<BlockIndex>(&BlockIndex::n_holder_sets),
                               "Distinct sets of holding servers stored (int): how well blocks share them.")
        .def("add_servers",
             method<BlockIndex>([](BlockIndex& index, py::handle cache_bytes) {
                 const std::vector<Bytes> sizes = integers<Bytes>(cache_bytes, "cache_bytes");
                 return index.add_servers(sizes.data(), sizes.size());
             }),
             py::arg("cache_bytes"),
             "add_servers(self, cache_bytes)\n--\n\n"
             "Appends one server with an empty cache per entry of cache_bytes (1-D integers, bytes);\n"
             "returns the first new server id (int).")
        .def("intern", method<BlockIndex>(&intern), py::arg("hashes"), py::arg("sizes"),
             "intern(self, hashes, sizes)\n--\n\n"
             "Block ids (an int32 array) for a version's blocks, interning unseen hashes in order.\n\n"
             "hashes: 1-D integers (64-bit content hashes); sizes: 1-D integers, bytes > 0, same length.\n"
             "Raises ValueError (nothing interned) when a size is <= 0 or a hash comes back with a\n"
             "different size.")
        .def("block_sizes", method<BlockIndex>([](const BlockIndex& index) { return to_array(index.block_sizes()); }),
             "block_sizes(self)\n--\n\n"
             "Size in bytes of every block, indexed by block id (an int64 array).")
        .def("block_hashes", method<BlockIndex>([](const BlockIndex& index) { return to_array(index.block_hashes()); }),
             "block_hashes(self)\n--\n\n"
             "Content hash of every block, indexed by block id (a uint64 array).")
        .def("cached_bytes", method<BlockIndex>(&cached_bytes), py::arg("block_ids"),
             "cached_bytes(self, block_ids)\n--\n\n"
             "Bytes of the listed blocks each server already caches: an (n_servers,) int64 array.\n\n"
             "block_ids: 1-D integers from intern() (a block listed twice counts once). Raises\n"
             "ValueError on an unknown id. Releases the GIL from 4,096 servers up.")
        .def("holder_bytes",
             method<BlockIndex>([](const BlockIndex& index, py::handle block_ids) {
                 const std::vector<BlockId> blocks = integers<BlockId>(block_ids, "block_ids");
                 std::vector<ServerId> servers;
                 std::vector<Bytes> bytes;
                 const Bytes total = index.holder_bytes(blocks.data(), blocks.size(), servers, bytes);
                 return py::make_tuple(py::array_t<ServerId>(static_cast<py::ssize_t>(servers.size()), servers.data()),
                                       py::array_t<Bytes>(static_cast<py::ssize_t>(bytes.size()), bytes.data()), total);
             }),
             py::arg("block_ids"),
             "holder_bytes(self, block_ids)\n--\n\n"
             "(servers, bytes, total): the servers caching any of the blocks, in increasing order\n"
             "(int64 array), the bytes of those blocks each caches (int64 array, all > 0), and the\n"
             "summed size of the distinct blocks (int).\n\n"
             "block_ids: 1-D integers from intern(). Reads only the blocks' holders, never every server.")
        .def("holder_spread_bytes",
             method<BlockIndex>([](const BlockIndex& index, py::handle block_ids) {
                 const std::vector<BlockId> blocks = integers<BlockId>(block_ids, "block_ids");
                 std::vector<ServerId> servers;
                 std::vector<Bytes> bytes;
                 const Bytes total = index.holder_spread_bytes(blocks.data(), blocks.size(), servers, bytes);
                 return py::make_tuple(py::array_t<ServerId>(static_cast<py::ssize_t>(servers.size()), servers.data()),
                                       py::array_t<Bytes>(static_cast<py::ssize_t>(bytes.size()), bytes.data()), total);
             }),
             py::arg("block_ids"),
             "holder_spread_bytes(self, block_ids)\n--\n\n"
             "holder_bytes() with each block's size times the number of servers caching it:\n"
             "(servers, spread, total), spread[i] = sum over the blocks servers[i] caches of\n"
             "size * holders (int64 array); total as in holder_bytes. kube-scheduler's ImageLocality\n"
             "spread with blocks as images. Raises ValueError when a sum could pass int64.")
        .def("cached_bytes_on", method<BlockIndex>(&cached_bytes_on), py::arg("servers"), py::arg("block_ids"),
             "cached_bytes_on(self, servers, block_ids)\n--\n\n"
             "cached_bytes() for the listed servers only: out[i] belongs to servers[i] (int64 array).\n\n"
             "servers, block_ids: 1-D integers. Raises ValueError on a server out of range.")
        .def("missing_bytes",
             method<BlockIndex>([](const BlockIndex& index, py::handle server, py::handle block_ids) {
                 const auto s = integer_item<ServerId>(server.ptr(), "server");
                 const std::vector<BlockId> blocks = integers<BlockId>(block_ids, "block_ids");
                 return index.missing_bytes(s, blocks.data(), blocks.size());
             }),
             py::arg("server"), py::arg("block_ids"),
             "missing_bytes(self, server, block_ids)\n--\n\n"
             "Bytes of the blocks (each counted once) that server (int) does not cache (int):\n"
             "what a cold start there would download. Changes nothing.")
        .def("fetch",
             method<BlockIndex>([](BlockIndex& index, py::handle server, py::handle block_ids) {
                 const auto s = integer_item<ServerId>(server.ptr(), "server");
                 const std::vector<BlockId> blocks = integers<BlockId>(block_ids, "block_ids");
                 return index.fetch(s, blocks.data(), blocks.size());
             }),
             py::arg("server"), py::arg("block_ids"),
             "fetch(self, server, block_ids)\n--\n\n"
             "A cold start of the blocks on server (int): returns the bytes downloaded (int).\n\n"
             "The missing blocks are kept, in call order, while they fit beside the call's cached ones;\n"
             "least-recently-used blocks outside the call are evicted only as far as needed.\n"
             "Afterwards the call's blocks are the most recently used.")
        .def("evict_server",
             method<BlockIndex>([](BlockIndex& index, py::handle server) {
                 return index.evict_server(integer_item<ServerId>(server.ptr(), "server"));
             }),
             py::arg("server"),
             "evict_server(self, server)\n--\n\n"
             "Drops the whole cache of server (int), e.g. when it left; returns the bytes it held (int).")
        .def("holders",
             method<BlockIndex>([](const BlockIndex& index, py::handle block) {
                 return to_array(index.holders(integer_item<BlockId>(block.ptr(), "block")));
             }),
             py::arg("block"),
             "holders(self, block)\n--\n\n"
             "Servers caching block (int, an id from intern()), in increasing order (int64 array).")
        .def("server_blocks",
             method<BlockIndex>([](const BlockIndex& index, py::handle server) {
                 return to_array(index.server_blocks(integer_item<ServerId>(server.ptr(), "server")));
             }),
             py::arg("server"),
             "server_blocks(self, server)\n--\n\n"
             "Block ids cached on server (int), least to most recently used (int32 array).")
        .def("used_bytes", method<BlockIndex>([](const BlockIndex& index) { return to_array(index.used_bytes()); }),
             "used_bytes(self)\n--\n\n"
             "Bytes cached per server, an (n_servers,) int64 array.")
        .def("cache_bytes", method<BlockIndex>([](const BlockIndex& index) { return to_array(index.cache_bytes()); }),
             "cache_bytes(self)\n--\n\n"
             "Cache size in bytes per server, an (n_servers,) int64 array.")
        .def("snapshot",
             method<BlockIndex>([](const BlockIndex& index) {
                 std::vector<std::uint8_t> bytes;
                 {
                     py::gil_scoped_release release;  // serialising reads only C++ state
                     bytes = index.snapshot();
                 }
                 return py::bytes(reinterpret_cast<const char*>(bytes.data()), bytes.size());
             }),
             "snapshot(self)\n--\n\n"
             "The whole index as versioned, checksummed bytes, for BlockIndex.restore().")
        .def("validate_reason",
             method<BlockIndex>([](const BlockIndex& index) {
                 py::gil_scoped_release release;  // a full recomputation; other threads may go on
                 return index.validate();
             }),
             "validate_reason(self)\n--\n\n"
             "Recomputes every invariant: '' when consistent, else the first broken one (str).\n"
             "BlockIndex.validate() raises with it instead.");
    m.attr("BLOCK_INDEX_MAX_SERVERS") = kBlockIndexMaxServers;
}

}  // namespace fastplace::bindings
