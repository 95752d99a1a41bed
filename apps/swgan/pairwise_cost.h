// A differentiable pairwise cost matrix C_ij = c(x_i, y_j) between two batches of points, for
// the SWGAN generator and latent-space updates (seed 001, Algorithms 1-2 and eq. 46: gradients
// of sum_ij m_ij c(G(z_i), y_j) in the generator's and the latent network's parameters).
//
// Costs (ot/cost.h; scale s > 0): L1 sum_k |x_k - y_k| / s, cosine (1 - <x, y>/(|x||y|)) / s,
// squared Euclidean ||x - y||^2 / s. The value and both gradients come from the tile kernels of
// ot/cost.h (direct loops for d <= 16 and for L1, one oneDNN sgemm for the dot products of the
// other costs above), so memory is O(n m + (n + m) d): never the n x m x d differences a
// broadcast formulation would build (MNIST latent space: 100 x 100 x 4096).
//   d/dx_i sum_ij G_ij c(x_i, y_j) = sum_j G_ij grad_x c(x_i, y_j)
//   d/dy_j sum_ij G_ij c(x_i, y_j) = sum_i G_ij grad_x c(y_j, x_i)        (c symmetric)
// with the minimal-norm subgradient where c is not differentiable (L1 at x_k = y_k: 0).
//
// First order only: the backward rule is not itself differentiable (the gradients it returns
// are constants), so the op must not appear under Grad(..., create_graph = true); that aborts
// with a message. The generator losses of SWGAN never need second derivatives.
//
// Layout: x {n, ...} and y {m, ...} with equal per-example sizes d (examples are flattened,
// e.g. {n, 1, 28, 28} -> n x 784); the result is {n, m}.
//
//   OTGEN_ASSIGN_OR_RETURN(Var c, PairwiseCost(ot::Cost::L1(), fake, real));   // {n, m}
//   Var loss = MeanAll(Mul(c, Var::Constant(density)));
#ifndef OTGEN_APPS_SWGAN_PAIRWISE_COST_H_
#define OTGEN_APPS_SWGAN_PAIRWISE_COST_H_

#include "absl/status/statusor.h"
#include "nn/autograd.h"
#include "nn/tensor.h"
#include "ot/cost.h"

namespace otgen::apps::swgan {

// {n, m} costs between the rows of x and y (differentiable in both, first order).
// InvalidArgument for ranks < 1, empty batches, unequal example sizes or an invalid cost.
absl::StatusOr<nn::Var> PairwiseCost(const ot::Cost& cost, const nn::Var& x, const nn::Var& y);

// The same values without a graph.
absl::StatusOr<nn::Tensor> PairwiseCostValues(const ot::Cost& cost, const nn::Tensor& x, const nn::Tensor& y);

}  // namespace otgen::apps::swgan

#endif  // OTGEN_APPS_SWGAN_PAIRWISE_COST_H_
