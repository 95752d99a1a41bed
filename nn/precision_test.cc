#include "nn/precision.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "nn/autograd.h"
#include "nn/conv_ops.h"
#include "nn/ops.h"
#include "nn/random.h"
#include "nn/tensor.h"
#include "nn/tensor_math.h"

namespace otgen::nn {
namespace {

using internal::ConvertToBFloat16;
using internal::FromBFloat16;
using internal::ToBFloat16;

// ---- Rounding -----------------------------------------------------------------------------

TEST(BFloat16Test, RoundsToNearestEven) {
  EXPECT_EQ(ToBFloat16(1.0f), 0x3f80);
  EXPECT_EQ(ToBFloat16(-2.0f), 0xc000);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1).
  EXPECT_EQ(ToBFloat16(1.0f + 0x1p-8f), 0x3f80);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
  EXPECT_EQ(ToBFloat16(1.0f + 3 * 0x1p-8f), 0x3f82);
  // Just above the halfway point rounds up.
  EXPECT_EQ(ToBFloat16(std::nextafter(1.0f + 0x1p-8f, 2.0f)), 0x3f81);
  EXPECT_EQ(FromBFloat16(ToBFloat16(3.140625f)), 3.140625f);  // exactly representable
  EXPECT_EQ(ToBFloat16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(ToBFloat16(std::numeric_limits<float>::max()), 0x7f80);  // rounds to +inf
  EXPECT_TRUE(std::isnan(FromBFloat16(ToBFloat16(std::numeric_limits<float>::quiet_NaN()))));
  // A NaN whose payload sits in the low 16 bits stays a NaN (not an infinity).
  EXPECT_TRUE(std::isnan(FromBFloat16(ToBFloat16(std::bit_cast<float>(0x7f800001u)))));
  // Denormals flush to a zero of the same sign (as VCVTNEPS2BF16 does).
  EXPECT_EQ(ToBFloat16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(ToBFloat16(-std::numeric_limits<float>::denorm_min()), 0x8000);
}

TEST(BFloat16Test, RelativeErrorIsAtMostTwoToTheMinusEight) {
  Rng rng(3);
  const Tensor x = Tensor::Normal({4096}, 0.0f, 10.0f, rng);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float v = x.data()[i];
    EXPECT_LE(std::fabs(FromBFloat16(ToBFloat16(v)) - v), std::ldexp(std::fabs(v), -8)) << v;
  }
}

TEST(BFloat16Test, VectorConversionMatchesScalar) {
  Rng rng(4);
  Tensor x = Tensor::Normal({1000 + 7}, 0.0f, 100.0f, rng);  // a tail after the 16-wide blocks
  x.data()[3] = std::numeric_limits<float>::infinity();
  x.data()[5] = -std::numeric_limits<float>::quiet_NaN();
  x.data()[17] = std::numeric_limits<float>::denorm_min();
  x.data()[18] = -0.0f;
  x.data()[1001] = 1.0f + 0x1p-8f;
  std::vector<uint16_t> out(x.numel(), 0xdead);
  ConvertToBFloat16(x.data(), x.numel(), out.data());
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (std::isnan(x.data()[i])) {
      EXPECT_TRUE(std::isnan(FromBFloat16(out[i]))) << i;
    } else {
      EXPECT_EQ(out[i], ToBFloat16(x.data()[i])) << i << ": " << x.data()[i];
    }
  }
}

TEST(BFloat16Test, RecognizesNativeImplementations) {
  EXPECT_TRUE(internal::IsNativeBFloat16Impl("brg:avx512_core_bf16"));
  EXPECT_TRUE(internal::IsNativeBFloat16Impl("jit:avx512_core_amx"));
  EXPECT_FALSE(internal::IsNativeBFloat16Impl("brg:avx512_core"));
  EXPECT_FALSE(internal::IsNativeBFloat16Impl("ref:any"));
}

// ---- The mode ------------------------------------------------------------------------------

TEST(ComputePrecisionTest, GuardsNestAndAreLocalToTheirThread) {
  ASSERT_EQ(DefaultComputePrecision(), ComputePrecision::kFloat32);
  EXPECT_EQ(CurrentComputePrecision(), ComputePrecision::kFloat32);
  EXPECT_FALSE(BFloat16OperandsInEffect());
  {
    ComputePrecisionGuard outer(ComputePrecision::kBFloat16);
    EXPECT_EQ(CurrentComputePrecision(), ComputePrecision::kBFloat16);
    EXPECT_EQ(BFloat16OperandsInEffect(), NativeBFloat16Available());
    ComputePrecision seen_by_other_thread = ComputePrecision::kBFloat16;
    std::thread([&] { seen_by_other_thread = CurrentComputePrecision(); }).join();
    EXPECT_EQ(seen_by_other_thread, ComputePrecision::kFloat32);
    {
      ComputePrecisionGuard inner(ComputePrecision::kFloat32);
      EXPECT_EQ(CurrentComputePrecision(), ComputePrecision::kFloat32);
    }
    EXPECT_EQ(CurrentComputePrecision(), ComputePrecision::kBFloat16);
  }
  EXPECT_EQ(CurrentComputePrecision(), ComputePrecision::kFloat32);

  SetDefaultComputePrecision(ComputePrecision::kBFloat16);
  EXPECT_EQ(CurrentComputePrecision(), ComputePrecision::kBFloat16);
  {
    ComputePrecisionGuard f32(ComputePrecision::kFloat32);
    EXPECT_EQ(CurrentComputePrecision(), ComputePrecision::kFloat32);
  }
  SetDefaultComputePrecision(ComputePrecision::kFloat32);
  EXPECT_EQ(CurrentComputePrecision(), ComputePrecision::kFloat32);
}

TEST(ComputePrecisionTest, ParsesNamesAndRejectsOthers) {
  EXPECT_EQ(*ParseComputePrecision("bf16"), ComputePrecision::kBFloat16);
  EXPECT_EQ(*ParseComputePrecision("bfloat16"), ComputePrecision::kBFloat16);
  EXPECT_EQ(*ParseComputePrecision("float32"), ComputePrecision::kFloat32);
  EXPECT_EQ(*ParseComputePrecision("fp32"), ComputePrecision::kFloat32);
  const absl::StatusOr<ComputePrecision> bad = ParseComputePrecision("half");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("\"half\""), std::string::npos) << bad.status();
  EXPECT_NE(bad.status().message().find("bfloat16"), std::string::npos) << bad.status();
  EXPECT_STREQ(ComputePrecisionName(ComputePrecision::kBFloat16), "bfloat16");
}

