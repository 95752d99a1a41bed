#include "nn/conv_ops.h"

#include <omp.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nn/column_sums.h"
#include "nn/onednn_context.h"
#include "nn/precision.h"
#include "nn/ops.h"
#include "nn/tensor_math.h"
#include "nn/work_counter.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace otgen::nn {
namespace {

using dnnl::memory;
using Tag = dnnl::memory::format_tag;
constexpr memory::data_type kF32 = memory::data_type::f32;

// ---- Recording helper (as in ops.cc) ----------------------------------------------------

class FunctionNode : public Node {
 public:
  using Rule =
      std::function<std::vector<Var>(const Var& g, const std::vector<Var>& in, const std::vector<bool>& needs)>;
  FunctionNode(const char* name, Rule rule) : name_(name), rule_(std::move(rule)) {}
  std::vector<Var> Backward(const Var& g, const std::vector<bool>& needs) override { return rule_(g, inputs(), needs); }
  const char* name() const override { return name_; }

 private:
  const char* name_;
  Rule rule_;
};

Var Record(const char* name, Tensor value, std::vector<Var> inputs, FunctionNode::Rule rule) {
  if (!AnyRequiresGrad(inputs)) return Var::Constant(std::move(value));
  return RecordOp(std::move(value), std::move(inputs), std::make_shared<FunctionNode>(name, std::move(rule)));
}

Var Const(Tensor t) { return Var::Constant(std::move(t)); }

// Aborts with the status message (shapes were the caller's responsibility).
template <typename T>
T ValueOrDie(absl::StatusOr<T> v, const char* op) {
  OTGEN_CHECK(v.ok(), absl::StrCat(op, ": ", v.status().message()));
  return *std::move(v);
}

memory Wrap(const memory::desc& md, const Tensor& t) {
  return memory(md, OneDnnContext::Get().engine(), const_cast<float*>(t.data()));
}

// ---- Primitive plans (convolutions, batch normalization) ---------------------------------------
//
// Convolution layouts. Measured on the DCGAN shapes (Zen, AVX-512, 2 threads, oneDNN 2.6): with plain NCHW/OIHW
// memory oneDNN runs im2col + sgemm ("gemm:jit"); with format `any` it picks the direct
// jit:avx512_core kernels on nChw16c-blocked data, which are 1.3-2.5x faster including the
// reorders (e.g. ConvTranspose2d(256,128,4,2,1) on [200,256,7,7]: 44 ms plain, 23 ms
// blocked; weight gradients 32 ms vs 23 ms) -- except for a transposed convolution producing
// few channels (1 or 3 output channels: 0.2 ms plain vs 1.3 ms blocked), where the blocked
// kernel wastes most of a 16-channel block. Hence: blocked, unless the backward-data /
// transposed kernel writes fewer than kMinBlockedChannels channels.
constexpr int64_t kMinBlockedChannels = 16;

std::atomic<internal::ConvLayout> conv_layout{internal::ConvLayout::kAuto};

// A 64-byte-aligned heap block, grown (contents dropped) to the largest size asked for. Owned
// and movable.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(AlignedBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&&) = delete;
  ~AlignedBuffer() { std::free(data_); }

  // At least `bytes`; `what` names the buffer in the out-of-memory message.
  void* Reserve(size_t bytes, const char* what) {
    if (bytes_ < bytes) {
      std::free(data_);
      const size_t rounded = (bytes + 63) / 64 * 64;
      data_ = std::aligned_alloc(64, rounded);
      OTGEN_CHECK(data_ != nullptr, absl::StrCat(what, ": cannot allocate ", rounded, " bytes"));
      bytes_ = rounded;
    }
    return data_;
  }
  void* data() const { return data_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// Reordered (or rearranged) copies of the weight tensors that pass through one plan. Several
// weight tensors share a plan when layers have the same geometry: the phi and psi critics of a
// regularized-OT GAN, the three dual pairs of a Sinkhorn-loss SWGAN (seed 001 Algorithm 2), a
// generator's transposed convolution and a critic's convolution of the same shape (one
// backward-data plan). Each is passed again unchanged several times between two optimizer
// steps (the critic of a WGAN-GP step runs each convolution forward 4-5 times), so its copy is
// reused while the caller's values are unchanged: an entry is found by the caller's data
// pointer (else by equal values), and reused only when the caller's bytes compare equal
// (memcmp: exact) to those it was built from. memcmp is 4-6x cheaper than the f32 -> blocked
// bf16 reorder it saves (0.1 vs 0.62 ms for a 256x128x5x5 weight). Up to kEntries tensors, the
// least recently used entry rebuilt for a new one. (With one entry per plan, the SWGAN MNIST
// Sinkhorn-loss panel rebuilt 9 copies of its 256x128x5x5 weights per generator iteration
// where 5 changed; ONEDNN_VERBOSE, 30 iterations from its step-1000 checkpoint.)
std::atomic<int64_t> weight_copy_builds{0};

class ReorderedWeightsCache {
 public:
  struct Entry {
    const void* source = nullptr;    // the caller's data pointer at the last build
    std::vector<char> source_bytes;  // the caller's bytes at the last build
    std::vector<AlignedBuffer> copies;  // the plan's copies (one per consumer: phases have one each)
    uint64_t last_use = 0;
  };

  explicit ReorderedWeightsCache(size_t copies_per_entry) : copies_per_entry_(copies_per_entry) {
    entries_.reserve(kEntries);
  }

  // The entry for the `bytes` at `data`; *stale is set when its copies must be rebuilt from
  // them (the entry then already records them as its source).
  Entry& Lookup(const void* data, size_t bytes, bool* stale) {
    ++clock_;
    const char* p = static_cast<const char*>(data);
    auto same_bytes = [&](const Entry& e) {
      return e.source_bytes.size() == bytes && std::memcmp(e.source_bytes.data(), p, bytes) == 0;
    };
    Entry* entry = nullptr;
    for (Entry& e : entries_) {
      if (e.source == data) entry = &e;
    }
    if (entry == nullptr) {  // new storage, perhaps a copy of cached values (memcmp stops early when not)
      for (Entry& e : entries_) {
        if (same_bytes(e)) entry = &e;
      }
      if (entry != nullptr) entry->source = data;
    }
    if (entry == nullptr) {
      if (entries_.size() < kEntries) {
        entries_.emplace_back();
        entry = &entries_.back();
        entry->copies.resize(copies_per_entry_);
      } else {
        entry = &*std::min_element(entries_.begin(), entries_.end(),
                                   [](const Entry& x, const Entry& y) { return x.last_use < y.last_use; });
      }
      entry->source = data;
      entry->source_bytes.clear();
    }
    entry->last_use = clock_;
    *stale = !same_bytes(*entry);
    if (*stale) {
      entry->source_bytes.assign(p, p + bytes);
      weight_copy_builds.fetch_add(1);
    }
    return *entry;
  }

 private:
  static constexpr size_t kEntries = 8;
  size_t copies_per_entry_;
  std::vector<Entry> entries_;  // reserved to kEntries: references stay valid
  uint64_t clock_ = 0;
};

// One executable primitive plus the reorders between the callers' plain layouts and the
// layouts the primitive chose. Copies share the underlying oneDNN objects.
struct PrimitivePlan {
  struct Arg {
    int id;                // DNNL_ARG_*
    memory::desc user_md;  // plain layout of the caller's tensor
    memory::desc prim_md;  // layout the primitive wants
    bool output;
    bool reordered;
    dnnl::reorder reorder;  // user -> prim for inputs, prim -> user for outputs
    std::shared_ptr<ReorderedWeightsCache> cache;  // reordered inputs marked reusable
  };
  dnnl::primitive primitive;
  std::vector<Arg> args;
};

struct ArgSpec {
  int id;
  memory::desc user_md;
  bool output;
  bool reusable = false;  // an input worth a ReorderedWeightsCache (weights)
};

PrimitivePlan MakePlan(dnnl::primitive primitive, const dnnl::primitive_desc_base& pd,
                       const std::vector<ArgSpec>& specs) {
  const dnnl::engine& engine = OneDnnContext::Get().engine();
  PrimitivePlan plan;
  plan.primitive = std::move(primitive);
  for (const ArgSpec& s : specs) {
    PrimitivePlan::Arg a;
    a.id = s.id;
    a.user_md = s.user_md;
    a.prim_md = pd.query_md(dnnl::query::exec_arg_md, s.id);
    a.output = s.output;
    a.reordered = a.prim_md != a.user_md;
    if (a.reordered && s.reusable && !s.output) a.cache = std::make_shared<ReorderedWeightsCache>(1);
    if (a.reordered) {
      a.reorder = s.output ? dnnl::reorder(dnnl::reorder::primitive_desc(engine, a.prim_md, engine, a.user_md))
                           : dnnl::reorder(dnnl::reorder::primitive_desc(engine, a.user_md, engine, a.prim_md));
    }
    plan.args.push_back(std::move(a));
  }
  return plan;
}

// Scratch buffers for blocked copies of the arguments, one slot per argument position,
// grown to the largest size seen and reused (fresh large allocations cost page faults).
// Plans execute one at a time under this mutex (oneDNN parallelizes each one), which also
// guards the scratch slots.
std::mutex& ExecutionMutex() {
  static std::mutex* const mu = new std::mutex();
  return *mu;
}

void* Scratch(size_t slot, size_t bytes) {
  static std::vector<AlignedBuffer>* const slots = new std::vector<AlignedBuffer>();
  if (slots->size() <= slot) slots->resize(slot + 1);
  return (*slots)[slot].Reserve(bytes, "oneDNN scratch");
}

// Runs `plan` on the callers' tensors (`data[k]` for plan.args[k]; outputs are written).
void Execute(const PrimitivePlan& plan, const std::vector<float*>& data) {
  OneDnnContext& ctx = OneDnnContext::Get();
  std::lock_guard<std::mutex> lock(ExecutionMutex());
  dnnl::stream& stream = ctx.stream();
  std::unordered_map<int, memory> exec_args;
  std::vector<std::pair<size_t, memory>> outputs;  // (arg index, primitive-layout memory)
  for (size_t k = 0; k < plan.args.size(); ++k) {
    const PrimitivePlan::Arg& a = plan.args[k];
    memory user(a.user_md, ctx.engine(), data[k]);
    if (!a.reordered) {
      exec_args.emplace(a.id, user);
      continue;
    }
    if (a.cache != nullptr) {
      bool stale = false;
      AlignedBuffer& copy = a.cache->Lookup(data[k], a.user_md.get_size(), &stale).copies[0];
      if (stale) {
        memory prim(a.prim_md, ctx.engine(), copy.Reserve(a.prim_md.get_size(), "oneDNN weights cache"));
        a.reorder.execute(stream, user, prim);
      }
      exec_args.emplace(a.id, memory(a.prim_md, ctx.engine(), copy.data()));
      continue;
    }
    memory internal(a.prim_md, ctx.engine(), Scratch(k, a.prim_md.get_size()));
    if (a.output) {
      outputs.emplace_back(k, internal);
    } else {
      a.reorder.execute(stream, user, internal);
    }
    exec_args.emplace(a.id, internal);
  }
  plan.primitive.execute(stream, exec_args);
  for (auto& [k, internal] : outputs) {
    const PrimitivePlan::Arg& a = plan.args[k];
    memory user(a.user_md, ctx.engine(), data[k]);
    a.reorder.execute(stream, internal, user);
  }
  stream.wait();
}

// The convolution in "conv view": src [N,I,Hs,Ws], weights [O,I,kh,kw], dst [N,O,Hd,Wd].
struct ConvShape {
  int64_t n, i, hs, ws, o, kh, kw, hd, wd, stride, padding;

  std::string Key() const {
    return absl::StrCat(n, ",", i, ",", hs, ",", ws, "|", o, ",", kh, ",", kw, "|", hd, ",", wd, "|", stride, ",",
                        padding);
  }
  memory::dims src() const { return {n, i, hs, ws}; }
  memory::dims weights() const { return {o, i, kh, kw}; }
  memory::dims dst() const { return {n, o, hd, wd}; }
  memory::dims strides() const { return {stride, stride}; }
  // oneDNN requires (Hs - kh + pad_l + pad_r) / stride + 1 == Hd with integer division,
  // which symmetric padding satisfies for every shape our validators accept.
  memory::dims pads() const { return {padding, padding}; }
  // Nominal multiply-adds of the forward, backward-data or backward-weights product
  // (nn/work_counter.h).
  int64_t Macs() const { return n * o * hd * wd * i * kh * kw; }
};

ConvShape ConvView(const Shape& src, const Shape& weights, const Shape& dst, const Conv2dGeometry& g) {
  return ConvShape{src[0],     src[1], src[2], src[3],   weights[0], weights[2],
                   weights[3], dst[2], dst[3], g.stride, g.padding};
}

bool UseBlocked(bool auto_choice) {
  switch (conv_layout.load()) {
    case internal::ConvLayout::kPlain:
      return false;
    case internal::ConvLayout::kBlocked:
      return true;
    case internal::ConvLayout::kAuto:
    case internal::ConvLayout::kGemm:
    case internal::ConvLayout::kPhases:
      break;
  }
  return auto_choice;
}

float* Ptr(const Tensor& t) { return const_cast<float*>(t.data()); }

// Mixed precision (nn/precision.h): the bf16 operands of a blocked-layout primitive come
// from the plan's reorders, which convert while they re-lay the data out. Plain-layout
// primitives (few channels, little work) stay float32.
bool UseBFloat16(bool blocked) { return blocked && BFloat16OperandsInEffect(); }

// The primitive descriptor `make(operand type)` gives for bf16 operands when `bf16` and oneDNN
// has a native bf16 kernel for it, else for float32 operands.
template <typename MakePd>
auto NativeBFloat16OrFloat32Pd(bool bf16, const MakePd& make) {
  if (bf16) {
    auto pd = make(memory::data_type::bf16);
    if (internal::IsNativeBFloat16Impl(pd.impl_info_str())) return pd;
  }
  return make(kF32);
}

const char* PrecisionKey(bool bf16) { return bf16 ? "|bf16" : "|f32"; }

// `operands`: the type of src and weights (dst and bias are float32).
dnnl::convolution_forward::primitive_desc ConvForwardPd(const ConvShape& c, bool blocked, bool bias,
                                                        memory::data_type operands = kF32) {
  const Tag data_tag = blocked ? Tag::any : Tag::nchw;
  const Tag weights_tag = blocked ? Tag::any : Tag::oihw;
  const memory::desc bias_md = bias ? memory::desc({c.o}, kF32, Tag::x) : memory::desc();
  dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                       memory::desc(c.src(), operands, data_tag),
                                       memory::desc(c.weights(), operands, weights_tag), bias_md,
                                       memory::desc(c.dst(), kF32, data_tag), c.strides(), c.pads(), c.pads());
  return dnnl::convolution_forward::primitive_desc(desc, OneDnnContext::Get().engine());
}

// dst = conv(src, weights) + bias.
Tensor ConvForwardKernel(const Tensor& src, const Tensor& weights, const Tensor* bias, const ConvShape& c) {
  CountProductMacs(c.Macs());
  const bool blocked = UseBlocked(true);
  const bool bf16 = UseBFloat16(blocked);
  const std::string key = absl::StrCat("otgen.conv_fwd|", c.Key(), "|", bias != nullptr, blocked, PrecisionKey(bf16));
  const PrimitivePlan plan = OneDnnContext::Get().GetOrCreate<PrimitivePlan>(key, [&] {
    const auto pd = NativeBFloat16OrFloat32Pd(
        bf16, [&](memory::data_type operands) { return ConvForwardPd(c, blocked, bias != nullptr, operands); });
    std::vector<ArgSpec> specs = {{DNNL_ARG_SRC, memory::desc(c.src(), kF32, Tag::nchw), false},
                                  {DNNL_ARG_WEIGHTS, memory::desc(c.weights(), kF32, Tag::oihw), false, true},
                                  {DNNL_ARG_DST, memory::desc(c.dst(), kF32, Tag::nchw), true}};
    if (bias != nullptr) specs.push_back({DNNL_ARG_BIAS, memory::desc({c.o}, kF32, Tag::x), false});
    return MakePlan(dnnl::convolution_forward(pd), pd, specs);
  });
  Tensor dst = Tensor::Empty({c.n, c.o, c.hd, c.wd});
  std::vector<float*> data = {Ptr(src), Ptr(weights), dst.data()};
  if (bias != nullptr) data.push_back(Ptr(*bias));
  Execute(plan, data);
  return dst;
}

// ---- Transposed convolution as GEMM + col2im ----------------------------------------------------
//
// oneDNN 2.6's deconvolution (its convolution backward-data kernels) reaches 150-170 GFLOP/s
// per core on the DCGAN generator layers, its sgemm/matmul 250. For x [N,O,Hd,Wd] (the
// transposed convolution's input) and weights w [O,I,kh,kw], per chunk of images:
//   A [(n,y,x), o]        = x[n,o,y,x]                         (NCHW -> NHWC transpose)
//   Z [(n,y,x), (u,v,i)]  = A * Wp,  Wp[o,(u,v,i)] = w[o,i,u,v]  (one large matmul)
//   T [(oy,ox), i]        = b[i] + sum Z[(n,y,x),(u,v,i)] over s y + u - p = oy, s x + v - p = ox
//   out[n,i,oy,ox]        = T[(oy,ox), i]                       (NHWC -> NCHW transpose)
// The chunk's Z stays in the last-level cache; T (one image) in L2. kAuto uses it when the
// output has at least kMinBlockedChannels channels (the col2im accumulation is vectorized over
// them) and the phase path below does not apply.

// Stores of the transposes below: float32 as is, or rounded to bf16 (nn/precision.h).
inline void StoreElement(float v, float* dst) { *dst = v; }
inline void StoreElement(float v, uint16_t* dst) { *dst = internal::ToBFloat16(v); }
#ifdef __AVX512F__
inline void Store16(__m512 v, float* dst) { _mm512_storeu_ps(dst, v); }
inline void Store16(__m512 v, uint16_t* dst) {
#ifdef __AVX512BF16__
  const __m256bh h = _mm512_cvtneps_pbh(v);
  std::memcpy(dst, &h, sizeof(h));
#else
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  for (int k = 0; k < 16; ++k) dst[k] = internal::ToBFloat16(lanes[k]);
#endif
}
#endif

// dst[c * ld_dst + r] = src[r * ld_src + c] for r < rows, c < cols; with a uint16_t
// destination the values are rounded to bf16 on the way (one pass instead of two).
// `stream`: float32 16-value stores that fill whole aligned cache lines bypass the caches
// (for large outputs that are not read again right away).
template <typename Out>
void TransposeMatrix(const float* src, int64_t rows, int64_t cols, int64_t ld_src, Out* dst, int64_t ld_dst,
                     bool stream = false) {
  int64_t r0 = 0;
#ifdef __AVX512F__
  if constexpr (std::is_same_v<Out, float>) {
    stream = stream && ld_dst % 16 == 0 && reinterpret_cast<uintptr_t>(dst) % 64 == 0;
  } else {
    stream = false;
  }
  for (; r0 + 16 <= rows; r0 += 16) {
    int64_t c0 = 0;
    for (; c0 + 16 <= cols; c0 += 16) {
      __m512 r[16], t[16];
      for (int k = 0; k < 16; ++k) r[k] = _mm512_loadu_ps(src + (r0 + k) * ld_src + c0);
      for (int k = 0; k < 16; k += 2) {
        t[k] = _mm512_unpacklo_ps(r[k], r[k + 1]);
        t[k + 1] = _mm512_unpackhi_ps(r[k], r[k + 1]);
      }
      for (int k = 0; k < 16; k += 4) {
        r[k] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[k]), _mm512_castps_pd(t[k + 2])));
        r[k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[k]), _mm512_castps_pd(t[k + 2])));
        r[k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[k + 1]), _mm512_castps_pd(t[k + 3])));
        r[k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[k + 1]), _mm512_castps_pd(t[k + 3])));
      }
      // r[4q + j]: columns j, j+4, j+8, j+12 (one 128-bit lane each) of rows 4q..4q+3.
      for (int j = 0; j < 4; ++j) {
        t[j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);        // cols j, j+8 of rows 0-7
        t[4 + j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xdd);    // cols j+4, j+12 of rows 0-7
        t[8 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
        t[12 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xdd);
      }
      for (int j = 0; j < 4; ++j) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);           // col j
        r[4 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0x88);  // col j + 4
        r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);       // col j + 8
        r[12 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0xdd); // col j + 12
      }
      if constexpr (std::is_same_v<Out, float>) {
        if (stream) {
          for (int k = 0; k < 16; ++k) _mm512_stream_ps(dst + (c0 + k) * ld_dst + r0, r[k]);
          continue;
        }
      }
      for (int k = 0; k < 16; ++k) Store16(r[k], dst + (c0 + k) * ld_dst + r0);
    }
    for (; c0 < cols; ++c0) {
      for (int64_t r = r0; r < r0 + 16; ++r) StoreElement(src[r * ld_src + c0], dst + c0 * ld_dst + r);
    }
  }
