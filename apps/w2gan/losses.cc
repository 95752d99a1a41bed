#include "apps/w2gan/losses.h"

#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "nn/ops.h"
#include "nn/status_macros.h"

namespace otgen::apps::w2gan {
namespace {

using nn::Var;

std::string ShapeOf(const Var& v) { return v.defined() ? nn::ShapeToString(v.shape()) : "undefined"; }

absl::Status CheckBatch(const char* what, const Var& v, const Var& like) {
  if (!v.defined() || v.rank() != 2 || v.dim(0) < 1 || v.dim(1) < 1 || (like.defined() && v.shape() != like.shape())) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": expected a non-empty [B, d] batch",
                     like.defined() ? absl::StrCat(" of shape ", ShapeOf(like)) : std::string(), ", got ", ShapeOf(v)));
  }
  return absl::OkStatus();
}

absl::Status CheckValues(const char* what, const Var& v, int64_t batch) {
  if (!v.defined() || v.rank() != 1 || v.dim(0) != batch) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": a potential must map [B, d] to [B] values, expected [", batch, "], got ", ShapeOf(v)));
  }
  return absl::OkStatus();
}

bool Finite(float v) { return std::isfinite(v); }

// Evaluates `f` once on the rows of a and b stacked ([2B, d]) and splits the values.
absl::Status EvaluateStacked(const ot::Potential& f, const Var& a, const Var& b, const char* what, Var* fa, Var* fb) {
  const int64_t n = a.dim(0);
  const Var values = f(nn::Concat({a, b}, 0));
  OTGEN_RETURN_IF_ERROR(CheckValues(what, values, 2 * n));
  *fa = nn::Slice(values, 0, 0, n);
  *fb = nn::Slice(values, 0, n, 2 * n);
  return absl::OkStatus();
}

// Sets t ~ U[0, 1) per row and returns t a + (1 - t) b.
Var InterpolateRows(const Var& a, const Var& b, nn::Rng& rng) {
  const Var t = Var::Constant(nn::Tensor::Uniform({a.dim(0), 1}, 0.0f, 1.0f, rng));
  return nn::Add(b, nn::Mul(t, nn::Sub(a, b)));
}

}  // namespace

absl::Status W2CriticLossOptions::Validate() const {
  if (!(lambda_ineq > 0.0f) || !Finite(lambda_ineq)) {
    return absl::InvalidArgumentError(absl::StrCat("lambda_ineq: expected a finite value > 0, got ", lambda_ineq));
  }
  if (!ineq_on_pairs && !ineq_on_interpolates) {
    return absl::InvalidArgumentError(
        "ineq_on_pairs, ineq_on_interpolates: at least one must be true (the c-inequality must be enforced somewhere)");
  }
  if (!(lambda_eq >= 0.0f) || !Finite(lambda_eq)) {
    return absl::InvalidArgumentError(absl::StrCat("lambda_eq: expected a finite value >= 0, got ", lambda_eq));
  }
  if (!(lambda_eps >= 0.0f) || !Finite(lambda_eps)) {
    return absl::InvalidArgumentError(absl::StrCat("lambda_eps: expected a finite value >= 0, got ", lambda_eps));
  }
  return absl::OkStatus();
}

