#include "ot/c_transform.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/autograd.h"
#include "nn/gradcheck.h"
#include "nn/ops.h"
#include "nn/random.h"
#include "nn/tensor.h"
#include "ot/cost.h"
#include "ot/target_set.h"
#include "ot/types.h"

namespace otgen::ot {
namespace {

using ::testing::HasSubstr;

RowMatrixXf RandomPoints(int64_t n, int64_t d, nn::Rng& rng, float lo = 0.0f, float hi = 1.0f) {
  RowMatrixXf p(n, d);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < d; ++k) p(i, k) = rng.Uniform(lo, hi);
  }
  return p;
}

// Random weights summing to 1 with roughly `zero_fraction` of them exactly 0 (never all).
Eigen::VectorXf RandomWeights(int64_t n, nn::Rng& rng, float zero_fraction = 0.0f) {
  Eigen::VectorXd w(n);
  for (int64_t j = 0; j < n; ++j) w[j] = (rng.Uniform() < zero_fraction) ? 0.0 : 0.2 + rng.Uniform();
  if (w.sum() == 0.0) w[n - 1] = 1.0;
  w /= w.sum();
  return w.cast<float>();
}

// ---- Double-precision brute-force reference ------------------------------------------------

double RefCost(const Cost& cost, const float* x, const float* y, int64_t d) {
  double s = 0.0, xx = 0.0, yy = 0.0, xy = 0.0;
  for (int64_t k = 0; k < d; ++k) {
    const double a = x[k], b = y[k];
    switch (cost.kind) {
      case CostKind::kSquaredEuclidean:
      case CostKind::kLp:
        s += (a - b) * (a - b);
        break;
      case CostKind::kL1:
        s += std::abs(a - b);
        break;
      case CostKind::kCosine:
        xx += a * a;
        yy += b * b;
        xy += a * b;
        break;
    }
  }
  switch (cost.kind) {
    case CostKind::kSquaredEuclidean:
      return s / cost.scale;
    case CostKind::kLp:
      return std::pow(s, cost.p / 2.0) / cost.scale;
    case CostKind::kL1:
      return s / cost.scale;
    case CostKind::kCosine:
      return (1.0 - xy / std::sqrt(xx * yy)) / cost.scale;
  }
  return 0.0;
}

void RefCostGradient(const Cost& cost, const float* x, const float* y, int64_t d, double* g) {
  double s = 0.0, xx = 0.0, yy = 0.0, xy = 0.0;
  for (int64_t k = 0; k < d; ++k) {
    s += (double(x[k]) - y[k]) * (double(x[k]) - y[k]);
    xx += double(x[k]) * x[k];
    yy += double(y[k]) * y[k];
    xy += double(x[k]) * y[k];
  }
  for (int64_t k = 0; k < d; ++k) {
    const double diff = double(x[k]) - y[k];
    switch (cost.kind) {
      case CostKind::kSquaredEuclidean:
        g[k] = 2.0 * diff / cost.scale;
        break;
      case CostKind::kLp:
        g[k] = s > 0.0 ? cost.p * std::pow(s, cost.p / 2.0 - 1.0) * diff / cost.scale : 0.0;
        break;
      case CostKind::kL1:
        g[k] = ((diff > 0) - (diff < 0)) / double(cost.scale);
        break;
      case CostKind::kCosine: {
        const double nx = std::sqrt(xx), ny = std::sqrt(yy);
        g[k] = -(y[k] / ny - (xy / (nx * ny)) * x[k] / nx) / (cost.scale * nx);
        break;
      }
    }
  }
}

struct Reference {
  Eigen::VectorXd values;
  std::vector<int64_t> assignment;
  Eigen::VectorXd gap;  // lambda = 0: second best - best
  Eigen::MatrixXd pi;   // b x J
  Eigen::MatrixXd grad_x;
  Eigen::VectorXd grad_psi;
};

Reference ComputeReference(const RowMatrixXf& x, const RowMatrixXf& y, const Eigen::VectorXf& nu,
                           const Eigen::VectorXf& psi, const Cost& cost, double lambda) {
  const int64_t b = x.rows(), J = y.rows(), d = x.cols();
  Reference r;
  r.values.resize(b);
  r.gap.resize(b);
  r.assignment.assign(b, -1);
  r.pi = Eigen::MatrixXd::Zero(b, J);
  r.grad_x = Eigen::MatrixXd::Zero(b, d);
  for (int64_t i = 0; i < b; ++i) {
    std::vector<double> w(J);
    double m = std::numeric_limits<double>::infinity(), second = m;
    int64_t arg = -1;
    for (int64_t j = 0; j < J; ++j) {
      if (!(nu[j] > 0.0f)) {
        w[j] = std::numeric_limits<double>::infinity();
        continue;
      }
      w[j] = RefCost(cost, &x(i, 0), &y(j, 0), d) - psi[j];
      if (lambda > 0.0) w[j] -= lambda * std::log(double(nu[j]));
      if (w[j] < m) {
        second = m;
        m = w[j];
        arg = j;
      } else if (w[j] < second) {
        second = w[j];
      }
    }
    r.gap[i] = second - m;
    if (lambda == 0.0) {
      r.values[i] = m;
      r.assignment[i] = arg;
      r.pi(i, arg) = 1.0;
    } else {
      double s = 0.0;
      for (int64_t j = 0; j < J; ++j) s += std::exp(-(w[j] - m) / lambda);
      r.values[i] = m - lambda * std::log(s);
      for (int64_t j = 0; j < J; ++j) r.pi(i, j) = std::exp(-(w[j] - m) / lambda) / s;
    }
    std::vector<double> g(d);
    for (int64_t j = 0; j < J; ++j) {
      if (r.pi(i, j) == 0.0) continue;
      RefCostGradient(cost, &x(i, 0), &y(j, 0), d, g.data());
      for (int64_t k = 0; k < d; ++k) r.grad_x(i, k) += r.pi(i, j) * g[k];
    }
  }
  r.grad_psi = nu.cast<double>() - r.pi.colwise().mean().transpose();
  return r;
}

// Compares a result with the reference; returns a description of the first mismatch.
void ExpectMatchesReference(const CTransformResult& res, const Reference& ref, double lambda, double tol_value,
                            double tol_grad, const std::string& what) {
  SCOPED_TRACE(what);
  const int64_t b = ref.values.size();
  ASSERT_EQ(res.values.size(), b);
  for (int64_t i = 0; i < b; ++i) {
    EXPECT_NEAR(res.values[i], ref.values[i], tol_value) << "row " << i;
  }
  if (lambda == 0.0) {
    ASSERT_EQ(res.assignment.size(), static_cast<size_t>(b));
    for (int64_t i = 0; i < b; ++i) {
      if (ref.gap[i] > 10 * tol_value) {
        EXPECT_EQ(res.assignment[i], ref.assignment[i]) << "row " << i;
      }
    }
  }
  if (res.grad_x.size() > 0) {
    for (int64_t i = 0; i < b; ++i) {
      if (lambda == 0.0 && !(ref.gap[i] > 10 * tol_value)) continue;  // near-tie: either side is right
      const double scale = 1.0 + ref.grad_x.row(i).norm();
      const double err = (res.grad_x.row(i).cast<double>() - ref.grad_x.row(i)).norm();
      EXPECT_LE(err, tol_grad * scale) << "grad_x row " << i;
    }
  }
  if (res.grad_psi.size() > 0) {
    bool any_tie = false;
    for (int64_t i = 0; i < b; ++i) any_tie = any_tie || (lambda == 0.0 && !(ref.gap[i] > 10 * tol_value));
    if (!any_tie) {
      const double err = (res.grad_psi.cast<double>() - ref.grad_psi).cwiseAbs().maxCoeff();
      EXPECT_LE(err, tol_grad / std::max<int64_t>(1, b) + 1e-6) << "grad_psi";
    }
  }
  // The semi-dual is the mean value plus <nu, psi>.
  EXPECT_NEAR(res.mean_value, ref.values.mean(), tol_value);
}

