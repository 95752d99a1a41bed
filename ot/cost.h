// Ground costs c(x, y) between points of R^d for the optimal-transport solvers of otgen.
//
// A `Cost` names one of four costs, each divided by a normalizing scale s > 0:
//
//   kSquaredEuclidean  c(x, y) = ||x - y||_2^2 / s
//                      Seed 000 (Sec. 5) uses s = alpha = (1/J) sum_j ||y_j||^2, the mean
//                      squared norm of the target points: see `MeanSquaredNorm`.
//   kLp                c(x, y) = ||x - y||_2^p / s, p >= 1 (the p-th power of the Euclidean
//                      norm, as in W_p; p = 2 is kSquaredEuclidean, p = 1 the Euclidean distance).
//   kL1                c(x, y) = sum_k |x_k - y_k| / s (Manhattan distance).
//   kCosine            c(x, y) = (1 - <x, y> / (||x|| ||y||)) / s, in [0, 2 / s]; points must be
//                      non-zero.
//
// All four are symmetric, c(x, y) = c(y, x), and vanish on the diagonal (the setting of seed 000,
// Sec. 4.4, for the Sinkhorn divergence).
//
// The tile kernels are what the streaming solvers (Sinkhorn, c-transforms, seed 000 eqs. 11-12)
// are built on: `EvaluateCostTile` writes C[i][j] = c(x_i, y_j) for a block of source rows
// against a block of target rows into a caller-provided (possibly strided) row-major buffer,
// and `AccumulateCostGradientTile` adds sum_j W[i][j] grad_x c(x_i, y_j) (the gradient of
// sum_ij W_ij c(x_i, y_j) in x_i, e.g. W = a transport plan) to a caller-provided gradient
// block. A solver that streams a large target set calls them tile by tile, keeping memory at
// O(tile). Per-point quantities (squared norms, norms) are computed once per point set with
// `CostPointData` and passed back in with each tile, sliced like the points.
//
// Computation: for kSquaredEuclidean and kLp in dimension d <= 16 the differences are formed
// directly (exact, no cancellation); in higher dimension ||x - y||^2 = ||x||^2 + ||y||^2 -
// 2 <x, y> with the dot products from one oneDNN sgemm per tile (clamped at 0; the rounding
// error is relative to ||x||^2 + ||y||^2, so callers should centre clouds that sit far from the
// origin, as ot/sinkhorn does). kCosine uses the same dot products (direct for d <= 16); kL1
// is always direct. The tile functions are single-threaded when called inside an OpenMP
// parallel region (the usual case: one tile per thread); otherwise oneDNN may use its own
// threads for the sgemm.
//
// Layout: points are row-major float matrices, one point per row (`RowMatrixXf`, n x d);
// tiles are row-major with an arbitrary outer stride (a block of a larger matrix).
//
// Usage:
//   otgen::ot::RowMatrixXf x = ..., y = ...;                      // n x d, m x d
//   OTGEN_ASSIGN_OR_RETURN(otgen::ot::Cost cost, otgen::ot::NormalizedSquaredEuclideanCost(y));
//   Eigen::VectorXf xd = otgen::ot::CostPointData(cost, x), yd = otgen::ot::CostPointData(cost, y);
//   otgen::ot::RowMatrixXf c(n, m);
//   otgen::ot::EvaluateCostTile(cost, x, xd, y, yd, c);           // the whole n x m matrix
//   // Rows 0..63 against targets 1000..1999, into a 64 x 1000 block of a buffer:
//   otgen::ot::EvaluateCostTile(cost, x.topRows(64), xd.head(64), y.middleRows(1000, 1000),
//                               yd.segment(1000, 1000), buffer.block(0, 0, 64, 1000));
//   // grad(i, :) += sum_j plan(i, j) * grad_x c(x_i, y_j):
//   otgen::ot::AccumulateCostGradientTile(cost, x, xd, y, yd, plan, grad);
#ifndef OTGEN_OT_COST_H_
#define OTGEN_OT_COST_H_

#include <string>
#include <string_view>

#include "Eigen/Dense"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "ot/types.h"

namespace otgen::ot {

enum class CostKind {
  kSquaredEuclidean,  // ||x - y||^2 / s
  kLp,                // ||x - y||^p / s (Euclidean norm)
  kL1,                // sum_k |x_k - y_k| / s
  kCosine,            // (1 - cos(x, y)) / s
};

// Up to this dimension the tile kernels form squared distances, dot products and L1 distances
// directly; above it dot products come from sgemm (and squared distances from norms).
inline constexpr int kCostDirectMaxDim = 16;

// Returns "squared_euclidean", "lp", "l1" or "cosine".
std::string_view CostKindName(CostKind kind);

// A ground cost: its kind, the normalizing scale s and, for kLp, the exponent p.
struct Cost {
  CostKind kind = CostKind::kSquaredEuclidean;
  // Exponent p of kLp (ignored by the other kinds); p >= 1.
  float p = 2.0f;
  // Normalizing scale s > 0: every cost is divided by it.
  float scale = 1.0f;

  static Cost SquaredEuclidean(float scale = 1.0f) {
    return Cost{CostKind::kSquaredEuclidean, 2.0f, scale};
  }
  static Cost Lp(float p, float scale = 1.0f) { return Cost{CostKind::kLp, p, scale}; }
  static Cost L1(float scale = 1.0f) { return Cost{CostKind::kL1, 1.0f, scale}; }
  static Cost Cosine(float scale = 1.0f) { return Cost{CostKind::kCosine, 1.0f, scale}; }

