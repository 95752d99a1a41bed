// ThinProduct against double loops on every layout (both transposes), every small dimension
// and the bias / activation variants. Built twice: with the build's instruction set (AVX-512
// kernels here) and with -mno-avx512f (the portable loops other CPUs run).
#include "nn/thin_product.h"

#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace otgen::nn::internal {
namespace {

struct Dims {
  int64_t m, k, n;
};

TEST(ThinProductTest, EveryLayoutMatchesDoubleReference) {
  std::mt19937_64 gen(3);
  std::normal_distribution<float> normal;
  for (const Dims& d : {Dims{130, 1, 70}, Dims{37, 2, 16}, Dims{5, 3, 129}, Dims{64, 4, 64}, Dims{70, 300, 1},
                        Dims{129, 17, 2}, Dims{65, 64, 3}, Dims{3, 40, 4}, Dims{1, 300, 70}, Dims{2, 33, 129},
                        Dims{4, 5, 4}, Dims{3, 1, 2}}) {
    std::vector<float> a(d.m * d.k), b(d.k * d.n), bias(d.n);
    for (float& v : a) v = normal(gen);
    for (float& v : b) v = normal(gen);
    for (float& v : bias) v = normal(gen);
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        for (int variant = 0; variant < 3; ++variant) {  // plain; bias + ReLU; bias + leaky ReLU 0.2
          const bool with_bias = variant > 0;
          const std::optional<float> relu =
              variant == 0 ? std::nullopt : std::optional<float>(variant == 1 ? 0.0f : 0.2f);
          std::vector<float> c(d.m * d.n, -7.0f);
          ThinProduct({a.data(), b.data(), d.m, d.n, d.k, ta, tb}, with_bias ? bias.data() : nullptr, relu, c.data());
          const std::string what = "[" + std::to_string(d.m) + ", " + std::to_string(d.k) + "] x [" +
                                   std::to_string(d.k) + ", " + std::to_string(d.n) + "] ta " + std::to_string(ta) +
                                   " tb " + std::to_string(tb) + " variant " + std::to_string(variant);
          for (int64_t i = 0; i < d.m; ++i) {
            for (int64_t j = 0; j < d.n; ++j) {
              double t = with_bias ? bias[j] : 0.0, abs_sum = std::abs(t);
              for (int64_t l = 0; l < d.k; ++l) {
                const double p = static_cast<double>(ta ? a[l * d.m + i] : a[i * d.k + l]) *
                                 (tb ? b[j * d.k + l] : b[l * d.n + j]);
                t += p;
                abs_sum += std::abs(p);
              }
              const double want = relu.has_value() && t <= 0 ? *relu * t : t;
              ASSERT_NEAR(c[i * d.n + j], want, 1e-6 * abs_sum + 1e-6) << what << " element (" << i << ", " << j << ")";
            }
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace otgen::nn::internal
