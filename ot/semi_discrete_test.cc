#include "ot/semi_discrete.h"

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/random.h"
#include "nn/tensor.h"
#include "ot/c_transform.h"
#include "ot/cost.h"
#include "ot/target_set.h"
#include "ot/types.h"

namespace otgen::ot {
namespace {

using ::testing::HasSubstr;

// ---- 1-D closed form ------------------------------------------------------------------------------
//
// Source: uniform on [0, 1]; targets y_1 < ... < y_J with weights nu; cost |x - y|^2. The optimal
// Laguerre cells are the consecutive intervals [t_{j-1}, t_j] with t_j = nu_1 + ... + nu_j (the
// monotone rearrangement), and the boundary t_j between cells j and j + 1 is where
//   (t - y_j)^2 - psi_j = (t - y_{j+1})^2 - psi_{j+1},
// i.e. psi_{j+1} - psi_j = y_{j+1}^2 - y_j^2 - 2 t_j (y_{j+1} - y_j). Conversely, for any psi
// the boundary is t_j(psi) = (y_{j+1}^2 - y_j^2 - (psi_{j+1} - psi_j)) / (2 (y_{j+1} - y_j)).

struct OneDimProblem {
  std::vector<float> y = {0.1f, 0.3f, 0.45f, 0.8f};
  std::vector<float> nu = {0.1f, 0.4f, 0.3f, 0.2f};

