#include "apps/w2gan/w2gan.h"

#include <sys/stat.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "apps/common/config.h"
#include "apps/eval/npy.h"
#include "apps/eval/plot.h"
#include "apps/common/test_files.h"
#include "gtest/gtest.h"

namespace otgen::apps::w2gan {
namespace {

std::string TempDir(const std::string& name) { return TestTempDir() + "/" + name; }

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && st.st_size > 0;
}

// Rows of metrics.csv as column -> value (empty cells absent).
std::vector<std::map<std::string, double>> ReadMetrics(const std::string& path) {
  std::vector<std::string> lines = absl::StrSplit(ReadTestFile(path), '\n', absl::SkipEmpty());
  std::vector<std::map<std::string, double>> rows;
  if (lines.empty()) return rows;
  const std::vector<std::string> header = absl::StrSplit(lines[0], ',');
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::vector<std::string> cells = absl::StrSplit(lines[i], ',');
    std::map<std::string, double> row;
    for (size_t k = 0; k < cells.size() && k < header.size(); ++k) {
      if (!cells[k].empty()) row[header[k]] = std::strtod(cells[k].c_str(), nullptr);
    }
    rows.push_back(row);
  }
  return rows;
}

// A small W2GAN on 4gaussians (narrower networks and larger steps than Fig. 2, for a test).
constexpr char kSmall[] = R"pb(
  run { seed: 2 threads: 1 }
  schedule { steps: 200 checkpoint_every: 0 log_every: 10 sample_every: 0 eval_every: 50 }
  method: W2GAN
  data { pair_2d: "4gaussians" }
  batch_size: 64
  critic_steps: 3
  generator { h { mlp { hidden: [ 32, 32 ] batch_norm: true } } }
  potentials {
    phi { mlp { hidden: [ 32, 32 ] } }
    psi { mlp { hidden: [ 32, 32 ] } }
  }
  w2 { lambda_ineq: 200 lambda_eq: 0 }
  generator_optimizer { lr: 0.0005 beta1: 0.5 beta2: 0.9 }
  critic_optimizer { lr: 0.001 beta1: 0.5 beta2: 0.9 }
  evaluation { map_error_points: 256 plot_points: 64 heatmap_resolution: 32 }
)pb";

W2ganConfig Small(const std::string& output_dir) {
  W2ganConfig c;
  const absl::Status s = ParseConfig(kSmall, "kSmall", &c);
  EXPECT_TRUE(s.ok()) << s;
  c.mutable_run()->set_output_dir(output_dir);
  return c;
}

TEST(W2ganConfigTest, EveryShippedConfigParsesAndValidates) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("apps/w2gan/configs")) {
    W2ganConfig c;
    const absl::Status load = LoadConfig(entry.path().string(), &c);
    ASSERT_TRUE(load.ok()) << load;
    const absl::Status valid = ValidateW2ganConfig(c);
    EXPECT_TRUE(valid.ok()) << entry.path() << ": " << valid;
    ++count;
  }
  // 4 methods x 3 sets (Fig. 2), Gaussian -> MNIST (Fig. 5), 2 domain-adaptation directions (Table 1).
  EXPECT_EQ(count, 15);
}

