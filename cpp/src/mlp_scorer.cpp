// MlpScorer. score(): kBlock rows at a time, one vector lane per row. Each layer reads
// its input block transposed (in, kBlock) and writes its output block the same way, so
// the innermost loop is a contiguous, fixed-length multiply-add the compiler turns
// into SIMD without -march flags; an AVX2+FMA copy of the same code is picked at run
// time on CPUs that have it (the baseline build still runs on any x86-64).
// score_decision(): rows stay row-major, units across the lanes (see the helpers below).
// Where its time goes (AVX2, 64 real decision rows, ~1.7 us in a harness): ~6,000
// multiply-adds (0.85 us at two per cycle) run at ~1.5 per cycle, the loop issuing ~20
// instructions per 8 of them (16 ymm registers cap the blocking at 4 rows x 2 vectors);
// ~0.7 us is bookkeeping (standardising, the constant fold, ReLU masks, unit lists).
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
// The decision path: row strides and layer widths are padded to kPad floats (a whole
// number of vectors of any width, 64-byte aligned rows); kRowBlock rows share a fold of
// constant columns and a list of non-zero units; scratch up to kDecisionStack floats
// lives on the stack.
constexpr std::size_t kPad = 16;
constexpr std::size_t kRowBlock = 16;
constexpr std::size_t kDecisionStack = 4096;

constexpr std::size_t padded(std::size_t n) { return (n + kPad - 1) / kPad * kPad; }

// The helpers below take and return vectors by value; they are always inlined into
// kernels compiled for one ISA, so no vector crosses a call boundary (GCC warns that such
// a call's ABI would differ between ISAs).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

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

// ReLU as torch.relu: v where keep (x > 0, NaN) is set, else +0 (an AND of the bits).
template <typename V>
FASTPLACE_INLINE V relu_keep_nan(const V& v, const Mask<V>& keep) {
    Mask<V> bits;
    std::memcpy(&bits, &v, sizeof(v));
    bits &= keep;
    V out;
    std::memcpy(&out, &bits, sizeof(out));
    return out;
}

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

// dst[j] = act(b[j] + sum_{i < in} w[j][i] * src[i]) for J outputs j0..j0+J at once:
// J * NV independent accumulator chains that share each src load (a single output runs
// two chains per vector, over even and odd inputs, so that it is not bound by FMA latency).
template <typename V, std::size_t NV, std::size_t J>
FASTPLACE_INLINE void outputs(const float* FASTPLACE_RESTRICT wt, const float* FASTPLACE_RESTRICT b,
                              std::size_t out, std::size_t in, std::size_t j0, const V* FASTPLACE_RESTRICT src,
                              V* FASTPLACE_RESTRICT dst, bool relu) {
    constexpr std::size_t kChains = J == 1 ? 2 : 1;
    V acc[kChains][J][NV];
    for (std::size_t jj = 0; jj < J; ++jj) {
        for (std::size_t n = 0; n < NV; ++n) {
            acc[0][jj][n] = V{} + b[j0 + jj];
            if (kChains > 1) acc[kChains - 1][jj][n] = V{};
        }
    }
    std::size_t i = 0;
    for (; i + kChains <= in; i += kChains) {
        for (std::size_t c = 0; c < kChains; ++c) {
            const float* FASTPLACE_RESTRICT w_i = wt + (i + c) * out + j0;  // transposed: (in, out)
            for (std::size_t jj = 0; jj < J; ++jj) {
                const float wji = w_i[jj];
                for (std::size_t n = 0; n < NV; ++n) acc[c][jj][n] += wji * src[(i + c) * NV + n];
            }
        }
    }
    if (kChains > 1) {
        if (i < in) {
            for (std::size_t n = 0; n < NV; ++n) acc[0][0][n] += wt[i * out + j0] * src[i * NV + n];
        }
        for (std::size_t n = 0; n < NV; ++n) acc[0][0][n] += acc[kChains - 1][0][n];
    }
    for (std::size_t jj = 0; jj < J; ++jj) {
        for (std::size_t n = 0; n < NV; ++n) {
            V v = acc[0][jj][n];
            if (relu) v = relu_keep_nan(v, !(v <= 0.0F));
            dst[(j0 + jj) * NV + n] = v;
        }
    }
}

