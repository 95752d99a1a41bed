// Benchmarks of the convolution / normalization ops on the DCGAN shapes of the experiments:
// the WGAN-GP MNIST critic (Conv2d k5 s2 p2, batch 64) and generator (ConvTranspose2d k5 s2
// p2, batch 64), and the SDOT MNIST generator (ConvTranspose2d k4 s2 p1, batch 200).
//
//   bazel run -c opt //nn:conv_ops_bench
//   bazel run -c opt //nn:conv_ops_bench -- --benchmark_filter=Sdot
//
// The second argument of BM_ConvForward / BM_ConvForwardBackward is the precision: 0 =
// float32, 1 = bf16 operands with float32 accumulation (nn/precision.h).
//
// "Forward" runs without recording; "ForwardBackward" records and back-propagates a random
// cotangent to the input and all parameters. GFLOP and GFLOP/s count 2 * the nominal MACs of
// every convolution product run (nn/work_counter.h): one per forward, two per backward pass.
//
// Timings include allocating each result Tensor (large blocks are recycled by nn/tensor.cc's
// block cache after the first iteration, so they cost no page faults). With
// OMP_NUM_THREADS=1 the CPU column is the whole work, which stays meaningful when other
// processes load the machine (OpenMP synchronization then inflates the 2-thread real time).
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "nn/autograd.h"
#include "nn/benchmark_harness.h"
#include "nn/conv_ops.h"
#include "nn/ops.h"
#include "nn/precision.h"
#include "nn/random.h"
#include "nn/tensor.h"

