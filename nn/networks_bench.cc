// End-to-end benchmarks of the networks of otgen's experiments, built from nn/layers.h and
// trained as the apps train them (compare with the PyTorch timings on the same machine):
//
//   BM_LinearForwardBackward  Linear(512, 512), batch 256: forward, backward to x, W and b.
//   BM_WganGpToy              G = MLP 2-512-512-512-2, D = MLP 2-512-512-512-1 (ReLU), batch 256.
//   BM_WganGpDcganMnist       WGAN-GP MNIST DCGAN (seed 004), batch 64: critic
//                             Conv(1,64,5,2,2)-LReLU-Conv(64,128,5,2,2)-LReLU-Conv(128,256,5,2,2)
//                             -LReLU-Flatten-Linear(4096,1); generator Linear(128,4096)-BN-ReLU
//                             -[256,4,4]-ConvT(256,128,5,2,2)-BN-ReLU-ConvT(128,64,5,2,2,op 1)-BN
//                             -ReLU-ConvT(64,1,5,2,2,op 1)-Tanh (4 -> 7 -> 14 -> 28).
//     One iteration of either WGAN-GP benchmark is one generator iteration: 5 critic steps
//     (real and fake batches, gradient penalty lambda 10 at random interpolates through
//     Grad with create_graph, Adam(1e-4, 0.5, 0.9)) and 1 generator step. Real data are
//     synthetic (8 Gaussians / uniform noise images): loading is not measured.
//   BM_SdotGeneratorForward   SDOT's DCGAN generator (seed 000), batch 200, training mode:
//                             Linear(100, 256*7*7)-BN-ReLU-ConvT(256,128,4,2,1)-BN-ReLU
//                             -ConvT(128,64,4,2,1)-BN-ReLU-ConvT(64,1,3,1,1)-Tanh, no recording.
//
//   bazel run -c opt //nn:networks_bench
//   bazel run -c opt //nn:networks_bench -- --benchmark_filter=Toy
//
// Each benchmark runs twice: /bf16:0 in float32, /bf16:1 with bf16 operands and float32
// accumulation for the matmuls and convolutions (nn/precision.h; everything else float32).
//
// The *Phases benchmarks run the same iterations with wall-clock laps around each part of
// the steps (generator forward, critic forwards, penalty gradient with create_graph,
// parameter backward, Adam) and report milliseconds per iteration, to see where the time
// goes. GFLOP counters count 2 * MACs of the GEMMs and convolutions only.
//
// The machine is shared with concurrent compiles and OpenMP threads stall when a core is
// taken; for stable timings run the binary at a higher priority than the builds.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "benchmark/benchmark.h"
#include "nn/autograd.h"
#include "nn/benchmark_harness.h"
#include "nn/layers.h"
#include "nn/onednn_context.h"
#include "nn/ops.h"
#include "nn/precision.h"
#include "nn/random.h"
#include "nn/tensor.h"
#include "optim/adam.h"

namespace otgen::nn {
namespace {

namespace L = layers;

// Argument 0 of every benchmark: 0 = float32, 1 = bf16 operands for the matmuls and
// convolutions (mixed precision, nn/precision.h; BenchmarkPrecision). Each reports GFLOP per
// iteration and GFLOP/s (nn/benchmark_harness.h).

// ---- Linear ----------------------------------------------------------------------------------

void BM_LinearForwardBackward(benchmark::State& state) {
  const ComputePrecisionGuard precision = BenchmarkPrecision(state, 0);
  constexpr int64_t kBatch = 256, kIn = 512, kOut = 512;
  Rng rng(1);
  L::Linear linear(kIn, kOut, rng);
  Var x(Tensor::Normal({kBatch, kIn}, 0, 1, rng), /*requires_grad=*/true);
  const Var cotangent = Var::Constant(Tensor::Normal({kBatch, kOut}, 0, 1, rng));
  const int64_t macs_before_loop = ProductMacs();
  for (auto _ : state) {
    Var y = linear.Forward(x).value();
    linear.ZeroGrad();
    x.ZeroGrad();
    Backward(y, cotangent);
    benchmark::DoNotOptimize(x.grad().data());
  }
  SetProductRateCounters(state, ProductMacs() - macs_before_loop);
}
BENCHMARK(BM_LinearForwardBackward)->ArgName("bf16")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();

// ---- WGAN-GP training step ---------------------------------------------------------------------

// Sets each parameter's .grad() to d loss / d parameter, without differentiating anything
// else (Backward would also differentiate the interpolates, a leaf that requires grad).
void SetGradients(const Var& loss, std::vector<Var>& params) {
  std::vector<Var> grads = Grad({loss}, params, {}, {.allow_unused = true});
  for (size_t i = 0; i < params.size(); ++i) {
    if (grads[i].defined()) {
      params[i].set_grad(grads[i].value());
    } else {
      params[i].ZeroGrad();
    }
  }
}

// Accumulates the time since the previous lap into a field of Phases (no-op without Phases).
template <typename P>
class LapTimer {
 public:
  explicit LapTimer(P* phases) : phases_(phases), last_(std::chrono::steady_clock::now()) {}
  void Lap(double P::*field) {
    if (phases_ == nullptr) return;
    const auto now = std::chrono::steady_clock::now();
    phases_->*field += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }

 private:
  P* phases_;
  std::chrono::steady_clock::time_point last_;
};

class WganGp {
 public:
  // `sample_real` fills a batch of real data; `latent` is the generator's input width.
  WganGp(std::unique_ptr<Module> generator, std::unique_ptr<Module> critic, int64_t batch, int64_t latent,
         std::function<Tensor(Rng&)> sample_real)
      : g_(std::move(generator)),
        d_(std::move(critic)),
        batch_(batch),
        latent_(latent),
        sample_real_(std::move(sample_real)),
        rng_(42) {
    g_params_ = g_->Parameters();
    d_params_ = d_->Parameters();
    const optim::AdamOptions adam{.lr = 1e-4f, .beta1 = 0.5f, .beta2 = 0.9f};
    g_adam_ = std::make_unique<optim::Adam>(g_params_, adam);
    d_adam_ = std::make_unique<optim::Adam>(d_params_, adam);
  }

  Tensor Noise() { return Tensor::Normal({batch_, latent_}, 0, 1, rng_); }

  // x_hat = eps real + (1 - eps) fake, eps ~ U(0, 1) per sample.
  Tensor Interpolate(const Tensor& real, const Tensor& fake) {
    Tensor out = Tensor::Empty(real.shape());
    const int64_t per = real.numel() / batch_;
    for (int64_t i = 0; i < batch_; ++i) {
      const float eps = rng_.Uniform();
      const float* r = real.data() + i * per;
      const float* f = fake.data() + i * per;
      float* o = out.data() + i * per;
      for (int64_t k = 0; k < per; ++k) o[k] = eps * r[k] + (1.0f - eps) * f[k];
    }
    return out;
  }

  // Wall-clock seconds spent in each part of the steps (accumulated when timing is on).
  struct Phases {
    double g_forward = 0, d_forward = 0, penalty_grad = 0, backward = 0, adam = 0;
  };

  void CriticStep(Phases* phases = nullptr) {
    LapTimer<Phases> t(phases);
    const Tensor real = sample_real_(rng_);
    Tensor fake;
    {
      NoGradGuard no_grad;
      fake = g_->Forward(Var::Constant(Noise())).value().value();
    }
    t.Lap(&Phases::g_forward);
    Var d_real = d_->Forward(Var::Constant(real)).value();
    Var d_fake = d_->Forward(Var::Constant(fake)).value();
    Var x_hat(Interpolate(real, fake), /*requires_grad=*/true);
    Var d_hat = d_->Forward(x_hat).value();
    t.Lap(&Phases::d_forward);
    Var grad = Grad({SumAll(d_hat)}, {x_hat}, {}, {.create_graph = true})[0];
    Var penalty = MeanAll(Square(AddScalar(RowNorm(grad), -1.0f)));
    Var loss = Add(Sub(MeanAll(d_fake), MeanAll(d_real)), MulScalar(penalty, 10.0f));
    t.Lap(&Phases::penalty_grad);
    SetGradients(loss, d_params_);
    t.Lap(&Phases::backward);
    d_adam_->Step();
    t.Lap(&Phases::adam);
  }

  void GeneratorStep(Phases* phases = nullptr) {
    LapTimer<Phases> t(phases);
    Var fake = g_->Forward(Var::Constant(Noise())).value();
    t.Lap(&Phases::g_forward);
    Var loss = Neg(MeanAll(d_->Forward(fake).value()));
    t.Lap(&Phases::d_forward);
    SetGradients(loss, g_params_);
    t.Lap(&Phases::backward);
    g_adam_->Step();
    t.Lap(&Phases::adam);
  }

