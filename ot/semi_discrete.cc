#include "ot/semi_discrete.h"

#include <cmath>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nn/status_macros.h"
#include "optim/adam.h"
#include "optim/asgd.h"

namespace otgen::ot {

namespace {

constexpr double kCounterBase = 16777216.0;  // 2^24: floats represent every integer below it

absl::Status CheckFinite(const float* v, int64_t n, const std::string& name) {
  for (int64_t j = 0; j < n; ++j) {
    if (!std::isfinite(v[j])) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": entry ", j, " is ", v[j], "; expected finite values"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

nn::Tensor EncodeCounter(int64_t value) {
  const double hi = std::floor(static_cast<double>(value) / kCounterBase);
  const double lo = static_cast<double>(value) - hi * kCounterBase;
  return nn::Tensor::FromVector({2}, {static_cast<float>(hi), static_cast<float>(lo)});
}

absl::StatusOr<int64_t> DecodeCounter(const nn::Tensor& tensor, const std::string& name) {
  if (!tensor.defined() || tensor.shape() != nn::Shape{2}) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": expected a counter tensor of shape [2], got ",
                                                   tensor.defined() ? nn::ShapeToString(tensor.shape()) : "undefined"));
  }
  const double hi = tensor.data()[0], lo = tensor.data()[1];
  if (!(hi >= 0.0 && lo >= 0.0 && lo < kCounterBase && hi < kCounterBase) || hi != std::floor(hi) ||
      lo != std::floor(lo)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": expected non-negative integers {k / 2^24, k mod 2^24}, got {", hi, ", ", lo, "}"));
  }
  return static_cast<int64_t>(hi * kCounterBase + lo);
}

