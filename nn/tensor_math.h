// Tensor-level math (no autodiff): the kernels behind nn/ops.h.
//
// Element-wise, binary, reduction, softmax and matmul kernels run on oneDNN 2.x primitives,
// cached by shape (nn/onednn_context.h); layout shuffles (permute, concat, gather/scatter
// of rows, broadcasting copies) are plain loops. All functions return new tensors and
// never modify their inputs. Shapes must be valid (the callers in nn/ops.h validate); a
// mismatch aborts with a message naming both shapes.
//
// Broadcasting follows NumPy: shapes are right-aligned; a dimension of 1 stretches.
//
// NaN inputs follow oneDNN (x86 min/max semantics), not IEEE/PyTorch propagation:
// Relu(NaN) = 0, Clip(NaN) = alpha, Max/Min return one operand when the other is NaN
// (which one is unspecified), Exp(NaN) may be inf. Check losses with std::isfinite.
//
//   Tensor y = math::Binary(BinaryKind::kAdd, x, bias);   // [b, n] + [n]
//   Tensor s = math::Reduce(ReduceKind::kSum, y, {1}, /*keepdim=*/false);
#ifndef OTGEN_NN_TENSOR_MATH_H_
#define OTGEN_NN_TENSOR_MATH_H_

#include <cstdint>
#include <vector>

#include "nn/tensor.h"

namespace otgen::nn::math {

// The broadcast shape of a and b; aborts when they are incompatible.
Shape BroadcastShapes(const Shape& a, const Shape& b);
// True when a and b broadcast.
bool Broadcastable(const Shape& a, const Shape& b);

enum class BinaryKind { kAdd, kSub, kMul, kDiv, kMax, kMin };
// a (op) b with broadcasting.
Tensor Binary(BinaryKind kind, const Tensor& a, const Tensor& b);

enum class UnaryKind {
  kRelu,       // max(x, 0)
  kLeakyRelu,  // x > 0 ? x : alpha x
  kTanh,
  kSigmoid,
  kExp,
  kLog,  // within 1 ulp (a vectorized loop: oneDNN 2.6's eltwise_log errs by ~4e-6 near 1)
  kSqrt,
  kSquare,
  kAbs,
  kPow,     // x^alpha (x > 0 for non-integer alpha)
  kLinear,  // alpha x + beta
  kClip,    // min(max(x, alpha), beta)
  kNeg,     // -x
  kStep,    // x > 0 ? 1 : 0 (derivative mask of relu)
  kSign,    // -1, 0, 1
};
// f(x) element-wise; `alpha`, `beta` as documented per kind.
Tensor Unary(UnaryKind kind, const Tensor& x, float alpha = 0.0f, float beta = 0.0f);

enum class ReduceKind { kSum, kMean, kMax, kMin };
// Reduces over `axes` (negative allowed; empty = all axes). With keepdim the reduced axes
// stay as 1, otherwise they are removed.
Tensor Reduce(ReduceKind kind, const Tensor& x, const std::vector<int>& axes, bool keepdim);
// log sum exp over axes, computed stably (max-shifted).
Tensor LogSumExp(const Tensor& x, const std::vector<int>& axes, bool keepdim);
// Index of the minimum (maximum) along `axis` (first on ties), as an int64 vector in
// row-major order of the remaining axes.
std::vector<int64_t> ArgMin(const Tensor& x, int axis);
std::vector<int64_t> ArgMax(const Tensor& x, int axis);

// Softmax / log-softmax along `axis`. LogSoftmax is (x - max) - log(sum(exp(x - max))),
// so the log-probability of a dominant entry keeps its relative accuracy.
Tensor Softmax(const Tensor& x, int axis);
Tensor LogSoftmax(const Tensor& x, int axis);

// A bfloat16 copy of a tensor's values (round to nearest even; nn/precision.h), made once to
// serve as the operand of several mixed-precision products: a linear layer's input and weight
// in its forward product and again in its backward ones, the output gradient in both
// backward products. Undefined until made. Cheap to copy (shared storage).
class BFloat16Copy {
 public:
  BFloat16Copy() = default;
  explicit BFloat16Copy(const Tensor& t);
  // Storage for `numel` values, to be written through mutable_data() (by kernels that convert
  // as they compute).
  static BFloat16Copy Uninitialized(int64_t numel);

  bool defined() const { return storage_.defined(); }
  const uint16_t* data() const { return reinterpret_cast<const uint16_t*>(storage_.data()); }
  uint16_t* mutable_data() { return reinterpret_cast<uint16_t*>(storage_.data()); }
  int64_t numel() const { return numel_; }

