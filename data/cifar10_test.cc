#include "data/cifar10.h"

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <vector>

#include "data/test_util.h"
#include "gtest/gtest.h"

namespace otgen::data {
namespace {

using testutil::StatusIs;
using testutil::TempPath;
using testutil::WriteBytes;

// Record r of file f: label (f + r) mod 10; channel c, pixel k = (7 f + 3 r + 11 c + k) mod 256.
uint8_t PixelValue(int f, int r, int c, int k) { return static_cast<uint8_t>((7 * f + 3 * r + 11 * c + k) % 256); }

std::string Records(int f, int count) {
  std::string s;
  for (int r = 0; r < count; ++r) {
    s.push_back(static_cast<char>((f + r) % 10));
    for (int c = 0; c < 3; ++c) {
      for (int k = 0; k < 1024; ++k) s.push_back(static_cast<char>(PixelValue(f, r, c, k)));
    }
  }
  return s;
}

TEST(Cifar10Test, FileNames) {
  EXPECT_EQ(Cifar10FileNames(Split::kTest), (std::vector<std::string>{"test_batch.bin"}));
  const std::vector<std::string> train = Cifar10FileNames(Split::kTrain);
  ASSERT_EQ(train.size(), 5u);
  EXPECT_EQ(train[0], "data_batch_1.bin");
  EXPECT_EQ(train[4], "data_batch_5.bin");
  EXPECT_EQ(kCifar10RecordBytes, 3073);
  EXPECT_EQ(kCifar10ClassNames[3], "cat");
}

TEST(Cifar10Test, LoadsPlanesAsChw) {
  const std::string path = TempPath("cifar_one.bin");
  WriteBytes(path, Records(0, 4));
  absl::StatusOr<InMemoryDataset> d = LoadCifar10Files({path});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->size(), 4);
  EXPECT_EQ(d->example_shape(), (nn::Shape{3, 32, 32}));
  EXPECT_EQ(d->num_classes(), 10);
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(d->label(r), r);
    for (int c = 0; c < 3; ++c) {
      for (int y : {0, 5, 31}) {
        for (int x : {0, 17, 31}) {
          ASSERT_EQ(d->examples().at({r, c, y, x}), PixelValue(0, r, c, 32 * y + x) / 255.0f)
              << r << " " << c << " " << y << " " << x;
        }
      }
    }
  }
  absl::StatusOr<InMemoryDataset> sym =
      LoadCifar10Files({path}, {.scaling = PixelScaling::kSymmetric, .flatten = true});
  ASSERT_TRUE(sym.ok());
  EXPECT_EQ(sym->example_shape(), (nn::Shape{3072}));
  // Green plane, pixel (1, 2) of record 2.
  EXPECT_NEAR(sym->examples().at({2, 1024 + 32 + 2}), 2.0 * PixelValue(0, 2, 1, 34) / 255.0 - 1.0, 1e-6);
}

TEST(Cifar10Test, LoadsSplitsFromDirectoryInOrder) {
  const std::string dir = TempPath("cifar-10-batches-bin");
  ::mkdir(dir.c_str(), 0755);
  for (int f = 1; f <= 5; ++f) WriteBytes(dir + "/data_batch_" + std::to_string(f) + ".bin", Records(f, f));
  WriteBytes(dir + "/test_batch.bin", Records(9, 2));
  absl::StatusOr<InMemoryDataset> train = LoadCifar10(dir, Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ(train->size(), 1 + 2 + 3 + 4 + 5);
  // Example 3 is file 3's first record (files 1 and 2 hold 1 + 2 records).
  EXPECT_EQ(train->label(3), 3);
  EXPECT_EQ(train->examples().at({3, 2, 0, 5}), PixelValue(3, 0, 2, 5) / 255.0f);
  EXPECT_EQ(train->examples().at({14, 0, 1, 0}), PixelValue(5, 4, 0, 32) / 255.0f);
  absl::StatusOr<InMemoryDataset> test = LoadCifar10(dir, Split::kTest);
  ASSERT_TRUE(test.ok());
  EXPECT_EQ(test->size(), 2);
  EXPECT_EQ(test->label(1), 0);
}

TEST(Cifar10Test, MissingFilesAndDirectories) {
  const std::string dir = TempPath("cifar_partial");
  ::mkdir(dir.c_str(), 0755);
  WriteBytes(dir + "/data_batch_1.bin", Records(1, 1));
  EXPECT_TRUE(
      StatusIs(LoadCifar10(dir, Split::kTrain).status(), absl::StatusCode::kNotFound, {dir + "/data_batch_2.bin"}));
  const std::string nowhere = TempPath("no_cifar_dir");
  EXPECT_TRUE(StatusIs(LoadCifar10(nowhere, Split::kTest).status(), absl::StatusCode::kNotFound, {nowhere}));
  EXPECT_TRUE(StatusIs(LoadCifar10Files({}).status(), absl::StatusCode::kInvalidArgument, {"at least one file"}));
}

TEST(Cifar10Test, SizeNotAMultipleOfTheRecord) {
  const std::string path = TempPath("cifar_cut.bin");
  const std::string records = Records(0, 2);
  WriteBytes(path, records.substr(0, records.size() - 100));
  EXPECT_TRUE(StatusIs(LoadCifar10Files({path}).status(), absl::StatusCode::kDataLoss,
                       {path, "6046 bytes", "multiple of", "3073", "1 whole records", "2973 leftover"}));
  const std::string empty = TempPath("cifar_empty.bin");
  WriteBytes(empty, "");
  EXPECT_TRUE(StatusIs(LoadCifar10Files({empty}).status(), absl::StatusCode::kDataLoss, {empty, "0 bytes"}));
}

TEST(Cifar10Test, LabelOutOfRange) {
  std::string records = Records(0, 3);
  records[2 * kCifar10RecordBytes] = 10;
  const std::string path = TempPath("cifar_label.bin");
  WriteBytes(path, records);
  EXPECT_TRUE(StatusIs(LoadCifar10Files({path}).status(), absl::StatusCode::kDataLoss,
                       {path, "label byte 10 of record 2", "0-9"}));
}

}  // namespace
}  // namespace otgen::data
