#include "apps/eval/feature_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nn/random.h"
#include "nn/status_macros.h"

namespace otgen::eval {
namespace {

using Index = Eigen::Index;

// Mean and population standard deviation of `values` (non-empty).
MeanStd Summarize(std::vector<double> values) {
  MeanStd out;
  const double n = static_cast<double>(values.size());
  out.mean = std::accumulate(values.begin(), values.end(), 0.0) / n;
  double ss = 0.0;
  for (double v : values) ss += (v - out.mean) * (v - out.mean);
  out.stddev = std::sqrt(ss / n);
  out.values = std::move(values);
  return out;
}

absl::Status CheckFinite(const Eigen::Ref<const ot::RowMatrixXf>& m, absl::string_view name) {
  for (Index i = 0; i < m.rows(); ++i) {
    for (Index j = 0; j < m.cols(); ++j) {
      if (!std::isfinite(m(i, j))) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, ": entry (", i, ", ", j, ") is ", m(i, j), "; expected finite values"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckProbabilities(const Eigen::Ref<const ot::RowMatrixXf>& p, double tolerance) {
  if (p.rows() < 1 || p.cols() < 1) {
    return absl::InvalidArgumentError(absl::StrCat("probabilities: expected at least one row and one column, got ",
                                                   p.rows(), " x ", p.cols()));
  }
  for (Index i = 0; i < p.rows(); ++i) {
    double sum = 0.0;
    for (Index k = 0; k < p.cols(); ++k) {
      const float v = p(i, k);
      if (!(v >= 0.0f) || !std::isfinite(v)) {
        return absl::InvalidArgumentError(absl::StrCat("probabilities: entry (", i, ", ", k, ") is ", v,
                                                       "; expected finite non-negative probabilities"));
      }
      sum += v;
    }
    if (std::fabs(sum - 1.0) > tolerance) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "probabilities: row %d sums to %.8g; expected 1 within %g (softmax outputs)", i, sum, tolerance));
    }
  }
  return absl::OkStatus();
}

// Copies the rows `index` of `x` into a double matrix.
Eigen::MatrixXd GatherRows(const Eigen::Ref<const ot::RowMatrixXf>& x, const std::vector<int64_t>& index) {
  Eigen::MatrixXd out(static_cast<Index>(index.size()), x.cols());
  for (size_t r = 0; r < index.size(); ++r) out.row(static_cast<Index>(r)) = x.row(index[r]).cast<double>();
  return out;
}

// Sums of the polynomial kernel (a.b / d + 1)^3: off-diagonal sum over pairs of one set.
double OffDiagonalKernelSum(const Eigen::MatrixXd& a) {
  const Index m = a.rows();
  const double inv_d = 1.0 / static_cast<double>(a.cols());
  Eigen::MatrixXd gram = Eigen::MatrixXd::Zero(m, m);
  gram.selfadjointView<Eigen::Lower>().rankUpdate(a, inv_d);  // lower triangle of a a^T / d
  double sum = 0.0;
  for (Index j = 0; j < m; ++j) {
    for (Index i = j + 1; i < m; ++i) {
      const double k = gram(i, j) + 1.0;
      sum += k * k * k;
    }
  }
  return 2.0 * sum;
}

double CrossKernelSum(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  const double inv_d = 1.0 / static_cast<double>(a.cols());
  Eigen::MatrixXd gram(a.rows(), b.rows());
  gram.noalias() = inv_d * a * b.transpose();
  return (gram.array() + 1.0).cube().sum();
}

double Mmd2(const Eigen::MatrixXd& x, const Eigen::MatrixXd& y) {
  const double nx = static_cast<double>(x.rows());
  const double ny = static_cast<double>(y.rows());
  return OffDiagonalKernelSum(x) / (nx * (nx - 1.0)) + OffDiagonalKernelSum(y) / (ny * (ny - 1.0)) -
         2.0 * CrossKernelSum(x, y) / (nx * ny);
}

template <typename Label>
absl::StatusOr<std::vector<double>> Frequencies(absl::Span<const Label> labels, int num_classes) {
  if (num_classes < 1) {
    return absl::InvalidArgumentError(absl::StrCat("num_classes: expected >= 1, got ", num_classes));
  }
  if (labels.empty()) return absl::InvalidArgumentError("labels: expected at least one label, got none");
  std::vector<double> f(num_classes, 0.0);
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= num_classes) {
      return absl::InvalidArgumentError(absl::StrCat("labels: label ", labels[i], " at index ", i,
                                                     " is outside [0, ", num_classes, ")"));
    }
    f[static_cast<size_t>(labels[i])] += 1.0;
  }
  for (double& v : f) v /= static_cast<double>(labels.size());
  return f;
}

