#include "nn/checkpoint.h"

#include <dirent.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/autograd.h"
#include "nn/layers.h"
#include "nn/ops.h"
#include "nn/random.h"
#include "nn/tensor.h"
#include "optim/adam.h"
#include "optim/sgd.h"

namespace otgen::nn {
namespace {

namespace L = layers;
using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

bool BitIdentical(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), sizeof(float) * a.numel()) == 0;
}

std::unique_ptr<L::Sequential> MakeNet(uint64_t seed, int64_t hidden = 8) {
  Rng rng(seed);
  auto net = std::make_unique<L::Sequential>();
  net->Emplace<L::Linear>(3, hidden, rng);
  net->Emplace<L::BatchNorm1d>(hidden);
  net->Emplace<L::Tanh>();
  net->Emplace<L::Linear>(hidden, 1, rng);
  return net;
}

TEST(Crc32cTest, KnownVectorsAndPortableAgree) {
  EXPECT_EQ(internal::Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(internal::Crc32cPortable("123456789"), 0xE3069283u);
  EXPECT_EQ(internal::Crc32c(""), 0u);
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(i * 7 + 3));
  EXPECT_EQ(internal::Crc32c(data), internal::Crc32cPortable(data));
  // Extending equals computing at once.
  EXPECT_EQ(internal::Crc32c(data.substr(100), internal::Crc32c(data.substr(0, 100))), internal::Crc32c(data));
}

TEST(CheckpointTest, RoundTrip) {
  CheckpointProto ckpt;
  ckpt.set_step(1234);
  Rng rng(5);
  const Tensor a = Tensor::Normal({3, 4}, 0, 1, rng);
  const Tensor scalar = Tensor::Scalar(2.5f);
  const Tensor empty = Tensor::Zeros({0, 3});
  AddTensor("a", a, &ckpt);
  AddTensor("s", scalar, &ckpt);
  AddTensor("e", empty, &ckpt);
  rng.Normal();  // leaves a cached second normal
  SaveRng(rng, "data", &ckpt);
  (*ckpt.mutable_metadata())["config"] = "lr: 0.001";
  const std::string path = TempPath("roundtrip.ckpt");
  ASSERT_TRUE(WriteCheckpoint(path, ckpt).ok());
  absl::StatusOr<CheckpointProto> read = ReadCheckpoint(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->step(), 1234);
  EXPECT_EQ(read->metadata().at("config"), "lr: 0.001");
  absl::StatusOr<Tensor> a2 = FindTensor(*read, "a");
  ASSERT_TRUE(a2.ok());
  EXPECT_TRUE(BitIdentical(a, *a2));
  EXPECT_EQ(FindTensor(*read, "s")->shape(), Shape{});
  EXPECT_FLOAT_EQ(FindTensor(*read, "s")->item(), 2.5f);
  EXPECT_EQ(FindTensor(*read, "e")->shape(), (Shape{0, 3}));
  EXPECT_EQ(FindTensor(*read, "missing").status().code(), absl::StatusCode::kNotFound);
  Rng restored(999);
  ASSERT_TRUE(LoadRng(*read, "data", restored).ok());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(restored.Normal(), rng.Normal());
  EXPECT_EQ(restored.NextU64(), rng.NextU64());
  // No temporary file is left behind.
  EXPECT_EQ(access(path.c_str(), F_OK), 0);
  DIR* dir = opendir(TempPath("").c_str());
  ASSERT_NE(dir, nullptr);
  while (dirent* entry = readdir(dir)) EXPECT_EQ(std::string(entry->d_name).find(".tmp."), std::string::npos);
  closedir(dir);
  // Writing again replaces the file atomically.
  ckpt.set_step(1235);
  ASSERT_TRUE(WriteCheckpoint(path, ckpt).ok());
  EXPECT_EQ(ReadCheckpoint(path)->step(), 1235);
}

