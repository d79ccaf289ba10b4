// MlpScorer: kBlock rows at a time, one vector lane per row. Each layer reads its
// input block transposed (in, kBlock) and writes its output block the same way, so
// the innermost loop is a contiguous, fixed-length multiply-add the compiler turns
// into SIMD without -march flags; an AVX2+FMA copy of the same code is picked at run
// time on CPUs that have it (the baseline build still runs on any x86-64).
// Where the time goes (AVX2, 64 real decision rows, ~1.8 us): the multiply-adds run
// at the FMA ports' rate (about half the time); the rest is per-block bookkeeping
// (transposing the rows, the constant-column fold, listing non-zero units).
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

// The integer vector of V's comparisons: lane i is all ones or 0. The decision path keeps
// one bit per column in each lane (bit c of lane r: column c is non-zero on row r), 32
// columns per mask, and ORs the lanes together once per layer.
template <typename V>
using Mask = decltype(V{} != V{});

// The OR of a mask's lanes, halving the vector (no trip through memory, which would
// stall on the store-to-load forward of a vector into scalars).
template <typename M>
FASTPLACE_INLINE std::uint32_t or_lanes(const M& m) {
    constexpr std::size_t kLanes = sizeof(M) / sizeof(std::uint32_t);
#if defined(__has_builtin) && __has_builtin(__builtin_shufflevector)
    if constexpr (kLanes == 16) {
        const auto half = __builtin_shufflevector(m, m, 0, 1, 2, 3, 4, 5, 6, 7) |
                          __builtin_shufflevector(m, m, 8, 9, 10, 11, 12, 13, 14, 15);
        return or_lanes(half);
    } else if constexpr (kLanes == 8) {
        const auto half = __builtin_shufflevector(m, m, 0, 1, 2, 3) | __builtin_shufflevector(m, m, 4, 5, 6, 7);
        return or_lanes(half);
    } else if constexpr (kLanes == 4) {
        const auto half = __builtin_shufflevector(m, m, 0, 1) | __builtin_shufflevector(m, m, 2, 3);
        return static_cast<std::uint32_t>(half[0] | half[1]);
    }
#endif
    std::uint32_t lanes[kLanes];
    std::memcpy(lanes, &m, sizeof(m));
    std::uint32_t any = 0;
    for (std::size_t r = 0; r < kLanes; ++r) any |= lanes[r];
    return any;
}

#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define FASTPLACE_SHUFFLE 1
#endif
#endif

// Whether transpose_tile exists for V: square tiles of 4 (SSE) or 8 (AVX) lanes.
template <typename V>
constexpr bool kTiles =
#if defined(FASTPLACE_SHUFFLE)
    sizeof(V) == 4 * sizeof(float) || sizeof(V) == 8 * sizeof(float);
#else
    false;
#endif

