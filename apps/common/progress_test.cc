#include "apps/common/progress.h"

#include <cstdio>
#include <string>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace otgen::apps {
namespace {

TEST(ProgressTest, FormatsRateEtaAndValues) {
  std::FILE* sink = std::tmpfile();
  ProgressLine p(100, 0, {.stream = sink});
  // Format at a time 10 s after start with 20 steps done: 2 it/s, 80 left -> 40 s.
  const std::string s = p.Format(20, {{"loss", 0.5}}, absl::Now() + absl::Seconds(10));
  EXPECT_NE(s.find("20/100 (20%)"), std::string::npos) << s;
  EXPECT_NE(s.find("loss=0.5"), std::string::npos) << s;
  EXPECT_NE(s.find("ETA 4"), std::string::npos) << s;  // ~40s (start is slightly earlier)
  std::fclose(sink);
}

TEST(ProgressTest, PipedOutputIsPlainLines) {
  std::FILE* sink = std::tmpfile();
  ProgressLine p(3, 0, {.min_interval_seconds = 0.0, .stream = sink});
  p.Update(1, {});
  p.Update(2, {});
  p.Finish();
  std::rewind(sink);
  char buffer[512] = {};
  const size_t n = std::fread(buffer, 1, sizeof(buffer) - 1, sink);
  const std::string out(buffer, n);
  EXPECT_EQ(out.find('\r'), std::string::npos);
  int lines = 0;
  for (char c : out) lines += (c == '\n');
  EXPECT_EQ(lines, 3) << out;
  std::fclose(sink);
}

TEST(ProgressTest, FormatElapsed) {
  EXPECT_EQ(FormatElapsed(absl::Seconds(12)), "12s");
  EXPECT_EQ(FormatElapsed(absl::Seconds(245)), "4m05s");
  EXPECT_EQ(FormatElapsed(absl::Seconds(3723)), "1h02m03s");
}

}  // namespace
}  // namespace otgen::apps
