#include "apps/eval/mnist_sample_metrics.h"

#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "Eigen/Dense"
#include "apps/eval/test_util.h"
#include "data/mnist.h"
#include "gtest/gtest.h"

namespace otgen::eval {
namespace {

using testutil::StatusIs;

constexpr int64_t kTrainSize = 1000;
constexpr int64_t kTestSize = 500;

std::vector<int64_t> Range(int64_t n) {
  std::vector<int64_t> v(n);
  std::iota(v.begin(), v.end(), int64_t{0});
  return v;
}

// A small MNIST setting: the first 1000 training and 500 test images, and a classifier
// trained briefly on those 1000 (the full classifier takes minutes to train).
class MnistSampleMetricsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<data::InMemoryDataset> train = data::LoadMnist("", data::Split::kTrain, {});
    absl::StatusOr<data::InMemoryDataset> test = data::LoadMnist("", data::Split::kTest, {});
    ASSERT_TRUE(train.ok()) << train.status();
    ASSERT_TRUE(test.ok()) << test.status();
    train_ = new data::InMemoryDataset(*train->Subset(Range(kTrainSize)));
    test_ = new data::InMemoryDataset(*test->Subset(Range(kTestSize)));
    absl::StatusOr<std::unique_ptr<MnistClassifier>> c = TrainMnistClassifier(
        *train_, {.seed = 5, .epochs = 2, .batch_size = 50, .decay_epochs = 1, .progress = false});
    ASSERT_TRUE(c.ok()) << c.status();
    checkpoint_ = new std::string(testutil::TempPath("sample_metrics_classifier.pb"));
    ASSERT_TRUE((*c)->Save(*checkpoint_, 0.0).ok());
  }
  static void TearDownTestSuite() {
    delete train_;
    delete test_;
    delete checkpoint_;
  }

  // A fresh copy of the trained classifier.
  static std::unique_ptr<MnistClassifier> Classifier() {
    auto c = std::make_unique<MnistClassifier>(0);
    const absl::Status s = c->Load(*checkpoint_);
    EXPECT_TRUE(s.ok()) << s;
    return c;
  }

  static MnistSampleMetricsOptions SmallOptions() {
    MnistSampleMetricsOptions o;
    o.score_splits = 5;
    o.kid = {.subsets = 4, .subset_size = 100, .seed = 3};
    o.max_samples = 500;
    return o;
  }

  static std::unique_ptr<MnistSampleScorer> Scorer(const MnistSampleMetricsOptions& options) {
    absl::StatusOr<std::unique_ptr<MnistSampleScorer>> s =
        MnistSampleScorer::Create(Classifier(), *train_, *test_, options);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  // Features of `images` (unit range) computed directly by the classifier.
  static ClassifierOutputs Outputs(const nn::Tensor& images) {
    absl::StatusOr<ClassifierOutputs> out = Classifier()->Evaluate(images, PixelRange::kUnit);
    EXPECT_TRUE(out.ok()) << out.status();
    return *out;
  }

  static inline data::InMemoryDataset* train_ = nullptr;
  static inline data::InMemoryDataset* test_ = nullptr;
  static inline std::string* checkpoint_ = nullptr;
};

Eigen::MatrixXd ToDouble(const nn::Tensor& t) {
  return Eigen::Map<const ot::RowMatrixXf>(t.data(), t.dim(0), t.dim(1)).cast<double>();
}

TEST_F(MnistSampleMetricsTest, TheClassifierLearnedSomething) {
  absl::StatusOr<double> acc = Classifier()->Accuracy(*test_);
  ASSERT_TRUE(acc.ok()) << acc.status();
  EXPECT_GT(*acc, 0.7);
}

TEST_F(MnistSampleMetricsTest, TestImagesAgainstThemselvesHaveZeroFrechetDistance) {
  MnistSampleMetricsOptions o = SmallOptions();
  // Subsets of the whole sets: each KID estimate compares the set with itself (permuted).
  o.kid = {.subsets = 2, .subset_size = kTestSize, .seed = 1};
  std::unique_ptr<MnistSampleScorer> scorer = Scorer(o);
  ASSERT_NE(scorer, nullptr);
  EXPECT_EQ(scorer->reference_size(), kTestSize);
  absl::StatusOr<MnistSampleMetrics> m = scorer->Score(test_->examples(), PixelRange::kUnit);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->num_samples, kTestSize);

