#include "ot/sinkhorn.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ot/cost.h"
#include "ot/types.h"

namespace otgen::ot {
namespace {

using ::testing::HasSubstr;

// Deterministic random data (the oracles are exact, the data need not vary between runs).
std::mt19937_64 SeededGen(int seed) {
  std::seed_seq seq{seed};
  return std::mt19937_64(seq);
}

RowMatrixXf RandomCloud(std::mt19937_64& gen, int n, int d, float lo = -1.0f, float hi = 1.0f) {
  RowMatrixXf p(n, d);
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < d; ++k) p(i, k) = absl::Uniform(gen, lo, hi);
  }
  return p;
}

Eigen::VectorXf RandomWeights(std::mt19937_64& gen, int n) {
  Eigen::VectorXd w(n);
  for (int i = 0; i < n; ++i) w[i] = absl::Uniform(gen, 0.2, 1.0);
  w /= w.sum();
  return w.cast<float>();
}

// Double-precision cost matrix from the pair reference of ot/cost.h.
Eigen::MatrixXd CostMatrixDouble(const Cost& cost, const RowMatrixXf& x, const RowMatrixXf& y) {
  Eigen::MatrixXd c(x.rows(), y.rows());
  for (int i = 0; i < x.rows(); ++i) {
    for (int j = 0; j < y.rows(); ++j) {
      c(i, j) = EvaluateCost(cost, absl::Span<const float>(x.row(i).data(), x.cols()),
                             absl::Span<const float>(y.row(j).data(), y.cols()));
    }
  }
  return c;
}

// Exact OT between uniform clouds of equal size n <= 8: the best permutation (an optimal plan
// of the assignment LP is a permutation matrix / n). Also returns the optimal permutation and
// the average cost of the second-best permutation.
double BruteForceExactOt(const Eigen::MatrixXd& c, std::vector<int>* best_perm = nullptr,
                         double* second_best = nullptr) {
  const int n = static_cast<int>(c.rows());
  std::vector<int> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  double best = std::numeric_limits<double>::infinity();
  double second = std::numeric_limits<double>::infinity();
  do {
    double total = 0.0;
    for (int i = 0; i < n; ++i) total += c(i, perm[i]);
    if (total < best) {
      second = best;
      best = total;
      if (best_perm != nullptr) *best_perm = perm;
    } else if (total < second) {
      second = total;
    }
  } while (std::next_permutation(perm.begin(), perm.end()));
  if (second_best != nullptr) *second_best = second / n;
  return best / n;
}

// L1 marginal error of a plan in double.
double PlanMarginalError(const RowMatrixXf& plan, const Eigen::VectorXf& a,
                         const Eigen::VectorXf& b) {
  const Eigen::MatrixXd p = plan.cast<double>();
  return (p.rowwise().sum() - a.cast<double>()).cwiseAbs().sum() +
         (p.colwise().sum().transpose() - b.cast<double>()).cwiseAbs().sum();
}

// <P, C> + eps KL(P | a (x) b) in double.
double PrimalValue(const RowMatrixXf& plan, const Eigen::MatrixXd& c, const Eigen::VectorXf& a,
                   const Eigen::VectorXf& b, double eps) {
  double value = 0.0;
  for (int i = 0; i < plan.rows(); ++i) {
    for (int j = 0; j < plan.cols(); ++j) {
      const double p = plan(i, j);
      value += p * c(i, j);
      if (p > 0.0) value += eps * p * std::log(p / (static_cast<double>(a[i]) * b[j]));
    }
  }
  return value;
}

// A tolerance well below what the tests check, but above the float32 floor of the marginal
// error (about 1e-7 (|f| + |g| + max C) / eps).
SinkhornOptions TightOptions(float eps) {
  SinkhornOptions options;
  options.epsilon = eps;
  options.tolerance = 1e-5f;
  options.max_iterations = 100000;
  return options;
}

TEST(SinkhornTest, MeetsMarginalToleranceAndReportsIt) {
  std::mt19937_64 gen = SeededGen(101);
  const RowMatrixXf x = RandomCloud(gen, 50, 3), y = RandomCloud(gen, 70, 3, 0.0f, 2.0f);
  const Eigen::VectorXf a = RandomWeights(gen, 50), b = RandomWeights(gen, 70);
  for (const float tol : {1e-3f, 1e-5f}) {
    SinkhornOptions options;
    options.epsilon = 0.1f;
    options.tolerance = tol;
    options.return_plan = true;
    absl::StatusOr<SinkhornResult> r = Sinkhorn(x, a, y, b, Cost::SquaredEuclidean(), options);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->converged) << r->Summary();
    EXPECT_LE(r->marginal_error, tol);
    ASSERT_EQ(r->plan.rows(), 50);
    ASSERT_EQ(r->plan.cols(), 70);
    // The reported error is the error of the returned plan.
    EXPECT_NEAR(PlanMarginalError(r->plan, a, b), r->marginal_error,
                0.2 * r->marginal_error + 2e-6);
    // Columns are exact after the g-update.
    const Eigen::VectorXd col = r->plan.cast<double>().colwise().sum().transpose();
    EXPECT_LT((col - b.cast<double>()).cwiseAbs().maxCoeff(), 1e-6);
    EXPECT_EQ(r->f.size(), 50);
    EXPECT_EQ(r->g.size(), 70);
    EXPECT_TRUE(r->precomputed_cost);
  }
}

