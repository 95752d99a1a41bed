// Internal: the row kernels of the exact OT solvers (assignment and network simplex). Each one
// streams one row of a dense cost matrix (float or double) against a double vector and keeps
// a running minimum; they are the inner loops of Jonker-Volgenant and of the network simplex
// pricing, written with AVX-512 intrinsics when the compiler targets AVX-512 and as plain
// loops otherwise. All arithmetic is in double; ties go to the smallest index.
#ifndef OTGEN_OT_DENSE_KERNELS_H_
#define OTGEN_OT_DENSE_KERNELS_H_

#include <cstdint>
#include <limits>

#if defined(__AVX512F__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
#include <immintrin.h>
#define OTGEN_OT_DENSE_KERNELS_AVX512 1
#endif

namespace otgen::ot::internal::simd {

#ifdef OTGEN_OT_DENSE_KERNELS_AVX512
// GCC 12 implements several unmasked AVX-512 intrinsics (_mm512_min_pd, _mm512_cvtps_pd,
// _mm512_castpd512_pd256, _mm512_reduce_min_pd) with _mm*_undefined_*(), which trips
// -Wmaybe-uninitialized (-Werror) at -O2; the zero-masked forms with a full mask are the same
// instructions without that.
constexpr __mmask8 kAll8 = 0xFF;
inline __m512d Min8(__m512d a, __m512d b) { return _mm512_maskz_min_pd(kAll8, a, b); }

// Loads 8 consecutive entries as doubles.
inline __m512d Load8(const double* p) { return _mm512_loadu_pd(p); }
inline __m512d Load8(const float* p) { return _mm512_maskz_cvtps_pd(kAll8, _mm256_loadu_ps(p)); }
// Horizontal minimum of 8 lanes.
inline double HorizontalMin(__m512d v) {
  const __m256d lo = _mm512_maskz_extractf64x4_pd(kAll8, v, 0);
  const __m256d hi = _mm512_maskz_extractf64x4_pd(kAll8, v, 1);
  const __m256d m4 = _mm256_min_pd(lo, hi);
  const __m128d m2 = _mm_min_pd(_mm256_castpd256_pd128(m4), _mm256_extractf128_pd(m4, 1));
  return _mm_cvtsd_f64(_mm_min_sd(m2, _mm_unpackhi_pd(m2, m2)));
}

// Horizontal (min, smallest index among the minima) of 8 lanes.
inline void ReduceArgmin(__m512d vmin, __m256i vidx, double* min_out, int* arg_out) {
  const double m = HorizontalMin(vmin);
  const __mmask8 eq = _mm512_cmp_pd_mask(vmin, _mm512_set1_pd(m), _CMP_EQ_OQ);
  const __m256i big = _mm256_set1_epi32(std::numeric_limits<int>::max());
  const __m256i cand = _mm256_mask_blend_epi32(eq, big, vidx);
  // min over 8 int32 lanes
  __m128i lo = _mm256_castsi256_si128(cand);
  __m128i hi = _mm256_extracti128_si256(cand, 1);
  __m128i mn = _mm_min_epi32(lo, hi);
  mn = _mm_min_epi32(mn, _mm_shuffle_epi32(mn, _MM_SHUFFLE(1, 0, 3, 2)));
  mn = _mm_min_epi32(mn, _mm_shuffle_epi32(mn, _MM_SHUFFLE(2, 3, 0, 1)));
  *min_out = m;
  *arg_out = _mm_cvtsi128_si32(mn);
}
#endif  // OTGEN_OT_DENSE_KERNELS_AVX512

// vmin[j] = min(vmin[j], row[j]); argrow[j] = i where row[j] < vmin[j] (strictly).
template <typename T>
inline void ColumnMinUpdate(const T* row, int i, int n, double* vmin, int* argrow) {
  int j = 0;
#ifdef OTGEN_OT_DENSE_KERNELS_AVX512
  const __m256i vi = _mm256_set1_epi32(i);
  for (; j + 8 <= n; j += 8) {
    const __m512d c = Load8(row + j);
    const __m512d m = _mm512_loadu_pd(vmin + j);
    const __mmask8 lt = _mm512_cmp_pd_mask(c, m, _CMP_LT_OQ);
    _mm512_mask_storeu_pd(vmin + j, lt, c);
    _mm256_mask_storeu_epi32(argrow + j, lt, vi);
  }
#endif
  for (; j < n; ++j) {
    const double c = static_cast<double>(row[j]);
    if (c < vmin[j]) {
      vmin[j] = c;
      argrow[j] = i;
    }
  }
}

// min over j != except of (row[j] - v[j]); +inf if there is no such j.
template <typename T>
inline double RowMinExcept(const T* row, const double* v, int n, int except) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  double best = kInf;
  int j = 0;
#ifdef OTGEN_OT_DENSE_KERNELS_AVX512
  __m512d vbest = _mm512_set1_pd(kInf);
  for (; j + 8 <= n; j += 8) {
    __m512d r = _mm512_sub_pd(Load8(row + j), _mm512_loadu_pd(v + j));
    if (except >= j && except < j + 8) {
      r = _mm512_mask_blend_pd(static_cast<__mmask8>(1u << (except - j)), r, _mm512_set1_pd(kInf));
    }
    vbest = Min8(vbest, r);
  }
  best = HorizontalMin(vbest);
#endif
  for (; j < n; ++j) {
    if (j == except) continue;
    const double r = static_cast<double>(row[j]) - v[j];
    if (r < best) best = r;
  }
  return best;
}

