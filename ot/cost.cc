#include "ot/cost.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "oneapi/dnnl/dnnl.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#define OTGEN_OT_COST_AVX512 1
#endif

namespace otgen::ot {
namespace {

using ConstPoints = Eigen::Ref<const RowMatrixXf>;
using ConstVector = Eigen::Ref<const Eigen::VectorXf>;
using Index = Eigen::Index;

// Up to this dimension squared distances, dot products and L1 distances are formed directly
// (exact differences, no cancellation); above it, dot products come from sgemm.
constexpr int kDirectMaxDim = kCostDirectMaxDim;
// Target points handled per block by the direct kernels (their transposed copy lives on the
// stack: kDirectMaxDim * kDirectChunk floats = 16 KiB).
constexpr int kDirectChunk = 256;

Index RowStride(Index outer_stride, Index cols) { return std::max(outer_stride, cols); }

// Row i of a const point/tile view (a const Ref's operator() returns by value).
const float* Row(const Eigen::Ref<const RowMatrixXf>& p, Index i) {
  return p.data() + i * RowStride(p.outerStride(), p.cols());
}

absl::string_view AsAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// C(M x N) = alpha * A(M x K) * op(B) + beta * C, all row-major, through oneDNN's sgemm.
// trans_b = 'T' means B is stored N x K (a point set), 'N' means K x N.
void Sgemm(char trans_b, Index m, Index n, Index k, float alpha, const float* a, Index lda,
           const float* b, Index ldb, float beta, float* c, Index ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (Index i = 0; i < m; ++i) {
      for (Index j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    }
    return;
  }
  const dnnl_status_t status =
      dnnl_sgemm('N', trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (status != dnnl_success) {
    // Only reachable through a broken precondition (strides); there is no status to return.
    std::fprintf(stderr, "otgen::ot cost: dnnl_sgemm failed with status %d (m=%ld n=%ld k=%ld)\n",
                 static_cast<int>(status), static_cast<long>(m), static_cast<long>(n),
                 static_cast<long>(k));
    std::abort();
  }
}

// The direct kernels: out(i, j) = mult * sum_k Op(x_ik, y_jk), vectorized over j on a
// transposed copy of a chunk of y (only for d <= kDirectMaxDim).
template <typename Op>
void DirectSmallDimTile(const ConstPoints& x, const ConstPoints& y, float mult, Op op,
                        Eigen::Ref<RowMatrixXf> out) {
  const Index d = x.cols();
  assert(d <= kDirectMaxDim);
  if (d == 0) {
    out.setZero();
    return;
  }
  alignas(64) float yt[kDirectMaxDim * kDirectChunk];
  for (Index j0 = 0; j0 < y.rows(); j0 += kDirectChunk) {
    const Index jn = std::min<Index>(kDirectChunk, y.rows() - j0);
    for (Index jj = 0; jj < jn; ++jj) {
      const float* yj = Row(y, j0 + jj);
      for (Index k = 0; k < d; ++k) yt[k * kDirectChunk + jj] = yj[k];
    }
    for (Index i = 0; i < x.rows(); ++i) {
      const float* xi = Row(x, i);
      alignas(64) float acc[kDirectChunk];
      {
        const float x0 = xi[0];
#pragma omp simd
        for (Index jj = 0; jj < jn; ++jj) acc[jj] = op(x0, yt[jj]);
      }
      for (Index k = 1; k < d; ++k) {
        const float xk = xi[k];
        const float* ytk = yt + k * kDirectChunk;
#pragma omp simd
        for (Index jj = 0; jj < jn; ++jj) acc[jj] += op(xk, ytk[jj]);
      }
      float* o = &out(i, j0);
#pragma omp simd
      for (Index jj = 0; jj < jn; ++jj) o[jj] = mult * acc[jj];
    }
  }
}

struct SquaredDiff {
  float operator()(float a, float b) const { return (a - b) * (a - b); }
};
struct AbsDiff {
  float operator()(float a, float b) const { return std::fabs(a - b); }
};
struct Product {
  float operator()(float a, float b) const { return a * b; }
};

void DotTile(const ConstPoints& x, const ConstPoints& y, float alpha, Eigen::Ref<RowMatrixXf> out) {
  const Index d = x.cols();
  if (d <= kDirectMaxDim) {
    DirectSmallDimTile(x, y, alpha, Product(), out);
    return;
  }
  Sgemm('T', x.rows(), y.rows(), d, alpha, x.data(), RowStride(x.outerStride(), d), y.data(),
        RowStride(y.outerStride(), d), 0.0f, out.data(), RowStride(out.outerStride(), y.rows()));
}

// out(i, j) = mult * ||x_i - y_j||^2 (>= 0).
void SquaredDistanceTile(const ConstPoints& x, const ConstVector& x_sq, const ConstPoints& y,
                         const ConstVector& y_sq, float mult, Eigen::Ref<RowMatrixXf> out) {
  const Index d = x.cols();
  if (d <= kDirectMaxDim) {
    DirectSmallDimTile(x, y, mult, SquaredDiff(), out);
    return;
  }
  DotTile(x, y, -2.0f, out);
  const float* ysq = y_sq.data();
  const Index m = y.rows();
  for (Index i = 0; i < x.rows(); ++i) {
    float* o = &out(i, 0);
    const float xsq = x_sq[i];
#pragma omp simd
    for (Index j = 0; j < m; ++j) o[j] = mult * std::max(o[j] + xsq + ysq[j], 0.0f);
  }
}

// The L1 kernels above the direct dimension. The distance tile keeps an R x C block of sums in
// registers (each x and y chunk loaded once for the block, R * C independent dependency chains);
// the gradient keeps R rows' 64-coordinate chunks of x and of the running sum in registers while
// it sweeps over the targets. Both take the coordinate tail with masked loads. Without AVX-512 the
// same blocks are plain loops.
#ifdef OTGEN_OT_COST_AVX512
// Lanes [0, count) set, count clamped to [0, 16].
__mmask16 LaneMask(Index count) {
  return count >= 16 ? static_cast<__mmask16>(0xFFFF)
                     : static_cast<__mmask16>(count <= 0 ? 0u : (1u << count) - 1u);
}
#endif

// out[r * ldo + c] = mult * sum_k |x[r][k] - y[c][k]| for r < R, c < C.
template <int R, int C>
void L1Block(const float* const* x, const float* const* y, Index d, float mult, float* out, Index ldo) {
#ifdef OTGEN_OT_COST_AVX512
  __m512 acc[R][C];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  }
  for (Index k = 0; k < d; k += 16) {
    const __mmask16 mask = LaneMask(d - k);
    __m512 xv[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) xv[r] = _mm512_maskz_loadu_ps(mask, x[r] + k);
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      const __m512 yv = _mm512_maskz_loadu_ps(mask, y[c] + k);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) acc[r][c] = _mm512_add_ps(acc[r][c], _mm512_abs_ps(_mm512_sub_ps(xv[r], yv)));
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) out[r * ldo + c] = mult * _mm512_reduce_add_ps(acc[r][c]);
  }
#else
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      const float* xr = x[r];
      const float* yc = y[c];
      float s = 0.0f;
#pragma omp simd reduction(+ : s)
      for (Index k = 0; k < d; ++k) s += std::fabs(xr[k] - yc[k]);
      out[r * ldo + c] = mult * s;
    }
  }
