#include "ot/barycentric.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "nn/ops.h"
#include "nn/tensor_math.h"

namespace otgen::ot {

namespace {

absl::StatusOr<nn::Tensor> RowMasses(const nn::Tensor& plan, const nn::Tensor& y) {
  if (plan.rank() != 2 || y.rank() != 2 || plan.dim(1) != y.dim(0) || plan.dim(0) == 0) {
    return absl::InvalidArgumentError(absl::StrCat("barycentric projection: expected plan [n, m] and targets [m, d], got plan ",
                                                   nn::ShapeToString(plan.shape()), " and targets ",
                                                   nn::ShapeToString(y.shape())));
  }
  const int64_t n = plan.dim(0), m = plan.dim(1);
  nn::Tensor mass = nn::Tensor::Empty({n, 1});
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t j = 0; j < m; ++j) {
      const float p = plan.data()[i * m + j];
      if (!(p >= 0) || !std::isfinite(p)) {
        return absl::InvalidArgumentError(absl::StrCat("plan: entry (", i, ", ", j, ") is ", p,
                                                       "; expected finite and non-negative"));
      }
      s += p;
    }
    if (s <= 0) return absl::InvalidArgumentError(absl::StrCat("plan: row ", i, " has no mass; T(x_", i, ") is undefined"));
    mass.data()[i] = static_cast<float>(s);
  }
  return mass;
}

}  // namespace

absl::StatusOr<nn::Tensor> BarycentricProjection(const nn::Tensor& plan, const nn::Tensor& y) {
  absl::StatusOr<nn::Tensor> mass = RowMasses(plan, y);
  if (!mass.ok()) return mass.status();
  return nn::math::Binary(nn::math::BinaryKind::kDiv, nn::math::MatMul(plan, y), *mass);
}

absl::StatusOr<nn::Var> BarycentricMapLoss(const nn::Var& f_x, const nn::Tensor& plan, const nn::Tensor& y) {
  absl::StatusOr<nn::Tensor> mass = RowMasses(plan, y);
  if (!mass.ok()) return mass.status();
  if (!f_x.defined() || f_x.shape() != nn::Shape{plan.dim(0), y.dim(1)}) {
    return absl::InvalidArgumentError(absl::StrCat("f_x: expected [", plan.dim(0), ", ", y.dim(1), "], got ",
                                                   f_x.defined() ? nn::ShapeToString(f_x.shape()) : "undefined"));
  }
  const nn::Tensor target = nn::math::Binary(nn::math::BinaryKind::kDiv, nn::math::MatMul(plan, y), *mass);
  const double total = nn::math::SumAll(*mass);
  const nn::Tensor w = nn::math::Unary(nn::math::UnaryKind::kLinear, *mass, static_cast<float>(1.0 / total), 0.0f);
  nn::Var sq = nn::Sum(nn::Square(nn::Sub(f_x, nn::Var::Constant(target))), {1}, /*keepdim=*/true);
  return nn::SumAll(nn::Mul(sq, nn::Var::Constant(w)));
}

}  // namespace otgen::ot
