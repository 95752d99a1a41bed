// Milliseconds per WGAN-GP generator iteration (its critic iterations included) of the app's
// own training step (WganGpTrainer::Iteration: data batches, noise, interpolates, gradient
// penalty through Grad(create_graph), Adam updates):
//   BM_WganGpToy          configs/wgangp_toy_8gaussians.pbtxt: MLPs 3 x 512 ReLU, batch 256,
//                         5 critic steps (PyTorch 1.13 CPU on this machine: 140 ms).
//   BM_WganGpDcganMnist   configs/wgangp_mnist_dcgan.pbtxt with batch 64: DCGAN critic
//                         conv 64-128-256 stride 2 and generator, 5 critic steps, real MNIST
//                         batches (PyTorch 1.13 CPU: 1.31 s).
//
//   bazel run -c opt //apps/wgan_gp:wgan_gp_bench
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "apps/common/config.h"
#include "apps/wgan_gp/wgan_gp.h"
#include "benchmark/benchmark.h"
#include "nn/benchmark_harness.h"
#include "nn/precision.h"

namespace otgen::apps::wgan_gp {
namespace {

WganGpConfig Load(const char* path) {
  WganGpConfig config;
  if (!LoadConfig(path, &config).ok()) std::abort();
  return config;
}

// Argument bf16: 0 = float32, 1 = bf16 operands and float32 accumulation for the networks'
// matmuls and convolutions (run.precision: BFLOAT16, nn/precision.h).
void Run(benchmark::State& state, const WganGpConfig& config) {
  const nn::ComputePrecisionGuard precision = nn::BenchmarkPrecision(state, 0);
  std::unique_ptr<WganGpTrainer> t = WganGpTrainer::Create(config).value();
  for (int i = 0; i < 2; ++i) (void)t->Iteration().value();  // warm-up: primitives, buffers
  const int64_t macs_before_loop = nn::ProductMacs();
  for (auto _ : state) benchmark::DoNotOptimize(t->Iteration().value());
  nn::SetProductRateCounters(state, nn::ProductMacs() - macs_before_loop);
}

void BM_WganGpToy(benchmark::State& state) { Run(state, Load("apps/wgan_gp/configs/wgangp_toy_8gaussians.pbtxt")); }
BENCHMARK(BM_WganGpToy)->ArgName("bf16")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

void BM_WganGpDcganMnist(benchmark::State& state) {
  WganGpConfig config = Load("apps/wgan_gp/configs/wgangp_mnist_dcgan.pbtxt");
  config.mutable_data()->set_batch_size(64);
  Run(state, config);
}
BENCHMARK(BM_WganGpDcganMnist)->ArgName("bf16")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);

}  // namespace
}  // namespace otgen::apps::wgan_gp
