#include "nn/tensor_math.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "Eigen/Core"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nn/column_sums.h"
#include "nn/onednn_context.h"
#include "nn/precision.h"
#include "nn/thin_product.h"
#include "nn/work_counter.h"
#include "oneapi/dnnl/dnnl.hpp"


namespace otgen::nn::math {

namespace internal {
namespace {
std::atomic<KernelPath> kernel_path{KernelPath::kAuto};
}  // namespace

void SetKernelPath(KernelPath path) { kernel_path.store(path, std::memory_order_relaxed); }
KernelPath GetKernelPath() { return kernel_path.load(std::memory_order_relaxed); }
}  // namespace internal

namespace {

using dnnl::algorithm;
using dnnl::memory;
using Dims = memory::dims;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Sizes below which kAuto runs the loops: a primitive call costs ~1 us (argument maps,
// memory objects, cache lookup), which is what ~500 additions or ~50 libm calls cost.
constexpr int64_t kMinPrimitiveElements = 512;        // arithmetic, comparisons, reductions
constexpr int64_t kMinPrimitiveTranscendental = 64;   // exp, log, tanh, pow, softmax
constexpr int64_t kMinPrimitiveMatMulMacs = 8192;     // batch * M * N * K
constexpr int64_t kMinPrimitiveReductionCount = 32;   // elements reduced into each output

bool UsePrimitive(int64_t size, int64_t threshold) {
  switch (internal::GetKernelPath()) {
    case internal::KernelPath::kPrimitive:
      return true;
    case internal::KernelPath::kLoop:
      return false;
    case internal::KernelPath::kAuto:
      break;
  }
  return size >= threshold;
}

// ---------------------------------------------------------------------------------------
// Shape helpers.

std::string S(const Shape& shape) { return ShapeToString(shape); }

// `shape` with leading 1s up to `rank`.
Shape PadLeft(const Shape& shape, size_t rank) {
  Shape out(rank - shape.size(), 1);
  out.insert(out.end(), shape.begin(), shape.end());
  return out;
}

Shape ContiguousStrides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

// Element strides that read a contiguous tensor of `shape` as if broadcast to `out`
// (0 along stretched and prepended axes).
Shape BroadcastStrides(const Shape& shape, const Shape& out) {
  const Shape padded = PadLeft(shape, out.size());
  Shape strides = ContiguousStrides(padded);
  for (size_t i = 0; i < out.size(); ++i) {
    if (padded[i] == 1 && out[i] != 1) strides[i] = 0;
  }
  return strides;
}

// The product of shape[begin, end).
int64_t Product(const Shape& shape, int begin, int end) {
  int64_t p = 1;
  for (int i = begin; i < end; ++i) p *= shape[i];
  return p;
}

// ---------------------------------------------------------------------------------------
// Strided walks: the loop kernels' common skeleton.
//
// `StridedLayout<N>` describes N operands walked together in row-major order over `dims`,
// operand k at element offset sum_i index[i] * strides[k][i]. Collapse drops unit axes
// and merges adjacent axes that every operand traverses contiguously, so most walks end
// with one long innermost run.

template <size_t N>
struct StridedLayout {
  Shape dims;
  std::array<Shape, N> strides;
};

template <size_t N>
StridedLayout<N> Collapse(const Shape& dims, const std::array<Shape, N>& strides) {
  StridedLayout<N> out;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == 1) continue;
    bool merge = !out.dims.empty();
    for (size_t k = 0; k < N && merge; ++k) {
      merge = out.strides[k].back() == strides[k][i] * dims[i];
    }
    if (merge) {
      out.dims.back() *= dims[i];
      for (size_t k = 0; k < N; ++k) out.strides[k].back() = strides[k][i];
      continue;
    }
    out.dims.push_back(dims[i]);
    for (size_t k = 0; k < N; ++k) out.strides[k].push_back(strides[k][i]);
  }
  if (out.dims.empty()) {
    out.dims.push_back(1);
    for (size_t k = 0; k < N; ++k) out.strides[k].push_back(0);
  }
  return out;
}

// Calls run(offsets, count, inner_strides) for every innermost run of the layout.
// The layout must have no zero dimension.
template <size_t N, typename Run>
void ForEachRun(const StridedLayout<N>& layout, Run&& run) {
  const int rank = static_cast<int>(layout.dims.size());
  const int64_t inner = layout.dims[rank - 1];
  std::array<int64_t, N> inner_strides;
  for (size_t k = 0; k < N; ++k) inner_strides[k] = layout.strides[k][rank - 1];
  const int64_t outer = Product(layout.dims, 0, rank - 1);
  std::array<int64_t, N> offsets{};
  std::vector<int64_t> index(rank, 0);
  for (int64_t o = 0; o < outer; ++o) {
    run(offsets, inner, inner_strides);
    for (int d = rank - 2; d >= 0; --d) {
      for (size_t k = 0; k < N; ++k) offsets[k] += layout.strides[k][d];
      if (++index[d] < layout.dims[d]) break;
      for (size_t k = 0; k < N; ++k) offsets[k] -= layout.strides[k][d] * layout.dims[d];
      index[d] = 0;
    }
  }
}

// out = op(a, b) with broadcasting; `out` has the broadcast shape and is not empty.
template <typename Op>
void BroadcastLoop(const Tensor& a, const Tensor& b, Tensor& out, Op op) {
  const Shape& shape = out.shape();
  const StridedLayout<3> layout = Collapse<3>(
      shape, {ContiguousStrides(shape), BroadcastStrides(a.shape(), shape), BroadcastStrides(b.shape(), shape)});
  const float* pa = a.data();
  const float* pb = b.data();
  float* po = out.data();
  ForEachRun(layout, [&](const std::array<int64_t, 3>& off, int64_t n, const std::array<int64_t, 3>& st) {
    float* o = po + off[0];
    const float* x = pa + off[1];
    const float* y = pb + off[2];
    if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = op(x[i], y[i]);
    } else if (st[0] == 1 && st[1] == 0 && st[2] == 1) {
      const float xv = *x;
      for (int64_t i = 0; i < n; ++i) o[i] = op(xv, y[i]);
    } else if (st[0] == 1 && st[1] == 1 && st[2] == 0) {
      const float yv = *y;
      for (int64_t i = 0; i < n; ++i) o[i] = op(x[i], yv);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * st[0]] = op(x[i * st[1]], y[i * st[2]]);
    }
  });
}

// ---------------------------------------------------------------------------------------
// oneDNN plumbing.

memory::desc PlainDesc(const Dims& dims) {
  return memory::desc(dims, memory::data_type::f32, ContiguousStrides(dims));
}

// A memory object on the tensor's own buffer (no copy). oneDNN takes a non-const handle
// for inputs too; it does not write to them.
memory Wrap(const memory::desc& md, const float* data) {
  return memory(md, OneDnnContext::Get().engine(), const_cast<float*>(data));
}

void Execute(const dnnl::primitive& primitive, const std::unordered_map<int, memory>& args) {
  OneDnnContext& ctx = OneDnnContext::Get();
  primitive.execute(ctx.stream(), args);
  ctx.stream().wait();
}

// Cache keys: op, parameters, dimensions and the thread count (some implementations fix
// their work partition when the primitive is created).
void AppendDims(std::string* key, const Dims& dims) { absl::StrAppend(key, "[", absl::StrJoin(dims, ","), "]"); }
std::string FloatBits(float v) { return absl::StrCat(std::bit_cast<uint32_t>(v)); }
std::string NewKey(const char* op) { return absl::StrCat(op, "|t", GetNumThreads(), "|"); }

// The primitive for `pd`, or an empty handle when oneDNN only has its reference
// implementation, which is far slower than this file's loops.
template <typename Primitive, typename PrimitiveDesc>
Primitive UnlessReference(const PrimitiveDesc& pd) {
  const std::string impl = pd.impl_info_str();
  if (impl.rfind("ref", 0) == 0) return Primitive();
  return Primitive(pd);
}

// Optional post-ops fused into a binary primitive: an element-wise function, or a second
// binary operation with `operand`, which broadcasts like src1 and has its shape.
struct PostOp {
  bool enabled = false;
  algorithm alg = algorithm::eltwise_linear;
  float alpha = 0.0f;
  float beta = 0.0f;
  const Tensor* operand = nullptr;  // set for a binary post-op (alg is then binary_*)
};

algorithm BinaryAlgorithm(BinaryKind kind) {
  switch (kind) {
    case BinaryKind::kAdd:
      return algorithm::binary_add;
    case BinaryKind::kSub:
      return algorithm::binary_sub;
    case BinaryKind::kMul:
      return algorithm::binary_mul;
    case BinaryKind::kDiv:
      return algorithm::binary_div;
    case BinaryKind::kMax:
      return algorithm::binary_max;
    case BinaryKind::kMin:
      return algorithm::binary_min;
  }
  return algorithm::binary_add;
}

