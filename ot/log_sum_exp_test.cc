#include "ot/log_sum_exp.h"

#include <cfloat>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "absl/random/random.h"
#include "gtest/gtest.h"

namespace otgen::ot {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::mt19937_64 SeededGen(int seed) {
  std::seed_seq seq{seed};
  return std::mt19937_64(seq);
}

// log sum_j exp(bias_j - scale c_j) in double.
double ReferenceLse(const std::vector<float>& bias, const float* c, int n, float scale) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int j = 0; j < n; ++j) mx = std::max(mx, static_cast<double>(bias[j]) - scale * c[j]);
  if (std::isinf(mx)) return mx;
  double s = 0.0;
  for (int j = 0; j < n; ++j) s += std::exp(static_cast<double>(bias[j]) - scale * c[j] - mx);
  return mx + std::log(s);
}

TEST(LogSumExpTest, ExpIsAccurateOverTheWholeRange) {
  std::vector<float> x;
  for (float t = -87.3f; t < 88.7f; t += 0.00137f) x.push_back(t);
  std::vector<float> y = x;
  ExpInPlace(y.data(), static_cast<int64_t>(y.size()));
  double worst = 0.0;
  for (size_t k = 0; k < x.size(); ++k) {
    const double expected = std::exp(static_cast<double>(x[k]));
    worst = std::max(worst, std::fabs(y[k] - expected) / expected);
  }
  EXPECT_LT(worst, 3e-7);
}

TEST(LogSumExpTest, ExpSpecialValues) {
  std::vector<float> x = {
      0.0f,  -kInf, -88.0f, -1000.0f, 89.0f,  kInf,  1.0f,   -1.0f, 0.5f,
      -0.5f, 2.0f,  3.0f,   10.0f,    -10.0f, 20.0f, -20.0f, -87.0f};  // 17: a tail
  std::vector<float> y = x;
  ExpInPlace(y.data(), static_cast<int64_t>(y.size()));
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[2], 0.0f);  // below the denormal threshold: flushed
  EXPECT_EQ(y[3], 0.0f);
  EXPECT_EQ(y[4], kInf);
  EXPECT_EQ(y[5], kInf);
  for (size_t k = 6; k < x.size(); ++k) {
    EXPECT_NEAR(y[k], std::exp(static_cast<double>(x[k])), 3e-7 * std::exp(x[k])) << x[k];
  }
}

TEST(LogSumExpTest, ExpAffineRowMatchesFormulaAndAllowsAliasing) {
  std::mt19937_64 gen = SeededGen(201);
  for (int n : {1, 5, 16, 17, 100}) {
    std::vector<float> bias(n), c(n), out(n);
    for (int j = 0; j < n; ++j) {
      bias[j] = absl::Uniform(gen, -5.0f, 0.0f);
      c[j] = absl::Uniform(gen, 0.0f, 2.0f);
    }
    bias[0] = -kInf;  // a zero weight
    ExpAffineRow(bias.data(), c.data(), n, 0.25f, 3.0f, out.data());
    for (int j = 0; j < n; ++j) {
      const double expected = std::exp(static_cast<double>(bias[j]) + 0.25 - 3.0 * c[j]);
      EXPECT_NEAR(out[j], expected, 1e-6 * expected + 1e-30);
    }
    EXPECT_EQ(out[0], 0.0f);
    ExpAffineRow(bias.data(), c.data(), n, 0.25f, 3.0f, c.data());  // in place
    for (int j = 0; j < n; ++j) EXPECT_EQ(c[j], out[j]);
  }
}

TEST(LogSumExpTest, RowLogSumExpMatchesDoubleReferenceForAllLengths) {
  std::mt19937_64 gen = SeededGen(202);
  for (int n = 1; n <= 150; ++n) {
    std::vector<float> bias(n), c(n);
    for (int j = 0; j < n; ++j) {
      bias[j] = absl::Uniform(gen, -30.0f, 30.0f);
      c[j] = absl::Uniform(gen, 0.0f, 10.0f);
    }
    if (n > 3) bias[n / 2] = -kInf;
    for (float scale : {0.1f, 1.0f, 100.0f}) {
      const LogSumExpAccumulator acc = RowLogSumExp(bias.data(), c.data(), n, scale);
      const double expected = ReferenceLse(bias, c.data(), n, scale);
      ASSERT_NEAR(acc.Log(), expected, 2e-6 * (1.0 + std::fabs(expected)))
          << "n=" << n << " scale=" << scale;
    }
  }
}

