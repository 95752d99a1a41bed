// Prints the real-vs-real baseline of the MNIST classifier metrics (DATASETS.md, "Classifier
// metrics on MNIST"): 10000 random training images scored against the 10000 test images
// exactly as generated samples are (apps/eval/mnist_sample_metrics.h):
//   bazel run -c opt //apps/eval:mnist_baseline [-- --baseline_seed=0 --threads=2]
// The classifier is loaded from the cache (trained on first use, about 7-9 minutes).
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "apps/eval/mnist_classifier.h"
#include "apps/eval/mnist_sample_metrics.h"
#include "apps/common/user_path.h"
#include "apps/eval/sample_scoring.h"
#include "nn/onednn_context.h"

ABSL_FLAG(std::string, mnist_dir, "", "Folder with the MNIST IDX files (default: the @mnist runfiles).");
ABSL_FLAG(uint64_t, baseline_seed, 0, "Seed choosing the 10000 training images.");
ABSL_FLAG(uint64_t, kid_seed, 0, "Seed of the KID subsets.");
ABSL_FLAG(int, threads, 0, "oneDNN threads (0 = all cores).");

namespace {

int Run() {
  const int threads = absl::GetFlag(FLAGS_threads);
  if (threads < 0) {
    std::fprintf(stderr, "mnist_baseline: --threads: expected >= 0, got %d\n", threads);
    return 2;
  }
  if (threads > 0) otgen::nn::SetNumThreads(threads);
  otgen::eval::MnistSampleMetricsOptions options;
  options.baseline_seed = absl::GetFlag(FLAGS_baseline_seed);
  options.kid.seed = absl::GetFlag(FLAGS_kid_seed);
  const absl::Time start = absl::Now();
  std::string mnist_dir = otgen::apps::ResolveInputPath(absl::GetFlag(FLAGS_mnist_dir));
  absl::StatusOr<std::unique_ptr<otgen::eval::MnistSampleScorer>> scorer =
      otgen::eval::MnistSampleScorer::Create(options, mnist_dir);
  if (!scorer.ok()) {
    std::fprintf(stderr, "mnist_baseline: %s\n", scorer.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<otgen::eval::MnistSampleMetrics> m = (*scorer)->RealVsRealBaseline();
  if (!m.ok()) {
    std::fprintf(stderr, "mnist_baseline: %s\n", m.status().ToString().c_str());
    return 1;
  }
  std::printf("MNIST real-vs-real baseline: %lld random training images (seed %llu) vs the %lld test images\n",
              static_cast<long long>(m->num_samples), static_cast<unsigned long long>(options.baseline_seed),
              static_cast<long long>((*scorer)->reference_size()));
  std::printf("classifier %s (test accuracy %.2f%%)\n",
              otgen::eval::ClassifierPath(otgen::eval::DefaultClassifierDirectory()).c_str(),
              100.0 * (*scorer)->classifier_test_accuracy());
  std::printf("classifier score (%d splits)     %.4f +- %.4f\n", options.score_splits, m->classifier_score.mean,
              m->classifier_score.stddev);
  std::printf("Frechet distance (vs test)      %.4f\n", m->frechet_distance);
  std::printf("KID (%d subsets of %lld, seed %llu) %.6f +- %.6f\n", options.kid.subsets,
              static_cast<long long>(options.kid.subset_size), static_cast<unsigned long long>(options.kid.seed),
              m->kid.mean, m->kid.stddev);
  std::printf("class histogram                 [%s]\n", absl::StrJoin(m->histogram.counts, " ").c_str());
  std::printf("class KL to train frequencies   %.6f\n", m->histogram.kl_to_reference);
  std::printf("confident fraction (p > %.2g)    %.2f%%\n", options.confident_threshold, 100.0 * m->confident_fraction);
  std::printf("(%.1f s)\n", absl::ToDoubleSeconds(absl::Now() - start));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return Run();
}
