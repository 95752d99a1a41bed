// Sample-quality metrics computed from a frozen classifier's outputs on generated images:
// the classifier score (Inception score protocol), the Frechet distance between feature
// Gaussians (FID protocol), the kernel distance KID, the histogram of predicted classes and
// its KL divergence to the training class frequencies, and the fraction of confident
// predictions. The classifier itself is not part of this library: every function takes its
// outputs as matrices, one sample per row (`ot::RowMatrixXf`, n x K probabilities or n x d
// penultimate-layer features), so the metrics are testable on hand-made inputs.
// Protocol (DATASETS.md, "Classifier metrics on MNIST"): 10000 samples, 10 splits for the
// score, 10000 generated vs the 10000 test images for the Frechet distance, 10 subsets of
// 1000 for KID; always report the real-vs-real baseline (train vs test) beside a model.
// All arithmetic is in double.
//
// Classifier score (Salimans et al. 2016, "Improved techniques for training GANs"; with an
// MNIST classifier in place of Inception): the rows are cut into `splits` consecutive,
// near-equal parts (part s = rows [s n / S, (s + 1) n / S)); within a part, with
// p(y) = mean of its rows,
//     score_s = exp( mean_x KL(p(y|x) || p(y)) ),  KL(p || q) = sum_k p_k (log p_k - log q_k),
// with 0 log 0 = 0. The result is the mean and the population standard deviation (numpy's
// np.std, ddof = 0, as the reference code reports) of the S split scores. It lies in
// [1, K]: K when each part has confident predictions spread uniformly over K classes, 1 when
// all predictions are equal.
//
// Frechet distance (Heusel et al. 2017, FID): features are summarized by their mean mu and
// covariance S (unbiased, divided by n - 1 as np.cov), and
//     FD = ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2),
// the squared 2-Wasserstein distance between N(mu1, S1) and N(mu2, S2). Both matrix square
// roots are computed from symmetric eigendecompositions (Eigen::SelfAdjointEigenSolver, in
// double), with eigenvalues below 0 (rounding, or rank-deficient covariances when n <= d)
// clamped to 0; tr((S1^1/2 S2 S1^1/2)^1/2) is the sum of the square roots of the clamped
// eigenvalues of the symmetrized product. (It equals tr((S1 S2)^1/2), the form computed by
// scipy.linalg.sqrtm in the reference code.) No clamping of the final value.
//
// KID (Binkowski et al. 2018, "Demystifying MMD GANs"): with the polynomial kernel
// k(x, y) = (x.y / d + 1)^3 on d-dimensional features, the unbiased estimator
//     MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1))
//               - 2 sum_{i, j} k(x_i, y_j) / m^2
// on `subsets` pairs of random subsets of m = `subset_size` rows of each set (drawn without
// replacement, independently per subset, from an nn::Rng seeded with `seed`); the result is
// the mean and population standard deviation over the subsets. The estimator is unbiased, so
// values near 0 (possibly slightly negative) mean indistinguishable sets.
//
// Class histogram: each row's predicted class is its argmax (the first maximal entry); the
// histogram's frequencies f are compared to the training class frequencies r by
// KL(f || r) = sum_k f_k log(f_k / r_k) (0 log 0 = 0; +infinity if some r_k = 0 < f_k).
//
// Confident fraction: the fraction of rows whose largest probability is strictly above a
// threshold (default 0.9): a sharpness measure of generated samples under the classifier.
//
// Usage:
//   otgen::ot::RowMatrixXf probs = ...;     // n x 10 softmax outputs
//   otgen::ot::RowMatrixXf fake = ..., real = ...;  // n x d penultimate features
//   OTGEN_ASSIGN_OR_RETURN(otgen::eval::MeanStd cs, otgen::eval::ClassifierScore(probs));
//   OTGEN_ASSIGN_OR_RETURN(double fd, otgen::eval::FrechetDistance(fake, real));
//   OTGEN_ASSIGN_OR_RETURN(otgen::eval::MeanStd kid, otgen::eval::KernelInceptionDistance(fake, real));
//   OTGEN_ASSIGN_OR_RETURN(std::vector<double> train_freq,
//                          otgen::eval::ClassFrequencies(train_labels, 10));
//   OTGEN_ASSIGN_OR_RETURN(otgen::eval::ClassHistogram h,
//                          otgen::eval::PredictedClassHistogram(probs, train_freq));
#ifndef OTGEN_APPS_EVAL_FEATURE_METRICS_H_
#define OTGEN_APPS_EVAL_FEATURE_METRICS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "Eigen/Dense"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "ot/types.h"

namespace otgen::eval {

// A statistic repeated over splits or subsets.
struct MeanStd {
  double mean = 0.0;
  double stddev = 0.0;         // population standard deviation (ddof = 0) of `values`
  std::vector<double> values;  // one per split / subset
  // E.g. "9.8123 +- 0.0456".
  std::string ToString() const;
};

struct ClassifierScoreOptions {
  // Number of consecutive splits (>= 1); each must hold at least one row.
  int splits = 10;
  // Each row must be non-negative and sum to 1 within this tolerance (> 0).
  double probability_sum_tolerance = 1e-3;

