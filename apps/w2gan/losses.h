// The training losses of apps/w2gan: W2GAN's critic and generator objectives (seed 002,
// Section 4, Algorithms 1-2, A.7-A.8) and those of the baselines it is compared with on the
// same data (Section 6): WGAN-GP / WGAN-LP critics and Seguy et al.'s Barycentric-OT.
//
// Conventions: the quadratic cost c(a, b) = ||a - b||^2 / 2 throughout; batches are [B, d]
// Vars (row i = one point); potentials map [B, d] to [B] (ot::Potential). As in eq. 5, phi
// acts on generated points y = G(z) and psi on data x. Every returned `loss` is a scalar to be
// MINIMIZED (the critic's objective with its sign flipped, as in Algorithm 2).
//
// W2GAN critic (eq. 5 with A.7's eqs. 23-25 and A.8's eq. 26), with batch means:
//   L_OT    = mean_i phi(y_i) + psi(x_i)                           (the W2^2/2 estimate)
//   L_ineq  = [pairs]   mean_i (phi(y_i) + psi(x_i) - c(y_i, x_i))_+^2
//           + [interp.] mean_i (phi(a_i) + psi(b_i) - c(a_i, b_i))_+^2,
//             a_i = s_i y_i + (1 - s_i) x_i,  b_i = t_i y'_i + (1 - t_i) x'_i,  s, t ~ U[0, 1)
//             with (y', x') a second, independent batch (Algorithm 2's x', y')
//   L_eq    = ot::EqualityPenalty(phi, psi, y, x)                  (eq. 23)
//   L_eps   = mean_i eps(x_i)_+^2  when psi = -phi + eps           (eq. 26)
//   loss    = -L_OT + lambda_ineq L_ineq + lambda_eq L_eq + lambda_eps L_eps
// W2GAN generator (eq. 6): loss = mean_i phi(G(z_i)).
//
// WGAN critic (Gulrajani et al. 2017; Petzka et al. 2018), critic D, x^ = t x + (1 - t) y:
//   loss = mean D(y) - mean D(x) + lambda_gp mean (||grad D(x^)|| - 1)^2      (GP)
//                                 + lambda_gp mean (||grad D(x^)|| - 1)_+^2   (LP)
//   generator loss = -mean D(G(z)).
//
// Barycentric-OT (Seguy et al. 2018), source points z [n, d], target points x [m, d]:
//   dual stage:  loss = -(mean u(z) + mean v(x) - mean_ij f_lambda(u_i + v_j - c(z_i, x_j)))
//                (ot/regularized_dual.h with phi = u, psi = -v)
//   map stage:   loss = (1 / (n m)) sum_ij m_ij ||f(z_i) - x_j||^2,  m = M(u_i + v_j - c_ij)
//                the pseudo-plan density (held constant); its minimizer in f(z_i) is the
//                barycentric projection sum_j m_ij x_j / sum_j m_ij.
//
//   W2CriticLossOptions opt{.lambda_ineq = 200, .lambda_eq = 200};
//   OTGEN_ASSIGN_OR_RETURN(W2CriticTerms t,
//                          W2CriticLoss({.phi = phi, .psi = psi}, {y, x, y2, x2}, rng, opt));
//   SetGradients(t.loss, critic_parameters);
#ifndef OTGEN_APPS_W2GAN_LOSSES_H_
#define OTGEN_APPS_W2GAN_LOSSES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nn/autograd.h"
#include "nn/random.h"
#include "nn/tensor.h"
#include "ot/regularized_dual.h"
#include "ot/lipschitz_penalty.h"
#include "ot/w2_penalty.h"

