// The start of every app's main(): the effective configuration of a run.
//
//   1. the config is read from --config (a text proto; a relative path is tried as given, then
//      against $BUILD_WORKING_DIRECTORY, the folder `bazel run` was called from), or parsed
//      from the app's built-in default when --config is empty;
//   2. --output_dir, --seed, --steps, --threads and --precision override run/schedule fields;
//   3. a relative run.output_dir is made absolute against $BUILD_WORKING_DIRECTORY (so
//      `bazel run //apps/sdot -- --output_dir=out` writes next to the user, not into the
//      runfiles tree);
//   4. the common fields and then the app's own `validate` check the config; errors name the
//      field and the expected value;
//   5. output_dir is created, the effective config (every field, defaults included) is written
//      to output_dir/config.pbtxt (atomically) and printed on stdout;
//   6. oneDNN/OpenMP use run.threads threads (0 = all cores), and the networks' products the
//      precision of run.precision (nn::SetDefaultComputePrecision).
//
// Usage in an app's main (after absl::ParseCommandLine):
//   SdotConfig config;
//   absl::Status s = PrepareAppConfig(kDefaultSdotConfig, "apps/sdot/configs/default.pbtxt",
//                                     ValidateSdotConfig, &config);
//   if (!s.ok()) { std::fprintf(stderr, "sdot: %s\n", s.ToString().c_str()); return 1; }
#ifndef OTGEN_APPS_COMMON_APP_CONFIG_H_
#define OTGEN_APPS_COMMON_APP_CONFIG_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "apps/common/config.h"
#include "apps/common/user_path.h"
#include "google/protobuf/message.h"

namespace otgen::apps {

// Options of PrepareAppConfig beyond the flags (tests set them directly).
struct AppConfigSources {
  // Path of the config file; empty = parse `default_text`.
  std::string config_path;
  // Built-in default config and the name it goes by in error messages.
  std::string default_text;
  std::string default_name = "<built-in default config>";
  ConfigOverrides overrides;
  // Print the effective config on stdout.
  bool print = true;
};

// The app-specific check run after the common one.
using ConfigValidator = std::function<absl::Status(const google::protobuf::Message&)>;

// Steps 1-6 above with explicit sources.
absl::Status PrepareAppConfig(const AppConfigSources& sources, const ConfigValidator& validate,
                              google::protobuf::Message* config);

// Steps 1-6 above with the sources taken from the common flags (--config, --output_dir, --seed,
// --steps, --threads). Link //apps/common:flags.
absl::Status PrepareAppConfigFromFlags(const std::string& default_text, const std::string& default_name,
                                       const ConfigValidator& validate, google::protobuf::Message* config);

}  // namespace otgen::apps

#endif  // OTGEN_APPS_COMMON_APP_CONFIG_H_
