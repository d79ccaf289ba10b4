// Open-addressing hash map from a 64-bit key to a 32-bit value, for the block index's
// "(server, block) -> cache entry" lookups: linear probing, backward-shift deletion
// (no tombstones), load factor at most 1/2. One key value is reserved as "empty".
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace fastplace {

class EntryMap {
public:
    static constexpr std::uint64_t kEmptyKey = ~std::uint64_t{0};
    static constexpr std::uint32_t kAbsent = ~std::uint32_t{0};

    std::size_t size() const { return size_; }

    // The value stored under key, or kAbsent.
    std::uint32_t find(std::uint64_t key) const {
        if (slots_.empty()) return kAbsent;
        for (std::size_t i = home(key);; i = (i + 1) & mask_) {
            if (slots_[i].key == key) return slots_[i].value;
            if (slots_[i].key == kEmptyKey) return kAbsent;
        }
    }

    // Stores value under key, which must not be present and must not be kEmptyKey.
    void insert(std::uint64_t key, std::uint32_t value) {
        if (2 * (size_ + 1) > slots_.size()) grow();
        std::size_t i = home(key);
        while (slots_[i].key != kEmptyKey) i = (i + 1) & mask_;
        slots_[i] = Slot{key, value};
        ++size_;
    }

    // Removes key; returns false (and changes nothing) when it is absent.
    bool erase(std::uint64_t key) {
        if (slots_.empty()) return false;
        std::size_t i = home(key);
        while (slots_[i].key != key) {
            if (slots_[i].key == kEmptyKey) return false;
            i = (i + 1) & mask_;
        }
        // Backward shift: pull later members of the probe run into the hole, so that
        // every key stays reachable from its home slot without tombstones.
        for (std::size_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
            if (slots_[j].key == kEmptyKey) break;
            const std::size_t h = home(slots_[j].key);
            const bool movable = i <= j ? (h <= i || h > j) : (h <= i && h > j);
            if (movable) {
                slots_[i] = slots_[j];
                i = j;
            }
        }
        slots_[i].key = kEmptyKey;
        --size_;
        return true;
    }

    void clear() {
        slots_.clear();
        size_ = 0;
        mask_ = 0;
    }

private:
    struct Slot {
        std::uint64_t key = kEmptyKey;
        std::uint32_t value = 0;
    };

    std::size_t home(std::uint64_t key) const {
        key ^= key >> 33;  // murmur3 finaliser: keys differ mostly in their high half
        key *= 0xff51afd7ed558ccdULL;
        key ^= key >> 33;
        return static_cast<std::size_t>(key) & mask_;
    }

    void grow() {
        std::vector<Slot> old;
        old.swap(slots_);
        slots_.assign(old.empty() ? 16 : 2 * old.size(), Slot{});
        mask_ = slots_.size() - 1;
        size_ = 0;
        for (const Slot& slot : old) {
            if (slot.key != kEmptyKey) insert(slot.key, slot.value);
        }
    }

    std::vector<Slot> slots_;
    std::size_t size_ = 0;
    std::size_t mask_ = 0;
};

}  // namespace fastplace