// One layer for a block: the outputs go in groups of J, then 2, then 1.
template <typename V, std::size_t NV, std::size_t J>
FASTPLACE_INLINE void layer(const float* wt, const float* b, std::size_t out, std::size_t in, const V* src,
                            V* dst, bool relu) {
    std::size_t j = 0;
    for (; j + J <= out; j += J) outputs<V, NV, J>(wt, b, out, in, j, src, dst, relu);
    if (J > 2 && j + 2 <= out) {
        outputs<V, NV, 2>(wt, b, out, in, j, src, dst, relu);
        j += 2;
    }
    for (; j < out; ++j) outputs<V, NV, 1>(wt, b, out, in, j, src, dst, relu);
}

// Standardises and transposes the rows rows_in[0..rows) (row-major, f columns) into
// a[0..f); the missing rows of a last, partial block repeat its first row (their scores
// are dropped).
template <typename V, std::size_t NV>
FASTPLACE_INLINE void load_block(const float* rows_in, std::size_t rows, std::size_t f, const float* mean,
                                 const float* inv_std, Column* a) {
    std::size_t c = 0;
    if (kTiles<V> && rows == kBlock) {
        // Whole tiles that stay inside the rows (c + L <= f), by register shuffles.
        constexpr std::size_t L = sizeof(V) / sizeof(float);
        V* cols = reinterpret_cast<V*>(a);
        for (; c + L <= f; c += L) {
            for (std::size_t t = 0; t < NV; ++t) {
                V tile[L];
                transpose_tile(rows_in + t * L * f + c, f, tile);
                for (std::size_t q = 0; q < L; ++q) {
                    cols[(c + q) * NV + t] = (tile[q] - mean[c + q]) * inv_std[c + q];
                }
            }
        }
    }
    for (; c < f; ++c) {
        float* column = a[c].rows;
        for (std::size_t r = 0; r < rows; ++r) column[r] = (rows_in[r * f + c] - mean[c]) * inv_std[c];
        for (std::size_t r = rows; r < kBlock; ++r) column[r] = column[0];
    }
}

// ---- The decision path: rows stay row-major, a layer's units lie across the lanes -------
//
// Each row's layer outputs are out / L vectors; a listed input i of row r adds the
// broadcast src[r][i] times row i of the transposed weights (L units at a time), for R
// rows and C vectors of units at once (R * C accumulators sharing C weight loads). No
// transposes: layer 0 reads the standardised feature rows as they are. Per block of
// kRowBlock rows, the feature columns equal on every row fold into the block's bias and
// the units zero on every row drop out of the next layer's list; both are found with a
// few vector compares (rows against row 0; ReLU's keep mask ORed over the rows).

template <typename V>
FASTPLACE_INLINE V load(const float* p) {
    V v;
    std::memcpy(&v, p, sizeof(V));
    return v;
}

template <typename V>
FASTPLACE_INLINE void store(float* p, const V& v) {
    std::memcpy(p, &v, sizeof(V));
}

// The sum of v's lanes, halving the vector.
template <typename V>
FASTPLACE_INLINE float sum_lanes(const V& v) {
    constexpr std::size_t kLanes = sizeof(V) / sizeof(float);
#if defined(FASTPLACE_SHUFFLE)
    if constexpr (kLanes == 16) {
        return sum_lanes(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
                         __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15));
    } else if constexpr (kLanes == 8) {
        return sum_lanes(__builtin_shufflevector(v, v, 0, 1, 2, 3) + __builtin_shufflevector(v, v, 4, 5, 6, 7));
    } else if constexpr (kLanes == 4) {
        const auto half = __builtin_shufflevector(v, v, 0, 1) + __builtin_shufflevector(v, v, 2, 3);
        return half[0] + half[1];
    }
