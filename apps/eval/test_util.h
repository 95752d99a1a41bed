// Helpers for apps/eval tests (testonly): scratch paths under TEST_TMPDIR, raw file writes
// for malformed inputs, and a status matcher.
#ifndef OTGEN_APPS_EVAL_TEST_UTIL_H_
#define OTGEN_APPS_EVAL_TEST_UTIL_H_

#include <initializer_list>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace otgen::eval::testutil {

// A path for `name` in the test's scratch directory ($TEST_TMPDIR, else /tmp).
std::string TempPath(absl::string_view name);

// Writes `bytes` to `path` (replacing it) non-atomically; aborts the test binary on failure.
void WriteBytes(const std::string& path, absl::string_view bytes);

// Reads a whole file; aborts the test binary on failure.
std::string ReadBytes(const std::string& path);

// Success when `status` has `code` and its message contains every one of `parts`.
// Use with EXPECT_TRUE.
::testing::AssertionResult StatusIs(const absl::Status& status, absl::StatusCode code,
                                    std::initializer_list<absl::string_view> parts);

}  // namespace otgen::eval::testutil

#endif  // OTGEN_APPS_EVAL_TEST_UTIL_H_
