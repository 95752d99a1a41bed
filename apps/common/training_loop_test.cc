#include "apps/common/training_loop.h"


#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "apps/common/metrics_log.h"
#include "apps/common/stop_signal.h"
#include "apps/eval/plot.h"
#include "apps/common/test_files.h"
#include "gtest/gtest.h"
#include "nn/precision.h"
#include "nn/random.h"
#include "nn/tensor.h"

namespace otgen::apps {
namespace {

// A stand-in app: a random walk whose position is a free tensor and whose noise comes from a
// seeded stream, both checkpointed; "evaluate" reports the square of the position.
class RandomWalkApp {
 public:
  explicit RandomWalkApp(uint64_t seed) : rng_(seed), position_(nn::Tensor::Zeros({1})) {
    state_.rngs.emplace_back("noise", &rng_);
    state_.tensors.emplace_back("position", &position_);
  }

  TrainingLoopHooks Hooks(int64_t stop_after = -1) {
    TrainingLoopHooks hooks;
    hooks.train_step = [this, stop_after](int64_t step) -> absl::StatusOr<MetricRow> {
      position_.data()[0] += rng_.Normal();
      ++steps_run_;
      if (step == stop_after) RequestStop();
      return MetricRow{{"position", position_.data()[0]}, {"noise_draws", static_cast<double>(step)}};
    };
    hooks.evaluate = [this](int64_t) -> absl::StatusOr<MetricRow> {
      return MetricRow{{"square", position_.data()[0] * position_.data()[0]}};
    };
    hooks.write_samples = [this](int64_t step, bool last) -> absl::Status {
      samples_.push_back(step);
      last_seen_ = last;
      return absl::OkStatus();
    };
    return hooks;
  }

  nn::TrainingState* state() { return &state_; }
  int steps_run() const { return steps_run_; }
  const std::vector<int64_t>& samples() const { return samples_; }
  bool last_seen() const { return last_seen_; }

 private:
  nn::Rng rng_;
  nn::Tensor position_;
  nn::TrainingState state_;
  int steps_run_ = 0;
  std::vector<int64_t> samples_;
  bool last_seen_ = false;
};

struct LoopSetup {
  RunConfig run;
  ScheduleConfig schedule;
  TrainingLoopSpec spec;
};

LoopSetup MakeSetup(const std::string& name, int64_t steps) {
  LoopSetup s;
  s.run.set_output_dir(TestTempDir() + "/" + name);
  s.schedule.set_steps(steps);
  s.schedule.set_checkpoint_every(3);
  s.schedule.set_eval_every(4);
  s.schedule.set_sample_every(5);
  s.schedule.set_log_every(1);
  s.schedule.set_keep_checkpoints(2);
  s.spec.step_columns = {"position", "noise_draws"};
  s.spec.eval_columns = {"square"};
  s.spec.progress_columns = {"position"};
  s.spec.plots = {CurvePlot{"walk", {"position", "square"}, "random walk", "value"}};
  s.spec.name = "walk";
  return s;
}

TEST(TrainingLoopTest, WritesRowsEvaluationsSamplesCheckpointsAndPlots) {
  ResetStopRequest();
  LoopSetup s = MakeSetup("loop_full", 10);
  RandomWalkApp app(7);
  TrainingLoop loop(s.run, s.schedule, s.spec, app.state());
  absl::StatusOr<TrainingLoopResult> r = loop.Run(app.Hooks(), /*resume=*/false);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->first_step, 1);
  EXPECT_EQ(r->last_step, 10);
  EXPECT_FALSE(r->stopped_by_signal);
  EXPECT_EQ(app.steps_run(), 10);

  absl::StatusOr<MetricsTable> table = ReadMetrics(loop.metrics_path());
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->rows.size(), 10u);
  auto square = table->Column("square");
  ASSERT_TRUE(square.ok());
  for (int i = 0; i < 10; ++i) {
    const int step = i + 1;
    EXPECT_EQ(table->rows[i][0], step);
    // Evaluations at 4, 8 and the last iteration only.
    EXPECT_EQ(std::isfinite((*square)[i]), step == 4 || step == 8 || step == 10) << step;
  }
  EXPECT_EQ(app.samples(), (std::vector<int64_t>{5, 10}));
  EXPECT_TRUE(app.last_seen());
  // Checkpoints at 3, 6, 9 and 10; the newest two kept.
  EXPECT_FALSE(FileExists(s.run.output_dir() + "/ckpt-3.pb"));
  EXPECT_FALSE(FileExists(s.run.output_dir() + "/ckpt-6.pb"));
  EXPECT_TRUE(FileExists(s.run.output_dir() + "/ckpt-9.pb"));
  EXPECT_TRUE(FileExists(s.run.output_dir() + "/ckpt-10.pb"));
  EXPECT_EQ(ReadTestFile(s.run.output_dir() + "/walk.png").substr(1, 3), "PNG");
  EXPECT_NE(ReadTestFile(s.run.output_dir() + "/walk.svg").find("<svg"), std::string::npos);
}

