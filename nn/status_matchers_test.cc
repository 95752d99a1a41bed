#include "nn/status_matchers.h"

#include <string>

#include "gtest/gtest.h"

namespace otgen::nn {
namespace {

TEST(StatusIsTest, MatchesCodeAndEveryPart) {
  const absl::Status status = absl::NotFoundError("data/x.bin: cannot open: No such file");
  EXPECT_TRUE(StatusIs(status, absl::StatusCode::kNotFound, {}));
  EXPECT_TRUE(StatusIs(status, absl::StatusCode::kNotFound, {"data/x.bin", "cannot open"}));
  const std::string path = "data/x.bin";
  EXPECT_TRUE(StatusIs(status, absl::StatusCode::kNotFound, {path}));
}

TEST(StatusIsTest, FailsOnAnotherCodeOrAMissingPart) {
  const absl::Status status = absl::NotFoundError("data/x.bin: cannot open");
  const ::testing::AssertionResult wrong_code = StatusIs(status, absl::StatusCode::kDataLoss, {"data/x.bin"});
  EXPECT_FALSE(wrong_code);
  EXPECT_NE(std::string(wrong_code.message()).find("DATA_LOSS"), std::string::npos) << wrong_code.message();
  const ::testing::AssertionResult missing = StatusIs(status, absl::StatusCode::kNotFound, {"truncated"});
  EXPECT_FALSE(missing);
  EXPECT_NE(std::string(missing.message()).find("\"truncated\""), std::string::npos) << missing.message();
  EXPECT_FALSE(StatusIs(absl::OkStatus(), absl::StatusCode::kNotFound, {}));
}

}  // namespace
}  // namespace otgen::nn