TEST(LogSumExpTest, RowLogSumExpIsStableForHugeValues) {
  // Values far outside exp's range: the max shift keeps the result exact.
  std::vector<float> bias = {1e5f, 1e5f - 1.0f, -1e5f, 1e5f};
  std::vector<float> c = {0.0f, 0.0f, 0.0f, 0.0f};
  const LogSumExpAccumulator acc = RowLogSumExp(bias.data(), c.data(), 4, 1.0f);
  const double expected = 1e5 + std::log(2.0 + std::exp(-1.0));
  EXPECT_NEAR(acc.Log(), expected, 1e-2);  // float resolution at 1e5 is ~8e-3
  EXPECT_NEAR(acc.sum, 2.0 + std::exp(-1.0), 1e-6);
}

TEST(LogSumExpTest, AccumulatingRowPiecesEqualsWholeRow) {
  std::mt19937_64 gen = SeededGen(203);
  const int n = 333;
  std::vector<float> bias(n), c(n);
  for (int j = 0; j < n; ++j) {
    bias[j] = absl::Uniform(gen, -10.0f, 10.0f);
    c[j] = absl::Uniform(gen, 0.0f, 5.0f);
  }
  // Put the overall max late so that the running sum must be rescaled.
  bias[300] = 40.0f;
  LogSumExpAccumulator acc;
  for (int j0 = 0; j0 < n; j0 += 50) {
    const int len = std::min(50, n - j0);
    AccumulateRowLogSumExp(bias.data() + j0, c.data() + j0, len, 0.5f, &acc);
  }
  EXPECT_NEAR(acc.Log(), ReferenceLse(bias, c.data(), n, 0.5f), 1e-5);
  // Merging two halves computed separately gives the same.
  LogSumExpAccumulator left = RowLogSumExp(bias.data(), c.data(), 200, 0.5f);
  const LogSumExpAccumulator right = RowLogSumExp(bias.data() + 200, c.data() + 200, n - 200, 0.5f);
  left.Merge(right);
  EXPECT_NEAR(left.Log(), ReferenceLse(bias, c.data(), n, 0.5f), 1e-5);
  // Merging with an empty accumulator changes nothing.
  LogSumExpAccumulator empty;
  empty.Merge(left);
  EXPECT_NEAR(empty.Log(), left.Log(), 1e-6);
}

TEST(LogSumExpTest, ColumnAccumulationMatchesReference) {
  std::mt19937_64 gen = SeededGen(204);
  for (int rows : {1, 15, 16, 17, 70}) {
    for (int cols : {1, 13, 16, 128, 129, 300}) {
      const int ldc = cols + 5;
      std::vector<float> c(static_cast<size_t>(rows) * ldc, 1e30f);  // padding must be ignored
      std::vector<float> row_bias(rows);
      for (int i = 0; i < rows; ++i) {
        row_bias[i] = absl::Uniform(gen, -20.0f, 20.0f);
        for (int j = 0; j < cols; ++j) c[i * ldc + j] = absl::Uniform(gen, 0.0f, 4.0f);
      }
      if (rows > 2) row_bias[1] = -kInf;
      // Fold the rows in two calls (the second one raises maxima in some columns).
      std::vector<float> col_max(cols + 3, -FLT_MAX), col_sum(cols + 3, 0.0f);
      col_max[cols] = 7.0f;  // beyond `cols`: must stay untouched
      const int split = rows / 2;
      AccumulateColumnLogSumExp(c.data(), ldc, split, cols, row_bias.data(), 2.0f, col_max.data(),
                                col_sum.data());
      AccumulateColumnLogSumExp(c.data() + split * ldc, ldc, rows - split, cols,
                                row_bias.data() + split, 2.0f, col_max.data(), col_sum.data());
      EXPECT_EQ(col_max[cols], 7.0f);
      for (int j = 0; j < cols; ++j) {
        std::vector<float> column(rows);
        for (int i = 0; i < rows; ++i) column[i] = c[i * ldc + j];
        const double expected = ReferenceLse(row_bias, column.data(), rows, 2.0f);
        const double got = col_max[j] + std::log(static_cast<double>(col_sum[j]));
        ASSERT_NEAR(got, expected, 2e-6 * (1.0 + std::fabs(expected)))
            << "rows=" << rows << " cols=" << cols << " j=" << j;
      }
    }
  }
}

