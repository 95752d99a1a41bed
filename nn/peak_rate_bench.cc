// The arithmetic peak of the machine the benchmarks run on, the number the GFLOP/s counters of
// the other *_bench binaries are compared with (nn/benchmark_harness.h): a time target below
// (nominal GFLOP) / peak cannot be met by any implementation of the same products.
//
//   BM_PeakFloat32Fma   float32 fused multiply-adds, 512-bit (AVX-512F) or, without it, 256-bit
//                       (AVX2 + FMA): 2 FLOP per lane and instruction.
//   BM_PeakBFloat16Dot  bf16 pair dot products accumulated in float32 (AVX512_BF16
//                       VDPBF16PS, what oneDNN's bf16 kernels use where there is no AMX): 4
//                       FLOP per float32 lane and instruction. Skipped without AVX512_BF16.
//
// Each thread runs 12 independent accumulator chains in registers (more than latency x
// throughput on current x86 cores), so the loop is bound by the FMA/dot-product ports only.
// ->Threads(n): the machine total over n threads (the counters are summed over threads).
//
//   bazel run -c opt //nn:peak_rate_bench
//
// Measured on the 2-core AMD EPYC Genoa (Zen 4, 2.6 GHz nominal) of 2026-11-25: float32 117
// GFLOP/s per core, bf16 234 per core (both running at about 3.65 GHz), 234 and 467 with 2
// threads. Convolution kernels skip taps that fall in the padding, which the nominal counts
// include, so a network's nominal GFLOP/s can come close to or exceed these figures.
#include <immintrin.h>

#include <cstdint>

#include "benchmark/benchmark.h"

namespace otgen::nn {
namespace {

constexpr int64_t kInnerIterations = 1 << 16;
constexpr int kChains = 12;

// The 12 chains spelled out (a loop over an array of vectors may be kept in memory at -O2).
#define OTGEN_TWELVE_CHAINS(STEP) \
  STEP(0) STEP(1) STEP(2) STEP(3) STEP(4) STEP(5) STEP(6) STEP(7) STEP(8) STEP(9) STEP(10) STEP(11)

bool HasAvx512() { return __builtin_cpu_supports("avx512f"); }
bool HasAvx512BFloat16() { return HasAvx512() && __builtin_cpu_supports("avx512bf16"); }

// Each returns the sum of its accumulators so the compiler cannot drop the chains.
__attribute__((target("avx512f"))) float Float32Fma512(int64_t iterations) {
  __m512 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(0.0f);
  __m512 x = _mm512_set1_ps(0.999f);
  const __m512 y = _mm512_set1_ps(1e-3f);
  for (int64_t k = 0; k < iterations; ++k) {
#define OTGEN_STEP(c) acc[c] = _mm512_fmadd_ps(acc[c], x, y);
    OTGEN_TWELVE_CHAINS(OTGEN_STEP)
#undef OTGEN_STEP
    __asm__ volatile("" : "+v"(x));  // keeps x live in a register without changing it
  }
  float sum = 0;
  for (int c = 0; c < kChains; ++c) sum += _mm512_reduce_add_ps(acc[c]);
  return sum;
}

__attribute__((target("avx2,fma"))) float Float32Fma256(int64_t iterations) {
  __m256 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(0.0f);
  __m256 x = _mm256_set1_ps(0.999f);
  const __m256 y = _mm256_set1_ps(1e-3f);
  for (int64_t k = 0; k < iterations; ++k) {
#define OTGEN_STEP(c) acc[c] = _mm256_fmadd_ps(acc[c], x, y);
    OTGEN_TWELVE_CHAINS(OTGEN_STEP)
#undef OTGEN_STEP
    __asm__ volatile("" : "+x"(x));
  }
  alignas(32) float lanes[8];
  float sum = 0;
  for (int c = 0; c < kChains; ++c) {
    _mm256_store_ps(lanes, acc[c]);
    for (float v : lanes) sum += v;
  }
  return sum;
}

__attribute__((target("avx512f,avx512bf16"))) float BFloat16Dot512(int64_t iterations) {
  __m512 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(0.0f);
  __m512bh a = (__m512bh)_mm512_set1_epi16(0x3a83);  // bf16 1e-3
  const __m512bh b = (__m512bh)_mm512_set1_epi16(0x3f80);  // bf16 1
  for (int64_t k = 0; k < iterations; ++k) {
#define OTGEN_STEP(c) acc[c] = _mm512_dpbf16_ps(acc[c], a, b);
    OTGEN_TWELVE_CHAINS(OTGEN_STEP)
#undef OTGEN_STEP
    __asm__ volatile("" : "+v"(a));
  }
  float sum = 0;
  for (int c = 0; c < kChains; ++c) sum += _mm512_reduce_add_ps(acc[c]);
  return sum;
}

void SetRate(benchmark::State& state, double flop_per_inner_iteration) {
  state.counters["GFLOP/s"] = benchmark::Counter(
      1e-9 * flop_per_inner_iteration * static_cast<double>(kInnerIterations) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}

void BM_PeakFloat32Fma(benchmark::State& state) {
  const bool avx512 = HasAvx512();
  if (!avx512 && !__builtin_cpu_supports("fma")) {
    state.SkipWithError("skipped: this CPU has neither AVX-512F nor FMA");
    return;
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(avx512 ? Float32Fma512(kInnerIterations) : Float32Fma256(kInnerIterations));
  }
  state.SetLabel(avx512 ? "AVX-512F" : "AVX2+FMA");
  SetRate(state, kChains * (avx512 ? 16 : 8) * 2.0);
}
BENCHMARK(BM_PeakFloat32Fma)->Threads(1)->Threads(2)->UseRealTime();

void BM_PeakBFloat16Dot(benchmark::State& state) {
  if (!HasAvx512BFloat16()) {
    state.SkipWithError("skipped: this CPU has no AVX512_BF16");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(BFloat16Dot512(kInnerIterations));
  SetRate(state, kChains * 16 * 4.0);
}
BENCHMARK(BM_PeakBFloat16Dot)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace otgen::nn