// ---- Products and convolutions in bf16 -------------------------------------------------------

// x with every entry rounded to bf16 (as a float tensor).
Tensor RoundedToBFloat16(const Tensor& x) {
  Tensor r = x.Clone();
  for (int64_t i = 0; i < r.numel(); ++i) r.data()[i] = FromBFloat16(ToBFloat16(r.data()[i]));
  return r;
}

// max |a - b| / max |b| (both the same shape).
double RelativeMaxError(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double err = 0.0, scale = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    err = std::max(err, std::fabs(static_cast<double>(a.data()[i]) - b.data()[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b.data()[i])));
  }
  return err / scale;
}

// ||a - b||_2 / ||b||_2.
double RelativeNormError(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double err = 0.0, norm = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = static_cast<double>(a.data()[i]) - b.data()[i];
    err += d * d;
    norm += static_cast<double>(b.data()[i]) * b.data()[i];
  }
  return std::sqrt(err / norm);
}

class BFloat16ComputeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!NativeBFloat16Available()) GTEST_SKIP() << "no native bf16 dot products on this CPU";
  }
};

// A bf16 product equals the float32 product of the bf16-rounded operands (up to float32 summation
// order), and is measurably not the float32 product of the raw operands.
TEST_F(BFloat16ComputeTest, MatMulMultipliesRoundedOperandsWithFloatAccumulation) {
  Rng rng(5);
  struct Case {
    Shape a, b;
    bool ta, tb;
  };
  for (const Case& c : {Case{{96, 80}, {80, 64}, false, false}, Case{{96, 80}, {64, 80}, false, true},
                        Case{{80, 96}, {80, 64}, true, false}, Case{{3, 40, 50}, {3, 50, 30}, false, false}}) {
    const Tensor a = Tensor::Normal(c.a, 0.0f, 1.0f, rng);
    const Tensor b = Tensor::Normal(c.b, 0.0f, 1.0f, rng);
    const Tensor exact = math::MatMul(a, b, c.ta, c.tb);
    const Tensor of_rounded = math::MatMul(RoundedToBFloat16(a), RoundedToBFloat16(b), c.ta, c.tb);
    Tensor mixed;
    {
      ComputePrecisionGuard bf16(ComputePrecision::kBFloat16);
      mixed = math::MatMul(a, b, c.ta, c.tb);
    }
    EXPECT_LT(RelativeMaxError(mixed, of_rounded), 1e-5) << c.ta << c.tb;
    const double vs_exact = RelativeMaxError(mixed, exact);
    EXPECT_GT(vs_exact, 1e-4) << "the bf16 path did not run";
    EXPECT_LT(vs_exact, 2e-2);
    // And float32 mode is untouched by the bf16 primitives in the cache.
    EXPECT_EQ(RelativeMaxError(math::MatMul(a, b, c.ta, c.tb), exact), 0.0);
  }
}

