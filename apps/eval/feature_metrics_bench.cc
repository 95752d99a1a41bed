// The MNIST protocol sizes (DATASETS.md): 10000 samples, 128-d penultimate features, 10
// classes; KID on 10 subsets of 1000.
#include "apps/eval/feature_metrics.h"
#include "benchmark/benchmark.h"
#include "nn/random.h"

namespace otgen::eval {
namespace {

ot::RowMatrixXf RandomFeatures(int n, int d, nn::Rng& rng) {
  ot::RowMatrixXf x(n, d);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < d; ++k) x(i, k) = rng.Normal();
  return x;
}

void BM_FrechetDistance(benchmark::State& state) {
  nn::Rng rng(1);
  const ot::RowMatrixXf a = RandomFeatures(10000, 128, rng), b = RandomFeatures(10000, 128, rng);
  for (auto _ : state) benchmark::DoNotOptimize(FrechetDistance(a, b));
}
BENCHMARK(BM_FrechetDistance)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_KernelInceptionDistance(benchmark::State& state) {
  nn::Rng rng(2);
  const ot::RowMatrixXf a = RandomFeatures(10000, 128, rng), b = RandomFeatures(10000, 128, rng);
  for (auto _ : state) benchmark::DoNotOptimize(KernelInceptionDistance(a, b));
}
BENCHMARK(BM_KernelInceptionDistance)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_ClassifierScore(benchmark::State& state) {
  nn::Rng rng(3);
  ot::RowMatrixXf p(10000, 10);
  for (int i = 0; i < 10000; ++i) {
    for (int k = 0; k < 10; ++k) p(i, k) = rng.Uniform() + 1e-3f;
    p.row(i) /= p.row(i).sum();
  }
  for (auto _ : state) benchmark::DoNotOptimize(ClassifierScore(p));
}
BENCHMARK(BM_ClassifierScore)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace otgen::eval