// The L x L tile at src (L rows of a row-major matrix with row stride `stride`, L = V's
// lanes) as L column vectors: cols[q] holds column q of the L rows.
template <typename V>
FASTPLACE_INLINE void transpose_tile(const float* src, std::size_t stride, V* cols) {
#if defined(FASTPLACE_SHUFFLE)
    constexpr std::size_t kLanes = sizeof(V) / sizeof(float);
    V r[kLanes];
    for (std::size_t q = 0; q < kLanes; ++q) std::memcpy(&r[q], src + q * stride, sizeof(V));
    if constexpr (kLanes == 4) {
        const V t0 = __builtin_shufflevector(r[0], r[1], 0, 4, 1, 5);
        const V t1 = __builtin_shufflevector(r[0], r[1], 2, 6, 3, 7);
        const V t2 = __builtin_shufflevector(r[2], r[3], 0, 4, 1, 5);
        const V t3 = __builtin_shufflevector(r[2], r[3], 2, 6, 3, 7);
        cols[0] = __builtin_shufflevector(t0, t2, 0, 1, 4, 5);
        cols[1] = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
        cols[2] = __builtin_shufflevector(t1, t3, 0, 1, 4, 5);
        cols[3] = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
    } else if constexpr (kLanes == 8) {
        V t[8];
        V u[8];
        for (std::size_t q = 0; q < 8; q += 2) {  // unpacklo / unpackhi of row pairs
            t[q] = __builtin_shufflevector(r[q], r[q + 1], 0, 8, 1, 9, 4, 12, 5, 13);
            t[q + 1] = __builtin_shufflevector(r[q], r[q + 1], 2, 10, 3, 11, 6, 14, 7, 15);
        }
        for (std::size_t q = 0; q < 8; q += 4) {  // shufps: pairs of pairs
            u[q] = __builtin_shufflevector(t[q], t[q + 2], 0, 1, 8, 9, 4, 5, 12, 13);
            u[q + 1] = __builtin_shufflevector(t[q], t[q + 2], 2, 3, 10, 11, 6, 7, 14, 15);
            u[q + 2] = __builtin_shufflevector(t[q + 1], t[q + 3], 0, 1, 8, 9, 4, 5, 12, 13);
            u[q + 3] = __builtin_shufflevector(t[q + 1], t[q + 3], 2, 3, 10, 11, 6, 7, 14, 15);
        }
        for (std::size_t q = 0; q < 4; ++q) {  // 128-bit halves: rows 0-3 and 4-7
            cols[q] = __builtin_shufflevector(u[q], u[q + 4], 0, 1, 2, 3, 8, 9, 10, 11);
            cols[q + 4] = __builtin_shufflevector(u[q], u[q + 4], 4, 5, 6, 7, 12, 13, 14, 15);
        }
    }
#else
    (void)src;
    (void)stride;
    (void)cols;
#endif
}

// Appends to list the columns whose bit is set in masks[0..ceil(width / 32)); returns the new length.
template <typename M>
FASTPLACE_INLINE std::size_t list_columns(const M* masks, std::size_t width, std::uint32_t* list, std::size_t n) {
    for (std::size_t w = 0; 32 * w < width; ++w) {
        for (std::uint32_t set = or_lanes(masks[w]); set != 0; set &= set - 1) {
            list[n++] = static_cast<std::uint32_t>(32 * w + static_cast<std::size_t>(__builtin_ctz(set)));
        }
    }
    return n;
}

// The inputs a layer reads: the first n columns (prefix) or the n listed ones. Columns
// left out are zero on every row of the block (w * 0 adds nothing when the weights are
// finite) or already counted in the layer's bias.
struct Inputs {
    const std::uint32_t* list;
    std::size_t n;
    bool prefix;
};