TEST(LogSumExpTest, MergeColumnsEqualsAccumulatingAllRowsAtOnce) {
  std::mt19937_64 gen = SeededGen(230);
  const int rows = 40, cols = 37, parts = 5;
  std::vector<float> c(rows * cols), row_bias(rows);
  for (float& v : c) v = absl::Uniform(gen, 0.0f, 5.0f);
  for (float& v : row_bias) v = absl::Uniform(gen, -30.0f, 30.0f);
  row_bias[3] = -kInf;
  // Whole: all rows into one accumulator. Parts: rows split into 5 accumulators, then merged.
  std::vector<float> whole_max(cols, -FLT_MAX), whole_sum(cols, 0.0f);
  AccumulateColumnLogSumExp(c.data(), cols, rows, cols, row_bias.data(), 1.5f, whole_max.data(),
                            whole_sum.data());
  std::vector<std::vector<float>> part_max(parts, std::vector<float>(cols, -FLT_MAX));
  std::vector<std::vector<float>> part_sum(parts, std::vector<float>(cols, 0.0f));
  std::vector<const float*> maxes, sums;
  for (int k = 0; k < parts; ++k) {
    const int r0 = k * rows / parts, r1 = (k + 1) * rows / parts;
    AccumulateColumnLogSumExp(c.data() + r0 * cols, cols, r1 - r0, cols, row_bias.data() + r0, 1.5f,
                              part_max[k].data(), part_sum[k].data());
    maxes.push_back(part_max[k].data());
    sums.push_back(part_sum[k].data());
  }
  std::vector<float> merged_max(cols), merged_sum(cols), generic_max(cols), generic_sum(cols);
  MergeColumnLogSumExp(maxes.data(), sums.data(), parts, cols, merged_max.data(),
                       merged_sum.data());
  internal::MergeColumnLogSumExpGeneric(maxes.data(), sums.data(), parts, cols, generic_max.data(),
                                        generic_sum.data());
  for (int j = 0; j < cols; ++j) {
    const double whole = whole_max[j] + std::log(static_cast<double>(whole_sum[j]));
    EXPECT_NEAR(merged_max[j] + std::log(static_cast<double>(merged_sum[j])), whole,
                1e-5 * (1.0 + std::fabs(whole)))
        << j;
    EXPECT_NEAR(generic_max[j] + std::log(static_cast<double>(generic_sum[j])), whole,
                1e-5 * (1.0 + std::fabs(whole)))
        << j;
  }
  // In place over the first input.
  MergeColumnLogSumExp(maxes.data(), sums.data(), parts, cols, part_max[0].data(),
                       part_sum[0].data());
  for (int j = 0; j < cols; ++j) {
    EXPECT_EQ(part_max[0][j], merged_max[j]);
    EXPECT_EQ(part_sum[0][j], merged_sum[j]);
  }
}

TEST(LogSumExpTest, VectorAndGenericPathsAgree) {
  std::mt19937_64 gen = SeededGen(205);
  const int rows = 37, cols = 211, ldc = 224;
  std::vector<float> c(rows * ldc), bias(ldc), row_bias(rows);
  for (float& v : c) v = absl::Uniform(gen, 0.0f, 3.0f);
  for (float& v : bias) v = absl::Uniform(gen, -3.0f, 3.0f);
  for (float& v : row_bias) v = absl::Uniform(gen, -3.0f, 3.0f);

  const LogSumExpAccumulator fast = RowLogSumExp(bias.data(), c.data(), cols, 1.7f);
  LogSumExpAccumulator slow;
  internal::AccumulateRowLogSumExpGeneric(bias.data(), c.data(), cols, 1.7f, &slow);
  EXPECT_NEAR(fast.Log(), slow.Log(), 1e-5);

  std::vector<float> m1(cols, -FLT_MAX), s1(cols, 0.0f), m2 = m1, s2 = s1;
  AccumulateColumnLogSumExp(c.data(), ldc, rows, cols, row_bias.data(), 1.7f, m1.data(), s1.data());
  internal::AccumulateColumnLogSumExpGeneric(c.data(), ldc, rows, cols, row_bias.data(), 1.7f,
                                             m2.data(), s2.data());
  for (int j = 0; j < cols; ++j) {
    EXPECT_NEAR(m1[j] + std::log(s1[j]), m2[j] + std::log(s2[j]), 1e-5) << j;
  }

  std::vector<float> e1(c.begin(), c.begin() + 300), e2 = e1;
  for (float& v : e1) v = -v * 10.0f;
  e2 = e1;
  ExpInPlace(e1.data(), 300);
  internal::ExpInPlaceGeneric(e2.data(), 300);
  for (int j = 0; j < 300; ++j) EXPECT_NEAR(e1[j], e2[j], 3e-7 * e2[j] + 1e-38);
}

}  // namespace
}  // namespace otgen::ot
