// Batching: which example indices go into each training batch, reproducibly and
// resumably.
//
// EpochBatcher walks shuffled epochs: at the start of each epoch it draws a fresh
// permutation of 0..N-1 (Fisher-Yates from the identity with the batcher's nn::Rng, so
// epoch e's order depends only on the Rng state when e began) and hands out consecutive
// slices of it. The last, partial batch of an epoch is either returned (smaller) or
// dropped (LastBatch::kDrop, every batch then has exactly batch_size indices).
// RandomBatcher draws every index independently and uniformly (with replacement), as
// the seeds' "sample a batch from the data set" steps do.
//
// Both expose their complete position as a small State struct (epoch, position, the Rng
// state), which a checkpoint stores; SetState on a batcher created with the same N and
// options continues exactly where the saved one stopped.
//
//   OTGEN_ASSIGN_OR_RETURN(EpochBatcher batcher,
//                          EpochBatcher::Create(train.size(), {.batch_size = 64}, nn::Rng(seed)));
//   nn::Tensor x;
//   for (int step = 0; step < steps; ++step) {
//     absl::Span<const int64_t> idx = batcher.Next();
//     OTGEN_RETURN_IF_ERROR(train.CopyBatch(idx, &x));
//     ...
//   }
//   EpochBatcher::State s = batcher.GetState();  // into the checkpoint
#ifndef OTGEN_DATA_BATCHING_H_
#define OTGEN_DATA_BATCHING_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "nn/random.h"

namespace otgen::data {

// What to do with the N mod batch_size indices left at the end of an epoch.
enum class LastBatch {
  kPartial,  // return them as a smaller batch
  kDrop,     // skip them (they will appear in other epochs' batches)
};

struct EpochBatcherOptions {
  // Indices per batch, >= 1.
  int64_t batch_size = 64;
  LastBatch last_batch = LastBatch::kPartial;
  // false: every epoch visits 0..N-1 in order (evaluation passes).
  bool shuffle = true;

  absl::Status Validate() const;
};

class EpochBatcher {
 public:
  // Checkpointable position. `epoch_rng` is the Rng state at the start of `epoch`, before
  // its permutation was drawn; `position` is the number of indices of this epoch already
  // handed out.
  struct State {
    int64_t epoch = 0;
    int64_t position = 0;
    nn::Rng::State epoch_rng;
  };

  // InvalidArgumentError for num_examples < 1, invalid options, or kDrop with
  // batch_size > num_examples (no batch could ever be formed).
  static absl::StatusOr<EpochBatcher> Create(int64_t num_examples, const EpochBatcherOptions& options, nn::Rng rng);

  // The next batch (valid until the next call to Next or SetState). Starts a new epoch
  // (new permutation) when the current one is exhausted.
  absl::Span<const int64_t> Next();

  // Epoch of the most recent batch, counting from 0 (0 before the first batch). An
  // exhausted epoch stays current until the next call to Next starts the following one.
  int64_t epoch() const { return epoch_; }
  // Indices of the current epoch handed out so far.
  int64_t position() const { return position_; }
  // Batches in one epoch: ceil(N / B) with kPartial, floor(N / B) with kDrop.
  int64_t batches_per_epoch() const;
  int64_t num_examples() const { return num_examples_; }
  const EpochBatcherOptions& options() const { return options_; }
  // The current epoch's order of all N indices.
  absl::Span<const int64_t> permutation() const { return permutation_; }

  State GetState() const;
  // Restores a state saved from a batcher with the same N and options.
  // InvalidArgumentError for a negative epoch or a position outside [0, N].
  absl::Status SetState(const State& state);

 private:
  EpochBatcher(int64_t num_examples, const EpochBatcherOptions& options, nn::Rng rng);
  // Draws the permutation of the epoch starting now, saving the Rng state first.
  void StartEpoch();

  int64_t num_examples_;
  EpochBatcherOptions options_;
  nn::Rng rng_;
  nn::Rng::State epoch_rng_;
  int64_t epoch_ = 0;
  int64_t position_ = 0;
  std::vector<int64_t> permutation_;
};

class RandomBatcher {
 public:
  // Checkpointable position: batches drawn so far and the Rng state.
  struct State {
    int64_t step = 0;
    nn::Rng::State rng;
  };

  // InvalidArgumentError for num_examples < 1 or batch_size < 1.
  static absl::StatusOr<RandomBatcher> Create(int64_t num_examples, int64_t batch_size, nn::Rng rng);

  // batch_size indices drawn independently and uniformly from [0, N) (valid until the
  // next call).
  absl::Span<const int64_t> Next();

  int64_t step() const { return step_; }
  int64_t num_examples() const { return num_examples_; }
  int64_t batch_size() const { return static_cast<int64_t>(batch_.size()); }

  State GetState() const;
  // InvalidArgumentError for a negative step.
  absl::Status SetState(const State& state);

 private:
  RandomBatcher(int64_t num_examples, int64_t batch_size, nn::Rng rng);

  int64_t num_examples_;
  nn::Rng rng_;
  int64_t step_ = 0;
  std::vector<int64_t> batch_;
};

}  // namespace otgen::data

#endif  // OTGEN_DATA_BATCHING_H_
