// Internal: the fused epilogue kernels of the streamed c-transform (ot/c_transform.cc).
//
// Every kernel works on one row segment of a cost tile: the row holds g_j (the GEMM output
// -2/s <x, y_j> for the fused squared-Euclidean path, or c(x, y_j) for general costs) and a
// per-target offset off_j is added to form the reduced value
//
//   u_j = g_j + off_j      (= c(x, y_j) - psi_j - lambda log nu_j, up to a per-row constant).
//
// Offsets are +inf for targets of zero weight, which never win a minimum and contribute
// exactly 0 to sums. All kernels are single-threaded; the AVX-512 versions are used when the
// build targets AVX-512 (-march=native on this project's machines), with scalar fallbacks.
#ifndef OTGEN_OT_C_TRANSFORM_KERNELS_H_
#define OTGEN_OT_C_TRANSFORM_KERNELS_H_

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#if defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__AVX512VL__)
#include <immintrin.h>
#define OTGEN_OT_CT_AVX512 1
#if defined(__AVX512BF16__)
#define OTGEN_OT_CT_AVX512BF16 1
#endif
#endif

namespace otgen::ot::internal::ct {

inline constexpr float kInf = std::numeric_limits<float>::infinity();
// exp(t) is flushed to 0 below this argument (no denormals).
inline constexpr float kExpMinArg = -87.0f;

inline float ScalarExp(float t) { return t < kExpMinArg ? 0.0f : std::exp(t); }

#ifdef OTGEN_OT_CT_AVX512
// GCC 12 implements several unmasked AVX-512 intrinsics (_mm512_min_ps, _mm512_max_ps,
// _mm512_roundscale_ps, the _mm512_reduce_* helpers) with _mm512_undefined_*(), which trips
// -Wmaybe-uninitialized (-Werror) at -O2; the zero-masked forms with a full mask are the same
// instructions without that.
constexpr __mmask16 kAll16 = 0xFFFF;
inline __m512 Min16(__m512 a, __m512 b) { return _mm512_maskz_min_ps(kAll16, a, b); }
inline __m512 Max16(__m512 a, __m512 b) { return _mm512_maskz_max_ps(kAll16, a, b); }
inline float HorizontalMin(__m512 v) {
  const __m256 m8 = _mm256_min_ps(_mm512_maskz_extractf32x8_ps(0xFF, v, 0), _mm512_maskz_extractf32x8_ps(0xFF, v, 1));
  const __m128 m4 = _mm_min_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
  const __m128 m2 = _mm_min_ps(m4, _mm_movehl_ps(m4, m4));
  return _mm_cvtss_f32(_mm_min_ss(m2, _mm_shuffle_ps(m2, m2, 1)));
}
inline float HorizontalSum(__m512 v) {
  const __m256 s8 = _mm256_add_ps(_mm512_maskz_extractf32x8_ps(0xFF, v, 0), _mm512_maskz_extractf32x8_ps(0xFF, v, 1));
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}
inline int32_t HorizontalMinInt(__m512i v) {
  const __m256i m8 = _mm256_min_epi32(_mm512_maskz_extracti32x8_epi32(0xFF, v, 0), _mm512_maskz_extracti32x8_epi32(0xFF, v, 1));
  __m128i m4 = _mm_min_epi32(_mm256_castsi256_si128(m8), _mm256_extracti128_si256(m8, 1));
  m4 = _mm_min_epi32(m4, _mm_shuffle_epi32(m4, _MM_SHUFFLE(1, 0, 3, 2)));
  m4 = _mm_min_epi32(m4, _mm_shuffle_epi32(m4, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(m4);
}

// exp(t) for 16 lanes: t = n ln2 + r with |r| <= ln2 / 2 (ln2 split in two parts), e^r by its
// degree-6 minimax polynomial, times 2^n via scalef. Relative error about 2e-7; arguments below
// kExpMinArg give exactly 0, -inf gives 0.
inline __m512 Exp16(__m512 t) {
  const __mmask16 keep = _mm512_cmp_ps_mask(t, _mm512_set1_ps(kExpMinArg), _CMP_GE_OQ);
  t = Min16(t, _mm512_set1_ps(88.0f));
  t = Max16(t, _mm512_set1_ps(kExpMinArg));
  const __m512 n = _mm512_maskz_roundscale_ps(kAll16, _mm512_mul_ps(t, _mm512_set1_ps(1.44269504088896341f)),
                                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), t);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_maskz_scalef_ps(keep, p, n);
}

inline __mmask16 TailMask(int64_t count) {
  return static_cast<__mmask16>(count >= 16 ? 0xFFFF : ((1u << count) - 1u));
}
#endif

// ---- lambda = 0 ------------------------------------------------------------------------------

// Folds min_j u_j (first index on ties; global index j_base + j) into (*best, *best_index)
// when it is strictly smaller than *best.
inline void HardRowMin(const float* g, const float* off, int64_t n, int64_t j_base, float* best,
                       int64_t* best_index) {
  float m = kInf;
  int64_t arg = -1;
  int64_t j = 0;
#ifdef OTGEN_OT_CT_AVX512
  if (n >= 16) {
    __m512 vmin = _mm512_set1_ps(kInf);
    __m512i vidx = _mm512_set1_epi32(-1);
    __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i step = _mm512_set1_epi32(16);
    for (; j + 16 <= n; j += 16) {
      const __m512 u = _mm512_add_ps(_mm512_loadu_ps(g + j), _mm512_loadu_ps(off + j));
      const __mmask16 lt = _mm512_cmp_ps_mask(u, vmin, _CMP_LT_OQ);
      vmin = _mm512_mask_blend_ps(lt, vmin, u);
      vidx = _mm512_mask_blend_epi32(lt, vidx, idx);
      idx = _mm512_add_epi32(idx, step);
    }
    m = HorizontalMin(vmin);
    if (m < kInf) {
      const __mmask16 eq = _mm512_cmp_ps_mask(vmin, _mm512_set1_ps(m), _CMP_EQ_OQ);
      const __m512i cand = _mm512_mask_blend_epi32(eq, _mm512_set1_epi32(std::numeric_limits<int32_t>::max()), vidx);
      arg = HorizontalMinInt(cand);
    }
  }
#endif
  for (; j < n; ++j) {
    const float u = g[j] + off[j];
    if (u < m) {
      m = u;
      arg = j;
    }
  }
  if (arg >= 0 && m < *best) {
    *best = m;
    *best_index = j_base + arg;
  }
}

// ---- lambda > 0: online soft-min with candidate collection -----------------------------------

// Folds u_j, j < n, into the running soft-min (m, s) of one row (see SoftminPartial in
// ot/target_set.h): m = min(m, min_j u_j), s rescaled to the new m, s += sum_j exp((m - u_j) / lambda).
// When `cand_index` is not null, also writes the candidates u_j <= m + threshold (m the updated
// minimum) as (j_base + j, u_j) to cand_index / cand_value and returns their number; both arrays
// need room for n + 16 entries.
inline int64_t SoftRowFold(const float* g, const float* off, int64_t n, float inv_lambda,
                           float threshold, int32_t j_base, float* m_io, double* s_io,
                           int32_t* cand_index, float* cand_value) {
  // Pass 1: the segment minimum.
  float tm = kInf;
  int64_t j = 0;
#ifdef OTGEN_OT_CT_AVX512
  {
    __m512 vmin = _mm512_set1_ps(kInf);
    for (; j + 16 <= n; j += 16) {
      vmin = Min16(vmin, _mm512_add_ps(_mm512_loadu_ps(g + j), _mm512_loadu_ps(off + j)));
    }
    if (j < n) {
      const __mmask16 mk = TailMask(n - j);
      const __m512 u = _mm512_add_ps(_mm512_maskz_loadu_ps(mk, g + j), _mm512_maskz_loadu_ps(mk, off + j));
      vmin = _mm512_mask_min_ps(vmin, mk, vmin, u);
      j = n;
    }
    tm = HorizontalMin(vmin);
  }
#endif
  for (; j < n; ++j) tm = std::min(tm, g[j] + off[j]);
  if (!(tm < kInf)) return 0;  // only zero-weight targets in this segment
  float m = *m_io;
  double s = *s_io;
  if (tm < m) {
    s = (m < kInf) ? s * std::exp(static_cast<double>(tm - m) * inv_lambda) : 0.0;
    m = tm;
  }
  const float limit = m + threshold;
  int64_t count = 0;
  float sum = 0.0f;
  j = 0;
#ifdef OTGEN_OT_CT_AVX512
  {
    const __m512 vm = _mm512_set1_ps(m);
    const __m512 vil = _mm512_set1_ps(inv_lambda);
    const __m512 vlimit = _mm512_set1_ps(limit);
    __m512 vsum = _mm512_setzero_ps();
    __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(j_base),
                                   _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    const __m512i step = _mm512_set1_epi32(16);
    for (; j < n; j += 16) {
      const __mmask16 mk = TailMask(n - j);
      const __m512 u = _mm512_add_ps(_mm512_maskz_loadu_ps(mk, g + j), _mm512_maskz_loadu_ps(mk, off + j));
      vsum = _mm512_add_ps(vsum, _mm512_maskz_mov_ps(mk, Exp16(_mm512_mul_ps(_mm512_sub_ps(vm, u), vil))));
      if (cand_index != nullptr) {
        const __mmask16 c = _mm512_mask_cmp_ps_mask(mk, u, vlimit, _CMP_LE_OQ);
        if (c != 0) {
          _mm512_storeu_ps(cand_value + count, _mm512_maskz_compress_ps(c, u));
          _mm512_storeu_si512(cand_index + count, _mm512_maskz_compress_epi32(c, idx));
          count += __builtin_popcount(c);
        }
      }
      idx = _mm512_add_epi32(idx, step);
    }
    sum = HorizontalSum(vsum);
  }
#else
  for (; j < n; ++j) {
    const float u = g[j] + off[j];
    sum += ScalarExp((m - u) * inv_lambda);
    if (cand_index != nullptr && u <= limit) {
      cand_index[count] = j_base + static_cast<int32_t>(j);
      cand_value[count] = u;
      ++count;
    }
  }
#endif
  *m_io = m;
  *s_io = s + sum;
  return count;
}

// out[k] = exp((m - v[k]) / lambda), k < n (out needs room for n rounded up to 16).
inline void ExpShifted(const float* v, int64_t n, float m, float inv_lambda, float* out) {
  int64_t k = 0;
#ifdef OTGEN_OT_CT_AVX512
  const __m512 vm = _mm512_set1_ps(m);
  const __m512 vil = _mm512_set1_ps(inv_lambda);
  for (; k < n; k += 16) {
    const __mmask16 mk = TailMask(n - k);
    const __m512 x = _mm512_maskz_loadu_ps(mk, v + k);
    _mm512_mask_storeu_ps(out + k, mk, Exp16(_mm512_mul_ps(_mm512_sub_ps(vm, x), vil)));
  }
#else
  for (; k < n; ++k) out[k] = ScalarExp((m - v[k]) * inv_lambda);
#endif
}

// ---- lambda > 0: dense weights ----------------------------------------------------------------

// Overwrites g with the soft-min weights p_j = exp((ell - u_j) / lambda) of one row (ell the
// row's final log-normalizer in the same frame as u, so that sum over all targets is 1), adds
// row_weight * p_j to col_sum[j] when col_sum is not null, and returns sum_j p_j.
inline float DenseRowWeights(float* g, const float* off, int64_t n, float ell, float inv_lambda,
                             float row_weight, float* col_sum) {
  int64_t j = 0;
  float total = 0.0f;
#ifdef OTGEN_OT_CT_AVX512
  {
    const __m512 vell = _mm512_set1_ps(ell);
    const __m512 vil = _mm512_set1_ps(inv_lambda);
    const __m512 vw = _mm512_set1_ps(row_weight);
    __m512 vsum = _mm512_setzero_ps();
    for (; j < n; j += 16) {
      const __mmask16 mk = TailMask(n - j);
      const __m512 u = _mm512_add_ps(_mm512_maskz_loadu_ps(mk, g + j), _mm512_maskz_loadu_ps(mk, off + j));
      const __m512 p = _mm512_maskz_mov_ps(mk, Exp16(_mm512_mul_ps(_mm512_sub_ps(vell, u), vil)));
      _mm512_mask_storeu_ps(g + j, mk, p);
      vsum = _mm512_add_ps(vsum, p);
      if (col_sum != nullptr) {
        _mm512_mask_storeu_ps(col_sum + j, mk,
                              _mm512_fmadd_ps(vw, p, _mm512_maskz_loadu_ps(mk, col_sum + j)));
      }
    }
    total = HorizontalSum(vsum);
  }
#else
  for (; j < n; ++j) {
    const float p = ScalarExp((ell - (g[j] + off[j])) * inv_lambda);
    g[j] = p;
    total += p;
    if (col_sum != nullptr) col_sum[j] += row_weight * p;
  }
#endif
  return total;
}

// ---- small helpers ------------------------------------------------------------------------------

// acc[k] += a * y[k], k < d.
inline void Axpy(float a, const float* y, int64_t d, float* acc) {
  int64_t k = 0;
#ifdef OTGEN_OT_CT_AVX512
  const __m512 va = _mm512_set1_ps(a);
  for (; k + 16 <= d; k += 16) {
    _mm512_storeu_ps(acc + k, _mm512_fmadd_ps(va, _mm512_loadu_ps(y + k), _mm512_loadu_ps(acc + k)));
  }
  if (k < d) {
    const __mmask16 mk = TailMask(d - k);
    _mm512_mask_storeu_ps(acc + k, mk,
                          _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(mk, y + k), _mm512_maskz_loadu_ps(mk, acc + k)));
  }
#else
  for (; k < d; ++k) acc[k] += a * y[k];
#endif
}

// acc[k] += sum_p w[p] * rows[index[p] * d + k], k < d: the weighted sum of `count` rows of
// a row-major matrix, with the accumulator held in registers (16 vectors = 256 floats at a
// time), so that each row element costs one load and one FMA.
inline void AccumulateWeightedRows(const float* w, const int32_t* index, int64_t count, const float* rows,
                                   int64_t d, float* acc) {
  if (count == 0) return;
#ifdef OTGEN_OT_CT_AVX512
  constexpr int64_t kChunk = 256;
  int64_t k0 = 0;
  for (; k0 + kChunk <= d; k0 += kChunk) {
    __m512 r[16];
#pragma GCC unroll 16
    for (int v = 0; v < 16; ++v) r[v] = _mm512_loadu_ps(acc + k0 + 16 * v);
    for (int64_t p = 0; p < count; ++p) {
      const __m512 wp = _mm512_set1_ps(w[p]);
      const float* y = rows + static_cast<int64_t>(index[p]) * d + k0;
#pragma GCC unroll 16
      for (int v = 0; v < 16; ++v) r[v] = _mm512_fmadd_ps(wp, _mm512_loadu_ps(y + 16 * v), r[v]);
    }
#pragma GCC unroll 16
    for (int v = 0; v < 16; ++v) _mm512_storeu_ps(acc + k0 + 16 * v, r[v]);
  }
  if (k0 < d) {
    // The remaining < 256 floats: up to 16 vectors, the last one masked.
    const int64_t rest = d - k0;
    const int64_t nv = (rest + 15) / 16;
    __m512 r[16];
    for (int64_t v = 0; v < nv; ++v) r[v] = _mm512_maskz_loadu_ps(TailMask(rest - 16 * v), acc + k0 + 16 * v);
    for (int64_t p = 0; p < count; ++p) {
      const __m512 wp = _mm512_set1_ps(w[p]);
      const float* y = rows + static_cast<int64_t>(index[p]) * d + k0;
      for (int64_t v = 0; v < nv; ++v) {
        r[v] = _mm512_fmadd_ps(wp, _mm512_maskz_loadu_ps(TailMask(rest - 16 * v), y + 16 * v), r[v]);
      }
    }
    for (int64_t v = 0; v < nv; ++v) _mm512_mask_storeu_ps(acc + k0 + 16 * v, TailMask(rest - 16 * v), r[v]);
  }
#else
  for (int64_t p = 0; p < count; ++p) {
    const float* y = rows + static_cast<int64_t>(index[p]) * d;
    for (int64_t k = 0; k < d; ++k) acc[k] += w[p] * y[k];
  }
#endif
}

// <x, y> over d floats (four accumulators).
inline float Dot(const float* x, const float* y, int64_t d) {
  int64_t k = 0;
#ifdef OTGEN_OT_CT_AVX512
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(),
         a3 = _mm512_setzero_ps();
  for (; k + 64 <= d; k += 64) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + k), _mm512_loadu_ps(y + k), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + k + 16), _mm512_loadu_ps(y + k + 16), a1);
    a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + k + 32), _mm512_loadu_ps(y + k + 32), a2);
    a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + k + 48), _mm512_loadu_ps(y + k + 48), a3);
  }
  for (; k < d; k += 16) {
    const __mmask16 mk = TailMask(d - k);
    a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, x + k), _mm512_maskz_loadu_ps(mk, y + k), a0);
  }
  return HorizontalSum(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
#else
  float s = 0.0f;
  for (; k < d; ++k) s += x[k] * y[k];
  return s;
#endif
}

