// Prints MNIST statistics: examples, per-class counts, mean and std of the pixels.
//
//   bazel run //data:mnist_stats                       # the @mnist files from the runfiles
//   bazel run //data:mnist_stats -- --mnist_dir=/data/mnist --image_size=16
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "data/mnist.h"

ABSL_FLAG(std::string, mnist_dir, "",
          "Directory holding the four MNIST IDX files; empty: the @mnist files in the Bazel runfiles.");
ABSL_FLAG(int, image_size, 0, "Resample the images to this side by area averaging (0: keep 28).");

namespace otgen::data {
namespace {

absl::Status PrintStats(const std::string& dir, Split split, int image_size) {
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<InMemoryDataset> d = LoadMnist(dir, split, {.image_size = image_size});
  if (!d.ok()) return d.status();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double sum = 0, sum_sq = 0;
  for (float v : d->examples().span()) {
    sum += v;
    sum_sq += static_cast<double>(v) * v;
  }
  const double n = static_cast<double>(d->examples().numel());
  const double mean = sum / n;
  const double stddev = std::sqrt(std::max(0.0, sum_sq / n - mean * mean));
  std::printf("%s: %lld examples of shape %s, loaded in %.3f s from %s\n", std::string(SplitName(split)).c_str(),
              static_cast<long long>(d->size()), nn::ShapeToString(d->example_shape()).c_str(), seconds,
              d->name().c_str());
  std::printf("  pixels in [0, 1]: mean %.4f, std %.4f\n", mean, stddev);
  std::printf("  class counts:");
  const std::vector<int64_t> counts = d->ClassCounts();
  for (size_t k = 0; k < counts.size(); ++k) std::printf(" %zu:%lld", k, static_cast<long long>(counts[k]));
  std::printf("\n");
  return absl::OkStatus();
}

}  // namespace
}  // namespace otgen::data

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::string dir = absl::GetFlag(FLAGS_mnist_dir);
  if (dir.empty()) {
    absl::StatusOr<std::string> found = otgen::data::FindMnistDirectory(argv[0]);
    if (!found.ok()) {
      std::fprintf(stderr, "mnist_stats: %s\n", found.status().ToString().c_str());
      return 1;
    }
    dir = *found;
  }
  for (otgen::data::Split split : {otgen::data::Split::kTrain, otgen::data::Split::kTest}) {
    absl::Status status = otgen::data::PrintStats(dir, split, absl::GetFlag(FLAGS_image_size));
    if (!status.ok()) {
      std::fprintf(stderr, "mnist_stats: %s\n", status.ToString().c_str());
      return 1;
    }
  }
  return 0;
}
