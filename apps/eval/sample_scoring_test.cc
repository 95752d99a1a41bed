#include "apps/eval/sample_scoring.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "apps/eval/metrics_csv.h"
#include "apps/eval/npy.h"
#include "apps/eval/test_util.h"
#include "data/dataset.h"
#include "data/synthetic2d.h"
#include "gtest/gtest.h"
#include "nn/random.h"

namespace otgen::eval {
namespace {

using testutil::StatusIs;

const auto kInvalid = absl::StatusCode::kInvalidArgument;

// A provider that must not be called (for points).
MnistScorerProvider NoScorer(int* calls) {
  return [calls]() -> absl::StatusOr<const MnistSampleScorer*> {
    ++*calls;
    return absl::InternalError("the MNIST scorer was requested");
  };
}

// Points sitting exactly on means 0, 7 and 12 of grid25 (x = -4 + 2 (k / 5), y = -4 + 2 (k % 5)),
// 10 copies each.
nn::Tensor PointsOnThreeGridMeans() {
  nn::Tensor t = nn::Tensor::Empty({30, 2});
  const int modes[3] = {0, 7, 12};
  const data::GaussianMixture2d mix = *(*data::MakeSynthetic2d("grid25"))->mixture();
  for (int i = 0; i < 30; ++i) {
    t.at({i, 0}) = static_cast<float>(mix.means[modes[i % 3]][0]);
    t.at({i, 1}) = static_cast<float>(mix.means[modes[i % 3]][1]);
  }
  return t;
}

TEST(SampleScoringTest, KindFromShape) {
  EXPECT_EQ(*SampleKindFromShape({5, 784}), SampleKind::kMnistImages);
  EXPECT_EQ(*SampleKindFromShape({5, 1, 28, 28}), SampleKind::kMnistImages);
  EXPECT_EQ(*SampleKindFromShape({5, 28, 28}), SampleKind::kMnistImages);
  EXPECT_EQ(*SampleKindFromShape({5, 2}), SampleKind::kPoints2d);
  EXPECT_TRUE(StatusIs(SampleKindFromShape({5, 3}).status(), kInvalid, {"--samples", "[5, 3]"}));
  EXPECT_TRUE(StatusIs(SampleKindFromShape({5, 3, 28, 28}).status(), kInvalid, {"--samples"}));
  EXPECT_TRUE(StatusIs(SampleKindFromShape({10}).status(), kInvalid, {"--samples", "[10]"}));
}

TEST(SampleScoringTest, MixtureNames) {
  const std::vector<std::string> names = MixtureDatasetNames();
  for (const char* n : {"grid25", "grid25_wgangp", "ring8", "ring8_wgangp"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  }
  EXPECT_EQ(std::find(names.begin(), names.end(), "swissroll"), names.end());
}

TEST(SampleScoringTest, PointsOnThreeMeansCaptureThreeModes) {
  int calls = 0;
  absl::StatusOr<SampleScores> s = ScoreSamples(PointsOnThreeGridMeans(), {.dataset = "grid25"}, NoScorer(&calls));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(s->kind, SampleKind::kPoints2d);
  EXPECT_EQ(s->dataset, "grid25");
  EXPECT_FALSE(s->dataset_guessed);
  ASSERT_TRUE(s->coverage.has_value());
  EXPECT_EQ(s->coverage->modes_captured, 3);
  EXPECT_EQ(s->coverage->num_modes, 25);
  EXPECT_EQ(s->coverage->hq_count, 30);
  EXPECT_DOUBLE_EQ(s->coverage->hq_fraction, 1.0);
  // Three equally filled modes out of 25: KL(q || uniform) = log(25 / 3).
  EXPECT_NEAR(s->coverage->reverse_kl, std::log(25.0 / 3.0), 1e-12);
  EXPECT_TRUE(s->candidates.empty());
  const std::string report = s->Report();
  EXPECT_NE(report.find("modes 3/25"), std::string::npos) << report;
  EXPECT_NE(report.find("the protocol draws 2500"), std::string::npos) << report;

  const std::map<std::string, double> row = s->AsRow();
  EXPECT_EQ(s->RowColumns(), (std::vector<std::string>{"n", "modes_captured", "num_modes", "hq_fraction", "reverse_kl"}));
  EXPECT_EQ(row.at("n"), 30);
  EXPECT_EQ(row.at("modes_captured"), 3);
  EXPECT_EQ(row.at("num_modes"), 25);
  EXPECT_EQ(row.at("hq_fraction"), 1.0);
  EXPECT_NEAR(row.at("reverse_kl"), std::log(25.0 / 3.0), 1e-12);
}

TEST(SampleScoringTest, GuessesTheMixtureTheSamplesComeFrom) {
  for (const char* name : {"grid25", "grid25_wgangp", "ring8", "ring8_wgangp"}) {
    nn::Rng rng(7);
    const nn::Tensor x = (*data::MakeSynthetic2d(name))->Sample(kModeCoverageSamples, rng);
    int calls = 0;
    absl::StatusOr<SampleScores> s = ScoreSamples(x, {}, NoScorer(&calls));
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(s->dataset, name);
    EXPECT_TRUE(s->dataset_guessed);
    EXPECT_EQ(s->candidates.size(), MixtureDatasetNames().size());
    ASSERT_TRUE(s->coverage.has_value());
    EXPECT_EQ(s->coverage->modes_captured, s->coverage->num_modes) << name;
    // The chosen result is the one of the explicit data set.
    absl::StatusOr<SampleScores> explicit_set = ScoreSamples(x, {.dataset = name}, NoScorer(&calls));
    ASSERT_TRUE(explicit_set.ok());
    EXPECT_EQ(explicit_set->coverage->hq_per_mode, s->coverage->hq_per_mode);
    EXPECT_EQ(explicit_set->coverage->reverse_kl, s->coverage->reverse_kl);
    EXPECT_NE(s->Report().find("best fit"), std::string::npos);
    EXPECT_EQ(calls, 0);
  }
}

TEST(SampleScoringTest, RejectsMismatchedDatasetsAndBadValues) {
  int calls = 0;
  const nn::Tensor points = PointsOnThreeGridMeans();
  EXPECT_TRUE(StatusIs(ScoreSamples(points, {.dataset = "mnist"}, NoScorer(&calls)).status(), kInvalid,
                       {"--dataset=mnist", "[30, 2]"}));
  EXPECT_TRUE(StatusIs(ScoreSamples(nn::Tensor::Zeros({10, 784}), {.dataset = "ring8"}, NoScorer(&calls)).status(),
                       kInvalid, {"--dataset=ring8", "[N, 2]"}));
  EXPECT_TRUE(StatusIs(ScoreSamples(points, {.dataset = "swissroll"}, NoScorer(&calls)).status(), kInvalid,
                       {"--dataset", "swissroll", "grid25"}));
  EXPECT_TRUE(
      StatusIs(ScoreSamples(points, {.dataset = "grid26"}, NoScorer(&calls)).status(), kInvalid, {"--dataset", "grid26"}));
  nn::Tensor nan = points.Clone();
  nan.at({4, 1}) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(StatusIs(ScoreSamples(nan, {}, NoScorer(&calls)).status(), kInvalid, {"--samples", "sample 4", "non-finite"}));
  EXPECT_TRUE(StatusIs(ScoreSamples(nn::Tensor::Zeros({0, 2}), {}, NoScorer(&calls)).status(), kInvalid, {"--samples"}));
  EXPECT_TRUE(StatusIs(ScoreSamples(nn::Tensor::Full({10, 784}, 255.0f), {}, NoScorer(&calls)).status(), kInvalid,
                       {"--samples", "255", "[-1, 1] or [0, 1]"}));
  EXPECT_TRUE(StatusIs(ScoreSamples(nn::Tensor::Zeros({10, 784}), {.pixel_range = "bytes"}, NoScorer(&calls)).status(),
                       kInvalid, {"--pixel_range", "bytes"}));
  EXPECT_EQ(calls, 0);
}

// An untrained classifier and random reference sets are enough to check the plumbing.
class ImageScoringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    nn::Rng rng(3);
    std::vector<int32_t> labels(300);
    for (int i = 0; i < 300; ++i) labels[i] = i % 10;
    train_ = *data::InMemoryDataset::Create(nn::Tensor::Uniform({300, 1, 28, 28}, 0, 1, rng), labels, 10);
    test_ = *data::InMemoryDataset::Create(nn::Tensor::Uniform({200, 1, 28, 28}, 0, 1, rng));
    MnistSampleMetricsOptions o;
    o.score_splits = 2;
    o.kid = {.subsets = 3, .subset_size = 50, .seed = 1};
    o.max_samples = 100;
    absl::StatusOr<std::unique_ptr<MnistSampleScorer>> s =
        MnistSampleScorer::Create(std::make_unique<MnistClassifier>(4), train_, test_, o);
    ASSERT_TRUE(s.ok()) << s.status();
    scorer_ = std::move(s).value();
  }

