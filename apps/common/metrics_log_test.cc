#include "apps/common/metrics_log.h"

#include <cmath>
#include <cstdlib>

#include "gtest/gtest.h"

namespace otgen::apps {
namespace {

std::string TempPath(const std::string& name) {
  return std::string(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp") + "/" + name;
}

TEST(MetricsLogTest, WritesHeaderAndRowsWithMissingValues) {
  const std::string path = TempPath("m1.csv");
  {
    auto log = MetricsLog::Open(path, {"loss", "fid"});
    ASSERT_TRUE(log.ok()) << log.status();
    ASSERT_TRUE(log->Append(1, {{"loss", 0.5}}).ok());
    ASSERT_TRUE(log->Append(2, {{"loss", 0.25}, {"fid", 12.5}}).ok());
    absl::Status bad = log->Append(3, {{"los", 1.0}});
    EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(bad.message().find("'los'"), std::string::npos);
  }
  auto table = ReadMetrics(path);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->columns, (std::vector<std::string>{"step", "loss", "fid"}));
  ASSERT_EQ(table->rows.size(), 2u);
  EXPECT_TRUE(std::isnan(table->rows[0][2]));
  EXPECT_DOUBLE_EQ(table->rows[1][2], 12.5);
}

TEST(MetricsLogTest, ResumeDropsRowsAfterTheCheckpoint) {
  const std::string path = TempPath("m2.csv");
  {
    auto log = MetricsLog::Open(path, {"loss"});
    ASSERT_TRUE(log.ok());
    for (int s = 1; s <= 5; ++s) ASSERT_TRUE(log->Append(s, {{"loss", s * 1.0}}).ok());
  }
  {
    auto log = MetricsLog::Open(path, {"loss"}, /*resume_step=*/3);
    ASSERT_TRUE(log.ok()) << log.status();
    ASSERT_TRUE(log->Append(4, {{"loss", 40.0}}).ok());
  }
  auto loss = ReadMetrics(path)->Column("loss");
  ASSERT_TRUE(loss.ok());
  EXPECT_EQ(*loss, (std::vector<double>{1, 2, 3, 40}));
  // A different header cannot be continued.
  EXPECT_EQ(MetricsLog::Open(path, {"other"}, 3).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(MetricsLogTest, RejectsBadColumnNames) {
  EXPECT_FALSE(MetricsLog::Open(TempPath("m3.csv"), {"a,b"}).ok());
  EXPECT_FALSE(MetricsLog::Open(TempPath("m3.csv"), {"step"}).ok());
}

}  // namespace
}  // namespace otgen::apps