struct Problem {
  RowMatrixXf x, y;
  Eigen::VectorXf nu, psi;
  Cost cost;
  std::shared_ptr<const InMemoryTargetSet> targets;
};

Problem MakeProblem(int64_t b, int64_t J, int64_t d, Cost cost, uint64_t seed, float zero_fraction = 0.1f) {
  nn::Rng rng(seed);
  Problem p;
  p.x = RandomPoints(b, d, rng);
  p.y = RandomPoints(J, d, rng);
  p.nu = RandomWeights(J, rng, J > 1 ? zero_fraction : 0.0f);
  p.psi.resize(J);
  for (int64_t j = 0; j < J; ++j) p.psi[j] = rng.Uniform(-0.2f, 0.2f);
  if (cost.kind == CostKind::kSquaredEuclidean) {
    cost.scale = static_cast<float>(p.y.rowwise().squaredNorm().mean());
  }
  p.cost = cost;
  auto t = InMemoryTargetSet::Create(p.y, p.nu);
  EXPECT_TRUE(t.ok()) << t.status();
  p.targets = *t;
  return p;
}

CTransform MakeTransform(const Problem& p, const CTransformOptions& options) {
  auto ct = CTransform::Create(p.targets, p.cost, options);
  EXPECT_TRUE(ct.ok()) << ct.status();
  return std::move(*ct);
}

// ---- Against the brute-force reference ---------------------------------------------------------

struct CostCase {
  std::string name;
  Cost cost;
  int64_t d;
};

std::vector<CostCase> CostCases() {
  return {
      {"sqeuclid_fused", Cost::SquaredEuclidean(), 40},
      {"sqeuclid_direct", Cost::SquaredEuclidean(), 3},
      {"lp1.5", Cost::Lp(1.5f, 4.0f), 24},
      {"l1", Cost::L1(10.0f), 20},
      {"cosine", Cost::Cosine(0.5f), 20},
  };
}

TEST(CTransformTest, MatchesBruteForceReference) {
  const std::vector<int64_t> batches = {1, 3, 37, 300};
  const std::vector<int64_t> sizes = {1, 17, 1000};
  const std::vector<double> lambdas = {0.0, 0.02, 0.5};
  uint64_t seed = 1;
  for (const CostCase& cc : CostCases()) {
    for (int64_t b : batches) {
      for (int64_t J : sizes) {
        if (b * J > 120000 && cc.d > 3) continue;  // keep the reference cheap
        const Problem p = MakeProblem(b, J, cc.d, cc.cost, ++seed);
        for (double lambda : lambdas) {
          CTransformOptions opt;
          opt.lambda = static_cast<float>(lambda);
          opt.tile_size = 128;
          opt.row_block = 128;
          CTransform ct = MakeTransform(p, opt);
          auto res = ct.Compute(p.x, p.psi);
          ASSERT_TRUE(res.ok()) << res.status();
          const Reference ref = ComputeReference(p.x, p.y, p.nu, p.psi, p.cost, lambda);
          ExpectMatchesReference(*res, ref, lambda, 2e-5, 2e-4,
                                 absl::StrCat(cc.name, " b=", b, " J=", J, " lambda=", lambda));
          // <nu, psi> completes the semi-dual.
          EXPECT_NEAR(res->semi_dual - res->mean_value, p.nu.cast<double>().dot(p.psi.cast<double>()), 1e-5);
        }
      }
    }
  }
}

TEST(CTransformTest, SparseAndDensePathsAgreeWithReference) {
  // b = 60 rows (tiled path), J = 1300 (not a multiple of the tile), fused squared Euclidean.
  const Problem p = MakeProblem(60, 1300, 50, Cost::SquaredEuclidean(), 77);
  for (double lambda : {0.002, 0.01, 0.05}) {
    const Reference ref = ComputeReference(p.x, p.y, p.nu, p.psi, p.cost, lambda);
    CTransformOptions sparse;
    sparse.lambda = static_cast<float>(lambda);
    sparse.large_batch_screening = false;  // the streamed float paths (screening is tested below)
    sparse.max_candidates_per_row = 4096;
    sparse.tile_size = 256;
    CTransformOptions dense = sparse;
    dense.max_candidates_per_row = 0;
    CTransformOptions mixed = sparse;
    mixed.max_candidates_per_row = 64;  // some rows overflow, others do not
    for (const auto& [name, opt] : {std::pair{"sparse", sparse}, std::pair{"dense", dense}, std::pair{"mixed", mixed}}) {
      CTransform ct = MakeTransform(p, opt);
      auto res = ct.Compute(p.x, p.psi);
      ASSERT_TRUE(res.ok()) << res.status();
      ExpectMatchesReference(*res, ref, lambda, 2e-5, 2e-4, absl::StrCat(name, " lambda=", lambda));
      if (std::string(name) == "dense") {
        EXPECT_EQ(res->dense_rows, 60);
      }
      if (std::string(name) == "sparse") {
        EXPECT_EQ(res->dense_rows, 0);
        EXPECT_GT(res->candidate_pairs, 0);
      }
    }
  }
}

TEST(CTransformTest, MixedPathActuallyMixes) {
  // With a small candidate capacity and a moderate lambda some rows overflow and others not.
  const Problem p = MakeProblem(64, 2000, 30, Cost::SquaredEuclidean(), 5);
  CTransformOptions opt;
  opt.lambda = 0.004f;
  opt.large_batch_screening = false;
  opt.max_candidates_per_row = 48;
  opt.tile_size = 64;
  CTransform ct = MakeTransform(p, opt);
  auto res = ct.Compute(p.x, p.psi);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_GT(res->dense_rows, 0);
  EXPECT_LT(res->dense_rows, 64);
  const Reference ref = ComputeReference(p.x, p.y, p.nu, p.psi, p.cost, opt.lambda);
  ExpectMatchesReference(*res, ref, opt.lambda, 2e-5, 2e-4, "mixed");
}

TEST(CTransformTest, ProbedPathsAgreeWithReference) {
  // J >= 2048: the streamed soft path first probes a strided sample of the targets, which
  // seeds the running minima and sends rows predicted to overflow straight to the dense pass.
  const Problem p = MakeProblem(40, 3000, 24, Cost::SquaredEuclidean(), 51);
  struct Case {
    float lambda;
    int capacity;
    const char* expect;  // "sparse", "dense" or "mixed"
  };
  for (const Case& c : {Case{0.001f, 8192, "sparse"}, Case{0.5f, 256, "dense"}, Case{0.004f, 120, "mixed"}}) {
    SCOPED_TRACE(c.expect);
    CTransformOptions opt;
    opt.lambda = c.lambda;
    opt.large_batch_screening = false;
    opt.max_candidates_per_row = c.capacity;
    opt.tile_size = 256;
    CTransform ct = MakeTransform(p, opt);
    auto res = ct.Compute(p.x, p.psi);
    ASSERT_TRUE(res.ok());
    const std::string expect = c.expect;
    if (expect == "sparse") {
      EXPECT_EQ(res->dense_rows, 0);
    } else if (expect == "dense") {
      EXPECT_EQ(res->dense_rows, 40);
      EXPECT_EQ(res->candidate_pairs, 0);  // predicted by the probe: nothing was collected
    } else {
      EXPECT_GT(res->dense_rows, 0);
      EXPECT_LT(res->dense_rows, 40);
    }
    const Reference ref = ComputeReference(p.x, p.y, p.nu, p.psi, p.cost, c.lambda);
    ExpectMatchesReference(*res, ref, c.lambda, 2e-5, 2e-4, expect);
  }
}

