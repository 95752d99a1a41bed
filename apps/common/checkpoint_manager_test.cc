#include "apps/common/checkpoint_manager.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "nn/tensor.h"

namespace otgen::apps {
namespace {

std::string FreshDir(const std::string& name) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp") + "/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

TEST(CheckpointManagerTest, SavesKeepsNewestAndRestores) {
  const std::string dir = FreshDir("ckpts");
  CheckpointManager manager(dir, /*keep=*/2);
  nn::Tensor psi = nn::Tensor::Zeros({3});
  nn::Rng rng(5);
  nn::TrainingState state;
  state.tensors = {{"psi", &psi}};
  state.rngs = {{"data", &rng}};
  for (int64_t step : {10, 20, 30}) {
    state.step = step;
    psi.Fill(static_cast<float>(step));
    ASSERT_TRUE(manager.Save(state).ok());
  }
  EXPECT_EQ(*manager.ListSteps(), (std::vector<int64_t>{20, 30}));
  const uint64_t next = rng.NextU64();

  nn::Tensor restored = nn::Tensor::Zeros({3});
  nn::Rng other(99);
  nn::TrainingState target;
  target.tensors = {{"psi", &restored}};
  target.rngs = {{"data", &other}};
  absl::StatusOr<bool> found = manager.RestoreNewest(target);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_TRUE(*found);
  EXPECT_EQ(target.step, 30);
  EXPECT_EQ(restored.at({1}), 30.0f);
  EXPECT_EQ(other.NextU64(), next);
}

TEST(CheckpointManagerTest, EmptyDirectoryHasNothingToRestore) {
  CheckpointManager manager(FreshDir("empty"), 3);
  nn::TrainingState state;
  absl::StatusOr<bool> found = manager.RestoreNewest(state);
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(*found);
  CheckpointManager missing(FreshDir("x") + "/does/not/exist", 3);
  EXPECT_TRUE(missing.ListSteps()->empty());
}

TEST(CheckpointManagerTest, CorruptNewestIsAnErrorNamingTheFile) {
  const std::string dir = FreshDir("corrupt");
  CheckpointManager manager(dir, 0);
  nn::Tensor t = nn::Tensor::Ones({4});
  nn::TrainingState state;
  state.tensors = {{"t", &t}};
  state.step = 1;
  ASSERT_TRUE(manager.Save(state).ok());
  std::ofstream(manager.PathFor(2)) << "garbage";
  absl::StatusOr<bool> found = manager.RestoreNewest(state);
  EXPECT_FALSE(found.ok());
  EXPECT_NE(found.status().message().find("ckpt-2.pb"), std::string::npos) << found.status();
}

}  // namespace
}  // namespace otgen::apps