// dst[j] = act(b[j] + sum_i w[j][i] * src[i]) for J outputs j0..j0+J at once: J * NV
// independent accumulator chains that share each src load (a single output runs two
// chains per vector, over even and odd inputs, so that it is not bound by FMA latency).
// kTrack (hidden layers only): word gets bit j % 32 of each row lane where output j
// is not 0.
template <typename V, std::size_t NV, std::size_t J, bool kPrefix, bool kTrack>
FASTPLACE_INLINE void outputs(const float* FASTPLACE_RESTRICT wt, const float* FASTPLACE_RESTRICT b,
                              std::size_t out, const Inputs& in, std::size_t j0, const V* FASTPLACE_RESTRICT src,
                              V* FASTPLACE_RESTRICT dst, bool relu, Mask<V>& word) {
    constexpr std::size_t kChains = J == 1 ? 2 : 1;
    V acc[kChains][J][NV];
    for (std::size_t jj = 0; jj < J; ++jj) {
        for (std::size_t n = 0; n < NV; ++n) {
            acc[0][jj][n] = V{} + b[j0 + jj];
            if (kChains > 1) acc[kChains - 1][jj][n] = V{};
        }
    }
    const std::uint32_t* FASTPLACE_RESTRICT list = in.list;
    std::size_t a = 0;
    for (; a + kChains <= in.n; a += kChains) {
        for (std::size_t c = 0; c < kChains; ++c) {
            const std::size_t i = kPrefix ? a + c : list[a + c];
            const float* FASTPLACE_RESTRICT w_i = wt + i * out + j0;  // transposed: (in, out)
            for (std::size_t jj = 0; jj < J; ++jj) {
                const float wji = w_i[jj];
                for (std::size_t n = 0; n < NV; ++n) acc[c][jj][n] += wji * src[i * NV + n];
            }
        }
    }
    if (kChains > 1) {
        if (a < in.n) {
            const std::size_t i = kPrefix ? a : list[a];
            for (std::size_t n = 0; n < NV; ++n) acc[0][0][n] += wt[i * out + j0] * src[i * NV + n];
        }
        for (std::size_t n = 0; n < NV; ++n) acc[0][0][n] += acc[kChains - 1][0][n];
    }
    for (std::size_t jj = 0; jj < J; ++jj) {
        Mask<V> any{};
        for (std::size_t n = 0; n < NV; ++n) {
            V v = acc[0][jj][n];
            if (relu) {
                // Keep x > 0 and NaN (as torch.relu does), else +0: one compare and an AND.
                const Mask<V> keep = !(v <= 0.0F);
                Mask<V> bits;
                std::memcpy(&bits, &v, sizeof(v));
                bits &= keep;
                std::memcpy(&v, &bits, sizeof(v));
                if (kTrack) any |= keep;
            }
            dst[(j0 + jj) * NV + n] = v;
        }
        if (kTrack) word |= any & static_cast<int>(1U << ((j0 + jj) % 32));
    }
}

// One layer for a block; kTrack: nz gets the non-zero outputs' bits, 32 per mask. The
// outputs go in groups of J, then 2, then 1, within each run of 32 (one mask word).
template <typename V, std::size_t NV, std::size_t J, bool kPrefix, bool kTrack>
FASTPLACE_INLINE void layer_outputs(const float* wt, const float* b, std::size_t out, const Inputs& in,
                                    const V* src, V* dst, bool relu, Mask<V>* nz) {
    for (std::size_t w0 = 0; w0 < out; w0 += 32) {
        const std::size_t end = std::min(out, w0 + 32);
        Mask<V> word{};  // these 32 outputs' bits
        std::size_t j = w0;
        for (; j + J <= end; j += J) outputs<V, NV, J, kPrefix, kTrack>(wt, b, out, in, j, src, dst, relu, word);
        if (J > 2 && j + 2 <= end) {
            outputs<V, NV, 2, kPrefix, kTrack>(wt, b, out, in, j, src, dst, relu, word);
            j += 2;
        }
        for (; j < end; ++j) outputs<V, NV, 1, kPrefix, kTrack>(wt, b, out, in, j, src, dst, relu, word);
        if (kTrack) nz[w0 / 32] = word;
    }
}

// A layer for a block: reads the listed inputs (or a prefix); nz, when not null, gets
// the bits of the outputs that are non-zero on some row.
template <typename V, std::size_t NV, std::size_t J>
FASTPLACE_INLINE void layer(const float* wt, const float* b, std::size_t out, const Inputs& in, const V* src,
                            V* dst, bool relu, Mask<V>* nz) {
    if (nz != nullptr) {
        if (in.prefix) {
            layer_outputs<V, NV, J, true, true>(wt, b, out, in, src, dst, relu, nz);
        } else {
            layer_outputs<V, NV, J, false, true>(wt, b, out, in, src, dst, relu, nz);
        }
    } else if (in.prefix) {
        layer_outputs<V, NV, J, true, false>(wt, b, out, in, src, dst, relu, nz);
    } else {
        layer_outputs<V, NV, J, false, false>(wt, b, out, in, src, dst, relu, nz);
    }
}

