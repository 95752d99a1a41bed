// Thin matrix products: op(A) [m, k] op(B) [k, n] with min(m, n, k) <= kMaxThinDimension -- the
// 2-d input and 1-d output layers of the 2-D networks and their gradients -- in float32 loops
// (AVX-512 where the build has it, portable loops otherwise), one pass over the large
// operand(s), with an optional bias and (leaky) ReLU applied as the result is stored. oneDNN 2.6
// spends 10-15 us on a [512, 2] x [2, 128] or a [128, 512] x [512, 2] product (plus the bf16
// copies of its operands), a general GEMM packs operands for a depth of 2 and zero-fills the
// output first; these loops take 2-7 us (nn:tensor_math_bench BM_MatMul_ThinLayer).
//
// Internal to nn (tensor_math's MatMul runs them); they assume valid pointers and sizes. The
// including target compiles with -fopenmp (or -fopenmp-simd) for the `omp simd` loops.
#ifndef OTGEN_NN_THIN_PRODUCT_H_
#define OTGEN_NN_THIN_PRODUCT_H_

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <vector>

#ifdef __AVX512F__
#include <immintrin.h>
#endif

namespace otgen::nn::internal {

// Products with min(M, N, K) <= this are thin.
inline constexpr int64_t kMaxThinDimension = 4;

// f(std::integral_constant<int, d>()) for a small dimension d in 1..4 (the kernels unroll over
// it at compile time).
template <typename F>
inline void WithSmallDimension(int64_t d, const F& f) {
  switch (d) {
    case 1: return f(std::integral_constant<int, 1>());
    case 2: return f(std::integral_constant<int, 2>());
    case 3: return f(std::integral_constant<int, 3>());
    default: return f(std::integral_constant<int, 4>());
  }
}

// The operands of C = op(A) op(B).
struct ThinOperands {
  const float* a;  // [m, k], or [k, m] when ta
  const float* b;  // [k, n], or [n, k] when tb
  int64_t m, n, k;
  bool ta, tb;
  float A(int64_t i, int64_t l) const { return ta ? a[l * m + i] : a[i * k + l]; }
  float B(int64_t l, int64_t j) const { return tb ? b[j * k + l] : b[l * n + j]; }
};

// Stores out[j] = act(v[j] + bias[j]) for j < n.
// (Two loops: a bias test inside the loop becomes a masked load from the null pointer, which
// costs a fault-suppression assist per vector.)
inline void StoreRow(const float* v, int64_t n, const float* bias, std::optional<float> relu, float* out) {
  const float slope = relu.value_or(1.0f);
  if (bias != nullptr) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      const float t = v[j] + bias[j];
      out[j] = t > 0.0f ? t : slope * t;
    }
    return;
  }
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) out[j] = v[j] > 0.0f ? v[j] : slope * v[j];
}

// Per-thread scratch for transposed copies of a thin operand.
inline float* ThinScratch(int slot, int64_t size) {
  thread_local std::array<std::vector<float>, 2> buffers;
  std::vector<float>& v = buffers[slot];
  if (static_cast<int64_t>(v.size()) < size) v.resize(size);
  return v.data();
}

// k <= kMaxThinDimension: C[i, :] = sum_l A(i, l) Bk[l, :] with Bk the [k, n] rows of op(B).
template <int K>
inline void ThinDepthProduct(const ThinOperands& p, const float* bk, const float* bias, std::optional<float> relu,
                      float* c) {
  float* row = ThinScratch(1, p.n);
  for (int64_t i = 0; i < p.m; ++i) {
    float ai[K];
    for (int l = 0; l < K; ++l) ai[l] = p.A(i, l);
#pragma omp simd
    for (int64_t j = 0; j < p.n; ++j) {
      float v = 0.0f;
      for (int l = 0; l < K; ++l) v += ai[l] * bk[l * p.n + j];
      row[j] = v;
    }
    StoreRow(row, p.n, bias, relu, c + i * p.n);
  }
}

#ifdef __AVX512F__
// AVX-512 forms of the common thin layouts; 16 floats per register, masked tails (no load
// with an empty mask: masked-off lanes past the end of an array are not read, but they could
// straddle an unmapped page).
inline __mmask16 TailMask(int64_t lanes) {
  return lanes >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << lanes) - 1);
}

// act(v + bias) on a register.
inline __m512 Activate(__m512 v, __m512 slope) {
  return _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LE_OQ), v, slope);
}

// k <= 4: C[i, j] = act(bias[j] + sum_l A(i, l) Bk[l, j]), straight into C.
template <int K, bool kBias>
inline void ThinDepthAvx512(const ThinOperands& p, const float* bk, const float* bias, float slope, float* c) {
  const __m512 vslope = _mm512_set1_ps(slope);
  for (int64_t i = 0; i < p.m; ++i) {
    __m512 ai[K];
    for (int l = 0; l < K; ++l) ai[l] = _mm512_set1_ps(p.A(i, l));
    float* ci = c + i * p.n;
    for (int64_t j = 0; j < p.n; j += 16) {
      const __mmask16 mask = TailMask(p.n - j);
      __m512 v = kBias ? _mm512_maskz_loadu_ps(mask, bias + j) : _mm512_setzero_ps();
      for (int l = 0; l < K; ++l) v = _mm512_fmadd_ps(ai[l], _mm512_maskz_loadu_ps(mask, bk + l * p.n + j), v);
      _mm512_mask_storeu_ps(ci + j, mask, Activate(v, vslope));
    }
  }
}

