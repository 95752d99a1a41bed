#include "apps/eval/nearest_neighbor.h"

#include <cmath>
#include <limits>
#include <vector>

#include "apps/eval/test_util.h"
#include "gtest/gtest.h"
#include "nn/random.h"

namespace otgen::eval {
namespace {

using testutil::StatusIs;

// Exact brute-force 1-NN in double, ties to the lowest index.
std::vector<int64_t> BruteForce(const ot::RowMatrixXf& train, const ot::RowMatrixXf& queries) {
  std::vector<int64_t> out(queries.rows());
  for (int i = 0; i < queries.rows(); ++i) {
    double best = std::numeric_limits<double>::infinity();
    for (int j = 0; j < train.rows(); ++j) {
      const double d = (queries.row(i).cast<double>() - train.row(j).cast<double>()).squaredNorm();
      if (d < best) {
        best = d;
        out[i] = j;
      }
    }
  }
  return out;
}

TEST(NearestNeighborTest, TinyHandMadeSet) {
  ot::RowMatrixXf train(4, 2);
  train << 0, 0,   // class 0
      10, 0,       // class 1
      0, 10,       // class 2
      10, 10;      // class 1
  absl::StatusOr<NearestNeighborClassifier> knn = NearestNeighborClassifier::Create(train, {0, 1, 2, 1});
  ASSERT_TRUE(knn.ok()) << knn.status();
  ot::RowMatrixXf q(5, 2);
  q << 1, 1,   // -> row 0, class 0
      9, 1,    // -> row 1, class 1
      2, 7,    // -> row 2, class 2
      8, 9,    // -> row 3, class 1
      5, 5;    // equidistant from all four: lowest index 0, class 0
  absl::StatusOr<NearestNeighborResult> r = knn->Evaluate(q, std::vector<int>{0, 1, 2, 2, 1});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->nearest_index, (std::vector<int64_t>{0, 1, 2, 3, 0}));
  EXPECT_EQ(r->predictions, (std::vector<int>{0, 1, 2, 1, 0}));
  EXPECT_EQ(r->correct, 3);
  EXPECT_DOUBLE_EQ(r->accuracy, 0.6);
  EXPECT_EQ(r->nearest_squared_distance[0], 2.0);
  EXPECT_EQ(r->nearest_squared_distance[3], 5.0);
  EXPECT_EQ(r->nearest_squared_distance[4], 50.0);
}

TEST(NearestNeighborTest, MatchesBruteForceAcrossBlockSizes) {
  nn::Rng rng(21);
  const int n = 53, m = 37, d = 20;
  ot::RowMatrixXf train(n, d), queries(m, d);
  // Small integers: many exact ties between distances.
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < d; ++k) train(i, k) = static_cast<float>(rng.UniformInt(3));
  for (int i = 0; i < m; ++i)
    for (int k = 0; k < d; ++k) queries(i, k) = static_cast<float>(rng.UniformInt(3));
  std::vector<int> labels(n);
  for (int i = 0; i < n; ++i) labels[i] = i % 10;
  const std::vector<int64_t> expected = BruteForce(train, queries);
  for (auto [qb, tb] : std::vector<std::pair<int, int>>{{1, 1}, {3, 5}, {7, 53}, {256, 4096}, {37, 10}}) {
    absl::StatusOr<NearestNeighborClassifier> knn =
        NearestNeighborClassifier::Create(train, labels, {.query_block = qb, .train_block = tb});
    ASSERT_TRUE(knn.ok());
    absl::StatusOr<NearestNeighborResult> r = knn->Predict(queries);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->nearest_index, expected) << "query_block=" << qb << " train_block=" << tb;
    for (int i = 0; i < m; ++i) EXPECT_EQ(r->predictions[i], labels[expected[i]]);
    EXPECT_EQ(r->accuracy, -1.0);
  }
}

