// Tests of the Optimizer base: state export / import (checkpoints) and its checks.
#include "optim/optimizer.h"

#include <cmath>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "nn/autograd.h"
#include "optim/adam.h"
#include "optim/asgd.h"
#include "optim/sgd.h"

namespace otgen::optim {
namespace {

using nn::Tensor;
using nn::Var;

std::vector<Var> MakeParams() {
  return {Var::Parameter(Tensor::FromVector({2, 2}, {1.0f, -2.0f, 0.5f, 3.0f})),
          Var::Parameter(Tensor::FromVector({3}, {0.1f, 0.2f, -0.3f}))};
}

// A deterministic gradient depending on the current value: g = sin(3 p) + 0.1 * step.
void SetGradients(std::vector<Var>& params, int step) {
  for (Var& p : params) {
    Tensor g = Tensor::Empty(p.shape());
    for (int64_t i = 0; i < g.numel(); ++i) g.data()[i] = std::sin(3.0f * p.value().data()[i]) + 0.1f * step;
    p.set_grad(g);
  }
}

std::unique_ptr<Optimizer> Make(const std::string& kind, std::vector<Var> params) {
  if (kind == "Sgd") return std::make_unique<Sgd>(params, SgdOptions{.lr = 0.1f, .momentum = 0.9f, .dampening = 0.2f});
  if (kind == "Adam") return std::make_unique<Adam>(params, AdamOptions{.lr = 0.05f, .amsgrad = true});
  return std::make_unique<Asgd>(params, AsgdOptions{.gamma = 0.3f, .alpha = 0.6f});
}

class StateTest : public testing::TestWithParam<std::string> {};

TEST_P(StateTest, ExportImportResumesBitIdentically) {
  std::vector<Var> a = MakeParams();
  std::unique_ptr<Optimizer> opt_a = Make(GetParam(), a);
  for (int k = 0; k < 3; ++k) {
    SetGradients(a, k);
    opt_a->Step();
  }
  const OptimizerState state = opt_a->ExportState();
  EXPECT_EQ(state.type, GetParam());
  // A second optimizer over copies of the parameters, restored from the state.
  std::vector<Var> b = {Var::Parameter(a[0].value().Clone()), Var::Parameter(a[1].value().Clone())};
  std::unique_ptr<Optimizer> opt_b = Make(GetParam(), b);
  ASSERT_TRUE(opt_b->ImportState(state).ok());
  EXPECT_EQ(opt_b->step_count(0), 3);
  for (int k = 3; k < 6; ++k) {
    SetGradients(a, k);
    SetGradients(b, k);
    opt_a->Step();
    opt_b->Step();
  }
  for (int j = 0; j < 2; ++j) {
    for (int64_t i = 0; i < a[j].numel(); ++i) {
      EXPECT_EQ(a[j].value().data()[i], b[j].value().data()[i]) << "parameter " << j << " element " << i;
    }
  }
}

TEST_P(StateTest, ExportedStateIsADeepCopy) {
  std::vector<Var> a = MakeParams();
  std::unique_ptr<Optimizer> opt = Make(GetParam(), a);
  SetGradients(a, 0);
  opt->Step();
  const OptimizerState state = opt->ExportState();
  ASSERT_FALSE(state.tensors.empty());
  const float before = state.tensors[0].second.data()[0];
  SetGradients(a, 1);
  opt->Step();
  EXPECT_EQ(state.tensors[0].second.data()[0], before);
}

INSTANTIATE_TEST_SUITE_P(Optimizers, StateTest, testing::Values("Sgd", "Adam", "Asgd"));

TEST(OptimizerStateTest, ImportRejectsMismatches) {
  std::vector<Var> a = MakeParams();
  Adam adam(a, {});
  SetGradients(a, 0);
  adam.Step();
  const OptimizerState good = adam.ExportState();

  Sgd sgd(MakeParams(), {.momentum = 0.5f});
  absl::Status s = sgd.ImportState(good);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("expected type Sgd, got Adam"), std::string::npos) << s;

  OptimizerState wrong_shape = good;
  wrong_shape.tensors[0].second = Tensor::Zeros({4});
  s = adam.ImportState(wrong_shape);
  EXPECT_NE(s.message().find("0.exp_avg has shape [4], parameter 0 has shape [2, 2]"), std::string::npos) << s;

  OptimizerState missing = good;
  missing.tensors.erase(missing.tensors.begin() + 1);
  s = adam.ImportState(missing);
  EXPECT_NE(s.message().find("missing tensor 0.exp_avg_sq"), std::string::npos) << s;

  OptimizerState extra = good;
  extra.tensors.emplace_back("7.exp_avg", Tensor::Zeros({1}));
  s = adam.ImportState(extra);
  EXPECT_NE(s.message().find("unexpected tensor 7.exp_avg"), std::string::npos) << s;

  OptimizerState no_counter = good;
  no_counter.counters.pop_back();
  s = adam.ImportState(no_counter);
  EXPECT_NE(s.message().find("missing counter 1.step"), std::string::npos) << s;

  // A failed import leaves the optimizer unchanged.
  EXPECT_EQ(adam.step_count(0), 1);
  ASSERT_TRUE(adam.exp_avg(0).defined());
}

TEST(OptimizerTest, ZeroGradDropsGradients) {
  std::vector<Var> a = MakeParams();
  Sgd sgd(a, {});
  SetGradients(a, 0);
  sgd.ZeroGrad();
  EXPECT_FALSE(a[0].grad().defined());
  EXPECT_FALSE(a[1].grad().defined());
  const float before = a[0].value().data()[0];
  sgd.Step();  // nothing to do
  EXPECT_EQ(a[0].value().data()[0], before);
  EXPECT_EQ(sgd.step_count(0), 0);
}

}  // namespace
}  // namespace otgen::optim
