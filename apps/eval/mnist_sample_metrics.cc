#include "apps/eval/mnist_sample_metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "apps/eval/random_subset.h"
#include "data/mnist.h"
#include "nn/status_macros.h"

namespace otgen::eval {
namespace {

constexpr int64_t kImagePixels = 28 * 28;

bool IsImageShape(const nn::Shape& s) {
  if (s.size() == 2) return s[1] == kImagePixels;
  if (s.size() == 3) return s[1] == 28 && s[2] == 28;
  if (s.size() == 4) return s[1] == 1 && s[2] == 28 && s[3] == 28;
  return false;
}

Eigen::Map<const ot::RowMatrixXf> AsMatrix(const nn::Tensor& t) {
  return Eigen::Map<const ot::RowMatrixXf>(t.data(), t.dim(0), t.numel() / std::max<int64_t>(t.dim(0), 1));
}

// All examples of `dataset` as one tensor {N, example shape...}.
absl::StatusOr<nn::Tensor> AllExamples(const data::Dataset& dataset) {
  std::vector<int64_t> all(dataset.size());
  std::iota(all.begin(), all.end(), int64_t{0});
  return dataset.GetBatch(all);
}

}  // namespace

absl::Status MnistSampleMetricsOptions::Validate() const {
  if (score_splits < 1) {
    return absl::InvalidArgumentError(absl::StrCat("score_splits: expected >= 1, got ", score_splits));
  }
  OTGEN_RETURN_IF_ERROR(kid.Validate());
  if (!(confident_threshold >= 0.0 && confident_threshold <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("confident_threshold: expected a value in [0, 1], got ", confident_threshold));
  }
  if (max_samples < 2) return absl::InvalidArgumentError(absl::StrCat("max_samples: expected >= 2, got ", max_samples));
  if (max_samples < score_splits || max_samples < kid.subset_size) {
    return absl::InvalidArgumentError(absl::StrCat("max_samples: expected at least score_splits (", score_splits,
                                                   ") and kid.subset_size (", kid.subset_size, "), got ",
                                                   max_samples));
  }
  return absl::OkStatus();
}

std::vector<std::string> MnistSampleMetrics::RowColumns(const std::string& prefix) {
  std::vector<std::string> out;
  for (const char* name : {"cs", "cs_std", "fd", "kid", "kid_std", "class_kl", "confident"}) {
    out.push_back(absl::StrCat(prefix, name));
  }
  return out;
}

std::map<std::string, double> MnistSampleMetrics::AsRow(const std::string& prefix) const {
  const std::vector<std::string> names = RowColumns(prefix);
  const double values[] = {classifier_score.mean, classifier_score.stddev, frechet_distance, kid.mean,
                           kid.stddev,           histogram.kl_to_reference, confident_fraction};
  std::map<std::string, double> row;
  for (size_t i = 0; i < names.size(); ++i) row[names[i]] = values[i];
  return row;
}

std::string MnistSampleMetrics::BriefReport() const {
  return absl::StrFormat("CS %.4f +- %.4f, FD %.4f, KID %.5f +- %.5f, class KL %.5f, confident %.2f%% (n=%d)",
                         classifier_score.mean, classifier_score.stddev, frechet_distance, kid.mean, kid.stddev,
                         histogram.kl_to_reference, 100.0 * confident_fraction, num_samples);
}

absl::StatusOr<std::unique_ptr<MnistSampleScorer>> MnistSampleScorer::Create(const MnistSampleMetricsOptions& options,
                                                                              const std::string& mnist_dir) {
  OTGEN_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<MnistSampleScorer> scorer;
  {
    OTGEN_ASSIGN_OR_RETURN(std::unique_ptr<MnistClassifier> classifier,
                           LoadOrTrainMnistClassifier(DefaultClassifierDirectory(), mnist_dir));
    OTGEN_ASSIGN_OR_RETURN(data::InMemoryDataset train, data::LoadMnist(mnist_dir, data::Split::kTrain, {}));
    OTGEN_ASSIGN_OR_RETURN(data::InMemoryDataset test, data::LoadMnist(mnist_dir, data::Split::kTest, {}));
    OTGEN_ASSIGN_OR_RETURN(scorer, Create(std::move(classifier), train, test, options));
  }
  // The images and the classifier's activations are freed now. Their blocks would otherwise
  // stay in the tensor storage cache (sizes training never asks for) and add ~340 MiB to the
  // peak of an SDOT run, which builds its model after the scorer.
  nn::ReleaseCachedTensorMemory();
  return scorer;
}

absl::StatusOr<std::unique_ptr<MnistSampleScorer>> MnistSampleScorer::Create(
    std::unique_ptr<MnistClassifier> classifier, const data::Dataset& train, const data::Dataset& test,
    const MnistSampleMetricsOptions& options) {
  OTGEN_RETURN_IF_ERROR(options.Validate());
  if (classifier == nullptr) return absl::InvalidArgumentError("classifier: expected a classifier, got null");
  if (train.example_numel() != kImagePixels || !train.has_labels() ||
      train.num_classes() != MnistClassifier::kNumClasses || train.size() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "train: expected labelled 28x28 images with 10 classes, got ", train.size(), " examples of shape ",
        nn::ShapeToString(train.example_shape()), train.has_labels() ? "" : " without labels"));
  }
  const int64_t min_test = std::max<int64_t>(2, options.kid.subset_size);
  if (test.example_numel() != kImagePixels || test.size() < min_test) {
    return absl::InvalidArgumentError(absl::StrCat("test: expected at least ", min_test,
                                                   " 28x28 images (2 and kid.subset_size), got ", test.size(),
                                                   " examples of shape ", nn::ShapeToString(test.example_shape())));
  }
  auto scorer = absl::WrapUnique(new MnistSampleScorer());
  scorer->options_ = options;
  scorer->classifier_ = std::move(classifier);

  // Training class frequencies.
  std::vector<int> labels(train.size());
  for (int64_t i = 0; i < train.size(); ++i) labels[i] = train.label(i);
  OTGEN_ASSIGN_OR_RETURN(scorer->train_frequencies_, ClassFrequencies(labels, MnistClassifier::kNumClasses));

  // Reference features of the test set.
  {
    OTGEN_ASSIGN_OR_RETURN(nn::Tensor test_images, AllExamples(test));
    absl::MutexLock lock(&scorer->mu_);
    OTGEN_ASSIGN_OR_RETURN(ClassifierOutputs out, scorer->classifier_->Evaluate(test_images, PixelRange::kUnit));
    scorer->test_features_ = AsMatrix(out.features);
  }
  OTGEN_ASSIGN_OR_RETURN(scorer->test_stats_, FitGaussian(scorer->test_features_));

  // Real-vs-real baseline: a random training subset scored like generated samples.
  const int64_t k = std::min(options.max_samples, train.size());
  OTGEN_ASSIGN_OR_RETURN(nn::Tensor subset, train.GetBatch(RandomSubsetIndices(train.size(), k, options.baseline_seed)));
  absl::StatusOr<MnistSampleMetrics> baseline = scorer->Score(subset, PixelRange::kUnit);
  if (!baseline.ok()) {
    return absl::Status(baseline.status().code(),
                        absl::StrCat("real-vs-real baseline on ", k, " training images: ", baseline.status().message()));
  }
  scorer->baseline_ = *std::move(baseline);
  return scorer;
}

