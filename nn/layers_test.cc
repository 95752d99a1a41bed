#include "nn/layers.h"

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/autograd.h"
#include "nn/gradcheck.h"
#include "nn/module.h"
#include "nn/ops.h"
#include "nn/random.h"
#include "nn/tensor.h"
#include "nn/tensor_math.h"

namespace otgen::nn {
namespace {

namespace L = layers;

using ::testing::HasSubstr;

std::vector<std::string> Names(const std::vector<std::pair<std::string, Var>>& named) {
  std::vector<std::string> names;
  for (const auto& [n, v] : named) names.push_back(n);
  return names;
}

struct Moments {
  double mean = 0, stddev = 0, min = 1e30, max = -1e30;
};

Moments MomentsOf(const Tensor& t) {
  Moments m;
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) {
    m.mean += t.data()[i];
    m.min = std::min<double>(m.min, t.data()[i]);
    m.max = std::max<double>(m.max, t.data()[i]);
  }
  m.mean /= n;
  for (int64_t i = 0; i < n; ++i) m.stddev += (t.data()[i] - m.mean) * (t.data()[i] - m.mean);
  m.stddev = std::sqrt(m.stddev / n);
  return m;
}

// ---- Shapes and values ---------------------------------------------------------------------

TEST(LinearTest, ComputesAffineMapAndHasSixteenParameters) {
  Rng rng(1);
  L::Linear linear(3, 4, rng);
  EXPECT_EQ(linear.NumParameters(), 16);
  EXPECT_EQ(Names(linear.NamedParameters()), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(linear.weight().shape(), (Shape{4, 3}));
  Tensor x = Tensor::Normal({5, 3}, 0, 1, rng);
  absl::StatusOr<Var> y = linear.Forward(Var::Constant(x));
  ASSERT_TRUE(y.ok()) << y.status();
  ASSERT_EQ(y->shape(), (Shape{5, 4}));
  for (int n = 0; n < 5; ++n) {
    for (int o = 0; o < 4; ++o) {
      double e = linear.bias().value().at({o});
      for (int i = 0; i < 3; ++i) e += static_cast<double>(x.at({n, i})) * linear.weight().value().at({o, i});
      EXPECT_NEAR(y->value().at({n, o}), e, 1e-5);
    }
  }
  L::Linear no_bias(3, 4, rng, /*bias=*/false);
  EXPECT_EQ(no_bias.NumParameters(), 12);
  EXPECT_FALSE(no_bias.bias().defined());
}

TEST(LayersTest, OutputShapes) {
  Rng rng(2);
  struct Case {
    std::unique_ptr<Module> module;
    Shape input, output;
  };
  std::vector<Case> cases;
  cases.push_back({std::make_unique<L::Conv2d>(1, 4, 3, 2, 1, rng), {2, 1, 8, 8}, {2, 4, 4, 4}});
  cases.push_back({std::make_unique<L::Conv2d>(1, 64, 5, 2, 2, rng), {3, 1, 28, 28}, {3, 64, 14, 14}});
  cases.push_back({std::make_unique<L::ConvTranspose2d>(256, 128, 5, 2, 2, 0, rng), {2, 256, 4, 4}, {2, 128, 7, 7}});
  cases.push_back({std::make_unique<L::ConvTranspose2d>(128, 64, 5, 2, 2, 1, rng), {2, 128, 7, 7}, {2, 64, 14, 14}});
  cases.push_back({std::make_unique<L::ConvTranspose2d>(256, 128, 4, 2, 1, 0, rng), {2, 256, 7, 7}, {2, 128, 14, 14}});
  cases.push_back({std::make_unique<L::BatchNorm1d>(6), {4, 6}, {4, 6}});
  cases.push_back({std::make_unique<L::BatchNorm1d>(6), {4, 6, 3}, {4, 6, 3}});
  cases.push_back({std::make_unique<L::BatchNorm2d>(3), {2, 3, 5, 5}, {2, 3, 5, 5}});
  cases.push_back({std::make_unique<L::LayerNorm>(Shape{5}), {4, 5}, {4, 5}});
  cases.push_back({std::make_unique<L::LayerNorm>(Shape{3, 2, 2}), {4, 3, 2, 2}, {4, 3, 2, 2}});
  cases.push_back({std::make_unique<L::GLU>(), {2, 6, 3}, {2, 3, 3}});
  cases.push_back({std::make_unique<L::CReLU>(), {2, 3, 4, 4}, {2, 6, 4, 4}});
  cases.push_back({std::make_unique<L::Upsample2x>(), {2, 3, 4, 5}, {2, 3, 8, 10}});
  cases.push_back({std::make_unique<L::Flatten>(), {2, 3, 4, 5}, {2, 60}});
  cases.push_back({std::make_unique<L::Reshape>(Shape{3, 4, 5}), {2, 60}, {2, 3, 4, 5}});
  cases.push_back({std::make_unique<L::Reshape>(Shape{-1, 2, 2}), {2, 3, 4}, {2, 3, 2, 2}});
  cases.push_back({std::make_unique<L::LeakyReLU>(0.2f), {2, 3}, {2, 3}});
  for (Case& c : cases) {
    SCOPED_TRACE(c.module->Describe());
    absl::StatusOr<Shape> predicted = c.module->OutputShape(c.input);
    ASSERT_TRUE(predicted.ok()) << predicted.status();
    EXPECT_EQ(*predicted, c.output);
    absl::StatusOr<Var> y = c.module->Forward(Var::Constant(Tensor::Normal(c.input, 0, 1, rng)));
    ASSERT_TRUE(y.ok()) << y.status();
    EXPECT_EQ(y->shape(), c.output);
  }
}

TEST(LayersTest, DcganMnistGeneratorProduces28x28) {
  // Linear(128, 4096)-BN-ReLU-(256x4x4)-ConvT(256,128,5,2,2)-BN-ReLU-ConvT(128,64,5,2,2,op 1)-BN-ReLU
  // -ConvT(64,1,5,2,2,op 1)-Tanh: 4 -> 7 -> 14 -> 28 (Ho = (H - 1) 2 - 4 + 5 + op).
  Rng rng(3);
  L::Sequential g;
  g.Emplace<L::Linear>(128, 4096, rng);
  g.Emplace<L::BatchNorm1d>(4096);
  g.Emplace<L::ReLU>();
  g.Emplace<L::Reshape>(Shape{256, 4, 4});
  g.Emplace<L::ConvTranspose2d>(256, 128, 5, 2, 2, 0, rng);
  g.Emplace<L::BatchNorm2d>(128);
  g.Emplace<L::ReLU>();
  g.Emplace<L::ConvTranspose2d>(128, 64, 5, 2, 2, 1, rng);
  g.Emplace<L::BatchNorm2d>(64);
  g.Emplace<L::ReLU>();
  g.Emplace<L::ConvTranspose2d>(64, 1, 5, 2, 2, 1, rng);
  g.Emplace<L::Tanh>();
  absl::StatusOr<Shape> shape = g.OutputShape({64, 128});
  ASSERT_TRUE(shape.ok()) << shape.status();
  EXPECT_EQ(*shape, (Shape{64, 1, 28, 28}));
  absl::StatusOr<Var> y = g.Forward(Var::Constant(Tensor::Normal({8, 128}, 0, 1, rng)));
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), (Shape{8, 1, 28, 28}));
  const Moments m = MomentsOf(y->value());
  EXPECT_GE(m.min, -1.0);
  EXPECT_LE(m.max, 1.0);
}

