#include "ot/stochastic_semi_dual.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/random.h"
#include "ot/cost.h"
#include "ot/exact.h"
#include "ot/sinkhorn.h"
#include "ot/types.h"

namespace otgen::ot {
namespace {

using ::testing::HasSubstr;
using Solver = StochasticSemiDualSolver;
using Options = StochasticSemiDualOptions;

RowMatrixXf RandomPoints(nn::Rng& rng, int n, int d) {
  RowMatrixXf p(n, d);
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < d; ++k) p(i, k) = rng.Uniform();
  }
  return p;
}

// Strongly non-uniform weights (ratios up to 10), summing to 1.
Eigen::VectorXf RandomWeights(nn::Rng& rng, int n) {
  Eigen::VectorXd w(n);
  for (int i = 0; i < n; ++i) w[i] = rng.Uniform(0.1f, 1.0f);
  return (w / w.sum()).cast<float>();
}

// ---- Double-precision references ------------------------------------------------------------

// psi^{c,lambda}(i) in double (lambda = 0: min over the support of b); weights pi_i if not null.
double CTransformDouble(const Eigen::MatrixXd& c, const Eigen::VectorXd& b, double lambda,
                        const Eigen::VectorXd& psi, int i, Eigen::VectorXd* pi = nullptr) {
  const int m = static_cast<int>(c.cols());
  if (lambda == 0.0) {
    double best = std::numeric_limits<double>::infinity();
    int arg = -1;
    for (int j = 0; j < m; ++j) {
      if (b[j] > 0.0 && c(i, j) - psi[j] < best) {
        best = c(i, j) - psi[j];
        arg = j;
      }
    }
    if (pi != nullptr) {
      pi->setZero(m);
      (*pi)[arg] = 1.0;
    }
    return best;
  }
  double vmax = -std::numeric_limits<double>::infinity();
  for (int j = 0; j < m; ++j) {
    if (b[j] > 0.0) vmax = std::max(vmax, (psi[j] - c(i, j)) / lambda);
  }
  double sum = 0.0;
  Eigen::VectorXd e = Eigen::VectorXd::Zero(m);
  for (int j = 0; j < m; ++j) {
    if (b[j] > 0.0) e[j] = b[j] * std::exp((psi[j] - c(i, j)) / lambda - vmax);
    sum += e[j];
  }
  if (pi != nullptr) *pi = e / sum;
  return -lambda * (vmax + std::log(sum));
}

// F(psi) in double, and its gradient b - sum_i a_i pi_i if `grad` is not null.
double SemiDualDouble(const Eigen::MatrixXd& c, const Eigen::VectorXd& a, const Eigen::VectorXd& b,
                      double lambda, const Eigen::VectorXd& psi, Eigen::VectorXd* grad = nullptr) {
  double f = b.dot(psi);
  if (grad != nullptr) *grad = b;
  Eigen::VectorXd pi;
  for (int i = 0; i < c.rows(); ++i) {
    f += a[i] * CTransformDouble(c, b, lambda, psi, i, &pi);
    if (grad != nullptr) *grad -= a[i] * pi;
  }
  return f;
}

// max_psi F for lambda > 0 by log-domain Sinkhorn in double (alternating exact maximizations of
// the dual; at the fixed point g maximizes F). Returns F(g*).
double SoftOptimumDouble(const Eigen::MatrixXd& c, const Eigen::VectorXd& a, const Eigen::VectorXd& b,
                         double lambda) {
  const Eigen::MatrixXd ct = c.transpose();
  Eigen::VectorXd g = Eigen::VectorXd::Zero(c.cols()), f(c.rows());
  for (int it = 0; it < 100000; ++it) {
    for (int i = 0; i < c.rows(); ++i) f[i] = CTransformDouble(c, b, lambda, g, i);
    double change = 0.0;
    for (int j = 0; j < c.cols(); ++j) {
      const double gj = CTransformDouble(ct, a, lambda, f, j);
      change = std::max(change, std::abs(gj - g[j]));
      g[j] = gj;
    }
    if (change < 1e-13) break;
  }
  Eigen::VectorXd grad;
  const double value = SemiDualDouble(c, a, b, lambda, g, &grad);
  EXPECT_LT(grad.lpNorm<1>(), 1e-9) << "the double reference did not converge";
  return value;
}

