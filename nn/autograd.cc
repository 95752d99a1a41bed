#include "nn/autograd.h"

#include <algorithm>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nn/ops.h"
#include "nn/tensor_math.h"

namespace otgen::nn {
namespace {
thread_local bool grad_mode_enabled = true;
}  // namespace

bool GradModeEnabled() { return grad_mode_enabled; }

NoGradGuard::NoGradGuard() : previous_(grad_mode_enabled) { grad_mode_enabled = false; }
NoGradGuard::~NoGradGuard() { grad_mode_enabled = previous_; }
EnableGradGuard::EnableGradGuard() : previous_(grad_mode_enabled) { grad_mode_enabled = true; }
EnableGradGuard::~EnableGradGuard() { grad_mode_enabled = previous_; }

Var::Var(Tensor value, bool requires_grad) : impl_(std::make_shared<internal::VarImpl>()) {
  OTGEN_CHECK(value.defined(), "Var of an undefined tensor");
  impl_->value = std::move(value);
  impl_->requires_grad = requires_grad;
}

Var Var::Parameter(Tensor value, std::string name) {
  Var v(std::move(value), true);
  v.impl_->name = std::move(name);
  return v;
}

void Var::set_requires_grad(bool requires_grad) {
  OTGEN_CHECK(is_leaf(), "set_requires_grad on a non-leaf Var");
  impl_->requires_grad = requires_grad;
}

Var Node::output() const {
  Var v;
  v.impl_ = output_.lock();
  OTGEN_CHECK(v.impl_ != nullptr, absl::StrCat(name(), ": output no longer alive during backward"));
  return v;
}

bool AnyRequiresGrad(const std::vector<Var>& inputs) {
  if (!grad_mode_enabled) return false;
  for (const Var& v : inputs) {
    if (v.requires_grad()) return true;
  }
  return false;
}

Var RecordOp(Tensor value, std::vector<Var> inputs, std::shared_ptr<Node> node) {
  Var out(std::move(value), false);
  if (AnyRequiresGrad(inputs)) {
    out.impl_->requires_grad = true;
    node->inputs_ = std::move(inputs);
    node->output_ = out.impl_;
    out.impl_->grad_fn = std::move(node);
  }
  return out;
}

namespace internal {

// Runs one reverse sweep from `outputs`, returning gradients for every variable of the
// graph that lies on a path to a `target` (or to any leaf requiring grad when
// `targets_are_leaves`).
class Engine {
 public:
  using GradMap = std::unordered_map<const VarImpl*, Var>;

  static GradMap Run(const std::vector<Var>& outputs, const std::vector<Var>& grad_outputs,
                     const std::vector<const VarImpl*>& targets, bool all_leaves, bool create_graph) {
    // Topological order (post-order DFS, iterative), restricted to variables that require grad.
    std::vector<VarImpl*> order;
    std::unordered_map<const VarImpl*, int> state;  // 1 = on stack, 2 = done
    std::unordered_map<const VarImpl*, bool> needed;
    for (const Var& out : outputs) {
      if (!out.requires_grad()) continue;
      std::vector<std::pair<VarImpl*, size_t>> stack = {{out.impl_.get(), 0}};
      if (state.count(out.impl_.get())) continue;
      state[out.impl_.get()] = 1;
      while (!stack.empty()) {
        auto& [v, k] = stack.back();
        const std::vector<Var>* ins = v->grad_fn ? &v->grad_fn->inputs() : nullptr;
        if (ins != nullptr && k < ins->size()) {
          VarImpl* child = (*ins)[k].impl_.get();
          ++k;
          if (child != nullptr && child->requires_grad && !state.count(child)) {
            state[child] = 1;
            stack.push_back({child, 0});
          }
          continue;
        }
        state[v] = 2;
        order.push_back(v);
        stack.pop_back();
      }
    }
    // needed[v]: v is a target, or a leaf when all_leaves, or an ancestor (in the backward
    // direction) of one. `order` is post-order: inputs come before the variables that use them.
    std::unordered_map<const VarImpl*, bool> is_target;
    for (const VarImpl* t : targets) is_target[t] = true;
    for (VarImpl* v : order) {
      bool need = is_target.count(v) > 0 || (all_leaves && v->grad_fn == nullptr);
      if (!need && v->grad_fn) {
        for (const Var& in : v->grad_fn->inputs()) {
          auto it = needed.find(in.impl_.get());
          if (it != needed.end() && it->second) {
            need = true;
            break;
          }
        }
      }
      needed[v] = need;
    }

    GradMap grads;
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (!outputs[i].requires_grad()) continue;
      Var g = grad_outputs[i];
      Accumulate(grads, outputs[i].impl_.get(), g, create_graph);
    }