#endif
  for (int64_t c = 0; c < cols; ++c) {
    for (int64_t r = r0; r < rows; ++r) StoreElement(src[r * ld_src + c], dst + c * ld_dst + r);
  }
#ifdef __AVX512F__
  if (stream) _mm_sfence();
#endif
}


// Scratch slots past the primitive arguments' (see Execute).
constexpr size_t kGemmScratchSlot = 16;

// The matmul [rows, k] x [k, cols], plain row-major, cached by shape; `operands` is the type
// of both factors (the product is float32, added to the destination when `accumulate`). An
// empty handle when bf16 has no native kernel.
dnnl::matmul GemmPrimitive(int64_t rows, int64_t k, int64_t cols, memory::data_type operands,
                           bool accumulate = false) {
  const bool bf16 = operands == memory::data_type::bf16;
  const std::string key =
      absl::StrCat("otgen.gemm|", rows, ",", k, ",", cols, accumulate ? "|acc" : "", PrecisionKey(bf16));
  return OneDnnContext::Get().GetOrCreate<dnnl::matmul>(key, [&] {
    const dnnl::matmul::desc desc(memory::desc({rows, k}, operands, Tag::ab),
                                  memory::desc({k, cols}, operands, Tag::ab),
                                  memory::desc({rows, cols}, kF32, Tag::ab));
    dnnl::primitive_attr attr;
    if (accumulate) {
      dnnl::post_ops ops;
      ops.append_sum(1.0f);
      attr.set_post_ops(ops);
    }
    const dnnl::matmul::primitive_desc pd(desc, attr, OneDnnContext::Get().engine());
    return !bf16 || internal::IsNativeBFloat16Impl(pd.impl_info_str()) ? dnnl::matmul(pd) : dnnl::matmul();
  });
}

// Z chunks of about this many bytes (they stay in the shared last-level cache).
constexpr int64_t kGemmChunkBytes = int64_t{8} << 20;

// Per-channel mean and squared deviations of one image's tile T [pixels, channels] (in L2),
// into image_mean / image_m2 [channels]; `scratch` holds 2 * channels floats. Float sums
// within a pixel block of 16, double across blocks.
void TileMoments(const float* t, int64_t pixels, int64_t channels, float* scratch, double* image_mean,
                 double* image_m2) {
  float* mean = scratch;
  float* acc = scratch + channels;
  constexpr int64_t kBlock = 16;
  for (int64_t i = 0; i < channels; ++i) image_mean[i] = image_m2[i] = 0;
  for (int64_t p0 = 0; p0 < pixels; p0 += kBlock) {
    std::fill(acc, acc + channels, 0.0f);
    for (int64_t p = p0; p < std::min(pixels, p0 + kBlock); ++p) {
      const float* tp = t + p * channels;
#pragma omp simd
      for (int64_t i = 0; i < channels; ++i) acc[i] += tp[i];
    }
    for (int64_t i = 0; i < channels; ++i) image_mean[i] += acc[i];
  }
  for (int64_t i = 0; i < channels; ++i) {
    image_mean[i] /= static_cast<double>(pixels);
    mean[i] = static_cast<float>(image_mean[i]);
  }
  for (int64_t p0 = 0; p0 < pixels; p0 += kBlock) {
    std::fill(acc, acc + channels, 0.0f);
    for (int64_t p = p0; p < std::min(pixels, p0 + kBlock); ++p) {
      const float* tp = t + p * channels;
#pragma omp simd
      for (int64_t i = 0; i < channels; ++i) {
        const float d = tp[i] - mean[i];
        acc[i] += d * d;
      }
    }
    for (int64_t i = 0; i < channels; ++i) image_m2[i] += acc[i];
  }
}

// Combines per-image moments [images, channels] (each over `pixels` values) in image order.
void CombineImageMoments(const double* image_mean, const double* image_m2, int64_t images, int64_t channels,
                         int64_t pixels, ChannelMoments* moments) {
  moments->mean = Tensor::Empty({channels});
  moments->variance = Tensor::Empty({channels});
  for (int64_t i = 0; i < channels; ++i) {
    double mean = 0;
    for (int64_t n = 0; n < images; ++n) mean += image_mean[n * channels + i];
    mean /= static_cast<double>(images);
    double m2 = 0, spread = 0;
    for (int64_t n = 0; n < images; ++n) {
      const double d = image_mean[n * channels + i] - mean;
      m2 += image_m2[n * channels + i];
      spread += d * d;
    }
    moments->mean.data()[i] = static_cast<float>(mean);
    moments->variance.data()[i] =
        static_cast<float>((m2 + static_cast<double>(pixels) * spread) / static_cast<double>(images * pixels));
  }
}

