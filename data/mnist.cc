#include "data/mnist.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "data/file_util.h"
#include "nn/status_macros.h"
#include "nn/tensor.h"

namespace otgen::data {
namespace {

uint32_t ReadBigEndian32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | static_cast<uint32_t>(p[3]);
}

// Checks the magic number of an IDX file: `expected` for this kind of file.
absl::Status CheckMagic(const std::string& path, const internal::FileBytes& bytes, uint32_t expected,
                        std::string_view kind) {
  if (bytes.size() >= 2 && bytes.data()[0] == 0x1f && bytes.data()[1] == 0x8b) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": is gzip-compressed; expected an uncompressed IDX ",
                                                   internal::AbslView(kind), " file (magic ", expected,
                                                   "); decompress it with gunzip"));
  }
  if (bytes.size() < 4) {
    return absl::DataLossError(absl::StrCat(path, ": truncated IDX ", internal::AbslView(kind), " file: ", bytes.size(),
                                            " bytes, expected at least a 4-byte magic number (", expected, ")"));
  }
  const uint32_t magic = ReadBigEndian32(bytes.data());
  if (magic != expected) {
    std::string hint;
    if (magic == kIdxImagesMagic) hint = " (this is an IDX image file)";
    if (magic == kIdxLabelsMagic) hint = " (this is an IDX label file)";
    return absl::InvalidArgumentError(absl::StrCat(path, ": wrong magic number ", magic, hint, ", expected ", expected,
                                                   " for an IDX ", internal::AbslView(kind), " file"));
  }
  return absl::OkStatus();
}

// A parsed image file: header fields and a pointer to the pixels inside `bytes`.
struct ImagesView {
  int64_t count = 0;
  int rows = 0;
  int cols = 0;
  const uint8_t* pixels = nullptr;
};

absl::StatusOr<ImagesView> ParseImages(const std::string& path, const internal::FileBytes& bytes) {
  OTGEN_RETURN_IF_ERROR(CheckMagic(path, bytes, kIdxImagesMagic, "images"));
  constexpr uint64_t kHeader = 16;
  if (bytes.size() < kHeader) {
    return absl::DataLossError(absl::StrCat(path, ": truncated IDX images header: ", bytes.size(),
                                            " bytes, expected 16 (magic, count, rows, cols)"));
  }
  const uint32_t count = ReadBigEndian32(bytes.data() + 4);
  const uint32_t rows = ReadBigEndian32(bytes.data() + 8);
  const uint32_t cols = ReadBigEndian32(bytes.data() + 12);
  if (rows == 0 || cols == 0 || rows > 65536 || cols > 65536) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": IDX images header gives ", rows, "x", cols, " images; expected sides in [1, 65536]"));
  }
  // count < 2^32 and rows * cols <= 2^32: the product fits in 128 bits, compare exactly.
  const unsigned __int128 expected =
      static_cast<unsigned __int128>(kHeader) + static_cast<unsigned __int128>(count) * rows * cols;
  if (static_cast<unsigned __int128>(bytes.size()) != expected) {
    const uint64_t pixel_bytes = bytes.size() - kHeader;
    const uint64_t per_image = static_cast<uint64_t>(rows) * cols;
    const std::string expected_text = expected > std::numeric_limits<uint64_t>::max()
                                          ? absl::StrCat("more than ", std::numeric_limits<uint64_t>::max())
                                          : absl::StrCat(static_cast<uint64_t>(expected));
    return absl::DataLossError(absl::StrCat(path, ": ", bytes.size() < expected ? "truncated" : "oversized",
                                            " IDX images file: ", bytes.size(), " bytes, expected ", expected_text,
                                            " = 16 + ", count, " images x ", rows, "x", cols, " (the file holds ",
                                            pixel_bytes / per_image, " whole images)"));
  }
  ImagesView view;
  view.count = count;
  view.rows = static_cast<int>(rows);
  view.cols = static_cast<int>(cols);
  view.pixels = bytes.data() + kHeader;
  return view;
}

