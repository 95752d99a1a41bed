// Barycentric projection of a transport plan: the map estimate of Seguy et al. (2018),
// "Large-scale optimal transport and mapping estimation", used by W2GAN's Barycentric-OT
// baseline (seed 002, Section 6.1).
//
// For a plan pi between points x_i and y_j (dense [n, m] weights, e.g. an exact OT plan, a
// Sinkhorn plan or the pseudo-plan density of ot/regularized_dual.h), the barycentric map is
//
//   T(x_i) = sum_j pi_ij y_j / sum_j pi_ij,
//
// the conditional mean of y given x under pi. Rows with zero mass have no image and are
// reported as an error. A network f is then fitted to T by minimizing
//   BarycentricMapLoss = sum_i w_i ||f(x_i) - T(x_i)||^2 / sum_i w_i,   w_i = sum_j pi_ij,
// which has the same minimizers as Seguy et al.'s sum_ij pi_ij ||f(x_i) - y_j||^2.
//
//   OTGEN_ASSIGN_OR_RETURN(Tensor t, BarycentricProjection(plan, y));   // [n, d]
//   OTGEN_ASSIGN_OR_RETURN(Var loss, BarycentricMapLoss(f_x, plan, y));
#ifndef OTGEN_OT_BARYCENTRIC_H_
#define OTGEN_OT_BARYCENTRIC_H_

#include "absl/status/statusor.h"
#include "nn/autograd.h"
#include "nn/tensor.h"

namespace otgen::ot {

// T(x_i) for a plan [n, m] (non-negative, finite) and targets y [m, d]; returns [n, d].
absl::StatusOr<nn::Tensor> BarycentricProjection(const nn::Tensor& plan, const nn::Tensor& y);

// The fitting loss of a mapped batch f_x [n, d] to the barycentric projection (plan and y
// constant); differentiable in f_x.
absl::StatusOr<nn::Var> BarycentricMapLoss(const nn::Var& f_x, const nn::Tensor& plan, const nn::Tensor& y);

}  // namespace otgen::ot

#endif  // OTGEN_OT_BARYCENTRIC_H_
