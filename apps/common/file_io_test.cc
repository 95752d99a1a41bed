#include "apps/common/file_io.h"

#include <filesystem>
#include <string>

#include "apps/common/test_files.h"
#include "gtest/gtest.h"
#include "nn/status_matchers.h"

namespace otgen::apps {
namespace {

std::string TempPath(const std::string& name) { return TestTempDir() + "/" + name; }
std::string ReadBytes(const std::string& path) { return ReadTestFile(path); }

using ::otgen::nn::StatusIs;

TEST(FileIoTest, WriteThenReadBack) {
  const std::string path = TempPath("io.bin");
  const std::string bytes("a\0b\xff", 4);
  ASSERT_TRUE(WriteFileAtomically(path, bytes).ok());
  absl::StatusOr<std::string> back = ReadFileToString(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, bytes);
  ASSERT_TRUE(WriteFileAtomically(path, "replaced").ok());
  EXPECT_EQ(ReadBytes(path), "replaced");
  ASSERT_TRUE(WriteFileAtomically(path, "").ok());
  EXPECT_EQ(ReadBytes(path), "");
}

TEST(FileIoTest, InputFileReadsAtOffsets) {
  const std::string path = TempPath("offsets.bin");
  ASSERT_TRUE(WriteFileAtomically(path, "0123456789").ok());
  absl::StatusOr<InputFile> file = InputFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->size(), 10u);
  char buf[4] = {};
  ASSERT_TRUE(file->ReadAt(3, buf, 4).ok());
  EXPECT_EQ(std::string(buf, 4), "3456");
  InputFile moved = std::move(*file);
  ASSERT_TRUE(moved.ReadAt(8, buf, 2).ok());
  EXPECT_EQ(std::string(buf, 2), "89");
  EXPECT_TRUE(StatusIs(moved.ReadAt(8, buf, 3), absl::StatusCode::kDataLoss, {path, "file ended"}));
}

TEST(FileIoTest, Errors) {
  const std::string missing = TempPath("missing.bin");
  EXPECT_TRUE(StatusIs(ReadFileToString(missing).status(), absl::StatusCode::kNotFound, {missing}));
  EXPECT_TRUE(StatusIs(InputFile::Open(missing).status(), absl::StatusCode::kNotFound, {missing}));
  const std::string dir = TempPath("");
  EXPECT_TRUE(StatusIs(ReadFileToString(dir).status(), absl::StatusCode::kInvalidArgument, {"not a regular file"}));
  EXPECT_TRUE(StatusIs(InputFile::Open(dir).status(), absl::StatusCode::kInvalidArgument, {"not a regular file"}));
  EXPECT_TRUE(StatusIs(WriteFileAtomically(TempPath("no/such/dir/f"), "x"), absl::StatusCode::kNotFound,
                       {"no/such/dir/f"}));
  EXPECT_TRUE(StatusIs(WriteFileAtomically("", "x"), absl::StatusCode::kInvalidArgument, {"empty file path"}));
  // A directory in place of the target: the rename fails and the temporary file is removed.
  const std::string target = TempPath("a_directory");
  ASSERT_TRUE(std::filesystem::create_directory(target));
  EXPECT_FALSE(WriteFileAtomically(target, "x").ok());
  for (const auto& entry : std::filesystem::directory_iterator(TempPath(""))) {
    EXPECT_EQ(entry.path().filename().string().find("a_directory.tmp"), std::string::npos) << entry.path();
  }
}

}  // namespace
}  // namespace otgen::apps