struct Problem {
  RowMatrixXf x, y, c;
  Eigen::VectorXf a, b;
  Eigen::MatrixXd cd;  // C in double
  Eigen::VectorXd ad, bd;
};

Problem MakeProblem(int n, int m, int d, uint64_t seed, bool uniform = false) {
  nn::Rng rng(seed);
  Problem p;
  p.x = RandomPoints(rng, n, d);
  p.y = RandomPoints(rng, m, d);
  p.c = CostMatrix(Cost::SquaredEuclidean(), p.x, p.y);
  p.a = uniform ? Eigen::VectorXf::Constant(n, 1.0f / n) : RandomWeights(rng, n);
  p.b = uniform ? Eigen::VectorXf::Constant(m, 1.0f / m) : RandomWeights(rng, m);
  p.cd = p.c.cast<double>();
  p.ad = p.a.cast<double>() / p.a.cast<double>().sum();
  p.bd = p.b.cast<double>() / p.b.cast<double>().sum();
  return p;
}

std::unique_ptr<Solver> MakeSolver(const Problem& p, const Options& o) {
  auto s = Solver::Create(p.c, p.a, p.b, o);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(*s) : nullptr;
}

// ---- (a) lambda > 0: the Sinkhorn optimum ----------------------------------------------------

// max_psi F(psi) = OT_lambda(a, b) with KL(P | a (x) b), which is ot::Sinkhorn's
// regularized_cost at epsilon = lambda: the Sinkhorn dual <a, f> + <b, g> - eps sum_ij a_i b_j
// (exp((f_i + g_j - C_ij) / eps) - 1), maximized over f for fixed g, has f_i =
// -eps log sum_j b_j exp((g_j - C_ij) / eps) = g^{c,eps}(i), where the exponential term equals
// -eps (sum_i a_i - 1) = 0: the dual becomes <a, g^{c,eps}> + <b, g> = F(g). Both are checked
// against a double-precision Sinkhorn fixed point.
TEST(StochasticSemiDualTest, SoftAsgdReachesTheSinkhornOptimum) {
  const Problem p = MakeProblem(40, 30, 2, 1);
  const float lambda = 0.05f;
  const double optimum = SoftOptimumDouble(p.cd, p.ad, p.bd, lambda);

  SinkhornOptions so;
  so.epsilon = lambda;
  so.tolerance = 1e-6f;
  so.max_iterations = 100000;
  auto sinkhorn = Sinkhorn(p.x, p.a, p.y, p.b, Cost::SquaredEuclidean(), so);
  ASSERT_TRUE(sinkhorn.ok()) << sinkhorn.status();
  EXPECT_NEAR(sinkhorn->regularized_cost, optimum, 2e-5);

  Options o;
  o.lambda = lambda;
  o.gamma = 1.0f;
  o.iterations = 100000;
  o.seed = 3;
  o.check_every = 25000;
  o.return_plan = true;
  auto solver = MakeSolver(p, o);
  ASSERT_NE(solver, nullptr);
  double gap_first = 0.0;
  for (int round = 0; round < 3; ++round) {
    auto r = solver->Solve();
    ASSERT_TRUE(r.ok()) << r.status();
    const double gap = optimum - r->objective;
    std::printf("round %d: F=%.9f optimum=%.9f gap=%.3e marginal_error=%.3e (%s)\n", round, r->objective,
                optimum, gap, r->marginal_error, r->Summary().c_str());
    // Weak duality: no psi exceeds the optimum (up to float rounding of F).
    EXPECT_GT(gap, -1e-6);
    if (round == 0) gap_first = gap;
    ASSERT_EQ(r->history.size(), 4u);
    EXPECT_EQ(r->history.back().step, r->run_steps);
    EXPECT_NEAR(r->history.back().objective, r->objective, 1e-9);
    // The result agrees with the double reference at the returned psi.
    const Eigen::VectorXd psi = r->psi.cast<double>();
    EXPECT_NEAR(r->objective, SemiDualDouble(p.cd, p.ad, p.bd, lambda, psi), 1e-5);
    // The plan: rows sum to a, and its column error is the reported marginal error, which is
    // ||grad F||_1 at psi.
    ASSERT_EQ(r->plan.rows(), 40);
    ASSERT_EQ(r->plan.cols(), 30);
    EXPECT_LT((r->plan.rowwise().sum().cast<double>() - p.ad).lpNorm<Eigen::Infinity>(), 1e-6);
    const double col_error = (r->plan.colwise().sum().transpose().cast<double>() - p.bd).lpNorm<1>();
    EXPECT_NEAR(r->marginal_error, col_error, 1e-5);
    Eigen::VectorXd grad;
    SemiDualDouble(p.cd, p.ad, p.bd, lambda, psi, &grad);
    EXPECT_NEAR(r->marginal_error, grad.lpNorm<1>(), 1e-4);
    if (round == 2) {
      EXPECT_LT(gap, 1e-5);
      EXPECT_LT(r->marginal_error, 1e-2);
      EXPECT_LT(gap, gap_first);
      EXPECT_EQ(r->run_steps, 300000);
    }
  }
}

