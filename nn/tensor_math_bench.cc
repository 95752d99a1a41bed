// Benchmarks of the tensor kernels: `bazel run -c opt //nn:tensor_math_bench`.
//
// MatMul reports FLOP/s (2 m n k per product). The rate depends on the machine the session
// runs on: an AVX-512 machine of an earlier session reported about 530 GFLOP/s for raw oneDNN
// sgemm with 2 threads (270 with 1); the Zen 3 of 2026-11-23 (AVX2, no AVX-512) reaches 90
// (1 thread) and 170 (2 threads) on the W2GAN layer products below. Memory-bound kernels
// report bytes read + written per second. Every call allocates its output, as the kernels do
// in a network.
// OpenMP with 2 threads on 2 shared cores suffers badly when other processes run
// (barriers wait for a descheduled thread): rerun on a quiet machine, or compare with
// OMP_NUM_THREADS=1.
#include <cstdint>
#include <vector>

#include "benchmark/benchmark.h"
#include "nn/onednn_context.h"
#include "nn/random.h"
#include "nn/tensor.h"
#include "nn/tensor_math.h"

namespace otgen::nn::math {
namespace {

Tensor Random(const Shape& shape, uint64_t seed) {
  Rng rng(seed);
  return Tensor::Normal(shape, 0.0f, 1.0f, rng);
}

void SetFlops(benchmark::State& state, double flops_per_iteration) {
  state.counters["FLOP/s"] = benchmark::Counter(flops_per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}

void SetBytes(benchmark::State& state, int64_t floats_per_iteration) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * floats_per_iteration * 4);
}

// [256, 512] @ [512, 512], the hidden layer of the MNIST generators at batch 256.
void BM_MatMul_256x512x512(benchmark::State& state) {
  const Tensor a = Random({256, 512}, 1), b = Random({512, 512}, 2);
  for (auto _ : state) benchmark::DoNotOptimize(MatMul(a, b).data());
  SetFlops(state, 2.0 * 256 * 512 * 512);
}
BENCHMARK(BM_MatMul_256x512x512)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Every transpose combination of the same product (the backward pass uses a^T g, g b^T).
void BM_MatMul_256x512x512_Transposes(benchmark::State& state) {
  const bool ta = state.range(0) != 0, tb = state.range(1) != 0;
  const Tensor a = Random(ta ? Shape{512, 256} : Shape{256, 512}, 1);
  const Tensor b = Random({512, 512}, 2);
  for (auto _ : state) benchmark::DoNotOptimize(MatMul(a, b, ta, tb).data());
  SetFlops(state, 2.0 * 256 * 512 * 512);
}
BENCHMARK(BM_MatMul_256x512x512_Transposes)
    ->ArgsProduct({{0, 1}, {0, 1}})
    ->ArgNames({"ta", "tb"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// The three products of a width-128 hidden layer at 512 rows (the W2GAN 2-D potentials on a
// stacked batch, seed 002 A.10): forward x W^T (ta 0, tb 1), data gradient g W (0, 0), weight
// gradient g^T x (1, 0); on 1 and 2 threads. Most of a W2GAN 2-D iteration is these products.
void BM_MatMul_512x128x128_Layer(benchmark::State& state) {
  const bool ta = state.range(0) != 0, tb = state.range(1) != 0;
  SetNumThreads(static_cast<int>(state.range(2)));
  const Tensor a = Random({512, 128}, 1);
  const Tensor b = Random({128, 128}, 2);
  const Tensor g = Random({512, 128}, 3);
  for (auto _ : state) benchmark::DoNotOptimize((ta ? MatMul(g, a, true, false) : MatMul(a, b, false, tb)).data());
  SetFlops(state, 2.0 * 512 * 128 * 128);
}
BENCHMARK(BM_MatMul_512x128x128_Layer)
    ->Args({0, 1, 1})
    ->Args({0, 0, 1})
    ->Args({1, 0, 1})
    ->Args({0, 1, 2})
    ->Args({0, 0, 2})
    ->Args({1, 0, 2})
    ->ArgNames({"ta", "tb", "threads"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// The thin products of the same networks (a dimension <= 4: float32 loops, not oneDNN), one
// thread: 0 first layer forward x [512, 2] W1^T, 1 last layer data gradient g [512, 1] W3,
// 2 last layer weight gradient g^T h ([512, 1]^T [512, 128]), 3 first layer weight gradient
// g^T x ([512, 128]^T [512, 2]), 4 last layer forward h W3^T ([512, 128] [1, 128]^T).
void BM_MatMul_ThinLayer(benchmark::State& state) {
  struct Case {
    int64_t m, k, n;
    bool ta, tb;
  };
  static constexpr Case kCases[] = {
      {512, 2, 128, false, true}, {512, 1, 128, false, false}, {1, 512, 128, true, false},
      {128, 512, 2, true, false}, {512, 128, 1, false, true}};
  const Case& c = kCases[state.range(0)];
  SetNumThreads(1);
  const Tensor a = Random(c.ta ? Shape{c.k, c.m} : Shape{c.m, c.k}, 1);
  const Tensor b = Random(c.tb ? Shape{c.n, c.k} : Shape{c.k, c.n}, 2);
  for (auto _ : state) benchmark::DoNotOptimize(MatMul(a, b, c.ta, c.tb).data());
  SetFlops(state, 2.0 * c.m * c.n * c.k);
}
BENCHMARK(BM_MatMul_ThinLayer)->DenseRange(0, 4)->ArgName("case")->Unit(benchmark::kMicrosecond)->UseRealTime();

// A batch of 200 generated images against all 60000 MNIST images: x y^T for costs.
void BM_MatMul_200x784_60000T(benchmark::State& state) {
  const Tensor a = Random({200, 784}, 3), b = Random({60000, 784}, 4);
  for (auto _ : state) benchmark::DoNotOptimize(MatMul(a, b, false, true).data());
  SetFlops(state, 2.0 * 200 * 784 * 60000);
}
BENCHMARK(BM_MatMul_200x784_60000T)->Unit(benchmark::kMillisecond)->UseRealTime();

// The same into a reused output buffer (no page faults for the 48 MB result).
void BM_MatMulInto_200x784_60000T(benchmark::State& state) {
  const Tensor a = Random({200, 784}, 3), b = Random({60000, 784}, 4);
  Tensor out = Tensor::Empty({200, 60000});
  for (auto _ : state) {
    MatMulInto(a, b, false, true, &out);
    benchmark::DoNotOptimize(out.data());
  }
  SetFlops(state, 2.0 * 200 * 784 * 60000);
}
BENCHMARK(BM_MatMulInto_200x784_60000T)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_MatMul_Batched_8x128x64x128(benchmark::State& state) {
  const Tensor a = Random({8, 128, 64}, 5), b = Random({8, 64, 128}, 6);
  for (auto _ : state) benchmark::DoNotOptimize(MatMul(a, b).data());
  SetFlops(state, 2.0 * 8 * 128 * 64 * 128);
}
BENCHMARK(BM_MatMul_Batched_8x128x64x128)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_BinaryAdd_256x512_Bias(benchmark::State& state) {
  const Tensor x = Random({256, 512}, 7), bias = Random({512}, 8);
  for (auto _ : state) benchmark::DoNotOptimize(Binary(BinaryKind::kAdd, x, bias).data());
  SetBytes(state, 2 * 256 * 512 + 512);
}
BENCHMARK(BM_BinaryAdd_256x512_Bias)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_BinaryMul_256x512_Same(benchmark::State& state) {
  const Tensor x = Random({256, 512}, 7), y = Random({256, 512}, 8);
  for (auto _ : state) benchmark::DoNotOptimize(Binary(BinaryKind::kMul, x, y).data());
  SetBytes(state, 3 * 256 * 512);
}
BENCHMARK(BM_BinaryMul_256x512_Same)->Unit(benchmark::kMicrosecond)->UseRealTime();

// [256, 1] - [256, 512]: the left operand broadcasts (swapped, negated post-op).
void BM_BinarySub_LeftBroadcast(benchmark::State& state) {
  const Tensor x = Random({256, 1}, 7), y = Random({256, 512}, 8);
  for (auto _ : state) benchmark::DoNotOptimize(Binary(BinaryKind::kSub, x, y).data());
  SetBytes(state, 2 * 256 * 512 + 256);
}
BENCHMARK(BM_BinarySub_LeftBroadcast)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_Unary_256x512(benchmark::State& state) {
  const UnaryKind kind = static_cast<UnaryKind>(state.range(0));
  Tensor x = Random({256, 512}, 9);
  if (kind == UnaryKind::kLog || kind == UnaryKind::kSqrt) x = Unary(UnaryKind::kAbs, x);
  for (auto _ : state) benchmark::DoNotOptimize(Unary(kind, x, 0.2f).data());
  SetBytes(state, 2 * 256 * 512);
}
BENCHMARK(BM_Unary_256x512)
    ->Arg(static_cast<int>(UnaryKind::kRelu))
    ->Arg(static_cast<int>(UnaryKind::kLeakyRelu))
    ->Arg(static_cast<int>(UnaryKind::kTanh))
    ->Arg(static_cast<int>(UnaryKind::kSigmoid))
    ->Arg(static_cast<int>(UnaryKind::kExp))
    ->Arg(static_cast<int>(UnaryKind::kLog))
    ->Arg(static_cast<int>(UnaryKind::kStep))
    ->ArgName("kind")
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

void BM_ReduceSum_256x512(benchmark::State& state) {
  const int axis = static_cast<int>(state.range(0));
  const Tensor x = Random({256, 512}, 10);
  for (auto _ : state) benchmark::DoNotOptimize(Reduce(ReduceKind::kSum, x, {axis}, false).data());
  SetBytes(state, 256 * 512);
}
BENCHMARK(BM_ReduceSum_256x512)->Arg(1)->Arg(0)->ArgName("axis")->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_Softmax_256x512(benchmark::State& state) {
  const bool log = state.range(0) != 0;
  const Tensor x = Random({256, 512}, 11);
  for (auto _ : state) benchmark::DoNotOptimize((log ? LogSoftmax(x, 1) : Softmax(x, 1)).data());
  SetBytes(state, 2 * 256 * 512);
}
BENCHMARK(BM_Softmax_256x512)->Arg(0)->Arg(1)->ArgName("log")->Unit(benchmark::kMicrosecond)->UseRealTime();

// The semi-dual / Sinkhorn-style soft-min over 60000 targets for a batch of 200.
void BM_LogSumExp_200x60000(benchmark::State& state) {
  const Tensor x = Random({200, 60000}, 12);
  for (auto _ : state) benchmark::DoNotOptimize(LogSumExp(x, {1}, false).data());
  SetBytes(state, 200 * 60000);
}
BENCHMARK(BM_LogSumExp_200x60000)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Transpose_784x1024(benchmark::State& state) {
  const Tensor x = Random({784, 1024}, 13);
  for (auto _ : state) benchmark::DoNotOptimize(Transpose(x).data());
  SetBytes(state, 2 * 784 * 1024);
}
BENCHMARK(BM_Transpose_784x1024)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_Permute_NCHW_to_NHWC(benchmark::State& state) {
  const Tensor x = Random({64, 32, 14, 14}, 14);
  for (auto _ : state) benchmark::DoNotOptimize(Permute(x, {0, 2, 3, 1}).data());
  SetBytes(state, 2 * x.numel());
}
BENCHMARK(BM_Permute_NCHW_to_NHWC)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_SumTo_256x512_to_512(benchmark::State& state) {
  const Tensor x = Random({256, 512}, 15);
  for (auto _ : state) benchmark::DoNotOptimize(SumTo(x, {512}).data());
  SetBytes(state, 256 * 512);
}
BENCHMARK(BM_SumTo_256x512_to_512)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Fixed costs on scalars: the loops (kAuto's choice) against a forced primitive.
void BM_TinyAdd(benchmark::State& state) {
  internal::SetKernelPath(state.range(0) != 0 ? internal::KernelPath::kPrimitive : internal::KernelPath::kAuto);
  const Tensor x = Random({16}, 16), y = Random({16}, 17);
  for (auto _ : state) benchmark::DoNotOptimize(Binary(BinaryKind::kAdd, x, y).data());
  internal::SetKernelPath(internal::KernelPath::kAuto);
}
BENCHMARK(BM_TinyAdd)->Arg(0)->Arg(1)->ArgName("primitive")->Unit(benchmark::kNanosecond);

}  // namespace
}  // namespace otgen::nn::math
