#include "ot/log_sum_exp.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace otgen::ot {
namespace {

// Below this, exp(x) is a float denormal: the kernels return exactly 0 instead.
constexpr float kExpUnderflow = -87.33654f;
// exp(x) overflows float above 88.7228; clamping at 89 keeps 2^n finite in the reduction while
// vscalefps still returns +inf.
constexpr float kExpOverflow = 89.0f;
// Rows folded per block by the column kernels (one rescaling exp per column per block).
constexpr int64_t kColumnBlockRows = 16;

inline float ScalarExp(float x) { return x < kExpUnderflow ? 0.0f : std::exp(x); }

#if defined(__AVX512F__)

// exp(x) = 2^n exp(r), n = round(x / ln2), r = x - n ln2 in [-ln2/2, ln2/2] (Cody-Waite split
// of ln2), exp(r) by its degree-6 Taylor polynomial (truncation error < 1.3e-7 relative),
// 2^n applied by vscalefps. Lanes below kExpUnderflow (and -inf, NaN) give 0.
inline __m512 Exp512(__m512 x) {
  const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(kExpUnderflow), _CMP_GE_OQ);
  x = _mm512_min_ps(x, _mm512_set1_ps(kExpOverflow));
  x = _mm512_max_ps(x, _mm512_set1_ps(kExpUnderflow - 1.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_maskz_scalef_ps(keep, p, n);
}

inline __mmask16 TailMask(int64_t count) { return static_cast<__mmask16>((1u << count) - 1u); }

void ExpInPlaceAvx512(float* x, int64_t n) {
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) _mm512_storeu_ps(x + j, Exp512(_mm512_loadu_ps(x + j)));
  if (j < n) {
    const __mmask16 mask = TailMask(n - j);
    _mm512_mask_storeu_ps(x + j, mask, Exp512(_mm512_maskz_loadu_ps(mask, x + j)));
  }
}

void ExpAffineRowAvx512(const float* bias, const float* c, int64_t n, float shift, float scale,
                        float* out) {
  const __m512 vs = _mm512_set1_ps(scale);
  const __m512 vshift = _mm512_set1_ps(shift);
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512 b = _mm512_add_ps(_mm512_loadu_ps(bias + j), vshift);
    _mm512_storeu_ps(out + j, Exp512(_mm512_fnmadd_ps(_mm512_loadu_ps(c + j), vs, b)));
  }
  if (j < n) {
    const __mmask16 mask = TailMask(n - j);
    const __m512 b = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, bias + j), vshift);
    _mm512_mask_storeu_ps(out + j, mask,
                          Exp512(_mm512_fnmadd_ps(_mm512_maskz_loadu_ps(mask, c + j), vs, b)));
  }
}