TEST(CTransformTest, TinyTilesEqualLargeTiles) {
  const Problem p = MakeProblem(45, 999, 33, Cost::SquaredEuclidean(), 9);
  for (double lambda : {0.0, 0.01, 0.3}) {
    CTransformOptions small;
    small.lambda = static_cast<float>(lambda);
    small.tile_size = 16;
    small.row_block = 7;
    small.small_batch_rows = 0;
    CTransformOptions large = small;
    large.tile_size = 4096;
    large.row_block = 1000;
    CTransform a = MakeTransform(p, small);
    CTransform c = MakeTransform(p, large);
    auto ra = a.Compute(p.x, p.psi);
    auto rc = c.Compute(p.x, p.psi);
    ASSERT_TRUE(ra.ok() && rc.ok());
    EXPECT_LE((ra->values - rc->values).cwiseAbs().maxCoeff(), 2e-6) << lambda;
    EXPECT_LE((ra->grad_x - rc->grad_x).cwiseAbs().maxCoeff(), 2e-5) << lambda;
    EXPECT_LE((ra->grad_psi - rc->grad_psi).cwiseAbs().maxCoeff(), 1e-6) << lambda;
    EXPECT_EQ(ra->assignment, rc->assignment);
  }
}

TEST(CTransformTest, SmallBatchPathEqualsTiledPath) {
  const Problem p = MakeProblem(5, 3001, 64, Cost::SquaredEuclidean(), 21);
  for (double lambda : {0.0, 0.01}) {
    CTransformOptions tiled;
    tiled.lambda = static_cast<float>(lambda);
    tiled.small_batch_rows = 0;
    CTransformOptions small = tiled;
    small.small_batch_rows = 8;
    CTransform a = MakeTransform(p, tiled);
    CTransform c = MakeTransform(p, small);
    auto ra = a.Compute(p.x, p.psi);
    auto rc = c.Compute(p.x, p.psi);
    ASSERT_TRUE(ra.ok() && rc.ok());
    // The two paths round differently (GEMM vs direct dot products; the soft weights amplify
    // cost rounding by 1 / lambda), so both are held to the double reference.
    const Reference ref = ComputeReference(p.x, p.y, p.nu, p.psi, p.cost, lambda);
    ExpectMatchesReference(*ra, ref, lambda, 2e-5, 2e-4, "tiled");
    ExpectMatchesReference(*rc, ref, lambda, 2e-5, 2e-4, "small");
    EXPECT_EQ(ra->assignment, rc->assignment);
  }
}

// Bit-identical results (values, assignments, gradients, and the screening counters).
void ExpectIdenticalResults(const CTransformResult& a, const CTransformResult& b, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(a.values, b.values);
  EXPECT_EQ(a.assignment, b.assignment);
  EXPECT_EQ(a.grad_x, b.grad_x);
  EXPECT_EQ(a.grad_psi, b.grad_psi);
  EXPECT_EQ(a.mean_value, b.mean_value);
  EXPECT_EQ(a.semi_dual, b.semi_dual);
  EXPECT_EQ(a.dense_rows, b.dense_rows);
  EXPECT_EQ(a.candidate_pairs, b.candidate_pairs);
  EXPECT_EQ(a.screened_rows, b.screened_rows);
}

TEST(CTransformTest, ScreenedSmallBatchEqualsFloatPath) {
  // Sources near a few targets: the bf16 screening leaves only those for exact evaluation, and
  // the result equals the float path and the double reference (bf16 never reaches the output).
  nn::Rng rng(41);
  const int64_t J = 700, d = 96, b = 4;
  RowMatrixXf y = RandomPoints(J, d, rng);
  RowMatrixXf x(b, d);
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t k = 0; k < d; ++k) x(i, k) = y(37 * (i + 1), k) + rng.Uniform(-0.05f, 0.05f);
  }
  const Eigen::VectorXf nu = RandomWeights(J, rng, 0.05f);
  Eigen::VectorXf psi(J);
  for (int64_t j = 0; j < J; ++j) psi[j] = rng.Uniform(-0.01f, 0.01f);
  auto targets = *InMemoryTargetSet::Create(y, nu);
  const Cost cost = Cost::SquaredEuclidean(static_cast<float>(y.rowwise().squaredNorm().mean()));
  for (float lambda : {0.0f, 0.002f, 0.01f}) {
    SCOPED_TRACE(lambda);
    CTransformOptions screened{.lambda = lambda};
    CTransformOptions plain = screened;
    plain.small_batch_screening = false;
    auto a = CTransform::Create(targets, cost, screened);
    auto c = CTransform::Create(targets, cost, plain);
    ASSERT_TRUE(a.ok() && c.ok());
    auto ra = a->Compute(x, psi);
    auto rc = c->Compute(x, psi);
    ASSERT_TRUE(ra.ok() && rc.ok());
    if (lambda == 0.01f) {
      // All targets but the nearest lie within the threshold (0.4) of the sampled ones' minimum
      // (uniform points are nearly equidistant), so the sample sends the call to the float path.
      ExpectIdenticalResults(*ra, *rc, "float path");
      continue;
    }
    EXPECT_GT(ra->candidate_pairs, 0);
    EXPECT_LT(ra->candidate_pairs, b * J / 10);  // screening pruned most targets
    EXPECT_EQ(ra->assignment, rc->assignment);
    EXPECT_LE((ra->values - rc->values).cwiseAbs().maxCoeff(), 1e-6);
    EXPECT_LE((ra->grad_x - rc->grad_x).cwiseAbs().maxCoeff(), 1e-5);
    EXPECT_LE((ra->grad_psi - rc->grad_psi).cwiseAbs().maxCoeff(), 1e-6);
    const Reference ref = ComputeReference(x, y, nu, psi, cost, lambda);
    ExpectMatchesReference(*ra, ref, lambda, 2e-5, 2e-4, "screened");
  }
}

TEST(CTransformTest, SmallBatchScreeningThatCannotPruneTakesTheFloatPath) {
  // Uniform points in 64-d are nearly equidistant: with lambda = 0.5 every target is within the
  // threshold, the sampled targets show it, and every call takes the float path.
  const Problem p = MakeProblem(2, 500, 64, Cost::SquaredEuclidean(), 43);
  CTransform ct = MakeTransform(p, {.lambda = 0.5f});
  CTransform plain = MakeTransform(p, {.lambda = 0.5f, .small_batch_screening = false});
  auto rp = plain.Compute(p.x, p.psi);
  ASSERT_TRUE(rp.ok());
  for (int call = 0; call < 2; ++call) {
    auto r = ct.Compute(p.x, p.psi);
    ASSERT_TRUE(r.ok());
    ExpectIdenticalResults(*r, *rp, absl::StrCat("call ", call));
  }
  const Reference ref = ComputeReference(p.x, p.y, p.nu, p.psi, p.cost, 0.5);
  ExpectMatchesReference(*rp, ref, 0.5, 2e-5, 2e-4, "float path");
}

