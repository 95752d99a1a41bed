// The MNIST sample-quality report of DATASETS.md ("Classifier metrics on MNIST"): everything
// an experiment prints about its generated images at the end of a run, computed with otgen's
// frozen MNIST classifier (apps/eval/mnist_classifier.h) and the metrics of
// apps/eval/feature_metrics.h, beside the real-vs-real baseline the protocol asks for.
//
// Protocol, for N = 10000 generated images (`max_samples`; more rows are cut to the first
// max_samples, fewer are scored as they are):
//   classifier score   exp(E_x KL(p(y|x) || p(y))) in 10 consecutive splits (mean +- std)
//   Frechet distance   between the Gaussians fitted to the 128-d penultimate-layer features
//                      of the samples and of the 10000 MNIST test images (||mu1 - mu2||^2 +
//                      tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2))
//   KID                unbiased MMD^2 with k(x, y) = (x.y / 128 + 1)^3 between the same two
//                      feature sets, averaged over 10 random subsets of 1000 (mean +- std)
//   class histogram    of the predicted digits, and its KL divergence to the class
//                      frequencies of the 60000 training labels
//   confident fraction share of samples whose top class probability exceeds 0.9
// The real-vs-real baseline applies exactly the same computation to `max_samples` training
// images (a uniformly random subset without replacement, seeded by `baseline_seed`) in
// place of generated ones: the values a perfect generator would reach up to sampling noise.
// It is computed once, when the scorer is created.
//
// The reference data are held as features: the test features (10000 x 128 floats) and their
// Gaussian fit, and the training class frequencies; the images themselves are not kept.
// Score and RealVsRealBaseline may be called from several threads (the classifier is
// serialized by a mutex).
//
// Usage (at the end of a run; `images` is a {10000, 1, 28, 28} tanh output):
//   OTGEN_ASSIGN_OR_RETURN(auto scorer, otgen::eval::MnistSampleScorer::Create({}));
//   OTGEN_ASSIGN_OR_RETURN(otgen::eval::MnistSampleMetrics m,
//                          scorer->Score(images, otgen::eval::PixelRange::kSymmetric));
//   OTGEN_ASSIGN_OR_RETURN(otgen::eval::MnistSampleMetrics real, scorer->RealVsRealBaseline());
//   std::printf("%s", otgen::eval::FormatMnistReport(m, real).c_str());
//   OTGEN_RETURN_IF_ERROR(log.Append(step, m.AsRow("eval_")));  // columns RowColumns("eval_")
#ifndef OTGEN_APPS_EVAL_MNIST_SAMPLE_METRICS_H_
#define OTGEN_APPS_EVAL_MNIST_SAMPLE_METRICS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "apps/eval/feature_metrics.h"
#include "apps/eval/mnist_classifier.h"
#include "data/dataset.h"
#include "nn/tensor.h"

namespace otgen::eval {

// The protocol's sample count.
inline constexpr int64_t kMnistProtocolSamples = 10000;

struct MnistSampleMetricsOptions {
  // Consecutive splits of the classifier score (>= 1; at most the number of samples).
  int score_splits = 10;
  // KID subsets: 10 pairs of 1000 rows, seed 0 (both sets need >= subset_size rows).
  KidOptions kid;
  // A sample is confident when its top class probability is strictly above this ([0, 1]).
  double confident_threshold = kDefaultConfidenceThreshold;
  // Samples scored (>= 2): longer inputs are cut to their first max_samples rows; also the
  // size of the training subset of the real-vs-real baseline.
  int64_t max_samples = kMnistProtocolSamples;
  // Seed of the nn::Rng choosing the baseline's training subset.
  uint64_t baseline_seed = 0;

  absl::Status Validate() const;
};

struct MnistSampleMetrics {
  int64_t num_samples = 0;     // rows scored
  MeanStd classifier_score;    // over score_splits splits
  double frechet_distance = 0.0;
  MeanStd kid;                 // over kid.subsets subsets
  ClassHistogram histogram;    // predicted classes; KL to the training class frequencies
  double confident_fraction = 0.0;

  // Flat values for metrics.csv, keys prefix + {"cs", "cs_std", "fd", "kid", "kid_std",
  // "class_kl", "confident"} (the order of RowColumns).
  std::map<std::string, double> AsRow(const std::string& prefix = "") const;
  static std::vector<std::string> RowColumns(const std::string& prefix = "");
  // E.g. "CS 9.81 +- 0.05, FD 1.234, KID 0.00123 +- 0.0004, class KL 0.0021, confident 97.3%".
  std::string BriefReport() const;
};

class MnistSampleScorer {
 public:
  // Production: the cached classifier (LoadOrTrainMnistClassifier(DefaultClassifierDirectory()),
  // which trains and caches it on first use) and MNIST train/test from `mnist_dir`, or from the
  // @mnist runfiles when empty (the binary needs `data = ["@mnist//:all"]`). The images are
  // not kept: their memory is handed back (nn::ReleaseCachedTensorMemory) before returning.
  static absl::StatusOr<std::unique_ptr<MnistSampleScorer>> Create(const MnistSampleMetricsOptions& options,
                                                                   const std::string& mnist_dir = "");
  // With a given classifier and reference sets: `train` labelled 28x28 images (784 floats per
  // example) with 10 classes, `test` 28x28 images with at least max(2, kid.subset_size)
  // examples; pixels of both in [0, 1]. All of `test` is the reference of FD and KID.
  static absl::StatusOr<std::unique_ptr<MnistSampleScorer>> Create(std::unique_ptr<MnistClassifier> classifier,
                                                                   const data::Dataset& train,
                                                                   const data::Dataset& test,
                                                                   const MnistSampleMetricsOptions& options);

  // Scores images {N, 1, 28, 28}, {N, 28, 28} or {N, 784} with pixels in `range`.
  // InvalidArgumentError naming "samples" for another shape, a non-finite value, or fewer
  // rows than the metrics need (max(2, score_splits, kid.subset_size)).
  absl::StatusOr<MnistSampleMetrics> Score(const nn::Tensor& images, PixelRange range) const;

  // The real-vs-real baseline (training subset vs the test set), computed by Create.
  absl::StatusOr<MnistSampleMetrics> RealVsRealBaseline() const { return baseline_; }

  const MnistSampleMetricsOptions& options() const { return options_; }
  // Number of reference (test) images.
  int64_t reference_size() const { return test_features_.rows(); }
  // Training class frequencies (10 entries).
  const std::vector<double>& train_class_frequencies() const { return train_frequencies_; }
  // The classifier's test accuracy recorded in its checkpoint (NaN if unknown).
  double classifier_test_accuracy() const { return classifier_->recorded_test_accuracy(); }

 private:
  MnistSampleScorer() = default;

  MnistSampleMetricsOptions options_;
  mutable absl::Mutex mu_;  // serializes the classifier (Evaluate is not thread-safe)
  std::unique_ptr<MnistClassifier> classifier_ ABSL_PT_GUARDED_BY(mu_);
  ot::RowMatrixXf test_features_;  // reference features, n_test x 128
  GaussianStats test_stats_;
  std::vector<double> train_frequencies_;
  MnistSampleMetrics baseline_;
};

// A three-column text table "metric | samples | real-vs-real" (plus the two class
// histograms), for printing.
std::string FormatMnistReport(const MnistSampleMetrics& samples, const MnistSampleMetrics& baseline);

}  // namespace otgen::eval

#endif  // OTGEN_APPS_EVAL_MNIST_SAMPLE_METRICS_H_
