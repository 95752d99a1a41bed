#include "ot/regularized_dual.h"

#include <cmath>

#include "gtest/gtest.h"
#include "nn/gradcheck.h"
#include "nn/ops.h"
#include "ot/cost.h"
#include "ot/sinkhorn.h"

namespace otgen::ot {
namespace {

using nn::Tensor;
using nn::Var;

// Points and their squared-Euclidean cost matrix.
struct Problem {
  RowMatrixXf x, y;
  Tensor cost;
};

Problem MakeProblem(int n, int m, uint64_t seed) {
  nn::Rng rng(seed);
  Problem p;
  p.x.resize(n, 2);
  p.y.resize(m, 2);
  for (int i = 0; i < n; ++i) p.x.row(i) << rng.Normal(), rng.Normal();
  for (int j = 0; j < m; ++j) p.y.row(j) << 1.0f + rng.Normal(), rng.Normal();
  p.cost = Tensor::Empty({n, m});
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < m; ++j) p.cost.at({i, j}) = (p.x.row(i) - p.y.row(j)).squaredNorm();
  }
  return p;
}

// Maximizes the (concave) dual over vectors phi, psi by gradient ascent with the project's
// autodiff; returns (phi, psi).
std::pair<Var, Var> SolveDual(const Tensor& cost, const RegularizedDualOptions& options, int iterations) {
  const int64_t n = cost.dim(0), m = cost.dim(1);
  Var phi = Var::Parameter(Tensor::Zeros({n}));
  Var psi = Var::Parameter(Tensor::Zeros({m}));
  const Var c = Var::Constant(cost);
  // Curvature of the dual in phi_i is about E_j M'(V) / n <= (max m) / (lambda n).
  const float lr_phi = 0.3f * options.lambda * n, lr_psi = 0.3f * options.lambda * m;
  for (int t = 0; t < iterations; ++t) {
    Var objective = *RegularizedDualObjective(phi, psi, c, options);
    std::vector<Var> g = nn::Grad({objective}, {phi, psi});
    nn::NoGradGuard no_grad;
    for (int64_t i = 0; i < n; ++i) phi.mutable_value().data()[i] += lr_phi * g[0].value().data()[i];
    for (int64_t j = 0; j < m; ++j) psi.mutable_value().data()[j] += lr_psi * g[1].value().data()[j];
  }
  return {phi, psi};
}

class RegularizedDualOptimumTest : public ::testing::TestWithParam<Regularizer> {};

TEST_P(RegularizedDualOptimumTest, PseudoPlanIsFeasibleAndStrongDualityHolds) {
  const Problem p = MakeProblem(4, 5, 1);
  const RegularizedDualOptions options{.regularizer = GetParam(), .lambda = 0.5f};
  auto [phi, psi] = SolveDual(p.cost, options, 20000);
  const Var v = *Violation(phi, psi, Var::Constant(p.cost));
  const Tensor m = PseudoPlanDensity(v, options).value();
  // Marginals of pi = m / (n m): row means and column means of m are 1.
  for (int i = 0; i < 4; ++i) {
    double row = 0;
    for (int j = 0; j < 5; ++j) row += m.at({i, j}) / 5.0;
    EXPECT_NEAR(row, 1.0, 2e-3) << "row " << i;
  }
  for (int j = 0; j < 5; ++j) {
    double col = 0;
    for (int i = 0; i < 4; ++i) col += m.at({i, j}) / 4.0;
    EXPECT_NEAR(col, 1.0, 2e-3) << "column " << j;
  }
  const double dual = RegularizedDualObjective(phi, psi, Var::Constant(p.cost), options)->item();
  const double primal = *RegularizedPrimalValue(m, p.cost, options);
  EXPECT_NEAR(dual, primal, 2e-3 * std::max(1.0, std::abs(primal)));
}

INSTANTIATE_TEST_SUITE_P(Regularizers, RegularizedDualOptimumTest,
                         ::testing::Values(Regularizer::kKL, Regularizer::kL2));

TEST(RegularizedDualTest, KlDualOptimumEqualsSinkhornCost) {
  // Seed 001's KL-regularized OT is seed 000's OT_eps with eps = lambda (same KL to q x p).
  const Problem p = MakeProblem(4, 5, 2);
  const RegularizedDualOptions options{.regularizer = Regularizer::kKL, .lambda = 0.5f};
  auto [phi, psi] = SolveDual(p.cost, options, 20000);
  const double dual = RegularizedDualObjective(phi, psi, Var::Constant(p.cost), options)->item();
  SinkhornOptions so;
  so.epsilon = 0.5f;
  so.tolerance = 1e-6f;
  so.max_iterations = 10000;
  absl::StatusOr<SinkhornResult> s =
      Sinkhorn(p.x, UniformWeights(4), p.y, UniformWeights(5), Cost::SquaredEuclidean(), so);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_NEAR(dual, s->regularized_cost, 2e-3 * std::abs(s->regularized_cost));
}

