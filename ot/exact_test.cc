#include "ot/exact.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "Eigen/Dense"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "ot/cost.h"
#include "ot/types.h"

namespace otgen::ot {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::mt19937_64 SeededGen(int seed) {
  std::seed_seq seq{seed};
  return std::mt19937_64(seq);
}

Eigen::VectorXd RandomWeights(std::mt19937_64& gen, int n, double zero_probability) {
  Eigen::VectorXd w(n);
  for (int k = 0; k < n; ++k) {
    w[k] = absl::Bernoulli(gen, zero_probability) ? 0.0 : absl::Uniform(gen, 0.05, 1.0);
  }
  if (w.sum() == 0.0) w[absl::Uniform(gen, 0, n)] = 1.0;
  return w / w.sum();
}

RowMatrixXd RandomCost(std::mt19937_64& gen, int n, int m, bool integer_ties) {
  RowMatrixXd c(n, m);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < m; ++j)
      c(i, j) = integer_ties ? absl::Uniform(gen, 0, 3) : absl::Uniform(gen, -1.0, 2.0);
  return c;
}

Eigen::VectorXd Uniform(int n) { return Eigen::VectorXd::Constant(n, 1.0 / n); }

// Checks everything an optimal result must satisfy, independently of the algorithm: the plan
// is primal feasible (non-negative, marginals a and b, at most n + m - 1 non-zeros), the
// potentials are dual feasible (f_i + g_j <= C_ij), complementary slackness holds on the plan's
// support, and the primal cost equals the dual objective. Primal + dual feasibility with equal
// objectives proves optimality (LP duality).
void ExpectOptimal(const RowMatrixXd& c, const Eigen::VectorXd& a, const Eigen::VectorXd& b,
                   const ExactOTResult& r, double tol = 1e-10) {
  const int n = static_cast<int>(c.rows()), m = static_cast<int>(c.cols());
  ASSERT_TRUE(r.optimal()) << r.BriefReport();
  ASSERT_EQ(r.rows, n);
  ASSERT_EQ(r.cols, m);
  ASSERT_EQ(r.source_potential.size(), n);
  ASSERT_EQ(r.target_potential.size(), m);
  EXPECT_LE(static_cast<int>(r.plan.size()), n + m - 1);
  const double scale = std::max(1.0, c.cwiseAbs().maxCoeff());
  Eigen::VectorXd row_sum = Eigen::VectorXd::Zero(n), col_sum = Eigen::VectorXd::Zero(m);
  double cost = 0.0;
  for (size_t k = 0; k < r.plan.size(); ++k) {
    const TransportEntry& e = r.plan[k];
    ASSERT_GE(e.i, 0);
    ASSERT_LT(e.i, n);
    ASSERT_GE(e.j, 0);
    ASSERT_LT(e.j, m);
    EXPECT_GT(e.mass, 0.0);
    if (k > 0) {
      const TransportEntry& p = r.plan[k - 1];
      EXPECT_TRUE(p.i < e.i || (p.i == e.i && p.j < e.j)) << "plan not sorted at " << k;
    }
    row_sum[e.i] += e.mass;
    col_sum[e.j] += e.mass;
    cost += e.mass * c(e.i, e.j);
    EXPECT_NEAR(r.source_potential[e.i] + r.target_potential[e.j], c(e.i, e.j), tol * scale)
        << "complementary slackness at (" << e.i << ", " << e.j << ")";
  }
  for (int i = 0; i < n; ++i) EXPECT_NEAR(row_sum[i], a[i], tol) << "row marginal " << i;
  for (int j = 0; j < m; ++j) EXPECT_NEAR(col_sum[j], b[j], tol) << "column marginal " << j;
  EXPECT_NEAR(r.cost, cost, tol * scale);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < m; ++j) {
      ASSERT_LE(r.source_potential[i] + r.target_potential[j], c(i, j) + tol * scale)
          << "dual infeasible at (" << i << ", " << j << ")";
    }
  }
  EXPECT_NEAR(r.DualObjective(a, b), r.cost, tol * scale);
  // The potentials are centred: <a, f> = <b, g>.
  EXPECT_NEAR(a.dot(r.source_potential), b.dot(r.target_potential), tol * scale);
}

