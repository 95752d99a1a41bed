#include "apps/common/metrics_log.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "apps/common/config.h"
#include "apps/common/file_io.h"

namespace otgen::apps {
namespace {

std::string FormatValue(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.9g", v);
  return buffer;
}

absl::StatusOr<std::vector<std::string>> ReadLines(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("metrics file ", path, ": ", std::strerror(errno)));
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

}  // namespace

absl::StatusOr<MetricsLog> MetricsLog::Open(const std::string& path, const std::vector<std::string>& columns,
                                            std::optional<int64_t> resume_step) {
  for (const std::string& c : columns) {
    if (c.empty() || c.find_first_of(",\n\"") != std::string::npos || c == "step") {
      return absl::InvalidArgumentError(absl::StrCat("metrics column name '", c, "' is empty, reserved or has a comma"));
    }
  }
  MetricsLog log;
  log.path_ = path;
  log.columns_ = columns;
  const std::string header = absl::StrCat("step", columns.empty() ? "" : ",", absl::StrJoin(columns, ","));
  std::string kept = header + "\n";
  if (resume_step.has_value()) {
    absl::StatusOr<std::vector<std::string>> lines = ReadLines(path);
    if (lines.ok() && !lines->empty()) {
      if ((*lines)[0] != header) {
        return absl::FailedPreconditionError(absl::StrCat("metrics file ", path, " has header '", (*lines)[0],
                                                          "', expected '", header, "'"));
      }
      for (size_t i = 1; i < lines->size(); ++i) {
        int64_t step = 0;
        const std::string first = (*lines)[i].substr(0, (*lines)[i].find(','));
        if (!absl::SimpleAtoi(first, &step)) {
          return absl::DataLossError(absl::StrCat("metrics file ", path, " line ", i + 1, ": bad step '", first, "'"));
        }
        if (step <= *resume_step) absl::StrAppend(&kept, (*lines)[i], "\n");
      }
    }
  }
  absl::Status written = WriteFileAtomically(path, kept);
  if (!written.ok()) return written;
  log.file_.reset(std::fopen(path.c_str(), "a"));
  if (log.file_ == nullptr) {
    return absl::PermissionDeniedError(absl::StrCat("cannot open ", path, " for appending: ", std::strerror(errno)));
  }
  return log;
}

absl::Status MetricsLog::Append(int64_t step, const std::map<std::string, double>& values) {
  std::vector<std::string> cells(columns_.size());
  size_t used = 0;
  for (size_t i = 0; i < columns_.size(); ++i) {
    auto it = values.find(columns_[i]);
    if (it != values.end()) {
      cells[i] = FormatValue(it->second);
      ++used;
    }
  }
  if (used != values.size()) {
    for (const auto& [name, v] : values) {
      if (std::find(columns_.begin(), columns_.end(), name) == columns_.end()) {
        return absl::InvalidArgumentError(absl::StrCat("metric '", name, "' is not a column of ", path_, " (columns: ",
                                                       absl::StrJoin(columns_, ", "), ")"));
      }
    }
  }
  const std::string row = absl::StrCat(step, columns_.empty() ? "" : ",", absl::StrJoin(cells, ","), "\n");
  if (std::fputs(row.c_str(), file_.get()) < 0 || std::fflush(file_.get()) != 0) {
    return absl::DataLossError(absl::StrCat("cannot append to ", path_, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<double>> MetricsTable::Column(const std::string& name) const {
  for (size_t c = 0; c < columns.size(); ++c) {
    if (columns[c] != name) continue;
    std::vector<double> v;
    for (const auto& row : rows) v.push_back(row[c]);
    return v;
  }
  return absl::NotFoundError(absl::StrCat("no column '", name, "'"));
}

absl::StatusOr<MetricsTable> ReadMetrics(const std::string& path) {
  absl::StatusOr<std::vector<std::string>> lines = ReadLines(path);
  if (!lines.ok()) return lines.status();
  if (lines->empty()) return absl::DataLossError(absl::StrCat("metrics file ", path, " is empty"));
  MetricsTable table;
  table.columns = absl::StrSplit((*lines)[0], ',');
  for (size_t i = 1; i < lines->size(); ++i) {
    std::vector<std::string> cells = absl::StrSplit((*lines)[i], ',');
    if (cells.size() != table.columns.size()) {
      return absl::DataLossError(absl::StrCat("metrics file ", path, " line ", i + 1, ": ", cells.size(),
                                              " cells, expected ", table.columns.size()));
    }
    std::vector<double> row;
    for (const std::string& cell : cells) {
      double v = std::numeric_limits<double>::quiet_NaN();
      if (!cell.empty() && !absl::SimpleAtod(cell, &v)) {
        return absl::DataLossError(absl::StrCat("metrics file ", path, " line ", i + 1, ": bad number '", cell, "'"));
      }
      row.push_back(v);
    }
    table.rows.push_back(std::move(row));
  }
  return table;
}

}  // namespace otgen::apps
