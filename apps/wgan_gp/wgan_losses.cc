#include "apps/wgan_gp/wgan_losses.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "nn/ops.h"
#include "nn/status_macros.h"

namespace otgen::apps::wgan_gp {

using nn::Var;

absl::StatusOr<nn::Tensor> Interpolate(const nn::Tensor& real, const nn::Tensor& fake, const nn::Tensor& t) {
  if (real.shape() != fake.shape() || real.rank() < 1 || t.rank() != 1 || t.dim(0) != real.dim(0)) {
    return absl::InvalidArgumentError(absl::StrCat("Interpolate: expected real and fake of equal shape [N, ...] and t [N]; got ",
                                                   nn::ShapeToString(real.shape()), ", ", nn::ShapeToString(fake.shape()),
                                                   ", ", nn::ShapeToString(t.shape())));
  }
  nn::Tensor out = nn::Tensor::Empty(real.shape());
  const int64_t n = real.dim(0);
  const int64_t per = n == 0 ? 0 : real.numel() / n;
  for (int64_t i = 0; i < n; ++i) {
    const float w = t.data()[i];
    const float* r = real.data() + i * per;
    const float* f = fake.data() + i * per;
    float* o = out.data() + i * per;
    for (int64_t k = 0; k < per; ++k) o[k] = w * r[k] + (1.0f - w) * f[k];
  }
  return out;
}

absl::StatusOr<Var> CriticValues(nn::Module& critic, const Var& x) {
  OTGEN_ASSIGN_OR_RETURN(Var u, critic.Forward(x));
  if (u.rank() == 1 && u.dim(0) == x.dim(0)) return u;
  if (u.rank() == 2 && u.dim(0) == x.dim(0) && u.dim(1) == 1) return nn::Reshape(u, {x.dim(0)});
  return absl::InvalidArgumentError(absl::StrCat("critic: expected outputs of shape [", x.dim(0), ", 1], got ",
                                                 nn::ShapeToString(u.shape())));
}

absl::StatusOr<Var> GradientPenalty(nn::Module& critic, const nn::Tensor& x, PenaltyKind kind, nn::Tensor* norms) {
  if (kind == PenaltyKind::kNone) return Var::Constant(nn::Tensor::Scalar(0.0f));
  Var x_var(x, /*requires_grad=*/true);
  OTGEN_ASSIGN_OR_RETURN(Var u, CriticValues(critic, x_var));
  std::vector<Var> g = nn::Grad({nn::SumAll(u)}, {x_var}, {}, {.create_graph = true, .allow_unused = true});
  Var grad = g[0].defined() ? g[0] : Var::Constant(nn::Tensor::Zeros(x.shape()));
  // sqrt(sum g^2 + eps) per example: differentiable where the gradient vanishes.
  Var norm = nn::RowNorm(grad, 1e-12f);
  if (norms != nullptr) *norms = norm.value().Clone();
  Var excess = nn::AddScalar(norm, -1.0f);
  if (kind == PenaltyKind::kLipschitz) excess = nn::Relu(excess);
  return nn::MeanAll(nn::Square(excess));
}

absl::StatusOr<CriticLossTerms> CriticLoss(nn::Module& critic, const Var& real, const Var& fake, const nn::Tensor& t,
                                           const PenaltyOptions& options) {
  if (!(options.weight >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat("penalty weight: expected >= 0, got ", options.weight));
  }
  CriticLossTerms terms;
  OTGEN_ASSIGN_OR_RETURN(Var u_real, CriticValues(critic, real));
  OTGEN_ASSIGN_OR_RETURN(Var u_fake, CriticValues(critic, fake));
  terms.wasserstein = nn::Sub(nn::MeanAll(u_real), nn::MeanAll(u_fake));
  Var loss = nn::Neg(terms.wasserstein);
  if (options.kind != PenaltyKind::kNone) {
    OTGEN_ASSIGN_OR_RETURN(nn::Tensor x_hat, Interpolate(real.value(), fake.value(), t));
    nn::Tensor norms;
    OTGEN_ASSIGN_OR_RETURN(terms.penalty, GradientPenalty(critic, x_hat, options.kind, &norms));
    double sum = 0;
    for (int64_t i = 0; i < norms.numel(); ++i) sum += norms.data()[i];
    terms.mean_gradient_norm = norms.numel() > 0 ? sum / static_cast<double>(norms.numel()) : 0.0;
    loss = nn::Add(loss, nn::MulScalar(terms.penalty, options.weight));
  } else {
    terms.penalty = Var::Constant(nn::Tensor::Scalar(0.0f));
  }
  terms.loss = loss;
  return terms;
}

absl::StatusOr<Var> GeneratorLoss(nn::Module& critic, const Var& fake) {
  OTGEN_ASSIGN_OR_RETURN(Var u, CriticValues(critic, fake));
  return nn::Neg(nn::MeanAll(u));
}

void ClipParameters(const std::vector<Var>& parameters, float c) {
  for (const Var& p : parameters) {
    nn::Tensor value = p.value();
    float* v = value.data();
    for (int64_t k = 0; k < value.numel(); ++k) v[k] = std::clamp(v[k], -c, c);
  }
}

void SetGradients(const Var& loss, std::vector<Var>& parameters) {
  std::vector<Var> grads = nn::Grad({loss}, parameters, {}, {.allow_unused = true});
  for (size_t i = 0; i < parameters.size(); ++i) {
    if (grads[i].defined()) {
      parameters[i].set_grad(grads[i].value());
    } else {
      parameters[i].ZeroGrad();
    }
  }
}

}  // namespace otgen::apps::wgan_gp