TEST(NearestNeighborTest, ExactWhereFloatDistancesCannotSeparate) {
  // All points near c = (100, ..., 100) (||c||^2 = 160000): float rounding of the norms
  // (~0.01) exceeds the gaps between the distances (~1e-3), so only the exact re-scoring
  // finds the true neighbour.
  nn::Rng rng(4);
  const int n = 300, m = 40, d = 16;
  ot::RowMatrixXf train(n, d), queries(m, d);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < d; ++k) train(i, k) = 100.0f + 0.01f * rng.Normal();
  for (int i = 0; i < m; ++i)
    for (int k = 0; k < d; ++k) queries(i, k) = 100.0f + 0.01f * rng.Normal();
  std::vector<int> labels(n, 0);
  absl::StatusOr<NearestNeighborClassifier> knn =
      NearestNeighborClassifier::Create(train, labels, {.query_block = 16, .train_block = 64});
  ASSERT_TRUE(knn.ok());
  absl::StatusOr<NearestNeighborResult> r = knn->Predict(queries);
  ASSERT_TRUE(r.ok());
  const std::vector<int64_t> expected = BruteForce(train, queries);
  EXPECT_EQ(r->nearest_index, expected);
  // The test has teeth: a float32 argmin of ||t||^2 - 2 q.t misses some neighbours.
  int float_misses = 0;
  for (int i = 0; i < m; ++i) {
    float best = std::numeric_limits<float>::infinity();
    int64_t arg = -1;
    for (int j = 0; j < n; ++j) {
      const float v = train.row(j).squaredNorm() - 2.0f * queries.row(i).dot(train.row(j));
      if (v < best) {
        best = v;
        arg = j;
      }
    }
    float_misses += arg != expected[i];
  }
  EXPECT_GT(float_misses, 0);
}

TEST(NearestNeighborTest, StridedQueriesAndEmptyQuerySet) {
  nn::Rng rng(2);
  ot::RowMatrixXf train(10, 3), big(8, 5);
  for (int i = 0; i < 10; ++i) train.row(i) << rng.Normal(), rng.Normal(), rng.Normal();
  for (int i = 0; i < 8; ++i)
    for (int k = 0; k < 5; ++k) big(i, k) = rng.Normal();
  absl::StatusOr<NearestNeighborClassifier> knn =
      NearestNeighborClassifier::Create(train, std::vector<int>(10, 1), {.query_block = 3});
  ASSERT_TRUE(knn.ok());
  const ot::RowMatrixXf block = big.block(1, 1, 6, 3);
  absl::StatusOr<NearestNeighborResult> r = knn->Predict(big.block(1, 1, 6, 3));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->nearest_index, BruteForce(train, block));
  absl::StatusOr<NearestNeighborResult> none = knn->Predict(ot::RowMatrixXf(0, 3));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->predictions.empty());
}

TEST(NearestNeighborTest, RejectsBadInput) {
  ot::RowMatrixXf train = ot::RowMatrixXf::Zero(3, 2);
  EXPECT_TRUE(StatusIs(NearestNeighborClassifier::Create(train, {0, 1}).status(), absl::StatusCode::kInvalidArgument,
                       {"labels", "expected 3", "got 2"}));
  EXPECT_TRUE(StatusIs(NearestNeighborClassifier::Create(ot::RowMatrixXf(0, 2), {}).status(),
                       absl::StatusCode::kInvalidArgument, {"train"}));
  EXPECT_TRUE(StatusIs(NearestNeighborClassifier::Create(train, {0, 1, 2}, {.train_block = 0}).status(),
                       absl::StatusCode::kInvalidArgument, {"train_block"}));
  absl::StatusOr<NearestNeighborClassifier> knn = NearestNeighborClassifier::Create(train, {0, 1, 2});
  ASSERT_TRUE(knn.ok());
  EXPECT_TRUE(StatusIs(knn->Predict(ot::RowMatrixXf::Zero(2, 3)).status(), absl::StatusCode::kInvalidArgument,
                       {"queries", "expected 2 columns"}));
  EXPECT_TRUE(StatusIs(knn->Evaluate(ot::RowMatrixXf::Zero(2, 2), std::vector<int>{1}).status(),
                       absl::StatusCode::kInvalidArgument, {"labels", "expected 2"}));
  ot::RowMatrixXf nan = ot::RowMatrixXf::Zero(1, 2);
  nan(0, 1) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(StatusIs(knn->Predict(nan).status(), absl::StatusCode::kInvalidArgument, {"entry (0, 1)"}));
}

}  // namespace
}  // namespace otgen::eval