// dst = post(src0 (op) src1), where src0 has dst's shape and src1 broadcasts to it (the
// only broadcasting oneDNN 2.6 binary supports). Axes are collapsed into alternating
// full / stretched groups, so [b, n] + [n] runs as {b, n} + {1, n} and NCHW + [1, C, 1, 1]
// as {N, C, HW} + {1, C, 1}; [b, n] + [b, 1] runs as {1, b, n} + {1, b, 1}, the
// per-channel layout oneDNN's jit kernels support (also for binary post-ops).
// Returns false, computing nothing, when oneDNN has only its reference implementation.
bool BinaryPrimitive(BinaryKind kind, const Tensor& src0, const Tensor& src1, Tensor& dst, const PostOp& post) {
  const Shape& shape = dst.shape();
  const Shape padded1 = PadLeft(src1.shape(), shape.size());
  Dims dims0, dims1;
  bool previous_stretched = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    const bool stretched = padded1[i] == 1;
    if (!dims0.empty() && stretched == previous_stretched) {
      dims0.back() *= shape[i];
      if (!stretched) dims1.back() *= shape[i];
    } else {
      dims0.push_back(shape[i]);
      dims1.push_back(stretched ? 1 : shape[i]);
    }
    previous_stretched = stretched;
  }
  if (dims0.empty()) dims0 = dims1 = {1};
  if (dims0.size() == 2 && dims1[0] != 1 && dims1[1] == 1) {
    dims0.insert(dims0.begin(), 1);
    dims1.insert(dims1.begin(), 1);
  }

  if (post.operand != nullptr) {
    OTGEN_CHECK(post.operand->shape() == src1.shape(),
                absl::StrCat("binary post-op operand ", S(post.operand->shape()), " vs src1 ", S(src1.shape())));
  }

  std::string key = NewKey("binary");
  absl::StrAppend(&key, static_cast<int>(kind));
  if (post.enabled) {
    absl::StrAppend(&key, "|post", post.operand != nullptr ? "b" : "e", static_cast<int>(post.alg), ",",
                    FloatBits(post.alpha), ",", FloatBits(post.beta));
  }
  AppendDims(&key, dims0);
  AppendDims(&key, dims1);
  const memory::desc md0 = PlainDesc(dims0);
  const memory::desc md1 = PlainDesc(dims1);
  OneDnnContext& ctx = OneDnnContext::Get();
  const dnnl::binary primitive = ctx.GetOrCreate<dnnl::binary>(key, [&] {
    dnnl::primitive_attr attr;
    if (post.enabled) {
      dnnl::post_ops ops;
      if (post.operand != nullptr) {
        ops.append_binary(post.alg, md1);
      } else {
        ops.append_eltwise(1.0f, post.alg, post.alpha, post.beta);
      }
      attr.set_post_ops(ops);
    }
    return UnlessReference<dnnl::binary>(dnnl::binary::primitive_desc(
        dnnl::binary::desc(BinaryAlgorithm(kind), md0, md1, md0), attr, ctx.engine()));
  });
  if (!primitive) return false;
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC_0, Wrap(md0, src0.data())},
                                          {DNNL_ARG_SRC_1, Wrap(md1, src1.data())},
                                          {DNNL_ARG_DST, Wrap(md0, dst.data())}};
  if (post.enabled && post.operand != nullptr) {
    args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, Wrap(md1, post.operand->data()));
  }
  Execute(primitive, args);
  return true;
}

bool Commutative(BinaryKind kind) {
  return kind == BinaryKind::kAdd || kind == BinaryKind::kMul || kind == BinaryKind::kMax ||
         kind == BinaryKind::kMin;
}

void BinaryLoop(BinaryKind kind, const Tensor& a, const Tensor& b, Tensor& out) {
  switch (kind) {
    case BinaryKind::kAdd:
      return BroadcastLoop(a, b, out, [](float x, float y) { return x + y; });
    case BinaryKind::kSub:
      return BroadcastLoop(a, b, out, [](float x, float y) { return x - y; });
    case BinaryKind::kMul:
      return BroadcastLoop(a, b, out, [](float x, float y) { return x * y; });
    case BinaryKind::kDiv:
      return BroadcastLoop(a, b, out, [](float x, float y) { return x / y; });
    case BinaryKind::kMax:  // the second operand on NaN, as x86 max (and oneDNN)
      return BroadcastLoop(a, b, out, [](float x, float y) { return x > y ? x : y; });
    case BinaryKind::kMin:
      return BroadcastLoop(a, b, out, [](float x, float y) { return x < y ? x : y; });
  }
}

// ---------------------------------------------------------------------------------------
// Unary.

// Natural logarithm within 1 ulp over all positive floats (checked exhaustively when this
// was written), branch-free so that loops over it vectorize. oneDNN 2.6's eltwise_log (and
// logsoftmax, which uses it) has absolute errors up to 4e-6 near x = 1, i.e. log(1 + t)
// for small t is wrong in every digit; losses and log-probabilities need better.
// Method: x = 2^e m with m in [sqrt(1/2), sqrt(2)); log m = 2 atanh(s), s = (m-1)/(m+1),
// |s| < 0.172, by its series to s^11 (truncation < 1e-10 relative), in double.
inline float AccurateLog(float x) {
  constexpr float kMinNormal = std::numeric_limits<float>::min();
  const bool subnormal = x < kMinNormal;
  const float scaled = subnormal ? x * 8388608.0f : x;  // 2^23
  const uint32_t bits = std::bit_cast<uint32_t>(scaled);
  int32_t e = static_cast<int32_t>(bits >> 23) - 127 - (subnormal ? 23 : 0);
  float m = std::bit_cast<float>((bits & 0x007fffffu) | 0x3f800000u);  // [1, 2)
  const bool high = m > 1.41421356f;
  m = high ? 0.5f * m : m;
  e += high ? 1 : 0;
  const double md = m;
  const double s = (md - 1.0) / (md + 1.0);
  const double s2 = s * s;
  const double series =
      1.0 + s2 * (1.0 / 3 + s2 * (1.0 / 5 + s2 * (1.0 / 7 + s2 * (1.0 / 9 + s2 * (1.0 / 11)))));
  float r = static_cast<float>(e * 0.69314718055994530942 + 2.0 * s * series);
  r = x == 0.0f ? -kInf : r;
  r = x < 0.0f ? kNaN : r;
  r = x == kInf ? kInf : r;
  r = x != x ? x : r;
  return r;
}

void LogLoop(const float* x, float* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
  for (int64_t i = 0; i < n; ++i) y[i] = AccurateLog(x[i]);
}

// Kinds that run on oneDNN eltwise primitives (when the tensor is large enough).
bool HasPrimitive(UnaryKind kind) {
  return kind != UnaryKind::kStep && kind != UnaryKind::kSign && kind != UnaryKind::kLog;
}

bool Transcendental(UnaryKind kind) {
  return kind == UnaryKind::kTanh || kind == UnaryKind::kSigmoid || kind == UnaryKind::kExp ||
         kind == UnaryKind::kPow;
}

struct EltwiseParams {
  algorithm alg;
  float alpha;
  float beta;
};

EltwiseParams ToEltwise(UnaryKind kind, float alpha, float beta) {
  switch (kind) {
    case UnaryKind::kRelu:
      return {algorithm::eltwise_relu, 0.0f, 0.0f};
    case UnaryKind::kLeakyRelu:
      return {algorithm::eltwise_relu, alpha, 0.0f};
    case UnaryKind::kTanh:
      return {algorithm::eltwise_tanh, 0.0f, 0.0f};
    case UnaryKind::kSigmoid:
      return {algorithm::eltwise_logistic, 0.0f, 0.0f};
    case UnaryKind::kExp:
      return {algorithm::eltwise_exp, 0.0f, 0.0f};
    case UnaryKind::kSqrt:
      return {algorithm::eltwise_sqrt, 0.0f, 0.0f};
    case UnaryKind::kSquare:
      return {algorithm::eltwise_square, 0.0f, 0.0f};
    case UnaryKind::kAbs:
      return {algorithm::eltwise_abs, 0.0f, 0.0f};
    case UnaryKind::kPow:  // oneDNN: alpha * x^beta
      return {algorithm::eltwise_pow, 1.0f, alpha};
    case UnaryKind::kLinear:
      return {algorithm::eltwise_linear, alpha, beta};
    case UnaryKind::kClip:
      return {algorithm::eltwise_clip, alpha, beta};
    case UnaryKind::kNeg:
      return {algorithm::eltwise_linear, -1.0f, 0.0f};
    case UnaryKind::kLog:
    case UnaryKind::kStep:
    case UnaryKind::kSign:
      break;
  }
  OTGEN_CHECK(false, absl::StrCat("unary kind ", static_cast<int>(kind), " has no oneDNN algorithm"));
  return {algorithm::undef, 0.0f, 0.0f};
}