TEST(CheckpointTest, MissingFileIsNotFound) {
  absl::StatusOr<CheckpointProto> r = ReadCheckpoint(TempPath("does_not_exist.ckpt"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(WriteCheckpoint(TempPath("no_such_dir/x.ckpt"), CheckpointProto()).code(), absl::StatusCode::kNotFound);
}

TEST(CheckpointTest, TruncationAndBitFlipsAreDataLoss) {
  CheckpointProto ckpt;
  ckpt.set_step(7);
  Rng rng(6);
  AddTensor("w", Tensor::Normal({16}, 0, 1, rng), &ckpt);
  SaveRng(rng, "r", &ckpt);
  const std::string path = TempPath("corrupt.ckpt");
  ASSERT_TRUE(WriteCheckpoint(path, ckpt).ok());
  const std::string good = ReadFile(path);
  ASSERT_GT(good.size(), 24u);
  const std::string bad_path = TempPath("corrupt_copy.ckpt");
  // Every truncation.
  for (size_t len = 0; len < good.size(); ++len) {
    WriteFile(bad_path, good.substr(0, len));
    absl::StatusOr<CheckpointProto> r = ReadCheckpoint(bad_path);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << "truncated to " << len;
  }
  WriteFile(bad_path, good.substr(0, good.size() - 3));
  EXPECT_THAT(std::string(ReadCheckpoint(bad_path).status().message()), HasSubstr("truncated"));
  // A flipped bit in every byte.
  for (size_t i = 0; i < good.size(); ++i) {
    for (int bit : {0, 5}) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      WriteFile(bad_path, bad);
      EXPECT_EQ(ReadCheckpoint(bad_path).status().code(), absl::StatusCode::kDataLoss) << "byte " << i;
    }
  }
  // Trailing garbage.
  WriteFile(bad_path, good + "x");
  EXPECT_EQ(ReadCheckpoint(bad_path).status().code(), absl::StatusCode::kDataLoss);
  // Not a checkpoint at all.
  WriteFile(bad_path, "hello, world; this is not a checkpoint file");
  EXPECT_THAT(std::string(ReadCheckpoint(bad_path).status().message()), HasSubstr("not an otgen checkpoint"));
}

TEST(CheckpointTest, ModuleRoundTripIncludesBuffers) {
  auto net = MakeNet(1);
  // Move the batch-norm running statistics away from their initial values.
  Rng rng(2);
  ASSERT_TRUE(net->Forward(Var::Constant(Tensor::Normal({10, 3}, 1, 2, rng))).ok());
  CheckpointProto ckpt;
  SaveModule(*net, "critic", &ckpt);
  std::vector<std::string> names;
  for (const TensorProto& t : ckpt.tensors()) names.push_back(t.name());
  EXPECT_EQ(names, (std::vector<std::string>{"critic/0.weight", "critic/0.bias", "critic/1.weight", "critic/1.bias",
                                             "critic/3.weight", "critic/3.bias", "critic/1.running_mean",
                                             "critic/1.running_var"}));
  auto other = MakeNet(99);
  ASSERT_TRUE(LoadModule(ckpt, "critic", *other).ok());
  const auto a = net->NamedParameters();
  const auto b = other->NamedParameters();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(BitIdentical(a[i].second.value(), b[i].second.value()));
  const auto ba = net->NamedBuffers();
  const auto bb = other->NamedBuffers();
  for (size_t i = 0; i < ba.size(); ++i) EXPECT_TRUE(BitIdentical(ba[i].second, bb[i].second)) << ba[i].first;
}

TEST(CheckpointTest, ModuleMismatchMessages) {
  auto net = MakeNet(1);
  CheckpointProto ckpt;
  SaveModule(*net, "critic", &ckpt);

  auto wider = MakeNet(1, /*hidden=*/9);
  absl::Status s = LoadModule(ckpt, "critic", *wider);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "checkpoint: tensor critic/0.weight has shape [8, 3], module expects [9, 3]");

  CheckpointProto missing = ckpt;
  missing.mutable_tensors()->erase(missing.mutable_tensors()->begin() + 3);  // critic/1.bias
  s = LoadModule(missing, "critic", *net);
  EXPECT_THAT(std::string(s.message()), HasSubstr("missing tensor critic/1.bias"));

  CheckpointProto extra = ckpt;
  AddTensor("critic/4.weight", Tensor::Zeros({2}), &extra);
  s = LoadModule(extra, "critic", *net);
  EXPECT_THAT(std::string(s.message()), HasSubstr("unexpected tensor critic/4.weight"));

  s = LoadModule(ckpt, "generator", *net);
  EXPECT_THAT(std::string(s.message()), HasSubstr("missing tensor generator/0.weight"));

  // A failed load changes nothing.
  auto fresh = MakeNet(5, 9);
  const Tensor before = fresh->Parameters()[1].value().Clone();
  EXPECT_FALSE(LoadModule(ckpt, "critic", *fresh).ok());
  EXPECT_TRUE(BitIdentical(before, fresh->Parameters()[1].value()));
}

