// Column sums of row-major float blocks, the reduction under batch normalization's statistics
// and gradients and under bias gradients (sums of [batch, features] over the batch). Internal
// to nn: the kernels assume valid pointers and sizes.
#ifndef OTGEN_NN_COLUMN_SUMS_H_
#define OTGEN_NN_COLUMN_SUMS_H_

#include <algorithm>
#include <cstdint>

#ifdef __AVX512F__
#include <immintrin.h>
#endif

namespace otgen::nn::internal {

// Column sums of a row-major block of `rows` rows (leading dimension `ld`) and `width` <=
// kColumnTile columns, added to double accumulators:
//   kSum:              a[j] += sum_r x[r, j]
//   kDeviation:        a[j] += sum_r (x[r, j] - mu[j])
//   kSquaredDeviation: a[j] += sum_r (x[r, j] - mu[j])^2
//   kGradientMoments:  a[j] += sum_r g[r, j],   b[j] += sum_r g[r, j] (x[r, j] - mu[j])
// `mu` is unused (may be null) for kSum, `g` and `b` only serve kGradientMoments. With AVX-512
// the partial sums of kRowTile rows stay in float registers (two rows at a time, 16 columns per
// register) and go into double after each tile -- a float error of about kRowTile 2^-24
// relative per tile, so callers that need a mean of data far from 0 (say 1000 +- 0.01) center
// them first (kDeviation from a sample). The plain loop accumulating every row into double
// through memory ran at a tenth of the load bandwidth ([256, 128] batch norms of the W2GAN
// networks).
enum class ColumnSum { kSum, kDeviation, kSquaredDeviation, kGradientMoments };
constexpr int64_t kColumnTile = 64;

template <ColumnSum kKind>
inline void ColumnSums(const float* x, const float* g, int64_t rows, int64_t ld, int64_t width, const float* mu,
                       double* a, double* b) {
  constexpr bool kTwoSums = kKind == ColumnSum::kGradientMoments;
#ifdef __AVX512F__
  constexpr int kGroups = kColumnTile / 16;
  constexpr int64_t kRowTile = 64;
  __mmask16 mask[kGroups];
  __m512 center[kGroups];
  for (int q = 0; q < kGroups; ++q) {
    const int64_t lanes = std::clamp<int64_t>(width - 16 * q, 0, 16);
    mask[q] = static_cast<__mmask16>((uint32_t{1} << lanes) - 1);
    center[q] = kKind == ColumnSum::kSum ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mask[q], mu + 16 * q);
  }
  alignas(64) float tile_a[kColumnTile], tile_b[kColumnTile];
  for (int64_t r0 = 0; r0 < rows; r0 += kRowTile) {
    const int64_t r1 = std::min(rows, r0 + kRowTile);
    __m512 sa[2][kGroups], sb[2][kGroups];
#pragma GCC unroll 2
    for (int u = 0; u < 2; ++u) {
#pragma GCC unroll 4
      for (int q = 0; q < kGroups; ++q) sa[u][q] = sb[u][q] = _mm512_setzero_ps();
    }
    // Row r into accumulator set u.
    auto add_row = [&](int64_t r, int u) {
#pragma GCC unroll 4
      for (int q = 0; q < kGroups; ++q) {
        if (mask[q] == 0) continue;
        const __m512 v = _mm512_maskz_loadu_ps(mask[q], x + r * ld + 16 * q);
        if constexpr (kKind == ColumnSum::kSum) {
          sa[u][q] = _mm512_add_ps(sa[u][q], v);
        } else if constexpr (kKind == ColumnSum::kDeviation) {
          sa[u][q] = _mm512_add_ps(sa[u][q], _mm512_maskz_sub_ps(mask[q], v, center[q]));
        } else if constexpr (kKind == ColumnSum::kSquaredDeviation) {
          const __m512 d = _mm512_maskz_sub_ps(mask[q], v, center[q]);
          sa[u][q] = _mm512_fmadd_ps(d, d, sa[u][q]);
        } else {
          const __m512 gv = _mm512_maskz_loadu_ps(mask[q], g + r * ld + 16 * q);
          sa[u][q] = _mm512_add_ps(sa[u][q], gv);
          sb[u][q] = _mm512_fmadd_ps(gv, _mm512_maskz_sub_ps(mask[q], v, center[q]), sb[u][q]);
        }
      }
    };
    int64_t r = r0;
    for (; r + 2 <= r1; r += 2) {
      add_row(r, 0);
      add_row(r + 1, 1);
    }
    if (r < r1) add_row(r, 0);
#pragma GCC unroll 4
    for (int q = 0; q < kGroups; ++q) {
      _mm512_store_ps(tile_a + 16 * q, _mm512_add_ps(sa[0][q], sa[1][q]));
      if constexpr (kTwoSums) _mm512_store_ps(tile_b + 16 * q, _mm512_add_ps(sb[0][q], sb[1][q]));
    }
    for (int64_t j = 0; j < width; ++j) {
      a[j] += tile_a[j];
      if constexpr (kTwoSums) b[j] += tile_b[j];
    }
  }
#else
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ld;
    const float* gr = kTwoSums ? g + r * ld : nullptr;
#pragma omp simd
    for (int64_t j = 0; j < width; ++j) {
      if constexpr (kKind == ColumnSum::kSum) {
        a[j] += xr[j];
      } else if constexpr (kKind == ColumnSum::kDeviation) {
        a[j] += static_cast<double>(xr[j]) - mu[j];
      } else if constexpr (kKind == ColumnSum::kSquaredDeviation) {
        const double d = xr[j] - mu[j];
        a[j] += d * d;
      } else {
        a[j] += gr[j];
        b[j] += static_cast<double>(gr[j]) * (xr[j] - mu[j]);
      }
    }
  }
#endif
}

// out[j] = sum_r x[r, j] of a contiguous [rows, cols] matrix, in tiles of kColumnTile columns.
inline void SumRows(const float* x, int64_t rows, int64_t cols, float* out) {
  for (int64_t c0 = 0; c0 < cols; c0 += kColumnTile) {
    const int64_t width = std::min(kColumnTile, cols - c0);
    double acc[kColumnTile] = {};
    ColumnSums<ColumnSum::kSum>(x + c0, nullptr, rows, cols, width, nullptr, acc, nullptr);
    for (int64_t j = 0; j < width; ++j) out[c0 + j] = static_cast<float>(acc[j]);
  }
}

}  // namespace otgen::nn::internal

#endif  // OTGEN_NN_COLUMN_SUMS_H_
