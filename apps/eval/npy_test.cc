#include "apps/eval/npy.h"

#include <dirent.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "apps/eval/test_util.h"
#include "gtest/gtest.h"

namespace otgen::eval {
namespace {

using testutil::ReadBytes;
using testutil::StatusIs;
using testutil::TempPath;
using testutil::WriteBytes;

// A raw .npy file: magic, version, header length, `dict` padded to 64 bytes with a newline,
// then `data`.
std::string MakeNpy(const std::string& dict, const std::string& data, int major = 1, bool pad = true) {
  const size_t length_bytes = major == 1 ? 2 : 4;
  std::string header = dict;
  if (pad) {
    const size_t total = 8 + length_bytes + header.size() + 1;
    header.append(((total + 63) / 64) * 64 - total, ' ');
    header.push_back('\n');
  }
  std::string out("\x93NUMPY", 6);
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  for (size_t k = 0; k < length_bytes; ++k) out.push_back(static_cast<char>((header.size() >> (8 * k)) & 0xff));
  return out + header + data;
}

template <typename T>
std::string Raw(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

std::string Dict(const std::string& descr, const std::string& shape, const std::string& fortran = "False") {
  return absl::StrCat("{'descr': '", descr, "', 'fortran_order': ", fortran, ", 'shape': ", shape, ", }");
}

// Writes `bytes` to a fresh scratch file and returns its path.
std::string WriteTemp(const std::string& name, const std::string& bytes) {
  const std::string path = TempPath(name);
  WriteBytes(path, bytes);
  return path;
}

TEST(NpyTest, EncodeMatchesNumpyLayout) {
  const std::vector<float> v = {1, 2, 3, 4, 5, 6};
  absl::StatusOr<std::string> bytes = EncodeNpy({2, 3}, v);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  // numpy.save writes exactly this header (version 1.0, data aligned to 64 bytes: the 10-byte
  // preamble plus the 59-character dict and its newline pad to 128).
  std::string expected_header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  ASSERT_EQ(expected_header.size(), 59u);
  expected_header.append(128 - 10 - 59 - 1, ' ');
  expected_header.push_back('\n');
  ASSERT_EQ(bytes->size(), 128u + 24u);
  EXPECT_EQ(bytes->substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_EQ(static_cast<uint8_t>((*bytes)[8]) + 256 * static_cast<uint8_t>((*bytes)[9]), 118);
  EXPECT_EQ(bytes->substr(10, 118), expected_header);
  EXPECT_EQ(bytes->substr(128), Raw(v));
}

TEST(NpyTest, EncodeShapesOfEveryRank) {
  absl::StatusOr<std::string> one = EncodeNpy({3}, std::vector<float>{1, 2, 3});
  ASSERT_TRUE(one.ok());
  EXPECT_NE(one->find("'shape': (3,), }"), std::string::npos);
  absl::StatusOr<std::string> scalar = EncodeNpy({}, std::vector<float>{7});
  ASSERT_TRUE(scalar.ok());
  EXPECT_NE(scalar->find("'shape': (), }"), std::string::npos);
  EXPECT_TRUE(StatusIs(EncodeNpy({2, 2}, std::vector<float>{1, 2, 3}).status(),
                       absl::StatusCode::kInvalidArgument, {"expected 4 values", "got 3"}));
  EXPECT_TRUE(StatusIs(EncodeNpy({-1}, std::vector<float>{}).status(), absl::StatusCode::kInvalidArgument,
                       {"non-negative"}));
}

TEST(NpyTest, MatrixRoundTrip) {
  ot::RowMatrixXf m(3, 4);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j) m(i, j) = 0.1f * i - 3.5f * j + 1e-7f;
  m(2, 3) = std::nanf("");
  m(1, 1) = -std::numeric_limits<float>::infinity();
  const std::string path = TempPath("matrix.npy");
  ASSERT_TRUE(WriteNpyMatrix(path, m).ok());
  absl::StatusOr<ot::RowMatrixXf> back = ReadNpyMatrix(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->rows(), 3);
  ASSERT_EQ(back->cols(), 4);
  // Bit-exact, NaN included.
  EXPECT_EQ(std::memcmp(back->data(), m.data(), sizeof(float) * 12), 0);
}

TEST(NpyTest, StridedBlockRoundTrip) {
  ot::RowMatrixXf m(4, 5);
  for (int k = 0; k < 20; ++k) m.data()[k] = static_cast<float>(k);
  const std::string path = TempPath("block.npy");
  ASSERT_TRUE(WriteNpyMatrix(path, m.block(1, 1, 2, 3)).ok());
  absl::StatusOr<ot::RowMatrixXf> back = ReadNpyMatrix(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->rows(), 2);
  ASSERT_EQ(back->cols(), 3);
  EXPECT_EQ((*back)(0, 0), 6.0f);
  EXPECT_EQ((*back)(1, 2), 13.0f);
}

TEST(NpyTest, TensorRoundTripKeepsShape) {
  nn::Tensor t = nn::Tensor::FromVector({2, 1, 2, 3}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  const std::string path = TempPath("tensor.npy");
  ASSERT_TRUE(WriteNpyTensor(path, t).ok());
  absl::StatusOr<nn::Tensor> back = ReadNpyTensor(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->shape(), (nn::Shape{2, 1, 2, 3}));
  for (int k = 0; k < 12; ++k) EXPECT_EQ(back->data()[k], static_cast<float>(k));

  // 0-d and empty arrays.
  const std::string scalar_path = TempPath("scalar.npy");
  ASSERT_TRUE(WriteNpy(scalar_path, {}, std::vector<float>{2.5f}).ok());
  absl::StatusOr<NpyFloatArray> scalar = ReadNpy(scalar_path);
  ASSERT_TRUE(scalar.ok()) << scalar.status();
  EXPECT_TRUE(scalar->shape.empty());
  ASSERT_EQ(scalar->values.size(), 1u);
  EXPECT_EQ(scalar->values[0], 2.5f);
  const std::string empty_path = TempPath("empty.npy");
  ASSERT_TRUE(WriteNpyMatrix(empty_path, ot::RowMatrixXf(0, 3)).ok());
  absl::StatusOr<ot::RowMatrixXf> empty = ReadNpyMatrix(empty_path);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->rows(), 0);
  EXPECT_EQ(empty->cols(), 3);
}

TEST(NpyTest, WriteIsAtomicAndLeavesNoTemporaryFiles) {
  const std::string dir = TempPath("atomic_dir");
  ASSERT_EQ(system(absl::StrCat("mkdir -p ", dir).c_str()), 0);
  const std::string path = dir + "/x.npy";
  ASSERT_TRUE(WriteNpy(path, {2}, std::vector<float>{1, 2}).ok());
  ASSERT_TRUE(WriteNpy(path, {3}, std::vector<float>{4, 5, 6}).ok());  // replaces
  absl::StatusOr<NpyFloatArray> back = ReadNpy(path);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->values, (std::vector<float>{4, 5, 6}));
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  ASSERT_NE(d, nullptr);
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(d);
  EXPECT_EQ(names, std::vector<std::string>{"x.npy"});
}

TEST(NpyTest, WriteIntoMissingDirectoryNamesPath) {
  const std::string path = TempPath("no_such_dir/x.npy");
  EXPECT_TRUE(StatusIs(WriteNpy(path, {1}, std::vector<float>{1}), absl::StatusCode::kNotFound, {path}));
}

TEST(NpyTest, ReadsFloat64WithRounding) {
  const std::vector<double> v = {0.1, -2.0, 1e-300, 3.0e38};
  const std::string path = WriteTemp("f8.npy", MakeNpy(Dict("<f8", "(2, 2)"), Raw(v)));
  absl::StatusOr<NpyFloatArray> a = ReadNpy(path);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->stored_dtype, NpyDtype::kFloat64);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(a->values, (std::vector<float>{0.1f, -2.0f, 0.0f, 3.0e38f}));
}

TEST(NpyTest, Float64OverflowIsAnError) {
  const std::string path = WriteTemp("f8_big.npy", MakeNpy(Dict("<f8", "(2,)"), Raw(std::vector<double>{1, 1e39})));
  EXPECT_TRUE(StatusIs(ReadNpy(path).status(), absl::StatusCode::kInvalidArgument,
                       {path, "overflows float32", "(1)"}));
}

TEST(NpyTest, ReadsIntegerDtypes) {
  const std::string i4 = WriteTemp("i4.npy", MakeNpy(Dict("<i4", "(3,)"), Raw(std::vector<int32_t>{-7, 0, 16777216})));
  const std::string i8 = WriteTemp("i8.npy", MakeNpy(Dict("<i8", "(2,)"), Raw(std::vector<int64_t>{9, -1LL << 40})));
  const std::string u1 = WriteTemp("u1.npy", MakeNpy(Dict("|u1", "(2, 2)"), std::string("\x00\x01\x7f\xff", 4)));

  absl::StatusOr<NpyInt64Array> a = ReadNpyInt64(i4);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->values, (std::vector<int64_t>{-7, 0, 16777216}));
  absl::StatusOr<NpyInt64Array> b = ReadNpyInt64(i8);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->values, (std::vector<int64_t>{9, -1LL << 40}));
  absl::StatusOr<NpyInt64Array> c = ReadNpyInt64(u1);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->values, (std::vector<int64_t>{0, 1, 127, 255}));
  EXPECT_EQ(c->shape, (std::vector<int64_t>{2, 2}));

  // As floats: exact conversions (2^40 is a power of two, exactly representable).
  absl::StatusOr<NpyFloatArray> fa = ReadNpy(i4);
  ASSERT_TRUE(fa.ok()) << fa.status();
  EXPECT_EQ(fa->values, (std::vector<float>{-7, 0, 16777216}));
  absl::StatusOr<NpyFloatArray> fb = ReadNpy(i8);
  ASSERT_TRUE(fb.ok()) << fb.status();
  EXPECT_EQ(fb->values[1], -1099511627776.0f);
  absl::StatusOr<NpyFloatArray> fc = ReadNpy(u1);
  ASSERT_TRUE(fc.ok()) << fc.status();
  EXPECT_EQ(fc->values, (std::vector<float>{0, 1, 127, 255}));
}

