// The w2gan binary: W2GAN (seed 002) and its baselines from a text-proto config.
//
//   bazel run -c opt //apps/w2gan -- --config=apps/w2gan/configs/fig2_checkerboard_w2gan.pbtxt
//       --output_dir=otgen_runs/w2gan/checkerboard
//   bazel run -c opt //apps/w2gan -- --config=apps/w2gan/configs/table1_usps_to_mnist_w2gan.pbtxt
//       --usps_path=../shared/data/usps/usps.h5
//
// Common flags (apps/common/flags.h): --config (default: the built-in
// fig2_checkerboard_w2gan.pbtxt), --output_dir, --seed, --steps, --threads, --resume.
// --usps_path overrides data.domain_adaptation.usps_path. Exit status: 0 on success, 1 on an
// error, 128 + signal when stopped by SIGINT/SIGTERM (after a checkpoint; --resume continues).
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "apps/common/app_config.h"
#include "apps/common/flags.h"
#include "apps/eval/plot.h"
#include "apps/w2gan/default_config.h"
#include "apps/w2gan/w2gan.h"
#include "apps/w2gan/w2gan.pb.h"

ABSL_FLAG(std::string, usps_path, "",
          "USPS HDF5 file for domain adaptation (overrides data.domain_adaptation.usps_path when set)");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  using otgen::apps::w2gan::W2ganConfig;
  W2ganConfig config;
  const std::string usps_path = absl::GetFlag(FLAGS_usps_path);
  // PrepareAppConfigFromFlags validates `config` itself after the file and the common flags are
  // applied and before config.pbtxt is written: --usps_path is applied at that point, so the
  // effective config on disk records it.
  absl::Status status = otgen::apps::PrepareAppConfigFromFlags(
      otgen::kDefaultW2ganConfig, "apps/w2gan/configs/fig2_checkerboard_w2gan.pbtxt",
      [&config, &usps_path](const google::protobuf::Message& message) -> absl::Status {
        if (!usps_path.empty() && &message == &config) {
          if (!config.data().has_domain_adaptation()) {
            return absl::InvalidArgumentError("--usps_path: the config has no data.domain_adaptation");
          }
          config.mutable_data()->mutable_domain_adaptation()->set_usps_path(usps_path);
        }
        return otgen::apps::w2gan::ValidateW2ganMessage(message);
      },
      &config);
  if (!status.ok()) {
    std::fprintf(stderr, "w2gan: %s\n", status.ToString().c_str());
    otgen::eval::ReleasePlotFontCaches();
    return 1;
  }
  absl::StatusOr<otgen::apps::TrainingLoopResult> result =
      otgen::apps::w2gan::RunW2gan(config, absl::GetFlag(FLAGS_resume));
  int exit_code = 0;
  if (!result.ok()) {
    std::fprintf(stderr, "w2gan: %s\n", result.status().ToString().c_str());
    exit_code = 1;
  } else {
    std::printf("%s\n", result->Summary().c_str());
    for (const auto& [name, value] : result->last_metrics) std::printf("  %-28s %.6g\n", name.c_str(), value);
    std::printf("outputs: %s (metrics.csv, figures, samples.npy, checkpoints)\n", config.run().output_dir().c_str());
    if (result->stopped_by_signal) exit_code = 128 + result->signal;
  }
  otgen::eval::ReleasePlotFontCaches();
  return exit_code;
}
