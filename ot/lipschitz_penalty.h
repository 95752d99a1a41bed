// The Kantorovich-Rubinstein dual of W1 with a softly 1-Lipschitz critic u: the losses of
// WGAN-GP (Gulrajani et al. 2017), WGAN-LP (Petzka et al. 2018) and the original WGAN with
// weight clipping (Arjovsky et al. 2017), as seed 004 Section 5 states them and seeds 001/002
// use them as baselines.
//
//   W1(P_r, P_g) = sup_{Lip(u) <= 1} E_{y ~ P_r} u(y) - E_{x ~ P_g} u(x).
//
// Critic loss (seed 004 Algorithm 1, step 4; minimized over the critic's parameters), on a
// batch of real points y_i, generated points x_i and t_i ~ U[0, 1]:
//
//   L = (1/N) sum_i u(x_i) - (1/N) sum_i u(y_i) + lambda (1/N) sum_i R(||grad u(x^_i)||),
//   x^_i = t_i y_i + (1 - t_i) x_i                (random interpolates, one t per example)
//
//   kGradient  R(s) = (s - 1)^2                    (WGAN-GP, two-sided)
//   kLipschitz R(s) = max(0, s - 1)^2              (WGAN-LP, one-sided)
//   kNone      no penalty (weight clipping is the caller's step after the update)
//
// ||.|| is the Euclidean norm over all coordinates of one example (784 for a 1x28x28 image),
// computed as sqrt(sum g^2 + 1e-12) so that it is differentiable where the gradient vanishes.
// The penalty differentiates grad u(x^) (nn::Grad with create_graph) with respect to the
// critic's parameters: second-order autodiff through nn/autograd.h.
// Generator loss (seed 004 Algorithm 2; minimized over the generator):
//   L_G = -(1/N) sum_i u(G(z_i)).
//
// Shapes: real / fake {N, example shape...}, t {N}; a Critic maps {N, ...} to {N} or {N, 1}.
//
//   otgen::ot::Critic u = [&](const nn::Var& x) { return critic_net.Forward(x); };
//   OTGEN_ASSIGN_OR_RETURN(otgen::ot::W1CriticTerms terms,
//       otgen::ot::W1CriticLoss(u, real, fake, t, otgen::ot::LipschitzPenalty::kGradient, 10.0f));
//   nn::Backward(terms.loss);
#ifndef OTGEN_OT_LIPSCHITZ_PENALTY_H_
#define OTGEN_OT_LIPSCHITZ_PENALTY_H_

#include <functional>

#include "absl/status/statusor.h"
#include "nn/autograd.h"
#include "nn/tensor.h"

namespace otgen::ot {

// A critic u: points {N, ...} -> values {N} or {N, 1}. Errors (e.g. a network's shape
// checks) pass through the losses below.
using Critic = std::function<absl::StatusOr<nn::Var>(const nn::Var&)>;

enum class LipschitzPenalty {
  kNone,       // no penalty (weight clipping, or no constraint)
  kGradient,   // WGAN-GP: (||grad u|| - 1)^2
  kLipschitz,  // WGAN-LP: max(0, ||grad u|| - 1)^2
};

// u(x) as a {N} vector: InvalidArgumentError naming "critic" unless the critic returns {N} or
// {N, 1} for N = x.dim(0).
absl::StatusOr<nn::Var> CriticValues(const Critic& critic, const nn::Var& x);

// x^_i = t_i a_i + (1 - t_i) b_i for a, b {N, ...} of equal shape and t {N} (no graph: the
// interpolates are data). InvalidArgumentError naming the shapes otherwise.
absl::StatusOr<nn::Tensor> InterpolateRows(const nn::Tensor& a, const nn::Tensor& b, const nn::Tensor& t);

// (1/N) sum_i R(||grad u(points_i)||), differentiable in the critic's parameters; 0 for kNone.
// `norms`, if given, receives the N gradient norms (empty for kNone).
absl::StatusOr<nn::Var> GradientNormPenalty(const Critic& critic, const nn::Tensor& points, LipschitzPenalty kind,
                                            nn::Tensor* norms = nullptr);

struct W1CriticTerms {
  nn::Var loss;         // the scalar L above
  nn::Var wasserstein;  // E u(y) - E u(x) (real minus fake), scalar: the critic's W1 estimate
  nn::Var penalty;      // (1/N) sum_i R(||grad u(x^_i)||), scalar (0 for kNone)
  double mean_gradient_norm = 0.0;  // (1/N) sum_i ||grad u(x^_i)|| (0 for kNone)
};

// L above, with t {N} the interpolation weights. InvalidArgumentError for a negative or
// non-finite weight ("penalty weight"), mismatched shapes, or a critic of the wrong output shape.
absl::StatusOr<W1CriticTerms> W1CriticLoss(const Critic& critic, const nn::Var& real, const nn::Var& fake,
                                           const nn::Tensor& t, LipschitzPenalty kind, float weight);

// -(1/N) sum_i u(fake_i).
absl::StatusOr<nn::Var> W1GeneratorLoss(const Critic& critic, const nn::Var& fake);

}  // namespace otgen::ot

#endif  // OTGEN_OT_LIPSCHITZ_PENALTY_H_