TEST(NpyTest, ConvertsInChunksAcrossLargeArrays) {
  // More elements than one conversion chunk (65536).
  const int n = 70001;
  std::vector<double> f8(n);
  std::vector<uint8_t> u1(n);
  for (int i = 0; i < n; ++i) {
    f8[i] = 0.5 * i;
    u1[i] = static_cast<uint8_t>(i * 7);
  }
  const std::string shape = absl::StrCat("(", n, ",)");
  const std::string f8_path = WriteTemp("big_f8.npy", MakeNpy(Dict("<f8", shape), Raw(f8)));
  absl::StatusOr<NpyFloatArray> a = ReadNpy(f8_path);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->values.size(), static_cast<size_t>(n));
  for (int i : {0, 1, 65535, 65536, 65537, n - 1}) EXPECT_EQ(a->values[i], static_cast<float>(0.5 * i)) << i;
  const std::string u1_path = WriteTemp("big_u1.npy", MakeNpy(Dict("|u1", shape), Raw(u1)));
  absl::StatusOr<NpyInt64Array> b = ReadNpyInt64(u1_path);
  ASSERT_TRUE(b.ok()) << b.status();
  for (int i : {0, 65535, 65536, n - 1}) EXPECT_EQ(b->values[i], static_cast<uint8_t>(i * 7)) << i;
  // An error in the second chunk names its full index.
  f8[n - 2] = 1e300;
  const std::string bad_path = WriteTemp("big_bad.npy", MakeNpy(Dict("<f8", absl::StrCat("(1, ", n, ")")), Raw(f8)));
  EXPECT_TRUE(StatusIs(ReadNpy(bad_path).status(), absl::StatusCode::kInvalidArgument,
                       {bad_path, absl::StrCat("index (0, ", n - 2, ")"), "overflows float32"}));
}

