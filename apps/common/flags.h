// The command-line flags every app shares:
//   --config=path.pbtxt   the app's text-proto config (default: the app's built-in default)
//   --output_dir=DIR      overrides run.output_dir
//   --seed=N              overrides run.seed
//   --steps=N             overrides schedule.steps
//   --threads=N           overrides run.threads (oneDNN/OpenMP threads)
//   --precision=P         overrides run.precision: float32, or bf16 (mixed precision)
//   --resume              continue from the newest checkpoint in the output folder
// Link //apps/common:flags into a binary to define them; read them after
// absl::ParseCommandLine.
#ifndef OTGEN_APPS_COMMON_FLAGS_H_
#define OTGEN_APPS_COMMON_FLAGS_H_

#include <cstdint>
#include <string>

#include "absl/flags/declare.h"
#include "absl/types/optional.h"
#include "apps/common/config.h"

ABSL_DECLARE_FLAG(std::string, config);
ABSL_DECLARE_FLAG(absl::optional<std::string>, output_dir);
ABSL_DECLARE_FLAG(absl::optional<uint64_t>, seed);
ABSL_DECLARE_FLAG(absl::optional<int64_t>, steps);
ABSL_DECLARE_FLAG(absl::optional<int32_t>, threads);
ABSL_DECLARE_FLAG(absl::optional<std::string>, precision);
ABSL_DECLARE_FLAG(bool, resume);

namespace otgen::apps {

// The overrides given by --output_dir, --seed, --steps, --threads, --precision.
ConfigOverrides OverridesFromFlags();

}  // namespace otgen::apps

#endif  // OTGEN_APPS_COMMON_FLAGS_H_