// ---- Resuming a training run ---------------------------------------------------------------

// A small regression run: an MLP with batch norm fits y = sin(x0) + x1 x2 + noise from a seeded
// data stream, with Adam.
class RegressionRun {
 public:
  explicit RegressionRun(uint64_t init_seed) : net_(MakeNet(init_seed)), data_(77) {
    adam_ = std::make_unique<optim::Adam>(net_->Parameters(), optim::AdamOptions{.lr = 0.01f, .beta1 = 0.5f});
  }

  void Step() {
    Tensor x = Tensor::Normal({16, 3}, 0, 1, data_);
    Tensor y = Tensor::Empty({16, 1});
    for (int i = 0; i < 16; ++i) {
      y.data()[i] = std::sin(x.at({i, 0})) + x.at({i, 1}) * x.at({i, 2}) + 0.1f * data_.Normal();
    }
    data_.Normal();  // an odd number of normals per step: the cached normal matters
    adam_->ZeroGrad();
    Var loss = MeanAll(Square(Sub(net_->Forward(Var::Constant(x)).value(), Var::Constant(y))));
    Backward(loss);
    adam_->Step();
    ++step_;
  }

  TrainingState State() {
    return TrainingState{.step = step_,
                         .modules = {{"net", net_.get()}},
                         .optimizers = {{"net", adam_.get()}},
                         .rngs = {{"data", &data_}},
                         .metadata = {{"note", "regression"}}};
  }
  void set_step(int64_t step) { step_ = step; }
  int64_t step() const { return step_; }
  L::Sequential& net() { return *net_; }
  Rng& data() { return data_; }

 private:
  std::unique_ptr<L::Sequential> net_;
  Rng data_;
  std::unique_ptr<optim::Adam> adam_;
  int64_t step_ = 0;
};

TEST(CheckpointTest, ResumedRunIsBitIdentical) {
  RegressionRun straight(1);
  for (int i = 0; i < 20; ++i) straight.Step();

  const std::string path = TempPath("resume.ckpt");
  {
    RegressionRun first_half(1);
    for (int i = 0; i < 10; ++i) first_half.Step();
    ASSERT_TRUE(SaveTrainingState(path, first_half.State()).ok());
  }
  // A new process: different initialization, fresh optimizer and data stream.
  RegressionRun resumed(12345);
  TrainingState state = resumed.State();
  ASSERT_TRUE(RestoreTrainingState(path, state).ok());
  EXPECT_EQ(state.step, 10);
  EXPECT_EQ(state.metadata.at("note"), "regression");
  resumed.set_step(state.step);
  for (int i = 10; i < 20; ++i) resumed.Step();

  const auto a = straight.net().NamedParameters();
  const auto b = resumed.net().NamedParameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(BitIdentical(a[i].second.value(), b[i].second.value())) << a[i].first;
  const auto ba = straight.net().NamedBuffers();
  const auto bb = resumed.net().NamedBuffers();
  for (size_t i = 0; i < ba.size(); ++i) EXPECT_TRUE(BitIdentical(ba[i].second, bb[i].second)) << ba[i].first;

  // Without restoring the optimizer state the run diverges (the test can fail).
  RegressionRun partial(12345);
  CheckpointProto ckpt = ReadCheckpoint(path).value();
  ASSERT_TRUE(LoadModule(ckpt, "net", partial.net()).ok());
  ASSERT_TRUE(LoadRng(ckpt, "data", partial.data()).ok());
  for (int i = 10; i < 20; ++i) partial.Step();
  EXPECT_FALSE(BitIdentical(a[0].second.value(), partial.net().NamedParameters()[0].second.value()));
}

