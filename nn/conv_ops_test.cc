#include "nn/conv_ops.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nn/autograd.h"
#include "nn/gradcheck.h"
#include "nn/onednn_context.h"
#include "nn/ops.h"
#include "nn/random.h"
#include "nn/tensor.h"
#include "nn/tensor_math.h"

namespace otgen::nn {
namespace {

using internal::ConvLayout;

// The test shapes are tiny: one OpenMP thread avoids paying a synchronization per primitive,
// which dominates (and becomes erratic) when other processes load the machine.
class SingleThreadEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { SetNumThreads(1); }
};
const ::testing::Environment* const kSingleThread = ::testing::AddGlobalTestEnvironment(new SingleThreadEnvironment);

// ---- Naive references (double accumulation) ------------------------------------------------

Tensor RefConv2d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t s, int64_t p) {
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3);
  const int64_t o = w.dim(0), kh = w.dim(2), kw = w.dim(3);
  const int64_t ho = (h + 2 * p - kh) / s + 1, wo = (wd + 2 * p - kw) / s + 1;
  Tensor y = Tensor::Zeros({n, o, ho, wo});
  for (int64_t in = 0; in < n; ++in)
    for (int64_t oc = 0; oc < o; ++oc)
      for (int64_t i = 0; i < ho; ++i)
        for (int64_t j = 0; j < wo; ++j) {
          double acc = b.defined() ? b.at({oc}) : 0.0;
          for (int64_t ic = 0; ic < c; ++ic)
            for (int64_t u = 0; u < kh; ++u)
              for (int64_t v = 0; v < kw; ++v) {
                const int64_t r = s * i + u - p, q = s * j + v - p;
                if (r < 0 || r >= h || q < 0 || q >= wd) continue;
                acc += static_cast<double>(w.at({oc, ic, u, v})) * x.at({in, ic, r, q});
              }
          y.at({in, oc, i, j}) = static_cast<float>(acc);
        }
  return y;
}

Tensor RefConvTranspose2d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t s, int64_t p, int64_t op) {
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3);
  const int64_t o = w.dim(1), kh = w.dim(2), kw = w.dim(3);
  const int64_t ho = (h - 1) * s - 2 * p + kh + op, wo = (wd - 1) * s - 2 * p + kw + op;
  std::vector<double> acc(n * o * ho * wo, 0.0);
  for (int64_t in = 0; in < n; ++in)
    for (int64_t ic = 0; ic < c; ++ic)
      for (int64_t i = 0; i < h; ++i)
        for (int64_t j = 0; j < wd; ++j)
          for (int64_t oc = 0; oc < o; ++oc)
            for (int64_t u = 0; u < kh; ++u)
              for (int64_t v = 0; v < kw; ++v) {
                const int64_t r = s * i + u - p, q = s * j + v - p;
                if (r < 0 || r >= ho || q < 0 || q >= wo) continue;
                acc[((in * o + oc) * ho + r) * wo + q] +=
                    static_cast<double>(x.at({in, ic, i, j})) * w.at({ic, oc, u, v});
              }
  Tensor y = Tensor::Empty({n, o, ho, wo});
  for (int64_t k = 0; k < y.numel(); ++k) {
    const int64_t oc = (k / (ho * wo)) % o;
    y.data()[k] = static_cast<float>(acc[k] + (b.defined() ? b.at({oc}) : 0.0));
  }
  return y;
}

// Per-channel batch statistics of [N, C] or [N, C, H, W]: mean and biased variance.
void RefChannelStats(const Tensor& x, std::vector<double>* mean, std::vector<double>* var) {
  const int64_t n = x.dim(0), c = x.dim(1), hw = x.numel() / (n * c);
  mean->assign(c, 0.0);
  var->assign(c, 0.0);
  for (int64_t ch = 0; ch < c; ++ch) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < hw; ++k) s += x.data()[(i * c + ch) * hw + k];
    const double m = s / (n * hw);
    double v = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < hw; ++k) v += std::pow(x.data()[(i * c + ch) * hw + k] - m, 2);
    (*mean)[ch] = m;
    (*var)[ch] = v / (n * hw);
  }
}

Tensor RefNormalizeChannels(const Tensor& x, const std::vector<double>& mean, const std::vector<double>& var,
                            const Tensor& gamma, const Tensor& beta, double eps) {
  const int64_t n = x.dim(0), c = x.dim(1), hw = x.numel() / (n * c);
  Tensor y = Tensor::Empty(x.shape());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t k = 0; k < hw; ++k) {
        const int64_t idx = (i * c + ch) * hw + k;
        double v = (x.data()[idx] - mean[ch]) / std::sqrt(var[ch] + eps);
        if (gamma.defined()) v *= gamma.data()[ch];
        if (beta.defined()) v += beta.data()[ch];
        y.data()[idx] = static_cast<float>(v);
      }
  return y;
}

Tensor RefLayerNorm(const Tensor& x, int64_t features, const Tensor& gamma, const Tensor& beta, double eps) {
  const int64_t rows = x.numel() / features;
  Tensor y = Tensor::Empty(x.shape());
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x.data() + r * features;
    double m = 0, v = 0;
    for (int64_t k = 0; k < features; ++k) m += xr[k];
    m /= features;
    for (int64_t k = 0; k < features; ++k) v += (xr[k] - m) * (xr[k] - m);
    v /= features;
    for (int64_t k = 0; k < features; ++k) {
      double out = (xr[k] - m) / std::sqrt(v + eps);
      if (gamma.defined()) out *= gamma.data()[k];
      if (beta.defined()) out += beta.data()[k];
      y.data()[r * features + k] = static_cast<float>(out);
    }
  }
  return y;
}

double Dot(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double s = 0;
  for (int64_t i = 0; i < a.numel(); ++i) s += static_cast<double>(a.data()[i]) * b.data()[i];
  return s;
}

void ExpectClose(const Tensor& actual, const Tensor& expected, float tol, const std::string& what) {
  ASSERT_EQ(actual.shape(), expected.shape()) << what;
  for (int64_t i = 0; i < actual.numel(); ++i) {
    ASSERT_NEAR(actual.data()[i], expected.data()[i], tol * (1.0f + std::abs(expected.data()[i])))
        << what << " element " << i;
  }
}

Tensor Normal(const Shape& s, Rng& rng, float stddev = 1.0f) { return Tensor::Normal(s, 0.0f, stddev, rng); }

// ---- Convolutions, under each memory layout ---------------------------------------------------

struct ConvCase {
  int64_t n, c, h, w, o, kh, kw, stride, padding, output_padding;
};

class ConvTest : public ::testing::TestWithParam<ConvLayout> {
 protected:
  void SetUp() override { internal::SetConvLayoutForTesting(GetParam()); }
  void TearDown() override { internal::SetConvLayoutForTesting(ConvLayout::kAuto); }
};