// `moments`, when not null, receives the output's ChannelMoments (see ConvTranspose2d).
Tensor ConvBackwardDataGemm(const Tensor& dst_grad, const Tensor& weights, const Tensor* bias, const ConvShape& c,
                            ChannelMoments* moments) {
  const int64_t kk = c.kh * c.kw;
  const int64_t zcols = kk * c.i;         // Z columns (u, v, i)
  const int64_t pin = c.hd * c.wd;        // pixels of an input image
  const int64_t pout = c.hs * c.ws;       // pixels of an output image
  const int64_t chunk = std::clamp<int64_t>(kGemmChunkBytes / (pin * zcols * 4), 1, c.n);
  const int threads = omp_get_max_threads();
  Tensor out = Tensor::Empty({c.n, c.i, c.hs, c.ws});
  std::vector<double> image_mean, image_m2;
  if (moments != nullptr) {
    image_mean.resize(c.n * c.i);
    image_m2.resize(c.n * c.i);
  }

  OneDnnContext& ctx = OneDnnContext::Get();
  std::lock_guard<std::mutex> lock(ExecutionMutex());
  float* wp = static_cast<float*>(Scratch(kGemmScratchSlot, sizeof(float) * c.o * zcols));
  float* a = static_cast<float*>(Scratch(kGemmScratchSlot + 1, sizeof(float) * chunk * pin * c.o));
  float* z = static_cast<float*>(Scratch(kGemmScratchSlot + 2, sizeof(float) * chunk * pin * zcols));
  // Per thread: a tile [pout, c.i] and 2 c.i floats for TileMoments.
  const int64_t tile_stride = (pout + 2) * c.i;
  float* tiles = static_cast<float*>(Scratch(kGemmScratchSlot + 3, sizeof(float) * threads * tile_stride));
  const float* w = weights.data();
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < c.o; ++o) {
    for (int64_t i = 0; i < c.i; ++i) {
      for (int64_t uv = 0; uv < kk; ++uv) wp[o * zcols + uv * c.i + i] = w[(o * c.i + i) * kk + uv];
    }
  }
  const memory wp_mem(memory::desc({c.o, zcols}, kF32, Tag::ab), ctx.engine(), wp);
  // Mixed precision (nn/precision.h): bf16 copies of A and Wp, float32 Z.
  const bool bf16 = BFloat16OperandsInEffect();
  constexpr memory::data_type kBf16 = memory::data_type::bf16;
  uint16_t* wp16 = nullptr;
  uint16_t* a16 = nullptr;
  if (bf16) {
    wp16 = static_cast<uint16_t*>(Scratch(kGemmScratchSlot + 4, sizeof(uint16_t) * c.o * zcols));
    a16 = static_cast<uint16_t*>(Scratch(kGemmScratchSlot + 5, sizeof(uint16_t) * chunk * pin * c.o));
    internal::ConvertToBFloat16(wp, c.o * zcols, wp16);
  }
  const float* x = dst_grad.data();
  const float* b = bias != nullptr ? bias->data() : nullptr;
  for (int64_t n0 = 0; n0 < c.n; n0 += chunk) {
    const int64_t images = std::min(chunk, c.n - n0);
    const int64_t rows = images * pin;
    const dnnl::matmul gemm16 = bf16 ? GemmPrimitive(rows, c.o, zcols, kBf16) : dnnl::matmul();
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < images; ++n) {
      if (gemm16) {
        TransposeMatrix(x + (n0 + n) * c.o * pin, c.o, pin, pin, a16 + n * pin * c.o, c.o);
      } else {
        TransposeMatrix(x + (n0 + n) * c.o * pin, c.o, pin, pin, a + n * pin * c.o, c.o);
      }
    }
    if (gemm16) {
      gemm16.execute(ctx.stream(),
                     {{DNNL_ARG_SRC, memory(memory::desc({rows, c.o}, kBf16, Tag::ab), ctx.engine(), a16)},
                      {DNNL_ARG_WEIGHTS, memory(memory::desc({c.o, zcols}, kBf16, Tag::ab), ctx.engine(), wp16)},
                      {DNNL_ARG_DST, memory(memory::desc({rows, zcols}, kF32, Tag::ab), ctx.engine(), z)}});
    } else {
      GemmPrimitive(rows, c.o, zcols, kF32)
          .execute(ctx.stream(), {{DNNL_ARG_SRC, memory(memory::desc({rows, c.o}, kF32, Tag::ab), ctx.engine(), a)},
                                  {DNNL_ARG_WEIGHTS, wp_mem},
                                  {DNNL_ARG_DST, memory(memory::desc({rows, zcols}, kF32, Tag::ab), ctx.engine(), z)}});
    }
    ctx.stream().wait();
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < images; ++n) {
      float* t = tiles + static_cast<int64_t>(omp_get_thread_num()) * tile_stride;
      for (int64_t p = 0; p < pout; ++p) {
        float* tp = t + p * c.i;
        if (b != nullptr) {
          std::memcpy(tp, b, sizeof(float) * c.i);
        } else {
          std::memset(tp, 0, sizeof(float) * c.i);
        }
      }
      for (int64_t y = 0; y < c.hd; ++y) {
        for (int64_t xx = 0; xx < c.wd; ++xx) {
          const float* zr = z + ((n * c.hd + y) * c.wd + xx) * zcols;
          for (int64_t u = 0; u < c.kh; ++u) {
            const int64_t oy = c.stride * y + u - c.padding;
            if (oy < 0 || oy >= c.hs) continue;
            for (int64_t v = 0; v < c.kw; ++v) {
              const int64_t ox = c.stride * xx + v - c.padding;
              if (ox < 0 || ox >= c.ws) continue;
              float* tp = t + (oy * c.ws + ox) * c.i;
              const float* zp = zr + (u * c.kw + v) * c.i;
#pragma omp simd
              for (int64_t i = 0; i < c.i; ++i) tp[i] += zp[i];
            }
          }
        }
      }
      if (moments != nullptr) {
        TileMoments(t, pout, c.i, t + pout * c.i, image_mean.data() + (n0 + n) * c.i,
                    image_m2.data() + (n0 + n) * c.i);
      }
      TransposeMatrix(t, pout, c.i, c.i, out.data() + (n0 + n) * c.i * pout, pout);
    }
  }
  if (moments != nullptr) CombineImageMoments(image_mean.data(), image_m2.data(), c.n, c.i, pout, moments);
  return out;
}

// ---- Transposed convolution as one stride-1 convolution per output phase ---------------------
//
// With stride s, an output pixel oy = s a + ry (phase ry = oy mod s) receives only the kernel
// rows u = u0, u0 + s, ..., u0 + s (m - 1), where u0 = (ry + p) mod s, each from input row
// y = a + (ry + p - u) / s. Per phase (ry, rx), with the phase's taps flipped,
//   K[i, o, t, t'] = w[o, i, u0 + s (m - 1 - t), v0 + s (m' - 1 - t')]          [I, O, m, m']
//   out[n, i, s a + ry, s b + rx] = b[i] + sum_{o,t,t'} x[n, o, a + t - pl, b + t' - pl'] K[i, o, t, t']
// with pl = m - 1 - floor((ry + p) / s) (x is zero outside its rows): a plain stride-1
// convolution of the transposed convolution's input x, which oneDNN runs with its forward
// kernels (brgconv, on AMX in bf16). The matmul + col2im above also writes and re-reads a column
// matrix kh kw times the output's size. conv_ops_bench BM_ConvTransposeKernels, 2-core Sapphire
// Rapids, ms, gemm -> phases:
//   ConvTranspose2d(256,128,5,2,2) on [64,256,4,4]          bf16  2.26 -> 1.25   f32  5.11 -> 3.42
//   ConvTranspose2d(128,64,5,2,2,op 1) on [64,128,7,7]      bf16  2.00 -> 0.91   f32  4.11 -> 3.13
//   ConvTranspose2d(256,128,4,2,1) on [200,256,7,7]         bf16  11.1 -> 7.8    f32  32.3 -> 30.0
//   ConvTranspose2d(128,64,4,2,1) on [200,128,14,14]        bf16  17.8 -> 10.5   f32  37.2 -> 32.5
// x is reordered once for the s^2 phase convolutions; their outputs are interleaved into NCHW in
// one pass per image that adds the bias and gathers the ChannelMoments. The phase weights are
// rebuilt and reordered only when w's values change (the critic of a WGAN-GP step applies the
// same weights several times between optimizer steps).

// One axis of one phase: kernel taps first_tap + s j (j < taps), `size` outputs, and the
// stride-1 convolution's paddings.
struct PhaseAxis {
  int64_t first_tap = 0, taps = 0, size = 0, pad_l = 0, pad_r = 0;
};

// The axis of phase r for an input of `in` and an output of `out` pixels; false when the phase
// has no taps or no outputs, or would need a negative padding (then the GEMM path runs).
bool MakePhaseAxis(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, int64_t r,
                   PhaseAxis* axis) {
  axis->first_tap = (r + padding) % stride;
  axis->taps = axis->first_tap < kernel ? (kernel - 1 - axis->first_tap) / stride + 1 : 0;
  axis->size = r < out ? (out - 1 - r) / stride + 1 : 0;
  axis->pad_l = axis->taps - 1 - (r + padding) / stride;
  axis->pad_r = axis->size - 1 + axis->taps - axis->pad_l - in;
  return axis->taps > 0 && axis->size > 0 && axis->pad_l >= 0 && axis->pad_r >= 0;
}

struct PhaseConvPlan {
  struct Phase {
    PhaseAxis y, x;
    dnnl::convolution_forward conv;
    memory::desc weights_user_md;  // K, float32 oihw
    memory::desc weights_md;       // the primitive's weights layout
    dnnl::reorder weights_reorder;  // empty when weights_md is weights_user_md
    memory::desc dst_md;            // the primitive's output layout (float32)
    memory::desc nhwc_md;           // the interleaving pass reads NHWC
    dnnl::reorder dst_reorder;      // dst_md -> nhwc_md; empty when they are the same
  };
  bool usable = false;
  std::vector<Phase> phases;  // index ry * stride + rx
  memory::desc src_user_md, src_md;
  dnnl::reorder src_reorder;  // empty when src_md is src_user_md
  // Per weight tensor, each phase's K in its weights_md (copies[k] for phases[k]).
  std::unique_ptr<ReorderedWeightsCache> weights;
};

std::shared_ptr<PhaseConvPlan> MakePhaseConvPlan(const ConvShape& c, bool bf16) {
  auto plan = std::make_shared<PhaseConvPlan>();
  const dnnl::engine& engine = OneDnnContext::Get().engine();
  plan->src_user_md = memory::desc(c.dst(), kF32, Tag::nchw);
  try {
    for (int64_t ry = 0; ry < c.stride; ++ry) {
      for (int64_t rx = 0; rx < c.stride; ++rx) {
        PhaseConvPlan::Phase ph;
        if (!MakePhaseAxis(c.hd, c.hs, c.kh, c.stride, c.padding, ry, &ph.y) ||
            !MakePhaseAxis(c.wd, c.ws, c.kw, c.stride, c.padding, rx, &ph.x)) {
          return plan;
        }
        const memory::dims weights_dims = {c.i, c.o, ph.y.taps, ph.x.taps};
        const memory::dims dst_dims = {c.n, c.i, ph.y.size, ph.x.size};
        const auto pd = NativeBFloat16OrFloat32Pd(bf16, [&](memory::data_type operands) {
          const dnnl::convolution_forward::desc desc(
              dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
              memory::desc(c.dst(), operands, Tag::any), memory::desc(weights_dims, operands, Tag::any),
              memory::desc(), memory::desc(dst_dims, kF32, Tag::any), {1, 1}, {ph.y.pad_l, ph.x.pad_l},
              {ph.y.pad_r, ph.x.pad_r});
          return dnnl::convolution_forward::primitive_desc(desc, engine);
        });
        const memory::desc src_md = pd.src_desc();
        if (plan->phases.empty()) {
          plan->src_md = src_md;
        } else if (src_md != plan->src_md) {
          return plan;  // the phases would need different copies of x
        }
        ph.conv = dnnl::convolution_forward(pd);
        ph.weights_user_md = memory::desc(weights_dims, kF32, Tag::oihw);
        ph.weights_md = pd.weights_desc();
        if (ph.weights_md != ph.weights_user_md) {
          ph.weights_reorder = dnnl::reorder(dnnl::reorder::primitive_desc(engine, ph.weights_user_md, engine,
                                                                           ph.weights_md));
        }
        ph.dst_md = pd.dst_desc();
        ph.nhwc_md = memory::desc(dst_dims, kF32, Tag::nhwc);
        if (ph.dst_md != ph.nhwc_md) {
          ph.dst_reorder = dnnl::reorder(dnnl::reorder::primitive_desc(engine, ph.dst_md, engine, ph.nhwc_md));
        }
        plan->phases.push_back(std::move(ph));
      }
    }
    if (plan->src_md != plan->src_user_md) {
      plan->src_reorder =
          dnnl::reorder(dnnl::reorder::primitive_desc(engine, plan->src_user_md, engine, plan->src_md));
    }
  } catch (const dnnl::error&) {
    return std::make_shared<PhaseConvPlan>();  // no oneDNN kernel for a phase: not usable
  }
  plan->weights = std::make_unique<ReorderedWeightsCache>(plan->phases.size());
  plan->usable = true;
  return plan;
}

