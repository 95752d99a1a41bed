#include "optim/asgd.h"

#include <cmath>

#include "Eigen/Core"
#include "absl/strings/str_cat.h"
#include "nn/status_macros.h"

namespace otgen::optim {

absl::Status AsgdOptions::Validate() const {
  if (!(gamma > 0.0f) || !std::isfinite(gamma)) {
    return absl::InvalidArgumentError(absl::StrCat("AsgdOptions.gamma: expected a finite value > 0, got ", gamma));
  }
  if (!(alpha >= 0.0f && alpha <= 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("AsgdOptions.alpha: expected a value in [0, 1], got ", alpha));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Asgd>> Asgd::Create(std::vector<nn::Var> parameters, const AsgdOptions& options) {
  OTGEN_RETURN_IF_ERROR(options.Validate());
  OTGEN_RETURN_IF_ERROR(ValidateParameters(parameters));
  return std::make_unique<Asgd>(std::move(parameters), options);
}

Asgd::Asgd(std::vector<nn::Var> parameters, const AsgdOptions& options)
    : Optimizer(std::move(parameters)), options_(options), averaged_(parameters_.size()) {
  internal::CheckOk(options_.Validate(), "Asgd");
}

const nn::Tensor& Asgd::averaged(int param_index) const {
  OTGEN_CHECK(param_index >= 0 && param_index < num_parameters(),
              absl::StrCat("Asgd::averaged: index ", param_index, " for ", num_parameters(), " parameters"));
  const nn::Tensor& a = averaged_[param_index];
  return a.defined() ? a : parameters_[param_index].value();
}

void Asgd::Restart() {
  for (size_t i = 0; i < parameters_.size(); ++i) {
    steps_[i] = 0;
    averaged_[i] = nn::Tensor();
  }
}

void Asgd::CopyAveragedToParameters() {
  for (size_t i = 0; i < parameters_.size(); ++i) {
    if (averaged_[i].defined()) parameters_[i].mutable_value().CopyFrom(averaged_[i]);
  }
}

void Asgd::Update(int index, const nn::Tensor& grad, int64_t step) {
  nn::Tensor& value = parameters_[index].mutable_value();
  const int64_t n = value.numel();
  // Step gamma / k^alpha, signed for ascent or descent.
  const double k = static_cast<double>(step);
  const float eta = static_cast<float>((options_.maximize ? 1.0 : -1.0) * options_.gamma / std::pow(k, options_.alpha));
  // psi_bar_k = psi_bar_{k-1} + (psi~_k - psi_bar_{k-1}) / k; at k = 1 it is psi~_1.
  const float inv_k = static_cast<float>(1.0 / k);
  nn::Tensor& avg = averaged_[index];
  if (!avg.defined()) avg = nn::Tensor::Empty(value.shape());
  Eigen::Map<Eigen::ArrayXf> p(value.data(), n);
  Eigen::Map<Eigen::ArrayXf> a(avg.data(), n);
  Eigen::Map<const Eigen::ArrayXf> g(grad.data(), n);
  p += eta * g;
  if (step == 1) {
    a = p;
  } else {
    a += (p - a) * inv_k;
  }
}

const nn::Tensor& Asgd::slot(int index, const std::string& name) const {
  OTGEN_CHECK(name == "averaged", absl::StrCat("Asgd: no slot ", name));
  return averaged_[index];
}

nn::Tensor& Asgd::mutable_slot(int index, const std::string& name) {
  OTGEN_CHECK(name == "averaged", absl::StrCat("Asgd: no slot ", name));
  return averaged_[index];
}

}  // namespace otgen::optim
