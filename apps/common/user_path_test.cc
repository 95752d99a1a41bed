#include "apps/common/user_path.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "apps/common/test_files.h"
#include "gtest/gtest.h"

namespace otgen::apps {
namespace {

TEST(UserPathTest, OutputsResolveAgainstTheBazelWorkingDirectory) {
  const std::string base = TestTempDir() + "/bwd_out";
  ASSERT_EQ(setenv("BUILD_WORKING_DIRECTORY", (base + "/").c_str(), 1), 0);
  EXPECT_EQ(ResolveOutputPath("samples.npy"), base + "/samples.npy");
  EXPECT_EQ(ResolveOutputPath("out/s.npy"), base + "/out/s.npy");
  EXPECT_EQ(ResolveOutputPath("/abs/s.npy"), "/abs/s.npy");
  EXPECT_EQ(ResolveOutputPath(""), "");
  ASSERT_EQ(unsetenv("BUILD_WORKING_DIRECTORY"), 0);
  EXPECT_EQ(ResolveOutputPath("samples.npy"), "samples.npy");
}

TEST(UserPathTest, InputsResolveOnlyToFilesThatExist) {
  const std::string base = TestTempDir() + "/bwd_in";
  ASSERT_EQ(std::system(("mkdir -p " + base).c_str()), 0);
  { std::ofstream(base + "/present.pbtxt") << "x"; }
  ASSERT_EQ(setenv("BUILD_WORKING_DIRECTORY", base.c_str(), 1), 0);
  EXPECT_EQ(ResolveInputPath("present.pbtxt"), base + "/present.pbtxt");
  // Missing everywhere: unchanged, so the caller's error names what the user wrote.
  EXPECT_EQ(ResolveInputPath("absent.pbtxt"), "absent.pbtxt");
  EXPECT_EQ(ResolveInputPath("/abs/x"), "/abs/x");
  ASSERT_EQ(unsetenv("BUILD_WORKING_DIRECTORY"), 0);
  EXPECT_EQ(ResolveInputPath("present.pbtxt"), "present.pbtxt");
}

}  // namespace
}  // namespace otgen::apps