#endif
    float sum = 0.0F;
    for (std::size_t q = 0; q < kLanes; ++q) sum += v[q];
    return sum;
}

// Appends to list the lanes below width that are set in masks[0..ceil(width / L)) (lane
// q of masks[v] is unit v * L + q); returns the length.
template <typename V>
FASTPLACE_INLINE std::size_t list_lanes(const Mask<V>* masks, std::size_t width, std::uint32_t* list) {
    constexpr std::size_t L = sizeof(V) / sizeof(float);
    static_assert(32 % L == 0, "whole vectors per 32-bit word");
    Mask<V> lane_bit{};
    for (std::size_t q = 0; q < L; ++q) lane_bit[q] = static_cast<int>(1U << q);
    std::size_t n = 0;
    for (std::size_t w0 = 0; w0 < width; w0 += 32) {
        Mask<V> word{};
        for (std::size_t q = 0; q < 32 && w0 + q < width; q += L) {
            word |= masks[(w0 + q) / L] & (lane_bit << static_cast<int>(q));
        }
        std::uint32_t set = or_lanes(word);
        if (width - w0 < 32) set &= (1U << (width - w0)) - 1;
        for (; set != 0; set &= set - 1) {
            list[n++] = static_cast<std::uint32_t>(w0 + static_cast<std::size_t>(__builtin_ctz(set)));
        }
    }
    return n;
}

// A hidden layer as the decision path reads it: weights transposed to (in, stride),
// bias and valid lanes padded to stride (a multiple of kPad) with zeros.
struct RowLayer {
    const float* wt;
    const float* bias;
    const std::uint32_t* valid;  // all ones for the layer's units, 0 in the padding
    std::size_t stride;
};

// Where a hidden layer's outputs go. Into the next hidden layer (kLast = false): rows of
// dst (row stride: the layer's) and nz, the lanes that are not 0 on some row. Into the
// last layer (kLast = true, one output): scores[r] = b_out + sum_j h[r][j] * w_out[j],
// summed in registers while the hidden outputs are (they are never stored).
template <typename V>
struct RowSink {
    float* dst;
    Mask<V>* nz;
    const float* w_out;  // padded like the layer's units, zeros in the padding
    float b_out;
    float* scores;
};

// Rows src[0..R) (row stride src_stride) through unit vectors [v0, v0 + C) of a hidden
// layer: h[r][j] = relu(bias[j] + sum_{a < n} src[r][list[a]] * wt[list[a]][j]), into
// sink (o: the R rows' last-layer sums when kLast). Padding lanes, which only the last
// layer's dot product reads, are masked to +0 (0 * inf would be NaN).
template <typename V, std::size_t R, std::size_t C, bool kLast>
FASTPLACE_INLINE void unit_vectors(const RowLayer& layer, const float* bias, const std::uint32_t* list,
                                   std::size_t n, const float* src, std::size_t src_stride, std::size_t v0,
                                   const RowSink<V>& sink, V* o) {
    constexpr std::size_t L = sizeof(V) / sizeof(float);
    const std::size_t j0 = v0 * L;
    V acc[R][C];
    for (std::size_t c = 0; c < C; ++c) {
        const V b = load<V>(bias + j0 + c * L);
        for (std::size_t r = 0; r < R; ++r) acc[r][c] = b;
    }
    const float* FASTPLACE_RESTRICT wt = layer.wt + j0;
    const std::size_t stride = layer.stride;
    const float* row[R];
    for (std::size_t r = 0; r < R; ++r) row[r] = src + r * src_stride;
    for (std::size_t a = 0; a < n; ++a) {
        const std::size_t i = list[a];
        V w[C];
        for (std::size_t c = 0; c < C; ++c) w[c] = load<V>(wt + i * stride + c * L);
        for (std::size_t r = 0; r < R; ++r) {
            const float x = row[r][i];
            for (std::size_t c = 0; c < C; ++c) acc[r][c] += x * w[c];
        }
    }
    for (std::size_t c = 0; c < C; ++c) {
        const std::size_t j = j0 + c * L;
        if constexpr (kLast) {
            Mask<V> valid;
            std::memcpy(&valid, layer.valid + j, sizeof(valid));
            const V w = load<V>(sink.w_out + j);
            for (std::size_t r = 0; r < R; ++r) o[r] += relu_keep_nan(acc[r][c], valid & !(acc[r][c] <= 0.0F)) * w;
        } else {
            Mask<V> any{};
            for (std::size_t r = 0; r < R; ++r) {
                const Mask<V> keep = !(acc[r][c] <= 0.0F);
                store(sink.dst + r * stride + j, relu_keep_nan(acc[r][c], keep));
                any |= keep;
            }
            sink.nz[v0 + c] |= any;
        }
    }
}

