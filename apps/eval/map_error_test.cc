#include "apps/eval/map_error.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "apps/eval/test_util.h"
#include "data/synthetic2d.h"
#include "gtest/gtest.h"
#include "nn/random.h"
#include "nn/tensor.h"

namespace otgen::eval {
namespace {

using testutil::StatusIs;

ot::RowMatrixXf ToMatrix(const nn::Tensor& t) {
  return Eigen::Map<const ot::RowMatrixXf>(t.data(), t.dim(0), t.dim(1));
}

// The W2GAN 4gaussians pair, a fixed batch of 512 points each.
void FourGaussiansBatch(ot::RowMatrixXf* z, ot::RowMatrixXf* y) {
  absl::StatusOr<data::Synthetic2dPair> pair = data::MakeSynthetic2dPair("4gaussians");
  ASSERT_TRUE(pair.ok()) << pair.status();
  nn::Rng rng(512);
  *z = ToMatrix(pair->source->Sample(kMapErrorBatchSize, rng));
  *y = ToMatrix(pair->target->Sample(kMapErrorBatchSize, rng));
}

TEST(MapErrorTest, ExactOtMapScoresZeroAndIdentityScoresOne) {
  ot::RowMatrixXf z, y;
  FourGaussiansBatch(&z, &y);
  absl::StatusOr<ReferenceMap> ref = ComputeReferenceMap(z, y);
  ASSERT_TRUE(ref.ok()) << ref.status();
  ASSERT_EQ(ref->mapped.rows(), 512);
  // sigma is a permutation and T(z_i) = y_sigma(i).
  std::vector<int> sorted = ref->target_of_source;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 512; ++i) EXPECT_EQ(sorted[i], i);
  EXPECT_EQ(ref->mapped.row(7), y.row(ref->target_of_source[7]));

  absl::StatusOr<MapErrorResult> exact = EvaluateMapError(*ref, ref->mapped);
  ASSERT_TRUE(exact.ok()) << exact.status();
  EXPECT_EQ(exact->mean_error, 0.0);
  EXPECT_EQ(exact->relative_error, 0.0);
  EXPECT_EQ(exact->n, 512);

  absl::StatusOr<MapErrorResult> identity = EvaluateMapError(*ref, z);
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_NEAR(identity->relative_error, 1.0, 1e-12);
  EXPECT_GT(identity->mean_displacement, 0.5);  // source scale 1, target scale 2

