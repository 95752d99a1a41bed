// First- and second-order finite-difference checks of every op in nn/ops.h, plus forward
// values against hand-computed results.
#include "nn/ops.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nn/gradcheck.h"
#include "nn/precision.h"
#include "nn/tensor_math.h"

namespace otgen::nn {
namespace {

using F = DifferentiableFunction;

Tensor Randn(const Shape& s, uint64_t seed, float scale = 1.0f) {
  Rng rng(seed);
  return Tensor::Normal(s, 0.0f, scale, rng);
}
// Values bounded away from 0 (for log, sqrt, div, pow, abs, relu kinks).
Tensor RandAway(const Shape& s, uint64_t seed, bool positive) {
  Rng rng(seed);
  Tensor t = Tensor::Empty(s);
  for (float& v : t.mutable_span()) {
    const float m = 0.3f + rng.Uniform();
    v = (positive || rng.Uniform() < 0.5f) ? m : -m;
  }
  return t;
}

void ExpectBothOrders(const F& f, const std::vector<Tensor>& in, bool second_order = true,
                      GradCheckOptions options = {}) {
  absl::Status s1 = GradCheck(f, in, options);
  EXPECT_TRUE(s1.ok()) << s1;
  if (second_order) {
    absl::Status s2 = GradGradCheck(f, in, options);
    EXPECT_TRUE(s2.ok()) << s2;
  }
}

struct BinaryCase {
  const char* name;
  Var (*op)(const Var&, const Var&);
};

TEST(OpsTest, BinaryBroadcastingBothOrders) {
  const BinaryCase cases[] = {{"Add", Add}, {"Sub", Sub}, {"Mul", Mul}, {"Div", Div},
                              {"Maximum", Maximum}, {"Minimum", Minimum}};
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{3, 1}, {1, 4}}, {{2, 3, 2, 2}, {1, 3, 1, 1}}, {{}, {2, 3}}};
  for (const auto& c : cases) {
    for (const auto& [sa, sb] : shapes) {
      SCOPED_TRACE(std::string(c.name) + " " + ShapeToString(sa) + " " + ShapeToString(sb));
      Tensor a = RandAway(sa, 1, false);
      Tensor b = RandAway(sb, 2, false);
      // Keep max/min away from ties for finite differences: a on the grid 0.1 Z, b on
      // 0.1 Z + 0.05, so |a - b| >= 0.05 > the step.
      if (std::string(c.name) == "Maximum" || std::string(c.name) == "Minimum") {
        for (float& v : a.mutable_span()) v = std::round(v * 10) / 10;
        for (float& v : b.mutable_span()) v = std::round(v * 10) / 10 + 0.05f;
      }
      auto op = c.op;
      ExpectBothOrders([op](const std::vector<Var>& x) { return op(x[0], x[1]); }, {a, b});
    }
  }
}

TEST(OpsTest, ScalarOpsBothOrders) {
  Tensor x = Randn({3, 2}, 3);
  ExpectBothOrders([](const std::vector<Var>& v) { return AddScalar(v[0], 1.5f); }, {x});
  ExpectBothOrders([](const std::vector<Var>& v) { return MulScalar(v[0], -2.5f); }, {x});
  ExpectBothOrders([](const std::vector<Var>& v) { return RSubScalar(1.0f, v[0]); }, {x});
  ExpectBothOrders([](const std::vector<Var>& v) { return Neg(v[0]); }, {x});
}