// tile[s][r] = sum_l small[l * small_l + s * small_s] stream[l * ld + r] for s < S, r < width
// (<= 64): 64 consecutive values of each row l of a streamed operand (read once) times S
// broadcast scalars per row, the 4 S accumulators in registers.
template <int S>
inline void StreamedTile(const float* stream, int64_t ld, int64_t k, int64_t width, const float* small, int64_t small_l,
                  int64_t small_s, float (*tile)[64]) {
  __mmask16 mask[4];
  for (int q = 0; q < 4; ++q) mask[q] = TailMask(std::max<int64_t>(0, width - 16 * q));
  __m512 acc[S][4];
#pragma GCC unroll 4
  for (int j = 0; j < S; ++j) {
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) acc[j][q] = _mm512_setzero_ps();
  }
  for (int64_t l = 0; l < k; ++l) {
    const float* row = stream + l * ld;
    __m512 v[4];
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      v[q] = mask[q] != 0 ? _mm512_maskz_loadu_ps(mask[q], row + 16 * q) : _mm512_setzero_ps();
    }
#pragma GCC unroll 4
    for (int j = 0; j < S; ++j) {
      const __m512 b = _mm512_set1_ps(small[l * small_l + j * small_s]);
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) acc[j][q] = _mm512_fmadd_ps(v[q], b, acc[j][q]);
    }
  }
#pragma GCC unroll 4
  for (int j = 0; j < S; ++j) {
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) _mm512_storeu_ps(tile[j] + 16 * q, acc[j][q]);
  }
}

// n <= 4, A stored [k, m] (ta): C[i, j] = sum_l A[l, i] B(l, j), 64 rows of C at a time.
template <int N>
inline void ThinColumnsTransposedAvx512(const ThinOperands& p, const float* bias, float slope, float* c) {
  alignas(64) float tile[N][64];
  for (int64_t i0 = 0; i0 < p.m; i0 += 64) {
    const int64_t rows = std::min<int64_t>(64, p.m - i0);
    StreamedTile<N>(p.a + i0, p.m, p.k, rows, p.b, p.tb ? 1 : p.n, p.tb ? p.k : 1, tile);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < N; ++j) {
        const float t = tile[j][r] + (bias != nullptr ? bias[j] : 0.0f);
        c[(i0 + r) * N + j] = t > 0.0f ? t : slope * t;
      }
    }
  }
}

// m <= 4, B stored [k, n] (not tb): C[i, :] = sum_l A(i, l) B[l, :], 64 columns at a time.
template <int M>
inline void ThinRowsAvx512(const ThinOperands& p, const float* bias, float slope, float* c) {
  alignas(64) float tile[M][64];
  for (int64_t j0 = 0; j0 < p.n; j0 += 64) {
    const int64_t cols = std::min<int64_t>(64, p.n - j0);
    StreamedTile<M>(p.b + j0, p.n, p.k, cols, p.a, p.ta ? p.m : 1, p.ta ? 1 : p.k, tile);
    for (int64_t i = 0; i < M; ++i) {
      const float* bj = bias != nullptr ? bias + j0 : nullptr;
      StoreRow(tile[i], cols, bj, slope, c + i * p.n + j0);
    }
  }
}

// n <= 4, A rows contiguous (not ta), op(B)'s n columns contiguous (tb, or the copy `bt`):
// C[i, j] = dot(A[i, :], Bt[j, :]) for 4 rows at a time, reduced across lanes at the end.
template <int N>
inline void ThinDotsAvx512(const ThinOperands& p, const float* bt, const float* bias, float slope, float* c) {
  constexpr int64_t n = N;
  const int64_t k = p.k;
  for (int64_t i0 = 0; i0 < p.m; i0 += 4) {
    const int64_t rows = std::min<int64_t>(4, p.m - i0);
    __m512 acc[4][N];
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) {
#pragma GCC unroll 4
      for (int j = 0; j < N; ++j) acc[r][j] = _mm512_setzero_ps();
    }
    for (int64_t l = 0; l < k; l += 16) {
      const __mmask16 mask = TailMask(k - l);
      __m512 b[N];
#pragma GCC unroll 4
      for (int j = 0; j < N; ++j) b[j] = _mm512_maskz_loadu_ps(mask, bt + j * k + l);
#pragma GCC unroll 4
      for (int r = 0; r < 4; ++r) {
        // Rows past the end repeat the last row (their sums are not stored).
        const __m512 a = _mm512_maskz_loadu_ps(mask, p.a + (i0 + std::min<int64_t>(r, rows - 1)) * k + l);
#pragma GCC unroll 4
        for (int j = 0; j < N; ++j) acc[r][j] = _mm512_fmadd_ps(a, b[j], acc[r][j]);
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < n; ++j) {
        const float t = _mm512_reduce_add_ps(acc[r][j]) + (bias != nullptr ? bias[j] : 0.0f);
        c[(i0 + r) * n + j] = t > 0.0f ? t : slope * t;
      }
    }
  }
}
#endif  // __AVX512F__