#endif
}

// The rows [i, i + R) of the tile against every y_j: blocks of four targets, then the rest.
template <int R>
void L1TileRows(const ConstPoints& x, Index i, const ConstPoints& y, float mult, Eigen::Ref<RowMatrixXf> out) {
  const Index d = x.cols(), m = y.rows();
  const Index ldo = RowStride(out.outerStride(), m);
  const float* xr[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) xr[r] = Row(x, i + r);
  Index j = 0;
  for (; j + 4 <= m; j += 4) {
    const float* yc[4] = {Row(y, j), Row(y, j + 1), Row(y, j + 2), Row(y, j + 3)};
    L1Block<R, 4>(xr, yc, d, mult, &out(i, j), ldo);
  }
  for (; j < m; ++j) {
    const float* yc[1] = {Row(y, j)};
    L1Block<R, 1>(xr, yc, d, mult, &out(i, j), ldo);
  }
}

// out(i, j) = mult * sum_k |x_ik - y_jk|.
void L1Tile(const ConstPoints& x, const ConstPoints& y, float mult, Eigen::Ref<RowMatrixXf> out) {
  const Index d = x.cols();
  if (d <= kDirectMaxDim) {
    DirectSmallDimTile(x, y, mult, AbsDiff(), out);
    return;
  }
  Index i = 0;
  for (; i + 4 <= x.rows(); i += 4) L1TileRows<4>(x, i, y, mult, out);
  for (; i < x.rows(); ++i) L1TileRows<1>(x, i, y, mult, out);
}