// All unit vectors of a hidden layer for rows src[0..R); sink.dst and sink.scores point
// at row 0.
template <typename V, std::size_t R, std::size_t C, bool kLast>
FASTPLACE_INLINE void row_group(const RowLayer& layer, const float* bias, const std::uint32_t* list,
                                std::size_t n, const float* src, std::size_t src_stride, const RowSink<V>& sink) {
    constexpr std::size_t L = sizeof(V) / sizeof(float);
    const std::size_t n_vectors = layer.stride / L;
    V o[R];
    for (std::size_t r = 0; r < R; ++r) o[r] = V{};
    std::size_t v = 0;
    for (; v + C <= n_vectors; v += C) {
        unit_vectors<V, R, C, kLast>(layer, bias, list, n, src, src_stride, v, sink, o);
    }
    for (; v < n_vectors; ++v) unit_vectors<V, R, 1, kLast>(layer, bias, list, n, src, src_stride, v, sink, o);
    if constexpr (kLast) {
        for (std::size_t r = 0; r < R; ++r) sink.scores[r] = sink.b_out + sum_lanes(o[r]);
    }
}

// A hidden layer for rows src[0..rows), reading the n listed inputs, R rows at a time.
// Not kLast: returns the units (of width) that are not 0 on some row, listed in list_out
// (which may be list: it is written after the last read).
template <typename V, std::size_t R, std::size_t C, bool kLast>
FASTPLACE_INLINE std::size_t hidden_layer(const RowLayer& layer, std::size_t width, const float* bias,
                                          const std::uint32_t* list, std::size_t n, const float* src,
                                          std::size_t src_stride, std::size_t rows, const RowSink<V>& sink,
                                          std::uint32_t* list_out) {
    constexpr std::size_t L = sizeof(V) / sizeof(float);
    if (!kLast) {
        for (std::size_t v = 0; v < layer.stride / L; ++v) sink.nz[v] = Mask<V>{};
    }
    RowSink<V> at = sink;
    std::size_t r = 0;
    const auto advance = [&](std::size_t by) {
        r += by;
        at.dst = kLast ? nullptr : sink.dst + r * layer.stride;
        at.scores = kLast ? sink.scores + r : nullptr;
    };
    while (r + R <= rows) {
        row_group<V, R, C, kLast>(layer, bias, list, n, src + r * src_stride, src_stride, at);
        advance(R);
    }
    while (r < rows) {
        row_group<V, 1, C, kLast>(layer, bias, list, n, src + r * src_stride, src_stride, at);
        advance(1);
    }
    return kLast ? 0 : list_lanes<V>(sink.nz, width, list_out);
}

