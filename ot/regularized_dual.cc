#include "ot/regularized_dual.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "nn/ops.h"

namespace otgen::ot {

using nn::Var;

absl::StatusOr<Regularizer> ParseRegularizer(const std::string& name) {
  if (name == "kl" || name == "KL") return Regularizer::kKL;
  if (name == "l2" || name == "L2") return Regularizer::kL2;
  return absl::InvalidArgumentError(absl::StrCat("regularizer: expected 'kl' or 'l2', got '", name, "'"));
}

absl::Status RegularizedDualOptions::Validate() const {
  if (!(lambda > 0) || !std::isfinite(lambda)) {
    return absl::InvalidArgumentError(absl::StrCat("lambda: expected a finite value > 0, got ", lambda));
  }
  return absl::OkStatus();
}

absl::StatusOr<Var> Violation(const Var& phi, const Var& psi, const Var& cost) {
  if (!phi.defined() || !psi.defined() || !cost.defined()) {
    return absl::InvalidArgumentError("Violation: phi, psi and cost must be defined");
  }
  if (cost.rank() != 2 || phi.rank() != 1 || psi.rank() != 1 || phi.dim(0) != cost.dim(0) ||
      psi.dim(0) != cost.dim(1)) {
    return absl::InvalidArgumentError(absl::StrCat("Violation: expected phi [n], psi [m], cost [n, m]; got phi ",
                                                   nn::ShapeToString(phi.shape()), ", psi ",
                                                   nn::ShapeToString(psi.shape()), ", cost ",
                                                   nn::ShapeToString(cost.shape())));
  }
  // phi_i - psi_j - C_ij with broadcasting: [n, 1] - [m] - [n, m].
  return nn::Sub(nn::Sub(nn::Reshape(phi, {phi.dim(0), 1}), psi), cost);
}

Var FLambda(const Var& v, const RegularizedDualOptions& options) {
  const float lambda = options.lambda;
  if (options.regularizer == Regularizer::kKL) {
    // (lambda / e) exp(v / lambda) = lambda exp(v / lambda - 1)
    return nn::MulScalar(nn::Exp(nn::AddScalar(nn::MulScalar(v, 1.0f / lambda), -1.0f)), lambda);
  }
  return nn::MulScalar(nn::Square(nn::Relu(v)), 0.5f / lambda);
}

Var PseudoPlanDensity(const Var& v, const RegularizedDualOptions& options) {
  const float lambda = options.lambda;
  if (options.regularizer == Regularizer::kKL) {
    return nn::Exp(nn::AddScalar(nn::MulScalar(v, 1.0f / lambda), -1.0f));
  }
  return nn::MulScalar(nn::Relu(v), 1.0f / lambda);
}

absl::StatusOr<Var> RegularizedDualObjective(const Var& phi, const Var& psi, const Var& cost,
                                             const RegularizedDualOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  absl::StatusOr<Var> v = Violation(phi, psi, cost);
  if (!v.ok()) return v.status();
  return nn::Sub(nn::Sub(nn::MeanAll(phi), nn::MeanAll(psi)), nn::MeanAll(FLambda(*v, options)));
}

absl::StatusOr<Var> PseudoPlanGeneratorLoss(const Var& cost, const nn::Tensor& density) {
  if (!cost.defined() || !density.defined() || cost.shape() != density.shape()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PseudoPlanGeneratorLoss: cost ", cost.defined() ? nn::ShapeToString(cost.shape()) : "undefined",
        " and density ", density.defined() ? nn::ShapeToString(density.shape()) : "undefined",
        " must have the same shape"));
  }
  return nn::MeanAll(nn::Mul(cost, Var::Constant(density)));
}

absl::StatusOr<double> TerminationStatistic(const nn::Tensor& density) {
  if (density.rank() != 2 || density.dim(0) != density.dim(1) || density.dim(0) == 0) {
    return absl::InvalidArgumentError(absl::StrCat("TerminationStatistic: expected a non-empty square density [S, S], got ",
                                                   nn::ShapeToString(density.shape())));
  }
  const int64_t s = density.dim(0);
  double sum = 0;
  for (int64_t k = 0; k < s; ++k) sum += density.data()[k * s + k];
  return sum / static_cast<double>(s);
}

absl::StatusOr<double> RegularizedPrimalValue(const nn::Tensor& density, const nn::Tensor& cost,
                                              const RegularizedDualOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  if (density.shape() != cost.shape() || density.rank() != 2) {
    return absl::InvalidArgumentError(absl::StrCat("RegularizedPrimalValue: density ",
                                                   nn::ShapeToString(density.shape()), " and cost ",
                                                   nn::ShapeToString(cost.shape()), " must be equal [n, m]"));
  }
  const double nm = static_cast<double>(density.numel());
  double transport = 0, reg = 0;
  for (int64_t k = 0; k < density.numel(); ++k) {
    const double m = density.data()[k];
    transport += m * cost.data()[k] / nm;
    if (options.regularizer == Regularizer::kKL) {
      if (m > 0) reg += m * std::log(m) / nm;  // KL(pi | q x p) = E_{qxp}[m log m]
    } else {
      reg += 0.5 * m * m / nm;  // 1/2 int pi^2/(q p) = 1/2 E_{qxp}[m^2]
    }
  }
  return transport + options.lambda * reg;
}

}  // namespace otgen::ot
