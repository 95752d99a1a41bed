#include "data/samplers.h"

#include <cmath>
#include <cstdint>
#include <vector>

#include "Eigen/Dense"
#include "gtest/gtest.h"

namespace otgen::data {
namespace {

using RowMatrixXd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

RowMatrixXd ToMatrix(const nn::Tensor& t) {
  const int64_t n = t.dim(0), d = t.numel() / n;
  return Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(t.data(), n, d)
      .cast<double>();
}

// Two-pass reference in double: mean and 1/N covariance.
void ReferenceMoments(const RowMatrixXd& x, Eigen::VectorXd* mean, Eigen::MatrixXd* cov) {
  *mean = x.colwise().mean().transpose();
  const RowMatrixXd c = x.rowwise() - mean->transpose();
  *cov = c.transpose() * c / static_cast<double>(x.rows());
}

TEST(UniformSamplerTest, RangeMomentsAndSeeding) {
  UniformSampler u({3, 4}, -1.0f, 1.0f);
  EXPECT_EQ(u.sample_shape(), (nn::Shape{3, 4}));
  nn::Rng rng(1), same(1);
  nn::Tensor x = u.Sample(20000, rng);
  EXPECT_EQ(x.shape(), (nn::Shape{20000, 3, 4}));
  double sum = 0, sum_sq = 0;
  for (float v : x.span()) {
    ASSERT_GE(v, -1.0f);
    ASSERT_LT(v, 1.0f);
    sum += v;
    sum_sq += static_cast<double>(v) * v;
  }
  const double n = x.numel();
  EXPECT_NEAR(sum / n, 0.0, 4 * std::sqrt(1.0 / 3.0 / n));
  EXPECT_NEAR(sum_sq / n, 1.0 / 3.0, 0.003);  // var of U[-1,1) = 1/3
  nn::Tensor y = u.Sample(20000, same);
  EXPECT_EQ(std::vector<float>(x.span().begin(), x.span().end()), std::vector<float>(y.span().begin(), y.span().end()));
  // SampleInto reuses a buffer of the right shape.
  const float* storage = y.data();
  u.SampleInto(20000, rng, &y);
  EXPECT_EQ(y.data(), storage);
  u.SampleInto(5, rng, &y);
  EXPECT_EQ(y.shape(), (nn::Shape{5, 3, 4}));
  UniformSampler shifted({1}, 2.0f, 5.0f);
  const nn::Tensor shifted_samples = shifted.Sample(1000, rng);
  for (float v : shifted_samples.span()) {
    ASSERT_GE(v, 2.0f);
    ASSERT_LT(v, 5.0f);
  }
}

TEST(NormalSamplerTest, Moments) {
  NormalSampler z({128});
  nn::Rng rng(2);
  nn::Tensor x = z.Sample(2000, rng);
  EXPECT_EQ(x.shape(), (nn::Shape{2000, 128}));
  double m1 = 0, m2 = 0, m4 = 0;
  for (float v : x.span()) {
    m1 += v;
    m2 += static_cast<double>(v) * v;
    m4 += std::pow(static_cast<double>(v), 4);
  }
  const double n = x.numel();
  EXPECT_NEAR(m1 / n, 0.0, 0.006);
  EXPECT_NEAR(m2 / n, 1.0, 0.01);
  EXPECT_NEAR(m4 / n, 3.0, 0.06);
  NormalSampler shifted({2}, 3.0f, 0.5f);
  double s = 0, ss = 0;
  nn::Tensor y = shifted.Sample(50000, rng);
  for (float v : y.span()) {
    s += v;
    ss += static_cast<double>(v) * v;
  }
  const double mean = s / y.numel();
  EXPECT_NEAR(mean, 3.0, 0.005);
  EXPECT_NEAR(ss / y.numel() - mean * mean, 0.25, 0.005);
}

TEST(MultivariateNormalTest, FitMatchesTwoPassReference) {
  // Correlated data with a large offset (the centring must not lose precision).
  nn::Rng rng(3);
  const int n = 5000, d = 6;
  nn::Tensor x = nn::Tensor::Empty({n, d});
  for (int i = 0; i < n; ++i) {
    const float a = rng.Normal(), b = rng.Normal();
    for (int j = 0; j < d; ++j) x.at({i, j}) = 1000.0f + (j + 1) * a + (j % 2 ? b : -0.5f * b) + 0.1f * rng.Normal();
  }
  absl::StatusOr<MultivariateNormalSampler> mvn = MultivariateNormalSampler::Fit(x);
  ASSERT_TRUE(mvn.ok()) << mvn.status();
  Eigen::VectorXd mean;
  Eigen::MatrixXd cov;
  ReferenceMoments(ToMatrix(x), &mean, &cov);
  EXPECT_LT((mvn->mean() - mean).cwiseAbs().maxCoeff(), 1e-6 * 1000);
  EXPECT_LT((mvn->covariance() - cov).cwiseAbs().maxCoeff(), 1e-9) << mvn->covariance() << "\n\n" << cov;
  EXPECT_EQ(mvn->dim(), d);
  EXPECT_EQ(mvn->sample_shape(), (nn::Shape{d}));
  EXPECT_EQ(mvn->rank(), d);
  // Eigenvalues: increasing, and V diag(lambda) V^T reproduces the covariance.
  for (int k = 1; k < d; ++k) EXPECT_LE(mvn->eigenvalues()[k - 1], mvn->eigenvalues()[k]);
  EXPECT_NEAR(mvn->eigenvalues().sum(), cov.trace(), 1e-3);
}

TEST(MultivariateNormalTest, FitUsesOneOverN) {
  // Two points: ML variance is ((1-0)/2)^2 = 0.25, not the unbiased 0.5.
  nn::Tensor x = nn::Tensor::FromVector({2, 1}, {0.0f, 1.0f});
  absl::StatusOr<MultivariateNormalSampler> mvn = MultivariateNormalSampler::Fit(x);
  ASSERT_TRUE(mvn.ok());
  EXPECT_DOUBLE_EQ(mvn->mean()[0], 0.5);
  EXPECT_NEAR(mvn->covariance()(0, 0), 0.25, 1e-12);
}

TEST(MultivariateNormalTest, SamplesHaveTheGivenMoments) {
  Eigen::VectorXd mean(3);
  mean << 1.0, -2.0, 0.5;
  Eigen::MatrixXd a(3, 3);
  a << 1.0, 0.0, 0.0, 0.5, 1.2, 0.0, -0.3, 0.4, 0.7;
  const Eigen::MatrixXd cov = a * a.transpose();
  absl::StatusOr<MultivariateNormalSampler> mvn = MultivariateNormalSampler::FromMeanAndCovariance(mean, cov);
  ASSERT_TRUE(mvn.ok()) << mvn.status();
  nn::Rng rng(4);
  nn::Tensor x = mvn->Sample(200000, rng);
  EXPECT_EQ(x.shape(), (nn::Shape{200000, 3}));
  Eigen::VectorXd m;
  Eigen::MatrixXd c;
  ReferenceMoments(ToMatrix(x), &m, &c);
  EXPECT_LT((m - mean).cwiseAbs().maxCoeff(), 0.01);  // std of a mean ~ 1.3 / sqrt(2e5) = 0.003
  EXPECT_LT((c - cov).cwiseAbs().maxCoeff(), 0.02);
}

TEST(MultivariateNormalTest, SingularCovarianceLikeMnist) {
  // 10-d data: coordinates 0 and 9 constant (MNIST's border pixels), the rest in a 3-d
  // subspace. Cholesky would fail; the eigen factor samples inside the subspace.
  nn::Rng rng(5);
  const int n = 4000, d = 10;
  Eigen::MatrixXd basis = Eigen::MatrixXd::Zero(d, 3);
  for (int j = 1; j < d - 1; ++j) {
    basis(j, 0) = std::sin(j);
    basis(j, 1) = std::cos(2.0 * j);
    basis(j, 2) = j % 3 - 1.0;
  }
  nn::Tensor x = nn::Tensor::Empty({n, 1, 2, 5});
  for (int i = 0; i < n; ++i) {
    Eigen::Vector3d z(rng.Normal(), rng.Normal(), rng.Normal());
    const Eigen::VectorXd v = basis * z;
    for (int j = 0; j < d; ++j) x.data()[i * d + j] = static_cast<float>(v[j]) + (j == 0 ? -1.0f : 0.0f);
  }
  absl::StatusOr<MultivariateNormalSampler> mvn = MultivariateNormalSampler::Fit(x);
  ASSERT_TRUE(mvn.ok()) << mvn.status();
  EXPECT_EQ(mvn->sample_shape(), (nn::Shape{1, 2, 5}));
  EXPECT_GE(mvn->eigenvalues().minCoeff(), 0.0);  // negatives clamped
  // With a relative floor the numerical null space is dropped: rank 3.
  absl::StatusOr<MultivariateNormalSampler> floored =
      MultivariateNormalSampler::Fit(x, {.relative_eigenvalue_floor = 1e-9});
  ASSERT_TRUE(floored.ok());
  EXPECT_EQ(floored->rank(), 3);

  const Eigen::MatrixXd q = basis.householderQr().householderQ() * Eigen::MatrixXd::Identity(d, 3);
  for (const MultivariateNormalSampler* s : {&*mvn, &*floored}) {
    nn::Tensor y = s->Sample(20000, rng);
    EXPECT_EQ(y.shape(), (nn::Shape{20000, 1, 2, 5}));
    const RowMatrixXd m = ToMatrix(y);
    ASSERT_TRUE(m.allFinite());
    for (int i = 0; i < 20000; ++i) {
      ASSERT_NEAR(m(i, 0), -1.0, 1e-4);  // constant coordinates stay constant
      ASSERT_NEAR(m(i, 9), 0.0, 1e-4);
      Eigen::VectorXd centred = m.row(i).transpose() - s->mean();
      const Eigen::VectorXd residual = centred - q * (q.transpose() * centred);
      ASSERT_LT(residual.norm(), 1e-4 * (1.0 + centred.norm()));  // inside the subspace
    }
    Eigen::VectorXd mean;
    Eigen::MatrixXd cov;
    ReferenceMoments(m, &mean, &cov);
    EXPECT_LT((cov - s->covariance()).cwiseAbs().maxCoeff(), 0.05);
  }
}

TEST(MultivariateNormalTest, DiagonalLoading) {
  Eigen::VectorXd mean = Eigen::VectorXd::Zero(2);
  Eigen::MatrixXd cov = Eigen::MatrixXd::Zero(2, 2);
  cov(0, 0) = 1.0;
  absl::StatusOr<MultivariateNormalSampler> mvn =
      MultivariateNormalSampler::FromMeanAndCovariance(mean, cov, {}, {.diagonal_loading = 0.1});
  ASSERT_TRUE(mvn.ok());
  EXPECT_NEAR(mvn->eigenvalues()[0], 0.1, 1e-12);
  EXPECT_NEAR(mvn->eigenvalues()[1], 1.1, 1e-12);
  EXPECT_EQ(mvn->covariance()(1, 1), 0.0);  // reported as given
  EXPECT_EQ(mvn->rank(), 2);
  // Zero covariance: every sample is the mean.
  absl::StatusOr<MultivariateNormalSampler> point =
      MultivariateNormalSampler::FromMeanAndCovariance(Eigen::VectorXd::Ones(3), Eigen::MatrixXd::Zero(3, 3));
  ASSERT_TRUE(point.ok());
  EXPECT_EQ(point->rank(), 0);
  nn::Rng rng(6);
  const nn::Tensor samples = point->Sample(4, rng);
  EXPECT_EQ(samples.shape(), (nn::Shape{4, 3}));
  for (float v : samples.span()) EXPECT_EQ(v, 1.0f);
}

TEST(MultivariateNormalTest, InvalidInput) {
  EXPECT_EQ(MultivariateNormalSampler::Fit(nn::Tensor()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MultivariateNormalSampler::Fit(nn::Tensor::Empty({0, 3})).status().code(),
            absl::StatusCode::kInvalidArgument);
  nn::Tensor nan = nn::Tensor::Zeros({3, 2});
  nan.at({1, 1}) = std::nanf("");
  absl::Status s = MultivariateNormalSampler::Fit(nan).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("value 1 of example 1"), std::string::npos) << s;
  EXPECT_EQ(MultivariateNormalSampler::Fit(nn::Tensor::Zeros({3, 2}), {.diagonal_loading = -1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  Eigen::MatrixXd asym = Eigen::MatrixXd::Identity(2, 2);
  asym(0, 1) = 0.5;
  EXPECT_EQ(MultivariateNormalSampler::FromMeanAndCovariance(Eigen::VectorXd::Zero(2), asym).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MultivariateNormalSampler::FromMeanAndCovariance(Eigen::VectorXd::Zero(3), Eigen::MatrixXd::Identity(2, 2))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      MultivariateNormalSampler::FromMeanAndCovariance(Eigen::VectorXd::Zero(2), Eigen::MatrixXd::Identity(2, 2), {3})
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace otgen::data