// Scratch slots of the phase path: x's copy, then per phase the primitive's output and its
// NHWC copy, then the per-thread tiles.
constexpr size_t kPhaseScratchSlot = 32;

std::atomic<int64_t> phase_convolution_runs{0};

Tensor ConvBackwardDataPhases(const Tensor& dst_grad, const Tensor& weights, const Tensor* bias, const ConvShape& c,
                              ChannelMoments* moments, PhaseConvPlan& plan) {
  phase_convolution_runs.fetch_add(1);
  const int64_t s = c.stride;
  const int64_t phase_count = s * s;
  const int64_t pout = c.hs * c.ws;
  const int threads = omp_get_max_threads();
  Tensor out = Tensor::Empty({c.n, c.i, c.hs, c.ws});
  std::vector<double> image_mean, image_m2;
  if (moments != nullptr) {
    image_mean.resize(c.n * c.i);
    image_m2.resize(c.n * c.i);
  }
  OneDnnContext& ctx = OneDnnContext::Get();
  dnnl::stream& stream = ctx.stream();
  std::lock_guard<std::mutex> lock(ExecutionMutex());

  // K per phase, rebuilt when w's values differ from those its copies were built from.
  bool stale = false;
  std::vector<AlignedBuffer>& phase_weights =
      plan.weights->Lookup(weights.data(), sizeof(float) * weights.numel(), &stale).copies;
  if (stale) {
    const float* w = weights.data();
    const int64_t kk = c.kh * c.kw;
    for (size_t p = 0; p < plan.phases.size(); ++p) {
      const PhaseConvPlan::Phase& ph = plan.phases[p];
      void* phase_k = phase_weights[p].Reserve(ph.weights_md.get_size(), "phase weights");
      const int64_t my = ph.y.taps, mx = ph.x.taps;
      float* k = static_cast<float*>(
          ph.weights_reorder ? Scratch(kPhaseScratchSlot, ph.weights_user_md.get_size()) : phase_k);
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < c.i; ++i) {
        for (int64_t o = 0; o < c.o; ++o) {
          const float* wo = w + (o * c.i + i) * kk;
          float* ko = k + (i * c.o + o) * my * mx;
          for (int64_t t = 0; t < my; ++t) {
            const int64_t u = ph.y.first_tap + s * (my - 1 - t);
            for (int64_t t2 = 0; t2 < mx; ++t2) ko[t * mx + t2] = wo[u * c.kw + ph.x.first_tap + s * (mx - 1 - t2)];
          }
        }
      }
      if (ph.weights_reorder) {
        memory user(ph.weights_user_md, ctx.engine(), k);
        memory prim(ph.weights_md, ctx.engine(), phase_k);
        ph.weights_reorder.execute(stream, user, prim);
        stream.wait();
      }
    }
  }

  memory src(plan.src_user_md, ctx.engine(), Ptr(dst_grad));
  if (plan.src_reorder) {
    memory copy(plan.src_md, ctx.engine(), Scratch(kPhaseScratchSlot + 1, plan.src_md.get_size()));
    plan.src_reorder.execute(stream, src, copy);
    src = copy;
  }
  std::vector<const float*> phase_out(phase_count);
  for (int64_t k = 0; k < phase_count; ++k) {
    const PhaseConvPlan::Phase& ph = plan.phases[k];
    memory dst(ph.dst_md, ctx.engine(), Scratch(kPhaseScratchSlot + 2 + k, ph.dst_md.get_size()));
    ph.conv.execute(stream, {{DNNL_ARG_SRC, src},
                             {DNNL_ARG_WEIGHTS, memory(ph.weights_md, ctx.engine(), phase_weights[k].data())},
                             {DNNL_ARG_DST, dst}});
    if (ph.dst_reorder) {
      memory nhwc(ph.nhwc_md, ctx.engine(),
                  Scratch(kPhaseScratchSlot + 2 + phase_count + k, ph.nhwc_md.get_size()));
      ph.dst_reorder.execute(stream, dst, nhwc);
      dst = nhwc;
    }
    phase_out[k] = static_cast<const float*>(dst.get_data_handle());
  }
  stream.wait();

  // Per image: the NHWC tile [pout, I] gathered from the phases (plus the bias), its moments,
  // then its transpose into out. Outputs much larger than the caches are written with
  // non-temporal stores (the SDOT generator's ConvTranspose2d(128,64,4,2,1) on [200,128,14,14],
  // 40 MB, bf16: 12.7 -> 10.5 ms).
  const bool stream_out = out.numel() * sizeof(float) >= (size_t{16} << 20);
  const int64_t tile_stride = (pout + 2) * c.i;
  float* tiles =
      static_cast<float*>(Scratch(kPhaseScratchSlot + 2 + 2 * phase_count, sizeof(float) * threads * tile_stride));
  const float* b = bias != nullptr ? bias->data() : nullptr;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < c.n; ++n) {
    float* t = tiles + static_cast<int64_t>(omp_get_thread_num()) * tile_stride;
    for (int64_t oy = 0; oy < c.hs; ++oy) {
      for (int64_t ox = 0; ox < c.ws; ++ox) {
        const int64_t k = (oy % s) * s + ox % s;
        const PhaseConvPlan::Phase& ph = plan.phases[k];
        const float* from = phase_out[k] + ((n * ph.y.size + oy / s) * ph.x.size + ox / s) * c.i;
        float* tp = t + (oy * c.ws + ox) * c.i;
        if (b != nullptr) {
#pragma omp simd
          for (int64_t i = 0; i < c.i; ++i) tp[i] = from[i] + b[i];
        } else {
          std::memcpy(tp, from, sizeof(float) * c.i);
        }
      }
    }
    if (moments != nullptr) {
      TileMoments(t, pout, c.i, t + pout * c.i, image_mean.data() + n * c.i, image_m2.data() + n * c.i);
    }
    TransposeMatrix(t, pout, c.i, c.i, out.data() + n * c.i * pout, pout, stream_out);
  }
  if (moments != nullptr) CombineImageMoments(image_mean.data(), image_m2.data(), c.n, c.i, pout, moments);
  return out;
}

// Which kernel runs a transposed convolution (backward data). kPhases falls back to kGemm when
// a phase is not a plain convolution. kAuto: the phases (else the GEMM) for outputs of at least
// kMinBlockedChannels channels, oneDNN's deconvolution for fewer.
enum class BackwardDataPath { kOneDnn, kGemm, kPhases };

BackwardDataPath ChooseBackwardDataPath(const ConvShape& c) {
  switch (conv_layout.load()) {
    case internal::ConvLayout::kGemm:
      return BackwardDataPath::kGemm;
    case internal::ConvLayout::kPhases:
      return BackwardDataPath::kPhases;
    case internal::ConvLayout::kAuto:
      return c.i >= kMinBlockedChannels ? BackwardDataPath::kPhases : BackwardDataPath::kOneDnn;
    default:
      return BackwardDataPath::kOneDnn;
  }
}

// src_grad = conv^T(dst_grad, weights) + bias, run as oneDNN's deconvolution_forward: a
// deconvolution from O to I channels whose weights [I (out), O (in), kh, kw] are stored as
// our conv weights [O, I, kh, kw], i.e. in format iohw.
// `moments`, when not null, receives the output's ChannelMoments on the GEMM path and stays
// untouched otherwise.
Tensor ConvBackwardDataKernel(const Tensor& dst_grad, const Tensor& weights, const Tensor* bias, const ConvShape& c,
                              ChannelMoments* moments = nullptr) {
  CountProductMacs(c.Macs());
  const BackwardDataPath path = ChooseBackwardDataPath(c);
  if (path == BackwardDataPath::kPhases) {
    const bool bf16 = BFloat16OperandsInEffect();
    const std::shared_ptr<PhaseConvPlan> plan = OneDnnContext::Get().GetOrCreate<std::shared_ptr<PhaseConvPlan>>(
        absl::StrCat("otgen.conv_bwd_data_phases|", c.Key(), PrecisionKey(bf16)),
        [&] { return MakePhaseConvPlan(c, bf16); });
    if (plan->usable) return ConvBackwardDataPhases(dst_grad, weights, bias, c, moments, *plan);
  }
  if (path != BackwardDataPath::kOneDnn) return ConvBackwardDataGemm(dst_grad, weights, bias, c, moments);
  const bool blocked = UseBlocked(c.i >= kMinBlockedChannels);
  const bool bf16 = UseBFloat16(blocked);
  const std::string key =
      absl::StrCat("otgen.conv_bwd_data|", c.Key(), "|", bias != nullptr, blocked, PrecisionKey(bf16));
  const memory::dims deconv_weights = {c.i, c.o, c.kh, c.kw};
  const PrimitivePlan plan = OneDnnContext::Get().GetOrCreate<PrimitivePlan>(key, [&] {
    const Tag data_tag = blocked ? Tag::any : Tag::nchw;
    const memory::desc bias_md = bias != nullptr ? memory::desc({c.i}, kF32, Tag::x) : memory::desc();
    auto make_pd = [&](memory::data_type operands) {
      dnnl::deconvolution_forward::desc desc(dnnl::prop_kind::forward_training, dnnl::algorithm::deconvolution_direct,
                                             memory::desc(c.dst(), operands, data_tag),
                                             memory::desc(deconv_weights, operands, blocked ? Tag::any : Tag::iohw),
                                             bias_md, memory::desc(c.src(), kF32, data_tag), c.strides(), c.pads(),
                                             c.pads());
      return dnnl::deconvolution_forward::primitive_desc(desc, OneDnnContext::Get().engine());
    };
    const auto pd = NativeBFloat16OrFloat32Pd(bf16, make_pd);
    std::vector<ArgSpec> specs = {{DNNL_ARG_SRC, memory::desc(c.dst(), kF32, Tag::nchw), false},
                                  {DNNL_ARG_WEIGHTS, memory::desc(deconv_weights, kF32, Tag::iohw), false, true},
                                  {DNNL_ARG_DST, memory::desc(c.src(), kF32, Tag::nchw), true}};
    if (bias != nullptr) specs.push_back({DNNL_ARG_BIAS, memory::desc({c.i}, kF32, Tag::x), false});
    return MakePlan(dnnl::deconvolution_forward(pd), pd, specs);
  });
  Tensor src_grad = Tensor::Empty({c.n, c.i, c.hs, c.ws});
  std::vector<float*> data = {Ptr(dst_grad), Ptr(weights), src_grad.data()};
  if (bias != nullptr) data.push_back(Ptr(*bias));
  Execute(plan, data);
  return src_grad;
}

// ---- Weight gradient as im2col + GEMM -----------------------------------------------------------
//
// oneDNN 2.6's AMX bf16 weight-gradient kernel (jit:avx512_core_amx_bf16 backward_weights) runs
// the DCGAN critic's Conv2d(128,256,k5,s2,p2) on [64,128,7,7] in 8.2 ms (200 GFLOP/s) on a
// 2-core Sapphire Rapids, while its AMX matmul runs the same work as one GEMM in 1.3 ms. For src
// [N,I,Hs,Ws], dst_grad [N,O,Hd,Wd] and P = Hd Wd, per chunk of images (K = chunk * P rows):
//   S  [(n,h,w), i]        = src[n,i,h,w]                         (NCHW -> NHWC transpose)
//   A  [o, (n,y,x)]        = dst_grad[n,o,y,x]                                       [O, K]
//   B  [(n,y,x), (u,v,i)]  = S[(n, s y + u - p, s x + v - p), i]  (0 outside)  [K, kh kw I]
//   G  [o, (u,v,i)]       += A B                                   (chunks accumulate)
//   weights_grad[o,i,u,v]  = G[o, (u,v,i)]
// With the channels innermost, B is built from whole rows of S (I contiguous values per tap).

// Chunks whose float32 B is about this many bytes.
constexpr int64_t kIm2ColChunkBytes = int64_t{24} << 20;

