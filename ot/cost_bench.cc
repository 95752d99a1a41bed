// Time of one cost tile (the n x m cost matrix) and of one weighted gradient tile
// (sum_j w_ij grad_x c(x_i, y_j) for every i), the two kernels every dual and c-transform step
// calls. The SWGAN MNIST panels of seed 001 evaluate them on batches of 100 against 100, in
// pixel space (d = 784) or in the learned latent space (d = 4096), several times an iteration.
//
//   bazel run -c opt //ot:cost_bench
//
// BM_CostTile/<kind>/<n>/<d> and BM_CostGradientTile/<kind>/<n>/<d>, kind 0 = L1,
// 1 = cosine, 2 = squared Euclidean, m = n; the counter reports G coordinate pairs per second
// (n m d / time).
#include <string>

#include "benchmark/benchmark.h"
#include "ot/bench_points.h"
#include "ot/cost.h"
#include "ot/types.h"

namespace otgen::ot {
namespace {

Cost CostOfKind(int64_t kind, int64_t d) {
  switch (kind) {
    case 0:
      return Cost::L1(static_cast<float>(d));
    case 1:
      return Cost::Cosine();
    default:
      return Cost::SquaredEuclidean(static_cast<float>(d));
  }
}

void SetRate(benchmark::State& state, int64_t n, int64_t d) {
  state.counters["Gpairs/s"] =
      benchmark::Counter(static_cast<double>(n) * n * d * state.iterations() * 1e-9, benchmark::Counter::kIsRate);
  state.SetLabel(CostOfKind(state.range(0), d).ToString());
}

void BM_CostTile(benchmark::State& state) {
  const int64_t n = state.range(1), d = state.range(2);
  const Cost cost = CostOfKind(state.range(0), d);
  const RowMatrixXf x = UniformBenchPoints(n, d, 1), y = UniformBenchPoints(n, d, 2);
  const Eigen::VectorXf xd = CostPointData(cost, x), yd = CostPointData(cost, y);
  RowMatrixXf out(n, n);
  for (auto _ : state) {
    EvaluateCostTile(cost, x, xd, y, yd, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  SetRate(state, n, d);
}

void BM_CostGradientTile(benchmark::State& state) {
  const int64_t n = state.range(1), d = state.range(2);
  const Cost cost = CostOfKind(state.range(0), d);
  const RowMatrixXf x = UniformBenchPoints(n, d, 1), y = UniformBenchPoints(n, d, 2);
  const RowMatrixXf w = UniformBenchPoints(n, n, 3);
  const Eigen::VectorXf xd = CostPointData(cost, x), yd = CostPointData(cost, y);
  RowMatrixXf grad = RowMatrixXf::Zero(n, d);
  for (auto _ : state) {
    AccumulateCostGradientTile(cost, x, xd, y, yd, w, grad);
    benchmark::DoNotOptimize(grad.data());
    benchmark::ClobberMemory();
  }
  SetRate(state, n, d);
}

void CostArgs(benchmark::internal::Benchmark* b) {
  for (const int64_t kind : {0, 1, 2}) {
    for (const int64_t d : {784, 4096}) b->Args({kind, 100, d});
  }
  b->Args({0, 256, 2})->Args({0, 256, 16})->Args({0, 256, 33})->Args({0, 256, 64});
}

BENCHMARK(BM_CostTile)->Apply(CostArgs);
BENCHMARK(BM_CostGradientTile)->Apply(CostArgs);

}  // namespace
}  // namespace otgen::ot
