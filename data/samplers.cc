#include "data/samplers.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nn/status_macros.h"

namespace otgen::data {

UniformSampler::UniformSampler(nn::Shape sample_shape, float lo, float hi)
    : shape_(std::move(sample_shape)), lo_(lo), hi_(hi) {
  OTGEN_CHECK(lo < hi, absl::StrCat("UniformSampler: expected lo < hi, got [", lo, ", ", hi, ")"));
  for (int64_t d : shape_) OTGEN_CHECK(d >= 0, "UniformSampler: negative dimension in the sample shape");
}

void UniformSampler::SampleInto(int64_t n, nn::Rng& rng, nn::Tensor* out) const {
  PrepareOutput(n, out);
  float* p = out->data();
  for (int64_t i = 0, m = out->numel(); i < m; ++i) p[i] = rng.Uniform(lo_, hi_);
}

NormalSampler::NormalSampler(nn::Shape sample_shape, float mean, float stddev)
    : shape_(std::move(sample_shape)), mean_(mean), stddev_(stddev) {
  OTGEN_CHECK(stddev >= 0.0f, absl::StrCat("NormalSampler: expected stddev >= 0, got ", stddev));
  for (int64_t d : shape_) OTGEN_CHECK(d >= 0, "NormalSampler: negative dimension in the sample shape");
}

void NormalSampler::SampleInto(int64_t n, nn::Rng& rng, nn::Tensor* out) const {
  PrepareOutput(n, out);
  float* p = out->data();
  for (int64_t i = 0, m = out->numel(); i < m; ++i) p[i] = mean_ + stddev_ * rng.Normal();
}

absl::Status MultivariateNormalOptions::Validate() const {
  if (!(diagonal_loading >= 0.0) || !std::isfinite(diagonal_loading)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "MultivariateNormalOptions.diagonal_loading: expected a finite value >= 0, got ", diagonal_loading));
  }
  if (!(relative_eigenvalue_floor >= 0.0 && relative_eigenvalue_floor < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("MultivariateNormalOptions.relative_eigenvalue_floor: expected a value in [0, 1), got ",
                     relative_eigenvalue_floor));
  }
  return absl::OkStatus();
}

absl::StatusOr<MultivariateNormalSampler> MultivariateNormalSampler::Fit(const nn::Tensor& examples,
                                                                         const MultivariateNormalOptions& options) {
  OTGEN_RETURN_IF_ERROR(options.Validate());
  if (!examples.defined() || examples.rank() < 1 || examples.dim(0) < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("MultivariateNormalSampler::Fit: expected examples {N >= 1, ...}, got ",
                     examples.defined() ? nn::ShapeToString(examples.shape()) : "an undefined tensor"));
  }
  const int64_t n = examples.dim(0);
  const int64_t d = examples.numel() / n;
  if (d < 1) {
    return absl::InvalidArgumentError(absl::StrCat("MultivariateNormalSampler::Fit: examples of shape ",
                                                   nn::ShapeToString(examples.shape()), " have no values"));
  }
  const float* x = examples.data();
  for (int64_t i = 0; i < n * d; ++i) {
    if (!std::isfinite(x[i])) {
      return absl::InvalidArgumentError(absl::StrCat("MultivariateNormalSampler::Fit: value ", i % d, " of example ",
                                                     i / d, " is ", x[i], ", expected finite values"));
    }
  }

  MultivariateNormalSampler s;
  s.shape_.assign(examples.shape().begin() + 1, examples.shape().end());

  // Mean in double.
  Eigen::VectorXd sum = Eigen::VectorXd::Zero(d);
  for (int64_t i = 0; i < n; ++i) {
    const float* row = x + i * d;
    for (int64_t j = 0; j < d; ++j) sum[j] += row[j];
  }
  s.mean_ = sum / static_cast<double>(n);

  // Covariance, two-pass: rows centred on the double mean, Gram matrices of row blocks
  // accumulated in double (lower triangle, rank updates). Double keeps the null space of
  // a singular covariance at round-off level (~1e-16 relative), where float Gram matrices
  // would leave ~1e-7 relative noise on constant pixels. With s = sum_i (x_i - mu) (zero
  // up to round-off) the ML covariance is (G - s s^T / N) / N.
  constexpr int64_t kBlock = 1024;
  const int64_t block = std::min(kBlock, n);
  RowMatrixXd centered(block, d);
  Eigen::MatrixXd g = Eigen::MatrixXd::Zero(d, d);
  Eigen::VectorXd offset_sum = Eigen::VectorXd::Zero(d);
  for (int64_t begin = 0; begin < n; begin += block) {
    const int64_t rows = std::min(block, n - begin);
    Eigen::Map<const RowMatrixXf> chunk(x + begin * d, rows, d);
    centered.topRows(rows) = chunk.cast<double>().rowwise() - s.mean_.transpose();
    offset_sum += centered.topRows(rows).colwise().sum().transpose();
    g.selfadjointView<Eigen::Lower>().rankUpdate(centered.topRows(rows).transpose());
  }
  g.triangularView<Eigen::StrictlyUpper>() = g.transpose();
  s.covariance_ = (g - offset_sum * offset_sum.transpose() / static_cast<double>(n)) / static_cast<double>(n);
  OTGEN_RETURN_IF_ERROR(s.Factor(options));
  return s;
}