// A run resumed from a checkpoint starts with a fresh CTransform: its results must not depend on
// what the transform computed before. Small batches: calls on which screening cannot prune must
// leave no trace in a later call on which it can. The targets lie on a circle of radius 1 (in a
// plane of R^96) around p: sources at p are equidistant from all of them, sources near the
// circle see costs spread over [0, 0.16]. The threshold of 10 makes the pruned terms (less than
// e^-10 of the largest) visible in the last bits of the results.
TEST(CTransformTest, SmallBatchScreeningDoesNotDependOnEarlierCalls) {
  nn::Rng rng(71);
  const int64_t J = 700, d = 96, b = 4;
  RowMatrixXf y = RowMatrixXf::Constant(J, d, 0.5f);
  for (int64_t j = 0; j < J; ++j) {
    const float phi = 6.2831853f * rng.Uniform();
    y(j, 3) += std::cos(phi);
    y(j, 50) += std::sin(phi);
  }
  RowMatrixXf centre = RowMatrixXf::Constant(b, d, 0.5f), near(b, d);
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t k = 0; k < d; ++k) near(i, k) = y(41 * (i + 1), k) + rng.Uniform(-0.01f, 0.01f);
  }
  const Eigen::VectorXf nu = RandomWeights(J, rng, 0.05f);
  Eigen::VectorXf psi(J);
  for (int64_t j = 0; j < J; ++j) psi[j] = rng.Uniform(-0.001f, 0.001f);
  auto targets = *InMemoryTargetSet::Create(y, nu);
  const Cost cost = Cost::SquaredEuclidean(static_cast<float>(y.rowwise().squaredNorm().mean()));
  const CTransformOptions options{.lambda = 0.002f, .prune_threshold = 10.0f};
  CTransformOptions plain = options;
  plain.small_batch_screening = false;
  auto used = CTransform::Create(targets, cost, options);
  auto fresh = CTransform::Create(targets, cost, options);
  auto c = CTransform::Create(targets, cost, plain);
  ASSERT_TRUE(used.ok() && fresh.ok() && c.ok());
  auto rc = c->Compute(centre, psi);
  ASSERT_TRUE(rc.ok());
  for (int call = 0; call < 3; ++call) {
    auto r = used->Compute(centre, psi);
    ASSERT_TRUE(r.ok());
    ExpectIdenticalResults(*r, *rc, absl::StrCat("crowded call ", call, " (the float path)"));
  }
  auto ru = used->Compute(near, psi);
  auto rf = fresh->Compute(near, psi);
  ASSERT_TRUE(ru.ok() && rf.ok());
  EXPECT_GT(rf->candidate_pairs, 0);
  EXPECT_LT(2 * rf->candidate_pairs, b * J);  // screened, and most targets pruned
  ExpectIdenticalResults(*ru, *rf, "used vs fresh");
}

bool CpuHasBf16() { return __builtin_cpu_supports("avx512bf16"); }

TEST(CTransformTest, ScreenedLargeBatchEqualsFloatPath) {
  // lambda = 0, b > small_batch_rows: bf16 matmul screening of 9000 targets (two chunks of 4096
  // and a tail), rows in blocks of 16, sources near a few targets (with exact duplicates of the
  // nearest ones, so ties must go to the first index), zero weights and a nonzero psi.
  nn::Rng rng(53);
  const int64_t J = 9000, d = 96, b = 40;
  RowMatrixXf y = RandomPoints(J, d, rng);
  for (int64_t i = 0; i < b; ++i) y.row(5000 + i) = y.row(97 * (i + 1));  // duplicates, later index
  RowMatrixXf x(b, d);
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t k = 0; k < d; ++k) x(i, k) = y(97 * (i + 1), k) + rng.Uniform(-0.05f, 0.05f);
  }
  const Eigen::VectorXf nu = RandomWeights(J, rng, 0.05f);
  Eigen::VectorXf psi(J);
  for (int64_t j = 0; j < J; ++j) psi[j] = rng.Uniform(-0.01f, 0.01f);
  for (int64_t i = 0; i < b; ++i) psi[5000 + i] = psi[97 * (i + 1)];
  auto targets = *InMemoryTargetSet::Create(y, nu);
  const Cost cost = Cost::SquaredEuclidean(static_cast<float>(y.rowwise().squaredNorm().mean()));
  CTransformOptions screened{.row_block = 16};
  CTransformOptions plain = screened;
  plain.large_batch_screening = false;
  auto a = CTransform::Create(targets, cost, screened);
  auto c = CTransform::Create(targets, cost, plain);
  ASSERT_TRUE(a.ok() && c.ok());
  for (int call = 0; call < 2; ++call) {  // the second call reuses the bf16 copy and primitives
    auto ra = a->Compute(x, psi);
    auto rc = c->Compute(x, psi);
    ASSERT_TRUE(ra.ok() && rc.ok());
    if (CpuHasBf16()) {
      EXPECT_EQ(ra->screened_rows, b);
      EXPECT_GT(ra->candidate_pairs, 0);
      EXPECT_LT(ra->candidate_pairs, b * J / 100);  // screening pruned almost every target
    }
    EXPECT_EQ(rc->screened_rows, 0);
    EXPECT_EQ(ra->assignment, rc->assignment);
    for (int64_t i = 0; i < b; ++i) {
      if (nu[97 * (i + 1)] > 0.0f) {
        EXPECT_LT(ra->assignment[i], 5000) << "row " << i;
      }
    }
    EXPECT_LE((ra->values - rc->values).cwiseAbs().maxCoeff(), 1e-6);
    EXPECT_LE((ra->grad_x - rc->grad_x).cwiseAbs().maxCoeff(), 1e-6);
    EXPECT_LE((ra->grad_psi - rc->grad_psi).cwiseAbs().maxCoeff(), 1e-7);
    EXPECT_NEAR(ra->semi_dual, rc->semi_dual, 1e-6);
    const Reference ref = ComputeReference(x, y, nu, psi, cost, 0.0);
    ExpectMatchesReference(*ra, ref, 0.0, 2e-5, 2e-4, "screened");
  }
}

// lambda > 0, b > small_batch_rows: the bf16 screening keeps the pairs within the threshold of
// each row's minimum, computes them exactly, and matches the float streamed path and the double
// reference (values, grad_psi, grad_x), for 9000 targets (two chunks of 4096 and a tail) with
// zero weights and a nonzero psi, sources near a few targets.
// The streamed regularized path splits the targets into tiles across threads; each thread's
// partial sums must cover the same tiles on every call, or repeated calls (and a resumed run)
// differ in the last bits. Many small tiles, dense and sparse rows, all outputs.
TEST(CTransformTest, StreamedSoftPathIsBitReproducible) {
  nn::Rng rng(67);
  const int64_t J = 6000, d = 40, b = 24;
  const RowMatrixXf y = RandomPoints(J, d, rng);
  RowMatrixXf x = RandomPoints(b, d, rng);
  for (int64_t i = 0; i < b / 2; ++i) x.row(i) = y.row(97 * i) * 1.01f;  // near one target: sparse rows
  const Eigen::VectorXf nu = RandomWeights(J, rng, 0.05f);
  Eigen::VectorXf psi(J);
  for (int64_t j = 0; j < J; ++j) psi[j] = rng.Uniform(-0.05f, 0.05f);
  auto targets = *InMemoryTargetSet::Create(y, nu);
  const Cost cost = Cost::SquaredEuclidean(static_cast<float>(y.rowwise().squaredNorm().mean()));
  CTransformOptions opt{
      .lambda = 0.01f, .max_candidates_per_row = 256, .tile_size = 64, .large_batch_screening = false};
  auto ct = CTransform::Create(targets, cost, opt);
  ASSERT_TRUE(ct.ok()) << ct.status();
  auto first = ct->Compute(x, psi);
  ASSERT_TRUE(first.ok()) << first.status();
  for (int call = 0; call < 20; ++call) {
    auto again = ct->Compute(x, psi);
    ASSERT_TRUE(again.ok());
    ASSERT_EQ((again->values - first->values).cwiseAbs().maxCoeff(), 0.0f) << "call " << call;
    ASSERT_EQ((again->grad_x - first->grad_x).cwiseAbs().maxCoeff(), 0.0f) << "call " << call;
    ASSERT_EQ((again->grad_psi - first->grad_psi).cwiseAbs().maxCoeff(), 0.0f) << "call " << call;
  }
}