TEST(TrainingLoopTest, InterruptedAndResumedRunMatchesAnUninterruptedOneRowForRow) {
  ResetStopRequest();
  LoopSetup whole = MakeSetup("loop_whole", 12);
  RandomWalkApp a(11);
  ASSERT_TRUE(TrainingLoop(whole.run, whole.schedule, whole.spec, a.state()).Run(a.Hooks(), false).ok());

  LoopSetup parts = MakeSetup("loop_parts", 12);
  {
    RandomWalkApp b(11);
    TrainingLoop loop(parts.run, parts.schedule, parts.spec, b.state());
    absl::StatusOr<TrainingLoopResult> r = loop.Run(b.Hooks(/*stop_after=*/5), false);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->stopped_by_signal);
    EXPECT_EQ(r->last_step, 5);
    // The stop wrote a checkpoint at the interrupted iteration.
    EXPECT_TRUE(FileExists(parts.run.output_dir() + "/ckpt-5.pb"));
  }
  ResetStopRequest();
  {
    // A new process: different seed in the constructor; the checkpoint overrides it.
    RandomWalkApp c(999);
    TrainingLoop loop(parts.run, parts.schedule, parts.spec, c.state());
    absl::StatusOr<TrainingLoopResult> r = loop.Run(c.Hooks(), /*resume=*/true);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->resumed);
    EXPECT_EQ(r->first_step, 6);
    EXPECT_EQ(c.steps_run(), 7);
  }
  EXPECT_EQ(ReadTestFile(whole.run.output_dir() + "/metrics.csv"), ReadTestFile(parts.run.output_dir() + "/metrics.csv"));
}

TEST(TrainingLoopTest, IterationsRunInTheConfiguredPrecision) {
  ResetStopRequest();
  LoopSetup s = MakeSetup("loop_bf16", 3);
  s.run.set_precision(RunConfig::BFLOAT16);
  RandomWalkApp app(5);
  TrainingLoopHooks hooks = app.Hooks();
  std::vector<nn::ComputePrecision> seen;
  const auto step = hooks.train_step;
  hooks.train_step = [&](int64_t k) {
    seen.push_back(nn::CurrentComputePrecision());
    return step(k);
  };
  ASSERT_EQ(nn::CurrentComputePrecision(), nn::ComputePrecision::kFloat32);
  ASSERT_TRUE(TrainingLoop(s.run, s.schedule, s.spec, app.state()).Run(hooks, false).ok());
  EXPECT_EQ(seen, std::vector<nn::ComputePrecision>(3, nn::ComputePrecision::kBFloat16));
  EXPECT_EQ(nn::CurrentComputePrecision(), nn::ComputePrecision::kFloat32);  // restored after the run
}

TEST(TrainingLoopTest, FreshRunRemovesCheckpointsOfAnEarlierRun) {
  ResetStopRequest();
  LoopSetup s = MakeSetup("loop_fresh", 6);
  RandomWalkApp a(1);
  ASSERT_TRUE(TrainingLoop(s.run, s.schedule, s.spec, a.state()).Run(a.Hooks(), false).ok());
  ASSERT_TRUE(FileExists(s.run.output_dir() + "/ckpt-6.pb"));
  s.schedule.set_steps(2);
  RandomWalkApp b(1);
  ASSERT_TRUE(TrainingLoop(s.run, s.schedule, s.spec, b.state()).Run(b.Hooks(), false).ok());
  EXPECT_FALSE(FileExists(s.run.output_dir() + "/ckpt-6.pb"));
  EXPECT_TRUE(FileExists(s.run.output_dir() + "/ckpt-2.pb"));
  absl::StatusOr<MetricsTable> table = ReadMetrics(s.run.output_dir() + "/metrics.csv");
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(table->rows.size(), 2u);
}

TEST(TrainingLoopTest, HookErrorsNameTheIteration) {
  ResetStopRequest();
  LoopSetup s = MakeSetup("loop_error", 5);
  RandomWalkApp app(3);
  TrainingLoopHooks hooks = app.Hooks();
  hooks.train_step = [](int64_t step) -> absl::StatusOr<MetricRow> {
    if (step == 3) return absl::InvalidArgumentError("generator produced NaN");
    return MetricRow{{"position", 0.0}};
  };
  absl::StatusOr<TrainingLoopResult> r = TrainingLoop(s.run, s.schedule, s.spec, app.state()).Run(hooks, false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("iteration 3"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("NaN"), std::string::npos);

  hooks.train_step = [](int64_t) -> absl::StatusOr<MetricRow> { return MetricRow{{"not_a_column", 1.0}}; };
  r = TrainingLoop(s.run, s.schedule, s.spec, app.state()).Run(hooks, false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not_a_column"), std::string::npos) << r.status();
}

TEST(TrainingLoopTest, PlotOfAMissingColumnIsAnError) {
  ResetStopRequest();
  LoopSetup s = MakeSetup("loop_plot", 3);
  s.spec.plots = {CurvePlot{"bad", {"nope"}}};
  RandomWalkApp app(3);
  absl::StatusOr<TrainingLoopResult> r = TrainingLoop(s.run, s.schedule, s.spec, app.state()).Run(app.Hooks(), false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nope"), std::string::npos) << r.status();
}

}  // namespace
}  // namespace otgen::apps
