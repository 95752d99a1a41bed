#include "apps/common/stop_signal.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

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

// A signal that arrives during a blocking system call does not make it fail with EINTR.
TEST(StopSignalTest, InterruptedReadResumes) {
  InstallStopSignalHandlers();
  ResetStopRequest();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pthread_t reader = pthread_self();
  std::thread writer([&] {
    // The signal goes to the reader while it is blocked in read(); the data come after it.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    pthread_kill(reader, SIGTERM);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const char byte = 'x';
    EXPECT_EQ(write(fds[1], &byte, 1), 1);
  });
  char got = 0;
  const ssize_t n = read(fds[0], &got, 1);
  const int read_errno = errno;
  writer.join();
  EXPECT_EQ(n, 1) << "read failed with errno " << read_errno;
  EXPECT_EQ(got, 'x');
  EXPECT_TRUE(StopRequested());
  EXPECT_EQ(StopSignal(), SIGTERM);
  close(fds[0]);
  close(fds[1]);
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
