#include "nn/ops.h"

#include <algorithm>
#include <functional>
#include <memory>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nn/tensor_math.h"

namespace otgen::nn {
namespace {

using math::BinaryKind;
using math::ReduceKind;
using math::UnaryKind;

// A node whose backward rule is a function of (grad_output, inputs, output, needs).
class FunctionNode : public Node {
 public:
  using Rule = std::function<std::vector<Var>(const Var& g, const std::vector<Var>& in, const Var& out,
                                              const std::vector<bool>& needs)>;
  FunctionNode(const char* name, Rule rule, bool uses_output)
      : name_(name), rule_(std::move(rule)), uses_output_(uses_output) {}

  std::vector<Var> Backward(const Var& g, const std::vector<bool>& needs) override {
    return rule_(g, inputs(), uses_output_ ? output() : Var(), needs);
  }
  const char* name() const override { return name_; }

 private:
  const char* name_;
  Rule rule_;
  bool uses_output_;
};

Var Record(const char* name, Tensor value, std::vector<Var> inputs, FunctionNode::Rule rule,
           bool uses_output = false) {
  if (!AnyRequiresGrad(inputs)) return Var::Constant(std::move(value));
  return RecordOp(std::move(value), std::move(inputs),
                  std::make_shared<FunctionNode>(name, std::move(rule), uses_output));
}

Var Const(Tensor t) { return Var::Constant(std::move(t)); }

void CheckBroadcast(const char* op, const Var& a, const Var& b) {
  OTGEN_CHECK(a.defined() && b.defined(), absl::StrCat(op, ": undefined operand"));
  OTGEN_CHECK(math::Broadcastable(a.shape(), b.shape()),
              absl::StrCat(op, ": shapes ", ShapeToString(a.shape()), " and ", ShapeToString(b.shape()),
                           " do not broadcast"));
}

// Shape of x after reducing `axes` with keepdim = true.
Shape KeepDimShape(const Shape& shape, const std::vector<int>& axes) {
  Shape s = shape;
  const int rank = static_cast<int>(shape.size());
  if (axes.empty()) {
    std::fill(s.begin(), s.end(), 1);
    return s;
  }
  for (int a : axes) s[NormalizeAxis(a, rank)] = 1;
  return s;
}

int64_t ReducedCount(const Shape& shape, const std::vector<int>& axes) {
  return NumElements(shape) / std::max<int64_t>(1, NumElements(KeepDimShape(shape, axes)));
}

}  // namespace

// ---- Binary ------------------------------------------------------------------------------

Var Add(const Var& a, const Var& b) {
  CheckBroadcast("Add", a, b);
  return Record("Add", math::Binary(BinaryKind::kAdd, a.value(), b.value()), {a, b},
                [](const Var& g, const std::vector<Var>& in, const Var&, const std::vector<bool>& needs) {
                  return std::vector<Var>{needs[0] ? SumTo(g, in[0].shape()) : Var(),
                                          needs[1] ? SumTo(g, in[1].shape()) : Var()};
                });
}

Var Sub(const Var& a, const Var& b) {
  CheckBroadcast("Sub", a, b);
  return Record("Sub", math::Binary(BinaryKind::kSub, a.value(), b.value()), {a, b},
                [](const Var& g, const std::vector<Var>& in, const Var&, const std::vector<bool>& needs) {
                  return std::vector<Var>{needs[0] ? SumTo(g, in[0].shape()) : Var(),
                                          needs[1] ? SumTo(Neg(g), in[1].shape()) : Var()};
                });
}

Var Mul(const Var& a, const Var& b) {
  CheckBroadcast("Mul", a, b);
  return Record("Mul", math::Binary(BinaryKind::kMul, a.value(), b.value()), {a, b},
                [](const Var& g, const std::vector<Var>& in, const Var&, const std::vector<bool>& needs) {
                  return std::vector<Var>{needs[0] ? SumTo(Mul(g, in[1]), in[0].shape()) : Var(),
                                          needs[1] ? SumTo(Mul(g, in[0]), in[1].shape()) : Var()};
                });
}

Var Div(const Var& a, const Var& b) {
  CheckBroadcast("Div", a, b);
  return Record("Div", math::Binary(BinaryKind::kDiv, a.value(), b.value()), {a, b},
                [](const Var& g, const std::vector<Var>& in, const Var&, const std::vector<bool>& needs) {
                  Var ga, gb;
                  if (needs[0]) ga = SumTo(Div(g, in[1]), in[0].shape());
                  if (needs[1]) gb = SumTo(Neg(Div(Mul(g, in[0]), Square(in[1]))), in[1].shape());
                  return std::vector<Var>{ga, gb};
                });
}

namespace {
Var MaskedBinary(const char* name, BinaryKind kind, const Var& a, const Var& b, Tensor mask_a) {
  // mask_a: 1 where the result comes from a (broadcast shape); constant.
  return Record(name, math::Binary(kind, a.value(), b.value()), {a, b},
                [mask_a](const Var& g, const std::vector<Var>& in, const Var&, const std::vector<bool>& needs) {
                  Var ga, gb;
                  if (needs[0]) ga = SumTo(Mul(g, Const(mask_a)), in[0].shape());
                  if (needs[1]) {
                    gb = SumTo(Mul(g, Const(math::Unary(UnaryKind::kLinear, mask_a, -1.0f, 1.0f))), in[1].shape());
                  }
                  return std::vector<Var>{ga, gb};
                });
}
}  // namespace

Var Maximum(const Var& a, const Var& b) {
  CheckBroadcast("Maximum", a, b);
  const bool record = AnyRequiresGrad({a, b});
  return MaskedBinary("Maximum", BinaryKind::kMax, a, b,
                      record ? math::GreaterEqual(a.value(), b.value()) : Tensor());
}

Var Minimum(const Var& a, const Var& b) {
  CheckBroadcast("Minimum", a, b);
  const bool record = AnyRequiresGrad({a, b});
  return MaskedBinary("Minimum", BinaryKind::kMin, a, b,
                      record ? math::GreaterEqual(b.value(), a.value()) : Tensor());
}

Var AddScalar(const Var& x, float c) {
  return Record("AddScalar", math::Unary(UnaryKind::kLinear, x.value(), 1.0f, c), {x},
                [](const Var& g, const std::vector<Var>&, const Var&, const std::vector<bool>&) {
                  return std::vector<Var>{g};
                });
}

Var MulScalar(const Var& x, float c) {
  return Record("MulScalar", math::Unary(UnaryKind::kLinear, x.value(), c, 0.0f), {x},
                [c](const Var& g, const std::vector<Var>&, const Var&, const std::vector<bool>&) {
                  return std::vector<Var>{MulScalar(g, c)};
                });
}

Var RSubScalar(float c, const Var& x) {
  return Record("RSubScalar", math::Unary(UnaryKind::kLinear, x.value(), -1.0f, c), {x},
                [](const Var& g, const std::vector<Var>&, const Var&, const std::vector<bool>&) {
                  return std::vector<Var>{Neg(g)};
                });
}

// ---- Element-wise -------------------------------------------------------------------------

Var Neg(const Var& x) {
  return Record("Neg", math::Unary(UnaryKind::kNeg, x.value()), {x},
                [](const Var& g, const std::vector<Var>&, const Var&, const std::vector<bool>&) {
                  return std::vector<Var>{Neg(g)};
                });
}

namespace {
// y = f(x) whose derivative f'(x) is piecewise constant: g * mask with mask constant.
Var PiecewiseLinear(const char* name, Tensor value, const Var& x, const std::function<Tensor()>& mask) {
  if (!AnyRequiresGrad({x})) return Const(std::move(value));
  Tensor m = mask();
  return Record(name, std::move(value), {x},
                [m](const Var& g, const std::vector<Var>&, const Var&, const std::vector<bool>&) {
                  return std::vector<Var>{Mul(g, Const(m))};
                });
}
}  // namespace

namespace {
// g * (v > 0 ? 1 : slope): the backward of Relu (slope 0) and LeakyRelu, with v their output y
// when slope >= 0 (y > 0 exactly where x > 0, so no mask is computed and kept at the forward)
// and their input x when slope < 0 (which flips y's sign on x < 0). Linear in g (v is a
// constant), so its gradient is the same op.
Var ReluFamilyBackward(const Var& g, const Tensor& v, float slope) {
  return Record("ReluBackward", math::ScaleWhereNotPositive(g.value(), v, slope), {g},
                [v, slope](const Var& gg, const std::vector<Var>&, const Var&, const std::vector<bool>&) {
                  return std::vector<Var>{ReluFamilyBackward(gg, v, slope)};
                });
}

Var ReluFamily(const char* name, Tensor y, const Var& x, float slope) {
  if (!AnyRequiresGrad({x})) return Const(std::move(y));
  const Tensor v = slope >= 0.0f ? y : x.value();
  return Record(name, y, {x}, [v, slope](const Var& g, const std::vector<Var>&, const Var&, const std::vector<bool>&) {
    return std::vector<Var>{ReluFamilyBackward(g, v, slope)};
  });
}
}  // namespace

Var Relu(const Var& x) { return ReluFamily("Relu", math::Unary(UnaryKind::kRelu, x.value()), x, 0.0f); }

Var LeakyRelu(const Var& x, float slope) {
  return ReluFamily("LeakyRelu", math::Unary(UnaryKind::kLeakyRelu, x.value(), slope), x, slope);
}

Var Abs(const Var& x) {
  return PiecewiseLinear("Abs", math::Unary(UnaryKind::kAbs, x.value()), x,
                         [&] { return math::Unary(UnaryKind::kSign, x.value()); });
}

Var Clamp(const Var& x, float lo, float hi) {
  OTGEN_CHECK(lo <= hi, absl::StrCat("Clamp: lo ", lo, " > hi ", hi));
  return PiecewiseLinear("Clamp", math::Unary(UnaryKind::kClip, x.value(), lo, hi), x, [&] {
    // 1 on [lo, hi]: (x >= lo) * (hi >= x)
    Tensor ge = math::GreaterEqual(x.value(), Tensor::Scalar(lo));
    Tensor le = math::GreaterEqual(Tensor::Scalar(hi), x.value());
    return math::Binary(BinaryKind::kMul, ge, le);
  });
}

Var Tanh(const Var& x) {
  return Record("Tanh", math::Unary(UnaryKind::kTanh, x.value()), {x},
                [](const Var& g, const std::vector<Var>&, const Var& y, const std::vector<bool>&) {
                  return std::vector<Var>{Mul(g, RSubScalar(1.0f, Square(y)))};
                }, /*uses_output=*/true);
}

Var Sigmoid(const Var& x) {
  return Record("Sigmoid", math::Unary(UnaryKind::kSigmoid, x.value()), {x},
                [](const Var& g, const std::vector<Var>&, const Var& y, const std::vector<bool>&) {
                  return std::vector<Var>{Mul(g, Mul(y, RSubScalar(1.0f, y)))};
                }, /*uses_output=*/true);
}

Var Exp(const Var& x) {
  return Record("Exp", math::Unary(UnaryKind::kExp, x.value()), {x},
                [](const Var& g, const std::vector<Var>&, const Var& y, const std::vector<bool>&) {
                  return std::vector<Var>{Mul(g, y)};
                }, /*uses_output=*/true);
}

Var Log(const Var& x) {
  return Record("Log", math::Unary(UnaryKind::kLog, x.value()), {x},
                [](const Var& g, const std::vector<Var>& in, const Var&, const std::vector<bool>&) {
                  return std::vector<Var>{Div(g, in[0])};
                });
}

Var Sqrt(const Var& x) {
  return Record("Sqrt", math::Unary(UnaryKind::kSqrt, x.value()), {x},
                [](const Var& g, const std::vector<Var>&, const Var& y, const std::vector<bool>&) {
                  return std::vector<Var>{Div(g, MulScalar(y, 2.0f))};
                }, /*uses_output=*/true);
}

Var Square(const Var& x) {
  return Record("Square", math::Unary(UnaryKind::kSquare, x.value()), {x},
                [](const Var& g, const std::vector<Var>& in, const Var&, const std::vector<bool>&) {
                  return std::vector<Var>{Mul(g, MulScalar(in[0], 2.0f))};
                });
}

Var Pow(const Var& x, float p) {
  if (p == 1.0f) return x;
  if (p == 2.0f) return Square(x);
  return Record("Pow", math::Unary(UnaryKind::kPow, x.value(), p), {x},
                [p](const Var& g, const std::vector<Var>& in, const Var&, const std::vector<bool>&) {
                  return std::vector<Var>{Mul(g, MulScalar(Pow(in[0], p - 1.0f), p))};
                });
}

// ---- Reductions -----------------------------------------------------------------------------

Var Sum(const Var& x, const std::vector<int>& axes, bool keepdim) {
  return Record("Sum", math::Reduce(ReduceKind::kSum, x.value(), axes, keepdim), {x},
                [axes](const Var& g, const std::vector<Var>& in, const Var&, const std::vector<bool>&) {
                  const Shape& s = in[0].shape();
                  return std::vector<Var>{BroadcastTo(Reshape(g, KeepDimShape(s, axes)), s)};
                });
}

Var Mean(const Var& x, const std::vector<int>& axes, bool keepdim) {
  const float inv = 1.0f / static_cast<float>(std::max<int64_t>(1, ReducedCount(x.shape(), axes)));
  return Record("Mean", math::Reduce(ReduceKind::kMean, x.value(), axes, keepdim), {x},
                [axes, inv](const Var& g, const std::vector<Var>& in, const Var&, const std::vector<bool>&) {
                  const Shape& s = in[0].shape();
                  return std::vector<Var>{MulScalar(BroadcastTo(Reshape(g, KeepDimShape(s, axes)), s), inv)};
                });
}

namespace {
Var Extremum(const char* name, ReduceKind kind, const Var& x, const std::vector<int>& axes, bool keepdim) {
  Tensor value = math::Reduce(kind, x.value(), axes, keepdim);
  if (!AnyRequiresGrad({x})) return Const(std::move(value));
  const Shape keep = KeepDimShape(x.shape(), axes);
  Tensor mask = math::Equal(x.value(), value.Reshape(keep));
  Tensor count = math::Reduce(ReduceKind::kSum, mask, axes, /*keepdim=*/true);
  Tensor weight = math::Binary(BinaryKind::kDiv, mask, count);
  return Record(name, std::move(value), {x},
                [weight, keep](const Var& g, const std::vector<Var>& in, const Var&, const std::vector<bool>&) {
                  return std::vector<Var>{Mul(BroadcastTo(Reshape(g, keep), in[0].shape()), Const(weight))};
                });
}
}  // namespace

Var Max(const Var& x, const std::vector<int>& axes, bool keepdim) {
  return Extremum("Max", ReduceKind::kMax, x, axes, keepdim);
}
Var Min(const Var& x, const std::vector<int>& axes, bool keepdim) {
  return Extremum("Min", ReduceKind::kMin, x, axes, keepdim);
}

Var LogSumExp(const Var& x, const std::vector<int>& axes, bool keepdim) {
  return Record("LogSumExp", math::LogSumExp(x.value(), axes, keepdim), {x},
                [axes](const Var& g, const std::vector<Var>& in, const Var& y, const std::vector<bool>&) {
                  const Shape& s = in[0].shape();
                  const Shape keep = KeepDimShape(s, axes);
                  Var p = Exp(Sub(in[0], Reshape(y, keep)));  // softmax weights, broadcast
                  return std::vector<Var>{Mul(Reshape(g, keep), p)};
                }, /*uses_output=*/true);
}

Var SumAll(const Var& x) { return Sum(x, {}, /*keepdim=*/false); }
Var MeanAll(const Var& x) { return Mean(x, {}, /*keepdim=*/false); }

Var Softmax(const Var& x, int axis) {
  return Record("Softmax", math::Softmax(x.value(), axis), {x},
                [axis](const Var& g, const std::vector<Var>&, const Var& y, const std::vector<bool>&) {
                  return std::vector<Var>{Mul(y, Sub(g, Sum(Mul(g, y), {axis}, /*keepdim=*/true)))};
                }, /*uses_output=*/true);
}

Var LogSoftmax(const Var& x, int axis) {
  return Record("LogSoftmax", math::LogSoftmax(x.value(), axis), {x},
                [axis](const Var& g, const std::vector<Var>&, const Var& y, const std::vector<bool>&) {
                  return std::vector<Var>{Sub(g, Mul(Exp(y), Sum(g, {axis}, /*keepdim=*/true)))};
                }, /*uses_output=*/true);
}

// ---- Linear algebra ---------------------------------------------------------------------------

Var MatMul(const Var& a, const Var& b, bool ta, bool tb) {
  OTGEN_CHECK(a.defined() && b.defined(), "MatMul: undefined operand");
  OTGEN_CHECK((a.rank() == 2 && b.rank() == 2) || (a.rank() == 3 && b.rank() == 3 && a.dim(0) == b.dim(0)),
              absl::StrCat("MatMul: shapes ", ShapeToString(a.shape()), " and ", ShapeToString(b.shape())));
  const int64_t k_a = ta ? a.dim(-2) : a.dim(-1);
  const int64_t k_b = tb ? b.dim(-1) : b.dim(-2);
  OTGEN_CHECK(k_a == k_b, absl::StrCat("MatMul: inner dimensions of ", ShapeToString(a.shape()),
                                       ta ? "^T" : "", " and ", ShapeToString(b.shape()), tb ? "^T" : "",
                                       " differ"));
  return Record("MatMul", math::MatMul(a.value(), b.value(), ta, tb), {a, b},
                [ta, tb](const Var& g, const std::vector<Var>& in, const Var&, const std::vector<bool>& needs) {
                  const Var& A = in[0];
                  const Var& B = in[1];
                  Var ga, gb;
                  if (!ta && !tb) {
                    if (needs[0]) ga = MatMul(g, B, false, true);
                    if (needs[1]) gb = MatMul(A, g, true, false);
                  } else if (ta && !tb) {
                    if (needs[0]) ga = MatMul(B, g, false, true);
                    if (needs[1]) gb = MatMul(A, g, false, false);
                  } else if (!ta && tb) {
                    if (needs[0]) ga = MatMul(g, B, false, false);
                    if (needs[1]) gb = MatMul(g, A, true, false);
                  } else {
                    if (needs[0]) ga = MatMul(B, g, true, true);
                    if (needs[1]) gb = MatMul(g, A, true, true);
                  }
                  return std::vector<Var>{ga, gb};
                });
}

namespace {
// The bf16 copies a linear layer's forward product made of its input x and weight w (mixed
// precision only; nn/precision.h), kept for the backward products: x for dL/dw = g^T x when w
// needs a gradient, w for dL/dx = g w when x does. Undefined in float32 mode and for products
// that stay float32 (the backward products have the forward's dimensions, so the same holds
// for them).
struct LinearOperands16 {
  math::BFloat16Copy x16, w16;

