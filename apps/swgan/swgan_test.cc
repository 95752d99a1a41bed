#include "apps/swgan/swgan.h"


#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "apps/common/config.h"
#include "apps/common/metrics_log.h"
#include "apps/common/stop_signal.h"
#include "apps/eval/npy.h"
#include "apps/eval/plot.h"
#include "apps/swgan/default_config.h"
#include "apps/common/test_files.h"
#include "gtest/gtest.h"

namespace otgen::apps::swgan {
namespace {

SwganConfig Load(const std::string& name) {
  SwganConfig config;
  absl::Status s = LoadConfig("apps/swgan/configs/" + name, &config);
  EXPECT_TRUE(s.ok()) << s;
  return config;
}

TEST(SwganConfigTest, EveryConfigParsesAndValidates) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("apps/swgan/configs")) {
    if (entry.path().extension() != ".pbtxt") continue;
    SwganConfig config;
    ASSERT_TRUE(LoadConfig(entry.path().string(), &config).ok()) << entry.path();
    EXPECT_TRUE(ValidateSwganConfig(config).ok()) << entry.path() << ": " << ValidateSwganConfig(config);
    ++count;
  }
  EXPECT_EQ(count, 12);  // Table 1 (2), Figure 1 / Table 2 (8), Table 3 (2)
  SwganConfig config;
  ASSERT_TRUE(ParseConfig(kDefaultSwganConfig, "default", &config).ok());
  EXPECT_TRUE(ValidateSwganConfig(config).ok());
}

SwganConfig GridConfig(const std::string& name) {
  SwganConfig config = Load("seed001_table1_grid25_d2.pbtxt");
  config.mutable_run()->set_output_dir(TestTempDir() + "/" + name);
  config.mutable_run()->set_threads(1);
  ScheduleConfig* s = config.mutable_schedule();
  s->set_steps(25);
  s->set_log_every(1);
  s->set_checkpoint_every(0);
  s->set_sample_every(0);
  s->set_eval_every(0);
  config.mutable_data()->set_batch_size(64);
  config.mutable_dual()->set_max_steps(5);
  config.mutable_eval()->set_num_samples(500);
  return config;
}

void ExpectRejected(const SwganConfig& config, const std::string& field) {
  absl::Status s = ValidateSwganConfig(config);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << field;
  EXPECT_NE(s.message().find(field), std::string::npos) << "expected '" << field << "' in: " << s;
}

TEST(SwganConfigTest, BadConfigsAreRejectedNamingTheField) {
  const SwganConfig good = GridConfig("unused");
  ASSERT_TRUE(ValidateSwganConfig(good).ok());
  SwganConfig c = good;
  c.mutable_dual()->set_lambda(0);
  ExpectRejected(c, "dual.lambda");
  c = good;
  c.mutable_dual()->set_max_steps(0);
  ExpectRejected(c, "dual.max_steps");
  c = good;
  c.mutable_dual()->set_min_steps(6);
  ExpectRejected(c, "dual.min_steps");
  c = good;
  c.mutable_dual()->set_stop_tolerance(-0.1f);
  ExpectRejected(c, "dual.stop_tolerance");
  c = good;
  c.mutable_cost()->set_scale(-1);
  ExpectRejected(c, "cost.scale");
  c = good;
  c.clear_psi();
  ExpectRejected(c, "psi");
  c = good;
  c.mutable_phi()->mutable_mlp()->set_out_features(3);
  ExpectRejected(c, "phi");
  c = good;
  c.mutable_generator()->mutable_mlp()->set_out_features(3);
  ExpectRejected(c, "generator");
  c = good;
  c.mutable_potential_optimizer()->set_lr(-1);
  ExpectRejected(c, "potential_optimizer.lr");
  c = good;
  c.mutable_latent()->set_update_every(1);
  ExpectRejected(c, "latent.network");
  c = Load("seed001_fig1c_mnist_l1_latent.pbtxt");
  c.mutable_latent()->set_update_every(0);
  ExpectRejected(c, "latent.update_every");
  c = Load("seed001_fig1c_mnist_l1_latent.pbtxt");
  c.mutable_latent()->mutable_network()->mutable_layers(0)->mutable_conv()->set_kernel(0);
  ExpectRejected(c, "latent.network.layers[0].conv.kernel");
  c = Load("seed001_fig1c_mnist_l1_latent.pbtxt");
  c.mutable_phi()->mutable_layers(0)->mutable_linear()->set_out_features(1);
  c.mutable_phi()->mutable_layers(3)->mutable_linear()->set_out_features(2);
  ExpectRejected(c, "phi");
}