  absl::Status Validate() const;
};

// The classifier score exp(E_x KL(p(y|x) || p(y))) over splits of `probabilities` (n x K,
// rows are distributions over K >= 1 classes, n >= splits).
absl::StatusOr<MeanStd> ClassifierScore(const Eigen::Ref<const ot::RowMatrixXf>& probabilities,
                                        const ClassifierScoreOptions& options = {});

// Mean and unbiased covariance of a feature set.
struct GaussianStats {
  Eigen::VectorXd mean;        // d
  Eigen::MatrixXd covariance;  // d x d, divided by count - 1
  int64_t count = 0;
};

// Fits mean and covariance to `features` (n x d, n >= 2, finite entries).
absl::StatusOr<GaussianStats> FitGaussian(const Eigen::Ref<const ot::RowMatrixXf>& features);

// The Frechet distance between two Gaussians (same dimension, symmetric covariances).
absl::StatusOr<double> FrechetDistance(const GaussianStats& a, const GaussianStats& b);
// The Frechet distance between the Gaussians fitted to two feature sets (n_a x d, n_b x d).
absl::StatusOr<double> FrechetDistance(const Eigen::Ref<const ot::RowMatrixXf>& features_a,
                                       const Eigen::Ref<const ot::RowMatrixXf>& features_b);

struct KidOptions {
  // Number of random subset pairs (>= 1).
  int subsets = 10;
  // Rows per subset (>= 2); both sets need at least this many rows.
  int64_t subset_size = 1000;
  // Seed of the nn::Rng drawing the subsets.
  uint64_t seed = 0;

  absl::Status Validate() const;
};

// KID: the unbiased polynomial-kernel MMD^2 averaged over random subsets (x: n_x x d,
// y: n_y x d, finite entries).
absl::StatusOr<MeanStd> KernelInceptionDistance(const Eigen::Ref<const ot::RowMatrixXf>& x,
                                                const Eigen::Ref<const ot::RowMatrixXf>& y,
                                                const KidOptions& options = {});

// One unbiased MMD^2 estimate with k(x, y) = (x.y / d + 1)^3 on all rows of x (n_x >= 2) and
// y (n_y >= 2): sum_{i!=j} k(x_i,x_j)/(n_x(n_x-1)) + sum_{i!=j} k(y_i,y_j)/(n_y(n_y-1))
// - 2 sum_ij k(x_i,y_j)/(n_x n_y).
absl::StatusOr<double> UnbiasedPolynomialMmd2(const Eigen::Ref<const ot::RowMatrixXf>& x,
                                              const Eigen::Ref<const ot::RowMatrixXf>& y);

// Argmax of each row (the first maximal entry); rows must be non-empty.
std::vector<int> PredictedClasses(const Eigen::Ref<const ot::RowMatrixXf>& probabilities);

// Frequencies of labels in [0, num_classes) (e.g. the training class frequencies); at least
// one label.
absl::StatusOr<std::vector<double>> ClassFrequencies(absl::Span<const int> labels, int num_classes);
absl::StatusOr<std::vector<double>> ClassFrequencies(absl::Span<const int64_t> labels, int num_classes);

// KL(p || q) = sum_k p_k log(p_k / q_k), 0 log 0 = 0, +infinity if q_k = 0 < p_k. Both must be
// non-negative, of equal size, and sum to 1 within 1e-6 (they are not renormalized).
absl::StatusOr<double> KlDivergence(absl::Span<const double> p, absl::Span<const double> q);

struct ClassHistogram {
  std::vector<int64_t> counts;       // predictions per class
  std::vector<double> frequencies;   // counts / n
  double kl_to_reference = 0.0;      // KL(frequencies || reference)
  // E.g. "class histogram [1003 998 ...], KL to reference 0.0012".
  std::string ToString() const;
};

// Histogram of PredictedClasses(probabilities) (n >= 1 rows of K = reference.size() columns)
// and its KL divergence to `reference` (e.g. ClassFrequencies of the training labels).
absl::StatusOr<ClassHistogram> PredictedClassHistogram(const Eigen::Ref<const ot::RowMatrixXf>& probabilities,
                                                       absl::Span<const double> reference);

// Fraction of rows whose largest entry is strictly greater than `threshold` (in [0, 1]).
inline constexpr double kDefaultConfidenceThreshold = 0.9;
absl::StatusOr<double> ConfidentFraction(const Eigen::Ref<const ot::RowMatrixXf>& probabilities,
                                         double threshold = kDefaultConfidenceThreshold);

namespace internal {
// The square root of a symmetric positive semi-definite matrix through its eigendecomposition,
// negative eigenvalues clamped to 0.
Eigen::MatrixXd PsdSqrt(const Eigen::MatrixXd& s);
}  // namespace internal

}  // namespace otgen::eval

#endif  // OTGEN_APPS_EVAL_FEATURE_METRICS_H_
