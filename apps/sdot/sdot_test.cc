// End-to-end tests of apps/sdot on a 1000-image MNIST subset: outputs, the loss H decreasing,
// finite metrics, interrupt + resume equal to an uninterrupted run, and bad configs.
#include "apps/sdot/sdot.h"


#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
#include <numeric>
#include <sstream>
#include <thread>

#include "apps/common/config.h"
#include "apps/common/metrics_log.h"
#include "apps/common/stop_signal.h"
#include "apps/eval/mnist_classifier.h"
#include "apps/eval/plot.h"
#include "data/mnist.h"
#include "apps/common/test_files.h"
#include "gtest/gtest.h"
#include "nn/random.h"
#include "optim/asgd.h"

namespace otgen::apps::sdot {
namespace {

std::vector<int64_t> Range(int64_t n) {
  std::vector<int64_t> v(n);
  std::iota(v.begin(), v.end(), int64_t{0});
  return v;
}

// A small SDOT run: 1000 target images, a small MLP generator, batches of 50.
SdotConfig SmallConfig(const std::string& name, int64_t steps) {
  SdotConfig c;
  const absl::Status s = ParseConfig(R"pb(
    schedule { checkpoint_every: 8 sample_every: 10 log_every: 1 keep_checkpoints: 2 }
    data { train_limit: 1000 pixel_range: "symmetric" }
    latent { dim: 16 bound: 1 }
    batch_size: 50
    generator { mlp { hidden: [ 64, 128 ] output_activation: TANH } }
    generator_optimizer { kind: ADAM lr: 0.001 }
    dual { lambda: 0 inner_iterations: 5 optimizer { kind: ASGD gamma: 5 alpha: 0.5 } }
    evaluation { num_samples: 200 grid_samples: 16 }
  )pb", "small", &c);
  EXPECT_TRUE(s.ok()) << s;
  c.mutable_run()->set_output_dir(TestTempDir() + "/" + name);
  c.mutable_run()->set_seed(3);
  c.mutable_schedule()->set_steps(steps);
  return c;
}

// A scorer with a briefly trained classifier and small protocol sizes.
class SdotTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<data::InMemoryDataset> train = data::LoadMnist("", data::Split::kTrain, {});
    absl::StatusOr<data::InMemoryDataset> test = data::LoadMnist("", data::Split::kTest, {});
    ASSERT_TRUE(train.ok()) << train.status();
    ASSERT_TRUE(test.ok()) << test.status();
    data::InMemoryDataset train_small = *train->Subset(Range(1000));
    data::InMemoryDataset test_small = *test->Subset(Range(300));
    auto classifier = eval::TrainMnistClassifier(
        train_small, {.seed = 5, .epochs = 1, .batch_size = 50, .decay_epochs = 0, .progress = false});
    ASSERT_TRUE(classifier.ok()) << classifier.status();
    eval::MnistSampleMetricsOptions options;
    options.score_splits = 2;
    options.kid.subsets = 2;
    options.kid.subset_size = 100;
    options.max_samples = 200;
    auto scorer = eval::MnistSampleScorer::Create(*std::move(classifier), train_small, test_small, options);
    ASSERT_TRUE(scorer.ok()) << scorer.status();
    scorer_ = scorer->release();
  }
  static void TearDownTestSuite() { delete scorer_; }

  static absl::StatusOr<SdotRunResult> Run(const SdotConfig& c, bool resume = false) {
    ResetStopRequest();
    return RunSdot(c, {.resume = resume, .scorer = scorer_, .print = false});
  }

  static eval::MnistSampleScorer* scorer_;
};
eval::MnistSampleScorer* SdotTest::scorer_ = nullptr;

TEST_F(SdotTest, ShortRunWritesItsOutputsLowersHAndScoresFiniteMetrics) {
  const SdotConfig c = SmallConfig("e2e", 40);
  absl::StatusOr<SdotRunResult> r = Run(c);
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string dir = c.run().output_dir();
  for (const char* f : {"config.pbtxt", "metrics.csv", "loss.png", "loss.svg", "samples.png", "samples_000010.png",
                        "samples_000040.png", "samples.npy", "ckpt-40.pb", "ckpt-32.pb"}) {
    EXPECT_TRUE(FileExists(dir + "/" + f)) << f;
  }
  EXPECT_FALSE(FileExists(dir + "/ckpt-24.pb"));  // keep_checkpoints: 2

  absl::StatusOr<MetricsTable> table = ReadMetrics(dir + "/metrics.csv");
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->rows.size(), 40u);
  std::vector<double> h = *table->Column("h");
  const double first = (h[0] + h[1] + h[2] + h[3] + h[4]) / 5;
  const double last = (h[35] + h[36] + h[37] + h[38] + h[39]) / 5;
  EXPECT_LT(last, 0.8 * first) << "H_lambda(psi, theta) should decrease: first " << first << ", last " << last;
  // Final metrics: finite, in the last row and in the result.
  ASSERT_TRUE(r->metrics.has_value());
  ASSERT_TRUE(r->baseline.has_value());
  for (const std::string& col : eval::MnistSampleMetrics::RowColumns()) {
    const std::vector<double> v = *table->Column(col);
    EXPECT_TRUE(std::isfinite(v.back())) << col;
    EXPECT_FALSE(std::isfinite(v[20])) << col << " is only evaluated at the end";
  }
  EXPECT_GE(r->metrics->classifier_score.mean, 1.0);
  EXPECT_TRUE(std::isfinite(r->metrics->frechet_distance));
  // The final samples: 200 images of 784 pixels in [-1, 1].
  const std::string npy = ReadTestFile(dir + "/samples.npy");
  EXPECT_NE(npy.find("(200, 784)"), std::string::npos);
}