TEST(NpyTest, InexactIntegerToFloatIsAnError) {
  const std::string path =
      WriteTemp("i4_inexact.npy", MakeNpy(Dict("<i4", "(2,)"), Raw(std::vector<int32_t>{1, 16777217})));
  EXPECT_TRUE(StatusIs(ReadNpy(path).status(), absl::StatusCode::kInvalidArgument,
                       {path, "16777217", "not exactly representable"}));
}

TEST(NpyTest, Int64ReaderRejectsFloats) {
  const std::string path = WriteTemp("f4_for_int.npy", MakeNpy(Dict("<f4", "(1,)"), Raw(std::vector<float>{1})));
  EXPECT_TRUE(StatusIs(ReadNpyInt64(path).status(), absl::StatusCode::kInvalidArgument,
                       {path, "<f4", "expected an integer dtype"}));
}

TEST(NpyTest, ReadsVersion2AndVersion3Headers) {
  const std::vector<float> v = {1.5f, -2.5f};
  for (int major : {2, 3}) {
    const std::string path = WriteTemp(absl::StrCat("v", major, ".npy"), MakeNpy(Dict("<f4", "(1, 2)"), Raw(v), major));
    absl::StatusOr<NpyFloatArray> a = ReadNpy(path);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(a->values, v);
    EXPECT_EQ(a->shape, (std::vector<int64_t>{1, 2}));
  }
}

