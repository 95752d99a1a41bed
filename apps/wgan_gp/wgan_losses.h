// The losses of Wasserstein GANs with a Lipschitz-constrained critic u (seed 004, Section 5):
// WGAN-GP (Gulrajani et al. 2017), WGAN-LP (Petzka et al. 2018) and the original WGAN with
// weight clipping (Arjovsky et al. 2017), for a critic that is an nn::Module. The formulas
// live in ot/lipschitz_penalty.h (shared with the W2GAN baselines of apps/w2gan):
//
//   L = (1/N) sum_i u(x_i) - (1/N) sum_i u(y_i) + lambda (1/N) sum_i R(||grad u(x^_i)||),
//   x^_i = t_i y_i + (1 - t_i) x_i,  R(s) = (s - 1)^2 (GP) or max(0, s - 1)^2 (LP),
//   L_G = -(1/N) sum_i u(G(z_i)),
//
// with y real and x generated. Weight clipping: after each critic update every critic
// parameter is clamped to [-c, c] (ClipParameters).
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
#include "ot/lipschitz_penalty.h"

namespace otgen::apps::wgan_gp {

// kNone (weight clipping, or no constraint), kGradient (WGAN-GP), kLipschitz (WGAN-LP).
using PenaltyKind = ot::LipschitzPenalty;

struct PenaltyOptions {
  PenaltyKind kind = PenaltyKind::kGradient;
  // lambda >= 0 (10 for images, 0.1 in the WGAN-GP toy experiments).
  float weight = 10.0f;
};

// loss, wasserstein (E u(y) - E u(x)), penalty, mean_gradient_norm: see ot/lipschitz_penalty.h.
using CriticLossTerms = ot::W1CriticTerms;

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
