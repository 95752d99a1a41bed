#include "apps/common/stop_signal.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

namespace otgen::apps {
namespace {

std::atomic<bool> stop_requested{false};
std::atomic<int> stop_signal{0};

void HandleSignal(int signal_number) {
  if (stop_requested.exchange(true)) _exit(128 + signal_number);
  stop_signal.store(signal_number);
  static const char kMessage[] = "\notgen: stop requested; writing a final checkpoint (signal again to abort)\n";
  const ssize_t ignored = write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
  (void)ignored;
}

}  // namespace

void InstallStopSignalHandlers() {
  struct sigaction action = {};
  action.sa_handler = &HandleSignal;
  // Interrupted system calls (a checkpoint's write, a data file's read, a futex wait) resume
  // instead of failing with EINTR: the loop notices the request at its next poll and still
  // has working I/O for the final checkpoint.
  action.sa_flags = SA_RESTART;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

bool StopRequested() { return stop_requested.load(std::memory_order_relaxed); }
int StopSignal() { return stop_signal.load(); }
void RequestStop() { stop_requested.store(true); }
void ResetStopRequest() {
  stop_requested.store(false);
  stop_signal.store(0);
}

}  // namespace otgen::apps
