#include "nn/work_counter.h"

#include <cstdint>
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

// Multiply-adds counted while `f` runs.
template <typename F>
int64_t MacsOf(const F& f) {
  const int64_t before = ProductMacs();
  f();
  return ProductMacs() - before;
}

TEST(WorkCounterTest, CountsAddUpAndReset) {
  ResetProductMacs();
  CountProductMacs(5);
  CountProductMacs(7);
  EXPECT_EQ(ProductMacs(), 12);
  ResetProductMacs();
  EXPECT_EQ(ProductMacs(), 0);
}

TEST(WorkCounterTest, CountsFromAllThreads) {
  const int64_t before = ProductMacs();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < 1000; ++i) CountProductMacs(3);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ProductMacs() - before, 4 * 1000 * 3);
}

TEST(WorkCounterTest, MatMulCountsMnkPerBatchElement) {
  Rng rng(1);
  // Small products (a naive loop) and large ones (a oneDNN primitive) alike.
  const Tensor a = Tensor::Normal({3, 4}, 0, 1, rng), b = Tensor::Normal({4, 5}, 0, 1, rng);
  EXPECT_EQ(MacsOf([&] { math::MatMul(a, b); }), 3 * 4 * 5);
  const Tensor big_a = Tensor::Normal({200, 300}, 0, 1, rng), big_b = Tensor::Normal({100, 300}, 0, 1, rng);
  EXPECT_EQ(MacsOf([&] { math::MatMul(big_a, big_b, false, true); }), 200 * 100 * 300);
  const Tensor ba = Tensor::Normal({6, 20, 30}, 0, 1, rng), bb = Tensor::Normal({6, 20, 40}, 0, 1, rng);
  EXPECT_EQ(MacsOf([&] { math::MatMul(ba, bb, true, false); }), 6 * 30 * 40 * 20);
}

// A conv's forward, and the two products of its backward pass, each count N Co Ho Wo Ci Kh Kw.
TEST(WorkCounterTest, ConvolutionCountsForwardAndBothGradients) {
  Rng rng(2);
  const int64_t n = 2, ci = 16, co = 24, h = 14, k = 5;  // stride 2, padding 2: 14 -> 7
  const int64_t per_product = n * co * 7 * 7 * ci * k * k;
  Var x(Tensor::Normal({n, ci, h, h}, 0, 1, rng), true);
  Var w(Tensor::Normal({co, ci, k, k}, 0, 0.1f, rng), true);
  Var y;
  EXPECT_EQ(MacsOf([&] { y = Conv2d(x, w, Var(), {.stride = 2, .padding = 2}); }), per_product);
  EXPECT_EQ(MacsOf([&] { Grad({SumAll(y)}, {x, w}); }), 2 * per_product);
  EXPECT_EQ(MacsOf([&] { Grad({SumAll(y)}, {w}); }), per_product) << "the data gradient is not needed";

  // ConvTranspose2d(24 -> 16) from 7x7 to 14x14 is the backward-data product of the conv above.
  Var wt(Tensor::Normal({co, ci, k, k}, 0, 0.1f, rng), true);
  Var z = Var(Tensor::Normal({n, co, 7, 7}, 0, 1, rng), true);
  EXPECT_EQ(MacsOf([&] { ConvTranspose2d(z, wt, Var(), {.stride = 2, .padding = 2, .output_padding = 1}); }),
            per_product);
}

}  // namespace
}  // namespace otgen::nn
