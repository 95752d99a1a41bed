// The checkpoints of a run: output_dir/ckpt-<step>.pb, written atomically (nn/checkpoint.h
// writes a temporary file and renames it), the newest `keep` kept, `--resume` restoring the
// newest one.
//
//   CheckpointManager checkpoints(output_dir, /*keep=*/3);
//   nn::TrainingState state{...};          // modules, optimizers, RNGs, free tensors
//   if (resume) { OTGEN_ASSIGN_OR_RETURN(bool found, checkpoints.RestoreNewest(state)); }
//   ...
//   OTGEN_RETURN_IF_ERROR(checkpoints.Save(state));   // at state.step
#ifndef OTGEN_APPS_COMMON_CHECKPOINT_MANAGER_H_
#define OTGEN_APPS_COMMON_CHECKPOINT_MANAGER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nn/checkpoint.h"

namespace otgen::apps {

class CheckpointManager {
 public:
  // `keep` = number of newest checkpoints kept (0 keeps all).
  CheckpointManager(std::string directory, int keep);

  // directory/ckpt-<step>.pb
  std::string PathFor(int64_t step) const;
  // Steps of the checkpoints present, ascending (temporary files are ignored).
  absl::StatusOr<std::vector<int64_t>> ListSteps() const;
  // Writes a checkpoint of `state` at state.step, then deletes all but the newest `keep`.
  absl::Status Save(const nn::TrainingState& state) const;
  // Restores the newest checkpoint into `state`; false (and `state` untouched) when there is
  // none. A newest checkpoint that is corrupt is an error (DataLoss naming the file): the
  // run does not silently fall back to an older one.
  absl::StatusOr<bool> RestoreNewest(nn::TrainingState& state) const;

  const std::string& directory() const { return directory_; }

 private:
  std::string directory_;
  int keep_;
};

}  // namespace otgen::apps

#endif  // OTGEN_APPS_COMMON_CHECKPOINT_MANAGER_H_