TEST(OpsTest, UnaryBothOrders) {
  Tensor any = RandAway({4, 3}, 4, false);
  Tensor pos = RandAway({4, 3}, 5, true);
  ExpectBothOrders([](const std::vector<Var>& v) { return Relu(v[0]); }, {any});
  ExpectBothOrders([](const std::vector<Var>& v) { return LeakyRelu(v[0], 0.2f); }, {any});
  ExpectBothOrders([](const std::vector<Var>& v) { return LeakyRelu(v[0], -0.3f); }, {any});
  // The cotangent reaching the activation depends on v[1]: the second-order check then
  // differentiates the activation's backward in its cotangent.
  ExpectBothOrders([](const std::vector<Var>& v) { return Mul(Relu(v[0]), v[1]); }, {any, any});
  ExpectBothOrders([](const std::vector<Var>& v) { return Mul(LeakyRelu(v[0], 0.2f), v[1]); }, {any, any});
  ExpectBothOrders([](const std::vector<Var>& v) { return Tanh(v[0]); }, {any});
  ExpectBothOrders([](const std::vector<Var>& v) { return Sigmoid(v[0]); }, {any});
  ExpectBothOrders([](const std::vector<Var>& v) { return Exp(v[0]); }, {any});
  ExpectBothOrders([](const std::vector<Var>& v) { return Log(v[0]); }, {pos});
  ExpectBothOrders([](const std::vector<Var>& v) { return Sqrt(v[0]); }, {pos});
  ExpectBothOrders([](const std::vector<Var>& v) { return Square(v[0]); }, {any});
  ExpectBothOrders([](const std::vector<Var>& v) { return Abs(v[0]); }, {any});
  ExpectBothOrders([](const std::vector<Var>& v) { return Pow(v[0], 1.7f); }, {pos});
  ExpectBothOrders([](const std::vector<Var>& v) { return Pow(v[0], 3.0f); }, {any});
  ExpectBothOrders([](const std::vector<Var>& v) { return Clamp(v[0], -0.5f, 0.6f); },
                   {math::Unary(math::UnaryKind::kLinear, any, 1.0f, 0.01f)});
}

TEST(OpsTest, UnaryForwardValues) {
  Tensor x = Tensor::FromVector({4}, {-2, -0.5, 0.5, 2});
  Var v = Var::Constant(x);
  EXPECT_FLOAT_EQ(Relu(v).value().at({1}), 0);
  EXPECT_FLOAT_EQ(LeakyRelu(v, 0.2f).value().at({0}), -0.4f);
  EXPECT_NEAR(Tanh(v).value().at({3}), std::tanh(2.0f), 1e-6);
  EXPECT_NEAR(Sigmoid(v).value().at({0}), 1 / (1 + std::exp(2.0f)), 1e-6);
  EXPECT_FLOAT_EQ(Clamp(v, -1, 1).value().at({0}), -1);
  EXPECT_FLOAT_EQ(Abs(v).value().at({1}), 0.5f);
}

TEST(OpsTest, ReductionsBothOrders) {
  Tensor x = Randn({3, 4, 2}, 6);
  for (bool keep : {false, true}) {
    for (std::vector<int> axes : std::vector<std::vector<int>>{{}, {0}, {1}, {-1}, {0, 2}}) {
      SCOPED_TRACE(::testing::Message() << "keepdim " << keep << " axes " << axes.size());
      ExpectBothOrders([=](const std::vector<Var>& v) { return Sum(v[0], axes, keep); }, {x});
      ExpectBothOrders([=](const std::vector<Var>& v) { return Mean(v[0], axes, keep); }, {x});
      ExpectBothOrders([=](const std::vector<Var>& v) { return Max(v[0], axes, keep); }, {x});
      ExpectBothOrders([=](const std::vector<Var>& v) { return Min(v[0], axes, keep); }, {x});
      ExpectBothOrders([=](const std::vector<Var>& v) { return LogSumExp(v[0], axes, keep); }, {x});
    }
  }
  ExpectBothOrders([](const std::vector<Var>& v) { return SumAll(v[0]); }, {x});
  ExpectBothOrders([](const std::vector<Var>& v) { return MeanAll(v[0]); }, {x});
}

TEST(OpsTest, ReductionForwardValues) {
  Var x = Var::Constant(Tensor::FromVector({2, 3}, {1, 5, 3, -1, 0, 2}));
  EXPECT_FLOAT_EQ(Sum(x, {1}).value().at({0}), 9);
  EXPECT_FLOAT_EQ(Mean(x, {0}).value().at({1}), 2.5f);
  EXPECT_FLOAT_EQ(Max(x, {1}).value().at({1}), 2);
  EXPECT_FLOAT_EQ(Min(x, {}).value().item(), -1);
  EXPECT_NEAR(LogSumExp(x, {1}).value().at({0}), std::log(std::exp(1.f) + std::exp(5.f) + std::exp(3.f)), 1e-5);
  EXPECT_EQ(Sum(x, {1}, true).shape(), (Shape{2, 1}));
}

