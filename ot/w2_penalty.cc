#include "ot/w2_penalty.h"

#include "absl/strings/str_cat.h"
#include "nn/ops.h"

namespace otgen::ot {

using nn::Var;

namespace {

absl::Status CheckPoints(const char* what, const Var& x, const Var& y) {
  if (!x.defined() || !y.defined() || x.rank() != 2 || x.shape() != y.shape() || x.dim(0) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": expected two non-empty point batches of equal shape [B, d], got ",
                                                   x.defined() ? nn::ShapeToString(x.shape()) : "undefined", " and ",
                                                   y.defined() ? nn::ShapeToString(y.shape()) : "undefined"));
  }
  return absl::OkStatus();
}

absl::Status CheckValues(const char* what, const Var& v, int64_t batch) {
  if (!v.defined() || v.rank() != 1 || v.dim(0) != batch) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": expected values of shape [", batch, "], got ",
                                                   v.defined() ? nn::ShapeToString(v.shape()) : "undefined"));
  }
  return absl::OkStatus();
}

// ||a_i - b_i||^2 / 2, shape [B].
Var HalfSquaredDistance(const Var& a, const Var& b) {
  return nn::MulScalar(nn::Sum(nn::Square(nn::Sub(a, b)), {1}), 0.5f);
}

}  // namespace

absl::StatusOr<Var> InequalityPenalty(const Var& phi_x, const Var& psi_y, const Var& x, const Var& y) {
  if (absl::Status s = CheckPoints("InequalityPenalty x, y", x, y); !s.ok()) return s;
  if (absl::Status s = CheckValues("InequalityPenalty phi_x", phi_x, x.dim(0)); !s.ok()) return s;
  if (absl::Status s = CheckValues("InequalityPenalty psi_y", psi_y, x.dim(0)); !s.ok()) return s;
  Var violation = nn::Sub(nn::Add(phi_x, psi_y), HalfSquaredDistance(x, y));
  return nn::MeanAll(nn::Square(nn::Relu(violation)));
}

absl::StatusOr<Var> EqualityPenalty(const Potential& phi, const Potential& psi, const Var& x, const Var& y) {
  if (absl::Status s = CheckPoints("EqualityPenalty x, y", x, y); !s.ok()) return s;
  const int64_t batch = x.dim(0);
  // Inputs that require grad, so that grad_x phi can be taken; they stay connected to x, y.
  auto as_input = [](const Var& p) { return p.requires_grad() ? p : Var(p.value(), true); };
  const Var xi = as_input(x);
  const Var yi = as_input(y);
  const Var phi_x = phi(xi);
  const Var psi_y = psi(yi);
  if (absl::Status s = CheckValues("EqualityPenalty phi(x)", phi_x, batch); !s.ok()) return s;
  if (absl::Status s = CheckValues("EqualityPenalty psi(y)", psi_y, batch); !s.ok()) return s;
  const Var grad_phi = nn::Grad({nn::SumAll(phi_x)}, {xi}, {}, {.create_graph = true})[0];
  const Var grad_psi = nn::Grad({nn::SumAll(psi_y)}, {yi}, {}, {.create_graph = true})[0];
  const Var half_gphi = nn::MulScalar(nn::Sum(nn::Square(grad_phi), {1}), 0.5f);
  const Var half_gpsi = nn::MulScalar(nn::Sum(nn::Square(grad_psi), {1}), 0.5f);
  const Var term_x = nn::Sub(nn::Add(phi_x, psi(nn::Sub(xi, grad_phi))), half_gphi);
  const Var term_y = nn::Sub(nn::Add(phi(nn::Sub(yi, grad_psi)), psi_y), half_gpsi);
  return nn::Add(nn::MeanAll(nn::Square(term_x)), nn::MeanAll(nn::Square(term_y)));
}

absl::StatusOr<Var> Interpolate(const Var& a, const Var& b, nn::Rng& rng) {
  if (absl::Status s = CheckPoints("Interpolate a, b", a, b); !s.ok()) return s;
  const Var t = Var::Constant(nn::Tensor::Uniform({a.dim(0), 1}, 0.0f, 1.0f, rng));
  // t a + (1 - t) b = b + t (a - b)
  return nn::Add(b, nn::Mul(t, nn::Sub(a, b)));
}

absl::StatusOr<Var> EpsilonPenalty(const Var& eps_y) {
  if (!eps_y.defined() || eps_y.rank() != 1 || eps_y.dim(0) == 0) {
    return absl::InvalidArgumentError(absl::StrCat("EpsilonPenalty: expected values of shape [B], got ",
                                                   eps_y.defined() ? nn::ShapeToString(eps_y.shape()) : "undefined"));
  }
  return nn::MeanAll(nn::Square(nn::Relu(eps_y)));
}

Potential EpsilonReparameterizedPsi(Potential phi, Potential eps) {
  return [phi = std::move(phi), eps = std::move(eps)](const Var& y) { return nn::Sub(eps(y), phi(y)); };
}

}  // namespace otgen::ot
