// Error of a learned 2-D transport map against the exact discrete OT map (W2GAN, seed 002,
// Sec. 6.1 and Fig. 1-b: learned maps are compared with "the optimal assignment algorithm
// between samples"; DATASETS.md, "Map error").
//
// Protocol: fix a batch of n = 512 source points z_i ~ Pz and n target points y_j ~ Px
// (kMapErrorBatchSize). The reference map is the exact discrete OT assignment sigma between
// the two uniform empirical measures for the squared Euclidean cost,
//     sigma = argmin_{permutations} (1/n) sum_i ||z_i - y_sigma(i)||^2,
// solved by ot/exact.h (its Jonker-Volgenant assignment path), and T(z_i) = y_sigma(i). For a
// learned map G,
//     mean error        E = (1/n) sum_i ||G(z_i) - T(z_i)||,
//     mean displacement D = (1/n) sum_i ||T(z_i) - z_i||,
//     relative error    E / D,
// with Euclidean norms (not squared). The exact OT map scores 0, the identity map relative
// error 1. The reference is computed once (`ComputeReferenceMap`) and reused for every
// evaluation of the same fixed batch. Arithmetic in double.
//
// Layout: points are n x d row-major float matrices (d = 2 for the W2GAN toys; any d works).
//
// Usage:
//   otgen::ot::RowMatrixXf z = ..., y = ...;                     // 512 x 2 each, fixed
//   OTGEN_ASSIGN_OR_RETURN(otgen::eval::ReferenceMap ref, otgen::eval::ComputeReferenceMap(z, y));
//   otgen::ot::RowMatrixXf gz = ...;                             // G applied to z
//   OTGEN_ASSIGN_OR_RETURN(otgen::eval::MapErrorResult e, otgen::eval::EvaluateMapError(ref, gz));
//   std::cerr << e.BriefReport() << "\n";
#ifndef OTGEN_APPS_EVAL_MAP_ERROR_H_
#define OTGEN_APPS_EVAL_MAP_ERROR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ot/types.h"

namespace otgen::eval {

// The protocol's batch size n.
inline constexpr int64_t kMapErrorBatchSize = 512;

// The exact discrete OT map on a fixed batch.
struct ReferenceMap {
  ot::RowMatrixXf source;               // z, n x d
  ot::RowMatrixXf mapped;               // T(z): row i = target point sigma(i), n x d
  std::vector<int> target_of_source;    // sigma
  double ot_cost = 0.0;                 // (1/n) sum_i ||z_i - T(z_i)||^2 (the W2^2 estimate)
  double mean_displacement = 0.0;       // D = (1/n) sum_i ||T(z_i) - z_i||
};

// Solves the assignment between `source` and `target` (both n x d, n >= 1, finite entries).
absl::StatusOr<ReferenceMap> ComputeReferenceMap(const Eigen::Ref<const ot::RowMatrixXf>& source,
                                                 const Eigen::Ref<const ot::RowMatrixXf>& target);

struct MapErrorResult {
  double mean_error = 0.0;          // E = (1/n) sum_i ||G(z_i) - T(z_i)||
  double mean_displacement = 0.0;   // D
  // E / D; 0 if E = D = 0, +infinity if only D = 0 (source equal to its OT image).
  double relative_error = 0.0;
  int64_t n = 0;

  // E.g. "map error 0.0312 (relative 0.0457 of mean displacement 0.683), n=512".
  std::string BriefReport() const;
};

// Scores `mapped_source` = G(reference.source) (n x d, same shape as reference.source).
absl::StatusOr<MapErrorResult> EvaluateMapError(const ReferenceMap& reference,
                                                const Eigen::Ref<const ot::RowMatrixXf>& mapped_source);

// ComputeReferenceMap followed by EvaluateMapError.
absl::StatusOr<MapErrorResult> EvaluateMapError(const Eigen::Ref<const ot::RowMatrixXf>& source,
                                                const Eigen::Ref<const ot::RowMatrixXf>& mapped_source,
                                                const Eigen::Ref<const ot::RowMatrixXf>& target);

}  // namespace otgen::eval

#endif  // OTGEN_APPS_EVAL_MAP_ERROR_H_