Tensor ConvBackwardWeightsGemm(const Tensor& src, const Tensor& dst_grad, Tensor* bias_grad, const ConvShape& c) {
  const int64_t kk = c.kh * c.kw;
  const int64_t cols = kk * c.i;      // B columns (u, v, i)
  const int64_t pix = c.hd * c.wd;    // P
  const int64_t plane = c.hs * c.ws;  // pixels of a source image
  const int64_t chunk = std::clamp<int64_t>(kIm2ColChunkBytes / (pix * cols * 4), 1, c.n);
  const int64_t max_k = chunk * pix;
  // bf16 operands when in effect and oneDNN has a native kernel for the first chunk's shape.
  constexpr memory::data_type kBf16 = memory::data_type::bf16;
  const bool bf16 = BFloat16OperandsInEffect() && static_cast<bool>(GemmPrimitive(c.o, max_k, cols, kBf16));
  const memory::data_type operands = bf16 ? kBf16 : kF32;
  const size_t elem = bf16 ? sizeof(uint16_t) : sizeof(float);
  Tensor weights_grad = Tensor::Empty({c.o, c.i, c.kh, c.kw});
  if (bias_grad != nullptr) *bias_grad = Tensor::Zeros({c.o});

  OneDnnContext& ctx = OneDnnContext::Get();
  std::lock_guard<std::mutex> lock(ExecutionMutex());
  char* a = static_cast<char*>(Scratch(kGemmScratchSlot + 6, elem * c.o * max_k));
  char* bm = static_cast<char*>(Scratch(kGemmScratchSlot + 7, elem * max_k * cols));
  char* nhwc = static_cast<char*>(Scratch(kGemmScratchSlot + 8, elem * chunk * plane * c.i));
  float* g_acc = static_cast<float*>(Scratch(kGemmScratchSlot + 9, sizeof(float) * c.o * cols));
  const float* x = src.data();
  const float* g = dst_grad.data();
  float* db = bias_grad != nullptr ? bias_grad->data() : nullptr;
  const size_t tap_bytes = elem * c.i;
  for (int64_t n0 = 0; n0 < c.n; n0 += chunk) {
    const int64_t images = std::min(chunk, c.n - n0);
    const int64_t k = images * pix;
#pragma omp parallel
    {
#pragma omp for schedule(static) nowait
      for (int64_t o = 0; o < c.o; ++o) {
        double sum = 0;
        for (int64_t n = 0; n < images; ++n) {
          const float* gr = g + ((n0 + n) * c.o + o) * pix;
          if (bf16) {
            internal::ConvertToBFloat16(gr, pix, reinterpret_cast<uint16_t*>(a) + o * k + n * pix);
          } else {
            std::memcpy(reinterpret_cast<float*>(a) + o * k + n * pix, gr, sizeof(float) * pix);
          }
          if (db != nullptr) {
            for (int64_t j = 0; j < pix; ++j) sum += gr[j];
          }
        }
        if (db != nullptr) db[o] += static_cast<float>(sum);
      }
#pragma omp for schedule(static)
      for (int64_t n = 0; n < images; ++n) {
        const float* xn = x + (n0 + n) * c.i * plane;
        if (bf16) {
          TransposeMatrix(xn, c.i, plane, plane, reinterpret_cast<uint16_t*>(nhwc) + n * plane * c.i, c.i);
        } else {
          TransposeMatrix(xn, c.i, plane, plane, reinterpret_cast<float*>(nhwc) + n * plane * c.i, c.i);
        }
      }
#pragma omp for schedule(static)
      for (int64_t r = 0; r < k; ++r) {
        const int64_t n = r / pix;
        const int64_t y = (r % pix) / c.wd;
        const int64_t xx = r % c.wd;
        char* out = bm + r * cols * elem;
        for (int64_t u = 0; u < c.kh; ++u) {
          const int64_t iy = c.stride * y + u - c.padding;
          for (int64_t v = 0; v < c.kw; ++v) {
            const int64_t ix = c.stride * xx + v - c.padding;
            char* tap = out + (u * c.kw + v) * tap_bytes;
            if (iy < 0 || iy >= c.hs || ix < 0 || ix >= c.ws) {
              std::memset(tap, 0, tap_bytes);
            } else {
              std::memcpy(tap, nhwc + ((n * c.hs + iy) * c.ws + ix) * tap_bytes, tap_bytes);
            }
          }
        }
      }
    }
    const dnnl::matmul gemm = GemmPrimitive(c.o, k, cols, operands, /*accumulate=*/n0 > 0);
    OTGEN_CHECK(static_cast<bool>(gemm), "ConvBackwardWeightsGemm: no native bf16 matmul for a later chunk");
    gemm.execute(ctx.stream(), {{DNNL_ARG_SRC, memory(memory::desc({c.o, k}, operands, Tag::ab), ctx.engine(), a)},
                                {DNNL_ARG_WEIGHTS, memory(memory::desc({k, cols}, operands, Tag::ab), ctx.engine(), bm)},
                                {DNNL_ARG_DST, memory(memory::desc({c.o, cols}, kF32, Tag::ab), ctx.engine(), g_acc)}});
    ctx.stream().wait();
  }
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < c.o; ++o) {
    TransposeMatrix(g_acc + o * cols, kk, c.i, c.i, weights_grad.data() + o * c.i * kk, kk);
  }
  return weights_grad;
}

// Whether the weight gradient runs as im2col + GEMM (above) rather than oneDNN's kernel: with
// bf16 operands (on AMX, the DCGAN WGAN-GP iteration, networks_bench: 522 -> 348 ms; on Zen 4's
// AVX512_BF16, conv_ops_bench BM_ConvBackwardWeightsKernels, 1 thread: Conv2d(128,256,k5,s2,p2)
// on [64,128,7,7] 12.3 -> 9.7 ms, Conv2d(64,128,...) on [64,64,14,14] 9.1 -> 8.3 ms, and the
// whole iteration 959-1035 -> 917-939 ms). In float32 oneDNN's own kernel is faster (the same
// iteration: 704 ms, 747 through the GEMM; on Zen 4 the two convolutions 13.1 / 16.0 ms against
// 15.3 / 18.2 through the GEMM). Below 16 input channels the GEMM's columns are too few (the
// first critic layer: 0.48 ms in oneDNN's kernel, 1.8 through the GEMM).
bool UseGemmBackwardWeights(const ConvShape& c) {
  switch (conv_layout.load()) {
    case internal::ConvLayout::kGemm:
      return true;
    case internal::ConvLayout::kAuto:
    case internal::ConvLayout::kPhases:
      return c.i >= kMinBlockedChannels && BFloat16OperandsInEffect();
    default:
      return false;
  }
}

// weights_grad[o,i,u,v] = sum src[n,i,s y + u - p, s x + v - p] dst_grad[n,o,y,x]; when
// `bias_grad` is given it receives sum_{n,y,x} dst_grad[n,o,y,x] from the same pass.
Tensor ConvBackwardWeightsKernel(const Tensor& src, const Tensor& dst_grad, Tensor* bias_grad, const ConvShape& c) {
  CountProductMacs(c.Macs());
  if (UseGemmBackwardWeights(c)) return ConvBackwardWeightsGemm(src, dst_grad, bias_grad, c);
  const bool blocked = UseBlocked(true);
  // With few input channels oneDNN's bf16 weight-gradient kernel is slower than float32's
  // (Conv2d(1,64,k5,s2,p2) on [64,1,28,28]: forward + backward 0.56 ms float32, 0.77 ms with it).
  const bool bf16 = UseBFloat16(blocked) && c.i >= kMinBlockedChannels;
  const bool bias = bias_grad != nullptr;
  const std::string key = absl::StrCat("otgen.conv_bwd_weights|", c.Key(), "|", bias, blocked, PrecisionKey(bf16));
  const PrimitivePlan plan = OneDnnContext::Get().GetOrCreate<PrimitivePlan>(key, [&] {
    const Tag data_tag = blocked ? Tag::any : Tag::nchw;
    const memory::desc bias_md = bias ? memory::desc({c.o}, kF32, Tag::x) : memory::desc();
    // src and diff_dst of type `operands`; the weight and bias gradients float32.
    auto make_pd = [&](memory::data_type operands) {
      const auto hint = ConvForwardPd(c, blocked, bias, operands);
      dnnl::convolution_backward_weights::desc desc(
          dnnl::algorithm::convolution_direct, memory::desc(c.src(), operands, data_tag),
          memory::desc(c.weights(), kF32, blocked ? Tag::any : Tag::oihw), bias_md,
          memory::desc(c.dst(), operands, data_tag), c.strides(), c.pads(), c.pads());
      return dnnl::convolution_backward_weights::primitive_desc(desc, OneDnnContext::Get().engine(), hint);
    };
    const auto pd = NativeBFloat16OrFloat32Pd(bf16, make_pd);
    std::vector<ArgSpec> specs = {{DNNL_ARG_SRC, memory::desc(c.src(), kF32, Tag::nchw), false},
                                  {DNNL_ARG_DIFF_DST, memory::desc(c.dst(), kF32, Tag::nchw), false},
                                  {DNNL_ARG_DIFF_WEIGHTS, memory::desc(c.weights(), kF32, Tag::oihw), true}};
    if (bias) specs.push_back({DNNL_ARG_DIFF_BIAS, memory::desc({c.o}, kF32, Tag::x), true});
    return MakePlan(dnnl::convolution_backward_weights(pd), pd, specs);
  });
  Tensor weights_grad = Tensor::Empty({c.o, c.i, c.kh, c.kw});
  std::vector<float*> data = {Ptr(src), Ptr(dst_grad), weights_grad.data()};
  if (bias) {
    *bias_grad = Tensor::Empty({c.o});
    data.push_back(bias_grad->data());
  }
  Execute(plan, data);
  return weights_grad;
}

// Sum over N, H, W of [N, C, H, W]: the bias gradient.
Var BiasGrad(const Var& g) { return Sum(g, {0, 2, 3}); }

void CheckBias(const char* op, const Var& b, int64_t channels) {
  if (!b.defined()) return;
  OTGEN_CHECK(b.rank() == 1 && b.dim(0) == channels,
              absl::StrCat(op, ": bias has shape ", ShapeToString(b.shape()), ", expected [", channels, "]"));
}

absl::Status CheckGeometry(const Conv2dGeometry& g) {
  if (g.stride < 1) return absl::InvalidArgumentError(absl::StrCat("stride: expected >= 1, got ", g.stride));
  if (g.padding < 0) return absl::InvalidArgumentError(absl::StrCat("padding: expected >= 0, got ", g.padding));
  return absl::OkStatus();
}

bool AllPositive(const Shape& s) {
  return std::all_of(s.begin(), s.end(), [](int64_t d) { return d > 0; });
}

}  // namespace

namespace internal {
void SetConvLayoutForTesting(ConvLayout layout) { conv_layout.store(layout); }
int64_t PhaseConvolutionRunsForTesting() { return phase_convolution_runs.load(); }
int64_t WeightCopyBuildsForTesting() { return weight_copy_builds.load(); }
}  // namespace internal

// ---- Shapes ---------------------------------------------------------------------------------

absl::StatusOr<Shape> Conv2dOutputShape(const Shape& x, const Shape& w, const Conv2dGeometry& g) {
  if (absl::Status s = CheckGeometry(g); !s.ok()) return s;
  if (g.output_padding != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("output_padding: only for transposed convolutions, got ", g.output_padding));
  }
  if (x.size() != 4 || w.size() != 4 || !AllPositive(x) || !AllPositive(w) || x[1] != w[1]) {
    return absl::InvalidArgumentError(absl::StrCat("Conv2d: input ", ShapeToString(x), " and weight ", ShapeToString(w),
                                                   ": expected x [N, C, H, W] and w [O, C, kh, kw] with equal C"));
  }
  if (x[2] + 2 * g.padding < w[2] || x[3] + 2 * g.padding < w[3]) {
    return absl::InvalidArgumentError(absl::StrCat("Conv2d: kernel ", w[2], "x", w[3], " larger than the padded input ",
                                                   ShapeToString(x), " with padding ", g.padding));
  }
  return Shape{x[0], w[0], (x[2] + 2 * g.padding - w[2]) / g.stride + 1, (x[3] + 2 * g.padding - w[3]) / g.stride + 1};
}

absl::StatusOr<Shape> ConvTranspose2dOutputShape(const Shape& x, const Shape& w, const Conv2dGeometry& g) {
  if (absl::Status s = CheckGeometry(g); !s.ok()) return s;
  if (g.output_padding < 0 || g.output_padding >= g.stride) {
    return absl::InvalidArgumentError(
        absl::StrCat("output_padding: expected in [0, stride = ", g.stride, "), got ", g.output_padding));
  }
  if (x.size() != 4 || w.size() != 4 || !AllPositive(x) || !AllPositive(w) || x[1] != w[0]) {
    return absl::InvalidArgumentError(
        absl::StrCat("ConvTranspose2d: input ", ShapeToString(x), " and weight ", ShapeToString(w),
                     ": expected x [N, C_in, H, W] and w [C_in, C_out, kh, kw] with equal C_in"));
  }
  const int64_t h = (x[2] - 1) * g.stride - 2 * g.padding + w[2] + g.output_padding;
  const int64_t wo = (x[3] - 1) * g.stride - 2 * g.padding + w[3] + g.output_padding;
  if (h < 1 || wo < 1) {
    return absl::InvalidArgumentError(absl::StrCat("ConvTranspose2d: input ", ShapeToString(x), " and weight ",
                                                   ShapeToString(w), " with padding ", g.padding,
                                                   " give an empty output ", h, "x", wo));
  }
  return Shape{x[0], w[1], h, wo};
}

// ---- Convolution ops ------------------------------------------------------------------------

