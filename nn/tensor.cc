#include "nn/tensor.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace otgen::nn {

namespace internal {
void CheckFailed(const char* file, int line, const char* condition, const std::string& message) {
  std::fprintf(stderr, "%s:%d: check failed: %s: %s\n", file, line, condition, message.c_str());
  std::fflush(stderr);
  std::abort();
}
}  // namespace internal

std::string ShapeToString(const Shape& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int NormalizeAxis(int axis, int rank) {
  const int a = axis < 0 ? axis + rank : axis;
  OTGEN_CHECK(a >= 0 && a < rank, absl::StrCat("axis ", axis, " out of range for rank ", rank));
  return a;
}

namespace {

constexpr size_t kAlignment = 64;

// Tensor blocks are recycled instead of going back to glibc:
//   - Fresh large blocks come from the operating system (glibc mmaps anything above its
//     threshold, and trims the heap top when it frees) and cost a page fault per 4 KiB page on
//     first touch: ~20% of a DCGAN generator forward pass (three [200, 64, 28, 28] activations
//     of 40 MB each), and ~30% of a W2GAN 2-D iteration, whose [256, 128] activations
//     (128 KiB) sit right at glibc's initial mmap threshold.
//   - Small blocks: 64-byte aligned allocations bypass glibc's per-thread cache and take its
//     locked memalign path (split, coalesce, consolidate), ~4% of a W2GAN 2-D iteration
//     (biases, batch-norm statistics, [256, 1] potentials and their gradients).
// Freed blocks are kept per exact size and handed out again for an allocation of the same size
// -- a training loop allocates the same shapes every iteration.
//   - At most kDefaultMaxCachedBytes are kept in all. When a freed block does not fit, the
//     blocks of the least recently used other sizes are freed to make room, so sizes that
//     only a finished phase used (data loading, an evaluation model) do not hold the space.
//   - Blocks over kDefaultMaxCachedBlockBytes are not kept: so few are freed that their
//     page faults do not matter, and one of them (say the 188 MB float copy of MNIST that a
//     loader frees) would otherwise take most of the cache.
// (Not under AddressSanitizer, so that it still sees every use after free.)
constexpr size_t kDefaultMaxCachedBytes = size_t{256} << 20;
constexpr size_t kDefaultMaxCachedBlockBytes = size_t{64} << 20;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kCacheBlocks = false;
#else
constexpr bool kCacheBlocks = true;
#endif

class TensorBlockCache {
 public:
  static TensorBlockCache& Get() {
    static TensorBlockCache* const cache = new TensorBlockCache();
    return *cache;
  }

  // A cached block of exactly `bytes` bytes, or nullptr.
  void* Take(size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = buckets_.find(bytes);
    if (it == buckets_.end() || it->second.blocks.empty()) return nullptr;
    void* p = it->second.blocks.back();
    it->second.blocks.pop_back();
    it->second.last_use = ++tick_;
    cached_bytes_ -= bytes;
    return p;
  }

  // Keeps `p` for reuse, evicting blocks of the least recently used other sizes when the
  // total would exceed the cap; frees `p` when it is too large or cannot be made to fit.
  void Give(void* p, size_t bytes) {
    std::vector<void*> evicted;
    bool kept = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (bytes <= max_block_bytes_ && bytes <= max_bytes_) {
        while (cached_bytes_ + bytes > max_bytes_) {
          Bucket* oldest = nullptr;
          size_t oldest_size = 0;
          for (auto& [size, bucket] : buckets_) {
            if (size == bytes || bucket.blocks.empty()) continue;
            if (oldest == nullptr || bucket.last_use < oldest->last_use) {
              oldest = &bucket;
              oldest_size = size;
            }
          }
          if (oldest == nullptr) break;
          evicted.push_back(oldest->blocks.back());
          oldest->blocks.pop_back();
          cached_bytes_ -= oldest_size;
        }
        if (cached_bytes_ + bytes <= max_bytes_) {
          Bucket& bucket = buckets_[bytes];
          bucket.blocks.push_back(p);
          bucket.last_use = ++tick_;
          cached_bytes_ += bytes;
          kept = true;
        }
      }
    }
    for (void* q : evicted) std::free(q);
    if (!kept) std::free(p);
  }

  // Frees every kept block; returns their total size.
  size_t ReleaseAll() {
    absl::flat_hash_map<size_t, Bucket> buckets;
    size_t released = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      buckets.swap(buckets_);
      released = cached_bytes_;
      cached_bytes_ = 0;
    }
    for (auto& [bytes, bucket] : buckets) {
      for (void* p : bucket.blocks) std::free(p);
    }
    return released;
  }

  size_t cached_bytes() {
    std::lock_guard<std::mutex> lock(mu_);
    return cached_bytes_;
  }

  void SetLimits(size_t max_bytes, size_t max_block_bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      max_bytes_ = max_bytes;
      max_block_bytes_ = max_block_bytes;
    }
    ReleaseAll();
  }

 private:
  struct Bucket {
    std::vector<void*> blocks;  // free blocks of this size
    uint64_t last_use = 0;      // tick of the last Give or Take of this size
  };

  std::mutex mu_;
  absl::flat_hash_map<size_t, Bucket> buckets_;
  size_t cached_bytes_ = 0;
  uint64_t tick_ = 0;
  size_t max_bytes_ = kDefaultMaxCachedBytes;
  size_t max_block_bytes_ = kDefaultMaxCachedBlockBytes;
};