TEST(W2ganConfigTest, BadConfigsAreRejectedNamingTheField) {
  const std::vector<std::pair<std::string, std::function<void(W2ganConfig&)>>> cases = {
      {"data", [](W2ganConfig& c) { c.clear_data(); }},
      {"data.pair_2d", [](W2ganConfig& c) { c.mutable_data()->set_pair_2d("3gaussians"); }},
      {"data.reverse_pair", [](W2ganConfig& c) {
         c.mutable_data()->mutable_mvg_mnist();
         c.mutable_data()->set_reverse_pair(true);
       }},
      {"batch_size", [](W2ganConfig& c) { c.set_batch_size(1); }},
      {"critic_steps", [](W2ganConfig& c) { c.set_critic_steps(0); }},
      {"generator.h", [](W2ganConfig& c) { c.mutable_generator()->clear_h(); }},
      {"generator.residual_scale", [](W2ganConfig& c) { c.mutable_generator()->set_residual_scale(-1); }},
      {"potentials.phi", [](W2ganConfig& c) { c.mutable_potentials()->clear_phi(); }},
      {"potentials.psi", [](W2ganConfig& c) { c.mutable_potentials()->mutable_psi()->mutable_mlp()->set_batch_norm(true); }},
      {"w2.lambda_ineq", [](W2ganConfig& c) { c.mutable_w2()->set_lambda_ineq(0); }},
      {"w2.lambda_eq", [](W2ganConfig& c) { c.mutable_w2()->set_lambda_eq(-1); }},
      {"w2.ineq_on_pairs", [](W2ganConfig& c) {
         c.mutable_w2()->set_ineq_on_pairs(false);
         c.mutable_w2()->set_ineq_on_interpolates(false);
       }},
      {"w2.lambda_eps", [](W2ganConfig& c) { c.mutable_w2()->set_lambda_eps(1); }},  // needs EPSILON
      {"generator_optimizer.beta1", [](W2ganConfig& c) { c.mutable_generator_optimizer()->set_beta1(1.5f); }},
      {"critic_optimizer.lr", [](W2ganConfig& c) { c.mutable_critic_optimizer()->set_lr(-1); }},
      {"wgan.critic", [](W2ganConfig& c) { c.set_method(WGAN_GP); }},
      {"wgan.lambda_gp", [](W2ganConfig& c) {
         c.set_method(WGAN_LP);
         c.mutable_wgan()->mutable_critic()->mutable_mlp()->add_hidden(8);
         c.mutable_wgan()->set_lambda_gp(-1);
       }},
      {"barycentric_ot.u", [](W2ganConfig& c) { c.set_method(BARYCENTRIC_OT); }},
      {"barycentric_ot.dual_steps", [](W2ganConfig& c) {
         c.set_method(BARYCENTRIC_OT);
         c.mutable_barycentric_ot()->mutable_u()->mutable_mlp()->add_hidden(8);
         c.mutable_barycentric_ot()->mutable_v()->mutable_mlp()->add_hidden(8);
         c.mutable_barycentric_ot()->set_dual_steps(200);  // = schedule.steps: no map stage
       }},
      {"data.domain_adaptation.mnist_test_subset", [](W2ganConfig& c) {
         c.mutable_data()->mutable_domain_adaptation()->set_mnist_test_subset(0);
         c.mutable_generator()->mutable_h()->mutable_mlp()->set_out_features(0);
       }},
      {"evaluation.plot_points", [](W2ganConfig& c) { c.mutable_evaluation()->set_plot_points(1000); }},
      {"evaluation.heatmap_resolution", [](W2ganConfig& c) { c.mutable_evaluation()->set_heatmap_resolution(2); }},
  };
  ASSERT_TRUE(ValidateW2ganConfig(Small("/tmp")).ok());
  for (const auto& [field, mutate] : cases) {
    W2ganConfig c = Small("/tmp");
    mutate(c);
    const absl::Status s = ValidateW2ganConfig(c);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_TRUE(std::string(s.message()).rfind(field, 0) == 0) << "expected a message starting with " << field
                                                               << ", got: " << s.message();
  }
}

TEST(W2ganRunTest, ShortTwoDimensionalRunBeatsTheIdentityMap) {
  const std::string dir = TempDir("w2gan_short");
  absl::StatusOr<TrainingLoopResult> r = RunW2gan(Small(dir), /*resume=*/false);
  ASSERT_TRUE(r.ok()) << r.status();
  // The identity map scores a relative error of exactly 1 (DATASETS.md); W2GAN moves towards
  // the Discrete-OT map.
  ASSERT_TRUE(r->last_metrics.count("map_error_relative"));
  EXPECT_LT(r->last_metrics.at("map_error_relative"), 0.6);
  const std::vector<std::map<std::string, double>> rows = ReadMetrics(dir + "/metrics.csv");
  ASSERT_EQ(rows.size(), 20u);  // every 10 steps
  for (const auto& row : rows) {
    for (const auto& [k, v] : row) EXPECT_TRUE(std::isfinite(v)) << k;
  }
  for (const char* f : {"data.png", "discrete_ot.png", "map_200.png", "grad_200.png", "phi_200.png", "psi_200.png",
                        "path.png", "losses.png", "map_error.png", "samples.npy", "mapped_200.npy"}) {
    EXPECT_TRUE(Exists(dir + "/" + f)) << f;
  }
  absl::StatusOr<ot::RowMatrixXf> samples = eval::ReadNpyMatrix(dir + "/samples.npy");
  ASSERT_TRUE(samples.ok());
  EXPECT_EQ(samples->rows(), 256);
  EXPECT_EQ(samples->cols(), 2);
}

