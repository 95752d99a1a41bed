#include "apps/wgan_gp/wgan_gp.h"


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
#include "apps/wgan_gp/default_config.h"
#include "apps/common/test_files.h"
#include "gtest/gtest.h"

namespace otgen::apps::wgan_gp {
namespace {

std::vector<std::string> ConfigFiles() {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator("apps/wgan_gp/configs")) {
    if (entry.path().extension() == ".pbtxt") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(WganGpConfigTest, EveryConfigParsesAndValidates) {
  const std::vector<std::string> files = ConfigFiles();
  EXPECT_GE(files.size(), 10u);
  for (const std::string& f : files) {
    WganGpConfig config;
    ASSERT_TRUE(LoadConfig(f, &config).ok()) << f;
    EXPECT_TRUE(ValidateWganGpConfig(config).ok()) << f << ": " << ValidateWganGpConfig(config);
  }
  WganGpConfig config;
  ASSERT_TRUE(ParseConfig(kDefaultWganGpConfig, "default", &config).ok());
  EXPECT_TRUE(ValidateWganGpConfig(config).ok());
  EXPECT_EQ(config.data().dataset(), "ring8_wgangp");
}

WganGpConfig ToyConfig(const std::string& name) {
  WganGpConfig config;
  EXPECT_TRUE(LoadConfig("apps/wgan_gp/configs/wgangp_toy_25gaussians.pbtxt", &config).ok());
  config.mutable_run()->set_output_dir(TestTempDir() + "/" + name);
  config.mutable_run()->set_threads(1);
  ScheduleConfig* s = config.mutable_schedule();
  s->set_steps(30);
  s->set_log_every(1);
  s->set_checkpoint_every(0);
  s->set_sample_every(0);
  s->set_eval_every(0);
  config.mutable_data()->set_batch_size(64);
  config.mutable_generator()->mutable_mlp()->clear_hidden();
  config.mutable_generator()->mutable_mlp()->add_hidden(32);
  config.mutable_critic()->mutable_mlp()->clear_hidden();
  config.mutable_critic()->mutable_mlp()->add_hidden(32);
  config.mutable_critic()->mutable_mlp()->add_hidden(32);
  config.mutable_critic_optimizer()->set_lr(1e-3f);
  config.mutable_eval()->set_num_samples(500);
  return config;
}

// Expects an InvalidArgument error whose message names `field`.
void ExpectRejected(const WganGpConfig& config, const std::string& field) {
  absl::Status s = ValidateWganGpConfig(config);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << field;
  EXPECT_NE(s.message().find(field), std::string::npos) << "expected '" << field << "' in: " << s;
}

TEST(WganGpConfigTest, BadConfigsAreRejectedNamingTheField) {
  const WganGpConfig good = ToyConfig("unused");
  ASSERT_TRUE(ValidateWganGpConfig(good).ok());
  WganGpConfig c = good;
  c.set_critic_steps(0);
  ExpectRejected(c, "critic_steps");
  c = good;
  c.mutable_lipschitz()->set_penalty_weight(-1);
  ExpectRejected(c, "lipschitz.penalty_weight");
  c = good;
  c.mutable_lipschitz()->set_kind(LipschitzConfig::WEIGHT_CLIPPING);
  c.mutable_lipschitz()->set_clip_value(0);
  ExpectRejected(c, "lipschitz.clip_value");
  c = good;
  c.mutable_data()->set_dataset("moons");
  ExpectRejected(c, "data.dataset");
  c = good;
  c.mutable_data()->set_batch_size(1);
  ExpectRejected(c, "data.batch_size");
  c = good;
  c.mutable_noise()->set_dim(0);
  ExpectRejected(c, "noise.dim");
  c = good;
  c.mutable_generator()->mutable_mlp()->set_out_features(3);
  ExpectRejected(c, "generator");
  c = good;
  c.mutable_critic()->mutable_mlp()->set_out_features(2);
  ExpectRejected(c, "critic");
  c = good;
  c.clear_critic();
  ExpectRejected(c, "critic");
  c = good;
  c.mutable_critic_optimizer()->set_beta1(1.5f);
  ExpectRejected(c, "critic_optimizer.beta1");
  c = good;
  c.mutable_eval()->set_num_samples(-1);
  ExpectRejected(c, "eval.num_samples");
  c = good;
  c.mutable_data()->set_dataset("cifar10");
  ExpectRejected(c, "data.directory");
  c = good;
  c.mutable_schedule()->set_steps(-1);
  EXPECT_FALSE(ValidateWganGpConfig(c).ok());
}

TEST(WganGpTest, ToyRunWritesOutputsAndTheCriticLearnsToSeparate) {
  ResetStopRequest();
  WganGpConfig config = ToyConfig("wgan_gp_toy");
  absl::StatusOr<TrainingLoopResult> r = RunWganGp(config, /*resume=*/false);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->last_step, 30);
  const std::string dir = config.run().output_dir();
  absl::StatusOr<MetricsTable> table = ReadMetrics(dir + "/metrics.csv");
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->rows.size(), 30u);
  std::vector<double> w = table->Column("wasserstein").value();
  std::vector<double> loss = table->Column("critic_loss").value();
  std::vector<double> norm = table->Column("grad_norm").value();
  // A random critic barely separates the clouds; after a few updates E u(y) - E u(G(z)) is
  // clearly positive and the critic loss (which it minimizes) has gone down.
  EXPECT_LT(std::abs(w[0]), 0.5 * w[29]) << w[0] << " " << w[29];
  EXPECT_GT(w[29], 0.05);
  EXPECT_LT(loss[29], loss[0]);
  EXPECT_LT(loss[29], 0.0);
  for (double n : norm) EXPECT_TRUE(std::isfinite(n) && n > 0);
  // Final evaluation: mode coverage and Sinkhorn divergence on the last row only.
  std::vector<double> modes = table->Column("eval_modes").value();
  EXPECT_TRUE(std::isnan(modes[0]));
  EXPECT_GE(modes[29], 0);
  EXPECT_LE(modes[29], 25);
  EXPECT_TRUE(std::isfinite(table->Column("eval_sinkhorn").value()[29]));
  absl::StatusOr<nn::Tensor> samples = eval::ReadNpyTensor(dir + "/samples.npy");
  ASSERT_TRUE(samples.ok()) << samples.status();
  EXPECT_EQ(samples->shape(), (nn::Shape{500, 2}));
  EXPECT_EQ(ReadTestFile(dir + "/samples.png").substr(1, 3), "PNG");
  EXPECT_EQ(ReadTestFile(dir + "/samples_30.png").substr(1, 3), "PNG");
  EXPECT_EQ(ReadTestFile(dir + "/losses.png").substr(1, 3), "PNG");
  EXPECT_TRUE(FileExists(dir + "/critic.svg"));
  EXPECT_TRUE(FileExists(dir + "/ckpt-30.pb"));
}

TEST(WganGpTest, WeightClippingKeepsTheCriticInTheBox) {
  ResetStopRequest();
  WganGpConfig config = ToyConfig("wgan_clip");
  config.mutable_schedule()->set_steps(3);
  config.mutable_lipschitz()->set_kind(LipschitzConfig::WEIGHT_CLIPPING);
  config.mutable_lipschitz()->set_clip_value(0.05f);
  std::unique_ptr<WganGpTrainer> trainer = WganGpTrainer::Create(config).value();
  for (int i = 0; i < 3; ++i) {
    MetricRow row = trainer->Iteration().value();
    EXPECT_EQ(row.at("penalty"), 0.0);
  }
  for (const nn::Var& p : trainer->critic().Parameters()) {
    for (int64_t k = 0; k < p.numel(); ++k) EXPECT_LE(std::abs(p.value().data()[k]), 0.05f);
  }
}

WganGpConfig MnistConfig(const std::string& name, int64_t steps) {
  WganGpConfig config;
  EXPECT_TRUE(LoadConfig("apps/wgan_gp/configs/wgangp_mnist_dcgan.pbtxt", &config).ok());
  config.mutable_run()->set_output_dir(TestTempDir() + "/" + name);
  ScheduleConfig* s = config.mutable_schedule();
  s->set_steps(steps);
  s->set_log_every(1);
  s->set_checkpoint_every(2);
  s->set_sample_every(0);
  s->set_eval_every(0);
  config.mutable_data()->set_batch_size(4);
  config.set_critic_steps(2);
  config.mutable_eval()->set_mnist_metrics(false);
  config.mutable_eval()->set_num_samples(8);
  config.mutable_eval()->set_grid_images(4);
  return config;
}

TEST(WganGpTest, MnistDcganRunWritesImagesAndResumesRowForRow) {
  ResetStopRequest();
  const WganGpConfig whole = MnistConfig("wgan_gp_mnist_whole", 4);
  absl::StatusOr<TrainingLoopResult> r = RunWganGp(whole, false);
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string dir = whole.run().output_dir();
  absl::StatusOr<nn::Tensor> samples = eval::ReadNpyTensor(dir + "/samples.npy");
  ASSERT_TRUE(samples.ok()) << samples.status();
  EXPECT_EQ(samples->shape(), (nn::Shape{8, 1, 28, 28}));
  for (float v : samples->span()) EXPECT_TRUE(v >= -1 && v <= 1);
  EXPECT_EQ(ReadTestFile(dir + "/samples_4.png").substr(1, 3), "PNG");

  // Two iterations, then a resumed run to four: the same rows (data batches come from the
  // checkpointed epoch batcher).
  WganGpConfig parts = MnistConfig("wgan_gp_mnist_parts", 2);
  ASSERT_TRUE(RunWganGp(parts, false).ok());
  parts.mutable_schedule()->set_steps(4);
  absl::StatusOr<TrainingLoopResult> resumed = RunWganGp(parts, /*resume=*/true);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_TRUE(resumed->resumed);
  EXPECT_EQ(resumed->first_step, 3);
  EXPECT_EQ(ReadTestFile(dir + "/metrics.csv"), ReadTestFile(parts.run().output_dir() + "/metrics.csv"));
}

}  // namespace
}  // namespace otgen::apps::wgan_gp
