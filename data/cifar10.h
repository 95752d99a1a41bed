// CIFAR-10: 60000 32x32 colour images in 10 classes (SWGAN, seed 001, Table 3), read from
// the "binary version" of the dataset (cifar-10-batches-bin).
//
// Format: each file is a sequence of 3073-byte records: 1 label byte (0-9), then 3072
// pixel bytes, the 1024 red values of the 32x32 image row-major, then the 1024 green,
// then the 1024 blue. The training set is data_batch_1.bin ... data_batch_5.bin (10000
// records each), the test set test_batch.bin. The byte layout is already NCHW, so an
// example is a Tensor {3, 32, 32} (or {3072} flattened), values v / 255 in [0, 1] or
// 2 v / 255 - 1 in [-1, 1].
//
// Errors name the file: NotFoundError for a missing file or directory,
// DataLossError for a file whose size is not a positive multiple of 3073 bytes (the
// message gives the size, the number of whole records and the leftover bytes) or a label
// byte above 9 (with the record index), InvalidArgumentError for an empty file list.
//
//   OTGEN_ASSIGN_OR_RETURN(InMemoryDataset train,
//                          LoadCifar10(flag_cifar_dir, Split::kTrain, {.scaling = PixelScaling::kSymmetric}));
#ifndef OTGEN_DATA_CIFAR10_H_
#define OTGEN_DATA_CIFAR10_H_

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset.h"

namespace otgen::data {

inline constexpr int kCifar10ImageSize = 32;
inline constexpr int kCifar10Channels = 3;
inline constexpr int kCifar10NumClasses = 10;
inline constexpr int kCifar10RecordBytes = 1 + kCifar10Channels * kCifar10ImageSize * kCifar10ImageSize;  // 3073

// Class names in label order (batches.meta.txt).
inline constexpr std::array<std::string_view, kCifar10NumClasses> kCifar10ClassNames = {
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};

struct Cifar10Options {
  // Pixel range: [0, 1] or [-1, 1].
  PixelScaling scaling = PixelScaling::kUnit;
  // Examples of shape {3072} instead of {3, 32, 32}.
  bool flatten = false;
};

// The file names of a split: data_batch_1.bin ... data_batch_5.bin, or test_batch.bin.
std::vector<std::string> Cifar10FileNames(Split split);

// Loads and concatenates the records of `paths`, in order.
absl::StatusOr<InMemoryDataset> LoadCifar10Files(const std::vector<std::string>& paths,
                                                 const Cifar10Options& options = {});

// Loads a split from `directory` (cifar-10-batches-bin) holding the files above.
absl::StatusOr<InMemoryDataset> LoadCifar10(const std::string& directory, Split split,
                                            const Cifar10Options& options = {});

}  // namespace otgen::data

#endif  // OTGEN_DATA_CIFAR10_H_