  const ClassifierOutputs out = Outputs(test_->examples());
  const Eigen::MatrixXd f = ToDouble(out.features);
  const Eigen::RowVectorXd mu = f.colwise().mean();
  const Eigen::MatrixXd centered = f.rowwise() - mu;
  const double trace = (centered.transpose() * centered).trace() / (kTestSize - 1);
  ASSERT_GT(trace, 1.0);
  EXPECT_NEAR(m->frechet_distance, 0.0, 1e-7 * trace) << m->BriefReport();

  // KID oracle: with x = y = the whole set, MMD^2_u = 2 S_off / (m (m - 1)) - 2 (S_off + S_diag) / m^2,
  // k(a, b) = (a.b / d + 1)^3.
  const Eigen::MatrixXd k = ((f * f.transpose()) / static_cast<double>(f.cols())).array().unaryExpr([](double v) {
    return (v + 1.0) * (v + 1.0) * (v + 1.0);
  });
  const double s_diag = k.trace(), s_off = k.sum() - s_diag;
  const double m_d = static_cast<double>(kTestSize);
  const double mmd = 2.0 * s_off / (m_d * (m_d - 1.0)) - 2.0 * (s_off + s_diag) / (m_d * m_d);
  ASSERT_EQ(m->kid.values.size(), 2u);
  const double scale = k.mean();  // the size of the terms that cancel
  for (double v : m->kid.values) EXPECT_NEAR(v, mmd, 1e-9 * scale);
  EXPECT_NEAR(m->kid.stddev, 0.0, 1e-9 * scale);

  // Histogram: the argmax counts, summing to n; KL against the training label frequencies.
  std::vector<int64_t> counts(10, 0);
  for (int p : out.predictions) ++counts[p];
  EXPECT_EQ(m->histogram.counts, counts);
  std::vector<double> train_freq(10, 0.0);
  for (int64_t i = 0; i < kTrainSize; ++i) train_freq[train_->label(i)] += 1.0 / kTrainSize;
  double kl = 0.0;
  for (int c = 0; c < 10; ++c) {
    EXPECT_NEAR(scorer->train_class_frequencies()[c], train_freq[c], 1e-12);
    if (counts[c] > 0) kl += counts[c] / m_d * std::log(counts[c] / m_d / train_freq[c]);
  }
  EXPECT_NEAR(m->histogram.kl_to_reference, kl, 1e-9);
  // A trained classifier spreads real digits over the classes.
  EXPECT_GT(m->classifier_score.mean, 4.0) << m->BriefReport();
  EXPECT_EQ(m->classifier_score.values.size(), 5u);
  // Confident fraction, recounted.
  int64_t confident = 0;
  for (int64_t i = 0; i < kTestSize; ++i) {
    float top = 0.0f;
    for (int c = 0; c < 10; ++c) top = std::max(top, out.probabilities.at({i, c}));
    confident += top > 0.9f;
  }
  EXPECT_NEAR(m->confident_fraction, static_cast<double>(confident) / kTestSize, 1e-12);
}

