#include "ot/bench_points.h"

#include "gtest/gtest.h"

namespace otgen::ot {
namespace {

TEST(BenchPointsTest, UniformPointsAreSeededAndInTheUnitCube) {
  const RowMatrixXf a = UniformBenchPoints(50, 7, 3);
  const RowMatrixXf b = UniformBenchPoints(50, 7, 3);
  const RowMatrixXf c = UniformBenchPoints(50, 7, 4);
  ASSERT_EQ(a.rows(), 50);
  ASSERT_EQ(a.cols(), 7);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_GE(a.minCoeff(), 0.0f);
  EXPECT_LT(a.maxCoeff(), 1.0f);
}

TEST(BenchPointsTest, MnistImagesAreTheFirstImagesFlattenedToTheUnitRange) {
  const RowMatrixXf train = MnistBenchImages(data::Split::kTrain, 5);
  ASSERT_EQ(train.rows(), 5);
  ASSERT_EQ(train.cols(), 784);
  EXPECT_GE(train.minCoeff(), 0.0f);
  EXPECT_LE(train.maxCoeff(), 1.0f);
  EXPECT_EQ(train.maxCoeff(), 1.0f);  // MNIST digits reach 255
  // The same rows as the loader's first images (in file order).
  absl::StatusOr<data::InMemoryDataset> set =
      data::LoadMnist("", data::Split::kTrain, {.scaling = data::PixelScaling::kUnit, .flatten = true});
  ASSERT_TRUE(set.ok()) << set.status();
  for (int k = 0; k < 5 * 784; ++k) ASSERT_EQ(train.data()[k], set->examples().data()[k]) << k;
  // More images than the split has: all of them.
  EXPECT_EQ(MnistBenchImages(data::Split::kTest, 20000).rows(), 10000);
}

}  // namespace
}  // namespace otgen::ot
