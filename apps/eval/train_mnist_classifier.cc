// Trains otgen's MNIST classifier (apps/eval/mnist_classifier.h) and caches its weights:
//   bazel run //apps/eval:train_mnist_classifier [-- --output_dir=DIR --seed=1 --threads=2]
// Prints the test accuracy and the training time. The metric tools load the cached weights
// (training them on first use when absent).
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "apps/eval/mnist_classifier.h"
#include "data/mnist.h"
#include "nn/onednn_context.h"

ABSL_FLAG(std::string, output_dir, "", "Cache folder (default: $OTGEN_CACHE_DIR or ~/.cache/otgen).");
ABSL_FLAG(std::string, mnist_dir, "", "Folder with the MNIST IDX files (default: the @mnist runfiles).");
ABSL_FLAG(uint64_t, seed, 1, "Seed of the initialization and the batches.");
ABSL_FLAG(int, epochs, 5, "Training epochs (the last two at a tenth of the learning rate).");
ABSL_FLAG(int, threads, 0, "oneDNN threads (0 = all cores).");
ABSL_FLAG(bool, force, false, "Retrain even when cached weights exist.");

namespace {

int Run() {
  using otgen::eval::MnistClassifier;
  const int threads = absl::GetFlag(FLAGS_threads);
  if (threads < 0) {
    std::fprintf(stderr, "--threads: expected >= 0, got %d\n", threads);
    return 2;
  }
  if (threads > 0) otgen::nn::SetNumThreads(threads);
  std::string dir = absl::GetFlag(FLAGS_output_dir);
  if (dir.empty()) dir = otgen::eval::DefaultClassifierDirectory();
  const std::string path = otgen::eval::ClassifierPath(dir);
  if (absl::GetFlag(FLAGS_force)) std::remove(path.c_str());
  otgen::eval::MnistClassifierTrainingOptions options;
  options.seed = absl::GetFlag(FLAGS_seed);
  options.epochs = absl::GetFlag(FLAGS_epochs);
  std::string mnist_dir = absl::GetFlag(FLAGS_mnist_dir);
  const absl::Time start = absl::Now();
  auto classifier = otgen::eval::LoadOrTrainMnistClassifier(dir, mnist_dir, options);
  if (!classifier.ok()) {
    std::fprintf(stderr, "train_mnist_classifier: %s\n", classifier.status().ToString().c_str());
    return 1;
  }
  auto test = otgen::data::LoadMnist(mnist_dir, otgen::data::Split::kTest, {});
  if (!test.ok()) {
    std::fprintf(stderr, "train_mnist_classifier: %s\n", test.status().ToString().c_str());
    return 1;
  }
  auto accuracy = (*classifier)->Accuracy(*test);
  if (!accuracy.ok()) {
    std::fprintf(stderr, "train_mnist_classifier: %s\n", accuracy.status().ToString().c_str());
    return 1;
  }
  std::printf("MNIST classifier %s\ntest accuracy %.2f%%, %.1f s (training, or loading the cache)\n", path.c_str(),
              100 * *accuracy, absl::ToDoubleSeconds(absl::Now() - start));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return Run();
}
