#include "optim/adam.h"

#include <algorithm>
#include <cmath>

#include "Eigen/Core"
#include "absl/strings/str_cat.h"
#include "nn/denormals.h"
#include "nn/onednn_context.h"
#include "nn/status_macros.h"

namespace otgen::optim {
namespace {
// Elements per OpenMP work item of the update; tensors of at most this many run serially.
constexpr int64_t kParallelChunk = int64_t{1} << 17;
}  // namespace

absl::Status AdamOptions::Validate() const {
  if (!(lr > 0.0f) || !std::isfinite(lr)) {
    return absl::InvalidArgumentError(absl::StrCat("AdamOptions.lr: expected a finite value > 0, got ", lr));
  }
  if (!(beta1 >= 0.0f && beta1 < 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("AdamOptions.beta1: expected a value in [0, 1), got ", beta1));
  }
  if (!(beta2 >= 0.0f && beta2 < 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("AdamOptions.beta2: expected a value in [0, 1), got ", beta2));
  }
  if (!(eps >= 0.0f) || !std::isfinite(eps)) {
    return absl::InvalidArgumentError(absl::StrCat("AdamOptions.eps: expected a finite value >= 0, got ", eps));
  }
  if (!(weight_decay >= 0.0f) || !std::isfinite(weight_decay)) {
    return absl::InvalidArgumentError(
        absl::StrCat("AdamOptions.weight_decay: expected a finite value >= 0, got ", weight_decay));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Adam>> Adam::Create(std::vector<nn::Var> parameters, const AdamOptions& options) {
  OTGEN_RETURN_IF_ERROR(options.Validate());
  OTGEN_RETURN_IF_ERROR(ValidateParameters(parameters));
  return std::make_unique<Adam>(std::move(parameters), options);
}

Adam::Adam(std::vector<nn::Var> parameters, const AdamOptions& options)
    : Optimizer(std::move(parameters)),
      options_(options),
      exp_avg_(parameters_.size()),
      exp_avg_sq_(parameters_.size()),
      max_exp_avg_sq_(parameters_.size()) {
  internal::CheckOk(options_.Validate(), "Adam");
}

void Adam::Update(int index, const nn::Tensor& grad, int64_t step) {
  nn::Tensor& value = parameters_[index].mutable_value();
  const int64_t n = value.numel();
  if (!exp_avg_[index].defined()) exp_avg_[index] = nn::Tensor::Zeros(value.shape());
  if (!exp_avg_sq_[index].defined()) exp_avg_sq_[index] = nn::Tensor::Zeros(value.shape());
  if (options_.amsgrad && !max_exp_avg_sq_[index].defined()) {
    max_exp_avg_sq_[index] = nn::Tensor::Zeros(value.shape());
  }
  const float b1 = options_.beta1;
  const float b2 = options_.beta2;
  const float sign = options_.maximize ? -1.0f : 1.0f;
  const float wd = options_.weight_decay;
  const double k = static_cast<double>(step);
  const double bias_correction1 = 1.0 - std::pow(static_cast<double>(b1), k);
  const double bias_correction2 = 1.0 - std::pow(static_cast<double>(b2), k);
  // p -= lr * (m / bc1) / (sqrt(v / bc2) + eps)
  //    = step_size * m / (sqrt(v) / sqrt(bc2) + eps), step_size = lr / bc1 (PyTorch's form).
  // Vectorized with Eigen (a scalar loop with std::sqrt and aliasing pointers does not vectorize).
  const float step_size = static_cast<float>(options_.lr / bias_correction1);
  const float sqrt_bc2 = static_cast<float>(std::sqrt(bias_correction2));
  const float eps = options_.eps;
  float* const pp = value.data();
  const float* const pg = grad.data();
  float* const pm = exp_avg_[index].data();
  float* const pv = exp_avg_sq_[index].data();
  float* const pvmax = options_.amsgrad ? max_exp_avg_sq_[index].data() : nullptr;

  // Elements [begin, begin + len): three fused passes, with denormals flushed (nn/denormals.h:
  // the moments of parameters whose gradients vanish decay into the denormal range, where each
  // operation costs a microcode assist).
  auto update_range = [&](int64_t begin, int64_t len) {
    const nn::ScopedFlushDenormals ftz;
    using Array = Eigen::Map<Eigen::ArrayXf>;
    using ConstArray = Eigen::Map<const Eigen::ArrayXf>;
    Array p(pp + begin, len);
    ConstArray g(pg + begin, len);
    Array m(pm + begin, len);
    Array v(pv + begin, len);
    if (wd != 0.0f || sign != 1.0f) {
      const auto d = sign * g + wd * p;
      m = b1 * m + (1.0f - b1) * d;
      v = b2 * v + (1.0f - b2) * d.square();
    } else {
      m = b1 * m + (1.0f - b1) * g;
      v = b2 * v + (1.0f - b2) * g.square();
    }
    if (pvmax != nullptr) {
      Array vmax(pvmax + begin, len);
      vmax = vmax.max(v);
      p -= step_size * m / (vmax.sqrt() / sqrt_bc2 + eps);
    } else {
      p -= step_size * m / (v.sqrt() / sqrt_bc2 + eps);
    }
  };
  // Large tensors (the 1024 x 1024 layers of the MNIST networks) are split across the OpenMP
  // team; below kParallelChunk elements one thread is faster than forking.
  const int64_t chunks = (n + kParallelChunk - 1) / kParallelChunk;
  if (chunks <= 1) {
    update_range(0, n);
    return;
  }
#pragma omp parallel for schedule(static) if (nn::GetNumThreads() > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kParallelChunk;
    update_range(begin, std::min(kParallelChunk, n - begin));
  }
}

std::vector<std::string> Adam::SlotNames() const {
  if (options_.amsgrad) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  return {"exp_avg", "exp_avg_sq"};
}

const nn::Tensor& Adam::slot(int index, const std::string& name) const {
  return const_cast<Adam*>(this)->mutable_slot(index, name);
}

nn::Tensor& Adam::mutable_slot(int index, const std::string& name) {
  if (name == "exp_avg") return exp_avg_[index];
  if (name == "exp_avg_sq") return exp_avg_sq_[index];
  OTGEN_CHECK(name == "max_exp_avg_sq" && options_.amsgrad, absl::StrCat("Adam: no slot ", name));
  return max_exp_avg_sq_[index];
}

}  // namespace otgen::optim