// A parsed label file: the count and a pointer to the labels inside `bytes`.
struct LabelsView {
  int64_t count = 0;
  const uint8_t* labels = nullptr;
};

absl::StatusOr<LabelsView> ParseLabels(const std::string& path, const internal::FileBytes& bytes) {
  OTGEN_RETURN_IF_ERROR(CheckMagic(path, bytes, kIdxLabelsMagic, "labels"));
  constexpr uint64_t kHeader = 8;
  if (bytes.size() < kHeader) {
    return absl::DataLossError(
        absl::StrCat(path, ": truncated IDX labels header: ", bytes.size(), " bytes, expected 8 (magic, count)"));
  }
  const uint32_t count = ReadBigEndian32(bytes.data() + 4);
  const uint64_t expected = kHeader + count;
  if (bytes.size() != expected) {
    return absl::DataLossError(absl::StrCat(path, ": ", bytes.size() < expected ? "truncated" : "oversized",
                                            " IDX labels file: ", bytes.size(), " bytes, expected ", expected,
                                            " = 8 + ", count, " labels"));
  }
  LabelsView view;
  view.count = count;
  view.labels = bytes.data() + kHeader;
  return view;
}

std::string FirstExisting(const std::string& directory, std::string_view canonical, std::string_view alternative) {
  const std::string a = internal::JoinPath(directory, std::string(canonical));
  if (internal::IsRegularFile(a)) return a;
  const std::string b = internal::JoinPath(directory, std::string(alternative));
  if (internal::IsRegularFile(b)) return b;
  return a;
}

std::string GetEnv(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

// The path of the running executable (symlinks resolved), or "" where /proc is absent.
std::string RunningExecutablePath() {
  char buffer[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buffer, sizeof(buffer) - 1);
  return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : std::string();
}

bool HasAnyMnistFile(const std::string& dir) {
  for (std::string_view f :
       {kMnistTrainImagesFile, kMnistTrainLabelsFile, kMnistTestImagesFile, kMnistTestLabelsFile}) {
    if (internal::IsRegularFile(internal::JoinPath(dir, std::string(f)))) return true;
  }
  return false;
}

// Candidate directories under one runfiles root: <root>/mnist, then
// <root>/<workspace>/external/mnist for every workspace directory in the root.
void AddRunfilesCandidates(const std::string& root, std::vector<std::string>* out) {
  if (root.empty()) return;
  out->push_back(internal::JoinPath(root, "mnist"));
  std::vector<std::string> workspaces;
  const std::string test_workspace = GetEnv("TEST_WORKSPACE");
  if (!test_workspace.empty()) workspaces.push_back(test_workspace);
  if (DIR* dir = ::opendir(root.c_str())) {
    while (const dirent* entry = ::readdir(dir)) {
      const std::string name = entry->d_name;
      if (name == "." || name == ".." || name == "mnist" || name == test_workspace) continue;
      workspaces.push_back(name);
    }
    ::closedir(dir);
  }
  std::sort(workspaces.begin() + (test_workspace.empty() ? 0 : 1), workspaces.end());
  for (const std::string& ws : workspaces) {
    out->push_back(internal::JoinPath(internal::JoinPath(root, ws), "external/mnist"));
  }
}

// Looks up mnist/<file> in a runfiles manifest ("<runfiles path> <real path>" lines).
std::string FindInManifest(const std::string& manifest) {
  std::ifstream in(manifest);
  std::string line;
  const std::string key = absl::StrCat("mnist/", internal::AbslView(kMnistTrainImagesFile));
  const std::string key_test = absl::StrCat("mnist/", internal::AbslView(kMnistTestImagesFile));
  while (std::getline(in, line)) {
    const size_t space = line.find(' ');
    if (space == std::string::npos) continue;
    const std::string_view logical(line.data(), space);
    const auto ends_with = [&](const std::string& k) {
      return logical.size() >= k.size() && logical.substr(logical.size() - k.size()) == k;
    };
    if (ends_with(key) || ends_with(key_test)) {
      const std::string real = line.substr(space + 1);
      const size_t slash = real.rfind('/');
      return slash == std::string::npos ? std::string(".") : real.substr(0, slash);
    }
  }
  return "";
}

}  // namespace

