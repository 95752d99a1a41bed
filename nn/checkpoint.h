// Checkpoints: the complete state of a training run (network parameters and buffers,
// optimizer slots and step counters, RNG streams, the step, metadata) in one file, written
// atomically and read back with integrity checks, so that a resumed run continues
// bit-identically.
//
// File format (little-endian):
//   bytes 0..7    magic "OTGENCKP"
//   bytes 8..11   format version (1)
//   bytes 12..15  CRC32C (Castagnoli) of bytes 8..11, 16..23 and the payload
//   bytes 16..23  payload length in bytes
//   bytes 24..    payload: a serialized otgen.nn.CheckpointProto (nn/checkpoint.proto,
//                 deterministic serialization)
// Protobuf parsing alone accepts many corrupted inputs (a flipped bit in a float is still
// a float); the checksum and the length detect truncation and bit flips, which
// ReadCheckpoint reports as DataLossError. WriteCheckpoint writes a temporary file in the
// destination's directory, fsyncs it, renames it over the destination and fsyncs the
// directory, so a crash leaves either the old or the new checkpoint, never a torn one.
//
// Naming: a module saved under the key "critic" contributes tensors "critic/<dotted name>"
// for every parameter and buffer ("critic/0.weight", "critic/2.running_mean"); loading
// checks that the checkpoint has exactly the module's names with the module's shapes.
//
//   TrainingState state{.step = step,
//                       .modules = {{"generator", &gen}, {"critic", &critic}},
//                       .optimizers = {{"generator", gen_adam.get()}, {"critic", critic_adam.get()}},
//                       .rngs = {{"data", &data_rng}}};
//   OTGEN_RETURN_IF_ERROR(SaveTrainingState(absl::StrCat(dir, "/ckpt-", step, ".pb"), state));
//   ...
//   OTGEN_RETURN_IF_ERROR(RestoreTrainingState(path, state));  // state.step is the saved step
#ifndef OTGEN_NN_CHECKPOINT_H_
#define OTGEN_NN_CHECKPOINT_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nn/checkpoint.pb.h"
#include "nn/module.h"
#include "nn/random.h"
#include "nn/tensor.h"
#include "optim/optimizer.h"

namespace otgen::nn {

// ---- Files ----------------------------------------------------------------------------------

// Atomically writes `checkpoint` to `path` (see the format above). Errors: the directory is
// missing (NotFoundError), permissions, disk full, a payload over 2 GiB (InvalidArgument).
absl::Status WriteCheckpoint(const std::string& path, const CheckpointProto& checkpoint);

// Reads a checkpoint. NotFoundError when `path` does not exist; DataLossError when the file
// is not a checkpoint, is truncated or corrupted (checksum), or holds malformed tensors.
absl::StatusOr<CheckpointProto> ReadCheckpoint(const std::string& path);

// ---- Pieces ------------------------------------------------------------------------------------

// Appends `tensor` under `name` (a deep copy of its data).
void AddTensor(const std::string& name, const Tensor& tensor, CheckpointProto* checkpoint);
// The tensor named `name`: NotFoundError when absent, DataLossError when malformed.
absl::StatusOr<Tensor> FindTensor(const CheckpointProto& checkpoint, const std::string& name);

// Adds every parameter and buffer of `module` as "<key>/<dotted name>".
void SaveModule(const Module& module, const std::string& key, CheckpointProto* checkpoint);
// Copies the tensors saved under `key` into the module's parameters and buffers. Checks
// first, copies only when everything matches; InvalidArgumentError names the first mismatch:
// a missing name, an unexpected name, or a shape mismatch with both shapes.
absl::Status LoadModule(const CheckpointProto& checkpoint, const std::string& key, Module& module);

void SaveOptimizer(const optim::Optimizer& optimizer, const std::string& key, CheckpointProto* checkpoint);
// NotFoundError when no optimizer state is saved under `key`; otherwise ImportState's checks.
absl::Status LoadOptimizer(const CheckpointProto& checkpoint, const std::string& key, optim::Optimizer& optimizer);

void SaveRng(const Rng& rng, const std::string& key, CheckpointProto* checkpoint);
absl::Status LoadRng(const CheckpointProto& checkpoint, const std::string& key, Rng& rng);

// ---- Whole training runs -------------------------------------------------------------------

// Pointers to the live objects of a training run; none is owned.
struct TrainingState {
  int64_t step = 0;
  std::vector<std::pair<std::string, Module*>> modules;
  std::vector<std::pair<std::string, optim::Optimizer*>> optimizers;
  std::vector<std::pair<std::string, Rng*>> rngs;
  // Free tensors (e.g. a dual potential outside any module), restored in place.
  std::vector<std::pair<std::string, Tensor*>> tensors;
  // Groups of tensors whose names and shapes are only known when saving (e.g. a solver's
  // exported state, whose optimizer slots appear after its first step): the entries of map
  // `key` are saved as "<key>/<name>"; restoring replaces the map's contents with every tensor
  // of the checkpoint under that prefix (an empty map when there is none).
  std::vector<std::pair<std::string, std::map<std::string, Tensor>*>> tensor_maps;
  std::map<std::string, std::string> metadata;
};

// Writes every component of `state` to `path` (atomically).
absl::Status SaveTrainingState(const std::string& path, const TrainingState& state);

// Restores every component listed in `state` from `path` and sets state.step and
// state.metadata. All components are checked before any is modified: on error nothing
// changes. The checkpoint may not hold components that `state` does not list.
absl::Status RestoreTrainingState(const std::string& path, TrainingState& state);

namespace internal {
// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), extending `crc` (0 to start).
uint32_t Crc32c(absl::string_view data, uint32_t crc = 0);
// The portable table-driven implementation (Crc32c uses SSE4.2 when available).
uint32_t Crc32cPortable(absl::string_view data, uint32_t crc = 0);
}  // namespace internal

}  // namespace otgen::nn

#endif  // OTGEN_NN_CHECKPOINT_H_