absl::StatusOr<W2CriticTerms> W2CriticLoss(const W2Potentials& potentials, const W2CriticBatch& batch, nn::Rng& rng,
                                           const W2CriticLossOptions& options) {
  OTGEN_RETURN_IF_ERROR(options.Validate());
  if (!potentials.phi || !potentials.psi) {
    return absl::InvalidArgumentError("W2CriticLoss potentials: phi and psi must be set");
  }
  if (options.lambda_eps > 0.0f && !potentials.eps) {
    return absl::InvalidArgumentError(
        "lambda_eps: > 0 needs the epsilon parameterization (W2Potentials::eps), which is not set");
  }
  OTGEN_RETURN_IF_ERROR(CheckBatch("W2CriticLoss generated", batch.generated, Var()));
  OTGEN_RETURN_IF_ERROR(CheckBatch("W2CriticLoss data", batch.data, batch.generated));
  if (options.ineq_on_interpolates) {
    OTGEN_RETURN_IF_ERROR(CheckBatch("W2CriticLoss generated2", batch.generated2, batch.generated));
    OTGEN_RETURN_IF_ERROR(CheckBatch("W2CriticLoss data2", batch.data2, batch.generated));
  }
  const Var& y = batch.generated;
  const Var& x = batch.data;
  const int64_t n = y.dim(0);

  // phi on [y; a] and psi on [x; b] in one pass each when interpolates are used.
  Var phi_y, psi_x, phi_a, psi_b, a, b;
  if (options.ineq_on_interpolates) {
    a = InterpolateRows(y, x, rng);
    b = InterpolateRows(batch.generated2, batch.data2, rng);
    OTGEN_RETURN_IF_ERROR(EvaluateStacked(potentials.phi, y, a, "W2CriticLoss phi", &phi_y, &phi_a));
    OTGEN_RETURN_IF_ERROR(EvaluateStacked(potentials.psi, x, b, "W2CriticLoss psi", &psi_x, &psi_b));
  } else {
    phi_y = potentials.phi(y);
    psi_x = potentials.psi(x);
    OTGEN_RETURN_IF_ERROR(CheckValues("W2CriticLoss phi", phi_y, n));
    OTGEN_RETURN_IF_ERROR(CheckValues("W2CriticLoss psi", psi_x, n));
  }

  W2CriticTerms terms;
  const Var dual = nn::MeanAll(nn::Add(phi_y, psi_x));
  terms.dual = dual.item();
  Var ineq;
  if (options.ineq_on_pairs) {
    OTGEN_ASSIGN_OR_RETURN(ineq, ot::InequalityPenalty(phi_y, psi_x, y, x));
  }
  if (options.ineq_on_interpolates) {
    OTGEN_ASSIGN_OR_RETURN(Var interp, ot::InequalityPenalty(phi_a, psi_b, a, b));
    ineq = ineq.defined() ? nn::Add(ineq, interp) : interp;
  }
  terms.ineq = ineq.item();
  Var loss = nn::Add(nn::Neg(dual), nn::MulScalar(ineq, options.lambda_ineq));
  if (options.lambda_eq > 0.0f) {
    OTGEN_ASSIGN_OR_RETURN(Var eq, ot::EqualityPenalty(potentials.phi, potentials.psi, y, x));
    terms.eq = eq.item();
    loss = nn::Add(loss, nn::MulScalar(eq, options.lambda_eq));
  }
  if (options.lambda_eps > 0.0f) {
    const Var eps_x = potentials.eps(x);
    OTGEN_RETURN_IF_ERROR(CheckValues("W2CriticLoss eps", eps_x, n));
    OTGEN_ASSIGN_OR_RETURN(Var eps, ot::EpsilonPenalty(eps_x));
    terms.eps = eps.item();
    loss = nn::Add(loss, nn::MulScalar(eps, options.lambda_eps));
  }
  terms.loss = loss;
  return terms;
}

absl::StatusOr<Var> W2GeneratorLoss(const ot::Potential& phi, const Var& generated) {
  OTGEN_RETURN_IF_ERROR(CheckBatch("W2GeneratorLoss generated", generated, Var()));
  const Var values = phi(generated);
  OTGEN_RETURN_IF_ERROR(CheckValues("W2GeneratorLoss phi", values, generated.dim(0)));
  return nn::MeanAll(values);
}

absl::StatusOr<WganCriticTerms> WganCriticLoss(const ot::Potential& critic, const Var& real, const Var& fake,
                                               nn::Rng& rng, GradientPenalty kind, float lambda_gp) {
  if (!(lambda_gp >= 0.0f) || !Finite(lambda_gp)) {
    return absl::InvalidArgumentError(absl::StrCat("lambda_gp: expected a finite value >= 0, got ", lambda_gp));
  }
  OTGEN_RETURN_IF_ERROR(CheckBatch("WganCriticLoss real", real, Var()));
  OTGEN_RETURN_IF_ERROR(CheckBatch("WganCriticLoss fake", fake, real));
  const nn::Tensor t = nn::Tensor::Uniform({real.dim(0)}, 0.0f, 1.0f, rng);
  OTGEN_ASSIGN_OR_RETURN(
      ot::W1CriticTerms w1,
      ot::W1CriticLoss([&critic](const Var& x) -> absl::StatusOr<Var> { return critic(x); }, real, fake, t,
                       lambda_gp > 0.0f ? kind : ot::LipschitzPenalty::kNone, lambda_gp));
  WganCriticTerms terms;
  terms.loss = w1.loss;
  terms.wasserstein = w1.wasserstein.item();
  terms.penalty = w1.penalty.item();
  return terms;
}

