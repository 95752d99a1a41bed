#include "data/file_util.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "data/test_util.h"
#include "gtest/gtest.h"
#include "nn/random.h"

namespace otgen::data::internal {
namespace {

using testutil::StatusIs;

TEST(ReadFileTest, ReadsWholeFile) {
  std::string bytes;
  for (int i = 0; i < 100000; ++i) bytes.push_back(static_cast<char>(i * 7));
  const std::string path = testutil::TempPath("read_file_test.bin");
  testutil::WriteBytes(path, bytes);
  absl::StatusOr<FileBytes> read = ReadFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), bytes.size());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(read->data()), read->size()), bytes);
  EXPECT_EQ(*FileSize(path), bytes.size());
  EXPECT_TRUE(IsRegularFile(path));
  EXPECT_FALSE(IsDirectory(path));
}

TEST(ReadFileTest, EmptyFile) {
  const std::string path = testutil::TempPath("empty.bin");
  testutil::WriteBytes(path, "");
  absl::StatusOr<FileBytes> read = ReadFile(path);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->size(), 0u);
}

TEST(ReadFileTest, MissingFileIsNotFound) {
  const std::string path = testutil::TempPath("no_such_file.bin");
  EXPECT_TRUE(StatusIs(ReadFile(path).status(), absl::StatusCode::kNotFound, {path, "not found"}));
  EXPECT_TRUE(StatusIs(FileSize(path).status(), absl::StatusCode::kNotFound, {path}));
  EXPECT_TRUE(StatusIs(ReadFile(path + "/below").status(), absl::StatusCode::kNotFound, {"below"}));
}

TEST(ReadFileTest, DirectoryIsInvalidArgument) {
  const std::string dir = testutil::TempPath("");
  EXPECT_TRUE(IsDirectory(dir));
  EXPECT_TRUE(StatusIs(ReadFile(dir).status(), absl::StatusCode::kInvalidArgument, {"directory"}));
  EXPECT_TRUE(StatusIs(FileSize(dir).status(), absl::StatusCode::kInvalidArgument, {"directory"}));
}

TEST(JoinPathTest, Separators) {
  EXPECT_EQ(JoinPath("a", "b"), "a/b");
  EXPECT_EQ(JoinPath("a/", "b"), "a/b");
  EXPECT_EQ(JoinPath("", "b"), "b");
}

TEST(BytesToPixelsTest, UnitAndSymmetric) {
  std::vector<uint8_t> in(256);
  for (int v = 0; v < 256; ++v) in[v] = static_cast<uint8_t>(v);
  std::vector<float> unit(256), sym(256);
  BytesToPixels(in.data(), 256, PixelScaling::kUnit, unit.data());
  BytesToPixels(in.data(), 256, PixelScaling::kSymmetric, sym.data());
  for (int v = 0; v < 256; ++v) {
    EXPECT_EQ(unit[v], static_cast<float>(v) / 255.0f);
    EXPECT_NEAR(sym[v], 2.0 * v / 255.0 - 1.0, 1e-7);
  }
  EXPECT_EQ(unit[0], 0.0f);
  EXPECT_EQ(unit[255], 1.0f);
  EXPECT_EQ(sym[0], -1.0f);
  EXPECT_EQ(sym[255], 1.0f);
  std::vector<float> scaled = unit;
  ApplyScaling(PixelScaling::kSymmetric, scaled.data(), 256);
  for (int v = 0; v < 256; ++v) EXPECT_EQ(scaled[v], sym[v]);
  ApplyScaling(PixelScaling::kUnit, scaled.data(), 256);  // no-op
  EXPECT_EQ(scaled[3], sym[3]);
}