  // The assignment beats (or ties) any other pairing, e.g. the given order.
  double given_order = 0.0;
  for (int i = 0; i < 512; ++i) given_order += (z.row(i).cast<double>() - y.row(i).cast<double>()).squaredNorm() / 512;
  EXPECT_LE(ref->ot_cost, given_order + 1e-9);
}

TEST(MapErrorTest, ReferenceMatchesBruteForceOverAllPermutations) {
  nn::Rng rng(17);
  const int n = 7;
  ot::RowMatrixXf z(n, 2), y(n, 2);
  for (int i = 0; i < n; ++i) {
    z.row(i) << rng.Normal(), rng.Normal();
    y.row(i) << 2 * rng.Normal() + 1, rng.Normal() - 1;
  }
  std::vector<int> perm(n), best;
  std::iota(perm.begin(), perm.end(), 0);
  double best_cost = std::numeric_limits<double>::infinity();
  do {
    double c = 0.0;
    for (int i = 0; i < n; ++i) c += (z.row(i).cast<double>() - y.row(perm[i]).cast<double>()).squaredNorm();
    if (c < best_cost) {
      best_cost = c;
      best = perm;
    }
  } while (std::next_permutation(perm.begin(), perm.end()));
  absl::StatusOr<ReferenceMap> ref = ComputeReferenceMap(z, y);
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(ref->target_of_source, best);
  EXPECT_NEAR(ref->ot_cost, best_cost / n, 1e-9);
  double displacement = 0.0;
  for (int i = 0; i < n; ++i) displacement += (z.row(i).cast<double>() - y.row(best[i]).cast<double>()).norm() / n;
  EXPECT_NEAR(ref->mean_displacement, displacement, 1e-12);
}

TEST(MapErrorTest, TranslationHasTheTranslationAsOtMap) {
  // For a translation y_i = z_i + c (distinct points) the identity pairing is the unique
  // optimum, T(z) = z + c, and D = ||c|| = 0.5.
  nn::Rng rng(5);
  const int n = 64;
  ot::RowMatrixXf z(n, 2);
  for (int i = 0; i < n; ++i) z.row(i) << rng.Normal(), rng.Normal();
  ot::RowMatrixXf y = z;
  y.col(0).array() += 0.3f;
  y.col(1).array() += 0.4f;
  absl::StatusOr<ReferenceMap> ref = ComputeReferenceMap(z, y);
  ASSERT_TRUE(ref.ok());
  for (int i = 0; i < n; ++i) EXPECT_EQ(ref->target_of_source[i], i);
  EXPECT_NEAR(ref->mean_displacement, 0.5, 1e-6);
  // G(z) = z + 2c overshoots by ||c||: relative error 1; G(z) = z + c/2: relative 0.5.
  ot::RowMatrixXf over = y, half = z;
  over.col(0).array() += 0.3f;
  over.col(1).array() += 0.4f;
  half.col(0).array() += 0.15f;
  half.col(1).array() += 0.2f;
  absl::StatusOr<MapErrorResult> e_over = EvaluateMapError(z, over, y);
  ASSERT_TRUE(e_over.ok());
  EXPECT_NEAR(e_over->mean_error, 0.5, 1e-6);
  EXPECT_NEAR(e_over->relative_error, 1.0, 1e-5);
  absl::StatusOr<MapErrorResult> e_half = EvaluateMapError(*ref, half);
  ASSERT_TRUE(e_half.ok());
  EXPECT_NEAR(e_half->relative_error, 0.5, 1e-5);
}

TEST(MapErrorTest, ZeroDisplacement) {
  ot::RowMatrixXf z(3, 2);
  z << 0, 0, 1, 0, 0, 1;
  absl::StatusOr<ReferenceMap> ref = ComputeReferenceMap(z, z);
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(ref->mean_displacement, 0.0);
  absl::StatusOr<MapErrorResult> same = EvaluateMapError(*ref, z);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->relative_error, 0.0);
  ot::RowMatrixXf moved = z;
  moved(0, 0) = 1;
  absl::StatusOr<MapErrorResult> off = EvaluateMapError(*ref, moved);
  ASSERT_TRUE(off.ok());
  EXPECT_TRUE(std::isinf(off->relative_error));
}

TEST(MapErrorTest, RejectsBadInput) {
  ot::RowMatrixXf z = ot::RowMatrixXf::Zero(4, 2);
  z(1, 0) = 1;
  z(2, 1) = 1;
  z(3, 0) = 2;
  EXPECT_TRUE(StatusIs(ComputeReferenceMap(z, ot::RowMatrixXf::Zero(3, 2)).status(),
                       absl::StatusCode::kInvalidArgument, {"4 x 2 and 3 x 2"}));
  absl::StatusOr<ReferenceMap> ref = ComputeReferenceMap(z, z);
  ASSERT_TRUE(ref.ok());
  EXPECT_TRUE(StatusIs(EvaluateMapError(*ref, ot::RowMatrixXf::Zero(4, 3)).status(),
                       absl::StatusCode::kInvalidArgument, {"mapped_source", "expected 4 x 2"}));
  ot::RowMatrixXf nan = z;
  nan(2, 0) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(StatusIs(EvaluateMapError(*ref, nan).status(), absl::StatusCode::kInvalidArgument,
                       {"entry (2, 0)", "finite"}));
  EXPECT_FALSE(ComputeReferenceMap(nan, z).ok());
}

}  // namespace
}  // namespace otgen::eval
