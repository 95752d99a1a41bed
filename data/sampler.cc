#include "data/sampler.h"

#include "absl/strings/str_cat.h"

namespace otgen::data {

nn::Tensor Sampler::Sample(int64_t n, nn::Rng& rng) const {
  nn::Tensor out;
  SampleInto(n, rng, &out);
  return out;
}

void Sampler::PrepareOutput(int64_t n, nn::Tensor* out) const {
  OTGEN_CHECK(out != nullptr, "Sampler: output tensor must not be null");
  OTGEN_CHECK(n >= 0, absl::StrCat("Sampler: number of samples must be >= 0, got ", n));
  const nn::Shape& sample = sample_shape();
  if (out->defined() && out->rank() == static_cast<int>(sample.size()) + 1 && out->dim(0) == n) {
    bool same = true;
    for (size_t i = 0; i < sample.size(); ++i) same = same && out->shape()[i + 1] == sample[i];
    if (same) return;
  }
  nn::Shape shape;
  shape.reserve(sample.size() + 1);
  shape.push_back(n);
  shape.insert(shape.end(), sample.begin(), sample.end());
  *out = nn::Tensor::Empty(shape);
}

}  // namespace otgen::data