TEST(NpyTest, AcceptsHeaderVariants) {
  // Other key order, double quotes, no trailing comma, Python 2 long suffix, no padding.
  const std::string dict = "{\"shape\": (2L, 1L), \"fortran_order\": False, \"descr\": \"<f4\"}";
  const std::string path = WriteTemp("variant.npy", MakeNpy(dict, Raw(std::vector<float>{3, 4}), 1, false));
  absl::StatusOr<ot::RowMatrixXf> m = ReadNpyMatrix(path);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->rows(), 2);
  EXPECT_EQ((*m)(1, 0), 4.0f);
}

TEST(NpyTest, BadMagic) {
  std::string bytes = MakeNpy(Dict("<f4", "(1,)"), Raw(std::vector<float>{1}));
  bytes[1] = 'X';
  const std::string path = WriteTemp("bad_magic.npy", bytes);
  EXPECT_TRUE(StatusIs(ReadNpy(path).status(), absl::StatusCode::kInvalidArgument, {path, "bad magic", "NUMPY"}));
  const std::string tiny = WriteTemp("tiny.npy", "ab");
  EXPECT_TRUE(StatusIs(ReadNpy(tiny).status(), absl::StatusCode::kInvalidArgument, {tiny, "bad magic"}));
}

TEST(NpyTest, UnsupportedVersion) {
  std::string bytes = MakeNpy(Dict("<f4", "(1,)"), Raw(std::vector<float>{1}));
  bytes[6] = 4;
  const std::string path = WriteTemp("bad_version.npy", bytes);
  EXPECT_TRUE(StatusIs(ReadNpy(path).status(), absl::StatusCode::kInvalidArgument,
                       {path, "version 4.0", "expected 1.0, 2.0 or 3.0"}));
}

TEST(NpyTest, UnsupportedDtype) {
  for (const std::string descr : {">f4", "<c8", "<f2", "<U3", "|b1"}) {
    const std::string path = WriteTemp("bad_dtype.npy", MakeNpy(Dict(descr, "(1,)"), std::string(8, '\0')));
    EXPECT_TRUE(StatusIs(ReadNpy(path).status(), absl::StatusCode::kInvalidArgument,
                         {path, absl::StrCat("unsupported .npy dtype '", descr, "'"), "expected one of"}));
  }
}

TEST(NpyTest, FortranOrderIsRejected) {
  const std::string path =
      WriteTemp("fortran.npy", MakeNpy(Dict("<f4", "(2, 2)", "True"), Raw(std::vector<float>{1, 2, 3, 4})));
  EXPECT_TRUE(StatusIs(ReadNpy(path).status(), absl::StatusCode::kInvalidArgument,
                       {path, "Fortran order", "expected C order"}));
}

