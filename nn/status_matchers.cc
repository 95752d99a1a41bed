#include "nn/status_matchers.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"

namespace otgen::nn {

::testing::AssertionResult StatusIs(const absl::Status& status, absl::StatusCode code,
                                    std::initializer_list<absl::string_view> parts) {
  if (const char* print = std::getenv("OTGEN_PRINT_STATUS"); print != nullptr && print[0] == '1') {
    std::fprintf(stderr, "[status] %s\n", status.ToString().c_str());
  }
  bool ok = status.code() == code;
  for (absl::string_view part : parts) ok = ok && status.message().find(part) != absl::string_view::npos;
  if (ok) return ::testing::AssertionSuccess();
  std::string expected = absl::StatusCodeToString(code);
  for (absl::string_view part : parts) absl::StrAppend(&expected, " containing \"", part, "\"");
  return ::testing::AssertionFailure() << "expected status " << expected << "\n     got " << status;
}

}  // namespace otgen::nn
