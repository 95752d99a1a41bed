#include "apps/eval/feature_metrics.h"

#include <cmath>
#include <limits>
#include <vector>

#include "Eigen/Dense"
#include "Eigen/Eigenvalues"
#include "apps/eval/test_util.h"
#include "gtest/gtest.h"
#include "nn/random.h"

namespace otgen::eval {
namespace {

using testutil::StatusIs;

ot::RowMatrixXf RandomNormal(int n, int d, nn::Rng& rng, float shift = 0.0f) {
  ot::RowMatrixXf m(n, d);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j) m(i, j) = rng.Normal() + shift;
  return m;
}

Eigen::MatrixXd RandomOrthogonal(int d, nn::Rng& rng) {
  Eigen::MatrixXd g(d, d);
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < d; ++j) g(i, j) = rng.Normal();
  return Eigen::HouseholderQR<Eigen::MatrixXd>(g).householderQ();
}

Eigen::MatrixXd RandomSpd(int d, nn::Rng& rng) {
  Eigen::MatrixXd g(d, d + 3);
  for (int i = 0; i < g.rows(); ++i)
    for (int j = 0; j < g.cols(); ++j) g(i, j) = rng.Normal();
  return g * g.transpose() / static_cast<double>(d);
}

GaussianStats Stats(Eigen::VectorXd mean, Eigen::MatrixXd cov) {
  GaussianStats s;
  s.mean = std::move(mean);
  s.covariance = std::move(cov);
  s.count = 100;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Classifier score.

TEST(ClassifierScoreTest, OneHotUniformOverClassesScoresNumberOfClasses) {
  // 100 rows, 10 splits of 10 rows; each split holds each class once, one-hot.
  ot::RowMatrixXf p = ot::RowMatrixXf::Zero(100, 10);
  for (int i = 0; i < 100; ++i) p(i, i % 10) = 1.0f;
  absl::StatusOr<MeanStd> s = ClassifierScore(p);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_NEAR(s->mean, 10.0, 1e-12);
  EXPECT_NEAR(s->stddev, 0.0, 1e-12);
  ASSERT_EQ(s->values.size(), 10u);
}

TEST(ClassifierScoreTest, IdenticalPredictionsScoreOne) {
  ot::RowMatrixXf p(50, 4);
  for (int i = 0; i < 50; ++i) p.row(i) << 0.1f, 0.2f, 0.3f, 0.4f;
  absl::StatusOr<MeanStd> s = ClassifierScore(p, {.splits = 5});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_NEAR(s->mean, 1.0, 1e-12);
  EXPECT_NEAR(s->stddev, 0.0, 1e-12);
}

TEST(ClassifierScoreTest, HandComputedTwoSampleCase) {
  // p(y) = (0.75, 0.25); KL_1 = 0.5 log(4/3), KL_2 = log(4/3); score = (4/3)^0.75.
  ot::RowMatrixXf p(2, 2);
  p << 0.5f, 0.5f, 1.0f, 0.0f;
  absl::StatusOr<MeanStd> s = ClassifierScore(p, {.splits = 1});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_NEAR(s->mean, std::pow(4.0 / 3.0, 0.75), 1e-12);
}

TEST(ClassifierScoreTest, SplitsAreConsecutiveNearEqualParts) {
  // 7 rows, 3 splits: rows [0,2), [2,4), [4,7). Split 0 and 1 are one-hot on two classes
  // (score 2), split 2 is identical rows (score 1): mean 5/3, population std sqrt(2)/3.
  ot::RowMatrixXf p = ot::RowMatrixXf::Zero(7, 2);
  p(0, 0) = 1;
  p(1, 1) = 1;
  p(2, 1) = 1;
  p(3, 0) = 1;
  for (int i = 4; i < 7; ++i) p(i, 1) = 1;
  absl::StatusOr<MeanStd> s = ClassifierScore(p, {.splits = 3});
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->values.size(), 3u);
  EXPECT_NEAR(s->values[0], 2.0, 1e-12);
  EXPECT_NEAR(s->values[1], 2.0, 1e-12);
  EXPECT_NEAR(s->values[2], 1.0, 1e-12);
  EXPECT_NEAR(s->mean, 5.0 / 3.0, 1e-12);
  EXPECT_NEAR(s->stddev, std::sqrt(2.0) / 3.0, 1e-12);
}