// grad(i, :) += mult * sum_j w_ij sign(x_i - y_j) (componentwise, sign(0) = 0) for the rows
// [i, i + R) of x.
template <int R>
void L1GradientRows(const ConstPoints& x, Index i, const ConstPoints& y, const Eigen::Ref<const RowMatrixXf>& w,
                    float mult, Eigen::Ref<RowMatrixXf> grad) {
  const Index d = x.cols(), m = y.rows();
  const float* xr[R];
  const float* wr[R];
  float* gr[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    xr[r] = Row(x, i + r);
    wr[r] = Row(w, i + r);
    gr[r] = &grad(i + r, 0);
  }
#ifdef OTGEN_OT_COST_AVX512
  constexpr int kVectors = 4;  // 64 coordinates per sweep
  for (Index k0 = 0; k0 < d; k0 += 16 * kVectors) {
    __mmask16 mask[kVectors];
    __m512 xv[R][kVectors], acc[R][kVectors];
#pragma GCC unroll 16
    for (int v = 0; v < kVectors; ++v) {
      mask[v] = LaneMask(d - k0 - 16 * v);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        xv[r][v] = _mm512_maskz_loadu_ps(mask[v], xr[r] + k0 + 16 * v);
        acc[r][v] = _mm512_setzero_ps();
      }
    }
    for (Index j = 0; j < m; ++j) {
      __m512 wv[R];
      bool any = false;
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        any |= wr[r][j] != 0.0f;
        wv[r] = _mm512_set1_ps(mult * wr[r][j]);
      }
      if (!any) continue;
      const float* yj = Row(y, j) + k0;
#pragma GCC unroll 16
      for (int v = 0; v < kVectors; ++v) {
        if (mask[v] == 0) break;  // the last chunk of a small dimension
        const __m512 yv = _mm512_maskz_loadu_ps(mask[v], yj + 16 * v);
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
          // +w where x > y, -w where x < y; nothing at ties (and NaN).
          const __mmask16 gt = _mm512_cmp_ps_mask(xv[r][v], yv, _CMP_GT_OQ);
          const __mmask16 lt = _mm512_cmp_ps_mask(xv[r][v], yv, _CMP_LT_OQ);
          acc[r][v] = _mm512_mask_sub_ps(_mm512_mask_add_ps(acc[r][v], gt, acc[r][v], wv[r]), lt, acc[r][v], wv[r]);
        }
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
      for (int v = 0; v < kVectors; ++v) {
        float* g = gr[r] + k0 + 16 * v;
        _mm512_mask_storeu_ps(g, mask[v], _mm512_add_ps(_mm512_maskz_loadu_ps(mask[v], g), acc[r][v]));
      }
    }
  }
#else
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    for (Index j = 0; j < m; ++j) {
      const float wj = wr[r][j] * mult;
      if (wj == 0.0f) continue;
      const float* xi = xr[r];
      const float* yj = Row(y, j);
      float* gi = gr[r];
#pragma omp simd
      for (Index k = 0; k < d; ++k) {
        const float diff = xi[k] - yj[k];
        gi[k] += wj * static_cast<float>((diff > 0.0f) - (diff < 0.0f));
      }
    }
  }
#endif
}