absl::StatusOr<MnistSampleMetrics> MnistSampleScorer::Score(const nn::Tensor& images, PixelRange range) const {
  if (!images.defined() || !IsImageShape(images.shape())) {
    return absl::InvalidArgumentError(
        absl::StrCat("samples: expected images [N, 1, 28, 28], [N, 28, 28] or [N, 784], got ",
                     images.defined() ? nn::ShapeToString(images.shape()) : "an undefined tensor"));
  }
  const int64_t n = std::min(images.dim(0), options_.max_samples);
  const int64_t needed = std::max<int64_t>({2, options_.score_splits, options_.kid.subset_size});
  if (n < needed) {
    return absl::InvalidArgumentError(absl::StrCat(
        "samples: expected at least ", needed, " images (score_splits = ", options_.score_splits,
        ", kid.subset_size = ", options_.kid.subset_size, "), got ", images.dim(0)));
  }
  const nn::Tensor used = images.Rows(0, n);
  const absl::Span<const float> pixels = used.span();
  for (size_t i = 0; i < pixels.size(); ++i) {
    if (!std::isfinite(pixels[i])) {
      return absl::InvalidArgumentError(absl::StrCat("samples: image ", i / kImagePixels, " has the non-finite value ",
                                                     pixels[i], " at pixel ", i % kImagePixels,
                                                     "; expected finite pixels"));
    }
  }
  ClassifierOutputs out;
  {
    absl::MutexLock lock(&mu_);
    OTGEN_ASSIGN_OR_RETURN(out, classifier_->Evaluate(used, range));
  }
  const Eigen::Map<const ot::RowMatrixXf> features = AsMatrix(out.features);
  const Eigen::Map<const ot::RowMatrixXf> probabilities = AsMatrix(out.probabilities);

  MnistSampleMetrics m;
  m.num_samples = n;
  OTGEN_ASSIGN_OR_RETURN(m.classifier_score, ClassifierScore(probabilities, {.splits = options_.score_splits}));
  OTGEN_ASSIGN_OR_RETURN(GaussianStats stats, FitGaussian(features));
  OTGEN_ASSIGN_OR_RETURN(m.frechet_distance, FrechetDistance(stats, test_stats_));
  OTGEN_ASSIGN_OR_RETURN(m.kid, KernelInceptionDistance(features, test_features_, options_.kid));
  OTGEN_ASSIGN_OR_RETURN(m.histogram, PredictedClassHistogram(probabilities, train_frequencies_));
  OTGEN_ASSIGN_OR_RETURN(m.confident_fraction, ConfidentFraction(probabilities, options_.confident_threshold));
  return m;
}

