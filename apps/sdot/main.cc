// bazel run -c opt //apps/sdot [-- --config=apps/sdot/configs/<figure>.pbtxt --output_dir=...]
//
// Learns an MNIST generator with semi-discrete optimal transport (seed 000, Algorithm 1). With
// no --config it runs apps/sdot/configs/default.pbtxt: a DCGAN SDOT run (lambda = 0) of about
// ten minutes on two cores that produces recognisable digits, then prints where its outputs are
// and the MNIST classifier metrics of its final samples beside the real-vs-real baseline.
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "apps/common/app_config.h"
#include "apps/common/flags.h"
#include "apps/eval/plot.h"
#include "apps/sdot/default_config.h"
#include "apps/sdot/sdot.h"

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Semi-discrete OT generative networks (SDOT / SDOTNN, seed 000 Algorithm 1).\n"
      "  bazel run -c opt //apps/sdot -- [--config=apps/sdot/configs/X.pbtxt] [--output_dir=DIR]\n"
      "      [--seed=N] [--steps=N] [--threads=N] [--resume]");
  absl::ParseCommandLine(argc, argv);
  otgen::apps::sdot::SdotConfig config;
  absl::Status s = otgen::apps::PrepareAppConfigFromFlags(
      otgen::apps::sdot::kDefaultSdotConfig, "apps/sdot/configs/default.pbtxt",
      [](const google::protobuf::Message& m) {
        return otgen::apps::sdot::ValidateSdotConfig(static_cast<const otgen::apps::sdot::SdotConfig&>(m));
      },
      &config);
  if (!s.ok()) {
    std::fprintf(stderr, "sdot: %s\n", s.ToString().c_str());
    return 1;
  }
  absl::StatusOr<otgen::apps::sdot::SdotRunResult> r =
      otgen::apps::sdot::RunSdot(config, {.resume = absl::GetFlag(FLAGS_resume)});
  otgen::eval::ReleasePlotFontCaches();
  if (!r.ok()) {
    std::fprintf(stderr, "sdot: %s\n", r.status().ToString().c_str());
    return 1;
  }
  if (r->loop.stopped_by_signal) return 128 + r->loop.signal;
  return 0;
}
