// Differentiable convolution, transposed convolution, normalization and upsampling ops.
//
// The image ops of the DCGAN-style generators and critics (seed 000 Section 6, seed 004
// Section 5), with PyTorch's semantics and weight layouts, on NCHW float32 tensors:
//
//   Conv2d           y[n,o,i,j] = b[o] + sum_{c,u,v} w[o,c,u,v] x[n,c, s i + u - p, s j + v - p]
//                    x [N,C,H,W], w [O,C,kh,kw], b [O];  Ho = floor((H + 2p - kh) / s) + 1.
//   ConvTranspose2d  the adjoint of Conv2d in x, plus a bias:
//                    y[n,o, s i + u - p, s j + v - p] += x[n,c,i,j] w[c,o,u,v]
//                    x [N,C,H,W], w [C,O,kh,kw] (in_channels first), b [O];
//                    Ho = (H - 1) s - 2p + kh + output_padding, output_padding < s.
//   BatchNorm        y = gamma (x - mu) / sqrt(var + eps) + beta per channel, with batch
//                    statistics over N (and H, W) in training (biased variance), running
//                    statistics in inference; running_mean/var updated in place with
//                    r <- (1 - momentum) r + momentum * stat, unbiased batch variance.
//   LayerNorm        the same normalization over the last k dimensions of each sample.
//   Upsample2x       nearest-neighbour 2x upsampling; SumPool2x is its adjoint.
//
// The kernels are oneDNN 2.x primitives (convolution_forward, deconvolution_forward,
// convolution_backward_weights, layer_normalization_forward/backward), cached by shape in
// OneDnnContext, except: the transposed convolution (= convolution backward data) with at
// least 16 output channels runs as one oneDNN matmul per chunk of images plus a vectorized
// col2im (faster than oneDNN's deconvolution kernels and free of layout reorders); batch
// normalization, upsampling and its adjoint are plain OpenMP loops. The other convolutions
// run in oneDNN's blocked layouts (nChw16c ...) where that is measured to be faster: tensors
// are reordered into reused scratch buffers and back, so callers only ever see plain
// NCHW / OIHW data (see conv_ops.cc for the measurements behind the choice).
//
// Every op is differentiable twice (WGAN-GP's penalty needs d/dtheta ||grad_x D(x)|| through
// a convolutional critic): the three convolution kernels
//   Conv2d (forward), Conv2dBackwardData (= transposed convolution), Conv2dBackwardWeights
// are each a recorded op whose backward rule is written with the other two, and the
// normalization backward rules are composed of differentiable ops (nn/ops.h) whenever the
// backward pass is itself recorded (create_graph); a first-order backward pass uses fused
// kernels instead (oneDNN's for layer norm, a two-pass loop for batch norm).
//
// Shapes are validated by the *OutputShape functions (InvalidArgumentError naming the
// shapes); the ops themselves treat a mismatch as a programming error and abort with that
// message, as nn/ops.h does.
//
//   Var h = Relu(Conv2d(x, w1, b1, {.stride = 2, .padding = 2}));        // [64,1,28,28] -> [64,64,14,14]
//   Var g = ConvTranspose2d(z, w2, b2, {.stride = 2, .padding = 2, .output_padding = 1});
//   Var n = BatchNorm(g, gamma, beta, &running_mean, &running_var, {.training = true});
#ifndef OTGEN_NN_CONV_OPS_H_
#define OTGEN_NN_CONV_OPS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "nn/autograd.h"
#include "nn/tensor.h"

