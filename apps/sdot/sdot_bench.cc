// One outer iteration of seed 000's Algorithm 1 (K = 10 inner ASGD steps on psi in R^J and one
// Adam step on the generator, batches of 200) on all 60000 MNIST training images, for the MLP and
// DCGAN generators of the paper, lambda = 0 (hard c-transform) and 0.01:
//
//   bazel run -c opt //apps/sdot:sdot_bench
//
// Targets (issue 6): MLP <= 1.05 s (lambda 0) and <= 1.15 s (0.01); DCGAN <= 1.3 s and <= 1.4 s.
// PyTorch 1.13 CPU on this machine: MLP 1.30 / 1.52 s, DCGAN 4.26 / 5.31 s. The counter
// "peak_MiB" is the process's peak resident memory (VmHWM). /bf16:1 runs the generator's
// matmuls and convolutions with bf16 operands and float32 accumulation (run.precision:
// BFLOAT16, nn/precision.h); the c-transforms are the same in both.
#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "apps/common/config.h"
#include "apps/sdot/default_config.h"
#include "apps/sdot/sdot.h"
#include "benchmark/benchmark.h"
#include "data/mnist.h"
#include "nn/benchmark_harness.h"
#include "nn/precision.h"

namespace otgen::apps::sdot {
namespace {

double PeakResidentMiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0.0;
}

const nn::Tensor& MnistTargets() {
  static const nn::Tensor* targets = [] {
    auto train = data::LoadMnist("", data::Split::kTrain, {.scaling = data::PixelScaling::kSymmetric});
    if (!train.ok()) {
      std::fprintf(stderr, "%s\n", train.status().ToString().c_str());
      std::abort();
    }
    return new nn::Tensor(train->examples());
  }();
  return *targets;
}

SdotModel& Model(bool dcgan, float lambda) {
  static std::map<std::pair<bool, float>, std::unique_ptr<SdotModel>> models;
  auto& slot = models[{dcgan, lambda}];
  if (!slot) {
    SdotConfig config;
    if (!ParseConfig(kDefaultSdotConfig, "default", &config).ok()) std::abort();
    if (!dcgan) {
      config.mutable_generator()->Clear();
      if (!ParseConfig("mlp { hidden: [256, 512, 1024] activation: RELU output_activation: TANH }", "mlp",
                       config.mutable_generator())
               .ok()) {
        std::abort();
      }
    }
    config.mutable_dual()->set_lambda(lambda);
    auto model = SdotModel::Create(config, MnistTargets());
    if (!model.ok()) {
      std::fprintf(stderr, "%s\n", model.status().ToString().c_str());
      std::abort();
    }
    slot = *std::move(model);
  }
  return *slot;
}

void BM_OuterIteration(benchmark::State& state, bool dcgan, float lambda) {
  const nn::ComputePrecisionGuard precision = nn::BenchmarkPrecision(state, 0);
  SdotModel& model = Model(dcgan, lambda);
  // Two warm-up iterations: primitive creation, buffers, and psi away from 0.
  for (int i = 0; i < 2; ++i) {
    if (!model.OuterIteration().ok()) std::abort();
  }
  const int64_t macs_before_loop = nn::ProductMacs();
  for (auto _ : state) {
    auto row = model.OuterIteration();
    if (!row.ok()) {
      state.SkipWithError(row.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(row->at("h"));
  }
  nn::SetProductRateCounters(state, nn::ProductMacs() - macs_before_loop);
  state.counters["peak_MiB"] = PeakResidentMiB();
}

// Precision argument (0 = float32, 1 = bf16) and timing settings shared by all four cases.
void OuterIterationSettings(benchmark::internal::Benchmark* b) {
  b->ArgName("bf16")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(10);
}

BENCHMARK_CAPTURE(BM_OuterIteration, Mlp_Lambda0, false, 0.0f)->Apply(OuterIterationSettings);
BENCHMARK_CAPTURE(BM_OuterIteration, Mlp_Lambda0_01, false, 0.01f)->Apply(OuterIterationSettings);
BENCHMARK_CAPTURE(BM_OuterIteration, Dcgan_Lambda0, true, 0.0f)->Apply(OuterIterationSettings);
BENCHMARK_CAPTURE(BM_OuterIteration, Dcgan_Lambda0_01, true, 0.01f)->Apply(OuterIterationSettings);

}  // namespace
}  // namespace otgen::apps::sdot
