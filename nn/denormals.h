// Flush-to-zero for the calling thread's float arithmetic while a scope is active.
//
// On x86 a float below 2^-126 (a denormal: |x| < 1.18e-38) costs a microcode assist of ~100
// cycles in every SSE/AVX instruction that reads or produces one. Optimizer state decays into
// that range: Adam's second moment v = beta2 v + (1 - beta2) g^2 of a parameter whose gradient
// stays zero (a dead ReLU unit's weights) falls geometrically, v_k = beta2^k v_0, and crosses
// 1e-38 after a few hundred steps; g^2 of a gradient below 1e-19 is denormal at once. Measured
// here (Sapphire Rapids): the Adam update was ~10% of a W2GAN 2-D iteration and ~17% of a W2GAN
// Gaussian -> MNIST iteration, almost all of it in those assists.
//
// ScopedFlushDenormals sets MXCSR's FTZ (denormal results become 0) and DAZ (denormal inputs
// read as 0) bits, and restores the previous MXCSR on exit. The bits are per thread: code
// that runs on other threads (OpenMP workers) needs its own guard there. Numerically, values
// of magnitude below 1.18e-38 are replaced by zero -- in Adam's update the denominator is at
// least eps (1e-8), so a moment of that size moves a parameter by less than lr * 1e-30.
// PyTorch's torch.set_flush_denormal(True) sets the same two bits (process-wide there).
//
//   {
//     otgen::nn::ScopedFlushDenormals ftz;
//     ...  // loops over optimizer state
//   }
//
// On other architectures the guard does nothing.
#ifndef OTGEN_NN_DENORMALS_H_
#define OTGEN_NN_DENORMALS_H_

namespace otgen::nn {

class ScopedFlushDenormals {
 public:
  ScopedFlushDenormals();
  ~ScopedFlushDenormals();
  ScopedFlushDenormals(const ScopedFlushDenormals&) = delete;
  ScopedFlushDenormals& operator=(const ScopedFlushDenormals&) = delete;

 private:
  unsigned int saved_ = 0;  // MXCSR on entry
};

// True when the calling thread currently flushes denormals (both FTZ and DAZ set).
bool FlushingDenormals();

}  // namespace otgen::nn

#endif  // OTGEN_NN_DENORMALS_H_
