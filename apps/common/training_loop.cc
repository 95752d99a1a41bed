#include "apps/common/training_loop.h"

#include <cmath>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "apps/common/checkpoint_manager.h"
#include "apps/common/config.h"
#include "apps/common/metrics_log.h"
#include "apps/common/progress.h"
#include "apps/common/stop_signal.h"
#include "apps/eval/plot.h"
#include "nn/precision.h"
#include "nn/status_macros.h"

namespace otgen::apps {
namespace {

absl::Status AtStep(const absl::Status& status, int64_t step, const char* what) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat("iteration ", step, ", ", what, ": ", status.message()));
}

bool Due(int64_t step, int64_t every) { return every > 0 && step % every == 0; }

std::string FormatValue(double v) { return absl::StrFormat("%.6g", v); }

}  // namespace

std::string TrainingLoopResult::Summary() const {
  std::string s = absl::StrCat(stopped_by_signal ? "stopped after iteration " : "finished at iteration ", last_step,
                               " (", last_step - first_step + 1, " iterations in ", FormatElapsed(elapsed), ")");
  std::vector<std::string> parts;
  for (const auto& [name, value] : last_metrics) parts.push_back(absl::StrCat(name, "=", FormatValue(value)));
  if (!parts.empty()) absl::StrAppend(&s, ": ", absl::StrJoin(parts, " "));
  return s;
}

TrainingLoop::TrainingLoop(RunConfig run, ScheduleConfig schedule, TrainingLoopSpec spec, nn::TrainingState* state)
    : run_(std::move(run)), schedule_(std::move(schedule)), spec_(std::move(spec)), state_(state) {}

std::string TrainingLoop::metrics_path() const { return absl::StrCat(run_.output_dir(), "/metrics.csv"); }

absl::Status TrainingLoop::Checkpoint(const TrainingLoopHooks& hooks, int64_t step) {
  if (hooks.before_checkpoint) OTGEN_RETURN_IF_ERROR(AtStep(hooks.before_checkpoint(), step, "checkpoint"));
  state_->step = step;
  CheckpointManager manager(run_.output_dir(), schedule_.keep_checkpoints());
  OTGEN_RETURN_IF_ERROR(manager.Save(*state_));
  return DrawPlots();
}

absl::Status TrainingLoop::DrawPlots() const {
  return DrawCurvePlots(metrics_path(), spec_.plots, run_.output_dir());
}

