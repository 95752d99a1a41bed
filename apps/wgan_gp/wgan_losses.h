// The losses of Wasserstein GANs with a Lipschitz-constrained critic u (seed 004, Section 5):
// WGAN-GP (Gulrajani et al. 2017), WGAN-LP (Petzka et al. 2018) and the original WGAN with
// weight clipping (Arjovsky et al. 2017).
//
// Critic loss (seed 004, Algorithm 1, step 4; minimized over the critic's parameters), on a
// batch of real points y_i, generated points x_i = G(z_i) and t_i ~ U[0, 1]:
//
//   L = (1/N) sum_i u(x_i) - (1/N) sum_i u(y_i) + lambda (1/N) sum_i R(||grad u(x^_i)||),
//   x^_i = t_i y_i + (1 - t_i) x_i            (random interpolates, per sample)
//
//   WGAN-GP  R(s) = (s - 1)^2                  (two-sided gradient penalty)
//   WGAN-LP  R(s) = max(0, s - 1)^2            (one-sided Lipschitz penalty)
//   clipping no penalty; after each critic update every critic parameter is clamped to
//            [-c, c] (ClipParameters).
//
// The penalty differentiates the critic's input gradient grad u(x^) (computed with
// Grad(..., create_graph = true)) with respect to the critic's parameters: a second-order
// derivative through nn/autograd.h. ||.|| is the Euclidean norm over all coordinates of one
// example (784 for a 1x28x28 image), computed as sqrt(sum g^2 + 1e-12) so that it is
// differentiable at 0.
// Generator loss (Algorithm 2; minimized over the generator's parameters):
//   L_G = -(1/N) sum_i u(G(z_i)).
// The critic's estimate of W1 is E u(y) - E u(G(z)) = -(L - lambda R-term).
//
// Shapes: real / fake {N, example shape...}, t {N}; the critic maps {N, ...} to {N, 1} or {N}.
//
//   OTGEN_ASSIGN_OR_RETURN(CriticLossTerms terms,
//       CriticLoss(critic, Var::Constant(real), Var::Constant(fake), t,
//                  {.kind = PenaltyKind::kGradient, .weight = 10.0f}));
//   std::vector<Var> grads = Grad({terms.loss}, critic.Parameters());
#ifndef OTGEN_APPS_WGAN_GP_WGAN_LOSSES_H_
#define OTGEN_APPS_WGAN_GP_WGAN_LOSSES_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nn/autograd.h"
#include "nn/module.h"
#include "nn/random.h"
#include "nn/tensor.h"

namespace otgen::apps::wgan_gp {

enum class PenaltyKind {
  kNone,       // weight clipping (or no constraint at all)
  kGradient,   // WGAN-GP: (||grad u|| - 1)^2
  kLipschitz,  // WGAN-LP: max(0, ||grad u|| - 1)^2
};

struct PenaltyOptions {
  PenaltyKind kind = PenaltyKind::kGradient;
  // lambda >= 0 (10 for images, 0.1 in the WGAN-GP toy experiments).
  float weight = 10.0f;
};

struct CriticLossTerms {
  nn::Var loss;         // the scalar L above
  nn::Var wasserstein;  // E u(y) - E u(x), scalar
  nn::Var penalty;      // (1/N) sum_i R(||grad u(x^_i)||), scalar (0 for kNone)
  double mean_gradient_norm = 0.0;  // (1/N) sum_i ||grad u(x^_i)|| (0 for kNone)
};

// x^_i = t_i real_i + (1 - t_i) fake_i (no graph: both are treated as data).
absl::StatusOr<nn::Tensor> Interpolate(const nn::Tensor& real, const nn::Tensor& fake, const nn::Tensor& t);

// The critic's output as {N}; InvalidArgument unless it is {N} or {N, 1}.
absl::StatusOr<nn::Var> CriticValues(nn::Module& critic, const nn::Var& x);

// (1/N) sum_i R(||grad u(x_i)||) at the given points, differentiable in the critic's
// parameters; `norms` (optional) receives the N gradient norms.
absl::StatusOr<nn::Var> GradientPenalty(nn::Module& critic, const nn::Tensor& x, PenaltyKind kind,
                                        nn::Tensor* norms = nullptr);

// The critic loss L at interpolation weights t (see the header comment).
absl::StatusOr<CriticLossTerms> CriticLoss(nn::Module& critic, const nn::Var& real, const nn::Var& fake,
                                           const nn::Tensor& t, const PenaltyOptions& options);

// L_G = -mean u(fake), differentiable through `fake`.
absl::StatusOr<nn::Var> GeneratorLoss(nn::Module& critic, const nn::Var& fake);

// Clamps every entry of every parameter to [-c, c] in place (c > 0).
void ClipParameters(const std::vector<nn::Var>& parameters, float c);

// Sets parameters[k].grad() to d loss / d parameters[k] (computed with Grad, so nothing else,
// e.g. a leaf input requiring grad, is differentiated); unreached parameters get no gradient.
void SetGradients(const nn::Var& loss, std::vector<nn::Var>& parameters);

}  // namespace otgen::apps::wgan_gp

#endif  // OTGEN_APPS_WGAN_GP_WGAN_LOSSES_H_