// grad(i, :) += rowsum(w)_i * x_i * coef_x - coef_wy * (w y)_i.
void AccumulateLinearGradient(const ConstPoints& x, const ConstPoints& y, const float* w, Index ldw,
                              float coef_x, float coef_wy, Eigen::Ref<RowMatrixXf> grad) {
  const Index n = x.rows(), m = y.rows(), d = x.cols();
  Sgemm('N', n, d, m, -coef_wy, w, ldw, y.data(), RowStride(y.outerStride(), d), 1.0f, grad.data(),
        RowStride(grad.outerStride(), d));
  for (Index i = 0; i < n; ++i) {
    const float* wi = w + i * ldw;
    float r = 0.0f;
#pragma omp simd reduction(+ : r)
    for (Index j = 0; j < m; ++j) r += wi[j];
    const float c = coef_x * r;
    float* gi = &grad(i, 0);
    const float* xi = Row(x, i);
    for (Index k = 0; k < d; ++k) gi[k] += c * xi[k];
  }
}

}  // namespace

std::string_view CostKindName(CostKind kind) {
  switch (kind) {
    case CostKind::kSquaredEuclidean:
      return "squared_euclidean";
    case CostKind::kLp:
      return "lp";
    case CostKind::kL1:
      return "l1";
    case CostKind::kCosine:
      return "cosine";
  }
  return "unknown";
}

absl::Status Cost::Validate() const {
  switch (kind) {
    case CostKind::kSquaredEuclidean:
    case CostKind::kLp:
    case CostKind::kL1:
    case CostKind::kCosine:
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("cost.kind: unknown value ", static_cast<int>(kind)));
  }
  if (!std::isfinite(scale) || scale <= 0.0f) {
    return absl::InvalidArgumentError(
        absl::StrCat("cost.scale: expected a finite value > 0, got ", scale));
  }
  if (kind == CostKind::kLp && (!std::isfinite(p) || p < 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cost.p: expected a finite exponent >= 1 for the lp cost, got ", p));
  }
  return absl::OkStatus();
}

std::string Cost::ToString() const {
  if (kind == CostKind::kLp) {
    return absl::StrFormat("lp(p=%g, scale=%g)", p, scale);
  }
  return absl::StrFormat("%s(scale=%g)", CostKindName(kind), scale);
}

absl::StatusOr<float> MeanSquaredNorm(const Eigen::Ref<const RowMatrixXf>& points) {
  if (points.rows() == 0 || points.cols() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("points: expected at least one point of dimension >= 1, got ", points.rows(),
                     " x ", points.cols()));
  }
  double sum = 0.0;
  for (Index i = 0; i < points.rows(); ++i) {
    for (Index k = 0; k < points.cols(); ++k) {
      const double v = points(i, k);
      if (!std::isfinite(v)) {
        return absl::InvalidArgumentError(absl::StrCat("points: entry (", i, ", ", k, ") is ", v,
                                                       "; expected finite coordinates"));
      }
      sum += v * v;
    }
  }
  const double alpha = sum / static_cast<double>(points.rows());
  if (!(alpha > 0.0) || !std::isfinite(static_cast<float>(alpha))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "points: mean squared norm is ", alpha, "; expected a finite value > 0 to use as scale"));
  }
  return static_cast<float>(alpha);
}

absl::StatusOr<Cost> NormalizedSquaredEuclideanCost(
    const Eigen::Ref<const RowMatrixXf>& target_points) {
  absl::StatusOr<float> alpha = MeanSquaredNorm(target_points);
  if (!alpha.ok()) return alpha.status();
  return Cost::SquaredEuclidean(*alpha);
}

absl::Status ValidatePoints(const Cost& cost, const Eigen::Ref<const RowMatrixXf>& points,
                            std::string_view name) {
  if (points.rows() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(AsAbsl(name), ": expected at least one point, got 0"));
  }
  if (points.cols() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(AsAbsl(name), ": expected points of dimension >= 1, got dimension 0"));
  }
  for (Index i = 0; i < points.rows(); ++i) {
    double sq = 0.0;
    for (Index k = 0; k < points.cols(); ++k) {
      const float v = points(i, k);
      if (!std::isfinite(v)) {
        return absl::InvalidArgumentError(absl::StrCat(
            AsAbsl(name), ": entry (", i, ", ", k, ") is ", v, "; expected finite coordinates"));
      }
      sq += static_cast<double>(v) * v;
    }
    if (cost.kind == CostKind::kCosine && !(sq > 0.0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          AsAbsl(name), ": point ", i, " is zero; the cosine cost needs non-zero points"));
    }
  }
  return absl::OkStatus();
}

