// Benchmarks of the streamed c-transform on MNIST-sized problems (seed 000's SDOT hot path):
// b = 200 source points against J = 60000 targets in d = 784.
//
//   bazel run -c opt //ot:c_transform_bench
//   bazel run -c opt //ot:c_transform_bench -- --benchmark_filter=Mnist
//
// Data: "Random" = uniform [0, 1) points of the MNIST shapes (in 784-d all random points are
// nearly equidistant, so at lambda = 0.01 every target carries weight and the soft path is
// dense); "Mnist" = the real MNIST training images as targets and 200 test images as sources
// (the soft-min concentrates on a few thousand targets: the sparse path); "Clustered" and
// "ClusteredAll" = sources that bf16 screening cannot resolve (see ClusteredSetup). The cost
// is seed 000's ||x - y||^2 / alpha, alpha = mean_j ||y_j||^2. Counters: GFLOP/s of the x.y GEMM
// (2 b J d flops per pass over the targets), the fastest call (best_ms: on a machine shared
// with other jobs the mean suffers from preemption), dense rows and kept pairs of the soft
// path, and for J = 10^6 the peak resident memory beyond the data (VmHWM after the call minus
// VmRSS before it, with the peak reset through /proc/self/clear_refs).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "oneapi/dnnl/dnnl.h"
#include "nn/random.h"
#include "ot/c_transform.h"
#include "ot/cost.h"
#include "ot/target_set.h"
#include "ot/bench_points.h"
#include "ot/types.h"