TEST(LayersTest, GluAndCreluValues) {
  Tensor x = Tensor::FromVector({1, 4}, {1.0f, -2.0f, 0.5f, 3.0f});
  L::GLU glu;
  absl::StatusOr<Var> g = glu.Forward(Var::Constant(x));
  ASSERT_TRUE(g.ok());
  EXPECT_NEAR(g->value().at({0, 0}), 1.0 / (1.0 + std::exp(-0.5)), 1e-6);
  EXPECT_NEAR(g->value().at({0, 1}), -2.0 / (1.0 + std::exp(-3.0)), 1e-6);
  L::CReLU crelu;
  absl::StatusOr<Var> c = crelu.Forward(Var::Constant(x));
  ASSERT_TRUE(c.ok());
  const std::vector<float> expected = {1.0f, 0.0f, 0.5f, 3.0f, 0.0f, 2.0f, 0.0f, 0.0f};
  for (int i = 0; i < 8; ++i) EXPECT_FLOAT_EQ(c->value().at({0, i}), expected[i]);
}

TEST(LayersTest, Upsample2xIsNearestNeighbour) {
  Tensor x = Tensor::FromVector({1, 1, 2, 2}, {1, 2, 3, 4});
  L::Upsample2x up;
  absl::StatusOr<Var> y = up.Forward(Var::Constant(x));
  ASSERT_TRUE(y.ok());
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) EXPECT_EQ(y->value().at({0, 0, i, j}), x.at({0, 0, i / 2, j / 2}));
  }
}

// ---- Names, modes, gradients --------------------------------------------------------------

