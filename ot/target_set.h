// The discrete target measure nu = sum_j nu_j delta_{y_j} of semi-discrete optimal transport
// (seed 000, Sections 3 and 6: Y is the finite set of J data points), as the c-transforms
// (ot/c_transform.h) and the semi-discrete solver (ot/semi_discrete.h) see it.
//
// A `TargetSet` is an interface so that the targets can be sharded across processes: each
// process holds one contiguous *shard* of the J targets (global indices
// [shard_offset(), shard_offset() + shard_size())) and the matching slice of the dual vector
// psi. The c-transform computes per-sample partial results over the local shard and combines
// them with the `AllReduce*` hooks below: (min, argmin) pairs for lambda = 0 and
// (min, sum-exp) pairs for lambda > 0 (`CombineSoftmin`), plus plain sums for the gradient
// in x and the semi-dual value. Everything indexed by targets (psi, the supergradient in psi)
// stays shard-local. A single-process set (`InMemoryTargetSet`) is one shard holding all
// targets, and its reductions are identities. An MPI implementation would implement the same
// hooks with MPI_Allreduce and user-defined operations (`CombineMinArgmin`,
// `CombineSoftmin` are the reduction operators); every process calls the hooks in the same
// order with buffers of the same sizes.
//
// Memory layout of a shard (all float32, 64-byte aligned):
//   points()             shard_size x dim, row-major (point j at points() + j * dim);
//                        gathers of single targets (gradients, small batches, general costs).
//   transposed_points()  dim x shard_size, row-major (coordinate k of target j at
//                        [k * shard_size + j]); the B operand of the x . y GEMM tiles, which
//                        run about 25% faster on this layout than on row-major targets.
//   weights()            nu_j >= 0, summing to 1 over all shards.
//   squared_norms()      ||y_j||^2 (accumulated in double, stored as float).
// An InMemoryTargetSet therefore holds the targets twice (2 J d floats).
//
// Usage:
//   otgen::ot::RowMatrixXf y = ...;                            // J x d
//   OTGEN_ASSIGN_OR_RETURN(std::shared_ptr<const otgen::ot::TargetSet> targets,
//                          otgen::ot::InMemoryTargetSet::CreateUniform(y));
//   // or InMemoryTargetSet::Create(y, nu) with weights nu summing to 1.
#ifndef OTGEN_OT_TARGET_SET_H_
#define OTGEN_OT_TARGET_SET_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <string>

#include "Eigen/Dense"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "ot/types.h"

namespace otgen::ot {

// A per-sample partial hard c-transform: the minimum of c(x, y_j) - psi_j over some targets
// and its global index (ties go to the smallest index; index -1 for an empty partial).
struct MinArgmin {
  float value = std::numeric_limits<float>::infinity();
  int64_t index = -1;
};

// A per-sample partial soft-min over some targets, in the form (m, s) with
//   sum_j exp(-w_j / lambda) = exp(-m / lambda) * s,   m = min_j w_j,  s >= 1,
// for w_j = c(x, y_j) - psi_j - lambda log nu_j. Empty partial: m = +inf, s = 0.
struct SoftminPartial {
  float min = std::numeric_limits<float>::infinity();
  double sum = 0.0;
};

// The reduction operators of the two partials (associative and commutative; the soft one up
// to rounding). inv_lambda = 1 / lambda.
MinArgmin CombineMinArgmin(const MinArgmin& a, const MinArgmin& b);
SoftminPartial CombineSoftmin(const SoftminPartial& a, const SoftminPartial& b,
                              double inv_lambda);

class TargetSet {
 public:
  virtual ~TargetSet() = default;

  // J, the number of targets over all shards, and their dimension d.
  virtual int64_t size() const = 0;
  virtual int64_t dim() const = 0;
  // This process's shard: global indices [shard_offset(), shard_offset() + shard_size()).
  virtual int64_t shard_offset() const = 0;
  virtual int64_t shard_size() const = 0;