TEST(CTransformTest, ScreenedSoftLargeBatchEqualsFloatPath) {
  nn::Rng rng(61);
  const int64_t J = 9000, d = 96, b = 40;
  const RowMatrixXf y = RandomPoints(J, d, rng);
  RowMatrixXf x(b, d);
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t k = 0; k < d; ++k) x(i, k) = y(211 * (i + 1), k) + rng.Uniform(-0.1f, 0.1f);
  }
  const Eigen::VectorXf nu = RandomWeights(J, rng, 0.05f);
  Eigen::VectorXf psi(J);
  for (int64_t j = 0; j < J; ++j) psi[j] = rng.Uniform(-0.02f, 0.02f);
  auto targets = *InMemoryTargetSet::Create(y, nu);
  const Cost cost = Cost::SquaredEuclidean(static_cast<float>(y.rowwise().squaredNorm().mean()));
  for (float lambda : {0.001f, 0.005f}) {
    SCOPED_TRACE(absl::StrCat("lambda=", lambda));
    CTransformOptions screened{.lambda = lambda, .row_block = 16};
    CTransformOptions plain = screened;
    plain.large_batch_screening = false;
    auto a = CTransform::Create(targets, cost, screened);
    auto c = CTransform::Create(targets, cost, plain);
    ASSERT_TRUE(a.ok() && c.ok());
    for (int call = 0; call < 2; ++call) {  // the second call reuses the bf16 copy and primitives
      auto ra = a->Compute(x, psi);
      auto rc = c->Compute(x, psi);
      ASSERT_TRUE(ra.ok() && rc.ok());
      if (CpuHasBf16()) {
        EXPECT_EQ(ra->screened_rows, b);
        EXPECT_EQ(ra->dense_rows, 0);
        EXPECT_GT(ra->candidate_pairs, b);
        EXPECT_LT(ra->candidate_pairs, b * J / 20);  // screening pruned most pairs
      }
      EXPECT_EQ(rc->screened_rows, 0);
      EXPECT_LE((ra->values - rc->values).cwiseAbs().maxCoeff(), 2e-6);
      EXPECT_LE((ra->grad_x - rc->grad_x).cwiseAbs().maxCoeff(), 2e-5);
      EXPECT_LE((ra->grad_psi - rc->grad_psi).cwiseAbs().maxCoeff(), 2e-5);
      EXPECT_NEAR(ra->semi_dual, rc->semi_dual, 2e-6);
      const Reference ref = ComputeReference(x, y, nu, psi, cost, lambda);
      ExpectMatchesReference(*ra, ref, lambda, 2e-5, 2e-4, "screened");
    }
    // Values only (the inner loop of SDOT asks for grad_psi alone): the same values.
    auto values_only = a->Compute(x, psi, {.grad_x = false, .grad_psi = true});
    ASSERT_TRUE(values_only.ok());
    auto reference_values = c->Compute(x, psi, {.grad_x = false, .grad_psi = true});
    ASSERT_TRUE(reference_values.ok());
    EXPECT_EQ(values_only->grad_x.size(), 0);
    EXPECT_LE((values_only->values - reference_values->values).cwiseAbs().maxCoeff(), 2e-6);
    EXPECT_LE((values_only->grad_psi - reference_values->grad_psi).cwiseAbs().maxCoeff(), 2e-5);
  }
}

// lambda large against the spread of the costs: every pair lies within the threshold, so soft
// screening gives up (a row keeps more than its capacity, or more than 1/8 of all pairs
// survive), and the block takes the float path with the same result, on every call.
TEST(CTransformTest, ScreenedSoftLargeBatchFallsBackWhenItCannotPrune) {
  nn::Rng rng(67);
  const int64_t J = 5000, d = 64, b = 20;
  const RowMatrixXf y = RandomPoints(J, d, rng);
  const RowMatrixXf x = RandomPoints(b, d, rng);
  const Eigen::VectorXf nu = RandomWeights(J, rng);
  const Eigen::VectorXf psi = Eigen::VectorXf::Zero(J);
  auto targets = *InMemoryTargetSet::Create(y, nu);
  const Cost cost = Cost::SquaredEuclidean(static_cast<float>(y.rowwise().squaredNorm().mean()));
  CTransformOptions plain{.lambda = 0.5f};
  plain.large_batch_screening = false;
  auto a = CTransform::Create(targets, cost, {.lambda = 0.5f});
  auto c = CTransform::Create(targets, cost, plain);
  ASSERT_TRUE(a.ok() && c.ok());
  auto rc = c->Compute(x, psi);
  ASSERT_TRUE(rc.ok());
  for (int call = 0; call < 2; ++call) {
    auto ra = a->Compute(x, psi);
    ASSERT_TRUE(ra.ok());
    EXPECT_EQ(ra->screened_rows, 0);
    EXPECT_LE((ra->values - rc->values).cwiseAbs().maxCoeff(), 1e-6);
    EXPECT_LE((ra->grad_psi - rc->grad_psi).cwiseAbs().maxCoeff(), 1e-7);
    EXPECT_LE((ra->grad_x - rc->grad_x).cwiseAbs().maxCoeff(), 1e-6);
  }
}

// Targets: uniform points, and a cluster of 3000 (indices 2000-4999) closer together than the
// bf16 error bound. Rows 0 .. separated - 1 of the batch sit near well-separated targets, the
// others at the centre of the cluster, where more than 1024 candidates survive the screening.
struct ClusterProblem {
  RowMatrixXf y, x;
  Eigen::VectorXf nu, psi;
  std::shared_ptr<const InMemoryTargetSet> targets;
  Cost cost;
};

ClusterProblem MakeClusterProblem(int64_t b, int64_t separated, uint64_t seed) {
  nn::Rng rng(seed);
  const int64_t J = 5000, d = 64;
  ClusterProblem p;
  p.y = RandomPoints(J, d, rng);
  const Eigen::RowVectorXf centre = Eigen::RowVectorXf::Constant(d, 0.5f);
  for (int64_t j = 2000; j < J; ++j) {
    for (int64_t k = 0; k < d; ++k) p.y(j, k) = centre[k] + rng.Uniform(-1e-4f, 1e-4f);
  }
  p.x.resize(b, d);
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t k = 0; k < d; ++k) {
      p.x(i, k) = i < separated ? p.y(40 * i + 7, k) + rng.Uniform(-0.02f, 0.02f)
                                : centre[k] + rng.Uniform(-1e-4f, 1e-4f);
    }
  }
  p.nu = RandomWeights(J, rng);
  p.psi = Eigen::VectorXf::Zero(J);
  p.targets = *InMemoryTargetSet::Create(p.y, p.nu);
  p.cost = Cost::SquaredEuclidean(static_cast<float>(p.y.rowwise().squaredNorm().mean()));
  return p;
}

