#include "ot/cost.h"

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ot/types.h"

namespace otgen::ot {
namespace {

using ::testing::HasSubstr;

std::mt19937_64 SeededGen(int seed) {
  std::seed_seq seq{seed};
  return std::mt19937_64(seq);
}

RowMatrixXf RandomPoints(std::mt19937_64& gen, int n, int d, float lo = -1.0f, float hi = 1.0f) {
  RowMatrixXf p(n, d);
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < d; ++k) p(i, k) = absl::Uniform(gen, lo, hi);
  }
  return p;
}

absl::Span<const float> RowSpan(const RowMatrixXf& m, int i) {
  return absl::Span<const float>(m.data() + i * m.cols(), m.cols());
}

std::vector<Cost> AllCosts() {
  return {Cost::SquaredEuclidean(), Cost::SquaredEuclidean(2.5f),
          Cost::Lp(1.0f),           Cost::Lp(1.5f, 0.7f),
          Cost::Lp(3.0f),           Cost::L1(),
          Cost::L1(4.0f),           Cost::Cosine(),
          Cost::Cosine(0.5f)};
}

// The dimensions exercise the direct kernels (d <= kCostDirectMaxDim), the sgemm path and the
// blocked L1 kernels (16-lane chunks with and without a masked tail, more than one 64-lane sweep).
const int kDims[] = {1, 2, 7, 16, 17, 40, 64, 100, 131};

TEST(CostTest, TileMatchesNaiveLoopsForEveryCostAndDimension) {
  std::mt19937_64 gen = SeededGen(1);
  for (const Cost& cost : AllCosts()) {
    for (const int d : kDims) {
      SCOPED_TRACE(cost.ToString() + " d=" + std::to_string(d));
      // Offset clouds so that the squared-norm (sgemm) path has some cancellation to handle.
      const RowMatrixXf x = RandomPoints(gen, 13, d, 0.0f, 2.0f);
      // 13 x 301: blocks of four rows and four targets with a remainder of each.
      const RowMatrixXf y = RandomPoints(gen, 301, d, -1.0f, 1.5f);
      const RowMatrixXf c = CostMatrix(cost, x, y);
      ASSERT_EQ(c.rows(), 13);
      ASSERT_EQ(c.cols(), 301);
      double max_abs = 0.0;
      for (int i = 0; i < x.rows(); ++i) {
        for (int j = 0; j < y.rows(); ++j) {
          max_abs = std::max(max_abs, std::fabs(EvaluateCost(cost, RowSpan(x, i), RowSpan(y, j))));
        }
      }
      for (int i = 0; i < x.rows(); ++i) {
        for (int j = 0; j < y.rows(); ++j) {
          const double expected = EvaluateCost(cost, RowSpan(x, i), RowSpan(y, j));
          ASSERT_NEAR(c(i, j), expected, 2e-5 * max_abs + 1e-6) << "pair " << i << ", " << j;
        }
      }
    }
  }
}

TEST(CostTest, SubTileIntoStridedBlockTouchesOnlyTheBlock) {
  std::mt19937_64 gen = SeededGen(2);
  for (const Cost& cost : AllCosts()) {
    for (const int d : {3, 33}) {
      SCOPED_TRACE(cost.ToString() + " d=" + std::to_string(d));
      const RowMatrixXf x = RandomPoints(gen, 20, d);
      const RowMatrixXf y = RandomPoints(gen, 40, d);
      const Eigen::VectorXf xd = CostPointData(cost, x);
      const Eigen::VectorXf yd = CostPointData(cost, y);
      constexpr float kSentinel = -12345.0f;
      RowMatrixXf buffer = RowMatrixXf::Constant(10, 50, kSentinel);
      // Rows 3..7 of x against rows 7..17 of y, into buffer(2.., 4..).
      EvaluateCostTile(cost, x.middleRows(3, 5), xd.segment(3, 5), y.middleRows(7, 11),
                       yd.segment(7, 11), buffer.block(2, 4, 5, 11));
      for (int r = 0; r < buffer.rows(); ++r) {
        for (int s = 0; s < buffer.cols(); ++s) {
          const bool inside = r >= 2 && r < 7 && s >= 4 && s < 15;
          if (!inside) {
            ASSERT_EQ(buffer(r, s), kSentinel) << r << ", " << s;
            continue;
          }
          const double expected = EvaluateCost(cost, RowSpan(x, 3 + r - 2), RowSpan(y, 7 + s - 4));
          ASSERT_NEAR(buffer(r, s), expected, 1e-4 * (1.0 + std::fabs(expected)));
        }
      }
    }
  }
}