void UnaryLoop(UnaryKind kind, const float* x, float* y, int64_t n, float alpha, float beta) {
  switch (kind) {
    case UnaryKind::kRelu:  // NaN -> 0, as oneDNN's relu (x86 max)
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
      return;
    case UnaryKind::kLeakyRelu:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : alpha * x[i];
      return;
    case UnaryKind::kTanh:
      for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
      return;
    case UnaryKind::kSigmoid:
      for (int64_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + std::exp(-x[i]));
      return;
    case UnaryKind::kExp:
      for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
      return;
    case UnaryKind::kLog:
      LogLoop(x, y, n);
      return;
    case UnaryKind::kSqrt:
      for (int64_t i = 0; i < n; ++i) y[i] = std::sqrt(x[i]);
      return;
    case UnaryKind::kSquare:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] * x[i];
      return;
    case UnaryKind::kAbs:
      for (int64_t i = 0; i < n; ++i) y[i] = std::fabs(x[i]);
      return;
    case UnaryKind::kPow:
      for (int64_t i = 0; i < n; ++i) y[i] = std::pow(x[i], alpha);
      return;
    case UnaryKind::kLinear:
      for (int64_t i = 0; i < n; ++i) y[i] = alpha * x[i] + beta;
      return;
    case UnaryKind::kClip:  // NaN -> alpha, as oneDNN's clip
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > beta ? beta : (x[i] > alpha ? x[i] : alpha);
      return;
    case UnaryKind::kNeg:
      for (int64_t i = 0; i < n; ++i) y[i] = -x[i];
      return;
    // The masks have no oneDNN primitive: parallel loops (they are as large as the activations).
    case UnaryKind::kStep:
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? 1.0f : 0.0f;
      return;
    case UnaryKind::kSign:
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
      for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>((x[i] > 0.0f) - (x[i] < 0.0f));
      return;
  }
}

// ---------------------------------------------------------------------------------------
// Reductions.

struct ReducePlan {
  std::vector<bool> reduced;  // per axis of x
  Shape keep_shape;           // reduced axes as 1
  Shape out_shape;            // keep_shape, or with reduced axes removed
  int64_t count = 1;          // elements reduced into each output
};

ReducePlan PlanReduce(const Shape& shape, const std::vector<int>& axes, bool keepdim) {
  const int rank = static_cast<int>(shape.size());
  ReducePlan plan;
  plan.reduced.assign(rank, axes.empty());
  for (int axis : axes) {
    const int a = NormalizeAxis(axis, rank);
    OTGEN_CHECK(!plan.reduced[a], absl::StrCat("axis ", axis, " repeated in reduction axes [",
                                               absl::StrJoin(axes, ", "), "] of shape ", S(shape)));
    plan.reduced[a] = true;
  }
  for (int i = 0; i < rank; ++i) {
    if (plan.reduced[i]) {
      plan.count *= shape[i];
      plan.keep_shape.push_back(1);
      if (keepdim) plan.out_shape.push_back(1);
    } else {
      plan.keep_shape.push_back(shape[i]);
      plan.out_shape.push_back(shape[i]);
    }
  }
  return plan;
}

float ReduceIdentity(ReduceKind kind) {
  switch (kind) {
    case ReduceKind::kSum:
    case ReduceKind::kMean:
      return 0.0f;
    case ReduceKind::kMax:
      return -kInf;
    case ReduceKind::kMin:
      return kInf;
  }
  return 0.0f;
}

// Sum of p[0, n) with 16 independent partial sums (vectorizes without reassociation flags).
float SumRun(const float* p, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int j = 0; j < 16; ++j) acc[j] += p[i + j];
  }
  for (int j = 0; i < n; ++i, ++j) acc[j] += p[i];
  for (int width = 8; width >= 1; width /= 2) {
    for (int j = 0; j < width; ++j) acc[j] += acc[j + width];
  }
  return acc[0];
}

// out (keep_shape, pre-filled with the identity) (op)= x over the reduced axes.
void ReduceLoop(ReduceKind kind, const Tensor& x, const ReducePlan& plan, Tensor& out) {
  const Shape& shape = x.shape();
  Shape out_strides = ContiguousStrides(plan.keep_shape);
  for (size_t i = 0; i < shape.size(); ++i) {
    if (plan.reduced[i]) out_strides[i] = 0;
  }
  const StridedLayout<2> layout = Collapse<2>(shape, {ContiguousStrides(shape), out_strides});
  const float* px = x.data();
  float* po = out.data();
  ForEachRun(layout, [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
    const float* in = px + off[0];
    float* o = po + off[1];
    const int64_t si = st[0];
    const int64_t so = st[1];
    switch (kind) {
      case ReduceKind::kSum:
      case ReduceKind::kMean:
        if (so == 0 && si == 1) {
          *o += SumRun(in, n);
        } else if (so == 1 && si == 1) {
          for (int64_t i = 0; i < n; ++i) o[i] += in[i];
        } else {
          for (int64_t i = 0; i < n; ++i) o[i * so] += in[i * si];
        }
        break;
      case ReduceKind::kMax:
        for (int64_t i = 0; i < n; ++i) o[i * so] = std::max(o[i * so], in[i * si]);
        break;
      case ReduceKind::kMin:
        for (int64_t i = 0; i < n; ++i) o[i * so] = std::min(o[i * so], in[i * si]);
        break;
    }
  });
  if (kind == ReduceKind::kMean) {
    const float count = static_cast<float>(plan.count);
    for (int64_t i = 0, n = out.numel(); i < n; ++i) po[i] /= count;
  }
}

algorithm ReductionAlgorithm(ReduceKind kind) {
  switch (kind) {
    case ReduceKind::kSum:
      return algorithm::reduction_sum;
    case ReduceKind::kMean:
      return algorithm::reduction_mean;
    case ReduceKind::kMax:
      return algorithm::reduction_max;
    case ReduceKind::kMin:
      return algorithm::reduction_min;
  }
  return algorithm::reduction_sum;
}

// Runs the reduction primitive on x collapsed into alternating kept / reduced groups;
// returns false (leaving `out` untouched) when oneDNN only has its reference kernel for
// that pattern (in 2.6, e.g., sums over a leading axis: [R, K] -> [1, K]).
bool ReducePrimitive(ReduceKind kind, const Tensor& x, const ReducePlan& plan, Tensor& out) {
  const Shape& shape = x.shape();
  Dims src, dst;
  bool previous_reduced = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    const bool reduced = plan.reduced[i];
    if (!src.empty() && reduced == previous_reduced) {
      src.back() *= shape[i];
      if (!reduced) dst.back() *= shape[i];
    } else {
      src.push_back(shape[i]);
      dst.push_back(reduced ? 1 : shape[i]);
    }
    previous_reduced = reduced;
  }
  if (src == dst) {  // nothing to reduce (oneDNN rejects such descriptors)
    out.CopyFrom(x);
    return true;
  }
  std::string key = NewKey("reduction");
  absl::StrAppend(&key, static_cast<int>(kind));
  AppendDims(&key, src);
  AppendDims(&key, dst);
  const memory::desc src_md = PlainDesc(src);
  const memory::desc dst_md = PlainDesc(dst);
  OneDnnContext& ctx = OneDnnContext::Get();
  const dnnl::reduction primitive = ctx.GetOrCreate<dnnl::reduction>(key, [&] {
    return UnlessReference<dnnl::reduction>(dnnl::reduction::primitive_desc(
        dnnl::reduction::desc(ReductionAlgorithm(kind), src_md, dst_md, 0.0f, 0.0f), ctx.engine()));
  });
  if (!primitive) return false;
  Execute(primitive, {{DNNL_ARG_SRC, Wrap(src_md, x.data())}, {DNNL_ARG_DST, Wrap(dst_md, out.data())}});
  return true;
}