namespace otgen::ot {
namespace {

constexpr int64_t kBatch = 200;
constexpr int64_t kDim = 784;
constexpr int64_t kTargets = 60000;

struct Setup {
  RowMatrixXf x;
  std::shared_ptr<const InMemoryTargetSet> targets;
  Cost cost;
  Eigen::VectorXf psi;
};

std::unique_ptr<Setup> MakeSetup(RowMatrixXf y, RowMatrixXf x) {
  auto s = std::make_unique<Setup>();
  s->cost = *NormalizedSquaredEuclideanCost(y);
  s->targets = *InMemoryTargetSet::CreateUniform(y);
  s->x = std::move(x);
  s->psi = Eigen::VectorXf::Zero(y.rows());
  return s;
}

Setup& RandomSetup() {
  static Setup* s = MakeSetup(UniformBenchPoints(kTargets, kDim, 1), UniformBenchPoints(kBatch, kDim, 2)).release();
  return *s;
}

// The Random targets with 3000 of them (every 20th) moved into a cluster within 1e-4 of
// (3, ..., 3), closer together than the bf16 error bound, and the Random sources with every
// `every`-th (10 or 1) moved to the cluster's centre, where screening keeps more than 1024
// candidates. every = 10 ("Clustered"): those 20 rows are computed exactly against every
// target, the other 180 are screened. every = 1 ("ClusteredAll"): screening gives up (after
// about a third of the targets) and the float path runs.
Setup& ClusteredSetup(int64_t every) {
  auto make = [every] {
    RowMatrixXf y = UniformBenchPoints(kTargets, kDim, 1);
    RowMatrixXf x = UniformBenchPoints(kBatch, kDim, 2);
    RowMatrixXf jitter = UniformBenchPoints(kTargets / 20 + kBatch, kDim, 5);
    for (int64_t j = 0; j < kTargets; j += 20) y.row(j) = 3.0f + (jitter.row(j / 20).array() - 0.5f) * 2e-4f;
    for (int64_t i = 0; i < kBatch; i += every) {
      x.row(i) = 3.0f + (jitter.row(kTargets / 20 + i).array() - 0.5f) * 2e-4f;
    }
    return MakeSetup(std::move(y), std::move(x)).release();
  };
  if (every == 1) {
    static Setup* all = make();
    return *all;
  }
  static Setup* some = make();
  return *some;
}

Setup& MnistSetup() {
  static Setup* s = MakeSetup(MnistBenchImages(data::Split::kTrain, kTargets),
                              MnistBenchImages(data::Split::kTest, kBatch))
                        .release();
  return *s;
}

void RunCTransform(benchmark::State& state, Setup& s, float lambda, bool grad_x, bool grad_psi,
                   bool large_batch_screening = true) {
  CTransformOptions opt;
  opt.lambda = lambda;
  opt.large_batch_screening = large_batch_screening;
  auto ct = CTransform::Create(s.targets, s.cost, opt);
  if (!ct.ok()) {
    state.SkipWithError(ct.status().ToString().c_str());
    return;
  }
  CTransformResult r;
  const CTransformRequest request{.grad_x = grad_x, .grad_psi = grad_psi};
  if (!ct->Compute(s.x, s.psi, request, &r).ok()) {  // warm-up: workspace pages, primitives
    state.SkipWithError("Compute failed");
    return;
  }
  double best = 1e30;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    const absl::Status st = ct->Compute(s.x, s.psi, request, &r);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
    benchmark::DoNotOptimize(r.values.data());
  }
  // The fastest call: on a machine shared with other jobs the mean suffers from preemption.
  state.counters["best_ms"] = 1e3 * best;
  const double flops = 2.0 * s.x.rows() * s.targets->size() * s.targets->dim();
  state.counters["GFLOP/s(1 pass)"] =
      benchmark::Counter(flops * 1e-9 * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["dense_rows"] = static_cast<double>(r.dense_rows);
  state.counters["pairs_per_row"] = static_cast<double>(r.candidate_pairs) / static_cast<double>(s.x.rows());
  state.counters["screened_rows"] = static_cast<double>(r.screened_rows);
}

void BM_Random_Hard_GradPsiGradX(benchmark::State& state) { RunCTransform(state, RandomSetup(), 0.0f, true, true); }
void BM_Random_Hard_GradPsi(benchmark::State& state) { RunCTransform(state, RandomSetup(), 0.0f, false, true); }
void BM_Random_Soft001_GradPsiGradX(benchmark::State& state) {
  RunCTransform(state, RandomSetup(), 0.01f, true, true);
}
void BM_Random_Soft001_GradPsi(benchmark::State& state) { RunCTransform(state, RandomSetup(), 0.01f, false, true); }
void BM_Random_Soft001_ValuesOnly(benchmark::State& state) {
  RunCTransform(state, RandomSetup(), 0.01f, false, false);
}
void BM_Clustered_Hard_GradPsiGradX(benchmark::State& state) {
  RunCTransform(state, ClusteredSetup(10), 0.0f, true, true);
}
void BM_ClusteredAll_Hard_GradPsiGradX(benchmark::State& state) {
  RunCTransform(state, ClusteredSetup(1), 0.0f, true, true);
}
void BM_Mnist_Hard_GradPsiGradX(benchmark::State& state) { RunCTransform(state, MnistSetup(), 0.0f, true, true); }
// The same without the bf16 screening of large batches (float GEMM over every target).
void BM_Mnist_Hard_GradPsiGradX_NoScreening(benchmark::State& state) {
  RunCTransform(state, MnistSetup(), 0.0f, true, true, false);
}
void BM_Mnist_Soft001_GradPsiGradX(benchmark::State& state) {
  RunCTransform(state, MnistSetup(), 0.01f, true, true);
}
void BM_Mnist_Soft001_GradPsi(benchmark::State& state) { RunCTransform(state, MnistSetup(), 0.01f, false, true); }
void BM_Mnist_Soft0025_GradPsiGradX(benchmark::State& state) {
  RunCTransform(state, MnistSetup(), 0.025f, true, true);
}

// Reference: the bare x.y GEMM of the same shape, tiled the same way (one single-threaded
// sgemm per 200 x 512 tile per thread, no epilogue): the rate the c-transform is measured against.
void BM_Reference_TiledSgemm(benchmark::State& state) {
  Setup& s = RandomSetup();
  const int64_t J = s.targets->size(), d = s.targets->dim(), b = s.x.rows(), T = 512;
  const int threads = std::max(1, omp_get_max_threads());
  std::vector<std::vector<float>> tiles(threads, std::vector<float>(b * T));
  for (auto _ : state) {
#pragma omp parallel num_threads(threads)
    {
      float* tile = tiles[omp_get_thread_num()].data();
#pragma omp for schedule(dynamic, 1)
      for (int64_t j0 = 0; j0 < J; j0 += T) {
        const int64_t n = std::min(T, J - j0);
        dnnl_sgemm('N', 'N', b, n, d, 1.0f, s.x.data(), d, s.targets->transposed_points() + j0, J, 0.0f, tile, n);
      }
    }
  }
  state.counters["GFLOP/s(1 pass)"] =
      benchmark::Counter(2.0 * b * J * d * 1e-9 * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Reference_TiledSgemm)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

BENCHMARK(BM_Random_Hard_GradPsiGradX)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_Random_Hard_GradPsi)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_Random_Soft001_GradPsiGradX)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_Random_Soft001_GradPsi)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_Random_Soft001_ValuesOnly)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_Clustered_Hard_GradPsiGradX)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_ClusteredAll_Hard_GradPsiGradX)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_Mnist_Hard_GradPsiGradX)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_Mnist_Hard_GradPsiGradX_NoScreening)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_Mnist_Soft001_GradPsiGradX)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_Mnist_Soft001_GradPsi)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_Mnist_Soft0025_GradPsiGradX)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