// The columns [0, own) of rows xs[0..rows) (row stride stride) that are not equal on every
// row, listed in varying (returns their number), and those that are, in constant (their
// number in n_constant). NaN never equals itself: a column with NaN varies.
template <typename V>
FASTPLACE_INLINE std::size_t varying_columns(const float* xs, std::size_t stride, std::size_t rows,
                                             std::size_t own, Mask<V>* masks, std::uint32_t* varying,
                                             std::uint32_t* constant, std::size_t& n_constant) {
    constexpr std::size_t L = sizeof(V) / sizeof(float);
    const std::size_t n_vectors = (own + L - 1) / L;
    for (std::size_t v = 0; v < n_vectors; ++v) {
        const V first = load<V>(xs + v * L);
        Mask<V> varies{};
        for (std::size_t r = 1; r < rows; ++r) varies |= load<V>(xs + r * stride + v * L) != first;
        masks[v] = varies;
    }
    const std::size_t n = list_lanes<V>(masks, own, varying);
    for (std::size_t v = 0; v < n_vectors; ++v) masks[v] = ~masks[v];
    n_constant = list_lanes<V>(masks, own, constant);
    return n;
}

// block_bias[v0 * L, (v0 + C) * L) = bias + sum over the listed columns c of x[c] * w[c].
template <typename V, std::size_t C>
FASTPLACE_INLINE void fold_vectors(const float* x, const std::uint32_t* columns, std::size_t n,
                                   const RowLayer& layer0, const float* bias, std::size_t v0, float* block_bias) {
    constexpr std::size_t L = sizeof(V) / sizeof(float);
    V acc[C];
    for (std::size_t c = 0; c < C; ++c) acc[c] = load<V>(bias + (v0 + c) * L);
    for (std::size_t a = 0; a < n; ++a) {
        const float value = x[columns[a]];
        const float* w = layer0.wt + columns[a] * layer0.stride + v0 * L;
        for (std::size_t c = 0; c < C; ++c) acc[c] += value * load<V>(w + c * L);
    }
    for (std::size_t c = 0; c < C; ++c) store(block_bias + (v0 + c) * L, acc[c]);
}

// block_bias = bias + the layer-0 contribution of the n constant columns of the row x:
// equal on every row of the block, they add the same to each row.
template <typename V, std::size_t C>
FASTPLACE_INLINE void fold_constant_columns(const float* x, const std::uint32_t* constant, std::size_t n,
                                            const RowLayer& layer0, const float* bias, float* block_bias) {
    constexpr std::size_t L = sizeof(V) / sizeof(float);
    const std::size_t n_vectors = layer0.stride / L;
    std::size_t v = 0;
    for (; v + C <= n_vectors; v += C) fold_vectors<V, C>(x, constant, n, layer0, bias, v, block_bias);
    for (; v < n_vectors; ++v) fold_vectors<V, 1>(x, constant, n, layer0, bias, v, block_bias);
}

}  // namespace

