// The regularized dual of seed 001 (eq. 5) as the SWGAN app evaluates it (EvaluateDual), solved
// with free potentials on tiny discrete problems and checked against closed forms from exact
// solves: the entropic plan of Sinkhorn (KL) and the optimal permutation of exact OT (L2).
#include <cmath>
#include <vector>

#include "apps/swgan/swgan.h"
#include "gtest/gtest.h"
#include "nn/autograd.h"
#include "nn/ops.h"
#include "nn/random.h"
#include "nn/tensor.h"
#include "optim/adam.h"
#include "ot/cost.h"
#include "ot/exact.h"
#include "ot/regularized_dual.h"
#include "ot/sinkhorn.h"

namespace otgen::apps::swgan {
namespace {

using nn::Tensor;
using nn::Var;

struct Solved {
  DualEstimate estimate;
  double objective = 0;
};

// Maximizes EvaluateDual's objective over free potentials phi [n], psi [m] with Adam.
Solved SolveDual(const Tensor& cost, const ot::RegularizedDualOptions& options, int iterations) {
  Var phi = Var::Parameter(Tensor::Zeros({cost.dim(0)}));
  Var psi = Var::Parameter(Tensor::Zeros({cost.dim(1)}));
  auto adam = optim::Adam::Create({phi, psi}, {.lr = 0.02f, .beta1 = 0.9f, .beta2 = 0.999f}).value();
  for (int it = 0; it < iterations; ++it) {
    if (it == iterations / 2) adam->set_learning_rate(0.002f);
    if (it == 3 * iterations / 4) adam->set_learning_rate(0.0002f);
    DualEstimate e = EvaluateDual(phi, psi, cost, options).value();
    adam->ZeroGrad();
    nn::Backward(nn::Neg(e.objective));
    adam->Step();
  }
  Solved s;
  s.estimate = EvaluateDual(phi, psi, cost, options).value();
  s.objective = s.estimate.objective.item();
  return s;
}

Tensor ToTensor(const ot::RowMatrixXf& m) {
  return Tensor::FromData({m.rows(), m.cols()}, absl::MakeConstSpan(m.data(), m.size())).value();
}

TEST(RegularizedDualTest, KlDualRecoversTheEntropicPlanOfSinkhorn) {
  // n = 4 generated, m = 5 data points: the KL-regularized problem is entropic OT with
  // epsilon = lambda, whose plan Sinkhorn computes to high accuracy.
  nn::Rng rng(11);
  ot::RowMatrixXf x(4, 2), y(5, 2);
  for (int i = 0; i < x.size(); ++i) x.data()[i] = rng.Normal();
  for (int i = 0; i < y.size(); ++i) y.data()[i] = rng.Normal() + 0.5f;
  const ot::Cost cost = ot::Cost::SquaredEuclidean();
  const ot::RowMatrixXf c = ot::CostMatrix(cost, x, y);
  ot::SinkhornOptions sopt;
  sopt.epsilon = 0.5f;
  sopt.tolerance = 1e-6f;
  sopt.max_iterations = 100000;
  sopt.return_plan = true;
  ot::SinkhornResult exact = ot::Sinkhorn(x, ot::UniformWeights(4), y, ot::UniformWeights(5), cost, sopt).value();
  const ot::RegularizedDualOptions options{.regularizer = ot::Regularizer::kKL, .lambda = 0.5f};
  Solved s = SolveDual(ToTensor(c), options, 6000);
  // d_{c,lambda} = OT_eps with the same KL(pi | q x p) regularization.
  EXPECT_NEAR(s.objective, exact.regularized_cost, 2e-3 * (1 + std::abs(exact.regularized_cost)));
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 5; ++j) {
      // pi = q p m with q = 1/4, p = 1/5.
      EXPECT_NEAR(s.estimate.density.data()[i * 5 + j] / 20.0, exact.plan(i, j), 2e-3) << i << "," << j;
    }
  }
  // Strong duality with the primal value of the pseudo-plan.
  EXPECT_NEAR(ot::RegularizedPrimalValue(s.estimate.density, ToTensor(c), options).value(), s.objective, 5e-3);
  // Not square: no eq. 26 statistic.
  EXPECT_TRUE(std::isnan(s.estimate.statistic));
}