 private:
  Tensor storage_;  // ceil(numel / 2) floats (the tensor block cache recycles them)
  int64_t numel_ = 0;
};

// bf16 operands of a product, for the mixed-precision path only (ignored in float32 mode, and
// for products that stay float32 there: small, thin, no native kernel): `a` / `b` are used
// instead of converting a / b (they must be copies of exactly those values); when `keep_a` /
// `keep_b` is set and the product converts a / b, the copy is stored there for reuse.
struct BFloat16Operands {
  const BFloat16Copy* a = nullptr;
  const BFloat16Copy* b = nullptr;
  BFloat16Copy* keep_a = nullptr;
  BFloat16Copy* keep_b = nullptr;
};

// op(a) @ op(b) for 2-D a, b, where op transposes when the flag is set; batched when
// both are 3-D with equal leading dimension.
Tensor MatMul(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false,
              const BFloat16Operands& bf16 = {});
// x @ w^T + b for x [M, K], w [N, K], b [N]: a linear layer, the bias added by the matmul's
// output stage instead of a separate pass over the [M, N] result.
Tensor Linear(const Tensor& x, const Tensor& w, const Tensor& b, const BFloat16Operands& bf16 = {});
// Linear then the (leaky) ReLU max(y, 0) + negative_slope min(y, 0) (negative_slope >= 0; 0 is
// ReLU), applied in the product's output stage instead of a pass of its own.
Tensor LinearRelu(const Tensor& x, const Tensor& w, const Tensor& b, float negative_slope,
                  const BFloat16Operands& bf16 = {});
// MatMul into `out`, which must already have the product's shape and not overlap a or b.
// For large products computed repeatedly (e.g. [200, 784] x [60000, 784]^T, a 48 MB
// result): reusing the buffer saves the page faults of a fresh allocation per call.
void MatMulInto(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b, Tensor* out);

// Layout operations.
Tensor Transpose(const Tensor& x);  // 2-D
Tensor Permute(const Tensor& x, const std::vector<int>& perm);
// Elements [begin, end) along `axis`.
Tensor Slice(const Tensor& x, int axis, int64_t begin, int64_t end);
// Zeros of `shape` with x placed at [begin, begin + x.dim(axis)) along `axis` (the
// adjoint of Slice).
Tensor PadSlice(const Tensor& x, const Shape& shape, int axis, int64_t begin);
Tensor Concat(const std::vector<Tensor>& xs, int axis);
// out[i] = x[indices[i]] along axis 0.
Tensor IndexRows(const Tensor& x, const std::vector<int64_t>& indices);
// out = zeros([num_rows, ...]); out[indices[i]] += x[i] (the adjoint of IndexRows).
Tensor ScatterAddRows(const Tensor& x, const std::vector<int64_t>& indices, int64_t num_rows);
// Materializes x broadcast to `shape`.
Tensor BroadcastTo(const Tensor& x, const Shape& shape);
// Sums x over the broadcast dimensions so the result has `shape` (the adjoint of BroadcastTo).
Tensor SumTo(const Tensor& x, const Shape& shape);
// 1 where a == b (element-wise, broadcasting), else 0.
Tensor Equal(const Tensor& a, const Tensor& b);
// 1 where a >= b, else 0.
Tensor GreaterEqual(const Tensor& a, const Tensor& b);
// g where y > 0, slope * g elsewhere (g and y of one shape), in one pass: the backward of relu
// (slope 0) and leaky relu read from their output y (or input, for a negative slope).
// With `g16`, also stores the result's bf16 copy there, made in the same pass.
Tensor ScaleWhereNotPositive(const Tensor& g, const Tensor& y, float slope, BFloat16Copy* g16 = nullptr);

// Sum of all elements in double precision (for losses and tests).
double SumAll(const Tensor& x);
// Max |a - b| over elements (equal shapes).
float MaxAbsDiff(const Tensor& a, const Tensor& b);

namespace internal {

// Which implementation the oneDNN-backed kernels (Binary, Unary, Reduce, LogSumExp,
// Softmax, LogSoftmax, MatMul) use. kAuto, the default, runs plain loops on tiny tensors,
// where a primitive's fixed cost (~1 us) dominates, and oneDNN primitives otherwise.
// kPrimitive uses oneDNN at every size; kLoop uses the loops at every size. Either way,
// shapes for which oneDNN 2.6 has only its reference implementation (reductions over
// leading axes, softmax over a non-innermost axis) run on the loops, which are faster.
// Tests force each path so that both are checked against the same oracles.
enum class KernelPath { kAuto, kPrimitive, kLoop };
void SetKernelPath(KernelPath path);
KernelPath GetKernelPath();

}  // namespace internal

}  // namespace otgen::nn::math

#endif  // OTGEN_NN_TENSOR_MATH_H_
