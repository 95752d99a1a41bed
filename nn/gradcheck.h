// Finite-difference checks of autodiff gradients, first and second order (the C++
// counterpart of PyTorch's gradcheck / gradgradcheck; cf. Ceres' gradient_checker.h).
//
// For a function f of several tensors, GradCheck draws a random cotangent u of f's output
// and compares the analytic gradient of L(x) = <u, f(x)> with central differences
//   dL/dx_i ~ (L(x + h e_i) - L(x - h e_i)) / (2 h),
// element by element, with |analytic - numeric| <= atol + rtol |numeric|.
// GradGradCheck does the same for S(x) = <v, grad_x L(x)>, whose analytic gradient goes
// through the backward graph recorded with create_graph = true; it checks that every
// backward rule is itself correctly differentiable.
//
//   auto f = [](const std::vector<Var>& x) { return Tanh(MatMul(x[0], x[1])); };
//   absl::Status s = GradCheck(f, {a, b});
//   absl::Status s2 = GradGradCheck(f, {a, b});
#ifndef OTGEN_NN_GRADCHECK_H_
#define OTGEN_NN_GRADCHECK_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "nn/autograd.h"
#include "nn/tensor.h"

namespace otgen::nn {

struct GradCheckOptions {
  double step = 1e-2;   // finite-difference step h (float32 data: keep it largish)
  double atol = 2e-3;   // absolute tolerance
  double rtol = 2e-2;   // relative tolerance
  uint64_t seed = 1;    // for the random cotangents u, v
  // Inputs (by position) not to differentiate (e.g. integer-like data).
  std::vector<int> skip_inputs;
};

using DifferentiableFunction = std::function<Var(const std::vector<Var>&)>;

// First order. Returns InternalError describing the first mismatching element.
absl::Status GradCheck(const DifferentiableFunction& f, const std::vector<Tensor>& inputs,
                       const GradCheckOptions& options = {});

// Second order (through create_graph).
absl::Status GradGradCheck(const DifferentiableFunction& f, const std::vector<Tensor>& inputs,
                           const GradCheckOptions& options = {});

}  // namespace otgen::nn

#endif  // OTGEN_NN_GRADCHECK_H_