double BruteForceAssignment(const RowMatrixXd& c) {
  const int n = static_cast<int>(c.rows());
  std::vector<int> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  double best = kInf;
  do {
    double total = 0.0;
    for (int i = 0; i < n; ++i) total += c(i, perm[i]);
    best = std::min(best, total);
  } while (std::next_permutation(perm.begin(), perm.end()));
  return best / n;
}

// The LP optimum by enumerating all bases: every vertex of the transportation polytope is
// the unique flow on some spanning tree of the bipartite graph K_{n,m} (n + m - 1 cells, no
// cycle). Solve each tree's flows by peeling leaves, keep the feasible ones, take the cheapest.
double LpByVertexEnumeration(const RowMatrixXd& c, const Eigen::VectorXd& a,
                             const Eigen::VectorXd& b) {
  const int n = static_cast<int>(c.rows()), m = static_cast<int>(c.cols());
  const int cells = n * m, basis = n + m - 1;
  double best = kInf;
  std::vector<int> chosen;
  std::function<void(int)> recurse = [&](int next) {
    if (static_cast<int>(chosen.size()) == basis) {
      // Acyclic check (union-find over the n + m nodes).
      std::vector<int> parent(n + m);
      std::iota(parent.begin(), parent.end(), 0);
      std::function<int(int)> find = [&](int u) {
        return parent[u] == u ? u : parent[u] = find(parent[u]);
      };
      for (const int cell : chosen) {
        const int u = find(cell / m), v = find(n + cell % m);
        if (u == v) return;
        parent[u] = v;
      }
      // Peel leaves.
      std::vector<double> rest(n + m);
      for (int i = 0; i < n; ++i) rest[i] = a[i];
      for (int j = 0; j < m; ++j) rest[n + j] = b[j];
      std::vector<int> degree(n + m, 0);
      std::vector<bool> used(chosen.size(), false);
      for (const int cell : chosen) {
        ++degree[cell / m];
        ++degree[n + cell % m];
      }
      double cost = 0.0;
      for (int done = 0; done < basis;) {
        bool progress = false;
        for (size_t k = 0; k < chosen.size(); ++k) {
          if (used[k]) continue;
          const int i = chosen[k] / m, j = n + chosen[k] % m;
          int leaf = -1, other = -1;
          if (degree[i] == 1) {
            leaf = i;
            other = j;
          } else if (degree[j] == 1) {
            leaf = j;
            other = i;
          } else {
            continue;
          }
          const double flow = rest[leaf];
          if (flow < -1e-12) return;  // Infeasible basis.
          rest[leaf] = 0.0;
          rest[other] -= flow;
          cost += flow * c(i, j - n);
          --degree[i];
          --degree[j];
          used[k] = true;
          ++done;
          progress = true;
        }
        if (!progress) return;
      }
      best = std::min(best, cost);
      return;
    }
    for (int cell = next; cell < cells; ++cell) {
      if (cells - cell < basis - static_cast<int>(chosen.size())) break;
      chosen.push_back(cell);
      recurse(cell + 1);
      chosen.pop_back();
    }
  };
  recurse(0);
  return best;
}

// Cost of the monotone (north-west corner) coupling of two weighted point sets on a line,
// optimal for any convex cost h(x - y) (here |x - y|^p, p >= 1).
double MonotoneCoupling1D(std::vector<std::pair<double, double>> x,
                          std::vector<std::pair<double, double>> y, double p) {
  std::sort(x.begin(), x.end());
  std::sort(y.begin(), y.end());
  size_t i = 0, j = 0;
  double ra = x[0].second, rb = y[0].second, cost = 0.0;
  while (i < x.size() && j < y.size()) {
    const double t = std::min(ra, rb);
    cost += t * std::pow(std::abs(x[i].first - y[j].first), p);
    ra -= t;
    rb -= t;
    if (ra <= 1e-15 && i < x.size()) {
      if (++i < x.size()) ra = x[i].second;
    }
    if (rb <= 1e-15 && j < y.size()) {
      if (++j < y.size()) rb = y[j].second;
    }
  }
  return cost;
}