TEST(RegularizedDualTest, L2DualWithSmallLambdaIsTheExactPermutationPlan) {
  // Well separated matching: the exact OT plan is a permutation with clear cost gaps; for
  // lambda below the gaps the norm-2 regularized plan is that permutation (pi = 1/n on it,
  // m = n there and 0 elsewhere), and d_lambda = W + lambda I(pi) with I(pi) = 1/2 E m^2 = n/2.
  const int n = 4;
  ot::RowMatrixXf x(n, 2), y(n, 2);
  x << 0, 0, 3, 0, 0, 3, 3, 3;
  y << 3.2f, 2.9f, 0.1f, -0.2f, 2.8f, 0.3f, -0.1f, 3.1f;
  const ot::Cost cost = ot::Cost::L1();
  const ot::RowMatrixXf c = ot::CostMatrix(cost, x, y);
  ot::ExactOTResult exact = ot::SolveExactOT(x, y, cost).value();
  const ot::RegularizedDualOptions options{.regularizer = ot::Regularizer::kL2, .lambda = 0.05f};
  Solved s = SolveDual(ToTensor(c), options, 8000);
  EXPECT_NEAR(s.objective, exact.cost + options.lambda * n / 2.0, 2e-3);
  const ot::RowMatrixXd plan = exact.DensePlan();
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      EXPECT_NEAR(s.estimate.density.data()[i * n + j] / (n * n), plan(i, j), 2e-3) << i << "," << j;
    }
  }
  // Eq. 26 statistic: the mean of m over the pairs (x_k, y_k).
  double diagonal = 0;
  for (int k = 0; k < n; ++k) diagonal += s.estimate.density.data()[k * n + k] / n;
  EXPECT_NEAR(s.estimate.statistic, diagonal, 1e-6);
  EXPECT_NEAR(ot::RegularizedPrimalValue(s.estimate.density, ToTensor(c), options).value(), s.objective, 5e-3);
}

TEST(RegularizedDualTest, PseudoPlanMarginalsAreUniformAtTheOptimum) {
  // At the dual optimum every row and column of m averages to 1 (grad F = 0, D.3 eq. 25): the
  // quantities whose sampled version eq. 26 uses as the discriminator's stopping test.
  nn::Rng rng(13);
  ot::RowMatrixXf x(5, 2), y(5, 2);
  for (int i = 0; i < x.size(); ++i) x.data()[i] = rng.Normal();
  for (int i = 0; i < y.size(); ++i) y.data()[i] = rng.Normal();
  const ot::RowMatrixXf c = ot::CostMatrix(ot::Cost::L1(), x, y);
  for (ot::Regularizer r : {ot::Regularizer::kKL, ot::Regularizer::kL2}) {
    const ot::RegularizedDualOptions options{.regularizer = r, .lambda = 0.3f};
    Solved s = SolveDual(ToTensor(c), options, 6000);
    for (int i = 0; i < 5; ++i) {
      double row = 0, col = 0;
      for (int j = 0; j < 5; ++j) {
        row += s.estimate.density.data()[i * 5 + j] / 5;
        col += s.estimate.density.data()[j * 5 + i] / 5;
      }
      EXPECT_NEAR(row, 1.0, 1e-2);
      EXPECT_NEAR(col, 1.0, 1e-2);
    }
  }
}

TEST(RegularizedDualTest, SinkhornAndLatentGeneratorLossesCombineTheTerms) {
  const Tensor c1 = Tensor::FromVector({2, 2}, {1, 2, 3, 4});
  const Tensor m1 = Tensor::FromVector({2, 2}, {1, 0, 0, 2});
  const Tensor c2 = Tensor::FromVector({2, 2}, {0, 5, 5, 0});
  const Tensor m2 = Tensor::FromVector({2, 2}, {0, 1, 1, 0});
  // mean(m1 c1) = (1 + 8) / 4, mean(m2 c2) = 10 / 4.
  Var v1 = Var::Parameter(c1.Clone());
  Var v2 = Var::Parameter(c2.Clone());
  Var l = SinkhornGeneratorLoss(v1, m1, v2, m2).value();
  EXPECT_NEAR(l.item(), 2 * 9.0 / 4 - 10.0 / 4, 1e-6);
  std::vector<Var> g = nn::Grad({l}, {v1, v2});
  EXPECT_NEAR(g[0].value().data()[3], 2 * 2.0 / 4, 1e-6);
  EXPECT_NEAR(g[1].value().data()[1], -1.0 / 4, 1e-6);
  Var s = LatentSurrogate(v1, m1, v2, m2, v1, m1).value();
  EXPECT_NEAR(s.item(), 3 * 9.0 / 4 + 10.0 / 4, 1e-6);
  EXPECT_FALSE(SinkhornGeneratorLoss(v1, Tensor::Zeros({3, 2}), v2, m2).ok());
}

}  // namespace
}  // namespace otgen::apps::swgan