// Standardises and transposes columns [0, own) of rows rows_in[0..rows) (row-major,
// f columns) into a[0..own); the missing rows of a last, partial block repeat its first
// row (their scores are dropped).
template <typename V, std::size_t NV>
FASTPLACE_INLINE void load_block(const float* rows_in, std::size_t rows, std::size_t f, std::size_t own,
                                 const float* mean, const float* inv_std, Column* a) {
    std::size_t c = 0;
    if (kTiles<V> && rows == kBlock) {
        // Whole tiles that stay inside the rows (c + L <= f), by register shuffles.
        constexpr std::size_t L = sizeof(V) / sizeof(float);
        V* cols = reinterpret_cast<V*>(a);
        for (; c < own && c + L <= f; c += L) {
            for (std::size_t t = 0; t < NV; ++t) {
                V tile[L];
                transpose_tile(rows_in + t * L * f + c, f, tile);
                for (std::size_t q = 0; q < L && c + q < own; ++q) {
                    cols[(c + q) * NV + t] = (tile[q] - mean[c + q]) * inv_std[c + q];
                }
            }
        }
    }
    for (; c < own; ++c) {
        float* column = a[c].rows;
        for (std::size_t r = 0; r < rows; ++r) column[r] = (rows_in[r * f + c] - mean[c]) * inv_std[c];
        for (std::size_t r = rows; r < kBlock; ++r) column[r] = column[0];
    }
}

// The columns of a block (a[0..own)) that are not equal on every row, listed in active
// (a prefix when all are). NaN never equals itself: a column with NaN varies.
template <typename V, std::size_t NV>
FASTPLACE_INLINE Inputs varying_columns(const Column* a, std::size_t own, Mask<V>* masks, std::uint32_t* active) {
    const V* cols = reinterpret_cast<const V*>(a);
    for (std::size_t w0 = 0; w0 < own; w0 += 32) {
        Mask<V> word{};
        for (std::size_t c = w0; c < std::min(own, w0 + 32); ++c) {
            const V first = V{} + a[c].rows[0];
            Mask<V> varies = cols[c * NV] != first;
            for (std::size_t n = 1; n < NV; ++n) varies |= cols[c * NV + n] != first;
            word |= varies & static_cast<int>(1U << (c % 32));
        }
        masks[w0 / 32] = word;
    }
    const std::size_t n = list_columns(masks, own, active, 0);
    return Inputs{active, n, n == own};
}

// block_bias = bias + the contribution of the block's columns [0, own) that vary.list
// leaves out (equal on every row: the same w * x for each row).
FASTPLACE_INLINE void fold_constant_columns(const Column* a, std::size_t own, const Inputs& varying,
                                            const float* wt0, std::size_t width0, const float* bias,
                                            float* block_bias) {
    std::copy_n(bias, width0, block_bias);
    std::size_t next = 0;  // the next varying column in the list
    for (std::size_t c = 0; c < own; ++c) {
        if (next < varying.n && varying.list[next] == c) {
            ++next;
            continue;
        }
        const float value = a[c].rows[0];
        const float* w_c = wt0 + c * width0;
        for (std::size_t j = 0; j < width0; ++j) block_bias[j] += w_c[j] * value;
    }
}

}  // namespace