// reverse_pair maps the pair's target to its source: the generator starts at the identity, so
// after one tiny step its outputs on the fixed source batch are still the source points, whose
// 4gaussians centers lie at distance 1 (DATASETS.md source) or 2 (target) from the origin.
TEST(W2ganRunTest, ReversePairSwapsSourceAndTarget) {
  for (const bool reverse : {false, true}) {
    SCOPED_TRACE(reverse);
    const std::string dir = TempDir(reverse ? "w2gan_reversed" : "w2gan_forward");
    W2ganConfig c = Small(dir);
    c.mutable_schedule()->set_steps(1);
    c.mutable_schedule()->set_log_every(1);
    c.mutable_schedule()->set_eval_every(0);
    c.mutable_generator_optimizer()->set_lr(1e-7f);
    c.mutable_data()->set_reverse_pair(reverse);
    absl::StatusOr<TrainingLoopResult> r = RunW2gan(c, /*resume=*/false);
    ASSERT_TRUE(r.ok()) << r.status();
    absl::StatusOr<ot::RowMatrixXf> samples = eval::ReadNpyMatrix(dir + "/samples.npy");
    ASSERT_TRUE(samples.ok()) << samples.status();
    const double mean_squared_norm = samples->cast<double>().rowwise().squaredNorm().mean();
    // E||z||^2 = scale^2 + 2 * 0.1^2.
    EXPECT_NEAR(mean_squared_norm, reverse ? 4.02 : 1.02, 0.3);
  }
}

TEST(W2ganRunTest, ResumedRunWritesTheSameMetricsAsAnUninterruptedOne) {
  // Every term on (eq. 23, A.8 eps), so that every random stream and module is exercised.
  auto config = [](const std::string& dir, int64_t steps) {
    W2ganConfig c = Small(dir);
    c.mutable_schedule()->set_steps(steps);
    c.mutable_schedule()->set_checkpoint_every(3);
    c.mutable_schedule()->set_log_every(1);
    c.mutable_schedule()->set_eval_every(1);  // the shorter run also evaluates at its last step
    c.mutable_potentials()->set_parameterization(PotentialsConfig::EPSILON);
    c.mutable_w2()->set_lambda_eq(10);
    c.mutable_w2()->set_lambda_eps(10);
    c.set_batch_size(16);
    return c;
  };
  const std::string a = TempDir("w2gan_straight"), b = TempDir("w2gan_resumed");
  ASSERT_TRUE(RunW2gan(config(a, 6), false).ok());
  ASSERT_TRUE(RunW2gan(config(b, 3), false).ok());
  absl::StatusOr<TrainingLoopResult> r = RunW2gan(config(b, 6), /*resume=*/true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->resumed);
  EXPECT_EQ(r->first_step, 4);
  const std::string straight = ReadTestFile(a + "/metrics.csv");
  EXPECT_EQ(std::count(straight.begin(), straight.end(), '\n'), 7);
  EXPECT_EQ(ReadTestFile(b + "/metrics.csv"), straight);
}

TEST(W2ganRunTest, BaselinesRunAndBarycentricOtKeepsTheIdentityDuringTheDualStage) {
  for (const Method method : {WGAN_GP, WGAN_LP, BARYCENTRIC_OT}) {
    const std::string dir = TempDir("w2gan_" + Method_Name(method));
    W2ganConfig c = Small(dir);
    c.set_method(method);
    c.mutable_schedule()->set_steps(6);
    c.mutable_schedule()->set_log_every(1);
    c.mutable_schedule()->set_eval_every(1);
    c.mutable_wgan()->mutable_critic()->mutable_mlp()->add_hidden(16);
    c.mutable_barycentric_ot()->mutable_u()->mutable_mlp()->add_hidden(16);
    c.mutable_barycentric_ot()->mutable_v()->mutable_mlp()->add_hidden(16);
    c.mutable_barycentric_ot()->set_dual_steps(3);
    c.mutable_generator_optimizer()->set_lr(0.01f);
    absl::StatusOr<TrainingLoopResult> r = RunW2gan(c, false);
    ASSERT_TRUE(r.ok()) << Method_Name(method) << ": " << r.status();
    const std::vector<std::map<std::string, double>> rows = ReadMetrics(dir + "/metrics.csv");
    ASSERT_EQ(rows.size(), 6u);
    for (int i = 0; i < 6; ++i) {
      for (const auto& [k, v] : rows[i]) EXPECT_TRUE(std::isfinite(v)) << Method_Name(method) << " " << k;
      const double rel = rows[i].at("map_error_relative");
      if (method == BARYCENTRIC_OT && i < 3) {
        EXPECT_NEAR(rel, 1.0, 1e-6) << "the generator must not move during the dual stage";
        EXPECT_TRUE(rows[i].count("dual_loss"));
      } else if (method == BARYCENTRIC_OT) {
        EXPECT_TRUE(rows[i].count("map_loss"));
      } else {
        EXPECT_NE(rel, 1.0) << Method_Name(method) << " step " << i + 1;
      }
    }
    const std::string heat = method == BARYCENTRIC_OT ? "/u_6.png" : "/critic_6.png";
    EXPECT_TRUE(Exists(dir + heat)) << heat;
  }
}

}  // namespace
}  // namespace otgen::apps::w2gan