namespace otgen::apps::w2gan {

// The W2GAN discriminator. With A.8's parameterization `eps` is set and `psi` must be
// ot::EpsilonReparameterizedPsi(phi, eps); otherwise `eps` is empty.
struct W2Potentials {
  ot::Potential phi;
  ot::Potential psi;
  ot::Potential eps;
};

// One critic step's points: generated y = G(z) and data x, [B, d] each; with interpolated
// sampling also an independent second pair (y2, x2) of the same shape.
struct W2CriticBatch {
  nn::Var generated;
  nn::Var data;
  nn::Var generated2;
  nn::Var data2;
};

struct W2CriticLossOptions {
  // Weight of L_ineq (> 0, finite).
  float lambda_ineq = 200.0f;
  // Which pairs L_ineq is taken on (at least one).
  bool ineq_on_pairs = true;
  bool ineq_on_interpolates = true;
  // Weight of L_eq (>= 0; 0 skips the second-order term).
  float lambda_eq = 0.0f;
  // Weight of L_eps (>= 0; requires W2Potentials::eps when > 0).
  float lambda_eps = 0.0f;

  absl::Status Validate() const;
};

struct W2CriticTerms {
  nn::Var loss;       // to minimize
  double dual = 0.0;  // L_OT
  double ineq = 0.0;  // L_ineq (unweighted; sum of the enabled parts)
  double eq = 0.0;    // L_eq (0 when off)
  double eps = 0.0;   // L_eps (0 when off)
};

absl::StatusOr<W2CriticTerms> W2CriticLoss(const W2Potentials& potentials, const W2CriticBatch& batch,
                                           nn::Rng& rng, const W2CriticLossOptions& options);

// mean_i phi(generated_i); generated [B, d].
absl::StatusOr<nn::Var> W2GeneratorLoss(const ot::Potential& phi, const nn::Var& generated);

// The WGAN-GP / WGAN-LP baselines of seed 002 Section 6.1 (formulas in ot/lipschitz_penalty.h).
// kGradient: (||g|| - 1)^2 (WGAN-GP); kLipschitz: (||g|| - 1)_+^2 (WGAN-LP).
using GradientPenalty = ot::LipschitzPenalty;

struct WganCriticTerms {
  nn::Var loss;              // to minimize
  double wasserstein = 0.0;  // mean D(x) - mean D(y), the W1 estimate
  double penalty = 0.0;      // the gradient penalty (unweighted)
};

// `real` x and `fake` y are [B, d]; t ~ U[0, 1) per row from `rng`. lambda_gp >= 0.
absl::StatusOr<WganCriticTerms> WganCriticLoss(const ot::Potential& critic, const nn::Var& real, const nn::Var& fake,
                                               nn::Rng& rng, GradientPenalty kind, float lambda_gp);

// -mean_i D(generated_i).
absl::StatusOr<nn::Var> WganGeneratorLoss(const ot::Potential& critic, const nn::Var& generated);

// C_ij = ||a_i - b_j||^2 / 2 for a [n, d], b [m, d] (double accumulation), [n, m].
absl::StatusOr<nn::Tensor> HalfSquaredDistances(const nn::Tensor& a, const nn::Tensor& b);

// The dual-stage loss from u(z) [n], v(x) [m] and the cost [n, m] (constant).
absl::StatusOr<nn::Var> BarycentricDualLoss(const nn::Var& u_z, const nn::Var& v_x, const nn::Tensor& cost,
                                            const ot::RegularizedDualOptions& options);

// The pseudo-plan density M(u_i + v_j - C_ij) [n, m] (no graph).
absl::StatusOr<nn::Tensor> BarycentricDensity(const nn::Tensor& u_z, const nn::Tensor& v_x, const nn::Tensor& cost,
                                              const ot::RegularizedDualOptions& options);

// The map-stage loss for mapped points f_z [n, d], density [n, m] and targets x [m, d].
absl::StatusOr<nn::Var> BarycentricFitLoss(const nn::Var& f_z, const nn::Tensor& density, const nn::Tensor& x);

}  // namespace otgen::apps::w2gan

#endif  // OTGEN_APPS_W2GAN_LOSSES_H_