double EvaluateCost(const Cost& cost, absl::Span<const float> x, absl::Span<const float> y) {
  assert(x.size() == y.size());
  const size_t d = x.size();
  double value = 0.0;
  switch (cost.kind) {
    case CostKind::kSquaredEuclidean:
    case CostKind::kLp: {
      double sq = 0.0;
      for (size_t k = 0; k < d; ++k) {
        const double diff = static_cast<double>(x[k]) - y[k];
        sq += diff * diff;
      }
      value = cost.kind == CostKind::kSquaredEuclidean ? sq : std::pow(sq, 0.5 * cost.p);
      break;
    }
    case CostKind::kL1:
      for (size_t k = 0; k < d; ++k) value += std::fabs(static_cast<double>(x[k]) - y[k]);
      break;
    case CostKind::kCosine: {
      double dot = 0.0, xx = 0.0, yy = 0.0;
      for (size_t k = 0; k < d; ++k) {
        dot += static_cast<double>(x[k]) * y[k];
        xx += static_cast<double>(x[k]) * x[k];
        yy += static_cast<double>(y[k]) * y[k];
      }
      value = 1.0 - dot / (std::sqrt(xx) * std::sqrt(yy));
      break;
    }
  }
  return value / cost.scale;
}

void CostGradientX(const Cost& cost, absl::Span<const float> x, absl::Span<const float> y,
                   absl::Span<double> grad) {
  assert(x.size() == y.size() && grad.size() == x.size());
  const size_t d = x.size();
  const double inv_s = 1.0 / cost.scale;
  switch (cost.kind) {
    case CostKind::kSquaredEuclidean:
      for (size_t k = 0; k < d; ++k) grad[k] = 2.0 * inv_s * (static_cast<double>(x[k]) - y[k]);
      break;
    case CostKind::kLp: {
      double sq = 0.0;
      for (size_t k = 0; k < d; ++k) {
        const double diff = static_cast<double>(x[k]) - y[k];
        sq += diff * diff;
      }
      const double coef = sq > 0.0 ? cost.p * std::pow(sq, 0.5 * (cost.p - 2.0)) * inv_s : 0.0;
      for (size_t k = 0; k < d; ++k) grad[k] = coef * (static_cast<double>(x[k]) - y[k]);
      break;
    }
    case CostKind::kL1:
      for (size_t k = 0; k < d; ++k) {
        const double diff = static_cast<double>(x[k]) - y[k];
        grad[k] = inv_s * static_cast<double>((diff > 0.0) - (diff < 0.0));
      }
      break;
    case CostKind::kCosine: {
      double dot = 0.0, xx = 0.0, yy = 0.0;
      for (size_t k = 0; k < d; ++k) {
        dot += static_cast<double>(x[k]) * y[k];
        xx += static_cast<double>(x[k]) * x[k];
        yy += static_cast<double>(y[k]) * y[k];
      }
      const double nx = std::sqrt(xx), ny = std::sqrt(yy);
      const double cosine = dot / (nx * ny);
      for (size_t k = 0; k < d; ++k) {
        grad[k] = -inv_s / nx * (y[k] / ny - cosine * x[k] / nx);
      }
      break;
    }
  }
}

Eigen::VectorXf CostPointData(const Cost& cost, const Eigen::Ref<const RowMatrixXf>& points) {
  switch (cost.kind) {
    case CostKind::kSquaredEuclidean:
    case CostKind::kLp:
      return points.rowwise().squaredNorm();
    case CostKind::kCosine:
      return points.rowwise().norm();
    case CostKind::kL1:
      break;
  }
  return Eigen::VectorXf::Zero(points.rows());
}