absl::StatusOr<TrainingLoopResult> TrainingLoop::Run(const TrainingLoopHooks& hooks, bool resume) {
  if (!hooks.train_step) return absl::InvalidArgumentError("TrainingLoop: hooks.train_step is required");
  // run.precision holds for every iteration, also when the loop runs outside an app's main.
  const nn::ComputePrecisionGuard precision(ComputePrecisionOf(run_));
  const absl::Time start = absl::Now();
  TrainingLoopResult result;
  CheckpointManager manager(run_.output_dir(), schedule_.keep_checkpoints());
  OTGEN_RETURN_IF_ERROR(MakeDirectories(run_.output_dir()));

  int64_t restored = 0;
  if (resume) {
    OTGEN_ASSIGN_OR_RETURN(bool found, manager.RestoreNewest(*state_));
    if (found) {
      restored = state_->step;
      result.resumed = true;
      if (hooks.after_restore) OTGEN_RETURN_IF_ERROR(AtStep(hooks.after_restore(), restored, "restoring"));
      std::fprintf(stderr, "%s: resumed from %s\n", spec_.name.c_str(), manager.PathFor(restored).c_str());
    } else {
      std::fprintf(stderr, "%s: --resume: no checkpoint in %s, starting from iteration 1\n", spec_.name.c_str(),
                   run_.output_dir().c_str());
    }
  } else {
    OTGEN_ASSIGN_OR_RETURN(std::vector<int64_t> old, manager.ListSteps());
    for (int64_t s : old) std::remove(manager.PathFor(s).c_str());
    if (!old.empty()) {
      std::fprintf(stderr, "%s: fresh run: removed %zu checkpoint(s) of an earlier run from %s (use --resume to continue one)\n",
                   spec_.name.c_str(), old.size(), run_.output_dir().c_str());
    }
  }
  state_->step = restored;

  std::vector<std::string> columns = spec_.step_columns;
  columns.insert(columns.end(), spec_.eval_columns.begin(), spec_.eval_columns.end());
  OTGEN_ASSIGN_OR_RETURN(MetricsLog log, MetricsLog::Open(metrics_path(), columns,
                                                          result.resumed ? std::optional<int64_t>(restored) : std::nullopt));

  InstallStopSignalHandlers();
  const int64_t total = schedule_.steps();
  result.first_step = restored + 1;
  result.last_step = restored;
  ProgressLine progress(total, restored);
  for (int64_t step = restored + 1; step <= total; ++step) {
    const bool last = step == total;
    OTGEN_ASSIGN_OR_RETURN(MetricRow row, [&]() -> absl::StatusOr<MetricRow> {
      absl::StatusOr<MetricRow> r = hooks.train_step(step);
      if (!r.ok()) return AtStep(r.status(), step, "training");
      return r;
    }());
    std::vector<std::pair<std::string, double>> shown;
    for (const std::string& name : spec_.progress_columns) {
      auto it = row.find(name);
      if (it != row.end()) shown.emplace_back(name, it->second);
    }
    const bool evaluate = hooks.evaluate && (last || Due(step, schedule_.eval_every()));
    if (evaluate) {
      absl::StatusOr<MetricRow> eval = hooks.evaluate(step);
      if (!eval.ok()) return AtStep(eval.status(), step, "evaluation");
      for (const auto& [name, value] : *eval) row[name] = value;
    }
    if (last || evaluate || Due(step, schedule_.log_every())) {
      OTGEN_RETURN_IF_ERROR(AtStep(log.Append(step, row), step, "metrics"));
    }
    progress.Update(step, shown);
    result.last_step = step;
    result.last_metrics = std::move(row);
    if (hooks.write_samples && (last || Due(step, schedule_.sample_every()))) {
      OTGEN_RETURN_IF_ERROR(AtStep(hooks.write_samples(step, last), step, "samples"));
    }
    const bool stop = StopRequested();
    if (last || stop || Due(step, schedule_.checkpoint_every())) OTGEN_RETURN_IF_ERROR(Checkpoint(hooks, step));
    if (stop && !last) {
      result.stopped_by_signal = true;
      result.signal = StopSignal();
      break;
    }
  }
  if (total <= restored) {
    std::fprintf(stderr, "%s: nothing to do: the checkpoint is at iteration %lld of %lld\n", spec_.name.c_str(),
                 static_cast<long long>(restored), static_cast<long long>(total));
  }
  progress.Finish();
  result.elapsed = absl::Now() - start;
  std::fprintf(stderr, "%s: %s\n", spec_.name.c_str(), result.Summary().c_str());
  if (result.stopped_by_signal) {
    std::fprintf(stderr, "%s: checkpoint written to %s; continue with --resume\n", spec_.name.c_str(),
                 manager.PathFor(result.last_step).c_str());
  }
  return result;
}

absl::Status DrawCurvePlots(const std::string& metrics_path, const std::vector<CurvePlot>& plots,
                            const std::string& directory) {
  if (plots.empty()) return absl::OkStatus();
  OTGEN_ASSIGN_OR_RETURN(MetricsTable table, ReadMetrics(metrics_path));
  OTGEN_ASSIGN_OR_RETURN(std::vector<double> steps, table.Column("step"));
  for (const CurvePlot& plot : plots) {
    eval::PlotOptions options;
    options.title = plot.title;
    options.x_label = "iteration";
    options.y_label = plot.y_label;
    options.log_y = plot.log_y;
    eval::Figure figure(options);
    for (const std::string& column : plot.columns) {
      absl::StatusOr<std::vector<double>> values = table.Column(column);
      if (!values.ok()) {
        return absl::NotFoundError(absl::StrCat(metrics_path, ": plot '", plot.name, "' needs column '", column, "'"));
      }
      std::vector<double> x, y;
      for (size_t i = 0; i < values->size(); ++i) {
        if (std::isfinite((*values)[i])) {
          x.push_back(steps[i]);
          y.push_back((*values)[i]);
        }
      }
      eval::SeriesStyle style;
      style.label = column;
      OTGEN_RETURN_IF_ERROR(figure.AddLine(x, y, style));
    }
    OTGEN_RETURN_IF_ERROR(figure.WritePng(absl::StrCat(directory, "/", plot.name, ".png")));
    OTGEN_RETURN_IF_ERROR(figure.WriteSvg(absl::StrCat(directory, "/", plot.name, ".svg")));
  }
  return absl::OkStatus();
}

}  // namespace otgen::apps
