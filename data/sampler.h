// Sampler: a distribution that draws fresh i.i.d. batches from a caller-seeded stream.
//
// Noise distributions (uniform on [-1, 1]^d, standard normal, a fitted multivariate
// Gaussian; data/samplers.h) and the 2-D data sets (data/synthetic2d.h) implement it, so
// a training loop can take "a source of batches" without caring which. Every draw comes
// from the nn::Rng passed in (seeded by the caller from the experiment config), so a run
// is repeatable; samplers themselves hold no random state and are safe to share.
//
// A batch of n samples is a Tensor {n, sample shape...}, contiguous row-major float32.
//
//   nn::Rng rng(config.seed());
//   UniformSampler noise({100}, -1.0f, 1.0f);
//   nn::Tensor z;                  // reused: SampleInto keeps the buffer when shapes match
//   noise.SampleInto(200, rng, &z);  // {200, 100}
#ifndef OTGEN_DATA_SAMPLER_H_
#define OTGEN_DATA_SAMPLER_H_

#include <cstdint>

#include "nn/random.h"
#include "nn/tensor.h"

namespace otgen::data {

class Sampler {
 public:
  virtual ~Sampler() = default;

  // Shape of one sample (e.g. {2}, {100}, {1, 28, 28}).
  virtual const nn::Shape& sample_shape() const = 0;

  // Draws n >= 0 samples into `*out`, shape {n, sample shape...}. The storage of `*out` is
  // reused when it already has that shape; otherwise a new tensor is allocated.
  virtual void SampleInto(int64_t n, nn::Rng& rng, nn::Tensor* out) const = 0;

  // Allocating form of SampleInto.
  nn::Tensor Sample(int64_t n, nn::Rng& rng) const;

 protected:
  // Makes `*out` a tensor of shape {n, sample_shape()...}, reusing its storage when the
  // shape already matches. Checks n >= 0.
  void PrepareOutput(int64_t n, nn::Tensor* out) const;
};

}  // namespace otgen::data

#endif  // OTGEN_DATA_SAMPLER_H_
