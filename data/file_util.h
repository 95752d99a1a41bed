// File reading for the data loaders (internal to data/): whole-file reads with canonical
// status codes, and the pixel conversion and resampling loops the image loaders share.
//
//   OTGEN_ASSIGN_OR_RETURN(internal::FileBytes bytes, internal::ReadFile(path));
//   // bytes.data(), bytes.size()
//
// Status codes: NotFoundError when the path does not exist, InvalidArgumentError when it
// is not a regular file (e.g. a directory), PermissionDeniedError when it cannot be
// opened for reading, DataLossError when reading fails midway. Messages name the path.
#ifndef OTGEN_DATA_FILE_UTIL_H_
#define OTGEN_DATA_FILE_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "data/dataset.h"

namespace otgen::data::internal {

// Debian's Abseil 20220623 is built with its own string_view type (not std::string_view):
// StrCat and friends take std::string_view arguments through this.
inline absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// The bytes of a whole file (uninitialized allocation filled by read(2), no zero fill).
class FileBytes {
 public:
  FileBytes() = default;
  FileBytes(std::unique_ptr<uint8_t[]> data, size_t size) : data_(std::move(data)), size_(size) {}
  const uint8_t* data() const { return data_.get(); }
  size_t size() const { return size_; }
  absl::Span<const uint8_t> span() const { return {data_.get(), size_}; }

 private:
  std::unique_ptr<uint8_t[]> data_;
  size_t size_ = 0;
};

// Reads the whole file at `path`.
absl::StatusOr<FileBytes> ReadFile(const std::string& path);

// Size in bytes of the regular file at `path` (same status codes as ReadFile).
absl::StatusOr<uint64_t> FileSize(const std::string& path);

// True when `path` names an existing regular file (following symlinks).
bool IsRegularFile(const std::string& path);
// True when `path` names an existing directory (following symlinks).
bool IsDirectory(const std::string& path);

// `dir` + "/" + `name` (no separator added when dir is empty or already ends with '/').
std::string JoinPath(const std::string& dir, const std::string& name);

// Converts bytes to floats: v / 255 (correctly rounded), then 2 v - 1 for kSymmetric.
void BytesToPixels(const uint8_t* in, int64_t n, PixelScaling scaling, float* out);
// Applies the scaling to values already in [0, 1] (in place): 2 v - 1 for kSymmetric.
void ApplyScaling(PixelScaling scaling, float* values, int64_t n);

// Exact area resampling ("box filter with fractional coverage"). Output pixel j of a
// length-`out` axis covers the input interval [j in/out, (j+1) in/out); its value is the
// average of the input over that interval, each input pixel i weighted by the length of
// [i, i+1) it shares with the interval. With both axes resampled this way, each output
// pixel is the area-weighted average of the input pixels it covers (separability of the
// 2-D box). Weights are exact rationals overlap / in with integer overlap, since in units
// of 1/(in*out) all interval ends are integers.
class AreaResampler {
 public:
  // Resamples in_rows x in_cols images to out_rows x out_cols (all >= 1).
  AreaResampler(int in_rows, int in_cols, int out_rows, int out_cols);

  // One channel: `in` is in_rows x in_cols row-major, `out` out_rows x out_cols;
  // `scratch` holds scratch_size() floats (reuse it across calls).
  void Resample(const float* in, float* out, float* scratch) const;
  int64_t scratch_size() const { return static_cast<int64_t>(in_rows_) * out_cols_; }

  int in_rows() const { return in_rows_; }
  int in_cols() const { return in_cols_; }
  int out_rows() const { return out_rows_; }
  int out_cols() const { return out_cols_; }

 private:
  // Sparse weights of one axis: output j uses inputs [first[j], first[j] + count[j]).
  struct Axis {
    std::vector<int> first;
    std::vector<int> count;
    std::vector<float> weights;  // count[j] entries per output, concatenated
    std::vector<int> offset;     // start of output j's weights
  };
  static Axis MakeAxis(int in, int out);

  int in_rows_, in_cols_, out_rows_, out_cols_;
  Axis rows_, cols_;
};

}  // namespace otgen::data::internal

#endif  // OTGEN_DATA_FILE_UTIL_H_
