#include "apps/common/checkpoint_manager.h"

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace otgen::apps {

CheckpointManager::CheckpointManager(std::string directory, int keep)
    : directory_(std::move(directory)), keep_(keep) {}

std::string CheckpointManager::PathFor(int64_t step) const {
  return absl::StrCat(directory_, "/ckpt-", step, ".pb");
}

absl::StatusOr<std::vector<int64_t>> CheckpointManager::ListSteps() const {
  DIR* dir = opendir(directory_.c_str());
  if (dir == nullptr) {
    if (errno == ENOENT) return std::vector<int64_t>{};
    return absl::PermissionDeniedError(absl::StrCat("cannot list ", directory_, ": ", std::strerror(errno)));
  }
  std::vector<int64_t> steps;
  while (const dirent* entry = readdir(dir)) {
    absl::string_view name = entry->d_name;
    if (!absl::ConsumePrefix(&name, "ckpt-") || !absl::ConsumeSuffix(&name, ".pb")) continue;
    int64_t step = 0;
    if (absl::SimpleAtoi(name, &step) && step >= 0) steps.push_back(step);
  }
  closedir(dir);
  std::sort(steps.begin(), steps.end());
  return steps;
}

absl::Status CheckpointManager::Save(const nn::TrainingState& state) const {
  if (absl::Status s = nn::SaveTrainingState(PathFor(state.step), state); !s.ok()) return s;
  if (keep_ <= 0) return absl::OkStatus();
  absl::StatusOr<std::vector<int64_t>> steps = ListSteps();
  if (!steps.ok()) return steps.status();
  for (size_t i = 0; i + keep_ < steps->size(); ++i) {
    if ((*steps)[i] == state.step) continue;
    std::remove(PathFor((*steps)[i]).c_str());
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> CheckpointManager::RestoreNewest(nn::TrainingState& state) const {
  absl::StatusOr<std::vector<int64_t>> steps = ListSteps();
  if (!steps.ok()) return steps.status();
  if (steps->empty()) return false;
  if (absl::Status s = nn::RestoreTrainingState(PathFor(steps->back()), state); !s.ok()) return s;
  return true;
}

}  // namespace otgen::apps
