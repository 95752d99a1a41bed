#include "apps/eval/map_error.h"

#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nn/status_macros.h"
#include "ot/cost.h"
#include "ot/exact.h"

namespace otgen::eval {
namespace {

double RowDistance(const Eigen::Ref<const ot::RowMatrixXf>& a, Eigen::Index i,
                   const Eigen::Ref<const ot::RowMatrixXf>& b, Eigen::Index j) {
  double s = 0.0;
  for (Eigen::Index c = 0; c < a.cols(); ++c) {
    const double diff = static_cast<double>(a(i, c)) - static_cast<double>(b(j, c));
    s += diff * diff;
  }
  return std::sqrt(s);
}

}  // namespace

std::string MapErrorResult::BriefReport() const {
  return absl::StrFormat("map error %.4g (relative %.4g of mean displacement %.4g), n=%d", mean_error,
                         relative_error, mean_displacement, n);
}

absl::StatusOr<ReferenceMap> ComputeReferenceMap(const Eigen::Ref<const ot::RowMatrixXf>& source,
                                                 const Eigen::Ref<const ot::RowMatrixXf>& target) {
  if (source.rows() < 1 || source.cols() < 1 || source.rows() != target.rows() || source.cols() != target.cols()) {
    return absl::InvalidArgumentError(absl::StrCat("source, target: expected two n x d matrices with n, d >= 1, got ",
                                                   source.rows(), " x ", source.cols(), " and ", target.rows(), " x ",
                                                   target.cols()));
  }
  OTGEN_ASSIGN_OR_RETURN(ot::ExactOTResult ot, ot::SolveExactOT(source, target, ot::Cost::SquaredEuclidean()));
  if (!ot.optimal() || static_cast<Eigen::Index>(ot.plan.size()) != source.rows()) {
    return absl::InternalError(absl::StrCat("exact OT did not return an optimal assignment: ", ot.BriefReport()));
  }
  ReferenceMap ref;
  ref.source = source;
  ref.target_of_source = ot.MainTargets();
  // The optimum between two uniform measures of n atoms is a permutation (Birkhoff).
  std::vector<char> used(source.rows(), 0);
  for (int j : ref.target_of_source) {
    if (j < 0 || j >= source.rows() || used[j]) {
      return absl::InternalError(absl::StrCat("exact OT plan is not a permutation: ", ot.BriefReport()));
    }
    used[j] = 1;
  }
  ref.mapped.resize(source.rows(), source.cols());
  double displacement = 0.0;
  for (Eigen::Index i = 0; i < source.rows(); ++i) {
    const int j = ref.target_of_source[i];
    ref.mapped.row(i) = target.row(j);
    displacement += RowDistance(source, i, target, j);
  }
  ref.ot_cost = ot.cost;
  ref.mean_displacement = displacement / static_cast<double>(source.rows());
  return ref;
}

absl::StatusOr<MapErrorResult> EvaluateMapError(const ReferenceMap& reference,
                                                const Eigen::Ref<const ot::RowMatrixXf>& mapped_source) {
  if (mapped_source.rows() != reference.mapped.rows() || mapped_source.cols() != reference.mapped.cols()) {
    return absl::InvalidArgumentError(absl::StrCat("mapped_source: expected ", reference.mapped.rows(), " x ",
                                                   reference.mapped.cols(), " (the reference batch), got ",
                                                   mapped_source.rows(), " x ", mapped_source.cols()));
  }
  MapErrorResult r;
  r.n = mapped_source.rows();
  double error = 0.0;
  for (Eigen::Index i = 0; i < mapped_source.rows(); ++i) {
    for (Eigen::Index c = 0; c < mapped_source.cols(); ++c) {
      if (!std::isfinite(mapped_source(i, c))) {
        return absl::InvalidArgumentError(absl::StrCat("mapped_source: entry (", i, ", ", c, ") is ",
                                                       mapped_source(i, c), "; expected finite values"));
      }
    }
    error += RowDistance(mapped_source, i, reference.mapped, i);
  }
  r.mean_error = error / static_cast<double>(r.n);
  r.mean_displacement = reference.mean_displacement;
  if (r.mean_displacement > 0.0) {
    r.relative_error = r.mean_error / r.mean_displacement;
  } else {
    r.relative_error = r.mean_error == 0.0 ? 0.0 : std::numeric_limits<double>::infinity();
  }
  return r;
}

absl::StatusOr<MapErrorResult> EvaluateMapError(const Eigen::Ref<const ot::RowMatrixXf>& source,
                                                const Eigen::Ref<const ot::RowMatrixXf>& mapped_source,
                                                const Eigen::Ref<const ot::RowMatrixXf>& target) {
  OTGEN_ASSIGN_OR_RETURN(ReferenceMap ref, ComputeReferenceMap(source, target));
  return EvaluateMapError(ref, mapped_source);
}

}  // namespace otgen::eval
