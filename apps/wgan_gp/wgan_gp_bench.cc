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
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "apps/common/config.h"
#include "apps/wgan_gp/wgan_gp.h"
#include "benchmark/benchmark.h"
#include "nn/benchmark_harness.h"
#include "nn/precision.h"
#include "nn/status_macros.h"

namespace otgen::apps::wgan_gp {
namespace {

// The trainer of the config at `path` (relative to the runfiles root under `bazel run`), with
// the data batch size replaced when `batch_size` > 0.
absl::StatusOr<std::unique_ptr<WganGpTrainer>> CreateTrainer(const char* path, int64_t batch_size) {
  WganGpConfig config;
  OTGEN_RETURN_IF_ERROR(LoadConfig(path, &config));
  if (batch_size > 0) config.mutable_data()->set_batch_size(batch_size);
  return WganGpTrainer::Create(config);
}

// Argument bf16: 0 = float32, 1 = bf16 operands and float32 accumulation for the networks'
// matmuls and convolutions (run.precision: BFLOAT16, nn/precision.h). A config or data that
// cannot be loaded skips the benchmark with the status message.
void Run(benchmark::State& state, const char* path, int64_t batch_size = 0) {
  const nn::ComputePrecisionGuard precision = nn::BenchmarkPrecision(state, 0);
  absl::StatusOr<std::unique_ptr<WganGpTrainer>> created = CreateTrainer(path, batch_size);
  absl::Status status = created.status();
  for (int i = 0; i < 2 && status.ok(); ++i) status = (*created)->Iteration().status();  // warm-up
  if (!status.ok()) {
    state.SkipWithError(status.ToString().c_str());
    return;
  }
  WganGpTrainer& t = **created;
  const int64_t macs_before_loop = nn::ProductMacs();
  for (auto _ : state) benchmark::DoNotOptimize(t.Iteration().value());
  nn::SetProductRateCounters(state, nn::ProductMacs() - macs_before_loop);
}

void BM_WganGpToy(benchmark::State& state) { Run(state, "apps/wgan_gp/configs/wgangp_toy_8gaussians.pbtxt"); }
BENCHMARK(BM_WganGpToy)->ArgName("bf16")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

void BM_WganGpDcganMnist(benchmark::State& state) {
  Run(state, "apps/wgan_gp/configs/wgangp_mnist_dcgan.pbtxt", /*batch_size=*/64);
}
BENCHMARK(BM_WganGpDcganMnist)->ArgName("bf16")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);

}  // namespace
}  // namespace otgen::apps::wgan_gp
