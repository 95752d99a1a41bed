#include "nn/autograd.h"

#include <memory>

#include "gtest/gtest.h"
#include "nn/gradcheck.h"
#include "nn/ops.h"

namespace otgen::nn {
namespace {

Tensor T(const Shape& s, std::vector<float> v) { return Tensor::FromVector(s, v); }

TEST(AutogradTest, BackwardAccumulatesIntoLeaves) {
  Var x = Var::Parameter(T({3}, {1, 2, 3}), "x");
  Var y = SumAll(Square(x));  // dy/dx = 2x
  Backward(y);
  ASSERT_TRUE(x.grad().defined());
  EXPECT_FLOAT_EQ(x.grad().at({0}), 2);
  EXPECT_FLOAT_EQ(x.grad().at({2}), 6);
  Backward(SumAll(MulScalar(x, 3)));  // accumulates +3
  EXPECT_FLOAT_EQ(x.grad().at({1}), 7);
  x.ZeroGrad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(AutogradTest, DiamondGraphSumsPaths) {
  Var x = Var::Parameter(T({}, {3}));
  Var a = Mul(x, x);        // x^2
  Var b = Mul(a, x);        // x^3
  Var y = Add(a, b);        // x^2 + x^3 -> 2x + 3x^2 = 6 + 27
  Backward(y);
  EXPECT_FLOAT_EQ(x.grad().item(), 33);
}

TEST(AutogradTest, GradDoesNotTouchDotGrad) {
  Var x = Var::Parameter(T({2}, {1, -1}));
  std::vector<Var> g = Grad({SumAll(Exp(x))}, {x});
  EXPECT_NEAR(g[0].value().at({0}), std::exp(1.0f), 1e-5);
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(g[0].requires_grad());
}

TEST(AutogradTest, SecondDerivativeThroughCreateGraph) {
  // f = x^3, f' = 3x^2, f'' = 6x
  Var x = Var::Parameter(T({}, {2}));
  Var f = Mul(Mul(x, x), x);
  std::vector<Var> g = Grad({f}, {x}, {}, {.create_graph = true});
  EXPECT_FLOAT_EQ(g[0].item(), 12);
  ASSERT_TRUE(g[0].requires_grad());
  std::vector<Var> h = Grad({g[0]}, {x});
  EXPECT_FLOAT_EQ(h[0].item(), 12);
  // third derivative = 6
  Var x2 = Var::Parameter(T({}, {2}));
  Var f2 = Mul(Mul(x2, x2), x2);
  Var g2 = Grad({f2}, {x2}, {}, {.create_graph = true})[0];
  Var h2 = Grad({g2}, {x2}, {}, {.create_graph = true})[0];
  EXPECT_FLOAT_EQ(Grad({h2}, {x2})[0].item(), 6);
}

TEST(AutogradTest, GradientPenaltyStyleMixedPartials) {
  // D(x) = sum(w * x)^2, grad_x D = 2 (w.x) w; P = ||grad_x D||^2 = 4 (w.x)^2 ||w||^2
  // dP/dw via double backward vs finite differences.
  auto penalty = [](const std::vector<Var>& in) {
    Var x = Var(in[0].value(), true);
    Var d = Square(SumAll(Mul(in[1], x)));
    Var gx = Grad({d}, {x}, {}, {.create_graph = true})[0];
    return SumAll(Square(gx));
  };
  Rng rng(3);
  absl::Status s = GradCheck(penalty, {Tensor::Normal({4}, 0, 1, rng), Tensor::Normal({4}, 0, 1, rng)},
                             {.skip_inputs = {0}});
  EXPECT_TRUE(s.ok()) << s;
}

TEST(AutogradTest, AllowUnused) {
  Var x = Var::Parameter(T({1}, {1}));
  Var z = Var::Parameter(T({1}, {1}));
  std::vector<Var> g = Grad({SumAll(x)}, {x, z}, {}, {.allow_unused = true});
  EXPECT_TRUE(g[0].defined());
  EXPECT_FALSE(g[1].defined());
  EXPECT_DEATH(Grad({SumAll(x)}, {z}), "allow_unused");
}

TEST(AutogradTest, NoGradGuardStopsRecording) {
  Var x = Var::Parameter(T({2}, {1, 2}));
  {
    NoGradGuard guard;
    Var y = Square(x);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
    {
      EnableGradGuard enable;
      EXPECT_TRUE(Square(x).requires_grad());
    }
    EXPECT_FALSE(GradModeEnabled());
  }
  EXPECT_TRUE(GradModeEnabled());
  EXPECT_TRUE(Square(x).requires_grad());
}

TEST(AutogradTest, GraphIsFreedWithLastHandle) {
  Var x = Var::Parameter(T({2}, {1, 2}));
  std::weak_ptr<Node> node;
  {
    Var h = Tanh(x);
    Var y = SumAll(h);
    ASSERT_NE(y.grad_fn(), nullptr);
    // Keep a weak handle on the inner node through a shared copy of the graph.
    struct Probe : Node {
      std::vector<Var> Backward(const Var&, const std::vector<bool>&) override { return {}; }
      const char* name() const override { return "Probe"; }
    };
    auto probe = std::make_shared<Probe>();
    node = probe;
    Var z = RecordOp(Tensor::Zeros({}), {y}, probe);
    EXPECT_FALSE(node.expired());
  }
  EXPECT_TRUE(node.expired());
}

TEST(AutogradTest, DetachCutsTheGraph) {
  Var x = Var::Parameter(T({1}, {3}));
  Var y = Mul(x.Detach(), x);  // d/dx = detached x = 3
  EXPECT_FLOAT_EQ(Grad({SumAll(y)}, {x})[0].value().at({0}), 3);
}

TEST(AutogradTest, GradWithRespectToIntermediate) {
  Var x = Var::Parameter(T({2}, {1, 2}));
  Var h = MulScalar(x, 2);
  Var y = SumAll(Square(h));  // dy/dh = 2h = (4, 8)
  std::vector<Var> g = Grad({y}, {h, x});
  EXPECT_FLOAT_EQ(g[0].value().at({1}), 8);
  EXPECT_FLOAT_EQ(g[1].value().at({1}), 16);
}

TEST(AutogradTest, NonScalarOutputNeedsGradOutput) {
  Var x = Var::Parameter(T({2}, {1, 2}));
  Var y = Square(x);
  std::vector<Var> g = Grad({y}, {x}, {Var::Constant(T({2}, {1, 10}))});
  EXPECT_FLOAT_EQ(g[0].value().at({1}), 40);
  EXPECT_DEATH(Grad({y}, {x}), "not a scalar");
}

}  // namespace
}  // namespace otgen::nn
