// The W2 dual penalties of W2GAN (seed 002, Leygonie et al.): the c-inequality penalty of
// eq. 5, the c-equality penalty of A.7 eq. 23, interpolated sampling (A.7 eq. 25) and the
// epsilon reparameterization psi = -phi + eps of A.8 (eq. 26), for the quadratic cost
// c(x, y) = ||x - y||^2 / 2.
//
// Conventions (as in eq. 5 and A.7): phi acts on generated points X = G(z), psi on data Y.
// With paired batches X [B, d], Y [B, d] (the i-th generated point with the i-th data point,
// as in Algorithms 1-2), expectations are batch means:
//
//   L_OT   = mean_i phi(X_i) + psi(Y_i)                                     (dual objective)
//   L_ineq = mean_i (phi(X_i) + psi(Y_i) - ||X_i - Y_i||^2 / 2)_+^2          (eq. 5, weight lambda_ineq)
//   L_eq   = mean_i (phi(X_i) + psi(X_i - grad phi(X_i)) - ||grad phi(X_i)||^2 / 2)^2
//          + mean_i (phi(Y_i - grad psi(Y_i)) + psi(Y_i) - ||grad psi(Y_i)||^2 / 2)^2   (eq. 23)
//   L_eps  = mean_i (eps(Y_i))_+^2                                           (eq. 26)
//
// The discriminator maximizes L_OT - lambda_ineq L_ineq - lambda_eq L_eq - lambda_eps L_eps
// (Algorithm 2 minimizes its negative); the generator minimizes mean_i phi(G(z_i)) (eq. 6).
// L_eq differentiates the potentials w.r.t. their inputs inside the loss, so its gradient in
// the networks' parameters needs second-order autodiff (nn/autograd.h, create_graph).
//
//   Potential phi = [&](const Var& x) { return Reshape(phi_net.Forward(x), {-1}); };
//   OTGEN_ASSIGN_OR_RETURN(Var ineq, InequalityPenalty(phi(x), psi(y), x, y));
//   OTGEN_ASSIGN_OR_RETURN(Var eq, EqualityPenalty(phi, psi, x, y));
#ifndef OTGEN_OT_W2_PENALTY_H_
#define OTGEN_OT_W2_PENALTY_H_

#include <functional>

#include "absl/status/statusor.h"
#include "nn/autograd.h"
#include "nn/random.h"

namespace otgen::ot {

// A potential: points [B, d] -> values [B].
using Potential = std::function<nn::Var(const nn::Var&)>;

// mean_i (phi_x_i + psi_y_i - ||x_i - y_i||^2 / 2)_+^2 for phi_x, psi_y [B] and x, y [B, d].
absl::StatusOr<nn::Var> InequalityPenalty(const nn::Var& phi_x, const nn::Var& psi_y, const nn::Var& x,
                                          const nn::Var& y);

// Eq. 23 (without the weight). x and y are [B, d]; the penalty evaluates phi and psi at the
// points, takes their input gradients with create_graph, and evaluates the other potential
// at x - grad phi(x) and y - grad psi(y). Gradients flow to the potentials' parameters
// (and to x, y when they require grad).
absl::StatusOr<nn::Var> EqualityPenalty(const Potential& phi, const Potential& psi, const nn::Var& x,
                                        const nn::Var& y);

// Interpolated sampling (A.7): t_i ~ U[0, 1), returns t_i a_i + (1 - t_i) b_i for a, b [B, d].
absl::StatusOr<nn::Var> Interpolate(const nn::Var& a, const nn::Var& b, nn::Rng& rng);

// A.8's penalty mean_i (eps_y_i)_+^2 for eps_y [B].
absl::StatusOr<nn::Var> EpsilonPenalty(const nn::Var& eps_y);

// A.8's reparameterization psi(y) = -phi(y) + eps(y) as a Potential.
Potential EpsilonReparameterizedPsi(Potential phi, Potential eps);

}  // namespace otgen::ot

#endif  // OTGEN_OT_W2_PENALTY_H_
