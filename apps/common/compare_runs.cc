#include "apps/common/compare_runs.h"

#include <sys/stat.h>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "apps/common/metrics_log.h"
#include "apps/eval/plot.h"
#include "nn/status_macros.h"

namespace otgen::apps {
namespace {

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string BaseName(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

absl::Status CompareRuns(const CompareRunsOptions& options) {
  if (options.runs.empty()) return absl::InvalidArgumentError("runs: expected at least one run");
  if (!options.labels.empty() && options.labels.size() != options.runs.size()) {
    return absl::InvalidArgumentError(absl::StrCat("labels: expected ", options.runs.size(), " labels (one per run), got ",
                                                   options.labels.size()));
  }
  if (options.smooth < 1) return absl::InvalidArgumentError(absl::StrCat("smooth: expected >= 1, got ", options.smooth));
  if (options.output.empty()) return absl::InvalidArgumentError("output: expected a .png or .svg path");
  OTGEN_RETURN_IF_ERROR(eval::ImageFormatFromPath(options.output).status());
  eval::PlotOptions plot;
  plot.title = options.title.empty() ? options.column : options.title;
  plot.x_label = "iteration";
  plot.y_label = options.column;
  plot.log_y = options.log_y;
  eval::Figure figure(plot);
  for (size_t r = 0; r < options.runs.size(); ++r) {
    const std::string& run = options.runs[r];
    const std::string path = IsDirectory(run) ? absl::StrCat(run, "/metrics.csv") : run;
    absl::StatusOr<MetricsTable> table = ReadMetrics(path);
    if (!table.ok()) return absl::Status(table.status().code(), absl::StrCat("runs[", r, "]: ", table.status().message()));
    absl::StatusOr<std::vector<double>> steps = table->Column("step");
    absl::StatusOr<std::vector<double>> values = table->Column(options.column);
    if (!steps.ok() || !values.ok()) {
      return absl::NotFoundError(absl::StrCat("runs[", r, "]: ", path, " has no column '", options.column, "'"));
    }
    std::vector<double> x, y;
    double window = 0.0;
    std::vector<double> kept;
    for (size_t i = 0; i < values->size(); ++i) {
      const double v = (*values)[i];
      if (!std::isfinite(v)) continue;
      kept.push_back(v);
      window += v;
      if (static_cast<int>(kept.size()) > options.smooth) window -= kept[kept.size() - 1 - options.smooth];
      const int n = std::min<int>(options.smooth, static_cast<int>(kept.size()));
      x.push_back((*steps)[i]);
      y.push_back(window / n);
    }
    eval::SeriesStyle style;
    style.label = options.labels.empty() ? BaseName(run) : options.labels[r];
    OTGEN_RETURN_IF_ERROR(figure.AddLine(x, y, style));
  }
  return figure.Write(options.output);
}

}  // namespace otgen::apps