// Reduction into keep_shape.
Tensor ReduceKeep(ReduceKind kind, const Tensor& x, const ReducePlan& plan) {
  Tensor out = Tensor::Empty(plan.keep_shape);
  if (out.numel() == 0) return out;
  const ScopedSerialBelow serial(x.numel(), kMinParallelElements);
  if (plan.count == 0) {
    out.Fill(kind == ReduceKind::kMean ? kNaN : ReduceIdentity(kind));
    return out;
  }
  if (plan.count == 1) {
    out.CopyFrom(x);
    return out;
  }
  // Sums over the leading axis of a matrix (bias gradients: [batch, features] -> [features]):
  // column sums in registers (nn/column_sums.h); oneDNN 2.6 has only its reference kernel here.
  if ((kind == ReduceKind::kSum || kind == ReduceKind::kMean) && x.rank() == 2 && plan.reduced[0] &&
      !plan.reduced[1]) {
    nn::internal::SumRows(x.data(), x.dim(0), x.dim(1), out.data());
    if (kind == ReduceKind::kMean) {
      const float count = static_cast<float>(plan.count);
      for (int64_t i = 0, n = out.numel(); i < n; ++i) out.data()[i] /= count;
    }
    return out;
  }
  // oneDNN's jit reduction over a short axis is slow (35 us for the row sums of [256, 2]); the
  // loop below takes ~1 us there.
  const bool short_reduction = plan.count < kMinPrimitiveReductionCount;
  if (UsePrimitive(short_reduction ? 0 : x.numel(), kMinPrimitiveElements) && ReducePrimitive(kind, x, plan, out)) {
    return out;
  }
  out.Fill(ReduceIdentity(kind));
  ReduceLoop(kind, x, plan, out);
  return out;
}

// ---------------------------------------------------------------------------------------
// Softmax.

// x viewed as [outer, d, inner] around `axis`.
struct AxisSplit {
  int axis;
  int64_t outer;
  int64_t d;
  int64_t inner;
};

AxisSplit SplitAt(const Shape& shape, int axis) {
  const int rank = static_cast<int>(shape.size());
  const int a = NormalizeAxis(axis, rank);
  return {a, Product(shape, 0, a), shape[a], Product(shape, a + 1, rank)};
}

// Sums of exponentials accumulate in double here: the loops serve tiny tensors and
// strided axes, where the cost is in the exponentials, not the additions.
void SoftmaxLoop(const float* x, float* y, const AxisSplit& s, bool log) {
  std::vector<float> m(s.inner), scale(s.inner);
  std::vector<double> sum(s.inner);
  for (int64_t o = 0; o < s.outer; ++o) {
    const float* xo = x + o * s.d * s.inner;
    float* yo = y + o * s.d * s.inner;
    std::fill(m.begin(), m.end(), -kInf);
    for (int64_t k = 0; k < s.d; ++k) {
      for (int64_t i = 0; i < s.inner; ++i) m[i] = std::max(m[i], xo[k * s.inner + i]);
    }
    std::fill(sum.begin(), sum.end(), 0.0);
    for (int64_t k = 0; k < s.d; ++k) {
      for (int64_t i = 0; i < s.inner; ++i) {
        const float e = std::exp(xo[k * s.inner + i] - m[i]);
        if (!log) yo[k * s.inner + i] = e;
        sum[i] += e;
      }
    }
    if (log) {
      // (x - m) - log(sum): the first difference is exact near the maximum, so the
      // log-probability of a dominant entry keeps its relative accuracy.
      for (int64_t i = 0; i < s.inner; ++i) scale[i] = static_cast<float>(std::log(sum[i]));
      for (int64_t k = 0; k < s.d; ++k) {
        for (int64_t i = 0; i < s.inner; ++i) yo[k * s.inner + i] = (xo[k * s.inner + i] - m[i]) - scale[i];
      }
    } else {
      for (int64_t i = 0; i < s.inner; ++i) scale[i] = static_cast<float>(sum[i]);
      for (int64_t k = 0; k < s.d; ++k) {
        for (int64_t i = 0; i < s.inner; ++i) yo[k * s.inner + i] /= scale[i];
      }
    }
  }
}

// Elements of the exp(x - shift) buffer ShiftAndLogSum streams through (512 KB, half of
// this machine's L2), instead of materializing exp(x - shift) whole.
constexpr int64_t kChunkElements = 1 << 17;

// sum(exp(x - shift)) over the last axis of x [rows, cols] into sum [rows, 1] on
// primitives, a cache-sized block of rows at a time. False when oneDNN has no jit kernel.
bool SumExpRowsPrimitive(const Tensor& x, const Tensor& shift, Tensor& sum) {
  const int64_t rows = x.dim(0), cols = x.dim(1);
  const int64_t block = std::clamp<int64_t>(kChunkElements / std::max<int64_t>(cols, 1), 1, rows);
  Tensor buffer = Tensor::Empty({block, cols});
  for (int64_t r0 = 0; r0 < rows; r0 += block) {
    const int64_t r1 = std::min(rows, r0 + block);
    Tensor e = buffer.Rows(0, r1 - r0);
    Tensor s = sum.Rows(r0, r1);
    if (!BinaryPrimitive(BinaryKind::kSub, x.Rows(r0, r1), shift.Rows(r0, r1), e,
                         PostOp{true, algorithm::eltwise_exp, 0.0f, 0.0f})) {
      return false;
    }
    const ReducePlan plan = PlanReduce(e.shape(), {1}, /*keepdim=*/true);
    if (!ReducePrimitive(ReduceKind::kSum, e, plan, s)) {
      s.Fill(0.0f);
      ReduceLoop(ReduceKind::kSum, e, plan, s);
    }
  }
  return true;
}

// The loop form: sum[j] = sum over x's elements i reducing to j of exp(x_i - shift_j), in
// double (the loops serve tiny tensors and odd layouts; the cost is in the exponentials).
void SumExpLoop(const Tensor& x, const ReducePlan& plan, const Tensor& shift, Tensor& sum) {
  std::vector<double> acc(sum.numel(), 0.0);
  if (x.numel() > 0) {
    Shape shift_strides = ContiguousStrides(plan.keep_shape);
    for (size_t i = 0; i < shift_strides.size(); ++i) {
      if (plan.reduced[i]) shift_strides[i] = 0;
    }
    const StridedLayout<2> layout = Collapse<2>(x.shape(), {ContiguousStrides(x.shape()), shift_strides});
    const float* px = x.data();
    const float* ps = shift.data();
    ForEachRun(layout, [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
      const float* in = px + off[0];
      for (int64_t i = 0; i < n; ++i) {
        const int64_t j = off[1] + i * st[1];
        acc[j] += std::exp(in[i * st[0]] - ps[j]);
      }
    });
  }
  std::copy(acc.begin(), acc.end(), sum.data());
}

// For LogSumExp and LogSoftmax over the plan's axes: `shift`, the maximum with infinities
// replaced by 0 (so x - shift is never inf - inf: all -inf gives log 0 = -inf, a +inf
// gives +inf), and `log_sum` = log(sum(exp(x - shift))), both of keep_shape.
void ShiftAndLogSum(const Tensor& x, const ReducePlan& plan, Tensor* shift, Tensor* log_sum) {
  *shift = ReduceKeep(ReduceKind::kMax, x, plan);
  float* ps = shift->data();
  for (int64_t i = 0, n = shift->numel(); i < n; ++i) {
    if (std::isinf(ps[i])) ps[i] = 0.0f;
  }
  *log_sum = Tensor::Empty(plan.keep_shape);
  bool done = false;
  if (plan.count > 0 && shift->numel() > 0 && UsePrimitive(x.numel(), kMinPrimitiveTranscendental)) {
    // The reduced axes, once unit axes are dropped, are the trailing ones in the common
    // case (a reduction over the last axis): x is then [rows, count].
    int last_kept = -1, first_reduced = x.rank();
    for (int i = 0; i < x.rank(); ++i) {
      if (x.shape()[i] == 1) continue;
      if (plan.reduced[i]) {
        first_reduced = std::min(first_reduced, i);
      } else {
        last_kept = i;
      }
    }
    if (last_kept < first_reduced) {
      const int64_t rows = shift->numel();
      Tensor sum = log_sum->Reshape({rows, 1});
      done = SumExpRowsPrimitive(x.Reshape({rows, plan.count}), shift->Reshape({rows, 1}), sum);
    } else {
      Tensor e = Tensor::Empty(x.shape());
      if (BinaryPrimitive(BinaryKind::kSub, x, *shift, e, PostOp{true, algorithm::eltwise_exp, 0.0f, 0.0f})) {
        *log_sum = ReduceKeep(ReduceKind::kSum, e, plan);
        done = true;
      }
    }
  }
  if (!done) SumExpLoop(x, plan, *shift, *log_sum);
  LogLoop(log_sum->data(), log_sum->data(), log_sum->numel());
}

