// The pixel range of images handed to apps/eval (the MNIST classifier, image grids): the one
// enum shared by every evaluation library, so that they can be used together.
//
//   kUnit       pixels in [0, 1]
//   kSymmetric  pixels in [-1, 1] (tanh generators; v_unit = (v + 1) / 2)
//
// Usage:
//   classifier->Evaluate(images, otgen::eval::PixelRange::kSymmetric);
//   otgen::eval::WriteImageGrid(path, images, {.range = otgen::eval::PixelRange::kUnit});
#ifndef OTGEN_APPS_EVAL_PIXEL_RANGE_H_
#define OTGEN_APPS_EVAL_PIXEL_RANGE_H_

namespace otgen::eval {

enum class PixelRange {
  kUnit,       // [0, 1]
  kSymmetric,  // [-1, 1] (tanh generators)
};

}  // namespace otgen::eval

#endif  // OTGEN_APPS_EVAL_PIXEL_RANGE_H_