absl::StatusOr<Var> WganGeneratorLoss(const ot::Potential& critic, const Var& generated) {
  OTGEN_RETURN_IF_ERROR(CheckBatch("WganGeneratorLoss generated", generated, Var()));
  return ot::W1GeneratorLoss([&critic](const Var& x) -> absl::StatusOr<Var> { return critic(x); }, generated);
}

absl::StatusOr<nn::Tensor> HalfSquaredDistances(const nn::Tensor& a, const nn::Tensor& b) {
  if (!a.defined() || !b.defined() || a.rank() != 2 || b.rank() != 2 || a.dim(1) != b.dim(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HalfSquaredDistances: expected [n, d] and [m, d] points, got ", a.defined() ? nn::ShapeToString(a.shape()) : "undefined",
        " and ", b.defined() ? nn::ShapeToString(b.shape()) : "undefined"));
  }
  const int64_t n = a.dim(0), m = b.dim(0), d = a.dim(1);
  nn::Tensor cost = nn::Tensor::Empty({n, m});
  const float* pa = a.data();
  const float* pb = b.data();
  float* pc = cost.data();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < m; ++j) {
      double s = 0.0;
      for (int64_t k = 0; k < d; ++k) {
        const double diff = static_cast<double>(pa[i * d + k]) - pb[j * d + k];
        s += diff * diff;
      }
      pc[i * m + j] = static_cast<float>(0.5 * s);
    }
  }
  return cost;
}

absl::StatusOr<Var> BarycentricDualLoss(const Var& u_z, const Var& v_x, const nn::Tensor& cost,
                                        const ot::RegularizedDualOptions& options) {
  OTGEN_ASSIGN_OR_RETURN(Var objective, ot::RegularizedDualObjective(u_z, nn::Neg(v_x), Var::Constant(cost), options));
  return nn::Neg(objective);
}

absl::StatusOr<nn::Tensor> BarycentricDensity(const nn::Tensor& u_z, const nn::Tensor& v_x, const nn::Tensor& cost,
                                              const ot::RegularizedDualOptions& options) {
  OTGEN_RETURN_IF_ERROR(options.Validate());
  nn::NoGradGuard no_grad;
  OTGEN_ASSIGN_OR_RETURN(Var violation, ot::Violation(Var::Constant(u_z), nn::Neg(Var::Constant(v_x)),
                                                      Var::Constant(cost)));
  return ot::PseudoPlanDensity(violation, options).value();
}

absl::StatusOr<Var> BarycentricFitLoss(const Var& f_z, const nn::Tensor& density, const nn::Tensor& x) {
  OTGEN_RETURN_IF_ERROR(CheckBatch("BarycentricFitLoss f_z", f_z, Var()));
  if (!x.defined() || x.rank() != 2 || x.dim(1) != f_z.dim(1) || x.dim(0) < 1) {
    return absl::InvalidArgumentError(absl::StrCat("BarycentricFitLoss x: expected [m, ", f_z.dim(1), "] targets, got ",
                                                   x.defined() ? nn::ShapeToString(x.shape()) : "undefined"));
  }
  const int64_t n = f_z.dim(0), m = x.dim(0);
  if (!density.defined() || density.shape() != nn::Shape{n, m}) {
    return absl::InvalidArgumentError(absl::StrCat("BarycentricFitLoss density: expected [", n, ", ", m, "], got ",
                                                   density.defined() ? nn::ShapeToString(density.shape()) : "undefined"));
  }
  // sum_ij m_ij ||f_i - x_j||^2 = sum_i w_i ||f_i||^2 - 2 sum_i f_i . (M x)_i + sum_j (sum_i m_ij) ||x_j||^2.
  const Var mv = Var::Constant(density);
  const Var xv = Var::Constant(x);
  const Var w = nn::Sum(mv, {1});                                  // [n]
  const Var w_col = nn::Sum(mv, {0});                              // [m]
  const Var f_sq = nn::Sum(nn::Square(f_z), {1});                  // [n]
  const Var x_sq = nn::Sum(nn::Square(xv), {1});                   // [m]
  const Var mx = nn::MatMul(mv, xv);                               // [n, d]
  const Var total = nn::Add(nn::Sub(nn::SumAll(nn::Mul(w, f_sq)), nn::MulScalar(nn::SumAll(nn::Mul(f_z, mx)), 2.0f)),
                            nn::SumAll(nn::Mul(w_col, x_sq)));
  return nn::MulScalar(total, 1.0f / static_cast<float>(n * m));
}

}  // namespace otgen::apps::w2gan
