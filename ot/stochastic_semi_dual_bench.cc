// Benchmarks of the stochastic semi-dual solver on a precomputed cost matrix (ot/stochastic_semi_dual.h).
//
//   OMP_NUM_THREADS=1 bazel run -c opt //ot:stochastic_semi_dual_bench
//
// The workload of issue 4 / POT's ot.stochastic.solve_semi_dual_entropic(method="ASGD"): n = 1000
// sources, m = 1000 targets in d = 784, uniform weights, cost ||x - y||^2 / alpha (alpha the mean
// squared norm of the targets, seed 000), ONE source index per step. POT takes about 27 us per
// step on this problem (NumPy, float64); the target is <= 10 us.
//
// Step_*: the time of one ASGD step (draw i ~ a, the soft c-transform of row i of C with its
// weights, the update of the iterate and of the average; lambda = 0: the argmin of row i and the
// O(1) update), i.e. the reported time per iteration is us/step. Building C is excluded.
// BuildCostMatrix_*: CreateFromPoints alone (validation, centring, the n x m cost matrix by one
// sgemm, the copy into the solver), reported separately.
// "Random": uniform [0, 1) points; "Mnist": 1000 MNIST test images as sources and 1000 training
// images as targets.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "nn/random.h"
#include "ot/cost.h"
#include "ot/stochastic_semi_dual.h"
#include "ot/bench_points.h"
#include "ot/types.h"

namespace otgen::ot {
namespace {

constexpr int64_t kDim = 784;
constexpr int64_t kPoints = 1000;

struct Data {
  RowMatrixXf random_sources = UniformBenchPoints(kPoints, kDim, 1);
  RowMatrixXf random_targets = UniformBenchPoints(kPoints, kDim, 2);
  RowMatrixXf mnist_sources = MnistBenchImages(data::Split::kTest, kPoints);
  RowMatrixXf mnist_targets = MnistBenchImages(data::Split::kTrain, kPoints);
  Eigen::VectorXf uniform = Eigen::VectorXf::Constant(kPoints, 1.0f / kPoints);
};

Data& GetData() {
  static Data* d = new Data();
  return *d;
}

StochasticSemiDualOptions BenchOptions(float lambda) {
  StochasticSemiDualOptions o;
  o.lambda = lambda;
  o.method = StochasticSemiDualMethod::kAsgd;
  o.batch_size = 1;
  // POT's default lr (lambda / max_i a_i) for lambda > 0; the step size does not change the
  // work of a step.
  o.gamma = lambda > 0.0f ? lambda * kPoints : 1.0f;
  o.alpha = 0.5f;
  o.seed = 7;
  return o;
}

void RunSteps(benchmark::State& state, const RowMatrixXf& sources, const RowMatrixXf& targets, float lambda) {
  const Data& data = GetData();
  auto cost = NormalizedSquaredEuclideanCost(targets);
  if (!cost.ok()) {
    state.SkipWithError(cost.status().ToString().c_str());
    return;
  }
  auto solver = StochasticSemiDualSolver::CreateFromPoints(sources, data.uniform, targets, data.uniform, *cost,
                                                           BenchOptions(lambda));
  if (!solver.ok()) {
    state.SkipWithError(solver.status().ToString().c_str());
    return;
  }
  for (int w = 0; w < 2000; ++w) (*solver)->Step();  // warm-up: C in cache, psi moved off 0
  for (auto _ : state) (*solver)->Step();
  state.counters["steps_per_s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  // The estimate's semi-dual after the timed steps (a sanity value, not timed).
  state.counters["F"] = *(*solver)->SemiDual((*solver)->psi());
}

void BM_Step_Random_Soft001(benchmark::State& state) {
  RunSteps(state, GetData().random_sources, GetData().random_targets, 0.01f);
}
void BM_Step_Random_Hard(benchmark::State& state) {
  RunSteps(state, GetData().random_sources, GetData().random_targets, 0.0f);
}
void BM_Step_Mnist_Soft001(benchmark::State& state) {
  RunSteps(state, GetData().mnist_sources, GetData().mnist_targets, 0.01f);
}
void BM_Step_Mnist_Hard(benchmark::State& state) {
  RunSteps(state, GetData().mnist_sources, GetData().mnist_targets, 0.0f);
}
BENCHMARK(BM_Step_Random_Soft001)->Unit(benchmark::kMicrosecond)->MinTime(1.0);
BENCHMARK(BM_Step_Random_Hard)->Unit(benchmark::kMicrosecond)->MinTime(1.0);
BENCHMARK(BM_Step_Mnist_Soft001)->Unit(benchmark::kMicrosecond)->MinTime(1.0);
BENCHMARK(BM_Step_Mnist_Hard)->Unit(benchmark::kMicrosecond)->MinTime(1.0);

void RunBuild(benchmark::State& state, const RowMatrixXf& sources, const RowMatrixXf& targets) {
  const Data& data = GetData();
  const Cost cost = *NormalizedSquaredEuclideanCost(targets);
  for (auto _ : state) {
    auto solver = StochasticSemiDualSolver::CreateFromPoints(sources, data.uniform, targets, data.uniform, cost,
                                                             BenchOptions(0.01f));
    if (!solver.ok()) state.SkipWithError(solver.status().ToString().c_str());
    benchmark::DoNotOptimize(solver);
  }
}

void BM_BuildCostMatrix_Random(benchmark::State& state) {
  RunBuild(state, GetData().random_sources, GetData().random_targets);
}
void BM_BuildCostMatrix_Mnist(benchmark::State& state) {
  RunBuild(state, GetData().mnist_sources, GetData().mnist_targets);
}
BENCHMARK(BM_BuildCostMatrix_Random)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_BuildCostMatrix_Mnist)->Unit(benchmark::kMillisecond)->MinTime(1.0);

}  // namespace
}  // namespace otgen::ot