namespace otgen::nn {
namespace {

struct ConvSpec {
  bool transposed;
  int64_t batch, in_channels, size, out_channels, kernel, stride, padding, output_padding;
};

// Benchmark arguments index into this table.
const std::vector<ConvSpec>& Specs() {
  static const std::vector<ConvSpec>* const specs = new std::vector<ConvSpec>{
      // WGAN-GP critic, batch 64.
      {false, 64, 1, 28, 64, 5, 2, 2, 0},
      {false, 64, 64, 14, 128, 5, 2, 2, 0},
      {false, 64, 128, 7, 256, 5, 2, 2, 0},
      // WGAN-GP generator, batch 64.
      {true, 64, 256, 4, 128, 5, 2, 2, 0},
      {true, 64, 128, 7, 64, 5, 2, 2, 1},
      {true, 64, 64, 14, 1, 5, 2, 2, 1},
      // SDOT DCGAN generator, batch 200.
      {true, 200, 256, 7, 128, 4, 2, 1, 0},
      {true, 200, 128, 14, 64, 4, 2, 1, 0},
      {true, 200, 64, 28, 1, 3, 1, 1, 0},
  };
  return *specs;
}

struct ConvSetup {
  Var x, w, b;
  Tensor cotangent;
  Conv2dGeometry geometry;
};

ConvSetup MakeSetup(const ConvSpec& s, bool requires_grad) {
  Rng rng(1);
  ConvSetup c;
  c.geometry = {.stride = s.stride, .padding = s.padding, .output_padding = s.output_padding};
  c.x = Var(Tensor::Normal({s.batch, s.in_channels, s.size, s.size}, 0, 1, rng), requires_grad);
  const Shape w_shape = s.transposed ? Shape{s.in_channels, s.out_channels, s.kernel, s.kernel}
                                     : Shape{s.out_channels, s.in_channels, s.kernel, s.kernel};
  c.w = Var(Tensor::Normal(w_shape, 0, 0.05f, rng), requires_grad);
  c.b = Var(Tensor::Normal({s.out_channels}, 0, 0.1f, rng), requires_grad);
  const Var y = s.transposed ? ConvTranspose2d(c.x.Detach(), c.w.Detach(), c.b.Detach(), c.geometry)
                             : Conv2d(c.x.Detach(), c.w.Detach(), c.b.Detach(), c.geometry);
  c.cotangent = Tensor::Normal(y.shape(), 0, 1, rng);
  return c;
}

Var Apply(const ConvSpec& s, const ConvSetup& c) {
  return s.transposed ? ConvTranspose2d(c.x, c.w, c.b, c.geometry) : Conv2d(c.x, c.w, c.b, c.geometry);
}

std::string Label(const ConvSpec& s) {
  return absl::StrCat(s.transposed ? "ConvTranspose2d(" : "Conv2d(", s.in_channels, ",", s.out_channels, ",k", s.kernel,
                      ",s", s.stride, ",p", s.padding, s.output_padding ? absl::StrCat(",op", s.output_padding) : "",
                      ") on [", s.batch, ",", s.in_channels, ",", s.size, ",", s.size, "]");
}

void SetLabel(benchmark::State& state, const ConvSpec& s) { state.SetLabel(Label(s)); }

void BM_ConvForward(benchmark::State& state) {
  const ConvSpec& s = Specs()[state.range(0)];
  const ComputePrecisionGuard precision = BenchmarkPrecision(state, 1);
  const ConvSetup c = MakeSetup(s, false);
  NoGradGuard no_grad;
  const int64_t macs_before_loop = ProductMacs();
  for (auto _ : state) {
    Var y = Apply(s, c);
    benchmark::DoNotOptimize(y.value().data());
  }
  SetProductRateCounters(state, ProductMacs() - macs_before_loop);
  SetLabel(state, s);
}

void BM_ConvForwardBackward(benchmark::State& state) {
  const ConvSpec& s = Specs()[state.range(0)];
  const ComputePrecisionGuard precision = BenchmarkPrecision(state, 1);
  ConvSetup c = MakeSetup(s, true);
  const Var cotangent = Var::Constant(c.cotangent);
  const int64_t macs_before_loop = ProductMacs();
  for (auto _ : state) {
    c.x.ZeroGrad();
    c.w.ZeroGrad();
    c.b.ZeroGrad();
    Var y = Apply(s, c);
    Backward(y, cotangent);
    benchmark::DoNotOptimize(c.w.grad().data());
  }
  SetProductRateCounters(state, ProductMacs() - macs_before_loop);
  SetLabel(state, s);
}

// The transposed convolutions under each kernel choice (second argument: 0 = kAuto,
// 1 = oneDNN blocked, 2 = matmul + col2im, 3 = one stride-1 convolution per output phase;
// third: bf16), to check kAuto's choice.
void BM_ConvTransposeKernels(benchmark::State& state) {
  const ConvSpec& s = Specs()[state.range(0)];
  const internal::ConvLayout layouts[] = {internal::ConvLayout::kAuto, internal::ConvLayout::kBlocked,
                                          internal::ConvLayout::kGemm, internal::ConvLayout::kPhases};
  const char* names[] = {"auto", "onednn-blocked", "gemm", "phases"};
  internal::SetConvLayoutForTesting(layouts[state.range(1)]);
  const ComputePrecisionGuard precision = BenchmarkPrecision(state, 2);
  const ConvSetup c = MakeSetup(s, false);
  NoGradGuard no_grad;
  const int64_t macs_before_loop = ProductMacs();
  for (auto _ : state) {
    Var y = Apply(s, c);
    benchmark::DoNotOptimize(y.value().data());
  }
  SetProductRateCounters(state, ProductMacs() - macs_before_loop);
  internal::SetConvLayoutForTesting(internal::ConvLayout::kAuto);
  state.SetLabel(absl::StrCat(names[state.range(1)], state.range(2) != 0 ? " bf16 " : " ", Label(s)));
}
BENCHMARK(BM_ConvTransposeKernels)
    ->ArgNames({"spec", "layout", "bf16"})
    ->ArgsProduct({{3, 4, 6, 7}, {1, 2, 3}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The weight gradient of the critic's convolutions under each kernel choice (second argument:
// 0 = kAuto, 1 = im2col + matmul (kGemm); third: bf16), to check kAuto's choice per CPU.
void BM_ConvBackwardWeightsKernels(benchmark::State& state) {
  const ConvSpec& s = Specs()[state.range(0)];
  const internal::ConvLayout layouts[] = {internal::ConvLayout::kAuto, internal::ConvLayout::kGemm};
  const char* names[] = {"auto", "gemm"};
  internal::SetConvLayoutForTesting(layouts[state.range(1)]);
  const ComputePrecisionGuard precision = BenchmarkPrecision(state, 2);
  const ConvSetup c = MakeSetup(s, false);
  const Var grad_out = Var::Constant(c.cotangent);
  NoGradGuard no_grad;
  const int64_t macs_before_loop = ProductMacs();
  for (auto _ : state) {
    Var dw = Conv2dBackwardWeights(c.x, grad_out, c.geometry, s.kernel, s.kernel);
    benchmark::DoNotOptimize(dw.value().data());
  }
  SetProductRateCounters(state, ProductMacs() - macs_before_loop);
  internal::SetConvLayoutForTesting(internal::ConvLayout::kAuto);
  state.SetLabel(absl::StrCat(names[state.range(1)], state.range(2) != 0 ? " bf16 " : " ", Label(s)));
}
BENCHMARK(BM_ConvBackwardWeightsKernels)
    ->ArgNames({"spec", "layout", "bf16"})
    ->ArgsProduct({{0, 1, 2}, {0, 1}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK(BM_ConvForward)
    ->ArgNames({"spec", "bf16"})
    ->ArgsProduct({benchmark::CreateDenseRange(0, 8, 1), {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_ConvForwardBackward)
    ->ArgNames({"spec", "bf16"})
    ->ArgsProduct({benchmark::CreateDenseRange(0, 8, 1), {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Batch normalization of [N, C, H, W] (args: N, C, H).
void BM_BatchNorm2dTrainingForward(benchmark::State& state) {
  Rng rng(2);
  const int64_t n = state.range(0), c = state.range(1), h = state.range(2);
  const Var x(Tensor::Normal({n, c, h, h}, 0, 1, rng));
  const Var gamma(Tensor::Ones({c})), beta(Tensor::Zeros({c}));
  Tensor rm = Tensor::Zeros({c}), rv = Tensor::Ones({c});
  NoGradGuard no_grad;
  for (auto _ : state) {
    Var y = BatchNorm(x, gamma, beta, &rm, &rv);
    benchmark::DoNotOptimize(y.value().data());
  }
}

void BM_BatchNorm2dTrainingForwardBackward(benchmark::State& state) {
  Rng rng(2);
  const int64_t n = state.range(0), c = state.range(1), h = state.range(2);
  Var x(Tensor::Normal({n, c, h, h}, 0, 1, rng), true);
  Var gamma = Var::Parameter(Tensor::Ones({c})), beta = Var::Parameter(Tensor::Zeros({c}));
  const Var cotangent = Var::Constant(Tensor::Normal({n, c, h, h}, 0, 1, rng));
  Tensor rm = Tensor::Zeros({c}), rv = Tensor::Ones({c});
  for (auto _ : state) {
    x.ZeroGrad();
    gamma.ZeroGrad();
    beta.ZeroGrad();
    Var y = BatchNorm(x, gamma, beta, &rm, &rv);
    Backward(y, cotangent);
    benchmark::DoNotOptimize(x.grad().data());
  }
}

BENCHMARK(BM_BatchNorm2dTrainingForward)
    ->Args({200, 256, 7})
    ->Args({200, 128, 14})
    ->Args({200, 64, 28})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_BatchNorm2dTrainingForwardBackward)
    ->Args({200, 256, 7})
    ->Args({200, 128, 14})
    ->Args({200, 64, 28})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_LayerNormForwardBackward(benchmark::State& state) {
  Rng rng(3);
  const int64_t rows = state.range(0), features = state.range(1);
  Var x(Tensor::Normal({rows, features}, 0, 1, rng), true);
  Var gamma = Var::Parameter(Tensor::Ones({features})), beta = Var::Parameter(Tensor::Zeros({features}));
  const Var cotangent = Var::Constant(Tensor::Normal({rows, features}, 0, 1, rng));
  for (auto _ : state) {
    x.ZeroGrad();
    gamma.ZeroGrad();
    beta.ZeroGrad();
    Var y = LayerNorm(x, gamma, beta);
    Backward(y, cotangent);
    benchmark::DoNotOptimize(x.grad().data());
  }
}
BENCHMARK(BM_LayerNormForwardBackward)
    ->Args({64, 4096})
    ->Args({200, 512})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_Upsample2xForwardBackward(benchmark::State& state) {
  Rng rng(4);
  Var x(Tensor::Normal({200, 128, 14, 14}, 0, 1, rng), true);
  const Var cotangent = Var::Constant(Tensor::Normal({200, 128, 28, 28}, 0, 1, rng));
  for (auto _ : state) {
    x.ZeroGrad();
    Backward(Upsample2x(x), cotangent);
    benchmark::DoNotOptimize(x.grad().data());
  }
}
BENCHMARK(BM_Upsample2xForwardBackward)->Unit(benchmark::kMillisecond)->UseRealTime();

// The convolutional part of the SDOT DCGAN generator at batch 200, forward only:
// [200,256,7,7] -BN-ReLU- ConvT(256,128,4,2,1) -BN-ReLU- ConvT(128,64,4,2,1) -BN-ReLU-
// ConvT(64,1,3,1,1) - Tanh. (The leading Linear(100 -> 256*7*7) is a 200x100x12544 GEMM.)
void BM_SdotGeneratorConvStackForward(benchmark::State& state) {
  Rng rng(5);
  const Var h0(Tensor::Normal({200, 256, 7, 7}, 0, 1, rng));
  const Var w1(Tensor::Normal({256, 128, 4, 4}, 0, 0.02f, rng)), w2(Tensor::Normal({128, 64, 4, 4}, 0, 0.02f, rng));
  const Var w3(Tensor::Normal({64, 1, 3, 3}, 0, 0.02f, rng));
  std::vector<Var> gammas, betas;
  std::vector<Tensor> rms, rvs;
  for (int64_t c : {256, 128, 64}) {
    gammas.emplace_back(Tensor::Ones({c}));
    betas.emplace_back(Tensor::Zeros({c}));
    rms.push_back(Tensor::Zeros({c}));
    rvs.push_back(Tensor::Ones({c}));
  }
  NoGradGuard no_grad;
  const int64_t macs_before_loop = ProductMacs();
  for (auto _ : state) {
    Var h = Relu(BatchNorm(h0, gammas[0], betas[0], &rms[0], &rvs[0]));
    h = Relu(BatchNorm(ConvTranspose2d(h, w1, Var(), 2, 1), gammas[1], betas[1], &rms[1], &rvs[1]));
    h = Relu(BatchNorm(ConvTranspose2d(h, w2, Var(), 2, 1), gammas[2], betas[2], &rms[2], &rvs[2]));
    Var y = Tanh(ConvTranspose2d(h, w3, Var(), 1, 1));
    benchmark::DoNotOptimize(y.value().data());
  }
  SetProductRateCounters(state, ProductMacs() - macs_before_loop);
}
BENCHMARK(BM_SdotGeneratorConvStackForward)->Unit(benchmark::kMillisecond)->UseRealTime();

// WGAN-GP DCGAN MNIST generator step at batch 64 (convolutional parts): G's ConvT stack
// [64,256,4,4] -> [64,1,28,28], then the critic's Conv2d stack to [64,256,4,4], loss
// -mean(D(G(z))) back-propagated to G's weights (critic weights frozen, as in a generator step).
void BM_WganGpGeneratorStepConvStack(benchmark::State& state) {
  Rng rng(6);
  const Var h0(Tensor::Normal({64, 256, 4, 4}, 0, 1, rng));
  Var g1 = Var::Parameter(Tensor::Normal({256, 128, 5, 5}, 0, 0.02f, rng));
  Var g2 = Var::Parameter(Tensor::Normal({128, 64, 5, 5}, 0, 0.02f, rng));
  Var g3 = Var::Parameter(Tensor::Normal({64, 1, 5, 5}, 0, 0.02f, rng));
  Var gb1 = Var::Parameter(Tensor::Zeros({128})), gb2 = Var::Parameter(Tensor::Zeros({64}));
  Var gb3 = Var::Parameter(Tensor::Zeros({1}));
  const Var d1(Tensor::Normal({64, 1, 5, 5}, 0, 0.02f, rng)), d2(Tensor::Normal({128, 64, 5, 5}, 0, 0.02f, rng));
  const Var d3(Tensor::Normal({256, 128, 5, 5}, 0, 0.02f, rng));
  const Var db1(Tensor::Zeros({64})), db2(Tensor::Zeros({128})), db3(Tensor::Zeros({256}));
  const int64_t macs_before_loop = ProductMacs();
  for (auto _ : state) {
    for (Var* p : {&g1, &g2, &g3, &gb1, &gb2, &gb3}) p->ZeroGrad();
    Var h = Relu(ConvTranspose2d(h0, g1, gb1, 2, 2, 0));
    h = Relu(ConvTranspose2d(h, g2, gb2, 2, 2, 1));
    Var img = Tanh(ConvTranspose2d(h, g3, gb3, 2, 2, 1));
    Var c = LeakyRelu(Conv2d(img, d1, db1, 2, 2), 0.2f);
    c = LeakyRelu(Conv2d(c, d2, db2, 2, 2), 0.2f);
    c = LeakyRelu(Conv2d(c, d3, db3, 2, 2), 0.2f);
    Backward(Neg(MeanAll(c)));
    benchmark::DoNotOptimize(g1.grad().data());
  }
  SetProductRateCounters(state, ProductMacs() - macs_before_loop);
}
BENCHMARK(BM_WganGpGeneratorStepConvStack)->Unit(benchmark::kMillisecond)->UseRealTime();

// One WGAN-GP critic step's convolutional work at batch 64: critic on real, fake and
// interpolated images, the gradient penalty E(||grad_x D(x_hat)|| - 1)^2 with create_graph,
// and the backward pass to the critic weights (double backward through three convolutions).
void BM_WganGpCriticStepConvStack(benchmark::State& state) {
  Rng rng(7);
  const Var real(Tensor::Uniform({64, 1, 28, 28}, -1, 1, rng)), fake(Tensor::Uniform({64, 1, 28, 28}, -1, 1, rng));
  const Var eps(Tensor::Uniform({64, 1, 1, 1}, 0, 1, rng));
  Var d1 = Var::Parameter(Tensor::Normal({64, 1, 5, 5}, 0, 0.02f, rng));
  Var d2 = Var::Parameter(Tensor::Normal({128, 64, 5, 5}, 0, 0.02f, rng));
  Var d3 = Var::Parameter(Tensor::Normal({256, 128, 5, 5}, 0, 0.02f, rng));
  Var b1 = Var::Parameter(Tensor::Zeros({64})), b2 = Var::Parameter(Tensor::Zeros({128}));
  Var b3 = Var::Parameter(Tensor::Zeros({256}));
  auto critic = [&](const Var& x) {
    Var c = LeakyRelu(Conv2d(x, d1, b1, 2, 2), 0.2f);
    c = LeakyRelu(Conv2d(c, d2, b2, 2, 2), 0.2f);
    c = LeakyRelu(Conv2d(c, d3, b3, 2, 2), 0.2f);
    return Mean(Flatten(c), {1});  // stands in for the final Linear(4096 -> 1)
  };
  const int64_t macs_before_loop = ProductMacs();
  for (auto _ : state) {
    for (Var* p : {&d1, &d2, &d3, &b1, &b2, &b3}) p->ZeroGrad();
    Var x_hat(Add(Mul(eps, real), Mul(RSubScalar(1.0f, eps), fake)).value(), true);
    Var d_hat = critic(x_hat);
    Var grad_x = Grad({SumAll(d_hat)}, {x_hat}, {}, {.create_graph = true})[0];
    Var penalty = MeanAll(Square(AddScalar(RowNorm(grad_x, 1e-12f), -1.0f)));
    Var loss = Add(Sub(MeanAll(critic(fake)), MeanAll(critic(real))), MulScalar(penalty, 10.0f));
    Backward(loss);
    benchmark::DoNotOptimize(d1.grad().data());
  }
  SetProductRateCounters(state, ProductMacs() - macs_before_loop);
}
BENCHMARK(BM_WganGpCriticStepConvStack)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace otgen::nn