TEST(CostTest, KnownValues) {
  const std::vector<float> x = {1.0f, 2.0f, 2.0f};
  const std::vector<float> y = {-1.0f, 2.0f, 0.0f};
  // x - y = (2, 0, 2): ||.||^2 = 8, ||.|| = 2 sqrt 2, L1 = 4; <x, y> = -1 + 4 = 3, |x| = 3,
  // |y| = sqrt 5.
  EXPECT_DOUBLE_EQ(EvaluateCost(Cost::SquaredEuclidean(), x, y), 8.0);
  EXPECT_DOUBLE_EQ(EvaluateCost(Cost::SquaredEuclidean(4.0f), x, y), 2.0);
  EXPECT_NEAR(EvaluateCost(Cost::Lp(1.0f), x, y), 2.0 * std::sqrt(2.0), 1e-12);
  EXPECT_NEAR(EvaluateCost(Cost::Lp(3.0f), x, y), std::pow(8.0, 1.5), 1e-9);
  EXPECT_DOUBLE_EQ(EvaluateCost(Cost::L1(), x, y), 4.0);
  EXPECT_NEAR(EvaluateCost(Cost::Cosine(), x, y), 1.0 - 3.0 / (3.0 * std::sqrt(5.0)), 1e-12);
  // Lp(2) is the squared Euclidean cost; cosine is invariant to positive rescaling.
  const std::vector<float> x2 = {2.0f, 4.0f, 4.0f};
  EXPECT_NEAR(EvaluateCost(Cost::Cosine(), x2, y), EvaluateCost(Cost::Cosine(), x, y), 1e-12);
  EXPECT_NEAR(EvaluateCost(Cost::Lp(2.0f, 3.0f), x, y),
              EvaluateCost(Cost::SquaredEuclidean(3.0f), x, y), 1e-12);
}

TEST(CostTest, PairGradientMatchesFiniteDifferences) {
  std::mt19937_64 gen = SeededGen(3);
  for (const Cost& cost : AllCosts()) {
    for (const int d : {1, 3, 20}) {
      SCOPED_TRACE(cost.ToString() + " d=" + std::to_string(d));
      for (int trial = 0; trial < 5; ++trial) {
        const RowMatrixXf xy = RandomPoints(gen, 2, d);
        std::vector<float> x(xy.row(0).data(), xy.row(0).data() + d);
        const std::vector<float> y(xy.row(1).data(), xy.row(1).data() + d);
        std::vector<double> grad(d);
        CostGradientX(cost, x, y, absl::MakeSpan(grad));
        for (int k = 0; k < d; ++k) {
          // L1 is not differentiable where x_k = y_k, nor Lp(1) at x = y: keep the central
          // difference on one side of the kink.
          double h = 1e-3;
          if (cost.kind == CostKind::kL1) h = std::min(h, 0.5 * std::fabs(x[k] - y[k]));
          if (cost.kind == CostKind::kLp) {
            double dist = 0.0;
            for (int c = 0; c < d; ++c) dist += (x[c] - y[c]) * (x[c] - y[c]);
            h = std::min(h, 0.5 * std::sqrt(dist));
          }
          // The cosine cost jumps where x's direction flips (x_k crossing 0 when d = 1).
          if (cost.kind == CostKind::kCosine) {
            double norm = 0.0;
            for (int c = 0; c < d; ++c) norm += x[c] * x[c];
            h = std::min(h, 0.5 * std::sqrt(norm));
          }
          const float saved = x[k];
          x[k] = static_cast<float>(saved + h);
          const double up_step = static_cast<double>(x[k]) - saved;
          const double up = EvaluateCost(cost, x, y);
          x[k] = static_cast<float>(saved - h);
          const double down_step = saved - static_cast<double>(x[k]);
          const double down = EvaluateCost(cost, x, y);
          x[k] = saved;
          const double fd = (up - down) / (up_step + down_step);
          EXPECT_NEAR(grad[k], fd, 2e-3 * (1.0 + std::fabs(fd))) << "component " << k;
        }
      }
    }
  }
}