// Linear's bias rides on the bf16 product (a float32 bias, added exactly).
TEST_F(BFloat16ComputeTest, LinearWithBiasMultipliesRoundedOperands) {
  Rng rng(6);
  const Tensor x = Tensor::Normal({96, 80}, 0.0f, 1.0f, rng), w = Tensor::Normal({64, 80}, 0.0f, 1.0f, rng);
  const Tensor b = Tensor::Normal({64}, 0.0f, 1.0f, rng);
  const Tensor of_rounded = math::Linear(RoundedToBFloat16(x), RoundedToBFloat16(w), b);
  Tensor mixed;
  {
    ComputePrecisionGuard bf16(ComputePrecision::kBFloat16);
    mixed = math::Linear(x, w, b);
  }
  EXPECT_LT(RelativeMaxError(mixed, of_rounded), 1e-5);
  EXPECT_GT(RelativeMaxError(mixed, math::Linear(x, w, b)), 1e-4) << "the bf16 path did not run";
}

// Without native bf16 (AVX2-only CPUs, where oneDNN 2.6 cannot even create a bf16 matmul or
// convolution), kBFloat16 mode computes exactly as float32: same results, no exception.
TEST(BFloat16FallbackTest, WithoutNativeBFloat16ProductsStayFloat32) {
  if (NativeBFloat16Available()) GTEST_SKIP() << "this CPU has native bf16; the fallback does not apply";
  Rng rng(10);
  const Tensor a = Tensor::Normal({96, 80}, 0.0f, 1.0f, rng);
  const Tensor b = Tensor::Normal({80, 64}, 0.0f, 1.0f, rng);
  const Tensor x = Tensor::Normal({4, 32, 14, 14}, 0.0f, 1.0f, rng);
  const Tensor w = Tensor::Normal({48, 32, 5, 5}, 0.0f, 0.1f, rng);
  const Tensor wt = Tensor::Normal({48, 32, 4, 4}, 0.0f, 0.1f, rng);  // [C_in, C_out, k, k]
  auto products = [&] {
    std::vector<Tensor> out = {math::MatMul(a, b, false, false), math::MatMul(a, a, false, true)};
    Var xs(x, true), ws(w, true), wts(wt, true);
    Var y = Conv2d(xs, ws, Var(), {.stride = 2, .padding = 2});
    Var yt = ConvTranspose2d(y, wts, Var(), {.stride = 2, .padding = 1});
    std::vector<Var> grads = Grad({SumAll(Square(yt))}, {xs, ws, wts});
    out.push_back(yt.value());
    for (const Var& g : grads) out.push_back(g.value());
    return out;
  };
  const std::vector<Tensor> f32 = products();
  ComputePrecisionGuard bf16(ComputePrecision::kBFloat16);
  EXPECT_FALSE(BFloat16OperandsInEffect());
  const std::vector<Tensor> mixed = products();
  ASSERT_EQ(mixed.size(), f32.size());
  for (size_t i = 0; i < f32.size(); ++i) EXPECT_EQ(RelativeMaxError(mixed[i], f32[i]), 0.0) << "product " << i;
}

