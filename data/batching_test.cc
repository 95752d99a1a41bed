#include "data/batching.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace otgen::data {
namespace {

std::vector<int64_t> ToVector(absl::Span<const int64_t> s) { return {s.begin(), s.end()}; }

TEST(EpochBatcherTest, EachEpochIsAPermutationWithPartialLastBatch) {
  absl::StatusOr<EpochBatcher> b = EpochBatcher::Create(10, {.batch_size = 3}, nn::Rng(1));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->batches_per_epoch(), 4);
  for (int epoch = 0; epoch < 3; ++epoch) {
    std::vector<int64_t> seen;
    std::vector<size_t> sizes;
    for (int k = 0; k < 4; ++k) {
      absl::Span<const int64_t> batch = b->Next();
      EXPECT_EQ(b->epoch(), epoch);
      sizes.push_back(batch.size());
      seen.insert(seen.end(), batch.begin(), batch.end());
    }
    EXPECT_EQ(sizes, (std::vector<size_t>{3, 3, 3, 1}));
    std::sort(seen.begin(), seen.end());
    for (int64_t i = 0; i < 10; ++i) EXPECT_EQ(seen[i], i);
  }
}

TEST(EpochBatcherTest, DropLastKeepsFullBatches) {
  absl::StatusOr<EpochBatcher> b =
      EpochBatcher::Create(10, {.batch_size = 3, .last_batch = LastBatch::kDrop}, nn::Rng(2));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->batches_per_epoch(), 3);
  for (int k = 0; k < 30; ++k) {
    absl::Span<const int64_t> batch = b->Next();
    EXPECT_EQ(batch.size(), 3u);
    EXPECT_EQ(b->epoch(), k / 3);
    EXPECT_EQ(b->position(), 3 * (k % 3 + 1));
    // The three batches of an epoch are disjoint: all from one permutation.
    std::vector<int64_t> epoch_prefix = ToVector(b->permutation().subspan(0, 3 * (k % 3 + 1)));
    std::sort(epoch_prefix.begin(), epoch_prefix.end());
    EXPECT_EQ(std::adjacent_find(epoch_prefix.begin(), epoch_prefix.end()), epoch_prefix.end());
  }
}