TEST(CostTest, GradientAtCoincidentPointsIsZero) {
  const std::vector<float> x = {0.3f, -0.2f, 1.0f};
  std::vector<double> grad(3);
  for (const Cost& cost : AllCosts()) {
    CostGradientX(cost, x, x, absl::MakeSpan(grad));
    for (double g : grad) EXPECT_NEAR(g, 0.0, 1e-12) << cost.ToString();
  }
}

TEST(CostTest, WeightedGradientTileMatchesSumOfPairGradients) {
  std::mt19937_64 gen = SeededGen(4);
  for (const Cost& cost : AllCosts()) {
    for (const int d : {2, 16, 33, 64, 131}) {
      SCOPED_TRACE(cost.ToString() + " d=" + std::to_string(d));
      const int n = 9, m = 70;
      const RowMatrixXf x = RandomPoints(gen, n, d, 0.0f, 1.0f);
      const RowMatrixXf y = RandomPoints(gen, m, d, -1.0f, 1.0f);
      RowMatrixXf w(n, m);
      for (int i = 0; i < n; ++i) {
        for (int j = 0; j < m; ++j) w(i, j) = absl::Uniform(gen, 0.0f, 1.0f);
      }
      // The tile adds to what is there.
      const RowMatrixXf initial = RandomPoints(gen, n, d);
      RowMatrixXf grad = initial;
      AccumulateCostGradientTile(cost, x, CostPointData(cost, x), y, CostPointData(cost, y), w,
                                 grad);
      std::vector<double> g(d);
      for (int i = 0; i < n; ++i) {
        std::vector<double> expected(d, 0.0);
        double scale = 0.0;
        for (int j = 0; j < m; ++j) {
          CostGradientX(cost, RowSpan(x, i), RowSpan(y, j), absl::MakeSpan(g));
          for (int k = 0; k < d; ++k) {
            expected[k] += w(i, j) * g[k];
            scale += std::fabs(w(i, j) * g[k]);
          }
        }
        for (int k = 0; k < d; ++k) {
          ASSERT_NEAR(grad(i, k) - initial(i, k), expected[k], 1e-5 * scale + 1e-5)
              << "row " << i << " component " << k;
        }
      }
    }
  }
}