absl::Status SemiDiscreteOptions::Validate() const {
  OTGEN_RETURN_IF_ERROR(ctransform.Validate());
  if (batch_size <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("SemiDiscreteOptions.batch_size: expected a value > 0, got ", batch_size));
  }
  if (iterations <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("SemiDiscreteOptions.iterations: expected a value > 0, got ", iterations));
  }
  if (!(gamma > 0.0f) || !std::isfinite(gamma)) {
    return absl::InvalidArgumentError(absl::StrCat("SemiDiscreteOptions.gamma: expected a finite value > 0, got ", gamma));
  }
  if (!(alpha > 0.0f && alpha <= 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("SemiDiscreteOptions.alpha: expected a value in (0, 1], got ", alpha));
  }
  if (!(adam_learning_rate > 0.0f) || !std::isfinite(adam_learning_rate)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SemiDiscreteOptions.adam_learning_rate: expected a finite value > 0, got ", adam_learning_rate));
  }
  if (!(adam_beta1 >= 0.0f && adam_beta1 < 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SemiDiscreteOptions.adam_beta1: expected a value in [0, 1), got ", adam_beta1));
  }
  if (!(adam_beta2 >= 0.0f && adam_beta2 < 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SemiDiscreteOptions.adam_beta2: expected a value in [0, 1), got ", adam_beta2));
  }
  if (!(adam_epsilon >= 0.0f) || !std::isfinite(adam_epsilon)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SemiDiscreteOptions.adam_epsilon: expected a finite value >= 0, got ", adam_epsilon));
  }
  return absl::OkStatus();
}

std::string SemiDiscreteResult::Summary() const {
  return absl::StrFormat("semi-discrete: %d steps, H=%.6g (last %.6g), |D|=%.4g", iterations, h_estimate,
                         h_history.empty() ? 0.0 : h_history.back(), last_supergradient_norm);
}

namespace {

std::unique_ptr<optim::Optimizer> MakeOptimizer(const nn::Var& psi, const SemiDiscreteOptions& options) {
  if (options.method == SemiDiscreteMethod::kAsgd) {
    return std::make_unique<optim::Asgd>(
        std::vector<nn::Var>{psi},
        optim::AsgdOptions{.gamma = options.gamma, .alpha = options.alpha, .maximize = true});
  }
  return std::make_unique<optim::Adam>(std::vector<nn::Var>{psi},
                                       optim::AdamOptions{.lr = options.adam_learning_rate,
                                                          .beta1 = options.adam_beta1,
                                                          .beta2 = options.adam_beta2,
                                                          .eps = options.adam_epsilon,
                                                          .maximize = true});
}

}  // namespace

SemiDiscreteSolver::SemiDiscreteSolver(CTransform transform, const SemiDiscreteOptions& options)
    : transform_(std::move(transform)), options_(options) {
  num_targets_ = transform_.targets().shard_size();
  psi_ = nn::Var::Parameter(nn::Tensor::Zeros({num_targets_}), "psi");
  grad_ = nn::Tensor::Zeros({num_targets_});
  optimizer_ = MakeOptimizer(psi_, options_);
}

absl::StatusOr<std::unique_ptr<SemiDiscreteSolver>> SemiDiscreteSolver::Create(
    std::shared_ptr<const TargetSet> targets, const Cost& cost, const SemiDiscreteOptions& options) {
  OTGEN_RETURN_IF_ERROR(options.Validate());
  OTGEN_ASSIGN_OR_RETURN(CTransform transform, CTransform::Create(std::move(targets), cost, options.ctransform));
  return std::unique_ptr<SemiDiscreteSolver>(new SemiDiscreteSolver(std::move(transform), options));
}

Eigen::Map<const Eigen::VectorXf> SemiDiscreteSolver::psi() const {
  if (options_.method == SemiDiscreteMethod::kAsgd) {
    const nn::Tensor& avg = static_cast<const optim::Asgd*>(optimizer_.get())->averaged(0);
    return Eigen::Map<const Eigen::VectorXf>(avg.data(), num_targets_);
  }
  return psi_iterate();
}

Eigen::Map<const Eigen::VectorXf> SemiDiscreteSolver::psi_iterate() const {
  return Eigen::Map<const Eigen::VectorXf>(psi_.value().data(), num_targets_);
}

absl::Status SemiDiscreteSolver::SetPsi(const Eigen::Ref<const Eigen::VectorXf>& psi) {
  if (psi.size() != num_targets_) {
    return absl::InvalidArgumentError(
        absl::StrCat("psi: expected ", num_targets_, " entries (one per target of the shard), got ", psi.size()));
  }
  OTGEN_RETURN_IF_ERROR(CheckFinite(psi.data(), psi.size(), "psi"));
  std::memcpy(psi_.mutable_value().data(), psi.data(), sizeof(float) * num_targets_);
  optimizer_ = MakeOptimizer(psi_, options_);
  return absl::OkStatus();
}

void SemiDiscreteSolver::RestartAveraging() {
  if (options_.method != SemiDiscreteMethod::kAsgd) return;
  auto* asgd = static_cast<optim::Asgd*>(optimizer_.get());
  if (asgd->step_count(0) == 0) return;
  if (options_.warm_start == SemiDiscreteWarmStart::kAverage) asgd->CopyAveragedToParameters();
  asgd->Restart();
}

absl::StatusOr<double> SemiDiscreteSolver::Step(const Eigen::Ref<const RowMatrixXf>& batch) {
  Eigen::Map<const Eigen::VectorXf> psi(psi_.value().data(), num_targets_);
  OTGEN_RETURN_IF_ERROR(transform_.Compute(batch, psi, {.grad_x = false, .grad_psi = true}, &result_));
  std::memcpy(grad_.data(), result_.grad_psi.data(), sizeof(float) * num_targets_);
  psi_.set_grad(grad_);
  optimizer_->Step();
  ++total_steps_;
  return result_.semi_dual;
}

absl::StatusOr<SemiDiscreteResult> SemiDiscreteSolver::Solve(const BatchSampler& sampler) {
  if (!sampler) return absl::InvalidArgumentError("sampler: expected a callable, got an empty function");
  if (options_.method == SemiDiscreteMethod::kAsgd && options_.restart_each_solve) RestartAveraging();
  const int64_t b = options_.batch_size;
  const int64_t d = transform_.targets().dim();
  SemiDiscreteResult result;
  result.h_history.reserve(options_.iterations);
  for (int k = 0; k < options_.iterations; ++k) {
    absl::StatusOr<nn::Tensor> batch = sampler(b);
    if (!batch.ok()) return batch.status();
    if (!batch->defined() || batch->rank() < 1 || batch->dim(0) != b || batch->numel() != b * d) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sampler: expected a batch of shape [", b, ", ...] with ", d, " values per sample, got ",
          batch->defined() ? nn::ShapeToString(batch->shape()) : "an undefined tensor"));
    }
    Eigen::Map<const RowMatrixXf> x(batch->data(), b, d);
    absl::StatusOr<double> h = Step(x);
    if (!h.ok()) {
      return absl::Status(h.status().code(), absl::StrCat("sampler batch ", k, ": ", h.status().message()));
    }
    result.h_history.push_back(*h);
  }
  result.iterations = options_.iterations;
  double sum = 0.0;
  for (double h : result.h_history) sum += h;
  result.h_estimate = sum / static_cast<double>(result.h_history.size());
  result.last_supergradient_norm = result_.grad_psi.cast<double>().norm();
  return result;
}