struct MlpKernels {
    // score(): kBlock rows at a time, transposed. V: the vector register type; J: outputs
    // computed together (as many accumulator registers as the ISA has: 16 SSE or 16 AVX).
    template <typename V, std::size_t J>
    static FASTPLACE_INLINE void dense(const MlpScorer& s, const float* x, std::size_t k, std::size_t shared,
                                       float* out) {
        constexpr std::size_t NV = sizeof(Column) / sizeof(V);
        static_assert(NV * sizeof(V) == sizeof(Column), "a Column is a whole number of vectors");
        const std::size_t f = s.sizes_.front();
        const std::size_t n_layers = s.weights_.size();
        const std::size_t width0 = s.sizes_[1];
        Column stack_a[kStackWidth];
        Column stack_b[kStackWidth];
        float stack_bias[kStackWidth];
        std::vector<Column> heap;
        std::vector<float> heap_bias;
        Column* a = stack_a;
        Column* b = stack_b;
        float* bias0 = stack_bias;
        if (s.max_width_ > kStackWidth) {
            heap.resize(2 * s.max_width_);
            heap_bias.resize(s.max_width_);
            a = heap.data();
            b = heap.data() + s.max_width_;
            bias0 = heap_bias.data();
        }
        const float* mean = s.mean_.data();
        const float* inv_std = s.inv_std_.data();
        // The shared columns (equal on every row) enter layer 0 through its bias, once;
        // only with finite weights (an infinite weight times a zero column is NaN).
        const std::size_t own = s.skip_zero_columns_ ? f - shared : f;
        const float* layer0_bias = s.biases_[0].data();
        if (own < f) {
            const float* wt0 = s.transposed_[0].data();
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
            load_block<V, NV>(x + r0 * f, rows, f, mean, inv_std, a);
            std::size_t in = own;
            for (std::size_t l = 0; l < n_layers; ++l) {
                const std::size_t width = s.sizes_[l + 1];
                layer<V, NV, J>(s.transposed_[l].data(), l == 0 ? layer0_bias : s.biases_[l].data(), width, in,
                                reinterpret_cast<const V*>(a), reinterpret_cast<V*>(b), l + 1 < n_layers);
                std::swap(a, b);
                in = width;
            }
            std::memcpy(out + r0, a[0].rows, rows * sizeof(float));  // the one output
        }
    }

    static RowLayer row_layer(const MlpScorer& s, std::size_t l) {
        return RowLayer{s.row_weights_[l].data(), s.row_biases_[l].data(), s.row_valid_[l].data(),
                        padded(s.sizes_[l + 1])};
    }

    // score_decision(): see the row-major helpers above. R rows and C unit vectors at once.
    // Needs finite weights and a hidden layer (the constructor picks dense otherwise).
    template <typename V, std::size_t R, std::size_t C>
    static FASTPLACE_INLINE void decision(const MlpScorer& s, const float* x, std::size_t k, std::size_t shared,
                                          float* out) {
        constexpr std::size_t L = sizeof(V) / sizeof(float);
        const std::size_t f = s.sizes_.front();
        const std::size_t n_layers = s.weights_.size();
        const std::size_t own = f - shared;
        const std::size_t x_stride = padded(f);
        const std::size_t h_stride = padded(s.widest_hidden_);
        // Scratch, in Columns (64-byte aligned): standardised rows, two hidden blocks, the
        // layer-0 bias with the shared columns and with the block's constant columns,
        // unit masks (one lane per unit or column), a list of inputs and of constant columns.
        const std::size_t x_size = kRowBlock * x_stride;
        const std::size_t h_size = kRowBlock * h_stride;
        const std::size_t list_size = std::max(x_stride, h_stride);
        const std::size_t need = x_size + 2 * h_size + 2 * h_stride + 3 * list_size;
        static_assert(sizeof(Column) % sizeof(Mask<V>) == 0, "whole masks per Column");
        Column stack[kDecisionStack / kPad];
        std::vector<Column> heap;
        float* scratch = stack[0].rows;
        if (need > kDecisionStack) {
            heap.resize(need / kPad);
            scratch = heap[0].rows;
        }
        float* xs = scratch;
        float* h_a = xs + x_size;
        float* h_b = h_a + h_size;
        float* bias0 = h_b + h_size;
        float* block_bias = bias0 + h_stride;
        auto* masks = reinterpret_cast<Mask<V>*>(block_bias + h_stride);
        auto* list = reinterpret_cast<std::uint32_t*>(block_bias + h_stride + list_size);
        auto* constant = list + list_size;

        const float* mean = s.mean_.data();
        const float* inv_std = s.inv_std_.data();
        const RowLayer layer0 = row_layer(s, 0);
        // The shared columns enter layer 0's bias once, from row 0.
        std::copy_n(layer0.bias, layer0.stride, bias0);
        for (std::size_t i = own; i < f; ++i) {
            const float value = (x[i] - mean[i]) * inv_std[i];
            const float* w_i = layer0.wt + i * layer0.stride;
            for (std::size_t v = 0; v < layer0.stride / L; ++v) {
                store(bias0 + v * L, load<V>(bias0 + v * L) + value * load<V>(w_i + v * L));
            }
        }
        RowSink<V> into_last{nullptr, nullptr, s.row_weights_.back().data(), s.biases_.back()[0], nullptr};
        for (std::size_t r0 = 0; r0 < k; r0 += kRowBlock) {
            const std::size_t rows = std::min(kRowBlock, k - r0);
            // Standardise columns [0, own) (whole vectors where they stay inside the row).
            for (std::size_t r = 0; r < rows; ++r) {
                const float* row = x + (r0 + r) * f;
                float* xs_r = xs + r * x_stride;
                std::size_t c = 0;
                for (; c < own && c + L <= f; c += L) {
                    store(xs_r + c, (load<V>(row + c) - load<V>(mean + c)) * load<V>(inv_std + c));
                }
                for (; c < own; ++c) xs_r[c] = (row[c] - mean[c]) * inv_std[c];
                for (; c % L != 0; ++c) xs_r[c] = 0.0F;  // the last vector varying_columns reads
            }
            std::size_t n_constant = 0;
            std::size_t n = varying_columns<V>(xs, x_stride, rows, own, masks, list, constant, n_constant);
            const float* bias = bias0;
            if (n_constant > 0) {
                fold_constant_columns<V, C>(xs, constant, n_constant, layer0, bias0, block_bias);
                bias = block_bias;
            }
            const float* src = xs;
            std::size_t src_stride = x_stride;
            float* dst = h_a;
            for (std::size_t l = 0; l + 1 < n_layers; ++l) {
                const RowLayer hidden = l == 0 ? layer0 : row_layer(s, l);
                const float* b = l == 0 ? bias : hidden.bias;
                if (l + 2 == n_layers) {
                    into_last.scores = out + r0;
                    hidden_layer<V, R, C, true>(hidden, s.sizes_[l + 1], b, list, n, src, src_stride, rows,
                                                into_last, list);
                    break;
                }
                const RowSink<V> into_next{dst, masks, nullptr, 0.0F, nullptr};
                n = hidden_layer<V, R, C, false>(hidden, s.sizes_[l + 1], b, list, n, src, src_stride, rows,
                                                 into_next, list);
                src = dst;
                src_stride = hidden.stride;
                dst = dst == h_a ? h_b : h_a;
            }
        }
    }

