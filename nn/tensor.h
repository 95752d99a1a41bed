// Tensor: otgen's dense float32 array (row-major, NCHW for images).
//
// A Tensor is a value handle on shared, 64-byte-aligned storage plus a shape. Copying a
// Tensor shares the storage (like a shared_ptr); `Clone()` copies the data. Tensors are
// always contiguous: `Reshape` and row slices (`Rows`) are views on the same storage,
// everything that reorders elements (Permute, Transpose) produces a new tensor. A Tensor
// carries no autodiff state; nn/autograd.h wraps it in a Var.
//
//   otgen::nn::Rng rng(42);
//   Tensor x = Tensor::Normal({200, 784}, 0.0f, 1.0f, rng);
//   Tensor first = x.Rows(0, 10);          // view of rows [0, 10)
//   Tensor flat = x.Reshape({200, 28, 28, 1});
//
// Shape errors on user-facing entry points (FromData, CheckedReshape) return
// InvalidArgumentError naming both shapes; the unchecked forms treat a mismatch as a
// programming error and abort with the same message.
#ifndef OTGEN_NN_TENSOR_H_
#define OTGEN_NN_TENSOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "nn/random.h"

namespace otgen::nn {

using Shape = std::vector<int64_t>;

// "[200, 784]"
std::string ShapeToString(const Shape& shape);
// Product of the dimensions (1 for a scalar shape {}).
int64_t NumElements(const Shape& shape);

class Tensor {
 public:
  // An undefined tensor (no storage); `defined()` is false.
  Tensor() = default;

  // Uninitialized storage of the given shape.
  static Tensor Empty(const Shape& shape);
  static Tensor Zeros(const Shape& shape);
  static Tensor Ones(const Shape& shape);
  static Tensor Full(const Shape& shape, float value);
  static Tensor Scalar(float value) { return Full({}, value); }
  // Copies `data` (row-major); its size must equal the number of elements of `shape`.
  static absl::StatusOr<Tensor> FromData(const Shape& shape, absl::Span<const float> data);
  // Like FromData, aborting on a size mismatch (for literals in code and tests).
  static Tensor FromVector(const Shape& shape, const std::vector<float>& data);
  // Seeded samples: uniform on [lo, hi), normal N(mean, std^2).
  static Tensor Uniform(const Shape& shape, float lo, float hi, Rng& rng);
  static Tensor Normal(const Shape& shape, float mean, float stddev, Rng& rng);
  // 0, 1, ..., n-1 as floats.
  static Tensor Arange(int64_t n);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  // Dimension `axis`; negative axes count from the end.
  int64_t dim(int axis) const;
  int64_t numel() const { return NumElements(shape_); }

  float* data() { return storage_.get() + offset_; }
  const float* data() const { return storage_.get() + offset_; }
  absl::Span<const float> span() const { return {data(), static_cast<size_t>(numel())}; }
  absl::Span<float> mutable_span() { return {data(), static_cast<size_t>(numel())}; }
  // Element at a multi-index (bounds-checked in debug builds).
  float at(std::initializer_list<int64_t> index) const;
  float& at(std::initializer_list<int64_t> index);
  // The value of a one-element tensor.
  float item() const;

  // A view with a new shape of the same size. One dimension may be -1 (inferred).
  Tensor Reshape(const Shape& shape) const;
  absl::StatusOr<Tensor> CheckedReshape(const Shape& shape) const;
  // A view of rows [begin, end) along axis 0.
  Tensor Rows(int64_t begin, int64_t end) const;
  // A deep copy.
  Tensor Clone() const;
  // Copies `other`'s data into this tensor's storage (equal numbers of elements).
  void CopyFrom(const Tensor& other);
  void Fill(float value);
  // True when both handles share the same storage and offset.
  bool SharesStorageWith(const Tensor& other) const {
    return storage_ == other.storage_ && offset_ == other.offset_;
  }

  std::string DebugString(int max_elements = 16) const;

 private:
  std::shared_ptr<float[]> storage_;
  int64_t offset_ = 0;
  Shape shape_;
};

// Resolves a possibly negative axis against `rank`; aborts when out of range.
int NormalizeAxis(int axis, int rank);

// Tensor storage of up to 64 MiB is recycled: a freed block is kept (up to 256 MiB in all;
// the least recently used sizes make room for new ones) and handed to the next allocation of
// the same size, which saves the page faults of fresh memory (and glibc's slow aligned path
// for small blocks) in training loops that allocate the same shapes every iteration.
// ReleaseCachedTensorMemory() frees every kept block and returns free heap memory to the
// system (malloc_trim); call it between phases with different shapes, e.g. after an
// evaluation model's one-off pass and before training. Returns the bytes of kept blocks it
// freed. Thread-safe.
size_t ReleaseCachedTensorMemory();
// Bytes currently kept for reuse.
size_t CachedTensorBytes();

// Aborts with `message` (file:line prefix) when `condition` is false. For programming
// errors (internal invariants, shapes the caller has already validated); user input is
// validated with absl::Status before it reaches such checks.
#define OTGEN_CHECK(condition, message)                                          \
  do {                                                                           \
    if (!(condition)) ::otgen::nn::internal::CheckFailed(__FILE__, __LINE__, #condition, (message)); \
  } while (0)

namespace internal {
// Tests: the cache's total and per-block limits (in bytes; releases the kept blocks).
void SetTensorCacheLimitsForTesting(size_t max_bytes, size_t max_block_bytes);
void ResetTensorCacheLimitsForTesting();
[[noreturn]] void CheckFailed(const char* file, int line, const char* condition,
                              const std::string& message);
}  // namespace internal

}  // namespace otgen::nn

#endif  // OTGEN_NN_TENSOR_H_