// A module holding a Sequential under the name "net", as a user-defined network would.
class Wrapper : public Module {
 public:
  explicit Wrapper(Rng& rng) : Module("Wrapper") {
    auto net = std::make_unique<L::Sequential>();
    net->Emplace<L::Linear>(3, 5, rng);
    net->Emplace<L::ReLU>();
    net->Emplace<L::BatchNorm1d>(5);
    net->Emplace<L::Linear>(5, 1, rng, /*bias=*/false);
    net_ = RegisterModule("net", std::move(net));
    scale_ = RegisterParameter("scale", Tensor::Ones({1}));
  }
  absl::StatusOr<Shape> OutputShape(const Shape& input) const override { return net_->OutputShape(input); }
  L::Sequential& net() { return *net_; }

 protected:
  Var ForwardImpl(const Var& x) override { return Mul(ForwardUnchecked(*net_, x), scale_); }

 private:
  L::Sequential* net_;
  Var scale_;
};

TEST(ModuleTest, NamesAreDottedAndRecursive) {
  Rng rng(4);
  Wrapper w(rng);
  EXPECT_EQ(Names(w.NamedParameters()),
            (std::vector<std::string>{"scale", "net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias",
                                      "net.3.weight"}));
  std::vector<std::string> buffers;
  for (const auto& [n, b] : w.NamedBuffers()) buffers.push_back(n);
  EXPECT_EQ(buffers, (std::vector<std::string>{"net.2.running_mean", "net.2.running_var"}));
  EXPECT_EQ(w.NumParameters(), 1 + 15 + 5 + 5 + 5 + 5);
  EXPECT_EQ(w.Parameters().size(), 6u);
  // Handles share storage with the module.
  Var p = w.Parameters()[1];
  p.mutable_value().data()[0] = 42.0f;
  EXPECT_EQ(w.NamedParameters()[1].second.value().data()[0], 42.0f);
}

TEST(ModuleTest, TrainEvalPropagatesToChildren) {
  Rng rng(5);
  Wrapper w(rng);
  EXPECT_TRUE(w.net().at(2).is_training());
  w.Eval();
  EXPECT_FALSE(w.is_training());
  EXPECT_FALSE(w.net().at(2).is_training());
  w.Train();
  EXPECT_TRUE(w.net().at(3).is_training());
}

TEST(ModuleTest, ZeroGradClearsAllGradients) {
  Rng rng(6);
  Wrapper w(rng);
  absl::StatusOr<Var> y = w.Forward(Var::Constant(Tensor::Normal({4, 3}, 0, 1, rng)));
  ASSERT_TRUE(y.ok());
  Backward(SumAll(*y));
  for (const Var& p : w.Parameters()) EXPECT_TRUE(p.grad().defined());
  w.ZeroGrad();
  for (const Var& p : w.Parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(ModuleTest, ForwardShapeErrorsNameBothShapes) {
  Rng rng(7);
  L::Linear linear(3, 4, rng);
  absl::StatusOr<Var> y = linear.Forward(Var::Constant(Tensor::Zeros({5, 2})));
  ASSERT_EQ(y.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(y.status().message(), "Linear(3, 4, bias=true): expected input of shape [N, 3], got [5, 2]");

  L::Conv2d conv(3, 8, 3, 1, 0, rng);
  absl::Status s = conv.Forward(Var::Constant(Tensor::Zeros({2, 1, 8, 8}))).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("expected input of shape [N, 3, H, W], got [2, 1, 8, 8]"));
  s = conv.Forward(Var::Constant(Tensor::Zeros({2, 3, 2, 2}))).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("got [2, 3, 2, 2]"));

  L::Sequential seq;
  seq.Emplace<L::Conv2d>(1, 4, 3, 2, 1, rng);
  seq.Emplace<L::Flatten>();
  seq.Emplace<L::Linear>(100, 1, rng);
  s = seq.Forward(Var::Constant(Tensor::Zeros({2, 1, 8, 8}))).status();
  EXPECT_EQ(s.message(), "Sequential[2]: Linear(100, 1, bias=true): expected input of shape [N, 100], got [2, 64]");

  L::BatchNorm1d bn(4);
  s = bn.Forward(Var::Constant(Tensor::Zeros({1, 4}))).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("more than one value per channel"));
  bn.Eval();
  EXPECT_TRUE(bn.Forward(Var::Constant(Tensor::Zeros({1, 4}))).ok());

  L::GLU glu;
  EXPECT_THAT(std::string(glu.Forward(Var::Constant(Tensor::Zeros({2, 3}))).status().message()),
              HasSubstr("got [2, 3]"));
  L::Reshape reshape(Shape{256, 4, 4});
  EXPECT_THAT(std::string(reshape.Forward(Var::Constant(Tensor::Zeros({2, 100}))).status().message()),
              HasSubstr("expected input of shape [N, ...] with [256, 4, 4] elements per sample, got [2, 100]"));
  L::LayerNorm ln(Shape{5});
  EXPECT_THAT(std::string(ln.Forward(Var::Constant(Tensor::Zeros({2, 4}))).status().message()),
              HasSubstr("expected input of shape [N, ..., 5], got [2, 4]"));
}