TEST(ClassifierScoreTest, RejectsBadInput) {
  ot::RowMatrixXf p(3, 2);
  p << 0.5f, 0.5f, 0.7f, 0.7f, 1.0f, 0.0f;
  EXPECT_TRUE(StatusIs(ClassifierScore(p, {.splits = 1}).status(), absl::StatusCode::kInvalidArgument,
                       {"row 1 sums to 1.4"}));
  p(1, 0) = -0.3f;
  p(1, 1) = 1.3f;
  EXPECT_TRUE(StatusIs(ClassifierScore(p, {.splits = 1}).status(), absl::StatusCode::kInvalidArgument,
                       {"entry (1, 0)", "non-negative"}));
  p(1, 0) = 0.3f;
  p(1, 1) = 0.7f;
  EXPECT_TRUE(StatusIs(ClassifierScore(p, {.splits = 4}).status(), absl::StatusCode::kInvalidArgument,
                       {"3 rows for 4 splits"}));
  EXPECT_TRUE(StatusIs(ClassifierScore(p, {.splits = 0}).status(), absl::StatusCode::kInvalidArgument, {"splits"}));
}

// ---------------------------------------------------------------------------------------------
// Frechet distance.

TEST(FrechetDistanceTest, FitGaussianHandExample) {
  ot::RowMatrixXf x(3, 2);
  x << 1, 2, 3, 6, 5, 4;
  absl::StatusOr<GaussianStats> g = FitGaussian(x);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_NEAR(g->mean[0], 3.0, 1e-12);
  EXPECT_NEAR(g->mean[1], 4.0, 1e-12);
  EXPECT_NEAR(g->covariance(0, 0), 4.0, 1e-12);
  EXPECT_NEAR(g->covariance(0, 1), 2.0, 1e-12);
  EXPECT_NEAR(g->covariance(1, 0), 2.0, 1e-12);
  EXPECT_NEAR(g->covariance(1, 1), 4.0, 1e-12);
}

TEST(FrechetDistanceTest, FitGaussianMatchesDirectSumAcrossBlocks) {
  nn::Rng rng(3);
  const ot::RowMatrixXf x = RandomNormal(2500, 3, rng, 0.5f);  // > one 1024-row block
  absl::StatusOr<GaussianStats> g = FitGaussian(x);
  ASSERT_TRUE(g.ok());
  const Eigen::MatrixXd xd = x.cast<double>();
  const Eigen::RowVectorXd mean = xd.colwise().mean();
  const Eigen::MatrixXd centred = xd.rowwise() - mean;
  const Eigen::MatrixXd cov = centred.transpose() * centred / 2499.0;
  EXPECT_LT((g->covariance - cov).cwiseAbs().maxCoeff(), 1e-12);
  EXPECT_LT((g->mean - mean.transpose()).cwiseAbs().maxCoeff(), 1e-12);
}

TEST(FrechetDistanceTest, DiagonalCovariances) {
  Eigen::VectorXd m1(3), m2(3), a(3), b(3);
  m1 << 1, 2, 3;
  m2 << 0, 2, 5;
  a << 4, 1, 9;
  b << 1, 1, 16;
  // ||m1 - m2||^2 = 1 + 0 + 4 = 5; sum (sqrt a - sqrt b)^2 = 1 + 0 + 1 = 2.
  absl::StatusOr<double> fd = FrechetDistance(Stats(m1, a.asDiagonal()), Stats(m2, b.asDiagonal()));
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_NEAR(*fd, 7.0, 1e-12);
}

TEST(FrechetDistanceTest, CommutingCovariances) {
  nn::Rng rng(11);
  const int d = 6;
  const Eigen::MatrixXd q = RandomOrthogonal(d, rng);
  Eigen::VectorXd a(d), b(d);
  a << 0.5, 1, 2, 3, 0.1, 7;
  b << 2, 1, 0.3, 5, 0.1, 1;
  const Eigen::VectorXd m = Eigen::VectorXd::Zero(d);
  double expected = 0.0;
  for (int k = 0; k < d; ++k) expected += std::pow(std::sqrt(a[k]) - std::sqrt(b[k]), 2);
  absl::StatusOr<double> fd =
      FrechetDistance(Stats(m, q * a.asDiagonal() * q.transpose()), Stats(m, q * b.asDiagonal() * q.transpose()));
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_NEAR(*fd, expected, 1e-10);
}

