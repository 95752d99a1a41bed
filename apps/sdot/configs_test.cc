// Every config under apps/sdot/configs/ parses and passes ValidateSdotConfig, and the built-in
// default is configs/default.pbtxt.
#include <dirent.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "apps/common/config.h"
#include "apps/sdot/default_config.h"
#include "apps/sdot/sdot.h"
#include "gtest/gtest.h"

namespace otgen::apps::sdot {
namespace {

std::string ConfigDir() {
  const char* src = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  return std::string(src ? src : ".") + "/" + (ws ? ws : "otgen") + "/apps/sdot/configs";
}

std::vector<std::string> ConfigFiles() {
  std::vector<std::string> files;
  DIR* dir = opendir(ConfigDir().c_str());
  if (dir == nullptr) return files;
  while (dirent* e = readdir(dir)) {
    const std::string name = e->d_name;
    if (name.size() > 6 && name.substr(name.size() - 6) == ".pbtxt") files.push_back(name);
  }
  closedir(dir);
  return files;
}

TEST(SdotConfigsTest, EveryConfigParsesAndValidates) {
  const std::vector<std::string> files = ConfigFiles();
  // Figures 1 (16 + the gamma-50 variant), 2 (4), 3 (16), 4 (12), the Sinkhorn loss and the
  // default.
  EXPECT_EQ(files.size(), 51u) << ConfigDir();
  for (const std::string& name : files) {
    SdotConfig config;
    const absl::Status loaded = LoadConfig(ConfigDir() + "/" + name, &config);
    ASSERT_TRUE(loaded.ok()) << loaded;
    const absl::Status valid = ValidateSdotConfig(config);
    EXPECT_TRUE(valid.ok()) << name << ": " << valid;
    // The configs reproduce the paper's setting.
    EXPECT_EQ(config.batch_size(), 200) << name;
    EXPECT_EQ(config.latent().dim(), 100) << name;
    EXPECT_EQ(config.dual().inner_iterations(), 10) << name;
    if (name.rfind("figure1_", 0) == 0) {
      EXPECT_EQ(config.schedule().steps(), 3000) << name;
    }
    if (config.dual().optimizer().kind() == OptimizerConfig::ASGD) {
      const bool nn = config.dual().parameterization() == DualConfig::NETWORK;
      // The paper's steps, except where a config says it departs from them (gamma 50 for SDOT).
      const bool gamma50 = name == "default.pbtxt" || name.find("_gamma50") != std::string::npos;
      EXPECT_FLOAT_EQ(config.dual().optimizer().gamma(), nn ? 0.1f : (gamma50 ? 50.0f : 5.0f)) << name;
      EXPECT_FLOAT_EQ(config.dual().optimizer().alpha(), nn ? 0.8f : 0.5f) << name;
    }
  }
}

TEST(SdotConfigsTest, BuiltInDefaultIsTheDefaultFile) {
  std::ifstream in(ConfigDir() + "/default.pbtxt");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), std::string(kDefaultSdotConfig));
  SdotConfig config;
  ASSERT_TRUE(ParseConfig(kDefaultSdotConfig, "default", &config).ok());
  EXPECT_TRUE(ValidateSdotConfig(config).ok());
  EXPECT_EQ(config.dual().parameterization(), DualConfig::VECTOR);
  EXPECT_EQ(config.dual().lambda(), 0.0f);
  EXPECT_EQ(config.data().train_limit(), 0);  // all 60000 images
}

}  // namespace
}  // namespace otgen::apps::sdot
