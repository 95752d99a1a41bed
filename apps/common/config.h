// Experiment configuration: text-proto files, flag overrides, and the effective config.
//
// Every app's top-level config message has the fields `run` (otgen.apps.RunConfig) and
// `schedule` (otgen.apps.ScheduleConfig). `LoadConfig` parses a text proto file (errors
// name the file, line and column), `ApplyOverrides` sets the fields the common flags
// override (found by reflection, so it works for every app), and `WriteConfig` saves the
// effective config as output_dir/config.pbtxt (atomically).
//
//   SdotConfig config;
//   OTGEN_RETURN_IF_ERROR(LoadConfig(path, &config));
//   OTGEN_RETURN_IF_ERROR(ApplyOverrides(overrides, &config));
//   std::printf("%s", ConfigToText(config).c_str());
#ifndef OTGEN_APPS_COMMON_CONFIG_H_
#define OTGEN_APPS_COMMON_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "apps/common/experiment.pb.h"
#include "google/protobuf/message.h"
#include "nn/precision.h"

namespace otgen::apps {

// Values given on the command line; unset ones keep the config's value.
struct ConfigOverrides {
  std::optional<std::string> output_dir;
  std::optional<uint64_t> seed;
  std::optional<int64_t> steps;
  std::optional<int32_t> threads;
  // "float32"/"f32"/"fp32" or "bfloat16"/"bf16" (nn::ParseComputePrecision).
  std::optional<std::string> precision;
};

// Parses the text proto at `path` into `config` (cleared first). NotFoundError for a
// missing file; InvalidArgumentError naming file:line:column for a syntax error or an
// unknown field.
absl::Status LoadConfig(const std::string& path, google::protobuf::Message* config);
// Parses text directly (`source` names it in errors).
absl::Status ParseConfig(const std::string& text, const std::string& source, google::protobuf::Message* config);

// Sets run.output_dir / run.seed / run.threads / run.precision / schedule.steps from
// `overrides`. InvalidArgumentError when `config` lacks the `run` or `schedule` field, or
// for an unknown precision name.
absl::Status ApplyOverrides(const ConfigOverrides& overrides, google::protobuf::Message* config);

// run.precision as nn's compute precision.
nn::ComputePrecision ComputePrecisionOf(const RunConfig& run);

// The run and schedule sub-messages of an app config.
absl::StatusOr<RunConfig> GetRunConfig(const google::protobuf::Message& config);
absl::StatusOr<ScheduleConfig> GetScheduleConfig(const google::protobuf::Message& config);
// Checks the common fields: steps >= 0, checkpoint_every >= 0, ..., non-empty output_dir.
absl::Status ValidateCommon(const google::protobuf::Message& config);

// The config as text proto, with every field (defaults included) printed.
std::string ConfigToText(const google::protobuf::Message& config);
// Writes ConfigToText(config) to `directory`/config.pbtxt via a temporary file + rename.
absl::Status WriteConfig(const std::string& directory, const google::protobuf::Message& config);

// Creates `directory` and its parents (like mkdir -p).
absl::Status MakeDirectories(const std::string& directory);

}  // namespace otgen::apps

#endif  // OTGEN_APPS_COMMON_CONFIG_H_