TEST(SinkhornTest, DualValueEqualsPrimalValueOfThePlan) {
  std::mt19937_64 gen = SeededGen(102);
  const RowMatrixXf x = RandomCloud(gen, 40, 2), y = RandomCloud(gen, 30, 2);
  const Eigen::VectorXf a = RandomWeights(gen, 40), b = RandomWeights(gen, 30);
  for (const Cost& cost : {Cost::SquaredEuclidean(), Cost::Lp(1.0f), Cost::L1(2.0f)}) {
    for (const float eps : {0.5f, 0.05f}) {
      SinkhornOptions options = TightOptions(eps);
      options.return_plan = true;
      absl::StatusOr<SinkhornResult> r = Sinkhorn(x, a, y, b, cost, options);
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_TRUE(r->converged) << r->Summary();
      const double primal = PrimalValue(r->plan, CostMatrixDouble(cost, x, y), a, b, eps);
      // Strong duality: OT_eps (seed 000 eq. 8) = dual value (eq. 9) at the optimum.
      EXPECT_NEAR(r->regularized_cost, primal, 2e-5 * (1.0 + std::fabs(primal)))
          << cost.ToString() << " eps=" << eps;
    }
  }
}

TEST(SinkhornTest, ReportedValueIsTheDualObjectiveAtTheReturnedPotentials) {
  // Unconverged on purpose: the dual objective of seed 000 eq. 9,
  // <a, f> + <b, g> - eps (sum_ij P_ij - 1), must hold for whatever (f, g) is returned.
  std::mt19937_64 gen = SeededGen(120);
  const RowMatrixXf x = RandomCloud(gen, 30, 2), y = RandomCloud(gen, 25, 2);
  const Eigen::VectorXf a = RandomWeights(gen, 30), b = RandomWeights(gen, 25);
  SinkhornOptions options;
  options.epsilon = 0.02f;
  options.epsilon_scaling = false;
  options.max_iterations = 3;
  options.tolerance = 0.0f;
  options.return_plan = true;
  SinkhornSolver solver(options);
  absl::StatusOr<SinkhornResult> r = solver.Solve(x, a, y, b, Cost::SquaredEuclidean());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->converged);
  double mass = r->plan.cast<double>().sum();
  double dual = a.cast<double>().dot(r->f.cast<double>()) +
                b.cast<double>().dot(r->g.cast<double>()) - options.epsilon * (mass - 1.0);
  EXPECT_NEAR(r->regularized_cost, dual, 1e-5);
  EXPECT_NEAR(mass, 1.0, 1e-5);  // after a g-update the plan has mass 1
  EXPECT_NEAR(PlanMarginalError(r->plan, a, b), r->marginal_error, 0.01 * r->marginal_error);

  options.max_iterations = 2;
  options.epsilon = 0.5f;
  solver.set_options(options);
  absl::StatusOr<SinkhornResult> s = solver.SolveSymmetric(x, a, Cost::SquaredEuclidean());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->converged);
  mass = s->plan.cast<double>().sum();
  // Far from converged, so that the mass term matters.
  EXPECT_GT(options.epsilon * std::fabs(mass - 1.0), 1e-4);
  dual = 2.0 * a.cast<double>().dot(s->f.cast<double>()) - options.epsilon * (mass - 1.0);
  EXPECT_NEAR(s->regularized_cost, dual, 2e-6);
  EXPECT_NEAR(PlanMarginalError(s->plan, a, a), s->marginal_error, 0.01 * s->marginal_error);
}