void EvaluateCostTile(const Cost& cost, const Eigen::Ref<const RowMatrixXf>& x,
                      const Eigen::Ref<const Eigen::VectorXf>& x_data,
                      const Eigen::Ref<const RowMatrixXf>& y,
                      const Eigen::Ref<const Eigen::VectorXf>& y_data,
                      Eigen::Ref<RowMatrixXf> out) {
  assert(x.cols() == y.cols());
  assert(x_data.size() == x.rows() && y_data.size() == y.rows());
  assert(out.rows() == x.rows() && out.cols() == y.rows());
  const Index n = x.rows(), m = y.rows();
  if (n == 0 || m == 0) return;
  const float inv_s = 1.0f / cost.scale;
  switch (cost.kind) {
    case CostKind::kSquaredEuclidean:
      SquaredDistanceTile(x, x_data, y, y_data, inv_s, out);
      break;
    case CostKind::kLp: {
      SquaredDistanceTile(x, x_data, y, y_data, 1.0f, out);
      const float half_p = 0.5f * cost.p;
      for (Index i = 0; i < n; ++i) {
        float* o = &out(i, 0);
        if (cost.p == 2.0f) {
#pragma omp simd
          for (Index j = 0; j < m; ++j) o[j] *= inv_s;
        } else if (cost.p == 1.0f) {
#pragma omp simd
          for (Index j = 0; j < m; ++j) o[j] = inv_s * std::sqrt(o[j]);
        } else {
          for (Index j = 0; j < m; ++j) o[j] = inv_s * std::pow(o[j], half_p);
        }
      }
      break;
    }
    case CostKind::kL1:
      L1Tile(x, y, inv_s, out);
      break;
    case CostKind::kCosine: {
      DotTile(x, y, 1.0f, out);
      const float* ny = y_data.data();
      for (Index i = 0; i < n; ++i) {
        float* o = &out(i, 0);
        const float inv_nx = 1.0f / x_data[i];
#pragma omp simd
        for (Index j = 0; j < m; ++j) {
          const float c = 1.0f - o[j] * inv_nx / ny[j];
          o[j] = inv_s * std::min(std::max(c, 0.0f), 2.0f);
        }
      }
      break;
    }
  }
}

RowMatrixXf CostMatrix(const Cost& cost, const Eigen::Ref<const RowMatrixXf>& x,
                       const Eigen::Ref<const RowMatrixXf>& y) {
  RowMatrixXf out(x.rows(), y.rows());
  const Eigen::VectorXf xd = CostPointData(cost, x);
  const Eigen::VectorXf yd = CostPointData(cost, y);
  EvaluateCostTile(cost, x, xd, y, yd, out);
  return out;
}