// ---- bf16 screening (small batches) -----------------------------------------------------------
//
// Screening computes approximate dot products <x^, y^> of bf16-rounded vectors (8 significant
// bits) with vdpbf16ps, from a copy of the targets half the size of the float one. It only
// selects which targets get an exact float dot product: by Cauchy-Schwarz,
//   |<x, y> - <x^, y^>| <= ||x|| ||y - y^|| + ||x - x^|| ||y^||   (+ float rounding),
// so a target whose screened value is farther than the threshold plus this bound from the
// screened minimum cannot matter, and every other target is recomputed exactly.

inline constexpr int64_t kBf16Pad = 32;  // rows of bf16 copies are padded to this many entries

// Round to nearest even (finite inputs).
inline uint16_t ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}
inline float FromBf16(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

// Writes bf16(x) to out (padded with zeros to a multiple of kBf16Pad) and returns an upper
// bound of ||x - bf16(x)|| (the float sum of squares, inflated by 1%).
inline float ToBf16Row(const float* x, int64_t d, uint16_t* out) {
  const int64_t padded = (d + kBf16Pad - 1) / kBf16Pad * kBf16Pad;
  int64_t k = 0;
  float err = 0.0f;
#ifdef OTGEN_OT_CT_AVX512BF16
  __m512 acc = _mm512_setzero_ps();
  for (; k < d; k += 16) {
    const __mmask16 mk = TailMask(d - k);
    const __m512 v = _mm512_maskz_loadu_ps(mk, x + k);
    const __m256bh h = _mm512_cvtneps_pbh(v);
    const __m256i hi = (__m256i)h;
    _mm256_mask_storeu_epi16(out + k, mk, hi);
    const __m512 back = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_maskz_cvtepu16_epi32(kAll16, hi), 16));
    const __m512 e = _mm512_sub_ps(v, back);
    acc = _mm512_fmadd_ps(e, e, acc);
  }
  err = HorizontalSum(acc);
  k = d;
