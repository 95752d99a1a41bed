#include "apps/common/optimizer_factory.h"

#include "gtest/gtest.h"
#include "nn/tensor.h"

namespace otgen::apps {
namespace {

// One step on f(w) = w^2 / 2 from w = 1 (gradient 1): each kind's first update is known.
float FirstStep(const OptimizerConfig& config, bool maximize = false) {
  nn::Var w = nn::Var::Parameter(nn::Tensor::Full({1}, 1.0f));
  auto opt = MakeOptimizer(config, {w}, "opt", maximize);
  EXPECT_TRUE(opt.ok()) << opt.status();
  w.set_grad(nn::Tensor::Full({1}, 1.0f));
  (*opt)->Step();
  return w.value().item();
}

TEST(OptimizerFactoryTest, BuildsEachKindWithItsHyperparameters) {
  OptimizerConfig adam;
  adam.set_lr(0.1f);
  // Adam's first step is lr * sign(grad) (bias-corrected moments).
  EXPECT_NEAR(FirstStep(adam), 0.9f, 1e-5);
  EXPECT_NEAR(FirstStep(adam, /*maximize=*/true), 1.1f, 1e-5);

  OptimizerConfig sgd;
  sgd.set_kind(OptimizerConfig::SGD);
  sgd.set_lr(0.25f);
  EXPECT_NEAR(FirstStep(sgd), 0.75f, 1e-6);

  OptimizerConfig asgd;
  asgd.set_kind(OptimizerConfig::ASGD);
  asgd.set_gamma(0.5f);
  asgd.set_alpha(0.5f);
  // gamma / 1^alpha at k = 1.
  EXPECT_NEAR(FirstStep(asgd), 0.5f, 1e-6);
}

TEST(OptimizerFactoryTest, InvalidValuesNameTheField) {
  OptimizerConfig c;
  c.set_beta1(1.5f);
  absl::Status s = ValidateOptimizerConfig(c, "generator_optimizer");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("generator_optimizer.beta1"), std::string::npos) << s;

  c = OptimizerConfig();
  c.set_kind(OptimizerConfig::ASGD);
  c.set_alpha(0.0f);
  EXPECT_NE(ValidateOptimizerConfig(c, "psi_optimizer").message().find("psi_optimizer.alpha"), std::string::npos);

  c = OptimizerConfig();
  c.set_lr(-1.0f);
  nn::Var w = nn::Var::Parameter(nn::Tensor::Zeros({1}));
  auto opt = MakeOptimizer(c, {w}, "critic_optimizer");
  ASSERT_FALSE(opt.ok());
  EXPECT_NE(opt.status().message().find("critic_optimizer.lr"), std::string::npos) << opt.status();
}

}  // namespace
}  // namespace otgen::apps