ExactOTOptions SimplexOnly() {
  ExactOTOptions options;
  options.use_assignment_for_uniform = false;
  return options;
}

TEST(ExactOTTest, UniformWeightsMatchBruteForcePermutations) {
  std::mt19937_64 gen = SeededGen(1);
  for (int n = 1; n <= 7; ++n) {
    for (int trial = 0; trial < 25; ++trial) {
      const RowMatrixXd c = RandomCost(gen, n, n, trial % 3 == 0);
      const double expected = BruteForceAssignment(c);
      const Eigen::VectorXd u = Uniform(n);

      absl::StatusOr<ExactOTResult> simplex = SolveExactOT(c, u, u, SimplexOnly());
      ASSERT_TRUE(simplex.ok()) << simplex.status();
      EXPECT_EQ(simplex->solver, ExactOTSolver::kNetworkSimplex);
      EXPECT_NEAR(simplex->cost, expected, 1e-12) << "n=" << n << " trial=" << trial;
      ExpectOptimal(c, u, u, *simplex);

      absl::StatusOr<ExactOTResult> assignment = SolveExactOT(c, u, u);
      ASSERT_TRUE(assignment.ok()) << assignment.status();
      EXPECT_EQ(assignment->solver, ExactOTSolver::kAssignment);
      EXPECT_NEAR(assignment->cost, expected, 1e-12);
      EXPECT_EQ(static_cast<int>(assignment->plan.size()), n);
      ExpectOptimal(c, u, u, *assignment);

      // The weightless overload is the same problem.
      absl::StatusOr<ExactOTResult> weightless = SolveExactOT(c);
      ASSERT_TRUE(weightless.ok()) << weightless.status();
      EXPECT_NEAR(weightless->cost, expected, 1e-12);
    }
  }
}

TEST(ExactOTTest, GeneralWeightsMatchVertexEnumeration) {
  std::mt19937_64 gen = SeededGen(2);
  for (int n = 1; n <= 4; ++n) {
    for (int m = 1; m <= 4; ++m) {
      for (int trial = 0; trial < 12; ++trial) {
        const RowMatrixXd c = RandomCost(gen, n, m, trial % 3 == 0);
        const Eigen::VectorXd a = RandomWeights(gen, n, trial % 4 == 1 ? 0.3 : 0.0);
        const Eigen::VectorXd b = RandomWeights(gen, m, trial % 4 == 2 ? 0.3 : 0.0);
        const double expected = LpByVertexEnumeration(c, a, b);
        absl::StatusOr<ExactOTResult> r = SolveExactOT(c, a, b);
        ASSERT_TRUE(r.ok()) << r.status();
        EXPECT_NEAR(r->cost, expected, 1e-12) << n << " x " << m << " trial " << trial;
        ExpectOptimal(c, a, b, *r);
      }
    }
  }
  // 3 x 5 and 5 x 3 (larger vertex counts).
  for (const auto& [n, m] : {std::pair{3, 5}, std::pair{5, 3}}) {
    for (int trial = 0; trial < 4; ++trial) {
      const RowMatrixXd c = RandomCost(gen, n, m, trial % 2 == 0);
      const Eigen::VectorXd a = RandomWeights(gen, n, 0.2), b = RandomWeights(gen, m, 0.2);
      absl::StatusOr<ExactOTResult> r = SolveExactOT(c, a, b);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_NEAR(r->cost, LpByVertexEnumeration(c, a, b), 1e-12);
      ExpectOptimal(c, a, b, *r);
    }
  }
}

