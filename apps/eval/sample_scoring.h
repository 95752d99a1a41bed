// Scoring saved generator samples after the fact: the logic of `score_samples`
// (apps/eval/score_samples.cc), which reads a .npy file written by an experiment (or by
// Python) and prints every metric of DATASETS.md ("Evaluation protocols") that applies.
//
// Kinds of samples, recognized from the array shape:
//   MNIST images  [N, 784], [N, 1, 28, 28] or [N, 28, 28]  -> the classifier metrics of
//                 apps/eval/mnist_sample_metrics.h (classifier score, Frechet distance and KID
//                 against the test set, class histogram, confident fraction) beside the
//                 real-vs-real baseline
//   2-D points    [N, 2]  -> mode coverage (apps/eval/mode_coverage.h: modes captured, %HQ,
//                 reverse KL) against a Gaussian-mixture data set: grid25, grid25_wgangp,
//                 ring8, ring8_wgangp (the mode-coverage benchmark) or the 4gaussians pair
// `dataset` names the reference set ("mnist" or a mixture of data/synthetic2d.h); when it is
// empty the kind follows from the shape and, for points, the mixture is guessed: the samples
// are scored against every mixture and the one with the most high-quality samples wins (ties
// to the earlier name of data::Synthetic2dNames()); every candidate is listed in the report.
//
// Pixel range of images: "symmetric" ([-1, 1], tanh generators), "unit" ([0, 1]) or "auto":
// symmetric when some pixel is below -0.5 (the background of a tanh generator is near -1),
// unit otherwise ([0, 1] samples of a tanh generator undershoot 0 by a little).
//
// One CSV row per scored file (AppendScoresCsv): MNIST "n", the metrics of
// MnistSampleMetrics::RowColumns() and the baseline's with prefix "real_"; points "n",
// "modes_captured", "num_modes", "hq_fraction", "reverse_kl". The first row writes the
// header; later rows must match it.
//
// Errors are InvalidArgumentError naming the flag (--samples, --dataset, --pixel_range) and
// what was expected.
//
// Usage:
//   OTGEN_ASSIGN_OR_RETURN(nn::Tensor x, ReadNpyTensor(apps::ResolveInputPath(flag_samples)));
//   std::unique_ptr<MnistSampleScorer> scorer;  // created only for images
//   auto provider = [&]() -> absl::StatusOr<const MnistSampleScorer*> { ... };
//   OTGEN_ASSIGN_OR_RETURN(SampleScores s, ScoreSamples(x, {.dataset = flag_dataset}, provider));
//   std::printf("%s", s.Report().c_str());
#ifndef OTGEN_APPS_EVAL_SAMPLE_SCORING_H_
#define OTGEN_APPS_EVAL_SAMPLE_SCORING_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "apps/eval/mnist_classifier.h"
#include "apps/eval/mnist_sample_metrics.h"
#include "apps/eval/mode_coverage.h"
#include "nn/tensor.h"

namespace otgen::eval {

enum class SampleKind {
  kMnistImages,
  kPoints2d,
};

// The kind of samples of this shape; InvalidArgumentError naming --samples otherwise.
absl::StatusOr<SampleKind> SampleKindFromShape(const nn::Shape& shape);

// The mixture data sets of data/synthetic2d.h (the `dataset` values for points).
std::vector<std::string> MixtureDatasetNames();

struct SampleScoringOptions {
  // "" (guess), "mnist", or a name of MixtureDatasetNames().
  std::string dataset;
  // "auto", "symmetric" / "[-1,1]" or "unit" / "[0,1]" (images only).
  std::string pixel_range = "auto";
  ModeCoverageOptions mode_coverage;
};

struct SampleScores {
  SampleKind kind = SampleKind::kPoints2d;
  std::string dataset;          // the reference set used
  bool dataset_guessed = false;  // chosen from the shape / the best mixture fit
  int64_t num_samples = 0;      // rows in the input

  // Images.
  PixelRange pixel_range = PixelRange::kSymmetric;
  bool pixel_range_guessed = false;
  float min_value = 0.0f, max_value = 0.0f;  // of all input values
  std::optional<MnistSampleMetrics> mnist;
  std::optional<MnistSampleMetrics> mnist_baseline;

  // Points: the result for `dataset`, and with a guessed dataset every mixture tried.
  std::optional<ModeCoverageResult> coverage;
  std::vector<std::pair<std::string, ModeCoverageResult>> candidates;

  // The human-readable report (several lines).
  std::string Report() const;
  // CSV columns and values (see the header comment).
  std::vector<std::string> RowColumns() const;
  std::map<std::string, double> AsRow() const;
};

// Gives the MNIST scorer when the samples turn out to be images (it is created lazily:
// creating it loads MNIST and possibly trains the classifier).
using MnistScorerProvider = std::function<absl::StatusOr<const MnistSampleScorer*>()>;

// Scores `samples` (a tensor of one of the shapes above, finite values).
absl::StatusOr<SampleScores> ScoreSamples(const nn::Tensor& samples, const SampleScoringOptions& options,
                                          const MnistScorerProvider& mnist_scorer);

// Reads the .npy file at `path` (float32 or float64; see apps/eval/npy.h) and scores it;
// errors name the file.
absl::StatusOr<SampleScores> ScoreSamplesFile(const std::string& path, const SampleScoringOptions& options,
                                              const MnistScorerProvider& mnist_scorer);

// Appends the row of `scores` to the CSV at `path` (creating it with a header), rewriting the
// file atomically. FailedPreconditionError naming the file when its header differs.
absl::Status AppendScoresCsv(const std::string& path, const SampleScores& scores);

}  // namespace otgen::eval

#endif  // OTGEN_APPS_EVAL_SAMPLE_SCORING_H_