#else
  for (; k < d; ++k) {
    out[k] = ToBf16(x[k]);
    const float e = x[k] - FromBf16(out[k]);
    err += e * e;
  }
#endif
  for (k = d; k < padded; ++k) out[k] = 0;
  return 1.01f * std::sqrt(err);
}

// min over j < n of g[j] + off[j] + a * err[j] + c * nrm[j]: an upper bound of the row minimum
// from screened values g (see the bound above).
inline float ScreenUpperMin(const float* g, const float* off, const float* err, const float* nrm, float a, float c,
                            int64_t n) {
  float m = kInf;
  int64_t j = 0;
#ifdef OTGEN_OT_CT_AVX512
  __m512 vm = _mm512_set1_ps(kInf);
  const __m512 va = _mm512_set1_ps(a), vc = _mm512_set1_ps(c);
  for (; j < n; j += 16) {
    const __mmask16 mk = TailMask(n - j);
    __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(mk, g + j), _mm512_maskz_loadu_ps(mk, off + j));
    v = _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(mk, err + j), v);
    v = _mm512_fmadd_ps(vc, _mm512_maskz_loadu_ps(mk, nrm + j), v);
    vm = _mm512_mask_min_ps(vm, mk, vm, v);
  }
  m = HorizontalMin(vm);