// The smallest (u1 at j1) and second smallest (u2 at j2) of row[j] - v[j]; j2 = -1 and
// u2 = +inf when n == 1. Ties: j1 < j2 when u1 == u2.
template <typename T>
inline void TwoSmallestReduced(const T* row, const double* v, int n, double* u1, int* j1,
                               double* u2, int* j2) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  double b1 = kInf, b2 = kInf;
  int i1 = -1, i2 = -1;
  int j = 0;
#ifdef OTGEN_OT_DENSE_KERNELS_AVX512
  if (n >= 16) {
    // Per-lane best and second best, then merge the 16 candidates.
    __m512d m1 = _mm512_set1_pd(kInf), m2 = _mm512_set1_pd(kInf);
    __m256i a1 = _mm256_set1_epi32(-1), a2 = _mm256_set1_epi32(-1);
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i step = _mm256_set1_epi32(8);
    for (; j + 8 <= n; j += 8) {
      const __m512d r = _mm512_sub_pd(Load8(row + j), _mm512_loadu_pd(v + j));
      const __mmask8 lt1 = _mm512_cmp_pd_mask(r, m1, _CMP_LT_OQ);
      const __mmask8 lt2 = _mm512_cmp_pd_mask(r, m2, _CMP_LT_OQ);
      // New second best: old best where r beats best, else r where r beats second.
      m2 = _mm512_mask_blend_pd(lt2, m2, r);
      a2 = _mm256_mask_blend_epi32(lt2, a2, idx);
      m2 = _mm512_mask_blend_pd(lt1, m2, m1);
      a2 = _mm256_mask_blend_epi32(lt1, a2, a1);
      m1 = _mm512_mask_blend_pd(lt1, m1, r);
      a1 = _mm256_mask_blend_epi32(lt1, a1, idx);
      idx = _mm256_add_epi32(idx, step);
    }
    alignas(64) double c1[8], c2[8];
    alignas(32) int d1[8], d2[8];
    _mm512_store_pd(c1, m1);
    _mm512_store_pd(c2, m2);
    _mm256_store_si256(reinterpret_cast<__m256i*>(d1), a1);
    _mm256_store_si256(reinterpret_cast<__m256i*>(d2), a2);
    auto push = [&](double r, int k) {
      if (k < 0) return;
      if (r < b1 || (r == b1 && k < i1)) {
        b2 = b1;
        i2 = i1;
        b1 = r;
        i1 = k;
      } else if (r < b2 || (r == b2 && k < i2)) {
        b2 = r;
        i2 = k;
      }
    };
    for (int l = 0; l < 8; ++l) {
      push(c1[l], d1[l]);
      push(c2[l], d2[l]);
    }
  }
#endif
  for (; j < n; ++j) {
    const double r = static_cast<double>(row[j]) - v[j];
    if (r < b2) {
      if (r < b1) {
        b2 = b1;
        i2 = i1;
        b1 = r;
        i1 = j;
      } else {
        b2 = r;
        i2 = j;
      }
    }
  }
  if (i1 < 0) {  // Every entry was +inf, impossible for finite costs; keep outputs defined.
    i1 = 0;
    b1 = static_cast<double>(row[0]) - v[0];
  }
  *u1 = b1;
  *j1 = i1;
  *u2 = b2;
  *j2 = i2;
}

#ifdef OTGEN_OT_DENSE_KERNELS_AVX512
// Merges two (min, index) accumulators lane by lane, preferring the smaller index on ties.
inline void MergeArgmin(__m512d* b0, __m256i* x0, __m512d b1, __m256i x1) {
  const __mmask8 take =
      _mm512_cmp_pd_mask(b1, *b0, _CMP_LT_OQ) |
      (_mm512_cmp_pd_mask(b1, *b0, _CMP_EQ_OQ) & _mm256_cmplt_epi32_mask(x1, *x0));
  *b0 = _mm512_mask_blend_pd(take, *b0, b1);
  *x0 = _mm256_mask_blend_epi32(take, *x0, x1);
}
#endif

// Dijkstra relaxation of one row followed by selection of the next column:
//   cand_j = row[j] - vw[j] - h;  if cand_j < d[j]: d[j] = cand_j, pred[j] = i;
// then *min_out = min_j d[j] and *arg_out = its smallest index (-1 if all d are +inf).
template <typename T>
inline void RelaxArgmin(const T* row, const double* vw, double h, double* d, int* pred, int i,
                        int n, double* min_out, int* arg_out) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  int j = 0;
  double best = kInf;
  int arg = -1;