TEST_P(ConvTest, Conv2dForwardMatchesNaiveLoops) {
  Rng rng(11);
  const std::vector<ConvCase> cases = {
      {2, 3, 5, 5, 4, 3, 3, 1, 1, 0},    // same padding
      {2, 3, 5, 5, 4, 3, 3, 2, 1, 0},    // stride 2
      {2, 3, 8, 7, 4, 3, 3, 2, 0, 0},    // floor: last row of x unused, H != W
      {2, 3, 7, 7, 5, 5, 5, 2, 2, 0},    // the critic's k5 s2 p2
      {1, 2, 6, 6, 3, 3, 2, 1, 0, 0},    // non-square kernel
      {2, 1, 28, 28, 8, 5, 5, 2, 2, 0},  // one input channel (MNIST)
      {2, 16, 6, 6, 32, 3, 3, 2, 1, 0},  // channels that fill oneDNN's 16-blocks
  };
  for (const ConvCase& k : cases) {
    const Tensor x = Normal({k.n, k.c, k.h, k.w}, rng);
    const Tensor w = Normal({k.o, k.c, k.kh, k.kw}, rng, 0.3f);
    const Tensor b = Normal({k.o}, rng);
    const std::string what = absl::StrCat("Conv2d ", ShapeToString(x.shape()), " * ", ShapeToString(w.shape()), " s",
                                          k.stride, " p", k.padding);
    ExpectClose(Conv2d(Var(x), Var(w), Var(b), k.stride, k.padding).value(), RefConv2d(x, w, b, k.stride, k.padding),
                1e-4f, what);
    ExpectClose(Conv2d(Var(x), Var(w), Var(), k.stride, k.padding).value(),
                RefConv2d(x, w, Tensor(), k.stride, k.padding), 1e-4f, what + " no bias");
  }
}

TEST_P(ConvTest, ConvTranspose2dForwardMatchesNaiveLoops) {
  Rng rng(12);
  const std::vector<ConvCase> cases = {
      {2, 3, 4, 4, 4, 3, 3, 2, 1, 1},    // stride 2, padding, output_padding
      {2, 3, 4, 3, 2, 4, 4, 2, 1, 0},    // DCGAN k4 s2 p1: doubles the size, H != W
      {2, 3, 4, 4, 2, 5, 5, 2, 2, 0},    // k5 s2 p2: 4 -> 7
      {2, 3, 7, 7, 2, 5, 5, 2, 2, 1},    // k5 s2 p2 op1: 7 -> 14
      {2, 3, 5, 5, 1, 3, 3, 1, 1, 0},    // to one channel, stride 1
      {1, 2, 3, 3, 2, 3, 3, 3, 0, 2},    // stride 3, output_padding 2 (rows only reached by bias)
      {2, 16, 3, 3, 16, 4, 4, 2, 1, 0},  // blocked-size channels
  };
  for (const ConvCase& k : cases) {
    const Tensor x = Normal({k.n, k.c, k.h, k.w}, rng);
    const Tensor w = Normal({k.c, k.o, k.kh, k.kw}, rng, 0.3f);
    const Tensor b = Normal({k.o}, rng);
    const std::string what = absl::StrCat("ConvTranspose2d ", ShapeToString(x.shape()), " * ", ShapeToString(w.shape()),
                                          " s", k.stride, " p", k.padding, " op", k.output_padding);
    const Var y = ConvTranspose2d(Var(x), Var(w), Var(b), k.stride, k.padding, k.output_padding);
    EXPECT_EQ(y.dim(2), (k.h - 1) * k.stride - 2 * k.padding + k.kh + k.output_padding) << what;
    ExpectClose(y.value(), RefConvTranspose2d(x, w, b, k.stride, k.padding, k.output_padding), 1e-4f, what);
    ExpectClose(ConvTranspose2d(Var(x), Var(w), Var(), k.stride, k.padding, k.output_padding).value(),
                RefConvTranspose2d(x, w, Tensor(), k.stride, k.padding, k.output_padding), 1e-4f, what + " no bias");
  }
}

// <conv(x, w), g> = <x, conv^T(g, w)> = <w, BW(x, g)> at shapes too large for finite
// differences, where oneDNN's blocked kernels run.
TEST_P(ConvTest, BackwardKernelsAreAdjointsOfTheForward) {
  Rng rng(13);
  const std::vector<ConvCase> cases = {
      {4, 32, 14, 14, 64, 5, 5, 2, 2, 0},
      {4, 64, 7, 7, 32, 4, 4, 2, 1, 0},
      {3, 16, 9, 9, 3, 3, 3, 1, 1, 0},
      {3, 3, 9, 9, 16, 3, 3, 2, 0, 0},
  };
  for (const ConvCase& k : cases) {
    const Conv2dGeometry geo{.stride = k.stride, .padding = k.padding};
    const Tensor x = Normal({k.n, k.c, k.h, k.w}, rng);
    const Tensor w = Normal({k.o, k.c, k.kh, k.kw}, rng, 0.1f);
    const Tensor y = Conv2d(Var(x), Var(w), Var(), geo).value();
    const Tensor g = Normal(y.shape(), rng);
    const Tensor dx = Conv2dBackwardData(Var(g), Var(w), geo, k.h, k.w).value();
    const Tensor dw = Conv2dBackwardWeights(Var(x), Var(g), geo, k.kh, k.kw).value();
    const double lhs = Dot(y, g);
    EXPECT_NEAR(Dot(x, dx), lhs, 1e-4 * (1 + std::abs(lhs)));
    EXPECT_NEAR(Dot(w, dw), lhs, 1e-4 * (1 + std::abs(lhs)));
    // Spot-check one weight-gradient entry against its definition.
    double expected = 0;
    for (int64_t n = 0; n < k.n; ++n)
      for (int64_t i = 0; i < y.dim(2); ++i)
        for (int64_t j = 0; j < y.dim(3); ++j) {
          const int64_t r = k.stride * i + 1 - k.padding, q = k.stride * j + 2 - k.padding;
          if (r < 0 || r >= k.h || q < 0 || q >= k.w) continue;
          expected += static_cast<double>(g.at({n, 1, i, j})) * x.at({n, 2, r, q});
        }
    EXPECT_NEAR(dw.at({1, 2, 1, 2}), expected, 1e-4 * (1 + std::abs(expected)));
  }
}

TEST_P(ConvTest, Conv2dGradients) {
  Rng rng(14);
  const Tensor x = Normal({2, 3, 5, 5}, rng), w = Normal({4, 3, 3, 3}, rng, 0.5f), b = Normal({4}, rng);
  for (int64_t stride : {1, 2}) {
    auto f = [stride](const std::vector<Var>& in) { return Conv2d(in[0], in[1], in[2], stride, 1); };
    EXPECT_TRUE(GradCheck(f, {x, w, b}).ok()) << GradCheck(f, {x, w, b});
    // Through a nonlinearity, so the backward rules' dependence on grad_out is exercised.
    auto g = [stride](const std::vector<Var>& in) { return Tanh(Conv2d(in[0], in[1], in[2], stride, 1)); };
    EXPECT_TRUE(GradGradCheck(g, {x, w, b}).ok()) << GradGradCheck(g, {x, w, b});
  }
  // Floor geometry (last row/column of x unused).
  const Tensor x2 = Normal({2, 2, 6, 6}, rng), w2 = Normal({3, 2, 3, 3}, rng, 0.5f);
  auto h = [](const std::vector<Var>& in) { return Tanh(Conv2d(in[0], in[1], Var(), 2, 0)); };
  EXPECT_TRUE(GradCheck(h, {x2, w2}).ok()) << GradCheck(h, {x2, w2});
  EXPECT_TRUE(GradGradCheck(h, {x2, w2}).ok()) << GradGradCheck(h, {x2, w2});
}