absl::Status MnistOptions::Validate() const {
  if (image_size < 0 || image_size > 4096) {
    return absl::InvalidArgumentError(
        absl::StrCat("MnistOptions.image_size: expected 0 (keep) or a side in [1, 4096], got ", image_size));
  }
  return absl::OkStatus();
}

absl::StatusOr<IdxImages> ReadIdxImages(const std::string& path) {
  OTGEN_ASSIGN_OR_RETURN(internal::FileBytes bytes, internal::ReadFile(path));
  OTGEN_ASSIGN_OR_RETURN(ImagesView view, ParseImages(path, bytes));
  IdxImages images;
  images.count = view.count;
  images.rows = view.rows;
  images.cols = view.cols;
  images.pixels.assign(view.pixels, view.pixels + view.count * view.rows * view.cols);
  return images;
}

absl::StatusOr<IdxLabels> ReadIdxLabels(const std::string& path) {
  OTGEN_ASSIGN_OR_RETURN(internal::FileBytes bytes, internal::ReadFile(path));
  OTGEN_ASSIGN_OR_RETURN(LabelsView view, ParseLabels(path, bytes));
  IdxLabels labels;
  labels.labels.assign(view.labels, view.labels + view.count);
  return labels;
}

absl::StatusOr<InMemoryDataset> LoadMnistFiles(const std::string& images_path, const std::string& labels_path,
                                               const MnistOptions& options) {
  OTGEN_RETURN_IF_ERROR(options.Validate());
  // Labels first: small, and their errors are cheaper to report.
  OTGEN_ASSIGN_OR_RETURN(internal::FileBytes label_bytes, internal::ReadFile(labels_path));
  OTGEN_ASSIGN_OR_RETURN(LabelsView labels, ParseLabels(labels_path, label_bytes));
  OTGEN_ASSIGN_OR_RETURN(internal::FileBytes image_bytes, internal::ReadFile(images_path));
  OTGEN_ASSIGN_OR_RETURN(ImagesView images, ParseImages(images_path, image_bytes));
  if (images.count != labels.count) {
    return absl::InvalidArgumentError(absl::StrCat("MNIST images and labels disagree: ", images_path, " holds ",
                                                   images.count, " images but ", labels_path, " holds ", labels.count,
                                                   " labels"));
  }
  std::vector<int32_t> label_values(labels.count);
  for (int64_t i = 0; i < labels.count; ++i) {
    const uint8_t y = labels.labels[i];
    if (y >= kMnistNumClasses) {
      return absl::DataLossError(
          absl::StrCat(labels_path, ": label ", static_cast<int>(y), " of example ", i, " is outside 0-9"));
    }
    label_values[i] = y;
  }

  const int64_t n = images.count;
  const bool resize =
      options.image_size != 0 && (options.image_size != images.rows || options.image_size != images.cols);
  const int out_rows = resize ? options.image_size : images.rows;
  const int out_cols = resize ? options.image_size : images.cols;
  const int64_t in_pixels = static_cast<int64_t>(images.rows) * images.cols;
  const int64_t out_pixels = static_cast<int64_t>(out_rows) * out_cols;
  nn::Shape shape = options.flatten ? nn::Shape{n, out_pixels} : nn::Shape{n, 1, out_rows, out_cols};
  nn::Tensor examples = nn::Tensor::Empty(shape);
  float* out = examples.data();
  if (!resize) {
    internal::BytesToPixels(images.pixels, n * in_pixels, options.scaling, out);
  } else {
    internal::AreaResampler resampler(images.rows, images.cols, out_rows, out_cols);
    std::vector<float> unit(in_pixels);
    std::vector<float> scratch(resampler.scratch_size());
    for (int64_t i = 0; i < n; ++i) {
      internal::BytesToPixels(images.pixels + i * in_pixels, in_pixels, PixelScaling::kUnit, unit.data());
      resampler.Resample(unit.data(), out + i * out_pixels, scratch.data());
    }
    internal::ApplyScaling(options.scaling, out, n * out_pixels);
  }
  return InMemoryDataset::Create(std::move(examples), std::move(label_values), kMnistNumClasses, images_path);
}

