// wgan_gp: trains a WGAN-GP / WGAN-LP / weight-clipped WGAN (seed 004 Section 5) from a text
// config (apps/wgan_gp/wgan_gp.proto; default: configs/wgangp_toy_8gaussians.pbtxt).
//
//   bazel run -c opt //apps/wgan_gp -- --config=apps/wgan_gp/configs/wgangp_toy_25gaussians.pbtxt
//       --output_dir=out/wgangp_25 [--seed=1] [--steps=N] [--threads=2] [--resume]
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "apps/common/app_config.h"
#include "apps/common/flags.h"
#include "apps/eval/plot.h"
#include "apps/wgan_gp/default_config.h"
#include "apps/wgan_gp/wgan_gp.h"

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  namespace app = otgen::apps::wgan_gp;
  app::WganGpConfig config;
  absl::Status s = otgen::apps::PrepareAppConfigFromFlags(
      otgen::kDefaultWganGpConfig, "apps/wgan_gp/configs/wgangp_toy_8gaussians.pbtxt",
      [](const google::protobuf::Message& m) { return app::ValidateWganGpConfig(static_cast<const app::WganGpConfig&>(m)); },
      &config);
  if (!s.ok()) {
    std::fprintf(stderr, "wgan_gp: %s\n", s.ToString().c_str());
    return 1;
  }
  absl::StatusOr<otgen::apps::TrainingLoopResult> r = app::RunWganGp(config, absl::GetFlag(FLAGS_resume));
  int code = 0;
  if (!r.ok()) {
    std::fprintf(stderr, "wgan_gp: %s\n", r.status().ToString().c_str());
    code = 1;
  } else {
    std::printf("%s\n", r->Summary().c_str());
    for (const auto& [name, value] : r->last_metrics) std::printf("  %-18s %.6g\n", name.c_str(), value);
    std::printf("outputs in %s: metrics.csv, samples.npy, samples.png, samples_<step>.png, losses.png, critic.png, "
                "ckpt-<step>.pb, config.pbtxt\n",
                config.run().output_dir().c_str());
    if (r->stopped_by_signal) code = 128 + r->signal;
  }
  otgen::eval::ReleasePlotFontCaches();
  return code;
}