// Mini-batches of 8 reach the same optimum.
TEST(StochasticSemiDualTest, SoftMinibatchAsgdReachesTheOptimum) {
  const Problem p = MakeProblem(25, 20, 3, 7);
  const float lambda = 0.1f;
  const double optimum = SoftOptimumDouble(p.cd, p.ad, p.bd, lambda);
  Options o;
  o.lambda = lambda;
  o.gamma = 2.0f;
  o.batch_size = 8;
  o.iterations = 40000;
  o.compute_marginal_error = true;
  auto solver = MakeSolver(p, o);
  ASSERT_NE(solver, nullptr);
  auto r = solver->Solve();
  ASSERT_TRUE(r.ok());
  std::printf("minibatch: gap=%.3e marginal_error=%.3e\n", optimum - r->objective, r->marginal_error);
  EXPECT_GT(optimum - r->objective, -1e-6);
  EXPECT_LT(optimum - r->objective, 1e-5);
  EXPECT_LT(r->marginal_error, 1e-2);
  EXPECT_EQ(r->plan.size(), 0);
}

// ---- (b) lambda = 0: the exact OT cost -------------------------------------------------------

// Strong duality of the linear program: max_psi F(psi) with the hard c-transform is the exact
// OT cost; F(psi) <= OT for every psi. ASGD converges in F at rate O(log k / sqrt(k)).
TEST(StochasticSemiDualTest, HardAsgdReachesTheExactOtCost) {
  const Problem p = MakeProblem(12, 9, 2, 11);
  auto exact = SolveExactOT(p.cd, p.ad, p.bd);
  ASSERT_TRUE(exact.ok()) << exact.status();
  ASSERT_TRUE(exact->optimal());
  const double ot = exact->cost;

  Options o;
  o.lambda = 0.0f;
  o.gamma = 0.5f;
  o.iterations = 200000;
  o.seed = 5;
  o.return_plan = true;
  auto solver = MakeSolver(p, o);
  ASSERT_NE(solver, nullptr);
  double first_gap = 0.0;
  for (int round = 0; round < 2; ++round) {
    auto r = solver->Solve();
    ASSERT_TRUE(r.ok());
    const double gap = ot - r->objective;
    std::printf("hard round %d: F=%.9f OT=%.9f gap=%.3e marginal_error=%.3e\n", round, r->objective, ot, gap,
                r->marginal_error);
    EXPECT_GT(gap, -1e-6);  // weak duality
    EXPECT_NEAR(r->objective, SemiDualDouble(p.cd, p.ad, p.bd, 0.0, r->psi.cast<double>()), 1e-6);
    // The plan puts each row's mass on its argmin.
    for (int i = 0; i < 12; ++i) {
      Eigen::VectorXd pi;
      CTransformDouble(p.cd, p.bd, 0.0, r->psi.cast<double>(), i, &pi);
      for (int j = 0; j < 9; ++j) EXPECT_NEAR(r->plan(i, j), p.ad[i] * pi[j], 1e-7) << i << " " << j;
    }
    if (round == 0) first_gap = gap;
    if (round == 1) {
      EXPECT_LT(gap, 1e-2 * ot);
      EXPECT_LE(gap, first_gap);
    }
  }
}

