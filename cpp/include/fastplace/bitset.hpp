// Word-level helpers for the 64-servers-per-word bitsets of the cluster state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace fastplace {

using Word = std::uint64_t;
constexpr std::size_t kWordBits = 64;

// Number of 64-bit words needed to hold n bits.
constexpr std::size_t words_for(std::size_t n) { return (n + kWordBits - 1) / kWordBits; }

// A growable bitset that keeps a one-bit-per-word summary ("this word is non-zero"),
// so that scans over mostly-empty bitsets skip 64 words at a time.
class SummarisedBitset {
public:
    void resize(std::size_t n_bits);
    std::size_t n_words() const { return words_.size(); }
    const Word* words() const { return words_.data(); }
    const Word* summary() const { return summary_.data(); }
    std::size_t n_summary_words() const { return summary_.size(); }

    bool test(std::size_t i) const { return (words_[i / kWordBits] >> (i % kWordBits)) & 1U; }

    void set(std::size_t i) {
        const std::size_t w = i / kWordBits;
        words_[w] |= Word{1} << (i % kWordBits);
        summary_[w / kWordBits] |= Word{1} << (w % kWordBits);
    }

    void reset(std::size_t i) {
        const std::size_t w = i / kWordBits;
        words_[w] &= ~(Word{1} << (i % kWordBits));
        if (words_[w] == 0) summary_[w / kWordBits] &= ~(Word{1} << (w % kWordBits));
    }

    // Recomputes the summary from the words; true when it matched already.
    bool summary_consistent() const;

private:
    std::vector<Word> words_;
    std::vector<Word> summary_;
};

}  // namespace fastplace