  // InvalidArgument unless scale is finite and > 0 and (for kLp) p is finite and >= 1.
  absl::Status Validate() const;
  // E.g. "squared_euclidean(scale=1)", "lp(p=1.5, scale=2)".
  std::string ToString() const;
};

// alpha = (1/J) sum_j ||y_j||^2, the normalizing scale of seed 000's quadratic cost
// c(x, y) = ||x - y||^2 / alpha. InvalidArgument if `points` is empty or has non-finite
// entries, or if alpha is 0 (all points at the origin: no valid scale).
absl::StatusOr<float> MeanSquaredNorm(const Eigen::Ref<const RowMatrixXf>& points);

// Cost::SquaredEuclidean(MeanSquaredNorm(target_points)).
absl::StatusOr<Cost> NormalizedSquaredEuclideanCost(
    const Eigen::Ref<const RowMatrixXf>& target_points);

// Checks a point set for use with `cost`: at least one point and one dimension, all entries
// finite, and (kCosine) no zero point. The message names `name`, e.g. "source_points: entry
// (3, 1) is nan; expected finite coordinates".
absl::Status ValidatePoints(const Cost& cost, const Eigen::Ref<const RowMatrixXf>& points,
                            std::string_view name);

// c(x, y) for one pair, accumulated in double (the reference the tile kernels are tested
// against). Requires x.size() == y.size().
double EvaluateCost(const Cost& cost, absl::Span<const float> x, absl::Span<const float> y);

// grad_x c(x, y) for one pair, in double, written to `grad` (size d):
//   kSquaredEuclidean  2 (x - y) / s
//   kLp                p ||x - y||^(p-2) (x - y) / s, and 0 at x = y
//   kL1                sign(x - y) / s (componentwise, sign(0) = 0)
//   kCosine            -(y / ||y|| - cos(x, y) x / ||x||) / (s ||x||)
// Where c(., y) is not differentiable (x = y for kLp with p = 1; x_k = y_k for kL1) these
// formulas give the minimal-norm subgradient (0 in the affected components).
void CostGradientX(const Cost& cost, absl::Span<const float> x, absl::Span<const float> y,
                   absl::Span<double> grad);

// Per-point data the tile kernels need, computed once per point set and sliced like the
// points: ||x_i||^2 for kSquaredEuclidean and kLp, ||x_i|| for kCosine, zeros for kL1.
Eigen::VectorXf CostPointData(const Cost& cost, const Eigen::Ref<const RowMatrixXf>& points);

// out(i, j) = c(x_i, y_j) for 0 <= i < x.rows(), 0 <= j < y.rows().
// Preconditions (checked by assert): x.cols() == y.cols(), x_data.size() == x.rows(),
// y_data.size() == y.rows() (from CostPointData), out is x.rows() x y.rows().
void EvaluateCostTile(const Cost& cost, const Eigen::Ref<const RowMatrixXf>& x,
                      const Eigen::Ref<const Eigen::VectorXf>& x_data,
                      const Eigen::Ref<const RowMatrixXf>& y,
                      const Eigen::Ref<const Eigen::VectorXf>& y_data, Eigen::Ref<RowMatrixXf> out);

// The whole cost matrix (n x m); a convenience over EvaluateCostTile.
RowMatrixXf CostMatrix(const Cost& cost, const Eigen::Ref<const RowMatrixXf>& x,
                       const Eigen::Ref<const RowMatrixXf>& y);

// grad(i, :) += sum_j weights(i, j) * grad_x c(x_i, y_j)   (grad_x c as in CostGradientX).
// For kSquaredEuclidean this is (2/s) (x_i sum_j W_ij - (W Y)_i), one sgemm; kLp and kCosine
// reweight W and use the same sgemm; kL1 is a direct sweep over the targets with two rows' 64-coordinate
// chunks and sums in registers (ot:cost_bench, 100 x 100 points of d = 4096: 2.1 ms, 4.3 ms before).
// Preconditions (assert): weights is x.rows() x y.rows(), grad is x.rows() x x.cols(), data
// sizes as in EvaluateCostTile.
void AccumulateCostGradientTile(const Cost& cost, const Eigen::Ref<const RowMatrixXf>& x,
                                const Eigen::Ref<const Eigen::VectorXf>& x_data,
                                const Eigen::Ref<const RowMatrixXf>& y,
                                const Eigen::Ref<const Eigen::VectorXf>& y_data,
                                const Eigen::Ref<const RowMatrixXf>& weights,
                                Eigen::Ref<RowMatrixXf> grad);

// An upper bound of max_{i,j} c(x_i, y_j) over all pairs from the bounding box of the union of
// x and y (the "diameter" that epsilon-scaling starts from): box diagonal^2 / s for
// kSquaredEuclidean, diagonal^p / s for kLp, the sum of the box extents / s for kL1, 2 / s for
// kCosine. Requires x.cols() == y.cols() and finite entries.
float CostDiameterBound(const Cost& cost, const Eigen::Ref<const RowMatrixXf>& x,
                        const Eigen::Ref<const RowMatrixXf>& y);

}  // namespace otgen::ot

#endif  // OTGEN_OT_COST_H_
