#include "apps/common/config.h"

#include <string>

#include "apps/common/test_app.pb.h"
#include "apps/common/test_files.h"
#include "gtest/gtest.h"
#include "nn/precision.h"

namespace otgen::apps {
namespace {

TEST(ConfigTest, ParsesTextProtoAndAppliesOverrides) {
  testing::TestAppConfig c;
  ASSERT_TRUE(ParseConfig("run { seed: 3 } schedule { steps: 10 } lambda: 0.5", "inline", &c).ok());
  EXPECT_EQ(c.run().seed(), 3u);
  EXPECT_EQ(c.schedule().steps(), 10);
  ConfigOverrides o;
  o.seed = 7;
  o.steps = 20;
  o.output_dir = "/x/y";
  o.threads = 1;
  ASSERT_TRUE(ApplyOverrides(o, &c).ok());
  EXPECT_EQ(c.run().seed(), 7u);
  EXPECT_EQ(c.schedule().steps(), 20);
  EXPECT_EQ(c.run().output_dir(), "/x/y");
  EXPECT_EQ(c.run().threads(), 1);
  EXPECT_FLOAT_EQ(c.lambda(), 0.5f);
}

TEST(ConfigTest, PrecisionOverrideParsesNamesAndRejectsOthers) {
  testing::TestAppConfig c;
  ASSERT_TRUE(ParseConfig("run { precision: BFLOAT16 }", "inline", &c).ok());
  EXPECT_EQ(c.run().precision(), RunConfig::BFLOAT16);
  ConfigOverrides o;
  o.precision = "float32";
  ASSERT_TRUE(ApplyOverrides(o, &c).ok());
  EXPECT_EQ(c.run().precision(), RunConfig::FLOAT32);
  o.precision = "bf16";
  ASSERT_TRUE(ApplyOverrides(o, &c).ok());
  EXPECT_EQ(c.run().precision(), RunConfig::BFLOAT16);
  o.precision = "fp16";
  const absl::Status s = ApplyOverrides(o, &c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--precision"), std::string::npos) << s;
  EXPECT_NE(s.message().find("\"fp16\""), std::string::npos) << s;
  // Accepted by validation exactly when the CPU has native bf16 dot products.
  const absl::Status v = ValidateCommon(c);
  if (nn::NativeBFloat16Available()) {
    EXPECT_TRUE(v.ok()) << v;
  } else {
    EXPECT_NE(v.message().find("run.precision"), std::string::npos) << v;
  }
}

TEST(ConfigTest, SyntaxErrorNamesFileLineAndColumn) {
  testing::TestAppConfig c;
  absl::Status s = ParseConfig("run { seed: 3 }\nschedule { stepz: 10 }", "my.pbtxt", &c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("my.pbtxt:2:"), std::string::npos) << s;
  EXPECT_NE(s.message().find("stepz"), std::string::npos) << s;
  EXPECT_EQ(LoadConfig(TestTempDir() + "/missing.pbtxt", &c).code(), absl::StatusCode::kNotFound);
}

TEST(ConfigTest, OverridesNeedRunAndSchedule) {
  testing::NoRunConfig c;
  absl::Status s = ApplyOverrides({}, &c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'run'"), std::string::npos);
}

TEST(ConfigTest, ValidateCommonNamesTheField) {
  testing::TestAppConfig c;
  c.mutable_schedule()->set_steps(-1);
  absl::Status s = ValidateCommon(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("schedule.steps"), std::string::npos);
  c.mutable_schedule()->set_steps(5);
  c.mutable_schedule()->set_log_every(0);
  EXPECT_NE(ValidateCommon(c).message().find("schedule.log_every"), std::string::npos);
  c.mutable_schedule()->set_log_every(1);
  EXPECT_TRUE(ValidateCommon(c).ok());
}

TEST(ConfigTest, EffectiveConfigPrintsDefaultsAndRoundTrips) {
  testing::TestAppConfig c;
  const std::string text = ConfigToText(c);
  EXPECT_NE(text.find("lambda: 0.01"), std::string::npos) << text;
  EXPECT_NE(text.find("checkpoint_every: 1000"), std::string::npos) << text;
  EXPECT_NE(text.find("kind: ADAM"), std::string::npos) << text;
  ASSERT_TRUE(WriteConfig(TestTempDir(), c).ok());
  testing::TestAppConfig back;
  ASSERT_TRUE(LoadConfig(TestTempDir() + "/config.pbtxt", &back).ok());
  EXPECT_FLOAT_EQ(back.lambda(), 0.01f);
  EXPECT_TRUE(back.has_schedule());
  EXPECT_EQ(back.schedule().steps(), 1000);
}

TEST(ConfigTest, MakeDirectoriesCreatesParents) {
  ASSERT_TRUE(MakeDirectories(TestTempDir() + "/a/b/c").ok());
  EXPECT_TRUE(MakeDirectories(TestTempDir() + "/a/b/c").ok());  // existing: fine
  EXPECT_TRUE(WriteConfig(TestTempDir() + "/a/b/c", testing::TestAppConfig()).ok());
  EXPECT_TRUE(FileExists(TestTempDir() + "/a/b/c/config.pbtxt"));
  ASSERT_TRUE(WriteConfig(TestTempDir() + "/a", testing::TestAppConfig()).ok());
  const absl::Status not_directory = MakeDirectories(TestTempDir() + "/a/config.pbtxt");
  EXPECT_EQ(not_directory.code(), absl::StatusCode::kFailedPrecondition) << not_directory;
  EXPECT_NE(not_directory.message().find("not a directory"), std::string::npos) << not_directory;
}

}  // namespace
}  // namespace otgen::apps
