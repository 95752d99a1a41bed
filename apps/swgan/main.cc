// swgan: trains a smoothed WGAN of seed 001 (regularized OT duals, Algorithms 1-2) from a text
// config (apps/swgan/swgan.proto; default: configs/seed001_table1_grid25_d4.pbtxt).
//
//   bazel run -c opt //apps/swgan -- --config=apps/swgan/configs/seed001_table1_grid25_d2.pbtxt
//       --output_dir=out/swgan_grid25_d2 [--seed=1] [--steps=N] [--threads=2] [--resume]
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "apps/common/app_config.h"
#include "apps/common/flags.h"
#include "apps/eval/plot.h"
#include "apps/swgan/default_config.h"
#include "apps/swgan/swgan.h"

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  namespace app = otgen::apps::swgan;
  app::SwganConfig config;
  absl::Status s = otgen::apps::PrepareAppConfigFromFlags(
      otgen::kDefaultSwganConfig, "apps/swgan/configs/seed001_table1_grid25_d4.pbtxt",
      [](const google::protobuf::Message& m) { return app::ValidateSwganConfig(static_cast<const app::SwganConfig&>(m)); },
      &config);
  if (!s.ok()) {
    std::fprintf(stderr, "swgan: %s\n", s.ToString().c_str());
    return 1;
  }
  absl::StatusOr<otgen::apps::TrainingLoopResult> r = app::RunSwgan(config, absl::GetFlag(FLAGS_resume));
  int code = 0;
  if (!r.ok()) {
    std::fprintf(stderr, "swgan: %s\n", r.status().ToString().c_str());
    code = 1;
  } else {
    std::printf("%s\n", r->Summary().c_str());
    for (const auto& [name, value] : r->last_metrics) std::printf("  %-18s %.6g\n", name.c_str(), value);
    std::printf("outputs in %s: metrics.csv, samples.npy, samples.png, samples_<step>.png, losses.png, duals.png, discriminator.png, "
                "ckpt-<step>.pb, config.pbtxt\n",
                config.run().output_dir().c_str());
    if (r->stopped_by_signal) code = 128 + r->signal;
  }
  otgen::eval::ReleasePlotFontCaches();
  return code;
}
