// Whole-file reads and atomic writes for the apps and their evaluation libraries.
//
// Every file the apps write (configs, metrics.csv, .npy arrays, CSV matrices, PNG/SVG plots)
// goes through `WriteFileAtomically`: the bytes are written to a temporary file beside the
// target ("<path>.tmp.<pid>.<counter>"), flushed with fsync, then renamed over `path`, so a
// reader never sees a half-written file and an interrupted run leaves the previous file intact.
// (Checkpoints have their own writer in nn/checkpoint.h, below apps/.)
//
//   OTGEN_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
//   OTGEN_RETURN_IF_ERROR(WriteFileAtomically(path, bytes));
//
// Status codes name the path: NotFoundError (missing file or directory),
// PermissionDeniedError, InvalidArgumentError (not a regular file, empty path),
// DataLossError (a read or write failing midway), InternalError otherwise.
#ifndef OTGEN_APPS_COMMON_FILE_IO_H_
#define OTGEN_APPS_COMMON_FILE_IO_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace otgen::apps {

// The whole content of the regular file at `path`.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// A regular file opened for positional reads (large arrays are read straight into their
// destination, without an intermediate copy of the whole file).
class InputFile {
 public:
  // Opens the regular file at `path` (same status codes as ReadFileToString).
  static absl::StatusOr<InputFile> Open(const std::string& path);

  InputFile(InputFile&& other) noexcept;
  InputFile& operator=(InputFile&& other) noexcept;
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile();

  // Size in bytes when opened.
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Reads exactly `n` bytes at `offset` into `dst`; DataLossError if the file ends first.
  absl::Status ReadAt(uint64_t offset, void* dst, size_t n) const;

 private:
  InputFile(int fd, uint64_t size, std::string path) : fd_(fd), size_(size), path_(std::move(path)) {}
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string path_;
};

// Replaces the file at `path` by `bytes` atomically (temporary file, fsync, rename). The
// directory must exist.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view bytes);

// A status for the errno value `error_number` of `operation` on `path`, with the canonical
// code matching errno (ENOENT -> NotFound, EACCES/EPERM -> PermissionDenied, ...).
absl::Status ErrnoStatus(int error_number, absl::string_view operation, const std::string& path);

}  // namespace otgen::apps

#endif  // OTGEN_APPS_COMMON_FILE_IO_H_
