#include "data/mnist.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "data/file_util.h"
#include "data/test_util.h"
#include "gtest/gtest.h"

namespace otgen::data {
namespace {

using testutil::AppendBigEndian32;
using testutil::StatusIs;
using testutil::TempPath;
using testutil::WriteBytes;

std::string ImagesFile(uint32_t count, uint32_t rows, uint32_t cols, const std::vector<uint8_t>& pixels,
                       uint32_t magic = kIdxImagesMagic) {
  std::string s;
  AppendBigEndian32(magic, &s);
  AppendBigEndian32(count, &s);
  AppendBigEndian32(rows, &s);
  AppendBigEndian32(cols, &s);
  s.append(pixels.begin(), pixels.end());
  return s;
}

std::string LabelsFile(const std::vector<uint8_t>& labels, uint32_t magic = kIdxLabelsMagic) {
  std::string s;
  AppendBigEndian32(magic, &s);
  AppendBigEndian32(static_cast<uint32_t>(labels.size()), &s);
  s.append(labels.begin(), labels.end());
  return s;
}

// Three 2x3 images: image i, pixel k holds 50 i + 10 k (so 0..120); labels 7, 0, 9.
std::vector<uint8_t> SmallPixels() {
  std::vector<uint8_t> p;
  for (int i = 0; i < 3; ++i) {
    for (int k = 0; k < 6; ++k) p.push_back(static_cast<uint8_t>(50 * i + 10 * k));
  }
  return p;
}

struct SmallFiles {
  std::string images, labels;
};

SmallFiles WriteSmall(const std::string& prefix) {
  SmallFiles f{TempPath(prefix + "-images"), TempPath(prefix + "-labels")};
  WriteBytes(f.images, ImagesFile(3, 2, 3, SmallPixels()));
  WriteBytes(f.labels, LabelsFile({7, 0, 9}));
  return f;
}

TEST(MnistFormatTest, LoadsWrittenFiles) {
  const SmallFiles f = WriteSmall("small");
  absl::StatusOr<InMemoryDataset> d = LoadMnistFiles(f.images, f.labels);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->size(), 3);
  EXPECT_EQ(d->example_shape(), (nn::Shape{1, 2, 3}));
  EXPECT_EQ(d->num_classes(), 10);
  EXPECT_EQ(d->label(0), 7);
  EXPECT_EQ(d->label(2), 9);
  const std::vector<uint8_t> p = SmallPixels();
  for (int i = 0; i < 18; ++i) EXPECT_EQ(d->examples().data()[i], p[i] / 255.0f) << i;
  EXPECT_EQ(d->examples().at({1, 0, 1, 2}), 100.0f / 255.0f);  // image 1, row 1, col 2: k = 5

  absl::StatusOr<InMemoryDataset> sym =
      LoadMnistFiles(f.images, f.labels, {.scaling = PixelScaling::kSymmetric, .flatten = true});
  ASSERT_TRUE(sym.ok()) << sym.status();
  EXPECT_EQ(sym->example_shape(), (nn::Shape{6}));
  for (int i = 0; i < 18; ++i) EXPECT_NEAR(sym->examples().data()[i], 2.0 * p[i] / 255.0 - 1.0, 1e-6) << i;
}

TEST(MnistFormatTest, RawReaders) {
  const SmallFiles f = WriteSmall("raw");
  absl::StatusOr<IdxImages> images = ReadIdxImages(f.images);
  ASSERT_TRUE(images.ok()) << images.status();
  EXPECT_EQ(images->count, 3);
  EXPECT_EQ(images->rows, 2);
  EXPECT_EQ(images->cols, 3);
  EXPECT_EQ(images->pixels, SmallPixels());
  absl::StatusOr<IdxLabels> labels = ReadIdxLabels(f.labels);
  ASSERT_TRUE(labels.ok());
  EXPECT_EQ(labels->labels, (std::vector<uint8_t>{7, 0, 9}));
}

TEST(MnistFormatTest, ResizesByArea) {
  // One 4x4 image resized to 2x2 (integer ratio): each output is the mean of a 2x2 block.
  std::vector<uint8_t> px = {0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150};
  const std::string images = TempPath("resize-images"), labels = TempPath("resize-labels");
  WriteBytes(images, ImagesFile(1, 4, 4, px));
  WriteBytes(labels, LabelsFile({3}));
  absl::StatusOr<InMemoryDataset> d = LoadMnistFiles(images, labels, {.image_size = 2});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->example_shape(), (nn::Shape{1, 2, 2}));
  EXPECT_NEAR(d->examples().at({0, 0, 0, 0}), (0 + 10 + 40 + 50) / 4.0 / 255.0, 1e-6);
  EXPECT_NEAR(d->examples().at({0, 0, 1, 1}), (100 + 110 + 140 + 150) / 4.0 / 255.0, 1e-6);
  absl::StatusOr<InMemoryDataset> sym =
      LoadMnistFiles(images, labels, {.scaling = PixelScaling::kSymmetric, .image_size = 2, .flatten = true});
  ASSERT_TRUE(sym.ok());
  EXPECT_EQ(sym->example_shape(), (nn::Shape{4}));
  EXPECT_NEAR(sym->examples().at({0, 1}), 2.0 * (20 + 30 + 60 + 70) / 4.0 / 255.0 - 1.0, 1e-6);
}

