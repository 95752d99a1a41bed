// Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay,
// with PyTorch's torch.optim.SGD semantics.
//
// For each parameter p with gradient g, at its k-th step (k = 1, 2, ...):
//   d = g + weight_decay * p
//   if momentum != 0:
//     b = d                                   (k = 1)
//     b = momentum * b + (1 - dampening) * d  (k > 1)
//     d = nesterov ? d + momentum * b : b
//   p = p - lr * d
// With maximize, g is replaced by -g (ascent; weight decay still shrinks p).
// The momentum buffer b has the parameter's shape (slot "momentum_buffer").
//
//   auto sgd = otgen::optim::Sgd::Create(params, {.lr = 0.1f, .momentum = 0.9f});
//   (*sgd)->Step();
#ifndef OTGEN_OPTIM_SGD_H_
#define OTGEN_OPTIM_SGD_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nn/autograd.h"
#include "optim/optimizer.h"

namespace otgen::optim {

struct SgdOptions {
  float lr = 1e-2f;            // > 0
  float momentum = 0.0f;       // >= 0
  float dampening = 0.0f;      // in [0, 1]
  bool nesterov = false;       // requires momentum > 0 and dampening = 0
  float weight_decay = 0.0f;   // >= 0, L2 penalty added to the gradient
  bool maximize = false;       // ascend instead of descend

  absl::Status Validate() const;
};

class Sgd : public Optimizer {
 public:
  // Returns InvalidArgumentError for invalid options or parameters.
  static absl::StatusOr<std::unique_ptr<Sgd>> Create(std::vector<nn::Var> parameters, const SgdOptions& options);
  // Aborts on invalid options or parameters (prefer Create for user input).
  Sgd(std::vector<nn::Var> parameters, const SgdOptions& options);

  const SgdOptions& options() const { return options_; }
  float learning_rate() const override { return options_.lr; }
  void set_learning_rate(float lr) override { options_.lr = lr; }
  const char* type() const override { return "Sgd"; }

  // The momentum buffer of parameter `index` (undefined before its first step or without momentum).
  const nn::Tensor& momentum_buffer(int index) const { return buffers_[index]; }

 protected:
  void Update(int index, const nn::Tensor& grad, int64_t step) override;
  std::vector<std::string> SlotNames() const override;
  const nn::Tensor& slot(int index, const std::string& name) const override;
  nn::Tensor& mutable_slot(int index, const std::string& name) override;

 private:
  SgdOptions options_;
  std::vector<nn::Tensor> buffers_;
};

}  // namespace otgen::optim

#endif  // OTGEN_OPTIM_SGD_H_