    static void generic(const MlpScorer& s, const float* x, std::size_t k, std::size_t shared, float* out) {
        dense<V4, 2>(s, x, k, shared, out);
    }
    static void generic_decision(const MlpScorer& s, const float* x, std::size_t k, std::size_t shared,
                                 float* out) {
        decision<V4, 2, 4>(s, x, k, shared, out);
    }

#if defined(__x86_64__) && defined(__GNUC__)
    __attribute__((target("avx2,fma"))) static void avx2(const MlpScorer& s, const float* x, std::size_t k,
                                                          std::size_t shared, float* out) {
        dense<V8, 4>(s, x, k, shared, out);
    }
    __attribute__((target("avx2,fma"))) static void avx2_decision(const MlpScorer& s, const float* x,
                                                                   std::size_t k, std::size_t shared, float* out) {
        decision<V8, 4, 2>(s, x, k, shared, out);  // 4 x 2 measured ahead of 2 x 4 and 3 x 4
    }
    __attribute__((target("avx512f"))) static void avx512(const MlpScorer& s, const float* x, std::size_t k,
                                                          std::size_t shared, float* out) {
        dense<V16, 8>(s, x, k, shared, out);
    }
    __attribute__((target("avx512f"))) static void avx512_decision(const MlpScorer& s, const float* x,
                                                                     std::size_t k, std::size_t shared, float* out) {
        decision<V16, 4, 2>(s, x, k, shared, out);
    }
#endif
};

