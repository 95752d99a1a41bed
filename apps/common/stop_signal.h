// Graceful stop on SIGINT / SIGTERM: the training loop polls StopRequested() and writes a
// final checkpoint before exiting. A second signal while stopping exits at once (status
// 128 + signal), so a stuck run can still be killed with Ctrl-C twice. The handlers use
// SA_RESTART: a system call the signal interrupts resumes rather than failing with EINTR.
//
//   InstallStopSignalHandlers();
//   for (step = ...; step < steps && !StopRequested(); ++step) { ... }
#ifndef OTGEN_APPS_COMMON_STOP_SIGNAL_H_
#define OTGEN_APPS_COMMON_STOP_SIGNAL_H_

namespace otgen::apps {

// Installs handlers for SIGINT and SIGTERM (idempotent).
void InstallStopSignalHandlers();
// True once SIGINT or SIGTERM arrived (or RequestStop was called).
bool StopRequested();
// The signal that asked to stop (0 if none or requested programmatically).
int StopSignal();
// Asks the loop to stop, as a signal would (tests, time limits).
void RequestStop();
// Clears the request (tests).
void ResetStopRequest();

}  // namespace otgen::apps

#endif  // OTGEN_APPS_COMMON_STOP_SIGNAL_H_
