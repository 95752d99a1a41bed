#include "ot/w2_penalty.h"

#include <cmath>

#include "gtest/gtest.h"
#include "nn/gradcheck.h"
#include "nn/ops.h"

namespace otgen::ot {
namespace {

using nn::Tensor;
using nn::Var;

TEST(W2PenaltyTest, InequalityPenaltyValueByHand) {
  // phi + psi = (1, 0.1), ||x - y||^2/2 = (0.5, 0.5) -> violations (0.5, -0.4) -> mean of (0.25, 0).
  Var x = Var::Constant(Tensor::FromVector({2, 1}, {0, 0}));
  Var y = Var::Constant(Tensor::FromVector({2, 1}, {1, -1}));
  Var phi = Var::Constant(Tensor::FromVector({2}, {0.5f, 0.0f}));
  Var psi = Var::Constant(Tensor::FromVector({2}, {0.5f, 0.1f}));
  EXPECT_NEAR(InequalityPenalty(phi, psi, x, y)->item(), 0.125, 1e-7);
}

TEST(W2PenaltyTest, InequalityPenaltyGradientsMatchFiniteDifferences) {
  nn::Rng rng(1);
  // Values chosen so that some pairs violate the constraint and some do not.
  absl::Status s = nn::GradCheck(
      [](const std::vector<Var>& in) { return *InequalityPenalty(in[0], in[1], in[2], in[3]); },
      {Tensor::FromVector({4}, {1.0f, -0.5f, 0.8f, 0.2f}), Tensor::FromVector({4}, {0.3f, 0.1f, 0.9f, -1.0f}),
       Tensor::Normal({4, 2}, 0, 0.5f, rng), Tensor::Normal({4, 2}, 0, 0.5f, rng)});
  EXPECT_TRUE(s.ok()) << s;
}

// Quadratic potentials phi(x) = a/2 ||x||^2 + <b, x>: grad phi(x) = a x + b.
Potential Quadratic(const Var& a, const Var& b) {
  return [a, b](const Var& x) {
    return nn::Add(nn::Mul(nn::MulScalar(nn::Sum(nn::Square(x), {1}), 0.5f), a), nn::Sum(nn::Mul(x, b), {1}));
  };
}

TEST(W2PenaltyTest, EqualityPenaltyVanishesForOptimalPotentialsOfATranslation) {
  // For c = ||x-y||^2/2 and the optimal map T(x) = x + t = x - grad phi(x) (eq. 22), the
  // Kantorovich potentials are phi(x) = -<t, x> and psi(y) = phi^c(y) = <t, y> - |t|^2/2:
  // phi(x) + psi(y) <= ||x-y||^2/2 with equality exactly at y = x + t.
  const Tensor t = Tensor::FromVector({1, 2}, {0.7f, -0.3f});
  const float tt = 0.7f * 0.7f + 0.3f * 0.3f;
  Potential phi = [&](const Var& x) { return nn::Neg(nn::Sum(nn::Mul(x, Var::Constant(t)), {1})); };
  Potential psi = [&](const Var& y) { return nn::AddScalar(nn::Sum(nn::Mul(y, Var::Constant(t)), {1}), -0.5f * tt); };
  nn::Rng rng(2);
  Var x = Var::Constant(Tensor::Normal({5, 2}, 0, 1, rng));
  Var y = Var::Constant(Tensor::Normal({5, 2}, 0, 1, rng));
  EXPECT_NEAR(EqualityPenalty(phi, psi, x, y)->item(), 0.0, 1e-10);
  // The inequality is tight on the transport pairs (x, x + t).
  Var xt = nn::Add(x, Var::Constant(t));
  EXPECT_NEAR(InequalityPenalty(phi(x), psi(xt), x, xt)->item(), 0.0, 1e-12);
  // Inequality penalty is 0 for these (feasible) potentials on any pairs.
  EXPECT_NEAR(InequalityPenalty(phi(x), psi(y), x, y)->item(), 0.0, 1e-12);
  // A potential off by a constant violates eq. 22 by |t|^2/2 at every point.
  Potential wrong = [&](const Var& y) { return nn::Sum(nn::Mul(y, Var::Constant(t)), {1}); };
  EXPECT_NEAR(EqualityPenalty(phi, wrong, x, y)->item(), 2 * (0.5 * tt) * (0.5 * tt), 1e-5);
}

TEST(W2PenaltyTest, EqualityPenaltyParameterGradientsMatchFiniteDifferences) {
  // Parameters a_phi, b_phi, a_psi, b_psi of quadratic potentials; the penalty contains
  // grad phi, so its parameter gradient goes through second-order autodiff.
  nn::Rng rng(3);
  const Tensor x = Tensor::Normal({3, 2}, 0, 1, rng);
  const Tensor y = Tensor::Normal({3, 2}, 0, 1, rng);
  absl::Status s = nn::GradCheck(
      [&](const std::vector<Var>& p) {
        return *EqualityPenalty(Quadratic(p[0], p[1]), Quadratic(p[2], p[3]), Var::Constant(x), Var::Constant(y));
      },
      {Tensor::FromVector({1}, {0.3f}), Tensor::FromVector({2}, {0.2f, -0.1f}), Tensor::FromVector({1}, {-0.2f}),
       Tensor::FromVector({2}, {0.1f, 0.4f})});
  EXPECT_TRUE(s.ok()) << s;
}

TEST(W2PenaltyTest, InterpolationStaysOnSegments) {
  nn::Rng rng(4);
  Var a = Var::Constant(Tensor::Normal({100, 2}, 0, 1, rng));
  Var b = Var::Constant(Tensor::Normal({100, 2}, 3, 1, rng));
  Var z = *Interpolate(a, b, rng);
  double mean_t = 0;
  for (int i = 0; i < 100; ++i) {
    // z = b + t (a - b) with the same t in both coordinates.
    const double t0 = (z.value().at({i, 0}) - b.value().at({i, 0})) / (a.value().at({i, 0}) - b.value().at({i, 0}));
    const double t1 = (z.value().at({i, 1}) - b.value().at({i, 1})) / (a.value().at({i, 1}) - b.value().at({i, 1}));
    EXPECT_NEAR(t0, t1, 1e-3);
    EXPECT_GE(t0, -1e-4);
    EXPECT_LE(t0, 1 + 1e-4);
    mean_t += t0 / 100;
  }
  EXPECT_NEAR(mean_t, 0.5, 0.1);
}

TEST(W2PenaltyTest, EpsilonReparameterization) {
  Potential phi = [](const Var& y) { return nn::Sum(y, {1}); };
  Potential eps = [](const Var& y) { return nn::MulScalar(nn::Sum(y, {1}), 0.5f); };
  Potential psi = EpsilonReparameterizedPsi(phi, eps);
  Var y = Var::Constant(Tensor::FromVector({2, 2}, {1, 1, -1, 0}));
  const Tensor v = psi(y).value();
  EXPECT_FLOAT_EQ(v.at({0}), -1.0f);  // -2 + 1
  EXPECT_FLOAT_EQ(v.at({1}), 0.5f);   // 1 - 0.5
  // eps(Y) = (1, -0.5): penalty mean(1, 0) = 0.5
  EXPECT_FLOAT_EQ(EpsilonPenalty(eps(y))->item(), 0.5f);
}

TEST(W2PenaltyTest, BadShapesNameTheArgument) {
  Var x = Var::Constant(Tensor::Zeros({3, 2}));
  Var y = Var::Constant(Tensor::Zeros({4, 2}));
  absl::StatusOr<Var> r = InequalityPenalty(Var::Constant(Tensor::Zeros({3})), Var::Constant(Tensor::Zeros({3})), x, y);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("[4, 2]"), std::string::npos);
  r = InequalityPenalty(Var::Constant(Tensor::Zeros({2})), Var::Constant(Tensor::Zeros({3})), x, x);
  EXPECT_NE(r.status().message().find("phi_x"), std::string::npos);
  EXPECT_FALSE(EpsilonPenalty(Var::Constant(Tensor::Zeros({2, 2}))).ok());
}

}  // namespace
}  // namespace otgen::ot
