#include "ot/bench_points.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "nn/random.h"

namespace otgen::ot {

RowMatrixXf UniformBenchPoints(int64_t n, int64_t d, uint64_t seed) {
  nn::Rng rng(seed);
  RowMatrixXf p(n, d);
  for (int64_t i = 0; i < n * d; ++i) p.data()[i] = rng.Uniform();
  return p;
}

RowMatrixXf MnistBenchImages(data::Split split, int64_t count) {
  absl::StatusOr<data::InMemoryDataset> set =
      data::LoadMnist("", split, {.scaling = data::PixelScaling::kUnit, .flatten = true});
  if (!set.ok()) {
    std::fprintf(stderr, "MnistBenchImages: %s\n", set.status().ToString().c_str());
    std::abort();
  }
  const nn::Tensor& images = set->examples();
  const int64_t n = std::min<int64_t>(count, images.dim(0));
  const int64_t d = images.numel() / images.dim(0);
  RowMatrixXf out(n, d);
  std::copy(images.data(), images.data() + n * d, out.data());
  return out;
}

}  // namespace otgen::ot
