#include "apps/common/compare_runs.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "apps/common/config.h"
#include "apps/common/file_io.h"
#include "apps/common/test_files.h"
#include "apps/eval/plot.h"
#include "gtest/gtest.h"

namespace otgen::apps {
namespace {

TEST(CompareRunsTest, OverlaysTheColumnOfEachRun) {
  const std::string a = TestTempDir() + "/run_a", b = TestTempDir() + "/run_b";
  ASSERT_TRUE(MakeDirectories(a).ok());
  ASSERT_TRUE(MakeDirectories(b).ok());
  ASSERT_TRUE(WriteFileAtomically(a + "/metrics.csv", "step,h,fd\n1,1.0,\n2,0.5,\n3,0.25,3\n").ok());
  ASSERT_TRUE(WriteFileAtomically(b + "/metrics.csv", "step,h\n1,2.0\n2,1.0\n").ok());
  CompareRunsOptions options;
  options.runs = {a, b + "/metrics.csv"};
  options.labels = {"SDOT", "SDOTNN"};
  options.output = TestTempDir() + "/compare.svg";
  options.smooth = 2;
  ASSERT_TRUE(CompareRuns(options).ok());
  const std::string svg = ReadTestFile(options.output);
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  options.output = TestTempDir() + "/compare.png";
  ASSERT_TRUE(CompareRuns(options).ok());
  EXPECT_EQ(ReadTestFile(options.output).substr(1, 3), "PNG");
}

TEST(CompareRunsTest, ErrorsNameTheRunOrOption) {
  const std::string a = TestTempDir() + "/run_c";
  ASSERT_TRUE(MakeDirectories(a).ok());
  ASSERT_TRUE(WriteFileAtomically(a + "/metrics.csv", "step,h\n1,1.0\n").ok());
  CompareRunsOptions options;
  options.runs = {a, TestTempDir() + "/no_such_run"};
  options.output = TestTempDir() + "/x.png";
  absl::Status s = CompareRuns(options);
  EXPECT_NE(s.message().find("runs[1]"), std::string::npos) << s;

  options.runs = {a};
  options.column = "fd";
  s = CompareRuns(options);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(s.message().find("'fd'"), std::string::npos) << s;

  options.column = "h";
  options.labels = {"x", "y"};
  EXPECT_NE(CompareRuns(options).message().find("labels"), std::string::npos);
  options.labels.clear();
  options.output = TestTempDir() + "/x.jpg";
  EXPECT_EQ(CompareRuns(options).code(), absl::StatusCode::kInvalidArgument);
  options.output = TestTempDir() + "/x.png";
  options.smooth = 0;
  EXPECT_NE(CompareRuns(options).message().find("smooth"), std::string::npos);
}

}  // namespace
}  // namespace otgen::apps
