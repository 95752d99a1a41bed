// metrics.csv: one row per logged iteration, with a fixed header.
//
// The columns are fixed when the log is opened ("step" first). Values are written with
// enough digits to round-trip floats; missing values (a metric computed only every N
// steps) are left empty. With `resume_step`, an existing file is kept up to and including
// that step (rows written after the checkpoint the run resumes from are dropped), so a
// resumed run's log reads like an uninterrupted one. Each row is flushed.
//
//   OTGEN_ASSIGN_OR_RETURN(auto log, MetricsLog::Open(dir + "/metrics.csv", {"loss_g", "loss_d"}));
//   OTGEN_RETURN_IF_ERROR(log.Append(step, {{"loss_g", 0.5}, {"loss_d", -0.1}}));
#ifndef OTGEN_APPS_COMMON_METRICS_LOG_H_
#define OTGEN_APPS_COMMON_METRICS_LOG_H_

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace otgen::apps {

class MetricsLog {
 public:
  // Creates (or, with resume_step, continues) the CSV at `path` with columns
  // "step", then `columns`. A continued file must have the same header.
  static absl::StatusOr<MetricsLog> Open(const std::string& path, const std::vector<std::string>& columns,
                                         std::optional<int64_t> resume_step = std::nullopt);

  MetricsLog(MetricsLog&&) = default;
  MetricsLog& operator=(MetricsLog&&) = default;

  // Appends a row; `values` keys must be columns of the log (InvalidArgumentError
  // naming an unknown one). NaN and infinities are written as "nan", "inf", "-inf".
  absl::Status Append(int64_t step, const std::map<std::string, double>& values);

  const std::vector<std::string>& columns() const { return columns_; }
  const std::string& path() const { return path_; }

 private:
  MetricsLog() = default;
  std::string path_;
  std::vector<std::string> columns_;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_{nullptr, &std::fclose};
};

// Reads a metrics CSV back: header and rows (empty cells as NaN).
struct MetricsTable {
  std::vector<std::string> columns;
  std::vector<std::vector<double>> rows;
  // Values of one column (NotFound when absent).
  absl::StatusOr<std::vector<double>> Column(const std::string& name) const;
};
absl::StatusOr<MetricsTable> ReadMetrics(const std::string& path);

}  // namespace otgen::apps

#endif  // OTGEN_APPS_COMMON_METRICS_LOG_H_
