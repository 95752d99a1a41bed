#include "apps/common/user_path.h"

#include <sys/stat.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace otgen::apps {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string WorkingDirectory() {
  const char* dir = std::getenv("BUILD_WORKING_DIRECTORY");
  return dir == nullptr ? "" : std::string(absl::StripSuffix(dir, "/"));
}

}  // namespace

std::string ResolveInputPath(const std::string& path) {
  if (path.empty() || path[0] == '/' || Exists(path)) return path;
  const std::string base = WorkingDirectory();
  if (base.empty()) return path;
  const std::string candidate = absl::StrCat(base, "/", path);
  return Exists(candidate) ? candidate : path;
}

std::string ResolveOutputPath(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  const std::string base = WorkingDirectory();
  return base.empty() ? path : absl::StrCat(base, "/", path);
}

}  // namespace otgen::apps
