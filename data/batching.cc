#include "data/batching.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "data/shuffle.h"
#include "nn/status_macros.h"

namespace otgen::data {

absl::Status EpochBatcherOptions::Validate() const {
  if (batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("EpochBatcherOptions.batch_size: expected >= 1, got ", batch_size));
  }
  return absl::OkStatus();
}

EpochBatcher::EpochBatcher(int64_t num_examples, const EpochBatcherOptions& options, nn::Rng rng)
    : num_examples_(num_examples), options_(options), rng_(std::move(rng)), permutation_(num_examples) {
  StartEpoch();
}

absl::StatusOr<EpochBatcher> EpochBatcher::Create(int64_t num_examples, const EpochBatcherOptions& options,
                                                  nn::Rng rng) {
  OTGEN_RETURN_IF_ERROR(options.Validate());
  if (num_examples < 1) {
    return absl::InvalidArgumentError(absl::StrCat("EpochBatcher: expected num_examples >= 1, got ", num_examples));
  }
  if (options.last_batch == LastBatch::kDrop && options.batch_size > num_examples) {
    return absl::InvalidArgumentError(absl::StrCat("EpochBatcher: batch_size ", options.batch_size,
                                                   " exceeds num_examples ", num_examples,
                                                   " with LastBatch::kDrop, so no batch could be formed"));
  }
  return EpochBatcher(num_examples, options, std::move(rng));
}

void EpochBatcher::StartEpoch() {
  epoch_rng_ = rng_.GetState();
  std::iota(permutation_.begin(), permutation_.end(), int64_t{0});
  if (options_.shuffle) FisherYatesShuffle(absl::MakeSpan(permutation_), rng_);
}

absl::Span<const int64_t> EpochBatcher::Next() {
  const int64_t b = options_.batch_size;
  const bool exhausted =
      options_.last_batch == LastBatch::kDrop ? position_ + b > num_examples_ : position_ >= num_examples_;
  if (exhausted) {
    ++epoch_;
    position_ = 0;
    StartEpoch();
  }
  const int64_t begin = position_;
  const int64_t size = std::min(b, num_examples_ - begin);
  position_ += size;
  return absl::MakeConstSpan(permutation_).subspan(begin, size);
}

int64_t EpochBatcher::batches_per_epoch() const {
  const int64_t b = options_.batch_size;
  return options_.last_batch == LastBatch::kDrop ? num_examples_ / b : (num_examples_ + b - 1) / b;
}

EpochBatcher::State EpochBatcher::GetState() const {
  State s;
  s.epoch = epoch_;
  s.position = position_;
  s.epoch_rng = epoch_rng_;
  return s;
}

absl::Status EpochBatcher::SetState(const State& state) {
  if (state.epoch < 0) {
    return absl::InvalidArgumentError(absl::StrCat("EpochBatcher::SetState: negative epoch ", state.epoch));
  }
  if (state.position < 0 || state.position > num_examples_) {
    return absl::InvalidArgumentError(absl::StrCat("EpochBatcher::SetState: position ", state.position, " outside [0, ",
                                                   num_examples_,
                                                   "] (was the state saved from a "
                                                   "batcher over the same number of examples?)"));
  }
  rng_.SetState(state.epoch_rng);
  epoch_ = state.epoch;
  StartEpoch();
  position_ = state.position;
  return absl::OkStatus();
}

RandomBatcher::RandomBatcher(int64_t num_examples, int64_t batch_size, nn::Rng rng)
    : num_examples_(num_examples), rng_(std::move(rng)), batch_(batch_size) {}

absl::StatusOr<RandomBatcher> RandomBatcher::Create(int64_t num_examples, int64_t batch_size, nn::Rng rng) {
  if (num_examples < 1) {
    return absl::InvalidArgumentError(absl::StrCat("RandomBatcher: expected num_examples >= 1, got ", num_examples));
  }
  if (batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("RandomBatcher: expected batch_size >= 1, got ", batch_size));
  }
  return RandomBatcher(num_examples, batch_size, std::move(rng));
}

absl::Span<const int64_t> RandomBatcher::Next() {
  const uint64_t n = static_cast<uint64_t>(num_examples_);
  for (int64_t& i : batch_) i = static_cast<int64_t>(rng_.UniformInt(n));
  ++step_;
  return batch_;
}

RandomBatcher::State RandomBatcher::GetState() const {
  State s;
  s.step = step_;
  s.rng = rng_.GetState();
  return s;
}

absl::Status RandomBatcher::SetState(const State& state) {
  if (state.step < 0) {
    return absl::InvalidArgumentError(absl::StrCat("RandomBatcher::SetState: negative step ", state.step));
  }
  step_ = state.step;
  rng_.SetState(state.rng);
  return absl::OkStatus();
}

}  // namespace otgen::data