absl::Status CheckDistribution(absl::Span<const double> p, absl::string_view name) {
  double sum = 0.0;
  for (size_t k = 0; k < p.size(); ++k) {
    if (!(p[k] >= 0.0) || !std::isfinite(p[k])) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": entry ", k, " is ", p[k], "; expected finite non-negative probabilities"));
    }
    sum += p[k];
  }
  if (std::fabs(sum - 1.0) > 1e-6) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: sums to %.10g; expected 1 within 1e-6", name, sum));
  }
  return absl::OkStatus();
}

}  // namespace

std::string MeanStd::ToString() const { return absl::StrFormat("%.6g +- %.3g", mean, stddev); }

std::string ClassHistogram::ToString() const {
  return absl::StrFormat("class histogram [%s], KL to reference %.6g", absl::StrJoin(counts, " "), kl_to_reference);
}

absl::Status ClassifierScoreOptions::Validate() const {
  if (splits < 1) return absl::InvalidArgumentError(absl::StrCat("splits: expected >= 1, got ", splits));
  if (!(probability_sum_tolerance > 0.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("probability_sum_tolerance: expected > 0, got ", probability_sum_tolerance));
  }
  return absl::OkStatus();
}

absl::StatusOr<MeanStd> ClassifierScore(const Eigen::Ref<const ot::RowMatrixXf>& probabilities,
                                        const ClassifierScoreOptions& options) {
  OTGEN_RETURN_IF_ERROR(options.Validate());
  OTGEN_RETURN_IF_ERROR(CheckProbabilities(probabilities, options.probability_sum_tolerance));
  const int64_t n = probabilities.rows();
  const Index k = probabilities.cols();
  if (n < options.splits) {
    return absl::InvalidArgumentError(
        absl::StrCat("probabilities: ", n, " rows for ", options.splits, " splits; expected at least one row per split"));
  }
  std::vector<double> scores;
  scores.reserve(options.splits);
  Eigen::VectorXd marginal(k);
  for (int s = 0; s < options.splits; ++s) {
    const int64_t begin = s * n / options.splits;
    const int64_t end = (s + 1) * n / options.splits;
    marginal.setZero();
    for (int64_t i = begin; i < end; ++i) marginal += probabilities.row(i).transpose().cast<double>();
    marginal /= static_cast<double>(end - begin);
    double kl_sum = 0.0;
    for (int64_t i = begin; i < end; ++i) {
      double kl = 0.0;
      for (Index c = 0; c < k; ++c) {
        const double p = probabilities(i, c);
        if (p > 0.0) kl += p * (std::log(p) - std::log(marginal[c]));
      }
      kl_sum += kl;
    }
    scores.push_back(std::exp(kl_sum / static_cast<double>(end - begin)));
  }
  return Summarize(std::move(scores));
}

absl::StatusOr<GaussianStats> FitGaussian(const Eigen::Ref<const ot::RowMatrixXf>& features) {
  const Index n = features.rows();
  const Index d = features.cols();
  if (n < 2 || d < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("features: expected at least 2 rows and 1 column, got ", n, " x ", d));
  }
  OTGEN_RETURN_IF_ERROR(CheckFinite(features, "features"));
  GaussianStats out;
  out.count = n;
  out.mean = features.cast<double>().colwise().sum().transpose() / static_cast<double>(n);
  // Centred rows in blocks (bounded memory), accumulated with a symmetric rank-k update.
  constexpr Index kBlock = 1024;
  Eigen::MatrixXd block;
  out.covariance = Eigen::MatrixXd::Zero(d, d);
  for (Index begin = 0; begin < n; begin += kBlock) {
    const Index rows = std::min(kBlock, n - begin);
    block = features.middleRows(begin, rows).cast<double>();
    block.rowwise() -= out.mean.transpose();
    out.covariance.selfadjointView<Eigen::Lower>().rankUpdate(block.transpose());
  }
  out.covariance = out.covariance.selfadjointView<Eigen::Lower>();
  out.covariance /= static_cast<double>(n - 1);
  return out;
}

namespace internal {

Eigen::MatrixXd PsdSqrt(const Eigen::MatrixXd& s) {
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(s);
  const Eigen::VectorXd root = eig.eigenvalues().cwiseMax(0.0).cwiseSqrt();
  return eig.eigenvectors() * root.asDiagonal() * eig.eigenvectors().transpose();
}

}  // namespace internal