TEST(ExactOTTest, OneDimensionalConvexCostIsMonotoneCoupling) {
  std::mt19937_64 gen = SeededGen(3);
  for (const double p : {1.0, 1.5, 2.0}) {
    for (const auto& [n, m] :
         {std::pair{1, 9}, std::pair{12, 12}, std::pair{40, 25}, std::pair{57, 90}}) {
      RowMatrixXf x(n, 1), y(m, 1);
      for (int i = 0; i < n; ++i) x(i, 0) = absl::Gaussian<float>(gen);
      for (int j = 0; j < m; ++j) y(j, 0) = absl::Uniform(gen, -1.0f, 3.0f);
      const Eigen::VectorXf a = RandomWeights(gen, n, 0.1).cast<float>();
      const Eigen::VectorXf b = RandomWeights(gen, m, 0.1).cast<float>();
      // The solver normalizes float weights in double; the oracle uses the same weights.
      const Eigen::VectorXd af = a.cast<double>() / a.cast<double>().sum();
      const Eigen::VectorXd bf = b.cast<double>() / b.cast<double>().sum();
      std::vector<std::pair<double, double>> xs, ys;
      for (int i = 0; i < n; ++i) xs.push_back({x(i, 0), af[i]});
      for (int j = 0; j < m; ++j) ys.push_back({y(j, 0), bf[j]});
      const double expected = MonotoneCoupling1D(xs, ys, p);

      const Cost cost = p == 2.0 ? Cost::SquaredEuclidean() : Cost::Lp(static_cast<float>(p));
      absl::StatusOr<ExactOTResult> r = SolveExactOT(x, a, y, b, cost);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_NEAR(r->cost, expected, 1e-12 * std::max(1.0, expected)) << "p=" << p;
      absl::StatusOr<RowMatrixXd> c = ExactCostMatrix(x, y, cost);
      ASSERT_TRUE(c.ok()) << c.status();
      ExpectOptimal(*c, af, bf, *r);
    }
  }
}

TEST(ExactOTTest, MediumProblemsHaveOptimalityCertificates) {
  std::mt19937_64 gen = SeededGen(4);
  for (const auto& [n, m] : {std::pair{100, 80}, std::pair{64, 64}, std::pair{1, 50},
                             std::pair{50, 1}, std::pair{150, 170}}) {
    for (int kind = 0; kind < 3; ++kind) {
      RowMatrixXd c;
      if (kind == 2) {
        // Squared distances between 2-D clouds.
        RowMatrixXd x = RowMatrixXd::Random(n, 2), y = RowMatrixXd::Random(m, 2);
        c.resize(n, m);
        for (int i = 0; i < n; ++i)
          for (int j = 0; j < m; ++j) c(i, j) = (x.row(i) - y.row(j)).squaredNorm();
      } else {
        c = RandomCost(gen, n, m, kind == 1);
      }
      const Eigen::VectorXd a = RandomWeights(gen, n, 0.1), b = RandomWeights(gen, m, 0.1);
      absl::StatusOr<ExactOTResult> r = SolveExactOT(c, a, b);
      ASSERT_TRUE(r.ok()) << r.status();
      ExpectOptimal(c, a, b, *r);
      // Uniform weights through the network simplex (highly degenerate when n = m).
      absl::StatusOr<ExactOTResult> ru = SolveExactOT(c, Uniform(n), Uniform(m), SimplexOnly());
      ASSERT_TRUE(ru.ok()) << ru.status();
      ExpectOptimal(c, Uniform(n), Uniform(m), *ru);
      if (n == m) {
        absl::StatusOr<ExactOTResult> ra = SolveExactOT(c);
        ASSERT_TRUE(ra.ok()) << ra.status();
        EXPECT_EQ(ra->solver, ExactOTSolver::kAssignment);
        EXPECT_NEAR(ra->cost, ru->cost, 1e-12);
      }
      // Small pricing blocks change the pivot sequence, not the optimum.
      ExactOTOptions small_blocks;
      small_blocks.block_size = 7;
      absl::StatusOr<ExactOTResult> rb = SolveExactOT(c, a, b, small_blocks);
      ASSERT_TRUE(rb.ok()) << rb.status();
      EXPECT_NEAR(rb->cost, r->cost, 1e-12);
      ExpectOptimal(c, a, b, *rb);
    }
  }
}