std::string MnistImagesPath(const std::string& directory, Split split) {
  return split == Split::kTrain ? FirstExisting(directory, kMnistTrainImagesFile, "train-images.idx3-ubyte")
                                : FirstExisting(directory, kMnistTestImagesFile, "t10k-images.idx3-ubyte");
}

std::string MnistLabelsPath(const std::string& directory, Split split) {
  return split == Split::kTrain ? FirstExisting(directory, kMnistTrainLabelsFile, "train-labels.idx1-ubyte")
                                : FirstExisting(directory, kMnistTestLabelsFile, "t10k-labels.idx1-ubyte");
}

absl::StatusOr<InMemoryDataset> LoadMnist(const std::string& directory, Split split, const MnistOptions& options) {
  std::string dir = directory;
  if (dir.empty()) {
    OTGEN_ASSIGN_OR_RETURN(dir, FindMnistDirectory());
  } else if (!internal::IsDirectory(dir)) {
    return absl::NotFoundError(
        absl::StrCat("MNIST directory ", dir, " does not exist (expected a directory holding ",
                     internal::AbslView(kMnistTrainImagesFile), ", ", internal::AbslView(kMnistTrainLabelsFile), ", ",
                     internal::AbslView(kMnistTestImagesFile), ", ", internal::AbslView(kMnistTestLabelsFile), ")"));
  }
  return LoadMnistFiles(MnistImagesPath(dir, split), MnistLabelsPath(dir, split), options);
}

absl::StatusOr<std::string> FindMnistDirectory(const std::string& argv0) {
  return internal::FindMnistDirectoryForExecutable(argv0, RunningExecutablePath());
}

namespace internal {

absl::StatusOr<std::string> FindMnistDirectoryForExecutable(const std::string& argv0, const std::string& executable) {
  std::vector<std::string> candidates;
  AddRunfilesCandidates(GetEnv("RUNFILES_DIR"), &candidates);
  AddRunfilesCandidates(GetEnv("TEST_SRCDIR"), &candidates);
  if (!argv0.empty()) AddRunfilesCandidates(absl::StrCat(argv0, ".runfiles"), &candidates);
  // A binary run directly (bazel-bin/pkg/name, or a copy with its runfiles folder beside it)
  // when the caller has no argv[0] to pass, e.g. under benchmark_main.
  if (!executable.empty()) AddRunfilesCandidates(absl::StrCat(executable, ".runfiles"), &candidates);
  // The working directory of a test or of `bazel run` is <runfiles>/<workspace>.
  candidates.push_back("external/mnist");
  candidates.push_back("../mnist");
  for (const std::string& dir : candidates) {
    if (HasAnyMnistFile(dir)) return dir;
  }
  const std::string manifest = GetEnv("RUNFILES_MANIFEST_FILE");
  if (!manifest.empty()) {
    const std::string dir = FindInManifest(manifest);
    if (!dir.empty() && HasAnyMnistFile(dir)) return dir;
    candidates.push_back(absl::StrCat("(manifest ", manifest, ")"));
  }
  return absl::NotFoundError(
      absl::StrCat("MNIST IDX files (", internal::AbslView(kMnistTrainImagesFile),
                   ", ...) not found in the Bazel runfiles; tried ", absl::StrJoin(candidates, ", "),
                   ". Add \"@mnist//:train_images\", \"@mnist//:train_labels\", \"@mnist//:test_images\", "
                   "\"@mnist//:test_labels\" to the target's data, or pass a directory holding the four files"));
}

}  // namespace internal

}  // namespace otgen::data
