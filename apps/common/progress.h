// A progress line on stderr: iteration/total, iterations per second, ETA, current losses.
//
// On a terminal the line is redrawn in place (carriage return); when stderr is piped or a
// file, plain lines are printed at most every `min_interval_seconds`, so logs stay short.
//
//   ProgressLine progress(total_steps, /*first_step=*/0);
//   for (...) progress.Update(step, {{"loss_g", g}, {"loss_d", d}});
//   progress.Finish();
#ifndef OTGEN_APPS_COMMON_PROGRESS_H_
#define OTGEN_APPS_COMMON_PROGRESS_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace otgen::apps {

class ProgressLine {
 public:
  struct Options {
    // Seconds between plain lines when not on a terminal.
    double min_interval_seconds = 10.0;
    // Seconds between redraws on a terminal.
    double terminal_interval_seconds = 0.2;
    // Where to draw; stderr by default. Whether it is a terminal is detected.
    std::FILE* stream = stderr;
  };
  ProgressLine(int64_t total_steps, int64_t first_step);
  ProgressLine(int64_t total_steps, int64_t first_step, Options options);

  // Reports that `step` iterations are done; draws when due.
  void Update(int64_t step, const std::vector<std::pair<std::string, double>>& values);
  // Draws the final state and ends the line.
  void Finish();

  // "1200/5000 (24%) 3.1 it/s ETA 20m25s loss_g=0.512 loss_d=-0.103"
  std::string Format(int64_t step, const std::vector<std::pair<std::string, double>>& values, absl::Time now) const;

 private:
  void Draw(const std::string& text);
  int64_t total_;
  int64_t first_;
  Options options_;
  bool terminal_;
  absl::Time start_;
  absl::Time last_draw_;
  int64_t last_step_ = 0;
  std::vector<std::pair<std::string, double>> last_values_;
  size_t last_width_ = 0;
};

// "1h02m03s", "4m05s", "12s"
std::string FormatElapsed(absl::Duration d);

}  // namespace otgen::apps

#endif  // OTGEN_APPS_COMMON_PROGRESS_H_