TEST_P(ConvTest, ConvTranspose2dGradients) {
  Rng rng(15);
  const Tensor x = Normal({2, 3, 3, 3}, rng), w = Normal({3, 2, 3, 3}, rng, 0.5f), b = Normal({2}, rng);
  auto f = [](const std::vector<Var>& in) { return ConvTranspose2d(in[0], in[1], in[2], 2, 1, 1); };
  EXPECT_TRUE(GradCheck(f, {x, w, b}).ok()) << GradCheck(f, {x, w, b});
  auto g = [](const std::vector<Var>& in) { return Tanh(ConvTranspose2d(in[0], in[1], in[2], 2, 1, 1)); };
  EXPECT_TRUE(GradGradCheck(g, {x, w, b}).ok()) << GradGradCheck(g, {x, w, b});
  const Tensor w4 = Normal({3, 2, 4, 4}, rng, 0.5f);
  auto h = [](const std::vector<Var>& in) { return Tanh(ConvTranspose2d(in[0], in[1], in[2], 2, 1, 0)); };
  EXPECT_TRUE(GradCheck(h, {x, w4, b}).ok()) << GradCheck(h, {x, w4, b});
  EXPECT_TRUE(GradGradCheck(h, {x, w4, b}).ok()) << GradGradCheck(h, {x, w4, b});
}

TEST_P(ConvTest, BackwardOpsGradients) {
  Rng rng(16);
  const Conv2dGeometry geo{.stride = 2, .padding = 1};
  const Tensor x = Normal({2, 3, 5, 5}, rng), w = Normal({4, 3, 3, 3}, rng, 0.5f);
  const Tensor g = Normal({2, 4, 3, 3}, rng);
  auto data = [geo](const std::vector<Var>& in) { return Tanh(Conv2dBackwardData(in[0], in[1], geo, 5, 5)); };
  EXPECT_TRUE(GradCheck(data, {g, w}).ok()) << GradCheck(data, {g, w});
  EXPECT_TRUE(GradGradCheck(data, {g, w}).ok()) << GradGradCheck(data, {g, w});
  auto weights = [geo](const std::vector<Var>& in) { return Tanh(Conv2dBackwardWeights(in[0], in[1], geo, 3, 3)); };
  EXPECT_TRUE(GradCheck(weights, {x, g}).ok()) << GradCheck(weights, {x, g});
  EXPECT_TRUE(GradGradCheck(weights, {x, g}).ok()) << GradGradCheck(weights, {x, g});
}

// The WGAN-GP use: d/dw of the squared input-gradient norm of a convolutional critic.
TEST_P(ConvTest, GradientPenaltyOfConvCritic) {
  Rng rng(17);
  const Tensor x = Normal({2, 2, 6, 6}, rng), w1 = Normal({3, 2, 3, 3}, rng, 0.5f), b1 = Normal({3}, rng);
  const Tensor w2 = Normal({2, 3, 3, 3}, rng, 0.5f);
  auto penalty = [](const std::vector<Var>& in) {
    EnableGradGuard record;  // GradCheck evaluates f under NoGradGuard
    Var x = in[0];
    if (!x.requires_grad()) x = Var(x.value(), true);  // finite-difference evaluations
    const Var h = LeakyRelu(Conv2d(x, in[1], in[2], 2, 1), 0.2f);
    const Var critic = SumAll(Tanh(Conv2d(h, in[3], Var(), 1, 1)));
    const Var dx = Grad({critic}, {x}, {}, {.create_graph = true})[0];
    return SumAll(Square(dx));
  };
  GradCheckOptions options;
  options.skip_inputs = {0};
  EXPECT_TRUE(GradCheck(penalty, {x, w1, b1, w2}, options).ok()) << GradCheck(penalty, {x, w1, b1, w2}, options);
}

INSTANTIATE_TEST_SUITE_P(Layouts, ConvTest,
                         ::testing::Values(ConvLayout::kAuto, ConvLayout::kPlain, ConvLayout::kBlocked,
                                           ConvLayout::kGemm, ConvLayout::kPhases),
                         [](const ::testing::TestParamInfo<ConvLayout>& info) {
                           switch (info.param) {
                             case ConvLayout::kAuto:
                               return std::string("Auto");
                             case ConvLayout::kPlain:
                               return std::string("Plain");
                             case ConvLayout::kBlocked:
                               return std::string("Blocked");
                             case ConvLayout::kGemm:
                               return std::string("Gemm");
                             case ConvLayout::kPhases:
                               return std::string("Phases");
                           }
                           return std::string("Unknown");
                         });

// The matmul + col2im transposed convolution agrees with oneDNN's on a batch that takes
// several GEMM chunks (the last one partial) and channel counts that are not multiples of 16.
TEST(ConvGemmTest, MatchesOneDnnAcrossChunks) {
  Rng rng(18);
  const Tensor x = Normal({40, 64, 8, 8}, rng), w = Normal({64, 70, 4, 4}, rng, 0.1f), b = Normal({70}, rng);
  const Tensor x2 = Normal({3, 33, 5, 7}, rng), w2 = Normal({33, 17, 5, 5}, rng, 0.1f), b2 = Normal({17}, rng);
  Tensor reference, reference2;
  internal::SetConvLayoutForTesting(ConvLayout::kPlain);
  reference = ConvTranspose2d(Var(x), Var(w), Var(b), 2, 1).value();
  reference2 = ConvTranspose2d(Var(x2), Var(w2), Var(b2), 2, 2, 1).value();
  internal::SetConvLayoutForTesting(ConvLayout::kGemm);
  const Tensor y = ConvTranspose2d(Var(x), Var(w), Var(b), 2, 1).value();
  const Tensor y2 = ConvTranspose2d(Var(x2), Var(w2), Var(b2), 2, 2, 1).value();
  internal::SetConvLayoutForTesting(ConvLayout::kAuto);
  ExpectClose(y, reference, 1e-4f, "ConvTranspose2d [40, 64, 8, 8] gemm vs oneDNN");
  ExpectClose(y2, reference2, 1e-4f, "ConvTranspose2d [3, 33, 5, 7] gemm vs oneDNN");
}