Var Conv2dBackwardWeights(const Var& x, const Var& grad_out, const Conv2dGeometry& geometry, int64_t kernel_h,
                          int64_t kernel_w) {
  const Conv2dGeometry g{geometry.stride, geometry.padding, 0};
  OTGEN_CHECK(x.rank() == 4 && grad_out.rank() == 4,
              absl::StrCat("Conv2dBackwardWeights: x ", ShapeToString(x.shape()), " and grad_out ",
                           ShapeToString(grad_out.shape()), " must be 4-D"));
  const Shape w_shape = {grad_out.dim(1), x.dim(1), kernel_h, kernel_w};
  const Shape out = ValueOrDie(Conv2dOutputShape(x.shape(), w_shape, g), "Conv2dBackwardWeights");
  OTGEN_CHECK(out == grad_out.shape(), absl::StrCat("Conv2dBackwardWeights: grad_out ", ShapeToString(grad_out.shape()),
                                                    " for x ", ShapeToString(x.shape()), " and kernel ", kernel_h, "x",
                                                    kernel_w, ", expected ", ShapeToString(out)));
  const ConvShape c = ConvView(x.shape(), w_shape, out, g);
  return Record("Conv2dBackwardWeights", ConvBackwardWeightsKernel(x.value(), grad_out.value(), nullptr, c),
                {x, grad_out}, [g](const Var& gw, const std::vector<Var>& in, const std::vector<bool>& needs) {
                  // <gw, BW(x, go)> = <conv(x, gw), go> = <x, conv^T(go, gw)>.
                  Var dx, dgo;
                  if (needs[0]) dx = Conv2dBackwardData(in[1], gw, g, in[0].dim(2), in[0].dim(3));
                  if (needs[1]) dgo = Conv2d(in[0], gw, Var(), g);
                  return std::vector<Var>{dx, dgo};
                });
}

Var Conv2dBackwardData(const Var& grad_out, const Var& w, const Conv2dGeometry& geometry, int64_t input_h,
                       int64_t input_w) {
  const Conv2dGeometry g{geometry.stride, geometry.padding, 0};
  OTGEN_CHECK(grad_out.rank() == 4 && w.rank() == 4,
              absl::StrCat("Conv2dBackwardData: grad_out ", ShapeToString(grad_out.shape()), " and weight ",
                           ShapeToString(w.shape()), " must be 4-D"));
  const Shape x_shape = {grad_out.dim(0), w.dim(1), input_h, input_w};
  const Shape out = ValueOrDie(Conv2dOutputShape(x_shape, w.shape(), g), "Conv2dBackwardData");
  OTGEN_CHECK(out == grad_out.shape(), absl::StrCat("Conv2dBackwardData: grad_out ", ShapeToString(grad_out.shape()),
                                                    " for weight ", ShapeToString(w.shape()), " and input size ",
                                                    input_h, "x", input_w, ", expected ", ShapeToString(out)));
  const ConvShape c = ConvView(x_shape, w.shape(), out, g);
  return Record("Conv2dBackwardData", ConvBackwardDataKernel(grad_out.value(), w.value(), nullptr, c), {grad_out, w},
                [g](const Var& gx, const std::vector<Var>& in, const std::vector<bool>& needs) {
                  // <gx, conv^T(go, w)> = <conv(gx, w), go>.
                  Var dgo, dw;
                  if (needs[0]) dgo = Conv2d(gx, in[1], Var(), g);
                  if (needs[1]) dw = Conv2dBackwardWeights(gx, in[0], g, in[1].dim(2), in[1].dim(3));
                  return std::vector<Var>{dgo, dw};
                });
}

Var Conv2d(const Var& x, const Var& w, const Var& b, const Conv2dGeometry& g) {
  OTGEN_CHECK(x.defined() && w.defined(), "Conv2d: undefined input or weight");
  const Shape out = ValueOrDie(Conv2dOutputShape(x.shape(), w.shape(), g), "Conv2d");
  CheckBias("Conv2d", b, w.dim(0));
  const ConvShape c = ConvView(x.shape(), w.shape(), out, g);
  Tensor y = ConvForwardKernel(x.value(), w.value(), b.defined() ? &b.value() : nullptr, c);
  std::vector<Var> inputs = {x, w};
  if (b.defined()) inputs.push_back(b);
  return Record("Conv2d", std::move(y), std::move(inputs),
                [g, c](const Var& go, const std::vector<Var>& in, const std::vector<bool>& needs) {
                  std::vector<Var> grads(in.size());
                  if (needs[0]) grads[0] = Conv2dBackwardData(go, in[1], g, c.hs, c.ws);
                  const bool bias_needed = in.size() == 3 && needs[2];
                  if (needs[1] && bias_needed && !GradModeEnabled()) {
                    // First order: weight and bias gradients in one oneDNN pass.
                    Tensor db;
                    grads[1] = Const(ConvBackwardWeightsKernel(in[0].value(), go.value(), &db, c));
                    grads[2] = Const(std::move(db));
                    return grads;
                  }
                  if (needs[1]) grads[1] = Conv2dBackwardWeights(in[0], go, g, c.kh, c.kw);
                  if (bias_needed) grads[2] = BiasGrad(go);
                  return grads;
                });
}

namespace {
ChannelMoments MomentsByPass(const Tensor& y);  // with the batch-norm kernels below
}  // namespace

Var ConvTranspose2d(const Var& x, const Var& w, const Var& b, const Conv2dGeometry& g) {
  return ConvTranspose2d(x, w, b, g, nullptr);
}

Var ConvTranspose2d(const Var& x, const Var& w, const Var& b, const Conv2dGeometry& g, ChannelMoments* moments) {
  OTGEN_CHECK(x.defined() && w.defined(), "ConvTranspose2d: undefined input or weight");
  const Shape out = ValueOrDie(ConvTranspose2dOutputShape(x.shape(), w.shape(), g), "ConvTranspose2d");
  CheckBias("ConvTranspose2d", b, w.dim(1));
  // Conv view: the convolution whose adjoint this is maps `out` (src) to x (dst) with
  // weights w read as [O = C_in, I = C_out, kh, kw].
  const Conv2dGeometry conv_g{g.stride, g.padding, 0};
  const ConvShape c = ConvView(out, w.shape(), x.shape(), conv_g);
  if (moments != nullptr) *moments = ChannelMoments{};
  Tensor y = ConvBackwardDataKernel(x.value(), w.value(), b.defined() ? &b.value() : nullptr, c, moments);
  if (moments != nullptr && !moments->mean.defined()) *moments = MomentsByPass(y);
  std::vector<Var> inputs = {x, w};
  if (b.defined()) inputs.push_back(b);
  return Record("ConvTranspose2d", std::move(y), std::move(inputs),
                [conv_g, c](const Var& go, const std::vector<Var>& in, const std::vector<bool>& needs) {
                  std::vector<Var> grads(in.size());
                  if (needs[0]) grads[0] = Conv2d(go, in[1], Var(), conv_g);
                  if (needs[1]) grads[1] = Conv2dBackwardWeights(go, in[0], conv_g, c.kh, c.kw);
                  if (in.size() == 3 && needs[2]) grads[2] = BiasGrad(go);
                  return grads;
                });
}

// ---- Normalization ------------------------------------------------------------------------------

namespace {

dnnl::normalization_flags NormFlags(bool scale, bool shift, bool global_stats) {
  unsigned flags = 0;
  if (scale) flags |= static_cast<unsigned>(dnnl::normalization_flags::use_scale);
  if (shift) flags |= static_cast<unsigned>(dnnl::normalization_flags::use_shift);
  if (global_stats) flags |= static_cast<unsigned>(dnnl::normalization_flags::use_global_stats);
  return static_cast<dnnl::normalization_flags>(flags);
}

std::string FloatKey(float f) {
  uint32_t bits;
  static_assert(sizeof(bits) == sizeof(f));
  std::memcpy(&bits, &f, sizeof(f));
  return absl::StrCat(bits);
}

// Batch normalization kernels, on x viewed as [N, C, S] (S = H*W, or 1 for [N, C] input).
// oneDNN 2.6 runs [N, C] through its generic "ncsp" kernel (as NCHW with H = W = 1: a
// strided loop per channel, ~17 ms on [200, 12544] on one core) and plain NCHW the same way;
// its jit kernel needs nChw16c and hence two reorders. These loops read a channel's values
// once from memory: the statistics passes and the output pass of one channel (or block of
// [N, C] columns) run back to back while the data are in L2. Sums are accumulated in double
// across rows/planes (float within a plane), and the variance is the mean squared deviation
// from the mean (two passes, no cancellation).
struct NormForward {
  Tensor y;
  Tensor mean;      // batch statistics (training) or undefined
  Tensor variance;  // biased
};

struct NormBackward {
  Tensor dx, dgamma, dbeta;
};

struct BnView {
  int64_t n, c, s;
  explicit BnView(const Tensor& x) : n(x.dim(0)), c(x.dim(1)), s(x.numel() / (x.dim(0) * x.dim(1))) {}
  int64_t count() const { return n * s; }
};

using internal::ColumnSum;
using internal::ColumnSums;
using internal::kColumnTile;

// Per-channel batch mean and biased variance.
void BatchStatistics(const float* x, const BnView& v, float* mean, float* variance) {
  const double inv_count = 1.0 / static_cast<double>(v.count());
  if (v.s == 1) {
    const int64_t blocks = (v.c + kColumnTile - 1) / kColumnTile;
#pragma omp parallel for schedule(static)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t c0 = blk * kColumnTile, width = std::min(kColumnTile, v.c - c0);
      // Mean = x[0, j] + mean of the deviations from x[0, j] (a shift by a sample keeps the
      // float partial sums small), then the squared deviations from the mean.
      double acc[kColumnTile] = {};
      float mu[kColumnTile];
      ColumnSums<ColumnSum::kDeviation>(x + c0, nullptr, v.n, v.c, width, x + c0, acc, nullptr);
      for (int64_t j = 0; j < width; ++j) {
        mu[j] = static_cast<float>(x[c0 + j] + acc[j] * inv_count);
        acc[j] = 0;
      }
      ColumnSums<ColumnSum::kSquaredDeviation>(x + c0, nullptr, v.n, v.c, width, mu, acc, nullptr);
      for (int64_t j = 0; j < width; ++j) {
        mean[c0 + j] = mu[j];
        variance[c0 + j] = static_cast<float>(acc[j] * inv_count);
      }
    }
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t ch = 0; ch < v.c; ++ch) {
    double sum = 0;
    for (int64_t i = 0; i < v.n; ++i) {
      const float* p = x + (i * v.c + ch) * v.s;
      float s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t k = 0; k < v.s; ++k) s += p[k];
      sum += s;
    }
    const float mu = static_cast<float>(sum * inv_count);
    double sq = 0;
    for (int64_t i = 0; i < v.n; ++i) {
      const float* p = x + (i * v.c + ch) * v.s;
      float s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t k = 0; k < v.s; ++k) s += (p[k] - mu) * (p[k] - mu);
      sq += s;
    }
    mean[ch] = mu;
    variance[ch] = static_cast<float>(sq * inv_count);
  }
}

// y = x * scale[c] + shift[c], or max(0, x * scale[c] + shift[c]) when `relu`.
template <bool kRelu>
void ChannelAffine(const float* x, const BnView& v, const float* scale, const float* shift, float* y) {
  if (v.s == 1) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < v.n; ++r) {
      const float* in = x + r * v.c;
      float* out = y + r * v.c;
#pragma omp simd
      for (int64_t j = 0; j < v.c; ++j) {
        const float t = in[j] * scale[j] + shift[j];
        out[j] = kRelu ? std::max(t, 0.0f) : t;
      }
    }
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t plane = 0; plane < v.n * v.c; ++plane) {
    const float a = scale[plane % v.c], b = shift[plane % v.c];
    const float* in = x + plane * v.s;
    float* out = y + plane * v.s;
#pragma omp simd
    for (int64_t k = 0; k < v.s; ++k) {
      const float t = in[k] * a + b;
      out[k] = kRelu ? std::max(t, 0.0f) : t;
    }
  }
}

void ChannelAffine(const float* x, const BnView& v, const float* scale, const float* shift, bool relu, float* y) {
  if (relu) {
    ChannelAffine<true>(x, v, scale, shift, y);
  } else {
    ChannelAffine<false>(x, v, scale, shift, y);
  }
}

ChannelMoments MomentsByPass(const Tensor& y) {
  const BnView v(y);
  const ScopedSerialBelow serial(y.numel(), kMinParallelElements);
  ChannelMoments m{Tensor::Empty({v.c}), Tensor::Empty({v.c})};
  BatchStatistics(y.data(), v, m.mean.data(), m.variance.data());
  return m;
}