namespace otgen::nn {

// Stride and zero padding of a 2-D (transposed) convolution, equal on both spatial axes
// (PyTorch's int arguments). output_padding (transposed convolution only) adds rows and
// columns at the bottom/right of the output to resolve the ambiguity of strided shapes.
struct Conv2dGeometry {
  int64_t stride = 1;
  int64_t padding = 0;
  int64_t output_padding = 0;
};

// Output shape of Conv2d(x, w) or an InvalidArgumentError naming the shapes. Requires
// x [N,C,H,W], w [O,C,kh,kw], stride >= 1, padding >= 0, output_padding == 0, H + 2p >= kh.
absl::StatusOr<Shape> Conv2dOutputShape(const Shape& x, const Shape& w, const Conv2dGeometry& geometry);
// Output shape of ConvTranspose2d(x, w): x [N,C,H,W], w [C,O,kh,kw],
// 0 <= output_padding < stride, positive output size.
absl::StatusOr<Shape> ConvTranspose2dOutputShape(const Shape& x, const Shape& w, const Conv2dGeometry& geometry);

// y = conv(x, w) + b. `b` may be undefined (no bias).
Var Conv2d(const Var& x, const Var& w, const Var& b, const Conv2dGeometry& geometry = {});

// y = conv^T(x, w) + b with PyTorch's weight layout w [C_in, C_out, kh, kw]. `b` may be
// undefined.
Var ConvTranspose2d(const Var& x, const Var& w, const Var& b, const Conv2dGeometry& geometry = {});

// Per-channel batch statistics of y [N, C, H, W] over N, H and W: what training-mode
// BatchNorm normalizes with (see BatchNormOptions::batch_moments).
struct ChannelMoments {
  Tensor mean;      // [C]
  Tensor variance;  // [C], biased: mean of (y - mean)^2
};

// ConvTranspose2d that also returns its output's ChannelMoments. With 16 or more output
// channels they are gathered while each output image is still in cache, so the batch
// statistics cost no pass over y: per image, the channel means m_n and the sums of squared
// deviations M_n (two passes over the image), then, in double and in image order,
//   mean = (1/N) sum_n m_n,   variance = (1/(N P)) (sum_n M_n + P sum_n (m_n - mean)^2)
// with P = H W. Fewer channels: one pass over y after the convolution.
Var ConvTranspose2d(const Var& x, const Var& w, const Var& b, const Conv2dGeometry& geometry,
                    ChannelMoments* moments);

// PyTorch-style positional forms: Conv2d(x, w, b, stride, padding),
// ConvTranspose2d(x, w, b, stride, padding, output_padding).
inline Var Conv2d(const Var& x, const Var& w, const Var& b, int64_t stride, int64_t padding) {
  return Conv2d(x, w, b, Conv2dGeometry{.stride = stride, .padding = padding});
}
inline Var ConvTranspose2d(const Var& x, const Var& w, const Var& b, int64_t stride, int64_t padding,
                           int64_t output_padding = 0) {
  return ConvTranspose2d(x, w, b,
                         Conv2dGeometry{.stride = stride, .padding = padding, .output_padding = output_padding});
}

// The gradient of Conv2d with respect to its input: for grad_out [N,O,Ho,Wo] and
// w [O,C,kh,kw], returns dx [N,C,input_h,input_w] = conv^T(grad_out, w). It is the
// transposed convolution with output size fixed by (input_h, input_w) instead of
// output_padding; geometry.output_padding is ignored.
Var Conv2dBackwardData(const Var& grad_out, const Var& w, const Conv2dGeometry& geometry, int64_t input_h,
                       int64_t input_w);

// The gradient of Conv2d with respect to its weights: for x [N,C,H,W] and
// grad_out [N,O,Ho,Wo], returns dw [O,C,kernel_h,kernel_w] with
// dw[o,c,u,v] = sum_{n,i,j} grad_out[n,o,i,j] x[n,c, s i + u - p, s j + v - p].
Var Conv2dBackwardWeights(const Var& x, const Var& grad_out, const Conv2dGeometry& geometry, int64_t kernel_h,
                          int64_t kernel_w);

struct BatchNormOptions {
  // Batch statistics (and running-statistics update) when true, running statistics when false.
  bool training = true;
  // r <- (1 - momentum) r + momentum * batch_stat.
  float momentum = 0.1f;
  float eps = 1e-5f;
  // Returns max(0, BN(x)), what BatchNorm followed by Relu computes. When no gradient is
  // recorded (no-grad mode, or no input requires one) the max is taken in the
  // normalization's output pass: one read and one write of x fewer than the two ops. With
  // gradients it records exactly Relu(BatchNorm(x)).
  bool relu = false;
  // Training only: x's batch statistics, already computed (e.g. by ConvTranspose2d with
  // moments); the statistics pass over x is skipped. They must be x's: the backward uses them.
  const ChannelMoments* batch_moments = nullptr;
};

// Batch normalization of x [N,C] or [N,C,H,W] per channel. gamma, beta: [C] or undefined
// (no affine transform). running_mean / running_var: [C] tensors updated in place in
// training (may both be null there: no tracking) and read in inference (required).
// Training needs more than one value per channel (N*H*W > 1).
Var BatchNorm(const Var& x, const Var& gamma, const Var& beta, Tensor* running_mean, Tensor* running_var,
              const BatchNormOptions& options = {});

// Layer normalization over the last `normalized_dims` dimensions of x (1 <= normalized_dims
// < rank): each sample x[i, ...] is normalized with its own mean and biased variance, then
// scaled by gamma and shifted by beta, both of shape x.shape()[rank - normalized_dims:]
// (or undefined).
Var LayerNorm(const Var& x, const Var& gamma, const Var& beta, int normalized_dims = 1, float eps = 1e-5f);

// Nearest-neighbour upsampling by an integer factor: [N,C,H,W] -> [N,C,fH,fW],
// y[n,c,i,j] = x[n,c,i/f,j/f].
Var UpsampleNearest(const Var& x, int64_t factor);
// Its adjoint: sums f x f blocks, [N,C,fH,fW] -> [N,C,H,W] (H, W must be divisible by f).
Var SumPool(const Var& x, int64_t factor);
inline Var Upsample2x(const Var& x) { return UpsampleNearest(x, 2); }
inline Var SumPool2x(const Var& x) { return SumPool(x, 2); }

namespace internal {
// Which kernels and memory layouts the convolutions use. kAuto picks, per op, what is
// measured to be faster (see conv_ops.cc); tests force each path. kPlain and kBlocked run
// every convolution as a oneDNN primitive on plain or blocked layouts; kGemm runs the
// transposed convolution (backward data) as matmul + col2im and the weight gradient as
// im2col + matmul, for every channel count, and the forward convolution as kAuto does;
// kPhases runs the transposed convolution as one stride-1 convolution per output phase
// whenever that is possible (else as kGemm does), for every channel count, and the rest as
// kAuto does.
enum class ConvLayout { kAuto, kPlain, kBlocked, kGemm, kPhases };
void SetConvLayoutForTesting(ConvLayout layout);
// How many transposed convolutions (backward-data products) ran on the phase path so far.
int64_t PhaseConvolutionRunsForTesting();
// How many times a reordered copy of weights was built so far (a miss of the weights cache,
// which keeps the copies of up to 8 weight tensors per plan while their values are unchanged).
int64_t WeightCopyBuildsForTesting();
}  // namespace internal

}  // namespace otgen::nn

#endif  // OTGEN_NN_CONV_OPS_H_