TEST(OpsTest, MaxGradientSplitsTies) {
  Var x = Var::Parameter(Tensor::FromVector({3}, {2, 2, 1}));
  std::vector<Var> g = Grad({Max(x, {0})}, {x});
  EXPECT_FLOAT_EQ(g[0].value().at({0}), 0.5f);
  EXPECT_FLOAT_EQ(g[0].value().at({1}), 0.5f);
  EXPECT_FLOAT_EQ(g[0].value().at({2}), 0.0f);
}

TEST(OpsTest, SoftmaxBothOrders) {
  Tensor x = Randn({3, 5}, 7);
  ExpectBothOrders([](const std::vector<Var>& v) { return Softmax(v[0], 1); }, {x});
  ExpectBothOrders([](const std::vector<Var>& v) { return Softmax(v[0], 0); }, {x});
  ExpectBothOrders([](const std::vector<Var>& v) { return LogSoftmax(v[0], -1); }, {x});
  Tensor s = Softmax(Var::Constant(x), 1).value();
  for (int i = 0; i < 3; ++i) {
    double row = 0;
    for (int j = 0; j < 5; ++j) row += s.at({i, j});
    EXPECT_NEAR(row, 1.0, 1e-6);
  }
}

TEST(OpsTest, MatMulAllTransposesBothOrders) {
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "ta " << ta << " tb " << tb);
      Tensor a = Randn(ta ? Shape{4, 3} : Shape{3, 4}, 8);
      Tensor b = Randn(tb ? Shape{2, 4} : Shape{4, 2}, 9);
      ExpectBothOrders([=](const std::vector<Var>& v) { return MatMul(v[0], v[1], ta, tb); }, {a, b});
    }
  }
  // Batched.
  ExpectBothOrders([](const std::vector<Var>& v) { return MatMul(v[0], v[1], false, true); },
                   {Randn({2, 3, 4}, 10), Randn({2, 5, 4}, 11)});
}

TEST(OpsTest, LinearBothOrdersAndValue) {
  Tensor x = Randn({5, 3}, 12), w = Randn({4, 3}, 13), b = Randn({4}, 14);
  ExpectBothOrders([](const std::vector<Var>& v) { return Linear(v[0], v[1], v[2]); }, {x, w, b});
  ExpectBothOrders([](const std::vector<Var>& v) { return Tanh(Linear(v[0], v[1], Var())); }, {x, w});
  Tensor y = Linear(Var::Constant(x), Var::Constant(w), Var::Constant(b)).value();
  double expected = b.at({2});
  for (int k = 0; k < 3; ++k) expected += x.at({1, k}) * w.at({2, k});
  EXPECT_NEAR(y.at({1, 2}), expected, 1e-5);
}