TEST_F(MnistSampleMetricsTest, OneRepeatedImageHasClassifierScoreOne) {
  std::unique_ptr<MnistSampleScorer> scorer = Scorer(SmallOptions());
  ASSERT_NE(scorer, nullptr);
  const int64_t n = 200;
  nn::Tensor images = nn::Tensor::Empty({n, 1, 28, 28});
  const nn::Tensor first = test_->examples().Rows(0, 1);
  for (int64_t i = 0; i < n; ++i) images.Rows(i, i + 1).CopyFrom(first);
  absl::StatusOr<MnistSampleMetrics> m = scorer->Score(images, PixelRange::kUnit);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_NEAR(m->classifier_score.mean, 1.0, 1e-5);
  EXPECT_NEAR(m->classifier_score.stddev, 0.0, 1e-5);

  // All predictions in the image's class c: KL = log(1 / r_c).
  const ClassifierOutputs one = Outputs(first);
  const int c = one.predictions[0];
  std::vector<int64_t> counts(10, 0);
  counts[c] = n;
  EXPECT_EQ(m->histogram.counts, counts);
  EXPECT_NEAR(m->histogram.kl_to_reference, -std::log(scorer->train_class_frequencies()[c]), 1e-9);
  const float top = one.probabilities.at({0, c});
  EXPECT_EQ(m->confident_fraction, top > 0.9f ? 1.0 : 0.0);

  // Zero sample covariance: FD = ||f - mu_test||^2 + tr(S_test).
  const Eigen::MatrixXd ft = ToDouble(Outputs(test_->examples()).features);
  const Eigen::RowVectorXd mu = ft.colwise().mean();
  const Eigen::MatrixXd centered = ft.rowwise() - mu;
  const double trace = (centered.transpose() * centered).trace() / (kTestSize - 1);
  const Eigen::RowVectorXd f = ToDouble(one.features).row(0);
  const double expected = (f - mu).squaredNorm() + trace;
  EXPECT_NEAR(m->frechet_distance, expected, 1e-4 * expected);
}

TEST_F(MnistSampleMetricsTest, SymmetricPixelsMatchUnitPixels) {
  std::unique_ptr<MnistSampleScorer> scorer = Scorer(SmallOptions());
  ASSERT_NE(scorer, nullptr);
  const nn::Tensor unit = test_->examples();
  nn::Tensor symmetric = unit.Clone();
  for (float& v : symmetric.mutable_span()) v = 2.0f * v - 1.0f;
  absl::StatusOr<MnistSampleMetrics> a = scorer->Score(unit, PixelRange::kUnit);
  absl::StatusOr<MnistSampleMetrics> b = scorer->Score(symmetric.Reshape({kTestSize, 784}), PixelRange::kSymmetric);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NEAR(a->classifier_score.mean, b->classifier_score.mean, 1e-4);
  EXPECT_NEAR(a->frechet_distance, b->frechet_distance, 1e-3);
  EXPECT_NEAR(a->kid.mean, b->kid.mean, 1e-4);
  EXPECT_EQ(a->histogram.counts, b->histogram.counts);
  // The wrong range gives other numbers.
  absl::StatusOr<MnistSampleMetrics> wrong = scorer->Score(unit, PixelRange::kSymmetric);
  ASSERT_TRUE(wrong.ok());
  EXPECT_GT(wrong->frechet_distance, a->frechet_distance + 1.0);
}

TEST_F(MnistSampleMetricsTest, LongerInputsAreCutToMaxSamples) {
  MnistSampleMetricsOptions o = SmallOptions();
  o.max_samples = 300;
  std::unique_ptr<MnistSampleScorer> scorer = Scorer(o);
  ASSERT_NE(scorer, nullptr);
  absl::StatusOr<MnistSampleMetrics> all = scorer->Score(test_->examples(), PixelRange::kUnit);
  absl::StatusOr<MnistSampleMetrics> first = scorer->Score(test_->examples().Rows(0, 300), PixelRange::kUnit);
  ASSERT_TRUE(all.ok() && first.ok());
  EXPECT_EQ(all->num_samples, 300);
  EXPECT_NEAR(all->classifier_score.mean, first->classifier_score.mean, 1e-9);
  EXPECT_NEAR(all->frechet_distance, first->frechet_distance, 1e-9);
  EXPECT_NEAR(all->kid.mean, first->kid.mean, 1e-9);
  EXPECT_EQ(all->histogram.counts, first->histogram.counts);
}