struct ConvCase {
  int64_t n, c_in, c_out, h, k, stride, padding;
  int64_t output_padding = 0;
  bool transposed = false;
};

// Forward, data gradient and weight gradient of a (transposed) convolution in bf16 mode against
// float32 on bf16-rounded inputs: y = conv(x, w), dx and dw for the upstream gradient g (rounded
// too: it is an operand of the backward products).
void ExpectConvMatchesRoundedFloat(const ConvCase& cc) {
  Rng rng(6);
  const Shape w_shape = cc.transposed ? Shape{cc.c_in, cc.c_out, cc.k, cc.k} : Shape{cc.c_out, cc.c_in, cc.k, cc.k};
  const Tensor x = Tensor::Normal({cc.n, cc.c_in, cc.h, cc.h}, 0.0f, 1.0f, rng);
  const Tensor w = Tensor::Normal(w_shape, 0.0f, 0.1f, rng);
  const Tensor b = Tensor::Normal({cc.c_out}, 0.0f, 0.1f, rng);
  const Conv2dGeometry g{.stride = cc.stride, .padding = cc.padding, .output_padding = cc.output_padding};
  auto run = [&](const Tensor& xv, const Tensor& wv, const Tensor* upstream, Tensor* y, Tensor* dx, Tensor* dw) {
    Var xs(xv, true), ws(wv, true), bs(b, true);
    Var out = cc.transposed ? ConvTranspose2d(xs, ws, bs, g) : Conv2d(xs, ws, bs, g);
    *y = out.value();
    const Tensor up = upstream != nullptr ? *upstream : Tensor::Ones(out.shape());
    std::vector<Var> grads = Grad({out}, {xs, ws}, {Var(up)});
    *dx = grads[0].value();
    *dw = grads[1].value();
  };
  Tensor y0, dx0, dw0;
  run(x, w, nullptr, &y0, &dx0, &dw0);
  Rng grng(7);
  const Tensor upstream = Tensor::Normal(y0.shape(), 0.0f, 1.0f, grng);
  Tensor y_ref, dx_ref, dw_ref, y_exact, dx_exact, dw_exact, y, dx, dw;
  const Tensor rounded_upstream = RoundedToBFloat16(upstream);
  run(RoundedToBFloat16(x), RoundedToBFloat16(w), &rounded_upstream, &y_ref, &dx_ref, &dw_ref);
  run(x, w, &upstream, &y_exact, &dx_exact, &dw_exact);
  {
    ComputePrecisionGuard bf16(ComputePrecision::kBFloat16);
    run(x, w, &upstream, &y, &dx, &dw);
  }
  EXPECT_LT(RelativeMaxError(y, y_ref), 1e-5);
  EXPECT_LT(RelativeMaxError(dx, dx_ref), 1e-5);
  EXPECT_LT(RelativeMaxError(dw, dw_ref), 1e-5);
  EXPECT_GT(RelativeMaxError(y, y_exact), 1e-4) << "the bf16 forward did not run";
  EXPECT_GT(RelativeMaxError(dx, dx_exact), 1e-4) << "the bf16 data gradient did not run";
  EXPECT_GT(RelativeMaxError(dw, dw_exact), 1e-4) << "the bf16 weight gradient did not run";
  EXPECT_LT(RelativeMaxError(y, y_exact), 2e-2);
  EXPECT_LT(RelativeMaxError(dx, dx_exact), 2e-2);
  EXPECT_LT(RelativeMaxError(dw, dw_exact), 2e-2);
}