TEST(SinkhornTest, ApproachesBruteForceExactOtAsEpsilonVanishes) {
  std::mt19937_64 gen = SeededGen(103);
  for (int trial = 0; trial < 3; ++trial) {
    for (const Cost& cost : {Cost::SquaredEuclidean(), Cost::Lp(1.0f)}) {
      const int n = 7;
      const RowMatrixXf x = RandomCloud(gen, n, 2), y = RandomCloud(gen, n, 2);
      const Eigen::VectorXf u = UniformWeights(n);
      std::vector<int> perm;
      double second_best = 0.0;
      const Eigen::MatrixXd c = CostMatrixDouble(cost, x, y);
      const double exact = BruteForceExactOt(c, &perm, &second_best);
      double previous = std::numeric_limits<double>::infinity();
      for (const float eps : {1.0f, 0.3f, 0.1f, 0.03f, 0.01f, 0.003f, 0.001f}) {
        SCOPED_TRACE(absl::StrCat(cost.ToString(), " trial ", trial, " eps ", eps));
        // Tiny problems at small eps converge slowly (the plan approaches a permutation).
        SinkhornOptions options = TightOptions(eps);
        options.tolerance = 1e-4f;
        options.max_iterations = 200000;
        options.return_plan = true;
        absl::StatusOr<SinkhornResult> r = Sinkhorn(x, u, y, u, cost, options);
        ASSERT_TRUE(r.ok()) << r.status();
        ASSERT_TRUE(r->converged) << r->Summary();
        // OT_0 <= OT_eps <= OT_0 + eps KL(P_perm | u (x) u) = OT_0 + eps log n, and OT_eps is
        // non-decreasing in eps.
        EXPECT_GE(r->regularized_cost, exact - 1e-4);
        EXPECT_LE(r->regularized_cost, exact + eps * std::log(static_cast<double>(n)) + 1e-4);
        EXPECT_LE(r->regularized_cost, previous + 1e-4);
        previous = r->regularized_cost;
        // The transport part <P, C> = OT_eps - eps KL(P | u (x) u) is within the same bound, up
        // to the marginal error of P times the largest cost.
        const double transport = (r->plan.cast<double>().array() * c.array()).sum();
        const double slack = r->marginal_error * c.maxCoeff() + 1e-5;
        EXPECT_GE(transport, exact - slack);
        EXPECT_LE(transport, exact + eps * std::log(static_cast<double>(n)) + slack);
        if (eps == 0.001f) {
          EXPECT_LT(r->regularized_cost - exact, 2.5e-3);
          // Unless another permutation is within a few eps / n of the optimum (a near tie, where
          // the regularized plan rightly splits the mass), the plan concentrates on the optimal
          // permutation.
          if ((second_best - exact) * n > 20.0 * eps) {
            for (int i = 0; i < n; ++i) {
              Eigen::Index j;
              r->plan.row(i).maxCoeff(&j);
              EXPECT_EQ(j, perm[i]) << "row " << i;
              EXPECT_GT(r->plan(i, perm[i]), 0.9f / n);
            }
          }
        }
      }
    }
  }
}

TEST(SinkhornTest, SymmetricSolveMatchesAlternatingSolve) {
  std::mt19937_64 gen = SeededGen(104);
  const RowMatrixXf x = RandomCloud(gen, 60, 3);
  const Eigen::VectorXf a = RandomWeights(gen, 60);
  SinkhornSolver solver(TightOptions(0.1f));
  absl::StatusOr<SinkhornResult> sym = solver.SolveSymmetric(x, a, Cost::SquaredEuclidean());
  absl::StatusOr<SinkhornResult> alt = solver.Solve(x, a, x, a, Cost::SquaredEuclidean());
  ASSERT_TRUE(sym.ok() && alt.ok());
  EXPECT_TRUE(sym->symmetric);
  EXPECT_TRUE(sym->converged) << sym->Summary();
  EXPECT_LE(sym->marginal_error, 1e-5);
  EXPECT_NEAR(sym->regularized_cost, alt->regularized_cost, 1e-5);
  // Potentials are unique up to (f + k, g - k); the symmetric one has f == g.
  for (int i = 0; i < 60; ++i) {
    EXPECT_NEAR(sym->f[i], 0.5f * (alt->f[i] + alt->g[i]), 1e-4f) << i;
    EXPECT_EQ(sym->f[i], sym->g[i]);
  }
}

TEST(SinkhornTest, DivergenceOfACloudWithItselfIsZero) {
  std::mt19937_64 gen = SeededGen(105);
  const RowMatrixXf x = RandomCloud(gen, 40, 2, 0.5f, 2.0f);
  const Eigen::VectorXf a = RandomWeights(gen, 40);
  for (const Cost& cost : {Cost::SquaredEuclidean(), Cost::Lp(1.0f), Cost::Cosine()}) {
    absl::StatusOr<SinkhornDivergenceResult> s =
        SinkhornDivergence(x, a, x, a, cost, TightOptions(0.05f), /*compute_gradient=*/true);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_TRUE(s->converged) << s->Summary();
    EXPECT_NEAR(s->divergence, 0.0, 1e-5) << cost.ToString();
    // OT_eps(a, a) itself is not 0 (that is the bias the divergence removes).
    EXPECT_GT(s->xx.regularized_cost, 1e-3) << cost.ToString();
    // At the minimum the gradient vanishes.
    EXPECT_LT(s->gradient_x.cwiseAbs().maxCoeff(), 1e-4) << cost.ToString();
  }
}