TEST(MlpTest, BuildsLayersAndValidatesSizes) {
  Rng rng(8);
  auto mlp = L::Mlp({2, 8, 8, 1}, L::ActivationKind::kLeakyRelu, L::ActivationKind::kTanh, rng, 0.1f);
  ASSERT_TRUE(mlp.ok()) << mlp.status();
  EXPECT_EQ((*mlp)->Describe(),
            "Sequential(Linear(2, 8, bias=true), LeakyReLU(0.1), Linear(8, 8, bias=true), LeakyReLU(0.1), "
            "Linear(8, 1, bias=true), Tanh)");
  EXPECT_EQ((*mlp)->NumParameters(), 2 * 8 + 8 + 8 * 8 + 8 + 8 + 1);
  auto none = L::Mlp({4, 3}, L::ActivationKind::kRelu, L::ActivationKind::kNone, rng);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ((*none)->size(), 1);
  EXPECT_EQ(L::Mlp({4}, L::ActivationKind::kRelu, L::ActivationKind::kNone, rng).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(L::Mlp({4, 0, 1}, L::ActivationKind::kRelu, L::ActivationKind::kNone, rng)
                              .status()
                              .message()),
              HasSubstr("sizes[1]"));
}

// ---- Initialization ---------------------------------------------------------------------

TEST(InitTest, PyTorchDefaultBounds) {
  Rng rng(9);
  struct Case {
    std::unique_ptr<Module> module;
    double fan_in;
  };
  std::vector<Case> cases;
  cases.push_back({std::make_unique<L::Linear>(400, 300, rng), 400});
  cases.push_back({std::make_unique<L::Conv2d>(16, 64, 5, 2, 2, rng), 16 * 25});
  // ConvTranspose2d: weight [in, out, k, k], PyTorch's fan_in is out * k * k.
  cases.push_back({std::make_unique<L::ConvTranspose2d>(256, 128, 5, 2, 2, 0, rng), 128 * 25});
  for (Case& c : cases) {
    SCOPED_TRACE(c.module->Describe());
    const double bound = 1.0 / std::sqrt(c.fan_in);
    for (const auto& [name, p] : c.module->NamedParameters()) {
      const Moments m = MomentsOf(p.value());
      EXPECT_GE(m.min, -bound) << name;
      EXPECT_LT(m.max, bound) << name;
      if (name == "weight") {
        // U(-b, b): std b / sqrt(3), and the extremes come close to +-b.
        EXPECT_NEAR(m.stddev, bound / std::sqrt(3.0), 0.02 * bound) << name;
        EXPECT_NEAR(m.mean, 0.0, 0.02 * bound) << name;
        EXPECT_GT(m.max, 0.99 * bound);
        EXPECT_LT(m.min, -0.99 * bound);
      }
    }
  }
  L::BatchNorm2d bn(8);
  EXPECT_EQ(MomentsOf(bn.weight().value()).min, 1.0);
  EXPECT_EQ(MomentsOf(bn.bias().value()).max, 0.0);
}

TEST(InitTest, SameSeedSameParameters) {
  Rng a(10), b(10);
  auto m1 = L::Mlp({3, 16, 2}, L::ActivationKind::kRelu, L::ActivationKind::kNone, a);
  auto m2 = L::Mlp({3, 16, 2}, L::ActivationKind::kRelu, L::ActivationKind::kNone, b);
  const auto p1 = (*m1)->Parameters();
  const auto p2 = (*m2)->Parameters();
  for (size_t i = 0; i < p1.size(); ++i) EXPECT_EQ(math::MaxAbsDiff(p1[i].value(), p2[i].value()), 0.0f);
}