// OT plans are invariant under C -> s C (s > 0) and C_ij -> C_ij + alpha_i + beta_j (the cost
// moves by s, resp. by <a, alpha> + <b, beta>). Checks that tolerances are relative.
TEST(ExactOTTest, ScaleAndOffsetInvariance) {
  std::mt19937_64 gen = SeededGen(12);
  const int n = 60, m = 45;
  const RowMatrixXd c = RandomCost(gen, n, m, false);
  const Eigen::VectorXd a = RandomWeights(gen, n, 0.1), b = RandomWeights(gen, m, 0.1);
  absl::StatusOr<ExactOTResult> base = SolveExactOT(c, a, b);
  ASSERT_TRUE(base.ok()) << base.status();
  ExpectOptimal(c, a, b, *base);
  for (const double s : {1e-12, 1e-3, 1e4, 1e12}) {
    const RowMatrixXd cs = s * c;
    absl::StatusOr<ExactOTResult> r = SolveExactOT(cs, a, b);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_NEAR(r->cost / s, base->cost, 1e-12) << "scale " << s;
    ExpectOptimal(cs, a, b, *r);
  }
  Eigen::VectorXd alpha(n), beta(m);
  for (int i = 0; i < n; ++i) alpha[i] = absl::Uniform(gen, -1e3, 1e3);
  for (int j = 0; j < m; ++j) beta[j] = absl::Uniform(gen, 1e5, 2e5);
  const RowMatrixXd shifted = c + alpha.replicate(1, m) + beta.transpose().replicate(n, 1);
  absl::StatusOr<ExactOTResult> r = SolveExactOT(shifted, a, b);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NEAR(r->cost - a.dot(alpha) - b.dot(beta), base->cost, 1e-9);
  ExpectOptimal(shifted, a, b, *r, 1e-12);
}

TEST(ExactOTTest, DegenerateInputs) {
  // n = m = 1.
  RowMatrixXd one(1, 1);
  one(0, 0) = 2.5;
  absl::StatusOr<ExactOTResult> r = SolveExactOT(one, Uniform(1), Uniform(1), SimplexOnly());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->cost, 2.5);
  ASSERT_EQ(r->plan.size(), 1u);
  EXPECT_EQ(r->plan[0].mass, 1.0);
  ExpectOptimal(one, Uniform(1), Uniform(1), *r);

  // One source: every target takes its weight from it.
  std::mt19937_64 gen = SeededGen(5);
  const RowMatrixXd row = RandomCost(gen, 1, 6, false);
  const Eigen::VectorXd b = RandomWeights(gen, 6, 0.3);
  r = SolveExactOT(row, Uniform(1), b);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NEAR(r->cost, row.row(0).dot(b), 1e-14);
  ExpectOptimal(row, Uniform(1), b, *r);

  // Zero weights: those rows/columns carry no mass, and the potentials are still feasible.
  RowMatrixXd c = RandomCost(gen, 5, 4, false);
  Eigen::VectorXd a(5), bb(4);
  a << 0.0, 0.5, 0.0, 0.5, 0.0;
  bb << 0.25, 0.0, 0.75, 0.0;
  r = SolveExactOT(c, a, bb);
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectOptimal(c, a, bb, *r);
  EXPECT_NEAR(r->cost, LpByVertexEnumeration(c, a, bb), 1e-12);
  for (const TransportEntry& e : r->plan) {
    EXPECT_GT(a[e.i], 0.0);
    EXPECT_GT(bb[e.j], 0.0);
  }

  // All costs equal: any coupling is optimal, cost = the constant.
  const RowMatrixXd flat = RowMatrixXd::Constant(6, 9, 0.75);
  const Eigen::VectorXd fa = RandomWeights(gen, 6, 0.0), fb = RandomWeights(gen, 9, 0.0);
  r = SolveExactOT(flat, fa, fb);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NEAR(r->cost, 0.75, 1e-14);
  ExpectOptimal(flat, fa, fb, *r);
  const RowMatrixXd zeros = RowMatrixXd::Zero(4, 4);
  r = SolveExactOT(zeros, Uniform(4), Uniform(4), SimplexOnly());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->cost, 0.0);
  ExpectOptimal(zeros, Uniform(4), Uniform(4), *r);

  // Identical point clouds: the identity coupling, cost 0.
  RowMatrixXf pts = RowMatrixXf::Random(30, 3);
  r = SolveExactOT(pts, pts, Cost::SquaredEuclidean());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->cost, 0.0);
  std::vector<int> identity(30);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(r->MainTargets(), identity);
}

