// Scores saved generator samples with the evaluation protocols of DATASETS.md:
//   bazel run -c opt //apps/eval:score_samples -- --samples=path.npy
//       [--dataset=mnist|grid25|grid25_wgangp|ring8|ring8_wgangp|4gaussians_target|...]
//       [--pixel_range=auto|symmetric|unit] [--output=metrics.csv]
// MNIST images ([N, 784], [N, 1, 28, 28], [N, 28, 28]) get the classifier metrics beside the
// real-vs-real baseline; 2-D points ([N, 2]) get mode coverage. Without --dataset the kind
// follows from the shape (and the best-fitting mixture is chosen for points). --output
// appends one CSV row (header written on first use). Relative paths are taken relative to
// the directory `bazel run` was called from. Exit status 0 on success, 1 when the samples
// cannot be read or scored, 2 for a missing --samples or a bad --threads. See
// apps/eval/sample_scoring.h.
#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "apps/eval/mnist_sample_metrics.h"
#include "apps/common/user_path.h"
#include "apps/eval/sample_scoring.h"
#include "nn/onednn_context.h"

ABSL_FLAG(std::string, samples, "", "The .npy file of samples (float32 or float64).");
ABSL_FLAG(std::string, dataset, "", "Reference data set: mnist or a 2-D mixture name (default: from the shape).");
ABSL_FLAG(std::string, pixel_range, "auto", "Pixel range of images: auto, symmetric ([-1,1]) or unit ([0,1]).");
ABSL_FLAG(std::string, output, "", "CSV file to append the metrics to (optional).");
ABSL_FLAG(std::string, mnist_dir, "", "Folder with the MNIST IDX files (default: the @mnist runfiles).");
ABSL_FLAG(int, threads, 0, "oneDNN threads (0 = all cores).");

namespace {

int Run() {
  using otgen::eval::MnistSampleScorer;
  const std::string samples = absl::GetFlag(FLAGS_samples);
  if (samples.empty()) {
    std::fprintf(stderr, "score_samples: --samples: expected the path of a .npy file\n");
    return 2;
  }
  const int threads = absl::GetFlag(FLAGS_threads);
  if (threads < 0) {
    std::fprintf(stderr, "score_samples: --threads: expected >= 0, got %d\n", threads);
    return 2;
  }
  if (threads > 0) otgen::nn::SetNumThreads(threads);

  std::unique_ptr<MnistSampleScorer> scorer;
  std::string mnist_dir = otgen::apps::ResolveInputPath(absl::GetFlag(FLAGS_mnist_dir));
  auto provider = [&]() -> absl::StatusOr<const MnistSampleScorer*> {
    if (scorer == nullptr) {
      absl::StatusOr<std::unique_ptr<MnistSampleScorer>> created = MnistSampleScorer::Create({}, mnist_dir);
      if (!created.ok()) return created.status();
      scorer = *std::move(created);
    }
    return scorer.get();
  };
  otgen::eval::SampleScoringOptions options;
  options.dataset = absl::GetFlag(FLAGS_dataset);
  options.pixel_range = absl::GetFlag(FLAGS_pixel_range);
  const std::string path = otgen::apps::ResolveInputPath(samples);
  absl::StatusOr<otgen::eval::SampleScores> scores = otgen::eval::ScoreSamplesFile(path, options, provider);
  if (!scores.ok()) {
    std::fprintf(stderr, "score_samples: %s\n", std::string(scores.status().message()).c_str());
    return 1;
  }
  std::printf("%s\n%s", path.c_str(), scores->Report().c_str());
  const std::string output = absl::GetFlag(FLAGS_output);
  if (!output.empty()) {
    const std::string csv = otgen::apps::ResolveOutputPath(output);
    const absl::Status appended = otgen::eval::AppendScoresCsv(csv, *scores);
    if (!appended.ok()) {
      std::fprintf(stderr, "score_samples: --output: %s\n", appended.ToString().c_str());
      return 1;
    }
    std::printf("appended a row to %s\n", csv.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return Run();
}