std::map<std::string, nn::Tensor> SemiDiscreteSolver::ExportState() const {
  std::map<std::string, nn::Tensor> state;
  state["psi"] = psi_.value().Clone();
  const optim::OptimizerState os = optimizer_->ExportState();
  for (const auto& [name, t] : os.tensors) state["optimizer." + name] = t.Clone();
  for (const auto& [name, v] : os.counters) state["optimizer." + name] = EncodeCounter(v);
  state["solver.total_steps"] = EncodeCounter(total_steps_);
  state["solver.method"] = nn::Tensor::Full({1}, options_.method == SemiDiscreteMethod::kAsgd ? 0.0f : 1.0f);
  return state;
}

absl::Status SemiDiscreteSolver::ImportState(const std::map<std::string, nn::Tensor>& state) {
  auto psi_it = state.find("psi");
  if (psi_it == state.end()) return absl::InvalidArgumentError("state: missing tensor psi");
  const nn::Tensor& psi = psi_it->second;
  if (!psi.defined() || psi.shape() != nn::Shape{num_targets_}) {
    return absl::InvalidArgumentError(absl::StrCat("state: psi has shape ",
                                                   psi.defined() ? nn::ShapeToString(psi.shape()) : "undefined",
                                                   ", expected [", num_targets_, "]"));
  }
  OTGEN_RETURN_IF_ERROR(CheckFinite(psi.data(), psi.numel(), "state: psi"));
  auto method_it = state.find("solver.method");
  if (method_it == state.end()) return absl::InvalidArgumentError("state: missing tensor solver.method");
  const float expected_method = options_.method == SemiDiscreteMethod::kAsgd ? 0.0f : 1.0f;
  if (method_it->second.numel() != 1 || method_it->second.data()[0] != expected_method) {
    return absl::InvalidArgumentError(absl::StrCat("state: solver.method does not match this solver's method (",
                                                   options_.method == SemiDiscreteMethod::kAsgd ? "ASGD" : "Adam",
                                                   ")"));
  }
  auto steps_it = state.find("solver.total_steps");
  if (steps_it == state.end()) return absl::InvalidArgumentError("state: missing tensor solver.total_steps");
  OTGEN_ASSIGN_OR_RETURN(const int64_t total_steps, DecodeCounter(steps_it->second, "state: solver.total_steps"));

  optim::OptimizerState os;
  os.type = optimizer_->type();
  for (const auto& [name, t] : state) {
    if (name == "psi" || name == "solver.method" || name == "solver.total_steps") continue;
    if (name.rfind("optimizer.", 0) != 0) return absl::InvalidArgumentError(absl::StrCat("state: unexpected entry ", name));
    const std::string key = name.substr(std::string("optimizer.").size());
    if (key.size() > 5 && key.compare(key.size() - 5, 5, ".step") == 0) {
      OTGEN_ASSIGN_OR_RETURN(const int64_t v, DecodeCounter(t, "state: " + name));
      os.counters.emplace_back(key, v);
    } else {
      if (!t.defined()) return absl::InvalidArgumentError(absl::StrCat("state: ", name, " is undefined"));
      OTGEN_RETURN_IF_ERROR(CheckFinite(t.data(), t.numel(), "state: " + name));
      os.tensors.emplace_back(key, t);
    }
  }
  // The optimizer validates everything before committing; psi goes in only after it succeeded.
  absl::Status s = optimizer_->ImportState(os);
  if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("state: ", s.message()));
  std::memcpy(psi_.mutable_value().data(), psi.data(), sizeof(float) * num_targets_);
  total_steps_ = total_steps;
  return absl::OkStatus();
}

}  // namespace otgen::ot
