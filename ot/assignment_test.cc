#include "ot/assignment.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "Eigen/Dense"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "ot/types.h"

namespace otgen::ot {
namespace {

// min over all permutations of (1/n) sum_i C[i, sigma(i)].
template <typename Matrix>
double BruteForceAssignment(const Matrix& c) {
  const int n = static_cast<int>(c.rows());
  std::vector<int> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  double best = std::numeric_limits<double>::infinity();
  do {
    double total = 0.0;
    for (int i = 0; i < n; ++i) total += static_cast<double>(c(i, perm[i]));
    best = std::min(best, total);
  } while (std::next_permutation(perm.begin(), perm.end()));
  return best / n;
}

// Checks that r is a permutation with the stated cost and that (u, v) certify its optimality:
// u_i + v_j <= C_ij, equality on the matching, and mean(u) + mean(v) = cost. Together these
// prove optimality by LP duality, independently of the algorithm.
template <typename Matrix>
void ExpectOptimalityCertificate(const Matrix& c, const AssignmentResult& r, double tol) {
  const int n = static_cast<int>(c.rows());
  ASSERT_EQ(static_cast<int>(r.target_of_source.size()), n);
  ASSERT_EQ(r.source_potential.size(), n);
  ASSERT_EQ(r.target_potential.size(), n);
  std::vector<int> seen(n, 0);
  double total = 0.0;
  for (int i = 0; i < n; ++i) {
    const int j = r.target_of_source[i];
    ASSERT_GE(j, 0);
    ASSERT_LT(j, n);
    ++seen[j];
    total += static_cast<double>(c(i, j));
  }
  for (int j = 0; j < n; ++j) ASSERT_EQ(seen[j], 1) << "target " << j;
  EXPECT_NEAR(r.cost, total / n, tol);
  double scale = 1.0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) scale = std::max(scale, std::abs(static_cast<double>(c(i, j))));
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      ASSERT_LE(r.source_potential[i] + r.target_potential[j], c(i, j) + tol * scale)
          << "dual infeasible at (" << i << ", " << j << ")";
    }
    const int j = r.target_of_source[i];
    EXPECT_NEAR(r.source_potential[i] + r.target_potential[j], c(i, j), tol * scale)
        << "complementary slackness at row " << i;
  }
  EXPECT_NEAR(r.source_potential.mean() + r.target_potential.mean(), r.cost, tol * scale);
}

std::mt19937_64 SeededGen(int seed) {
  std::seed_seq seq{seed};
  return std::mt19937_64(seq);
}

RowMatrixXd RandomCost(std::mt19937_64& gen, int n, bool integer_ties) {
  RowMatrixXd c(n, n);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      c(i, j) = integer_ties ? absl::Uniform(gen, 0, 3) : absl::Uniform(gen, -1.0, 1.0);
    }
  }
  return c;
}

TEST(AssignmentTest, MatchesBruteForceOverPermutations) {
  std::mt19937_64 gen = SeededGen(1);
  for (int n = 1; n <= 7; ++n) {
    for (int trial = 0; trial < 30; ++trial) {
      const bool ties = trial % 3 == 0;
      const RowMatrixXd c = RandomCost(gen, n, ties);
      const double expected = BruteForceAssignment(c);
      for (const bool init : {true, false}) {
        AssignmentOptions options;
        options.jonker_volgenant_initialization = init;
        absl::StatusOr<AssignmentResult> r = SolveAssignment(c, options);
        ASSERT_TRUE(r.ok()) << r.status();
        EXPECT_NEAR(r->cost, expected, 1e-12) << "n=" << n << " init=" << init;
        ExpectOptimalityCertificate(c, *r, 1e-12);
      }
    }
  }
}

TEST(AssignmentTest, FloatCostsMatchBruteForce) {
  std::mt19937_64 gen = SeededGen(2);
  for (int n = 1; n <= 7; ++n) {
    for (int trial = 0; trial < 20; ++trial) {
      const RowMatrixXf c = RandomCost(gen, n, trial % 2 == 0).cast<float>();
      absl::StatusOr<AssignmentResult> r = SolveAssignment(c);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_NEAR(r->cost, BruteForceAssignment(c), 1e-12);
      ExpectOptimalityCertificate(c, *r, 1e-12);
    }
  }
}

