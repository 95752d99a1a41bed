#include "nn/precision.h"

#include <atomic>
#include <bit>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "oneapi/dnnl/dnnl.hpp"

#if defined(__AVX512BF16__) && defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace otgen::nn {
namespace {

std::atomic<ComputePrecision> default_precision{ComputePrecision::kFloat32};
thread_local std::optional<ComputePrecision> thread_precision;

}  // namespace

ComputePrecision CurrentComputePrecision() {
  return thread_precision.has_value() ? *thread_precision : default_precision.load(std::memory_order_relaxed);
}

void SetDefaultComputePrecision(ComputePrecision precision) {
  default_precision.store(precision, std::memory_order_relaxed);
}

ComputePrecision DefaultComputePrecision() { return default_precision.load(std::memory_order_relaxed); }

ComputePrecisionGuard::ComputePrecisionGuard(ComputePrecision precision) : previous_(thread_precision) {
  thread_precision = precision;
}

ComputePrecisionGuard::~ComputePrecisionGuard() { thread_precision = previous_; }

bool NativeBFloat16Available() {
  static const bool available = [] {
    // ISAs are bit sets: each includes the bits of those below it, so AVX512_BF16 and AMX (which
    // implies it) both contain avx512_core_bf16's bits.
    const auto bf16 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
    return (static_cast<unsigned>(dnnl::get_effective_cpu_isa()) & bf16) == bf16;
  }();
  return available;
}

bool BFloat16OperandsInEffect() {
  return CurrentComputePrecision() == ComputePrecision::kBFloat16 && NativeBFloat16Available();
}

absl::StatusOr<ComputePrecision> ParseComputePrecision(std::string_view name) {
  if (name == "float32" || name == "f32" || name == "fp32") return ComputePrecision::kFloat32;
  if (name == "bfloat16" || name == "bf16") return ComputePrecision::kBFloat16;
  return absl::InvalidArgumentError(
      absl::StrCat("precision \"", std::string(name), "\": expected float32 (f32, fp32) or bfloat16 (bf16)"));
}

const char* ComputePrecisionName(ComputePrecision precision) {
  return precision == ComputePrecision::kBFloat16 ? "bfloat16" : "float32";
}

namespace internal {

// Matches VCVTNEPS2BF16: round to nearest even, NaN -> quiet NaN, and denormal inputs flushed to a
// zero of the same sign.
uint16_t ToBFloat16(float x) {
  uint32_t u = std::bit_cast<uint32_t>(x);
  if ((u & 0x7f800000u) == 0) return static_cast<uint16_t>((u >> 16) & 0x8000u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

bool IsNativeBFloat16Impl(std::string_view impl) {
  return impl.find("bf16") != std::string_view::npos || impl.find("amx") != std::string_view::npos;
}

float FromBFloat16(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

void ConvertToBFloat16(const float* in, int64_t n, uint16_t* out) {
  int64_t i = 0;
#if defined(__AVX512BF16__) && defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) {
    const __m256bh v = _mm512_cvtneps_pbh(_mm512_loadu_ps(in + i));
    std::memcpy(out + i, &v, sizeof(v));
  }
#endif
  for (; i < n; ++i) out[i] = ToBFloat16(in[i]);
}

}  // namespace internal
}  // namespace otgen::nn