TEST_F(SdotTest, InterruptedAndResumedRunEqualsAnUninterruptedOne) {
  const SdotConfig whole = SmallConfig("resume_whole", 30);
  ASSERT_TRUE(Run(whole).ok());

  const SdotConfig parts = SmallConfig("resume_parts", 30);
  // SIGINT arrives while iteration >= 6 is running (where exactly does not matter).
  std::atomic<bool> done{false};
  std::thread interrupter([&] {
    while (!done) {
      absl::StatusOr<MetricsTable> t = ReadMetrics(parts.run().output_dir() + "/metrics.csv");
      if (t.ok() && t->rows.size() >= 5) {
        std::raise(SIGINT);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  absl::StatusOr<SdotRunResult> first = RunSdot(parts, {.scorer = scorer_, .print = false});
  done = true;
  interrupter.join();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(first->loop.stopped_by_signal) << "the run finished before the interrupt";
  EXPECT_EQ(first->loop.signal, SIGINT);
  EXPECT_LT(first->loop.last_step, 30);
  EXPECT_TRUE(FileExists(parts.run().output_dir() + "/ckpt-" + std::to_string(first->loop.last_step) + ".pb"));

  absl::StatusOr<SdotRunResult> second = Run(parts, /*resume=*/true);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->loop.resumed);
  EXPECT_EQ(second->loop.first_step, first->loop.last_step + 1);
  EXPECT_EQ(ReadTestFile(whole.run().output_dir() + "/metrics.csv"), ReadTestFile(parts.run().output_dir() + "/metrics.csv"));
  EXPECT_EQ(ReadTestFile(whole.run().output_dir() + "/samples.npy"), ReadTestFile(parts.run().output_dir() + "/samples.npy"));
}

TEST_F(SdotTest, SdotnnAndSoftTransformAndSinkhornLossRun) {
  SdotConfig nn_config = SmallConfig("sdotnn", 6);
  nn_config.mutable_dual()->set_parameterization(DualConfig::NETWORK);
  nn_config.mutable_dual()->set_lambda(0.01f);
  nn_config.mutable_dual()->mutable_optimizer()->set_gamma(0.1f);
  nn_config.mutable_dual()->mutable_optimizer()->set_alpha(0.8f);
  ASSERT_TRUE(ParseConfig("mlp { hidden: [32] out_features: 1 }", "psi", nn_config.mutable_dual()->mutable_network()).ok());
  nn_config.mutable_evaluation()->set_mnist_metrics(false);
  absl::StatusOr<SdotRunResult> r = Run(nn_config);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(std::isfinite(r->loop.last_metrics.at("h")));

  SdotConfig sinkhorn = SmallConfig("sinkhorn", 4);
  sinkhorn.mutable_dual()->set_lambda(0.05f);
  sinkhorn.mutable_sinkhorn_loss()->set_enabled(true);
  sinkhorn.mutable_evaluation()->set_mnist_metrics(false);
  r = Run(sinkhorn);
  ASSERT_TRUE(r.ok()) << r.status();
  // The batch self-transport term is positive and the loss is H minus half of it.
  const MetricRow& m = r->loop.last_metrics;
  EXPECT_GT(m.at("w_self"), 0.0);
  EXPECT_NEAR(m.at("sinkhorn_loss"), m.at("h") - 0.5 * m.at("w_self"), 1e-6 * std::abs(m.at("h")) + 1e-9);
}

TEST_F(SdotTest, InnerLoopStudyRaisesHAtTheEstimate) {
  SdotConfig c = SmallConfig("study", 40);
  c.mutable_schedule()->set_eval_every(10);
  c.mutable_inner_loop_study()->set_enabled(true);
  c.mutable_inner_loop_study()->set_eval_batch(200);
  absl::StatusOr<SdotRunResult> r = Run(c);
  ASSERT_TRUE(r.ok()) << r.status();
  absl::StatusOr<MetricsTable> table = ReadMetrics(c.run().output_dir() + "/metrics.csv");
  ASSERT_TRUE(table.ok());
  std::vector<double> est;
  const std::vector<double> column = *table->Column("h_estimate");
  for (double v : column) {
    if (std::isfinite(v)) est.push_back(v);
  }
  ASSERT_EQ(est.size(), 4u);
  // psi -> H(psi, theta) is concave and ASGD ascends it: H at psi = 0 is the starting value.
  EXPECT_GT(est.back(), est.front());
}

// The largest absolute difference between the optimizer's parameters and their ASGD averages.
float MaxDistanceToAverage(const nn::TrainingState& state, const std::string& optimizer) {
  for (const auto& [name, opt] : state.optimizers) {
    if (name != optimizer) continue;
    const auto* asgd = dynamic_cast<const optim::Asgd*>(opt);
    EXPECT_NE(asgd, nullptr);
    if (asgd == nullptr) return -1.0f;
    float d = 0.0f;
    for (int i = 0; i < asgd->num_parameters(); ++i) {
      const nn::Tensor& p = asgd->parameters()[i].value();
      const nn::Tensor& a = asgd->averaged(i);
      for (int64_t k = 0; k < p.numel(); ++k) d = std::max(d, std::abs(p.data()[k] - a.data()[k]));
    }
    return d;
  }
  ADD_FAILURE() << "no optimizer " << optimizer;
  return -1.0f;
}

TEST(SdotWarmStartTest, IterateWarmStartKeepsTheIterateAndChangesTheTrajectory) {
  nn::Rng rng(17);
  const nn::Tensor targets = nn::Tensor::Uniform({300, 1, 28, 28}, -1.0f, 1.0f, rng);
  for (const bool network : {false, true}) {
    SCOPED_TRACE(network ? "SDOTNN" : "SDOT");
    SdotConfig average = SmallConfig(network ? "warm_nn" : "warm", 2);
    if (network) {
      average.mutable_dual()->set_parameterization(DualConfig::NETWORK);
      average.mutable_dual()->mutable_optimizer()->set_gamma(0.1f);
      average.mutable_dual()->mutable_optimizer()->set_alpha(0.8f);
      ASSERT_TRUE(ParseConfig("mlp { hidden: [16] out_features: 1 }", "psi", average.mutable_dual()->mutable_network()).ok());
    }
    SdotConfig iterate = average;
    iterate.mutable_dual()->set_warm_start(DualConfig::ITERATE);
    auto a = SdotModel::Create(average, targets);
    auto b = SdotModel::Create(iterate, targets);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    // The first inner loop starts from the same point: same metrics.
    auto a1 = (*a)->OuterIteration();
    auto b1 = (*b)->OuterIteration();
    ASSERT_TRUE(a1.ok() && b1.ok());
    EXPECT_EQ(*a1, *b1);
    if (network) {
      // AVERAGE leaves the network at the average (the next start), ITERATE at the iterate.
      EXPECT_EQ(MaxDistanceToAverage((*a)->training_state(), "psi_optimizer"), 0.0f);
      EXPECT_GT(MaxDistanceToAverage((*b)->training_state(), "psi_optimizer"), 0.0f);
    }
    // The second starts from the average vs the iterate.
    auto a2 = (*a)->OuterIteration();
    auto b2 = (*b)->OuterIteration();
    ASSERT_TRUE(a2.ok() && b2.ok());
    EXPECT_NE(a2->at("h_inner"), b2->at("h_inner"));
    EXPECT_TRUE(std::isfinite(b2->at("h")));
  }
}

TEST(SdotConfigTest, BadConfigsNameTheField) {
  SdotConfig c = SmallConfig("bad", 2);
  SdotConfig unknown;
  const absl::Status parse = ParseConfig("dual { lamda: 0.1 }", "bad.pbtxt", &unknown);
  EXPECT_EQ(parse.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(parse.message().find("lamda"), std::string::npos) << parse;

  SdotConfig negative = c;
  negative.mutable_dual()->set_lambda(-1.0f);
  EXPECT_NE(ValidateSdotConfig(negative).message().find("dual.lambda"), std::string::npos);

  SdotConfig batch0 = c;
  batch0.set_batch_size(0);
  EXPECT_NE(ValidateSdotConfig(batch0).message().find("batch_size"), std::string::npos);

  SdotConfig sinkhorn = c;
  sinkhorn.mutable_sinkhorn_loss()->set_enabled(true);
  EXPECT_NE(ValidateSdotConfig(sinkhorn).message().find("sinkhorn_loss.enabled"), std::string::npos);

  SdotConfig no_network = c;
  no_network.mutable_dual()->set_parameterization(DualConfig::NETWORK);
  EXPECT_NE(ValidateSdotConfig(no_network).message().find("dual.network"), std::string::npos);

  SdotConfig bad_generator = c;
  bad_generator.mutable_generator()->mutable_mlp()->set_out_features(100);
  EXPECT_NE(ValidateSdotConfig(bad_generator).message().find("generator"), std::string::npos);

  absl::StatusOr<SdotRunResult> few = RunSdot(c, {.print = false});
  ASSERT_FALSE(few.ok());
  EXPECT_NE(few.status().message().find("evaluation.num_samples"), std::string::npos) << few.status();

  SdotConfig missing = c;
  missing.mutable_data()->set_mnist_dir(TestTempDir() + "/no_mnist_here");
  absl::StatusOr<SdotRunResult> r = RunSdot(missing, {.print = false});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("data.mnist_dir"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("no_mnist_here"), std::string::npos) << r.status();
}

}  // namespace
}  // namespace otgen::apps::sdot