// Training: batch statistics (`given`, or computed; returned); inference: the given running
// statistics. With `relu`, y = max(0, BN(x)).
NormForward BatchNormForwardKernel(const Tensor& x, const Tensor* gamma, const Tensor* beta, bool training,
                                   const Tensor* running_mean, const Tensor* running_var, float eps,
                                   bool relu = false, const ChannelMoments* given = nullptr) {
  const BnView v(x);
  const ScopedSerialBelow serial(x.numel(), kMinParallelElements);
  NormForward result;
  result.y = Tensor::Empty(x.shape());
  const float* mean;
  const float* variance;
  if (training) {
    if (given != nullptr) {
      result.mean = given->mean;
      result.variance = given->variance;
    } else {
      result.mean = Tensor::Empty({v.c});
      result.variance = Tensor::Empty({v.c});
      BatchStatistics(x.data(), v, result.mean.data(), result.variance.data());
    }
    mean = result.mean.data();
    variance = result.variance.data();
  } else {
    mean = running_mean->data();
    variance = running_var->data();
  }
  std::vector<float> scale(v.c), shift(v.c);
  for (int64_t ch = 0; ch < v.c; ++ch) {
    const float rstd = 1.0f / std::sqrt(variance[ch] + eps);
    scale[ch] = (gamma != nullptr ? gamma->data()[ch] : 1.0f) * rstd;
    shift[ch] = (beta != nullptr ? beta->data()[ch] : 0.0f) - mean[ch] * scale[ch];
  }
  ChannelAffine(x.data(), v, scale.data(), shift.data(), relu, result.y.data());
  return result;
}

// First-order backward of training-mode batch normalization with the forward's statistics:
//   dx = gamma rstd (dy - mean(dy) - xhat mean(dy xhat)) = k1 dy + k2 x + k0,
//   dgamma = sum(dy xhat) = rstd sum(dy (x - mu)),  dbeta = sum(dy).
NormBackward BatchNormBackwardKernel(const Tensor& x, const Tensor& dy, const Tensor& mean, const Tensor& variance,
                                     const Tensor* gamma, const Tensor* beta, float eps) {
  const BnView v(x);
  const ScopedSerialBelow serial(x.numel(), kMinParallelElements);
  std::vector<double> sum_dy(v.c), sum_dy_xc(v.c);  // sum(dy), sum(dy (x - mu))
  const float* xs = x.data();
  const float* g = dy.data();
  const float* mu = mean.data();
  if (v.s == 1) {
    const int64_t blocks = (v.c + kColumnTile - 1) / kColumnTile;
#pragma omp parallel for schedule(static)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t c0 = blk * kColumnTile, width = std::min(kColumnTile, v.c - c0);
      ColumnSums<ColumnSum::kGradientMoments>(xs + c0, g + c0, v.n, v.c, width, mu + c0, sum_dy.data() + c0,
                                              sum_dy_xc.data() + c0);
    }
  } else {
#pragma omp parallel for schedule(static)
    for (int64_t ch = 0; ch < v.c; ++ch) {
      double a = 0, b = 0;
      const float m = mu[ch];
      for (int64_t i = 0; i < v.n; ++i) {
        const float* xp = xs + (i * v.c + ch) * v.s;
        const float* gp = g + (i * v.c + ch) * v.s;
        float sa = 0, sb = 0;
#pragma omp simd reduction(+ : sa, sb)
        for (int64_t k = 0; k < v.s; ++k) {
          sa += gp[k];
          sb += gp[k] * (xp[k] - m);
        }
        a += sa;
        b += sb;
      }
      sum_dy[ch] = a;
      sum_dy_xc[ch] = b;
    }
  }
  NormBackward result;
  result.dx = Tensor::Empty(x.shape());
  if (gamma != nullptr) result.dgamma = Tensor::Empty({v.c});
  if (beta != nullptr) result.dbeta = Tensor::Empty({v.c});
  const double inv_count = 1.0 / static_cast<double>(v.count());
  std::vector<float> k1(v.c), k2(v.c), k0(v.c);
  for (int64_t ch = 0; ch < v.c; ++ch) {
    const double rstd = 1.0 / std::sqrt(static_cast<double>(variance.data()[ch]) + eps);
    const double gm = gamma != nullptr ? gamma->data()[ch] : 1.0;
    const double c1 = gm * rstd;
    const double c2 = -c1 * rstd * rstd * sum_dy_xc[ch] * inv_count;
    k1[ch] = static_cast<float>(c1);
    k2[ch] = static_cast<float>(c2);
    k0[ch] = static_cast<float>(-c1 * sum_dy[ch] * inv_count - c2 * mu[ch]);
    if (gamma != nullptr) result.dgamma.data()[ch] = static_cast<float>(rstd * sum_dy_xc[ch]);
    if (beta != nullptr) result.dbeta.data()[ch] = static_cast<float>(sum_dy[ch]);
  }
  float* dx = result.dx.data();
  const float* k1p = k1.data();
  const float* k2p = k2.data();
  const float* k0p = k0.data();
  if (v.s == 1) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < v.n; ++r) {
      const float* xr = xs + r * v.c;
      const float* gr = g + r * v.c;
      float* out = dx + r * v.c;
#pragma omp simd
      for (int64_t j = 0; j < v.c; ++j) out[j] = k1p[j] * gr[j] + k2p[j] * xr[j] + k0p[j];
    }
  } else {
#pragma omp parallel for schedule(static)
    for (int64_t plane = 0; plane < v.n * v.c; ++plane) {
      const int64_t ch = plane % v.c;
      const float a = k1p[ch], b = k2p[ch], c0 = k0p[ch];
      const float* xp = xs + plane * v.s;
      const float* gp = g + plane * v.s;
      float* out = dx + plane * v.s;
#pragma omp simd
      for (int64_t k = 0; k < v.s; ++k) out[k] = a * gp[k] + b * xp[k] + c0;
    }
  }
  return result;
}

// Layer normalization runs on the [rows, features] view of x.
memory::desc LnDataMd(int64_t rows, int64_t features) { return memory::desc({rows, features}, kF32, Tag::ab); }
memory::desc LnStatMd(int64_t rows) { return memory::desc({rows}, kF32, Tag::a); }

dnnl::layer_normalization_forward::primitive_desc LnForwardPd(int64_t rows, int64_t features, float eps,
                                                              dnnl::normalization_flags flags, dnnl::prop_kind prop) {
  dnnl::layer_normalization_forward::desc desc(prop, LnDataMd(rows, features), LnStatMd(rows), eps, flags);
  return dnnl::layer_normalization_forward::primitive_desc(desc, OneDnnContext::Get().engine());
}

// With `statistics`, also returns the per-row mean and biased variance.
NormForward LayerNormForwardKernel(const Tensor& x, int64_t rows, int64_t features, const Tensor* gamma,
                                   const Tensor* beta, float eps, bool statistics) {
  OneDnnContext& ctx = OneDnnContext::Get();
  const dnnl::normalization_flags flags = NormFlags(gamma != nullptr, beta != nullptr, false);
  const dnnl::prop_kind prop = statistics ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
  const std::string key = absl::StrCat("otgen.lnorm_fwd|", rows, ",", features, "|", FloatKey(eps), "|",
                                       static_cast<unsigned>(flags), "|", statistics);
  const auto primitive = ctx.GetOrCreate<dnnl::layer_normalization_forward>(
      key, [&] { return dnnl::layer_normalization_forward(LnForwardPd(rows, features, eps, flags, prop)); });
  const memory::desc data_md = LnDataMd(rows, features);
  const memory::desc weight_md({features}, kF32, Tag::a);
  NormForward result;
  result.y = Tensor::Empty(x.shape());
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, Wrap(data_md, x)}, {DNNL_ARG_DST, Wrap(data_md, result.y)}};
  if (statistics) {
    result.mean = Tensor::Empty({rows});
    result.variance = Tensor::Empty({rows});
    args.emplace(DNNL_ARG_MEAN, Wrap(LnStatMd(rows), result.mean));
    args.emplace(DNNL_ARG_VARIANCE, Wrap(LnStatMd(rows), result.variance));
  }
  if (gamma != nullptr) args.emplace(DNNL_ARG_SCALE, Wrap(weight_md, *gamma));
  if (beta != nullptr) args.emplace(DNNL_ARG_SHIFT, Wrap(weight_md, *beta));
  primitive.execute(ctx.stream(), args);
  ctx.stream().wait();
  return result;
}

NormBackward LayerNormBackwardKernel(const Tensor& x, const Tensor& dy, int64_t rows, int64_t features,
                                     const Tensor& mean, const Tensor& variance, const Tensor* gamma,
                                     const Tensor* beta, float eps) {
  OneDnnContext& ctx = OneDnnContext::Get();
  const bool scale = gamma != nullptr;
  const bool has_beta = beta != nullptr;
  const dnnl::normalization_flags flags = NormFlags(scale, has_beta, false);
  const dnnl::prop_kind prop = scale || has_beta ? dnnl::prop_kind::backward : dnnl::prop_kind::backward_data;
  const std::string key =
      absl::StrCat("otgen.lnorm_bwd|", rows, ",", features, "|", FloatKey(eps), "|", static_cast<unsigned>(flags));
  const auto primitive = ctx.GetOrCreate<dnnl::layer_normalization_backward>(key, [&] {
    const auto hint = LnForwardPd(rows, features, eps, flags, dnnl::prop_kind::forward_training);
    dnnl::layer_normalization_backward::desc desc(prop, LnDataMd(rows, features), LnDataMd(rows, features),
                                                  LnStatMd(rows), eps, flags);
    return dnnl::layer_normalization_backward(
        dnnl::layer_normalization_backward::primitive_desc(desc, ctx.engine(), hint));
  });
  const memory::desc data_md = LnDataMd(rows, features);
  const memory::desc weight_md({features}, kF32, Tag::a);
  NormBackward result;
  result.dx = Tensor::Empty(x.shape());
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, Wrap(data_md, x)},
                                          {DNNL_ARG_MEAN, Wrap(LnStatMd(rows), mean)},
                                          {DNNL_ARG_VARIANCE, Wrap(LnStatMd(rows), variance)},
                                          {DNNL_ARG_DIFF_DST, Wrap(data_md, dy)},
                                          {DNNL_ARG_DIFF_SRC, Wrap(data_md, result.dx)}};
  if (scale) {
    result.dgamma = Tensor::Empty(gamma->shape());
    args.emplace(DNNL_ARG_SCALE, Wrap(weight_md, *gamma));
    args.emplace(DNNL_ARG_DIFF_SCALE, Wrap(weight_md, result.dgamma));
  }
  if (has_beta) {
    result.dbeta = Tensor::Empty(beta->shape());
    args.emplace(DNNL_ARG_SHIFT, Wrap(weight_md, *beta));
    args.emplace(DNNL_ARG_DIFF_SHIFT, Wrap(weight_md, result.dbeta));
  }
  primitive.execute(ctx.stream(), args);
  ctx.stream().wait();
  return result;
}

// Differentiable normalization backward, for recorded (create_graph) backward passes.
// x is viewed so that statistics reduce over `axes` (keepdim) and gamma/beta broadcast with
// `param_shape`; the statistics are recomputed from x so that they, too, are differentiated.
//   xhat = (x - mu) rstd,  rstd = (var + eps)^(-1/2),  gy = g * gamma
//   dx = rstd (gy - mean(gy) - xhat mean(gy xhat)),  dgamma = sum(g xhat),  dbeta = sum(g)
struct ComposedNormGrads {
  Var dx, dgamma, dbeta;
};

// Statistics reduce over `stat_axes`; parameter gradients over `param_axes` (the same axes
// for batch norm, the complementary ones for layer norm), reshaped to `param_shape`.
ComposedNormGrads ComposedNormBackward(const Var& g, const Var& x, const Var& gamma, const std::vector<int>& stat_axes,
                                       const std::vector<int>& param_axes, const Shape& param_broadcast,
                                       const Shape& param_shape, float eps, bool need_x, bool need_gamma,
                                       bool need_beta) {
  ComposedNormGrads r;
  if (need_beta) r.dbeta = Reshape(Sum(g, param_axes), param_shape);
  if (!need_x && !need_gamma) return r;
  const Var mu = Mean(x, stat_axes, /*keepdim=*/true);
  const Var xc = Sub(x, mu);
  const Var rstd = Pow(AddScalar(Mean(Square(xc), stat_axes, /*keepdim=*/true), eps), -0.5f);
  const Var xhat = Mul(xc, rstd);
  if (need_gamma) r.dgamma = Reshape(Sum(Mul(g, xhat), param_axes), param_shape);
  if (need_x) {
    const Var gy = gamma.defined() ? Mul(g, Reshape(gamma, param_broadcast)) : g;
    const Var centered = Sub(gy, Mean(gy, stat_axes, /*keepdim=*/true));
    r.dx = Mul(rstd, Sub(centered, Mul(xhat, Mean(Mul(gy, xhat), stat_axes, /*keepdim=*/true))));
  }
  return r;
}

void CheckParam(const char* op, const char* name, const Var& p, const Shape& expected) {
  if (!p.defined()) return;
  OTGEN_CHECK(p.shape() == expected, absl::StrCat(op, ": ", name, " has shape ", ShapeToString(p.shape()),
                                                  ", expected ", ShapeToString(expected)));
}

}  // namespace