TEST(MnistFormatTest, LoadFromDirectoryWithBothSpellings) {
  const std::string dir = TempPath("mnist_dir");
  ::mkdir(dir.c_str(), 0755);
  WriteBytes(dir + "/train-images-idx3-ubyte", ImagesFile(3, 2, 3, SmallPixels()));
  WriteBytes(dir + "/train-labels-idx1-ubyte", LabelsFile({1, 2, 3}));
  // The dotted spelling of some mirrors.
  WriteBytes(dir + "/t10k-images.idx3-ubyte", ImagesFile(1, 2, 3, {1, 2, 3, 4, 5, 6}));
  WriteBytes(dir + "/t10k-labels.idx1-ubyte", LabelsFile({4}));
  absl::StatusOr<InMemoryDataset> train = LoadMnist(dir, Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ(train->size(), 3);
  absl::StatusOr<InMemoryDataset> test = LoadMnist(dir, Split::kTest);
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ(test->size(), 1);
  EXPECT_EQ(test->label(0), 4);

  const std::string missing_dir = TempPath("no_mnist_here");
  EXPECT_TRUE(StatusIs(LoadMnist(missing_dir, Split::kTrain).status(), absl::StatusCode::kNotFound,
                       {missing_dir, "train-images-idx3-ubyte"}));
  const std::string half = TempPath("mnist_half");
  ::mkdir(half.c_str(), 0755);
  WriteBytes(half + "/train-labels-idx1-ubyte", LabelsFile({1}));
  EXPECT_TRUE(StatusIs(LoadMnist(half, Split::kTrain).status(), absl::StatusCode::kNotFound,
                       {half + "/train-images-idx3-ubyte", "not found"}));
}

TEST(MnistErrorTest, MissingFile) {
  const SmallFiles f = WriteSmall("missing");
  const std::string nowhere = TempPath("does-not-exist-idx3-ubyte");
  EXPECT_TRUE(StatusIs(LoadMnistFiles(nowhere, f.labels).status(), absl::StatusCode::kNotFound, {nowhere}));
  EXPECT_TRUE(StatusIs(LoadMnistFiles(f.images, nowhere).status(), absl::StatusCode::kNotFound, {nowhere}));
}

TEST(MnistErrorTest, WrongMagic) {
  const SmallFiles f = WriteSmall("magic");
  // Images and labels swapped.
  EXPECT_TRUE(StatusIs(LoadMnistFiles(f.labels, f.images).status(), absl::StatusCode::kInvalidArgument,
                       {f.images, "wrong magic number 2051", "expected 2049"}));
  const std::string bad = TempPath("magic-bad-images");
  WriteBytes(bad, ImagesFile(3, 2, 3, SmallPixels(), 0x12345678));
  EXPECT_TRUE(StatusIs(LoadMnistFiles(bad, f.labels).status(), absl::StatusCode::kInvalidArgument,
                       {bad, "wrong magic number 305419896", "expected 2051"}));
  const std::string gz = TempPath("magic-gz");
  WriteBytes(gz, std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00", 8));
  EXPECT_TRUE(StatusIs(LoadMnistFiles(gz, f.labels).status(), absl::StatusCode::kInvalidArgument, {gz, "gzip"}));
}

TEST(MnistErrorTest, TruncatedAndOversizedFiles) {
  const SmallFiles f = WriteSmall("trunc");
  std::string images = ImagesFile(3, 2, 3, SmallPixels());
  const std::string cut = TempPath("trunc-cut-images");
  WriteBytes(cut, images.substr(0, images.size() - 1));
  EXPECT_TRUE(StatusIs(LoadMnistFiles(cut, f.labels).status(), absl::StatusCode::kDataLoss,
                       {cut, "truncated", "33 bytes", "expected 34", "3 images x 2x3"}));
  const std::string header = TempPath("trunc-header-images");
  WriteBytes(header, images.substr(0, 10));
  EXPECT_TRUE(
      StatusIs(LoadMnistFiles(header, f.labels).status(), absl::StatusCode::kDataLoss, {header, "header", "10 bytes"}));
  const std::string tiny = TempPath("trunc-tiny");
  WriteBytes(tiny, "\x00\x00");
  EXPECT_TRUE(StatusIs(LoadMnistFiles(tiny, f.labels).status(), absl::StatusCode::kDataLoss, {tiny, "truncated"}));
  const std::string big = TempPath("trunc-big-images");
  WriteBytes(big, images + "xyz");
  EXPECT_TRUE(
      StatusIs(LoadMnistFiles(big, f.labels).status(), absl::StatusCode::kDataLoss, {big, "oversized", "expected 34"}));
  const std::string labels = LabelsFile({7, 0, 9});
  const std::string cut_labels = TempPath("trunc-cut-labels");
  WriteBytes(cut_labels, labels.substr(0, labels.size() - 2));
  EXPECT_TRUE(StatusIs(LoadMnistFiles(f.images, cut_labels).status(), absl::StatusCode::kDataLoss,
                       {cut_labels, "truncated", "expected 11"}));
  // A header claiming 2^32 - 1 images of 65536 x 65536 must not overflow the size check.
  const std::string huge = TempPath("trunc-huge-images");
  WriteBytes(huge, ImagesFile(0xffffffffu, 65536, 65536, {1, 2, 3}));
  EXPECT_TRUE(StatusIs(LoadMnistFiles(huge, f.labels).status(), absl::StatusCode::kDataLoss, {huge, "truncated"}));
  const std::string zero = TempPath("trunc-zero-rows-images");
  WriteBytes(zero, ImagesFile(3, 0, 3, {}));
  EXPECT_TRUE(StatusIs(LoadMnistFiles(zero, f.labels).status(), absl::StatusCode::kInvalidArgument, {zero, "0x3"}));
}

TEST(MnistErrorTest, CountsDisagree) {
  const SmallFiles f = WriteSmall("count");
  const std::string labels = TempPath("count-4-labels");
  WriteBytes(labels, LabelsFile({1, 2, 3, 4}));
  EXPECT_TRUE(StatusIs(LoadMnistFiles(f.images, labels).status(), absl::StatusCode::kInvalidArgument,
                       {f.images, "3 images", labels, "4 labels"}));
}

TEST(MnistErrorTest, LabelOutOfRange) {
  const SmallFiles f = WriteSmall("range");
  const std::string labels = TempPath("range-bad-labels");
  WriteBytes(labels, LabelsFile({1, 10, 3}));
  EXPECT_TRUE(StatusIs(LoadMnistFiles(f.images, labels).status(), absl::StatusCode::kDataLoss,
                       {labels, "label 10 of example 1", "0-9"}));
}

TEST(MnistErrorTest, InvalidOptions) {
  const SmallFiles f = WriteSmall("opts");
  EXPECT_TRUE(StatusIs(LoadMnistFiles(f.images, f.labels, {.image_size = -3}).status(),
                       absl::StatusCode::kInvalidArgument, {"image_size", "-3"}));
}

// Restores environment variables and the working directory on scope exit.
class EnvRestorer {
 public:
  explicit EnvRestorer(std::vector<std::string> names) : names_(std::move(names)) {
    for (const std::string& n : names_) {
      const char* v = std::getenv(n.c_str());
      saved_.push_back(v == nullptr ? std::optional<std::string>() : std::string(v));
    }
    char buf[4096];
    cwd_ = ::getcwd(buf, sizeof(buf)) != nullptr ? buf : "";
  }
  ~EnvRestorer() {
    for (size_t i = 0; i < names_.size(); ++i) {
      if (saved_[i]) {
        ::setenv(names_[i].c_str(), saved_[i]->c_str(), 1);
      } else {
        ::unsetenv(names_[i].c_str());
      }
    }
    if (!cwd_.empty() && ::chdir(cwd_.c_str()) != 0) ADD_FAILURE() << "cannot return to " << cwd_;
  }

 private:
  std::vector<std::string> names_;
  std::vector<std::optional<std::string>> saved_;
  std::string cwd_;
};

TEST(FindMnistDirectoryTest, PrefersRunfilesDirAndReportsFailure) {
  EnvRestorer restore({"RUNFILES_DIR", "TEST_SRCDIR", "RUNFILES_MANIFEST_FILE"});
  const std::string root = TempPath("fake_runfiles");
  ::mkdir(root.c_str(), 0755);
  ::mkdir((root + "/ws").c_str(), 0755);
  ::mkdir((root + "/ws/external").c_str(), 0755);
  ::mkdir((root + "/ws/external/mnist").c_str(), 0755);
  WriteBytes(root + "/ws/external/mnist/t10k-labels-idx1-ubyte", LabelsFile({1}));
  ::setenv("RUNFILES_DIR", root.c_str(), 1);
  absl::StatusOr<std::string> found = FindMnistDirectory();
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, root + "/ws/external/mnist");

  // Nothing anywhere: NotFound naming the places tried and the fix.
  const std::string empty = TempPath("empty_runfiles");
  ::mkdir(empty.c_str(), 0755);
  ::setenv("RUNFILES_DIR", empty.c_str(), 1);
  ::unsetenv("TEST_SRCDIR");
  ::unsetenv("RUNFILES_MANIFEST_FILE");
  ASSERT_EQ(::chdir(empty.c_str()), 0);
  absl::Status missing = internal::FindMnistDirectoryForExecutable("/nonexistent/binary", "").status();
  EXPECT_TRUE(StatusIs(missing, absl::StatusCode::kNotFound,
                       {empty + "/mnist", "/nonexistent/binary.runfiles/mnist", "@mnist//:train_images"}));

  // No environment and no argv0: the executable's own <path>.runfiles folder, as for a binary
  // run directly from bazel-bin (a fake executable here, then this test binary itself).
  ::unsetenv("RUNFILES_DIR");
  ::mkdir((root + "/bin").c_str(), 0755);
  ::mkdir((root + "/bin/tool.runfiles").c_str(), 0755);
  ::mkdir((root + "/bin/tool.runfiles/mnist").c_str(), 0755);
  WriteBytes(root + "/bin/tool.runfiles/mnist/train-labels-idx1-ubyte", LabelsFile({2}));
  found = internal::FindMnistDirectoryForExecutable("", root + "/bin/tool");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, root + "/bin/tool.runfiles/mnist");
  missing = internal::FindMnistDirectoryForExecutable("", root + "/bin/other").status();
  EXPECT_TRUE(StatusIs(missing, absl::StatusCode::kNotFound, {root + "/bin/other.runfiles/mnist"}));
  found = FindMnistDirectory();  // this test's data include @mnist
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_TRUE(internal::IsRegularFile(MnistLabelsPath(*found, Split::kTest))) << *found;

  // A manifest (runfiles without a symlink tree).
  const std::string manifest = TempPath("MANIFEST");
  WriteBytes(manifest, "otgen/data/x " + root + "/x\nmnist/train-images-idx3-ubyte " + root +
                           "/ws/external/mnist/train-images-idx3-ubyte\n");
  ::setenv("RUNFILES_MANIFEST_FILE", manifest.c_str(), 1);
  found = internal::FindMnistDirectoryForExecutable("", "");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, root + "/ws/external/mnist");
}