// Oracle: refine both grids to their common multiple. On an (in*out) x (in*out) grid of
// sub-pixels, each input pixel is a block of out x out sub-pixels and each output pixel a
// block of in x in; the output is the plain mean of its block.
std::vector<double> SupersampledArea(const std::vector<float>& in, int in_rows, int in_cols, int out_rows,
                                     int out_cols) {
  const int fine_rows = in_rows * out_rows, fine_cols = in_cols * out_cols;
  std::vector<double> out(out_rows * out_cols, 0.0);
  for (int fr = 0; fr < fine_rows; ++fr) {
    for (int fc = 0; fc < fine_cols; ++fc) {
      const double v = in[(fr / out_rows) * in_cols + fc / out_cols];
      out[(fr / in_rows) * out_cols + fc / in_cols] += v;
    }
  }
  for (double& v : out) v /= static_cast<double>(in_rows) * in_cols;
  return out;
}

void ExpectMatchesOracle(int in_rows, int in_cols, int out_rows, int out_cols, uint64_t seed) {
  nn::Rng rng(seed);
  std::vector<float> in(in_rows * in_cols);
  for (float& v : in) v = rng.Uniform();
  AreaResampler r(in_rows, in_cols, out_rows, out_cols);
  std::vector<float> out(out_rows * out_cols), scratch(r.scratch_size());
  r.Resample(in.data(), out.data(), scratch.data());
  const std::vector<double> expected = SupersampledArea(in, in_rows, in_cols, out_rows, out_cols);
  for (int i = 0; i < out_rows * out_cols; ++i) {
    ASSERT_NEAR(out[i], expected[i], 2e-6)
        << in_rows << "x" << in_cols << " -> " << out_rows << "x" << out_cols << " pixel " << i;
  }
}

TEST(AreaResamplerTest, MatchesSupersampledAreaAverage) {
  ExpectMatchesOracle(28, 28, 16, 16, 1);  // mnist16: ratio 1.75
  ExpectMatchesOracle(28, 28, 14, 14, 2);  // integer ratio 2
  ExpectMatchesOracle(28, 28, 28, 28, 3);  // identity
  ExpectMatchesOracle(7, 5, 3, 4, 4);      // mixed, non-square
  ExpectMatchesOracle(4, 4, 9, 6, 5);      // upsampling
  ExpectMatchesOracle(28, 28, 1, 1, 6);    // global mean
}

TEST(AreaResamplerTest, HandComputedWeights) {
  // 28 -> 16 along one axis: output 0 covers [0, 1.75): input 0 fully, input 1 by 0.75.
  // Output 1 covers [1.75, 3.5): input 1 by 0.25, input 2 fully, input 3 by 0.5.
  AreaResampler r(1, 28, 1, 16);
  std::vector<float> in(28, 0.0f), out(16), scratch(r.scratch_size());
  in[0] = 1.0f;
  in[1] = 2.0f;
  in[2] = 4.0f;
  in[3] = 8.0f;
  r.Resample(in.data(), out.data(), scratch.data());
  EXPECT_NEAR(out[0], (1.0 * 1.0 + 0.75 * 2.0) / 1.75, 1e-6);
  EXPECT_NEAR(out[1], (0.25 * 2.0 + 1.0 * 4.0 + 0.5 * 8.0) / 1.75, 1e-6);
}

TEST(AreaResamplerTest, PreservesConstantsAndMass) {
  AreaResampler r(28, 28, 16, 16);
  std::vector<float> in(28 * 28, 0.625f), out(16 * 16), scratch(r.scratch_size());
  r.Resample(in.data(), out.data(), scratch.data());
  for (float v : out) EXPECT_NEAR(v, 0.625f, 1e-6);
  // Mass: sum(out) * (28/16)^2 == sum(in) for any image.
  nn::Rng rng(9);
  for (float& v : in) v = rng.Uniform();
  r.Resample(in.data(), out.data(), scratch.data());
  double in_sum = 0, out_sum = 0;
  for (float v : in) in_sum += v;
  for (float v : out) out_sum += v;
  EXPECT_NEAR(out_sum * 1.75 * 1.75, in_sum, 1e-3);
}

}  // namespace
}  // namespace otgen::data::internal