  // Shard data, laid out as described at the top of this file.
  virtual const float* points() const = 0;
  virtual const float* transposed_points() const = 0;
  virtual const float* weights() const = 0;
  virtual const float* squared_norms() const = 0;

  // Cross-shard reductions, element-wise over the spans (all processes call them with the
  // same sizes, in the same order). Identities for a single shard.
  virtual absl::Status AllReduceMinArgmin(absl::Span<MinArgmin> partials) const = 0;
  virtual absl::Status AllReduceSoftmin(absl::Span<SoftminPartial> partials,
                                        double inv_lambda) const = 0;
  virtual absl::Status AllReduceSum(absl::Span<float> values) const = 0;
  virtual absl::Status AllReduceSum(absl::Span<double> values) const = 0;

  // Eigen views of the shard data.
  Eigen::Map<const RowMatrixXf> PointsMatrix() const {
    return Eigen::Map<const RowMatrixXf>(points(), shard_size(), dim());
  }
  Eigen::Map<const Eigen::VectorXf> WeightsVector() const {
    return Eigen::Map<const Eigen::VectorXf>(weights(), shard_size());
  }
};

// All J targets in this process (one shard; reductions are identities).
class InMemoryTargetSet final : public TargetSet {
 public:
  // Copies `points` (J x d) and `weights` (J). InvalidArgumentError (naming "points" or
  // "weights") unless J >= 1, d >= 1, every coordinate is finite, and the weights are finite,
  // non-negative, with at least one positive entry, and sum to 1 within 1e-5 (sum in double).
  static absl::StatusOr<std::shared_ptr<const InMemoryTargetSet>> Create(
      const Eigen::Ref<const RowMatrixXf>& points, const Eigen::Ref<const Eigen::VectorXf>& weights);
  // Uniform weights nu_j = 1 / J.
  static absl::StatusOr<std::shared_ptr<const InMemoryTargetSet>> CreateUniform(
      const Eigen::Ref<const RowMatrixXf>& points);

  ~InMemoryTargetSet() override;
  InMemoryTargetSet(const InMemoryTargetSet&) = delete;
  InMemoryTargetSet& operator=(const InMemoryTargetSet&) = delete;

  int64_t size() const override { return size_; }
  int64_t dim() const override { return dim_; }
  int64_t shard_offset() const override { return 0; }
  int64_t shard_size() const override { return size_; }
  const float* points() const override { return points_; }
  const float* transposed_points() const override { return transposed_; }
  const float* weights() const override { return weights_; }
  const float* squared_norms() const override { return squared_norms_; }

  absl::Status AllReduceMinArgmin(absl::Span<MinArgmin>) const override {
    return absl::OkStatus();
  }
  absl::Status AllReduceSoftmin(absl::Span<SoftminPartial>, double) const override {
    return absl::OkStatus();
  }
  absl::Status AllReduceSum(absl::Span<float>) const override { return absl::OkStatus(); }
  absl::Status AllReduceSum(absl::Span<double>) const override { return absl::OkStatus(); }

 private:
  InMemoryTargetSet(int64_t size, int64_t dim);

  int64_t size_;
  int64_t dim_;
  float* points_ = nullptr;
  float* transposed_ = nullptr;
  float* weights_ = nullptr;
  float* squared_norms_ = nullptr;
};

// Checks a weight vector for a measure on `expected_size` points: finite, non-negative, at
// least one positive entry, sum within 1e-5 of 1 (double accumulation). The message names
// `name`, e.g. "weights: expected 5 non-negative entries summing to 1, got sum 0.8".
absl::Status ValidateProbabilityWeights(const Eigen::Ref<const Eigen::VectorXf>& weights,
                                        int64_t expected_size, const std::string& name);

}  // namespace otgen::ot

#endif  // OTGEN_OT_TARGET_SET_H_
