#include "nn/tensor.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace otgen::nn {
namespace {

TEST(TensorTest, CreationAndAlignment) {
  Tensor z = Tensor::Zeros({3, 5});
  EXPECT_EQ(z.shape(), (Shape{3, 5}));
  EXPECT_EQ(z.numel(), 15);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(z.data()) % 64, 0u);
  for (float v : z.span()) EXPECT_EQ(v, 0.0f);
  Tensor f = Tensor::Full({2}, 3.5f);
  EXPECT_EQ(f.at({1}), 3.5f);
  EXPECT_EQ(Tensor::Scalar(2.0f).item(), 2.0f);
  EXPECT_EQ(Tensor::Scalar(2.0f).rank(), 0);
  Tensor a = Tensor::Arange(4);
  EXPECT_EQ(a.at({3}), 3.0f);
}

TEST(TensorTest, FromDataChecksSize) {
  auto ok = Tensor::FromData({2, 2}, std::vector<float>{1, 2, 3, 4});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->at({1, 0}), 3.0f);
  auto bad = Tensor::FromData({2, 3}, std::vector<float>{1, 2, 3, 4});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("[2, 3]"), std::string::npos);
}

TEST(TensorTest, ReshapeSharesStorage) {
  Tensor x = Tensor::FromVector({2, 3}, {0, 1, 2, 3, 4, 5});
  Tensor y = x.Reshape({3, -1});
  EXPECT_EQ(y.shape(), (Shape{3, 2}));
  y.at({2, 1}) = 50;
  EXPECT_EQ(x.at({1, 2}), 50.0f);
  auto bad = x.CheckedReshape({4, 2});
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("[2, 3]"), std::string::npos);
  EXPECT_NE(bad.status().message().find("[4, 2]"), std::string::npos);
}

TEST(TensorTest, RowsIsAView) {
  Tensor x = Tensor::FromVector({3, 2}, {0, 1, 2, 3, 4, 5});
  Tensor r = x.Rows(1, 3);
  EXPECT_EQ(r.shape(), (Shape{2, 2}));
  EXPECT_EQ(r.at({0, 0}), 2.0f);
  r.at({1, 1}) = -1;
  EXPECT_EQ(x.at({2, 1}), -1.0f);
  Tensor c = x.Clone();
  c.at({0, 0}) = 9;
  EXPECT_EQ(x.at({0, 0}), 0.0f);
}

TEST(TensorTest, SeededSamplingIsReproducible) {
  Rng r1(3), r2(3);
  Tensor a = Tensor::Normal({100}, 1.0f, 2.0f, r1);
  Tensor b = Tensor::Normal({100}, 1.0f, 2.0f, r2);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.at({i}), b.at({i}));
  Tensor u = Tensor::Uniform({1000}, -1.0f, 1.0f, r1);
  for (float v : u.span()) {
    EXPECT_GE(v, -1.0f);
    EXPECT_LT(v, 1.0f);
  }
}

TEST(TensorDeathTest, ShapeMismatchAbortsWithBothShapes) {
  Tensor x = Tensor::Zeros({2, 3});
  EXPECT_DEATH(x.Reshape({5}), "\\[2, 3\\].*\\[5\\]");
}

TEST(TensorTest, ReleaseCachedTensorMemoryFreesKeptBlocks) {
  ReleaseCachedTensorMemory();
  EXPECT_EQ(CachedTensorBytes(), 0u);
  const int64_t n = 300000;  // 1.2 MB, a size no other test of this binary allocates
  {
    Tensor a = Tensor::Full({n}, 3.0f);
    EXPECT_EQ(CachedTensorBytes(), 0u);
  }
#if defined(__SANITIZE_ADDRESS__)
  // Without the cache (AddressSanitizer builds) nothing is kept.
  EXPECT_EQ(CachedTensorBytes(), 0u);
#else
  const size_t bytes = static_cast<size_t>(n) * sizeof(float);
  EXPECT_EQ(CachedTensorBytes(), bytes);
  // A block of the same size is reused, and given back again when freed.
  {
    Tensor b = Tensor::Zeros({n});
    EXPECT_EQ(CachedTensorBytes(), 0u);
    EXPECT_EQ(b.data()[n - 1], 0.0f);
  }
  EXPECT_EQ(ReleaseCachedTensorMemory(), bytes);
  // Small blocks too (rounded up to the 64-byte alignment).
  { Tensor small = Tensor::Full({5}, 1.0f); }
  EXPECT_EQ(CachedTensorBytes(), 64u);
  { Tensor small = Tensor::Zeros({5}); }
  EXPECT_EQ(ReleaseCachedTensorMemory(), 64u);
#endif
  EXPECT_EQ(CachedTensorBytes(), 0u);
  // Storage allocated after a release is fresh and usable.
  Tensor c = Tensor::Full({n}, 2.0f);
  EXPECT_EQ(c.data()[0], 2.0f);
  EXPECT_EQ(c.data()[n - 1], 2.0f);
}

#if !defined(__SANITIZE_ADDRESS__)
// The cache keeps at most its total limit, evicting the least recently used other sizes, and
// never keeps a block over its per-block limit. Hits are visible as CachedTensorBytes()
// dropping by the block's size when a tensor of that size is allocated.
TEST(TensorTest, StorageCacheEvictsTheLeastRecentlyUsedSizes) {
  constexpr size_t kKiB = 1024;
  internal::SetTensorCacheLimitsForTesting(400 * kKiB, 200 * kKiB);
  const int64_t n1 = 25 * 1024, n2 = 37 * 1024, n3 = 45 * 1024, big = 60 * 1024;  // 100, 148, 180, 240 KiB
  const size_t b1 = n1 * 4, b2 = n2 * 4, b3 = n3 * 4;
  { Tensor t = Tensor::Zeros({big}); }
  EXPECT_EQ(CachedTensorBytes(), 0u) << "a block over the per-block limit is not kept";
  { Tensor t = Tensor::Zeros({n1}); }
  { Tensor t = Tensor::Zeros({n2}); }
  EXPECT_EQ(CachedTensorBytes(), b1 + b2);
  // 100 + 148 + 180 KiB > 400 KiB: the block of the oldest size (n1) makes room.
  { Tensor t = Tensor::Zeros({n3}); }
  EXPECT_EQ(CachedTensorBytes(), b2 + b3);
  {
    Tensor t = Tensor::Zeros({n1});  // a miss: n1 was evicted
    EXPECT_EQ(CachedTensorBytes(), b2 + b3);
  }
  // Giving n1 back evicts n2 now (n3 was used more recently).
  EXPECT_EQ(CachedTensorBytes(), b1 + b3);
  {
    Tensor t = Tensor::Zeros({n3});  // a hit
    EXPECT_EQ(CachedTensorBytes(), b1);
    t.data()[n3 - 1] = 1.0f;
  }
  {
    Tensor t = Tensor::Full({n1}, 5.0f);  // a hit, fully rewritten
    EXPECT_EQ(CachedTensorBytes(), b3);
    EXPECT_EQ(t.data()[0], 5.0f);
    EXPECT_EQ(t.data()[n1 - 1], 5.0f);
  }
  internal::ResetTensorCacheLimitsForTesting();
  EXPECT_EQ(CachedTensorBytes(), 0u);
}
#endif

}  // namespace
}  // namespace otgen::nn
