#include "apps/eval/mode_coverage.h"

#include <cmath>
#include <limits>
#include <memory>
#include <string>

#include "apps/eval/test_util.h"
#include "data/synthetic2d.h"
#include "gtest/gtest.h"
#include "nn/random.h"
#include "nn/tensor.h"

namespace otgen::eval {
namespace {

using testutil::StatusIs;

// 1 - exp(-4.5): P(||x - mu|| < 3 sigma) for an isotropic 2-D Gaussian (chi with 2 dof).
const double kHqProbability = 1.0 - std::exp(-4.5);

std::unique_ptr<data::Synthetic2d> Make(const std::string& name) {
  absl::StatusOr<std::unique_ptr<data::Synthetic2d>> d = data::MakeSynthetic2d(name);
  EXPECT_TRUE(d.ok()) << d.status();
  return std::move(d).value();
}

ot::RowMatrixXf ToMatrix(const nn::Tensor& t) {
  return Eigen::Map<const ot::RowMatrixXf>(t.data(), t.dim(0), t.dim(1));
}

// KL(q || uniform) recomputed from the per-mode HQ counts.
double ReverseKl(const ModeCoverageResult& r) {
  double kl = 0.0;
  for (int64_t c : r.hq_per_mode) {
    if (c > 0) {
      const double q = static_cast<double>(c) / r.hq_count;
      kl += q * std::log(q / (1.0 / r.num_modes));
    }
  }
  return kl;
}

class RealSamplesTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RealSamplesTest, ScoresAllModesAndTheGaussianHqFraction) {
  std::unique_ptr<data::Synthetic2d> data = Make(GetParam());
  ASSERT_NE(data->mixture(), nullptr);
  const int k = static_cast<int>(data->mixture()->means.size());
  nn::Rng rng(2024);
  int64_t hq_total = 0, n_total = 0;
  double chi2_sum = 0.0;
  const int reps = 8;
  for (int rep = 0; rep < reps; ++rep) {
    const nn::Tensor x = data->Sample(kModeCoverageSamples, rng);
    absl::StatusOr<ModeCoverageResult> r = EvaluateModeCoverage(ToMatrix(x), *data->mixture());
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->num_modes, k);
    EXPECT_EQ(r->modes_captured, k) << r->BriefReport();
    EXPECT_EQ(r->num_samples, kModeCoverageSamples);
    // One run: binomial std sqrt(p (1 - p) / 2500) = 0.0021; allow 4 std.
    EXPECT_NEAR(r->hq_fraction, kHqProbability, 0.0084) << r->BriefReport();
    // Multinomial noise: 2 N_HQ KL is approximately chi-square with K - 1 degrees of freedom
    // (mean K - 1: E[KL] ~ (K - 1) / (2 N_HQ) = 0.0049 for grid25, 0.0014 for ring8).
    const double chi2 = 2.0 * r->hq_count * r->reverse_kl;
    EXPECT_GT(chi2, 0.0);
    EXPECT_LT(chi2, (k - 1) + 8.0 * std::sqrt(2.0 * (k - 1))) << r->BriefReport();
    chi2_sum += chi2;
    EXPECT_NEAR(r->reverse_kl, ReverseKl(*r), 1e-12);
    int64_t nearest = 0;
    for (int64_t c : r->nearest_per_mode) nearest += c;
    EXPECT_EQ(nearest, kModeCoverageSamples);
    hq_total += r->hq_count;
    n_total += r->num_samples;
  }
  // 20000 samples: std 0.00074.
  EXPECT_NEAR(static_cast<double>(hq_total) / n_total, kHqProbability, 0.003);
  // Mean of the chi-square statistics: K - 1 within 4 standard errors sqrt(2 (K - 1) / reps).
  EXPECT_NEAR(chi2_sum / reps, k - 1, 4.0 * std::sqrt(2.0 * (k - 1) / reps));
}

INSTANTIATE_TEST_SUITE_P(Mixtures, RealSamplesTest,
                         ::testing::Values("grid25", "grid25_wgangp", "ring8", "ring8_wgangp"));

TEST(ModeCoverageTest, Grid25RealDataReverseKlAboutFiveThousandths) {
  std::unique_ptr<data::Synthetic2d> data = Make("grid25");
  nn::Rng rng(1);
  double kl_sum = 0.0;
  const int reps = 20;
  for (int rep = 0; rep < reps; ++rep) {
    absl::StatusOr<ModeCoverageResult> r =
        EvaluateModeCoverage(ToMatrix(data->Sample(kModeCoverageSamples, rng)), *data->mixture());
    ASSERT_TRUE(r.ok());
    kl_sum += r->reverse_kl;
  }
  EXPECT_NEAR(kl_sum / reps, 0.005, 0.0015);
}

TEST(ModeCoverageTest, SamplesFromTwentyOfTwentyFiveModes) {
  std::unique_ptr<data::Synthetic2d> data = Make("grid25");
  const data::GaussianMixture2d& mix = *data->mixture();
  data::GaussianMixture2d twenty = mix;
  twenty.means.resize(20);
  data::GaussianMixture2dSampler sampler("grid20", twenty, data::ModeAssignment::kRandom);
  nn::Rng rng(3);
  absl::StatusOr<ModeCoverageResult> r = EvaluateModeCoverage(ToMatrix(sampler.Sample(kModeCoverageSamples, rng)), mix);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->modes_captured, 20);
  for (int m = 20; m < 25; ++m) EXPECT_EQ(r->hq_per_mode[m], 0);
  EXPECT_NEAR(r->reverse_kl, std::log(25.0 / 20.0), 0.01);
}

