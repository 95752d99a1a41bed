// Paths given by the user on the command line or in a config. `bazel run` starts binaries in
// their runfiles tree and sets $BUILD_WORKING_DIRECTORY to the folder it was called from, so a
// relative path means "relative to that folder".
#ifndef OTGEN_APPS_COMMON_USER_PATH_H_
#define OTGEN_APPS_COMMON_USER_PATH_H_

#include <string>

namespace otgen::apps {

// `path` if it exists or is absolute, else $BUILD_WORKING_DIRECTORY/path when that exists;
// otherwise `path` unchanged (the caller's open then reports it as missing).
std::string ResolveInputPath(const std::string& path);
// A relative `path` made absolute against $BUILD_WORKING_DIRECTORY when set (for outputs).
std::string ResolveOutputPath(const std::string& path);

}  // namespace otgen::apps

#endif  // OTGEN_APPS_COMMON_USER_PATH_H_
