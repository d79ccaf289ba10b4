// What the fuzz targets share: a fatal check, a front-to-back input reader, snapshot
// resealing and a little-endian layout reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "fastplace/cluster_state.hpp"
#include "fastplace/snapshot_io.hpp"

namespace fastplace::fuzz {

// A failed property is a crash with a message: libFuzzer saves the input.
[[noreturn]] inline void fail(const char* file, int line, const std::string& what) {
    std::fprintf(stderr, "%s:%d: property failed: %s\n", file, line, what.c_str());
    std::abort();
}
#define FUZZ_CHECK(cond, what)                                      \
    do {                                                            \
        if (!(cond)) ::fastplace::fuzz::fail(__FILE__, __LINE__, (what)); \
    } while (0)

// Calls f and checks that it throws E (any other exception escapes: a crash).
template <typename E, typename F>
bool throws(F&& f) {
    try {
        f();
    } catch (const E&) {
        return true;
    }
    return false;
}

// Reads the input front to back; past the end every read is 0, so that every byte
// string decodes to something and a shorter input is a prefix of a longer one's run.
class Input {
public:
    Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    bool empty() const { return pos_ >= size_; }
    std::uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
    template <typename T>
    T get() {
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < sizeof(T); ++i) v |= static_cast<std::uint64_t>(u8()) << (8 * i);
        return static_cast<T>(v);
    }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

// Snapshots end in the FNV-1a checksum of everything before it.
constexpr std::size_t kChecksumBytes = sizeof(std::uint64_t);

inline bool checksum_matches(const std::vector<std::uint8_t>& bytes) {
    if (bytes.size() < kChecksumBytes) return false;
    const std::size_t body = bytes.size() - kChecksumBytes;
    std::uint64_t stored;
    std::memcpy(&stored, bytes.data() + body, sizeof(stored));
    return stored == snapshot_io::fnv1a(bytes.data(), body);
}

// Rewrites the trailing checksum so that it matches: the fuzzer's mutations then reach
// the content checks instead of stopping at the checksum.
inline void reseal(std::vector<std::uint8_t>& bytes) {
    if (bytes.size() < kChecksumBytes) return;
    const std::size_t body = bytes.size() - kChecksumBytes;
    const std::uint64_t sum = snapshot_io::fnv1a(bytes.data(), body);
    std::memcpy(bytes.data() + body, &sum, sizeof(sum));
}

// A little-endian reader that reports running out (for the targets' plain parsers).
class Layout {
public:
    Layout(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    template <typename T>
    bool get(T& out) {
        if (size_ - pos_ < sizeof(T)) return false;
        std::memcpy(&out, data_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return true;
    }
    bool skip(std::uint64_t n) {
        if (size_ - pos_ < n) return false;
        pos_ += static_cast<std::size_t>(n);
        return true;
    }
    // Whether count items of item_size bytes could still follow (guards allocations).
    bool room_for(std::uint64_t count, std::size_t item_size) const { return count <= (size_ - pos_) / item_size; }
    const std::uint8_t* here() const { return data_ + pos_; }
    std::size_t remaining() const { return size_ - pos_; }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

}  // namespace fastplace::fuzz