// The transposed convolution as one stride-1 convolution per output phase agrees with oneDNN's
// deconvolution on every phase geometry: strides 1-3, kernels smaller than, equal to and
// larger than the stride, paddings 0-2, output padding, non-square inputs and kernels,
// channel counts that are not multiples of 16, with and without bias, and the ChannelMoments
// it gathers. A geometry with a phase that no kernel tap reaches (k 2, stride 3) falls back.
TEST(ConvPhaseTest, MatchesOneDnnOnEveryPhaseGeometry) {
  struct Case {
    Shape x, w;
    Conv2dGeometry g;
    bool bias;
    bool phases;  // expected to run on the phase path
  };
  const std::vector<Case> cases = {
      {{3, 20, 4, 4}, {20, 17, 5, 5}, {.stride = 2, .padding = 2}, true, true},
      {{2, 16, 7, 5}, {16, 33, 5, 5}, {.stride = 2, .padding = 2, .output_padding = 1}, true, true},
      {{2, 24, 7, 7}, {24, 16, 4, 4}, {.stride = 2, .padding = 1}, false, true},
      {{2, 5, 6, 6}, {5, 18, 3, 3}, {.stride = 1, .padding = 1}, true, true},
      {{2, 7, 5, 4}, {7, 16, 4, 3}, {.stride = 3, .padding = 0, .output_padding = 2}, true, true},
      {{2, 9, 4, 5}, {9, 19, 5, 4}, {.stride = 3, .padding = 1, .output_padding = 1}, true, true},
      {{2, 8, 3, 3}, {8, 16, 2, 2}, {.stride = 2, .padding = 0}, true, true},
      {{2, 8, 3, 3}, {8, 16, 2, 2}, {.stride = 3, .padding = 0}, true, false},
  };
  for (const Case& k : cases) {
    Rng rng(29);
    const Var x(Normal(k.x, rng)), w(Normal(k.w, rng, 0.1f));
    const Var b = k.bias ? Var(Normal({k.w[1]}, rng)) : Var();
    const std::string what = absl::StrCat("ConvTranspose2d ", ShapeToString(k.x), " * ", ShapeToString(k.w),
                                          " stride ", k.g.stride, " padding ", k.g.padding, " output padding ",
                                          k.g.output_padding);
    internal::SetConvLayoutForTesting(ConvLayout::kPlain);
    const Tensor reference = ConvTranspose2d(x, w, b, k.g).value();
    internal::SetConvLayoutForTesting(ConvLayout::kPhases);
    const int64_t runs_before = internal::PhaseConvolutionRunsForTesting();
    ChannelMoments moments;
    const Tensor y = ConvTranspose2d(x, w, b, k.g, &moments).value();
    const Tensor again = ConvTranspose2d(x, w, b, k.g).value();  // cached phase weights
    const int64_t runs = internal::PhaseConvolutionRunsForTesting() - runs_before;
    internal::SetConvLayoutForTesting(ConvLayout::kAuto);
    EXPECT_EQ(runs, k.phases ? 2 : 0) << what;
    ExpectClose(y, reference, 1e-4f, what);
    EXPECT_EQ(math::MaxAbsDiff(again, y), 0.0f) << what;
    if (!k.phases) continue;
    std::vector<double> mean, var;
    RefChannelStats(y, &mean, &var);
    ASSERT_EQ(moments.mean.shape(), (Shape{k.w[1]})) << what;
    for (int64_t c = 0; c < k.w[1]; ++c) {
      EXPECT_NEAR(moments.mean.at({c}), mean[c], 1e-6 * (1 + std::abs(mean[c]))) << what << " channel " << c;
      EXPECT_NEAR(moments.variance.at({c}), var[c], 1e-5 * var[c]) << what << " channel " << c;
    }
  }
}

// New weights after an optimizer step (edited in place, same storage) rebuild the phase weights.
TEST(ConvPhaseTest, WeightsEditedInPlaceAreRebuilt) {
  Rng rng(30);
  const Var x(Normal({2, 16, 4, 4}, rng));
  Tensor w = Normal({16, 16, 5, 5}, rng, 0.1f);
  const Conv2dGeometry g{.stride = 2, .padding = 2, .output_padding = 1};
  auto run = [&](ConvLayout layout) {
    internal::SetConvLayoutForTesting(layout);
    Tensor y = ConvTranspose2d(x, Var(w), Var(), g).value();
    internal::SetConvLayoutForTesting(ConvLayout::kAuto);
    return y;
  };
  const Tensor y1 = run(ConvLayout::kPhases);
  w.data()[7] += 1.0f;
  const Tensor y2 = run(ConvLayout::kPhases);
  EXPECT_GT(math::MaxAbsDiff(y2, y1), 1e-3f);
  ExpectClose(y2, run(ConvLayout::kPlain), 1e-4f, "edited weights, phases vs oneDNN");
}

// The im2col + matmul weight gradient agrees with oneDNN's kernel, bias gradient included, on a
// batch that takes several im2col chunks (the last one partial; 3.3 MB of float32 im2col per
// image against 16 MB chunks), with taps that fall on the padding, and with stride 2 and
// channel counts that are not multiples of 16.
TEST(ConvGemmTest, WeightGradientMatchesOneDnnAcrossChunks) {
  struct Case {
    Shape x, w;
    int64_t stride, padding;
  };
  for (const Case& cs : {Case{{24, 128, 16, 16}, {32, 128, 5, 5}, 1, 2}, Case{{5, 33, 9, 7}, {17, 33, 5, 3}, 2, 2},
                         Case{{3, 20, 8, 8}, {6, 20, 4, 4}, 2, 1}}) {
    Rng rng(19);
    const Tensor x = Normal(cs.x, rng), w = Normal(cs.w, rng, 0.1f), b = Normal({cs.w[0]}, rng);
    const Conv2dGeometry g{.stride = cs.stride, .padding = cs.padding};
    auto grads = [&](ConvLayout layout) {
      internal::SetConvLayoutForTesting(layout);
      Var xs(x, true), ws(w, true), bs(b, true);
      Var y = Conv2d(xs, ws, bs, g);
      Rng up(20);
      std::vector<Var> out = Grad({y}, {ws, bs}, {Var(Normal(y.shape(), up))});
      internal::SetConvLayoutForTesting(ConvLayout::kAuto);
      return out;
    };
    const std::vector<Var> reference = grads(ConvLayout::kPlain);
    const std::vector<Var> gemm = grads(ConvLayout::kGemm);
    const std::string name = ShapeToString(cs.x);
    ExpectClose(gemm[0].value(), reference[0].value(), 2e-3f, "weight gradient " + name);
    ExpectClose(gemm[1].value(), reference[1].value(), 2e-3f, "bias gradient " + name);
  }
}