struct MlpKernels {
    // V: the vector register type; J: outputs computed together (as many accumulator
    // registers as the ISA has: 16 SSE or 16 AVX registers).
    // Sparse (score_decision; only with finite weights): per block of rows, layer 0 reads
    // only the columns that vary within the block (a column equal on every row adds the
    // same w * x to each: it goes into the block's bias), and each later layer reads only
    // the units of the previous one that are non-zero on some row of the block. Pays on
    // real decisions (about half the hidden units are off for a whole block, and several
    // features are equal among neighbouring candidates); costs ~10% on dense random rows.
    template <typename V, std::size_t J, bool Sparse>
    static FASTPLACE_INLINE void run(const MlpScorer& s, const float* x, std::size_t k, std::size_t shared,
                                     float* out) {
        constexpr std::size_t NV = sizeof(Column) / sizeof(V);
        static_assert(NV * sizeof(V) == sizeof(Column), "a Column is a whole number of vectors");
        constexpr std::size_t kStackMasks = kStackWidth / 32;
        const std::size_t f = s.sizes_.front();
        const std::size_t n_layers = s.weights_.size();
        const std::size_t width0 = s.sizes_[1];
        Column stack_a[kStackWidth];
        Column stack_b[kStackWidth];
        std::uint32_t stack_active[kStackWidth];
        float stack_bias[2 * kStackWidth];
        Mask<V> stack_masks[kStackMasks];
        std::vector<Column> heap;
        std::vector<std::uint32_t> heap_active;
        std::vector<float> heap_bias;
        // std::vector<Mask<V>> would not honour the mask's 32- or 64-byte alignment here
        // (its allocator is instantiated outside the AVX target): masks live in Columns.
        std::vector<Column> heap_masks;
        Column* a = stack_a;
        Column* b = stack_b;
        std::uint32_t* active = stack_active;
        float* bias0 = stack_bias;
        Mask<V>* masks = stack_masks;
        if (s.max_width_ > kStackWidth) {
            heap.resize(2 * s.max_width_);
            heap_active.resize(s.max_width_);
            heap_bias.resize(2 * s.max_width_);
            static_assert(sizeof(Column) % sizeof(Mask<V>) == 0, "whole masks per Column");
            heap_masks.resize(((s.max_width_ + 31) / 32 * sizeof(Mask<V>) + sizeof(Column) - 1) / sizeof(Column));
            a = heap.data();
            b = heap.data() + s.max_width_;
            active = heap_active.data();
            bias0 = heap_bias.data();
            masks = reinterpret_cast<Mask<V>*>(heap_masks.data());
        }
        float* block_bias = bias0 + s.max_width_;
        const bool sparse = Sparse && s.skip_zero_columns_;
        const float* mean = s.mean_.data();
        const float* inv_std = s.inv_std_.data();
        // The shared columns (equal on every row) enter layer 0 through its bias, once;
        // only with finite weights (else nothing is folded or skipped).
        const std::size_t own = s.skip_zero_columns_ ? f - shared : f;
        const float* layer0_bias = s.biases_[0].data();
        const float* wt0 = s.transposed_[0].data();
        if (own < f) {
            std::copy_n(s.biases_[0].data(), width0, bias0);
            for (std::size_t i = own; i < f; ++i) {
                const float value = (x[i] - mean[i]) * inv_std[i];
                const float* w_i = wt0 + i * width0;
                for (std::size_t j = 0; j < width0; ++j) bias0[j] += w_i[j] * value;
            }
            layer0_bias = bias0;
        }
        for (std::size_t r0 = 0; r0 < k; r0 += kBlock) {
            const std::size_t rows = std::min(kBlock, k - r0);
            load_block<V, NV>(x + r0 * f, rows, f, own, mean, inv_std, a);
            Inputs in{active, own, true};
            const float* bias = layer0_bias;
            if (sparse) {
                in = varying_columns<V, NV>(a, own, masks, active);
                if (!in.prefix) {
                    fold_constant_columns(a, own, in, wt0, width0, layer0_bias, block_bias);
                    bias = block_bias;
                }
            }
            for (std::size_t l = 0; l < n_layers; ++l) {
                const bool relu = l + 1 < n_layers;
                const std::size_t width = s.sizes_[l + 1];
                // Only a hidden layer's non-zero units are listed for the next one.
                Mask<V>* nz = sparse && relu ? masks : nullptr;
                layer<V, NV, J>(s.transposed_[l].data(), l == 0 ? bias : s.biases_[l].data(), width, in,
                                reinterpret_cast<const V*>(a), reinterpret_cast<V*>(b), relu, nz);
                std::swap(a, b);
                in = Inputs{active, width, true};
                if (nz != nullptr) {
                    // The indirect loop costs more per input than the contiguous one: it
                    // pays only when a quarter or more of the inputs are skipped (reading
                    // a zero unit anyway adds w * 0: the same sums).
                    const std::size_t n_active = list_columns(masks, width, active, 0);
                    if (4 * n_active < 3 * width) in = Inputs{active, n_active, false};
                }
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