TEST(SinkhornTest, DivergenceIsPositiveAndGrowsWithTheShift) {
  std::mt19937_64 gen = SeededGen(106);
  const RowMatrixXf x = RandomCloud(gen, 50, 2);
  const Eigen::VectorXf a = UniformWeights(50), b = UniformWeights(60);
  const RowMatrixXf y0 = RandomCloud(gen, 60, 2);
  double previous = 0.0;
  for (const float shift : {0.1f, 0.5f, 1.0f, 2.0f}) {
    RowMatrixXf y = y0;
    y.col(0).array() += shift;
    absl::StatusOr<SinkhornDivergenceResult> s =
        SinkhornDivergence(x, a, y, b, Cost::SquaredEuclidean(), TightOptions(0.1f));
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_GT(s->divergence, previous) << "shift " << shift;
    previous = s->divergence;
    EXPECT_NEAR(s->divergence,
                s->xy.regularized_cost - 0.5 * (s->xx.regularized_cost + s->yy.regularized_cost),
                1e-12);
    EXPECT_EQ(s->gradient_x.size(), 0);
  }
  EXPECT_GT(previous, 1.0);  // shift 2 in x: S ~ |mean shift|^2 = 4 for large clouds
}

void CheckDivergenceGradient(const Cost& cost, int d, float eps) {
  SCOPED_TRACE(absl::StrCat(cost.ToString(), " d=", d, " eps=", eps));
  std::mt19937_64 gen = SeededGen(107);
  const int n = 6, m = 8;
  RowMatrixXf x = RandomCloud(gen, n, d, 0.2f, 1.0f);
  const RowMatrixXf y = RandomCloud(gen, m, d, -0.5f, 1.5f);
  const Eigen::VectorXf a = RandomWeights(gen, n), b = RandomWeights(gen, m);
  SinkhornOptions options = TightOptions(eps);
  SinkhornSolver solver(options);
  absl::StatusOr<SinkhornDivergenceResult> s = solver.Divergence(x, a, y, b, cost, true);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(s->converged) << s->Summary();
  ASSERT_EQ(s->gradient_x.rows(), n);
  ASSERT_EQ(s->gradient_x.cols(), d);
  const double grad_scale = s->gradient_x.cwiseAbs().maxCoeff();
  ASSERT_GT(grad_scale, 1e-3);
  const int components = std::min(d, 3);
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < components; ++k) {
      const float saved = x(i, k);
      const float h = 5e-3f;
      x(i, k) = saved + h;
      const double up_step = static_cast<double>(x(i, k)) - saved;
      absl::StatusOr<SinkhornDivergenceResult> up = solver.Divergence(x, a, y, b, cost, false);
      x(i, k) = saved - h;
      const double down_step = saved - static_cast<double>(x(i, k));
      absl::StatusOr<SinkhornDivergenceResult> down = solver.Divergence(x, a, y, b, cost, false);
      x(i, k) = saved;
      ASSERT_TRUE(up.ok() && down.ok());
      const double fd = (up->divergence - down->divergence) / (up_step + down_step);
      EXPECT_NEAR(s->gradient_x(i, k), fd, 1e-2 * grad_scale) << "point " << i << " dim " << k;
    }
  }
}

TEST(SinkhornTest, DivergenceGradientMatchesFiniteDifferences) {
  CheckDivergenceGradient(Cost::SquaredEuclidean(), 2, 0.1f);
  CheckDivergenceGradient(Cost::SquaredEuclidean(0.5f), 20, 0.5f);  // sgemm path
  CheckDivergenceGradient(Cost::Lp(1.5f), 3, 0.1f);
  CheckDivergenceGradient(Cost::Cosine(), 3, 0.05f);
}

TEST(SinkhornTest, StreamedModeEqualsPrecomputedMode) {
  std::mt19937_64 gen = SeededGen(108);
  for (const int d : {2, 40}) {
    SCOPED_TRACE(absl::StrCat("d=", d));
    const RowMatrixXf x = RandomCloud(gen, 45, d, 0.0f, 1.0f);
    const RowMatrixXf y = RandomCloud(gen, 38, d, 0.5f, 1.5f);
    const Eigen::VectorXf a = RandomWeights(gen, 45), b = RandomWeights(gen, 38);
    const Cost cost = Cost::SquaredEuclidean(static_cast<float>(d));
    SinkhornOptions options = TightOptions(0.02f);
    options.return_plan = true;
    SinkhornSolver precomputed(options);
    options.max_cost_matrix_bytes = 0;
    options.tile_rows = 7;  // several tiles, a ragged last one
    SinkhornSolver streamed(options);
    absl::StatusOr<SinkhornResult> p = precomputed.Solve(x, a, y, b, cost);
    absl::StatusOr<SinkhornResult> s = streamed.Solve(x, a, y, b, cost);
    ASSERT_TRUE(p.ok() && s.ok());
    EXPECT_TRUE(p->precomputed_cost);
    EXPECT_FALSE(s->precomputed_cost);
    EXPECT_NEAR(p->regularized_cost, s->regularized_cost, 1e-5);
    EXPECT_LT((p->f - s->f).cwiseAbs().maxCoeff(), 1e-4f);
    EXPECT_LT((p->g - s->g).cwiseAbs().maxCoeff(), 1e-4f);
    EXPECT_LT((p->plan - s->plan).cwiseAbs().maxCoeff(), 1e-5f);
    EXPECT_LE(s->marginal_error, 1e-5);

    absl::StatusOr<SinkhornDivergenceResult> dp = precomputed.Divergence(x, a, y, b, cost, true);
    absl::StatusOr<SinkhornDivergenceResult> ds = streamed.Divergence(x, a, y, b, cost, true);
    ASSERT_TRUE(dp.ok() && ds.ok());
    EXPECT_FALSE(ds->xx.precomputed_cost);
    EXPECT_NEAR(dp->divergence, ds->divergence, 1e-5);
    EXPECT_LT((dp->gradient_x - ds->gradient_x).cwiseAbs().maxCoeff(), 1e-4f);
  }
}