// C [m, n] = act(op(A) op(B) + bias) (bias [n] or null; act the leaky ReLU with slope *relu, or
// the identity) for a thin product (min(m, n, k) <= kMaxThinDimension).
inline void ThinProduct(const ThinOperands& p, const float* bias, std::optional<float> relu, float* c) {
  const int64_t m = p.m, n = p.n, k = p.k;
  if (k <= kMaxThinDimension) {
    const float* bk = p.b;
    if (p.tb) {
      float* t = ThinScratch(0, k * n);
      for (int64_t l = 0; l < k; ++l) {
        for (int64_t j = 0; j < n; ++j) t[l * n + j] = p.b[j * k + l];
      }
      bk = t;
    }
#ifdef __AVX512F__
    const float slope = relu.value_or(1.0f);
    return WithSmallDimension(k, [&](auto K) {
      if (bias != nullptr) {
        ThinDepthAvx512<K(), true>(p, bk, bias, slope, c);
      } else {
        ThinDepthAvx512<K(), false>(p, bk, bias, slope, c);
      }
    });
#endif
    return WithSmallDimension(k, [&](auto K) { ThinDepthProduct<K()>(p, bk, bias, relu, c); });
  }
  if (n <= kMaxThinDimension && p.ta) {
#ifdef __AVX512F__
    const float slope = relu.value_or(1.0f);
    return WithSmallDimension(n, [&](auto N) { ThinColumnsTransposedAvx512<N()>(p, bias, slope, c); });
#endif
    // A stored [k, m]: acc[j][:] += A[l, :] B(l, j), streaming A once.
    float* acc = ThinScratch(0, n * m);
    std::fill(acc, acc + n * m, 0.0f);
    for (int64_t l = 0; l < k; ++l) {
      const float* al = p.a + l * m;
      for (int64_t j = 0; j < n; ++j) {
        const float blj = p.B(l, j);
        float* accj = acc + j * m;
#pragma omp simd
        for (int64_t i = 0; i < m; ++i) accj[i] += al[i] * blj;
      }
    }
    float* row = ThinScratch(1, n);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) row[j] = acc[j * m + i];
      StoreRow(row, n, bias, relu, c + i * n);
    }
    return;
  }
  if (n <= kMaxThinDimension || m <= kMaxThinDimension) {
    const bool rows_of_b = p.tb || n <= kMaxThinDimension;
    if (rows_of_b) {
      // Dot products of A's rows with op(B)'s columns (B's rows when tb; else a transposed copy of
      // the n <= 4 columns). A's rows are contiguous unless ta (then m <= 4: copied per row).
      const float* bt = p.b;
      if (!p.tb) {
        float* t = ThinScratch(0, n * k);
        for (int64_t l = 0; l < k; ++l) {
          for (int64_t j = 0; j < n; ++j) t[j * k + l] = p.b[l * n + j];
        }
        bt = t;
      }
#ifdef __AVX512F__
      if (!p.ta && n <= kMaxThinDimension) {
        const float slope = relu.value_or(1.0f);
        return WithSmallDimension(n, [&](auto N) { ThinDotsAvx512<N()>(p, bt, bias, slope, c); });
      }
#endif
      float* row = ThinScratch(1, n + k);
      float* ai_copy = row + n;
      for (int64_t i = 0; i < m; ++i) {
        const float* ai = p.a + i * k;
        if (p.ta) {
          for (int64_t l = 0; l < k; ++l) ai_copy[l] = p.a[l * m + i];
          ai = ai_copy;
        }
        for (int64_t j = 0; j < n; ++j) {
          const float* bj = bt + j * k;
          float v = 0.0f;
#pragma omp simd reduction(+ : v)
          for (int64_t l = 0; l < k; ++l) v += ai[l] * bj[l];
          row[j] = v;
        }
        StoreRow(row, n, bias, relu, c + i * n);
      }
      return;
    }
    // m <= 4, B stored [k, n]: C[i, :] = sum_l A(i, l) B[l, :], streaming B once per row of C.
#ifdef __AVX512F__
    const float slope = relu.value_or(1.0f);
    return WithSmallDimension(m, [&](auto M) { ThinRowsAvx512<M()>(p, bias, slope, c); });
#endif
    float* row = ThinScratch(1, n);
    for (int64_t i = 0; i < m; ++i) {
      std::fill(row, row + n, 0.0f);
      for (int64_t l = 0; l < k; ++l) {
        const float ail = p.A(i, l);
        const float* bl = p.b + l * n;
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) row[j] += ail * bl[j];
      }
      StoreRow(row, n, bias, relu, c + i * n);
    }
  }
}

}  // namespace otgen::nn::internal

#endif  // OTGEN_NN_THIN_PRODUCT_H_