// sign(0) = 0 in the L1 tile as in CostGradientX: targets that share coordinates with x_i
// (exact ties) add nothing there, and zero weights add nothing at all.
TEST(CostTest, L1GradientTileIgnoresTiesAndZeroWeights) {
  std::mt19937_64 gen = SeededGen(6);
  const Cost cost = Cost::L1(3.0f);
  for (const int d : {5, 100}) {
    SCOPED_TRACE("d=" + std::to_string(d));
    const int n = 5, m = 12;
    const RowMatrixXf x = RandomPoints(gen, n, d);
    RowMatrixXf y = RandomPoints(gen, m, d);
    for (int j = 0; j < m; ++j) {
      for (int k = j % 3; k < d; k += 3) y(j, k) = x(j % n, k);  // a third of them tied
    }
    RowMatrixXf w = RandomPoints(gen, n, m, 0.5f, 1.0f);
    for (int i = 0; i < n; ++i) w(i, (2 * i) % m) = 0.0f;
    RowMatrixXf grad = RowMatrixXf::Zero(n, d);
    AccumulateCostGradientTile(cost, x, CostPointData(cost, x), y, CostPointData(cost, y), w, grad);
    for (int i = 0; i < n; ++i) {
      for (int k = 0; k < d; ++k) {
        double expected = 0.0;
        for (int j = 0; j < m; ++j) {
          const double diff = static_cast<double>(x(i, k)) - y(j, k);
          expected += w(i, j) / 3.0 * ((diff > 0.0) - (diff < 0.0));
        }
        ASSERT_NEAR(grad(i, k), expected, 1e-5) << "row " << i << " component " << k;
      }
    }
  }
}

TEST(CostTest, WeightedGradientTileOnStridedBlocks) {
  std::mt19937_64 gen = SeededGen(5);
  const Cost cost = Cost::SquaredEuclidean(2.0f);
  const int d = 5;
  const RowMatrixXf x = RandomPoints(gen, 12, d);
  const RowMatrixXf y = RandomPoints(gen, 30, d);
  const RowMatrixXf w_full = RandomPoints(gen, 12, 40, 0.0f, 1.0f);
  const Eigen::VectorXf xd = CostPointData(cost, x), yd = CostPointData(cost, y);
  RowMatrixXf grad = RowMatrixXf::Zero(12, d);
  // Rows 4..9 against targets 10..29 with the weight block w_full(4.., 3..).
  AccumulateCostGradientTile(cost, x.middleRows(4, 6), xd.segment(4, 6), y.middleRows(10, 20),
                             yd.segment(10, 20), w_full.block(4, 3, 6, 20), grad.middleRows(4, 6));
  std::vector<double> g(d);
  for (int i = 0; i < 12; ++i) {
    for (int k = 0; k < d; ++k) {
      double expected = 0.0;
      if (i >= 4 && i < 10) {
        for (int j = 10; j < 30; ++j) {
          CostGradientX(cost, RowSpan(x, i), RowSpan(y, j), absl::MakeSpan(g));
          expected += w_full(i, j - 7) * g[k];
        }
      }
      EXPECT_NEAR(grad(i, k), expected, 1e-5) << i << ", " << k;
    }
  }
}

TEST(CostTest, SquaredEuclideanTileIsAccurateFarFromTheOrigin) {
  // The direct path (small d) has no cancellation at all.
  std::mt19937_64 gen = SeededGen(6);
  RowMatrixXf x = RandomPoints(gen, 4, 2), y = RandomPoints(gen, 5, 2);
  x.array() += 1000.0f;
  y.array() += 1000.0f;
  const RowMatrixXf c = CostMatrix(Cost::SquaredEuclidean(), x, y);
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 5; ++j) {
      const double expected = EvaluateCost(Cost::SquaredEuclidean(), RowSpan(x, i), RowSpan(y, j));
      EXPECT_NEAR(c(i, j), expected, 1e-6 * (1.0 + expected));
    }
  }
}