namespace {

std::string layer_name(std::size_t l) { return "layer " + std::to_string(l); }

bool env_flag(const char* name) {
    const char* value = std::getenv(name);
    return value != nullptr && value[0] == '1';
}

// FASTPLACE_SCORER_AVX512=1 picks the AVX-512 kernel on CPUs that have it (off by
// default: on double-pumped AVX-512 CPUs it is no faster than AVX2, see the header).
bool prefer_avx512() { return env_flag("FASTPLACE_SCORER_AVX512"); }

// FASTPLACE_SCORER_GENERIC=1 keeps the portable kernel even where AVX2 exists: the only
// way to test it on the x86 machines the tests run on.
bool force_generic() { return env_flag("FASTPLACE_SCORER_GENERIC"); }

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

    // The decision path's layout: hidden layers transposed with each input's units padded
    // to a multiple of kPad (zeros), the last layer's one row of weights likewise.
    const std::size_t n_layers = weights_.size();
    row_weights_.resize(n_layers);
    row_biases_.resize(n_layers);
    row_valid_.resize(n_layers);
    for (std::size_t l = 0; l + 1 < n_layers; ++l) {
        const std::size_t in = sizes_[l];
        const std::size_t out = sizes_[l + 1];
        const std::size_t stride = padded(out);
        widest_hidden_ = std::max(widest_hidden_, out);
        row_weights_[l].assign(in * stride, 0.0F);
        for (std::size_t i = 0; i < in; ++i) std::copy_n(&transposed_[l][i * out], out, &row_weights_[l][i * stride]);
        row_biases_[l].assign(stride, 0.0F);
        std::copy(biases_[l].begin(), biases_[l].end(), row_biases_[l].begin());
        row_valid_[l].assign(stride, 0);
        std::fill_n(row_valid_[l].begin(), out, ~std::uint32_t{0});
    }
    row_weights_.back().assign(padded(sizes_[n_layers - 1]), 0.0F);
    std::copy(weights_.back().begin(), weights_.back().end(), row_weights_.back().begin());

    kernel_ = &MlpKernels::generic;
    decision_kernel_ = &MlpKernels::generic_decision;
#if defined(__x86_64__) && defined(__GNUC__)
    if (!force_generic() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        kernel_ = &MlpKernels::avx2;
        decision_kernel_ = &MlpKernels::avx2_decision;
    }
    if (!force_generic() && prefer_avx512() && __builtin_cpu_supports("avx512f")) {
        kernel_ = &MlpKernels::avx512;
        decision_kernel_ = &MlpKernels::avx512_decision;
    }
#endif
    // The decision path skips work that is exact only with finite weights (w * 0 = 0)
    // and needs a hidden layer; otherwise it is score().
    if (!skip_zero_columns_ || n_layers == 1) decision_kernel_ = kernel_;
}

const char* MlpScorer::kernel_name() const {
#if defined(__x86_64__) && defined(__GNUC__)
    if (kernel_ == &MlpKernels::avx2) return "avx2+fma";
    if (kernel_ == &MlpKernels::avx512) return "avx512f";
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

std::size_t MlpScorer::equal_tail(const float* features, std::size_t k, std::size_t f, std::size_t tail) {
    tail = std::min(tail, f);
    for (std::size_t row = 1; row < k && tail > 0; ++row) {
        const float* first = features + f - tail;
        const float* other = features + row * f + f - tail;
        while (tail > 0 && std::memcmp(first, other, tail * sizeof(float)) != 0) {
            --tail;
            ++first;
            ++other;
        }
    }
    return tail;
}

void MlpScorer::score_decision(const float* features, std::size_t k, std::size_t f, float* out,
                               std::size_t shared_tail) const {
    if (f != n_features() || shared_tail > f) score(features, k, f, out, shared_tail);  // throws
    if (k == 0) return;
    decision_kernel_(*this, features, k, shared_tail, out);
}

}  // namespace fastplace