void AccumulateRowLogSumExpAvx512(const float* bias, const float* c, int64_t n, float scale,
                                  LogSumExpAccumulator* acc) {
  if (n <= 0) return;
  const __m512 vs = _mm512_set1_ps(scale);
  const __m512 lowest = _mm512_set1_ps(-FLT_MAX);
  const __m512 neg_inf = _mm512_set1_ps(-INFINITY);
  const int64_t n_full = n & ~int64_t{15};
  const __mmask16 tail = TailMask(n - n_full);
  auto value = [&](int64_t j) {
    return _mm512_fnmadd_ps(_mm512_loadu_ps(c + j), vs, _mm512_loadu_ps(bias + j));
  };
  auto tail_value = [&]() {
    // Lanes past the end: bias -inf, cost 0, so v = -inf and exp(v - M) = 0.
    return _mm512_fnmadd_ps(_mm512_maskz_loadu_ps(tail, c + n_full), vs,
                            _mm512_mask_loadu_ps(neg_inf, tail, bias + n_full));
  };

  // Pass 1: the maximum (4 independent accumulators).
  __m512 m0 = lowest, m1 = lowest, m2 = lowest, m3 = lowest;
  int64_t j = 0;
  for (; j + 64 <= n_full; j += 64) {
    m0 = _mm512_max_ps(m0, value(j));
    m1 = _mm512_max_ps(m1, value(j + 16));
    m2 = _mm512_max_ps(m2, value(j + 32));
    m3 = _mm512_max_ps(m3, value(j + 48));
  }
  for (; j < n_full; j += 16) m0 = _mm512_max_ps(m0, value(j));
  if (tail) m1 = _mm512_max_ps(m1, tail_value());
  const float row_max =
      _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
  const float new_max = std::max(row_max, acc->max);

  // Pass 2: sum of exp(v - M) (the row is in L1/L2 from pass 1).
  const __m512 vm = _mm512_set1_ps(new_max);
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  j = 0;
  for (; j + 64 <= n_full; j += 64) {
    s0 = _mm512_add_ps(s0, Exp512(_mm512_sub_ps(value(j), vm)));
    s1 = _mm512_add_ps(s1, Exp512(_mm512_sub_ps(value(j + 16), vm)));
    s2 = _mm512_add_ps(s2, Exp512(_mm512_sub_ps(value(j + 32), vm)));
    s3 = _mm512_add_ps(s3, Exp512(_mm512_sub_ps(value(j + 48), vm)));
  }
  for (; j < n_full; j += 16) s0 = _mm512_add_ps(s0, Exp512(_mm512_sub_ps(value(j), vm)));
  if (tail) s1 = _mm512_add_ps(s1, Exp512(_mm512_sub_ps(tail_value(), vm)));
  const float row_sum =
      _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
  acc->sum = acc->sum * ScalarExp(acc->max - new_max) + row_sum;
  acc->max = new_max;
}

// One chunk of V vectors (16 V columns) of the column kernel over `rows` rows; the last vector
// is restricted to `last` lanes.
template <int V>
inline void ColumnChunkAvx512(const float* c, int64_t ldc, int64_t rows, const float* row_bias,
                              __m512 vs, float* col_max, float* col_sum, __mmask16 last) {
  const __m512 lowest = _mm512_set1_ps(-FLT_MAX);
  __m512 old_max[V], new_max[V], sum[V];
  for (int v = 0; v < V; ++v) {
    const __mmask16 mask = v == V - 1 ? last : __mmask16{0xFFFF};
    old_max[v] = _mm512_mask_loadu_ps(lowest, mask, col_max + 16 * v);
    sum[v] = _mm512_maskz_loadu_ps(mask, col_sum + 16 * v);
    new_max[v] = old_max[v];
  }
  for (int64_t r = 0; r < rows; ++r) {
    const __m512 b = _mm512_set1_ps(row_bias[r]);
    const float* cr = c + r * ldc;
    for (int v = 0; v < V; ++v) {
      const __mmask16 mask = v == V - 1 ? last : __mmask16{0xFFFF};
      const __m512 x = _mm512_maskz_loadu_ps(mask, cr + 16 * v);
      new_max[v] = _mm512_max_ps(new_max[v], _mm512_fnmadd_ps(x, vs, b));
    }
  }
  for (int v = 0; v < V; ++v) {
    sum[v] = _mm512_mul_ps(sum[v], Exp512(_mm512_sub_ps(old_max[v], new_max[v])));
  }
  for (int64_t r = 0; r < rows; ++r) {
    const __m512 b = _mm512_set1_ps(row_bias[r]);
    const float* cr = c + r * ldc;
    for (int v = 0; v < V; ++v) {
      const __mmask16 mask = v == V - 1 ? last : __mmask16{0xFFFF};
      const __m512 x = _mm512_maskz_loadu_ps(mask, cr + 16 * v);
      sum[v] = _mm512_add_ps(sum[v], Exp512(_mm512_sub_ps(_mm512_fnmadd_ps(x, vs, b), new_max[v])));
    }
  }
  for (int v = 0; v < V; ++v) {
    const __mmask16 mask = v == V - 1 ? last : __mmask16{0xFFFF};
    _mm512_mask_storeu_ps(col_max + 16 * v, mask, new_max[v]);
    _mm512_mask_storeu_ps(col_sum + 16 * v, mask, sum[v]);
  }
}