TEST(FrechetDistanceTest, RandomCaseMatchesTraceOfSqrtOfProduct) {
  // tr((S1 S2)^1/2) = sum_k sqrt(lambda_k(S1 S2)): the eigenvalues of the (non-symmetric)
  // product are those of S1^1/2 S2 S1^1/2, real and non-negative.
  nn::Rng rng(5);
  for (int d : {1, 2, 8, 30}) {
    const Eigen::MatrixXd s1 = RandomSpd(d, rng), s2 = RandomSpd(d, rng);
    Eigen::VectorXd m1(d), m2(d);
    for (int k = 0; k < d; ++k) {
      m1[k] = rng.Normal();
      m2[k] = rng.Normal();
    }
    Eigen::EigenSolver<Eigen::MatrixXd> eig(s1 * s2, /*computeEigenvectors=*/false);
    double trace_root = 0.0;
    for (int k = 0; k < d; ++k) trace_root += std::sqrt(std::max(0.0, eig.eigenvalues()[k].real()));
    const double expected = (m1 - m2).squaredNorm() + s1.trace() + s2.trace() - 2.0 * trace_root;
    absl::StatusOr<double> fd = FrechetDistance(Stats(m1, s1), Stats(m2, s2));
    ASSERT_TRUE(fd.ok()) << fd.status();
    EXPECT_NEAR(*fd, expected, 1e-9 * (1.0 + std::fabs(expected))) << "d=" << d;
    // Symmetric in its arguments.
    absl::StatusOr<double> fd_swapped = FrechetDistance(Stats(m2, s2), Stats(m1, s1));
    ASSERT_TRUE(fd_swapped.ok());
    EXPECT_NEAR(*fd, *fd_swapped, 1e-9 * (1.0 + std::fabs(expected)));
  }
}

TEST(FrechetDistanceTest, OneDimensionalIsSquaredW2) {
  // N(1, 4) vs N(-1, 9): (1 - (-1))^2 + (2 - 3)^2 = 5.
  Eigen::VectorXd m1(1), m2(1);
  m1 << 1;
  m2 << -1;
  absl::StatusOr<double> fd = FrechetDistance(Stats(m1, Eigen::MatrixXd::Constant(1, 1, 4.0)),
                                              Stats(m2, Eigen::MatrixXd::Constant(1, 1, 9.0)));
  ASSERT_TRUE(fd.ok());
  EXPECT_NEAR(*fd, 5.0, 1e-12);
}

TEST(FrechetDistanceTest, RankDeficientCovariancesAreHandled) {
  // 5 samples in 20 dimensions: rank-4 covariance, eigenvalues ~0 with rounding noise.
  nn::Rng rng(2);
  const ot::RowMatrixXf x = RandomNormal(5, 20, rng);
  absl::StatusOr<double> fd = FrechetDistance(x, x);
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_TRUE(std::isfinite(*fd));
  EXPECT_NEAR(*fd, 0.0, 1e-6);
}

TEST(FrechetDistanceTest, FeatureSetsShiftedByAConstant) {
  nn::Rng rng(7);
  const ot::RowMatrixXf x = RandomNormal(400, 10, rng);
  ot::RowMatrixXf y = x;
  y.array() += 0.5f;  // same covariance, mean shifted by 0.5 in 10 dims: FD = 2.5
  absl::StatusOr<double> fd = FrechetDistance(x, y);
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_NEAR(*fd, 2.5, 1e-6);
  absl::StatusOr<double> self = FrechetDistance(x, x);
  ASSERT_TRUE(self.ok());
  EXPECT_NEAR(*self, 0.0, 1e-8);
}

