#include "apps/wgan_gp/wgan_losses.h"

#include <cmath>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "nn/autograd.h"
#include "nn/layers.h"
#include "nn/random.h"
#include "nn/tensor.h"

namespace otgen::apps::wgan_gp {
namespace {

namespace L = nn::layers;
using nn::Tensor;
using nn::Var;

// u(x) = w . x + b.
std::unique_ptr<L::Linear> LinearCritic(float w0, float w1, nn::Rng& rng) {
  auto critic = std::make_unique<L::Linear>(2, 1, rng);
  Tensor w = critic->weight().value();
  w.data()[0] = w0;
  w.data()[1] = w1;
  Tensor b = critic->bias().value();
  b.data()[0] = 0.25f;
  return critic;
}

TEST(WganLossesTest, PenaltiesOfALinearCriticHaveTheirClosedForm) {
  nn::Rng rng(1);
  const Tensor x = Tensor::Normal({7, 2}, 0, 1, rng);
  // ||grad u|| = ||w|| everywhere.
  auto steep = LinearCritic(3.0f, 4.0f, rng);   // ||w|| = 5
  auto flat = LinearCritic(0.3f, 0.4f, rng);    // ||w|| = 0.5
  Tensor norms;
  EXPECT_NEAR(GradientPenalty(*steep, x, PenaltyKind::kGradient, &norms).value().item(), 16.0f, 1e-4);
  for (int i = 0; i < 7; ++i) EXPECT_NEAR(norms.data()[i], 5.0f, 1e-5);
  EXPECT_NEAR(GradientPenalty(*steep, x, PenaltyKind::kLipschitz).value().item(), 16.0f, 1e-4);
  EXPECT_NEAR(GradientPenalty(*flat, x, PenaltyKind::kGradient).value().item(), 0.25f, 1e-5);
  // One-sided: slopes below 1 are not penalized.
  EXPECT_EQ(GradientPenalty(*flat, x, PenaltyKind::kLipschitz).value().item(), 0.0f);
  EXPECT_EQ(GradientPenalty(*flat, x, PenaltyKind::kNone).value().item(), 0.0f);
}

TEST(WganLossesTest, CriticLossOfALinearCriticIsTheMeanDifferencePlusPenalty) {
  nn::Rng rng(2);
  auto critic = LinearCritic(3.0f, 4.0f, rng);
  const Tensor real = Tensor::FromVector({2, 2}, {1, 0, 0, 1});
  const Tensor fake = Tensor::FromVector({2, 2}, {0, 0, -1, -1});
  const Tensor t = Tensor::FromVector({2}, {0.5f, 0.25f});
  // E u(real) = (3 + 4) / 2 + b, E u(fake) = (0 - 7) / 2 + b: W = 7.
  CriticLossTerms terms = CriticLoss(*critic, Var::Constant(real), Var::Constant(fake), t,
                                     {.kind = PenaltyKind::kGradient, .weight = 0.1f})
                              .value();
  EXPECT_NEAR(terms.wasserstein.item(), 7.0f, 1e-5);
  EXPECT_NEAR(terms.penalty.item(), 16.0f, 1e-4);
  EXPECT_NEAR(terms.loss.item(), -7.0f + 1.6f, 1e-4);
  EXPECT_NEAR(terms.mean_gradient_norm, 5.0, 1e-5);
  EXPECT_NEAR(GeneratorLoss(*critic, Var::Constant(fake)).value().item(), 3.5f - 0.25f, 1e-5);
}

TEST(WganLossesTest, InterpolatesArePerSampleConvexCombinations) {
  const Tensor real = Tensor::FromVector({2, 1, 2}, {1, 2, 3, 4});
  const Tensor fake = Tensor::FromVector({2, 1, 2}, {-1, 0, 1, 0});
  const Tensor t = Tensor::FromVector({2}, {0.25f, 1.0f});
  Tensor x = Interpolate(real, fake, t).value();
  EXPECT_EQ(x.shape(), real.shape());
  EXPECT_FLOAT_EQ(x.data()[0], 0.25f * 1 + 0.75f * -1);
  EXPECT_FLOAT_EQ(x.data()[1], 0.25f * 2);
  EXPECT_FLOAT_EQ(x.data()[2], 3);
  EXPECT_FLOAT_EQ(x.data()[3], 4);
  EXPECT_FALSE(Interpolate(real, fake, Tensor::Zeros({3})).ok());
  EXPECT_FALSE(Interpolate(real, Tensor::Zeros({2, 2}), t).ok());
}

// A smooth critic whose penalty has non-trivial second derivatives.
std::unique_ptr<L::Sequential> TinyTanhCritic(nn::Rng& rng) {
  return L::Mlp({2, 5, 4, 1}, L::ActivationKind::kTanh, L::ActivationKind::kNone, rng).value();
}

double LossValue(L::Sequential& critic, const Tensor& real, const Tensor& fake, const Tensor& t,
                 const PenaltyOptions& options) {
  return CriticLoss(critic, Var::Constant(real), Var::Constant(fake), t, options).value().loss.item();
}

// d L / d theta from autograd (second order through the penalty) against central differences
// of the app's own loss function, for every critic parameter entry.
void CheckParameterGradient(PenaltyKind kind, float weight, float scale) {
  nn::Rng rng(3);
  auto critic = TinyTanhCritic(rng);
  // Scale the weights up so that ||grad u|| exceeds 1 at some interpolates.
  for (Var& p : critic->Parameters()) {
    for (int64_t k = 0; k < p.numel(); ++k) p.mutable_value().data()[k] *= scale;
  }
  const Tensor real = Tensor::Normal({6, 2}, 0.5f, 1.0f, rng);
  const Tensor fake = Tensor::Normal({6, 2}, -0.5f, 0.7f, rng);
  const Tensor t = Tensor::Uniform({6}, 0.0f, 1.0f, rng);
  const PenaltyOptions options{.kind = kind, .weight = weight};
  CriticLossTerms terms = CriticLoss(*critic, Var::Constant(real), Var::Constant(fake), t, options).value();
  ASSERT_GT(terms.penalty.item(), 1e-3f) << "the test needs an active penalty";
  std::vector<Var> params = critic->Parameters();
  std::vector<Var> grads = nn::Grad({terms.loss}, params);
  const float h = 2e-3f;
  int checked = 0;
  for (size_t p = 0; p < params.size(); ++p) {
    for (int64_t k = 0; k < params[p].numel(); ++k) {
      float* v = params[p].mutable_value().data() + k;
      const float saved = *v;
      *v = saved + h;
      const double up = LossValue(*critic, real, fake, t, options);
      *v = saved - h;
      const double down = LossValue(*critic, real, fake, t, options);
      *v = saved;
      const double fd = (up - down) / (2.0 * h);
      const double analytic = grads[p].value().data()[k];
      EXPECT_NEAR(analytic, fd, 3e-3 + 1e-2 * std::abs(fd)) << "parameter " << p << " entry " << k;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 2 * 5 + 5 + 5 * 4 + 4 + 4 + 1);
}

TEST(WganLossesTest, GradientPenaltyParameterGradientMatchesFiniteDifferences) {
  CheckParameterGradient(PenaltyKind::kGradient, 10.0f, 2.5f);
}

TEST(WganLossesTest, LipschitzPenaltyParameterGradientMatchesFiniteDifferences) {
  CheckParameterGradient(PenaltyKind::kLipschitz, 10.0f, 4.0f);
}

TEST(WganLossesTest, PenaltyIsBuiltFromTheInputGradientNorm) {
  // ||grad u(x)|| against central differences of u in x.
  nn::Rng rng(4);
  auto critic = TinyTanhCritic(rng);
  const Tensor x = Tensor::Normal({3, 2}, 0, 1, rng);
  Tensor norms;
  const float penalty = GradientPenalty(*critic, x, PenaltyKind::kGradient, &norms).value().item();
  double expected = 0;
  const float h = 1e-3f;
  for (int i = 0; i < 3; ++i) {
    double sq = 0;
    for (int c = 0; c < 2; ++c) {
      Tensor up = x.Clone(), down = x.Clone();
      up.data()[2 * i + c] += h;
      down.data()[2 * i + c] -= h;
      const double d = (CriticValues(*critic, Var::Constant(up)).value().value().data()[i] -
                        CriticValues(*critic, Var::Constant(down)).value().value().data()[i]) /
                       (2.0 * h);
      sq += d * d;
    }
    EXPECT_NEAR(norms.data()[i], std::sqrt(sq), 2e-3);
    expected += (std::sqrt(sq) - 1) * (std::sqrt(sq) - 1) / 3.0;
  }
  EXPECT_NEAR(penalty, expected, 2e-3);
}

TEST(WganLossesTest, ClippingClampsEveryParameter) {
  nn::Rng rng(5);
  auto critic = TinyTanhCritic(rng);
  ClipParameters(critic->Parameters(), 0.01f);
  int at_bound = 0;
  for (const Var& p : critic->Parameters()) {
    for (int64_t k = 0; k < p.numel(); ++k) {
      EXPECT_LE(std::abs(p.value().data()[k]), 0.01f);
      at_bound += std::abs(p.value().data()[k]) == 0.01f;
    }
  }
  EXPECT_GT(at_bound, 10);
}

TEST(WganLossesTest, RejectsBadCriticOutputsAndWeights) {
  nn::Rng rng(6);
  auto wide = L::Mlp({2, 3, 2}, L::ActivationKind::kTanh, L::ActivationKind::kNone, rng).value();
  const Tensor x = Tensor::Normal({4, 2}, 0, 1, rng);
  absl::StatusOr<Var> u = CriticValues(*wide, Var::Constant(x));
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.status().message().find("critic"), std::string::npos) << u.status();
  auto critic = TinyTanhCritic(rng);
  EXPECT_FALSE(CriticLoss(*critic, Var::Constant(x), Var::Constant(x), Tensor::Zeros({4}),
                          {.kind = PenaltyKind::kGradient, .weight = -1.0f})
                   .ok());
}

}  // namespace
}  // namespace otgen::apps::wgan_gp