Tensor SoftmaxImpl(const Tensor& x, int axis, bool log) {
  OTGEN_CHECK(x.rank() >= 1, absl::StrCat("softmax of a tensor of shape ", S(x.shape())));
  const AxisSplit s = SplitAt(x.shape(), axis);
  Tensor out = Tensor::Empty(x.shape());
  if (out.numel() == 0) return out;
  const ScopedSerialBelow serial(x.numel(), kMinParallelElements);
  if (UsePrimitive(x.numel(), kMinPrimitiveTranscendental)) {
    if (log) {
      // Not oneDNN's logsoftmax, whose log is off by up to 4e-6 near 1 (see AccurateLog):
      // out = (x - shift) - log_sum in one binary primitive with a binary post-op.
      const ReducePlan plan = PlanReduce(x.shape(), {axis}, /*keepdim=*/true);
      Tensor shift, log_sum;
      ShiftAndLogSum(x, plan, &shift, &log_sum);
      if (BinaryPrimitive(BinaryKind::kSub, x, shift, out,
                          PostOp{true, algorithm::binary_sub, 0.0f, 0.0f, &log_sum})) {
        return out;
      }
      SoftmaxLoop(x.data(), out.data(), s, log);
      return out;
    }
    const Dims dims = s.inner == 1 ? Dims{s.outer, s.d} : Dims{s.outer, s.d, s.inner};
    std::string key = NewKey("softmax");
    AppendDims(&key, dims);
    const memory::desc md = PlainDesc(dims);
    OneDnnContext& ctx = OneDnnContext::Get();
    const dnnl::softmax_forward primitive = ctx.GetOrCreate<dnnl::softmax_forward>(key, [&] {
      return UnlessReference<dnnl::softmax_forward>(dnnl::softmax_forward::primitive_desc(
          dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, md, 1), ctx.engine()));
    });
    if (primitive) {
      Execute(primitive, {{DNNL_ARG_SRC, Wrap(md, x.data())}, {DNNL_ARG_DST, Wrap(md, out.data())}});
      return out;
    }
  }
  SoftmaxLoop(x.data(), out.data(), s, log);
  return out;
}

// ---------------------------------------------------------------------------------------
// Layout helpers.

// dst[c, r] = src[r, c] for a rows x cols matrix, in cache-sized tiles.
void TransposeMatrix(const float* src, float* dst, int64_t rows, int64_t cols) {
  constexpr int64_t kTile = 32;
  for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
    const int64_t r1 = std::min(rows, r0 + kTile);
    for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
      const int64_t c1 = std::min(cols, c0 + kTile);
      for (int64_t c = c0; c < c1; ++c) {
        for (int64_t r = r0; r < r1; ++r) dst[c * rows + r] = src[r * cols + c];
      }
    }
  }
}

template <typename Cmp>
std::vector<int64_t> ArgExtreme(const Tensor& x, int axis, Cmp better) {
  OTGEN_CHECK(x.rank() >= 1, absl::StrCat("arg-extreme of a tensor of shape ", S(x.shape())));
  const AxisSplit s = SplitAt(x.shape(), axis);
  OTGEN_CHECK(s.d > 0, absl::StrCat("arg-extreme along empty axis ", axis, " of shape ", S(x.shape())));
  std::vector<int64_t> index(s.outer * s.inner, 0);
  std::vector<float> best(s.inner);
  const float* px = x.data();
  for (int64_t o = 0; o < s.outer; ++o) {
    const float* xo = px + o * s.d * s.inner;
    int64_t* io = index.data() + o * s.inner;
    std::copy(xo, xo + s.inner, best.begin());
    for (int64_t k = 1; k < s.d; ++k) {
      const float* row = xo + k * s.inner;
      for (int64_t i = 0; i < s.inner; ++i) {
        if (better(row[i], best[i])) {
          best[i] = row[i];
          io[i] = k;
        }
      }
    }
  }
  return index;
}

template <typename Cmp>
Tensor Compare(const Tensor& a, const Tensor& b, Cmp cmp) {
  Tensor out = Tensor::Empty(BroadcastShapes(a.shape(), b.shape()));
  if (out.numel() > 0) {
    BroadcastLoop(a, b, out, [cmp](float x, float y) { return cmp(x, y) ? 1.0f : 0.0f; });
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Public API.

bool Broadcastable(const Shape& a, const Shape& b) {
  const size_t rank = std::max(a.size(), b.size());
  const Shape pa = PadLeft(a, rank);
  const Shape pb = PadLeft(b, rank);
  for (size_t i = 0; i < rank; ++i) {
    if (pa[i] != pb[i] && pa[i] != 1 && pb[i] != 1) return false;
  }
  return true;
}

Shape BroadcastShapes(const Shape& a, const Shape& b) {
  OTGEN_CHECK(Broadcastable(a, b), absl::StrCat("shapes ", S(a), " and ", S(b), " do not broadcast"));
  const size_t rank = std::max(a.size(), b.size());
  const Shape pa = PadLeft(a, rank);
  const Shape pb = PadLeft(b, rank);
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) out[i] = pa[i] == 1 ? pb[i] : pa[i];
  return out;
}

Tensor Binary(BinaryKind kind, const Tensor& a, const Tensor& b) {
  const Shape shape = BroadcastShapes(a.shape(), b.shape());
  Tensor out = Tensor::Empty(shape);
  if (out.numel() == 0) return out;
  const ScopedSerialBelow serial(out.numel(), kMinParallelElements);
  if (!UsePrimitive(out.numel(), kMinPrimitiveElements)) {
    BinaryLoop(kind, a, b, out);
    return out;
  }
  const bool a_full = PadLeft(a.shape(), shape.size()) == shape;
  const bool b_full = PadLeft(b.shape(), shape.size()) == shape;
  bool done;
  if (a_full) {
    done = BinaryPrimitive(kind, a, b, out, PostOp{});
  } else if (b_full && Commutative(kind)) {
    done = BinaryPrimitive(kind, b, a, out, PostOp{});
  } else if (b_full && kind == BinaryKind::kSub) {
    // a - b = -(b - a) exactly (IEEE subtraction is sign-symmetric).
    done = BinaryPrimitive(BinaryKind::kSub, b, a, out, PostOp{true, algorithm::eltwise_linear, -1.0f, 0.0f});
  } else {
    done = BinaryPrimitive(kind, BroadcastTo(a, shape), b, out, PostOp{});
  }
  if (!done) BinaryLoop(kind, a, b, out);
  return out;
}

Tensor Unary(UnaryKind kind, const Tensor& x, float alpha, float beta) {
  if (kind == UnaryKind::kClip) {
    OTGEN_CHECK(!(alpha > beta), absl::StrCat("clip to [", alpha, ", ", beta, "] of shape ", S(x.shape())));
  }
  Tensor out = Tensor::Empty(x.shape());
  const int64_t n = out.numel();
  if (n == 0) return out;
  const ScopedSerialBelow serial(n, kMinParallelElements);
  if (!HasPrimitive(kind) ||
      !UsePrimitive(n, Transcendental(kind) ? kMinPrimitiveTranscendental : kMinPrimitiveElements)) {
    UnaryLoop(kind, x.data(), out.data(), n, alpha, beta);
    return out;
  }
  const EltwiseParams p = ToEltwise(kind, alpha, beta);
  std::string key = NewKey("eltwise");
  absl::StrAppend(&key, static_cast<int>(p.alg), ",", FloatBits(p.alpha), ",", FloatBits(p.beta));
  AppendDims(&key, {n});
  const memory::desc md = PlainDesc({n});
  OneDnnContext& ctx = OneDnnContext::Get();
  const dnnl::eltwise_forward primitive = ctx.GetOrCreate<dnnl::eltwise_forward>(key, [&] {
    return dnnl::eltwise_forward(dnnl::eltwise_forward::primitive_desc(
        dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, p.alg, md, p.alpha, p.beta),
        ctx.engine()));
  });
  Execute(primitive, {{DNNL_ARG_SRC, Wrap(md, x.data())}, {DNNL_ARG_DST, Wrap(md, out.data())}});
  return out;
}

Tensor Reduce(ReduceKind kind, const Tensor& x, const std::vector<int>& axes, bool keepdim) {
  const ReducePlan plan = PlanReduce(x.shape(), axes, keepdim);
  return ReduceKeep(kind, x, plan).Reshape(plan.out_shape);
}

Tensor LogSumExp(const Tensor& x, const std::vector<int>& axes, bool keepdim) {
  const ReducePlan plan = PlanReduce(x.shape(), axes, keepdim);
  const ScopedSerialBelow serial(x.numel(), kMinParallelElements);
  Tensor shift, out;
  ShiftAndLogSum(x, plan, &shift, &out);
  const float* ps = shift.data();
  float* po = out.data();
  for (int64_t i = 0, n = out.numel(); i < n; ++i) po[i] += ps[i];
  return out.Reshape(plan.out_shape);
}