TEST(InitTest, DcganStatistics) {
  Rng rng(11);
  L::Sequential net;
  net.Emplace<L::Linear>(128, 4096, rng);
  net.Emplace<L::BatchNorm1d>(4096);
  net.Emplace<L::Reshape>(Shape{256, 4, 4});
  net.Emplace<L::ConvTranspose2d>(256, 128, 5, 2, 2, 0, rng);
  net.Emplace<L::Conv2d>(128, 64, 5, 2, 2, rng);
  const Tensor linear_bias = dynamic_cast<L::Linear&>(net.at(0)).bias().value().Clone();
  L::InitDcgan(net, rng);
  for (const auto& [name, p] : net.NamedParameters()) {
    const Moments m = MomentsOf(p.value());
    if (name == "1.weight") {  // batch-norm gamma ~ N(1, 0.02^2)
      EXPECT_NEAR(m.mean, 1.0, 0.002) << name;
      EXPECT_NEAR(m.stddev, 0.02, 0.002) << name;
    } else if (name == "1.bias") {
      EXPECT_EQ(m.min, 0.0);
      EXPECT_EQ(m.max, 0.0);
    } else if (name.find("weight") != std::string::npos) {
      EXPECT_NEAR(m.mean, 0.0, 0.001) << name;
      EXPECT_NEAR(m.stddev, 0.02, 0.001) << name;
    }
  }
  // Biases keep their default initialization unless zero_bias is set.
  EXPECT_EQ(math::MaxAbsDiff(dynamic_cast<L::Linear&>(net.at(0)).bias().value(), linear_bias), 0.0f);
  L::InitDcgan(net, rng, {.zero_bias = true});
  EXPECT_EQ(MomentsOf(dynamic_cast<L::Linear&>(net.at(0)).bias().value()).max, 0.0);
}

// ---- Batch norm --------------------------------------------------------------------------------

TEST(BatchNormTest, TrainingUsesBatchStatisticsAndUpdatesRunningStats) {
  Rng rng(12);
  L::BatchNorm2d bn(3, {.momentum = 0.25f});
  Var gamma = bn.weight();
  gamma.mutable_value().CopyFrom(Tensor::FromVector({3}, {1.0f, 2.0f, 0.5f}));
  Var beta = bn.bias();
  beta.mutable_value().CopyFrom(Tensor::FromVector({3}, {0.0f, -1.0f, 3.0f}));
  Tensor x = Tensor::Normal({4, 3, 5, 5}, 2.0f, 3.0f, rng);
  absl::StatusOr<Var> y = bn.Forward(Var::Constant(x));
  ASSERT_TRUE(y.ok());
  const int64_t count = 4 * 25;
  for (int c = 0; c < 3; ++c) {
    double mean = 0, sq = 0, ymean = 0, ysq = 0;
    for (int n = 0; n < 4; ++n) {
      for (int i = 0; i < 5; ++i) {
        for (int j = 0; j < 5; ++j) {
          mean += x.at({n, c, i, j});
          ymean += y->value().at({n, c, i, j});
        }
      }
    }
    mean /= count;
    ymean /= count;
    for (int n = 0; n < 4; ++n) {
      for (int i = 0; i < 5; ++i) {
        for (int j = 0; j < 5; ++j) {
          sq += std::pow(x.at({n, c, i, j}) - mean, 2);
          ysq += std::pow(y->value().at({n, c, i, j}) - ymean, 2);
        }
      }
    }
    const double biased_var = sq / count, unbiased_var = sq / (count - 1);
    // Normalized with the batch statistics, then gamma, beta.
    EXPECT_NEAR(ymean, beta.value().at({c}), 1e-4);
    EXPECT_NEAR(std::sqrt(ysq / count), gamma.value().at({c}) * std::sqrt(biased_var / (biased_var + 1e-5)), 1e-3);
    // r <- 0.75 r + 0.25 stat with the unbiased variance.
    EXPECT_NEAR(bn.running_mean().at({c}), 0.25 * mean, 1e-4);
    EXPECT_NEAR(bn.running_var().at({c}), 0.75 + 0.25 * unbiased_var, 1e-3);
  }
}

