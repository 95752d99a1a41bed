// Module: the base class of otgen's network layers (PyTorch's nn.Module, without hooks).
//
// A Module owns named parameters (leaf Vars that require grad), named buffers (Tensors
// that are part of the state but not trained, e.g. batch-norm running statistics) and named
// child modules. Parameters and buffers are collected recursively with dotted names, in
// registration order: a Sequential's second child's weight is "1.weight"; a module that
// registers a Sequential as "net" exposes "net.2.running_mean". These names are the keys of
// checkpoints (nn/checkpoint.h).
//
// Forward(x) validates x's shape against what the module expects (OutputShape) and returns
// InvalidArgumentError naming both the expected and the actual shape (and, inside a
// Sequential, the failing child) instead of aborting deep inside an op; then it runs the
// module's computation, recording the graph when grad mode is on.
//
// Train() / Eval() switch the module and all its children between training and inference
// behaviour (batch statistics vs. running statistics in batch norm). Modules start in
// training mode.
//
// Handles returned by Parameters() / NamedBuffers() share storage with the module, so an
// optimizer or a checkpoint loader that writes into them updates the module.
//
//   class Critic : public Module {
//    public:
//     explicit Critic(Rng& rng) : Module("Critic") {
//       net_ = RegisterModule("net", layers::Mlp({2, 64, 1}, layers::ActivationKind::kRelu,
//                                               layers::ActivationKind::kNone, rng).value());
//     }
//     absl::StatusOr<Shape> OutputShape(const Shape& input) const override { return net_->OutputShape(input); }
//    protected:
//     Var ForwardImpl(const Var& x) override { return ForwardUnchecked(*net_, x); }
//    private:
//     Module* net_;
//   };
#ifndef OTGEN_NN_MODULE_H_
#define OTGEN_NN_MODULE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nn/autograd.h"
#include "nn/random.h"
#include "nn/tensor.h"

namespace otgen::nn {

class Module {
 public:
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Validates the input shape (OutputShape) and runs the module, recording the graph when
  // grad mode is on and a parameter or the input requires grad.
  absl::StatusOr<Var> Forward(const Var& x);

  // The output shape for an input of shape `input`, or InvalidArgumentError
  // "<Describe()>: expected input of shape <pattern>, got <shape>" when the module does not
  // accept it. Pure shape arithmetic: nothing is computed.
  virtual absl::StatusOr<Shape> OutputShape(const Shape& input) const = 0;
  // OutputShape(input).status().
  absl::Status CheckInput(const Shape& input) const { return OutputShape(input).status(); }

  // The module's type, e.g. "Linear".
  const std::string& type() const { return type_; }
  // A one-line description with the hyperparameters, e.g. "Linear(3, 4, bias=true)".
  virtual std::string Describe() const { return type_; }

  // Parameters of this module and its descendants, in registration order (depth first).
  std::vector<Var> Parameters() const;
  std::vector<std::pair<std::string, Var>> NamedParameters() const;
  // Buffers of this module and its descendants.
  std::vector<std::pair<std::string, Tensor>> NamedBuffers() const;
  // Total number of scalar parameters.
  int64_t NumParameters() const;

  // Direct children, in registration order.
  const std::vector<std::pair<std::string, std::unique_ptr<Module>>>& children() const { return children_; }
  // Calls `fn` on this module and every descendant (pre-order).
  void Apply(const std::function<void(Module&)>& fn);

  // Training / inference mode, propagated to every descendant.
  void Train(bool training = true);
  void Eval() { Train(false); }
  bool is_training() const { return training_; }

  // Drops the accumulated gradients of all parameters.
  void ZeroGrad();

  // Re-draws the parameters of this module (not of its children) with PyTorch's default
  // initialization; modules without parameters do nothing. `Apply` it to re-initialize a
  // whole network.
  virtual void ResetParameters(Rng& rng) { (void)rng; }

 protected:
  explicit Module(std::string type) : type_(std::move(type)) {}

  // The computation; `x` has passed OutputShape.
  virtual Var ForwardImpl(const Var& x) = 0;
  // Runs `module`'s computation without validating `x` again (for containers whose own
  // OutputShape has already validated the whole chain).
  static Var ForwardUnchecked(Module& module, const Var& x) { return module.ForwardImpl(x); }

  // Registers a trainable parameter (a leaf Var requiring grad) and returns its handle.
  Var RegisterParameter(const std::string& name, Tensor value);
  // Registers a buffer; the returned reference stays valid for the module's lifetime.
  // Write buffers in place (CopyFrom, data()) so that exported handles stay current.
  Tensor& RegisterBuffer(const std::string& name, Tensor value);
  // Takes ownership of a child module and returns it.
  Module* RegisterModule(const std::string& name, std::unique_ptr<Module> module);
  template <typename T>
  T* RegisterModule(const std::string& name, std::unique_ptr<T> module) {
    T* raw = module.get();
    RegisterModule(name, std::unique_ptr<Module>(std::move(module)));
    return raw;
  }

  // InvalidArgumentError "<Describe()>: expected input of shape <expected>, got <actual>".
  absl::Status ShapeError(const std::string& expected, const Shape& actual) const;

 private:
  void CollectParameters(const std::string& prefix, std::vector<std::pair<std::string, Var>>& out) const;
  void CollectBuffers(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const;

  std::string type_;
  bool training_ = true;
  std::vector<std::pair<std::string, Var>> parameters_;
  // unique_ptr so that references returned by RegisterBuffer stay valid.
  std::vector<std::pair<std::string, std::unique_ptr<Tensor>>> buffers_;
  std::vector<std::pair<std::string, std::unique_ptr<Module>>> children_;
};

}  // namespace otgen::nn

#endif  // OTGEN_NN_MODULE_H_
