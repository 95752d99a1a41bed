#include "apps/common/app_config.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "apps/common/test_app.pb.h"
#include "apps/common/test_files.h"
#include "gtest/gtest.h"

namespace otgen::apps {
namespace {

TEST(AppConfigTest, DefaultTextOverridesAndEffectiveConfigFile) {
  const std::string dir = TestTempDir() + "/app_config_default";
  AppConfigSources sources;
  sources.default_text = "run { output_dir: '" + dir + "' } lambda: 0.5";
  sources.overrides.seed = 42;
  sources.overrides.steps = 7;
  sources.print = false;
  testing::TestAppConfig config;
  ASSERT_TRUE(PrepareAppConfig(sources, nullptr, &config).ok());
  EXPECT_EQ(config.run().seed(), 42u);
  EXPECT_EQ(config.schedule().steps(), 7);
  EXPECT_FLOAT_EQ(config.lambda(), 0.5f);
  const std::string written = ReadTestFile(dir + "/config.pbtxt");
  EXPECT_NE(written.find("seed: 42"), std::string::npos) << written;
  EXPECT_NE(written.find("steps: 7"), std::string::npos) << written;
  // Defaults are materialized.
  EXPECT_NE(written.find("checkpoint_every: 1000"), std::string::npos) << written;
}

TEST(AppConfigTest, AppValidatorRunsAfterTheCommonCheck) {
  AppConfigSources sources;
  sources.default_text = "run { output_dir: '" + TestTempDir() + "/app_config_bad' } lambda: -1";
  sources.print = false;
  testing::TestAppConfig config;
  const absl::Status s = PrepareAppConfig(
      sources,
      [](const google::protobuf::Message& m) {
        const auto& c = static_cast<const testing::TestAppConfig&>(m);
        return c.lambda() < 0 ? absl::InvalidArgumentError("lambda: expected >= 0") : absl::OkStatus();
      },
      &config);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("lambda"), std::string::npos);

  sources.default_text = "schedule { steps: -3 }";
  EXPECT_NE(PrepareAppConfig(sources, nullptr, &config).message().find("schedule.steps"), std::string::npos);
}

TEST(AppConfigTest, RelativePathsResolveAgainstTheBuildWorkingDirectory) {
  const std::string base = TestTempDir() + "/bwd";
  ASSERT_EQ(std::system(("mkdir -p " + base).c_str()), 0);
  {
    std::ofstream out(base + "/user.pbtxt");
    out << "lambda: 0.25 run { output_dir: 'out_rel' }";
  }
  ::setenv("BUILD_WORKING_DIRECTORY", base.c_str(), 1);
  AppConfigSources sources;
  sources.config_path = "user.pbtxt";
  sources.print = false;
  testing::TestAppConfig config;
  const absl::Status s = PrepareAppConfig(sources, nullptr, &config);
  ::unsetenv("BUILD_WORKING_DIRECTORY");
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_FLOAT_EQ(config.lambda(), 0.25f);
  EXPECT_EQ(config.run().output_dir(), base + "/out_rel");
  EXPECT_FALSE(ReadTestFile(base + "/out_rel/config.pbtxt").empty());
}

TEST(AppConfigTest, MissingFileAndUnknownFieldAreNamed) {
  AppConfigSources sources;
  sources.config_path = TestTempDir() + "/no_such_config.pbtxt";
  sources.print = false;
  testing::TestAppConfig config;
  absl::Status s = PrepareAppConfig(sources, nullptr, &config);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(s.message().find("no_such_config.pbtxt"), std::string::npos);

  sources.config_path.clear();
  sources.default_text = "lamda: 1";
  sources.default_name = "builtin.pbtxt";
  s = PrepareAppConfig(sources, nullptr, &config);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("builtin.pbtxt:1"), std::string::npos) << s;
  EXPECT_NE(s.message().find("lamda"), std::string::npos) << s;
}

}  // namespace
}  // namespace otgen::apps
