#ifndef OTGEN_APPS_COMMON_TEST_FILES_H_
#define OTGEN_APPS_COMMON_TEST_FILES_H_

// File helpers shared by the apps' tests (testonly): where a test may write, and reading
// back what a run wrote.
//
//   const std::string dir = otgen::apps::TestTempDir() + "/run";
//   ... run the app with output_dir = dir ...
//   EXPECT_TRUE(otgen::apps::FileExists(dir + "/metrics.csv"));
//   const std::string csv = otgen::apps::ReadTestFile(dir + "/metrics.csv");

#include <string>

namespace otgen::apps {

// The test's private scratch folder ($TEST_TMPDIR under `bazel test`, else /tmp).
std::string TestTempDir();

// Whether `path` names an existing file or folder.
bool FileExists(const std::string& path);

// The whole content of `path`; empty if it cannot be read.
std::string ReadTestFile(const std::string& path);

}  // namespace otgen::apps

#endif  // OTGEN_APPS_COMMON_TEST_FILES_H_