TEST(SinkhornTest, ResultDoesNotDependOnTheThreadCount) {
  // Row chunks are merged in a fixed order, so the result is bitwise identical for any thread
  // count (with the direct cost kernels of d <= 16; sgemm tiles may round differently).
  std::mt19937_64 gen = SeededGen(108);
  const RowMatrixXf x = RandomCloud(gen, 300, 2), y = RandomCloud(gen, 250, 2);
  const Eigen::VectorXf a = RandomWeights(gen, 300), b = UniformWeights(250);
  for (const bool streamed : {false, true}) {
    SCOPED_TRACE(streamed ? "streamed" : "precomputed");
    SinkhornOptions options;
    options.epsilon = 0.05f;
    options.tolerance = 1e-4f;
    options.return_plan = true;
    options.tile_rows = 16;  // many row blocks and chunks
    if (streamed) options.max_cost_matrix_bytes = 0;
    options.num_threads = 1;
    SinkhornSolver one(options);
    options.num_threads = 2;
    SinkhornSolver two(options);
    absl::StatusOr<SinkhornResult> r1 = one.Solve(x, a, y, b, Cost::SquaredEuclidean());
    absl::StatusOr<SinkhornResult> r2 = two.Solve(x, a, y, b, Cost::SquaredEuclidean());
    ASSERT_TRUE(r1.ok() && r2.ok());
    EXPECT_TRUE(r2->converged) << r2->Summary();
    EXPECT_EQ(r1->precomputed_cost, !streamed);
    EXPECT_EQ(r1->regularized_cost, r2->regularized_cost);
    EXPECT_EQ(r1->iterations, r2->iterations);
    EXPECT_EQ(r1->f, r2->f);
    EXPECT_EQ(r1->g, r2->g);
    EXPECT_EQ(r1->plan, r2->plan);
    absl::StatusOr<SinkhornDivergenceResult> d1 =
        one.Divergence(x, a, y, b, Cost::SquaredEuclidean(), true);
    absl::StatusOr<SinkhornDivergenceResult> d2 =
        two.Divergence(x, a, y, b, Cost::SquaredEuclidean(), true);
    ASSERT_TRUE(d1.ok() && d2.ok());
    EXPECT_EQ(d1->divergence, d2->divergence);
    EXPECT_EQ(d1->gradient_x, d2->gradient_x);
  }
}

// n samples of N(0, I_2), shifted and linearly transformed to empirical mean exactly 0 and
// empirical covariance exactly I.
Eigen::MatrixXd WhitenedGaussianSample(std::mt19937_64& gen, int n) {
  Eigen::MatrixXd z(n, 2);
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < 2; ++k) z(i, k) = absl::Gaussian<double>(gen);
  }
  z.rowwise() -= z.colwise().mean();
  const Eigen::Matrix2d cov = z.transpose() * z / n;
  const Eigen::Matrix2d l_inv = cov.llt().matrixL().solve(Eigen::Matrix2d::Identity());
  return z * l_inv.transpose();
}

