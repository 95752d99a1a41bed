#include "data/cifar10.h"

#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "data/file_util.h"
#include "nn/status_macros.h"
#include "nn/tensor.h"

namespace otgen::data {
namespace {

absl::Status CheckRecordSize(const std::string& path, uint64_t size) {
  if (size == 0 || size % kCifar10RecordBytes != 0) {
    return absl::DataLossError(absl::StrCat(
        path, ": size ", size, " bytes is not a positive multiple of the CIFAR-10 record size ", kCifar10RecordBytes,
        " (1 label byte + 3072 pixel bytes): ", size / kCifar10RecordBytes, " whole records and ",
        size % kCifar10RecordBytes, " leftover bytes (truncated or not a CIFAR-10 binary file)"));
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> Cifar10FileNames(Split split) {
  if (split == Split::kTest) return {"test_batch.bin"};
  std::vector<std::string> names;
  for (int i = 1; i <= 5; ++i) names.push_back(absl::StrCat("data_batch_", i, ".bin"));
  return names;
}

absl::StatusOr<InMemoryDataset> LoadCifar10Files(const std::vector<std::string>& paths, const Cifar10Options& options) {
  if (paths.empty()) return absl::InvalidArgumentError("LoadCifar10Files: expected at least one file, got none");
  // Sizes first, so that all records go into one allocation.
  int64_t total = 0;
  for (const std::string& path : paths) {
    OTGEN_ASSIGN_OR_RETURN(uint64_t size, internal::FileSize(path));
    OTGEN_RETURN_IF_ERROR(CheckRecordSize(path, size));
    total += static_cast<int64_t>(size / kCifar10RecordBytes);
  }
  constexpr int64_t kPixels = kCifar10RecordBytes - 1;
  nn::Tensor examples =
      nn::Tensor::Empty(options.flatten ? nn::Shape{total, kPixels}
                                        : nn::Shape{total, kCifar10Channels, kCifar10ImageSize, kCifar10ImageSize});
  std::vector<int32_t> labels(total);
  int64_t next = 0;
  for (const std::string& path : paths) {
    OTGEN_ASSIGN_OR_RETURN(internal::FileBytes bytes, internal::ReadFile(path));
    OTGEN_RETURN_IF_ERROR(CheckRecordSize(path, bytes.size()));  // the file may have changed
    const int64_t records = static_cast<int64_t>(bytes.size() / kCifar10RecordBytes);
    if (next + records > total) {
      return absl::DataLossError(absl::StrCat(path, ": grew while loading (", records, " records)"));
    }
    for (int64_t r = 0; r < records; ++r) {
      const uint8_t* record = bytes.data() + r * kCifar10RecordBytes;
      if (record[0] >= kCifar10NumClasses) {
        return absl::DataLossError(absl::StrCat(path, ": label byte ", static_cast<int>(record[0]), " of record ", r,
                                                " (byte offset ", r * kCifar10RecordBytes, ") is outside 0-9"));
      }
      labels[next] = record[0];
      internal::BytesToPixels(record + 1, kPixels, options.scaling, examples.data() + next * kPixels);
      ++next;
    }
  }
  if (next != total) {
    return absl::DataLossError(
        absl::StrCat(paths.back(), ": files shrank while loading (", next, " of ", total, " records read)"));
  }
  return InMemoryDataset::Create(
      std::move(examples), std::move(labels), kCifar10NumClasses,
      paths.size() == 1 ? paths[0] : absl::StrCat(paths[0], " and ", paths.size() - 1, " more"));
}

absl::StatusOr<InMemoryDataset> LoadCifar10(const std::string& directory, Split split, const Cifar10Options& options) {
  if (!internal::IsDirectory(directory)) {
    return absl::NotFoundError(absl::StrCat("CIFAR-10 directory ", directory,
                                            " does not exist (expected cifar-10-batches-bin with data_batch_1.bin ... "
                                            "data_batch_5.bin and test_batch.bin)"));
  }
  std::vector<std::string> paths;
  for (const std::string& name : Cifar10FileNames(split)) paths.push_back(internal::JoinPath(directory, name));
  return LoadCifar10Files(paths, options);
}

}  // namespace otgen::data