std::vector<int64_t> ArgMin(const Tensor& x, int axis) {
  return ArgExtreme(x, axis, [](float v, float best) { return v < best; });
}

std::vector<int64_t> ArgMax(const Tensor& x, int axis) {
  return ArgExtreme(x, axis, [](float v, float best) { return v > best; });
}

Tensor Softmax(const Tensor& x, int axis) { return SoftmaxImpl(x, axis, /*log=*/false); }
Tensor LogSoftmax(const Tensor& x, int axis) { return SoftmaxImpl(x, axis, /*log=*/true); }

namespace {

// The checked shape of op(a) @ op(b).
Shape MatMulShape(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  const std::string shapes = absl::StrCat(S(a.shape()), transpose_a ? "^T" : "", " @ ", S(b.shape()),
                                          transpose_b ? "^T" : "");
  OTGEN_CHECK(a.rank() == b.rank() && (a.rank() == 2 || a.rank() == 3),
              absl::StrCat("matmul needs two 2-D or two 3-D tensors, got ", shapes));
  const bool batched = a.rank() == 3;
  OTGEN_CHECK(!batched || b.dim(0) == a.dim(0), absl::StrCat("matmul batch sizes differ: ", shapes));
  const int64_t m = transpose_a ? a.dim(-1) : a.dim(-2);
  const int64_t k = transpose_a ? a.dim(-2) : a.dim(-1);
  const int64_t kb = transpose_b ? b.dim(-1) : b.dim(-2);
  const int64_t n = transpose_b ? b.dim(-2) : b.dim(-1);
  OTGEN_CHECK(k == kb, absl::StrCat("matmul inner dimensions differ (", k, " vs ", kb, "): ", shapes));
  return batched ? Shape{a.dim(0), m, n} : Shape{m, n};
}

// Per-thread bf16 operand copies for mixed-precision products, grown to the largest size
// seen (slot 0: A, slot 1: B).
uint16_t* BFloat16Scratch(int slot, int64_t n) {
  thread_local std::array<std::vector<uint16_t>, 2> buffers;
  std::vector<uint16_t>& b = buffers[slot];
  if (static_cast<int64_t>(b.size()) < n) b.resize(n);
  return b.data();
}

// out = op(a) @ op(b) (+ bias [n] on every row, 2-D only), then, with `relu_slope`, the
// (leaky) ReLU y = max(y, 0) + slope min(y, 0) in the product's output stage; out has
// MatMulShape and does not overlap a or b.
void MatMulKernel(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b, Tensor& out,
                  const Tensor* bias = nullptr, std::optional<float> relu_slope = std::nullopt,
                  const BFloat16Operands& bf16 = {}) {
  const bool batched = a.rank() == 3;
  const int64_t batch = batched ? a.dim(0) : 1;
  const int64_t m = out.dim(-2), n = out.dim(-1);
  const int64_t k = transpose_a ? a.dim(-2) : a.dim(-1);
  CountProductMacs(batch * m * n * k);
  if (out.numel() == 0) return;
  // out = bias on every row (or 0), for the paths that accumulate into it.
  auto fill_initial = [&] {
    if (bias == nullptr) {
      out.Fill(0.0f);
      return;
    }
    for (int64_t i = 0; i < m; ++i) std::copy(bias->data(), bias->data() + n, out.data() + i * n);
  };
  if (k == 0) {
    fill_initial();
    if (relu_slope.has_value()) {
      float* po = out.data();
      for (int64_t i = 0, size = out.numel(); i < size; ++i) po[i] = po[i] > 0.0f ? po[i] : *relu_slope * po[i];
    }
    return;
  }

  // Thin products (a dimension of at most kMaxThinDimension: the 2-d input and 1-d output
  // layers of the 2-D networks, their gradients) run as float32 loops (ThinProduct), other small
  // ones as Eigen float32 products: a primitive call costs more.
  const bool thin = std::min({m, n, k}) <= nn::internal::kMaxThinDimension;
  if (!UsePrimitive(thin ? 0 : batch * m * n * k, kMinPrimitiveMatMulMacs)) {
    using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    for (int64_t t = 0; t < batch; ++t) {
      const float* pa = a.data() + t * m * k;
      const float* pb = b.data() + t * k * n;
      float* pc = out.data() + t * m * n;
      if (thin) {
        nn::internal::ThinProduct({pa, pb, m, n, k, transpose_a, transpose_b}, bias != nullptr ? bias->data() : nullptr,
                                  relu_slope, pc);
        continue;
      }
      const Eigen::Map<const RowMajor> sa(pa, transpose_a ? k : m, transpose_a ? m : k);
      const Eigen::Map<const RowMajor> sb(pb, transpose_b ? n : k, transpose_b ? k : n);
      Eigen::Map<RowMajor> c(pc, m, n);
      if (transpose_a && transpose_b) {
        c.noalias() = sa.transpose() * sb.transpose();
      } else if (transpose_a) {
        c.noalias() = sa.transpose() * sb;
      } else if (transpose_b) {
        c.noalias() = sa * sb.transpose();
      } else {
        c.noalias() = sa * sb;
      }
      if (bias != nullptr) c.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(bias->data(), n);
      if (relu_slope.has_value()) c = c.cwiseMax(0.0f) + *relu_slope * c.cwiseMin(0.0f);
    }
    return;
  }

  const ScopedSerialBelow serial(batch * m * n * k, kMinParallelMacs);
  // Transposes are strides on the memory descriptors: a stored [k, m] is read as an
  // [m, k] matrix with strides {1, m}.
  Dims a_dims = {m, k}, a_strides = transpose_a ? Dims{1, m} : Dims{k, 1};
  Dims b_dims = {k, n}, b_strides = transpose_b ? Dims{1, k} : Dims{n, 1};
  Dims c_dims = {m, n}, c_strides = {n, 1};
  if (batched) {
    a_dims.insert(a_dims.begin(), batch);
    a_strides.insert(a_strides.begin(), m * k);
    b_dims.insert(b_dims.begin(), batch);
    b_strides.insert(b_strides.begin(), k * n);
    c_dims.insert(c_dims.begin(), batch);
    c_strides.insert(c_strides.begin(), m * n);
  }
  std::string key = NewKey("matmul");
  absl::StrAppend(&key, transpose_a ? "T" : "N", transpose_b ? "T" : "N", bias != nullptr ? "bias" : "",
                  relu_slope.has_value() ? absl::StrCat("relu", FloatBits(*relu_slope)) : "");
  AppendDims(&key, a_dims);
  AppendDims(&key, c_dims);
  const memory::desc c_md(c_dims, memory::data_type::f32, c_strides);
  const memory::desc bias_md = bias != nullptr ? memory::desc({1, n}, memory::data_type::f32, Dims{n, 1})
                                               : memory::desc();
  // The matmul descriptor, with the bias when there is one.
  auto matmul_desc = [&](const memory::desc& a_desc, const memory::desc& b_desc) {
    return bias != nullptr ? dnnl::matmul::desc(a_desc, b_desc, bias_md, c_md) : dnnl::matmul::desc(a_desc, b_desc, c_md);
  };
  dnnl::primitive_attr attr;
  if (relu_slope.has_value()) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0f, algorithm::eltwise_relu, *relu_slope, 0.0f);
    attr.set_post_ops(ops);
  }
  auto arguments = [&](memory a_mem, memory b_mem) {
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, std::move(a_mem)}, {DNNL_ARG_WEIGHTS, std::move(b_mem)}, {DNNL_ARG_DST, Wrap(c_md, out.data())}};
    if (bias != nullptr) args.emplace(DNNL_ARG_BIAS, Wrap(bias_md, bias->data()));
    return args;
  };
  OneDnnContext& ctx = OneDnnContext::Get();
  if (BFloat16OperandsInEffect()) {
    // Mixed precision (nn/precision.h): bf16 copies of the operands in their own layouts
    // (transposes stay strides), float32 accumulation and result. Without a native bf16
    // kernel for these strides the product stays float32.
    const memory::desc a16_md(a_dims, memory::data_type::bf16, a_strides);
    const memory::desc b16_md(b_dims, memory::data_type::bf16, b_strides);
    const dnnl::matmul primitive = ctx.GetOrCreate<dnnl::matmul>(absl::StrCat(key, "bf16"), [&] {
      const dnnl::matmul::primitive_desc pd(matmul_desc(a16_md, b16_md), attr, ctx.engine());
      return nn::internal::IsNativeBFloat16Impl(pd.impl_info_str()) ? dnnl::matmul(pd) : dnnl::matmul();
    });
    if (primitive) {
      // The operand's bf16 values: a given copy, a new copy kept for the caller, or scratch.
      auto operand16 = [](const Tensor& t, const BFloat16Copy* given, BFloat16Copy* keep, int slot) -> uint16_t* {
        if (given != nullptr && given->defined()) {
          OTGEN_CHECK(given->numel() == t.numel(), absl::StrCat("MatMul: a bf16 copy of ", given->numel(),
                                                                " values for an operand of shape ", S(t.shape())));
          return const_cast<uint16_t*>(given->data());
        }
        if (keep != nullptr) {
          *keep = BFloat16Copy(t);
          return keep->mutable_data();
        }
        uint16_t* scratch = BFloat16Scratch(slot, t.numel());
        nn::internal::ConvertToBFloat16(t.data(), t.numel(), scratch);
        return scratch;
      };
      uint16_t* a16 = operand16(a, bf16.a, bf16.keep_a, 0);
      uint16_t* b16 = operand16(b, bf16.b, bf16.keep_b, 1);
      Execute(primitive, arguments(memory(a16_md, ctx.engine(), a16), memory(b16_md, ctx.engine(), b16)));
      return;
    }
  }
  const memory::desc a_md(a_dims, memory::data_type::f32, a_strides);
  const memory::desc b_md(b_dims, memory::data_type::f32, b_strides);
  const dnnl::matmul primitive = ctx.GetOrCreate<dnnl::matmul>(key, [&] {
    return dnnl::matmul(dnnl::matmul::primitive_desc(matmul_desc(a_md, b_md), attr, ctx.engine()));
  });
  Execute(primitive, arguments(Wrap(a_md, a.data()), Wrap(b_md, b.data())));
}