TEST(FrechetDistanceTest, PsdSqrtSquaresBack) {
  nn::Rng rng(9);
  const Eigen::MatrixXd s = RandomSpd(7, rng);
  const Eigen::MatrixXd r = internal::PsdSqrt(s);
  EXPECT_LT((r * r - s).cwiseAbs().maxCoeff(), 1e-12);
  EXPECT_LT((r - r.transpose()).cwiseAbs().maxCoeff(), 1e-12);
}

TEST(FrechetDistanceTest, RejectsBadInput) {
  nn::Rng rng(1);
  EXPECT_TRUE(StatusIs(FrechetDistance(RandomNormal(5, 3, rng), RandomNormal(5, 4, rng)).status(),
                       absl::StatusCode::kInvalidArgument, {"equal dimensions", "3", "4"}));
  EXPECT_TRUE(StatusIs(FrechetDistance(RandomNormal(1, 3, rng), RandomNormal(5, 3, rng)).status(),
                       absl::StatusCode::kInvalidArgument, {"features_a", "at least 2 rows"}));
  ot::RowMatrixXf bad = RandomNormal(4, 2, rng);
  bad(2, 1) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(StatusIs(FitGaussian(bad).status(), absl::StatusCode::kInvalidArgument, {"entry (2, 1)", "finite"}));
}

// ---------------------------------------------------------------------------------------------
// KID.

// Brute-force unbiased MMD^2 with the cubic polynomial kernel.
double BruteForceMmd2(const ot::RowMatrixXf& x, const ot::RowMatrixXf& y) {
  const double d = static_cast<double>(x.cols());
  auto k = [&](const ot::RowMatrixXf& a, int i, const ot::RowMatrixXf& b, int j) {
    double dot = 0.0;
    for (int c = 0; c < a.cols(); ++c) dot += static_cast<double>(a(i, c)) * b(j, c);
    return std::pow(dot / d + 1.0, 3);
  };
  const double nx = x.rows(), ny = y.rows();
  double sxx = 0, syy = 0, sxy = 0;
  for (int i = 0; i < x.rows(); ++i)
    for (int j = 0; j < x.rows(); ++j)
      if (i != j) sxx += k(x, i, x, j);
  for (int i = 0; i < y.rows(); ++i)
    for (int j = 0; j < y.rows(); ++j)
      if (i != j) syy += k(y, i, y, j);
  for (int i = 0; i < x.rows(); ++i)
    for (int j = 0; j < y.rows(); ++j) sxy += k(x, i, y, j);
  return sxx / (nx * (nx - 1)) + syy / (ny * (ny - 1)) - 2 * sxy / (nx * ny);
}

TEST(KidTest, ThreePointHandExample) {
  // d = 1, k(x, y) = (xy + 1)^3, X = {-1, 0, 1}, Y = {0, 1, 2}.
  // Off-diagonal pairs of X: k(-1,0) = 1, k(-1,1) = 0, k(0,1) = 1 -> 2 * 2 / 6 = 2/3.
  // Pairs of Y: k(0,1) = 1, k(0,2) = 1, k(1,2) = 27 -> 2 * 29 / 6 = 29/3.
  // Cross: x=-1: 1 + 0 - 1; x=0: 3; x=1: 1 + 8 + 27 -> 39; 2 * 39 / 9 = 26/3.
  // MMD^2 = 2/3 + 29/3 - 26/3 = 5/3.
  ot::RowMatrixXf x(3, 1), y(3, 1);
  x << -1, 0, 1;
  y << 0, 1, 2;
  absl::StatusOr<double> mmd = UnbiasedPolynomialMmd2(x, y);
  ASSERT_TRUE(mmd.ok()) << mmd.status();
  EXPECT_NEAR(*mmd, 5.0 / 3.0, 1e-12);
  // Subsets of the full size are the full sets (the estimate is permutation invariant).
  absl::StatusOr<MeanStd> kid = KernelInceptionDistance(x, y, {.subsets = 4, .subset_size = 3});
  ASSERT_TRUE(kid.ok()) << kid.status();
  ASSERT_EQ(kid->values.size(), 4u);
  EXPECT_NEAR(kid->mean, 5.0 / 3.0, 1e-12);
  EXPECT_NEAR(kid->stddev, 0.0, 1e-12);
}