void AccumulateColumnLogSumExpAvx512(const float* c, int64_t ldc, int64_t rows, int64_t cols,
                                     const float* row_bias, float scale, float* col_max,
                                     float* col_sum) {
  constexpr int kChunkVectors = 8;
  constexpr int64_t kChunkCols = 16 * kChunkVectors;
  const __m512 vs = _mm512_set1_ps(scale);
  for (int64_t r0 = 0; r0 < rows; r0 += kColumnBlockRows) {
    const int64_t rb = std::min(kColumnBlockRows, rows - r0);
    const float* cb = c + r0 * ldc;
    const float* bb = row_bias + r0;
    int64_t j = 0;
    for (; j + kChunkCols <= cols; j += kChunkCols) {
      ColumnChunkAvx512<kChunkVectors>(cb + j, ldc, rb, bb, vs, col_max + j, col_sum + j,
                                       __mmask16{0xFFFF});
    }
    for (; j < cols; j += 16) {
      const __mmask16 mask = cols - j >= 16 ? __mmask16{0xFFFF} : TailMask(cols - j);
      ColumnChunkAvx512<1>(cb + j, ldc, rb, bb, vs, col_max + j, col_sum + j, mask);
    }
  }
}

void MergeColumnLogSumExpAvx512(const float* const* maxes, const float* const* sums, int count,
                                int64_t cols, float* out_max, float* out_sum) {
  if (count <= 0) return;
  const __m512 lowest = _mm512_set1_ps(-FLT_MAX);
  for (int64_t j = 0; j < cols; j += 16) {
    const __mmask16 mask = cols - j >= 16 ? __mmask16{0xFFFF} : TailMask(cols - j);
    __m512 m = lowest;
    for (int k = 0; k < count; ++k) {
      m = _mm512_max_ps(m, _mm512_mask_loadu_ps(lowest, mask, maxes[k] + j));
    }
    __m512 total = _mm512_setzero_ps();
    for (int k = 0; k < count; ++k) {
      const __m512 mk = _mm512_mask_loadu_ps(lowest, mask, maxes[k] + j);
      const __m512 sk = _mm512_maskz_loadu_ps(mask, sums[k] + j);
      total = _mm512_fmadd_ps(sk, Exp512(_mm512_sub_ps(mk, m)), total);
    }
    _mm512_mask_storeu_ps(out_max + j, mask, m);
    _mm512_mask_storeu_ps(out_sum + j, mask, total);
  }
}

#endif  // defined(__AVX512F__)

}  // namespace

void LogSumExpAccumulator::Merge(const LogSumExpAccumulator& other) {
  const float new_max = std::max(max, other.max);
  sum = sum * ScalarExp(max - new_max) + other.sum * ScalarExp(other.max - new_max);
  max = new_max;
}