  math::BFloat16Operands KeepFor(const Var& x, const Var& w) {
    return {.keep_a = w.requires_grad() ? &x16 : nullptr, .keep_b = x.requires_grad() ? &w16 : nullptr};
  }
  bool UsedBFloat16() const { return x16.defined() || w16.defined(); }
};

// First-order gradients of y = x w^T + b (without recording) from gp = dL/dy: dL/dx = gp w,
// dL/dw = gp^T x, dL/db = column sums of gp. The products use the forward's bf16 copies of x
// and w, and one bf16 copy of gp (`gp16`, or made by the first product) -- the values the
// recorded path would round to, each converted once.
std::vector<Var> LinearGradients(const Tensor& gp, math::BFloat16Copy gp16, const std::vector<Var>& in,
                                 const LinearOperands16& ops16, const std::vector<bool>& needs) {
  std::vector<Var> grads(3);
  if (needs[0]) {
    grads[0] = Const(math::MatMul(gp, in[1].value(), false, false,
                                  {.a = &gp16, .b = &ops16.w16, .keep_a = gp16.defined() ? nullptr : &gp16}));
  }
  if (needs[1]) grads[1] = Const(math::MatMul(gp, in[0].value(), true, false, {.a = &gp16, .b = &ops16.x16}));
  if (needs[2]) grads[2] = Const(math::Reduce(ReduceKind::kSum, gp, {0}, false));
  return grads;
}
}  // namespace

Var Linear(const Var& x, const Var& w, const Var& b) {
  OTGEN_CHECK(x.rank() == 2 && w.rank() == 2 && x.dim(1) == w.dim(1),
              absl::StrCat("Linear: input ", ShapeToString(x.shape()), " and weight ", ShapeToString(w.shape()),
                           " (expected [batch, in] and [out, in])"));
  if (!b.defined()) return MatMul(x, w, false, true);
  OTGEN_CHECK(b.rank() == 1 && b.dim(0) == w.dim(0),
              absl::StrCat("Linear: bias ", ShapeToString(b.shape()), " for weight ", ShapeToString(w.shape())));
  // One node: the bias is added by the matmul (no [batch, out] pass of its own).
  if (!AnyRequiresGrad({x, w, b})) return Const(math::Linear(x.value(), w.value(), b.value()));
  LinearOperands16 ops16;
  Tensor y = math::Linear(x.value(), w.value(), b.value(), ops16.KeepFor(x, w));
  return Record("Linear", std::move(y), {x, w, b},
                [ops16](const Var& g, const std::vector<Var>& in, const Var&, const std::vector<bool>& needs) {
                  if (!GradModeEnabled()) return LinearGradients(g.value(), math::BFloat16Copy(), in, ops16, needs);
                  return std::vector<Var>{needs[0] ? MatMul(g, in[1]) : Var(),
                                          needs[1] ? MatMul(g, in[0], true, false) : Var(),
                                          needs[2] ? Sum(g, {0}) : Var()};
                });
}

Var LinearRelu(const Var& x, const Var& w, const Var& b, float negative_slope) {
  OTGEN_CHECK(x.rank() == 2 && w.rank() == 2 && x.dim(1) == w.dim(1) && b.defined() && b.rank() == 1 &&
                  b.dim(0) == w.dim(0),
              absl::StrCat("LinearRelu: input ", ShapeToString(x.shape()), ", weight ", ShapeToString(w.shape()),
                           " and bias ", b.defined() ? ShapeToString(b.shape()) : "none",
                           " (expected [batch, in], [out, in] and [out])"));
  if (!AnyRequiresGrad({x, w, b})) return Const(math::LinearRelu(x.value(), w.value(), b.value(), negative_slope));
  LinearOperands16 ops16;
  Tensor y = math::LinearRelu(x.value(), w.value(), b.value(), negative_slope, ops16.KeepFor(x, w));
  // The (leaky) ReLU's gradient mask from its output (the sign of y is the sign of the
  // pre-activation for a slope >= 0), then Linear's gradients: recorded ops (twice
  // differentiable, as the two layers one by one), or, for a first-order backward, one pass
  // for the mask and the bf16 copy of the masked gradient, then the two products.
  const Tensor v = y;
  return Record("LinearRelu", std::move(y), {x, w, b},
                [v, negative_slope, ops16](const Var& g, const std::vector<Var>& in, const Var&,
                                           const std::vector<bool>& needs) {
                  if (!GradModeEnabled()) {
                    math::BFloat16Copy gp16;
                    const bool copy = ops16.UsedBFloat16() && (needs[0] || needs[1]);
                    const Tensor gp = math::ScaleWhereNotPositive(g.value(), v, negative_slope, copy ? &gp16 : nullptr);
                    return LinearGradients(gp, gp16, in, ops16, needs);
                  }
                  const Var gp = ReluFamilyBackward(g, v, negative_slope);
                  return std::vector<Var>{needs[0] ? MatMul(gp, in[1]) : Var(),
                                          needs[1] ? MatMul(gp, in[0], true, false) : Var(),
                                          needs[2] ? Sum(gp, {0}) : Var()};
                });
}

// ---- Layout ------------------------------------------------------------------------------------

Var Reshape(const Var& x, const Shape& shape) {
  Tensor v = x.value().Reshape(shape);
  if (v.shape() == x.shape() && !AnyRequiresGrad({x})) return x;
  return Record("Reshape", std::move(v), {x},
                [](const Var& g, const std::vector<Var>& in, const Var&, const std::vector<bool>&) {
                  return std::vector<Var>{Reshape(g, in[0].shape())};
                });
}

Var Flatten(const Var& x) {
  OTGEN_CHECK(x.rank() >= 1, "Flatten of a scalar");
  return Reshape(x, {x.dim(0), x.dim(0) == 0 ? 0 : x.numel() / x.dim(0)});
}

Var Transpose(const Var& x) {
  OTGEN_CHECK(x.rank() == 2, absl::StrCat("Transpose of shape ", ShapeToString(x.shape())));
  return Record("Transpose", math::Transpose(x.value()), {x},
                [](const Var& g, const std::vector<Var>&, const Var&, const std::vector<bool>&) {
                  return std::vector<Var>{Transpose(g)};
                });
}

Var Permute(const Var& x, const std::vector<int>& perm) {
  OTGEN_CHECK(static_cast<int>(perm.size()) == x.rank(),
              absl::StrCat("Permute: ", perm.size(), " axes for shape ", ShapeToString(x.shape())));
  std::vector<int> inverse(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inverse[NormalizeAxis(perm[i], x.rank())] = static_cast<int>(i);
  return Record("Permute", math::Permute(x.value(), perm), {x},
                [inverse](const Var& g, const std::vector<Var>&, const Var&, const std::vector<bool>&) {
                  return std::vector<Var>{Permute(g, inverse)};
                });
}

Var Slice(const Var& x, int axis, int64_t begin, int64_t end) {
  const int a = NormalizeAxis(axis, x.rank());
  OTGEN_CHECK(0 <= begin && begin <= end && end <= x.dim(a),
              absl::StrCat("Slice [", begin, ", ", end, ") of axis ", axis, " of ", ShapeToString(x.shape())));
  return Record("Slice", math::Slice(x.value(), a, begin, end), {x},
                [a, begin](const Var& g, const std::vector<Var>& in, const Var&, const std::vector<bool>&) {
                  return std::vector<Var>{PadSlice(g, in[0].shape(), a, begin)};
                });
}

Var PadSlice(const Var& x, const Shape& shape, int axis, int64_t begin) {
  const int a = NormalizeAxis(axis, static_cast<int>(shape.size()));
  return Record("PadSlice", math::PadSlice(x.value(), shape, a, begin), {x},
                [a, begin](const Var& g, const std::vector<Var>& in, const Var&, const std::vector<bool>&) {
                  return std::vector<Var>{Slice(g, a, begin, begin + in[0].dim(a))};
                });
}

Var Concat(const std::vector<Var>& xs, int axis) {
  OTGEN_CHECK(!xs.empty(), "Concat of nothing");
  const int a = NormalizeAxis(axis, xs[0].rank());
  std::vector<Tensor> values;
  for (const Var& x : xs) values.push_back(x.value());
  return Record("Concat", math::Concat(values, a), xs,
                [a](const Var& g, const std::vector<Var>& in, const Var&, const std::vector<bool>& needs) {
                  std::vector<Var> grads;
                  int64_t offset = 0;
                  for (size_t k = 0; k < in.size(); ++k) {
                    const int64_t len = in[k].dim(a);
                    grads.push_back(needs[k] ? Slice(g, a, offset, offset + len) : Var());
                    offset += len;
                  }
                  return grads;
                });
}

Var IndexRows(const Var& x, const std::vector<int64_t>& indices) {
  for (int64_t i : indices) {
    OTGEN_CHECK(0 <= i && i < x.dim(0), absl::StrCat("IndexRows: index ", i, " for shape ", ShapeToString(x.shape())));
  }
  return Record("IndexRows", math::IndexRows(x.value(), indices), {x},
                [indices](const Var& g, const std::vector<Var>& in, const Var&, const std::vector<bool>&) {
                  return std::vector<Var>{ScatterAddRows(g, indices, in[0].dim(0))};
                });
}

Var ScatterAddRows(const Var& x, const std::vector<int64_t>& indices, int64_t num_rows) {
  OTGEN_CHECK(static_cast<int64_t>(indices.size()) == x.dim(0),
              absl::StrCat("ScatterAddRows: ", indices.size(), " indices for shape ", ShapeToString(x.shape())));
  for (int64_t i : indices) {
    OTGEN_CHECK(0 <= i && i < num_rows, absl::StrCat("ScatterAddRows: index ", i, " for ", num_rows, " rows"));
  }
  return Record("ScatterAddRows", math::ScatterAddRows(x.value(), indices, num_rows), {x},
                [indices](const Var& g, const std::vector<Var>&, const Var&, const std::vector<bool>&) {
                  return std::vector<Var>{IndexRows(g, indices)};
                });
}

Var BroadcastTo(const Var& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  OTGEN_CHECK(math::BroadcastShapes(x.shape(), shape) == shape,
              absl::StrCat("BroadcastTo: ", ShapeToString(x.shape()), " to ", ShapeToString(shape)));
  return Record("BroadcastTo", math::BroadcastTo(x.value(), shape), {x},
                [](const Var& g, const std::vector<Var>& in, const Var&, const std::vector<bool>&) {
                  return std::vector<Var>{SumTo(g, in[0].shape())};
                });
}

Var SumTo(const Var& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  OTGEN_CHECK(math::BroadcastShapes(shape, x.shape()) == x.shape(),
              absl::StrCat("SumTo: ", ShapeToString(x.shape()), " to ", ShapeToString(shape)));
  return Record("SumTo", math::SumTo(x.value(), shape), {x},
                [](const Var& g, const std::vector<Var>& in, const Var&, const std::vector<bool>&) {
                  return std::vector<Var>{BroadcastTo(g, in[0].shape())};
                });
}

Var RowNorm(const Var& x, float eps) {
  Var s = Sum(Square(Flatten(x)), {1});
  return Sqrt(eps > 0 ? AddScalar(s, eps) : s);
}

}  // namespace otgen::nn
