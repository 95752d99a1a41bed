#include "data/dataset.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace otgen::data {
namespace {

// 5 examples of shape {2, 3}; example i holds 10 i + k at position k.
nn::Tensor Examples() {
  std::vector<float> v;
  for (int i = 0; i < 5; ++i) {
    for (int k = 0; k < 6; ++k) v.push_back(10.0f * i + k);
  }
  return nn::Tensor::FromVector({5, 2, 3}, v);
}

TEST(SplitAndScalingTest, ParseAndName) {
  EXPECT_EQ(*ParseSplit("train"), Split::kTrain);
  EXPECT_EQ(*ParseSplit("TEST"), Split::kTest);
  EXPECT_EQ(SplitName(Split::kTest), "test");
  EXPECT_EQ(ParseSplit("validation").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParsePixelScaling("unit"), PixelScaling::kUnit);
  EXPECT_EQ(*ParsePixelScaling("[-1, 1]"), PixelScaling::kSymmetric);
  EXPECT_EQ(*ParsePixelScaling("symmetric"), PixelScaling::kSymmetric);
  EXPECT_EQ(PixelScalingName(PixelScaling::kUnit), "unit");
  absl::StatusOr<PixelScaling> bad = ParsePixelScaling("0..255");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("0..255"), std::string::npos);
}

TEST(InMemoryDatasetTest, CreateExposesShapeAndLabels) {
  absl::StatusOr<InMemoryDataset> d = InMemoryDataset::Create(Examples(), {0, 1, 2, 1, 0}, 3, "toy");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->size(), 5);
  EXPECT_EQ(d->example_shape(), (nn::Shape{2, 3}));
  EXPECT_EQ(d->example_numel(), 6);
  EXPECT_TRUE(d->has_labels());
  EXPECT_EQ(d->num_classes(), 3);
  EXPECT_EQ(d->label(2), 2);
  EXPECT_EQ(d->ClassCounts(), (std::vector<int64_t>{2, 2, 1}));
  EXPECT_EQ(d->DebugString(), "toy: 5 x [2, 3], 3 classes");
}

TEST(InMemoryDatasetTest, UnlabelledDataset) {
  absl::StatusOr<InMemoryDataset> d = InMemoryDataset::Create(Examples());
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->has_labels());
  EXPECT_TRUE(d->ClassCounts().empty());
  EXPECT_EQ(d->GetLabels(std::vector<int64_t>{0}).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(InMemoryDatasetTest, CreateRejectsBadInput) {
  EXPECT_EQ(InMemoryDataset::Create(nn::Tensor()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(InMemoryDataset::Create(nn::Tensor::Scalar(1.0f)).status().code(), absl::StatusCode::kInvalidArgument);
  absl::Status count = InMemoryDataset::Create(Examples(), {0, 1}, 3, "toy").status();
  EXPECT_EQ(count.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(count.message().find("toy"), std::string::npos) << count;
  EXPECT_NE(count.message().find("got 2 labels"), std::string::npos) << count;
  absl::Status range = InMemoryDataset::Create(Examples(), {0, 1, 3, 1, 0}, 3).status();
  EXPECT_EQ(range.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(range.message().find("label[2] = 3"), std::string::npos) << range;
  EXPECT_EQ(InMemoryDataset::Create(Examples(), {0, 0, 0, 0, 0}, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(InMemoryDatasetTest, CopyBatchGathersRowsAndReusesStorage) {
  InMemoryDataset d = *InMemoryDataset::Create(Examples(), {0, 1, 2, 1, 0}, 3);
  nn::Tensor batch;
  const std::vector<int64_t> idx = {4, 0, 4};
  ASSERT_TRUE(d.CopyBatch(idx, &batch).ok());
  EXPECT_EQ(batch.shape(), (nn::Shape{3, 2, 3}));
  for (int b = 0; b < 3; ++b) {
    for (int k = 0; k < 6; ++k) EXPECT_EQ(batch.data()[b * 6 + k], 10.0f * idx[b] + k);
  }
  // Same shape: the storage is reused.
  const float* storage = batch.data();
  ASSERT_TRUE(d.CopyBatch(std::vector<int64_t>{1, 2, 3}, &batch).ok());
  EXPECT_EQ(batch.data(), storage);
  EXPECT_EQ(batch.at({2, 1, 2}), 35.0f);
  // Another batch size: reallocated with the new shape.
  ASSERT_TRUE(d.CopyBatch(std::vector<int64_t>{1}, &batch).ok());
  EXPECT_EQ(batch.shape(), (nn::Shape{1, 2, 3}));
  // The dataset's own storage is untouched by writes into a batch.
  batch.Fill(-1.0f);
  EXPECT_EQ(d.examples().at({1, 0, 0}), 10.0f);
  // Labels follow the indices.
  EXPECT_EQ(*d.GetLabels(idx), (std::vector<int>{0, 0, 0}));
  EXPECT_EQ(*d.GetLabels(std::vector<int64_t>{2, 3}), (std::vector<int>{2, 1}));
}

TEST(InMemoryDatasetTest, CopyBatchRejectsBadIndex) {
  InMemoryDataset d = *InMemoryDataset::Create(Examples());
  nn::Tensor batch;
  absl::Status s = d.CopyBatch(std::vector<int64_t>{0, 5}, &batch);
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(s.message().find("indices[1] = 5"), std::string::npos) << s;
  EXPECT_EQ(d.CopyBatch(std::vector<int64_t>{-1}, &batch).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(d.CopyBatch(std::vector<int64_t>{0}, nullptr).code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<nn::Tensor> empty = d.GetBatch({});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->shape(), (nn::Shape{0, 2, 3}));
}

TEST(InMemoryDatasetTest, SubsetCopiesInOrder) {
  InMemoryDataset d = *InMemoryDataset::Create(Examples(), {0, 1, 2, 1, 0}, 3);
  absl::StatusOr<InMemoryDataset> s = d.Subset(std::vector<int64_t>{3, 1});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->size(), 2);
  EXPECT_EQ(s->examples().at({0, 0, 0}), 30.0f);
  EXPECT_EQ(s->examples().at({1, 1, 2}), 15.0f);
  EXPECT_EQ(s->label(0), 1);
  EXPECT_FALSE(s->examples().SharesStorageWith(d.examples()));
  EXPECT_EQ(d.Subset(std::vector<int64_t>{7}).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(InMemoryDatasetTest, WithExampleShapeIsAView) {
  InMemoryDataset d = *InMemoryDataset::Create(Examples(), {0, 1, 2, 1, 0}, 3);
  absl::StatusOr<InMemoryDataset> flat = d.WithExampleShape({6});
  ASSERT_TRUE(flat.ok());
  EXPECT_EQ(flat->example_shape(), (nn::Shape{6}));
  EXPECT_EQ(flat->examples().shape(), (nn::Shape{5, 6}));
  EXPECT_EQ(flat->examples().at({4, 5}), 45.0f);
  EXPECT_EQ(flat->examples().data(), d.examples().data());
  EXPECT_EQ(flat->label(2), 2);
  absl::Status bad = d.WithExampleShape({7}).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("[7]"), std::string::npos) << bad;
}

TEST(InMemoryDatasetTest, DefaultIsEmpty) {
  InMemoryDataset d;
  EXPECT_EQ(d.size(), 0);
  EXPECT_FALSE(d.has_labels());
  EXPECT_TRUE(d.GetBatch({}).ok());
}

}  // namespace
}  // namespace otgen::data
