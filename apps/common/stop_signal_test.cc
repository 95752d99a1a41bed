#include "apps/common/stop_signal.h"

#include <signal.h>

#include "gtest/gtest.h"

namespace otgen::apps {
namespace {

TEST(StopSignalTest, SigtermRequestsAStop) {
  InstallStopSignalHandlers();
  ResetStopRequest();
  EXPECT_FALSE(StopRequested());
  raise(SIGTERM);
  EXPECT_TRUE(StopRequested());
  EXPECT_EQ(StopSignal(), SIGTERM);
  ResetStopRequest();
  RequestStop();
  EXPECT_TRUE(StopRequested());
  EXPECT_EQ(StopSignal(), 0);
  ResetStopRequest();
}

TEST(StopSignalDeathTest, SecondSignalExitsAtOnce) {
  EXPECT_EXIT(
      {
        InstallStopSignalHandlers();
        ResetStopRequest();
        raise(SIGINT);
        raise(SIGINT);
      },
      ::testing::ExitedWithCode(128 + SIGINT), "stop requested");
}

}  // namespace
}  // namespace otgen::apps
