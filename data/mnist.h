// MNIST: reads the IDX files of LeCun et al.'s handwritten digits (60000 training and
// 10000 test images, 28x28 bytes, labels 0-9) into an InMemoryDataset.
//
// IDX format (big-endian): images = magic 2051 (0x00000803), count, rows, cols, then
// count*rows*cols pixel bytes (row-major, 0 = background); labels = magic 2049
// (0x00000801), count, then count label bytes. The file sizes must match the header
// exactly.
//
// Scaling (DATASETS.md): PixelScaling::kUnit gives v / 255 in [0, 1] (SDOT, seed 000,
// uses these as vectors in R^784); kSymmetric gives 2 v / 255 - 1 in [-1, 1] (SWGAN,
// W2GAN, WGAN-GP with tanh generators). `image_size` resamples the images by exact area
// averaging (mnist16 of the W2GAN domain-adaptation experiment: 28 -> 16, each output
// pixel the area-weighted mean of the 1.75 x 1.75 input pixels it covers, fractional
// coverage included). Examples have shape {1, s, s} (NCHW) or {s*s} when flattened.
//
// Errors: NotFoundError for a missing file, InvalidArgumentError for a file that is not
// an IDX file of the expected kind (wrong magic; a gzip-compressed file is reported as
// such) or images and labels whose counts disagree, DataLossError for a truncated or
// oversized file and a label outside 0-9. Every message names the file.
//
// Locating the data: Bazel's @mnist repository (`data = ["@mnist//:train_images", ...]`)
// puts the files in the runfiles tree; FindMnistDirectory() finds them there, under
// `bazel run`, `bazel test` or when the binary is run directly from bazel-bin, so
//   OTGEN_ASSIGN_OR_RETURN(std::string dir, FindMnistDirectory());
//   OTGEN_ASSIGN_OR_RETURN(InMemoryDataset train,
//                          LoadMnist(dir, Split::kTrain, {.scaling = PixelScaling::kSymmetric}));
// and a binary flag --mnist_dir can be passed straight to LoadMnist (an empty directory
// means "find it in the runfiles").
#ifndef OTGEN_DATA_MNIST_H_
#define OTGEN_DATA_MNIST_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "data/dataset.h"

namespace otgen::data {

inline constexpr uint32_t kIdxImagesMagic = 2051;  // 0x00000803: unsigned byte, 3 dims
inline constexpr uint32_t kIdxLabelsMagic = 2049;  // 0x00000801: unsigned byte, 1 dim
inline constexpr int kMnistNumClasses = 10;

// The canonical file names (as in @mnist and on LeCun's site, uncompressed).
inline constexpr std::string_view kMnistTrainImagesFile = "train-images-idx3-ubyte";
inline constexpr std::string_view kMnistTrainLabelsFile = "train-labels-idx1-ubyte";
inline constexpr std::string_view kMnistTestImagesFile = "t10k-images-idx3-ubyte";
inline constexpr std::string_view kMnistTestLabelsFile = "t10k-labels-idx1-ubyte";

struct MnistOptions {
  // Pixel range: [0, 1] or [-1, 1].
  PixelScaling scaling = PixelScaling::kUnit;
  // Side length of the returned images; 0 keeps the file's size (28). Other values
  // resample by exact area averaging (16 for mnist16).
  int image_size = 0;
  // Examples of shape {s*s} instead of {1, s, s}.
  bool flatten = false;

  // InvalidArgumentError for a negative image_size or one above 4096.
  absl::Status Validate() const;
};

// The raw content of an IDX image file.
struct IdxImages {
  int64_t count = 0;
  int rows = 0;
  int cols = 0;
  std::vector<uint8_t> pixels;  // count * rows * cols, row-major
};
// The raw content of an IDX label file.
struct IdxLabels {
  std::vector<uint8_t> labels;
};

// Low-level readers (header and size checks only; no label range check).
absl::StatusOr<IdxImages> ReadIdxImages(const std::string& path);
absl::StatusOr<IdxLabels> ReadIdxLabels(const std::string& path);

// Loads one split from explicit file paths. The dataset is named after the image file.
absl::StatusOr<InMemoryDataset> LoadMnistFiles(const std::string& images_path, const std::string& labels_path,
                                               const MnistOptions& options = {});

// Loads one split from `directory`, which holds the IDX files under their canonical
// names (the "train-images.idx3-ubyte" spelling of some mirrors is accepted too). An
// empty `directory` means FindMnistDirectory().
absl::StatusOr<InMemoryDataset> LoadMnist(const std::string& directory, Split split, const MnistOptions& options = {});

// Finds the directory holding the @mnist files in a Bazel runfiles tree. Looks, in
// order, under $RUNFILES_DIR, $TEST_SRCDIR, `argv0` + ".runfiles" (when argv0 is given),
// the running executable's own ".runfiles" folder (/proc/self/exe, so a binary run
// directly from bazel-bin finds its data without argv0) and the working directory (a
// test or `bazel run` starts in <runfiles>/<workspace>, where the files are at
// external/mnist/), each as <root>/mnist and
// <root>/<workspace>/external/mnist; then in $RUNFILES_MANIFEST_FILE. Returns the first
// directory holding at least one of the four files, or NotFoundError listing every place
// tried (with the hint to add the @mnist targets to `data` or to pass a directory).
absl::StatusOr<std::string> FindMnistDirectory(const std::string& argv0 = "");

namespace internal {
// FindMnistDirectory with the running executable's path given instead of read from
// /proc/self/exe ("" skips that candidate): for tests.
absl::StatusOr<std::string> FindMnistDirectoryForExecutable(const std::string& argv0, const std::string& executable);
}  // namespace internal

// The path of the images (or labels) file of `split` in `directory`, trying both
// spellings; the canonical one when neither exists.
std::string MnistImagesPath(const std::string& directory, Split split);
std::string MnistLabelsPath(const std::string& directory, Split split);

}  // namespace otgen::data

#endif  // OTGEN_DATA_MNIST_H_