bool Overlap(const Tensor& x, const Tensor& y) {
  if (x.numel() == 0 || y.numel() == 0) return false;
  return x.data() < y.data() + y.numel() && y.data() < x.data() + x.numel();
}

}  // namespace

BFloat16Copy BFloat16Copy::Uninitialized(int64_t numel) {
  BFloat16Copy copy;
  copy.storage_ = Tensor::Empty({(numel + 1) / 2});
  copy.numel_ = numel;
  return copy;
}

BFloat16Copy::BFloat16Copy(const Tensor& t) : BFloat16Copy(Uninitialized(t.numel())) {
  nn::internal::ConvertToBFloat16(t.data(), t.numel(), mutable_data());
}

Tensor MatMul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b, const BFloat16Operands& bf16) {
  Tensor out = Tensor::Empty(MatMulShape(a, b, transpose_a, transpose_b));
  MatMulKernel(a, b, transpose_a, transpose_b, out, nullptr, std::nullopt, bf16);
  return out;
}

Tensor Linear(const Tensor& x, const Tensor& w, const Tensor& b, const BFloat16Operands& bf16) {
  OTGEN_CHECK(x.rank() == 2 && w.rank() == 2 && x.dim(1) == w.dim(1) && b.rank() == 1 && b.dim(0) == w.dim(0),
              absl::StrCat("Linear: input ", S(x.shape()), ", weight ", S(w.shape()), " and bias ", S(b.shape()),
                           " (expected [M, K], [N, K] and [N])"));
  Tensor out = Tensor::Empty({x.dim(0), w.dim(0)});
  MatMulKernel(x, w, false, true, out, &b, std::nullopt, bf16);
  return out;
}

Tensor LinearRelu(const Tensor& x, const Tensor& w, const Tensor& b, float negative_slope,
                  const BFloat16Operands& bf16) {
  OTGEN_CHECK(x.rank() == 2 && w.rank() == 2 && x.dim(1) == w.dim(1) && b.rank() == 1 && b.dim(0) == w.dim(0),
              absl::StrCat("LinearRelu: input ", S(x.shape()), ", weight ", S(w.shape()), " and bias ", S(b.shape()),
                           " (expected [M, K], [N, K] and [N])"));
  OTGEN_CHECK(negative_slope >= 0.0f && std::isfinite(negative_slope),
              absl::StrCat("LinearRelu: negative_slope ", negative_slope, " (expected finite and >= 0)"));
  Tensor out = Tensor::Empty({x.dim(0), w.dim(0)});
  MatMulKernel(x, w, false, true, out, &b, negative_slope, bf16);
  return out;
}

void MatMulInto(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b, Tensor* out) {
  const Shape shape = MatMulShape(a, b, transpose_a, transpose_b);
  OTGEN_CHECK(out != nullptr && out->defined() && out->shape() == shape,
              absl::StrCat("MatMulInto: output of shape ", out != nullptr && out->defined() ? S(out->shape()) : "none",
                           " for a product of shape ", S(shape)));
  OTGEN_CHECK(!Overlap(*out, a) && !Overlap(*out, b),
              absl::StrCat("MatMulInto: the output of shape ", S(shape), " overlaps an input"));
  MatMulKernel(a, b, transpose_a, transpose_b, *out);
}

Tensor Transpose(const Tensor& x) {
  OTGEN_CHECK(x.rank() == 2, absl::StrCat("Transpose needs a 2-D tensor, got shape ", S(x.shape())));
  Tensor out = Tensor::Empty({x.dim(1), x.dim(0)});
  TransposeMatrix(x.data(), out.data(), x.dim(0), x.dim(1));
  return out;
}

Tensor Permute(const Tensor& x, const std::vector<int>& perm) {
  const int rank = x.rank();
  std::vector<bool> seen(rank, false);
  bool valid = static_cast<int>(perm.size()) == rank;
  for (size_t i = 0; valid && i < perm.size(); ++i) {
    valid = perm[i] >= 0 && perm[i] < rank && !seen[perm[i]];
    if (valid) seen[perm[i]] = true;
  }
  OTGEN_CHECK(valid, absl::StrCat("permutation [", absl::StrJoin(perm, ", "), "] of shape ", S(x.shape())));
  const Shape in_strides = ContiguousStrides(x.shape());
  Shape out_shape(rank), gather_strides(rank);
  for (int i = 0; i < rank; ++i) {
    out_shape[i] = x.shape()[perm[i]];
    gather_strides[i] = in_strides[perm[i]];
  }
  Tensor out = Tensor::Empty(out_shape);
  if (out.numel() == 0) return out;
  const StridedLayout<2> layout = Collapse<2>(out_shape, {ContiguousStrides(out_shape), gather_strides});
  const Shape& d = layout.dims;
  const Shape& g = layout.strides[1];
  const float* px = x.data();
  float* po = out.data();
  const int r = static_cast<int>(d.size());
  // After collapsing, a permutation that moves the innermost input axis is usually a
  // (batched) matrix transpose: out [B, P, Q] from in [B, Q, P].
  if (r == 2 && g[1] == d[0] && g[0] == 1) {
    TransposeMatrix(px, po, d[1], d[0]);
    return out;
  }
  if (r == 3 && g[2] == d[1] && g[1] == 1 && g[0] == d[1] * d[2]) {
    for (int64_t t = 0; t < d[0]; ++t) TransposeMatrix(px + t * d[1] * d[2], po + t * d[1] * d[2], d[2], d[1]);
    return out;
  }
  ForEachRun(layout, [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
    float* o = po + off[0];
    const float* in = px + off[1];
    if (st[1] == 1) {
      std::memcpy(o, in, n * sizeof(float));
    } else {
      for (int64_t i = 0; i < n; ++i) o[i] = in[i * st[1]];
    }
  });
  return out;
}

Tensor Slice(const Tensor& x, int axis, int64_t begin, int64_t end) {
  OTGEN_CHECK(x.rank() >= 1, absl::StrCat("slice of a tensor of shape ", S(x.shape())));
  const AxisSplit s = SplitAt(x.shape(), axis);
  OTGEN_CHECK(0 <= begin && begin <= end && end <= s.d,
              absl::StrCat("slice [", begin, ", ", end, ") along axis ", axis, " of shape ", S(x.shape())));
  Shape out_shape = x.shape();
  out_shape[s.axis] = end - begin;
  Tensor out = Tensor::Empty(out_shape);
  const int64_t run = (end - begin) * s.inner;
  if (run == 0) return out;
  for (int64_t o = 0; o < s.outer; ++o) {
    std::memcpy(out.data() + o * run, x.data() + (o * s.d + begin) * s.inner, run * sizeof(float));
  }
  return out;
}

