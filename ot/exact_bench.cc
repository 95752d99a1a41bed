// Benchmarks of exact discrete OT through the public API (bazel run -c opt //ot:exact_bench).
//
// Reference on this machine (POT's ot.emd with ot.dist, squared Euclidean, uniform weights):
//   n = 1000, d = 2: 81 ms    n = 2000, d = 2: 452 ms
//   n = 1000, d = 784: 98 ms  n = 2000, d = 784: 630 ms
#include <random>
#include <string>

#include "Eigen/Dense"
#include "absl/random/random.h"
#include "benchmark/benchmark.h"
#include "ot/cost.h"
#include "ot/exact.h"
#include "ot/types.h"

namespace otgen::ot {
namespace {

enum Distribution { kUniform = 0, kGaussian = 1 };

RowMatrixXf Sample(std::mt19937_64& gen, int n, int d, int distribution) {
  RowMatrixXf x(n, d);
  for (int k = 0; k < x.size(); ++k) {
    x.data()[k] =
        distribution == kUniform ? absl::Uniform(gen, 0.0f, 1.0f) : absl::Gaussian<float>(gen);
  }
  return x;
}

std::mt19937_64 Gen(int seed) {
  std::seed_seq seq{seed};
  return std::mt19937_64(seq);
}

// Uniform weights, n = m, squared Euclidean cost from point clouds: what a user computing the
// Discrete-OT reference calls (cost matrix + assignment).
void BM_ExactOTPointsUniform(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const int d = static_cast<int>(state.range(1));
  const int distribution = static_cast<int>(state.range(2));
  std::mt19937_64 gen = Gen(n + d + distribution);
  const RowMatrixXf x = Sample(gen, n, d, distribution);
  const RowMatrixXf y = Sample(gen, n, d, distribution);
  double cost = 0.0, iterations = 0.0;
  for (auto _ : state) {
    absl::StatusOr<ExactOTResult> r = SolveExactOT(x, y, Cost::SquaredEuclidean());
    if (!r.ok()) {
      state.SkipWithError(std::string(r.status().message()).c_str());
      return;
    }
    cost = r->cost;
    iterations = static_cast<double>(r->iterations);
    benchmark::DoNotOptimize(r->plan.data());
  }
  state.counters["cost"] = cost;
  state.counters["augmentations"] = iterations;
  state.SetLabel(distribution == kUniform ? "uniform points" : "gaussian points");
}
BENCHMARK(BM_ExactOTPointsUniform)
    ->ArgNames({"n", "d", "gaussian"})
    ->ArgsProduct({{1000, 2000}, {2, 784}, {kUniform, kGaussian}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The same problems solved by the network simplex (assignment dispatch disabled).
void BM_ExactOTPointsUniformNetworkSimplex(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const int d = static_cast<int>(state.range(1));
  std::mt19937_64 gen = Gen(n + d);
  const RowMatrixXf x = Sample(gen, n, d, kUniform);
  const RowMatrixXf y = Sample(gen, n, d, kUniform);
  ExactOTOptions options;
  options.use_assignment_for_uniform = false;
  double iterations = 0.0;
  for (auto _ : state) {
    absl::StatusOr<ExactOTResult> r = SolveExactOT(x, y, Cost::SquaredEuclidean(), options);
    if (!r.ok()) {
      state.SkipWithError(std::string(r.status().message()).c_str());
      return;
    }
    iterations = static_cast<double>(r->iterations);
    benchmark::DoNotOptimize(r->plan.data());
  }
  state.counters["pivots"] = iterations;
}
BENCHMARK(BM_ExactOTPointsUniformNetworkSimplex)
    ->ArgNames({"n", "d"})
    ->Args({1000, 2})
    ->Args({1000, 784})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// General (non-uniform) weights: the network simplex.
void BM_ExactOTPointsWeighted(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const int d = static_cast<int>(state.range(1));
  std::mt19937_64 gen = Gen(3 * n + d);
  const RowMatrixXf x = Sample(gen, n, d, kGaussian);
  const RowMatrixXf y = Sample(gen, n, d, kUniform);
  Eigen::VectorXf a(n), b(n);
  for (int i = 0; i < n; ++i) {
    a[i] = absl::Uniform(gen, 0.1f, 1.0f);
    b[i] = absl::Uniform(gen, 0.1f, 1.0f);
  }
  a /= a.sum();
  b /= b.sum();
  double iterations = 0.0;
  for (auto _ : state) {
    absl::StatusOr<ExactOTResult> r = SolveExactOT(x, a, y, b, Cost::SquaredEuclidean());
    if (!r.ok()) {
      state.SkipWithError(std::string(r.status().message()).c_str());
      return;
    }
    iterations = static_cast<double>(r->iterations);
    benchmark::DoNotOptimize(r->plan.data());
  }
  state.counters["pivots"] = iterations;
}
BENCHMARK(BM_ExactOTPointsWeighted)
    ->ArgNames({"n", "d"})
    ->Args({1000, 2})
    ->Args({1000, 784})
    ->Args({2000, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Cost matrix alone (double, n x n), to split the totals above.
void BM_ExactCostMatrix(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const int d = static_cast<int>(state.range(1));
  std::mt19937_64 gen = Gen(n + d);
  const RowMatrixXf x = Sample(gen, n, d, kUniform);
  const RowMatrixXf y = Sample(gen, n, d, kUniform);
  for (auto _ : state) {
    absl::StatusOr<RowMatrixXd> c = ExactCostMatrix(x, y, Cost::SquaredEuclidean());
    benchmark::DoNotOptimize(c->data());
  }
}
BENCHMARK(BM_ExactCostMatrix)
    ->ArgNames({"n", "d"})
    ->ArgsProduct({{1000, 2000}, {2, 784}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace otgen::ot