#else
  for (; j < n; ++j) m = std::min(m, g[j] + off[j] + a * err[j] + c * nrm[j]);
#endif
  return m;
}

// Writes the indices j < n (plus j_base) with g[j] + off[j] - a * err[j] - c * nrm[j] <= limit
// (the targets that can lie within the threshold) to out (room for n + 16) and returns their
// number.
inline int64_t ScreenSelect(const float* g, const float* off, const float* err, const float* nrm, float a, float c,
                            float limit, int64_t n, int32_t j_base, int32_t* out) {
  int64_t count = 0;
  int64_t j = 0;
#ifdef OTGEN_OT_CT_AVX512
  const __m512 va = _mm512_set1_ps(a), vc = _mm512_set1_ps(c), vl = _mm512_set1_ps(limit);
  __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(j_base),
                                 _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  for (; j < n; j += 16) {
    const __mmask16 mk = TailMask(n - j);
    __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(mk, g + j), _mm512_maskz_loadu_ps(mk, off + j));
    v = _mm512_fnmadd_ps(va, _mm512_maskz_loadu_ps(mk, err + j), v);
    v = _mm512_fnmadd_ps(vc, _mm512_maskz_loadu_ps(mk, nrm + j), v);
    const __mmask16 sel = _mm512_mask_cmp_ps_mask(mk, v, vl, _CMP_LE_OQ);
    if (sel != 0) {
      _mm512_storeu_si512(out + count, _mm512_maskz_compress_epi32(sel, idx));
      count += __builtin_popcount(sel);
    }
    idx = _mm512_add_epi32(idx, _mm512_set1_epi32(16));
  }
