// Container slots: server, generation and requested amounts of every container,
// stored contiguously per slot so that a release touches one cache line, not three.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "fastplace/huge_page_allocator.hpp"

namespace fastplace {

class SlotTable {
public:
    explicit SlotTable(std::size_t dims = 1) : stride_(2 + dims) {}

    std::size_t size() const { return data_.size() / stride_; }

    // Server of the slot's container, or -1 when the slot is free.
    std::int64_t server(std::size_t slot) const { return data_[slot * stride_]; }
    void set_server(std::size_t slot, std::int64_t server) { data_[slot * stride_] = server; }

    // Bumped on every release, so a stale container id no longer matches its slot.
    std::uint32_t generation(std::size_t slot) const {
        return static_cast<std::uint32_t>(data_[slot * stride_ + 1]);
    }
    void set_generation(std::size_t slot, std::uint32_t generation) { data_[slot * stride_ + 1] = generation; }

    std::int64_t* amounts(std::size_t slot) { return &data_[slot * stride_ + 2]; }
    const std::int64_t* amounts(std::size_t slot) const { return &data_[slot * stride_ + 2]; }

    // Hints the CPU to load the slot's cache line (a release will need it soon).
    void prefetch(std::size_t slot) const {
        if (slot < size()) __builtin_prefetch(&data_[slot * stride_]);
    }

    // Appends a free slot with generation 0 and zero amounts; returns its index.
    std::size_t append() {
        data_.resize(data_.size() + stride_, 0);
        set_server(size() - 1, -1);
        return size() - 1;
    }
    std::size_t memory_bytes() const { return data_.capacity() * sizeof(std::int64_t); }
    void pop_back() { data_.resize(data_.size() - stride_); }
    void resize(std::size_t n_slots) {
        const std::size_t old = size();
        data_.resize(n_slots * stride_, 0);
        for (std::size_t slot = old; slot < n_slots; ++slot) set_server(slot, -1);
    }

private:
    std::size_t stride_;
    std::vector<std::int64_t, HugePageAllocator<std::int64_t>> data_;
};

}  // namespace fastplace