TEST(ExactOTTest, FloatOverloadsSolveTheSameProblem) {
  std::mt19937_64 gen = SeededGen(6);
  const RowMatrixXf cf = RandomCost(gen, 20, 13, false).cast<float>();
  const Eigen::VectorXf af = RandomWeights(gen, 20, 0.1).cast<float>();
  const Eigen::VectorXf bf = RandomWeights(gen, 13, 0.1).cast<float>();
  absl::StatusOr<ExactOTResult> r = SolveExactOT(cf, af, bf);
  ASSERT_TRUE(r.ok()) << r.status();
  const RowMatrixXd c = cf.cast<double>();
  const Eigen::VectorXd a = af.cast<double>() / af.cast<double>().sum();
  const Eigen::VectorXd b = bf.cast<double>() / bf.cast<double>().sum();
  ExpectOptimal(c, a, b, *r);
  absl::StatusOr<ExactOTResult> rd = SolveExactOT(c, a, b);
  ASSERT_TRUE(rd.ok()) << rd.status();
  EXPECT_NEAR(r->cost, rd->cost, 1e-13);

  const RowMatrixXf square = RandomCost(gen, 15, 15, false).cast<float>();
  r = SolveExactOT(square);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->solver, ExactOTSolver::kAssignment);
  ExpectOptimal(square.cast<double>(), Uniform(15), Uniform(15), *r);
}

TEST(ExactOTTest, StridedCostView) {
  std::mt19937_64 gen = SeededGen(7);
  const RowMatrixXd big = RandomCost(gen, 30, 40, false);
  const Eigen::Ref<const RowMatrixXd> block = big.block(3, 5, 20, 25);
  const Eigen::VectorXd a = RandomWeights(gen, 20, 0.0), b = RandomWeights(gen, 25, 0.0);
  absl::StatusOr<ExactOTResult> r = SolveExactOT(block, a, b);
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectOptimal(big.block(3, 5, 20, 25), a, b, *r);
}

TEST(ExactOTTest, PointCloudCostMatrices) {
  std::mt19937_64 gen = SeededGen(8);
  for (const int d : {1, 2, 5, 64}) {
    RowMatrixXf x(23, d), y(31, d);
    for (int k = 0; k < x.size(); ++k) x.data()[k] = 3.0f + absl::Gaussian<float>(gen);
    for (int k = 0; k < y.size(); ++k) y.data()[k] = 3.0f + absl::Gaussian<float>(gen);
    for (const Cost& cost : {Cost::SquaredEuclidean(), Cost::SquaredEuclidean(2.5f), Cost::Lp(1.0f),
                             Cost::Lp(3.0f), Cost::L1(), Cost::Cosine()}) {
      absl::StatusOr<RowMatrixXd> c = ExactCostMatrix(x, y, cost);
      ASSERT_TRUE(c.ok()) << c.status();
      ASSERT_EQ(c->rows(), 23);
      ASSERT_EQ(c->cols(), 31);
      for (int i = 0; i < 23; ++i) {
        for (int j = 0; j < 31; ++j) {
          const Eigen::VectorXd xi = x.row(i).cast<double>().transpose();
          const Eigen::VectorXd yj = y.row(j).cast<double>().transpose();
          double expected = 0.0;
          switch (cost.kind) {
            case CostKind::kSquaredEuclidean:
              expected = (xi - yj).squaredNorm();
              break;
            case CostKind::kLp:
              expected = std::pow((xi - yj).norm(), cost.p);
              break;
            case CostKind::kL1:
              expected = (xi - yj).lpNorm<1>();
              break;
            case CostKind::kCosine:
              expected = 1.0 - xi.dot(yj) / (xi.norm() * yj.norm());
              break;
          }
          expected /= cost.scale;
          EXPECT_NEAR((*c)(i, j), expected, 1e-11 * std::max(1.0, expected))
              << cost.ToString() << " d=" << d << " at (" << i << ", " << j << ")";
        }
      }
    }
  }
}