// Sequential runs BatchNorm + ReLU as one fused pass without gradients
// (BatchNormBase::ForwardThenRelu): same outputs and running statistics as the layers one by
// one, and the recorded graph with gradients.
TEST(BatchNormTest, SequentialFusesBatchNormAndReluWithoutChangingResults) {
  for (const bool two_d : {false, true}) {
    Rng rng(13);
    L::Sequential net;
    if (two_d) {
      net.Emplace<L::BatchNorm2d>(4);
    } else {
      net.Emplace<L::BatchNorm1d>(4);
    }
    net.Emplace<L::ReLU>();
    net.Emplace<L::Tanh>();
    Rng init(3);
    L::InitDcgan(net, init);
    auto* bn = dynamic_cast<L::BatchNormBase*>(&net.at(0));
    ASSERT_NE(bn, nullptr);
    const Tensor x = two_d ? Tensor::Normal({5, 4, 3, 3}, 1.0f, 2.0f, rng) : Tensor::Normal({5, 4, 6}, 1.0f, 2.0f, rng);
    Tensor fused;
    {
      NoGradGuard no_grad;
      fused = net.Forward(Var::Constant(x)).value().value();
    }
    const Tensor fused_mean = bn->running_mean().Clone();
    bn->ResetRunningStats();
    // The layers one at a time, with gradients recorded.
    Var h = Var::Constant(x);
    for (int i = 0; i < net.size(); ++i) h = net.at(i).Forward(h).value();
    EXPECT_TRUE(h.requires_grad());
    EXPECT_EQ(math::MaxAbsDiff(fused, h.value()), 0.0f) << (two_d ? "2d" : "1d");
    EXPECT_EQ(math::MaxAbsDiff(fused_mean, bn->running_mean()), 0.0f);
    // With gradients through the Sequential: the same graph as the layers one at a time.
    bn->ResetRunningStats();
    const Var y = net.Forward(Var::Constant(x)).value();
    EXPECT_TRUE(y.requires_grad());
    EXPECT_EQ(math::MaxAbsDiff(y.value(), h.value()), 0.0f);
    const std::vector<Var> g_seq = Grad({SumAll(y)}, {bn->weight(), bn->bias()});
    const std::vector<Var> g_one = Grad({SumAll(h)}, {bn->weight(), bn->bias()});
    for (int k = 0; k < 2; ++k) EXPECT_EQ(math::MaxAbsDiff(g_seq[k].value(), g_one[k].value()), 0.0f);
  }
}

// Sequential runs Linear + ReLU / LeakyReLU (slope >= 0) as one LinearRelu op: same values and
// gradients as the layers one at a time. A negative slope, or a Linear without bias, is not fused.
TEST(SequentialTest, FusesLinearAndReluWithoutChangingResults) {
  struct Case {
    float slope;  // < 0: LeakyReLU with that slope; 0: ReLU
    bool bias;
    bool fused;
  };
  for (const Case& c : {Case{0.0f, true, true}, Case{0.2f, true, true}, Case{-0.3f, true, false},
                        Case{0.0f, false, false}}) {
    SCOPED_TRACE(absl::StrCat("slope ", c.slope, " bias ", c.bias));
    Rng rng(15);
    L::Sequential net;
    auto* linear = net.Emplace<L::Linear>(3, 4, rng, c.bias);
    if (c.slope == 0.0f) {
      net.Emplace<L::ReLU>();
    } else {
      net.Emplace<L::LeakyReLU>(c.slope);
    }
    net.Emplace<L::Linear>(4, 2, rng);
    const Tensor x = Tensor::Normal({7, 3}, 0.0f, 1.0f, rng);
    const Var y = net.Forward(Var::Constant(x)).value();
    Var h = Var::Constant(x);
    for (int i = 0; i < net.size(); ++i) h = net.at(i).Forward(h).value();
    EXPECT_LE(math::MaxAbsDiff(y.value(), h.value()), 1e-6f);
    // The second Linear's input is the fused op's output.
    const Node* last = y.grad_fn();
    ASSERT_NE(last, nullptr);
    EXPECT_EQ(std::string(last->inputs()[0].grad_fn()->name()) == "LinearRelu", c.fused);
    const std::vector<Var> g_seq = Grad({SumAll(y)}, {linear->weight()});
    const std::vector<Var> g_one = Grad({SumAll(h)}, {linear->weight()});
    EXPECT_LE(math::MaxAbsDiff(g_seq[0].value(), g_one[0].value()), 1e-6f);
  }
}