  MnistScorerProvider Provider() {
    return [this]() -> absl::StatusOr<const MnistSampleScorer*> {
      ++calls_;
      return scorer_.get();
    };
  }

  data::InMemoryDataset train_, test_;
  std::unique_ptr<MnistSampleScorer> scorer_;
  int calls_ = 0;
};

TEST_F(ImageScoringTest, ScoresImagesWithTheScorerAndGuessesThePixelRange) {
  nn::Rng rng(9);
  const nn::Tensor unit = nn::Tensor::Uniform({120, 784}, 0, 1, rng);
  nn::Tensor symmetric = unit.Clone();
  for (float& v : symmetric.mutable_span()) v = 2 * v - 1;

  absl::StatusOr<SampleScores> s = ScoreSamples(symmetric, {}, Provider());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(calls_, 1);
  EXPECT_EQ(s->kind, SampleKind::kMnistImages);
  EXPECT_EQ(s->dataset, "mnist");
  EXPECT_EQ(s->num_samples, 120);
  EXPECT_EQ(s->pixel_range, PixelRange::kSymmetric);
  EXPECT_TRUE(s->pixel_range_guessed);
  const MnistSampleMetrics direct = *scorer_->Score(symmetric, PixelRange::kSymmetric);
  ASSERT_TRUE(s->mnist.has_value() && s->mnist_baseline.has_value());
  EXPECT_EQ(s->mnist->num_samples, 100);
  EXPECT_EQ(s->mnist->frechet_distance, direct.frechet_distance);
  EXPECT_EQ(s->mnist->classifier_score.mean, direct.classifier_score.mean);
  EXPECT_EQ(s->mnist->kid.mean, direct.kid.mean);
  EXPECT_EQ(s->mnist_baseline->frechet_distance, scorer_->RealVsRealBaseline()->frechet_distance);
  const std::string report = s->Report();
  EXPECT_NE(report.find("real-vs-real"), std::string::npos) << report;
  EXPECT_NE(report.find("guessed"), std::string::npos) << report;
  EXPECT_NE(report.find("scored the first 100"), std::string::npos) << report;

  // Unit images are recognized as such; an explicit range overrides the guess.
  absl::StatusOr<SampleScores> u = ScoreSamples(unit.Reshape({120, 1, 28, 28}), {.dataset = "mnist"}, Provider());
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->pixel_range, PixelRange::kUnit);
  EXPECT_NEAR(u->mnist->frechet_distance, direct.frechet_distance, 1e-3 * direct.frechet_distance);
  // [0, 1] images with a small undershoot (a tanh generator trained on [0, 1] data) stay unit.
  nn::Tensor undershoot = unit.Clone();
  for (int64_t i = 0; i < undershoot.numel(); i += 7) undershoot.data()[i] = -0.25f;
  absl::StatusOr<SampleScores> slightly_negative = ScoreSamples(undershoot, {}, Provider());
  ASSERT_TRUE(slightly_negative.ok()) << slightly_negative.status();
  EXPECT_EQ(slightly_negative->pixel_range, PixelRange::kUnit);
  absl::StatusOr<SampleScores> forced = ScoreSamples(unit, {.pixel_range = "symmetric"}, Provider());
  ASSERT_TRUE(forced.ok());
  EXPECT_EQ(forced->pixel_range, PixelRange::kSymmetric);
  EXPECT_FALSE(forced->pixel_range_guessed);