// ---- J = 10^6 targets: time and memory beyond the data -----------------------------------------

int64_t ReadStatusKb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(key) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return std::atoll(line.c_str() + prefix.size());
  }
  return -1;
}

bool ResetPeakRss() {
  std::ofstream out("/proc/self/clear_refs");
  if (!out) return false;
  out << "5";
  return static_cast<bool>(out);
}

Setup& MillionSetup() {
  static Setup* s = [] {
    constexpr int64_t kMillion = 1000000;
    auto setup = std::make_unique<Setup>();
    {
      RowMatrixXf y = UniformBenchPoints(kMillion, kDim, 3);
      setup->cost = *NormalizedSquaredEuclideanCost(y);
      setup->targets = *InMemoryTargetSet::CreateUniform(y);
    }  // the source copy is freed: only the target set remains
    setup->x = UniformBenchPoints(kBatch, kDim, 4);
    setup->psi = Eigen::VectorXf::Zero(kMillion);
    return setup.release();
  }();
  return *s;
}

void RunMillion(benchmark::State& state, float lambda) {
  Setup& s = MillionSetup();
  CTransformOptions opt;
  opt.lambda = lambda;
  // Memory of the transform (its per-target vectors, workspace) and of the first call's result
  // and temporaries, beyond the data (targets, x, psi).
  const int64_t before_kb = ReadStatusKb("VmRSS");
  const bool reset = ResetPeakRss();
  auto ct = CTransform::Create(s.targets, s.cost, opt);
  CTransformResult r;
  if (!ct.ok() || !ct->Compute(s.x, s.psi, {}, &r).ok()) {
    state.SkipWithError("Compute failed");
    return;
  }
  const int64_t peak_kb = ReadStatusKb("VmHWM");
  for (auto _ : state) {
    const absl::Status st = ct->Compute(s.x, s.psi, {}, &r);
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
  }
  const double flops = 2.0 * s.x.rows() * s.targets->size() * s.targets->dim();
  state.counters["GFLOP/s(1 pass)"] =
      benchmark::Counter(flops * 1e-9 * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["extra_MiB"] = reset ? static_cast<double>(peak_kb - before_kb) / 1024.0 : -1.0;
  state.counters["dense_rows"] = static_cast<double>(r.dense_rows);
}

void BM_Million_Hard_GradPsiGradX(benchmark::State& state) { RunMillion(state, 0.0f); }
void BM_Million_Soft001_GradPsiGradX(benchmark::State& state) { RunMillion(state, 0.01f); }

BENCHMARK(BM_Million_Hard_GradPsiGradX)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_Million_Soft001_GradPsiGradX)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);

}  // namespace
}  // namespace otgen::ot
