#include "ot/barycentric.h"

#include "gtest/gtest.h"
#include "nn/gradcheck.h"
#include "nn/ops.h"

namespace otgen::ot {
namespace {

using nn::Tensor;
using nn::Var;

TEST(BarycentricTest, PermutationPlanGivesTheMatchedPoints) {
  const Tensor y = Tensor::FromVector({3, 2}, {0, 0, 1, 0, 0, 1});
  const Tensor plan = Tensor::FromVector({3, 3}, {0, 1, 0, 0, 0, 1, 1, 0, 0});
  const Tensor t = *BarycentricProjection(plan, y);
  EXPECT_FLOAT_EQ(t.at({0, 0}), 1);
  EXPECT_FLOAT_EQ(t.at({1, 1}), 1);
  EXPECT_FLOAT_EQ(t.at({2, 0}), 0);
}

TEST(BarycentricTest, SplitMassGivesTheWeightedMean) {
  const Tensor y = Tensor::FromVector({2, 1}, {0, 4});
  // Row 0 sends 1/4 to y_0 and 1/12 to y_1 -> mean (0 * 3 + 4 * 1) / 4 = 1.
  const Tensor plan = Tensor::FromVector({2, 2}, {0.25f, 1.0f / 12, 0.0f, 0.5f});
  const Tensor t = *BarycentricProjection(plan, y);
  EXPECT_NEAR(t.at({0, 0}), 1.0, 1e-6);
  EXPECT_NEAR(t.at({1, 0}), 4.0, 1e-6);
}

TEST(BarycentricTest, MapLossIsZeroAtTheProjectionAndHasFiniteDifferenceGradient) {
  nn::Rng rng(1);
  const Tensor y = Tensor::Normal({4, 2}, 0, 1, rng);
  Tensor plan = Tensor::Uniform({3, 4}, 0.1f, 1.0f, rng);
  const Tensor t = *BarycentricProjection(plan, y);
  EXPECT_NEAR(BarycentricMapLoss(Var::Constant(t), plan, y)->item(), 0.0, 1e-10);
  absl::Status s = nn::GradCheck([&](const std::vector<Var>& in) { return *BarycentricMapLoss(in[0], plan, y); },
                                 {Tensor::Normal({3, 2}, 0, 1, rng)});
  EXPECT_TRUE(s.ok()) << s;
}

TEST(BarycentricTest, BadInput) {
  const Tensor y = Tensor::Zeros({2, 1});
  EXPECT_NE(BarycentricProjection(Tensor::Zeros({2, 3}), y).status().message().find("[2, 3]"), std::string::npos);
  EXPECT_NE(BarycentricProjection(Tensor::FromVector({1, 2}, {0, 0}), y).status().message().find("row 0"),
            std::string::npos);
  EXPECT_NE(BarycentricProjection(Tensor::FromVector({1, 2}, {-1, 2}), y).status().message().find("non-negative"),
            std::string::npos);
  EXPECT_FALSE(BarycentricMapLoss(Var::Constant(Tensor::Zeros({1, 2})), Tensor::Ones({1, 2}), y).ok());
}

}  // namespace
}  // namespace otgen::ot
