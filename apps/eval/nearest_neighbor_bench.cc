// 1-NN on the domain-adaptation shapes: 7291 (USPS train) or 60000 (MNIST train) training
// images of 256 pixels against 2007 / 10000 queries.
#include <vector>

#include "apps/eval/nearest_neighbor.h"
#include "benchmark/benchmark.h"
#include "nn/random.h"
#include "oneapi/dnnl/dnnl.h"

namespace otgen::eval {
namespace {

ot::RowMatrixXf RandomImages(int n, int d, nn::Rng& rng) {
  ot::RowMatrixXf x(n, d);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < d; ++k) x(i, k) = rng.Uniform(-1.0f, 1.0f);
  return x;
}

void BM_NearestNeighbor(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const int m = static_cast<int>(state.range(1));
  const int d = 256;
  nn::Rng rng(1);
  NearestNeighborOptions options;
  if (state.range(2) > 0) options.query_block = state.range(2);
  absl::StatusOr<NearestNeighborClassifier> knn =
      NearestNeighborClassifier::Create(RandomImages(n, d, rng), std::vector<int>(n, 0), options);
  const ot::RowMatrixXf queries = RandomImages(m, d, rng);
  for (auto _ : state) {
    absl::StatusOr<NearestNeighborResult> r = knn->Predict(queries);
    benchmark::DoNotOptimize(r);
  }
  const double flops = 2.0 * n * m * d;
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
// Args: training rows, queries, query_block (0: the default).
BENCHMARK(BM_NearestNeighbor)
    ->Args({7291, 2007, 0})
    ->Args({7291, 10000, 0})
    ->Args({60000, 2007, 0})
    ->Args({7291, 2007, 256})
    ->Args({7291, 2007, 512})
    ->Args({7291, 2007, 2048})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Reference: the bare sgemm of all queries against all training rows (m x n x d, one call),
// the floor of any GEMM-based 1-NN (which also needs a pass over the m x n result).
void BM_SgemmReference(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const int m = static_cast<int>(state.range(1));
  const int d = 256;
  nn::Rng rng(1);
  const ot::RowMatrixXf train = RandomImages(n, d, rng), queries = RandomImages(m, d, rng);
  ot::RowMatrixXf out(m, n);
  for (auto _ : state) {
    dnnl_sgemm('N', 'T', m, n, d, 1.0f, queries.data(), d, train.data(), d, 0.0f, out.data(), n);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * n * m * d * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_SgemmReference)->Args({7291, 2007})->Args({60000, 2007})->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace otgen::eval