// ConvTranspose2d + BatchNorm2d + ReLU in a Sequential (the DCGAN generator's block): the
// convolution hands its output's statistics to the normalization. Same values, running
// statistics and gradients as the layers one at a time (up to the rounding of the statistics),
// with and without recorded gradients; in eval mode the statistics are not used at all.
TEST(BatchNormTest, SequentialPassesConvTransposeMomentsToBatchNorm) {
  Rng rng(14);
  L::Sequential net;
  auto* deconv = net.Emplace<L::ConvTranspose2d>(8, 32, 4, 2, 1, 0, rng);
  auto* bn = net.Emplace<L::BatchNorm2d>(32);
  net.Emplace<L::ReLU>();
  Rng init(4);
  L::InitDcgan(net, init);
  const Tensor x = Tensor::Normal({3, 8, 5, 5}, 0.0f, 1.0f, rng);
  Var h = Var::Constant(x);
  for (int i = 0; i < net.size(); ++i) h = net.at(i).Forward(h).value();
  const Tensor one_by_one_mean = bn->running_mean().Clone(), one_by_one_var = bn->running_var().Clone();
  bn->ResetRunningStats();
  const Var y = net.Forward(Var::Constant(x)).value();
  EXPECT_TRUE(y.requires_grad());
  EXPECT_LT(math::MaxAbsDiff(y.value(), h.value()), 1e-5f);
  EXPECT_LT(math::MaxAbsDiff(bn->running_mean(), one_by_one_mean), 1e-6f);
  EXPECT_LT(math::MaxAbsDiff(bn->running_var(), one_by_one_var), 1e-6f);
  const Var u = Var::Constant(Tensor::Normal(y.shape(), 0.0f, 1.0f, rng));
  const std::vector<Var> params = {deconv->weight(), deconv->bias(), bn->weight(), bn->bias()};
  const std::vector<Var> g_seq = Grad({SumAll(Mul(y, u))}, params);
  const std::vector<Var> g_one = Grad({SumAll(Mul(h, u))}, params);
  for (int k = 0; k < 4; ++k) {
    const float scale = math::MaxAbsDiff(g_one[k].value(), Tensor::Zeros(g_one[k].shape()));
    EXPECT_LT(math::MaxAbsDiff(g_seq[k].value(), g_one[k].value()), 1e-4f * (1 + scale)) << "parameter " << k;
  }
  {
    NoGradGuard no_grad;
    EXPECT_LT(math::MaxAbsDiff(net.Forward(Var::Constant(x)).value().value(), y.value()), 1e-5f);
  }
  net.Eval();
  Var e = Var::Constant(x);
  for (int i = 0; i < net.size(); ++i) e = net.at(i).Forward(e).value();
  EXPECT_EQ(math::MaxAbsDiff(net.Forward(Var::Constant(x)).value().value(), e.value()), 0.0f);
}

TEST(BatchNormTest, EvalUsesRunningStatistics) {
  Rng rng(13);
  L::BatchNorm1d bn(2);
  // Two training batches move the running statistics.
  for (int k = 0; k < 2; ++k) ASSERT_TRUE(bn.Forward(Var::Constant(Tensor::Normal({16, 2}, 1.0f, 2.0f, rng))).ok());
  const Tensor rm = bn.running_mean().Clone();
  const Tensor rv = bn.running_var().Clone();
  bn.Eval();
  Tensor x = Tensor::Normal({3, 2}, 0.0f, 1.0f, rng);
  absl::StatusOr<Var> y = bn.Forward(Var::Constant(x));
  ASSERT_TRUE(y.ok());
  for (int n = 0; n < 3; ++n) {
    for (int c = 0; c < 2; ++c) {
      const double expected = (x.at({n, c}) - rm.at({c})) / std::sqrt(rv.at({c}) + 1e-5);
      EXPECT_NEAR(y->value().at({n, c}), expected, 1e-5);
    }
  }
  // Eval does not touch the running statistics.
  EXPECT_EQ(math::MaxAbsDiff(bn.running_mean(), rm), 0.0f);
  EXPECT_EQ(math::MaxAbsDiff(bn.running_var(), rv), 0.0f);
  // A single sample per channel is fine in eval mode; the same input gives the same output.
  absl::StatusOr<Var> y1 = bn.Forward(Var::Constant(x.Rows(0, 1).Clone()));
  ASSERT_TRUE(y1.ok());
  EXPECT_FLOAT_EQ(y1->value().at({0, 1}), y->value().at({0, 1}));
}

TEST(BatchNormTest, Rank3InputSharesStatisticsOverLength) {
  Rng rng(14);
  L::BatchNorm1d bn(2);
  Tensor x = Tensor::Normal({3, 2, 4}, 0.5f, 2.0f, rng);
  absl::StatusOr<Var> y = bn.Forward(Var::Constant(x));
  ASSERT_TRUE(y.ok());
  for (int c = 0; c < 2; ++c) {
    double s = 0, s2 = 0;
    for (int n = 0; n < 3; ++n) {
      for (int l = 0; l < 4; ++l) {
        s += y->value().at({n, c, l});
        s2 += std::pow(y->value().at({n, c, l}), 2);
      }
    }
    EXPECT_NEAR(s / 12, 0.0, 1e-5);
    EXPECT_NEAR(s2 / 12, 1.0, 1e-3);
  }
}