absl::StatusOr<MultivariateNormalSampler> MultivariateNormalSampler::FromMeanAndCovariance(
    const Eigen::VectorXd& mean, const Eigen::MatrixXd& covariance, nn::Shape sample_shape,
    const MultivariateNormalOptions& options) {
  OTGEN_RETURN_IF_ERROR(options.Validate());
  const int64_t d = mean.size();
  if (d < 1) return absl::InvalidArgumentError("MultivariateNormalSampler: mean must have at least one entry");
  if (covariance.rows() != d || covariance.cols() != d) {
    return absl::InvalidArgumentError(absl::StrCat("MultivariateNormalSampler: covariance is ", covariance.rows(),
                                                   " x ", covariance.cols(), ", expected ", d, " x ", d,
                                                   " to match the mean"));
  }
  if (!mean.allFinite() || !covariance.allFinite()) {
    return absl::InvalidArgumentError("MultivariateNormalSampler: mean and covariance must be finite");
  }
  const double scale = std::max(covariance.cwiseAbs().maxCoeff(), 1e-300);
  const double asymmetry = (covariance - covariance.transpose()).cwiseAbs().maxCoeff();
  if (asymmetry > 1e-6 * scale) {
    return absl::InvalidArgumentError(
        absl::StrCat("MultivariateNormalSampler: covariance is not symmetric (max |C - C^T| = ", asymmetry,
                     ", largest entry ", scale, ")"));
  }
  if (sample_shape.empty()) sample_shape = {d};
  if (nn::NumElements(sample_shape) != d) {
    return absl::InvalidArgumentError(absl::StrCat("MultivariateNormalSampler: sample shape ",
                                                   nn::ShapeToString(sample_shape), " does not hold ", d, " values"));
  }
  MultivariateNormalSampler s;
  s.shape_ = std::move(sample_shape);
  s.mean_ = mean;
  s.covariance_ = (covariance + covariance.transpose()) / 2.0;
  OTGEN_RETURN_IF_ERROR(s.Factor(options));
  return s;
}

absl::Status MultivariateNormalSampler::Factor(const MultivariateNormalOptions& options) {
  const int64_t d = mean_.size();
  Eigen::MatrixXd loaded = covariance_;
  loaded.diagonal().array() += options.diagonal_loading;
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(loaded, Eigen::ComputeEigenvectors);
  if (solver.info() != Eigen::Success) {
    return absl::InternalError(absl::StrCat("MultivariateNormalSampler: eigendecomposition of the ", d, " x ", d,
                                            " covariance did not converge"));
  }
  eigenvalues_ = solver.eigenvalues().cwiseMax(0.0);
  const double floor = options.relative_eigenvalue_floor * eigenvalues_.maxCoeff();
  int64_t first = 0;  // eigenvalues are increasing: keep [first, d)
  while (first < d && !(eigenvalues_[first] > floor)) ++first;
  const int64_t r = d - first;
  factor_.resize(r, d);
  for (int64_t k = 0; k < r; ++k) {
    const double root = std::sqrt(eigenvalues_[first + k]);
    factor_.row(k) = (root * solver.eigenvectors().col(first + k)).transpose().cast<float>();
  }
  mean_f_ = mean_.cast<float>();
  return absl::OkStatus();
}

void MultivariateNormalSampler::SampleInto(int64_t n, nn::Rng& rng, nn::Tensor* out) const {
  PrepareOutput(n, out);
  const int64_t d = dim(), r = rank();
  Eigen::Map<RowMatrixXf> x(out->data(), n, d);
  if (n == 0) return;
  if (r == 0) {
    x.rowwise() = mean_f_.transpose();
    return;
  }
  RowMatrixXf z(n, r);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < r; ++k) z(i, k) = rng.Normal();
  }
  x.noalias() = z * factor_;
  x.rowwise() += mean_f_.transpose();
}

}  // namespace otgen::data