TEST(CheckpointTest, RestoreChecksEverythingBeforeChangingAnything) {
  RegressionRun run(1);
  for (int i = 0; i < 3; ++i) run.Step();
  const std::string path = TempPath("restore_checks.ckpt");
  ASSERT_TRUE(SaveTrainingState(path, run.State()).ok());

  // The optimizer of the target run is an Sgd: the import fails, and the module (checked and
  // loadable) must not have been touched either.
  auto net = MakeNet(3);
  optim::Sgd sgd(net->Parameters(), {.lr = 0.1f});
  Rng data(0);
  TrainingState target{.modules = {{"net", net.get()}}, .optimizers = {{"net", &sgd}}, .rngs = {{"data", &data}}};
  const Tensor before = net->Parameters()[0].value().Clone();
  absl::Status s = RestoreTrainingState(path, target);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("expected type Sgd, got Adam"));
  EXPECT_TRUE(BitIdentical(before, net->Parameters()[0].value()));

  // A run that lacks a component of the checkpoint.
  RegressionRun other(2);
  TrainingState no_rng = other.State();
  no_rng.rngs.clear();
  s = RestoreTrainingState(path, no_rng);
  EXPECT_THAT(std::string(s.message()), HasSubstr("holds 1 RNG states, the run has 0"));

  // Free tensors round-trip and are checked.
  Tensor psi = Tensor::FromVector({3}, {1, 2, 3});
  TrainingState with_tensor{.step = 5, .tensors = {{"psi", &psi}}};
  ASSERT_TRUE(SaveTrainingState(path, with_tensor).ok());
  psi.Fill(0.0f);
  Tensor wrong = Tensor::Zeros({4});
  TrainingState wrong_state{.tensors = {{"psi", &wrong}}};
  s = RestoreTrainingState(path, wrong_state);
  EXPECT_THAT(std::string(s.message()), HasSubstr("tensor psi has shape [3], expected [4]"));
  ASSERT_TRUE(RestoreTrainingState(path, with_tensor).ok());
  EXPECT_EQ(psi.at({2}), 3.0f);
  EXPECT_EQ(with_tensor.step, 5);
}

}  // namespace
}  // namespace otgen::nn

namespace otgen::nn {
namespace {

TEST(CheckpointTest, TensorMapsRoundTripWithTheirOwnNamesAndShapes) {
  const std::string path = TempPath("tensor_maps.ckpt");
  std::map<std::string, Tensor> solver = {{"psi", Tensor::FromVector({3}, {1, 2, 3})},
                                          {"optimizer.0.averaged", Tensor::FromVector({3}, {4, 5, 6})}};
  Tensor free = Tensor::FromVector({1}, {7});
  TrainingState saved;
  saved.step = 5;
  saved.tensors.emplace_back("free", &free);
  saved.tensor_maps.emplace_back("solver", &solver);
  ASSERT_TRUE(SaveTrainingState(path, saved).ok());

  // The restoring run's map starts empty (its solver has not stepped yet) or stale.
  std::map<std::string, Tensor> restored = {{"stale", Tensor::Zeros({2})}};
  Tensor free2 = Tensor::Zeros({1});
  TrainingState state;
  state.tensors.emplace_back("free", &free2);
  state.tensor_maps.emplace_back("solver", &restored);
  ASSERT_TRUE(RestoreTrainingState(path, state).ok());
  ASSERT_EQ(restored.size(), 2u);
  EXPECT_EQ(restored.at("psi").shape(), Shape{3});
  EXPECT_EQ(restored.at("optimizer.0.averaged").at({2}), 6.0f);
  EXPECT_EQ(free2.at({0}), 7.0f);

  // A run without the map does not silently ignore the map's tensors.
  TrainingState without;
  without.tensors.emplace_back("free", &free2);
  const absl::Status s = RestoreTrainingState(path, without);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("solver/"), std::string::npos) << s;
}

}  // namespace
}  // namespace otgen::nn
