// What nn's and the apps' *_bench binaries share.
//
// BenchmarkPrecision: a benchmark argument that selects float32 (0) or bf16 operands (1) for the
// matrix products and convolutions (nn/precision.h). On a CPU without native bf16 the bf16
// variant is skipped with a message (it would only re-time float32).
//
// SetProductRateCounters: counters for the matrix-product arithmetic a benchmark loop executed
// (nn/work_counter.h), so that every timing comes with the rate it implies:
//
//   GFLOP     per iteration: 2 x the nominal multiply-adds of its products and convolutions
//   GFLOP/s   the same over the loop's time (real time when the benchmark uses real time)
//
// Compare GFLOP/s with the machine's peak (2-core FP32 FMA peak: 2 x 32 FLOP per cycle on Zen 3
// and Zen 4, about 150-280 GFLOP/s at 2.4-4.4 GHz) to see how far a target is from what the
// hardware can do: a target time below GFLOP / peak cannot be met by any implementation of the
// same products.
//
//   const int64_t macs = otgen::nn::ProductMacs();
//   for (auto _ : state) RunIteration();
//   otgen::nn::SetProductRateCounters(state, otgen::nn::ProductMacs() - macs);
#ifndef OTGEN_NN_BENCHMARK_HARNESS_H_
#define OTGEN_NN_BENCHMARK_HARNESS_H_

#include <cstdint>

#include "benchmark/benchmark.h"
#include "nn/precision.h"
#include "nn/work_counter.h"

namespace otgen::nn {

// The precision benchmark argument `arg` selects, for the benchmark's scope:
//   const ComputePrecisionGuard precision = BenchmarkPrecision(state, 0);
inline ComputePrecisionGuard BenchmarkPrecision(benchmark::State& state, int arg) {
  const bool bf16 = state.range(arg) != 0;
  if (bf16 && !NativeBFloat16Available()) {
    state.SkipWithError("bf16 skipped: this CPU has no native bf16 dot products (AVX512_BF16 or AMX)");
  }
  return ComputePrecisionGuard(bf16 ? ComputePrecision::kBFloat16 : ComputePrecision::kFloat32);
}

// `macs_in_loop`: the multiply-adds counted over all of the loop's iterations.
inline void SetProductRateCounters(benchmark::State& state, int64_t macs_in_loop) {
  const double gflop = 2e-9 * static_cast<double>(macs_in_loop);
  const double iterations = state.iterations() > 0 ? static_cast<double>(state.iterations()) : 1.0;
  state.counters["GFLOP"] = benchmark::Counter(gflop / iterations);
  state.counters["GFLOP/s"] = benchmark::Counter(gflop, benchmark::Counter::kIsRate);
}

}  // namespace otgen::nn

#endif  // OTGEN_NN_BENCHMARK_HARNESS_H_