// ---- (c) gradients in psi ------------------------------------------------------------------

TEST(StochasticSemiDualTest, SoftCTransformGradientMatchesFiniteDifferences) {
  const Problem p = MakeProblem(5, 7, 3, 21);
  Options o;
  o.lambda = 0.3f;
  auto solver = MakeSolver(p, o);
  ASSERT_NE(solver, nullptr);
  nn::Rng rng(4);
  Eigen::VectorXf psi(7);
  for (int j = 0; j < 7; ++j) psi[j] = rng.Uniform(-0.5f, 0.5f);
  const float h = 1e-2f;
  for (int i = 0; i < 5; ++i) {
    Eigen::VectorXf weights;
    auto value = solver->CTransformRow(i, psi, &weights);
    ASSERT_TRUE(value.ok());
    Eigen::VectorXd ref_pi;
    const double ref = CTransformDouble(p.cd, p.bd, o.lambda, psi.cast<double>(), i, &ref_pi);
    EXPECT_NEAR(*value, ref, 1e-6);
    EXPECT_NEAR(weights.sum(), 1.0f, 1e-5f);
    for (int j = 0; j < 7; ++j) {
      EXPECT_NEAR(weights[j], ref_pi[j], 1e-5);
      Eigen::VectorXf plus = psi, minus = psi;
      plus[j] += h;
      minus[j] -= h;
      const double fd = (*solver->CTransformRow(i, plus) - *solver->CTransformRow(i, minus)) / (2.0 * h);
      EXPECT_NEAR(fd, -weights[j], 1e-3) << "row " << i << " target " << j;
    }
  }
  // The supergradient of F: b - sum_i a_i pi_i.
  Eigen::VectorXd grad;
  SemiDualDouble(p.cd, p.ad, p.bd, o.lambda, psi.cast<double>(), &grad);
  for (int j = 0; j < 7; ++j) {
    Eigen::VectorXf plus = psi, minus = psi;
    plus[j] += h;
    minus[j] -= h;
    const double fd = (*solver->SemiDual(plus) - *solver->SemiDual(minus)) / (2.0 * h);
    EXPECT_NEAR(fd, grad[j], 1e-3) << "target " << j;
  }
}

TEST(StochasticSemiDualTest, HardCTransformGradientMatchesFiniteDifferences) {
  const Problem p = MakeProblem(6, 20, 2, 22);
  Options o;
  o.lambda = 0.0f;
  auto solver = MakeSolver(p, o);
  ASSERT_NE(solver, nullptr);
  nn::Rng rng(6);
  Eigen::VectorXf psi(20);
  for (int j = 0; j < 20; ++j) psi[j] = rng.Uniform(-0.2f, 0.2f);
  for (int i = 0; i < 6; ++i) {
    // Keep the perturbation below half the gap between the two smallest keys (no argmin change).
    std::vector<double> keys;
    for (int j = 0; j < 20; ++j) keys.push_back(p.cd(i, j) - psi[j]);
    std::sort(keys.begin(), keys.end());
    const float h = static_cast<float>(std::min(1e-3, (keys[1] - keys[0]) / 4));
    ASSERT_GT(h, 1e-6f);
    Eigen::VectorXf weights;
    auto value = solver->CTransformRow(i, psi, &weights);
    ASSERT_TRUE(value.ok());
    EXPECT_NEAR(*value, keys[0], 1e-6);
    EXPECT_EQ(weights.sum(), 1.0f);
    for (int j = 0; j < 20; ++j) {
      Eigen::VectorXf plus = psi, minus = psi;
      plus[j] += h;
      minus[j] -= h;
      const double fd = (*solver->CTransformRow(i, plus) - *solver->CTransformRow(i, minus)) /
                        static_cast<double>(plus[j] - minus[j]);
      EXPECT_NEAR(fd, -weights[j], 2e-3) << "row " << i << " target " << j;
    }
  }
}