TEST(LayerNormTest, NormalizesEachSample) {
  Rng rng(15);
  L::LayerNorm ln(Shape{2, 3});
  Tensor x = Tensor::Normal({4, 2, 3}, 1.0f, 3.0f, rng);
  absl::StatusOr<Var> y = ln.Forward(Var::Constant(x));
  ASSERT_TRUE(y.ok());
  for (int n = 0; n < 4; ++n) {
    double s = 0, s2 = 0;
    for (int i = 0; i < 6; ++i) {
      s += y->value().data()[n * 6 + i];
      s2 += std::pow(y->value().data()[n * 6 + i], 2);
    }
    EXPECT_NEAR(s / 6, 0.0, 1e-5);
    EXPECT_NEAR(s2 / 6, 1.0, 1e-3);
  }
}

// ---- Gradients ------------------------------------------------------------------------------

// Central differences of L(theta) = <u, module(x)> for every parameter element, against the
// gradient accumulated by Backward.
void CheckParameterGradients(Module& module, const Tensor& x, double step, double atol, double rtol) {
  Rng rng(99);
  Tensor u;
  {
    NoGradGuard guard;
    u = Tensor::Normal(module.Forward(Var::Constant(x))->shape(), 0, 1, rng);
  }
  auto loss = [&]() {
    NoGradGuard guard;
    const Tensor y = module.Forward(Var::Constant(x))->value();
    double s = 0;
    for (int64_t i = 0; i < y.numel(); ++i) s += static_cast<double>(y.data()[i]) * u.data()[i];
    return s;
  };
  module.ZeroGrad();
  Backward(SumAll(Mul(*module.Forward(Var::Constant(x)), Var::Constant(u))));
  for (auto& [name, p] : module.NamedParameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    float* w = p.mutable_value().data();
    for (int64_t i = 0; i < p.numel(); ++i) {
      const float original = w[i];
      w[i] = static_cast<float>(original + step);
      const double plus = loss();
      w[i] = static_cast<float>(original - step);
      const double minus = loss();
      w[i] = original;
      const double numeric = (plus - minus) / (2 * step);
      EXPECT_NEAR(p.grad().data()[i], numeric, atol + rtol * std::abs(numeric)) << name << " element " << i;
    }
  }
}

TEST(GradientTest, GradCheckThroughSequential) {
  Rng rng(16);
  L::Sequential net;
  net.Emplace<L::Conv2d>(2, 3, 3, 1, 1, rng);
  net.Emplace<L::Tanh>();
  net.Emplace<L::Flatten>();
  net.Emplace<L::Linear>(3 * 4 * 4, 6, rng);
  net.Emplace<L::GLU>();
  net.Emplace<L::CReLU>();
  net.Emplace<L::Linear>(6, 2, rng);
  net.Emplace<L::Sigmoid>();
  // Input gradient (first order) with the finite-difference checker.
  auto f = [&](const std::vector<Var>& in) { return net.Forward(in[0]).value(); };
  EXPECT_TRUE(GradCheck(f, {Tensor::Normal({2, 2, 4, 4}, 0, 1, rng)}).ok());
  // Parameter gradients.
  CheckParameterGradients(net, Tensor::Normal({2, 2, 4, 4}, 0, 1, rng), 1e-2, 2e-3, 2e-2);
}

TEST(GradientTest, GradCheckThroughNormalizationLayers) {
  Rng rng(17);
  L::Sequential net;
  net.Emplace<L::Linear>(3, 6, rng);
  net.Emplace<L::BatchNorm1d>(6);
  net.Emplace<L::Tanh>();
  net.Emplace<L::LayerNorm>(Shape{6});
  net.Emplace<L::Linear>(6, 2, rng);
  auto f = [&](const std::vector<Var>& in) { return net.Forward(in[0]).value(); };
  EXPECT_TRUE(GradCheck(f, {Tensor::Normal({5, 3}, 0, 1, rng)}).ok());
  CheckParameterGradients(net, Tensor::Normal({5, 3}, 0, 1, rng), 1e-2, 2e-3, 2e-2);
}

TEST(GradientTest, GradGradCheckThroughMlpCritic) {
  Rng rng(18);
  L::Sequential critic;
  critic.Emplace<L::Linear>(3, 8, rng);
  critic.Emplace<L::Tanh>();
  critic.Emplace<L::Linear>(8, 8, rng);
  critic.Emplace<L::LeakyReLU>(0.2f);
  critic.Emplace<L::Linear>(8, 1, rng);
  auto f = [&](const std::vector<Var>& in) { return critic.Forward(in[0]).value(); };
  const Tensor x = Tensor::Normal({4, 3}, 0, 1, rng);
  absl::Status first = GradCheck(f, {x});
  EXPECT_TRUE(first.ok()) << first;
  absl::Status second = GradGradCheck(f, {x});
  EXPECT_TRUE(second.ok()) << second;
}

}  // namespace
}  // namespace otgen::nn