// Larger problems: the dual certificate proves optimality without an oracle. Covers uniform
// random costs, heavy ties, squared distances of 2-D points (geometric structure) and a matrix
// view with an outer stride.
TEST(AssignmentTest, LargerProblemsHaveOptimalityCertificates) {
  std::mt19937_64 gen = SeededGen(3);
  for (const int n : {8, 17, 64, 200, 333}) {
    const RowMatrixXd random = RandomCost(gen, n, false);
    const RowMatrixXd ties = RandomCost(gen, n, true);
    RowMatrixXd points(2 * n, 2);
    for (int k = 0; k < 2 * n; ++k) {
      points(k, 0) = absl::Uniform(gen, 0.0, 1.0);
      points(k, 1) = absl::Uniform(gen, 0.0, 1.0);
    }
    RowMatrixXd geometric_matrix(n, n);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        geometric_matrix(i, j) = (points.row(i) - points.row(n + j)).squaredNorm();
    const RowMatrixXd& geometric = geometric_matrix;
    for (const RowMatrixXd* c : {&random, &ties, &geometric}) {
      for (const bool init : {true, false}) {
        AssignmentOptions options;
        options.jonker_volgenant_initialization = init;
        absl::StatusOr<AssignmentResult> r = SolveAssignment(*c, options);
        ASSERT_TRUE(r.ok()) << r.status();
        ExpectOptimalityCertificate(*c, *r, 1e-11);
      }
    }
    // A strided view: the left n x n block of an n x (n + 5) matrix.
    RowMatrixXd wide = RowMatrixXd::Random(n, n + 5);
    Eigen::Ref<const RowMatrixXd> block = wide.leftCols(n);
    absl::StatusOr<AssignmentResult> r = SolveAssignment(block);
    ASSERT_TRUE(r.ok()) << r.status();
    const RowMatrixXd dense = wide.leftCols(n);
    ExpectOptimalityCertificate(dense, *r, 1e-11);
  }
}

TEST(AssignmentTest, RecoversAPlantedPermutation) {
  // C_ij = (i - pi^{-1}(j))^2: the unique optimum matches i to pi(i) with cost 0.
  std::mt19937_64 gen = SeededGen(4);
  const int n = 150;
  std::vector<int> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), gen);
  std::vector<int> inverse(n);
  for (int i = 0; i < n; ++i) inverse[perm[i]] = i;
  RowMatrixXd c(n, n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) c(i, j) = std::pow(i - inverse[j], 2);
  absl::StatusOr<AssignmentResult> r = SolveAssignment(c);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->target_of_source, perm);
  EXPECT_EQ(r->cost, 0.0);
}

TEST(AssignmentTest, SingleElement) {
  RowMatrixXd c(1, 1);
  c(0, 0) = -3.5;
  absl::StatusOr<AssignmentResult> r = SolveAssignment(c);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->target_of_source, std::vector<int>{0});
  EXPECT_EQ(r->cost, -3.5);
  EXPECT_DOUBLE_EQ(r->source_potential[0] + r->target_potential[0], -3.5);
  EXPECT_FALSE(r->BriefReport().empty());
}

TEST(AssignmentTest, RejectsBadInput) {
  const RowMatrixXd empty(0, 0);
  absl::StatusOr<AssignmentResult> r = SolveAssignment(empty);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("cost"), std::string::npos);

  const RowMatrixXd rect = RowMatrixXd::Zero(2, 3);
  r = SolveAssignment(rect);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("square"), std::string::npos);

  RowMatrixXd nan = RowMatrixXd::Zero(3, 3);
  nan(1, 2) = std::numeric_limits<double>::quiet_NaN();
  r = SolveAssignment(nan);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("(1, 2)"), std::string::npos);

  RowMatrixXf inf = RowMatrixXf::Zero(2, 2);
  inf(0, 0) = std::numeric_limits<float>::infinity();
  r = SolveAssignment(inf);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace otgen::ot