namespace internal {

bool LogSumExpUsesAvx512() {
#if defined(__AVX512F__)
  return true;
#else
  return false;
#endif
}

void ExpInPlaceGeneric(float* x, int64_t n) {
  for (int64_t j = 0; j < n; ++j) x[j] = ScalarExp(x[j]);
}

void ExpAffineRowGeneric(const float* bias, const float* c, int64_t n, float shift, float scale,
                         float* out) {
  for (int64_t j = 0; j < n; ++j) out[j] = ScalarExp(bias[j] + shift - scale * c[j]);
}

void AccumulateRowLogSumExpGeneric(const float* bias, const float* c, int64_t n, float scale,
                                   LogSumExpAccumulator* acc) {
  if (n <= 0) return;
  float row_max = -FLT_MAX;
  for (int64_t j = 0; j < n; ++j) row_max = std::max(row_max, bias[j] - scale * c[j]);
  const float new_max = std::max(row_max, acc->max);
  float row_sum = 0.0f;
  for (int64_t j = 0; j < n; ++j) row_sum += ScalarExp(bias[j] - scale * c[j] - new_max);
  acc->sum = acc->sum * ScalarExp(acc->max - new_max) + row_sum;
  acc->max = new_max;
}

void AccumulateColumnLogSumExpGeneric(const float* c, int64_t ldc, int64_t rows, int64_t cols,
                                      const float* row_bias, float scale, float* col_max,
                                      float* col_sum) {
  for (int64_t r0 = 0; r0 < rows; r0 += kColumnBlockRows) {
    const int64_t rb = std::min(kColumnBlockRows, rows - r0);
    for (int64_t j = 0; j < cols; ++j) {
      float new_max = col_max[j];
      for (int64_t r = r0; r < r0 + rb; ++r) {
        new_max = std::max(new_max, row_bias[r] - scale * c[r * ldc + j]);
      }
      float sum = col_sum[j] * ScalarExp(col_max[j] - new_max);
      for (int64_t r = r0; r < r0 + rb; ++r) {
        sum += ScalarExp(row_bias[r] - scale * c[r * ldc + j] - new_max);
      }
      col_max[j] = new_max;
      col_sum[j] = sum;
    }
  }
}

void MergeColumnLogSumExpGeneric(const float* const* maxes, const float* const* sums, int count,
                                 int64_t cols, float* out_max, float* out_sum) {
  if (count <= 0) return;
  for (int64_t j = 0; j < cols; ++j) {
    float m = -FLT_MAX;
    for (int k = 0; k < count; ++k) m = std::max(m, maxes[k][j]);
    float total = 0.0f;
    for (int k = 0; k < count; ++k) total += sums[k][j] * ScalarExp(maxes[k][j] - m);
    out_max[j] = m;
    out_sum[j] = total;
  }
}

}  // namespace internal

void MergeColumnLogSumExp(const float* const* maxes, const float* const* sums, int count,
                          int64_t cols, float* out_max, float* out_sum) {
#if defined(__AVX512F__)
  MergeColumnLogSumExpAvx512(maxes, sums, count, cols, out_max, out_sum);
#else
  internal::MergeColumnLogSumExpGeneric(maxes, sums, count, cols, out_max, out_sum);
#endif
}

void ExpInPlace(float* x, int64_t n) {
#if defined(__AVX512F__)
  ExpInPlaceAvx512(x, n);
#else
  internal::ExpInPlaceGeneric(x, n);
#endif
}

void ExpAffineRow(const float* bias, const float* c, int64_t n, float shift, float scale,
                  float* out) {
#if defined(__AVX512F__)
  ExpAffineRowAvx512(bias, c, n, shift, scale, out);
#else
  internal::ExpAffineRowGeneric(bias, c, n, shift, scale, out);
#endif
}

void AccumulateRowLogSumExp(const float* bias, const float* c, int64_t n, float scale,
                            LogSumExpAccumulator* acc) {
#if defined(__AVX512F__)
  AccumulateRowLogSumExpAvx512(bias, c, n, scale, acc);
#else
  internal::AccumulateRowLogSumExpGeneric(bias, c, n, scale, acc);
#endif
}

void AccumulateColumnLogSumExp(const float* c, int64_t ldc, int64_t rows, int64_t cols,
                               const float* row_bias, float scale, float* col_max, float* col_sum) {
#if defined(__AVX512F__)
  AccumulateColumnLogSumExpAvx512(c, ldc, rows, cols, row_bias, scale, col_max, col_sum);
#else
  internal::AccumulateColumnLogSumExpGeneric(c, ldc, rows, cols, row_bias, scale, col_max, col_sum);
#endif
}

}  // namespace otgen::ot