// LinearRelu against finite differences (both orders, ReLU and a leaky slope) and against the
// two ops one by one, values and gradients, including a gradient penalty (double backward).
TEST(OpsTest, LinearReluBothOrdersAndSameAsTheTwoOps) {
  // Small inputs and biases away from 0 keep every pre-activation at least ~0.1 from the kink,
  // farther than the finite-difference steps; both signs occur.
  Tensor x = Randn({6, 3}, 23, 0.02f), w = Randn({5, 3}, 24), b = RandAway({5}, 25, false);
  for (float slope : {0.0f, 0.2f}) {
    SCOPED_TRACE(slope);
    ExpectBothOrders([slope](const std::vector<Var>& v) { return LinearRelu(v[0], v[1], v[2], slope); }, {x, w, b});
    const Var xv = Var::Parameter(x), wv = Var::Parameter(w), bv = Var::Parameter(b);
    const Var fused = LinearRelu(xv, wv, bv, slope);
    EXPECT_STREQ(fused.grad_fn()->name(), "LinearRelu");
    const Var apart = slope == 0.0f ? Relu(Linear(xv, wv, bv)) : LeakyRelu(Linear(xv, wv, bv), slope);
    EXPECT_LE(math::MaxAbsDiff(fused.value(), apart.value()), 1e-6f);
    const Tensor u = Randn({6, 5}, 26);
    const std::vector<Var> g_fused = Grad({SumAll(Mul(fused, Var::Constant(u)))}, {xv, wv, bv});
    const std::vector<Var> g_apart = Grad({SumAll(Mul(apart, Var::Constant(u)))}, {xv, wv, bv});
    for (int k = 0; k < 3; ++k) EXPECT_LE(math::MaxAbsDiff(g_fused[k].value(), g_apart[k].value()), 1e-5f) << k;
    // mean(||grad_x D||^2) with D = Linear(LinearRelu(x)), differentiated w.r.t. the weights.
    auto penalty = [&](bool fuse) {
      const Var xi = Var(x, true);
      const Var h = fuse ? LinearRelu(xi, wv, bv, slope) : LeakyRelu(Linear(xi, wv, bv), slope);
      const Var d = Linear(h, Var::Constant(Randn({1, 5}, 27)), Var());
      const Var gx = Grad({SumAll(d)}, {xi}, {}, {.create_graph = true})[0];
      return Grad({MeanAll(Square(RowNorm(gx)))}, {wv})[0].value();
    };
    EXPECT_LE(math::MaxAbsDiff(penalty(true), penalty(false)), 1e-5f);
  }
  // The gradient penalty through LinearRelu against finite differences (w.r.t. w and b).
  auto gp = [](const std::vector<Var>& p) {
    Var xi = Var(p[0].value(), true);
    Var d = Linear(LinearRelu(xi, p[1], p[2], 0.2f), p[3], Var());
    Var gx = Grad({SumAll(d)}, {xi}, {}, {.create_graph = true})[0];
    return MeanAll(Square(AddScalar(RowNorm(gx), -1.0f)));
  };
  ExpectBothOrders(gp, {x, w, b, Randn({1, 5}, 28)}, /*second_order=*/false, {.skip_inputs = {0}});
}

// Linear and LinearRelu compute first-order gradients without recording (reusing the forward's
// bf16 operand copies in mixed precision); they equal the recorded path's (create_graph) in
// float32 and in bf16 mode, where both round the same operands.
TEST(OpsTest, LinearFirstOrderGradientsEqualTheRecordedOnes) {
  const Tensor x = Randn({64, 48}, 29), w = Randn({40, 48}, 30, 0.2f), b = Randn({40}, 31), u = Randn({64, 40}, 32);
  for (ComputePrecision precision : {ComputePrecision::kFloat32, ComputePrecision::kBFloat16}) {
    const ComputePrecisionGuard guard(precision);
    for (int op = 0; op < 3; ++op) {  // Linear, LinearRelu, LinearRelu with slope 0.2
      SCOPED_TRACE(absl::StrCat(ComputePrecisionName(precision), " op ", op));
      const Var xv = Var::Parameter(x), wv = Var::Parameter(w), bv = Var::Parameter(b);
      auto loss = [&] {
        const Var y = op == 0 ? Linear(xv, wv, bv) : LinearRelu(xv, wv, bv, op == 1 ? 0.0f : 0.2f);
        return SumAll(Mul(y, Var::Constant(u)));
      };
      const std::vector<Var> fast = Grad({loss()}, {xv, wv, bv});
      const std::vector<Var> recorded = Grad({loss()}, {xv, wv, bv}, {}, {.create_graph = true});
      for (int k = 0; k < 3; ++k) {
        EXPECT_TRUE(recorded[k].requires_grad() || k == 2);
        EXPECT_EQ(math::MaxAbsDiff(fast[k].value(), recorded[k].value()), 0.0f) << "input " << k;
      }
      // Only the weight needs a gradient: the input's copy is kept, the weight's is not needed.
      const Var xc = Var::Constant(x);
      const Var y = op == 0 ? Linear(xc, wv, bv) : LinearRelu(xc, wv, bv, 0.0f);
      const std::vector<Var> gw = Grad({SumAll(Mul(y, Var::Constant(u)))}, {wv});
      const Var yr = op == 0 ? Linear(xc, wv, bv) : LinearRelu(xc, wv, bv, 0.0f);
      const std::vector<Var> gw_rec = Grad({SumAll(Mul(yr, Var::Constant(u)))}, {wv}, {}, {.create_graph = true});
      EXPECT_EQ(math::MaxAbsDiff(gw[0].value(), gw_rec[0].value()), 0.0f);
    }
  }
}

