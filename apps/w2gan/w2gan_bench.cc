// Milliseconds per W2GAN generator iteration in the 2-D setting of seed 002 (A.10): G(z) = z +
// H(z) with H = MLP 2-128-128-128-128-2 (batch norm, ReLU), phi and psi MLPs 2-128-128-1 (ReLU),
// batch 256, 5 critic steps per generator step (each on fresh z, x and an independent pair for
// the interpolates of eq. 25, lambda_ineq = 200), Adam for both. One benchmark iteration is one
// generator iteration: 5 critic updates + 1 generator update, as in Algorithm 2. Data are the
// checkerboard pair (sampling included: it is part of the step).
//
//   BM_W2ganIteration/eq:0/threads:1   L_ineq on pairs and interpolates
//   BM_W2ganIteration/eq:1/threads:1   plus the c-equality penalty (eq. 23, lambda_eq = 200, as
//                                      A.10 uses): second-order autodiff through phi and psi
//   threads = oneDNN/OpenMP threads (the machine has 2 cores; 1 avoids OpenMP spin-waits when
//   the other core is busy); bf16 = 1: bf16 operands and float32 accumulation for the matmuls
//   (nn/precision.h).
//
//   bazel run -c opt //apps/w2gan:w2gan_bench
//
// Reference: the PyTorch 1.13 CPU implementation takes 12.8 ms per generator iteration on this
// machine (issue 8).
#include <cstdint>
#include <memory>
#include <vector>

#include "apps/common/config.h"
#include "apps/common/network.h"
#include "apps/w2gan/generator.h"
#include "apps/w2gan/losses.h"
#include "apps/w2gan/w2gan.h"
#include "apps/w2gan/w2gan.pb.h"
#include "benchmark/benchmark.h"
#include "data/synthetic2d.h"
#include "nn/autograd.h"
#include "nn/benchmark_harness.h"
#include "nn/layers.h"
#include "nn/onednn_context.h"
#include "nn/precision.h"
#include "optim/adam.h"

namespace otgen::apps::w2gan {
namespace {

using nn::Tensor;
using nn::Var;

void BM_W2ganIteration(benchmark::State& state) {
  const bool eq = state.range(0) != 0;
  nn::SetNumThreads(static_cast<int>(state.range(1)));
  const nn::ComputePrecisionGuard precision = nn::BenchmarkPrecision(state, 2);
  constexpr int64_t kBatch = 256;
  constexpr int kCriticSteps = 5;
  nn::Rng rng(1);
  GeneratorConfig gc;
  if (!ParseConfig("h { mlp { hidden: [128, 128, 128, 128] batch_norm: true } }", "bench", &gc).ok()) std::abort();
  NetworkConfig pc;
  if (!ParseConfig("mlp { hidden: [128, 128] }", "bench", &pc).ok()) std::abort();
  std::unique_ptr<ResidualGenerator> g = *ResidualGenerator::Create(gc, 2, rng, "generator");
  std::unique_ptr<nn::layers::Sequential> phi = *BuildNetwork(pc, {2}, {1}, rng, "phi");
  std::unique_ptr<nn::layers::Sequential> psi = *BuildNetwork(pc, {2}, {1}, rng, "psi");
  W2Potentials pot{ModulePotential(*phi), ModulePotential(*psi), {}};
  std::vector<Var> critic_params = phi->Parameters();
  for (const Var& p : psi->Parameters()) critic_params.push_back(p);
  const std::vector<Var> gen_params = g->Parameters();
  auto critic_opt = *optim::Adam::Create(critic_params, {.lr = 5e-4f, .beta1 = 0.5f, .beta2 = 0.9f});
  auto gen_opt = *optim::Adam::Create(gen_params, {.lr = 1e-4f, .beta1 = 0.5f, .beta2 = 0.9f});
  data::Synthetic2dPair pair = *data::MakeSynthetic2dPair("checkerboard");
  const W2CriticLossOptions options{.lambda_ineq = 200.0f, .lambda_eq = eq ? 200.0f : 0.0f};
  Tensor z, x, z2, x2;
  auto generate = [&](const Tensor& in) { return Var((*g->Forward(Var(in))).value()); };
  const int64_t macs_before_loop = nn::ProductMacs();
  for (auto _ : state) {
    for (int t = 0; t < kCriticSteps; ++t) {
      W2CriticBatch b;
      {
        nn::NoGradGuard no_grad;
        pair.source->SampleInto(kBatch, rng, &z);
        pair.target->SampleInto(kBatch, rng, &x);
        pair.source->SampleInto(kBatch, rng, &z2);
        pair.target->SampleInto(kBatch, rng, &x2);
        b = {generate(z), Var(x), generate(z2), Var(x2)};
      }
      W2CriticTerms terms = *W2CriticLoss(pot, b, rng, options);
      critic_opt->ZeroGrad();
      SetGradients(terms.loss, critic_params);
      critic_opt->Step();
    }
    pair.source->SampleInto(kBatch, rng, &z);
    const Var loss = *W2GeneratorLoss(pot.phi, *g->Forward(Var(z)));
    gen_opt->ZeroGrad();
    SetGradients(loss, gen_params);
    gen_opt->Step();
    benchmark::DoNotOptimize(loss.item());
  }
  nn::SetProductRateCounters(state, nn::ProductMacs() - macs_before_loop);
}
BENCHMARK(BM_W2ganIteration)
    ->ArgNames({"eq", "threads", "bf16"})
    ->ArgsProduct({{0, 1}, {1, 2}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace otgen::apps::w2gan
