#include "optim/sgd.h"

#include <cmath>

#include "Eigen/Core"
#include "absl/strings/str_cat.h"
#include "nn/status_macros.h"

namespace otgen::optim {

absl::Status SgdOptions::Validate() const {
  if (!(lr > 0.0f) || !std::isfinite(lr)) {
    return absl::InvalidArgumentError(absl::StrCat("SgdOptions.lr: expected a finite value > 0, got ", lr));
  }
  if (!(momentum >= 0.0f) || !std::isfinite(momentum)) {
    return absl::InvalidArgumentError(absl::StrCat("SgdOptions.momentum: expected a finite value >= 0, got ", momentum));
  }
  if (!(dampening >= 0.0f && dampening <= 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("SgdOptions.dampening: expected a value in [0, 1], got ", dampening));
  }
  if (!(weight_decay >= 0.0f) || !std::isfinite(weight_decay)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SgdOptions.weight_decay: expected a finite value >= 0, got ", weight_decay));
  }
  if (nesterov && (momentum <= 0.0f || dampening != 0.0f)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SgdOptions.nesterov: requires momentum > 0 and dampening = 0, got momentum ", momentum, ", dampening ",
        dampening));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Sgd>> Sgd::Create(std::vector<nn::Var> parameters, const SgdOptions& options) {
  OTGEN_RETURN_IF_ERROR(options.Validate());
  OTGEN_RETURN_IF_ERROR(ValidateParameters(parameters));
  return std::make_unique<Sgd>(std::move(parameters), options);
}

Sgd::Sgd(std::vector<nn::Var> parameters, const SgdOptions& options)
    : Optimizer(std::move(parameters)), options_(options), buffers_(parameters_.size()) {
  internal::CheckOk(options_.Validate(), "Sgd");
}

void Sgd::Update(int index, const nn::Tensor& grad, int64_t /*step*/) {
  nn::Tensor& value = parameters_[index].mutable_value();
  const int64_t n = value.numel();
  Eigen::Map<Eigen::ArrayXf> p(value.data(), n);
  Eigen::Map<const Eigen::ArrayXf> g(grad.data(), n);
  const float wd = options_.weight_decay;
  const float lr = options_.lr;
  // PyTorch's maximize negates the gradient before weight decay.
  const float sign = options_.maximize ? -1.0f : 1.0f;
  const auto d = sign * g + wd * p;
  if (options_.momentum == 0.0f) {
    p -= lr * d;
    return;
  }
  const float mu = options_.momentum;
  nn::Tensor& buffer = buffers_[index];
  if (!buffer.defined()) {
    // The first buffer is d itself (undamped).
    buffer = nn::Tensor::Empty(value.shape());
    Eigen::Map<Eigen::ArrayXf>(buffer.data(), n) = d;
  } else {
    Eigen::Map<Eigen::ArrayXf> b(buffer.data(), n);
    b = mu * b + (1.0f - options_.dampening) * d;
  }
  Eigen::Map<const Eigen::ArrayXf> b(buffer.data(), n);
  if (options_.nesterov) {
    p -= lr * (d + mu * b);
  } else {
    p -= lr * b;
  }
}

std::vector<std::string> Sgd::SlotNames() const {
  if (options_.momentum == 0.0f) return {};
  return {"momentum_buffer"};
}

const nn::Tensor& Sgd::slot(int index, const std::string& name) const {
  OTGEN_CHECK(name == "momentum_buffer", absl::StrCat("Sgd: no slot ", name));
  return buffers_[index];
}

nn::Tensor& Sgd::mutable_slot(int index, const std::string& name) {
  OTGEN_CHECK(name == "momentum_buffer", absl::StrCat("Sgd: no slot ", name));
  return buffers_[index];
}

}  // namespace otgen::optim