TEST(SinkhornTest, GaussianSamplesApproachTheClosedFormW2) {
  // W2^2(N(m1, S1), N(m2, S2)) = |m1 - m2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2), which for
  // diagonal covariances is |m1 - m2|^2 + sum_k (sqrt(s1_k) - sqrt(s2_k))^2.
  const double m1[2] = {0.0, 0.0}, m2[2] = {2.0, 1.0};
  const double s1[2] = {1.0, 0.25}, s2[2] = {0.5, 2.0};
  double w2 = 0.0;
  for (int k = 0; k < 2; ++k) {
    w2 += (m1[k] - m2[k]) * (m1[k] - m2[k]) +
          (std::sqrt(s1[k]) - std::sqrt(s2[k])) * (std::sqrt(s1[k]) - std::sqrt(s2[k]));
  }
  const int n = 500;
  const Eigen::VectorXf u = UniformWeights(n);
  std::mt19937_64 gen = SeededGen(7);

  // (1) Both clouds are images of the same standard normal sample z, whitened to mean exactly 0
  // and covariance exactly I: x_i = m1 + S1^1/2 z_i, y_i = m2 + S2^1/2 z_i. The pairing x_i <->
  // y_i is the gradient of a convex function (x -> m2 + S2^1/2 S1^-1/2 (x - m1)), hence optimal,
  // and its cost is exactly the closed form: the empirical OT_0 equals W2^2 without sampling
  // error, and 0 <= OT_eps - OT_0 <= eps log n.
  const Eigen::MatrixXd z = WhitenedGaussianSample(gen, n);
  RowMatrixXf x(n, 2), y(n, 2);
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < 2; ++k) {
      x(i, k) = static_cast<float>(m1[k] + std::sqrt(s1[k]) * z(i, k));
      y(i, k) = static_cast<float>(m2[k] + std::sqrt(s2[k]) * z(i, k));
    }
  }
  SinkhornSolver solver;
  double previous = std::numeric_limits<double>::infinity();
  for (const float eps : {0.2f, 0.1f, 0.05f}) {
    SCOPED_TRACE(absl::StrCat("eps=", eps));
    SinkhornOptions options;
    options.epsilon = eps;
    options.tolerance = 1e-4f;
    solver.set_options(options);
    absl::StatusOr<SinkhornResult> r = solver.Solve(x, u, y, u, Cost::SquaredEuclidean());
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->converged) << r->Summary();
    EXPECT_GE(r->regularized_cost, w2 - 2e-3) << r->Summary();
    EXPECT_LE(r->regularized_cost, w2 + eps * std::log(static_cast<double>(n))) << r->Summary();
    EXPECT_LT(r->regularized_cost, previous);
    previous = r->regularized_cost;
  }
  EXPECT_NEAR(previous, w2, 0.05 * w2);
  // The debiased divergence removes the entropic bias almost entirely here.
  absl::StatusOr<SinkhornDivergenceResult> s =
      solver.Divergence(x, u, y, u, Cost::SquaredEuclidean(), false);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_NEAR(s->divergence, w2, 2e-3 * w2) << s->Summary();

  // (2) Independent samples (each whitened to the exact mean and covariance): the remaining
  // error is the shape of two different 500-point empirical measures.
  const Eigen::MatrixXd z2 = WhitenedGaussianSample(gen, n);
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < 2; ++k) {
      y(i, k) = static_cast<float>(m2[k] + std::sqrt(s2[k]) * z2(i, k));
    }
  }
  s = solver.Divergence(x, u, y, u, Cost::SquaredEuclidean(), false);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_NEAR(s->divergence, w2, 0.02 * w2) << s->Summary();
}

TEST(SinkhornTest, ZeroWeightPointsDoNotChangeTheSolution) {
  std::mt19937_64 gen = SeededGen(111);
  const RowMatrixXf x = RandomCloud(gen, 20, 2), y = RandomCloud(gen, 15, 2);
  Eigen::VectorXf a = RandomWeights(gen, 20);
  const Eigen::VectorXf b = RandomWeights(gen, 15);
  // Points 3 and 11 get zero weight; the reduced problem drops them.
  std::vector<int> keep;
  for (int i = 0; i < 20; ++i) {
    if (i != 3 && i != 11) keep.push_back(i);
  }
  const double dropped = static_cast<double>(a[3]) + a[11];
  a[3] = a[11] = 0.0f;
  a /= static_cast<float>(1.0 - dropped);
  RowMatrixXf x_reduced(18, 2);
  Eigen::VectorXf a_reduced(18);
  for (int r = 0; r < 18; ++r) {
    x_reduced.row(r) = x.row(keep[r]);
    a_reduced[r] = a[keep[r]];
  }
  const SinkhornOptions options = TightOptions(0.05f);
  absl::StatusOr<SinkhornResult> full = Sinkhorn(x, a, y, b, Cost::SquaredEuclidean(), options);
  absl::StatusOr<SinkhornResult> reduced =
      Sinkhorn(x_reduced, a_reduced, y, b, Cost::SquaredEuclidean(), options);
  ASSERT_TRUE(full.ok()) << full.status();
  ASSERT_TRUE(reduced.ok()) << reduced.status();
  EXPECT_NEAR(full->regularized_cost, reduced->regularized_cost, 1e-5);
  // Potentials are unique up to (f + k, g - k).
  double k = 0.0;
  for (int r = 0; r < 18; ++r) k += (full->f[keep[r]] - reduced->f[r]) / 18.0;
  for (int r = 0; r < 18; ++r) EXPECT_NEAR(full->f[keep[r]] - reduced->f[r], k, 1e-4);
  for (int j = 0; j < 15; ++j) EXPECT_NEAR(full->g[j] - reduced->g[j], -k, 1e-4);
  EXPECT_TRUE(std::isfinite(full->f[3]));  // extrapolated potential (a c-transform)
}

