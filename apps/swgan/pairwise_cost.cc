#include "apps/swgan/pairwise_cost.h"

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ot/types.h"

namespace otgen::apps::swgan {
namespace {

using nn::Tensor;
using nn::Var;
using ConstMap = Eigen::Map<const ot::RowMatrixXf>;
using Map = Eigen::Map<ot::RowMatrixXf>;

int64_t Rows(const Tensor& t) { return t.dim(0); }
int64_t Cols(const Tensor& t) { return t.dim(0) == 0 ? 0 : t.numel() / t.dim(0); }

absl::Status Check(const ot::Cost& cost, const Tensor& x, const Tensor& y) {
  if (absl::Status s = cost.Validate(); !s.ok()) return s;
  if (x.rank() < 1 || y.rank() < 1 || Rows(x) < 1 || Rows(y) < 1 || Cols(x) != Cols(y) || Cols(x) < 1) {
    return absl::InvalidArgumentError(absl::StrCat("PairwiseCost: expected non-empty batches x [n, ...] and y [m, ...] "
                                                   "with equal example sizes; got ",
                                                   nn::ShapeToString(x.shape()), " and ",
                                                   nn::ShapeToString(y.shape())));
  }
  return absl::OkStatus();
}

Tensor Values(const ot::Cost& cost, const Tensor& x, const Tensor& y) {
  const ConstMap xm(x.data(), Rows(x), Cols(x)), ym(y.data(), Rows(y), Cols(y));
  Tensor out = Tensor::Empty({Rows(x), Rows(y)});
  Map om(out.data(), Rows(x), Rows(y));
  ot::EvaluateCostTile(cost, xm, ot::CostPointData(cost, xm), ym, ot::CostPointData(cost, ym), om);
  return out;
}

// sum_j w_ij grad_x c(a_i, b_j), shaped like a.
Tensor GradientOfFirst(const ot::Cost& cost, const Tensor& a, const Tensor& b,
                       const Eigen::Ref<const ot::RowMatrixXf>& w) {
  const ConstMap am(a.data(), Rows(a), Cols(a)), bm(b.data(), Rows(b), Cols(b));
  Tensor grad = Tensor::Zeros(a.shape());
  Map gm(grad.data(), Rows(a), Cols(a));
  ot::AccumulateCostGradientTile(cost, am, ot::CostPointData(cost, am), bm, ot::CostPointData(cost, bm), w, gm);
  return grad;
}

class PairwiseCostNode : public nn::Node {
 public:
  explicit PairwiseCostNode(ot::Cost cost) : cost_(cost) {}

  std::vector<Var> Backward(const Var& g, const std::vector<bool>& needs) override {
    OTGEN_CHECK(!nn::GradModeEnabled(),
                "PairwiseCost is first-order only: it cannot be differentiated with create_graph = true");
    const Tensor& x = inputs()[0].value();
    const Tensor& y = inputs()[1].value();
    const ConstMap gm(g.value().data(), Rows(x), Rows(y));
    std::vector<Var> out(2);
    if (needs[0]) out[0] = Var::Constant(GradientOfFirst(cost_, x, y, gm));
    if (needs[1]) out[1] = Var::Constant(GradientOfFirst(cost_, y, x, gm.transpose()));
    return out;
  }
  const char* name() const override { return "PairwiseCost"; }

 private:
  ot::Cost cost_;
};

}  // namespace

absl::StatusOr<Tensor> PairwiseCostValues(const ot::Cost& cost, const Tensor& x, const Tensor& y) {
  if (absl::Status s = Check(cost, x, y); !s.ok()) return s;
  return Values(cost, x, y);
}

absl::StatusOr<Var> PairwiseCost(const ot::Cost& cost, const Var& x, const Var& y) {
  if (!x.defined() || !y.defined()) return absl::InvalidArgumentError("PairwiseCost: undefined input");
  if (absl::Status s = Check(cost, x.value(), y.value()); !s.ok()) return s;
  Tensor value = Values(cost, x.value(), y.value());
  if (!nn::GradModeEnabled() || !nn::AnyRequiresGrad({x, y})) return Var::Constant(std::move(value));
  return nn::RecordOp(std::move(value), {x, y}, std::make_shared<PairwiseCostNode>(cost));
}

}  // namespace otgen::apps::swgan