  void Iteration(Phases* critic = nullptr, Phases* generator = nullptr) {
    for (int k = 0; k < 5; ++k) CriticStep(critic);
    GeneratorStep(generator);
  }

 private:
  std::unique_ptr<Module> g_, d_;
  int64_t batch_, latent_;
  std::function<Tensor(Rng&)> sample_real_;
  Rng rng_;
  std::vector<Var> g_params_, d_params_;
  std::unique_ptr<optim::Adam> g_adam_, d_adam_;
};

std::unique_ptr<WganGp> MakeToy() {
  constexpr int64_t kBatch = 256;
  Rng rng(1);
  auto g = L::Mlp({2, 512, 512, 512, 2}, L::ActivationKind::kRelu, L::ActivationKind::kNone, rng).value();
  auto d = L::Mlp({2, 512, 512, 512, 1}, L::ActivationKind::kRelu, L::ActivationKind::kNone, rng).value();
  // 8 Gaussians on a circle of radius 2, std 0.02 (the WGAN-GP toy data set).
  auto real = [](Rng& r) {
    Tensor x = Tensor::Empty({kBatch, 2});
    for (int64_t i = 0; i < kBatch; ++i) {
      const double angle = 2 * M_PI * static_cast<double>(r.UniformInt(8)) / 8;
      x.data()[2 * i] = static_cast<float>(2 * std::cos(angle)) + 0.02f * r.Normal();
      x.data()[2 * i + 1] = static_cast<float>(2 * std::sin(angle)) + 0.02f * r.Normal();
    }
    return x;
  };
  return std::make_unique<WganGp>(std::move(g), std::move(d), kBatch, 2, real);
}

std::unique_ptr<Module> MakeDcganCritic(Rng& rng) {
  auto d = std::make_unique<L::Sequential>();
  d->Emplace<L::Conv2d>(1, 64, 5, 2, 2, rng);
  d->Emplace<L::LeakyReLU>(0.2f);
  d->Emplace<L::Conv2d>(64, 128, 5, 2, 2, rng);
  d->Emplace<L::LeakyReLU>(0.2f);
  d->Emplace<L::Conv2d>(128, 256, 5, 2, 2, rng);
  d->Emplace<L::LeakyReLU>(0.2f);
  d->Emplace<L::Flatten>();
  d->Emplace<L::Linear>(4096, 1, rng);
  return d;
}

std::unique_ptr<Module> MakeDcganGenerator(Rng& rng) {
  auto g = std::make_unique<L::Sequential>();
  g->Emplace<L::Linear>(128, 4096, rng);
  g->Emplace<L::BatchNorm1d>(4096);
  g->Emplace<L::ReLU>();
  g->Emplace<L::Reshape>(Shape{256, 4, 4});
  g->Emplace<L::ConvTranspose2d>(256, 128, 5, 2, 2, 0, rng);  // 4 -> 7
  g->Emplace<L::BatchNorm2d>(128);
  g->Emplace<L::ReLU>();
  g->Emplace<L::ConvTranspose2d>(128, 64, 5, 2, 2, 1, rng);  // 7 -> 14
  g->Emplace<L::BatchNorm2d>(64);
  g->Emplace<L::ReLU>();
  g->Emplace<L::ConvTranspose2d>(64, 1, 5, 2, 2, 1, rng);  // 14 -> 28
  g->Emplace<L::Tanh>();
  return g;
}

std::unique_ptr<WganGp> MakeDcgan() {
  constexpr int64_t kBatch = 64;
  Rng rng(1);
  auto g = MakeDcganGenerator(rng);
  auto d = MakeDcganCritic(rng);
  auto real = [](Rng& r) { return Tensor::Uniform({kBatch, 1, 28, 28}, -1.0f, 1.0f, r); };
  return std::make_unique<WganGp>(std::move(g), std::move(d), kBatch, 128, real);
}

void BM_WganGpToy(benchmark::State& state) {
  const ComputePrecisionGuard precision = BenchmarkPrecision(state, 0);
  auto gan = MakeToy();
  gan->Iteration();  // warm-up: primitive creation, first allocations
  const int64_t macs_before_loop = ProductMacs();
  for (auto _ : state) gan->Iteration();
  SetProductRateCounters(state, ProductMacs() - macs_before_loop);
}
BENCHMARK(BM_WganGpToy)->ArgName("bf16")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

void BM_WganGpDcganMnist(benchmark::State& state) {
  const ComputePrecisionGuard precision = BenchmarkPrecision(state, 0);
  auto gan = MakeDcgan();
  gan->Iteration();
  const int64_t macs_before_loop = ProductMacs();
  for (auto _ : state) gan->Iteration();
  SetProductRateCounters(state, ProductMacs() - macs_before_loop);
}
BENCHMARK(BM_WganGpDcganMnist)->ArgName("bf16")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);

// Where the time of a generator iteration goes: milliseconds per iteration in each phase,
// summed over the 5 critic steps ("critic_*") and for the generator step ("gen_*").
void RunPhases(benchmark::State& state, WganGp& gan) {
  gan.Iteration();
  WganGp::Phases critic, generator;
  for (auto _ : state) gan.Iteration(&critic, &generator);
  const auto per_iteration = [&](double seconds) {
    return benchmark::Counter(seconds * 1e3 / static_cast<double>(state.iterations()));
  };
  state.counters["critic_g_fwd_ms"] = per_iteration(critic.g_forward);
  state.counters["critic_d_fwd_ms"] = per_iteration(critic.d_forward);
  state.counters["critic_gp_grad_ms"] = per_iteration(critic.penalty_grad);
  state.counters["critic_backward_ms"] = per_iteration(critic.backward);
  state.counters["critic_adam_ms"] = per_iteration(critic.adam);
  state.counters["gen_fwd_ms"] = per_iteration(generator.g_forward + generator.d_forward);
  state.counters["gen_backward_ms"] = per_iteration(generator.backward);
  state.counters["gen_adam_ms"] = per_iteration(generator.adam);
}

void BM_WganGpToyPhases(benchmark::State& state) {
  const ComputePrecisionGuard precision = BenchmarkPrecision(state, 0);
  auto gan = MakeToy();
  RunPhases(state, *gan);
}
BENCHMARK(BM_WganGpToyPhases)->ArgName("bf16")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

void BM_WganGpDcganMnistPhases(benchmark::State& state) {
  const ComputePrecisionGuard precision = BenchmarkPrecision(state, 0);
  auto gan = MakeDcgan();
  RunPhases(state, *gan);
}
BENCHMARK(BM_WganGpDcganMnistPhases)->ArgName("bf16")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);

