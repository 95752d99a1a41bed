// The WGAN-GP gradient penalty (seed 004; Gulrajani et al. 2017)
//   P(theta) = mean_i (||grad_x D_theta(x_i)|| - 1)^2
// differentiated with respect to the critic's parameters theta through the recorded
// backward pass (Grad with create_graph), checked against central finite differences in
// theta for an MLP critic and a convolutional critic built from nn/layers.h.
//
// P is piecewise smooth in theta: a LeakyReLU pre-activation that changes sign between
// theta - h and theta + h makes the finite difference meaningless for that element, so such
// elements are detected (the activation pattern is compared) and skipped; the test requires
// that almost all elements are checked.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nn/autograd.h"
#include "nn/layers.h"
#include "nn/ops.h"
#include "nn/random.h"
#include "nn/tensor.h"
#include "nn/tensor_math.h"

namespace otgen::nn {
namespace {

namespace L = layers;

struct Evaluation {
  double penalty = 0;
  // Signs of every LeakyReLU input (the piece of the piecewise-smooth function).
  std::vector<bool> pattern;
};

// Evaluates P(theta) without recording second-order terms, accumulating in double.
Evaluation EvaluatePenalty(L::Sequential& critic, const Tensor& x) {
  Evaluation e;
  Var input(x, /*requires_grad=*/true);
  Var h = input;
  for (int i = 0; i < critic.size(); ++i) {
    if (dynamic_cast<L::LeakyReLU*>(&critic.at(i)) != nullptr) {
      for (float v : h.value().span()) e.pattern.push_back(v > 0);
    }
    h = critic.at(i).Forward(h).value();
  }
  const Tensor g = Grad({SumAll(h)}, {input})[0].value();
  const int64_t n = g.dim(0), d = g.numel() / n;
  for (int64_t i = 0; i < n; ++i) {
    double sq = 0;
    for (int64_t k = 0; k < d; ++k) sq += static_cast<double>(g.data()[i * d + k]) * g.data()[i * d + k];
    e.penalty += (std::sqrt(sq) - 1.0) * (std::sqrt(sq) - 1.0);
  }
  e.penalty /= static_cast<double>(n);
  return e;
}

// P(theta) as a recorded graph: grad_x D through Grad with create_graph.
Var PenaltyGraph(L::Sequential& critic, const Tensor& x) {
  Var input(x, /*requires_grad=*/true);
  Var d = critic.Forward(input).value();
  Var g = Grad({SumAll(d)}, {input}, {}, {.create_graph = true})[0];
  return MeanAll(Square(AddScalar(RowNorm(g), -1.0f)));
}

void CheckPenaltyGradient(L::Sequential& critic, const Tensor& x, double step) {
  const std::vector<std::pair<std::string, Var>> params = critic.NamedParameters();
  std::vector<Var> vars;
  for (const auto& [name, p] : params) vars.push_back(p);
  const Var penalty = PenaltyGraph(critic, x);
  // The last bias does not change grad_x D: its gradient is structurally zero (unused).
  std::vector<Var> analytic = Grad({penalty}, vars, {}, {.allow_unused = true});
  for (size_t j = 0; j < vars.size(); ++j) {
    if (!analytic[j].defined()) analytic[j] = Var::Constant(Tensor::Zeros(vars[j].shape()));
  }

  // Backward (the training path) accumulates the same gradients into .grad().
  critic.ZeroGrad();
  Backward(PenaltyGraph(critic, x));
  for (size_t j = 0; j < vars.size(); ++j) {
    if (!vars[j].grad().defined()) {
      EXPECT_EQ(math::MaxAbsDiff(analytic[j].value(), Tensor::Zeros(vars[j].shape())), 0.0f) << params[j].first;
      continue;
    }
    for (int64_t i = 0; i < vars[j].numel(); ++i) {
      EXPECT_NEAR(vars[j].grad().data()[i], analytic[j].value().data()[i], 1e-6) << params[j].first;
    }
  }

  const Evaluation center = EvaluatePenalty(critic, x);
  EXPECT_NEAR(center.penalty, penalty.item(), 1e-5 * (1 + center.penalty));
  int64_t checked = 0, skipped = 0;
  double max_gradient = 0;
  for (size_t j = 0; j < vars.size(); ++j) {
    float* w = vars[j].mutable_value().data();
    for (int64_t i = 0; i < vars[j].numel(); ++i) {
      const float original = w[i];
      w[i] = static_cast<float>(original + step);
      const Evaluation plus = EvaluatePenalty(critic, x);
      w[i] = static_cast<float>(original - step);
      const Evaluation minus = EvaluatePenalty(critic, x);
      w[i] = original;
      if (plus.pattern != center.pattern || minus.pattern != center.pattern) {
        ++skipped;
        continue;
      }
      ++checked;
      // The perturbation actually applied in float.
      const double actual_step = (static_cast<double>(static_cast<float>(original + step)) -
                                  static_cast<double>(static_cast<float>(original - step))) / 2;
      const double numeric = (plus.penalty - minus.penalty) / (2 * actual_step);
      const double a = analytic[j].value().data()[i];
      max_gradient = std::max(max_gradient, std::abs(a));
      EXPECT_NEAR(a, numeric, 1e-3 + 1e-2 * std::abs(numeric)) << params[j].first << " element " << i;
    }
  }
  EXPECT_GE(checked, 20 * skipped) << "too many elements cross a LeakyReLU kink: " << skipped << " of "
                                   << checked + skipped;
  EXPECT_GT(max_gradient, 1e-2);  // the penalty depends on theta: the check is not vacuous
}

TEST(GradientPenaltyTest, MlpCritic) {
  Rng rng(7);
  L::Sequential critic;
  critic.Emplace<L::Linear>(3, 8, rng);
  critic.Emplace<L::LeakyReLU>(0.2f);
  critic.Emplace<L::Linear>(8, 8, rng);
  critic.Emplace<L::Tanh>();
  critic.Emplace<L::Linear>(8, 1, rng);
  const Tensor x = Tensor::Normal({6, 3}, 0.0f, 1.0f, rng);
  CheckPenaltyGradient(critic, x, 1e-2);
}

TEST(GradientPenaltyTest, ConvCritic) {
  Rng rng(8);
  L::Sequential critic;
  critic.Emplace<L::Conv2d>(1, 4, 3, 2, 1, rng);
  critic.Emplace<L::LeakyReLU>(0.2f);
  critic.Emplace<L::Conv2d>(4, 8, 3, 2, 1, rng);
  critic.Emplace<L::LeakyReLU>(0.2f);
  critic.Emplace<L::Flatten>();
  critic.Emplace<L::Linear>(8 * 2 * 2, 1, rng);
  const Tensor x = Tensor::Normal({2, 1, 8, 8}, 0.0f, 1.0f, rng);
  // The penalty is a polynomial in the weights within a LeakyReLU piece: a small step keeps
  // kink crossings rare and loses nothing to truncation.
  CheckPenaltyGradient(critic, x, 2e-3);
}

}  // namespace
}  // namespace otgen::nn
