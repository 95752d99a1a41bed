// Compute precision of nn's matrix products and convolutions: float32, or bfloat16 operands
// with float32 accumulation (mixed precision, the CPU counterpart of PyTorch's
// `torch.autocast("cpu", dtype=torch.bfloat16)`).
//
// In kBFloat16 mode the operands of MatMul (and so Linear), Conv2d and ConvTranspose2d --
// forward, backward-data and backward-weights alike, so first and second derivatives too --
// are rounded to bfloat16 (8 significant bits, round to nearest even) and multiplied with
// float32 accumulation into float32 results:
//
//   C_ij = sum_k bf16(A_ik) bf16(B_kj)    (products exact in float32, sums in float32)
//
// Each operand carries a relative error of at most 2^-8, so a result errs by about
// 2^-7 sum_k |A_ik B_kj| (float32 mode: k 2^-24 of the same sum). Everything else
// (element-wise ops, normalization, reductions, optimizers, parameters and their gradients'
// storage, the OT solvers in ot/) stays float32. On CPUs with AVX512_BF16 or AMX oneDNN runs
// bf16 dot products at about twice the float32 rate (this machine: 128 x 128 x 256 matmul
// 190 -> 340 GFLOP/s per core). Where oneDNN has no native bf16 kernel for a product (other
// CPUs, or layouts it does not cover) that product stays float32, as do products too small
// for a oneDNN primitive, thin products (a dimension of at most 4, such as the 2-d input and
// 1-d output layers of the 2-D networks: Eigen float32 is faster there) and convolutions in
// plain layouts (fewer than 16 channels where the blocked kernels do not pay).
//
// The mode is per thread: a ComputePrecisionGuard overrides it for its scope on the calling
// thread; otherwise the process-wide default (SetDefaultComputePrecision; the apps'
// run.precision / --precision) applies.
//
//   otgen::nn::ComputePrecisionGuard bf16(otgen::nn::ComputePrecision::kBFloat16);
//   Var y = net.Forward(x);  // matmuls and convolutions with bf16 operands
#ifndef OTGEN_NN_PRECISION_H_
#define OTGEN_NN_PRECISION_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/status/statusor.h"

namespace otgen::nn {

enum class ComputePrecision { kFloat32, kBFloat16 };

// The precision in effect on this thread: the innermost guard's, else the process default.
ComputePrecision CurrentComputePrecision();

// The process-wide default (kFloat32 unless set).
void SetDefaultComputePrecision(ComputePrecision precision);
ComputePrecision DefaultComputePrecision();

// Overrides the calling thread's precision until destroyed (nestable).
class ComputePrecisionGuard {
 public:
  explicit ComputePrecisionGuard(ComputePrecision precision);
  ~ComputePrecisionGuard();
  ComputePrecisionGuard(const ComputePrecisionGuard&) = delete;
  ComputePrecisionGuard& operator=(const ComputePrecisionGuard&) = delete;

 private:
  std::optional<ComputePrecision> previous_;
};

// True when oneDNN runs bf16 dot products natively on this CPU (AVX512_BF16 or AMX).
bool NativeBFloat16Available();

// True when this thread's matrix products and convolutions take bf16 operands: the precision in
// effect is kBFloat16 and NativeBFloat16Available(). On a CPU without native bf16 (e.g. AVX2 only,
// where oneDNN 2.6 has no bf16 matmul or convolution at all) kBFloat16 mode computes exactly as
// kFloat32 does.
bool BFloat16OperandsInEffect();

// "float32" / "bfloat16" (also "f32", "fp32", "bf16"), case-sensitive; anything else is an
// InvalidArgumentError naming the value and the accepted ones.
absl::StatusOr<ComputePrecision> ParseComputePrecision(std::string_view name);
const char* ComputePrecisionName(ComputePrecision precision);

namespace internal {

// bf16 bits of x, rounded to nearest even (NaN stays NaN, infinities stay infinite).
uint16_t ToBFloat16(float x);
float FromBFloat16(uint16_t bits);
// out[i] = ToBFloat16(in[i]) for i < n (vectorized).
void ConvertToBFloat16(const float* in, int64_t n, uint16_t* out);

// True when a oneDNN implementation (its impl_info_str()) runs native bf16 dot products, i.e.
// is neither a reference kernel nor an emulation through float32; bf16 plans fall back to
// float32 otherwise.
bool IsNativeBFloat16Impl(std::string_view impl);

}  // namespace internal
}  // namespace otgen::nn

#endif  // OTGEN_NN_PRECISION_H_
