#include "apps/eval/csv_matrix.h"

#include <cerrno>
#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "apps/common/file_io.h"
#include "nn/status_macros.h"

namespace otgen::eval {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// Parses one number token (no blanks or commas inside) with strtod semantics.
bool ParseDouble(absl::string_view token, double* value) {
  const std::string s(token);  // NUL-terminated copy for strtod
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || s.empty()) return false;
  // strtod sets ERANGE on overflow (returns +-HUGE_VAL) and on underflow (returns a tiny
  // value or 0): underflow to 0 or a subnormal is accepted, overflow is not.
  if (errno == ERANGE && std::isinf(v)) return false;
  *value = v;
  return true;
}

}  // namespace

absl::StatusOr<ot::RowMatrixXf> ParseCsvMatrix(absl::string_view text, absl::string_view path,
                                               const CsvMatrixOptions& options) {
  std::vector<float> values;
  int64_t cols = -1;
  int64_t rows = 0;
  int64_t first_row_line = 0;
  bool header_pending = options.has_header;
  int64_t line_number = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == absl::string_view::npos) end = text.size();
    const absl::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    size_t i = 0;
    while (i < line.size() && IsBlank(line[i])) ++i;
    if (i == line.size() || line[i] == '#') continue;
    if (header_pending) {
      header_pending = false;
      continue;
    }
    auto error = [&](const std::string& what) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_number, ": ", what));
    };
    int64_t count = 0;
    bool pending_comma = false;
    while (true) {
      while (i < line.size() && IsBlank(line[i])) ++i;
      if (i == line.size()) {
        if (pending_comma) return error(absl::StrCat("empty field after the comma ending the line; expected a number"));
        break;
      }
      if (line[i] == ',') {
        if (count == 0 || pending_comma) {
          return error(absl::StrCat("empty field ", count + 1, "; expected a number before the comma at character ",
                                    i + 1));
        }
        pending_comma = true;
        ++i;
        continue;
      }
      const size_t start = i;
      while (i < line.size() && !IsBlank(line[i]) && line[i] != ',') ++i;
      const absl::string_view token = line.substr(start, i - start);
      double v = 0.0;
      if (!ParseDouble(token, &v)) {
        return error(absl::StrCat("field ", count + 1, " is \"", token, "\"; expected a number"));
      }
      if (std::isfinite(v) && std::isinf(static_cast<float>(v))) {
        return error(absl::StrCat("field ", count + 1, " is ", token, ", beyond the float32 range (|v| <= 3.4028235e38)"));
      }
      values.push_back(static_cast<float>(v));
      ++count;
      pending_comma = false;
    }
    if (cols < 0) {
      cols = count;
      first_row_line = line_number;
    } else if (count != cols) {
      return error(absl::StrCat("expected ", cols, " values (as on line ", first_row_line, "), got ", count));
    }
    ++rows;
  }
  if (rows == 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no rows of numbers; expected at least one"));
  }
  ot::RowMatrixXf m(rows, cols);
  std::copy(values.begin(), values.end(), m.data());
  return m;
}

absl::StatusOr<ot::RowMatrixXf> ReadCsvMatrix(const std::string& path, const CsvMatrixOptions& options) {
  OTGEN_ASSIGN_OR_RETURN(std::string text, apps::ReadFileToString(path));
  return ParseCsvMatrix(text, path, options);
}

absl::Status WriteCsvMatrix(const std::string& path, const Eigen::Ref<const ot::RowMatrixXf>& matrix) {
  std::string out;
  out.reserve(static_cast<size_t>(matrix.size()) * 14);
  for (Eigen::Index i = 0; i < matrix.rows(); ++i) {
    for (Eigen::Index j = 0; j < matrix.cols(); ++j) {
      if (j > 0) out.push_back(',');
      absl::StrAppendFormat(&out, "%.9g", matrix(i, j));
    }
    out.push_back('\n');
  }
  return apps::WriteFileAtomically(path, out);
}

}  // namespace otgen::eval
