#include "apps/common/flags.h"

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, config, "", "Text-proto config of the app (empty: the built-in default).");
ABSL_FLAG(absl::optional<std::string>, output_dir, absl::nullopt, "Overrides run.output_dir.");
ABSL_FLAG(absl::optional<uint64_t>, seed, absl::nullopt, "Overrides run.seed.");
ABSL_FLAG(absl::optional<int64_t>, steps, absl::nullopt, "Overrides schedule.steps.");
ABSL_FLAG(absl::optional<int32_t>, threads, absl::nullopt, "Overrides run.threads (0 = all cores).");
ABSL_FLAG(absl::optional<std::string>, precision, absl::nullopt,
          "Overrides run.precision: float32 or bf16 (bf16 operands, float32 accumulation, for the networks' "
          "matmuls and convolutions).");
ABSL_FLAG(bool, resume, false, "Continue from the newest checkpoint in the output folder.");

namespace otgen::apps {

ConfigOverrides OverridesFromFlags() {
  ConfigOverrides o;
  if (auto v = absl::GetFlag(FLAGS_output_dir); v.has_value()) o.output_dir = *v;
  if (auto v = absl::GetFlag(FLAGS_seed); v.has_value()) o.seed = *v;
  if (auto v = absl::GetFlag(FLAGS_steps); v.has_value()) o.steps = *v;
  if (auto v = absl::GetFlag(FLAGS_threads); v.has_value()) o.threads = *v;
  if (auto v = absl::GetFlag(FLAGS_precision); v.has_value()) o.precision = *v;
  return o;
}

}  // namespace otgen::apps