// Reordered weights are reused only while the caller's values are unchanged: weights edited in
// place between calls (as an optimizer step does) give the new result, and restoring them gives
// the old one bit for bit. Blocked layouts, so that the weights are reordered.
TEST(ConvWeightsCacheTest, WeightsEditedInPlaceAreReorderedAgain) {
  Rng rng(21);
  const Tensor x = Normal({2, 16, 8, 8}, rng);
  Tensor w = Normal({32, 16, 3, 3}, rng, 0.3f);
  const Conv2dGeometry g{.stride = 1, .padding = 1};
  auto conv = [&](ConvLayout layout) {
    internal::SetConvLayoutForTesting(layout);
    Tensor y = Conv2d(Var(x), Var(w), Var(), g).value();
    internal::SetConvLayoutForTesting(ConvLayout::kAuto);
    return y;
  };
  const Tensor y1 = conv(ConvLayout::kBlocked);
  auto values = [](const Tensor& t) { return std::vector<float>(t.data(), t.data() + t.numel()); };
  EXPECT_EQ(values(conv(ConvLayout::kBlocked)), values(y1));  // the reused copy: same values
  const float saved = w.data()[5];
  w.data()[5] += 1.0f;  // in place: same storage, new values
  const Tensor y2 = conv(ConvLayout::kBlocked);
  EXPECT_NE(values(y2), values(y1));
  ExpectClose(y2, conv(ConvLayout::kPlain), 1e-5f, "edited weights, blocked vs plain");
  w.data()[5] = saved;
  EXPECT_EQ(values(conv(ConvLayout::kBlocked)), values(y1));
}

// Weight tensors that share a plan (two critics of one architecture, a generator's transposed
// convolution and a critic's convolution of the same geometry) keep a reordered copy each:
// alternating them builds each copy once, every result equals that of a fresh computation bit
// for bit, an in-place edit of one rebuilds only its copy, and more tensors than the cache
// holds (8) still give the right results. Blocked convolutions and the phase path.
TEST(ConvWeightsCacheTest, WeightTensorsSharingAPlanKeepTheirCopies) {
  Rng rng(22);
  const Tensor x = Normal({2, 16, 8, 8}, rng);
  std::vector<Tensor> ws;
  for (int t = 0; t < 10; ++t) ws.push_back(Normal({32, 16, 3, 3}, rng, 0.3f));
  const Conv2dGeometry g{.stride = 2, .padding = 1};
  auto values = [](const Tensor& t) { return std::vector<float>(t.data(), t.data() + t.numel()); };
  for (const ConvLayout layout : {ConvLayout::kBlocked, ConvLayout::kPhases}) {
    SCOPED_TRACE(layout == ConvLayout::kBlocked ? "blocked convolution" : "phase transposed convolution");
    const Tensor input = layout == ConvLayout::kBlocked ? x : Normal({2, 32, 4, 4}, rng);
    auto apply = [&](const Tensor& w, ConvLayout with) {
      internal::SetConvLayoutForTesting(with);
      Tensor y = layout == ConvLayout::kBlocked ? Conv2d(Var(input), Var(w), Var(), g).value()
                                                : ConvTranspose2d(Var(input), Var(w), Var(), g).value();
      internal::SetConvLayoutForTesting(ConvLayout::kAuto);
      return y;
    };
    auto run = [&](const Tensor& w) { return values(apply(w, layout)); };
    auto plain = [&](const Tensor& w) { return apply(w, ConvLayout::kPlain); };
    const std::vector<float> y0 = run(ws[0]), y1 = run(ws[1]);
    ASSERT_NE(y0, y1);
    const int64_t builds = internal::WeightCopyBuildsForTesting();
    for (int round = 0; round < 3; ++round) {
      EXPECT_EQ(run(ws[0]), y0);
      EXPECT_EQ(run(ws[1]), y1);
    }
    EXPECT_EQ(internal::WeightCopyBuildsForTesting() - builds, 0) << "alternating two cached tensors";
    ws[0].data()[3] += 1.0f;  // an optimizer step on one of them
    const Tensor y0_edited = apply(ws[0], layout);
    EXPECT_EQ(internal::WeightCopyBuildsForTesting() - builds, 1);
    EXPECT_NE(values(y0_edited), y0);
    EXPECT_EQ(run(ws[1]), y1);
    ExpectClose(y0_edited, plain(ws[0]), 1e-5f, "edited weights against the plain kernel");
    // Ten tensors through eight entries, twice: each result still that of its own weights.
    for (int round = 0; round < 2; ++round) {
      for (int t = 0; t < 10; ++t) {
        ExpectClose(apply(ws[t], layout), plain(ws[t]), 1e-5f, absl::StrCat("tensor ", t, " of 10, round ", round));
      }
    }
    ws[0].data()[3] -= 1.0f;
  }
}

TEST(ConvShapeTest, ValidatesShapes) {
  EXPECT_EQ(*Conv2dOutputShape({64, 1, 28, 28}, {64, 1, 5, 5}, {.stride = 2, .padding = 2}), (Shape{64, 64, 14, 14}));
  EXPECT_EQ(
      *ConvTranspose2dOutputShape({64, 128, 7, 7}, {128, 64, 5, 5}, {.stride = 2, .padding = 2, .output_padding = 1}),
      (Shape{64, 64, 14, 14}));
  EXPECT_EQ(*ConvTranspose2dOutputShape({200, 256, 7, 7}, {256, 128, 4, 4}, {.stride = 2, .padding = 1}),
            (Shape{200, 128, 14, 14}));
  const auto bad_channels = Conv2dOutputShape({2, 3, 5, 5}, {4, 2, 3, 3}, {});
  EXPECT_EQ(bad_channels.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_channels.status().message().find("[2, 3, 5, 5]"), std::string::npos) << bad_channels.status();
  EXPECT_FALSE(Conv2dOutputShape({2, 3, 2, 2}, {4, 3, 5, 5}, {}).ok());
  EXPECT_FALSE(Conv2dOutputShape({2, 3, 5, 5}, {4, 3, 3, 3}, {.stride = 0}).ok());
  EXPECT_FALSE(Conv2dOutputShape({2, 3, 5, 5}, {4, 3, 3, 3}, {.output_padding = 1}).ok());
  EXPECT_FALSE(ConvTranspose2dOutputShape({2, 3, 5, 5}, {3, 4, 3, 3}, {.stride = 2, .output_padding = 2}).ok());
  EXPECT_FALSE(ConvTranspose2dOutputShape({2, 3, 5, 5}, {4, 3, 3, 3}, {}).ok());
}

// ---- Batch normalization -------------------------------------------------------------------

