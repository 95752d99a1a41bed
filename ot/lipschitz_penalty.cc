#include "ot/lipschitz_penalty.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nn/ops.h"
#include "nn/status_macros.h"

namespace otgen::ot {

using nn::Var;

namespace {

std::string ShapeOf(const Var& v) { return v.defined() ? nn::ShapeToString(v.shape()) : "undefined"; }

absl::Status CheckBatches(const Var& real, const Var& fake) {
  if (!real.defined() || !fake.defined() || real.rank() < 1 || real.dim(0) < 1 || real.shape() != fake.shape()) {
    return absl::InvalidArgumentError(absl::StrCat("real / fake: expected non-empty batches {N, ...} of equal shape, got ",
                                                   ShapeOf(real), " and ", ShapeOf(fake)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Var> CriticValues(const Critic& critic, const Var& x) {
  OTGEN_ASSIGN_OR_RETURN(Var u, critic(x));
  if (u.defined() && u.rank() == 1 && u.dim(0) == x.dim(0)) return u;
  if (u.defined() && u.rank() == 2 && u.dim(0) == x.dim(0) && u.dim(1) == 1) return nn::Reshape(u, {x.dim(0)});
  return absl::InvalidArgumentError(
      absl::StrCat("critic: expected values of shape [", x.dim(0), "] or [", x.dim(0), ", 1], got ", ShapeOf(u)));
}

absl::StatusOr<nn::Tensor> InterpolateRows(const nn::Tensor& a, const nn::Tensor& b, const nn::Tensor& t) {
  if (!a.defined() || !b.defined() || !t.defined() || a.shape() != b.shape() || a.rank() < 1 || t.rank() != 1 ||
      t.dim(0) != a.dim(0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "InterpolateRows: expected a and b of equal shape {N, ...} and t {N}; got ",
        a.defined() ? nn::ShapeToString(a.shape()) : "undefined", ", ",
        b.defined() ? nn::ShapeToString(b.shape()) : "undefined", ", ",
        t.defined() ? nn::ShapeToString(t.shape()) : "undefined"));
  }
  nn::Tensor out = nn::Tensor::Empty(a.shape());
  const int64_t n = a.dim(0);
  const int64_t per = n == 0 ? 0 : a.numel() / n;
  for (int64_t i = 0; i < n; ++i) {
    const float w = t.data()[i];
    const float* pa = a.data() + i * per;
    const float* pb = b.data() + i * per;
    float* o = out.data() + i * per;
    for (int64_t k = 0; k < per; ++k) o[k] = w * pa[k] + (1.0f - w) * pb[k];
  }
  return out;
}

absl::StatusOr<Var> GradientNormPenalty(const Critic& critic, const nn::Tensor& points, LipschitzPenalty kind,
                                        nn::Tensor* norms) {
  if (norms != nullptr) *norms = nn::Tensor();
  if (kind == LipschitzPenalty::kNone) return Var::Constant(nn::Tensor::Scalar(0.0f));
  if (!points.defined() || points.rank() < 1 || points.dim(0) < 1) {
    return absl::InvalidArgumentError(absl::StrCat("points: expected a non-empty batch {N, ...}, got ",
                                                   points.defined() ? nn::ShapeToString(points.shape()) : "undefined"));
  }
  Var x(points, /*requires_grad=*/true);
  OTGEN_ASSIGN_OR_RETURN(Var u, CriticValues(critic, x));
  std::vector<Var> g = nn::Grad({nn::SumAll(u)}, {x}, {}, {.create_graph = true, .allow_unused = true});
  // A critic that ignores its input has gradient 0 (norm sqrt(1e-12)).
  const Var grad = g[0].defined() ? g[0] : Var::Constant(nn::Tensor::Zeros(points.shape()));
  const Var norm = nn::RowNorm(grad, 1e-12f);
  if (norms != nullptr) *norms = norm.value().Clone();
  Var excess = nn::AddScalar(norm, -1.0f);
  if (kind == LipschitzPenalty::kLipschitz) excess = nn::Relu(excess);
  return nn::MeanAll(nn::Square(excess));
}

absl::StatusOr<W1CriticTerms> W1CriticLoss(const Critic& critic, const Var& real, const Var& fake, const nn::Tensor& t,
                                           LipschitzPenalty kind, float weight) {
  if (!(weight >= 0.0f) || !std::isfinite(weight)) {
    return absl::InvalidArgumentError(absl::StrCat("penalty weight: expected a finite value >= 0, got ", weight));
  }
  OTGEN_RETURN_IF_ERROR(CheckBatches(real, fake));
  W1CriticTerms terms;
  OTGEN_ASSIGN_OR_RETURN(Var u_real, CriticValues(critic, real));
  OTGEN_ASSIGN_OR_RETURN(Var u_fake, CriticValues(critic, fake));
  terms.wasserstein = nn::Sub(nn::MeanAll(u_real), nn::MeanAll(u_fake));
  Var loss = nn::Neg(terms.wasserstein);
  if (kind != LipschitzPenalty::kNone) {
    OTGEN_ASSIGN_OR_RETURN(nn::Tensor x_hat, InterpolateRows(real.value(), fake.value(), t));
    nn::Tensor norms;
    OTGEN_ASSIGN_OR_RETURN(terms.penalty, GradientNormPenalty(critic, x_hat, kind, &norms));
    double sum = 0.0;
    for (int64_t i = 0; i < norms.numel(); ++i) sum += norms.data()[i];
    terms.mean_gradient_norm = norms.numel() > 0 ? sum / static_cast<double>(norms.numel()) : 0.0;
    loss = nn::Add(loss, nn::MulScalar(terms.penalty, weight));
  } else {
    terms.penalty = Var::Constant(nn::Tensor::Scalar(0.0f));
  }
  terms.loss = loss;
  return terms;
}

absl::StatusOr<Var> W1GeneratorLoss(const Critic& critic, const Var& fake) {
  if (!fake.defined() || fake.rank() < 1 || fake.dim(0) < 1) {
    return absl::InvalidArgumentError(absl::StrCat("fake: expected a non-empty batch {N, ...}, got ", ShapeOf(fake)));
  }
  OTGEN_ASSIGN_OR_RETURN(Var u, CriticValues(critic, fake));
  return nn::Neg(nn::MeanAll(u));
}

}  // namespace otgen::ot