std::shared_ptr<float[]> Allocate(int64_t n) {
  const size_t bytes = ((std::max<int64_t>(n, 1) * sizeof(float) + kAlignment - 1) / kAlignment) * kAlignment;
  const bool cacheable = kCacheBlocks;
  void* p = cacheable ? TensorBlockCache::Get().Take(bytes) : nullptr;
  if (p == nullptr) p = std::aligned_alloc(kAlignment, bytes);
  OTGEN_CHECK(p != nullptr, absl::StrCat("out of memory allocating ", bytes, " bytes"));
  if (!cacheable) return std::shared_ptr<float[]>(static_cast<float*>(p), [](float* q) { std::free(q); });
  return std::shared_ptr<float[]>(static_cast<float*>(p),
                                  [bytes](float* q) { TensorBlockCache::Get().Give(q, bytes); });
}

void CheckShape(const Shape& shape) {
  for (int64_t d : shape) {
    OTGEN_CHECK(d >= 0, absl::StrCat("negative dimension in shape ", ShapeToString(shape)));
  }
}

}  // namespace

Tensor Tensor::Empty(const Shape& shape) {
  CheckShape(shape);
  Tensor t;
  t.storage_ = Allocate(NumElements(shape));
  t.shape_ = shape;
  return t;
}

Tensor Tensor::Zeros(const Shape& shape) { return Full(shape, 0.0f); }
Tensor Tensor::Ones(const Shape& shape) { return Full(shape, 1.0f); }

Tensor Tensor::Full(const Shape& shape, float value) {
  Tensor t = Empty(shape);
  t.Fill(value);
  return t;
}

absl::StatusOr<Tensor> Tensor::FromData(const Shape& shape, absl::Span<const float> data) {
  for (int64_t d : shape) {
    if (d < 0) return absl::InvalidArgumentError(absl::StrCat("negative dimension in shape ", ShapeToString(shape)));
  }
  if (static_cast<int64_t>(data.size()) != NumElements(shape)) {
    return absl::InvalidArgumentError(absl::StrCat("data has ", data.size(), " elements but shape ",
                                                   ShapeToString(shape), " needs ", NumElements(shape)));
  }
  Tensor t = Empty(shape);
  if (!data.empty()) std::memcpy(t.data(), data.data(), data.size() * sizeof(float));
  return t;
}

Tensor Tensor::FromVector(const Shape& shape, const std::vector<float>& data) {
  absl::StatusOr<Tensor> t = FromData(shape, data);
  OTGEN_CHECK(t.ok(), std::string(t.status().message()));
  return *std::move(t);
}

Tensor Tensor::Uniform(const Shape& shape, float lo, float hi, Rng& rng) {
  Tensor t = Empty(shape);
  float* p = t.data();
  for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = rng.Uniform(lo, hi);
  return t;
}

Tensor Tensor::Normal(const Shape& shape, float mean, float stddev, Rng& rng) {
  Tensor t = Empty(shape);
  float* p = t.data();
  for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = mean + stddev * rng.Normal();
  return t;
}

Tensor Tensor::Arange(int64_t n) {
  Tensor t = Empty({n});
  for (int64_t i = 0; i < n; ++i) t.data()[i] = static_cast<float>(i);
  return t;
}

int64_t Tensor::dim(int axis) const { return shape_[NormalizeAxis(axis, rank())]; }

namespace {
int64_t FlatIndex(const Shape& shape, std::initializer_list<int64_t> index) {
  OTGEN_CHECK(index.size() == shape.size(),
              absl::StrCat("index of rank ", index.size(), " for shape ", ShapeToString(shape)));
  int64_t flat = 0;
  int k = 0;
  for (int64_t i : index) {
    OTGEN_CHECK(i >= 0 && i < shape[k], absl::StrCat("index ", i, " out of range in axis ", k, " of shape ",
                                                      ShapeToString(shape)));
    flat = flat * shape[k] + i;
    ++k;
  }
  return flat;
}
}  // namespace

