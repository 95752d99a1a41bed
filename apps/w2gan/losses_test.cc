#include "apps/w2gan/losses.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "nn/gradcheck.h"
#include "nn/ops.h"
#include "ot/w2_penalty.h"

namespace otgen::apps::w2gan {
namespace {

using nn::Tensor;
using nn::Var;

// phi(p) = <w, p> + c for a [2] weight w and scalar c.
ot::Potential Affine(const Var& w, const Var& c) {
  return [w, c](const Var& p) { return nn::Add(nn::Sum(nn::Mul(p, w), {1}), c); };
}

// A smooth one-hidden-layer potential: v . tanh(p W^T + b), W [h, d], b [h], v [h].
ot::Potential TanhMlp(const Var& w, const Var& b, const Var& v) {
  return [w, b, v](const Var& p) { return nn::Sum(nn::Mul(nn::Tanh(nn::Linear(p, w, b)), v), {1}); };
}

double HalfSq(double a0, double a1, double b0, double b1) { return 0.5 * ((a0 - b0) * (a0 - b0) + (a1 - b1) * (a1 - b1)); }

TEST(W2CriticLossTest, PairsOnlyMatchesHandValues) {
  // phi(p) = p0 + 0.5, psi(p) = -p1; y = generated, x = data.
  const std::vector<float> yv = {1.0f, 0.0f, 0.0f, 2.0f, -1.0f, 1.0f};
  const std::vector<float> xv = {0.0f, 0.0f, 0.5f, 0.5f, 2.0f, -2.0f};
  const Var y = Var::Constant(Tensor::FromVector({3, 2}, yv));
  const Var x = Var::Constant(Tensor::FromVector({3, 2}, xv));
  W2Potentials pot;
  pot.phi = Affine(Var::Constant(Tensor::FromVector({2}, {1, 0})), Var::Constant(Tensor::Scalar(0.5f)));
  pot.psi = Affine(Var::Constant(Tensor::FromVector({2}, {0, -1})), Var::Constant(Tensor::Scalar(0.0f)));
  nn::Rng rng(1);
  const W2CriticLossOptions opt{.lambda_ineq = 3.0f, .ineq_on_pairs = true, .ineq_on_interpolates = false};
  absl::StatusOr<W2CriticTerms> t = W2CriticLoss(pot, {y, x}, rng, opt);
  ASSERT_TRUE(t.ok()) << t.status();
  double dual = 0, ineq = 0;
  for (int i = 0; i < 3; ++i) {
    const double s = (yv[2 * i] + 0.5) + (-xv[2 * i + 1]);
    dual += s / 3;
    const double v = s - HalfSq(yv[2 * i], yv[2 * i + 1], xv[2 * i], xv[2 * i + 1]);
    ineq += (v > 0 ? v * v : 0.0) / 3;
  }
  ASSERT_GT(ineq, 0.0);  // the data violate the constraint somewhere
  EXPECT_NEAR(t->dual, dual, 1e-6);
  EXPECT_NEAR(t->ineq, ineq, 1e-6);
  EXPECT_EQ(t->eq, 0.0);
  EXPECT_NEAR(t->loss.item(), -dual + 3.0 * ineq, 1e-5);
}

TEST(W2CriticLossTest, InterpolatesUseIndependentPairsWithTheCallersRng) {
  nn::Rng data_rng(3);
  const Tensor y = Tensor::Normal({5, 2}, 0, 1, data_rng), x = Tensor::Normal({5, 2}, 0, 1, data_rng);
  const Tensor y2 = Tensor::Normal({5, 2}, 0, 1, data_rng), x2 = Tensor::Normal({5, 2}, 0, 1, data_rng);
  W2Potentials pot;
  pot.phi = Affine(Var::Constant(Tensor::FromVector({2}, {0.7f, -0.2f})), Var::Constant(Tensor::Scalar(1.0f)));
  pot.psi = Affine(Var::Constant(Tensor::FromVector({2}, {-0.3f, 0.9f})), Var::Constant(Tensor::Scalar(0.8f)));
  nn::Rng rng(11);
  const W2CriticLossOptions opt{.lambda_ineq = 1.0f, .ineq_on_pairs = false, .ineq_on_interpolates = true};
  absl::StatusOr<W2CriticTerms> t = W2CriticLoss(pot, {Var(y), Var(x), Var(y2), Var(x2)}, rng, opt);
  ASSERT_TRUE(t.ok()) << t.status();
  // Replay: s_i for the first pair, then t_i for the second, U[0, 1) per row.
  nn::Rng replay(11);
  const Tensor s = Tensor::Uniform({5, 1}, 0, 1, replay), u = Tensor::Uniform({5, 1}, 0, 1, replay);
  double ineq = 0;
  for (int i = 0; i < 5; ++i) {
    double a[2], b[2];
    for (int k = 0; k < 2; ++k) {
      a[k] = s.data()[i] * y.data()[2 * i + k] + (1 - s.data()[i]) * x.data()[2 * i + k];
      b[k] = u.data()[i] * y2.data()[2 * i + k] + (1 - u.data()[i]) * x2.data()[2 * i + k];
    }
    const double v = (0.7 * a[0] - 0.2 * a[1] + 1.0) + (-0.3 * b[0] + 0.9 * b[1] + 0.8) - HalfSq(a[0], a[1], b[0], b[1]);
    ineq += (v > 0 ? v * v : 0.0) / 5;
  }
  ASSERT_GT(ineq, 0.0);
  EXPECT_NEAR(t->ineq, ineq, 1e-5);
}

TEST(W2CriticLossTest, EqualityAndEpsilonTermsAreAddedWithTheirWeights) {
  nn::Rng rng(5);
  const Var y(Tensor::Normal({4, 2}, 0, 1, rng)), x(Tensor::Normal({4, 2}, 0, 1, rng));
  const Var w(Tensor::Normal({3, 2}, 0, 1, rng)), b(Tensor::Normal({3}, 0, 1, rng)), v(Tensor::Normal({3}, 0, 1, rng));
  const Var w2(Tensor::Normal({3, 2}, 0, 1, rng)), b2(Tensor::Normal({3}, 0, 1, rng)), v2(Tensor::Normal({3}, 0, 1, rng));
  W2Potentials pot;
  pot.phi = TanhMlp(w, b, v);
  pot.eps = TanhMlp(w2, b2, v2);
  pot.psi = ot::EpsilonReparameterizedPsi(pot.phi, pot.eps);
  nn::Rng r(1);
  const W2CriticLossOptions opt{
      .lambda_ineq = 2.0f, .ineq_on_pairs = true, .ineq_on_interpolates = false, .lambda_eq = 5.0f, .lambda_eps = 7.0f};
  absl::StatusOr<W2CriticTerms> t = W2CriticLoss(pot, {y, x}, r, opt);
  ASSERT_TRUE(t.ok()) << t.status();
  const double eq = ot::EqualityPenalty(pot.phi, pot.psi, y, x)->item();
  const double eps = ot::EpsilonPenalty(pot.eps(x))->item();
  EXPECT_NEAR(t->eq, eq, 1e-6);
  EXPECT_NEAR(t->eps, eps, 1e-6);
  EXPECT_GT(t->eq, 0.0);
  EXPECT_NEAR(t->loss.item(), -t->dual + 2.0 * t->ineq + 5.0 * eq + 7.0 * eps, 1e-4);
}

TEST(W2CriticLossTest, ParameterGradientsMatchFiniteDifferences) {
  // Both potentials are smooth tanh networks; every term is on (interpolates with a fixed seed
  // per evaluation, so the function is deterministic).
  nn::Rng rng(7);
  const Tensor y = Tensor::Normal({6, 2}, 0, 1, rng), x = Tensor::Normal({6, 2}, 0, 1, rng);
  const Tensor y2 = Tensor::Normal({6, 2}, 0, 1, rng), x2 = Tensor::Normal({6, 2}, 0, 1, rng);
  auto f = [&](const std::vector<Var>& p) {
    W2Potentials pot;
    pot.phi = TanhMlp(p[0], p[1], p[2]);
    pot.psi = TanhMlp(p[3], p[4], p[5]);
    nn::Rng r(2);
    const W2CriticLossOptions opt{.lambda_ineq = 3.0f, .lambda_eq = 0.5f};
    return W2CriticLoss(pot, {Var(y), Var(x), Var(y2), Var(x2)}, r, opt)->loss;
  };
  std::vector<Tensor> params;
  for (int k = 0; k < 2; ++k) {
    params.push_back(Tensor::Normal({4, 2}, 0, 1, rng));
    params.push_back(Tensor::Normal({4}, 0, 1, rng));
    params.push_back(Tensor::Normal({4}, 0, 1.5f, rng));
  }
  const absl::Status s = nn::GradCheck(f, params, {.step = 1e-2, .atol = 5e-3, .rtol = 3e-2});
  EXPECT_TRUE(s.ok()) << s;
}

TEST(W2CriticLossTest, RejectsBadOptionsNamingTheField) {
  W2Potentials pot;
  pot.phi = pot.psi = Affine(Var::Constant(Tensor::FromVector({2}, {1, 0})), Var::Constant(Tensor::Scalar(0.0f)));
  const Var p = Var::Constant(Tensor::Zeros({2, 2}));
  nn::Rng rng(1);
  auto message = [&](const W2CriticLossOptions& o) { return std::string(W2CriticLoss(pot, {p, p, p, p}, rng, o).status().message()); };
  EXPECT_NE(message({.lambda_ineq = 0.0f}).find("lambda_ineq"), std::string::npos);
  EXPECT_NE(message({.lambda_ineq = NAN}).find("lambda_ineq"), std::string::npos);
  EXPECT_NE(message({.ineq_on_pairs = false, .ineq_on_interpolates = false}).find("ineq_on_pairs"), std::string::npos);
  EXPECT_NE(message({.lambda_eq = -1.0f}).find("lambda_eq"), std::string::npos);
  EXPECT_NE(message({.lambda_eps = 1.0f}).find("lambda_eps"), std::string::npos);  // no eps potential
  // Interpolates need the second pair.
  EXPECT_NE(std::string(W2CriticLoss(pot, {p, p}, rng, {}).status().message()).find("generated2"), std::string::npos);
  // Mismatched shapes.
  EXPECT_NE(std::string(W2CriticLoss(pot, {p, Var::Constant(Tensor::Zeros({3, 2}))}, rng, {.ineq_on_interpolates = false})
                            .status()
                            .message())
                .find("data"),
            std::string::npos);
}

TEST(W2GeneratorLossTest, IsTheMeanOfPhiAndDifferentiatesThroughTheGeneratedPoints) {
  const ot::Potential phi = Affine(Var::Constant(Tensor::FromVector({2}, {2, -1})), Var::Constant(Tensor::Scalar(0.5f)));
  const Var y(Tensor::FromVector({2, 2}, {1, 1, 3, 0}), true);
  absl::StatusOr<Var> loss = W2GeneratorLoss(phi, y);
  ASSERT_TRUE(loss.ok());
  EXPECT_NEAR(loss->item(), ((2 - 1 + 0.5) + (6 + 0.5)) / 2, 1e-6);
  const Tensor g = nn::Grad({*loss}, {y})[0].value();
  EXPECT_FLOAT_EQ(g.at({0, 0}), 1.0f);
  EXPECT_FLOAT_EQ(g.at({1, 1}), -0.5f);
}

TEST(WganCriticLossTest, LinearCriticPenaltiesByHand) {
  // D(p) = <w, p>: grad D = w everywhere, so the penalty is (||w|| - 1)^2 (GP) or its positive part (LP).
  const Var real = Var::Constant(Tensor::FromVector({2, 2}, {1, 0, 0, 1}));
  const Var fake = Var::Constant(Tensor::FromVector({2, 2}, {0, 0, 1, 1}));
  for (const float scale : {0.5f, 2.0f}) {
    const ot::Potential d = Affine(Var::Constant(Tensor::FromVector({2}, {0.6f * scale, 0.8f * scale})),
                                   Var::Constant(Tensor::Scalar(0.0f)));
    const double excess = scale - 1.0;
    const double w1 = (0.6 * scale + 0.8 * scale) / 2 - (0.0 + 1.4 * scale) / 2;
    for (const GradientPenalty kind : {GradientPenalty::kGradient, GradientPenalty::kLipschitz}) {
      nn::Rng rng(1);
      absl::StatusOr<WganCriticTerms> t = WganCriticLoss(d, real, fake, rng, kind, 10.0f);
      ASSERT_TRUE(t.ok()) << t.status();
      const double expected = kind == GradientPenalty::kGradient || excess > 0 ? excess * excess : 0.0;
      EXPECT_NEAR(t->penalty, expected, 1e-5) << scale;
      EXPECT_NEAR(t->wasserstein, w1, 1e-6);
      EXPECT_NEAR(t->loss.item(), -w1 + 10.0 * expected, 1e-4);
    }
  }
}

TEST(WganCriticLossTest, ParameterGradientsMatchFiniteDifferences) {
  nn::Rng rng(9);
  const Tensor real = Tensor::Normal({5, 2}, 0, 1, rng), fake = Tensor::Normal({5, 2}, 1, 1, rng);
  for (const GradientPenalty kind : {GradientPenalty::kGradient, GradientPenalty::kLipschitz}) {
    auto f = [&](const std::vector<Var>& p) {
      nn::Rng r(4);
      return WganCriticLoss(TanhMlp(p[0], p[1], p[2]), Var(real), Var(fake), r, kind, 10.0f)->loss;
    };
    // Large output weights so that some gradient norms exceed 1 (the LP penalty is active).
    const absl::Status s = nn::GradCheck(
        f, {Tensor::Normal({4, 2}, 0, 1, rng), Tensor::Normal({4}, 0, 1, rng), Tensor::Normal({4}, 0, 2, rng)},
        {.step = 1e-2, .atol = 5e-3, .rtol = 3e-2});
    EXPECT_TRUE(s.ok()) << s;
  }
}

TEST(WganGeneratorLossTest, IsMinusTheMeanCriticValue) {
  const ot::Potential d = Affine(Var::Constant(Tensor::FromVector({2}, {1, 1})), Var::Constant(Tensor::Scalar(0.0f)));
  absl::StatusOr<Var> loss = WganGeneratorLoss(d, Var::Constant(Tensor::FromVector({2, 2}, {1, 2, 3, 4})));
  ASSERT_TRUE(loss.ok());
  EXPECT_NEAR(loss->item(), -5.0, 1e-6);
  nn::Rng rng(1);
  EXPECT_NE(std::string(WganCriticLoss(d, Var::Constant(Tensor::Zeros({2, 2})), Var::Constant(Tensor::Zeros({2, 2})), rng,
                                       GradientPenalty::kGradient, -1.0f)
                            .status()
                            .message())
                .find("lambda_gp"),
            std::string::npos);
}

TEST(BarycentricTest, HalfSquaredDistancesMatchBruteForce) {
  nn::Rng rng(2);
  const Tensor a = Tensor::Normal({3, 4}, 0, 1, rng), b = Tensor::Normal({5, 4}, 0, 1, rng);
  absl::StatusOr<Tensor> c = HalfSquaredDistances(a, b);
  ASSERT_TRUE(c.ok());
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 5; ++j) {
      double s = 0;
      for (int k = 0; k < 4; ++k) s += std::pow(a.at({i, k}) - b.at({j, k}), 2);
      EXPECT_NEAR(c->at({i, j}), s / 2, 1e-5);
    }
  }
  EXPECT_FALSE(HalfSquaredDistances(a, Tensor::Zeros({2, 3})).ok());
}