Var BatchNorm(const Var& x, const Var& gamma, const Var& beta, Tensor* running_mean, Tensor* running_var,
              const BatchNormOptions& options) {
  OTGEN_CHECK(x.defined() && (x.rank() == 2 || x.rank() == 4) && AllPositive(x.shape()),
              absl::StrCat("BatchNorm: input ", x.defined() ? ShapeToString(x.shape()) : "undefined",
                           ", expected [N, C] or [N, C, H, W]"));
  OTGEN_CHECK(
      options.eps > 0 && options.momentum >= 0 && options.momentum <= 1,
      absl::StrCat("BatchNorm: eps ", options.eps, " must be > 0 and momentum ", options.momentum, " in [0, 1]"));
  const int64_t channels = x.dim(1);
  const Shape param = {channels};
  CheckParam("BatchNorm", "gamma", gamma, param);
  CheckParam("BatchNorm", "beta", beta, param);
  OTGEN_CHECK((running_mean == nullptr) == (running_var == nullptr),
              "BatchNorm: pass both running_mean and running_var or neither");
  if (running_mean != nullptr) {
    OTGEN_CHECK(running_mean->shape() == param && running_var->shape() == param,
                absl::StrCat("BatchNorm: running_mean ", ShapeToString(running_mean->shape()), " and running_var ",
                             ShapeToString(running_var->shape()), ", expected ", ShapeToString(param)));
  }
  OTGEN_CHECK(options.training || running_mean != nullptr, "BatchNorm: inference needs running statistics");
  const int64_t count = x.numel() / channels;
  OTGEN_CHECK(
      !options.training || count > 1,
      absl::StrCat("BatchNorm: training needs more than one value per channel, input ", ShapeToString(x.shape())));

  const std::vector<int> axes = x.rank() == 2 ? std::vector<int>{0} : std::vector<int>{0, 2, 3};
  const Shape broadcast = x.rank() == 2 ? Shape{1, channels} : Shape{1, channels, 1, 1};
  const float eps = options.eps;
  const bool has_gamma = gamma.defined();
  const bool has_beta = beta.defined();
  std::vector<Var> inputs = {x};
  if (has_gamma) inputs.push_back(gamma);
  if (has_beta) inputs.push_back(beta);
  const int gamma_index = has_gamma ? 1 : -1;
  const int beta_index = has_beta ? (has_gamma ? 2 : 1) : -1;
  // With gradients, max(0, BN(x)) is recorded as the two ops; without, the max is fused into
  // the output pass below (and no node is recorded).
  const bool fused_relu = options.relu && !AnyRequiresGrad(inputs);
  if (options.relu && !fused_relu) {
    BatchNormOptions plain = options;
    plain.relu = false;
    return Relu(BatchNorm(x, gamma, beta, running_mean, running_var, plain));
  }

  if (options.batch_moments != nullptr) {
    const ChannelMoments& m = *options.batch_moments;
    OTGEN_CHECK(options.training, "BatchNorm: batch_moments are for training mode");
    OTGEN_CHECK(m.mean.defined() && m.variance.defined() && m.mean.shape() == param && m.variance.shape() == param,
                absl::StrCat("BatchNorm: batch_moments must be two tensors of shape ", ShapeToString(param)));
  }

  if (options.training) {
    NormForward f = BatchNormForwardKernel(x.value(), has_gamma ? &gamma.value() : nullptr,
                                           has_beta ? &beta.value() : nullptr, true, nullptr, nullptr, eps,
                                           fused_relu, options.batch_moments);
    if (running_mean != nullptr) {
      const float m = options.momentum;
      const float unbias = static_cast<float>(count) / static_cast<float>(count - 1);
      float* rm = running_mean->data();
      float* rv = running_var->data();
      for (int64_t c = 0; c < channels; ++c) {
        rm[c] = (1 - m) * rm[c] + m * f.mean.data()[c];
        rv[c] = (1 - m) * rv[c] + m * f.variance.data()[c] * unbias;
      }
    }
    if (fused_relu) return Const(std::move(f.y));
    Tensor mean = f.mean;
    Tensor variance = f.variance;
    return Record("BatchNorm", std::move(f.y), std::move(inputs),
                  [=](const Var& g, const std::vector<Var>& in, const std::vector<bool>& needs) {
                    std::vector<Var> grads(in.size());
                    const bool need_gamma = gamma_index >= 0 && needs[gamma_index];
                    const bool need_beta = beta_index >= 0 && needs[beta_index];
                    if (!GradModeEnabled()) {
                      NormBackward b = BatchNormBackwardKernel(in[0].value(), g.value(), mean, variance,
                                                               has_gamma ? &in[gamma_index].value() : nullptr,
                                                               has_beta ? &in[beta_index].value() : nullptr, eps);
                      if (needs[0]) grads[0] = Const(b.dx);
                      if (need_gamma) grads[gamma_index] = Const(b.dgamma);
                      if (need_beta) grads[beta_index] = Const(b.dbeta);
                      return grads;
                    }
                    ComposedNormGrads c =
                        ComposedNormBackward(g, in[0], has_gamma ? in[gamma_index] : Var(), axes, axes, broadcast,
                                             param, eps, needs[0], need_gamma, need_beta);
                    grads[0] = c.dx;
                    if (need_gamma) grads[gamma_index] = c.dgamma;
                    if (need_beta) grads[beta_index] = c.dbeta;
                    return grads;
                  });
  }

  // Inference: an affine map of x with constant statistics.
  NormForward f = BatchNormForwardKernel(x.value(), has_gamma ? &gamma.value() : nullptr,
                                         has_beta ? &beta.value() : nullptr, false, running_mean, running_var, eps,
                                         fused_relu);
  if (!AnyRequiresGrad(inputs)) return Const(std::move(f.y));
  Tensor rstd = Tensor::Empty(param);
  Tensor mean = running_mean->Clone();  // the running statistics may change before backward
  for (int64_t c = 0; c < channels; ++c) rstd.data()[c] = 1.0f / std::sqrt(running_var->data()[c] + eps);
  return Record("BatchNormInference", std::move(f.y), std::move(inputs),
                [=](const Var& g, const std::vector<Var>& in, const std::vector<bool>& needs) {
                  std::vector<Var> grads(in.size());
                  const Var rstd_b = Const(rstd.Reshape(broadcast));
                  if (needs[0]) {
                    const Var scale = has_gamma ? Mul(Reshape(in[gamma_index], broadcast), rstd_b) : rstd_b;
                    grads[0] = Mul(g, scale);
                  }
                  if (gamma_index >= 0 && needs[gamma_index]) {
                    const Var xhat = Mul(Sub(in[0], Const(mean.Reshape(broadcast))), rstd_b);
                    grads[gamma_index] = Sum(Mul(g, xhat), axes);
                  }
                  if (beta_index >= 0 && needs[beta_index]) grads[beta_index] = Sum(g, axes);
                  return grads;
                });
}

Var LayerNorm(const Var& x, const Var& gamma, const Var& beta, int normalized_dims, float eps) {
  OTGEN_CHECK(x.defined() && normalized_dims >= 1 && normalized_dims < x.rank() && AllPositive(x.shape()),
              absl::StrCat("LayerNorm: cannot normalize the last ", normalized_dims, " dimensions of ",
                           x.defined() ? ShapeToString(x.shape()) : "an undefined input"));
  OTGEN_CHECK(eps > 0, absl::StrCat("LayerNorm: eps ", eps, " must be > 0"));
  const Shape param(x.shape().end() - normalized_dims, x.shape().end());
  CheckParam("LayerNorm", "gamma", gamma, param);
  CheckParam("LayerNorm", "beta", beta, param);
  const int64_t features = NumElements(param);
  const int64_t rows = x.numel() / features;
  const bool has_gamma = gamma.defined();
  const bool has_beta = beta.defined();
  std::vector<Var> inputs = {x};
  if (has_gamma) inputs.push_back(gamma);
  if (has_beta) inputs.push_back(beta);
  const int gamma_index = has_gamma ? 1 : -1;
  const int beta_index = has_beta ? (has_gamma ? 2 : 1) : -1;
  const bool record = AnyRequiresGrad(inputs);
  NormForward f = LayerNormForwardKernel(x.value(), rows, features, has_gamma ? &gamma.value() : nullptr,
                                         has_beta ? &beta.value() : nullptr, eps, /*statistics=*/record);
  if (!record) return Const(std::move(f.y));
  Tensor mean = f.mean;
  Tensor variance = f.variance;
  return Record("LayerNorm", std::move(f.y), std::move(inputs),
                [=](const Var& g, const std::vector<Var>& in, const std::vector<bool>& needs) {
                  std::vector<Var> grads(in.size());
                  const bool need_gamma = gamma_index >= 0 && needs[gamma_index];
                  const bool need_beta = beta_index >= 0 && needs[beta_index];
                  if (!GradModeEnabled()) {
                    NormBackward b = LayerNormBackwardKernel(in[0].value(), g.value(), rows, features, mean, variance,
                                                             has_gamma ? &in[gamma_index].value() : nullptr,
                                                             has_beta ? &in[beta_index].value() : nullptr, eps);
                    if (needs[0]) grads[0] = Const(b.dx);
                    if (need_gamma) grads[gamma_index] = Const(b.dgamma);
                    if (need_beta) grads[beta_index] = Const(b.dbeta);
                    return grads;
                  }
                  const Shape flat = {rows, features};
                  ComposedNormGrads c =
                      ComposedNormBackward(Reshape(g, flat), Reshape(in[0], flat), has_gamma ? in[gamma_index] : Var(),
                                           {1}, {0}, {1, features}, param, eps, needs[0], need_gamma, need_beta);
                  if (needs[0]) grads[0] = Reshape(c.dx, in[0].shape());
                  if (need_gamma) grads[gamma_index] = c.dgamma;
                  if (need_beta) grads[beta_index] = c.dbeta;
                  return grads;
                });
}

// ---- Nearest-neighbour upsampling ------------------------------------------------------------------

namespace {

// Plain loops, parallel over the N*C planes: oneDNN 2.6's nearest resampling backward is
// its generic "simple" kernel (140 ms for [200,128,28,28] -> [200,128,14,14]); these are
// memory-bound single passes.
Tensor UpsampleKernel(const Tensor& x, int64_t f) {
  const int64_t planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
  Tensor y = Tensor::Empty({x.dim(0), x.dim(1), h * f, w * f});
  const float* src = x.data();
  float* dst = y.data();
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const float* in = src + p * h * w;
    float* out = dst + p * h * w * f * f;
    for (int64_t i = 0; i < h; ++i) {
      float* row = out + i * f * w * f;
      for (int64_t j = 0; j < w; ++j) {
        for (int64_t t = 0; t < f; ++t) row[j * f + t] = in[i * w + j];
      }
      for (int64_t r = 1; r < f; ++r) std::memcpy(row + r * w * f, row, sizeof(float) * w * f);
    }
  }
  return y;
}

// The adjoint of UpsampleKernel: sums of f x f blocks.
Tensor SumPoolKernel(const Tensor& x, int64_t f) {
  const int64_t planes = x.dim(0) * x.dim(1), h = x.dim(2) / f, w = x.dim(3) / f;
  Tensor y = Tensor::Empty({x.dim(0), x.dim(1), h, w});
  const float* src = x.data();
  float* dst = y.data();
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const float* in = src + p * h * w * f * f;
    float* out = dst + p * h * w;
    for (int64_t i = 0; i < h; ++i) {
      float* row = out + i * w;
      for (int64_t j = 0; j < w; ++j) row[j] = 0.0f;
      for (int64_t a = 0; a < f; ++a) {
        const float* in_row = in + (i * f + a) * w * f;
        for (int64_t j = 0; j < w; ++j) {
          float acc = 0.0f;
          for (int64_t t = 0; t < f; ++t) acc += in_row[j * f + t];
          row[j] += acc;
        }
      }
    }
  }
  return y;
}

}  // namespace

Var UpsampleNearest(const Var& x, int64_t factor) {
  OTGEN_CHECK(x.defined() && x.rank() == 4 && AllPositive(x.shape()) && factor >= 1,
              absl::StrCat("UpsampleNearest: input ", x.defined() ? ShapeToString(x.shape()) : "undefined",
                           " and factor ", factor, ", expected [N, C, H, W] and factor >= 1"));
  if (factor == 1) return x;
  return Record("UpsampleNearest", UpsampleKernel(x.value(), factor), {x},
                [factor](const Var& g, const std::vector<Var>&, const std::vector<bool>&) {
                  return std::vector<Var>{SumPool(g, factor)};
                });
}

Var SumPool(const Var& x, int64_t factor) {
  OTGEN_CHECK(x.defined() && x.rank() == 4 && AllPositive(x.shape()) && factor >= 1 && x.dim(2) % factor == 0 &&
                  x.dim(3) % factor == 0,
              absl::StrCat("SumPool: input ", x.defined() ? ShapeToString(x.shape()) : "undefined", " and factor ",
                           factor, ", expected [N, C, H, W] with H and W divisible by the factor"));
  if (factor == 1) return x;
  return Record("SumPool", SumPoolKernel(x.value(), factor), {x},
                [factor](const Var& g, const std::vector<Var>&, const std::vector<bool>&) {
                  return std::vector<Var>{UpsampleNearest(g, factor)};
                });
}

}  // namespace otgen::nn