TEST(RegularizedDualTest, FunctionsMatchTheirDefinitions) {
  const Tensor v = Tensor::FromVector({4}, {-1.0f, -0.1f, 0.2f, 0.5f});
  const RegularizedDualOptions kl{.regularizer = Regularizer::kKL, .lambda = 0.5f};
  const RegularizedDualOptions l2{.regularizer = Regularizer::kL2, .lambda = 0.5f};
  const Tensor fkl = FLambda(Var::Constant(v), kl).value();
  const Tensor mkl = PseudoPlanDensity(Var::Constant(v), kl).value();
  const Tensor fl2 = FLambda(Var::Constant(v), l2).value();
  const Tensor ml2 = PseudoPlanDensity(Var::Constant(v), l2).value();
  for (int k = 0; k < 4; ++k) {
    const double x = v.at({k});
    EXPECT_NEAR(fkl.at({k}), 0.5 / std::exp(1.0) * std::exp(x / 0.5), 1e-6);
    EXPECT_NEAR(mkl.at({k}), std::exp(x / 0.5) / std::exp(1.0), 1e-6);
    EXPECT_NEAR(fl2.at({k}), x > 0 ? x * x / (2 * 0.5) : 0.0, 1e-6);
    EXPECT_NEAR(ml2.at({k}), x > 0 ? x / 0.5 : 0.0, 1e-6);
  }
}

TEST(RegularizedDualTest, DensityIsTheDerivativeOfFLambda) {
  for (Regularizer r : {Regularizer::kKL, Regularizer::kL2}) {
    const RegularizedDualOptions o{.regularizer = r, .lambda = 0.3f};
    Var v = Var::Parameter(Tensor::FromVector({3}, {-0.4f, 0.1f, 0.7f}));
    std::vector<Var> g = nn::Grad({nn::SumAll(FLambda(v, o))}, {v});
    const Tensor m = PseudoPlanDensity(v, o).value();
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(g[0].value().at({k}), m.at({k}), 1e-5);
  }
}

TEST(RegularizedDualTest, ObjectiveGradientsMatchFiniteDifferences) {
  const Problem p = MakeProblem(3, 4, 3);
  for (Regularizer r : {Regularizer::kKL, Regularizer::kL2}) {
    const RegularizedDualOptions o{.regularizer = r, .lambda = 0.7f};
    nn::Rng rng(4);
    absl::Status s = nn::GradCheck(
        [&](const std::vector<Var>& in) { return *RegularizedDualObjective(in[0], in[1], in[2], o); },
        {Tensor::Normal({3}, 0, 1, rng), Tensor::Normal({4}, 0, 1, rng), p.cost});
    EXPECT_TRUE(s.ok()) << s;
  }
}

TEST(RegularizedDualTest, GeneratorLossGradientIsThePseudoPlanWeightedCostGradient) {
  // d/dx_i mean_ij m_ij ||x_i - y_j||^2 = (2 / (n m)) sum_j m_ij (x_i - y_j).
  const Tensor y = Tensor::FromVector({2, 1}, {0.0f, 1.0f});
  Var x = Var::Parameter(Tensor::FromVector({2, 1}, {0.5f, 2.0f}));
  const Tensor m = Tensor::FromVector({2, 2}, {1.5f, 0.5f, 0.0f, 2.0f});
  Var diff = nn::Sub(x, nn::Reshape(Var::Constant(y), {1, 2}));  // [2, 2] of x_i - y_j
  Var cost = nn::Square(diff);
  Var loss = *PseudoPlanGeneratorLoss(cost, m);
  std::vector<Var> g = nn::Grad({loss}, {x});
  EXPECT_NEAR(g[0].value().at({0, 0}), 2.0 / 4 * (1.5 * 0.5 + 0.5 * (0.5 - 1)), 1e-6);
  EXPECT_NEAR(g[0].value().at({1, 0}), 2.0 / 4 * (0.0 + 2.0 * (2 - 1)), 1e-6);
}

TEST(RegularizedDualTest, TerminationStatisticIsTheMeanOfPairedDensities) {
  const Tensor m = Tensor::FromVector({2, 2}, {0.5f, 9.0f, 9.0f, 1.5f});
  EXPECT_DOUBLE_EQ(*TerminationStatistic(m), 1.0);
  EXPECT_FALSE(TerminationStatistic(Tensor::Zeros({2, 3})).ok());
}

TEST(RegularizedDualTest, BadInputNamesTheArgument) {
  RegularizedDualOptions o{.lambda = 0.0f};
  EXPECT_NE(o.Validate().message().find("lambda"), std::string::npos);
  o.lambda = std::nanf("");
  EXPECT_FALSE(o.Validate().ok());
  absl::StatusOr<Var> v = Violation(Var::Constant(Tensor::Zeros({3})), Var::Constant(Tensor::Zeros({4})),
                                    Var::Constant(Tensor::Zeros({4, 3})));
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(v.status().message().find("[4, 3]"), std::string::npos);
  EXPECT_EQ(ParseRegularizer("entropy").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseRegularizer("kl"), Regularizer::kKL);
}

}  // namespace
}  // namespace otgen::ot