TEST(CTransformTest, ScreenedLargeBatchOverflowingRowsAreExact) {
  // 4 of 40 rows overflow (their exact products, 4 J, stay below 1/8 of the block's pairs):
  // those rows are computed exactly against every target, the others are screened, and a
  // second call does the same.
  const int64_t b = 40, separated = 36;
  const ClusterProblem p = MakeClusterProblem(b, separated, 59);
  const int64_t J = p.y.rows();
  CTransformOptions plain;
  plain.large_batch_screening = false;
  auto a = CTransform::Create(p.targets, p.cost, {});
  auto c = CTransform::Create(p.targets, p.cost, plain);
  ASSERT_TRUE(a.ok() && c.ok());
  auto ra = a->Compute(p.x, p.psi);
  auto rc = c->Compute(p.x, p.psi);
  ASSERT_TRUE(ra.ok() && rc.ok());
  if (CpuHasBf16()) {
    EXPECT_EQ(ra->screened_rows, separated);
    EXPECT_GE(ra->candidate_pairs, (b - separated) * J);  // the overflowing rows' exact passes
  }
  // Within the cluster the costs differ by less than float rounding: any of its targets is a
  // right answer there, so assignments and gradients are compared on the separated rows.
  for (int64_t i = 0; i < separated; ++i) {
    EXPECT_EQ(ra->assignment[i], rc->assignment[i]) << "row " << i;
    EXPECT_LE((ra->grad_x.row(i) - rc->grad_x.row(i)).cwiseAbs().maxCoeff(), 1e-6) << "row " << i;
  }
  for (int64_t i = separated; i < b; ++i) {
    EXPECT_GE(ra->assignment[i], 2000) << "row " << i;
  }
  EXPECT_LE((ra->values - rc->values).cwiseAbs().maxCoeff(), 1e-6);
  const Reference ref = ComputeReference(p.x, p.y, p.nu, p.psi, p.cost, 0.0);
  ExpectMatchesReference(*ra, ref, 0.0, 2e-5, 2e-4, "mixed");
  auto again = a->Compute(p.x, p.psi);
  ASSERT_TRUE(again.ok());
  ExpectIdenticalResults(*again, *ra, "second call");
}

TEST(CTransformTest, ScreenedLargeBatchTakesTheFloatPathWhenTooManyRowsOverflow) {
  // 10 of 20 rows overflow: screening gives up as soon as that is known, and the block takes
  // the float path, with its exact result, on every call.
  const ClusterProblem p = MakeClusterProblem(20, 10, 59);
  CTransformOptions plain;
  plain.large_batch_screening = false;
  auto a = CTransform::Create(p.targets, p.cost, {});
  auto c = CTransform::Create(p.targets, p.cost, plain);
  ASSERT_TRUE(a.ok() && c.ok());
  auto rc = c->Compute(p.x, p.psi);
  ASSERT_TRUE(rc.ok());
  for (int call = 0; call < 2; ++call) {
    auto ra = a->Compute(p.x, p.psi);
    ASSERT_TRUE(ra.ok());
    EXPECT_EQ(ra->screened_rows, 0);
    ExpectIdenticalResults(*ra, *rc, absl::StrCat("call ", call));
  }
}

// Large batches, lambda = 0: calls on which screening does not pay (sources at the centre of a
// cluster of targets closer together than the bf16 error bound, every fifth target, away from
// the others: every row overflows in the second chunk of 4096 targets) must leave no trace in a
// later call on which it does (sources near other targets): the same results as a fresh
// transform, screened, while the crowded calls equal the float path's.
TEST(CTransformTest, LargeBatchHardScreeningDoesNotDependOnEarlierCalls) {
  nn::Rng rng(73);
  const int64_t J = 20000, d = 64, b = 24;
  RowMatrixXf y = RandomPoints(J, d, rng);
  const Eigen::RowVectorXf centre = Eigen::RowVectorXf::Constant(d, 3.0f);
  for (int64_t j = 0; j < J; j += 5) {
    for (int64_t k = 0; k < d; ++k) y(j, k) = centre[k] + rng.Uniform(-1e-4f, 1e-4f);
  }
  RowMatrixXf crowded(b, d), near(b, d);
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t k = 0; k < d; ++k) {
      crowded(i, k) = centre[k] + rng.Uniform(-1e-4f, 1e-4f);
      near(i, k) = y(785 * i + 1, k) + rng.Uniform(-0.02f, 0.02f);  // not in the cluster
    }
  }
  const Eigen::VectorXf nu = RandomWeights(J, rng, 0.05f);
  Eigen::VectorXf psi(J);
  for (int64_t j = 0; j < J; ++j) psi[j] = j % 5 == 0 ? 0.0f : rng.Uniform(-0.01f, 0.01f);  // cluster: 0
  auto targets = *InMemoryTargetSet::Create(y, nu);
  const Cost cost = Cost::SquaredEuclidean(static_cast<float>(y.rowwise().squaredNorm().mean()));
  const CTransformOptions options{.row_block = 12};  // two blocks
  CTransformOptions plain = options;
  plain.large_batch_screening = false;
  auto used = CTransform::Create(targets, cost, options);
  auto fresh = CTransform::Create(targets, cost, options);
  auto c = CTransform::Create(targets, cost, plain);
  ASSERT_TRUE(used.ok() && fresh.ok() && c.ok());
  auto rc = c->Compute(crowded, psi);
  ASSERT_TRUE(rc.ok());
  for (int call = 0; call < 3; ++call) {
    auto r = used->Compute(crowded, psi);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->screened_rows, 0);
    ExpectIdenticalResults(*r, *rc, absl::StrCat("crowded call ", call, " (the float path)"));
  }
  auto ru = used->Compute(near, psi);
  auto rf = fresh->Compute(near, psi);
  ASSERT_TRUE(ru.ok() && rf.ok());
  if (CpuHasBf16()) {
    EXPECT_EQ(rf->screened_rows, b);
    EXPECT_LT(rf->candidate_pairs, b * J / 100);
  }
  ExpectIdenticalResults(*ru, *rf, "used vs fresh");
  auto rp = c->Compute(near, psi);
  ASSERT_TRUE(rp.ok());
  EXPECT_EQ(ru->assignment, rp->assignment);
  EXPECT_LE((ru->values - rp->values).cwiseAbs().maxCoeff(), 1e-6);
}

TEST(CTransformTest, RequestSubsetsAndBufferReuse) {
  const Problem p = MakeProblem(20, 500, 40, Cost::SquaredEuclidean(), 31);
  CTransformOptions opt;
  opt.lambda = 0.02f;
  CTransform ct = MakeTransform(p, opt);
  CTransformResult full, part;
  ASSERT_TRUE(ct.Compute(p.x, p.psi, {}, &full).ok());
  ASSERT_TRUE(ct.Compute(p.x, p.psi, {.grad_x = false, .grad_psi = false}, &part).ok());
  EXPECT_EQ(part.grad_x.size(), 0);
  EXPECT_EQ(part.grad_psi.size(), 0);
  EXPECT_LE((part.values - full.values).cwiseAbs().maxCoeff(), 1e-6);
  // Reusing a result object (different batch size) gives the same as a fresh one.
  ASSERT_TRUE(ct.Compute(p.x.topRows(7), p.psi, {}, &full).ok());
  auto fresh = ct.Compute(p.x.topRows(7), p.psi);
  ASSERT_TRUE(fresh.ok());
  EXPECT_LE((full.values - fresh->values).cwiseAbs().maxCoeff(), 1e-6);
  EXPECT_LE((full.grad_x - fresh->grad_x).cwiseAbs().maxCoeff(), 1e-6);
  EXPECT_LE((full.grad_psi - fresh->grad_psi).cwiseAbs().maxCoeff(), 1e-6);
}