void AccumulateCostGradientTile(const Cost& cost, const Eigen::Ref<const RowMatrixXf>& x,
                                const Eigen::Ref<const Eigen::VectorXf>& x_data,
                                const Eigen::Ref<const RowMatrixXf>& y,
                                const Eigen::Ref<const Eigen::VectorXf>& y_data,
                                const Eigen::Ref<const RowMatrixXf>& weights,
                                Eigen::Ref<RowMatrixXf> grad) {
  assert(x.cols() == y.cols());
  assert(x_data.size() == x.rows() && y_data.size() == y.rows());
  assert(weights.rows() == x.rows() && weights.cols() == y.rows());
  assert(grad.rows() == x.rows() && grad.cols() == x.cols());
  const Index n = x.rows(), m = y.rows(), d = x.cols();
  if (n == 0 || m == 0) return;
  const float inv_s = 1.0f / cost.scale;
  const Index ldw = RowStride(weights.outerStride(), m);
  switch (cost.kind) {
    case CostKind::kSquaredEuclidean:
      AccumulateLinearGradient(x, y, weights.data(), ldw, 2.0f * inv_s, 2.0f * inv_s, grad);
      break;
    case CostKind::kLp: {
      // W'_ij = W_ij p ||x_i - y_j||^(p-2) / s (0 at coincident points), then the linear form.
      // On the sgemm path (d > kDirectMaxDim) squared distances carry a rounding error of
      // about eps_float (|x|^2 + |y|^2); below a floor of that order the points are taken as
      // coincident, where ||x - y||^(p-2) would amplify the rounding noise.
      RowMatrixXf w(n, m);
      SquaredDistanceTile(x, x_data, y, y_data, 1.0f, w);
      const float coef = cost.p * inv_s;
      const float half_pm2 = 0.5f * (cost.p - 2.0f);
      const bool gemm_path = d > kDirectMaxDim;
      for (Index i = 0; i < n; ++i) {
        float* wi = &w(i, 0);
        const float* wt = Row(weights, i);
        for (Index j = 0; j < m; ++j) {
          const float sq = wi[j];
          const float floor =
              gemm_path ? 16.0f * std::numeric_limits<float>::epsilon() * (x_data[i] + y_data[j])
                        : 0.0f;
          float factor;
          if (cost.p == 2.0f) {
            factor = 1.0f;
          } else if (sq > floor) {
            factor = std::pow(sq, half_pm2);
          } else {
            factor = 0.0f;
          }
          wi[j] = coef * wt[j] * factor;
        }
      }
      AccumulateLinearGradient(x, y, w.data(), m, 1.0f, 1.0f, grad);
      break;
    }
    case CostKind::kL1: {
      Index i = 0;
      for (; i + 2 <= n; i += 2) L1GradientRows<2>(x, i, y, weights, inv_s, grad);
      for (; i < n; ++i) L1GradientRows<1>(x, i, y, weights, inv_s, grad);
      break;
    }
    case CostKind::kCosine: {
      // sum_j W_ij grad = -(1 / (s |x_i|)) [sum_j (W_ij / |y_j|) y_j - x_i / |x_i| sum_j W_ij
      // cos_ij].
      RowMatrixXf w(n, m);
      DotTile(x, y, 1.0f, w);
      Eigen::VectorXf t(n);
      const float* ny = y_data.data();
      for (Index i = 0; i < n; ++i) {
        float* wi = &w(i, 0);
        const float* wt = Row(weights, i);
        const float inv_nx = 1.0f / x_data[i];
        float ti = 0.0f;
        for (Index j = 0; j < m; ++j) {
          const float inv_ny = 1.0f / ny[j];
          ti += wt[j] * wi[j] * inv_nx * inv_ny;
          wi[j] = wt[j] * inv_ny;
        }
        t[i] = ti;
      }
      RowMatrixXf wy(n, d);
      Sgemm('N', n, d, m, 1.0f, w.data(), m, y.data(), RowStride(y.outerStride(), d), 0.0f,
            wy.data(), d);
      for (Index i = 0; i < n; ++i) {
        const float inv_nx = 1.0f / x_data[i];
        const float a = -inv_s * inv_nx;
        const float b = inv_s * t[i] * inv_nx * inv_nx;
        float* gi = &grad(i, 0);
        const float* xi = Row(x, i);
        for (Index k = 0; k < d; ++k) gi[k] += a * wy(i, k) + b * xi[k];
      }
      break;
    }
  }
}

float CostDiameterBound(const Cost& cost, const Eigen::Ref<const RowMatrixXf>& x,
                        const Eigen::Ref<const RowMatrixXf>& y) {
  assert(x.cols() == y.cols());
  const double inv_s = 1.0 / cost.scale;
  if (cost.kind == CostKind::kCosine) return static_cast<float>(2.0 * inv_s);
  const Index d = x.cols();
  double sum_sq = 0.0, sum_abs = 0.0;
  for (Index k = 0; k < d; ++k) {
    double lo = std::numeric_limits<double>::infinity();
    double hi = -lo;
    if (x.rows() > 0) {
      lo = std::min<double>(lo, x.col(k).minCoeff());
      hi = std::max<double>(hi, x.col(k).maxCoeff());
    }
    if (y.rows() > 0) {
      lo = std::min<double>(lo, y.col(k).minCoeff());
      hi = std::max<double>(hi, y.col(k).maxCoeff());
    }
    if (!(hi >= lo)) continue;
    sum_sq += (hi - lo) * (hi - lo);
    sum_abs += hi - lo;
  }
  double bound = 0.0;
  switch (cost.kind) {
    case CostKind::kSquaredEuclidean:
      bound = sum_sq;
      break;
    case CostKind::kLp:
      bound = std::pow(sum_sq, 0.5 * cost.p);
      break;
    case CostKind::kL1:
      bound = sum_abs;
      break;
    case CostKind::kCosine:
      break;
  }
  return static_cast<float>(bound * inv_s);
}

}  // namespace otgen::ot