// ---- (d) ASGD = explicit average of the SGD iterates -------------------------------------------

void ExpectAsgdIsTheAverageOfSgd(float lambda, int batch_size, float alpha) {
  SCOPED_TRACE(testing::Message() << "lambda=" << lambda << " batch=" << batch_size << " alpha=" << alpha);
  const Problem p = MakeProblem(17, 21, 2, 31);
  Options o;
  o.lambda = lambda;
  o.gamma = 0.7f;
  o.alpha = alpha;
  o.batch_size = batch_size;
  o.seed = 99;
  o.method = StochasticSemiDualMethod::kSgd;
  auto sgd = MakeSolver(p, o);
  o.method = StochasticSemiDualMethod::kAsgd;
  auto asgd = MakeSolver(p, o);
  ASSERT_NE(sgd, nullptr);
  ASSERT_NE(asgd, nullptr);
  // A warm start: the run begins at psi~_0 = start (not part of the average).
  Eigen::VectorXf start(21);
  for (int j = 0; j < 21; ++j) start[j] = 0.01f * static_cast<float>(j % 5);
  ASSERT_TRUE(sgd->SetPsi(start).ok());
  ASSERT_TRUE(asgd->SetPsi(start).ok());
  EXPECT_EQ(asgd->psi(), start);

  constexpr int kSteps = 60;
  Eigen::VectorXd sum = Eigen::VectorXd::Zero(21);
  for (int k = 1; k <= kSteps; ++k) {
    sgd->Step();
    asgd->Step();
    const Eigen::VectorXd iterate = sgd->psi_iterate_double();
    // Same seed and step schedule: the same iterates; SGD's estimate is its iterate.
    ASSERT_EQ(asgd->psi_iterate_double(), iterate) << "step " << k;
    EXPECT_EQ(sgd->psi_double(), iterate);
    sum += iterate;
    const Eigen::VectorXd average = sum / k;
    EXPECT_LT((asgd->psi_double() - average).lpNorm<Eigen::Infinity>(), 1e-12 * (1.0 + average.norm()))
        << "step " << k;
  }
  // The iterates moved (the test is not vacuous).
  EXPECT_GT((sgd->psi_iterate_double() - start.cast<double>()).norm(), 1e-3);
  EXPECT_GT((asgd->psi_double() - asgd->psi_iterate_double()).norm(), 1e-4);
  EXPECT_EQ(asgd->run_steps(), kSteps);

  // RestartAveraging: a new run from the average.
  const Eigen::VectorXd average = asgd->psi_double();
  asgd->RestartAveraging();
  EXPECT_EQ(asgd->run_steps(), 0);
  EXPECT_LT((asgd->psi_double() - average).lpNorm<Eigen::Infinity>(), 1e-15 + 1e-12 * average.norm());
  EXPECT_LT((asgd->psi_iterate_double() - average).lpNorm<Eigen::Infinity>(), 1e-15 + 1e-12 * average.norm());
}

TEST(StochasticSemiDualTest, AsgdIsTheAverageOfTheSgdIterates) {
  ExpectAsgdIsTheAverageOfSgd(0.05f, 1, 0.5f);
  ExpectAsgdIsTheAverageOfSgd(0.05f, 3, 0.7f);
  ExpectAsgdIsTheAverageOfSgd(0.0f, 1, 0.5f);
  ExpectAsgdIsTheAverageOfSgd(0.0f, 4, 1.0f);
}

// ---- (e) seeds and runs ------------------------------------------------------------------------