TEST(SinkhornTest, SolverReusesBuffersAcrossSizes) {
  std::mt19937_64 gen = SeededGen(112);
  SinkhornOptions options = TightOptions(0.05f);
  SinkhornSolver solver(options);
  for (const int n : {80, 10, 120, 33}) {
    const RowMatrixXf x = RandomCloud(gen, n, 2), y = RandomCloud(gen, n + 5, 2);
    const Eigen::VectorXf a = UniformWeights(n), b = UniformWeights(n + 5);
    absl::StatusOr<SinkhornResult> reused = solver.Solve(x, a, y, b, Cost::SquaredEuclidean());
    absl::StatusOr<SinkhornResult> fresh = Sinkhorn(x, a, y, b, Cost::SquaredEuclidean(), options);
    ASSERT_TRUE(reused.ok() && fresh.ok());
    EXPECT_EQ(reused->regularized_cost, fresh->regularized_cost) << n;
    EXPECT_EQ(reused->f, fresh->f);
  }
}

TEST(SinkhornTest, NonConvergenceIsReportedNotAnError) {
  std::mt19937_64 gen = SeededGen(113);
  const RowMatrixXf x = RandomCloud(gen, 30, 2), y = RandomCloud(gen, 30, 2);
  const Eigen::VectorXf u = UniformWeights(30);
  SinkhornOptions options;
  options.epsilon = 1e-3f;
  options.epsilon_scaling = false;
  options.max_iterations = 2;
  options.tolerance = 0.0f;
  absl::StatusOr<SinkhornResult> r = Sinkhorn(x, u, y, u, Cost::SquaredEuclidean(), options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->converged);
  EXPECT_EQ(r->iterations, 2);
  EXPECT_EQ(r->scaling_stages, 0);
  EXPECT_GT(r->marginal_error, 0.0);
  EXPECT_THAT(r->Summary(), HasSubstr("NO_CONVERGENCE"));
}

TEST(SinkhornTest, EpsilonScalingScheduleIsReported) {
  RowMatrixXf x(2, 1), y(2, 1);
  x << 0, 1;
  y << 0, 2;  // diameter bound (2 - 0)^2 = 4
  const Eigen::VectorXf u = UniformWeights(2);
  SinkhornOptions options;
  options.epsilon = 0.1f;
  options.epsilon_scaling_factor = 0.5f;
  options.iterations_per_stage = 2;
  absl::StatusOr<SinkhornResult> r = Sinkhorn(x, u, y, u, Cost::SquaredEuclidean(), options);
  ASSERT_TRUE(r.ok());
  // 4, 2, 1, 0.5, 0.25, 0.125 > 0.1: six stages of two iterations.
  EXPECT_EQ(r->scaling_stages, 6);
  EXPECT_EQ(r->scaling_iterations, 12);
  EXPECT_THAT(r->Summary(), HasSubstr("CONVERGED"));
}

