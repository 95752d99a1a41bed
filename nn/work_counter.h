// Multiply-add counts of nn's matrix products and convolutions: how much arithmetic a workload
// executed, so that a benchmark can report the rate it reached and compare it with the machine's
// peak (2 FLOP per multiply-add).
//
// Every product kernel adds its nominal count when it runs -- forward, backward-data and
// backward-weights alike, so products inside gradients of gradients are counted too:
//
//   MatMul  C[m, n] = A[m, k] B[k, n] (per batch element)          m n k
//   Conv2d  x[N, Ci, Hi, Wi] -> y[N, Co, Ho, Wo], kernel Kh x Kw      N Co Ho Wo Ci Kh Kw
//           (its backward-data and backward-weights products: the same count)
//   ConvTranspose2d: the Conv2d count with input and output swapped (it is that convolution's
//           backward-data product).
//
// "Nominal" means padded taps are included, as PyTorch's profiler and fvcore count them.
// oneDNN skips taps that fall entirely on padding, so the arithmetic a CPU executes can be lower
// (a 5x5, stride-2, padding-2 convolution from 7x7 to 4x4 reaches only 64% of its taps).
// Element-wise ops, normalization, reductions and the OT solvers' own kernels are not counted.
//
//   const int64_t before = otgen::nn::ProductMacs();
//   RunIteration();
//   const double gflop = 2e-9 * (otgen::nn::ProductMacs() - before);
//
// The count is process-wide (all threads) and kept with a relaxed atomic add per product.
#ifndef OTGEN_NN_WORK_COUNTER_H_
#define OTGEN_NN_WORK_COUNTER_H_

#include <cstdint>

namespace otgen::nn {

// Adds `macs` multiply-adds to the process-wide count (called by the product kernels).
void CountProductMacs(int64_t macs);

// Multiply-adds counted since the process started or since the last ResetProductMacs().
int64_t ProductMacs();
void ResetProductMacs();

}  // namespace otgen::nn

#endif  // OTGEN_NN_WORK_COUNTER_H_
