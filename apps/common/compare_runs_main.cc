// bazel run //apps/common:compare_runs -- --runs=DIR1,DIR2 [--labels=A,B] --column=h --output=F.png
// Overlays a metrics.csv column of several runs (see compare_runs.h).
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_split.h"
#include "apps/common/app_config.h"
#include "apps/common/compare_runs.h"
#include "apps/eval/plot.h"

ABSL_FLAG(std::vector<std::string>, runs, {}, "Comma-separated run folders (or metrics CSV files).");
ABSL_FLAG(std::vector<std::string>, labels, {}, "Comma-separated legend entries, one per run.");
ABSL_FLAG(std::string, column, "h", "The metrics.csv column to plot.");
ABSL_FLAG(std::string, output, "", "Output image (.png or .svg).");
ABSL_FLAG(std::string, title, "", "Figure title (default: the column).");
ABSL_FLAG(bool, log_y, false, "Logarithmic y axis.");
ABSL_FLAG(int, smooth, 1, "Moving average over this many rows.");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  otgen::apps::CompareRunsOptions options;
  for (const std::string& r : absl::GetFlag(FLAGS_runs)) options.runs.push_back(otgen::apps::ResolveInputPath(r));
  options.labels = absl::GetFlag(FLAGS_labels);
  options.column = absl::GetFlag(FLAGS_column);
  options.output = otgen::apps::ResolveOutputPath(absl::GetFlag(FLAGS_output));
  options.title = absl::GetFlag(FLAGS_title);
  options.log_y = absl::GetFlag(FLAGS_log_y);
  options.smooth = absl::GetFlag(FLAGS_smooth);
  const absl::Status s = otgen::apps::CompareRuns(options);
  otgen::eval::ReleasePlotFontCaches();
  if (!s.ok()) {
    std::fprintf(stderr, "compare_runs: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("compare_runs: wrote %s\n", options.output.c_str());
  return 0;
}