TEST(BatchNormTest, TrainingForwardAndRunningStatisticsMatchHandComputation) {
  Rng rng(21);
  // [5, 300]: several column blocks of the [N, C] kernel, the last one partial; [131, 70]: row
  // tiles of 64 and an odd remainder row.
  for (const Shape& shape : {Shape{4, 3}, Shape{2, 3, 4, 5}, Shape{2, 20, 3, 3}, Shape{5, 300}, Shape{131, 70}}) {
    const int64_t c = shape[1];
    const Tensor gamma = Normal({c}, rng), beta = Normal({c}, rng);
    Tensor running_mean = Tensor::Zeros({c}), running_var = Tensor::Ones({c});
    std::vector<double> rm(c, 0.0), rv(c, 1.0);
    const int64_t count = NumElements(shape) / c;
    for (int step = 0; step < 3; ++step) {
      const Tensor x = Tensor::Normal(shape, 1.5f * step, 2.0f, rng);
      const Var y = BatchNorm(Var(x), Var(gamma), Var(beta), &running_mean, &running_var,
                              {.training = true, .momentum = 0.1f, .eps = 1e-5f});
      std::vector<double> mean, var;
      RefChannelStats(x, &mean, &var);
      ExpectClose(y.value(), RefNormalizeChannels(x, mean, var, gamma, beta, 1e-5), 1e-4f, "BatchNorm training");
      for (int64_t ch = 0; ch < c; ++ch) {
        rm[ch] = 0.9 * rm[ch] + 0.1 * mean[ch];
        rv[ch] = 0.9 * rv[ch] + 0.1 * var[ch] * count / (count - 1.0);  // unbiased
      }
    }
    for (int64_t ch = 0; ch < c; ++ch) {
      EXPECT_NEAR(running_mean.at({ch}), rm[ch], 1e-5 * (1 + std::abs(rm[ch])));
      EXPECT_NEAR(running_var.at({ch}), rv[ch], 1e-5 * (1 + std::abs(rv[ch])));
    }
    // Inference uses the running statistics and leaves them unchanged.
    const Tensor x = Normal(shape, rng);
    const Tensor before = running_mean.Clone();
    const Var y = BatchNorm(Var(x), Var(gamma), Var(beta), &running_mean, &running_var, {.training = false});
    ExpectClose(y.value(), RefNormalizeChannels(x, rm, rv, gamma, beta, 1e-5), 1e-4f, "BatchNorm inference");
    EXPECT_EQ(math::MaxAbsDiff(before, running_mean), 0.0f);
    // No affine parameters, no running statistics.
    std::vector<double> mean, var;
    RefChannelStats(x, &mean, &var);
    ExpectClose(BatchNorm(Var(x), Var(), Var(), nullptr, nullptr).value(),
                RefNormalizeChannels(x, mean, var, Tensor(), Tensor(), 1e-5), 1e-4f, "BatchNorm plain");
  }
}

TEST(BatchNormTest, Gradients) {
  Rng rng(22);
  for (const Shape& shape : {Shape{6, 3}, Shape{2, 3, 4, 4}, Shape{2, 17, 2, 2}}) {
    const int64_t c = shape[1];
    const Tensor x = Normal(shape, rng), gamma = Normal({c}, rng), beta = Normal({c}, rng);
    Tensor rm = Normal({c}, rng), rv = Tensor::Uniform({c}, 0.5f, 2.0f, rng);
    auto train = [](const std::vector<Var>& in) { return BatchNorm(in[0], in[1], in[2], nullptr, nullptr); };
    EXPECT_TRUE(GradCheck(train, {x, gamma, beta}).ok()) << GradCheck(train, {x, gamma, beta});
    auto train_sq = [](const std::vector<Var>& in) { return Square(BatchNorm(in[0], in[1], in[2], nullptr, nullptr)); };
    EXPECT_TRUE(GradGradCheck(train_sq, {x, gamma, beta}).ok()) << GradGradCheck(train_sq, {x, gamma, beta});
    auto no_affine = [](const std::vector<Var>& in) {
      return Square(BatchNorm(in[0], Var(), Var(), nullptr, nullptr));
    };
    EXPECT_TRUE(GradCheck(no_affine, {x}).ok()) << GradCheck(no_affine, {x});
    auto eval = [&rm, &rv](const std::vector<Var>& in) {
      return Square(BatchNorm(in[0], in[1], in[2], &rm, &rv, {.training = false}));
    };
    EXPECT_TRUE(GradCheck(eval, {x, gamma, beta}).ok()) << GradCheck(eval, {x, gamma, beta});
    EXPECT_TRUE(GradGradCheck(eval, {x, gamma, beta}).ok()) << GradGradCheck(eval, {x, gamma, beta});
  }
}

// The fused first-order backward and the composed (create_graph) backward agree.
TEST(BatchNormTest, FusedAndComposedBackwardAgree) {
  Rng rng(23);
  const Var x = Var::Parameter(Normal({8, 16, 5, 5}, rng));
  const Var gamma = Var::Parameter(Normal({16}, rng)), beta = Var::Parameter(Normal({16}, rng));
  const Var u = Var::Constant(Normal({8, 16, 5, 5}, rng));
  auto loss = [&] { return SumAll(Mul(BatchNorm(x, gamma, beta, nullptr, nullptr), u)); };
  const std::vector<Var> fused = Grad({loss()}, {x, gamma, beta});
  const std::vector<Var> composed = Grad({loss()}, {x, gamma, beta}, {}, {.create_graph = true});
  // dx and dgamma depend on x (recorded); dbeta = sum(g) does not.
  EXPECT_TRUE(composed[0].requires_grad());
  EXPECT_TRUE(composed[1].requires_grad());
  for (int k = 0; k < 3; ++k) {
    ExpectClose(composed[k].value(), fused[k].value(), 2e-4f, absl::StrCat("BatchNorm grad ", k));
  }
}

// Statistics of values with a large common offset and a small spread: a one-pass
// E[x^2] - E[x]^2 in float would lose every digit of the variance.
TEST(BatchNormTest, StatisticsAreAccurateUnderALargeOffset) {
  Rng rng(24);
  for (const Shape& shape : {Shape{64, 40}, Shape{8, 3, 6, 6}}) {
    const Tensor x = Tensor::Normal(shape, 1000.0f, 0.01f, rng);
    std::vector<double> mean, var;
    RefChannelStats(x, &mean, &var);
    const Var y = BatchNorm(Var(x), Var(), Var(), nullptr, nullptr);
    // Normalized values are O(1); a float of 1000 carries ~6e-5 absolute error, i.e. ~6e-3
    // after division by the 0.01 standard deviation.
    ExpectClose(y.value(), RefNormalizeChannels(x, mean, var, Tensor(), Tensor(), 1e-5), 2e-2f, "offset BatchNorm");
  }
}

// The fused first-order backward matches the composed one on [N, C] input spanning several
// column blocks.
TEST(BatchNormTest, FusedAndComposedBackwardAgreeOnWideMatrices) {
  Rng rng(25);
  for (const Shape& shape : {Shape{12, 300}, Shape{131, 70}}) {
    const int64_t c = shape[1];
    const Var x = Var::Parameter(Tensor::Normal(shape, 0.5f, 2.0f, rng));
    const Var gamma = Var::Parameter(Normal({c}, rng)), beta = Var::Parameter(Normal({c}, rng));
    const Var u = Var::Constant(Normal(shape, rng));
    auto loss = [&] { return SumAll(Mul(BatchNorm(x, gamma, beta, nullptr, nullptr), u)); };
    const std::vector<Var> fused = Grad({loss()}, {x, gamma, beta});
    const std::vector<Var> composed = Grad({loss()}, {x, gamma, beta}, {}, {.create_graph = true});
    for (int k = 0; k < 3; ++k) {
      ExpectClose(composed[k].value(), fused[k].value(), 2e-4f,
                  absl::StrCat("BatchNorm grad ", k, " of ", ShapeToString(shape)));
    }
  }
}