TEST(EpochBatcherTest, WithoutShuffleVisitsInOrder) {
  absl::StatusOr<EpochBatcher> b = EpochBatcher::Create(5, {.batch_size = 2, .shuffle = false}, nn::Rng(3));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(ToVector(b->Next()), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(ToVector(b->Next()), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(ToVector(b->Next()), (std::vector<int64_t>{4}));
  EXPECT_EQ(ToVector(b->Next()), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(b->epoch(), 1);
}

TEST(EpochBatcherTest, SeededAndDifferentAcrossEpochs) {
  EpochBatcher a = *EpochBatcher::Create(100, {.batch_size = 100}, nn::Rng(5));
  EpochBatcher b = *EpochBatcher::Create(100, {.batch_size = 100}, nn::Rng(5));
  EpochBatcher c = *EpochBatcher::Create(100, {.batch_size = 100}, nn::Rng(6));
  const std::vector<int64_t> a0 = ToVector(a.Next());
  EXPECT_EQ(a0, ToVector(b.Next()));
  EXPECT_NE(a0, ToVector(c.Next()));
  EXPECT_NE(a0, ToVector(a.Next()));  // epoch 1 has a new permutation
}

TEST(EpochBatcherTest, PositionsAreUniformOverEpochs) {
  // Where index 0 lands in each epoch's permutation: uniform over 8 positions.
  EpochBatcher b = *EpochBatcher::Create(8, {.batch_size = 8}, nn::Rng(11));
  std::vector<int> counts(8, 0);
  constexpr int kEpochs = 16000;
  for (int e = 0; e < kEpochs; ++e) {
    absl::Span<const int64_t> batch = b.Next();
    ++counts[std::find(batch.begin(), batch.end(), 0) - batch.begin()];
  }
  double chi2 = 0;
  for (int c : counts) chi2 += (c - kEpochs / 8.0) * (c - kEpochs / 8.0) / (kEpochs / 8.0);
  EXPECT_LT(chi2, 26.0);  // P(chi2_7 > 26) ~ 5e-4
}

TEST(EpochBatcherTest, StateRestoresExactly) {
  for (LastBatch last : {LastBatch::kPartial, LastBatch::kDrop}) {
    for (int before : {0, 3, 4, 7, 8}) {  // mid-epoch and exactly at epoch ends
      EpochBatcher a = *EpochBatcher::Create(11, {.batch_size = 3, .last_batch = last}, nn::Rng(42));
      for (int k = 0; k < before; ++k) a.Next();
      const EpochBatcher::State state = a.GetState();
      std::vector<std::vector<int64_t>> expected;
      for (int k = 0; k < 20; ++k) expected.push_back(ToVector(a.Next()));

      EpochBatcher b = *EpochBatcher::Create(11, {.batch_size = 3, .last_batch = last}, nn::Rng(999));
      b.Next();
      ASSERT_TRUE(b.SetState(state).ok());
      EXPECT_EQ(b.epoch(), state.epoch);
      EXPECT_EQ(b.position(), state.position);
      for (int k = 0; k < 20; ++k) ASSERT_EQ(ToVector(b.Next()), expected[k]) << "before " << before << " k " << k;
    }
  }
}

TEST(EpochBatcherTest, InvalidArguments) {
  EXPECT_EQ(EpochBatcher::Create(0, {}, nn::Rng(1)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EpochBatcher::Create(10, {.batch_size = 0}, nn::Rng(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status drop = EpochBatcher::Create(10, {.batch_size = 11, .last_batch = LastBatch::kDrop}, nn::Rng(1)).status();
  EXPECT_EQ(drop.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(drop.message().find("exceeds num_examples 10"), std::string::npos) << drop;
  // A batch larger than the set is fine with kPartial: one batch of everything.
  EpochBatcher whole = *EpochBatcher::Create(4, {.batch_size = 11}, nn::Rng(1));
  EXPECT_EQ(whole.Next().size(), 4u);
  EpochBatcher b = *EpochBatcher::Create(10, {.batch_size = 2}, nn::Rng(1));
  EXPECT_EQ(b.SetState({.epoch = 0, .position = 11}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(b.SetState({.epoch = -1, .position = 0}).code(), absl::StatusCode::kInvalidArgument);
}

TEST(RandomBatcherTest, UniformWithReplacement) {
  RandomBatcher b = *RandomBatcher::Create(10, 8, nn::Rng(3));
  EXPECT_EQ(b.batch_size(), 8);
  std::vector<int> counts(10, 0);
  bool any_duplicate = false;
  constexpr int kBatches = 5000;
  for (int k = 0; k < kBatches; ++k) {
    std::vector<int64_t> batch = ToVector(b.Next());
    ASSERT_EQ(batch.size(), 8u);
    for (int64_t i : batch) {
      ASSERT_GE(i, 0);
      ASSERT_LT(i, 10);
      ++counts[i];
    }
    std::sort(batch.begin(), batch.end());
    any_duplicate = any_duplicate || std::adjacent_find(batch.begin(), batch.end()) != batch.end();
  }
  EXPECT_TRUE(any_duplicate);  // 8 of 10 without a repeat has probability 0.018 per batch
  EXPECT_EQ(b.step(), kBatches);
  const double expected = kBatches * 8 / 10.0;
  double chi2 = 0;
  for (int c : counts) chi2 += (c - expected) * (c - expected) / expected;
  EXPECT_LT(chi2, 30.0);  // P(chi2_9 > 30) ~ 4e-4
}

TEST(RandomBatcherTest, StateRestoresExactly) {
  RandomBatcher a = *RandomBatcher::Create(1000, 16, nn::Rng(8));
  for (int k = 0; k < 5; ++k) a.Next();
  const RandomBatcher::State state = a.GetState();
  const std::vector<int64_t> next = ToVector(a.Next());
  RandomBatcher b = *RandomBatcher::Create(1000, 16, nn::Rng(1));
  ASSERT_TRUE(b.SetState(state).ok());
  EXPECT_EQ(b.step(), 5);
  EXPECT_EQ(ToVector(b.Next()), next);
  EXPECT_EQ(b.SetState({.step = -2}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RandomBatcher::Create(0, 4, nn::Rng(1)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RandomBatcher::Create(4, 0, nn::Rng(1)).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace otgen::data