absl::StatusOr<double> FrechetDistance(const GaussianStats& a, const GaussianStats& b) {
  const Index d = a.mean.size();
  if (d < 1 || b.mean.size() != d || a.covariance.rows() != d || a.covariance.cols() != d ||
      b.covariance.rows() != d || b.covariance.cols() != d) {
    return absl::InvalidArgumentError(absl::StrCat(
        "gaussians: expected equal dimensions d >= 1 with d x d covariances, got means of size ", a.mean.size(),
        " and ", b.mean.size(), ", covariances ", a.covariance.rows(), " x ", a.covariance.cols(), " and ",
        b.covariance.rows(), " x ", b.covariance.cols()));
  }
  if (!a.mean.allFinite() || !b.mean.allFinite() || !a.covariance.allFinite() || !b.covariance.allFinite()) {
    return absl::InvalidArgumentError("gaussians: expected finite means and covariances");
  }
  const Eigen::MatrixXd root_a = internal::PsdSqrt(a.covariance);
  Eigen::MatrixXd middle = root_a * b.covariance * root_a;
  middle = 0.5 * (middle + middle.transpose()).eval();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(middle, Eigen::EigenvaluesOnly);
  const double trace_root = eig.eigenvalues().cwiseMax(0.0).cwiseSqrt().sum();
  return (a.mean - b.mean).squaredNorm() + a.covariance.trace() + b.covariance.trace() - 2.0 * trace_root;
}

absl::StatusOr<double> FrechetDistance(const Eigen::Ref<const ot::RowMatrixXf>& features_a,
                                       const Eigen::Ref<const ot::RowMatrixXf>& features_b) {
  if (features_a.cols() != features_b.cols()) {
    return absl::InvalidArgumentError(absl::StrCat("features: expected equal dimensions, got ", features_a.cols(),
                                                   " and ", features_b.cols()));
  }
  absl::StatusOr<GaussianStats> a = FitGaussian(features_a);
  if (!a.ok()) return absl::InvalidArgumentError(absl::StrCat("features_a: ", a.status().message()));
  absl::StatusOr<GaussianStats> b = FitGaussian(features_b);
  if (!b.ok()) return absl::InvalidArgumentError(absl::StrCat("features_b: ", b.status().message()));
  return FrechetDistance(*a, *b);
}

absl::Status KidOptions::Validate() const {
  if (subsets < 1) return absl::InvalidArgumentError(absl::StrCat("subsets: expected >= 1, got ", subsets));
  if (subset_size < 2) {
    return absl::InvalidArgumentError(absl::StrCat("subset_size: expected >= 2, got ", subset_size));
  }
  return absl::OkStatus();
}

absl::StatusOr<double> UnbiasedPolynomialMmd2(const Eigen::Ref<const ot::RowMatrixXf>& x,
                                              const Eigen::Ref<const ot::RowMatrixXf>& y) {
  if (x.rows() < 2 || y.rows() < 2 || x.cols() < 1 || x.cols() != y.cols()) {
    return absl::InvalidArgumentError(absl::StrCat("x, y: expected at least 2 rows each and equal dimensions >= 1, got ",
                                                   x.rows(), " x ", x.cols(), " and ", y.rows(), " x ", y.cols()));
  }
  OTGEN_RETURN_IF_ERROR(CheckFinite(x, "x"));
  OTGEN_RETURN_IF_ERROR(CheckFinite(y, "y"));
  return Mmd2(x.cast<double>(), y.cast<double>());
}

absl::StatusOr<MeanStd> KernelInceptionDistance(const Eigen::Ref<const ot::RowMatrixXf>& x,
                                                const Eigen::Ref<const ot::RowMatrixXf>& y,
                                                const KidOptions& options) {
  OTGEN_RETURN_IF_ERROR(options.Validate());
  if (x.cols() < 1 || x.cols() != y.cols()) {
    return absl::InvalidArgumentError(
        absl::StrCat("x, y: expected equal feature dimensions >= 1, got ", x.cols(), " and ", y.cols()));
  }
  if (x.rows() < options.subset_size || y.rows() < options.subset_size) {
    return absl::InvalidArgumentError(absl::StrCat("x, y: ", x.rows(), " and ", y.rows(),
                                                   " rows; expected at least subset_size = ", options.subset_size,
                                                   " each (lower KidOptions::subset_size for small sets)"));
  }
  OTGEN_RETURN_IF_ERROR(CheckFinite(x, "x"));
  OTGEN_RETURN_IF_ERROR(CheckFinite(y, "y"));
  nn::Rng rng(options.seed);
  const int64_t m = options.subset_size;
  std::vector<int64_t> perm_x(x.rows()), perm_y(y.rows());
  // Draws m distinct indices: the first m steps of a Fisher-Yates shuffle of `perm`.
  auto draw = [&](std::vector<int64_t>& perm) {
    std::iota(perm.begin(), perm.end(), int64_t{0});
    const uint64_t n = perm.size();
    for (int64_t i = 0; i < m; ++i) {
      const uint64_t j = static_cast<uint64_t>(i) + rng.UniformInt(n - static_cast<uint64_t>(i));
      std::swap(perm[i], perm[j]);
    }
    return std::vector<int64_t>(perm.begin(), perm.begin() + m);
  };
  std::vector<double> values;
  values.reserve(options.subsets);
  for (int s = 0; s < options.subsets; ++s) {
    const std::vector<int64_t> ix = draw(perm_x);
    const std::vector<int64_t> iy = draw(perm_y);
    values.push_back(Mmd2(GatherRows(x, ix), GatherRows(y, iy)));
  }
  return Summarize(std::move(values));
}