TEST(ModeCoverageTest, CollapsedSamplesOnTheMeans) {
  std::unique_ptr<data::Synthetic2d> data = Make("grid25");
  const data::GaussianMixture2d& mix = *data->mixture();
  // 100 samples exactly on each mean: 100% HQ, uniform histogram, KL 0.
  ot::RowMatrixXf x(2500, 2);
  for (int i = 0; i < 2500; ++i) {
    x(i, 0) = static_cast<float>(mix.means[i % 25][0]);
    x(i, 1) = static_cast<float>(mix.means[i % 25][1]);
  }
  absl::StatusOr<ModeCoverageResult> r = EvaluateModeCoverage(x, mix);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->modes_captured, 25);
  EXPECT_EQ(r->hq_count, 2500);
  EXPECT_EQ(r->hq_fraction, 1.0);
  EXPECT_NEAR(r->reverse_kl, 0.0, 1e-15);
  // On 20 means only (125 each): KL = log(25 / 20) exactly.
  for (int i = 0; i < 2500; ++i) {
    x(i, 0) = static_cast<float>(mix.means[i % 20][0]);
    x(i, 1) = static_cast<float>(mix.means[i % 20][1]);
  }
  r = EvaluateModeCoverage(x, mix);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->modes_captured, 20);
  EXPECT_NEAR(r->reverse_kl, std::log(1.25), 1e-12);
}

TEST(ModeCoverageTest, HandPlacedSamples) {
  // grid25: std 0.05, HQ radius 0.15; mean index 5 (x + 2) + (y + 2) for grid point (2x, 2y).
  std::unique_ptr<data::Synthetic2d> data = Make("grid25");
  const data::GaussianMixture2d& mix = *data->mixture();
  ASSERT_EQ(mix.means[12][0], 0.0);
  ASSERT_EQ(mix.means[17][0], 2.0);
  ot::RowMatrixXf x(4, 2);
  x << 0.149f, 0.0f,   // HQ, mode 12
      0.0f, -0.151f,   // nearest 12, not HQ
      1.0f, 0.0f,      // tie between (0, 0) and (2, 0): lower index 12, not HQ
      4.1f, 4.05f;     // mode 24, HQ (distance 0.112)
  absl::StatusOr<ModeCoverageResult> r = EvaluateModeCoverage(x, mix);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->nearest_per_mode[12], 3);
  EXPECT_EQ(r->nearest_per_mode[24], 1);
  EXPECT_EQ(r->hq_per_mode[12], 1);
  EXPECT_EQ(r->hq_per_mode[24], 1);
  EXPECT_EQ(r->hq_count, 2);
  EXPECT_EQ(r->modes_captured, 2);
  EXPECT_EQ(r->hq_fraction, 0.5);
  EXPECT_NEAR(r->reverse_kl, std::log(25.0 / 2.0), 1e-12);
  // A wider HQ radius (4 std = 0.2) takes in the second sample.
  absl::StatusOr<ModeCoverageResult> wide = EvaluateModeCoverage(x, mix, {.std_multiple = 4.0});
  ASSERT_TRUE(wide.ok());
  EXPECT_EQ(wide->hq_count, 3);
}

TEST(ModeCoverageTest, NoHqSampleGivesInfiniteKl) {
  std::unique_ptr<data::Synthetic2d> data = Make("ring8");
  ot::RowMatrixXf x = ot::RowMatrixXf::Zero(10, 2);  // all at the centre of the ring
  absl::StatusOr<ModeCoverageResult> r = EvaluateModeCoverage(x, *data->mixture());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->modes_captured, 0);
  EXPECT_EQ(r->hq_fraction, 0.0);
  EXPECT_TRUE(std::isinf(r->reverse_kl));
}

TEST(ModeCoverageTest, DatasetOverload) {
  std::unique_ptr<data::Synthetic2d> ring = Make("ring8_wgangp");
  ot::RowMatrixXf x(8, 2);
  for (int k = 0; k < 8; ++k) {
    x(k, 0) = static_cast<float>(ring->mixture()->means[k][0]);
    x(k, 1) = static_cast<float>(ring->mixture()->means[k][1]);
  }
  absl::StatusOr<ModeCoverageResult> r = EvaluateModeCoverage(x, *ring);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->modes_captured, 8);
  std::unique_ptr<data::Synthetic2d> roll = Make("swissroll");
  EXPECT_TRUE(StatusIs(EvaluateModeCoverage(x, *roll).status(), absl::StatusCode::kInvalidArgument,
                       {"swissroll", "not a Gaussian mixture"}));
}

TEST(ModeCoverageTest, RejectsBadInput) {
  std::unique_ptr<data::Synthetic2d> data = Make("grid25");
  EXPECT_TRUE(StatusIs(EvaluateModeCoverage(ot::RowMatrixXf::Zero(5, 3), *data->mixture()).status(),
                       absl::StatusCode::kInvalidArgument, {"samples", "5 x 3"}));
  ot::RowMatrixXf x = ot::RowMatrixXf::Zero(3, 2);
  x(1, 1) = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(StatusIs(EvaluateModeCoverage(x, *data->mixture()).status(), absl::StatusCode::kInvalidArgument,
                       {"row 1", "finite"}));
  data::GaussianMixture2d degenerate = *data->mixture();
  degenerate.stddev = 0.0;
  EXPECT_TRUE(StatusIs(EvaluateModeCoverage(ot::RowMatrixXf::Zero(3, 2), degenerate).status(),
                       absl::StatusCode::kInvalidArgument, {"stddev > 0"}));
  EXPECT_TRUE(StatusIs(EvaluateModeCoverage(ot::RowMatrixXf::Zero(3, 2), *data->mixture(), {.std_multiple = 0})
                           .status(),
                       absl::StatusCode::kInvalidArgument, {"std_multiple"}));
}

}  // namespace
}  // namespace otgen::eval
