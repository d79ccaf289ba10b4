// MlpScorer: kBlock rows at a time, one vector lane per row. Each layer reads its
// input block transposed (in, kBlock) and writes its output block the same way, so
// the innermost loop is a contiguous, fixed-length multiply-add the compiler turns
// into SIMD without -march flags; an AVX2+FMA copy of the same code is picked at run
// time on CPUs that have it (the baseline build still runs on any x86-64).
#include "fastplace/mlp_scorer.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

namespace fastplace {

namespace {

constexpr std::size_t kBlock = 16;       // rows per block: 2 AVX or 4 SSE registers per output
constexpr std::size_t kStackWidth = 128;  // layers up to this wide use stack scratch
constexpr float kMinStd = 1e-3F;          // ScoreNet: std below this becomes 1

#if defined(__GNUC__)
#define FASTPLACE_INLINE inline __attribute__((always_inline))
#define FASTPLACE_RESTRICT __restrict__
#else
#define FASTPLACE_INLINE inline
#define FASTPLACE_RESTRICT
#endif

// SIMD registers as GCC/Clang generic vectors: no intrinsics, no -march. V4 is an SSE
// register (the x86-64 baseline), V8 an AVX one. A block of kBlock rows is held as
// kBlock / lanes vectors per layer input or output: column i of a block is
// block[i * NV .. i * NV + NV).
using V4 = float __attribute__((vector_size(4 * sizeof(float))));
using V8 = float __attribute__((vector_size(8 * sizeof(float))));
// Scratch for one layer's block, aligned for either vector type.
struct alignas(32) Column {
    float rows[kBlock];
};

// dst[j] = act(b[j] + sum_i w[j][i] * src[i]) for J outputs j0..j0+J at once: J * NV
// independent accumulator chains that share each src load.
template <typename V, std::size_t NV, std::size_t J>
FASTPLACE_INLINE void outputs(const float* FASTPLACE_RESTRICT w, const float* FASTPLACE_RESTRICT b,
                              std::size_t in, std::size_t j0, const V* FASTPLACE_RESTRICT src,
                              V* FASTPLACE_RESTRICT dst, bool relu) {
    V acc[J][NV];
    for (std::size_t jj = 0; jj < J; ++jj) {
        for (std::size_t n = 0; n < NV; ++n) acc[jj][n] = V{} + b[j0 + jj];
    }
    for (std::size_t i = 0; i < in; ++i) {
        V s[NV];
        for (std::size_t n = 0; n < NV; ++n) s[n] = src[i * NV + n];
        for (std::size_t jj = 0; jj < J; ++jj) {
            const float wji = w[(j0 + jj) * in + i];
            for (std::size_t n = 0; n < NV; ++n) acc[jj][n] += wji * s[n];
        }
    }
    for (std::size_t jj = 0; jj < J; ++jj) {
        for (std::size_t n = 0; n < NV; ++n) {
            // "x < 0 ? 0 : x" keeps NaN, as torch.relu does.
            dst[(j0 + jj) * NV + n] = relu ? (acc[jj][n] < 0.0F ? V{} : acc[jj][n]) : acc[jj][n];
        }
    }
}

template <typename V, std::size_t NV, std::size_t J>
FASTPLACE_INLINE void layer(const float* w, const float* b, std::size_t in, std::size_t out, const V* src, V* dst,
                            bool relu) {
    std::size_t j = 0;
    for (; j + J <= out; j += J) outputs<V, NV, J>(w, b, in, j, src, dst, relu);
    for (; j < out; ++j) outputs<V, NV, 1>(w, b, in, j, src, dst, relu);
}

}  // namespace

struct MlpKernels {
    // V: the vector register type; J: outputs computed together (as many accumulator
    // registers as the ISA has: 16 SSE or 16 AVX registers).
    template <typename V, std::size_t J>
    static FASTPLACE_INLINE void run(const MlpScorer& s, const float* x, std::size_t k, float* out) {
        constexpr std::size_t NV = sizeof(Column) / sizeof(V);
        static_assert(NV * sizeof(V) == sizeof(Column), "a Column is a whole number of vectors");
        const std::size_t f = s.sizes_.front();
        const std::size_t n_layers = s.weights_.size();
        Column stack_a[kStackWidth];
        Column stack_b[kStackWidth];
        std::vector<Column> heap;
        Column* a = stack_a;
        Column* b = stack_b;
        if (s.max_width_ > kStackWidth) {
            heap.resize(2 * s.max_width_);
            a = heap.data();
            b = heap.data() + s.max_width_;
        }
        const float* mean = s.mean_.data();
        const float* inv_std = s.inv_std_.data();
        for (std::size_t r0 = 0; r0 < k; r0 += kBlock) {
            const std::size_t rows = std::min(kBlock, k - r0);
            // Standardise and transpose the block; missing rows of the last block are 0.
            const float* rows_in = x + r0 * f;
            for (std::size_t i = 0; i < f; ++i) {
                float* column = a[i].rows;
                for (std::size_t r = 0; r < rows; ++r) column[r] = (rows_in[r * f + i] - mean[i]) * inv_std[i];
                for (std::size_t r = rows; r < kBlock; ++r) column[r] = 0.0F;
            }
            for (std::size_t l = 0; l < n_layers; ++l) {
                layer<V, NV, J>(s.weights_[l].data(), s.biases_[l].data(), s.sizes_[l], s.sizes_[l + 1],
                                reinterpret_cast<const V*>(a), reinterpret_cast<V*>(b), l + 1 < n_layers);
                std::swap(a, b);
            }
            std::memcpy(out + r0, a[0].rows, rows * sizeof(float));  // the one output
        }
    }

