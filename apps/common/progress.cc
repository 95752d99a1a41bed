#include "apps/common/progress.h"

#include <unistd.h>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace otgen::apps {

std::string FormatElapsed(absl::Duration d) {
  int64_t s = absl::ToInt64Seconds(d);
  if (s < 0) s = 0;
  const int64_t h = s / 3600, m = (s / 60) % 60, sec = s % 60;
  if (h > 0) return absl::StrFormat("%dh%02dm%02ds", h, m, sec);
  if (m > 0) return absl::StrFormat("%dm%02ds", m, sec);
  return absl::StrFormat("%ds", sec);
}

ProgressLine::ProgressLine(int64_t total_steps, int64_t first_step)
    : ProgressLine(total_steps, first_step, Options()) {}

ProgressLine::ProgressLine(int64_t total_steps, int64_t first_step, Options options)
    : total_(total_steps),
      first_(first_step),
      options_(options),
      terminal_(isatty(fileno(options.stream)) == 1),
      start_(absl::Now()),
      last_draw_(absl::InfinitePast()),
      last_step_(first_step) {}

std::string ProgressLine::Format(int64_t step, const std::vector<std::pair<std::string, double>>& values,
                                 absl::Time now) const {
  const double elapsed = absl::ToDoubleSeconds(now - start_);
  const int64_t done = step - first_;
  const double rate = elapsed > 0 ? done / elapsed : 0.0;
  std::string s = absl::StrFormat("%d/%d", step, total_);
  if (total_ > 0) absl::StrAppendFormat(&s, " (%d%%)", static_cast<int>(100.0 * step / total_));
  if (rate >= 1.0 || rate == 0.0) {
    absl::StrAppendFormat(&s, " %.1f it/s", rate);
  } else {
    absl::StrAppendFormat(&s, " %.2f s/it", 1.0 / rate);
  }
  if (rate > 0 && step < total_) {
    absl::StrAppend(&s, " ETA ", FormatElapsed(absl::Seconds((total_ - step) / rate)));
  } else {
    absl::StrAppend(&s, " elapsed ", FormatElapsed(now - start_));
  }
  for (const auto& [name, v] : values) absl::StrAppendFormat(&s, " %s=%.4g", name, v);
  return s;
}

void ProgressLine::Draw(const std::string& text) {
  if (terminal_) {
    std::string line = "\r" + text;
    if (text.size() < last_width_) line.append(last_width_ - text.size(), ' ');
    last_width_ = text.size();
    std::fputs(line.c_str(), options_.stream);
  } else {
    std::fprintf(options_.stream, "%s\n", text.c_str());
  }
  std::fflush(options_.stream);
}

void ProgressLine::Update(int64_t step, const std::vector<std::pair<std::string, double>>& values) {
  last_step_ = step;
  last_values_ = values;
  const absl::Time now = absl::Now();
  const double interval = terminal_ ? options_.terminal_interval_seconds : options_.min_interval_seconds;
  if (now - last_draw_ < absl::Seconds(interval)) return;
  last_draw_ = now;
  Draw(Format(step, values, now));
}

void ProgressLine::Finish() {
  Draw(Format(last_step_, last_values_, absl::Now()));
  if (terminal_) std::fputs("\n", options_.stream);
  std::fflush(options_.stream);
}

}  // namespace otgen::apps