TEST(ExactOTTest, PointCloudApiMatchesMatrixApi) {
  std::mt19937_64 gen = SeededGen(9);
  for (const int d : {2, 40}) {
    RowMatrixXf x(50, d), y(50, d), z(35, d);
    for (int k = 0; k < x.size(); ++k) x.data()[k] = absl::Gaussian<float>(gen);
    for (int k = 0; k < y.size(); ++k) y.data()[k] = absl::Uniform(gen, 0.0f, 1.0f);
    for (int k = 0; k < z.size(); ++k) z.data()[k] = absl::Uniform(gen, 0.0f, 1.0f);
    for (const Cost& cost : {Cost::SquaredEuclidean(), Cost::Lp(1.0f)}) {
      // Uniform, n = m: assignment.
      absl::StatusOr<ExactOTResult> r = SolveExactOT(x, y, cost);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(r->solver, ExactOTSolver::kAssignment);
      absl::StatusOr<RowMatrixXd> c = ExactCostMatrix(x, y, cost);
      ASSERT_TRUE(c.ok());
      ExpectOptimal(*c, Uniform(50), Uniform(50), *r);
      absl::StatusOr<ExactOTResult> rm = SolveExactOT(*c, Uniform(50), Uniform(50), SimplexOnly());
      ASSERT_TRUE(rm.ok());
      EXPECT_NEAR(r->cost, rm->cost, 1e-12);

      // Uniform, n != m: network simplex.
      r = SolveExactOT(x, z, cost);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(r->solver, ExactOTSolver::kNetworkSimplex);
      c = ExactCostMatrix(x, z, cost);
      ASSERT_TRUE(c.ok());
      ExpectOptimal(*c, Uniform(50), Uniform(35), *r);

      // Weighted.
      const Eigen::VectorXd a = RandomWeights(gen, 50, 0.1), b = RandomWeights(gen, 35, 0.1);
      r = SolveExactOT(x, a.cast<float>(), z, b.cast<float>(), cost);
      ASSERT_TRUE(r.ok()) << r.status();
      const Eigen::VectorXd an =
          a.cast<float>().cast<double>() / a.cast<float>().cast<double>().sum();
      const Eigen::VectorXd bn =
          b.cast<float>().cast<double>() / b.cast<float>().cast<double>().sum();
      ExpectOptimal(*c, an, bn, *r);
    }
  }
}

TEST(ExactOTTest, DenseSummaryAndMainTargets) {
  std::mt19937_64 gen = SeededGen(10);
  const RowMatrixXd c = RandomCost(gen, 6, 4, false);
  const Eigen::VectorXd a = RandomWeights(gen, 6, 0.0), b = RandomWeights(gen, 4, 0.0);
  absl::StatusOr<ExactOTResult> r = SolveExactOT(c, a, b);
  ASSERT_TRUE(r.ok()) << r.status();
  const RowMatrixXd p = r->DensePlan();
  ASSERT_EQ(p.rows(), 6);
  ASSERT_EQ(p.cols(), 4);
  EXPECT_NEAR((p.rowwise().sum() - a).cwiseAbs().maxCoeff(), 0.0, 1e-14);
  EXPECT_NEAR((p.colwise().sum().transpose() - b).cwiseAbs().maxCoeff(), 0.0, 1e-14);
  EXPECT_NEAR((c.array() * p.array()).sum(), r->cost, 1e-14);
  const std::vector<int> main = r->MainTargets();
  for (int i = 0; i < 6; ++i) {
    Eigen::Index best;
    p.row(i).maxCoeff(&best);
    EXPECT_EQ(main[i], static_cast<int>(best));
  }
  const std::string report = r->BriefReport();
  EXPECT_NE(report.find("network simplex"), std::string::npos) << report;
  EXPECT_NE(report.find("optimal"), std::string::npos) << report;
}

TEST(ExactOTTest, MaxIterationsStopsEarly) {
  std::mt19937_64 gen = SeededGen(11);
  const RowMatrixXd c = RandomCost(gen, 40, 40, false);
  const Eigen::VectorXd a = RandomWeights(gen, 40, 0.0), b = RandomWeights(gen, 40, 0.0);
  ExactOTOptions options;
  options.max_iterations = 3;
  absl::StatusOr<ExactOTResult> r = SolveExactOT(c, a, b, options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->termination, ExactOTTermination::kMaxIterationsReached);
  EXPECT_FALSE(r->optimal());
  EXPECT_EQ(r->iterations, 3);
  EXPECT_NE(r->BriefReport().find("not optimal"), std::string::npos);
}

