#include "data/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "nn/tensor.h"

namespace otgen::data::internal {
namespace {

absl::Status OpenError(const std::string& path, int err) {
  const std::string reason = std::strerror(err);
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(absl::StrCat(path, ": file not found"));
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(absl::StrCat(path, ": cannot open for reading: ", reason));
    case EISDIR:
      return absl::InvalidArgumentError(absl::StrCat(path, ": is a directory, expected a file"));
    default:
      return absl::UnavailableError(absl::StrCat(path, ": cannot open: ", reason));
  }
}

// Closes a file descriptor on scope exit.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

absl::StatusOr<uint64_t> RegularFileSize(const std::string& path, int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return OpenError(path, errno);
  if (S_ISDIR(st.st_mode)) return absl::InvalidArgumentError(absl::StrCat(path, ": is a directory, expected a file"));
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": is not a regular file"));
  }
  return static_cast<uint64_t>(st.st_size);
}

}  // namespace

absl::StatusOr<FileBytes> ReadFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return OpenError(path, errno);
  FdCloser closer(fd);
  absl::StatusOr<uint64_t> size = RegularFileSize(path, fd);
  if (!size.ok()) return size.status();
  std::unique_ptr<uint8_t[]> data(new uint8_t[std::max<uint64_t>(*size, 1)]);
  uint64_t done = 0;
  while (done < *size) {
    const ssize_t got = ::read(fd, data.get() + done, *size - done);
    if (got < 0) {
      if (errno == EINTR) continue;
      return absl::DataLossError(
          absl::StrCat(path, ": read failed after ", done, " of ", *size, " bytes: ", std::strerror(errno)));
    }
    if (got == 0) {
      return absl::DataLossError(
          absl::StrCat(path, ": file shrank while reading (got ", done, " of ", *size, " bytes)"));
    }
    done += static_cast<uint64_t>(got);
  }
  return FileBytes(std::move(data), *size);
}

absl::StatusOr<uint64_t> FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return OpenError(path, errno);
  if (S_ISDIR(st.st_mode)) return absl::InvalidArgumentError(absl::StrCat(path, ": is a directory, expected a file"));
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError(absl::StrCat(path, ": is not a regular file"));
  return static_cast<uint64_t>(st.st_size);
}

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return absl::StrCat(dir, name);
  return absl::StrCat(dir, "/", name);
}

void BytesToPixels(const uint8_t* in, int64_t n, PixelScaling scaling, float* out) {
  // A 256-entry table holds the correctly rounded values; the loop is a gather.
  float table[256];
  for (int v = 0; v < 256; ++v) {
    const float unit = static_cast<float>(v) / 255.0f;
    table[v] = scaling == PixelScaling::kUnit ? unit : 2.0f * unit - 1.0f;
  }
  for (int64_t i = 0; i < n; ++i) out[i] = table[in[i]];
}

void ApplyScaling(PixelScaling scaling, float* values, int64_t n) {
  if (scaling == PixelScaling::kUnit) return;
  for (int64_t i = 0; i < n; ++i) values[i] = 2.0f * values[i] - 1.0f;
}

AreaResampler::Axis AreaResampler::MakeAxis(int in, int out) {
  // In units of 1 / (in * out): output j spans [j * in, (j + 1) * in) and input i spans
  // [i * out, (i + 1) * out). The overlap (an integer) over `in` is input i's weight.
  Axis axis;
  axis.first.resize(out);
  axis.count.resize(out);
  axis.offset.resize(out);
  const int64_t in64 = in, out64 = out;
  for (int64_t j = 0; j < out64; ++j) {
    const int64_t lo = j * in64, hi = (j + 1) * in64;
    const int64_t i_begin = lo / out64;
    const int64_t i_end = std::min<int64_t>(in64, (hi + out64 - 1) / out64);
    axis.first[j] = static_cast<int>(i_begin);
    axis.offset[j] = static_cast<int>(axis.weights.size());
    int count = 0;
    for (int64_t i = i_begin; i < i_end; ++i) {
      const int64_t overlap = std::min(hi, (i + 1) * out64) - std::max(lo, i * out64);
      if (overlap <= 0) continue;
      axis.weights.push_back(static_cast<float>(static_cast<double>(overlap) / static_cast<double>(in64)));
      ++count;
    }
    axis.count[j] = count;
  }
  return axis;
}

AreaResampler::AreaResampler(int in_rows, int in_cols, int out_rows, int out_cols)
    : in_rows_(in_rows), in_cols_(in_cols), out_rows_(out_rows), out_cols_(out_cols) {
  OTGEN_CHECK(
      in_rows >= 1 && in_cols >= 1 && out_rows >= 1 && out_cols >= 1,
      absl::StrCat("AreaResampler: sizes must be >= 1, got ", in_rows, "x", in_cols, " -> ", out_rows, "x", out_cols));
  rows_ = MakeAxis(in_rows, out_rows);
  cols_ = MakeAxis(in_cols, out_cols);
}

void AreaResampler::Resample(const float* in, float* out, float* scratch) const {
  // Columns first: scratch[r][oc] = sum_c w_col[oc][c] in[r][c].
  for (int r = 0; r < in_rows_; ++r) {
    const float* row = in + static_cast<int64_t>(r) * in_cols_;
    float* t = scratch + static_cast<int64_t>(r) * out_cols_;
    for (int oc = 0; oc < out_cols_; ++oc) {
      const float* w = cols_.weights.data() + cols_.offset[oc];
      const float* x = row + cols_.first[oc];
      float acc = 0.0f;
      for (int k = 0; k < cols_.count[oc]; ++k) acc += w[k] * x[k];
      t[oc] = acc;
    }
  }
  // Then rows: out[or][oc] = sum_r w_row[or][r] scratch[r][oc].
  for (int orow = 0; orow < out_rows_; ++orow) {
    float* o = out + static_cast<int64_t>(orow) * out_cols_;
    std::fill(o, o + out_cols_, 0.0f);
    const float* w = rows_.weights.data() + rows_.offset[orow];
    for (int k = 0; k < rows_.count[orow]; ++k) {
      const float* t = scratch + static_cast<int64_t>(rows_.first[orow] + k) * out_cols_;
      for (int oc = 0; oc < out_cols_; ++oc) o[oc] += w[k] * t[oc];
    }
  }
}

}  // namespace otgen::data::internal
