// The outer loop every app runs: iterations, metrics.csv, progress line, sample grids,
// periodic evaluation, atomic checkpoints with --resume, loss-curve plots and a clean stop on
// SIGINT/SIGTERM. The app supplies what one iteration does; the loop does the bookkeeping.
//
// Iterations are numbered 1..schedule.steps; "step s" means "after iteration s". For each s:
//   metrics = hooks.train_step(s)
//   every schedule.eval_every iterations and at the last one: metrics += hooks.evaluate(s)
//   a metrics.csv row (columns "step", spec.step_columns, spec.eval_columns) every
//     schedule.log_every iterations, on evaluation iterations and at the last one
//   the progress line (iteration/total, it/s, ETA, spec.progress_columns) on stderr
//   every schedule.sample_every iterations and at the last one: hooks.write_samples(s, last)
//   every schedule.checkpoint_every iterations and at the last one: hooks.before_checkpoint(),
//     then output_dir/ckpt-<s>.pb (temporary file + rename; the newest keep_checkpoints kept),
//     then the loss curves of spec.plots are redrawn from metrics.csv (PNG and SVG)
//   on SIGINT/SIGTERM (checked after each iteration): a checkpoint at s, then Run returns with
//     stopped_by_signal (the binary should exit non-zero, 128 + signal by convention).
//
// Resume: with `resume`, the newest checkpoint in output_dir (step r) is restored into
// `state` (modules, optimizers, random streams, tensors), hooks.after_restore() runs, rows of
// metrics.csv after r are dropped and iterations continue at r + 1. Because every random
// stream is part of the state, an interrupted and resumed run writes the same metrics rows as
// an uninterrupted one with the same seed. Without `resume`, leftovers of an earlier run in
// output_dir (checkpoints, metrics.csv) are removed first, with a notice on stderr.
//
// The iterations run in run.precision (nn/precision.h) through a ComputePrecisionGuard.
//
// Metrics.csv holds no wall-clock values (they would break the row-for-row equality above);
// the elapsed time is in the result and the final summary line.
#ifndef OTGEN_APPS_COMMON_TRAINING_LOOP_H_
#define OTGEN_APPS_COMMON_TRAINING_LOOP_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "apps/common/experiment.pb.h"
#include "nn/checkpoint.h"

namespace otgen::apps {

using MetricRow = std::map<std::string, double>;

// A figure drawn from metrics.csv: the named columns against the step, written to
// output_dir/<name>.png and output_dir/<name>.svg.
struct CurvePlot {
  std::string name;
  std::vector<std::string> columns;
  std::string title;
  std::string y_label;
  bool log_y = false;
};

struct TrainingLoopSpec {
  // Columns written by train_step and by evaluate (each row may leave some empty).
  std::vector<std::string> step_columns;
  std::vector<std::string> eval_columns;
  // Values of the last train_step shown on the progress line (a subset of step_columns).
  std::vector<std::string> progress_columns;
  std::vector<CurvePlot> plots;
  // Prefix of the progress and summary lines, e.g. "sdot".
  std::string name = "train";
};

struct TrainingLoopHooks {
  // Required: runs iteration `step` and returns its metrics (keys among step_columns).
  std::function<absl::StatusOr<MetricRow>(int64_t step)> train_step;
  // Optional: costly evaluation after iteration `step` (keys among eval_columns).
  std::function<absl::StatusOr<MetricRow>(int64_t step)> evaluate;
  // Optional: sample grids (and, when `last`, the final samples as .npy) for `step`.
  std::function<absl::Status(int64_t step, bool last)> write_samples;
  // Optional: copies state kept outside `state`'s objects into its tensors before a save.
  std::function<absl::Status()> before_checkpoint;
  // Optional: the inverse, after a checkpoint has been restored into `state`.
  std::function<absl::Status()> after_restore;
};

struct TrainingLoopResult {
  int64_t first_step = 1;  // the first iteration run by this call
  int64_t last_step = 0;   // the last iteration completed
  bool resumed = false;
  bool stopped_by_signal = false;
  int signal = 0;          // the signal number when stopped by one (0 if requested otherwise)
  absl::Duration elapsed;  // wall time of this call
  MetricRow last_metrics;  // train_step and evaluate values of the last iteration
  std::string Summary() const;
};

class TrainingLoop {
 public:
  // `state` lists every object a checkpoint holds; it must outlive the loop. Its `step` is
  // maintained by the loop.
  TrainingLoop(RunConfig run, ScheduleConfig schedule, TrainingLoopSpec spec, nn::TrainingState* state);

  // Runs the iterations (see above). Errors of the hooks stop the loop and are returned with
  // the iteration prefixed; files written so far stay valid.
  absl::StatusOr<TrainingLoopResult> Run(const TrainingLoopHooks& hooks, bool resume);

  std::string metrics_path() const;
  const std::string& output_dir() const { return run_.output_dir(); }

 private:
  absl::Status Checkpoint(const TrainingLoopHooks& hooks, int64_t step);
  absl::Status DrawPlots() const;

  RunConfig run_;
  ScheduleConfig schedule_;
  TrainingLoopSpec spec_;
  nn::TrainingState* state_;
};

// Redraws `plots` from the metrics CSV at `metrics_path` into `directory` (PNG and SVG).
// Columns absent from the file are an error naming them; empty cells are skipped.
absl::Status DrawCurvePlots(const std::string& metrics_path, const std::vector<CurvePlot>& plots,
                            const std::string& directory);

}  // namespace otgen::apps

#endif  // OTGEN_APPS_COMMON_TRAINING_LOOP_H_
