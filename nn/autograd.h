// Reverse-mode automatic differentiation that can differentiate twice.
//
// A `Var` is a handle on a value (a Tensor) and, when it was produced by a recorded op, the
// `Node` that produced it. Ops (nn/ops.h) record a Node when grad mode is on and any input
// requires a gradient; the node keeps its inputs alive, so a graph lives exactly as long as
// some handle to its outputs, and is freed when the last one goes.
//
// Every Node's backward rule is written with the same differentiable ops. Running a
// backward pass with `create_graph = true` therefore records the backward computation
// itself, and its results can be differentiated again: the WGAN-GP / WGAN-LP gradient
// penalty E (||grad_x D(x)|| - 1)^2 and W2GAN's phi(x - grad phi(x)) rely on this
// (as in PyTorch's autograd, see ../shared/STYLE.md).
//
//   Var x = Var::Parameter(Tensor::Normal({4, 2}, 0, 1, rng));
//   Var y = SumAll(Square(Tanh(x)));
//   // Functional form: fresh gradients, optionally recorded for higher order.
//   std::vector<Var> g = Grad({y}, {x}, {}, {.create_graph = true});
//   Var penalty = SumAll(Square(g[0]));
//   Backward(penalty);          // accumulates d penalty / dx into x.grad()
//
// Backward(loss) accumulates into the `.grad()` of every leaf that requires grad (model
// parameters); Grad(...) returns gradients without touching `.grad()`. A `NoGradGuard`
// turns recording off in its scope (inference, solver inner loops, optimizer updates).
#ifndef OTGEN_NN_AUTOGRAD_H_
#define OTGEN_NN_AUTOGRAD_H_

#include <memory>
#include <string>
#include <vector>

#include "nn/tensor.h"

namespace otgen::nn {

class Node;

namespace internal {
struct VarImpl {
  Tensor value;
  Tensor grad;  // accumulated by Backward (leaves)
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;  // null for leaves
  std::string name;
};
class Engine;
}  // namespace internal

class Var {
 public:
  // An undefined Var.
  Var() = default;
  // A leaf holding `value` (shares its storage).
  explicit Var(Tensor value, bool requires_grad = false);
  // A leaf that requires grad: a trainable parameter.
  static Var Parameter(Tensor value, std::string name = "");
  // A constant (never requires grad).
  static Var Constant(Tensor value) { return Var(std::move(value), false); }

  bool defined() const { return impl_ != nullptr; }
  const Tensor& value() const { return impl_->value; }
  // The value's storage, for in-place updates of leaves (optimizers, initializers).
  Tensor& mutable_value() { return impl_->value; }
  const Shape& shape() const { return impl_->value.shape(); }
  int64_t dim(int axis) const { return impl_->value.dim(axis); }
  int rank() const { return impl_->value.rank(); }
  int64_t numel() const { return impl_->value.numel(); }
  float item() const { return impl_->value.item(); }

  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  // Makes a leaf require (or not require) a gradient. Only valid on leaves.
  void set_requires_grad(bool requires_grad);
  bool is_leaf() const { return impl_ && impl_->grad_fn == nullptr; }
  Node* grad_fn() const { return impl_ ? impl_->grad_fn.get() : nullptr; }

  // The gradient accumulated by Backward; undefined before the first backward pass.
  const Tensor& grad() const { return impl_->grad; }
  void set_grad(Tensor grad) { impl_->grad = std::move(grad); }
  // Drops the accumulated gradient.
  void ZeroGrad() { impl_->grad = Tensor(); }

  const std::string& name() const { return impl_->name; }
  void set_name(std::string name) { impl_->name = std::move(name); }

  // A new leaf sharing this value, cut from the graph.
  Var Detach() const { return Var(impl_->value, false); }

  // Identity of the underlying variable (handles compare equal when they share it).
  const void* id() const { return impl_.get(); }

 private:
  friend class Node;
  friend class internal::Engine;
  friend Var RecordOp(Tensor value, std::vector<Var> inputs, std::shared_ptr<Node> node);
  std::shared_ptr<internal::VarImpl> impl_;
};

// A recorded op: its inputs and a backward rule.
class Node {
 public:
  virtual ~Node() = default;

  // Given dL/d(output), returns dL/d(input_k) for every input (an undefined Var where
  // `needs_input_grad[k]` is false or the gradient is structurally zero). Must be written
  // with differentiable ops (nn/ops.h) so that the result can be differentiated again.
  virtual std::vector<Var> Backward(const Var& grad_output,
                                    const std::vector<bool>& needs_input_grad) = 0;
  // The op's name, for error messages and graph dumps.
  virtual const char* name() const = 0;

  const std::vector<Var>& inputs() const { return inputs_; }

 protected:
  // The node's output, valid during a backward pass (the graph is alive then).
  Var output() const;

 private:
  friend Var RecordOp(Tensor value, std::vector<Var> inputs, std::shared_ptr<Node> node);
  std::vector<Var> inputs_;
  std::weak_ptr<internal::VarImpl> output_;
};

// Whether ops record graph nodes on this thread (true by default).
bool GradModeEnabled();

// Turns recording off until the end of the scope (restoring the previous mode).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Turns recording on in its scope (used by the engine for create_graph passes).
class EnableGradGuard {
 public:
  EnableGradGuard();
  ~EnableGradGuard();
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool previous_;
};

struct GradOptions {
  // Record the backward pass so the returned gradients can be differentiated again.
  bool create_graph = false;
  // Return an undefined Var (instead of aborting) for inputs the outputs do not depend on.
  bool allow_unused = false;
};

// d(sum_k <grad_outputs[k], outputs[k]>) / d(inputs). `grad_outputs` may be empty when
// every output is a scalar (then 1 is used). Returns fresh gradients in the order of
// `inputs`; `.grad()` of the inputs is not touched.
std::vector<Var> Grad(const std::vector<Var>& outputs, const std::vector<Var>& inputs,
                      const std::vector<Var>& grad_outputs = {}, const GradOptions& options = {});

// Accumulates d(<grad_output, loss>)/d(leaf) into leaf.grad() for every leaf that requires
// grad. `grad_output` may be undefined when `loss` is a scalar. With `create_graph`
// the accumulated gradients keep their graph (rarely needed; prefer Grad).
void Backward(const Var& loss, const Var& grad_output = Var(), bool create_graph = false);

// Records `node` (with `inputs`) as the producer of `value` when grad mode is on and any
// input requires grad; otherwise returns a constant. This is how ops are written:
//   return RecordOp(math::Unary(kExp, x.value()), {x}, std::make_shared<ExpNode>());
Var RecordOp(Tensor value, std::vector<Var> inputs, std::shared_ptr<Node> node);

// True when recording an op with these inputs would create a node.
bool AnyRequiresGrad(const std::vector<Var>& inputs);

}  // namespace otgen::nn

#endif  // OTGEN_NN_AUTOGRAD_H_