TEST(KidTest, MatchesBruteForceOnRandomSets) {
  nn::Rng rng(4);
  const ot::RowMatrixXf x = RandomNormal(23, 5, rng), y = RandomNormal(17, 5, rng, 0.3f);
  absl::StatusOr<double> mmd = UnbiasedPolynomialMmd2(x, y);
  ASSERT_TRUE(mmd.ok());
  EXPECT_NEAR(*mmd, BruteForceMmd2(x, y), 1e-10);
}

TEST(KidTest, SubsetsAreSeededAndEachIsAnMmdOfDistinctRows) {
  nn::Rng rng(8);
  const ot::RowMatrixXf x = RandomNormal(60, 4, rng), y = RandomNormal(50, 4, rng, 0.2f);
  const KidOptions options{.subsets = 6, .subset_size = 20, .seed = 123};
  absl::StatusOr<MeanStd> a = KernelInceptionDistance(x, y, options);
  absl::StatusOr<MeanStd> b = KernelInceptionDistance(x, y, options);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->values, b->values);
  // Subset values differ from each other (random subsets) and from another seed's.
  EXPECT_NE(a->values[0], a->values[1]);
  absl::StatusOr<MeanStd> c = KernelInceptionDistance(x, y, {.subsets = 6, .subset_size = 20, .seed = 124});
  ASSERT_TRUE(c.ok());
  EXPECT_NE(a->values, c->values);
  // Mean and population std of the values.
  double mean = 0, ss = 0;
  for (double v : a->values) mean += v / 6;
  for (double v : a->values) ss += (v - mean) * (v - mean) / 6;
  EXPECT_NEAR(a->mean, mean, 1e-12);
  EXPECT_NEAR(a->stddev, std::sqrt(ss), 1e-12);
}

TEST(KidTest, SameDistributionIsNearZeroAndShiftIsNot) {
  nn::Rng rng(6);
  const ot::RowMatrixXf x = RandomNormal(2000, 16, rng);
  const ot::RowMatrixXf x2 = RandomNormal(2000, 16, rng);  // independent, same distribution
  const ot::RowMatrixXf shifted = RandomNormal(2000, 16, rng, 0.5f);
  absl::StatusOr<MeanStd> same = KernelInceptionDistance(x, x2, {.subset_size = 500});
  absl::StatusOr<MeanStd> other = KernelInceptionDistance(x, shifted, {.subset_size = 500});
  ASSERT_TRUE(same.ok() && other.ok());
  // Features ~ N(mu, I_16): the cubic-kernel MMD^2 of a 0.5 shift per coordinate is about 1;
  // the estimator is unbiased, so two samples of one distribution give about 0 (noise of a
  // few 1e-3 per subset of 500).
  EXPECT_LT(std::fabs(same->mean), 0.01);
  EXPECT_GT(other->mean, 0.5);
  EXPECT_GT(other->mean, 50.0 * std::fabs(same->mean));
  // Note: KID(x, x) with independent subsets of one set is biased low: rows drawn into both
  // subsets add k(x_i, x_i) to the cross term.
  absl::StatusOr<MeanStd> self = KernelInceptionDistance(x, x, {.subset_size = 500});
  ASSERT_TRUE(self.ok());
  EXPECT_LT(self->mean, 0.0);
}

TEST(KidTest, RejectsBadInput) {
  nn::Rng rng(1);
  const ot::RowMatrixXf x = RandomNormal(10, 3, rng);
  EXPECT_TRUE(StatusIs(KernelInceptionDistance(x, x).status(), absl::StatusCode::kInvalidArgument,
                       {"subset_size = 1000"}));
  EXPECT_TRUE(StatusIs(KernelInceptionDistance(x, RandomNormal(10, 2, rng), {.subset_size = 5}).status(),
                       absl::StatusCode::kInvalidArgument, {"equal feature dimensions"}));
  EXPECT_TRUE(StatusIs(KernelInceptionDistance(x, x, {.subset_size = 1}).status(),
                       absl::StatusCode::kInvalidArgument, {"subset_size: expected >= 2"}));
}

// ---------------------------------------------------------------------------------------------
// Class histogram and confident fraction.