std::vector<int> PredictedClasses(const Eigen::Ref<const ot::RowMatrixXf>& probabilities) {
  std::vector<int> out(probabilities.rows(), 0);
  for (Index i = 0; i < probabilities.rows(); ++i) {
    int best = 0;
    for (Index k = 1; k < probabilities.cols(); ++k) {
      if (probabilities(i, k) > probabilities(i, best)) best = static_cast<int>(k);
    }
    out[i] = best;
  }
  return out;
}

absl::StatusOr<std::vector<double>> ClassFrequencies(absl::Span<const int> labels, int num_classes) {
  return Frequencies(labels, num_classes);
}
absl::StatusOr<std::vector<double>> ClassFrequencies(absl::Span<const int64_t> labels, int num_classes) {
  return Frequencies(labels, num_classes);
}

absl::StatusOr<double> KlDivergence(absl::Span<const double> p, absl::Span<const double> q) {
  if (p.size() != q.size() || p.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("p, q: expected equal non-zero sizes, got ", p.size(), " and ", q.size()));
  }
  OTGEN_RETURN_IF_ERROR(CheckDistribution(p, "p"));
  OTGEN_RETURN_IF_ERROR(CheckDistribution(q, "q"));
  double kl = 0.0;
  for (size_t k = 0; k < p.size(); ++k) {
    if (p[k] == 0.0) continue;
    if (q[k] == 0.0) return std::numeric_limits<double>::infinity();
    kl += p[k] * std::log(p[k] / q[k]);
  }
  return kl;
}

absl::StatusOr<ClassHistogram> PredictedClassHistogram(const Eigen::Ref<const ot::RowMatrixXf>& probabilities,
                                                       absl::Span<const double> reference) {
  if (probabilities.rows() < 1 || probabilities.cols() != static_cast<Index>(reference.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("probabilities: expected at least one row of ", reference.size(),
                     " columns (the reference's classes), got ", probabilities.rows(), " x ", probabilities.cols()));
  }
  OTGEN_RETURN_IF_ERROR(CheckFinite(probabilities, "probabilities"));
  absl::Status reference_ok = CheckDistribution(reference, "reference");
  if (!reference_ok.ok()) return reference_ok;
  ClassHistogram h;
  h.counts.assign(reference.size(), 0);
  for (int c : PredictedClasses(probabilities)) ++h.counts[c];
  h.frequencies.resize(reference.size());
  for (size_t k = 0; k < reference.size(); ++k) {
    h.frequencies[k] = static_cast<double>(h.counts[k]) / static_cast<double>(probabilities.rows());
  }
  OTGEN_ASSIGN_OR_RETURN(h.kl_to_reference, KlDivergence(h.frequencies, reference));
  return h;
}

absl::StatusOr<double> ConfidentFraction(const Eigen::Ref<const ot::RowMatrixXf>& probabilities, double threshold) {
  if (!(threshold >= 0.0 && threshold <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("threshold: expected a value in [0, 1], got ", threshold));
  }
  if (probabilities.rows() < 1 || probabilities.cols() < 1) {
    return absl::InvalidArgumentError(absl::StrCat("probabilities: expected at least one row and one column, got ",
                                                   probabilities.rows(), " x ", probabilities.cols()));
  }
  OTGEN_RETURN_IF_ERROR(CheckFinite(probabilities, "probabilities"));
  int64_t confident = 0;
  for (Index i = 0; i < probabilities.rows(); ++i) {
    if (static_cast<double>(probabilities.row(i).maxCoeff()) > threshold) ++confident;
  }
  return static_cast<double>(confident) / static_cast<double>(probabilities.rows());
}

}  // namespace otgen::eval
