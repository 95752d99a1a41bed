#include "ot/lipschitz_penalty.h"

#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nn/autograd.h"
#include "nn/gradcheck.h"
#include "nn/ops.h"
#include "nn/random.h"
#include "nn/tensor.h"

namespace otgen::ot {
namespace {

using nn::Tensor;
using nn::Var;

// u(x) = x w (+ 0): grad u = w for every example, so ||grad u|| = ||w||.
Critic LinearCritic(const Var& w) {
  return [w](const Var& x) -> absl::StatusOr<Var> { return nn::MatMul(x, w); };  // {N, 1}
}

// u(x) = tanh(x W1 + b1) w2: a critic whose input gradient depends on x and on every parameter.
Critic TanhMlp(const Var& w1, const Var& b1, const Var& w2) {
  return [=](const Var& x) -> absl::StatusOr<Var> {
    return nn::Reshape(nn::MatMul(nn::Tanh(nn::Add(nn::MatMul(x, w1), b1)), w2), {x.dim(0)});
  };
}

TEST(LipschitzPenaltyTest, LinearCriticPenaltiesByHand) {
  const Tensor x = Tensor::FromVector({3, 2}, {0.5f, -1, 2, 0, -0.3f, 0.7f});
  // ||w|| = 5: R = (5 - 1)^2 = 16 for both kinds; ||w|| = 0.5: 0.25 two-sided, 0 one-sided.
  const Critic steep = LinearCritic(Var::Constant(Tensor::FromVector({2, 1}, {3, 4})));
  const Critic flat = LinearCritic(Var::Constant(Tensor::FromVector({2, 1}, {0.3f, -0.4f})));
  Tensor norms;
  EXPECT_NEAR(GradientNormPenalty(steep, x, LipschitzPenalty::kGradient, &norms)->item(), 16.0f, 1e-4);
  ASSERT_EQ(norms.numel(), 3);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(norms.data()[i], 5.0f, 1e-5);
  EXPECT_NEAR(GradientNormPenalty(steep, x, LipschitzPenalty::kLipschitz)->item(), 16.0f, 1e-4);
  EXPECT_NEAR(GradientNormPenalty(flat, x, LipschitzPenalty::kGradient)->item(), 0.25f, 1e-5);
  EXPECT_EQ(GradientNormPenalty(flat, x, LipschitzPenalty::kLipschitz)->item(), 0.0f);
  EXPECT_EQ(GradientNormPenalty(flat, x, LipschitzPenalty::kNone)->item(), 0.0f);
}

TEST(LipschitzPenaltyTest, CriticLossTermsAndInterpolates) {
  const Var w = Var::Constant(Tensor::FromVector({2, 1}, {3, 4}));
  const Var real = Var::Constant(Tensor::FromVector({2, 2}, {1, 0, 0, 1}));   // u = 3, 4
  const Var fake = Var::Constant(Tensor::FromVector({2, 2}, {0, 0, -1, 0}));  // u = 0, -3
  const Tensor t = Tensor::FromVector({2}, {0.25f, 1.0f});
  absl::StatusOr<W1CriticTerms> terms = W1CriticLoss(LinearCritic(w), real, fake, t, LipschitzPenalty::kGradient, 0.5f);
  ASSERT_TRUE(terms.ok()) << terms.status();
  EXPECT_NEAR(terms->wasserstein.item(), 3.5 - (-1.5), 1e-5);
  EXPECT_NEAR(terms->penalty.item(), 16.0, 1e-4);
  EXPECT_NEAR(terms->mean_gradient_norm, 5.0, 1e-5);
  EXPECT_NEAR(terms->loss.item(), -5.0 + 0.5 * 16.0, 1e-4);
  absl::StatusOr<Tensor> x_hat = InterpolateRows(real.value(), fake.value(), t);
  ASSERT_TRUE(x_hat.ok());
  const std::vector<float> expected = {0.25f, 0, 0, 1};  // 0.25 (1,0) + 0.75 (0,0); 1 (0,1) + 0 (-1,0)
  for (int k = 0; k < 4; ++k) EXPECT_NEAR(x_hat->data()[k], expected[k], 1e-6) << k;
  absl::StatusOr<Var> g = W1GeneratorLoss(LinearCritic(w), fake);
  ASSERT_TRUE(g.ok());
  EXPECT_NEAR(g->item(), 1.5, 1e-5);
}

// The penalty's gradient in the critic's parameters (a second derivative through
// create_graph) against central finite differences, for both penalty kinds.
TEST(LipschitzPenaltyTest, ParameterGradientsMatchFiniteDifferences) {
  nn::Rng rng(7);
  const Tensor real = Tensor::Normal({5, 3}, 0, 1, rng);
  const Tensor fake = Tensor::Normal({5, 3}, 0, 1, rng);
  const Tensor t = Tensor::Uniform({5}, 0, 1, rng);
  const std::vector<Tensor> params = {Tensor::Normal({3, 4}, 0, 1.2f, rng), Tensor::Normal({4}, 0, 0.5f, rng),
                                      Tensor::Normal({4, 1}, 0, 1.2f, rng)};
  for (const LipschitzPenalty kind : {LipschitzPenalty::kGradient, LipschitzPenalty::kLipschitz}) {
    SCOPED_TRACE(static_cast<int>(kind));
    const nn::DifferentiableFunction f = [&](const std::vector<Var>& p) {
      return W1CriticLoss(TanhMlp(p[0], p[1], p[2]), Var::Constant(real), Var::Constant(fake), t, kind, 10.0f)->loss;
    };
    const absl::Status s = nn::GradCheck(f, params, {.step = 1e-2, .atol = 5e-3, .rtol = 2e-2});
    EXPECT_TRUE(s.ok()) << s;
  }
}

TEST(LipschitzPenaltyTest, BadInputsNameTheArgument) {
  const Critic critic = LinearCritic(Var::Constant(Tensor::FromVector({2, 1}, {1, 1})));
  const Var a = Var::Constant(Tensor::Zeros({2, 2}));
  const Var b = Var::Constant(Tensor::Zeros({3, 2}));
  const Tensor t = Tensor::Zeros({2});
  auto message = [](const absl::Status& s) { return std::string(s.message()); };
  absl::Status s = W1CriticLoss(critic, a, a, t, LipschitzPenalty::kGradient, -1.0f).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(message(s).find("penalty weight"), std::string::npos) << s;
  s = W1CriticLoss(critic, a, b, t, LipschitzPenalty::kGradient, 1.0f).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(message(s).find("real / fake"), std::string::npos) << s;
  const Critic wrong = [](const Var& x) -> absl::StatusOr<Var> { return x; };  // {N, 2} values
  s = W1GeneratorLoss(wrong, a).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(message(s).find("critic"), std::string::npos) << s;
  const Critic failing = [](const Var&) -> absl::StatusOr<Var> { return absl::NotFoundError("no weights"); };
  EXPECT_EQ(W1GeneratorLoss(failing, a).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(InterpolateRows(a.value(), b.value(), t).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace otgen::ot
