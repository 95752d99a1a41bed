#include "nn/module.h"

#include "absl/strings/str_cat.h"
#include "nn/status_macros.h"

namespace otgen::nn {

absl::StatusOr<Var> Module::Forward(const Var& x) {
  if (!x.defined()) return absl::InvalidArgumentError(absl::StrCat(Describe(), ": undefined input"));
  OTGEN_ASSIGN_OR_RETURN(const Shape expected, OutputShape(x.shape()));
  Var y = ForwardImpl(x);
  OTGEN_CHECK(y.defined() && y.shape() == expected,
              absl::StrCat(Describe(), ": produced ", y.defined() ? ShapeToString(y.shape()) : "nothing",
                           " for input ", ShapeToString(x.shape()), ", OutputShape says ",
                           ShapeToString(expected)));
  return y;
}

absl::Status Module::ShapeError(const std::string& expected, const Shape& actual) const {
  return absl::InvalidArgumentError(
      absl::StrCat(Describe(), ": expected input of shape ", expected, ", got ", ShapeToString(actual)));
}

std::vector<Var> Module::Parameters() const {
  std::vector<Var> result;
  for (auto& [name, p] : NamedParameters()) result.push_back(p);
  return result;
}

std::vector<std::pair<std::string, Var>> Module::NamedParameters() const {
  std::vector<std::pair<std::string, Var>> out;
  CollectParameters("", out);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::NamedBuffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  CollectBuffers("", out);
  return out;
}

int64_t Module::NumParameters() const {
  int64_t n = 0;
  for (const auto& [name, p] : NamedParameters()) n += p.numel();
  return n;
}

void Module::CollectParameters(const std::string& prefix, std::vector<std::pair<std::string, Var>>& out) const {
  for (const auto& [name, p] : parameters_) out.emplace_back(prefix + name, p);
  for (const auto& [name, child] : children_) child->CollectParameters(absl::StrCat(prefix, name, "."), out);
}

void Module::CollectBuffers(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [name, b] : buffers_) out.emplace_back(prefix + name, *b);
  for (const auto& [name, child] : children_) child->CollectBuffers(absl::StrCat(prefix, name, "."), out);
}

void Module::Apply(const std::function<void(Module&)>& fn) {
  fn(*this);
  for (auto& [name, child] : children_) child->Apply(fn);
}

void Module::Train(bool training) {
  training_ = training;
  for (auto& [name, child] : children_) child->Train(training);
}

void Module::ZeroGrad() {
  for (auto& [name, p] : parameters_) p.ZeroGrad();
  for (auto& [name, child] : children_) child->ZeroGrad();
}

namespace {
void CheckNewName(const std::string& type, const std::string& name, bool taken) {
  OTGEN_CHECK(!name.empty() && name.find('.') == std::string::npos,
              absl::StrCat(type, ": invalid member name '", name, "' (non-empty, no '.')"));
  OTGEN_CHECK(!taken, absl::StrCat(type, ": member name '", name, "' registered twice"));
}
}  // namespace

Var Module::RegisterParameter(const std::string& name, Tensor value) {
  bool taken = false;
  for (const auto& [n, p] : parameters_) taken = taken || n == name;
  for (const auto& [n, b] : buffers_) taken = taken || n == name;
  for (const auto& [n, c] : children_) taken = taken || n == name;
  CheckNewName(type_, name, taken);
  Var p = Var::Parameter(std::move(value), name);
  parameters_.emplace_back(name, p);
  return p;
}

Tensor& Module::RegisterBuffer(const std::string& name, Tensor value) {
  bool taken = false;
  for (const auto& [n, p] : parameters_) taken = taken || n == name;
  for (const auto& [n, b] : buffers_) taken = taken || n == name;
  for (const auto& [n, c] : children_) taken = taken || n == name;
  CheckNewName(type_, name, taken);
  OTGEN_CHECK(value.defined(), absl::StrCat(type_, ": undefined buffer ", name));
  buffers_.emplace_back(name, std::make_unique<Tensor>(std::move(value)));
  return *buffers_.back().second;
}

Module* Module::RegisterModule(const std::string& name, std::unique_ptr<Module> module) {
  bool taken = false;
  for (const auto& [n, p] : parameters_) taken = taken || n == name;
  for (const auto& [n, b] : buffers_) taken = taken || n == name;
  for (const auto& [n, c] : children_) taken = taken || n == name;
  CheckNewName(type_, name, taken);
  OTGEN_CHECK(module != nullptr, absl::StrCat(type_, ": null child module ", name));
  module->Train(training_);
  children_.emplace_back(name, std::move(module));
  return children_.back().second.get();
}

}  // namespace otgen::nn
