// Helpers for apps/eval tests (testonly): scratch paths under TEST_TMPDIR, raw file writes
// for malformed inputs, and a status matcher.
#ifndef OTGEN_APPS_EVAL_TEST_UTIL_H_
#define OTGEN_APPS_EVAL_TEST_UTIL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "nn/status_matchers.h"

namespace otgen::eval::testutil {

// A path for `name` in the test's scratch directory ($TEST_TMPDIR, else /tmp).
std::string TempPath(absl::string_view name);

// Writes `bytes` to `path` (replacing it) non-atomically; aborts the test binary on failure.
void WriteBytes(const std::string& path, absl::string_view bytes);

// Reads a whole file; aborts the test binary on failure.
std::string ReadBytes(const std::string& path);

// StatusIs(status, code, {parts...}): nn/status_matchers.h.
using ::otgen::nn::StatusIs;

}  // namespace otgen::eval::testutil

#endif  // OTGEN_APPS_EVAL_TEST_UTIL_H_