Tensor PadSlice(const Tensor& x, const Shape& shape, int axis, int64_t begin) {
  const std::string message = absl::StrCat("PadSlice of ", S(x.shape()), " into ", S(shape), " at ", begin,
                                            " along axis ", axis);
  OTGEN_CHECK(x.rank() >= 1 && static_cast<int>(shape.size()) == x.rank(), message);
  const AxisSplit s = SplitAt(shape, axis);
  for (int i = 0; i < x.rank(); ++i) {
    OTGEN_CHECK(i == s.axis || x.shape()[i] == shape[i], message);
  }
  const int64_t len = x.shape()[s.axis];
  OTGEN_CHECK(begin >= 0 && begin + len <= s.d, message);
  Tensor out = Tensor::Zeros(shape);
  const int64_t run = len * s.inner;
  if (run == 0) return out;
  for (int64_t o = 0; o < s.outer; ++o) {
    std::memcpy(out.data() + (o * s.d + begin) * s.inner, x.data() + o * run, run * sizeof(float));
  }
  return out;
}

Tensor Concat(const std::vector<Tensor>& xs, int axis) {
  OTGEN_CHECK(!xs.empty(), "Concat of no tensors");
  const Shape& first = xs[0].shape();
  OTGEN_CHECK(!first.empty(), "Concat of scalars");
  const int a = NormalizeAxis(axis, static_cast<int>(first.size()));
  Shape out_shape = first;
  out_shape[a] = 0;
  for (const Tensor& x : xs) {
    bool ok = x.rank() == static_cast<int>(first.size());
    for (int i = 0; ok && i < x.rank(); ++i) ok = i == a || x.shape()[i] == first[i];
    OTGEN_CHECK(ok, absl::StrCat("Concat along axis ", axis, " of shapes ", S(first), " and ", S(x.shape())));
    out_shape[a] += x.shape()[a];
  }
  Tensor out = Tensor::Empty(out_shape);
  if (out.numel() == 0) return out;
  const int64_t outer = Product(first, 0, a);
  const int64_t inner = Product(first, a + 1, static_cast<int>(first.size()));
  const int64_t out_run = out_shape[a] * inner;
  int64_t offset = 0;
  for (const Tensor& x : xs) {
    const int64_t run = x.shape()[a] * inner;
    if (run > 0) {
      for (int64_t o = 0; o < outer; ++o) {
        std::memcpy(out.data() + o * out_run + offset, x.data() + o * run, run * sizeof(float));
      }
    }
    offset += run;
  }
  return out;
}

Tensor IndexRows(const Tensor& x, const std::vector<int64_t>& indices) {
  OTGEN_CHECK(x.rank() >= 1, absl::StrCat("IndexRows of a tensor of shape ", S(x.shape())));
  const int64_t rows = x.dim(0);
  const int64_t row = Product(x.shape(), 1, x.rank());
  Shape out_shape = x.shape();
  out_shape[0] = static_cast<int64_t>(indices.size());
  Tensor out = Tensor::Empty(out_shape);
  for (size_t i = 0; i < indices.size(); ++i) {
    const int64_t r = indices[i];
    OTGEN_CHECK(0 <= r && r < rows, absl::StrCat("IndexRows: index ", r, " at position ", i,
                                                 " out of range for shape ", S(x.shape())));
    if (row > 0) std::memcpy(out.data() + i * row, x.data() + r * row, row * sizeof(float));
  }
  return out;
}

Tensor ScatterAddRows(const Tensor& x, const std::vector<int64_t>& indices, int64_t num_rows) {
  OTGEN_CHECK(x.rank() >= 1 && x.dim(0) == static_cast<int64_t>(indices.size()) && num_rows >= 0,
              absl::StrCat("ScatterAddRows of shape ", S(x.shape()), " with ", indices.size(), " indices into ",
                           num_rows, " rows"));
  const int64_t row = Product(x.shape(), 1, x.rank());
  Shape out_shape = x.shape();
  out_shape[0] = num_rows;
  Tensor out = Tensor::Zeros(out_shape);
  for (size_t i = 0; i < indices.size(); ++i) {
    const int64_t r = indices[i];
    OTGEN_CHECK(0 <= r && r < num_rows, absl::StrCat("ScatterAddRows: index ", r, " at position ", i,
                                                     " out of range for ", num_rows, " rows"));
    float* o = out.data() + r * row;
    const float* in = x.data() + i * row;
    for (int64_t j = 0; j < row; ++j) o[j] += in[j];
  }
  return out;
}

Tensor BroadcastTo(const Tensor& x, const Shape& shape) {
  OTGEN_CHECK(x.rank() <= static_cast<int>(shape.size()) && Broadcastable(x.shape(), shape) &&
                  BroadcastShapes(x.shape(), shape) == shape,
              absl::StrCat("cannot broadcast shape ", S(x.shape()), " to ", S(shape)));
  Tensor out = Tensor::Empty(shape);
  if (out.numel() == 0) return out;
  const StridedLayout<2> layout = Collapse<2>(shape, {ContiguousStrides(shape), BroadcastStrides(x.shape(), shape)});
  const float* px = x.data();
  float* po = out.data();
  ForEachRun(layout, [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
    float* o = po + off[0];
    const float* in = px + off[1];
    if (st[1] == 1) {
      std::memcpy(o, in, n * sizeof(float));
    } else {
      std::fill(o, o + n, *in);
    }
  });
  return out;
}

Tensor SumTo(const Tensor& x, const Shape& shape) {
  OTGEN_CHECK(static_cast<int>(shape.size()) <= x.rank() && Broadcastable(shape, x.shape()) &&
                  BroadcastShapes(shape, x.shape()) == x.shape(),
              absl::StrCat("cannot sum shape ", S(x.shape()), " to ", S(shape)));
  const int lead = x.rank() - static_cast<int>(shape.size());
  std::vector<int> axes;
  for (int i = 0; i < x.rank(); ++i) {
    if (i < lead || (shape[i - lead] == 1 && x.shape()[i] != 1)) axes.push_back(i);
  }
  if (axes.empty()) return x.Clone().Reshape(shape);
  return Reduce(ReduceKind::kSum, x, axes, /*keepdim=*/true).Reshape(shape);
}

Tensor Equal(const Tensor& a, const Tensor& b) {
  return Compare(a, b, [](float x, float y) { return x == y; });
}

Tensor GreaterEqual(const Tensor& a, const Tensor& b) {
  return Compare(a, b, [](float x, float y) { return x >= y; });
}

Tensor ScaleWhereNotPositive(const Tensor& g, const Tensor& y, float slope, BFloat16Copy* g16) {
  OTGEN_CHECK(g.shape() == y.shape(),
              absl::StrCat("ScaleWhereNotPositive: g ", S(g.shape()), " and y ", S(y.shape()), " differ"));
  Tensor out = Tensor::Empty(g.shape());
  const float* pg = g.data();
  const float* py = y.data();
  float* po = out.data();
  const int64_t n = out.numel();
  if (g16 == nullptr) {
#pragma omp parallel for simd schedule(static) if (n >= kMinParallelElements)
    for (int64_t i = 0; i < n; ++i) po[i] = py[i] > 0.0f ? pg[i] : slope * pg[i];
    return out;
  }
  // Blocks small enough to be converted while in L1.
  *g16 = BFloat16Copy::Uninitialized(n);
  uint16_t* p16 = g16->mutable_data();
  constexpr int64_t kBlock = 2048;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n >= kMinParallelElements)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t begin = blk * kBlock, end = std::min(n, begin + kBlock);
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) po[i] = py[i] > 0.0f ? pg[i] : slope * pg[i];
    nn::internal::ConvertToBFloat16(po + begin, end - begin, p16 + begin);
  }
  return out;
}

double SumAll(const Tensor& x) {
  double acc[4] = {0.0, 0.0, 0.0, 0.0};
  const float* p = x.data();
  const int64_t n = x.numel();
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (int j = 0; j < 4; ++j) acc[j] += p[i + j];
  }
  for (; i < n; ++i) acc[0] += p[i];
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

float MaxAbsDiff(const Tensor& a, const Tensor& b) {
  OTGEN_CHECK(a.shape() == b.shape(), absl::StrCat("MaxAbsDiff of shapes ", S(a.shape()), " and ", S(b.shape())));
  const float* pa = a.data();
  const float* pb = b.data();
  float m = 0.0f;
  for (int64_t i = 0, n = a.numel(); i < n; ++i) {
    if (pa[i] == pb[i]) continue;  // also equal infinities
    const float d = std::fabs(pa[i] - pb[i]);
    if (std::isnan(d)) return kNaN;
    m = std::max(m, d);
  }
  return m;
}

}  // namespace otgen::nn::math