TEST(NpyTest, TruncatedAndOversizedData) {
  const std::string truncated =
      WriteTemp("truncated.npy", MakeNpy(Dict("<f4", "(2, 3)"), Raw(std::vector<float>{1, 2, 3, 4, 5})));
  EXPECT_TRUE(StatusIs(ReadNpy(truncated).status(), absl::StatusCode::kDataLoss,
                       {truncated, "truncated", "needs 24 bytes", "has 20"}));
  const std::string oversized =
      WriteTemp("oversized.npy", MakeNpy(Dict("<f8", "(1,)"), Raw(std::vector<double>{1, 2})));
  EXPECT_TRUE(StatusIs(ReadNpy(oversized).status(), absl::StatusCode::kDataLoss,
                       {oversized, "oversized", "needs 8 bytes", "has 16"}));
  // Header length pointing past the end of the file.
  std::string bytes = MakeNpy(Dict("<f4", "(1,)"), "");
  bytes[9] = 0x10;
  const std::string short_header = WriteTemp("short_header.npy", bytes);
  EXPECT_TRUE(StatusIs(ReadNpy(short_header).status(), absl::StatusCode::kDataLoss,
                       {short_header, "truncated .npy header"}));
  const std::string preamble = WriteTemp("preamble.npy", std::string("\x93NUMPY\x01\x00\x05", 9));
  EXPECT_TRUE(StatusIs(ReadNpy(preamble).status(), absl::StatusCode::kDataLoss, {preamble, "truncated .npy file"}));
}

TEST(NpyTest, MalformedHeaders) {
  struct Case {
    std::string dict;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"{'descr': '<f4', 'fortran_order': False}", "missing key 'shape'"},
      {"{'descr': '<f4', 'shape': (1,)}", "missing key 'fortran_order'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", "unknown key 'extra'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", "duplicate key 'descr'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1)}", "(5,)"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (a,)}", "non-negative integer dimension"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", "non-negative integer dimension"},
      {"{'descr': '<f4', 'fortran_order': false, 'shape': (1,)}", "True or False"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", "',' or '}'"},
      {"['descr', '<f4']", "'{' opening the header dict"},
      {"{'descr' '<f4', 'fortran_order': False, 'shape': (1,)}", "':' after key 'descr'"},
      {"{'descr: '<f4', 'fortran_order': False, 'shape': (1,)}", "':' after key 'descr: '"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x", "only spaces"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", "below 2^63"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}", "too many"},
  };
  for (const Case& c : cases) {
    const std::string path = WriteTemp("bad_header.npy", MakeNpy(c.dict, Raw(std::vector<float>{1})));
    EXPECT_TRUE(StatusIs(ReadNpy(path).status(), absl::StatusCode::kInvalidArgument, {path, c.expected}))
        << c.dict;
  }
}

TEST(NpyTest, MatrixReaderRejectsOtherRanks) {
  const std::string path =
      WriteTemp("rank3.npy", MakeNpy(Dict("<f4", "(1, 1, 2)"), Raw(std::vector<float>{1, 2})));
  EXPECT_TRUE(StatusIs(ReadNpyMatrix(path).status(), absl::StatusCode::kInvalidArgument,
                       {path, "shape (1, 1, 2)", "expected a 2-d array"}));
  absl::StatusOr<nn::Tensor> t = ReadNpyTensor(path);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->shape(), (nn::Shape{1, 1, 2}));
}

TEST(NpyTest, MissingFile) {
  const std::string path = TempPath("does_not_exist.npy");
  EXPECT_TRUE(StatusIs(ReadNpy(path).status(), absl::StatusCode::kNotFound, {path}));
}

TEST(NpyTest, WrittenFileReadsBackByteForByte) {
  const std::vector<float> v = {1.25f, 2.5f, -3.75f};
  const std::string path = TempPath("bytes.npy");
  ASSERT_TRUE(WriteNpy(path, {3}, v).ok());
  absl::StatusOr<std::string> expected = EncodeNpy({3}, v);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(ReadBytes(path), *expected);
}

}  // namespace
}  // namespace otgen::eval