TEST_F(MnistSampleMetricsTest, BaselineScoresARandomTrainingSubset) {
  // With max_samples above the training size the baseline scores all training images (in a
  // random order); with one split the classifier score does not depend on the order.
  MnistSampleMetricsOptions o = SmallOptions();
  o.max_samples = 2000;
  o.score_splits = 1;
  std::unique_ptr<MnistSampleScorer> scorer = Scorer(o);
  ASSERT_NE(scorer, nullptr);
  absl::StatusOr<MnistSampleMetrics> baseline = scorer->RealVsRealBaseline();
  absl::StatusOr<MnistSampleMetrics> direct = scorer->Score(train_->examples(), PixelRange::kUnit);
  ASSERT_TRUE(baseline.ok() && direct.ok());
  EXPECT_EQ(baseline->num_samples, kTrainSize);
  EXPECT_NEAR(baseline->classifier_score.mean, direct->classifier_score.mean, 1e-5);
  EXPECT_NEAR(baseline->frechet_distance, direct->frechet_distance, 1e-4 * direct->frechet_distance);
  EXPECT_EQ(baseline->histogram.counts, direct->histogram.counts);
  EXPECT_NEAR(baseline->confident_fraction, direct->confident_fraction, 1e-12);

  // A subset of max_samples, the same for the same seed.
  std::unique_ptr<MnistSampleScorer> a = Scorer(SmallOptions());
  std::unique_ptr<MnistSampleScorer> b = Scorer(SmallOptions());
  ASSERT_TRUE(a != nullptr && b != nullptr);
  EXPECT_EQ(a->RealVsRealBaseline()->num_samples, 500);
  EXPECT_EQ(a->RealVsRealBaseline()->frechet_distance, b->RealVsRealBaseline()->frechet_distance);
  EXPECT_EQ(a->RealVsRealBaseline()->histogram.counts, b->RealVsRealBaseline()->histogram.counts);
  // Real training digits are close to the test digits: far closer than a collapsed set.
  nn::Tensor collapsed = nn::Tensor::Empty({500, 784});
  for (int64_t i = 0; i < 500; ++i) collapsed.Rows(i, i + 1).CopyFrom(test_->examples().Rows(i % 3, i % 3 + 1));
  absl::StatusOr<MnistSampleMetrics> bad = a->Score(collapsed, PixelRange::kUnit);
  ASSERT_TRUE(bad.ok());
  EXPECT_LT(a->RealVsRealBaseline()->frechet_distance, 0.5 * bad->frechet_distance);
  EXPECT_LT(a->RealVsRealBaseline()->kid.mean, bad->kid.mean);
  EXPECT_GT(a->RealVsRealBaseline()->classifier_score.mean, bad->classifier_score.mean);
}

TEST_F(MnistSampleMetricsTest, RejectsBadSamples) {
  std::unique_ptr<MnistSampleScorer> scorer = Scorer(SmallOptions());
  ASSERT_NE(scorer, nullptr);
  const auto code = absl::StatusCode::kInvalidArgument;
  EXPECT_TRUE(StatusIs(scorer->Score(nn::Tensor::Zeros({200, 783}), PixelRange::kUnit).status(), code,
                       {"samples", "[200, 783]"}));
  EXPECT_TRUE(StatusIs(scorer->Score(nn::Tensor::Zeros({200, 3, 28, 28}), PixelRange::kUnit).status(), code,
                       {"samples", "[200, 3, 28, 28]"}));
  EXPECT_TRUE(StatusIs(scorer->Score(nn::Tensor::Zeros({784}), PixelRange::kUnit).status(), code, {"samples"}));
  EXPECT_TRUE(StatusIs(scorer->Score(nn::Tensor(), PixelRange::kUnit).status(), code, {"samples", "undefined"}));
  // Fewer rows than a KID subset.
  EXPECT_TRUE(StatusIs(scorer->Score(test_->examples().Rows(0, 99), PixelRange::kUnit).status(), code,
                       {"samples", "at least 100", "got 99"}));
  nn::Tensor nan = test_->examples().Clone();
  nan.at({7, 0, 3, 5}) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(StatusIs(scorer->Score(nan, PixelRange::kUnit).status(), code, {"samples", "image 7", "non-finite"}));
  nn::Tensor inf = test_->examples().Clone();
  inf.at({0, 0, 0, 0}) = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(StatusIs(scorer->Score(inf, PixelRange::kSymmetric).status(), code, {"samples", "non-finite"}));
}

