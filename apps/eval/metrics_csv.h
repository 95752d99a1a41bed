// Reading the metrics.csv files written by the experiment binaries (one header line of
// column names, then one row per logged step) into named columns, and plotting columns
// against each other (loss curves, evaluation metrics over training).
//
// Syntax: fields separated by commas; blanks around fields are ignored; a field may be
// double-quoted ("a,b", with "" for a quote) — used for names; values are decimal numbers as
// strtod reads them ("nan" and "inf" included), and an empty value is NaN (metrics logged
// only every k steps). Blank lines are skipped. Every row has as many fields as the header,
// except that an unterminated last line (no final newline: a writer interrupted mid-row, or a
// run still in progress) with too few fields is ignored. Errors are InvalidArgumentError
// naming "<path>:<line>" and the column.
//
// Usage:
//   OTGEN_ASSIGN_OR_RETURN(otgen::eval::MetricsTable t, otgen::eval::ReadMetricsCsv("run/metrics.csv"));
//   OTGEN_ASSIGN_OR_RETURN(absl::Span<const double> loss, t.Column("critic_loss"));
//   OTGEN_RETURN_IF_ERROR(otgen::eval::PlotMetrics("run/losses.png", t, "step",
//                                                  {"critic_loss", "generator_loss"}, {.log_y = true}));
#ifndef OTGEN_APPS_EVAL_METRICS_CSV_H_
#define OTGEN_APPS_EVAL_METRICS_CSV_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "apps/eval/plot.h"

namespace otgen::eval {

struct MetricsTable {
  std::vector<std::string> names;            // header, in file order (unique)
  std::vector<std::vector<double>> columns;  // columns[k] holds the values of names[k]
  // Rows skipped as an incomplete last line (0 or 1).
  int64_t ignored_rows = 0;

  int64_t rows() const { return columns.empty() ? 0 : static_cast<int64_t>(columns[0].size()); }
  // The column called `name`; NotFoundError listing the available names otherwise.
  absl::StatusOr<absl::Span<const double>> Column(absl::string_view name) const;
};

// Parses CSV text; `path` only names the source in error messages.
absl::StatusOr<MetricsTable> ParseMetricsCsv(absl::string_view text, absl::string_view path);
// Reads and parses the file at `path`.
absl::StatusOr<MetricsTable> ReadMetricsCsv(const std::string& path);

// Line plot of the columns `y_names` (empty: every column but x) against column `x_name`,
// one series per column named after it; x_label defaults to x_name. Writes PNG or SVG by the
// extension of `path`.
absl::Status PlotMetrics(const std::string& path, const MetricsTable& table, absl::string_view x_name,
                         const std::vector<std::string>& y_names, PlotOptions options = {});

}  // namespace otgen::eval

#endif  // OTGEN_APPS_EVAL_METRICS_CSV_H_
