// Adam (Kingma & Ba 2015) with PyTorch's torch.optim.Adam semantics, including bias
// correction, L2 weight decay added to the gradient, and the optional AMSGrad variant.
//
// For each parameter p with gradient g, at its k-th step (k = 1, 2, ...):
//   g  = g + weight_decay * p           (g = -g first when maximize)
//   m  = beta1 * m + (1 - beta1) * g          slot "exp_avg"
//   v  = beta2 * v + (1 - beta2) * g^2        slot "exp_avg_sq"
//   vm = max(vm, v)                           slot "max_exp_avg_sq" (amsgrad only)
//   mhat = m / (1 - beta1^k),  vhat = v / (1 - beta2^k)   (vm instead of v with amsgrad)
//   p  = p - lr * mhat / (sqrt(vhat) + eps)
// m, v (and vm) start at zero; they are allocated at a parameter's first step.
//
//   auto adam = otgen::optim::Adam::Create(g.Parameters(), {.lr = 1e-4f, .beta1 = 0.5f, .beta2 = 0.9f});
//   (*adam)->Step();
#ifndef OTGEN_OPTIM_ADAM_H_
#define OTGEN_OPTIM_ADAM_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nn/autograd.h"
#include "optim/optimizer.h"

namespace otgen::optim {

struct AdamOptions {
  float lr = 1e-3f;            // > 0
  float beta1 = 0.9f;          // in [0, 1)
  float beta2 = 0.999f;        // in [0, 1)
  float eps = 1e-8f;           // >= 0
  float weight_decay = 0.0f;   // >= 0
  bool amsgrad = false;
  bool maximize = false;       // ascend instead of descend

  absl::Status Validate() const;
};

class Adam : public Optimizer {
 public:
  // Returns InvalidArgumentError for invalid options or parameters.
  static absl::StatusOr<std::unique_ptr<Adam>> Create(std::vector<nn::Var> parameters, const AdamOptions& options);
  // Aborts on invalid options or parameters (prefer Create for user input).
  Adam(std::vector<nn::Var> parameters, const AdamOptions& options);

  const AdamOptions& options() const { return options_; }
  float learning_rate() const override { return options_.lr; }
  void set_learning_rate(float lr) override { options_.lr = lr; }
  const char* type() const override { return "Adam"; }

  // The first / second moment estimates of parameter `index` (undefined before its first step).
  const nn::Tensor& exp_avg(int index) const { return exp_avg_[index]; }
  const nn::Tensor& exp_avg_sq(int index) const { return exp_avg_sq_[index]; }

 protected:
  void Update(int index, const nn::Tensor& grad, int64_t step) override;
  std::vector<std::string> SlotNames() const override;
  const nn::Tensor& slot(int index, const std::string& name) const override;
  nn::Tensor& mutable_slot(int index, const std::string& name) override;

 private:
  AdamOptions options_;
  std::vector<nn::Tensor> exp_avg_;
  std::vector<nn::Tensor> exp_avg_sq_;
  std::vector<nn::Tensor> max_exp_avg_sq_;
};

}  // namespace otgen::optim

#endif  // OTGEN_OPTIM_ADAM_H_