TEST(CostTest, MeanSquaredNormAndNormalizedCost) {
  RowMatrixXf y(3, 2);
  y << 1, 0, 0, 2, 2, 2;  // squared norms 1, 4, 8 -> mean 13/3
  absl::StatusOr<float> alpha = MeanSquaredNorm(y);
  ASSERT_TRUE(alpha.ok()) << alpha.status();
  EXPECT_NEAR(*alpha, 13.0f / 3.0f, 1e-6f);
  absl::StatusOr<Cost> cost = NormalizedSquaredEuclideanCost(y);
  ASSERT_TRUE(cost.ok());
  EXPECT_EQ(cost->kind, CostKind::kSquaredEuclidean);
  EXPECT_NEAR(cost->scale, 13.0f / 3.0f, 1e-6f);
  const std::vector<float> a = {0.0f, 0.0f}, b = {1.0f, 1.0f};
  EXPECT_NEAR(EvaluateCost(*cost, a, b), 2.0 / (13.0 / 3.0), 1e-6);

  EXPECT_EQ(MeanSquaredNorm(RowMatrixXf(0, 2)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MeanSquaredNorm(RowMatrixXf::Zero(3, 2)).status().code(),
            absl::StatusCode::kInvalidArgument);
  RowMatrixXf bad = y;
  bad(1, 1) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(MeanSquaredNorm(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CostTest, ValidateRejectsBadParameters) {
  EXPECT_TRUE(Cost::SquaredEuclidean().Validate().ok());
  EXPECT_TRUE(Cost::Lp(1.0f).Validate().ok());
  absl::Status s = Cost::Lp(0.5f).Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("cost.p"));
  s = Cost::SquaredEuclidean(0.0f).Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("cost.scale"));
  s = Cost::L1(-1.0f).Validate();
  EXPECT_THAT(s.message(), HasSubstr("cost.scale"));
  s = Cost::Cosine(std::numeric_limits<float>::infinity()).Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  s = Cost::Lp(std::numeric_limits<float>::quiet_NaN()).Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Cost::Lp(1.5f, 2.0f).ToString(), "lp(p=1.5, scale=2)");
  EXPECT_EQ(Cost::SquaredEuclidean().ToString(), "squared_euclidean(scale=1)");
}

TEST(CostTest, ValidatePointsNamesTheArgument) {
  RowMatrixXf p(3, 2);
  p << 1, 2, 3, 4, 5, 6;
  EXPECT_TRUE(ValidatePoints(Cost::SquaredEuclidean(), p, "source_points").ok());
  p(2, 1) = std::numeric_limits<float>::infinity();
  absl::Status s = ValidatePoints(Cost::SquaredEuclidean(), p, "source_points");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("source_points"));
  EXPECT_THAT(s.message(), HasSubstr("(2, 1)"));
  s = ValidatePoints(Cost::L1(), RowMatrixXf(0, 3), "target_points");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("target_points"));
  RowMatrixXf z = RowMatrixXf::Ones(2, 3);
  z.row(1).setZero();
  EXPECT_TRUE(ValidatePoints(Cost::SquaredEuclidean(), z, "x").ok());
  s = ValidatePoints(Cost::Cosine(), z, "x");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("point 1 is zero"));
}

TEST(CostTest, DiameterBoundDominatesEveryPairAndIsTightOnBoxCorners) {
  std::mt19937_64 gen = SeededGen(7);
  for (const Cost& cost : AllCosts()) {
    const RowMatrixXf x = RandomPoints(gen, 30, 3);
    const RowMatrixXf y = RandomPoints(gen, 40, 3, 0.5f, 2.0f);
    const float bound = CostDiameterBound(cost, x, y);
    const RowMatrixXf c = CostMatrix(cost, x, y);
    EXPECT_GE(bound, c.maxCoeff() * (1.0f - 1e-6f)) << cost.ToString();
  }
  // Opposite corners of the box: the bound is attained for the distance costs.
  RowMatrixXf x(1, 2), y(1, 2);
  x << 0, 0;
  y << 3, 4;
  EXPECT_NEAR(CostDiameterBound(Cost::SquaredEuclidean(), x, y), 25.0f, 1e-5f);
  EXPECT_NEAR(CostDiameterBound(Cost::Lp(1.0f), x, y), 5.0f, 1e-5f);
  EXPECT_NEAR(CostDiameterBound(Cost::L1(2.0f), x, y), 3.5f, 1e-5f);
  EXPECT_NEAR(CostDiameterBound(Cost::Cosine(), x, y), 2.0f, 1e-6f);
}

}  // namespace
}  // namespace otgen::ot