TEST(ClassHistogramTest, CountsArgmaxAndKlToReference) {
  ot::RowMatrixXf p(4, 4);
  p << 0.7f, 0.1f, 0.1f, 0.1f,  // 0
      0.4f, 0.4f, 0.1f, 0.1f,   // tie -> first: 0
      0.1f, 0.8f, 0.1f, 0.0f,   // 1
      0.0f, 0.0f, 1.0f, 0.0f;   // 2
  EXPECT_EQ(PredictedClasses(p), (std::vector<int>{0, 0, 1, 2}));
  const std::vector<double> uniform(4, 0.25);
  absl::StatusOr<ClassHistogram> h = PredictedClassHistogram(p, uniform);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->counts, (std::vector<int64_t>{2, 1, 1, 0}));
  EXPECT_EQ(h->frequencies, (std::vector<double>{0.5, 0.25, 0.25, 0.0}));
  // KL((.5, .25, .25, 0) || uniform) = 0.5 log 2 (the empty class contributes 0).
  EXPECT_NEAR(h->kl_to_reference, 0.5 * std::log(2.0), 1e-12);
}

TEST(ClassHistogramTest, ClassFrequenciesAndKl) {
  const std::vector<int> labels = {0, 1, 1, 2, 2, 2, 2, 2};
  absl::StatusOr<std::vector<double>> f = ClassFrequencies(labels, 4);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(*f, (std::vector<double>{0.125, 0.25, 0.625, 0.0}));
  const std::vector<int64_t> labels64 = {1, 1};
  absl::StatusOr<std::vector<double>> f64 = ClassFrequencies(labels64, 2);
  ASSERT_TRUE(f64.ok());
  EXPECT_EQ(*f64, (std::vector<double>{0.0, 1.0}));
  // KL to a reference with a zero where p is positive is infinite.
  absl::StatusOr<double> kl = KlDivergence(std::vector<double>{0.5, 0.5}, std::vector<double>{1.0, 0.0});
  ASSERT_TRUE(kl.ok());
  EXPECT_TRUE(std::isinf(*kl));
  absl::StatusOr<double> same = KlDivergence(*f, *f);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, 0.0);
  EXPECT_TRUE(StatusIs(ClassFrequencies(std::vector<int>{0, 4}, 4).status(), absl::StatusCode::kInvalidArgument,
                       {"label 4 at index 1", "[0, 4)"}));
  EXPECT_TRUE(StatusIs(KlDivergence(std::vector<double>{0.5, 0.6}, std::vector<double>{0.5, 0.5}).status(),
                       absl::StatusCode::kInvalidArgument, {"p: sums to 1.1"}));
}

TEST(ClassHistogramTest, ReferenceMustMatchClasses) {
  ot::RowMatrixXf p(1, 3);
  p << 0.2f, 0.3f, 0.5f;
  EXPECT_TRUE(StatusIs(PredictedClassHistogram(p, std::vector<double>{0.5, 0.5}).status(),
                       absl::StatusCode::kInvalidArgument, {"2 columns"}));
}

TEST(ConfidentFractionTest, CountsRowsStrictlyAboveThreshold) {
  ot::RowMatrixXf p(5, 2);
  p << 0.95f, 0.05f, 0.5f, 0.5f, 0.25f, 0.75f, 1.0f, 0.0f, 0.125f, 0.875f;
  absl::StatusOr<double> at_default = ConfidentFraction(p);
  ASSERT_TRUE(at_default.ok());
  EXPECT_DOUBLE_EQ(*at_default, 2.0 / 5.0);  // 0.95 and 1.0
  absl::StatusOr<double> at_half = ConfidentFraction(p, 0.5);
  ASSERT_TRUE(at_half.ok());
  EXPECT_DOUBLE_EQ(*at_half, 4.0 / 5.0);  // 0.5 is not strictly above 0.5
  absl::StatusOr<double> at_075 = ConfidentFraction(p, 0.75);
  ASSERT_TRUE(at_075.ok());
  EXPECT_DOUBLE_EQ(*at_075, 3.0 / 5.0);
  EXPECT_TRUE(StatusIs(ConfidentFraction(p, 1.5).status(), absl::StatusCode::kInvalidArgument, {"threshold"}));
}

}  // namespace
}  // namespace otgen::eval