// BatchNormOptions::relu: the fused no-gradient pass equals Relu(BatchNorm(x)) bit for bit, in
// training (with the same running-statistics update) and inference, for [N, C] and
// [N, C, H, W]; with gradients it records the two ops, so first and second derivatives hold.
TEST(BatchNormTest, FusedReluEqualsReluOfBatchNorm) {
  Rng rng(26);
  for (const Shape& shape : {Shape{6, 300}, Shape{3, 5, 4, 4}}) {
    const int64_t c = shape[1];
    const Tensor x = Tensor::Normal(shape, 0.5f, 2.0f, rng);
    const Var gamma = Var::Parameter(Normal({c}, rng)), beta = Var::Parameter(Normal({c}, rng));
    for (const bool training : {true, false}) {
      Tensor rm_fused = Tensor::Uniform({c}, -1.0f, 1.0f, rng), rv_fused = Tensor::Uniform({c}, 0.5f, 2.0f, rng);
      Tensor rm_plain = rm_fused.Clone(), rv_plain = rv_fused.Clone();
      Tensor fused, plain;
      {
        NoGradGuard no_grad;
        fused = BatchNorm(Var(x), gamma, beta, &rm_fused, &rv_fused, {.training = training, .relu = true}).value();
        plain = Relu(BatchNorm(Var(x), gamma, beta, &rm_plain, &rv_plain, {.training = training})).value();
      }
      const std::string what = absl::StrCat(ShapeToString(shape), training ? " training" : " inference");
      EXPECT_EQ(math::MaxAbsDiff(fused, plain), 0.0f) << what;
      EXPECT_EQ(math::MaxAbsDiff(rm_fused, rm_plain), 0.0f) << what;
      EXPECT_EQ(math::MaxAbsDiff(rv_fused, rv_plain), 0.0f) << what;
      // About half the outputs are clamped, so the max was applied.
      int64_t zeros = 0;
      for (int64_t k = 0; k < fused.numel(); ++k) zeros += fused.data()[k] == 0.0f;
      EXPECT_GT(zeros, fused.numel() / 5) << what;
      EXPECT_LT(zeros, fused.numel() * 4 / 5) << what;
      // With gradients recorded: the same values, and a graph that differentiates twice.
      const Var recorded = BatchNorm(Var(x), gamma, beta, &rm_fused, &rv_fused, {.training = training, .relu = true});
      EXPECT_TRUE(recorded.requires_grad()) << what;
      EXPECT_EQ(math::MaxAbsDiff(recorded.value(), plain), 0.0f) << what;
    }
  }
  // Finite differences on small inputs (few values, none within the step of the kink).
  for (const Shape& shape : {Shape{5, 3}, Shape{2, 3, 2, 2}}) {
    const int64_t c = shape[1];
    Tensor rm = Normal({c}, rng), rv = Tensor::Uniform({c}, 0.5f, 2.0f, rng);
    auto train = [](const std::vector<Var>& in) {
      return Square(BatchNorm(in[0], in[1], in[2], nullptr, nullptr, {.relu = true}));
    };
    const Tensor xs = Normal(shape, rng);
    const Tensor g = Normal({c}, rng), b = Normal({c}, rng);
    EXPECT_TRUE(GradCheck(train, {xs, g, b}).ok()) << GradCheck(train, {xs, g, b});
    EXPECT_TRUE(GradGradCheck(train, {xs, g, b}).ok()) << GradGradCheck(train, {xs, g, b});
    auto eval = [&rm, &rv](const std::vector<Var>& in) {
      return Square(BatchNorm(in[0], in[1], in[2], &rm, &rv, {.training = false, .relu = true}));
    };
    EXPECT_TRUE(GradCheck(eval, {xs, g, b}).ok()) << GradCheck(eval, {xs, g, b});
  }
}

// ConvTranspose2d with moments: the same output as without, and the output's per-channel mean
// and biased variance against a double-precision reference, on the GEMM path (>= 16 output
// channels: gathered per image) and the oneDNN path (a separate pass); also with a large
// common offset, where a one-pass E[y^2] - E[y]^2 would lose the variance.
TEST(BatchNormTest, ConvTransposeMomentsMatchTheOutputsStatistics) {
  Rng rng(27);
  struct Case {
    Shape x, w;
    Conv2dGeometry g;
    float bias_offset;
  };
  for (const Case& k : {Case{{3, 8, 5, 5}, {8, 32, 4, 4}, {.stride = 2, .padding = 1}, 0.0f},
                        Case{{4, 16, 3, 3}, {16, 17, 5, 5}, {.stride = 2, .padding = 2, .output_padding = 1}, 0.0f},
                        Case{{3, 8, 5, 5}, {8, 32, 4, 4}, {.stride = 2, .padding = 1}, 1000.0f},
                        Case{{2, 6, 4, 4}, {6, 3, 3, 3}, {.stride = 1, .padding = 1}, 0.0f}}) {
    const Var x(Normal(k.x, rng)), w(Normal(k.w, rng, 0.1f));
    Tensor b = Normal({k.w[1]}, rng);
    for (int64_t i = 0; i < b.numel(); ++i) b.data()[i] += k.bias_offset;
    ChannelMoments moments;
    const Var y = ConvTranspose2d(x, w, Var(b), k.g, &moments);
    const std::string what = absl::StrCat(ShapeToString(k.w), " offset ", k.bias_offset);
    EXPECT_EQ(math::MaxAbsDiff(y.value(), ConvTranspose2d(x, w, Var(b), k.g).value()), 0.0f) << what;
    std::vector<double> mean, var;
    RefChannelStats(y.value(), &mean, &var);
    ASSERT_EQ(moments.mean.shape(), (Shape{k.w[1]})) << what;
    ASSERT_EQ(moments.variance.shape(), (Shape{k.w[1]})) << what;
    for (int64_t c = 0; c < k.w[1]; ++c) {
      EXPECT_NEAR(moments.mean.at({c}), mean[c], 1e-6 * (1 + std::abs(mean[c]))) << what << " channel " << c;
      // The outputs are floats: near 1000 they carry ~3e-5 absolute rounding, so ~1e-4 of a
      // variance of order 1 (relative), as for BatchStatistics.
      EXPECT_NEAR(moments.variance.at({c}), var[c], (k.bias_offset > 0 ? 1e-4 : 1e-5) * var[c])
          << what << " channel " << c;
    }
  }
}