#else
  for (; j < n; ++j) {
    if (g[j] + off[j] - a * err[j] - c * nrm[j] <= limit) out[count++] = j_base + static_cast<int32_t>(j);
  }
#endif
  return count;
}

// Compacts the candidate list (index[k], value[k]), k < count, to the entries with
// value <= limit, in order; returns their number.
inline int32_t KeepCandidatesUpTo(float limit, int32_t count, int32_t* index, float* value) {
  int32_t kept = 0;
  for (int32_t k = 0; k < count; ++k) {
    if (value[k] <= limit) {
      index[kept] = index[k];
      value[kept] = value[k];
      ++kept;
    }
  }
  return kept;
}

// sum_k x_k^2 accumulated in double.
inline double SquaredNormDouble(const float* x, int64_t d) {
  int64_t k = 0;
#ifdef OTGEN_OT_CT_AVX512
  __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
  for (; k + 16 <= d; k += 16) {
    const __m512d lo = _mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(x + k));
    const __m512d hi = _mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(x + k + 8));
    a0 = _mm512_fmadd_pd(lo, lo, a0);
    a1 = _mm512_fmadd_pd(hi, hi, a1);
  }
  alignas(64) double lanes[8];
  _mm512_store_pd(lanes, _mm512_add_pd(a0, a1));
  double s = 0.0;
  for (int l = 0; l < 8; ++l) s += lanes[l];
