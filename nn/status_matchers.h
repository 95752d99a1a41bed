// Test assertions on absl::Status (testonly), for the loaders' and apps' error-path tests:
//
//   EXPECT_TRUE(StatusIs(LoadMnistFiles(path, labels).status(), absl::StatusCode::kDataLoss,
//                        {path, "header"}));
//
// Every bad-input error of otgen names the file or field and what was expected; these tests
// pin both the canonical code and those words.
#ifndef OTGEN_NN_STATUS_MATCHERS_H_
#define OTGEN_NN_STATUS_MATCHERS_H_

#include <initializer_list>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace otgen::nn {

// Success when `status` has `code` and its message contains every one of `parts`; otherwise a
// failure showing what was expected and what came back. Use with EXPECT_TRUE / ASSERT_TRUE.
// With OTGEN_PRINT_STATUS=1 in the environment (bazel test --test_env=OTGEN_PRINT_STATUS=1)
// every checked status is printed to stderr, to review the messages users will read.
::testing::AssertionResult StatusIs(const absl::Status& status, absl::StatusCode code,
                                    std::initializer_list<absl::string_view> parts);

}  // namespace otgen::nn

#endif  // OTGEN_NN_STATUS_MATCHERS_H_