TEST(SinkhornTest, InvalidInputsNameTheArgument) {
  RowMatrixXf x(3, 2), y(4, 2);
  x << 0, 0, 1, 0, 0, 1;
  y << 1, 1, 2, 1, 1, 2, 2, 2;
  const Eigen::VectorXf a = UniformWeights(3), b = UniformWeights(4);
  const Cost cost = Cost::SquaredEuclidean();
  const SinkhornOptions options;
  auto expect_invalid = [](const absl::Status& s, const std::string& needle) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(needle));
  };
  EXPECT_TRUE(Sinkhorn(x, a, y, b, cost, options).ok());

  expect_invalid(Sinkhorn(x, a, RowMatrixXf::Ones(4, 3), b, cost, options).status(),
                 "target_points: expected dimension 2");
  expect_invalid(Sinkhorn(RowMatrixXf(0, 2), Eigen::VectorXf(0), y, b, cost, options).status(),
                 "source_points");
  expect_invalid(Sinkhorn(x, a, RowMatrixXf(0, 2), Eigen::VectorXf(0), cost, options).status(),
                 "target_points");
  Eigen::VectorXf negative = a;
  negative[0] = -0.1f;
  negative[1] += 0.1f;
  expect_invalid(Sinkhorn(x, negative, y, b, cost, options).status(), "source_weights: entry 0");
  Eigen::VectorXf short_sum = b * 0.8f;
  expect_invalid(Sinkhorn(x, a, y, short_sum, cost, options).status(),
                 "target_weights: expected 4 non-negative entries summing to 1, got sum 0.8");
  expect_invalid(Sinkhorn(x, UniformWeights(4), y, b, cost, options).status(),
                 "source_weights: expected 3 entries");
  RowMatrixXf nan_points = y;
  nan_points(2, 1) = std::numeric_limits<float>::quiet_NaN();
  expect_invalid(Sinkhorn(x, a, nan_points, b, cost, options).status(),
                 "target_points: entry (2, 1)");
  RowMatrixXf inf_points = x;
  inf_points(0, 0) = std::numeric_limits<float>::infinity();
  expect_invalid(Sinkhorn(inf_points, a, y, b, cost, options).status(), "source_points");
  Eigen::VectorXf nan_weights = a;
  nan_weights[2] = std::numeric_limits<float>::quiet_NaN();
  expect_invalid(Sinkhorn(x, nan_weights, y, b, cost, options).status(), "source_weights");

  SinkhornOptions bad = options;
  bad.epsilon = 0.0f;
  expect_invalid(Sinkhorn(x, a, y, b, cost, bad).status(), "options.epsilon");
  bad.epsilon = -1.0f;
  expect_invalid(Sinkhorn(x, a, y, b, cost, bad).status(), "options.epsilon");
  expect_invalid(Sinkhorn(x, a, y, b, Cost::Lp(0.5f), options).status(), "cost.p");

  SinkhornSolver solver(options);
  expect_invalid(solver.SolveSymmetric(x, b, cost).status(), "source_weights");
  expect_invalid(solver.Divergence(x, a, y, a, cost, true).status(), "target_weights");
  expect_invalid(solver.Divergence(x, a, RowMatrixXf::Ones(4, 1), b, cost, true).status(),
                 "target_points");
  RowMatrixXf zero_point = x;
  zero_point.row(0).setZero();
  expect_invalid(solver.Divergence(zero_point, a, y, b, Cost::Cosine(), false).status(),
                 "source_points: point 0 is zero");
}

TEST(SinkhornTest, OptionsValidateNamesTheField) {
  EXPECT_TRUE(SinkhornOptions().Validate().ok());
  auto field_of = [](auto mutate) {
    SinkhornOptions o;
    mutate(o);
    const absl::Status s = o.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    return std::string(s.message());
  };
  EXPECT_THAT(field_of([](SinkhornOptions& o) { o.epsilon = std::nanf(""); }),
              HasSubstr("options.epsilon"));
  EXPECT_THAT(field_of([](SinkhornOptions& o) { o.epsilon_scaling_factor = 1.0f; }),
              HasSubstr("options.epsilon_scaling_factor"));
  EXPECT_THAT(field_of([](SinkhornOptions& o) { o.epsilon_scaling_factor = 0.0f; }),
              HasSubstr("options.epsilon_scaling_factor"));
  EXPECT_THAT(field_of([](SinkhornOptions& o) { o.epsilon_start = -1.0f; }),
              HasSubstr("options.epsilon_start"));
  EXPECT_THAT(field_of([](SinkhornOptions& o) { o.iterations_per_stage = 0; }),
              HasSubstr("options.iterations_per_stage"));
  EXPECT_THAT(field_of([](SinkhornOptions& o) { o.max_iterations = 1; }),
              HasSubstr("options.max_iterations"));
  EXPECT_THAT(field_of([](SinkhornOptions& o) { o.tolerance = -1e-3f; }),
              HasSubstr("options.tolerance"));
  EXPECT_THAT(field_of([](SinkhornOptions& o) { o.max_cost_matrix_bytes = -1; }),
              HasSubstr("options.max_cost_matrix_bytes"));
  EXPECT_THAT(field_of([](SinkhornOptions& o) { o.tile_rows = -2; }),
              HasSubstr("options.tile_rows"));
  EXPECT_THAT(field_of([](SinkhornOptions& o) { o.num_threads = -1; }),
              HasSubstr("options.num_threads"));
}

TEST(SinkhornTest, WeightsWithinToleranceAreRenormalized) {
  std::mt19937_64 gen = SeededGen(115);
  const RowMatrixXf x = RandomCloud(gen, 10, 2), y = RandomCloud(gen, 12, 2);
  const Eigen::VectorXf a = UniformWeights(10), b = UniformWeights(12);
  const Eigen::VectorXf a_off = a * (1.0f + 5e-5f);  // sums to 1.00005: accepted
  SinkhornOptions options = TightOptions(0.1f);
  absl::StatusOr<SinkhornResult> r1 = Sinkhorn(x, a, y, b, Cost::SquaredEuclidean(), options);
  absl::StatusOr<SinkhornResult> r2 = Sinkhorn(x, a_off, y, b, Cost::SquaredEuclidean(), options);
  ASSERT_TRUE(r1.ok() && r2.ok()) << r2.status();
  EXPECT_TRUE(r2->converged) << r2->Summary();
  EXPECT_NEAR(r1->regularized_cost, r2->regularized_cost, 1e-6);
}

}  // namespace
}  // namespace otgen::ot