  const std::vector<std::string> cols = s->RowColumns();
  ASSERT_EQ(cols.size(), 15u);
  EXPECT_EQ(cols[0], "n");
  EXPECT_EQ(cols[3], "fd");
  EXPECT_EQ(cols[10], "real_fd");
  const std::map<std::string, double> row = s->AsRow();
  EXPECT_EQ(row.size(), cols.size());
  EXPECT_EQ(row.at("fd"), direct.frechet_distance);
  EXPECT_EQ(row.at("real_fd"), s->mnist_baseline->frechet_distance);
  EXPECT_EQ(row.at("n"), 100);

  // Scorer errors (too few images for a KID subset) pass through.
  EXPECT_TRUE(StatusIs(ScoreSamples(unit.Rows(0, 40), {}, Provider()).status(), kInvalid, {"samples", "at least 50"}));
}

TEST_F(ImageScoringTest, ReadsNpyFilesOfBothFloatTypes) {
  nn::Rng rng(10);
  const nn::Tensor x = nn::Tensor::Uniform({100, 1, 28, 28}, 0, 1, rng);
  const std::string f4 = testutil::TempPath("samples_f4.npy");
  ASSERT_TRUE(WriteNpyTensor(f4, x).ok());
  absl::StatusOr<SampleScores> a = ScoreSamplesFile(f4, {}, Provider());
  ASSERT_TRUE(a.ok()) << a.status();

  // The same values as '<f8' (a hand-made version 1.0 header padded to 64 bytes).
  std::string dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (100, 784), }";
  dict.append((64 - (10 + dict.size() + 1) % 64) % 64, ' ');
  dict.push_back('\n');
  std::string bytes("\x93NUMPY\x01\x00", 8);
  bytes.push_back(static_cast<char>(dict.size() & 0xff));
  bytes.push_back(static_cast<char>(dict.size() >> 8));
  bytes += dict;
  for (float v : x.span()) {
    const double d = v;
    bytes.append(reinterpret_cast<const char*>(&d), sizeof(d));
  }
  const std::string f8 = testutil::TempPath("samples_f8.npy");
  testutil::WriteBytes(f8, bytes);
  absl::StatusOr<SampleScores> b = ScoreSamplesFile(f8, {}, Provider());
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->mnist->frechet_distance, b->mnist->frechet_distance);
  EXPECT_EQ(a->mnist->histogram.counts, b->mnist->histogram.counts);

  EXPECT_TRUE(StatusIs(ScoreSamplesFile(testutil::TempPath("missing.npy"), {}, Provider()).status(),
                       absl::StatusCode::kNotFound, {"--samples", "missing.npy"}));
  const std::string bad = testutil::TempPath("bad_shape.npy");
  ASSERT_TRUE(WriteNpy(bad, {4, 3}, std::vector<float>(12, 0.0f)).ok());
  EXPECT_TRUE(StatusIs(ScoreSamplesFile(bad, {}, Provider()).status(), kInvalid, {"bad_shape.npy", "[4, 3]"}));
}