TEST(StochasticSemiDualTest, SameSeedSamePsiDifferentSeedDifferentPsi) {
  const Problem p = MakeProblem(30, 25, 2, 41);
  for (float lambda : {0.05f, 0.0f}) {
    Options o;
    o.lambda = lambda;
    o.iterations = 2000;
    o.seed = 123;
    auto r1 = MakeSolver(p, o)->Solve();
    auto r2 = MakeSolver(p, o)->Solve();
    o.seed = 124;
    auto r3 = MakeSolver(p, o)->Solve();
    ASSERT_TRUE(r1.ok() && r2.ok() && r3.ok());
    EXPECT_EQ(r1->psi, r2->psi) << "lambda " << lambda;
    EXPECT_EQ(r1->objective, r2->objective);
    EXPECT_GT((r1->psi - r3->psi).norm(), 1e-4) << "lambda " << lambda;
  }
}

TEST(StochasticSemiDualTest, SolveContinuesTheRunAndSetPsiRestartsIt) {
  const Problem p = MakeProblem(15, 12, 2, 51);
  for (float lambda : {0.1f, 0.0f}) {
    Options o;
    o.lambda = lambda;
    o.iterations = 300;
    auto split = MakeSolver(p, o);
    ASSERT_TRUE(split->Solve().ok());
    auto second = split->Solve();
    auto whole = MakeSolver(p, o)->Solve(600);
    ASSERT_TRUE(second.ok() && whole.ok());
    EXPECT_EQ(second->psi, whole->psi) << "lambda " << lambda;
    EXPECT_EQ(second->run_steps, 600);
    EXPECT_EQ(second->iterations, 300);
    EXPECT_EQ(split->total_steps(), 600);

    // SetPsi: a new run from psi (k = 0); the step sizes restart at gamma.
    const Eigen::VectorXf psi = second->psi;
    ASSERT_TRUE(split->SetPsi(psi).ok());
    EXPECT_EQ(split->run_steps(), 0);
    EXPECT_EQ(split->psi(), psi);
    EXPECT_EQ(split->psi_iterate(), psi);
    EXPECT_NEAR(*split->SemiDual(psi), second->objective, 1e-6);
    auto third = split->Solve();
    ASSERT_TRUE(third.ok());
    EXPECT_EQ(third->run_steps, 300);
    EXPECT_EQ(split->total_steps(), 900);
  }
}

TEST(StochasticSemiDualTest, CreateFromPointsBuildsTheCostMatrix) {
  // d = 2: direct differences, identical to CostMatrix; d = 40: centred sgemm form.
  for (int d : {2, 40}) {
    nn::Rng rng(61);
    RowMatrixXf x = RandomPoints(rng, 20, d), y = RandomPoints(rng, 15, d);
    x.array() += 30.0f;  // far from the origin: centring keeps the sgemm form accurate
    y.array() += 30.0f;
    const Eigen::VectorXf a = RandomWeights(rng, 20), b = RandomWeights(rng, 15);
    Options o;
    o.lambda = 0.05f;
    o.iterations = 500;
    const Cost cost = Cost::SquaredEuclidean(2.0f);
    auto from_points = Solver::CreateFromPoints(x, a, y, b, cost, o);
    ASSERT_TRUE(from_points.ok()) << from_points.status();
    const RowMatrixXf& c = (*from_points)->cost_matrix();
    ASSERT_EQ(c.rows(), 20);
    ASSERT_EQ(c.cols(), 15);
    double max_error = 0.0;
    for (int i = 0; i < 20; ++i) {
      for (int j = 0; j < 15; ++j) {
        const double ref = EvaluateCost(cost, {x.row(i).data(), static_cast<size_t>(d)},
                                        {y.row(j).data(), static_cast<size_t>(d)});
        max_error = std::max(max_error, std::abs(c(i, j) - ref));
      }
    }
    EXPECT_LT(max_error, d == 2 ? 1e-5 : 1e-4) << "d " << d;
    if (d == 2) {
      auto from_matrix = Solver::Create(CostMatrix(cost, x, y), a, b, o);
      ASSERT_TRUE(from_matrix.ok());
      auto r1 = (*from_points)->Solve();
      auto r2 = (*from_matrix)->Solve();
      ASSERT_TRUE(r1.ok() && r2.ok());
      EXPECT_EQ(r1->psi, r2->psi);
    }
  }
}

