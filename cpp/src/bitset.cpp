#include "fastplace/bitset.hpp"

namespace fastplace {

void SummarisedBitset::resize(std::size_t n_bits) {
    const std::size_t n_words = words_for(n_bits);
    words_.resize(n_words, 0);
    summary_.resize(words_for(n_words), 0);
}

bool SummarisedBitset::summary_consistent() const {
    for (std::size_t w = 0; w < words_.size(); ++w) {
        const bool marked = (summary_[w / kWordBits] >> (w % kWordBits)) & 1U;
        if (marked != (words_[w] != 0)) return false;
    }
    // Summary bits past the last word must be clear.
    for (std::size_t w = words_.size(); w < summary_.size() * kWordBits; ++w) {
        if ((summary_[w / kWordBits] >> (w % kWordBits)) & 1U) return false;
    }
    return true;
}

}  // namespace fastplace
