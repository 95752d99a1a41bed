#include "apps/eval/metrics_csv.h"

#include <cmath>
#include <string>
#include <vector>

#include "apps/eval/test_util.h"
#include "gtest/gtest.h"

namespace otgen::eval {
namespace {

using testutil::ReadBytes;
using testutil::StatusIs;
using testutil::TempPath;
using testutil::WriteBytes;

TEST(MetricsCsvTest, ParsesColumnsWithEmptyValuesAndQuotedNames) {
  const std::string text =
      "step, critic_loss,\"w2, estimate\"\n"
      "0, 1.5, \n"
      "\n"
      "10, -2e-1, 0.25\r\n"
      "20,nan,inf\n";
  absl::StatusOr<MetricsTable> t = ParseMetricsCsv(text, "m.csv");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->names, (std::vector<std::string>{"step", "critic_loss", "w2, estimate"}));
  EXPECT_EQ(t->rows(), 3);
  EXPECT_EQ(t->ignored_rows, 0);
  absl::StatusOr<absl::Span<const double>> step = t->Column("step");
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(std::vector<double>(step->begin(), step->end()), (std::vector<double>{0, 10, 20}));
  absl::StatusOr<absl::Span<const double>> w2 = t->Column("w2, estimate");
  ASSERT_TRUE(w2.ok());
  EXPECT_TRUE(std::isnan((*w2)[0]));
  EXPECT_EQ((*w2)[1], 0.25);
  EXPECT_TRUE(std::isinf((*w2)[2]));
  EXPECT_EQ((*t->Column("critic_loss"))[1], -0.2);
  EXPECT_TRUE(StatusIs(t->Column("loss").status(), absl::StatusCode::kNotFound,
                       {"\"loss\" not found", "step, critic_loss, w2, estimate"}));
}

TEST(MetricsCsvTest, IncompleteLastLineIsIgnoredOnlyWhenUnterminated) {
  absl::StatusOr<MetricsTable> t = ParseMetricsCsv("a,b,c\n1,2,3\n4,5", "run.csv");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->rows(), 1);
  EXPECT_EQ(t->ignored_rows, 1);
  // A number cut in the middle ("4.5e" of "4.5e-3") also counts as incomplete.
  absl::StatusOr<MetricsTable> cut = ParseMetricsCsv("a,b\n1,2\n3,4.5e", "run.csv");
  ASSERT_TRUE(cut.ok()) << cut.status();
  EXPECT_EQ(cut->rows(), 1);
  EXPECT_TRUE(StatusIs(ParseMetricsCsv("a,b,c\n1,2,3\n4,5\n", "run.csv").status(), absl::StatusCode::kInvalidArgument,
                       {"run.csv:3:", "expected 3 fields", "got 2"}));
}

TEST(MetricsCsvTest, Errors) {
  EXPECT_TRUE(StatusIs(ParseMetricsCsv("a,b\n1,x\n", "e.csv").status(), absl::StatusCode::kInvalidArgument,
                       {"e.csv:2:", "column \"b\" is \"x\""}));
  EXPECT_TRUE(StatusIs(ParseMetricsCsv("a,a\n", "e.csv").status(), absl::StatusCode::kInvalidArgument,
                       {"e.csv:1:", "\"a\" twice"}));
  EXPECT_TRUE(StatusIs(ParseMetricsCsv("a,,b\n", "e.csv").status(), absl::StatusCode::kInvalidArgument,
                       {"e.csv:1:", "column 2 has an empty name"}));
  EXPECT_TRUE(StatusIs(ParseMetricsCsv("\"a,b\n", "e.csv").status(), absl::StatusCode::kInvalidArgument,
                       {"e.csv:1:", "unterminated"}));
  EXPECT_TRUE(StatusIs(ParseMetricsCsv("a,b\n1,2,3\n", "e.csv").status(), absl::StatusCode::kInvalidArgument,
                       {"e.csv:2:", "expected 2 fields", "got 3"}));
  EXPECT_TRUE(StatusIs(ParseMetricsCsv("\n\n", "e.csv").status(), absl::StatusCode::kInvalidArgument,
                       {"e.csv", "empty metrics file"}));
  const std::string missing = TempPath("missing_metrics.csv");
  EXPECT_TRUE(StatusIs(ReadMetricsCsv(missing).status(), absl::StatusCode::kNotFound, {missing}));
}

TEST(MetricsCsvTest, ReadAndPlotFile) {
  const std::string csv = TempPath("metrics.csv");
  WriteBytes(csv, "step,critic_loss,generator_loss\n0,3,1\n100,1,0.5\n200,0.3,0.2\n300,0.1,\n");
  absl::StatusOr<MetricsTable> t = ReadMetricsCsv(csv);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->rows(), 4);
  const std::string png = TempPath("losses.png");
  PlotOptions options;
  options.log_y = true;
  ASSERT_TRUE(PlotMetrics(png, *t, "step", {}, options).ok());
  const std::string bytes = ReadBytes(png);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  const std::string svg = TempPath("losses.svg");
  ASSERT_TRUE(PlotMetrics(svg, *t, "step", {"critic_loss"}).ok());
  EXPECT_NE(ReadBytes(svg).find("<svg"), std::string::npos);
  EXPECT_TRUE(StatusIs(PlotMetrics(png, *t, "iteration", {}), absl::StatusCode::kNotFound, {png, "\"iteration\""}));
  EXPECT_TRUE(StatusIs(PlotMetrics(png, *t, "step", {"nope"}), absl::StatusCode::kNotFound, {png, "\"nope\""}));
}

}  // namespace
}  // namespace otgen::eval