TEST(BarycentricTest, FitLossIsTheWeightedSquaredErrorAndVanishesInGradientAtTheProjection) {
  nn::Rng rng(3);
  const Tensor x = Tensor::Normal({4, 2}, 0, 1, rng);
  const Tensor density = Tensor::Uniform({3, 4}, 0, 2, rng);
  const Tensor f = Tensor::Normal({3, 2}, 0, 1, rng);
  absl::StatusOr<Var> loss = BarycentricFitLoss(Var(f), density, x);
  ASSERT_TRUE(loss.ok()) << loss.status();
  double direct = 0;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 4; ++j) {
      direct += density.at({i, j}) * (std::pow(f.at({i, 0}) - x.at({j, 0}), 2) + std::pow(f.at({i, 1}) - x.at({j, 1}), 2));
    }
  }
  EXPECT_NEAR(loss->item(), direct / 12, 1e-4);
  // At T(z_i) = sum_j m_ij x_j / sum_j m_ij the gradient is 0.
  Tensor t = Tensor::Zeros({3, 2});
  for (int i = 0; i < 3; ++i) {
    double w = 0;
    for (int j = 0; j < 4; ++j) w += density.at({i, j});
    for (int k = 0; k < 2; ++k) {
      double s = 0;
      for (int j = 0; j < 4; ++j) s += density.at({i, j}) * x.at({j, k});
      t.at({i, k}) = static_cast<float>(s / w);
    }
  }
  const Var tv(t, true);
  const Tensor g = nn::Grad({*BarycentricFitLoss(tv, density, x)}, {tv})[0].value();
  for (float v : g.span()) EXPECT_NEAR(v, 0.0f, 1e-5);
  EXPECT_FALSE(BarycentricFitLoss(Var(f), Tensor::Zeros({3, 3}), x).ok());
}