TEST(OpsTest, LayoutOpsBothOrders) {
  Tensor x = Randn({2, 3, 4}, 15);
  ExpectBothOrders([](const std::vector<Var>& v) { return Reshape(v[0], {6, 4}); }, {x});
  ExpectBothOrders([](const std::vector<Var>& v) { return Flatten(v[0]); }, {x});
  ExpectBothOrders([](const std::vector<Var>& v) { return Transpose(Reshape(v[0], {6, 4})); }, {x});
  ExpectBothOrders([](const std::vector<Var>& v) { return Permute(v[0], {2, 0, 1}); }, {x});
  ExpectBothOrders([](const std::vector<Var>& v) { return Slice(v[0], 1, 1, 3); }, {x});
  ExpectBothOrders([](const std::vector<Var>& v) { return PadSlice(v[0], {2, 7, 4}, 1, 2); }, {x});
  ExpectBothOrders([](const std::vector<Var>& v) { return Concat({v[0], v[1]}, 1); }, {x, Randn({2, 2, 4}, 16)});
  ExpectBothOrders([](const std::vector<Var>& v) { return IndexRows(v[0], {1, 0, 1, 1}); }, {x});
  ExpectBothOrders([](const std::vector<Var>& v) { return ScatterAddRows(v[0], {2, 0}, 3); }, {x});
  ExpectBothOrders([](const std::vector<Var>& v) { return BroadcastTo(v[0], {3, 2, 3, 4}); }, {x});
  ExpectBothOrders([](const std::vector<Var>& v) { return SumTo(v[0], {1, 3, 1}); }, {x});
}

TEST(OpsTest, RowNormBothOrdersAndValue) {
  Tensor x = RandAway({3, 2, 2}, 17, false);
  ExpectBothOrders([](const std::vector<Var>& v) { return RowNorm(v[0]); }, {x});
  Var n = RowNorm(Var::Constant(Tensor::FromVector({1, 2}, {3, 4})));
  EXPECT_FLOAT_EQ(n.value().at({0}), 5);
}

TEST(OpsTest, MlpGradientPenaltyParametersMatchFiniteDifferences) {
  // mean((||grad_x D(x)|| - 1)^2) for D = Linear-Tanh-Linear, differentiated w.r.t. the
  // critic's parameters (double backward).
  auto gp = [](const std::vector<Var>& p) {
    Var x = Var(p[0].value(), true);
    Var d = Linear(Tanh(Linear(x, p[1], p[2])), p[3], p[4]);
    Var gx = Grad({SumAll(d)}, {x}, {}, {.create_graph = true})[0];
    return MeanAll(Square(AddScalar(RowNorm(gx), -1.0f)));
  };
  ExpectBothOrders(gp, {Randn({4, 3}, 18), Randn({5, 3}, 19), Randn({5}, 20), Randn({1, 5}, 21), Randn({1}, 22)},
                   /*second_order=*/false, {.skip_inputs = {0}});
}

TEST(OpsDeathTest, ShapeMismatchNamesBothShapes) {
  Var a = Var::Constant(Tensor::Zeros({2, 3}));
  Var b = Var::Constant(Tensor::Zeros({4}));
  EXPECT_DEATH(Add(a, b), "\\[2, 3\\].*\\[4\\]");
  EXPECT_DEATH(MatMul(a, a), "\\[2, 3\\]");
}

}  // namespace
}  // namespace otgen::nn
