// MlpScorer: kBlock rows at a time, one vector lane per row. Each layer reads its
// input block transposed (in, kBlock) and writes its output block the same way, so
// the innermost loop is a contiguous, fixed-length multiply-add the compiler turns
// into SIMD without -march flags; an AVX2+FMA copy of the same code is picked at run
// time on CPUs that have it (the baseline build still runs on any x86-64).
#include "fastplace/mlp_scorer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
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
using V16 = float __attribute__((vector_size(16 * sizeof(float))));
// Scratch for one layer's block, aligned for either vector type.
struct alignas(64) Column {
    float rows[kBlock];
};

// dst[j] = act(b[j] + sum_i w[j][i] * src[i]) for J outputs j0..j0+J at once: J * NV
// independent accumulator chains that share each src load. Only the inputs listed in
// active[0..n_active) are read: the caller leaves out columns that are zero on every
// row of the block (w * 0 adds nothing when the weights are finite) and columns whose
// contribution is already in b.
template <typename V, std::size_t NV, std::size_t J, bool kAll>
FASTPLACE_INLINE void outputs(const float* FASTPLACE_RESTRICT wt, const float* FASTPLACE_RESTRICT b,
                              std::size_t out, const std::uint32_t* FASTPLACE_RESTRICT active,
                              std::size_t n_active, std::size_t j0, const V* FASTPLACE_RESTRICT src,
                              V* FASTPLACE_RESTRICT dst, bool relu) {
    V acc[J][NV];
    for (std::size_t jj = 0; jj < J; ++jj) {
        for (std::size_t n = 0; n < NV; ++n) acc[jj][n] = V{} + b[j0 + jj];
    }
    for (std::size_t a = 0; a < n_active; ++a) {
        const std::size_t i = kAll ? a : active[a];  // kAll: every input, no indirection
        V s[NV];
        for (std::size_t n = 0; n < NV; ++n) s[n] = src[i * NV + n];
        const float* FASTPLACE_RESTRICT w_i = wt + i * out + j0;  // transposed: (in, out)
        for (std::size_t jj = 0; jj < J; ++jj) {
            const float wji = w_i[jj];
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
FASTPLACE_INLINE void layer(const float* wt, const float* b, std::size_t in, std::size_t out,
                            const std::uint32_t* active, std::size_t n_active, const V* src, V* dst, bool relu) {
    std::size_t j = 0;
    // The indirect loop costs about a third more per input than the contiguous one: it
    // pays only when a quarter or more of the inputs are skipped. (Reading a zero
    // column anyway adds w * 0: the same sums.)
    if (4 * n_active >= 3 * in) {
        for (; j + J <= out; j += J) outputs<V, NV, J, true>(wt, b, out, active, in, j, src, dst, relu);
        for (; j < out; ++j) outputs<V, NV, 1, true>(wt, b, out, active, in, j, src, dst, relu);
        return;
    }
    for (; j + J <= out; j += J) outputs<V, NV, J, false>(wt, b, out, active, n_active, j, src, dst, relu);
    for (; j < out; ++j) outputs<V, NV, 1, false>(wt, b, out, active, n_active, j, src, dst, relu);
}

// Lists in active the columns of a block (width columns of NV vectors) holding a value
// other than +-0 (NaN counts as non-zero); returns how many. Branch-free: the lanes'
// comparison masks are OR-ed as 64-bit words.
template <typename V, std::size_t NV>
FASTPLACE_INLINE std::size_t nonzero_columns(const V* FASTPLACE_RESTRICT block, std::size_t width,
                                             std::uint32_t* FASTPLACE_RESTRICT active) {
    using Mask = decltype(V{} != V{});
    constexpr std::size_t kWords = sizeof(Mask) / sizeof(std::uint64_t);
    std::size_t n = 0;
    for (std::size_t i = 0; i < width; ++i) {
        Mask mask = block[i * NV] != V{};
        for (std::size_t v = 1; v < NV; ++v) mask |= block[i * NV + v] != V{};
        std::uint64_t words[kWords];
        std::memcpy(words, &mask, sizeof(mask));
        std::uint64_t any = 0;
        for (std::size_t w = 0; w < kWords; ++w) any |= words[w];
        active[n] = static_cast<std::uint32_t>(i);
        n += any != 0 ? 1 : 0;
    }
    return n;
}

}  // namespace

struct MlpKernels {
    // V: the vector register type; J: outputs computed together (as many accumulator
    // registers as the ISA has: 16 SSE or 16 AVX registers).
    // Sparse: list the non-zero columns of each layer's output and skip the others in
    // the next layer (pays on real decisions, ~50% of the hidden units are off for a
    // whole block; costs ~10-20% on dense inputs, so only the decision path uses it).
    template <typename V, std::size_t J, bool Sparse>
    static FASTPLACE_INLINE void run(const MlpScorer& s, const float* x, std::size_t k, std::size_t shared,
                                     float* out) {
        constexpr std::size_t NV = sizeof(Column) / sizeof(V);
        static_assert(NV * sizeof(V) == sizeof(Column), "a Column is a whole number of vectors");
        const std::size_t f = s.sizes_.front();
        const std::size_t n_layers = s.weights_.size();
        Column stack_a[kStackWidth];
        Column stack_b[kStackWidth];
        std::uint32_t stack_active[kStackWidth];
        float stack_bias[kStackWidth];
        std::vector<Column> heap;
        std::vector<std::uint32_t> heap_active;
        std::vector<float> heap_bias;
        Column* a = stack_a;
        Column* b = stack_b;
        std::uint32_t* active = stack_active;
        float* bias0 = stack_bias;
        if (s.max_width_ > kStackWidth) {
            heap.resize(2 * s.max_width_);
            heap_active.resize(s.max_width_);
            heap_bias.resize(s.max_width_);
            a = heap.data();
            b = heap.data() + s.max_width_;
            active = heap_active.data();
            bias0 = heap_bias.data();
        }
        const float* mean = s.mean_.data();
        const float* inv_std = s.inv_std_.data();
        // The shared columns (equal on every row) enter layer 0 through its bias, once;
        // only with finite weights, as then their zeroed block columns add nothing.
        const std::size_t own = s.skip_zero_columns_ ? f - shared : f;
        const float* layer0_bias = s.biases_[0].data();
        if (own < f) {
            const std::size_t width0 = s.sizes_[1];
            const float* w0 = s.weights_[0].data();
            for (std::size_t j = 0; j < width0; ++j) {
                float sum = s.biases_[0][j];
                for (std::size_t i = own; i < f; ++i) sum += w0[j * f + i] * ((x[i] - mean[i]) * inv_std[i]);
                bias0[j] = sum;
            }
            layer0_bias = bias0;
        }
        for (std::size_t r0 = 0; r0 < k; r0 += kBlock) {
            const std::size_t rows = std::min(kBlock, k - r0);
            // Standardise and transpose the block's own columns; missing rows of the last block are 0.
            const float* rows_in = x + r0 * f;
            for (std::size_t i = 0; i < own; ++i) {
                float* column = a[i].rows;
                for (std::size_t r = 0; r < rows; ++r) column[r] = (rows_in[r * f + i] - mean[i]) * inv_std[i];
                for (std::size_t r = rows; r < kBlock; ++r) column[r] = 0.0F;
            }
            for (std::size_t i = own; i < f; ++i) std::fill_n(a[i].rows, kBlock, 0.0F);
            if (own < f) {  // layer 0 reads only the listed (own) columns
                for (std::size_t i = 0; i < own; ++i) active[i] = static_cast<std::uint32_t>(i);
            }
            std::size_t n_active = own;
            for (std::size_t l = 0; l < n_layers; ++l) {
                const bool relu = l + 1 < n_layers;
                layer<V, NV, J>(s.transposed_[l].data(), l == 0 ? layer0_bias : s.biases_[l].data(), s.sizes_[l],
                                s.sizes_[l + 1], active, n_active, reinterpret_cast<const V*>(a),
                                reinterpret_cast<V*>(b), relu);
                std::swap(a, b);
                const std::size_t width = s.sizes_[l + 1];
                // active is read only when n_active < the layer's inputs.
                n_active = Sparse && s.skip_zero_columns_
                               ? nonzero_columns<V, NV>(reinterpret_cast<const V*>(a), width, active)
                               : width;
            }
            std::memcpy(out + r0, a[0].rows, rows * sizeof(float));  // the one output
        }
    }

    template <bool Sparse>
    static void generic(const MlpScorer& s, const float* x, std::size_t k, std::size_t shared, float* out) {
        run<V4, 2, Sparse>(s, x, k, shared, out);
    }

#if defined(__x86_64__) && defined(__GNUC__)
    template <bool Sparse>
    __attribute__((target("avx2,fma"))) static void avx2(const MlpScorer& s, const float* x, std::size_t k,
                                                          std::size_t shared, float* out) {
        run<V8, 4, Sparse>(s, x, k, shared, out);
    }
    template <bool Sparse>
    __attribute__((target("avx512f"))) static void avx512(const MlpScorer& s, const float* x, std::size_t k,
                                                          std::size_t shared, float* out) {
        run<V16, 8, Sparse>(s, x, k, shared, out);
    }
#endif
};

namespace {

std::string layer_name(std::size_t l) { return "layer " + std::to_string(l); }

// FASTPLACE_SCORER_AVX512=1 picks the AVX-512 kernel on CPUs that have it (off by
// default: on double-pumped AVX-512 CPUs it is no faster than AVX2, see the header).
bool prefer_avx512() {
    const char* value = std::getenv("FASTPLACE_SCORER_AVX512");
    return value != nullptr && value[0] == '1';
}

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

    transposed_.resize(weights_.size());
    for (std::size_t l = 0; l < weights_.size(); ++l) {
        const std::size_t in = sizes_[l];
        const std::size_t out = sizes_[l + 1];
        transposed_[l].resize(in * out);
        for (std::size_t j = 0; j < out; ++j) {
            for (std::size_t i = 0; i < in; ++i) transposed_[l][i * out + j] = weights_[l][j * in + i];
        }
    }
    // Zero columns may be skipped only when every weight is finite (inf * 0 is NaN).
    skip_zero_columns_ = true;
    for (const auto& w : weights_) {
        for (const float v : w) skip_zero_columns_ = skip_zero_columns_ && std::isfinite(v);
    }

    kernel_ = &MlpKernels::generic<false>;
    sparse_kernel_ = &MlpKernels::generic<true>;
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        kernel_ = &MlpKernels::avx2<false>;
        sparse_kernel_ = &MlpKernels::avx2<true>;
    }
    if (prefer_avx512() && __builtin_cpu_supports("avx512f")) {
        kernel_ = &MlpKernels::avx512<false>;
        sparse_kernel_ = &MlpKernels::avx512<true>;
    }
#endif
}

const char* MlpScorer::kernel_name() const {
#if defined(__x86_64__) && defined(__GNUC__)
    if (kernel_ == &MlpKernels::avx2<false>) return "avx2+fma";
    if (kernel_ == &MlpKernels::avx512<false>) return "avx512f";
#endif
    return "generic";
}

void MlpScorer::score(const float* features, std::size_t k, std::size_t f, float* out, std::size_t shared_tail) const {
    if (f != n_features()) {
        throw InvalidArgument("MlpScorer: features have " + std::to_string(f) + " columns, the model takes " +
                              std::to_string(n_features()));
    }
    if (shared_tail > f) {
        throw InvalidArgument("MlpScorer: shared_tail = " + std::to_string(shared_tail) + " exceeds the " +
                              std::to_string(f) + " features");
    }
    if (k == 0) return;
    kernel_(*this, features, k, shared_tail, out);
}

void MlpScorer::score_decision(const float* features, std::size_t k, std::size_t f, float* out,
                               std::size_t shared_tail) const {
    if (f != n_features() || shared_tail > f) score(features, k, f, out, shared_tail);  // throws
    if (k == 0) return;
    sparse_kernel_(*this, features, k, shared_tail, out);
}

}  // namespace fastplace
