#include "apps/w2gan/generator.h"

#include <algorithm>
#include <string>

#include "apps/common/config.h"
#include "gtest/gtest.h"
#include "nn/ops.h"
#include "nn/tensor.h"

namespace otgen::apps::w2gan {
namespace {

using nn::Tensor;
using nn::Var;

GeneratorConfig Parse(const std::string& text) {
  GeneratorConfig c;
  const absl::Status s = ParseConfig(text, "test", &c);
  EXPECT_TRUE(s.ok()) << s;
  return c;
}

constexpr char k2d[] = R"pb(
  h { mlp { hidden: [ 16, 16, 16, 16 ] batch_norm: true } }
  residual_scale: 1
  skip: IDENTITY
)pb";

constexpr char kImage[] = R"pb(
  h { mlp { hidden: [ 32, 32 ] batch_norm: true output_activation: TANH } }
  residual_scale: 2
  skip: CLIPPED
)pb";

TEST(ResidualGeneratorTest, IsExactlyTheIdentityAtInitialization) {
  nn::Rng rng(1);
  absl::StatusOr<std::unique_ptr<ResidualGenerator>> g = ResidualGenerator::Create(Parse(k2d), 2, rng, "generator");
  ASSERT_TRUE(g.ok()) << g.status();
  const Tensor z = Tensor::Normal({64, 2}, 0, 3, rng);
  for (bool training : {true, false}) {
    (*g)->Train(training);
    absl::StatusOr<Var> y = (*g)->Forward(Var(z));
    ASSERT_TRUE(y.ok()) << y.status();
    ASSERT_EQ(y->shape(), z.shape());
    for (int64_t i = 0; i < z.numel(); ++i) EXPECT_EQ(y->value().data()[i], z.data()[i]) << i;
  }
}

TEST(ResidualGeneratorTest, ClippedSkipStartsAtTheClippedInput) {
  nn::Rng rng(2);
  absl::StatusOr<std::unique_ptr<ResidualGenerator>> g = ResidualGenerator::Create(Parse(kImage), 10, rng, "generator");
  ASSERT_TRUE(g.ok()) << g.status();
  const Tensor z = Tensor::Normal({8, 10}, 0, 2, rng);
  absl::StatusOr<Var> y = (*g)->Forward(Var(z));
  ASSERT_TRUE(y.ok());
  int clipped = 0;
  for (int64_t i = 0; i < z.numel(); ++i) {
    const float expected = std::clamp(z.data()[i], -1.0f, 1.0f);
    clipped += expected != z.data()[i];
    EXPECT_EQ(y->value().data()[i], expected);
  }
  EXPECT_GT(clipped, 0);
}

TEST(ResidualGeneratorTest, TrainingMovesTheIdentityAtTheFirstStep) {
  // The zeroed last layer still receives a gradient, so G leaves the identity after one step.
  nn::Rng rng(3);
  std::unique_ptr<ResidualGenerator> g = *ResidualGenerator::Create(Parse(k2d), 2, rng, "generator");
  const Tensor z = Tensor::Normal({32, 2}, 0, 1, rng);
  const Var loss = nn::MeanAll(nn::Square(nn::AddScalar(*g->Forward(Var(z)), -5.0f)));
  const std::vector<Var> params = g->Parameters();
  const std::vector<Var> grads = nn::Grad({loss}, params, {}, {.allow_unused = true});
  // H's last Linear: the last two parameters (weight, bias).
  const Tensor& gw = grads[grads.size() - 2].value();
  const Tensor& gb = grads.back().value();
  float norm = 0;
  for (float v : gw.span()) norm += v * v;
  for (float v : gb.span()) norm += v * v;
  EXPECT_GT(norm, 1e-3f);
  // The bias gradient is exactly d/db mean (z + b - 5)^2 = 2 (mean(z) - 5) per coordinate.
  for (int k = 0; k < 2; ++k) {
    double mean = 0;
    for (int i = 0; i < 32; ++i) mean += z.at({i, k}) / 32.0;
    EXPECT_NEAR(gb.data()[k], (mean - 5.0), 1e-4);  // MeanAll over 64 values: 2 / 2 = 1 per coordinate
  }
}

TEST(ResidualGeneratorTest, OutputInitScaleScalesTheLastLayer) {
  nn::Rng rng(4);
  GeneratorConfig c = Parse(k2d);
  c.set_output_init_scale(0.5f);
  std::unique_ptr<ResidualGenerator> g = *ResidualGenerator::Create(c, 2, rng, "generator");
  const Tensor z = Tensor::Normal({16, 2}, 0, 1, rng);
  const Tensor y = (*g->Forward(Var(z))).value();
  double diff = 0;
  for (int64_t i = 0; i < z.numel(); ++i) diff += std::abs(y.data()[i] - z.data()[i]);
  EXPECT_GT(diff, 0.0);
}

TEST(ResidualGeneratorTest, RejectsBadConfigsNamingTheField) {
  nn::Rng rng(5);
  auto message = [&](const GeneratorConfig& c, int64_t dim) {
    return std::string(ResidualGenerator::Create(c, dim, rng, "generator").status().message());
  };
  EXPECT_NE(message(GeneratorConfig(), 2).find("generator.h"), std::string::npos);
  GeneratorConfig c = Parse(k2d);
  c.set_residual_scale(0.0f);
  EXPECT_NE(message(c, 2).find("generator.residual_scale"), std::string::npos);
  c = Parse(k2d);
  c.set_output_init_scale(-1.0f);
  EXPECT_NE(message(c, 2).find("generator.output_init_scale"), std::string::npos);
  c = Parse(k2d);
  c.mutable_h()->mutable_mlp()->set_out_features(3);  // H must map R^2 to R^2
  EXPECT_NE(message(c, 2).find("generator.h"), std::string::npos);
}

}  // namespace
}  // namespace otgen::apps::w2gan