TEST(CTransformTest, ZeroWeightTargetsAreIgnored) {
  // A zero-weight target at x itself (cost 0) must neither win the minimum nor get mass.
  RowMatrixXf y(3, 20);
  nn::Rng rng(4);
  y = RandomPoints(3, 20, rng);
  RowMatrixXf x = y.row(0);
  Eigen::VectorXf nu(3);
  nu << 0.0f, 0.5f, 0.5f;
  auto targets = InMemoryTargetSet::Create(y, nu);
  ASSERT_TRUE(targets.ok());
  for (float lambda : {0.0f, 0.1f}) {
    auto ct = CTransform::Create(*targets, Cost::SquaredEuclidean(), {.lambda = lambda});
    ASSERT_TRUE(ct.ok());
    auto res = ct->Compute(x, Eigen::VectorXf::Zero(3));
    ASSERT_TRUE(res.ok());
    EXPECT_EQ(res->grad_psi[0], 0.0f);
    EXPECT_GT(res->values[0], 0.1f);
    if (lambda == 0.0f) {
      EXPECT_NE(res->assignment[0], 0);
    }
  }
}

// ---- lambda -> 0 ---------------------------------------------------------------------------------

TEST(CTransformTest, SoftTendsToHardAsLambdaVanishes) {
  const Problem p = MakeProblem(30, 400, 40, Cost::SquaredEuclidean(), 12, 0.0f);
  CTransform hard = MakeTransform(p, {.lambda = 0.0f});
  auto rh = hard.Compute(p.x, p.psi);
  ASSERT_TRUE(rh.ok());
  const Reference ref = ComputeReference(p.x, p.y, p.nu, p.psi, p.cost, 0.0);
  double previous_gap = std::numeric_limits<double>::infinity();
  for (float lambda : {1e-1f, 1e-2f, 1e-3f, 1e-4f}) {
    CTransform soft = MakeTransform(p, {.lambda = lambda});
    auto rs = soft.Compute(p.x, p.psi);
    ASSERT_TRUE(rs.ok());
    double max_gap = 0.0;
    for (int64_t i = 0; i < 30; ++i) {
      // 0 <= psi^{c,lambda} - psi^c <= lambda log(1 / nu_argmin).
      const double diff = double(rs->values[i]) - rh->values[i];
      const double bound = lambda * std::log(1.0 / p.nu[rh->assignment[i]]);
      EXPECT_GE(diff, -1e-5) << "lambda " << lambda << " row " << i;
      EXPECT_LE(diff, bound + 1e-5) << "lambda " << lambda << " row " << i;
      max_gap = std::max(max_gap, diff);
      // The soft gradient approaches the hard one where the argmin is clear.
      if (lambda <= 1e-3f && ref.gap[i] > 100 * lambda) {
        EXPECT_LE((rs->grad_x.row(i) - rh->grad_x.row(i)).norm(), 1e-3 * (1.0 + rh->grad_x.row(i).norm()));
      }
    }
    EXPECT_LT(max_gap, previous_gap);
    previous_gap = max_gap;
  }
}

// ---- Finite differences through the differentiable form -----------------------------------------------

TEST(CTransformTest, GradientsMatchFiniteDifferences) {
  const Problem p = MakeProblem(6, 40, 20, Cost::SquaredEuclidean(), 3, 0.0f);
  for (bool small : {true, false}) {
    CTransformOptions opt;
    opt.lambda = 0.1f;
    opt.small_batch_rows = small ? 8 : 0;
    CTransform ct = MakeTransform(p, opt);
    auto f = [&](const std::vector<nn::Var>& in) {
      auto v = CTransformValues(ct, in[0], in[1]);
      OTGEN_CHECK(v.ok(), v.status().ToString());
      return *v;
    };
    nn::Tensor x = nn::Tensor::FromVector({6, 20}, std::vector<float>(p.x.data(), p.x.data() + p.x.size()));
    nn::Tensor psi = nn::Tensor::FromVector({40}, std::vector<float>(p.psi.data(), p.psi.data() + p.psi.size()));
    nn::GradCheckOptions gc;
    gc.step = 1e-2;
    gc.atol = 1e-3;
    gc.rtol = 1e-2;
    const absl::Status s = nn::GradCheck(f, {x, psi}, gc);
    EXPECT_TRUE(s.ok()) << s;
  }
}

TEST(CTransformTest, GeneralCostGradientsMatchFiniteDifferences) {
  for (const CostCase& cc : CostCases()) {
    if (cc.cost.kind == CostKind::kL1) continue;  // not differentiable at x_k = y_k: no FD oracle
    const Problem p = MakeProblem(4, 30, std::min<int64_t>(cc.d, 24), cc.cost, 8, 0.0f);
    CTransform ct = MakeTransform(p, {.lambda = 0.2f, .small_batch_rows = 0});
    auto f = [&](const std::vector<nn::Var>& in) {
      auto v = CTransformValues(ct, in[0], in[1]);
      OTGEN_CHECK(v.ok(), v.status().ToString());
      return *v;
    };
    nn::Tensor x = nn::Tensor::FromVector({p.x.rows(), p.x.cols()}, std::vector<float>(p.x.data(), p.x.data() + p.x.size()));
    nn::Tensor psi = nn::Tensor::FromVector({30}, std::vector<float>(p.psi.data(), p.psi.data() + p.psi.size()));
    nn::GradCheckOptions gc;
    gc.step = 5e-3;
    gc.atol = 2e-3;
    gc.rtol = 2e-2;
    const absl::Status s = nn::GradCheck(f, {x, psi}, gc);
    EXPECT_TRUE(s.ok()) << cc.name << ": " << s;
  }
}

TEST(CTransformTest, SemiDualObjectiveGradientIsTheSupergradient) {
  const Problem p = MakeProblem(50, 300, 30, Cost::SquaredEuclidean(), 14);
  for (float lambda : {0.0f, 0.05f}) {
    CTransform ct = MakeTransform(p, {.lambda = lambda});
    auto res = ct.Compute(p.x, p.psi);
    ASSERT_TRUE(res.ok());
    nn::Var x = nn::Var::Parameter(
        nn::Tensor::FromVector({50, 30}, std::vector<float>(p.x.data(), p.x.data() + p.x.size())));
    nn::Var psi = nn::Var::Parameter(
        nn::Tensor::FromVector({300}, std::vector<float>(p.psi.data(), p.psi.data() + p.psi.size())));
    auto h = SemiDualObjective(ct, x, psi);
    ASSERT_TRUE(h.ok());
    EXPECT_NEAR(h->item(), res->semi_dual, 1e-5);
    std::vector<nn::Var> g = nn::Grad({*h}, {x, psi});
    for (int64_t j = 0; j < 300; ++j) EXPECT_NEAR(g[1].value().data()[j], res->grad_psi[j], 1e-6) << j;
    for (int64_t i = 0; i < 50; ++i) {
      for (int64_t k = 0; k < 30; ++k) {
        EXPECT_NEAR(g[0].value().at({i, k}), res->grad_x(i, k) / 50.0f, 1e-6);
      }
    }
  }
}

TEST(CTransformTest, NetworkParameterizedPsi) {
  // SDOTNN (seed 000 eq. 105): psi_j = <phi(y_j), w> with w trainable; the gradient of the
  // semi-dual in w is phi^T grad_psi, checked by finite differences.
  const Problem p = MakeProblem(12, 60, 20, Cost::SquaredEuclidean(), 19);
  CTransform ct = MakeTransform(p, {.lambda = 0.05f});
  nn::Rng rng(3);
  const nn::Tensor features = nn::Tensor::Uniform({60, 3}, -1.0f, 1.0f, rng);  // phi(y_j)
  const nn::Var x = nn::Var::Constant(
      nn::Tensor::FromVector({12, 20}, std::vector<float>(p.x.data(), p.x.data() + p.x.size())));
  auto f = [&](const std::vector<nn::Var>& in) {
    nn::Var psi = nn::Reshape(nn::MatMul(nn::Var::Constant(features), in[0]), {60});
    auto h = SemiDualObjective(ct, x, psi);
    OTGEN_CHECK(h.ok(), h.status().ToString());
    return *h;
  };
  nn::GradCheckOptions gc;
  gc.step = 1e-2;
  gc.atol = 1e-4;
  gc.rtol = 1e-2;
  const absl::Status s = nn::GradCheck(f, {nn::Tensor::Uniform({3, 1}, -0.1f, 0.1f, rng)}, gc);
  EXPECT_TRUE(s.ok()) << s;
}

