#include "nn/onednn_context.h"

#include <vector>

#include "gtest/gtest.h"

namespace otgen::nn {
namespace {

using dnnl::memory;

dnnl::eltwise_forward MakeLinear(const memory::desc& md, float alpha, float beta) {
  const dnnl::engine& engine = OneDnnContext::Get().engine();
  return dnnl::eltwise_forward(dnnl::eltwise_forward::primitive_desc(
      dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::eltwise_linear, md, alpha,
                                  beta),
      engine));
}

TEST(OneDnnContextTest, SmallWorkRunsSeriallyInScope) {
  SetNumThreads(2);
  {
    const ScopedSerialBelow serial(kMinParallelElements - 1, kMinParallelElements);
    EXPECT_EQ(GetNumThreads(), 1);
    {
      const ScopedSerialBelow nested(1, kMinParallelElements);  // already serial: no change
      EXPECT_EQ(GetNumThreads(), 1);
    }
    EXPECT_EQ(GetNumThreads(), 1);
  }
  EXPECT_EQ(GetNumThreads(), 2);
  {
    const ScopedSerialBelow parallel(kMinParallelMacs, kMinParallelMacs);
    EXPECT_EQ(GetNumThreads(), 2);
  }
  EXPECT_EQ(GetNumThreads(), 2);
}

TEST(OneDnnContextTest, GetReturnsOneCpuContext) {
  OneDnnContext& a = OneDnnContext::Get();
  OneDnnContext& b = OneDnnContext::Get();
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(a.engine().get_kind(), dnnl::engine::kind::cpu);
  EXPECT_EQ(a.stream().get_engine().get_kind(), dnnl::engine::kind::cpu);
}

TEST(OneDnnContextTest, GetOrCreateBuildsOncePerKey) {
  OneDnnContext& ctx = OneDnnContext::Get();
  const memory::desc md({4}, memory::data_type::f32, memory::dims{1});
  int made = 0;
  const auto make = [&] {
    ++made;
    return MakeLinear(md, 2.0f, 1.0f);
  };
  const size_t before = ctx.cache_size();
  dnnl::eltwise_forward first = ctx.GetOrCreate<dnnl::eltwise_forward>("onednn_context_test|linear|2,1", make);
  EXPECT_EQ(made, 1);
  EXPECT_EQ(ctx.cache_size(), before + 1);
  dnnl::eltwise_forward second = ctx.GetOrCreate<dnnl::eltwise_forward>("onednn_context_test|linear|2,1", make);
  EXPECT_EQ(made, 1);
  EXPECT_EQ(ctx.cache_size(), before + 1);
  EXPECT_EQ(first.get(), second.get());  // the same underlying primitive

  ctx.GetOrCreate<dnnl::eltwise_forward>("onednn_context_test|linear|3,0", [&] {
    ++made;
    return MakeLinear(md, 3.0f, 0.0f);
  });
  EXPECT_EQ(made, 2);
  EXPECT_EQ(ctx.cache_size(), before + 2);

  // The cached primitive computes 2x + 1 on caller-owned buffers.
  std::vector<float> x = {0.0f, 1.0f, -2.0f, 0.5f};
  std::vector<float> y(4, -99.0f);
  second.execute(ctx.stream(), {{DNNL_ARG_SRC, memory(md, ctx.engine(), x.data())},
                                {DNNL_ARG_DST, memory(md, ctx.engine(), y.data())}});
  ctx.stream().wait();
  EXPECT_EQ(y, (std::vector<float>{1.0f, 3.0f, -3.0f, 2.0f}));
}

TEST(OneDnnContextTest, SetNumThreads) {
  const int original = GetNumThreads();
  ASSERT_GE(original, 1);
  SetNumThreads(1);
  EXPECT_EQ(GetNumThreads(), 1);
  SetNumThreads(3);
  EXPECT_EQ(GetNumThreads(), 3);
  SetNumThreads(0);  // keeps the current setting
  EXPECT_EQ(GetNumThreads(), 3);
  SetNumThreads(-2);
  EXPECT_EQ(GetNumThreads(), 3);
  SetNumThreads(original);
  EXPECT_EQ(GetNumThreads(), original);
}

}  // namespace
}  // namespace otgen::nn