#ifdef OTGEN_OT_DENSE_KERNELS_AVX512
  if (n >= 16) {
    // Two independent (min, index) accumulators over 16 columns per step.
    const __m512d vh = _mm512_set1_pd(h);
    const __m256i vi = _mm256_set1_epi32(i);
    __m512d b0 = _mm512_set1_pd(kInf), b1 = b0;
    __m256i x0 = _mm256_set1_epi32(0), x1 = x0;
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i step8 = _mm256_set1_epi32(8), step16 = _mm256_set1_epi32(16);
    for (; j + 16 <= n; j += 16) {
      const __m512d c0 = _mm512_sub_pd(_mm512_sub_pd(Load8(row + j), _mm512_loadu_pd(vw + j)), vh);
      const __m512d c1 =
          _mm512_sub_pd(_mm512_sub_pd(Load8(row + j + 8), _mm512_loadu_pd(vw + j + 8)), vh);
      __m512d d0 = _mm512_loadu_pd(d + j);
      __m512d d1 = _mm512_loadu_pd(d + j + 8);
      const __mmask8 l0 = _mm512_cmp_pd_mask(c0, d0, _CMP_LT_OQ);
      const __mmask8 l1 = _mm512_cmp_pd_mask(c1, d1, _CMP_LT_OQ);
      d0 = _mm512_mask_blend_pd(l0, d0, c0);
      d1 = _mm512_mask_blend_pd(l1, d1, c1);
      _mm512_mask_storeu_pd(d + j, l0, c0);
      _mm512_mask_storeu_pd(d + j + 8, l1, c1);
      _mm256_mask_storeu_epi32(pred + j, l0, vi);
      _mm256_mask_storeu_epi32(pred + j + 8, l1, vi);
      const __mmask8 g0 = _mm512_cmp_pd_mask(d0, b0, _CMP_LT_OQ);
      const __mmask8 g1 = _mm512_cmp_pd_mask(d1, b1, _CMP_LT_OQ);
      b0 = _mm512_mask_blend_pd(g0, b0, d0);
      b1 = _mm512_mask_blend_pd(g1, b1, d1);
      x0 = _mm256_mask_blend_epi32(g0, x0, idx);
      x1 = _mm256_mask_blend_epi32(g1, x1, _mm256_add_epi32(idx, step8));
      idx = _mm256_add_epi32(idx, step16);
    }
    MergeArgmin(&b0, &x0, b1, x1);
    ReduceArgmin(b0, x0, &best, &arg);
    if (!(best < kInf)) arg = -1;
  }
#endif
  for (; j < n; ++j) {
    const double cand = static_cast<double>(row[j]) - vw[j] - h;
    if (cand < d[j]) {
      d[j] = cand;
      pred[j] = i;
    }
    if (d[j] < best) {
      best = d[j];
      arg = j;
    }
  }
  *min_out = best;
  *arg_out = arg;
}

// Network simplex pricing over one row segment: min over j in [0, n) of row[j] - p[j] and its
// smallest index (-1 and +inf if n == 0).
template <typename T>
inline void ReducedArgmin(const T* row, const double* p, int n, double* min_out, int* arg_out) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  int j = 0;
  double best = kInf;
  int arg = -1;
#ifdef OTGEN_OT_DENSE_KERNELS_AVX512
  if (n >= 16) {
    __m512d b0 = _mm512_set1_pd(kInf), b1 = b0;
    __m256i x0 = _mm256_set1_epi32(0), x1 = x0;
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i step8 = _mm256_set1_epi32(8), step16 = _mm256_set1_epi32(16);
    for (; j + 16 <= n; j += 16) {
      const __m512d r0 = _mm512_sub_pd(Load8(row + j), _mm512_loadu_pd(p + j));
      const __m512d r1 = _mm512_sub_pd(Load8(row + j + 8), _mm512_loadu_pd(p + j + 8));
      const __mmask8 g0 = _mm512_cmp_pd_mask(r0, b0, _CMP_LT_OQ);
      const __mmask8 g1 = _mm512_cmp_pd_mask(r1, b1, _CMP_LT_OQ);
      b0 = _mm512_mask_blend_pd(g0, b0, r0);
      b1 = _mm512_mask_blend_pd(g1, b1, r1);
      x0 = _mm256_mask_blend_epi32(g0, x0, idx);
      x1 = _mm256_mask_blend_epi32(g1, x1, _mm256_add_epi32(idx, step8));
      idx = _mm256_add_epi32(idx, step16);
    }
    MergeArgmin(&b0, &x0, b1, x1);
    ReduceArgmin(b0, x0, &best, &arg);
  }
#endif
  for (; j < n; ++j) {
    const double r = static_cast<double>(row[j]) - p[j];
    if (r < best) {
      best = r;
      arg = j;
    }
  }
  *min_out = best;
  *arg_out = arg;
}

}  // namespace otgen::ot::internal::simd

#endif  // OTGEN_OT_DENSE_KERNELS_H_
