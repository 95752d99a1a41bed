#include "apps/eval/mnist_classifier.h"

#include <cmath>
#include <cstdlib>

#include "data/dataset.h"
#include "apps/common/test_files.h"
#include "gtest/gtest.h"
#include "nn/precision.h"
#include "nn/random.h"

namespace otgen::eval {
namespace {

// A toy labelled set the network can fit quickly: class k is a bright square at a
// position determined by k, plus noise.
data::InMemoryDataset Squares(int64_t n, uint64_t seed) {
  nn::Rng rng(seed);
  nn::Tensor x = nn::Tensor::Zeros({n, 1, 28, 28});
  std::vector<int32_t> labels(n);
  for (int64_t i = 0; i < n; ++i) {
    const int k = static_cast<int>(rng.UniformInt(10));
    labels[i] = k;
    const int r0 = (k / 5) * 12 + 2, c0 = (k % 5) * 5 + 1;
    for (int r = 0; r < 28; ++r) {
      for (int c = 0; c < 28; ++c) {
        const bool on = r >= r0 && r < r0 + 8 && c >= c0 && c < c0 + 4;
        x.at({i, 0, r, c}) = (on ? 0.8f : 0.0f) + 0.1f * rng.Uniform();
      }
    }
  }
  return *data::InMemoryDataset::Create(x, labels, 10, "squares");
}

TEST(MnistClassifierTest, ShapesOfOutputs) {
  MnistClassifier c(1);
  nn::Rng rng(2);
  const nn::Tensor x = nn::Tensor::Uniform({7, 784}, -1, 1, rng);
  absl::StatusOr<ClassifierOutputs> out = c.Evaluate(x, PixelRange::kSymmetric, /*batch_size=*/3);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->features.shape(), (nn::Shape{7, 128}));
  EXPECT_EQ(out->probabilities.shape(), (nn::Shape{7, 10}));
  for (int i = 0; i < 7; ++i) {
    double s = 0;
    for (int k = 0; k < 10; ++k) s += out->probabilities.at({i, k});
    EXPECT_NEAR(s, 1.0, 1e-5);
  }
  EXPECT_FALSE(c.Evaluate(nn::Tensor::Zeros({2, 100}), PixelRange::kUnit).ok());
}

TEST(MnistClassifierTest, EvaluatesInFloat32WhateverTheCallersPrecision) {
  MnistClassifier c(1);
  nn::Rng rng(3);
  const nn::Tensor x = nn::Tensor::Uniform({64, 784}, -1, 1, rng);
  absl::StatusOr<ClassifierOutputs> f32 = c.Evaluate(x, PixelRange::kSymmetric);
  ASSERT_TRUE(f32.ok()) << f32.status();
  const nn::ComputePrecisionGuard bf16(nn::ComputePrecision::kBFloat16);
  absl::StatusOr<ClassifierOutputs> mixed = c.Evaluate(x, PixelRange::kSymmetric);
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  for (int64_t k = 0; k < f32->features.numel(); ++k) {
    ASSERT_EQ(mixed->features.data()[k], f32->features.data()[k]) << k;
  }
  EXPECT_EQ(nn::CurrentComputePrecision(), nn::ComputePrecision::kBFloat16);  // the caller's, restored
}

TEST(MnistClassifierTest, LearnsASeparableTaskAndRoundTripsThroughACheckpoint) {
  const data::InMemoryDataset train = Squares(600, 3);
  const data::InMemoryDataset test = Squares(200, 4);
  auto c = TrainMnistClassifier(train, {.seed = 5, .epochs = 2, .batch_size = 50, .decay_epochs = 1, .progress = false});
  ASSERT_TRUE(c.ok()) << c.status();
  const double acc = *(*c)->Accuracy(test);
  EXPECT_GT(acc, 0.95);
  const std::string path = ClassifierPath(apps::TestTempDir());
  ASSERT_TRUE((*c)->Save(path, acc).ok());
  MnistClassifier loaded(99);
  ASSERT_TRUE(loaded.Load(path).ok());
  EXPECT_DOUBLE_EQ(*loaded.Accuracy(test), acc);
  EXPECT_NEAR(loaded.recorded_test_accuracy(), acc, 1e-9);
}

TEST(MnistClassifierTest, TrainingIsReproducible) {
  const data::InMemoryDataset train = Squares(100, 6);
  auto a = TrainMnistClassifier(train, {.seed = 7, .epochs = 1, .batch_size = 25, .decay_epochs = 0, .progress = false});
  auto b = TrainMnistClassifier(train, {.seed = 7, .epochs = 1, .batch_size = 25, .decay_epochs = 0, .progress = false});
  ASSERT_TRUE(a.ok() && b.ok());
  const auto pa = (*a)->network().Parameters();
  const auto pb = (*b)->network().Parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t k = 0; k < pa.size(); ++k) {
    for (int64_t i = 0; i < pa[k].numel(); ++i) ASSERT_EQ(pa[k].value().data()[i], pb[k].value().data()[i]);
  }
}

TEST(MnistClassifierTest, LoadRejectsOtherFiles) {
  MnistClassifier c(1);
  EXPECT_EQ(c.Load(apps::TestTempDir() + "/nope.pb").code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(MnistClassifierTrainingOptions{.epochs = 0}.Validate().ok());
}

}  // namespace
}  // namespace otgen::eval
