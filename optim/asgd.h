// Averaged stochastic gradient ascent / descent (ASGD) with a decreasing step, as used by
// SDOT for the dual potential psi (seed 000, eq. 102; Genevay et al. 2016):
//
//   psi~_k   = psi~_{k-1} + gamma / k^alpha * D_k        (ascent, maximize = true)
//   psi~_k   = psi~_{k-1} - gamma / k^alpha * D_k        (descent, the default)
//   psi_bar_k = (1/k) (psi~_1 + ... + psi~_k)
//             = psi_bar_{k-1} + (psi~_k - psi_bar_{k-1}) / k
//
// where D_k is the parameter's accumulated gradient (`.grad()`, a stochastic
// (super)gradient) and k = 1, 2, ... counts the parameter's steps since construction or the
// last Restart(). The parameter Var holds the raw iterate psi~_k; the Polyak average
// psi_bar_k (slot "averaged") is read with `averaged(index)`; before the first step it is
// the parameter's current value (psi_bar_0 = psi~_0, which drops out at k = 1). For
// alpha = 0.5 and a concave objective the averaged iterate converges at O(log k / sqrt(k))
// in function value (seed 000, after eq. 102).
//
// SDOT's inner loop runs K steps of (102) from the previous estimate; `Restart()` starts a
// new average and step count from the current parameter values, and
// `CopyAveragedToParameters()` makes the average the next starting point.
//
//   auto asgd = otgen::optim::Asgd::Create({psi}, {.gamma = 1.0f, .alpha = 0.5f, .maximize = true});
//   for (int k = 0; k < K; ++k) { psi.ZeroGrad(); Backward(objective(psi)); (*asgd)->Step(); }
//   const Tensor& psi_bar = (*asgd)->averaged(0);
#ifndef OTGEN_OPTIM_ASGD_H_
#define OTGEN_OPTIM_ASGD_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nn/autograd.h"
#include "optim/optimizer.h"

namespace otgen::optim {

struct AsgdOptions {
  float gamma = 1.0f;     // learning rate gamma > 0
  float alpha = 0.5f;     // step decay exponent, in [0, 1] (the paper uses (0, 1))
  bool maximize = false;  // ascent (SDOT's dual) instead of descent

  absl::Status Validate() const;
};

class Asgd : public Optimizer {
 public:
  // Returns InvalidArgumentError for invalid options or parameters.
  static absl::StatusOr<std::unique_ptr<Asgd>> Create(std::vector<nn::Var> parameters, const AsgdOptions& options);
  // Aborts on invalid options or parameters (prefer Create for user input).
  Asgd(std::vector<nn::Var> parameters, const AsgdOptions& options);

  const AsgdOptions& options() const { return options_; }
  float learning_rate() const override { return options_.gamma; }
  void set_learning_rate(float gamma) override { options_.gamma = gamma; }
  const char* type() const override { return "Asgd"; }

  // psi_bar_k of parameter `index` (its current value before the first step).
  const nn::Tensor& averaged(int param_index) const;
  // Starts a new run of (102) from the current parameter values: step counters to 0 and
  // averages reset.
  void Restart();
  // Copies the averages into the parameters (psi~ := psi_bar), e.g. at the end of an inner loop.
  void CopyAveragedToParameters();

 protected:
  void Update(int index, const nn::Tensor& grad, int64_t step) override;
  std::vector<std::string> SlotNames() const override { return {"averaged"}; }
  const nn::Tensor& slot(int index, const std::string& name) const override;
  nn::Tensor& mutable_slot(int index, const std::string& name) override;

 private:
  AsgdOptions options_;
  std::vector<nn::Tensor> averaged_;
};

}  // namespace otgen::optim

#endif  // OTGEN_OPTIM_ASGD_H_
