#include "nn/column_sums.h"

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace otgen::nn::internal {
namespace {

struct Block {
  int64_t rows, cols;
  float offset;  // added to every x value
};

// Every kind against double loops, on blocks with partial row tiles (64 rows), an odd last
// row, partial 16-lane groups and a leading dimension wider than the block.
TEST(ColumnSumsTest, EveryKindMatchesDoubleReference) {
  std::mt19937_64 gen(7);
  std::normal_distribution<float> normal;
  for (const Block& blk : {Block{1, 1, 0}, Block{2, 17, 0}, Block{63, 64, 0.5f}, Block{131, 50, -3},
                           Block{256, 64, 0}, Block{300, 33, 10}}) {
    const int64_t ld = blk.cols + 5;
    std::vector<float> x(blk.rows * ld), g(blk.rows * ld), mu(blk.cols);
    for (float& v : x) v = blk.offset + normal(gen);
    for (float& v : g) v = normal(gen);
    for (float& v : mu) v = blk.offset + 0.1f * normal(gen);
    std::vector<double> sum(blk.cols, 0), dev(blk.cols, 0), sq(blk.cols, 0), gs(blk.cols, 0), gx(blk.cols, 0);
    for (int64_t r = 0; r < blk.rows; ++r) {
      for (int64_t j = 0; j < blk.cols; ++j) {
        const double v = x[r * ld + j], d = v - mu[j], gv = g[r * ld + j];
        sum[j] += v;
        dev[j] += d;
        sq[j] += d * d;
        gs[j] += gv;
        gx[j] += gv * d;
      }
    }
    // Start the accumulators at 1 to check that the kernels add to them.
    std::vector<double> a(blk.cols, 1.0), b(blk.cols, 1.0);
    auto expect = [&](const std::vector<double>& got, const std::vector<double>& want, const char* what) {
      for (int64_t j = 0; j < blk.cols; ++j) {
        EXPECT_NEAR(got[j], 1.0 + want[j], 1e-5 * (blk.rows + std::abs(want[j])))
            << what << " column " << j << " of [" << blk.rows << ", " << blk.cols << "]";
      }
    };
    for (int64_t c0 = 0; c0 < blk.cols; c0 += kColumnTile) {
      const int64_t w = std::min(kColumnTile, blk.cols - c0);
      ColumnSums<ColumnSum::kSum>(x.data() + c0, nullptr, blk.rows, ld, w, nullptr, a.data() + c0, nullptr);
    }
    expect(a, sum, "sum");
    std::fill(a.begin(), a.end(), 1.0);
    for (int64_t c0 = 0; c0 < blk.cols; c0 += kColumnTile) {
      const int64_t w = std::min(kColumnTile, blk.cols - c0);
      ColumnSums<ColumnSum::kDeviation>(x.data() + c0, nullptr, blk.rows, ld, w, mu.data() + c0, a.data() + c0,
                                        nullptr);
    }
    expect(a, dev, "deviation");
    std::fill(a.begin(), a.end(), 1.0);
    for (int64_t c0 = 0; c0 < blk.cols; c0 += kColumnTile) {
      const int64_t w = std::min(kColumnTile, blk.cols - c0);
      ColumnSums<ColumnSum::kSquaredDeviation>(x.data() + c0, nullptr, blk.rows, ld, w, mu.data() + c0,
                                               a.data() + c0, nullptr);
    }
    expect(a, sq, "squared deviation");
    std::fill(a.begin(), a.end(), 1.0);
    for (int64_t c0 = 0; c0 < blk.cols; c0 += kColumnTile) {
      const int64_t w = std::min(kColumnTile, blk.cols - c0);
      ColumnSums<ColumnSum::kGradientMoments>(x.data() + c0, g.data() + c0, blk.rows, ld, w, mu.data() + c0,
                                              a.data() + c0, b.data() + c0);
    }
    expect(a, gs, "gradient sum");
    expect(b, gx, "gradient moment");
  }
}

TEST(ColumnSumsTest, SumRowsOfAContiguousMatrix) {
  const int64_t rows = 257, cols = 130;
  std::vector<float> x(rows * cols);
  for (int64_t i = 0; i < rows * cols; ++i) x[i] = static_cast<float>(i % 11) - 5.0f + 0.25f * (i % cols);
  std::vector<float> out(cols, -1.0f);
  SumRows(x.data(), rows, cols, out.data());
  for (int64_t j = 0; j < cols; ++j) {
    double want = 0;
    for (int64_t r = 0; r < rows; ++r) want += x[r * cols + j];
    EXPECT_NEAR(out[j], want, 1e-4 * (1 + std::abs(want))) << "column " << j;
  }
}

}  // namespace
}  // namespace otgen::nn::internal
