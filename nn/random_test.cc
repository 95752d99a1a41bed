#include "nn/random.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace otgen::nn {
namespace {

TEST(RngTest, SameSeedSameStreamDifferentSeedDifferentStream) {
  Rng a(7), b(7), c(8), d(7, /*stream=*/1);
  int equal_c = 0, equal_d = 0;
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.NextU64();
    EXPECT_EQ(x, b.NextU64());
    equal_c += (x == c.NextU64());
    equal_d += (x == d.NextU64());
  }
  EXPECT_EQ(equal_c, 0);
  EXPECT_EQ(equal_d, 0);
}

TEST(RngTest, UniformMomentsAndRange) {
  Rng rng(1);
  const int n = 200000;
  double sum = 0, sum2 = 0;
  for (int i = 0; i < n; ++i) {
    const float u = rng.Uniform();
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    sum += u;
    sum2 += u * u;
  }
  const double mean = sum / n, var = sum2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.5, 4 * std::sqrt(1.0 / 12 / n));
  EXPECT_NEAR(var, 1.0 / 12, 2e-3);
}

TEST(RngTest, NormalMoments) {
  Rng rng(2);
  const int n = 200000;
  double s1 = 0, s2 = 0, s3 = 0, s4 = 0;
  for (int i = 0; i < n; ++i) {
    const double z = rng.Normal();
    s1 += z;
    s2 += z * z;
    s3 += z * z * z;
    s4 += z * z * z * z;
  }
  EXPECT_NEAR(s1 / n, 0.0, 0.01);
  EXPECT_NEAR(s2 / n, 1.0, 0.02);
  EXPECT_NEAR(s3 / n, 0.0, 0.05);
  EXPECT_NEAR(s4 / n, 3.0, 0.1);
}

TEST(RngTest, UniformIntIsUnbiased) {
  Rng rng(3);
  std::vector<int> counts(7, 0);
  const int n = 70000;
  for (int i = 0; i < n; ++i) {
    const uint64_t k = rng.UniformInt(7);
    ASSERT_LT(k, 7u);
    ++counts[k];
  }
  for (int c : counts) EXPECT_NEAR(c, n / 7.0, 5 * std::sqrt(n / 7.0));
}

TEST(RngTest, StateRoundTripIncludesCachedNormal) {
  Rng rng(4);
  rng.Normal();  // leaves a cached second normal
  const Rng::State s = rng.GetState();
  std::vector<float> expected;
  for (int i = 0; i < 5; ++i) expected.push_back(rng.Normal());
  Rng other(99);
  other.SetState(s);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(other.Normal(), expected[i]);
}

TEST(RngTest, SplitGivesIndependentStreams) {
  Rng rng(5);
  Rng a = rng.Split();
  Rng b = rng.Split();
  int equal = 0;
  for (int i = 0; i < 100; ++i) equal += (a.NextU64() == b.NextU64());
  EXPECT_EQ(equal, 0);
}

}  // namespace
}  // namespace otgen::nn
