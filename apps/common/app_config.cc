#include "apps/common/app_config.h"

#include <cstdio>

#include "absl/flags/flag.h"
#include "apps/common/flags.h"
#include "nn/onednn_context.h"
#include "nn/precision.h"
#include "nn/status_macros.h"

namespace otgen::apps {

absl::Status PrepareAppConfig(const AppConfigSources& sources, const ConfigValidator& validate,
                              google::protobuf::Message* config) {
  if (sources.config_path.empty()) {
    OTGEN_RETURN_IF_ERROR(ParseConfig(sources.default_text, sources.default_name, config));
  } else {
    OTGEN_RETURN_IF_ERROR(LoadConfig(ResolveInputPath(sources.config_path), config));
  }
  OTGEN_RETURN_IF_ERROR(ApplyOverrides(sources.overrides, config));
  OTGEN_ASSIGN_OR_RETURN(RunConfig run, GetRunConfig(*config));
  const std::string output_dir = ResolveOutputPath(run.output_dir());
  if (output_dir != run.output_dir()) {
    ConfigOverrides absolute;
    absolute.output_dir = output_dir;
    OTGEN_RETURN_IF_ERROR(ApplyOverrides(absolute, config));
  }
  OTGEN_RETURN_IF_ERROR(ValidateCommon(*config));
  if (validate) OTGEN_RETURN_IF_ERROR(validate(*config));
  OTGEN_RETURN_IF_ERROR(MakeDirectories(output_dir));
  OTGEN_RETURN_IF_ERROR(WriteConfig(output_dir, *config));
  if (sources.print) {
    std::printf("# effective config (also in %s/config.pbtxt)\n%s\n", output_dir.c_str(),
                ConfigToText(*config).c_str());
    std::fflush(stdout);
  }
  if (run.threads() > 0) nn::SetNumThreads(run.threads());
  nn::SetDefaultComputePrecision(ComputePrecisionOf(run));
  return absl::OkStatus();
}

absl::Status PrepareAppConfigFromFlags(const std::string& default_text, const std::string& default_name,
                                       const ConfigValidator& validate, google::protobuf::Message* config) {
  AppConfigSources sources;
  sources.config_path = absl::GetFlag(FLAGS_config);
  sources.default_text = default_text;
  sources.default_name = default_name;
  sources.overrides = OverridesFromFlags();
  return PrepareAppConfig(sources, validate, config);
}

}  // namespace otgen::apps
