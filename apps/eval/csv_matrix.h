// Numeric matrices as text: one row per line, numbers separated by commas and/or whitespace.
//
// The plain-text companion of apps/eval/npy.h for point clouds and weights written by hand or
// by spreadsheets. Accepted syntax, line by line:
//   * blank lines and lines whose first non-blank character is '#' are skipped;
//   * with `has_header`, the first remaining line is skipped (column names);
//   * every other line is a row: numbers separated by one comma (with optional blanks around
//     it) or by blanks alone, e.g. "1.5, -2e-3,nan" or "1.5 -2e-3 nan"; an empty field
//     ("1,,2", ",1", "1,") is an error;
//   * numbers are decimal floating point as strtod reads them ("+1", "1e-3", "inf", "nan"),
//     parsed in double and rounded to float32; a finite value beyond the float32 range is an
//     error;
//   * every row has the column count of the first row.
// The result is n rows x d columns (row-major, `ot::RowMatrixXf`), as the ot solvers take point
// clouds. Errors are InvalidArgumentError naming "<path>:<line>" and what was expected (or the
// apps/common/file_io.h codes, e.g. NotFound, for I/O failures).
//
// Writing uses "%.9g" (float32 round-trips exactly), comma-separated, through a temporary
// file renamed over the target.
//
// Usage:
//   OTGEN_ASSIGN_OR_RETURN(otgen::ot::RowMatrixXf x, otgen::eval::ReadCsvMatrix("points.csv"));
//   OTGEN_RETURN_IF_ERROR(otgen::eval::WriteCsvMatrix("out.csv", x));
#ifndef OTGEN_APPS_EVAL_CSV_MATRIX_H_
#define OTGEN_APPS_EVAL_CSV_MATRIX_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ot/types.h"

namespace otgen::eval {

struct CsvMatrixOptions {
  // Skip the first non-blank, non-comment line (column names).
  bool has_header = false;
};

// Parses CSV text; `path` only names the source in error messages. At least one row is
// required.
absl::StatusOr<ot::RowMatrixXf> ParseCsvMatrix(absl::string_view text, absl::string_view path,
                                               const CsvMatrixOptions& options = {});

// Reads and parses the file at `path`.
absl::StatusOr<ot::RowMatrixXf> ReadCsvMatrix(const std::string& path, const CsvMatrixOptions& options = {});

// Writes `matrix` as comma-separated "%.9g" values, one row per line (atomically).
absl::Status WriteCsvMatrix(const std::string& path, const Eigen::Ref<const ot::RowMatrixXf>& matrix);

}  // namespace otgen::eval

#endif  // OTGEN_APPS_EVAL_CSV_MATRIX_H_
