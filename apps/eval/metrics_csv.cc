#include "apps/eval/metrics_csv.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "apps/common/file_io.h"
#include "nn/status_macros.h"

namespace otgen::eval {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

absl::string_view Trim(absl::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

struct Field {
  std::string text;
  bool quoted = false;
};

// Splits one line into fields; a quoted field may contain commas and "" for a quote.
absl::StatusOr<std::vector<Field>> SplitLine(absl::string_view line, absl::string_view where) {
  std::vector<Field> fields;
  size_t i = 0;
  while (true) {
    while (i < line.size() && IsBlank(line[i])) ++i;
    Field f;
    if (i < line.size() && line[i] == '"') {
      f.quoted = true;
      ++i;
      while (true) {
        if (i >= line.size()) return absl::InvalidArgumentError(absl::StrCat(where, ": unterminated quoted field"));
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            f.text.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        f.text.push_back(line[i++]);
      }
      while (i < line.size() && IsBlank(line[i])) ++i;
      if (i < line.size() && line[i] != ',') {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": expected ',' after the quoted field \"", f.text, "\""));
      }
    } else {
      const size_t start = i;
      while (i < line.size() && line[i] != ',') ++i;
      f.text = std::string(Trim(line.substr(start, i - start)));
    }
    fields.push_back(std::move(f));
    if (i >= line.size()) break;
    ++i;  // the comma
  }
  return fields;
}

bool ParseValue(const std::string& s, double* v) {
  if (s.empty()) {
    *v = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  char* end = nullptr;
  errno = 0;
  const double x = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return false;
  if (errno == ERANGE && std::isinf(x)) return false;
  *v = x;
  return true;
}

}  // namespace

absl::StatusOr<absl::Span<const double>> MetricsTable::Column(absl::string_view name) const {
  for (size_t k = 0; k < names.size(); ++k) {
    if (names[k] == name) return absl::MakeConstSpan(columns[k]);
  }
  return absl::NotFoundError(absl::StrCat("metrics column \"", name, "\" not found; the columns are ",
                                          absl::StrJoin(names, ", ")));
}

absl::StatusOr<MetricsTable> ParseMetricsCsv(absl::string_view text, absl::string_view path) {
  MetricsTable t;
  bool have_header = false;
  int64_t line_number = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    const bool terminated = end != absl::string_view::npos;
    if (!terminated) end = text.size();
    const absl::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    if (Trim(line).empty()) continue;
    const std::string where = absl::StrCat(path, ":", line_number);
    OTGEN_ASSIGN_OR_RETURN(std::vector<Field> fields, SplitLine(line, where));
    if (!have_header) {
      absl::flat_hash_set<std::string> seen;
      for (size_t k = 0; k < fields.size(); ++k) {
        if (fields[k].text.empty()) {
          return absl::InvalidArgumentError(absl::StrCat(where, ": header column ", k + 1, " has an empty name"));
        }
        if (!seen.insert(fields[k].text).second) {
          return absl::InvalidArgumentError(
              absl::StrCat(where, ": header names column \"", fields[k].text, "\" twice; expected unique names"));
        }
        t.names.push_back(fields[k].text);
      }
      t.columns.resize(t.names.size());
      have_header = true;
      continue;
    }
    if (fields.size() != t.names.size()) {
      if (!terminated && fields.size() < t.names.size()) {
        t.ignored_rows = 1;  // an interrupted last row
        break;
      }
      return absl::InvalidArgumentError(absl::StrCat(where, ": expected ", t.names.size(),
                                                     " fields (as in the header), got ", fields.size()));
    }
    for (size_t k = 0; k < fields.size(); ++k) {
      double v = 0.0;
      if (fields[k].quoted || !ParseValue(fields[k].text, &v)) {
        if (!terminated) {
          t.ignored_rows = 1;
          break;
        }
        return absl::InvalidArgumentError(absl::StrCat(where, ": column \"", t.names[k], "\" is \"", fields[k].text,
                                                       "\"; expected a number (or an empty field)"));
      }
    }
    if (t.ignored_rows > 0) break;
    for (size_t k = 0; k < fields.size(); ++k) {
      double v = 0.0;
      ParseValue(fields[k].text, &v);
      t.columns[k].push_back(v);
    }
  }
  if (!have_header) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": empty metrics file; expected a header line of column names"));
  }
  return t;
}

absl::StatusOr<MetricsTable> ReadMetricsCsv(const std::string& path) {
  OTGEN_ASSIGN_OR_RETURN(std::string text, apps::ReadFileToString(path));
  return ParseMetricsCsv(text, path);
}

absl::Status PlotMetrics(const std::string& path, const MetricsTable& table, absl::string_view x_name,
                         const std::vector<std::string>& y_names, PlotOptions options) {
  absl::StatusOr<absl::Span<const double>> x = table.Column(x_name);
  if (!x.ok()) return absl::Status(x.status().code(), absl::StrCat(path, ": ", x.status().message()));
  std::vector<std::string> names = y_names;
  if (names.empty()) {
    for (const std::string& n : table.names) {
      if (n != x_name) names.push_back(n);
    }
  }
  if (options.x_label.empty()) options.x_label = std::string(x_name);
  Figure fig(std::move(options));
  for (const std::string& n : names) {
    absl::StatusOr<absl::Span<const double>> y = table.Column(n);
    if (!y.ok()) return absl::Status(y.status().code(), absl::StrCat(path, ": ", y.status().message()));
    OTGEN_RETURN_IF_ERROR(fig.AddLine(*x, *y, {.label = n}));
  }
  return fig.Write(path);
}

}  // namespace otgen::eval
