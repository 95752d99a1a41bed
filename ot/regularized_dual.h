// The regularized optimal-transport dual of seed 001 (Sanjabi et al., SWGAN), with the
// potentials given as autodiff Vars so that networks can produce them.
//
// Regularized OT (seed 001 eq. 4): d_{c,lambda}(q, p) = min_{pi in Pi(q,p)} <pi, c> + lambda I(pi)
// with I the KL divergence to q x p, or the norm-2 penalty 1/2 int pi^2 / (q p). Its dual
// (Lemma 2.1, eq. 5), with the violation V(x, y) = phi(x) - psi(y) - c(x, y):
//
//   d_{c,lambda}(q, p) = max_{phi, psi} E_{x~q} phi(x) - E_{y~p} psi(y) - E_{x~q, y~p} f_lambda(V(x, y)),
//
//   KL:     f_lambda(v) = (lambda / e) exp(v / lambda),   M(v) = f_lambda'(v) = (1/e) exp(v / lambda),
//   norm-2: f_lambda(v) = (v_+)^2 / (2 lambda),           M(v) = f_lambda'(v) = v_+ / lambda.
//
// The pseudo-plan (eq. 6) is pi(x, y) = q(x) p(y) M(V(x, y)); its density m = M(V) w.r.t.
// q x p drives the generator update of Algorithm 1,
//   g_t = (1/S^2) sum_ij m(G(z_i), y_j) grad_theta c(G(z_i), y_j),
// which is the gradient of PseudoPlanGeneratorLoss below (m held constant). The stopping
// statistic of D.3 eq. 26 is the mean of m over S independent pairs (x_k, y_k): close to 1
// when the dual is nearly optimal.
//
// On a batch, x_1..x_n ~ q (generated points) and y_1..y_m ~ p (data), phi is [n], psi [m]
// and the cost matrix C [n, m]; expectations are batch means.
//
//   RegularizedDualOptions opt{.regularizer = Regularizer::kL2, .lambda = 0.01f};
//   OTGEN_ASSIGN_OR_RETURN(Var objective, RegularizedDualObjective(phi, psi, cost, opt));
//   Backward(Neg(objective));   // ascend the dual in the critic's parameters
#ifndef OTGEN_OT_REGULARIZED_DUAL_H_
#define OTGEN_OT_REGULARIZED_DUAL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nn/autograd.h"
#include "nn/tensor.h"

namespace otgen::ot {

enum class Regularizer {
  kKL,  // entropic: I(pi) = KL(pi | q x p)
  kL2,  // norm-2:   I(pi) = 1/2 int pi^2 / (q p)
};

// "kl" / "l2"
absl::StatusOr<Regularizer> ParseRegularizer(const std::string& name);

struct RegularizedDualOptions {
  Regularizer regularizer = Regularizer::kL2;
  // lambda > 0, the regularization strength.
  float lambda = 0.01f;

  absl::Status Validate() const;
};

// V_ij = phi_i - psi_j - C_ij: [n, m] from phi [n], psi [m], cost [n, m].
absl::StatusOr<nn::Var> Violation(const nn::Var& phi, const nn::Var& psi, const nn::Var& cost);

// f_lambda(V), element-wise.
nn::Var FLambda(const nn::Var& v, const RegularizedDualOptions& options);

// The pseudo-plan density m = M(V), element-wise (eq. 6; differentiable).
nn::Var PseudoPlanDensity(const nn::Var& v, const RegularizedDualOptions& options);

// The batch estimate of eq. 5: mean(phi) - mean(psi) - mean_ij f_lambda(V_ij), a scalar.
absl::StatusOr<nn::Var> RegularizedDualObjective(const nn::Var& phi, const nn::Var& psi, const nn::Var& cost,
                                                 const RegularizedDualOptions& options);

// Algorithm 1's generator loss: mean_ij m_ij C_ij with m constant, so that its gradient in
// the generator's parameters is g_t. `cost` [n, m] depends on the generator; `density` is
// M(V) (any tensor of the same shape, typically PseudoPlanDensity(...).value()).
absl::StatusOr<nn::Var> PseudoPlanGeneratorLoss(const nn::Var& cost, const nn::Tensor& density);

// Eq. 26: mean_k m(x_k, y_k) over paired samples: the diagonal of a square density matrix
// (the k-th generated point with the k-th data point).
absl::StatusOr<double> TerminationStatistic(const nn::Tensor& density);

// The regularized primal value of a plan given as a density m w.r.t. uniform batch weights
// (pi_ij = m_ij / (n m)): <pi, C> + lambda I(pi). Used to check strong duality.
absl::StatusOr<double> RegularizedPrimalValue(const nn::Tensor& density, const nn::Tensor& cost,
                                              const RegularizedDualOptions& options);

}  // namespace otgen::ot

#endif  // OTGEN_OT_REGULARIZED_DUAL_H_
