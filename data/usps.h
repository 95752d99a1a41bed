// USPS: the U.S. Postal Service handwritten digits (7291 training and 2007 test images,
// 16x16, labels 0-9) from the HDF5 file used by the W2GAN authors' domain-adaptation
// experiment (seed 002, Section 6 and Table 1), read through the HDF5 C API.
//
// File layout (DATASETS.md, shared/data/README.md):
//   /train/data    float [7291, 256]   pixels in [0, 1], each row a 16x16 image row-major
//   /train/target  integer [7291]      labels 0-9
//   /test/data     float [2007, 256]
//   /test/target   integer [2007]
// Any HDF5 float type is accepted for data (converted to float32) and any integer type
// for the targets; [N, 16, 16] data is accepted as well as [N, 256].
//
// Scaling: PixelScaling::kUnit keeps the stored [0, 1] values; kSymmetric applies
// 2 v - 1 (the W2GAN domain-adaptation setting: "pixels in both datasets are scaled to be
// in [-1, 1]"). Examples have shape {1, 16, 16}, or {256} when flattened.
//
// Errors name the file and the dataset path: NotFoundError for a missing file or
// dataset, InvalidArgumentError for a file that is not HDF5, an object that is not a
// dataset, or a dataset of the wrong rank, dimensions or type class (float / integer),
// DataLossError for a corrupt or unreadable file and for values out of range (a pixel
// outside [0, 1] or not finite, a label outside 0-9). HDF5's automatic error printing is
// turned off while the loader runs (and restored afterwards); HDF5's own message is
// appended to errors it reports. Every HDF5 handle is closed on every path.
//
//   OTGEN_ASSIGN_OR_RETURN(InMemoryDataset usps,
//                          LoadUsps(flag_usps_h5, Split::kTrain, {.scaling = PixelScaling::kSymmetric}));
#ifndef OTGEN_DATA_USPS_H_
#define OTGEN_DATA_USPS_H_

#include <string>

#include "absl/status/statusor.h"
#include "data/dataset.h"

namespace otgen::data {

inline constexpr int kUspsImageSize = 16;
inline constexpr int kUspsNumClasses = 10;

struct UspsOptions {
  // Pixel range: [0, 1] (as stored) or [-1, 1].
  PixelScaling scaling = PixelScaling::kUnit;
  // Examples of shape {256} instead of {1, 16, 16}.
  bool flatten = false;
};

// Loads /<split>/data and /<split>/target from the HDF5 file at `path`.
absl::StatusOr<InMemoryDataset> LoadUsps(const std::string& path, Split split, const UspsOptions& options = {});

}  // namespace otgen::data

#endif  // OTGEN_DATA_USPS_H_