    std::unique_ptr<NoGradGuard> no_grad;
    std::unique_ptr<EnableGradGuard> with_grad;
    if (create_graph) {
      with_grad = std::make_unique<EnableGradGuard>();
    } else {
      no_grad = std::make_unique<NoGradGuard>();
    }
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      VarImpl* v = *it;
      if (!needed[v] || v->grad_fn == nullptr) continue;
      auto git = grads.find(v);
      if (git == grads.end()) continue;
      Var g = git->second;
      // Targets that are not leaves keep their gradient but also pass it on.
      Node* node = v->grad_fn.get();
      const std::vector<Var>& ins = node->inputs();
      std::vector<bool> needs(ins.size());
      bool any = false;
      for (size_t k = 0; k < ins.size(); ++k) {
        auto nit = needed.find(ins[k].impl_.get());
        needs[k] = ins[k].requires_grad() && nit != needed.end() && nit->second;
        any = any || needs[k];
      }
      if (!any) continue;
      std::vector<Var> in_grads = node->Backward(g, needs);
      OTGEN_CHECK(in_grads.size() == ins.size(),
                  absl::StrCat(node->name(), ": backward returned ", in_grads.size(), " gradients for ",
                               ins.size(), " inputs"));
      for (size_t k = 0; k < ins.size(); ++k) {
        if (!needs[k] || !in_grads[k].defined()) continue;
        OTGEN_CHECK(in_grads[k].shape() == ins[k].shape(),
                    absl::StrCat(node->name(), ": gradient of input ", k, " has shape ",
                                 ShapeToString(in_grads[k].shape()), ", input has ",
                                 ShapeToString(ins[k].shape())));
        Accumulate(grads, ins[k].impl_.get(), in_grads[k], create_graph);
      }
      // Intermediate gradients that nobody asked for can go now.
      if (!is_target.count(v)) grads.erase(v);
    }
    return grads;
  }

  static void Accumulate(GradMap& grads, const VarImpl* v, const Var& g, bool create_graph) {
    auto it = grads.find(v);
    if (it == grads.end()) {
      grads.emplace(v, create_graph ? g : g.Detach());
      return;
    }
    if (create_graph) {
      EnableGradGuard guard;
      it->second = Add(it->second, g);
    } else {
      NoGradGuard guard;
      it->second = Add(it->second, g);
    }
  }
};

}  // namespace internal

namespace {

std::vector<Var> DefaultGradOutputs(const std::vector<Var>& outputs, const std::vector<Var>& grad_outputs) {
  if (!grad_outputs.empty()) {
    OTGEN_CHECK(grad_outputs.size() == outputs.size(),
                absl::StrCat("Grad: ", grad_outputs.size(), " grad_outputs for ", outputs.size(), " outputs"));
    std::vector<Var> result = grad_outputs;
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (!result[i].defined()) {
        OTGEN_CHECK(outputs[i].numel() == 1, absl::StrCat("Grad: output ", i, " of shape ",
                                                          ShapeToString(outputs[i].shape()),
                                                          " is not a scalar and has no grad_output"));
        result[i] = Var::Constant(Tensor::Ones(outputs[i].shape()));
      }
      OTGEN_CHECK(result[i].shape() == outputs[i].shape(),
                  absl::StrCat("Grad: grad_output ", i, " has shape ", ShapeToString(result[i].shape()),
                               ", output has ", ShapeToString(outputs[i].shape())));
    }
    return result;
  }
  std::vector<Var> result;
  for (size_t i = 0; i < outputs.size(); ++i) {
    OTGEN_CHECK(outputs[i].numel() == 1, absl::StrCat("Grad: output ", i, " of shape ",
                                                      ShapeToString(outputs[i].shape()),
                                                      " is not a scalar; pass grad_outputs"));
    result.push_back(Var::Constant(Tensor::Ones(outputs[i].shape())));
  }
  return result;
}

}  // namespace

std::vector<Var> Grad(const std::vector<Var>& outputs, const std::vector<Var>& inputs,
                      const std::vector<Var>& grad_outputs, const GradOptions& options) {
  const std::vector<Var> gos = DefaultGradOutputs(outputs, grad_outputs);
  std::vector<const internal::VarImpl*> targets;
  for (const Var& in : inputs) {
    OTGEN_CHECK(in.defined(), "Grad: undefined input");
    targets.push_back(static_cast<const internal::VarImpl*>(in.id()));
  }
  internal::Engine::GradMap grads =
      internal::Engine::Run(outputs, gos, targets, /*all_leaves=*/false, options.create_graph);
  std::vector<Var> result;
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto it = grads.find(static_cast<const internal::VarImpl*>(inputs[i].id()));
    if (it == grads.end()) {
      OTGEN_CHECK(options.allow_unused,
                  absl::StrCat("Grad: input ", i, " (", inputs[i].name(),
                               ") is not used by the outputs or does not require grad; "
                               "set allow_unused"));
      result.push_back(Var());
    } else {
      result.push_back(it->second);
    }
  }
  return result;
}

void Backward(const Var& loss, const Var& grad_output, bool create_graph) {
  OTGEN_CHECK(loss.defined(), "Backward of an undefined Var");
  if (!loss.requires_grad()) return;
  const std::vector<Var> gos = DefaultGradOutputs({loss}, {grad_output});
  internal::Engine::GradMap grads =
      internal::Engine::Run({loss}, gos, {}, /*all_leaves=*/true, create_graph);
  for (auto& [impl, g] : grads) {
    if (impl->grad_fn != nullptr) continue;
    internal::VarImpl* leaf = const_cast<internal::VarImpl*>(impl);
    if (!leaf->requires_grad) continue;
    if (!leaf->grad.defined()) {
      leaf->grad = create_graph ? g.value() : g.value().Clone();
    } else {
      NoGradGuard guard;
      leaf->grad = math::Binary(math::BinaryKind::kAdd, leaf->grad, g.value());
    }
  }
}

}  // namespace otgen::nn
