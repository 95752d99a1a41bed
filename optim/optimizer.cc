#include "optim/optimizer.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "nn/denormals.h"

namespace otgen::optim {

namespace internal {
void CheckOk(const absl::Status& status, const char* what) {
  if (status.ok()) return;
  std::fprintf(stderr, "%s: %s\n", what, status.ToString().c_str());
  std::fflush(stderr);
  std::abort();
}
}  // namespace internal

Optimizer::Optimizer(std::vector<nn::Var> parameters)
    : parameters_(std::move(parameters)), steps_(parameters_.size(), 0) {
  internal::CheckOk(ValidateParameters(parameters_), "Optimizer parameters");
}

absl::Status Optimizer::ValidateParameters(const std::vector<nn::Var>& parameters) {
  std::set<const void*> seen;
  for (size_t i = 0; i < parameters.size(); ++i) {
    const nn::Var& p = parameters[i];
    if (!p.defined()) {
      return absl::InvalidArgumentError(absl::StrCat("parameters[", i, "]: undefined Var"));
    }
    if (!p.is_leaf() || !p.requires_grad()) {
      return absl::InvalidArgumentError(absl::StrCat("parameters[", i, "] (", p.name(),
                                                     "): expected a leaf Var that requires grad"));
    }
    if (!seen.insert(p.id()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("parameters[", i, "] (", p.name(), "): the same parameter is listed twice"));
    }
  }
  return absl::OkStatus();
}

void Optimizer::Step() {
  nn::NoGradGuard no_grad;
  const nn::ScopedFlushDenormals ftz;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const nn::Tensor& grad = parameters_[i].grad();
    if (!grad.defined()) continue;
    OTGEN_CHECK(grad.shape() == parameters_[i].shape(),
                absl::StrCat(type(), ": gradient of parameter ", i, " has shape ", nn::ShapeToString(grad.shape()),
                             ", parameter has ", nn::ShapeToString(parameters_[i].shape())));
    ++steps_[i];
    Update(static_cast<int>(i), grad, steps_[i]);
  }
}

void Optimizer::ZeroGrad() {
  for (nn::Var& p : parameters_) p.ZeroGrad();
}

OptimizerState Optimizer::ExportState() const {
  OptimizerState state;
  state.type = type();
  const std::vector<std::string> slots = SlotNames();
  for (size_t i = 0; i < parameters_.size(); ++i) {
    state.counters.emplace_back(absl::StrCat(i, ".step"), steps_[i]);
    for (const std::string& s : slots) {
      const nn::Tensor& t = slot(static_cast<int>(i), s);
      if (t.defined()) state.tensors.emplace_back(absl::StrCat(i, ".", s), t.Clone());
    }
  }
  return state;
}

absl::Status Optimizer::ImportState(const OptimizerState& state) {
  if (state.type != type()) {
    return absl::InvalidArgumentError(
        absl::StrCat("optimizer state: expected type ", type(), ", got ", state.type));
  }
  const int n = num_parameters();
  // Counters.
  std::map<std::string, int64_t> counters(state.counters.begin(), state.counters.end());
  if (counters.size() != state.counters.size()) {
    return absl::InvalidArgumentError("optimizer state: duplicate counter names");
  }
  std::vector<int64_t> steps(n);
  for (int i = 0; i < n; ++i) {
    const std::string name = absl::StrCat(i, ".step");
    auto it = counters.find(name);
    if (it == counters.end()) {
      return absl::InvalidArgumentError(absl::StrCat("optimizer state: missing counter ", name));
    }
    if (it->second < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("optimizer state: counter ", name, " is negative (", it->second, ")"));
    }
    steps[i] = it->second;
    counters.erase(it);
  }
  if (!counters.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("optimizer state: unexpected counter ", counters.begin()->first, " (optimizer has ", n,
                     " parameters)"));
  }
  // Slots.
  std::map<std::string, const nn::Tensor*> tensors;
  for (const auto& [name, t] : state.tensors) {
    if (!tensors.emplace(name, &t).second) {
      return absl::InvalidArgumentError(absl::StrCat("optimizer state: duplicate tensor ", name));
    }
  }
  const std::vector<std::string> slots = SlotNames();
  std::vector<std::vector<const nn::Tensor*>> values(n, std::vector<const nn::Tensor*>(slots.size(), nullptr));
  for (int i = 0; i < n; ++i) {
    for (size_t s = 0; s < slots.size(); ++s) {
      const std::string name = absl::StrCat(i, ".", slots[s]);
      auto it = tensors.find(name);
      if (it == tensors.end()) {
        if (steps[i] > 0) {
          return absl::InvalidArgumentError(absl::StrCat("optimizer state: missing tensor ", name, " (parameter ", i,
                                                         " has taken ", steps[i], " steps)"));
        }
        continue;
      }
      if (!it->second->defined() || it->second->shape() != parameters_[i].shape()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "optimizer state: tensor ", name, " has shape ",
            it->second->defined() ? nn::ShapeToString(it->second->shape()) : "<undefined>", ", parameter ", i,
            " has shape ", nn::ShapeToString(parameters_[i].shape())));
      }
      values[i][s] = it->second;
      tensors.erase(it);
    }
  }
  if (!tensors.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("optimizer state: unexpected tensor ", tensors.begin()->first));
  }
  // Everything checked: commit.
  for (int i = 0; i < n; ++i) {
    steps_[i] = steps[i];
    for (size_t s = 0; s < slots.size(); ++s) {
      mutable_slot(i, slots[s]) = values[i][s] != nullptr ? values[i][s]->Clone() : nn::Tensor();
    }
  }
  return absl::OkStatus();
}

}  // namespace otgen::optim
