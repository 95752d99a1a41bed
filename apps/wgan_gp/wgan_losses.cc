#include "apps/wgan_gp/wgan_losses.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "nn/ops.h"
#include "nn/status_macros.h"

namespace otgen::apps::wgan_gp {

using nn::Var;

namespace {

ot::Critic ModuleCritic(nn::Module& critic) {
  return [&critic](const Var& x) { return critic.Forward(x); };
}

}  // namespace

absl::StatusOr<nn::Tensor> Interpolate(const nn::Tensor& real, const nn::Tensor& fake, const nn::Tensor& t) {
  return ot::InterpolateRows(real, fake, t);
}

absl::StatusOr<Var> CriticValues(nn::Module& critic, const Var& x) {
  return ot::CriticValues(ModuleCritic(critic), x);
}

absl::StatusOr<Var> GradientPenalty(nn::Module& critic, const nn::Tensor& x, PenaltyKind kind, nn::Tensor* norms) {
  return ot::GradientNormPenalty(ModuleCritic(critic), x, kind, norms);
}

absl::StatusOr<CriticLossTerms> CriticLoss(nn::Module& critic, const Var& real, const Var& fake, const nn::Tensor& t,
                                           const PenaltyOptions& options) {
  return ot::W1CriticLoss(ModuleCritic(critic), real, fake, t, options.kind, options.weight);
}

absl::StatusOr<Var> GeneratorLoss(nn::Module& critic, const Var& fake) {
  return ot::W1GeneratorLoss(ModuleCritic(critic), fake);
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
