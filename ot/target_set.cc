#include "ot/target_set.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace otgen::ot {
namespace {

float* AllocateFloats(int64_t n) {
  const size_t bytes = ((static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(float) + 63) / 64) * 64;
  return static_cast<float*>(std::aligned_alloc(64, bytes));
}

}  // namespace

MinArgmin CombineMinArgmin(const MinArgmin& a, const MinArgmin& b) {
  if (b.index < 0) return a;
  if (a.index < 0) return b;
  if (b.value < a.value || (b.value == a.value && b.index < a.index)) return b;
  return a;
}

SoftminPartial CombineSoftmin(const SoftminPartial& a, const SoftminPartial& b, double inv_lambda) {
  if (!(b.sum > 0.0)) return a;
  if (!(a.sum > 0.0)) return b;
  if (a.min <= b.min) {
    return {a.min, a.sum + b.sum * std::exp((static_cast<double>(a.min) - b.min) * inv_lambda)};
  }
  return {b.min, b.sum + a.sum * std::exp((static_cast<double>(b.min) - a.min) * inv_lambda)};
}

absl::Status ValidateProbabilityWeights(const Eigen::Ref<const Eigen::VectorXf>& weights,
                                        int64_t expected_size, const std::string& name) {
  if (weights.size() != expected_size) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": expected ", expected_size,
                                                   " entries (one per point), got ", weights.size()));
  }
  double sum = 0.0;
  bool any_positive = false;
  for (int64_t j = 0; j < weights.size(); ++j) {
    const float w = weights[j];
    if (!std::isfinite(w) || w < 0.0f) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": entry ", j, " is ", w,
                                                     "; expected finite non-negative weights"));
    }
    any_positive = any_positive || w > 0.0f;
    sum += w;
  }
  if (!any_positive || std::abs(sum - 1.0) > 1e-5) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: expected %d non-negative entries summing to 1, got sum %.9g", name, expected_size, sum));
  }
  return absl::OkStatus();
}

InMemoryTargetSet::InMemoryTargetSet(int64_t size, int64_t dim) : size_(size), dim_(dim) {
  points_ = AllocateFloats(size * dim);
  transposed_ = AllocateFloats(size * dim);
  weights_ = AllocateFloats(size);
  squared_norms_ = AllocateFloats(size);
}

InMemoryTargetSet::~InMemoryTargetSet() {
  std::free(points_);
  std::free(transposed_);
  std::free(weights_);
  std::free(squared_norms_);
}

absl::StatusOr<std::shared_ptr<const InMemoryTargetSet>> InMemoryTargetSet::Create(
    const Eigen::Ref<const RowMatrixXf>& points, const Eigen::Ref<const Eigen::VectorXf>& weights) {
  const int64_t n = points.rows(), d = points.cols();
  if (n == 0) return absl::InvalidArgumentError("points: expected at least one target point, got 0");
  if (d == 0) {
    return absl::InvalidArgumentError("points: expected points of dimension >= 1, got dimension 0");
  }
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t k = 0; k < d; ++k) {
      const float v = points(j, k);
      if (!std::isfinite(v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("points: entry (", j, ", ", k, ") is ", v, "; expected finite coordinates"));
      }
    }
  }
  absl::Status w = ValidateProbabilityWeights(weights, n, "weights");
  if (!w.ok()) return w;

  std::shared_ptr<InMemoryTargetSet> set(new InMemoryTargetSet(n, d));
  for (int64_t j = 0; j < n; ++j) {
    std::memcpy(set->points_ + j * d, points.data() + j * points.outerStride(), sizeof(float) * d);
    double sq = 0.0;
    for (int64_t k = 0; k < d; ++k) sq += static_cast<double>(points(j, k)) * points(j, k);
    set->squared_norms_[j] = static_cast<float>(sq);
    set->weights_[j] = weights[j];
  }
  // Blocked transpose (32 x 32 blocks) into d x J.
  constexpr int64_t kBlock = 32;
  for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
    const int64_t j1 = std::min(n, j0 + kBlock);
    for (int64_t k0 = 0; k0 < d; k0 += kBlock) {
      const int64_t k1 = std::min(d, k0 + kBlock);
      for (int64_t j = j0; j < j1; ++j) {
        const float* src = set->points_ + j * d;
        for (int64_t k = k0; k < k1; ++k) set->transposed_[k * n + j] = src[k];
      }
    }
  }
  return std::shared_ptr<const InMemoryTargetSet>(std::move(set));
}

absl::StatusOr<std::shared_ptr<const InMemoryTargetSet>> InMemoryTargetSet::CreateUniform(
    const Eigen::Ref<const RowMatrixXf>& points) {
  if (points.rows() == 0) {
    return absl::InvalidArgumentError("points: expected at least one target point, got 0");
  }
  Eigen::VectorXf w = Eigen::VectorXf::Constant(points.rows(), 1.0f / static_cast<float>(points.rows()));
  return Create(points, w);
}

}  // namespace otgen::ot