TEST(SwganTest, Grid25RunWritesOutputsAndTheDualEstimateGrows) {
  ResetStopRequest();
  SwganConfig config = GridConfig("swgan_grid");
  absl::StatusOr<TrainingLoopResult> r = RunSwgan(config, /*resume=*/false);
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string dir = config.run().output_dir();
  absl::StatusOr<MetricsTable> table = ReadMetrics(dir + "/metrics.csv");
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->rows.size(), 25u);
  const std::vector<double> dual = table->Column("dual_gen_data").value();
  const std::vector<double> steps = table->Column("steps_gen_data").value();
  const std::vector<double> loss = table->Column("generator_loss").value();
  for (int i = 0; i < 25; ++i) {
    EXPECT_TRUE(std::isfinite(dual[i]));
    EXPECT_TRUE(steps[i] >= 1 && steps[i] <= 5) << steps[i];
    EXPECT_TRUE(std::isfinite(loss[i]) && loss[i] >= 0) << loss[i];  // mean of m c >= 0
  }
  std::vector<double> modes = table->Column("eval_modes").value();
  EXPECT_TRUE(std::isfinite(modes[24]));
  absl::StatusOr<nn::Tensor> samples = eval::ReadNpyTensor(dir + "/samples.npy");
  ASSERT_TRUE(samples.ok()) << samples.status();
  EXPECT_EQ(samples->shape(), (nn::Shape{500, 2}));
  EXPECT_EQ(ReadTestFile(dir + "/samples.png").substr(1, 3), "PNG");
  EXPECT_EQ(ReadTestFile(dir + "/duals.png").substr(1, 3), "PNG");
  EXPECT_TRUE(FileExists(dir + "/discriminator.svg"));
  EXPECT_TRUE(FileExists(dir + "/ckpt-25.pb"));
}

TEST(SwganTest, WithAFrozenGeneratorTheDualEstimateClimbsToTheTransportCost) {
  // The discriminator ascends eq. 5: random potentials start near 0, and with the generator
  // (almost) frozen the batch estimate of d_{c,lambda} between the random generator and grid25
  // (L1 distances of several units) grows over the iterations.
  SwganConfig config = GridConfig("swgan_frozen");
  config.mutable_generator_optimizer()->set_lr(1e-12f);
  config.mutable_dual()->set_stop_tolerance(0);
  std::unique_ptr<SwganTrainer> t = SwganTrainer::Create(config).value();
  std::vector<double> dual;
  for (int step = 1; step <= 12; ++step) dual.push_back(t->Iteration(step).value().at("dual_gen_data"));
  const double late = (dual[9] + dual[10] + dual[11]) / 3;
  EXPECT_GT(late, dual[0] + 1.0) << dual[0] << " -> " << late;
  EXPECT_GT(late, 2.0);
}

TEST(SwganTest, ResumedRunRepeatsTheTrainingRows) {
  ResetStopRequest();
  SwganConfig whole = GridConfig("swgan_resume_whole");
  whole.mutable_schedule()->set_steps(6);
  ASSERT_TRUE(RunSwgan(whole, false).ok());
  SwganConfig parts = GridConfig("swgan_resume_parts");
  parts.mutable_schedule()->set_steps(3);
  ASSERT_TRUE(RunSwgan(parts, false).ok());
  parts.mutable_schedule()->set_steps(6);
  absl::StatusOr<TrainingLoopResult> r = RunSwgan(parts, /*resume=*/true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->first_step, 4);
  MetricsTable a = ReadMetrics(whole.run().output_dir() + "/metrics.csv").value();
  MetricsTable b = ReadMetrics(parts.run().output_dir() + "/metrics.csv").value();
  ASSERT_EQ(a.rows.size(), 6u);
  ASSERT_EQ(b.rows.size(), 6u);
  // Every training column, row for row (the evaluation columns differ: the first run of
  // `parts` also evaluated at its last iteration, 3).
  for (const char* c : {"dual_gen_data", "m_gen_data", "steps_gen_data", "generator_loss"}) {
    EXPECT_EQ(a.Column(c).value(), b.Column(c).value()) << c;
  }
}

TEST(SwganTest, DynamicStopOfEquation26) {
  // Tolerance 0: always max_steps. A tolerance no statistic can miss: exactly min_steps.
  SwganConfig config = GridConfig("swgan_stop");
  config.mutable_dual()->set_stop_tolerance(0);
  std::unique_ptr<SwganTrainer> full = SwganTrainer::Create(config).value();
  EXPECT_EQ(full->Iteration(1).value().at("steps_gen_data"), 5);
  config.mutable_dual()->set_stop_tolerance(1e30f);
  config.mutable_dual()->set_min_steps(2);
  std::unique_ptr<SwganTrainer> quick = SwganTrainer::Create(config).value();
  MetricRow row = quick->Iteration(1).value();
  EXPECT_EQ(row.at("steps_gen_data"), 2);
  EXPECT_TRUE(std::isfinite(row.at("m_gen_data")));
  EXPECT_GE(row.at("m_gen_data"), 0);
}

