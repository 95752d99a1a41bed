// Milliseconds per SWGAN generator iteration on grid25 (seed 001 Table 1: batch 128 x 128,
// MLPs 2 x 128, L1 cost, norm-2 dual with lambda 0.01), discriminator steps included:
//   BM_SwganGrid25/20   the Table 1 setting with the eq. 26 stop disabled: always 20
//                       discriminator steps (the worst case of a generator iteration);
//   BM_SwganGrid25Stop  the config as is (dynamic stop, at most 20 steps); the counter
//                       disc_steps is the mean number of discriminator steps taken.
//
//   bazel run -c opt //apps/swgan:swgan_bench
#include <cstdint>
#include <memory>

#include "apps/common/config.h"
#include "apps/swgan/swgan.h"
#include "benchmark/benchmark.h"
#include "nn/benchmark_harness.h"

namespace otgen::apps::swgan {
namespace {

SwganConfig GridConfig() {
  SwganConfig config;
  if (!LoadConfig("apps/swgan/configs/seed001_table1_grid25_d2.pbtxt", &config).ok()) std::abort();
  return config;
}

void Run(benchmark::State& state, SwganConfig config) {
  std::unique_ptr<SwganTrainer> t = SwganTrainer::Create(config).value();
  int64_t step = 1;
  for (int i = 0; i < 3; ++i) (void)t->Iteration(step++).value();  // warm-up
  double disc = 0;
  const int64_t macs_before_loop = nn::ProductMacs();
  for (auto _ : state) disc += t->Iteration(step++).value().at("steps_gen_data");
  nn::SetProductRateCounters(state, nn::ProductMacs() - macs_before_loop);
  state.counters["disc_steps"] = disc / static_cast<double>(state.iterations());
}

void BM_SwganGrid25(benchmark::State& state) {
  SwganConfig config = GridConfig();
  config.mutable_dual()->set_stop_tolerance(0);
  config.mutable_dual()->set_max_steps(static_cast<int>(state.range(0)));
  Run(state, config);
}
BENCHMARK(BM_SwganGrid25)->Arg(20)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

void BM_SwganGrid25Stop(benchmark::State& state) { Run(state, GridConfig()); }
BENCHMARK(BM_SwganGrid25Stop)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

}  // namespace
}  // namespace otgen::apps::swgan
