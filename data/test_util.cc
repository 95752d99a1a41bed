#include "data/test_util.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace otgen::data::testutil {

std::string TempPath(std::string_view name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr && dir[0] != '\0' ? dir : "/tmp", "/", std::string(name));
}

void WriteBytes(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "WriteBytes: cannot write %s\n", path.c_str());
    std::abort();
  }
}

void AppendBigEndian32(uint32_t value, std::string* out) {
  out->push_back(static_cast<char>((value >> 24) & 0xff));
  out->push_back(static_cast<char>((value >> 16) & 0xff));
  out->push_back(static_cast<char>((value >> 8) & 0xff));
  out->push_back(static_cast<char>(value & 0xff));
}

::testing::AssertionResult StatusIs(const absl::Status& status, absl::StatusCode code,
                                    std::initializer_list<std::string_view> parts) {
  // OTGEN_PRINT_STATUS=1 (via --test_env) shows every checked status, to review messages.
  if (const char* print = std::getenv("OTGEN_PRINT_STATUS"); print != nullptr && print[0] == '1') {
    std::fprintf(stderr, "[status] %s\n", status.ToString().c_str());
  }
  bool ok = status.code() == code;
  for (std::string_view part : parts)
    ok = ok && status.message().find(absl::string_view(part.data(), part.size())) != absl::string_view::npos;
  if (ok) return ::testing::AssertionSuccess();
  std::string expected = absl::StatusCodeToString(code);
  for (std::string_view part : parts) absl::StrAppend(&expected, " containing \"", std::string(part), "\"");
  return ::testing::AssertionFailure() << "expected status " << expected << "\n     got " << status;
}

}  // namespace otgen::data::testutil