std::string FormatMnistReport(const MnistSampleMetrics& samples, const MnistSampleMetrics& baseline) {
  struct Line {
    std::string name, a, b;
  };
  auto ms = [](const MeanStd& v, int precision) {
    return absl::StrFormat("%.*f +- %.*f", precision, v.mean, precision, v.stddev);
  };
  const std::vector<Line> lines = {
      {"images", absl::StrCat(samples.num_samples), absl::StrCat(baseline.num_samples)},
      {absl::StrFormat("classifier score (%d splits)", samples.classifier_score.values.size()),
       ms(samples.classifier_score, 4), ms(baseline.classifier_score, 4)},
      {"Frechet distance (vs test)", absl::StrFormat("%.4f", samples.frechet_distance),
       absl::StrFormat("%.4f", baseline.frechet_distance)},
      {absl::StrFormat("KID (%d subsets)", samples.kid.values.size()), ms(samples.kid, 5), ms(baseline.kid, 5)},
      {"class KL to train freq.", absl::StrFormat("%.5f", samples.histogram.kl_to_reference),
       absl::StrFormat("%.5f", baseline.histogram.kl_to_reference)},
      {"confident fraction", absl::StrFormat("%.2f%%", 100.0 * samples.confident_fraction),
       absl::StrFormat("%.2f%%", 100.0 * baseline.confident_fraction)},
  };
  size_t w0 = 6, w1 = 7;
  for (const Line& l : lines) {
    w0 = std::max(w0, l.name.size());
    w1 = std::max(w1, l.a.size());
  }
  std::string out = absl::StrFormat("%-*s | %-*s | %s\n", w0, "metric", w1, "samples", "real-vs-real");
  absl::StrAppend(&out, std::string(w0, '-'), "-+-", std::string(w1, '-'), "-+-", std::string(12, '-'), "\n");
  for (const Line& l : lines) absl::StrAppend(&out, absl::StrFormat("%-*s | %-*s | %s\n", w0, l.name, w1, l.a, l.b));
  absl::StrAppend(&out, "class histogram, samples:      [", absl::StrJoin(samples.histogram.counts, " "), "]\n");
  absl::StrAppend(&out, "class histogram, real-vs-real: [", absl::StrJoin(baseline.histogram.counts, " "), "]\n");
  return out;
}

}  // namespace otgen::eval