TEST_F(MnistSampleMetricsTest, RejectsBadOptionsAndReferences) {
  const auto code = absl::StatusCode::kInvalidArgument;
  EXPECT_TRUE(StatusIs(MnistSampleMetricsOptions{.score_splits = 0}.Validate(), code, {"score_splits"}));
  EXPECT_TRUE(StatusIs(MnistSampleMetricsOptions{.confident_threshold = 1.5}.Validate(), code, {"confident_threshold"}));
  EXPECT_TRUE(StatusIs(MnistSampleMetricsOptions{.max_samples = 500}.Validate(), code, {"max_samples"}));
  MnistSampleMetricsOptions kid;
  kid.kid.subsets = 0;
  EXPECT_TRUE(StatusIs(kid.Validate(), code, {"subsets"}));
  EXPECT_TRUE(MnistSampleMetricsOptions{}.Validate().ok());

  // Too few test images for a KID subset; unlabelled training set; no classifier.
  MnistSampleMetricsOptions big = SmallOptions();
  big.kid.subset_size = 501;
  big.max_samples = 1000;
  EXPECT_TRUE(StatusIs(MnistSampleScorer::Create(Classifier(), *train_, *test_, big).status(), code,
                       {"test", "at least 501"}));
  const data::InMemoryDataset unlabelled = *data::InMemoryDataset::Create(test_->examples());
  EXPECT_TRUE(StatusIs(MnistSampleScorer::Create(Classifier(), unlabelled, *test_, SmallOptions()).status(), code,
                       {"train", "labelled", "without labels"}));
  const data::InMemoryDataset small_images = *data::InMemoryDataset::Create(nn::Tensor::Zeros({600, 1, 16, 16}));
  EXPECT_TRUE(StatusIs(MnistSampleScorer::Create(Classifier(), *train_, small_images, SmallOptions()).status(), code,
                       {"test", "[1, 16, 16]"}));
  EXPECT_TRUE(
      StatusIs(MnistSampleScorer::Create(nullptr, *train_, *test_, SmallOptions()).status(), code, {"classifier"}));
}

TEST_F(MnistSampleMetricsTest, RowAndReport) {
  MnistSampleMetrics m;
  m.num_samples = 10000;
  m.classifier_score = {.mean = 9.5, .stddev = 0.1, .values = std::vector<double>(10, 9.5)};
  m.frechet_distance = 1.25;
  m.kid = {.mean = 0.002, .stddev = 0.0005, .values = std::vector<double>(10, 0.002)};
  m.histogram.counts = {1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000};
  m.histogram.kl_to_reference = 0.003;
  m.confident_fraction = 0.97;
  const std::vector<std::string> cols = MnistSampleMetrics::RowColumns("eval_");
  EXPECT_EQ(cols, (std::vector<std::string>{"eval_cs", "eval_cs_std", "eval_fd", "eval_kid", "eval_kid_std",
                                            "eval_class_kl", "eval_confident"}));
  const std::map<std::string, double> row = m.AsRow("eval_");
  ASSERT_EQ(row.size(), cols.size());
  for (const std::string& c : cols) EXPECT_EQ(row.count(c), 1u) << c;
  EXPECT_EQ(row.at("eval_cs"), 9.5);
  EXPECT_EQ(row.at("eval_cs_std"), 0.1);
  EXPECT_EQ(row.at("eval_fd"), 1.25);
  EXPECT_EQ(row.at("eval_kid"), 0.002);
  EXPECT_EQ(row.at("eval_kid_std"), 0.0005);
  EXPECT_EQ(row.at("eval_class_kl"), 0.003);
  EXPECT_EQ(row.at("eval_confident"), 0.97);
  EXPECT_EQ(m.AsRow().count("fd"), 1u);

  MnistSampleMetrics b = m;
  b.frechet_distance = 0.5;
  const std::string report = FormatMnistReport(m, b);
  EXPECT_NE(report.find("real-vs-real"), std::string::npos) << report;
  EXPECT_NE(report.find("1.2500"), std::string::npos) << report;
  EXPECT_NE(report.find("0.5000"), std::string::npos) << report;
  EXPECT_NE(report.find("9.5000 +- 0.1000"), std::string::npos) << report;
  EXPECT_NE(report.find("97.00%"), std::string::npos) << report;
  EXPECT_NE(report.find("(10 splits)"), std::string::npos) << report;
}

}  // namespace
}  // namespace otgen::eval