// The real data, from @mnist in the test's runfiles.
class MnistRealTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::string> dir = FindMnistDirectory();
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = new std::string(*dir);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string* dir_;
};
std::string* MnistRealTest::dir_ = nullptr;

double Mean(const nn::Tensor& t) {
  double s = 0;
  for (float v : t.span()) s += v;
  return s / t.numel();
}

TEST_F(MnistRealTest, TrainSetStatistics) {
  ASSERT_NE(dir_, nullptr);
  absl::StatusOr<InMemoryDataset> train = LoadMnist(*dir_, Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ(train->size(), 60000);
  EXPECT_EQ(train->example_shape(), (nn::Shape{1, 28, 28}));
  EXPECT_EQ(train->label(0), 5);
  EXPECT_EQ(train->label(1), 0);
  EXPECT_EQ(train->ClassCounts(), (std::vector<int64_t>{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949}));
  double sum = 0, sum_sq = 0;
  float lo = 1, hi = 0;
  for (float v : train->examples().span()) {
    sum += v;
    sum_sq += static_cast<double>(v) * v;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  const double n = static_cast<double>(train->examples().numel());
  const double mean = sum / n;
  const double stddev = std::sqrt(sum_sq / n - mean * mean);
  EXPECT_NEAR(mean, 0.1307, 5e-5);  // the usual Normalize((0.1307,), (0.3081,))
  EXPECT_NEAR(stddev, 0.3081, 5e-5);
  EXPECT_EQ(lo, 0.0f);
  EXPECT_EQ(hi, 1.0f);

  // Independent check of the byte order: the raw bytes of image 1 straight from the file.
  std::ifstream raw(MnistImagesPath(*dir_, Split::kTrain), std::ios::binary | std::ios::ate);
  ASSERT_EQ(static_cast<uint64_t>(raw.tellg()), 16u + 60000u * 784u);
  std::vector<char> bytes(16 + 2 * 784);
  raw.seekg(0);
  raw.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(raw.good());
  for (int k = 0; k < 784; ++k) {
    ASSERT_EQ(train->examples().data()[784 + k], static_cast<uint8_t>(bytes[16 + 784 + k]) / 255.0f) << k;
  }
}

TEST_F(MnistRealTest, TestSetStatistics) {
  ASSERT_NE(dir_, nullptr);
  absl::StatusOr<InMemoryDataset> test = LoadMnist(*dir_, Split::kTest, {.scaling = PixelScaling::kSymmetric});
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ(test->size(), 10000);
  EXPECT_EQ(test->label(0), 7);
  EXPECT_EQ(test->ClassCounts(), (std::vector<int64_t>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}));
  // Symmetric scaling: mean 2 * 0.1325 - 1 (the test set is slightly brighter than train).
  EXPECT_NEAR(Mean(test->examples()), 2.0 * 0.13251 - 1.0, 2e-4);
}

TEST_F(MnistRealTest, Mnist16KeepsTheMeanAndMatchesTheFullImages) {
  ASSERT_NE(dir_, nullptr);
  absl::StatusOr<InMemoryDataset> full = LoadMnist(*dir_, Split::kTest);
  absl::StatusOr<InMemoryDataset> small = LoadMnist(*dir_, Split::kTest, {.image_size = 16, .flatten = true});
  ASSERT_TRUE(full.ok() && small.ok());
  EXPECT_EQ(small->example_shape(), (nn::Shape{256}));
  EXPECT_EQ(small->size(), 10000);
  // The 16x16 cells partition the 28x28 image into equal areas: the mean is unchanged.
  EXPECT_NEAR(Mean(small->examples()), Mean(full->examples()), 1e-5);
  // Each image's mean too (image 0).
  double m28 = 0, m16 = 0;
  for (int k = 0; k < 784; ++k) m28 += full->examples().data()[k];
  for (int k = 0; k < 256; ++k) m16 += small->examples().data()[k];
  EXPECT_NEAR(m16 / 256, m28 / 784, 1e-6);
  // Values stay in [0, 1].
  for (float v : small->examples().span()) ASSERT_TRUE(v >= 0.0f && v <= 1.0f + 1e-6f) << v;
}

}  // namespace
}  // namespace otgen::data