TEST(BarycentricTest, DualLossIsTheNegatedRegularizedDual) {
  nn::Rng rng(4);
  const Tensor z = Tensor::Normal({3, 2}, 0, 1, rng), x = Tensor::Normal({4, 2}, 0, 1, rng);
  const Tensor cost = *HalfSquaredDistances(z, x);
  const Var u(Tensor::Normal({3}, 0, 1, rng)), v(Tensor::Normal({4}, 0, 1, rng));
  const ot::RegularizedDualOptions opt{.regularizer = ot::Regularizer::kL2, .lambda = 0.5f};
  absl::StatusOr<Var> loss = BarycentricDualLoss(u, v, cost, opt);
  ASSERT_TRUE(loss.ok());
  // -(mean u + mean v - mean_ij (u_i + v_j - c_ij)_+^2 / (2 lambda)).
  double mu = 0, mv = 0, pen = 0;
  for (int i = 0; i < 3; ++i) mu += u.value().data()[i] / 3;
  for (int j = 0; j < 4; ++j) mv += v.value().data()[j] / 4;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 4; ++j) {
      const double w = u.value().data()[i] + v.value().data()[j] - cost.at({i, j});
      pen += (w > 0 ? w * w : 0.0) / (2 * 0.5) / 12;
    }
  }
  EXPECT_NEAR(loss->item(), -(mu + mv - pen), 1e-5);
  absl::StatusOr<Tensor> m = BarycentricDensity(u.value(), v.value(), cost, opt);
  ASSERT_TRUE(m.ok());
  const double w00 = u.value().data()[0] + v.value().data()[0] - cost.at({0, 0});
  EXPECT_NEAR(m->at({0, 0}), w00 > 0 ? w00 / 0.5 : 0.0, 1e-5);
}

}  // namespace
}  // namespace otgen::apps::w2gan
