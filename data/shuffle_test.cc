#include "data/shuffle.h"

#include <algorithm>
#include <array>
#include <map>
#include <numeric>
#include <vector>

#include "gtest/gtest.h"

namespace otgen::data {
namespace {

TEST(FisherYatesShuffleTest, IsAPermutationAndDeterministic) {
  std::vector<int> a(1000), b(1000);
  std::iota(a.begin(), a.end(), 0);
  std::iota(b.begin(), b.end(), 0);
  nn::Rng r1(7), r2(7);
  FisherYatesShuffle(absl::MakeSpan(a), r1);
  FisherYatesShuffle(absl::MakeSpan(b), r2);
  EXPECT_EQ(a, b);
  std::vector<int> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(sorted[i], i);
  int fixed = 0;
  for (int i = 0; i < 1000; ++i) fixed += a[i] == i;
  EXPECT_LT(fixed, 10);  // a uniform permutation has 1 fixed point on average
  nn::Rng r3(8);
  std::iota(b.begin(), b.end(), 0);
  FisherYatesShuffle(absl::MakeSpan(b), r3);
  EXPECT_NE(a, b);
}

TEST(FisherYatesShuffleTest, EmptyAndSingletonDrawNothing) {
  nn::Rng rng(1), ref(1);
  std::vector<int> none;
  FisherYatesShuffle(absl::MakeSpan(none), rng);
  std::vector<int> one = {5};
  FisherYatesShuffle(absl::MakeSpan(one), rng);
  EXPECT_EQ(one[0], 5);
  EXPECT_EQ(rng.NextU64(), ref.NextU64());
}

TEST(FisherYatesShuffleTest, AllPermutationsEquallyLikely) {
  // 24 permutations of 4 elements, 48000 shuffles: chi-square with 23 degrees of freedom.
  nn::Rng rng(2024);
  std::map<std::array<int, 4>, int> counts;
  constexpr int kTrials = 48000;
  for (int t = 0; t < kTrials; ++t) {
    std::array<int, 4> p = {0, 1, 2, 3};
    FisherYatesShuffle(absl::MakeSpan(p), rng);
    ++counts[p];
  }
  ASSERT_EQ(counts.size(), 24u);
  const double expected = kTrials / 24.0;
  double chi2 = 0;
  for (const auto& [perm, c] : counts) chi2 += (c - expected) * (c - expected) / expected;
  EXPECT_LT(chi2, 55.0);  // P(chi2_23 > 55) ~ 2e-4
}

}  // namespace
}  // namespace otgen::data