// ---- SDOT generator --------------------------------------------------------------------------

void BM_SdotGeneratorForward(benchmark::State& state) {
  const ComputePrecisionGuard precision = BenchmarkPrecision(state, 0);
  constexpr int64_t kBatch = 200;
  Rng rng(1);
  L::Sequential g;
  g.Emplace<L::Linear>(100, 256 * 7 * 7, rng);
  g.Emplace<L::BatchNorm1d>(256 * 7 * 7);
  g.Emplace<L::ReLU>();
  g.Emplace<L::Reshape>(Shape{256, 7, 7});
  g.Emplace<L::ConvTranspose2d>(256, 128, 4, 2, 1, 0, rng);  // 7 -> 14
  g.Emplace<L::BatchNorm2d>(128);
  g.Emplace<L::ReLU>();
  g.Emplace<L::ConvTranspose2d>(128, 64, 4, 2, 1, 0, rng);  // 14 -> 28
  g.Emplace<L::BatchNorm2d>(64);
  g.Emplace<L::ReLU>();
  g.Emplace<L::ConvTranspose2d>(64, 1, 3, 1, 1, 0, rng);  // 28 -> 28
  g.Emplace<L::Tanh>();
  L::InitDcgan(g, rng);
  const Var z = Var::Constant(Tensor::Normal({kBatch, 100}, 0, 1, rng));
  NoGradGuard no_grad;
  { benchmark::DoNotOptimize(g.Forward(z).value().value().data()); }
  const int64_t macs_before_loop = ProductMacs();
  for (auto _ : state) {
    Var y = g.Forward(z).value();
    benchmark::DoNotOptimize(y.value().data());
  }
  SetProductRateCounters(state, ProductMacs() - macs_before_loop);
}
BENCHMARK(BM_SdotGeneratorForward)->ArgName("bf16")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace otgen::nn
