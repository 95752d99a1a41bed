#include "optim/sgd.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "nn/autograd.h"
#include "nn/ops.h"

namespace otgen::optim {
namespace {

using nn::Tensor;
using nn::Var;

// f(p) = 1/2 sum_i a_i (p_i - c_i)^2, gradient a_i (p_i - c_i).
const std::vector<float> kA = {1.0f, 0.5f, 2.0f};
const std::vector<float> kC = {0.5f, -1.0f, 0.25f};
const std::vector<float> kP0 = {2.0f, 1.0f, -1.0f};

// Accumulates the quadratic's gradient into p.grad() through autodiff.
void QuadraticBackward(Var& p) {
  Var a = Var::Constant(Tensor::FromVector({3}, kA));
  Var c = Var::Constant(Tensor::FromVector({3}, kC));
  Var loss = MulScalar(nn::SumAll(nn::Mul(a, nn::Square(nn::Sub(p, c)))), 0.5f);
  nn::Backward(loss);
}

TEST(SgdTest, PlainSgdMatchesClosedFormOnQuadratic) {
  Var p = Var::Parameter(Tensor::FromVector({3}, kP0));
  auto sgd = Sgd::Create({p}, {.lr = 0.3f});
  ASSERT_TRUE(sgd.ok()) << sgd.status();
  for (int k = 1; k <= 5; ++k) {
    (*sgd)->ZeroGrad();
    QuadraticBackward(p);
    (*sgd)->Step();
    // p_k - c = (1 - lr a)^k (p_0 - c)
    for (int i = 0; i < 3; ++i) {
      const double expected = kC[i] + std::pow(1.0 - 0.3 * kA[i], k) * (kP0[i] - kC[i]);
      EXPECT_NEAR(p.value().data()[i], expected, 1e-5) << "step " << k << " element " << i;
    }
    EXPECT_EQ((*sgd)->step_count(0), k);
  }
}

TEST(SgdTest, NesterovMatchesHandComputedSteps) {
  // p0 = 1, f = p^2 / 2, lr 0.1, momentum 0.9, nesterov:
  // g1 = 1, b1 = 1, d = 1 + 0.9 * 1 = 1.9, p1 = 1 - 0.19 = 0.81
  // g2 = 0.81, b2 = 0.9 + 0.81 = 1.71, d = 0.81 + 0.9 * 1.71 = 2.349, p2 = 0.5751
  Var p = Var::Parameter(Tensor::FromVector({1}, {1.0f}));
  Sgd sgd({p}, {.lr = 0.1f, .momentum = 0.9f, .nesterov = true});
  const double expected[] = {0.81, 0.5751};
  for (double e : expected) {
    p.set_grad(p.value().Clone());
    sgd.Step();
    EXPECT_NEAR(p.value().item(), e, 1e-6);
  }
}

TEST(SgdTest, MomentumDampeningWeightDecayMatchesRecurrence) {
  const double lr = 0.05, mu = 0.8, damp = 0.3, wd = 0.1;
  Var p = Var::Parameter(Tensor::FromVector({3}, kP0));
  Sgd sgd({p}, {.lr = 0.05f, .momentum = 0.8f, .dampening = 0.3f, .weight_decay = 0.1f});
  std::vector<double> q(kP0.begin(), kP0.end()), b(3);
  for (int k = 1; k <= 5; ++k) {
    sgd.ZeroGrad();
    QuadraticBackward(p);
    sgd.Step();
    for (int i = 0; i < 3; ++i) {
      const double d = kA[i] * (q[i] - kC[i]) + wd * q[i];
      b[i] = k == 1 ? d : mu * b[i] + (1 - damp) * d;  // the first buffer is d, undamped
      q[i] -= lr * b[i];
      EXPECT_NEAR(p.value().data()[i], q[i], 1e-5) << "step " << k << " element " << i;
      EXPECT_NEAR(sgd.momentum_buffer(0).data()[i], b[i], 1e-5);
    }
  }
}

TEST(SgdTest, MaximizeAscends) {
  // Maximize g(p) = -(p - 3)^2 / 2: the supplied gradient is -(p - 3); p_k - 3 = (1 - lr)^k (p0 - 3).
  Var p = Var::Parameter(Tensor::FromVector({1}, {0.0f}));
  Sgd sgd({p}, {.lr = 0.25f, .maximize = true});
  for (int k = 1; k <= 4; ++k) {
    p.set_grad(Tensor::FromVector({1}, {-(p.value().item() - 3.0f)}));
    sgd.Step();
    EXPECT_NEAR(p.value().item(), 3.0 - 3.0 * std::pow(0.75, k), 1e-6);
  }
}

TEST(SgdTest, SkipsParametersWithoutGradient) {
  Var p = Var::Parameter(Tensor::FromVector({2}, {1.0f, 2.0f}));
  Var q = Var::Parameter(Tensor::FromVector({2}, {3.0f, 4.0f}));
  Sgd sgd({p, q}, {.lr = 0.5f, .momentum = 0.5f});
  p.set_grad(Tensor::FromVector({2}, {1.0f, 1.0f}));
  sgd.Step();
  EXPECT_FLOAT_EQ(p.value().data()[0], 0.5f);
  EXPECT_FLOAT_EQ(q.value().data()[0], 3.0f);
  EXPECT_FLOAT_EQ(q.value().data()[1], 4.0f);
  EXPECT_EQ(sgd.step_count(0), 1);
  EXPECT_EQ(sgd.step_count(1), 0);
  EXPECT_FALSE(sgd.momentum_buffer(1).defined());
}

TEST(SgdTest, ValidateRejectsBadOptions) {
  EXPECT_FALSE((SgdOptions{.lr = 0.0f}).Validate().ok());
  EXPECT_FALSE((SgdOptions{.lr = 0.1f, .momentum = -1.0f}).Validate().ok());
  EXPECT_FALSE((SgdOptions{.lr = 0.1f, .dampening = 1.5f}).Validate().ok());
  EXPECT_FALSE((SgdOptions{.lr = 0.1f, .weight_decay = -0.1f}).Validate().ok());
  const absl::Status nesterov = SgdOptions{.lr = 0.1f, .nesterov = true}.Validate();
  EXPECT_EQ(nesterov.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(nesterov.message().find("nesterov"), std::string::npos) << nesterov;
  EXPECT_TRUE((SgdOptions{.lr = 0.1f, .momentum = 0.9f, .nesterov = true}).Validate().ok());
  Var p = Var::Parameter(Tensor::Zeros({1}));
  EXPECT_FALSE(Sgd::Create({p}, {.lr = -1.0f}).ok());
  EXPECT_FALSE(Sgd::Create({p, p}, {}).ok());
  EXPECT_FALSE(Sgd::Create({Var::Constant(Tensor::Zeros({1}))}, {}).ok());
}

}  // namespace
}  // namespace otgen::optim
