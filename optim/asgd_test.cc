#include "optim/asgd.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "nn/autograd.h"
#include "nn/ops.h"
#include "nn/random.h"

namespace otgen::optim {
namespace {

using nn::Tensor;
using nn::Var;

TEST(AsgdTest, MatchesHandComputedSteps) {
  // Descent on f = p^2 / 2 from p0 = 1, gamma 0.5, alpha 0.5: p_k = p_{k-1} (1 - 0.5 / sqrt(k)).
  // p1 = 0.5, p2 = 0.32322330, p3 = 0.22991677; averages 0.5, 0.41161165, 0.35104669.
  Var p = Var::Parameter(Tensor::FromVector({1}, {1.0f}));
  auto asgd = Asgd::Create({p}, {.gamma = 0.5f, .alpha = 0.5f});
  ASSERT_TRUE(asgd.ok()) << asgd.status();
  EXPECT_FLOAT_EQ((*asgd)->averaged(0).item(), 1.0f);  // psi_bar_0 = psi_0
  const double iterate[] = {0.5, 0.3232233047, 0.2299167737};
  const double average[] = {0.5, 0.4116116524, 0.3510466928};
  for (int k = 0; k < 3; ++k) {
    (*asgd)->ZeroGrad();
    nn::Backward(MulScalar(nn::SumAll(nn::Square(p)), 0.5f));
    (*asgd)->Step();
    EXPECT_NEAR(p.value().item(), iterate[k], 1e-6);
    EXPECT_NEAR((*asgd)->averaged(0).item(), average[k], 1e-6);
  }
}

TEST(AsgdTest, AscentTrajectoryMatchesEquation102) {
  // Maximize h(psi) = -1/2 sum a_i (psi_i - c_i)^2 with gamma 0.3, alpha 0.7 for 5 steps.
  const std::vector<double> a = {1.0, 3.0, 0.5};
  const std::vector<double> c = {1.0, -2.0, 0.5};
  std::vector<double> q = {0.0, 0.0, 4.0}, sum(3, 0.0);
  Var psi = Var::Parameter(Tensor::FromVector({3}, {0.0f, 0.0f, 4.0f}));
  Asgd asgd({psi}, {.gamma = 0.3f, .alpha = 0.7f, .maximize = true});
  for (int k = 1; k <= 5; ++k) {
    std::vector<float> grad(3);
    for (int i = 0; i < 3; ++i) grad[i] = static_cast<float>(-a[i] * (q[i] - c[i]));
    psi.set_grad(Tensor::FromVector({3}, grad));
    asgd.Step();
    for (int i = 0; i < 3; ++i) {
      q[i] += 0.3 / std::pow(k, 0.7) * grad[i];
      sum[i] += q[i];
      EXPECT_NEAR(psi.value().data()[i], q[i], 1e-5) << "step " << k;
      EXPECT_NEAR(asgd.averaged(0).data()[i], sum[i] / k, 1e-5) << "step " << k;
    }
  }
}

TEST(AsgdTest, RestartAndCopyAveraged) {
  Var p = Var::Parameter(Tensor::FromVector({1}, {1.0f}));
  Asgd asgd({p}, {.gamma = 0.5f, .alpha = 0.5f});
  for (int k = 0; k < 2; ++k) {
    p.set_grad(p.value().Clone());
    asgd.Step();
  }
  asgd.CopyAveragedToParameters();
  EXPECT_NEAR(p.value().item(), 0.4116116524, 1e-6);
  asgd.Restart();
  EXPECT_EQ(asgd.step_count(0), 0);
  EXPECT_FLOAT_EQ(asgd.averaged(0).item(), p.value().item());
  // A new run: the first step is again gamma / 1^alpha.
  const float start = p.value().item();
  p.set_grad(p.value().Clone());
  asgd.Step();
  EXPECT_NEAR(p.value().item(), start * 0.5f, 1e-7);
  EXPECT_NEAR(asgd.averaged(0).item(), start * 0.5f, 1e-7);
}

// Maximizes -||psi - c||^2 / 2 with supergradients corrupted by N(0, sigma^2) noise and
// returns || psi_bar_k - c || at the checkpoints.
std::vector<double> NoisyAscentErrors(const std::vector<int>& checkpoints, bool averaged) {
  constexpr int kDim = 10;
  constexpr float kSigma = 1.0f;
  nn::Rng rng(2024);
  std::vector<float> c(kDim);
  for (float& v : c) v = rng.Normal();
  Var psi = Var::Parameter(Tensor::Zeros({kDim}));
  Asgd asgd({psi}, {.gamma = 0.5f, .alpha = 0.5f, .maximize = true});
  std::vector<double> errors;
  size_t next = 0;
  for (int k = 1; k <= checkpoints.back(); ++k) {
    Tensor g = Tensor::Empty({kDim});
    for (int i = 0; i < kDim; ++i) g.data()[i] = -(psi.value().data()[i] - c[i]) + kSigma * rng.Normal();
    psi.set_grad(g);
    asgd.Step();
    if (k == checkpoints[next]) {
      const Tensor& x = averaged ? asgd.averaged(0) : psi.value();
      double e = 0;
      for (int i = 0; i < kDim; ++i) e += (x.data()[i] - c[i]) * (x.data()[i] - c[i]);
      errors.push_back(std::sqrt(e));
      ++next;
    }
  }
  return errors;
}

TEST(AsgdTest, AveragedIterateConvergesOnNoisyConcaveProblem) {
  const std::vector<double> avg = NoisyAscentErrors({1000, 10000}, /*averaged=*/true);
  const std::vector<double> raw = NoisyAscentErrors({1000, 10000}, /*averaged=*/false);
  // Polyak-Juditsky: E||psi_bar_k - c||^2 ~ sigma^2 d / k, i.e. about sqrt(10 / 10^4) = 0.032
  // at k = 10^4; the bound leaves a factor 4 for the noise and the transient.
  EXPECT_LT(avg[1], 4.0 * std::sqrt(10.0 / 10000.0)) << "error at k=1000: " << avg[0];
  EXPECT_LT(avg[0], 4.0 * std::sqrt(10.0 / 1000.0));
  EXPECT_LT(avg[1], avg[0]);
  // The raw iterate with step eta = 0.5 / sqrt(k) fluctuates at ~sqrt(eta d / 2) = 0.16 at k = 10^4:
  // averaging must do markedly better.
  EXPECT_LT(avg[1], 0.6 * raw[1]);
}

TEST(AsgdTest, ValidateRejectsBadOptions) {
  EXPECT_FALSE((AsgdOptions{.gamma = 0.0f}).Validate().ok());
  EXPECT_FALSE((AsgdOptions{.alpha = -0.5f}).Validate().ok());
  const absl::Status s = AsgdOptions{.alpha = 1.5f}.Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("alpha"), std::string::npos) << s;
  EXPECT_TRUE(AsgdOptions{}.Validate().ok());
}

}  // namespace
}  // namespace otgen::optim
