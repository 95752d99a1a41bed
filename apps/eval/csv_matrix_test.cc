#include "apps/eval/csv_matrix.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "apps/eval/test_util.h"
#include "gtest/gtest.h"

namespace otgen::eval {
namespace {

using testutil::StatusIs;
using testutil::TempPath;
using testutil::WriteBytes;

TEST(CsvMatrixTest, ParsesCommasBlanksCommentsAndBlankLines) {
  const std::string text =
      "# points\n"
      "1, 2.5 ,-3e-2\n"
      "\n"
      "  4\t5    6  \r\n"
      "7,8 9\n"
      "   # trailing comment\n"
      "+1e1,inf,nan";  // no final newline
  absl::StatusOr<ot::RowMatrixXf> m = ParseCsvMatrix(text, "t.csv");
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->rows(), 4);
  ASSERT_EQ(m->cols(), 3);
  EXPECT_EQ((*m)(0, 1), 2.5f);
  EXPECT_EQ((*m)(0, 2), -0.03f);
  EXPECT_EQ((*m)(1, 0), 4.0f);
  EXPECT_EQ((*m)(1, 2), 6.0f);
  EXPECT_EQ((*m)(2, 1), 8.0f);
  EXPECT_EQ((*m)(3, 0), 10.0f);
  EXPECT_TRUE(std::isinf((*m)(3, 1)));
  EXPECT_TRUE(std::isnan((*m)(3, 2)));
}

TEST(CsvMatrixTest, SkipsHeaderWhenAsked) {
  absl::StatusOr<ot::RowMatrixXf> m = ParseCsvMatrix("x,y\n1,2\n", "h.csv", {.has_header = true});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->rows(), 1);
  EXPECT_EQ((*m)(0, 1), 2.0f);
  // Without the option the header is an error on line 1.
  EXPECT_TRUE(StatusIs(ParseCsvMatrix("x,y\n1,2\n", "h.csv").status(), absl::StatusCode::kInvalidArgument,
                       {"h.csv:1:", "field 1 is \"x\"", "expected a number"}));
}

TEST(CsvMatrixTest, InconsistentColumnCountNamesLine) {
  EXPECT_TRUE(StatusIs(ParseCsvMatrix("# c\n1,2,3\n4,5\n", "p.csv").status(), absl::StatusCode::kInvalidArgument,
                       {"p.csv:3:", "expected 3 values (as on line 2), got 2"}));
}

TEST(CsvMatrixTest, EmptyFieldsAreErrors) {
  EXPECT_TRUE(StatusIs(ParseCsvMatrix("1,,2\n", "e.csv").status(), absl::StatusCode::kInvalidArgument,
                       {"e.csv:1:", "empty field 2"}));
  EXPECT_TRUE(StatusIs(ParseCsvMatrix(",1\n", "e.csv").status(), absl::StatusCode::kInvalidArgument,
                       {"e.csv:1:", "empty field 1"}));
  EXPECT_TRUE(StatusIs(ParseCsvMatrix("1,2\n3,4,\n", "e.csv").status(), absl::StatusCode::kInvalidArgument,
                       {"e.csv:2:", "comma ending the line"}));
}

TEST(CsvMatrixTest, BadNumbers) {
  EXPECT_TRUE(StatusIs(ParseCsvMatrix("1 2\n3 4x\n", "b.csv").status(), absl::StatusCode::kInvalidArgument,
                       {"b.csv:2:", "field 2 is \"4x\""}));
  EXPECT_TRUE(StatusIs(ParseCsvMatrix("1e39\n", "b.csv").status(), absl::StatusCode::kInvalidArgument,
                       {"b.csv:1:", "float32 range"}));
  EXPECT_TRUE(StatusIs(ParseCsvMatrix("1e999\n", "b.csv").status(), absl::StatusCode::kInvalidArgument,
                       {"b.csv:1:", "expected a number"}));
}

TEST(CsvMatrixTest, EmptyInputIsAnError) {
  EXPECT_TRUE(StatusIs(ParseCsvMatrix("# nothing\n\n", "n.csv").status(), absl::StatusCode::kInvalidArgument,
                       {"n.csv", "no rows"}));
}

TEST(CsvMatrixTest, FileRoundTripIsExact) {
  ot::RowMatrixXf m(3, 2);
  m << 0.1f, -1e-30f, 3.14159274f, 1e30f, std::numeric_limits<float>::denorm_min(), -0.0f;
  const std::string path = TempPath("round.csv");
  ASSERT_TRUE(WriteCsvMatrix(path, m).ok());
  absl::StatusOr<ot::RowMatrixXf> back = ReadCsvMatrix(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->rows(), 3);
  ASSERT_EQ(back->cols(), 2);
  EXPECT_EQ(std::memcmp(back->data(), m.data(), sizeof(float) * 6), 0);
}

TEST(CsvMatrixTest, ReadErrorsNameTheFile) {
  const std::string missing = TempPath("missing.csv");
  EXPECT_TRUE(StatusIs(ReadCsvMatrix(missing).status(), absl::StatusCode::kNotFound, {missing}));
  const std::string bad = TempPath("bad.csv");
  WriteBytes(bad, "1,2\n3\n");
  EXPECT_TRUE(StatusIs(ReadCsvMatrix(bad).status(), absl::StatusCode::kInvalidArgument,
                       {bad + ":2:", "expected 2 values"}));
}

}  // namespace
}  // namespace otgen::eval