// BatchNorm with given batch_moments equals BatchNorm computing them, forward and gradients.
TEST(BatchNormTest, GivenBatchMomentsReplaceTheStatisticsPass) {
  Rng rng(28);
  const Tensor x = Tensor::Normal({4, 5, 3, 3}, 0.5f, 2.0f, rng);
  const Var gamma = Var::Parameter(Normal({5}, rng)), beta = Var::Parameter(Normal({5}, rng));
  std::vector<double> mean, var;
  RefChannelStats(x, &mean, &var);
  ChannelMoments given{Tensor::Empty({5}), Tensor::Empty({5})};
  for (int c = 0; c < 5; ++c) {
    given.mean.data()[c] = static_cast<float>(mean[c]);
    given.variance.data()[c] = static_cast<float>(var[c]);
  }
  Tensor rm1 = Tensor::Zeros({5}), rv1 = Tensor::Ones({5}), rm2 = Tensor::Zeros({5}), rv2 = Tensor::Ones({5});
  const Var xv = Var::Parameter(x);
  const Var a = BatchNorm(xv, gamma, beta, &rm1, &rv1, {.batch_moments = &given});
  const Var b = BatchNorm(xv, gamma, beta, &rm2, &rv2);
  ExpectClose(a.value(), b.value(), 1e-5f, "given moments");
  ExpectClose(rm1, rm2, 1e-6f, "running mean");
  ExpectClose(rv1, rv2, 1e-6f, "running variance");
  const Var u = Var::Constant(Normal({4, 5, 3, 3}, rng));
  const std::vector<Var> ga = Grad({SumAll(Mul(a, u))}, {xv, gamma, beta});
  const std::vector<Var> gb = Grad({SumAll(Mul(b, u))}, {xv, gamma, beta});
  for (int k = 0; k < 3; ++k) ExpectClose(ga[k].value(), gb[k].value(), 1e-4f, absl::StrCat("grad ", k));
  // Moments that are not x's change the result (they are used, not recomputed).
  given.mean.data()[0] += 1.0f;
  const Var shifted = BatchNorm(Var(x), gamma, beta, nullptr, nullptr, {.batch_moments = &given});
  EXPECT_GT(math::MaxAbsDiff(shifted.value(), b.value()), 0.1f);
}

// ---- Layer normalization ---------------------------------------------------------------------

TEST(LayerNormTest, ForwardMatchesReference) {
  Rng rng(31);
  const Tensor x = Tensor::Normal({4, 3, 5}, 2.0f, 3.0f, rng);
  const Tensor g1 = Normal({5}, rng), b1 = Normal({5}, rng);
  ExpectClose(LayerNorm(Var(x), Var(g1), Var(b1), 1).value(), RefLayerNorm(x, 5, g1, b1, 1e-5), 1e-4f, "k=1");
  const Tensor g2 = Normal({3, 5}, rng), b2 = Normal({3, 5}, rng);
  ExpectClose(LayerNorm(Var(x), Var(g2), Var(b2), 2).value(), RefLayerNorm(x, 15, g2, b2, 1e-5), 1e-4f, "k=2");
  ExpectClose(LayerNorm(Var(x), Var(), Var(), 2, 1e-3f).value(), RefLayerNorm(x, 15, Tensor(), Tensor(), 1e-3), 1e-4f,
              "no affine");
  // Recording (training statistics) gives the same values.
  ExpectClose(LayerNorm(Var::Parameter(x), Var(g2), Var(b2), 2).value(), RefLayerNorm(x, 15, g2, b2, 1e-5), 1e-4f,
              "recorded");
}

TEST(LayerNormTest, Gradients) {
  Rng rng(32);
  const Tensor x = Normal({3, 2, 4}, rng), gamma = Normal({2, 4}, rng), beta = Normal({2, 4}, rng);
  auto f = [](const std::vector<Var>& in) { return LayerNorm(in[0], in[1], in[2], 2); };
  EXPECT_TRUE(GradCheck(f, {x, gamma, beta}).ok()) << GradCheck(f, {x, gamma, beta});
  auto sq = [](const std::vector<Var>& in) { return Square(LayerNorm(in[0], in[1], in[2], 2)); };
  EXPECT_TRUE(GradGradCheck(sq, {x, gamma, beta}).ok()) << GradGradCheck(sq, {x, gamma, beta});
  const Tensor g1 = Normal({4}, rng);
  auto last = [](const std::vector<Var>& in) { return Square(LayerNorm(in[0], in[1], Var(), 1)); };
  EXPECT_TRUE(GradCheck(last, {x, g1}).ok()) << GradCheck(last, {x, g1});
  EXPECT_TRUE(GradGradCheck(last, {x, g1}).ok()) << GradGradCheck(last, {x, g1});
}

TEST(LayerNormTest, FusedAndComposedBackwardAgree) {
  Rng rng(33);
  const Var x = Var::Parameter(Normal({16, 64}, rng));
  const Var gamma = Var::Parameter(Normal({64}, rng)), beta = Var::Parameter(Normal({64}, rng));
  const Var u = Var::Constant(Normal({16, 64}, rng));
  auto loss = [&] { return SumAll(Mul(LayerNorm(x, gamma, beta), u)); };
  const std::vector<Var> fused = Grad({loss()}, {x, gamma, beta});
  const std::vector<Var> composed = Grad({loss()}, {x, gamma, beta}, {}, {.create_graph = true});
  for (int k = 0; k < 3; ++k) {
    ExpectClose(composed[k].value(), fused[k].value(), 2e-4f, absl::StrCat("LayerNorm grad ", k));
  }
}

// ---- Upsampling --------------------------------------------------------------------------------

TEST(UpsampleTest, NearestAndSumPool) {
  Rng rng(41);
  const Tensor x = Normal({2, 3, 4, 5}, rng);
  for (int64_t f : {2, 3}) {
    const Tensor y = UpsampleNearest(Var(x), f).value();
    ASSERT_EQ(y.shape(), (Shape{2, 3, 4 * f, 5 * f}));
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t i = 0; i < 4 * f; ++i)
          for (int64_t j = 0; j < 5 * f; ++j) ASSERT_EQ(y.at({n, c, i, j}), x.at({n, c, i / f, j / f}));
    const Tensor z = SumPool(Var(y), f).value();
    // Each block holds f*f copies.
    ExpectClose(z, math::Unary(math::UnaryKind::kLinear, x, static_cast<float>(f * f), 0.0f), 1e-6f, "SumPool");
  }
  const Tensor big = Normal({2, 3, 6, 4}, rng);
  const Tensor pooled = SumPool2x(Var(big)).value();
  const float expected = big.at({1, 2, 2, 0}) + big.at({1, 2, 2, 1}) + big.at({1, 2, 3, 0}) + big.at({1, 2, 3, 1});
  EXPECT_NEAR(pooled.at({1, 2, 1, 0}), expected, 1e-5f);
}

TEST(UpsampleTest, Gradients) {
  Rng rng(42);
  const Tensor x = Normal({2, 2, 3, 3}, rng);
  auto up = [](const std::vector<Var>& in) { return Tanh(Upsample2x(in[0])); };
  EXPECT_TRUE(GradCheck(up, {x}).ok()) << GradCheck(up, {x});
  EXPECT_TRUE(GradGradCheck(up, {x}).ok()) << GradGradCheck(up, {x});
  const Tensor y = Normal({2, 2, 4, 6}, rng);
  auto pool = [](const std::vector<Var>& in) { return Tanh(SumPool2x(in[0])); };
  EXPECT_TRUE(GradCheck(pool, {y}).ok()) << GradCheck(pool, {y});
  EXPECT_TRUE(GradGradCheck(pool, {y}).ok()) << GradGradCheck(pool, {y});
}

}  // namespace
}  // namespace otgen::nn