TEST(SwganTest, SinkhornLossTrainsTheSecondDual) {
  SwganConfig config = GridConfig("swgan_sinkhorn");
  config.set_objective(SwganConfig::SINKHORN_LOSS);
  config.mutable_cost()->set_kind(CostConfig::SQUARED_EUCLIDEAN);
  config.mutable_dual()->set_regularizer(DualConfig::KL);
  config.mutable_dual()->set_lambda(1.0f);
  std::unique_ptr<SwganTrainer> t = SwganTrainer::Create(config).value();
  EXPECT_EQ(t->StepColumns(),
            (std::vector<std::string>{"dual_gen_data", "m_gen_data", "steps_gen_data", "dual_gen_gen", "m_gen_gen",
                                      "steps_gen_gen", "generator_loss"}));
  for (int step = 1; step <= 3; ++step) {
    MetricRow row = t->Iteration(step).value();
    EXPECT_GE(row.at("steps_gen_gen"), 1);
    EXPECT_TRUE(std::isfinite(row.at("dual_gen_gen")));
    EXPECT_TRUE(std::isfinite(row.at("generator_loss")));
  }
}

SwganConfig SmallImageConfig(const std::string& file, const std::string& name) {
  SwganConfig config = Load(file);
  config.mutable_run()->set_output_dir(TestTempDir() + "/" + name);
  ScheduleConfig* s = config.mutable_schedule();
  s->set_steps(2);
  s->set_log_every(1);
  s->set_checkpoint_every(0);
  s->set_sample_every(0);
  s->set_eval_every(0);
  config.mutable_dual()->set_max_steps(2);
  config.mutable_eval()->set_mnist_metrics(false);
  config.mutable_eval()->set_num_samples(4);
  config.mutable_eval()->set_grid_images(4);
  return config;
}

TEST(SwganTest, MnistLatentSinkhornPanelRunsWithAdversarialLatentUpdates) {
  ResetStopRequest();
  SwganConfig config = SmallImageConfig("seed001_fig1h_mnist_cosine_latent_sinkhorn.pbtxt", "swgan_mnist");
  config.mutable_data()->set_batch_size(4);
  absl::StatusOr<TrainingLoopResult> r = RunSwgan(config, false);
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string dir = config.run().output_dir();
  absl::StatusOr<MetricsTable> table = ReadMetrics(dir + "/metrics.csv");
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->rows.size(), 2u);
  std::vector<double> latent = table->Column("latent_objective").value();
  EXPECT_TRUE(std::isnan(latent[0]));  // update_every 2: only after iteration 2
  EXPECT_TRUE(std::isfinite(latent[1]));
  for (const char* c : {"dual_gen_data", "dual_gen_gen", "dual_data_data"}) {
    const std::vector<double> values = table->Column(c).value();
    for (double v : values) EXPECT_TRUE(std::isfinite(v)) << c;
  }
  absl::StatusOr<nn::Tensor> samples = eval::ReadNpyTensor(dir + "/samples.npy");
  ASSERT_TRUE(samples.ok()) << samples.status();
  EXPECT_EQ(samples->shape(), (nn::Shape{4, 1, 28, 28}));
  EXPECT_EQ(ReadTestFile(dir + "/samples_2.png").substr(1, 3), "PNG");
}

// A CIFAR-10 binary file of `n` records.
std::string WriteTinyCifar(const std::string& name, int n) {
  const std::string path = TestTempDir() + "/" + name;
  std::ofstream out(path, std::ios::binary);
  for (int i = 0; i < n; ++i) {
    out.put(static_cast<char>(i % 10));
    for (int k = 0; k < 3072; ++k) out.put(static_cast<char>((7 * i + k) % 256));
  }
  return path;
}

TEST(SwganTest, CifarTable3ConfigRunsTwoIterationsOnATinyFile) {
  ResetStopRequest();
  SwganConfig config = SmallImageConfig("seed001_table3_cifar10_l1_latent_sinkhorn.pbtxt", "swgan_cifar");
  config.mutable_data()->clear_directory();
  config.mutable_data()->add_files(WriteTinyCifar("tiny_cifar.bin", 6));
  config.mutable_data()->set_batch_size(2);
  absl::StatusOr<TrainingLoopResult> r = RunSwgan(config, false);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->last_step, 2);
  const std::string dir = config.run().output_dir();
  absl::StatusOr<nn::Tensor> samples = eval::ReadNpyTensor(dir + "/samples.npy");
  ASSERT_TRUE(samples.ok()) << samples.status();
  EXPECT_EQ(samples->shape(), (nn::Shape{4, 3, 32, 32}));
  EXPECT_TRUE(std::isfinite(r->last_metrics.at("latent_objective")));
  EXPECT_EQ(ReadTestFile(dir + "/samples.png").substr(1, 3), "PNG");
}

}  // namespace
}  // namespace otgen::apps::swgan