// Zero weights: sources of weight 0 are never drawn, targets of weight 0 are outside the support
// (psi_j never changes, no mass). ASGD still reaches the optimum of the reduced problem.
TEST(StochasticSemiDualTest, ZeroWeightsAreOutsideTheSupport) {
  Problem p = MakeProblem(12, 10, 2, 71);
  p.a[3] = 0.0f;
  p.b[6] = 0.0f;
  p.a /= p.a.sum();
  p.b /= p.b.sum();
  p.ad = p.a.cast<double>() / p.a.cast<double>().sum();
  p.bd = p.b.cast<double>() / p.b.cast<double>().sum();
  // Source 3 sits on target 6 at zero cost: if either were used, psi and the plan would show it.
  p.c.row(3).setConstant(5.0f);
  p.c(3, 6) = 0.0f;
  p.cd = p.c.cast<double>();
  for (float lambda : {0.1f, 0.0f}) {
    Options o;
    o.lambda = lambda;
    o.iterations = 100000;
    o.gamma = 0.5f;
    o.return_plan = true;
    auto solver = MakeSolver(p, o);
    ASSERT_NE(solver, nullptr);
    Eigen::VectorXf start = Eigen::VectorXf::Zero(10);
    start[6] = 0.25f;
    ASSERT_TRUE(solver->SetPsi(start).ok());
    auto r = solver->Solve();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->psi[6], 0.25f) << "lambda " << lambda;
    EXPECT_EQ(r->plan.col(6).norm(), 0.0f);
    EXPECT_EQ(r->plan.row(3).norm(), 0.0f);
    double optimum;
    if (lambda > 0.0f) {
      optimum = SoftOptimumDouble(p.cd, p.ad, p.bd, lambda);
    } else {
      auto exact = SolveExactOT(p.cd, p.ad, p.bd);
      ASSERT_TRUE(exact.ok());
      optimum = exact->cost;
    }
    std::printf("zero weights lambda %g: gap %.3e\n", lambda, optimum - r->objective);
    EXPECT_GT(optimum - r->objective, -1e-6);
    EXPECT_LT(optimum - r->objective, lambda > 0.0f ? 1e-4 : 5e-3);
  }
}

// ---- (f) bad input -------------------------------------------------------------------------------

void ExpectInvalid(const absl::Status& status, const char* name) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(name));
}

