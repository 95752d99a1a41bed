// Overlays one metrics.csv column of several runs in one figure (PNG or SVG by extension):
// the comparisons of seed 000's Figures 2 and 3 (H per iteration, SDOT vs SDOTNN, several
// lambda), or any apps' loss curves side by side.
//
//   bazel run //apps/common:compare_runs -- --column=h --output=figure2_lambda0.png
//       --runs=otgen_runs/sdot/figure2_dcgan_sdot_lambda0,otgen_runs/sdot/figure2_dcgan_sdotnn_lambda0
//       --labels=SDOT,SDOTNN
#ifndef OTGEN_APPS_COMMON_COMPARE_RUNS_H_
#define OTGEN_APPS_COMMON_COMPARE_RUNS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace otgen::apps {

struct CompareRunsOptions {
  // Run folders (holding metrics.csv) or metrics CSV files.
  std::vector<std::string> runs;
  // Legend entries, one per run (empty: the folder names).
  std::vector<std::string> labels;
  std::string column = "h";
  // Output image, .png or .svg.
  std::string output;
  std::string title;
  bool log_y = false;
  // Moving average over this many rows (1 = raw values).
  int smooth = 1;
};

// Errors name the run whose file is missing or lacks the column, or the bad option.
absl::Status CompareRuns(const CompareRunsOptions& options);

}  // namespace otgen::apps

#endif  // OTGEN_APPS_COMMON_COMPARE_RUNS_H_
