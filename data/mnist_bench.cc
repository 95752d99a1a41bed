// Loading MNIST: `bazel run -c opt //data:mnist_bench`.
#include <string>

#include "benchmark/benchmark.h"
#include "data/mnist.h"

namespace otgen::data {
namespace {

void BM_LoadMnist(benchmark::State& state, Split split, MnistOptions options) {
  absl::StatusOr<std::string> dir = FindMnistDirectory();
  if (!dir.ok()) {
    state.SkipWithError(dir.status().ToString().c_str());
    return;
  }
  int64_t examples = 0;
  for (auto _ : state) {
    absl::StatusOr<InMemoryDataset> d = LoadMnist(*dir, split, options);
    if (!d.ok()) {
      state.SkipWithError(d.status().ToString().c_str());
      return;
    }
    examples = d->size();
    benchmark::DoNotOptimize(d->examples().data());
  }
  state.SetItemsProcessed(state.iterations() * examples);
  state.SetBytesProcessed(state.iterations() * examples * (784 + 1));
}

BENCHMARK_CAPTURE(BM_LoadMnist, train_28x28_unit, Split::kTrain, MnistOptions{})->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_LoadMnist, train_28x28_symmetric, Split::kTrain, MnistOptions{.scaling = PixelScaling::kSymmetric})
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_LoadMnist, train_16x16_area, Split::kTrain,
                  MnistOptions{.scaling = PixelScaling::kSymmetric, .image_size = 16})
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_LoadMnist, test_28x28_unit, Split::kTest, MnistOptions{})->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace otgen::data