TEST(StochasticSemiDualTest, RejectsBadInput) {
  const Problem p = MakeProblem(4, 3, 2, 81);
  const Options good;
  auto create = [&](const RowMatrixXf& c, const Eigen::VectorXf& a, const Eigen::VectorXf& b,
                    const Options& o) { return Solver::Create(c, a, b, o).status(); };
  EXPECT_TRUE(create(p.c, p.a, p.b, good).ok());

  // Options.
  auto with = [&](auto edit) {
    Options o = good;
    edit(o);
    return create(p.c, p.a, p.b, o);
  };
  ExpectInvalid(with([](Options& o) { o.lambda = -0.1f; }), "StochasticSemiDualOptions.lambda");
  ExpectInvalid(with([](Options& o) { o.lambda = std::nanf(""); }), "StochasticSemiDualOptions.lambda");
  ExpectInvalid(with([](Options& o) { o.gamma = 0.0f; }), "StochasticSemiDualOptions.gamma");
  ExpectInvalid(with([](Options& o) { o.gamma = -1.0f; }), "StochasticSemiDualOptions.gamma");
  ExpectInvalid(with([](Options& o) { o.gamma = INFINITY; }), "StochasticSemiDualOptions.gamma");
  ExpectInvalid(with([](Options& o) { o.alpha = 0.0f; }), "StochasticSemiDualOptions.alpha");
  ExpectInvalid(with([](Options& o) { o.alpha = 1.5f; }), "StochasticSemiDualOptions.alpha");
  EXPECT_TRUE(with([](Options& o) { o.alpha = 1.0f; }).ok());
  ExpectInvalid(with([](Options& o) { o.iterations = 0; }), "StochasticSemiDualOptions.iterations");
  ExpectInvalid(with([](Options& o) { o.batch_size = 0; }), "StochasticSemiDualOptions.batch_size");
  ExpectInvalid(with([](Options& o) { o.check_every = -1; }), "StochasticSemiDualOptions.check_every");

  // Cost matrix.
  ExpectInvalid(create(RowMatrixXf(0, 3), Eigen::VectorXf(0), p.b, good), "cost_matrix");
  ExpectInvalid(create(RowMatrixXf(4, 0), p.a, Eigen::VectorXf(0), good), "cost_matrix");
  RowMatrixXf bad = p.c;
  bad(1, 2) = std::nanf("");
  ExpectInvalid(create(bad, p.a, p.b, good), "cost_matrix: entry (1, 2) is nan");
  bad(1, 2) = -INFINITY;
  ExpectInvalid(create(bad, p.a, p.b, good), "cost_matrix: entry (1, 2) is -inf");

  // Weights: size, sign, sum, finiteness.
  ExpectInvalid(create(p.c, p.b, p.b, good), "source_weights: expected 4 entries");
  ExpectInvalid(create(p.c, p.a, p.a, good), "target_weights: expected 3 entries");
  Eigen::VectorXf a = p.a;
  a[0] = -a[0];
  ExpectInvalid(create(p.c, a, p.b, good), "source_weights: entry 0");
  a = p.a * 0.9f;
  ExpectInvalid(create(p.c, a, p.b, good), "source_weights: expected 4 non-negative entries summing to 1");
  Eigen::VectorXf b = p.b;
  b[2] = std::nanf("");
  ExpectInvalid(create(p.c, p.a, b, good), "target_weights: entry 2");
  b = p.b * 1.01f;
  ExpectInvalid(create(p.c, p.a, b, good), "target_weights: expected 3 non-negative entries summing to 1");

  // Points.
  const Cost cost = Cost::SquaredEuclidean();
  auto from_points = [&](const RowMatrixXf& x, const RowMatrixXf& y, const Cost& c) {
    return Solver::CreateFromPoints(x, p.a, y, p.b, c, good).status();
  };
  EXPECT_TRUE(from_points(p.x, p.y, cost).ok());
  ExpectInvalid(from_points(p.x, RowMatrixXf::Zero(3, 5), cost), "target_points: expected 2 columns");
  RowMatrixXf x = p.x;
  x(2, 1) = INFINITY;
  ExpectInvalid(from_points(x, p.y, cost), "source_points");
  ExpectInvalid(from_points(RowMatrixXf(0, 2), p.y, cost), "source_points");
  ExpectInvalid(from_points(p.x, p.y, Cost::SquaredEuclidean(0.0f)), "cost");
  ExpectInvalid(Solver::CreateFromPoints(p.x, p.b, p.y, p.b, cost, good).status(), "source_weights");

  // Methods of a valid solver.
  auto solver = MakeSolver(p, good);
  ASSERT_NE(solver, nullptr);
  ExpectInvalid(solver->SetPsi(Eigen::VectorXf::Zero(4)), "psi: expected 3 entries");
  Eigen::VectorXf psi = Eigen::VectorXf::Zero(3);
  psi[1] = std::nanf("");
  ExpectInvalid(solver->SetPsi(psi), "psi: entry 1 is nan");
  ExpectInvalid(solver->SemiDual(psi).status(), "psi: entry 1");
  ExpectInvalid(solver->TransportPlan(Eigen::VectorXf::Zero(2)).status(), "psi: expected 3");
  ExpectInvalid(solver->CTransformRow(4, Eigen::VectorXf::Zero(3)).status(), "i: expected a source row in [0, 4)");
  ExpectInvalid(solver->Solve(0).status(), "iterations");
  // The failed calls left the solver usable.
  EXPECT_EQ(solver->psi(), Eigen::VectorXf::Zero(3));
  EXPECT_TRUE(solver->Solve(10).ok());
}

}  // namespace
}  // namespace otgen::ot