TEST(SampleScoringCsvTest, AppendsRowsUnderOneHeader) {
  const std::string path = testutil::TempPath("scores.csv");
  std::remove(path.c_str());
  int calls = 0;
  absl::StatusOr<SampleScores> three = ScoreSamples(PointsOnThreeGridMeans(), {.dataset = "grid25"}, NoScorer(&calls));
  ASSERT_TRUE(three.ok());
  nn::Rng rng(1);
  absl::StatusOr<SampleScores> real =
      ScoreSamples((*data::MakeSynthetic2d("grid25"))->Sample(2500, rng), {.dataset = "grid25"}, NoScorer(&calls));
  ASSERT_TRUE(real.ok());
  ASSERT_TRUE(AppendScoresCsv(path, *three).ok());
  ASSERT_TRUE(AppendScoresCsv(path, *real).ok());
  absl::StatusOr<MetricsTable> t = ReadMetricsCsv(path);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->names, three->RowColumns());
  ASSERT_EQ(t->rows(), 2);
  EXPECT_EQ((*t->Column("n"))[0], 30);
  EXPECT_EQ((*t->Column("n"))[1], 2500);
  EXPECT_EQ((*t->Column("modes_captured"))[0], 3);
  EXPECT_EQ((*t->Column("modes_captured"))[1], 25);
  EXPECT_NEAR((*t->Column("reverse_kl"))[0], std::log(25.0 / 3.0), 1e-8);
  EXPECT_NEAR((*t->Column("hq_fraction"))[1], real->coverage->hq_fraction, 1e-9);

  // A row of another kind does not fit the header.
  SampleScores images;
  images.kind = SampleKind::kMnistImages;
  EXPECT_TRUE(StatusIs(AppendScoresCsv(path, images), absl::StatusCode::kFailedPrecondition, {"scores.csv", "header"}));
  EXPECT_EQ(ReadMetricsCsv(path)->rows(), 2);
  EXPECT_FALSE(AppendScoresCsv(testutil::TempPath("no_such_dir/x.csv"), *three).ok());
}

}  // namespace
}  // namespace otgen::eval