TEST(CTransformTest, ImageShapedInputFlattens) {
  const Problem p = MakeProblem(3, 50, 36, Cost::SquaredEuclidean(), 15);
  CTransform ct = MakeTransform(p, {.lambda = 0.05f});
  auto res = ct.Compute(p.x, p.psi);
  ASSERT_TRUE(res.ok());
  nn::Var x = nn::Var::Parameter(
      nn::Tensor::FromVector({3, 1, 6, 6}, std::vector<float>(p.x.data(), p.x.data() + p.x.size())));
  nn::Var psi = nn::Var::Constant(
      nn::Tensor::FromVector({50}, std::vector<float>(p.psi.data(), p.psi.data() + p.psi.size())));
  auto v = CTransformValues(ct, x, psi);
  ASSERT_TRUE(v.ok());
  ASSERT_EQ(v->shape(), nn::Shape({3}));
  std::vector<nn::Var> g = nn::Grad({nn::SumAll(*v)}, {x});
  ASSERT_EQ(g[0].shape(), nn::Shape({3, 1, 6, 6}));
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(v->value().data()[i], res->values[i], 1e-7);
    for (int64_t k = 0; k < 36; ++k) EXPECT_NEAR(g[0].value().data()[i * 36 + k], res->grad_x(i, k), 1e-7);
  }
}

TEST(CTransformDeathTest, SecondOrderAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const Problem p = MakeProblem(3, 20, 20, Cost::SquaredEuclidean(), 16);
  CTransform ct = MakeTransform(p, {.lambda = 0.1f});
  nn::Var x = nn::Var::Parameter(
      nn::Tensor::FromVector({3, 20}, std::vector<float>(p.x.data(), p.x.data() + p.x.size())));
  nn::Var psi = nn::Var::Constant(
      nn::Tensor::FromVector({20}, std::vector<float>(p.psi.data(), p.psi.data() + p.psi.size())));
  auto v = CTransformValues(ct, x, psi);
  ASSERT_TRUE(v.ok());
  EXPECT_DEATH(nn::Grad({nn::SumAll(*v)}, {x}, {}, {.create_graph = true}), "not supported");
}

// ---- Invalid input -----------------------------------------------------------------------------------

TEST(CTransformTest, RejectsInvalidInput) {
  const Problem p = MakeProblem(4, 10, 20, Cost::SquaredEuclidean(), 17);
  CTransform ct = MakeTransform(p, {.lambda = 0.1f});
  // Dimension mismatch.
  RowMatrixXf wrong_d = RowMatrixXf::Zero(4, 19);
  absl::Status s = ct.Compute(wrong_d, p.psi).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("x: expected 20 columns"));
  // psi size mismatch.
  s = ct.Compute(p.x, Eigen::VectorXf::Zero(9)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("psi: expected 10 entries"));
  // Empty batch.
  s = ct.Compute(RowMatrixXf(0, 20), p.psi).status();
  EXPECT_THAT(s.message(), HasSubstr("x: expected at least one source point"));
  // NaN / Inf.
  RowMatrixXf bad = p.x;
  bad(2, 5) = std::numeric_limits<float>::quiet_NaN();
  s = ct.Compute(bad, p.psi).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("x: entry (2, 5) is nan"));
  Eigen::VectorXf bad_psi = p.psi;
  bad_psi[7] = std::numeric_limits<float>::infinity();
  s = ct.Compute(p.x, bad_psi).status();
  EXPECT_THAT(s.message(), HasSubstr("psi: entry 7 is inf"));

  // Options.
  EXPECT_THAT(CTransform::Create(p.targets, p.cost, {.lambda = -1.0f}).status().message(),
              HasSubstr("CTransformOptions.lambda"));
  EXPECT_THAT(CTransform::Create(p.targets, p.cost, {.lambda = std::numeric_limits<float>::quiet_NaN()})
                  .status()
                  .message(),
              HasSubstr("CTransformOptions.lambda"));
  EXPECT_THAT(CTransform::Create(p.targets, p.cost, {.tile_size = 3}).status().message(),
              HasSubstr("CTransformOptions.tile_size"));
  EXPECT_THAT(CTransform::Create(p.targets, p.cost, {.prune_threshold = 2.0f}).status().message(),
              HasSubstr("CTransformOptions.prune_threshold"));
  EXPECT_THAT(CTransform::Create(nullptr, p.cost).status().message(), HasSubstr("targets"));
  EXPECT_THAT(CTransform::Create(p.targets, Cost::SquaredEuclidean(-1.0f)).status().code(),
              absl::StatusCode::kInvalidArgument);

  // Target sets.
  Eigen::VectorXf negative = p.nu;
  negative[0] = -0.1f;
  auto t = InMemoryTargetSet::Create(p.y, negative);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("weights: entry 0"));
  Eigen::VectorXf unnormalized = p.nu * 0.8f;
  t = InMemoryTargetSet::Create(p.y, unnormalized);
  EXPECT_THAT(t.status().message(), HasSubstr("weights: expected 10 non-negative entries summing to 1"));
  t = InMemoryTargetSet::Create(p.y, Eigen::VectorXf::Constant(9, 1.0f / 9));
  EXPECT_THAT(t.status().message(), HasSubstr("weights: expected 10 entries"));
  t = InMemoryTargetSet::CreateUniform(RowMatrixXf(0, 20));
  EXPECT_THAT(t.status().message(), HasSubstr("points: expected at least one target"));
  RowMatrixXf nan_points = p.y;
  nan_points(3, 1) = std::numeric_limits<float>::infinity();
  t = InMemoryTargetSet::CreateUniform(nan_points);
  EXPECT_THAT(t.status().message(), HasSubstr("points: entry (3, 1) is inf"));
  // Cosine needs non-zero points.
  RowMatrixXf zero_target = p.y;
  zero_target.row(2).setZero();
  auto tz = InMemoryTargetSet::CreateUniform(zero_target);
  ASSERT_TRUE(tz.ok());
  EXPECT_THAT(CTransform::Create(*tz, Cost::Cosine()).status().message(), HasSubstr("targets: point 2 is zero"));
  auto cos_ct = CTransform::Create(p.targets, Cost::Cosine());
  ASSERT_TRUE(cos_ct.ok());
  RowMatrixXf zero_x = p.x;
  zero_x.row(1).setZero();
  EXPECT_THAT(cos_ct->Compute(zero_x, p.psi).status().message(), HasSubstr("x: point 1 is zero"));

  // Differentiable form.
  nn::Var x3 = nn::Var::Constant(nn::Tensor::Zeros({20}));
  EXPECT_THAT(CTransformValues(ct, x3, nn::Var::Constant(nn::Tensor::Zeros({10}))).status().message(),
              HasSubstr("x: expected shape [batch, ...]"));
  nn::Var xok = nn::Var::Constant(nn::Tensor::Zeros({2, 20}));
  EXPECT_THAT(CTransformValues(ct, xok, nn::Var::Constant(nn::Tensor::Zeros({10, 1}))).status().message(),
              HasSubstr("psi: expected shape [J]"));
}

}  // namespace
}  // namespace otgen::ot
