// Helpers for data/ tests (testonly): scratch files under TEST_TMPDIR and byte builders
// for the binary formats the loaders read.
#ifndef OTGEN_DATA_TEST_UTIL_H_
#define OTGEN_DATA_TEST_UTIL_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "nn/status_matchers.h"

namespace otgen::data::testutil {

// A path for `name` in the test's scratch directory ($TEST_TMPDIR, else /tmp).
std::string TempPath(std::string_view name);

// Writes `bytes` to `path` (replacing it); aborts the test binary on failure.
void WriteBytes(const std::string& path, std::string_view bytes);

// Appends `value` as 4 big-endian bytes.
void AppendBigEndian32(uint32_t value, std::string* out);

// StatusIs(status, code, {parts...}): nn/status_matchers.h.
using ::otgen::nn::StatusIs;

}  // namespace otgen::data::testutil

#endif  // OTGEN_DATA_TEST_UTIL_H_