TEST_F(BFloat16ComputeTest, Conv2dForwardAndGradientsUseRoundedOperands) {
  // DCGAN critic-like: 32 -> 48 channels, k5 s2 p2 (blocked layouts; the data gradient goes through
  // the GEMM + col2im path since it writes 32 >= 16 channels).
  ExpectConvMatchesRoundedFloat({.n = 4, .c_in = 32, .c_out = 48, .h = 14, .k = 5, .stride = 2, .padding = 2});
}

TEST_F(BFloat16ComputeTest, ConvTranspose2dForwardAndGradientsUseRoundedOperands) {
  // SDOT-generator-like: 48 -> 32 channels, k4 s2 p1 (forward through the GEMM path).
  ExpectConvMatchesRoundedFloat(
      {.n = 4, .c_in = 48, .c_out = 32, .h = 7, .k = 4, .stride = 2, .padding = 1, .transposed = true});
}

TEST_F(BFloat16ComputeTest, FewChannelOutputsStayFloat32) {
  // A transposed convolution to 1 channel runs a plain-layout float32 kernel in either mode.
  Rng rng(8);
  const Var x(Tensor::Normal({2, 16, 7, 7}, 0.0f, 1.0f, rng));
  const Var w(Tensor::Normal({16, 1, 3, 3}, 0.0f, 0.1f, rng));
  const Tensor f32 = ConvTranspose2d(x, w, Var(), {.stride = 1, .padding = 1}).value();
  ComputePrecisionGuard bf16(ComputePrecision::kBFloat16);
  const Tensor mixed = ConvTranspose2d(x, w, Var(), {.stride = 1, .padding = 1}).value();
  EXPECT_EQ(RelativeMaxError(mixed, f32), 0.0);
}

// A gradient penalty (second order through conv and linear) in bf16 mode stays within the bf16
// error of the float32 one.
TEST_F(BFloat16ComputeTest, GradientPenaltyIsCloseToFloat32) {
  Rng rng(9);
  const Tensor xv = Tensor::Normal({8, 16, 8, 8}, 0.0f, 1.0f, rng);
  const Tensor w1 = Tensor::Normal({32, 16, 3, 3}, 0.0f, 0.1f, rng);
  const Tensor w2 = Tensor::Normal({1, 32 * 4 * 4}, 0.0f, 0.3f, rng);  // ||grad_x D|| ~ 4, far from 1
  auto penalty_grads = [&] {
    Var x(xv, true), a(w1, true), l(w2, true);
    Var h = LeakyRelu(Conv2d(x, a, Var(), {.stride = 2, .padding = 1}), 0.2f);
    Var d = MatMul(Reshape(h, {8, 32 * 4 * 4}), l, false, true);
    Var gx = Grad({SumAll(d)}, {x}, {}, {.create_graph = true})[0];
    Var gp = MeanAll(Square(Sqrt(Sum(Square(Reshape(gx, {8, 16 * 8 * 8})), {1})) - 1.0f));
    std::vector<Var> g = Grad({gp}, {a, l});
    return std::vector<Tensor>{gp.value(), g[0].value(), g[1].value()};
  };
  const std::vector<Tensor> f32 = penalty_grads();
  std::vector<Tensor> mixed;
  {
    ComputePrecisionGuard bf16(ComputePrecision::kBFloat16);
    mixed = penalty_grads();
  }
  for (size_t k = 0; k < f32.size(); ++k) {
    // Three chained bf16 products (forward, data gradient, its derivative), each with relative
    // operand errors up to 2^-8: measured 0.3-1.3%; bound 8 * 2^-8.
    EXPECT_LT(RelativeNormError(mixed[k], f32[k]), 8 * 0x1p-8) << k;
    EXPECT_GT(RelativeNormError(mixed[k], f32[k]), 1e-5) << k;
  }
}

}  // namespace
}  // namespace otgen::nn