    static void generic(const MlpScorer& s, const float* x, std::size_t k, float* out) {
        run<V4, 2>(s, x, k, out);
    }

#if defined(__x86_64__) && defined(__GNUC__)
    __attribute__((target("avx2,fma"))) static void avx2(const MlpScorer& s, const float* x, std::size_t k,
                                                          float* out) {
        run<V8, 4>(s, x, k, out);
    }
#endif
};

namespace {

std::string layer_name(std::size_t l) { return "layer " + std::to_string(l); }

}  // namespace

MlpScorer::MlpScorer(std::vector<std::size_t> sizes, std::vector<std::vector<float>> weights,
                     std::vector<std::vector<float>> biases, std::vector<float> mean, std::vector<float> std_dev)
    : sizes_(std::move(sizes)), weights_(std::move(weights)), biases_(std::move(biases)), mean_(std::move(mean)) {
    if (weights_.empty()) throw InvalidArgument("MlpScorer needs at least one layer");
    if (sizes_.size() != weights_.size() + 1) {
        throw InvalidArgument("MlpScorer: " + std::to_string(weights_.size()) + " weight matrices need " +
                              std::to_string(weights_.size() + 1) + " layer sizes, got " +
                              std::to_string(sizes_.size()));
    }
    if (biases_.size() != weights_.size()) {
        throw InvalidArgument("MlpScorer: " + std::to_string(weights_.size()) + " weight matrices but " +
                              std::to_string(biases_.size()) + " bias vectors");
    }
    for (std::size_t l = 0; l < sizes_.size(); ++l) {
        if (sizes_[l] == 0) throw InvalidArgument("MlpScorer: size " + std::to_string(l) + " is 0");
    }
    if (sizes_.back() != 1) {
        throw InvalidArgument("MlpScorer: " + layer_name(weights_.size() - 1) + " has " +
                              std::to_string(sizes_.back()) + " outputs, expected 1 (one score per row)");
    }
    for (std::size_t l = 0; l < weights_.size(); ++l) {
        const std::size_t in = sizes_[l];
        const std::size_t out = sizes_[l + 1];
        if (weights_[l].size() != out * in) {
            throw InvalidArgument("MlpScorer: " + layer_name(l) + " weight has " + std::to_string(weights_[l].size()) +
                                  " values, expected (" + std::to_string(out) + ", " + std::to_string(in) +
                                  ") = " + std::to_string(out * in));
        }
        if (biases_[l].size() != out) {
            throw InvalidArgument("MlpScorer: " + layer_name(l) + " bias has " + std::to_string(biases_[l].size()) +
                                  " values, expected " + std::to_string(out));
        }
        max_width_ = std::max({max_width_, in, out});
    }
    const std::size_t f = sizes_.front();
    if (mean_.size() != f || std_dev.size() != f) {
        throw InvalidArgument("MlpScorer: mean has " + std::to_string(mean_.size()) + " values and std " +
                              std::to_string(std_dev.size()) + ", expected " + std::to_string(f) +
                              " (the features layer 0 takes)");
    }
    inv_std_.resize(f);
    for (std::size_t i = 0; i < f; ++i) inv_std_[i] = 1.0F / (std_dev[i] < kMinStd ? 1.0F : std_dev[i]);

    kernel_ = &MlpKernels::generic;
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) kernel_ = &MlpKernels::avx2;
#endif
}

const char* MlpScorer::kernel_name() const {
#if defined(__x86_64__) && defined(__GNUC__)
    if (kernel_ == &MlpKernels::avx2) return "avx2+fma";
#endif
    return "generic";
}

void MlpScorer::score(const float* features, std::size_t k, std::size_t f, float* out) const {
    if (f != n_features()) {
        throw InvalidArgument("MlpScorer: features have " + std::to_string(f) + " columns, the model takes " +
                              std::to_string(n_features()));
    }
    if (k == 0) return;
    kernel_(*this, features, k, out);
}

}  // namespace fastplace
