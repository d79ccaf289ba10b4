// Little-endian byte writer/reader and the FNV-1a checksum used by snapshot formats.
// The reader throws CorruptSnapshot naming the field whenever the bytes run out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fastplace/cluster_state.hpp"  // CorruptSnapshot

namespace fastplace::snapshot_io {

// 64-bit FNV-1a of size bytes.
inline std::uint64_t fnv1a(const std::uint8_t* data, std::size_t size) {
    std::uint64_t hash = 14695981039346656037ULL;  // the FNV-1a 64-bit offset basis
    for (std::size_t i = 0; i < size; ++i) {
        hash ^= data[i];
        hash *= 1099511628211ULL;
    }
    return hash;
}

class Writer {
public:
    template <typename T>
    void put(T value) {
        const auto* bytes = reinterpret_cast<const std::uint8_t*>(&value);
        out_.insert(out_.end(), bytes, bytes + sizeof(T));
    }
    void put_bytes(const void* data, std::size_t size) {
        const auto* bytes = static_cast<const std::uint8_t*>(data);
        out_.insert(out_.end(), bytes, bytes + size);
    }
    // Appends the FNV-1a checksum of everything written so far.
    void put_checksum() { put<std::uint64_t>(fnv1a(out_.data(), out_.size())); }
    std::vector<std::uint8_t>& bytes() { return out_; }

private:
    std::vector<std::uint8_t> out_;
};

class Reader {
public:
    Reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

    // Throws CorruptSnapshot unless n more bytes are left.
    void need(std::size_t n, const char* what) const {
        if (size_ - pos_ < n) {
            throw CorruptSnapshot("snapshot truncated: " + std::string(what) + " needs " + std::to_string(n) +
                                  " bytes at offset " + std::to_string(pos_) + ", only " +
                                  std::to_string(size_ - pos_) + " left");
        }
    }
    template <typename T>
    T get(const char* what) {
        need(sizeof(T), what);
        T value;
        std::memcpy(&value, data_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return value;
    }
    std::string get_string(std::size_t n, const char* what) {
        need(n, what);
        std::string value(reinterpret_cast<const char*>(data_ + pos_), n);
        pos_ += n;
        return value;
    }
    // Guards allocations: a count read from a corrupt header must not ask for more
    // items than the remaining bytes could possibly hold.
    void need_items(std::uint64_t count, std::size_t item_size, const char* what) const {
        if (count > (size_ - pos_) / item_size) {
            throw CorruptSnapshot("snapshot truncated: " + std::string(what) + " count " + std::to_string(count) +
                                  " exceeds the " + std::to_string(size_ - pos_) + " bytes left");
        }
    }
    std::size_t position() const { return pos_; }
    std::size_t remaining() const { return size_ - pos_; }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

// Checks the magic bytes, the version (oldest to newest readable) and the trailing
// checksum of a whole snapshot; returns the size of the body (everything before the
// checksum).
inline std::size_t check_envelope(const std::uint8_t* data, std::size_t size, const char (&magic)[4],
                                  std::uint32_t oldest, std::uint32_t newest) {
    constexpr std::size_t kMinimum = sizeof(magic) + sizeof(std::uint32_t) + sizeof(std::uint64_t);
    if (size < kMinimum) {
        throw CorruptSnapshot("snapshot truncated: " + std::to_string(size) + " bytes is shorter than a header");
    }
    if (std::memcmp(data, magic, sizeof(magic)) != 0) {
        throw CorruptSnapshot("not a fastplace " + std::string(magic, sizeof(magic)) + " snapshot: bad magic bytes");
    }
    std::uint32_t version;
    std::memcpy(&version, data + sizeof(magic), sizeof(version));
    if (version < oldest || version > newest) {
        throw CorruptSnapshot("snapshot version " + std::to_string(version) + " is not supported (expected " +
                              (oldest == newest ? std::to_string(newest)
                                                : std::to_string(oldest) + " to " + std::to_string(newest)) +
                              ")");
    }
    std::uint64_t stored;
    const std::size_t body = size - sizeof(stored);
    std::memcpy(&stored, data + body, sizeof(stored));
    const std::uint64_t computed = fnv1a(data, body);
    if (stored != computed) {
        throw CorruptSnapshot("snapshot checksum mismatch (truncated or corrupted): stored " +
                              std::to_string(stored) + ", computed " + std::to_string(computed));
    }
    return body;
}

}  // namespace fastplace::snapshot_io
