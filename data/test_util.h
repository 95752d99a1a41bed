// Helpers for data/ tests (testonly): scratch files under TEST_TMPDIR and byte builders
// for the binary formats the loaders read.
#ifndef OTGEN_DATA_TEST_UTIL_H_
#define OTGEN_DATA_TEST_UTIL_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace otgen::data::testutil {

// A path for `name` in the test's scratch directory ($TEST_TMPDIR, else /tmp).
std::string TempPath(std::string_view name);

// Writes `bytes` to `path` (replacing it); aborts the test binary on failure.
void WriteBytes(const std::string& path, std::string_view bytes);

// Appends `value` as 4 big-endian bytes.
void AppendBigEndian32(uint32_t value, std::string* out);

// Success when `status` has `code` and its message contains every one of `parts`;
// otherwise a failure showing what was expected and what came back. Use with EXPECT_TRUE.
// With OTGEN_PRINT_STATUS=1 in the environment every status is printed to stderr.
::testing::AssertionResult StatusIs(const absl::Status& status, absl::StatusCode code,
                                    std::initializer_list<std::string_view> parts);

}  // namespace otgen::data::testutil

#endif  // OTGEN_DATA_TEST_UTIL_H_
