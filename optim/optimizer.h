// The Optimizer interface of otgen: first-order updates of a list of parameter Vars.
//
// An optimizer holds handles on the parameters (leaf Vars that require grad, e.g. from
// `Module::Parameters()`). `Step()` reads each parameter's accumulated gradient `.grad()`
// (filled by nn::Backward) and updates the parameter's storage in place under a
// NoGradGuard; parameters whose gradient is undefined (not reached by the last backward
// pass, or zeroed) are skipped and their per-parameter step counter does not advance,
// as in PyTorch. `ZeroGrad()` drops the accumulated gradients.
//
// Implementations: Sgd (optim/sgd.h), Adam (optim/adam.h), Asgd (optim/asgd.h, seed 000
// eq. 102). Each takes a `FooOptions` struct with documented defaults and `Validate()`.
//
// The optimizer's mutable state (moment buffers, averages, step counters) can be exported
// as named tensors + counters and imported again, which checkpoints use
// (nn/checkpoint.h). Slot tensors are named "<parameter index>.<slot>", e.g.
// "3.exp_avg"; counters "<parameter index>.step". Hyperparameters are not part of the
// state: they come from the options the optimizer is constructed with (the config).
//
//   auto adam = otgen::optim::Adam::Create(net.Parameters(), {.lr = 1e-4, .beta1 = 0.5, .beta2 = 0.9});
//   for (...) {
//     (*adam)->ZeroGrad();
//     otgen::nn::Backward(loss);
//     (*adam)->Step();
//   }
#ifndef OTGEN_OPTIM_OPTIMIZER_H_
#define OTGEN_OPTIM_OPTIMIZER_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "nn/autograd.h"
#include "nn/tensor.h"

namespace otgen::optim {

// A snapshot of an optimizer's mutable state.
struct OptimizerState {
  // The optimizer's type name ("Sgd", "Adam", "Asgd"); checked on import.
  std::string type;
  // Slot tensors, named "<parameter index>.<slot>"; deep copies.
  std::vector<std::pair<std::string, nn::Tensor>> tensors;
  // Integer counters, named "<parameter index>.<counter>" (e.g. "0.step").
  std::vector<std::pair<std::string, int64_t>> counters;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Applies one update to every parameter whose gradient is defined. The updates run with
  // denormals flushed to zero (nn/denormals.h): optimizer state such as momentum and Adam's
  // moments decays into the denormal range for parameters whose gradients vanish, and every
  // operation on such a value would cost a microcode assist.
  void Step();
  // Drops the accumulated gradients of all parameters (PyTorch's set_to_none).
  void ZeroGrad();

  const std::vector<nn::Var>& parameters() const { return parameters_; }
  int num_parameters() const { return static_cast<int>(parameters_.size()); }
  // Number of updates applied to parameter `index` so far.
  int64_t step_count(int index) const { return steps_[index]; }

  // The step size (lr for Sgd/Adam, gamma for Asgd); changeable for schedules.
  virtual float learning_rate() const = 0;
  virtual void set_learning_rate(float lr) = 0;

  // "Sgd", "Adam", "Asgd".
  virtual const char* type() const = 0;

  // Exports a deep copy of the mutable state.
  OptimizerState ExportState() const;
  // Restores a state exported by an optimizer of the same type over parameters of the
  // same shapes. InvalidArgumentError names the first mismatch (type, missing or unexpected
  // entry, shape); on error the optimizer is unchanged.
  absl::Status ImportState(const OptimizerState& state);

 protected:
  // Validates that `parameters` are distinct leaf Vars that require grad.
  static absl::Status ValidateParameters(const std::vector<nn::Var>& parameters);

  explicit Optimizer(std::vector<nn::Var> parameters);

  // Updates parameter `index` in place with gradient `grad` (same shape); `step` is the
  // parameter's 1-based step number for this update. Runs under a NoGradGuard.
  virtual void Update(int index, const nn::Tensor& grad, int64_t step) = 0;

  // The names of the per-parameter slot tensors, e.g. {"exp_avg", "exp_avg_sq"}.
  virtual std::vector<std::string> SlotNames() const = 0;
  // Slot `slot` of parameter `index`; may be undefined when the slot is not initialized yet
  // (e.g. a momentum buffer before the first step).
  virtual const nn::Tensor& slot(int index, const std::string& name) const = 0;
  virtual nn::Tensor& mutable_slot(int index, const std::string& name) = 0;

  std::vector<nn::Var> parameters_;
  std::vector<int64_t> steps_;
};

namespace internal {
// Aborts with `status`'s message when it is not OK (constructors of optimizers given
// invalid options; `Create` returns the status instead).
void CheckOk(const absl::Status& status, const char* what);
}  // namespace internal

}  // namespace otgen::optim

#endif  // OTGEN_OPTIM_OPTIMIZER_H_
