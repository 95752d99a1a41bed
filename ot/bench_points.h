#ifndef OTGEN_OT_BENCH_POINTS_H_
#define OTGEN_OT_BENCH_POINTS_H_

// Point sets shared by the ot/ benchmarks (testonly): uniform random clouds and MNIST images
// flattened to 784 coordinates in [0, 1] (the targets of seed 000's experiments).
//
//   const otgen::ot::RowMatrixXf y = otgen::ot::MnistBenchImages(otgen::data::Split::kTrain, 60000);
//   const otgen::ot::RowMatrixXf x = otgen::ot::UniformBenchPoints(200, 784, /*seed=*/2);

#include <cstdint>

#include "data/mnist.h"
#include "ot/types.h"

namespace otgen::ot {

// n x d points with coordinates uniform on [0, 1), from nn::Rng(seed).
RowMatrixXf UniformBenchPoints(int64_t n, int64_t d, uint64_t seed);

// The first `count` images of the MNIST `split` (from the @mnist runfiles: the benchmark needs
// "@mnist//:train_images", "@mnist//:train_labels" and the test pair in its data) as
// count x 784 values v / 255. Aborts with the loader's message when they are missing: a
// benchmark has no caller to hand an error to.
RowMatrixXf MnistBenchImages(data::Split split, int64_t count);

}  // namespace otgen::ot

#endif  // OTGEN_OT_BENCH_POINTS_H_