float Tensor::at(std::initializer_list<int64_t> index) const { return data()[FlatIndex(shape_, index)]; }
float& Tensor::at(std::initializer_list<int64_t> index) { return data()[FlatIndex(shape_, index)]; }

float Tensor::item() const {
  OTGEN_CHECK(numel() == 1, absl::StrCat("item() of a tensor of shape ", ShapeToString(shape_)));
  return data()[0];
}

absl::StatusOr<Tensor> Tensor::CheckedReshape(const Shape& shape) const {
  Shape resolved = shape;
  int inferred = -1;
  int64_t known = 1;
  for (size_t i = 0; i < resolved.size(); ++i) {
    if (resolved[i] == -1) {
      if (inferred >= 0) {
        return absl::InvalidArgumentError(absl::StrCat("reshape to ", ShapeToString(shape), ": more than one -1"));
      }
      inferred = static_cast<int>(i);
    } else if (resolved[i] < 0) {
      return absl::InvalidArgumentError(absl::StrCat("reshape to ", ShapeToString(shape), ": negative dimension"));
    } else {
      known *= resolved[i];
    }
  }
  if (inferred >= 0) {
    if (known == 0 || numel() % known != 0) {
      return absl::InvalidArgumentError(absl::StrCat("cannot reshape ", ShapeToString(shape_), " to ",
                                                     ShapeToString(shape)));
    }
    resolved[inferred] = numel() / known;
  }
  if (NumElements(resolved) != numel()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot reshape ", ShapeToString(shape_), " (", numel(),
                                                   " elements) to ", ShapeToString(shape)));
  }
  Tensor t = *this;
  t.shape_ = std::move(resolved);
  return t;
}

Tensor Tensor::Reshape(const Shape& shape) const {
  absl::StatusOr<Tensor> t = CheckedReshape(shape);
  OTGEN_CHECK(t.ok(), std::string(t.status().message()));
  return *std::move(t);
}

Tensor Tensor::Rows(int64_t begin, int64_t end) const {
  OTGEN_CHECK(rank() >= 1 && 0 <= begin && begin <= end && end <= shape_[0],
              absl::StrCat("rows [", begin, ", ", end, ") of shape ", ShapeToString(shape_)));
  Tensor t = *this;
  const int64_t row = shape_[0] == 0 ? 0 : numel() / shape_[0];
  t.offset_ += begin * row;
  t.shape_[0] = end - begin;
  return t;
}

Tensor Tensor::Clone() const {
  if (!defined()) return Tensor();
  Tensor t = Empty(shape_);
  if (numel() > 0) std::memcpy(t.data(), data(), numel() * sizeof(float));
  return t;
}

void Tensor::CopyFrom(const Tensor& other) {
  OTGEN_CHECK(numel() == other.numel(), absl::StrCat("CopyFrom ", ShapeToString(other.shape_), " into ",
                                                     ShapeToString(shape_)));
  if (numel() > 0 && data() != other.data()) std::memmove(data(), other.data(), numel() * sizeof(float));
}

void Tensor::Fill(float value) {
  float* p = data();
  for (int64_t i = 0, n = numel(); i < n; ++i) p[i] = value;
}

std::string Tensor::DebugString(int max_elements) const {
  if (!defined()) return "Tensor(undefined)";
  std::string s = absl::StrCat("Tensor(", ShapeToString(shape_), ", [");
  const int64_t n = std::min<int64_t>(numel(), max_elements);
  for (int64_t i = 0; i < n; ++i) absl::StrAppend(&s, i ? ", " : "", data()[i]);
  if (numel() > n) absl::StrAppend(&s, ", ...");
  absl::StrAppend(&s, "])");
  return s;
}

size_t ReleaseCachedTensorMemory() {
  const size_t released = TensorBlockCache::Get().ReleaseAll();
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
  return released;
}

size_t CachedTensorBytes() { return TensorBlockCache::Get().cached_bytes(); }

namespace internal {
void SetTensorCacheLimitsForTesting(size_t max_bytes, size_t max_block_bytes) {
  TensorBlockCache::Get().SetLimits(max_bytes, max_block_bytes);
}
void ResetTensorCacheLimitsForTesting() {
  TensorBlockCache::Get().SetLimits(kDefaultMaxCachedBytes, kDefaultMaxCachedBlockBytes);
}
}  // namespace internal

}  // namespace otgen::nn
