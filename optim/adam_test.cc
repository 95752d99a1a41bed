#include "optim/adam.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "nn/autograd.h"
#include "nn/denormals.h"
#include "nn/onednn_context.h"
#include "nn/ops.h"

namespace otgen::optim {
namespace {

using nn::Tensor;
using nn::Var;

TEST(AdamTest, MatchesHandComputedSteps) {
  // f = p^2 / 2 from p0 = 1, lr 0.1, betas (0.9, 0.999), eps 1e-8:
  // k = 1: m = 0.1, v = 0.001, mhat = 1, vhat = 1, p1 = 1 - 0.1 / (1 + 1e-8) = 0.900000001
  // k = 2: g = 0.9, m = 0.18, v = 0.001809, mhat = 0.18 / 0.19, vhat = 0.001809 / 0.001999,
  //        p2 = 0.9 - 0.1 * mhat / (sqrt(vhat) + eps) = 0.80041223
  // k = 3: p3 = 0.70158627
  Var p = Var::Parameter(Tensor::FromVector({1}, {1.0f}));
  auto adam = Adam::Create({p}, {.lr = 0.1f});
  ASSERT_TRUE(adam.ok()) << adam.status();
  const double expected[] = {0.900000001, 0.8004122297, 0.7015862745};
  for (double e : expected) {
    (*adam)->ZeroGrad();
    nn::Backward(MulScalar(nn::SumAll(nn::Square(p)), 0.5f));
    (*adam)->Step();
    EXPECT_NEAR(p.value().item(), e, 2e-6);
  }
}

// Adam on f(p) = 1/2 sum a_i (p_i - c_i)^2 against the formulas in double.
void CheckTrajectory(const AdamOptions& options) {
  const std::vector<double> a = {1.0, 4.0, 0.25, 2.0};
  const std::vector<double> c = {0.5, -1.0, 3.0, 0.0};
  std::vector<double> q = {2.0, 1.0, -1.0, 1e-3};
  Var p = Var::Parameter(Tensor::FromVector({2, 2}, {2.0f, 1.0f, -1.0f, 1e-3f}));
  Adam adam({p}, options);
  const double sign = options.maximize ? -1.0 : 1.0;
  std::vector<double> m(4, 0.0), v(4, 0.0), vmax(4, 0.0);
  for (int k = 1; k <= 5; ++k) {
    std::vector<float> grad(4);
    for (int i = 0; i < 4; ++i) grad[i] = static_cast<float>(sign * a[i] * (q[i] - c[i]));
    p.set_grad(Tensor::FromVector({2, 2}, grad));
    adam.Step();
    for (int i = 0; i < 4; ++i) {
      const double g = sign * static_cast<double>(grad[i]) + options.weight_decay * q[i];
      m[i] = options.beta1 * m[i] + (1 - options.beta1) * g;
      v[i] = options.beta2 * v[i] + (1 - options.beta2) * g * g;
      vmax[i] = std::max(vmax[i], v[i]);
      const double mhat = m[i] / (1 - std::pow(static_cast<double>(options.beta1), k));
      const double vhat = (options.amsgrad ? vmax[i] : v[i]) / (1 - std::pow(static_cast<double>(options.beta2), k));
      q[i] -= options.lr * mhat / (std::sqrt(vhat) + options.eps);
      EXPECT_NEAR(p.value().data()[i], q[i], 2e-5 * (1 + std::abs(q[i]))) << "step " << k << " element " << i;
      EXPECT_NEAR(adam.exp_avg(0).data()[i], m[i], 1e-5 * (1 + std::abs(m[i])));
    }
  }
}

TEST(AdamTest, TrajectoryMatchesFormulas) { CheckTrajectory({.lr = 0.05f, .beta1 = 0.5f, .beta2 = 0.9f}); }

TEST(AdamTest, TrajectoryWithWeightDecayAndAmsgrad) {
  CheckTrajectory({.lr = 0.02f, .beta1 = 0.8f, .beta2 = 0.95f, .eps = 1e-3f, .weight_decay = 0.1f, .amsgrad = true});
}

TEST(AdamTest, TrajectoryMaximize) { CheckTrajectory({.lr = 0.05f, .maximize = true}); }

TEST(AdamTest, AmsgradKeepsMaximumOfSecondMoment) {
  // A large gradient followed by small ones: with amsgrad the denominator keeps the maximum.
  Var p = Var::Parameter(Tensor::FromVector({1}, {0.0f}));
  Var q = Var::Parameter(Tensor::FromVector({1}, {0.0f}));
  Adam plain({p}, {.lr = 0.1f, .beta2 = 0.5f});
  Adam ams({q}, {.lr = 0.1f, .beta2 = 0.5f, .amsgrad = true});
  const float grads[] = {10.0f, 0.1f, 0.1f, 0.1f};
  float prev_p = 0, prev_q = 0;
  for (float g : grads) {
    p.set_grad(Tensor::FromVector({1}, {g}));
    q.set_grad(Tensor::FromVector({1}, {g}));
    plain.Step();
    ams.Step();
    // amsgrad steps are never larger than plain Adam's for the same gradients.
    EXPECT_LE(std::abs(q.value().item() - prev_q), std::abs(p.value().item() - prev_p) + 1e-7f);
    prev_p = p.value().item();
    prev_q = q.value().item();
  }
  EXPECT_GT(std::abs(p.value().item() - q.value().item()), 1e-3f);
}

TEST(AdamTest, ValidateRejectsBadOptions) {
  EXPECT_FALSE((AdamOptions{.lr = -1.0f}).Validate().ok());
  EXPECT_FALSE((AdamOptions{.beta1 = 1.0f}).Validate().ok());
  EXPECT_FALSE((AdamOptions{.beta2 = -0.1f}).Validate().ok());
  EXPECT_FALSE((AdamOptions{.eps = -1.0f}).Validate().ok());
  EXPECT_FALSE((AdamOptions{.weight_decay = NAN}).Validate().ok());
  const absl::Status s = AdamOptions{.beta1 = 1.5f}.Validate();
  EXPECT_NE(s.message().find("beta1"), std::string::npos) << s;
  EXPECT_TRUE(AdamOptions{}.Validate().ok());
}

// A tensor larger than one parallel chunk (2^17 elements, and not a multiple of it) updated by
// a team of 2 threads matches the formulas element by element, amsgrad included.
TEST(AdamTest, LargeTensorSplitAcrossThreadsMatchesFormulas) {
  const int previous_threads = nn::GetNumThreads();
  nn::SetNumThreads(2);
  constexpr int64_t kN = (int64_t{1} << 18) + 12345;
  const AdamOptions options{.lr = 0.01f, .beta1 = 0.7f, .beta2 = 0.9f, .weight_decay = 0.01f, .amsgrad = true};
  std::vector<float> init(kN), grad(kN);
  for (int64_t i = 0; i < kN; ++i) {
    init[i] = std::sin(0.001 * static_cast<double>(i));
    grad[i] = std::cos(0.37 * static_cast<double>(i)) * static_cast<float>(1 + i % 7);
  }
  Var p = Var::Parameter(Tensor::FromVector({kN}, init));
  Adam adam({p}, options);
  std::vector<double> q(init.begin(), init.end()), m(kN, 0.0), v(kN, 0.0), vmax(kN, 0.0);
  for (int k = 1; k <= 3; ++k) {
    p.set_grad(Tensor::FromVector({kN}, grad));
    adam.Step();
    const double bc1 = 1 - std::pow(static_cast<double>(options.beta1), k);
    const double bc2 = 1 - std::pow(static_cast<double>(options.beta2), k);
    int64_t mismatches = 0;
    for (int64_t i = 0; i < kN; ++i) {
      const double g = grad[i] + options.weight_decay * q[i];
      m[i] = options.beta1 * m[i] + (1 - options.beta1) * g;
      v[i] = options.beta2 * v[i] + (1 - options.beta2) * g * g;
      vmax[i] = std::max(vmax[i], v[i]);
      q[i] -= options.lr * (m[i] / bc1) / (std::sqrt(vmax[i] / bc2) + options.eps);
      if (std::abs(p.value().data()[i] - q[i]) > 2e-5 * (1 + std::abs(q[i]))) ++mismatches;
    }
    EXPECT_EQ(mismatches, 0) << "step " << k;
  }
  nn::SetNumThreads(previous_threads);
}

// Moments in the denormal range are flushed to zero inside the update (nn/denormals.h); the
// caller's floating-point mode is left as it was.
TEST(AdamTest, DenormalMomentsAreFlushedAndTheCallersModeIsRestored) {
  ASSERT_FALSE(nn::FlushingDenormals());
  Var p = Var::Parameter(Tensor::FromVector({2}, {1.0f, 1.0f}));
  Adam adam({p}, {.lr = 0.1f, .beta1 = 0.5f, .beta2 = 0.5f});
  // g^2 = 1e-40 (denormal) for the first element; a normal gradient for the second.
  p.set_grad(Tensor::FromVector({2}, {1e-20f, 1.0f}));
  adam.Step();
  EXPECT_FALSE(nn::FlushingDenormals());
  EXPECT_EQ(adam.exp_avg_sq(0).data()[0], 0.0f);  // (1 - 0.5) * 1e-40 flushed
  EXPECT_FLOAT_EQ(adam.exp_avg_sq(0).data()[1], 0.5f);
  // m = 5e-21 is normal and kept; with v = 0 the step is lr * mhat / eps = 0.1 * 1e-20 / 1e-8.
  EXPECT_FLOAT_EQ(adam.exp_avg(0).data()[0], 5e-21f);
  EXPECT_NEAR(p.value().data()[0], 1.0f - 1e-13f, 1e-7f);
  EXPECT_NEAR(p.value().data()[1], 1.0f - 0.1f, 1e-6f);
}

}  // namespace
}  // namespace otgen::optim