void ExpectInvalid(const absl::StatusOr<ExactOTResult>& r, const std::string& needle) {
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_NE(r.status().message().find(needle), std::string::npos)
      << "message \"" << r.status().message() << "\" lacks \"" << needle << "\"";
}

TEST(ExactOTTest, RejectsBadInput) {
  const RowMatrixXd c = RowMatrixXd::Ones(3, 4);
  const Eigen::VectorXd a = Uniform(3), b = Uniform(4);
  ExpectInvalid(SolveExactOT(c, Uniform(2), b), "source_weights");
  ExpectInvalid(SolveExactOT(c, a, Uniform(3)), "target_weights");
  Eigen::VectorXd neg = a;
  neg[0] = -0.1;
  neg[1] += 0.1;
  ExpectInvalid(SolveExactOT(c, neg, b), "source_weights");
  ExpectInvalid(SolveExactOT(c, a, b * 0.8), "target_weights");
  ExpectInvalid(SolveExactOT(c, a * 1.001, b), "sum");
  Eigen::VectorXd nan_w = a;
  nan_w[2] = std::numeric_limits<double>::quiet_NaN();
  ExpectInvalid(SolveExactOT(c, nan_w, b), "source_weights");
  // Within the tolerance is fine.
  EXPECT_TRUE(SolveExactOT(c, a * (1 + 1e-7), b).ok());

  RowMatrixXd bad = c;
  bad(2, 1) = std::numeric_limits<double>::quiet_NaN();
  ExpectInvalid(SolveExactOT(bad, a, b), "cost");
  bad(2, 1) = -std::numeric_limits<double>::infinity();
  ExpectInvalid(SolveExactOT(bad, a, b), "(2, 1)");
  ExpectInvalid(SolveExactOT(RowMatrixXd(0, 4), Eigen::VectorXd(0), b), "cost");
  ExpectInvalid(SolveExactOT(RowMatrixXd(0, 0)), "cost");

  ExactOTOptions options;
  options.max_iterations = 0;
  ExpectInvalid(SolveExactOT(c, a, b, options), "max_iterations");
  options = ExactOTOptions();
  options.weight_sum_tolerance = -1.0;
  ExpectInvalid(SolveExactOT(c, a, b, options), "weight_sum_tolerance");
  options = ExactOTOptions();
  options.block_size = -2;
  ExpectInvalid(SolveExactOT(c, a, b, options), "block_size");

  // Point clouds.
  RowMatrixXf x = RowMatrixXf::Random(5, 3), y = RowMatrixXf::Random(6, 3);
  ExpectInvalid(SolveExactOT(x, RowMatrixXf::Random(6, 2), Cost::SquaredEuclidean()),
                "target_points");
  ExpectInvalid(SolveExactOT(RowMatrixXf(0, 3), y, Cost::SquaredEuclidean()), "source_points");
  RowMatrixXf xinf = x;
  xinf(1, 1) = std::numeric_limits<float>::infinity();
  ExpectInvalid(SolveExactOT(xinf, y, Cost::SquaredEuclidean()), "source_points");
  RowMatrixXf ynan = y;
  ynan(0, 2) = std::numeric_limits<float>::quiet_NaN();
  ExpectInvalid(SolveExactOT(x, ynan, Cost::SquaredEuclidean()), "target_points");
  ExpectInvalid(SolveExactOT(x, Eigen::VectorXf::Constant(4, 0.25f), y,
                             Eigen::VectorXf::Constant(6, 1.0f / 6), Cost::SquaredEuclidean()),
                "source_weights");
  ExpectInvalid(SolveExactOT(x, Eigen::VectorXf::Constant(5, 0.2f), y,
                             Eigen::VectorXf::Constant(6, 0.5f), Cost::SquaredEuclidean()),
                "target_weights");
  ExpectInvalid(SolveExactOT(x, y, Cost::SquaredEuclidean(-1.0f)), "");
  // Finite points whose cost overflows double.
  ExpectInvalid(SolveExactOT(x * 1e30f, y, Cost::Lp(20.0f)), "overflows");
  EXPECT_EQ(ExactCostMatrix(x, RowMatrixXf::Random(6, 4), Cost::L1()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace otgen::ot
