// Fitting and sampling the MNIST Gaussian (W2GAN's mvg_mnist source):
// `bazel run -c opt //data:samplers_bench`.
#include <memory>
#include <string>

#include "benchmark/benchmark.h"
#include "data/mnist.h"
#include "data/samplers.h"

namespace otgen::data {
namespace {

const InMemoryDataset* MnistTrain() {
  static const InMemoryDataset* train = [] {
    absl::StatusOr<InMemoryDataset> d = LoadMnist("", Split::kTrain, {.scaling = PixelScaling::kSymmetric});
    return d.ok() ? new InMemoryDataset(*std::move(d)) : nullptr;
  }();
  return train;
}

void BM_FitMnistGaussian(benchmark::State& state) {
  const InMemoryDataset* train = MnistTrain();
  if (train == nullptr) {
    state.SkipWithError("MNIST not found in the runfiles");
    return;
  }
  int64_t rank = 0;
  for (auto _ : state) {
    absl::StatusOr<MultivariateNormalSampler> mvn = MultivariateNormalSampler::Fit(train->examples());
    if (!mvn.ok()) {
      state.SkipWithError(mvn.status().ToString().c_str());
      return;
    }
    rank = mvn->rank();
  }
  state.counters["rank"] = static_cast<double>(rank);
  // N d^2 multiply-adds for the Gram matrix (symmetric half: N d (d + 1) / 2).
  state.counters["gram_GFLOP/s"] =
      benchmark::Counter(60000.0 * 784 * 785 / 1e9 * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_FitMnistGaussian)->Unit(benchmark::kMillisecond)->Iterations(2);

void BM_SampleMnistGaussian(benchmark::State& state) {
  const InMemoryDataset* train = MnistTrain();
  if (train == nullptr) {
    state.SkipWithError("MNIST not found in the runfiles");
    return;
  }
  static const MultivariateNormalSampler* mvn = [&] {
    absl::StatusOr<MultivariateNormalSampler> m = MultivariateNormalSampler::Fit(train->examples());
    return m.ok() ? new MultivariateNormalSampler(*std::move(m)) : nullptr;
  }();
  nn::Rng rng(1);
  nn::Tensor out;
  for (auto _ : state) {
    mvn->SampleInto(state.range(0), rng, &out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_SampleMnistGaussian)->Arg(64)->Arg(1024)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace otgen::data