#else
  double s = 0.0;
#endif
  for (; k < d; ++k) s += static_cast<double>(x[k]) * x[k];
  return s;
}

// <x^, y^> for padded bf16 rows of `padded` entries (a multiple of kBf16Pad).
inline float DotBf16(const uint16_t* x, const uint16_t* y, int64_t padded) {
#ifdef OTGEN_OT_CT_AVX512BF16
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 64 <= padded; k += 64) {
    a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_loadu_si512(x + k), (__m512bh)_mm512_loadu_si512(y + k));
    a1 = _mm512_dpbf16_ps(a1, (__m512bh)_mm512_loadu_si512(x + k + 32), (__m512bh)_mm512_loadu_si512(y + k + 32));
  }
  if (k < padded) {
    a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_loadu_si512(x + k), (__m512bh)_mm512_loadu_si512(y + k));
  }
  return HorizontalSum(_mm512_add_ps(a0, a1));
#else
  float s = 0.0f;
  for (int64_t k = 0; k < padded; ++k) s += FromBf16(x[k]) * FromBf16(y[k]);
  return s;
#endif
}

// Index of the first non-finite entry of x[0..n), or -1.
inline int64_t FirstNonFinite(const float* x, int64_t n) {
  int64_t k = 0;
#ifdef OTGEN_OT_CT_AVX512
  const __m512i exp_mask = _mm512_set1_epi32(0x7f800000);
  for (; k + 16 <= n; k += 16) {
    const __m512i bits = _mm512_and_si512(_mm512_loadu_si512(x + k), exp_mask);
    if (_mm512_cmpeq_epi32_mask(bits, exp_mask) != 0) break;
  }
#endif
  for (; k < n; ++k) {
    if (!std::isfinite(x[k])) return k;
  }
  return -1;
}

}  // namespace otgen::ot::internal::ct

#endif  // OTGEN_OT_C_TRANSFORM_KERNELS_H_
