// A native scorer for the resource optimizer's network (fastplace.optimizer.network.
// ScoreNet): standardise each feature row, then Linear-ReLU-...-Linear down to one
// score per row. The weights are the plain arrays of models/default.npz.
//
// Layout: weights[l] is layer l's matrix, row-major (out_l, in_l) float32 as
// torch.nn.Linear stores it; biases[l] has out_l values; in_0 = mean.size() =
// std.size() = the number of features F, in_{l+1} = out_l, and the last layer has
// out = 1. Standardisation is ScoreNet's: x' = (x - mean) / std, where a std value
// below 1e-3 is replaced by 1 (constant columns; NaN is kept, as ScoreNet keeps it).
// ReLU follows every layer but the last.
//
// Numerics: float32 throughout. Results equal the TorchScript model's up to rounding
// (the division is a multiplication by 1/std, and on CPUs with AVX2+FMA, picked at
// run time, products are fused); NaN or infinite features or weights propagate as
// IEEE arithmetic makes them, as in torch. Rows are scored independently: a row's
// score never depends on the other rows or on k.
//
// Threading contract: immutable after construction; score() is const and touches no
// shared mutable state, so any number of threads may call it concurrently.
//
// Errors: the constructor throws InvalidArgument (naming the layer and the sizes)
// when the shapes do not chain; score() throws InvalidArgument when f != n_features().
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "fastplace/cluster_state.hpp"  // InvalidArgument

namespace fastplace {

class MlpScorer {
public:
    // sizes = {F, hidden_1, ..., hidden_n, 1}: layer l maps sizes[l] -> sizes[l + 1].
    // weights[l].size() must be sizes[l + 1] * sizes[l], biases[l].size() sizes[l + 1];
    // mean and std have F values. At least one layer; every size >= 1.
    MlpScorer(std::vector<std::size_t> sizes, std::vector<std::vector<float>> weights,
              std::vector<std::vector<float>> biases, std::vector<float> mean, std::vector<float> std_dev);

    // Scores k rows of a row-major (k, f) matrix into out[0..k). f must equal
    // n_features(); k may be 0. features and out must not overlap. When the caller
    // knows that the last shared_tail columns hold the same values on every row (the
    // resource optimizer's cluster-wide features), their contribution to the first
    // layer is computed once, from row 0; that changes only the order of the float32
    // additions (results stay within rounding of shared_tail = 0).
    void score(const float* features, std::size_t k, std::size_t f, float* out, std::size_t shared_tail = 0) const;

    // score() for the rows of one decision: the same scores up to float32 rounding
    // (additions in another order). Rows stay row-major and a layer's units lie across the
    // vector lanes (no transposes; 4 rows x 16 units per step with AVX2). Per block of 16
    // rows, two kinds of work are skipped, both exact when every weight is finite (which
    // the scorer checks; with a non-finite weight, or no hidden layer, this is score()):
    //  - a feature column equal on every row of the block adds the same w * x to each
    //    row: it goes into the block's layer-0 bias once (NaN never counts as equal);
    //  - a hidden unit that is zero on every row of the block adds w * 0: the next layer
    //    does not read it (ReLU's keep masks ORed over the rows, a few vector ops).
    // The last layer (one output) is summed while the last hidden layer's outputs are in
    // registers. On the resource optimizer's real rows about half the own feature columns
    // are constant within a block (neighbouring candidates share their server's state)
    // and ~40% of the first layer's units are off for whole blocks.
    void score_decision(const float* features, std::size_t k, std::size_t f, float* out,
                        std::size_t shared_tail = 0) const;

    // How many of the last `tail` columns of a row-major (k, f) matrix hold the same bits
    // on every row: the shared_tail a caller may pass when it does not know it.
    static std::size_t equal_tail(const float* features, std::size_t k, std::size_t f, std::size_t tail);

    std::size_t n_features() const { return sizes_.front(); }
    std::size_t n_layers() const { return weights_.size(); }
    const std::vector<std::size_t>& sizes() const { return sizes_; }
    // "avx2+fma", "avx512f" or "generic": the kernel picked for this CPU at construction.
    // AVX-512 only with FASTPLACE_SCORER_AVX512=1 in the environment: on Zen 4 (512-bit
    // operations run as two 256-bit halves) it measured slower than AVX2 for this MLP
    // (dense: 64 x 1,600 multiply-adds per decision, FMA-throughput bound; the row-major
    // decision path: ~3.6 against ~1.7 us, GCC spills its mask epilogues).
    // FASTPLACE_SCORER_GENERIC=1 keeps the portable kernel (tests run it that way).
    const char* kernel_name() const;

    using Kernel = void (*)(const MlpScorer&, const float*, std::size_t, std::size_t, float*);

private:
    friend struct MlpKernels;

    std::vector<std::size_t> sizes_;
    std::vector<std::vector<float>> weights_;     // (out, in) row-major per layer
    std::vector<std::vector<float>> transposed_;  // (in, out) row-major: what the kernels read
    std::vector<std::vector<float>> biases_;
    std::vector<float> mean_;
    std::vector<float> inv_std_;  // 1 / std after the 1e-3 clamp
    std::size_t max_width_ = 0;   // widest layer input or output
    bool skip_zero_columns_ = false;  // every weight finite: all-zero input columns are skipped
    // score_decision's layout: per hidden layer, transposed (in, padded out) weights and
    // padded biases and valid lanes (all ones for real units); the last layer's weights
    // padded. Padding is to a multiple of 16.
    std::vector<std::vector<float>> row_weights_;
    std::vector<std::vector<float>> row_biases_;
    std::vector<std::vector<std::uint32_t>> row_valid_;
    std::size_t widest_hidden_ = 0;
    Kernel kernel_ = nullptr;
    Kernel decision_kernel_ = nullptr;
};

}  // namespace fastplace
