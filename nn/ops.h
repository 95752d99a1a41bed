// Differentiable ops on Var: the building blocks of networks and losses.
//
// Each op computes its value with the kernels of nn/tensor_math.h (oneDNN primitives where
// oneDNN has one) and, when recording, a Node whose backward rule is itself written with
// these ops, so every op can be differentiated twice (gradient penalties).
//
// Binary ops broadcast like NumPy; their backward sums the gradient back to each input's
// shape (SumTo). Shapes must be compatible: a mismatch is a programming error and aborts
// with a message naming both shapes (layers validate user-facing input with absl::Status
// before calling ops).
//
//   Var h = Relu(Linear(x, w1, b1));          // x [b, in], w1 [out, in], b1 [out]
//   Var loss = MeanAll(Square(Sub(h, target)));
#ifndef OTGEN_NN_OPS_H_
#define OTGEN_NN_OPS_H_

#include <cstdint>
#include <vector>

#include "nn/autograd.h"
#include "nn/tensor.h"

namespace otgen::nn {

// ---- Binary, broadcasting -------------------------------------------------------------
Var Add(const Var& a, const Var& b);
Var Sub(const Var& a, const Var& b);
Var Mul(const Var& a, const Var& b);
Var Div(const Var& a, const Var& b);
// Element-wise max / min; on ties the gradient goes to `a`.
Var Maximum(const Var& a, const Var& b);
Var Minimum(const Var& a, const Var& b);

// With a scalar.
Var AddScalar(const Var& x, float c);
Var MulScalar(const Var& x, float c);
// c - x
Var RSubScalar(float c, const Var& x);

inline Var operator+(const Var& a, const Var& b) { return Add(a, b); }
inline Var operator-(const Var& a, const Var& b) { return Sub(a, b); }
inline Var operator*(const Var& a, const Var& b) { return Mul(a, b); }
inline Var operator/(const Var& a, const Var& b) { return Div(a, b); }
inline Var operator+(const Var& a, float c) { return AddScalar(a, c); }
inline Var operator-(const Var& a, float c) { return AddScalar(a, -c); }
inline Var operator*(const Var& a, float c) { return MulScalar(a, c); }
inline Var operator*(float c, const Var& a) { return MulScalar(a, c); }
inline Var operator/(const Var& a, float c) { return MulScalar(a, 1.0f / c); }

// ---- Element-wise ----------------------------------------------------------------------
Var Neg(const Var& x);
inline Var operator-(const Var& x) { return Neg(x); }
Var Relu(const Var& x);
Var LeakyRelu(const Var& x, float negative_slope);
Var Tanh(const Var& x);
Var Sigmoid(const Var& x);
Var Exp(const Var& x);
Var Log(const Var& x);
Var Sqrt(const Var& x);
Var Square(const Var& x);
Var Abs(const Var& x);
// x^p (x > 0 unless p is an integer).
Var Pow(const Var& x, float p);
// min(max(x, lo), hi); the gradient is 1 inside [lo, hi] and 0 outside.
Var Clamp(const Var& x, float lo, float hi);

// ---- Reductions ------------------------------------------------------------------------
// Over `axes` (negative allowed; empty = all). keepdim keeps reduced axes as 1.
Var Sum(const Var& x, const std::vector<int>& axes, bool keepdim = false);
Var Mean(const Var& x, const std::vector<int>& axes, bool keepdim = false);
// The gradient is split equally among tied maxima (minima).
Var Max(const Var& x, const std::vector<int>& axes, bool keepdim = false);
Var Min(const Var& x, const std::vector<int>& axes, bool keepdim = false);
Var LogSumExp(const Var& x, const std::vector<int>& axes, bool keepdim = false);
// To a scalar (shape {}).
Var SumAll(const Var& x);
Var MeanAll(const Var& x);

// Softmax / log-softmax along `axis`.
Var Softmax(const Var& x, int axis);
Var LogSoftmax(const Var& x, int axis);

// ---- Linear algebra ----------------------------------------------------------------------
// op(a) @ op(b) for 2-D (or batched 3-D) a, b.
Var MatMul(const Var& a, const Var& b, bool transpose_a = false, bool transpose_b = false);
// x @ w^T + b with x [batch, in], w [out, in] (PyTorch's layout), b [out] or undefined.
// With a bias, a first-order backward (no create_graph) reuses the bf16 copies of x and w that
// the forward product made in mixed precision (nn/precision.h): x and w must not be modified
// in place between a forward and its backward (as PyTorch requires too).
Var Linear(const Var& x, const Var& w, const Var& b);
// Linear(x, w, b) then LeakyRelu(., negative_slope) (Relu for 0) as one op: the activation is
// applied in the product's output stage (no pass, tensor or node of its own). Same values and
// gradients, first and second order, as the two ops one by one. b defined, negative_slope >= 0.
Var LinearRelu(const Var& x, const Var& w, const Var& b, float negative_slope = 0.0f);

// ---- Layout ------------------------------------------------------------------------------
Var Reshape(const Var& x, const Shape& shape);
// [b, ...] -> [b, prod(...)]
Var Flatten(const Var& x);
Var Transpose(const Var& x);  // 2-D
Var Permute(const Var& x, const std::vector<int>& perm);
Var Slice(const Var& x, int axis, int64_t begin, int64_t end);
Var Concat(const std::vector<Var>& xs, int axis);
// out[i] = x[indices[i]] along axis 0.
Var IndexRows(const Var& x, const std::vector<int64_t>& indices);
// zeros([num_rows, ...]) with out[indices[i]] += x[i].
Var ScatterAddRows(const Var& x, const std::vector<int64_t>& indices, int64_t num_rows);
Var BroadcastTo(const Var& x, const Shape& shape);
// Sums broadcast dimensions away so that the result has `shape`.
Var SumTo(const Var& x, const Shape& shape);
// Places x at [begin, begin + x.dim(axis)) along `axis` of a zero tensor of `shape`.
Var PadSlice(const Var& x, const Shape& shape, int axis, int64_t begin);

// ---- Composite conveniences ----------------------------------------------------------------
// Row-wise Euclidean norm of a [b, ...] tensor: sqrt(sum_k x_bk^2 + eps), shape [b].
Var RowNorm(const Var& x, float eps = 0.0f);

}  // namespace otgen::nn

#endif  // OTGEN_NN_OPS_H_