  std::shared_ptr<const InMemoryTargetSet> Targets() const {
    RowMatrixXf points(y.size(), 1);
    Eigen::VectorXf w(nu.size());
    for (size_t j = 0; j < y.size(); ++j) {
      points(j, 0) = y[j];
      w[j] = nu[j];
    }
    return *InMemoryTargetSet::Create(points, w);
  }
  // The optimal psi, normalized to mean 0.
  Eigen::VectorXd OptimalPsi() const {
    const size_t J = y.size();
    Eigen::VectorXd psi(J);
    psi[0] = 0.0;
    double t = 0.0;
    for (size_t j = 0; j + 1 < J; ++j) {
      t += nu[j];
      const double a = y[j], b = y[j + 1];
      psi[j + 1] = psi[j] + b * b - a * a - 2.0 * t * (b - a);
    }
    return psi.array() - psi.mean();
  }
  // Masses of the Laguerre cells of psi for the uniform source on [0, 1].
  Eigen::VectorXd CellMasses(const Eigen::VectorXf& psi) const {
    const size_t J = y.size();
    Eigen::VectorXd mass(J);
    double previous = 0.0;
    for (size_t j = 0; j < J; ++j) {
      double t = 1.0;
      if (j + 1 < J) {
        const double a = y[j], b = y[j + 1];
        t = (b * b - a * a - (double(psi[j + 1]) - psi[j])) / (2.0 * (b - a));
        t = std::min(1.0, std::max(0.0, t));
      }
      mass[j] = std::max(0.0, t - previous);
      previous = std::max(previous, t);
    }
    return mass;
  }
};

BatchSampler UniformSampler(uint64_t seed) {
  auto rng = std::make_shared<nn::Rng>(seed);
  return [rng](int64_t b) -> absl::StatusOr<nn::Tensor> {
    return nn::Tensor::Uniform({b, 1}, 0.0f, 1.0f, *rng);
  };
}

Eigen::VectorXd Centered(const Eigen::Ref<const Eigen::VectorXf>& v) {
  Eigen::VectorXd c = v.cast<double>();
  return c.array() - c.mean();
}

TEST(SemiDiscreteTest, AsgdReachesTheOneDimensionalClosedForm) {
  const OneDimProblem problem;
  SemiDiscreteOptions opt;
  opt.batch_size = 64;
  opt.iterations = 20000;
  opt.gamma = 0.5f;
  opt.alpha = 0.5f;
  opt.restart_each_solve = false;
  auto solver = SemiDiscreteSolver::Create(problem.Targets(), Cost::SquaredEuclidean(1.0f), opt);
  ASSERT_TRUE(solver.ok()) << solver.status();
  auto r = (*solver)->Solve(UniformSampler(1));
  ASSERT_TRUE(r.ok()) << r.status();
  const Eigen::VectorXd psi = Centered((*solver)->psi());
  const Eigen::VectorXd expected = problem.OptimalPsi();
  EXPECT_LE((psi - expected).cwiseAbs().maxCoeff(), 2e-3) << "psi " << psi.transpose() << "\nexpected "
                                                          << expected.transpose();
  const Eigen::VectorXd mass = problem.CellMasses((*solver)->psi());
  for (int j = 0; j < 4; ++j) EXPECT_NEAR(mass[j], problem.nu[j], 5e-3) << "cell " << j;
  // The same masses measured with the c-transform's assignment on a fine grid.
  const int n = 20000;
  RowMatrixXf grid(n, 1);
  for (int i = 0; i < n; ++i) grid(i, 0) = (i + 0.5f) / n;
  auto ct = CTransform::Create(problem.Targets(), Cost::SquaredEuclidean(1.0f), {});
  ASSERT_TRUE(ct.ok());
  auto res = ct->Compute(grid, (*solver)->psi(), {.grad_x = false, .grad_psi = true});
  ASSERT_TRUE(res.ok());
  for (int j = 0; j < 4; ++j) {
    // grad_psi_j = nu_j - (mass of cell j on the grid).
    EXPECT_NEAR(res->grad_psi[j], 0.0f, 5e-3) << "cell " << j;
  }
  // The semi-dual estimate approaches the optimal value W_2^2 (which it lower-bounds up to noise).
  double w2 = 0.0;  // integral of (x - T(x))^2 over the optimal intervals
  double t0 = 0.0;
  for (int j = 0; j < 4; ++j) {
    const double t1 = t0 + problem.nu[j], yj = problem.y[j];
    w2 += (std::pow(t1 - yj, 3) - std::pow(t0 - yj, 3)) / 3.0;
    t0 = t1;
  }
  EXPECT_NEAR(r->h_estimate, w2, 2e-3);
}

TEST(SemiDiscreteTest, AdamReachesTheOneDimensionalClosedForm) {
  // A fixed quadrature batch (midpoints of 4000 cells) makes the objective deterministic; its
  // optimum is within 1/4000 of the continuous one in cell masses.
  const OneDimProblem problem;
  const int n = 4000;
  nn::Tensor grid = nn::Tensor::Empty({n, 1});
  for (int i = 0; i < n; ++i) grid.data()[i] = (i + 0.5f) / n;
  SemiDiscreteOptions opt;
  opt.method = SemiDiscreteMethod::kAdam;
  opt.batch_size = n;
  opt.iterations = 3000;
  opt.adam_learning_rate = 2e-3f;
  auto solver = SemiDiscreteSolver::Create(problem.Targets(), Cost::SquaredEuclidean(1.0f), opt);
  ASSERT_TRUE(solver.ok());
  auto r = (*solver)->Solve([&](int64_t) -> absl::StatusOr<nn::Tensor> { return grid; });
  ASSERT_TRUE(r.ok()) << r.status();
  const Eigen::VectorXd mass = problem.CellMasses((*solver)->psi());
  for (int j = 0; j < 4; ++j) EXPECT_NEAR(mass[j], problem.nu[j], 3e-3) << "cell " << j;
  EXPECT_LE((Centered((*solver)->psi()) - problem.OptimalPsi()).cwiseAbs().maxCoeff(), 2e-3);
}

TEST(SemiDiscreteTest, SoftSolutionBalancesTheSoftAssignment) {
  // lambda > 0 on a fixed batch: at the maximizer of the concave batch semi-dual the mean soft
  // assignment equals nu (zero supergradient), and H increased along the way.
  const OneDimProblem problem;
  const int n = 1000;
  nn::Tensor grid = nn::Tensor::Empty({n, 1});
  for (int i = 0; i < n; ++i) grid.data()[i] = (i + 0.5f) / n;
  SemiDiscreteOptions opt;
  opt.ctransform.lambda = 0.01f;
  opt.method = SemiDiscreteMethod::kAdam;
  opt.batch_size = n;
  opt.iterations = 2000;
  opt.adam_learning_rate = 2e-3f;
  auto solver = SemiDiscreteSolver::Create(problem.Targets(), Cost::SquaredEuclidean(1.0f), opt);
  ASSERT_TRUE(solver.ok());
  auto r = (*solver)->Solve([&](int64_t) -> absl::StatusOr<nn::Tensor> { return grid; });
  ASSERT_TRUE(r.ok());
  EXPECT_LT(r->last_supergradient_norm, 1e-3);
  EXPECT_GT(r->h_history.back(), r->h_history.front());
  // The soft optimum is close to the hard one for small lambda.
  EXPECT_LE((Centered((*solver)->psi()) - problem.OptimalPsi()).cwiseAbs().maxCoeff(), 0.03);
}

// ---- Seed 000 Section 2.5: the counter-example ----------------------------------------------------
//
// mu_theta = delta_theta, nu = (delta_{y1} + delta_{y2}) / 2, c(x, y) = ||x - y||^2. Then
// h(theta) = W(mu_theta, nu) = (c(theta, y1) + c(theta, y2)) / 2 is differentiable, but for any
// optimal psi*_0 at theta0 the function theta -> F(psi*_0, theta) = psi*_0^c(theta) is not
// differentiable at theta0 (theta0 lies on the boundary of the two Laguerre cells, eq. 35), so
// the gradient formula (Grad-OT) fails. With lambda > 0, F_lambda(psi*, .) is smooth and its
// gradient (eqs. 55-56) is grad h_lambda(theta0) = (grad c(theta0, y1) + grad c(theta0, y2)) / 2.

TEST(SemiDiscreteTest, CounterExampleOfSection25) {
  RowMatrixXf y(2, 2);
  y << 0.0f, 0.0f, 1.0f, 0.5f;
  auto targets = *InMemoryTargetSet::CreateUniform(y);
  const Cost cost = Cost::SquaredEuclidean(1.0f);
  RowMatrixXf theta0(1, 2);
  theta0 << 0.3f, 0.6f;
  const Eigen::Vector2d g1(2 * (0.3 - 0.0), 2 * (0.6 - 0.0));  // grad_x c(theta0, y1)
  const Eigen::Vector2d g2(2 * (0.3 - 1.0), 2 * (0.6 - 0.5));  // grad_x c(theta0, y2)
  const Eigen::Vector2d grad_h = 0.5 * (g1 + g2);
  const Eigen::Vector2d e(1.0, 0.0);  // the direction of the finite differences
  const double h = 1e-4;

  for (float lambda : {0.0f, 0.05f}) {
    SCOPED_TRACE(lambda);
    // Solve the dual problem at theta0 (the source is the Dirac at theta0).
    SemiDiscreteOptions opt;
    opt.ctransform.lambda = lambda;
    opt.batch_size = 1;
    opt.iterations = 40000;
    opt.gamma = 0.5f;
    opt.restart_each_solve = false;
    auto solver = SemiDiscreteSolver::Create(targets, cost, opt);
    ASSERT_TRUE(solver.ok());
    nn::Tensor dirac = nn::Tensor::FromVector({1, 2}, {theta0(0, 0), theta0(0, 1)});
    ASSERT_TRUE((*solver)->Solve([&](int64_t) -> absl::StatusOr<nn::Tensor> { return dirac; }).ok());
    Eigen::VectorXf psi = (*solver)->psi();
    // Eq. 35 (also the lambda > 0 optimum: pi = nu requires psi_j - c(theta0, y_j) constant).
    const double c1 = theta0.row(0).squaredNorm(), c2 = (theta0.row(0) - y.row(1)).squaredNorm();
    EXPECT_NEAR(double(psi[1]) - psi[0], c2 - c1, 0.01);
    // Use the exact optimal psi*_0 of eq. 35 for the derivative checks.
    psi[0] = 0.0f;
    psi[1] = static_cast<float>(c2 - c1);

    auto ct = CTransform::Create(targets, cost, {.lambda = lambda});
    ASSERT_TRUE(ct.ok());
    auto F = [&](double s) {
      RowMatrixXf x = theta0;
      x(0, 0) += static_cast<float>(s * e[0]);
      x(0, 1) += static_cast<float>(s * e[1]);
      return double((*ct->Compute(x, psi)).values[0]);
    };
    const double left = (F(0.0) - F(-h)) / h;
    const double right = (F(h) - F(0.0)) / h;
    auto at = ct->Compute(theta0, psi);
    ASSERT_TRUE(at.ok());
    const Eigen::Vector2d grad_x = at->grad_x.row(0).cast<double>().transpose();
    if (lambda == 0.0f) {
      // Kink: the one-sided derivatives are the derivatives of the two pieces c(., y2) - psi_2
      // (on the left, moving towards y2... whichever cell each side falls in) and differ.
      const double d1 = g1.dot(e), d2 = g2.dot(e);
      EXPECT_NEAR(std::min(left, right), std::min(d1, d2), 5e-3);
      EXPECT_NEAR(std::max(left, right), std::max(d1, d2), 5e-3);
      EXPECT_GT(std::abs(right - left), 1.0);
      // The c-transform gradient at theta0 is one piece's gradient, not grad h(theta0).
      EXPECT_TRUE((grad_x - g1).norm() < 1e-5 || (grad_x - g2).norm() < 1e-5);
      EXPECT_GT((grad_x - grad_h).norm(), 0.5);
    } else {
      // Smooth: both one-sided derivatives agree (up to h times the curvature, about 20 here)
      // with the gradient of eqs. 55-56, which is grad h_lambda(theta0) at the optimal psi.
      EXPECT_NEAR(left, right, 5e-3);
      EXPECT_NEAR(0.5 * (left + right), grad_x.dot(e), 2e-3);
      EXPECT_LE((grad_x - grad_h).norm(), 1e-4);
    }
  }
}

// ---- Warm starts, restarts, state ------------------------------------------------------------------

TEST(SemiDiscreteTest, RestartEachSolveStartsFromTheAverage) {
  const OneDimProblem problem;
  SemiDiscreteOptions opt;
  opt.batch_size = 16;
  opt.iterations = 7;
  opt.gamma = 0.3f;
  auto solver = SemiDiscreteSolver::Create(problem.Targets(), Cost::SquaredEuclidean(1.0f), opt);
  ASSERT_TRUE(solver.ok());
  ASSERT_TRUE((*solver)->Solve(UniformSampler(3)).ok());
  const Eigen::VectorXf average = (*solver)->psi();
  EXPECT_GT((average - (*solver)->psi_iterate()).norm(), 0.0f);
  // A one-step Solve from the average: psi~_1 = psi_bar + gamma / 1^alpha * D(psi_bar).
  nn::Rng rng(5);
  nn::Tensor batch = nn::Tensor::Uniform({16, 1}, 0.0f, 1.0f, rng);
  auto ct = CTransform::Create(problem.Targets(), Cost::SquaredEuclidean(1.0f), {});
  auto d = ct->Compute(Eigen::Map<const RowMatrixXf>(batch.data(), 16, 1), average);
  ASSERT_TRUE(d.ok());
  (*solver)->RestartAveraging();
  auto h = (*solver)->Step(Eigen::Map<const RowMatrixXf>(batch.data(), 16, 1));
  ASSERT_TRUE(h.ok());
  EXPECT_NEAR(*h, d->semi_dual, 1e-6);
  const Eigen::VectorXf expected = average + 0.3f * d->grad_psi;
  EXPECT_LE((expected - (*solver)->psi_iterate()).cwiseAbs().maxCoeff(), 1e-6);
  // After one step of a run the average is that iterate.
  EXPECT_LE((expected - (*solver)->psi()).cwiseAbs().maxCoeff(), 1e-6);
  // Warm start: without restarts, a second Solve continues the step counter.
  SemiDiscreteOptions cont = opt;
  cont.restart_each_solve = false;
  auto s2 = SemiDiscreteSolver::Create(problem.Targets(), Cost::SquaredEuclidean(1.0f), cont);
  ASSERT_TRUE((*s2)->Solve(UniformSampler(3)).ok());
  ASSERT_TRUE((*s2)->Solve(UniformSampler(4)).ok());
  EXPECT_EQ((*s2)->total_steps(), 14);
  EXPECT_EQ((*s2)->ExportState().count("optimizer.0.step"), 1u);
  EXPECT_EQ(*DecodeCounter((*s2)->ExportState().at("optimizer.0.step"), "step"), 14);
}

TEST(SemiDiscreteTest, IterateWarmStartRestartsFromTheLastIterate) {
  const OneDimProblem problem;
  SemiDiscreteOptions opt;
  opt.batch_size = 16;
  opt.iterations = 7;
  opt.gamma = 0.3f;
  opt.warm_start = SemiDiscreteWarmStart::kIterate;
  auto solver = SemiDiscreteSolver::Create(problem.Targets(), Cost::SquaredEuclidean(1.0f), opt);
  ASSERT_TRUE(solver.ok());
  ASSERT_TRUE((*solver)->Solve(UniformSampler(3)).ok());
  const Eigen::VectorXf average = (*solver)->psi();
  const Eigen::VectorXf iterate = (*solver)->psi_iterate();
  ASSERT_GT((average - iterate).norm(), 0.0f);
  // The estimate after a run is still its average: the same as with kAverage.
  SemiDiscreteOptions avg_opt = opt;
  avg_opt.warm_start = SemiDiscreteWarmStart::kAverage;
  auto reference = SemiDiscreteSolver::Create(problem.Targets(), Cost::SquaredEuclidean(1.0f), avg_opt);
  ASSERT_TRUE((*reference)->Solve(UniformSampler(3)).ok());
  EXPECT_EQ((*reference)->psi(), average);
  // Restart: the iterate stays, the estimate becomes it, and a first step is taken from it
  // with the full step gamma / 1^alpha.
  (*solver)->RestartAveraging();
  EXPECT_EQ((*solver)->psi_iterate(), iterate);
  EXPECT_EQ((*solver)->psi(), iterate);
  nn::Rng rng(5);
  nn::Tensor batch = nn::Tensor::Uniform({16, 1}, 0.0f, 1.0f, rng);
  auto ct = CTransform::Create(problem.Targets(), Cost::SquaredEuclidean(1.0f), {});
  auto d = ct->Compute(Eigen::Map<const RowMatrixXf>(batch.data(), 16, 1), iterate);
  ASSERT_TRUE(d.ok());
  auto h = (*solver)->Step(Eigen::Map<const RowMatrixXf>(batch.data(), 16, 1));
  ASSERT_TRUE(h.ok());
  EXPECT_NEAR(*h, d->semi_dual, 1e-6);
  const Eigen::VectorXf expected = iterate + 0.3f * d->grad_psi;
  EXPECT_LE((expected - (*solver)->psi_iterate()).cwiseAbs().maxCoeff(), 1e-6);
  EXPECT_LE((expected - (*solver)->psi()).cwiseAbs().maxCoeff(), 1e-6);
  // Solve() restarts the same way: its first H is the semi-dual at the previous iterate.
  auto s2 = SemiDiscreteSolver::Create(problem.Targets(), Cost::SquaredEuclidean(1.0f), opt);
  ASSERT_TRUE((*s2)->Solve(UniformSampler(3)).ok());
  const Eigen::VectorXf last = (*s2)->psi_iterate();
  auto second = (*s2)->Solve(UniformSampler(4));
  ASSERT_TRUE(second.ok());
  nn::Tensor first_batch = *UniformSampler(4)(16);
  auto at_last = ct->Compute(Eigen::Map<const RowMatrixXf>(first_batch.data(), 16, 1), last);
  ASSERT_TRUE(at_last.ok());
  EXPECT_NEAR(second->h_history[0], at_last->semi_dual, 1e-6);
  // Restarting from the iterate still converges to the closed form (steps of at least
  // gamma / sqrt(K) leave a noise floor; large batches keep it small).
  SemiDiscreteOptions conv = opt;
  conv.batch_size = 1024;
  conv.iterations = 10;
  conv.gamma = 0.2f;
  auto s3 = SemiDiscreteSolver::Create(problem.Targets(), Cost::SquaredEuclidean(1.0f), conv);
  auto sampler = UniformSampler(7);
  for (int n = 0; n < 300; ++n) ASSERT_TRUE((*s3)->Solve(sampler).ok());
  const Eigen::VectorXd psi = Centered((*s3)->psi());
  EXPECT_LE((psi - problem.OptimalPsi()).cwiseAbs().maxCoeff(), 5e-3) << psi.transpose();
}

void ExpectSameTrajectory(SemiDiscreteSolver& a, SemiDiscreteSolver& b, int steps) {
  nn::Rng rng(11);
  for (int k = 0; k < steps; ++k) {
    nn::Tensor batch = nn::Tensor::Uniform({8, 1}, 0.0f, 1.0f, rng);
    Eigen::Map<const RowMatrixXf> x(batch.data(), 8, 1);
    ASSERT_TRUE(a.Step(x).ok());
    ASSERT_TRUE(b.Step(x).ok());
  }
  EXPECT_EQ(a.psi(), b.psi());
  EXPECT_EQ(a.psi_iterate(), b.psi_iterate());
}

TEST(SemiDiscreteTest, StateRoundTrip) {
  const OneDimProblem problem;
  for (SemiDiscreteMethod method : {SemiDiscreteMethod::kAsgd, SemiDiscreteMethod::kAdam}) {
    SemiDiscreteOptions opt;
    opt.method = method;
    opt.batch_size = 8;
    opt.iterations = 25;
    opt.gamma = 0.3f;
    opt.adam_learning_rate = 1e-2f;
    auto a = SemiDiscreteSolver::Create(problem.Targets(), Cost::SquaredEuclidean(1.0f), opt);
    auto b = SemiDiscreteSolver::Create(problem.Targets(), Cost::SquaredEuclidean(1.0f), opt);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_TRUE((*a)->Solve(UniformSampler(7)).ok());
    const auto state = (*a)->ExportState();
    EXPECT_EQ(state.count("psi"), 1u);
    if (method == SemiDiscreteMethod::kAsgd) {
      EXPECT_EQ(state.count("optimizer.0.averaged"), 1u);
    } else {
      EXPECT_EQ(state.count("optimizer.0.exp_avg"), 1u);
      EXPECT_EQ(state.count("optimizer.0.exp_avg_sq"), 1u);
    }
    ASSERT_TRUE((*b)->ImportState(state).ok());
    EXPECT_EQ((*b)->total_steps(), 25);
    EXPECT_EQ((*a)->psi(), (*b)->psi());
    ExpectSameTrajectory(**a, **b, 10);
  }
}

TEST(SemiDiscreteTest, ImportRejectsBadStateAndKeepsTheSolver) {
  const OneDimProblem problem;
  SemiDiscreteOptions opt;
  opt.batch_size = 8;
  opt.iterations = 5;
  auto a = SemiDiscreteSolver::Create(problem.Targets(), Cost::SquaredEuclidean(1.0f), opt);
  ASSERT_TRUE((*a)->Solve(UniformSampler(2)).ok());
  const auto good = (*a)->ExportState();
  const Eigen::VectorXf before = (*a)->psi_iterate();

  auto bad = good;
  bad["psi"] = nn::Tensor::Zeros({5});
  EXPECT_THAT((*a)->ImportState(bad).message(), HasSubstr("psi has shape [5]"));
  bad = good;
  bad["psi"] = good.at("psi").Clone();  // map copies share tensor storage
  bad["psi"].data()[1] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THAT((*a)->ImportState(bad).message(), HasSubstr("psi: entry 1 is nan"));
  bad = good;
  bad.erase("optimizer.0.averaged");
  EXPECT_THAT((*a)->ImportState(bad).message(), HasSubstr("missing tensor 0.averaged"));
  bad = good;
  bad["solver.method"] = nn::Tensor::Full({1}, 1.0f);
  EXPECT_THAT((*a)->ImportState(bad).message(), HasSubstr("solver.method"));
  bad = good;
  bad["solver.total_steps"] = nn::Tensor::FromVector({2}, {0.0f, 0.5f});
  EXPECT_THAT((*a)->ImportState(bad).message(), HasSubstr("solver.total_steps"));
  bad = good;
  bad["unknown"] = nn::Tensor::Zeros({1});
  EXPECT_THAT((*a)->ImportState(bad).message(), HasSubstr("unexpected entry unknown"));
  EXPECT_EQ((*a)->psi_iterate(), before);
  EXPECT_TRUE((*a)->ImportState(good).ok());
}

TEST(SemiDiscreteTest, CountersEncodeExactly) {
  for (int64_t v : {int64_t{0}, int64_t{1}, int64_t{16777215}, int64_t{16777217}, int64_t{123456789012}}) {
    auto back = DecodeCounter(EncodeCounter(v), "c");
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, v);
  }
  EXPECT_FALSE(DecodeCounter(nn::Tensor::Zeros({3}), "c").ok());
  EXPECT_FALSE(DecodeCounter(nn::Tensor::FromVector({2}, {-1.0f, 0.0f}), "c").ok());
}

// ---- Invalid input --------------------------------------------------------------------------------

TEST(SemiDiscreteTest, RejectsInvalidOptionsAndInput) {
  const OneDimProblem problem;
  auto make = [&](SemiDiscreteOptions o) {
    return SemiDiscreteSolver::Create(problem.Targets(), Cost::SquaredEuclidean(1.0f), o).status();
  };
  SemiDiscreteOptions o;
  o.gamma = 0.0f;
  EXPECT_THAT(make(o).message(), HasSubstr("SemiDiscreteOptions.gamma"));
  o = {};
  o.alpha = 0.0f;
  EXPECT_THAT(make(o).message(), HasSubstr("SemiDiscreteOptions.alpha"));
  o.alpha = 1.5f;
  EXPECT_THAT(make(o).message(), HasSubstr("SemiDiscreteOptions.alpha"));
  o = {};
  o.batch_size = 0;
  EXPECT_THAT(make(o).message(), HasSubstr("SemiDiscreteOptions.batch_size"));
  o = {};
  o.iterations = -1;
  EXPECT_THAT(make(o).message(), HasSubstr("SemiDiscreteOptions.iterations"));
  o = {};
  o.ctransform.lambda = -0.1f;
  EXPECT_THAT(make(o).message(), HasSubstr("CTransformOptions.lambda"));
  o = {};
  o.adam_beta2 = 1.0f;
  EXPECT_THAT(make(o).message(), HasSubstr("SemiDiscreteOptions.adam_beta2"));
  EXPECT_EQ(SemiDiscreteSolver::Create(nullptr, Cost::SquaredEuclidean(), {}).status().code(),
            absl::StatusCode::kInvalidArgument);

  SemiDiscreteOptions ok;
  ok.batch_size = 4;
  ok.iterations = 2;
  auto solver = SemiDiscreteSolver::Create(problem.Targets(), Cost::SquaredEuclidean(1.0f), ok);
  ASSERT_TRUE(solver.ok());
  // Wrong batch shape.
  auto wrong = (*solver)->Solve([](int64_t) -> absl::StatusOr<nn::Tensor> { return nn::Tensor::Zeros({4, 2}); });
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong.status().message(), HasSubstr("sampler: expected a batch of shape [4, ...]"));
  // Non-finite samples.
  auto nan = (*solver)->Solve([](int64_t b) -> absl::StatusOr<nn::Tensor> {
    nn::Tensor t = nn::Tensor::Zeros({b, 1});
    t.data()[2] = std::numeric_limits<float>::infinity();
    return t;
  });
  EXPECT_EQ(nan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(nan.status().message(), HasSubstr("entry (2, 0) is inf"));
  // Sampler errors pass through.
  auto failing = (*solver)->Solve([](int64_t) -> absl::StatusOr<nn::Tensor> { return absl::DataLossError("disk"); });
  EXPECT_EQ(failing.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE((*solver)->Solve(BatchSampler()).ok());
  // SetPsi.
  EXPECT_THAT((*solver)->SetPsi(Eigen::VectorXf::Zero(3)).message(), HasSubstr("psi: expected 4 entries"));
  Eigen::VectorXf psi = Eigen::VectorXf::Zero(4);
  psi[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THAT((*solver)->SetPsi(psi).message(), HasSubstr("psi: entry 3 is nan"));
  psi[3] = 0.25f;
  ASSERT_TRUE((*solver)->SetPsi(psi).ok());
  EXPECT_EQ((*solver)->psi(), psi);
}

}  // namespace
}  // namespace otgen::ot
