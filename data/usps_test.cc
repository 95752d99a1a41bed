#include "data/usps.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "data/test_util.h"
#include "gtest/gtest.h"
#include "hdf5.h"

namespace otgen::data {
namespace {

using testutil::StatusIs;
using testutil::TempPath;

// One dataset to write: its path, HDF5 memory/file type, dimensions and values (doubles,
// converted by HDF5 to `type` on write).
struct DatasetSpec {
  std::string name;
  hid_t type;
  std::vector<hsize_t> dims;
  std::vector<double> values;
};

// Writes an HDF5 file with the given datasets (intermediate groups created) and extra
// empty groups.
void WriteHdf5(const std::string& path, const std::vector<DatasetSpec>& datasets,
               const std::vector<std::string>& groups = {}) {
  hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(file, 0) << path;
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  for (const std::string& g : groups) {
    hid_t group = H5Gcreate2(file, g.c_str(), lcpl, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(group, 0) << g;
    H5Gclose(group);
  }
  for (const DatasetSpec& d : datasets) {
    hid_t space = H5Screate_simple(static_cast<int>(d.dims.size()), d.dims.data(), nullptr);
    hid_t set = H5Dcreate2(file, d.name.c_str(), d.type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(set, 0) << d.name;
    if (!d.values.empty()) {
      ASSERT_GE(H5Dwrite(set, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, d.values.data()), 0);
    }
    H5Dclose(set);
    H5Sclose(space);
  }
  H5Pclose(lcpl);
  H5Fclose(file);
}

// Image i, pixel k = ((i * 256 + k) mod 101) / 100: in [0, 1].
std::vector<double> Pixels(int n) {
  std::vector<double> v(n * 256);
  for (int i = 0; i < n * 256; ++i) v[i] = (i % 101) / 100.0;
  return v;
}

std::vector<DatasetSpec> GoodSpecs() {
  return {
      {"/train/data", H5T_IEEE_F32LE, {5, 256}, Pixels(5)},
      {"/train/target", H5T_STD_I32LE, {5}, {3, 1, 4, 1, 5}},
      {"/test/data", H5T_IEEE_F32LE, {3, 256}, Pixels(3)},
      {"/test/target", H5T_STD_I32LE, {3}, {9, 2, 6}},
  };
}

// Every HDF5 object (file, dataset, ...) still open anywhere in the library.
ssize_t OpenHdf5Objects() { return H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL); }

class UspsFormatTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_EQ(OpenHdf5Objects(), 0) << "HDF5 handles leaked"; }
};

TEST_F(UspsFormatTest, LoadsWrittenFile) {
  const std::string path = TempPath("usps_good.h5");
  WriteHdf5(path, GoodSpecs());
  absl::StatusOr<InMemoryDataset> train = LoadUsps(path, Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ(train->size(), 5);
  EXPECT_EQ(train->example_shape(), (nn::Shape{1, 16, 16}));
  EXPECT_EQ(train->num_classes(), 10);
  EXPECT_EQ(train->label(2), 4);
  const std::vector<double> px = Pixels(5);
  for (int i = 0; i < 5 * 256; ++i) ASSERT_EQ(train->examples().data()[i], static_cast<float>(px[i])) << i;
  EXPECT_EQ(train->examples().at({1, 0, 0, 3}), static_cast<float>(px[256 + 3]));

  absl::StatusOr<InMemoryDataset> test =
      LoadUsps(path, Split::kTest, {.scaling = PixelScaling::kSymmetric, .flatten = true});
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ(test->size(), 3);
  EXPECT_EQ(test->example_shape(), (nn::Shape{256}));
  EXPECT_EQ(test->label(0), 9);
  for (int i = 0; i < 3 * 256; ++i) ASSERT_NEAR(test->examples().data()[i], 2.0 * px[i] - 1.0, 1e-6) << i;
}

TEST_F(UspsFormatTest, AcceptsOtherFloatAndIntegerTypesAndImageShape) {
  const std::string path = TempPath("usps_types.h5");
  WriteHdf5(path,
            {{"/train/data", H5T_IEEE_F64BE, {2, 16, 16}, Pixels(2)}, {"/train/target", H5T_STD_U8LE, {2}, {0, 9}}});
  absl::StatusOr<InMemoryDataset> d = LoadUsps(path, Split::kTrain);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->size(), 2);
  EXPECT_EQ(d->label(1), 9);
  EXPECT_EQ(d->examples().data()[300], static_cast<float>(Pixels(2)[300]));
}

TEST_F(UspsFormatTest, MissingFile) {
  const std::string path = TempPath("usps_missing.h5");
  EXPECT_TRUE(StatusIs(LoadUsps(path, Split::kTrain).status(), absl::StatusCode::kNotFound, {path}));
}

TEST_F(UspsFormatTest, NotAnHdf5File) {
  const std::string path = TempPath("usps_text.h5");
  testutil::WriteBytes(path, "this is not HDF5\n");
  EXPECT_TRUE(
      StatusIs(LoadUsps(path, Split::kTrain).status(), absl::StatusCode::kInvalidArgument, {path, "not an HDF5 file"}));
}

TEST_F(UspsFormatTest, TruncatedFile) {
  const std::string good = TempPath("usps_for_cut.h5");
  WriteHdf5(good, GoodSpecs());
  std::ifstream in(good, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string path = TempPath("usps_cut.h5");
  testutil::WriteBytes(path, bytes.substr(0, bytes.size() / 2));
  const absl::Status s = LoadUsps(path, Split::kTrain).status();
  EXPECT_TRUE(StatusIs(s, absl::StatusCode::kDataLoss, {path}));
}

TEST_F(UspsFormatTest, MissingDataset) {
  const std::string path = TempPath("usps_no_test.h5");
  std::vector<DatasetSpec> specs = GoodSpecs();
  specs.resize(2);  // train only
  WriteHdf5(path, specs);
  EXPECT_TRUE(
      StatusIs(LoadUsps(path, Split::kTest).status(), absl::StatusCode::kNotFound, {path, "/test/data", "not found"}));
  const std::string no_target = TempPath("usps_no_target.h5");
  WriteHdf5(no_target, {specs[0]});
  EXPECT_TRUE(
      StatusIs(LoadUsps(no_target, Split::kTrain).status(), absl::StatusCode::kNotFound, {no_target, "/train/target"}));
}

TEST_F(UspsFormatTest, GroupInsteadOfDataset) {
  const std::string path = TempPath("usps_group.h5");
  std::vector<DatasetSpec> specs = GoodSpecs();
  specs.erase(specs.begin());               // no /train/data dataset...
  WriteHdf5(path, specs, {"/train/data"});  // ...but a group of that name
  EXPECT_TRUE(StatusIs(LoadUsps(path, Split::kTrain).status(), absl::StatusCode::kInvalidArgument,
                       {path + ":/train/data", "expected a dataset"}));
}

TEST_F(UspsFormatTest, WrongRankAndDims) {
  std::vector<DatasetSpec> specs = GoodSpecs();
  const std::string rank = TempPath("usps_rank.h5");
  specs[0].dims = {5 * 256};
  WriteHdf5(rank, specs);
  EXPECT_TRUE(StatusIs(LoadUsps(rank, Split::kTrain).status(), absl::StatusCode::kInvalidArgument,
                       {rank + ":/train/data", "[N, 256]", "got [1280]"}));
  const std::string dims = TempPath("usps_dims.h5");
  specs[0].dims = {10, 128};
  WriteHdf5(dims, specs);
  EXPECT_TRUE(StatusIs(LoadUsps(dims, Split::kTrain).status(), absl::StatusCode::kInvalidArgument,
                       {dims + ":/train/data", "got [10, 128]"}));
  const std::string target_rank = TempPath("usps_target_rank.h5");
  specs = GoodSpecs();
  specs[1].dims = {5, 1};
  WriteHdf5(target_rank, specs);
  EXPECT_TRUE(StatusIs(LoadUsps(target_rank, Split::kTrain).status(), absl::StatusCode::kInvalidArgument,
                       {target_rank + ":/train/target", "[N]", "got [5, 1]"}));
}

TEST_F(UspsFormatTest, CountsDisagree) {
  std::vector<DatasetSpec> specs = GoodSpecs();
  specs[1].dims = {4};
  specs[1].values = {1, 2, 3, 4};
  const std::string path = TempPath("usps_counts.h5");
  WriteHdf5(path, specs);
  EXPECT_TRUE(StatusIs(LoadUsps(path, Split::kTrain).status(), absl::StatusCode::kInvalidArgument,
                       {path, "5 images", "4 labels"}));
}

TEST_F(UspsFormatTest, WrongTypeClass) {
  std::vector<DatasetSpec> specs = GoodSpecs();
  specs[0].type = H5T_STD_U8LE;
  specs[0].values = std::vector<double>(5 * 256, 1.0);
  const std::string data = TempPath("usps_int_data.h5");
  WriteHdf5(data, specs);
  EXPECT_TRUE(StatusIs(LoadUsps(data, Split::kTrain).status(), absl::StatusCode::kInvalidArgument,
                       {data + ":/train/data", "expected float", "integer"}));
  specs = GoodSpecs();
  specs[1].type = H5T_IEEE_F32LE;
  const std::string target = TempPath("usps_float_target.h5");
  WriteHdf5(target, specs);
  EXPECT_TRUE(StatusIs(LoadUsps(target, Split::kTrain).status(), absl::StatusCode::kInvalidArgument,
                       {target + ":/train/target", "expected integer", "float"}));
}

TEST_F(UspsFormatTest, ValuesOutOfRange) {
  std::vector<DatasetSpec> specs = GoodSpecs();
  specs[1].values[3] = 10;
  const std::string label = TempPath("usps_label10.h5");
  WriteHdf5(label, specs);
  EXPECT_TRUE(StatusIs(LoadUsps(label, Split::kTrain).status(), absl::StatusCode::kDataLoss,
                       {label + ":/train/target", "label 10 of example 3", "0-9"}));
  specs = GoodSpecs();
  specs[0].values[256 * 2 + 7] = 1.5;
  const std::string pixel = TempPath("usps_pixel.h5");
  WriteHdf5(pixel, specs);
  EXPECT_TRUE(StatusIs(LoadUsps(pixel, Split::kTrain).status(), absl::StatusCode::kDataLoss,
                       {pixel + ":/train/data", "pixel 7 of image 2 is 1.5", "[0, 1]"}));
  specs = GoodSpecs();
  specs[0].values[0] = std::numeric_limits<double>::quiet_NaN();
  const std::string nan = TempPath("usps_nan.h5");
  WriteHdf5(nan, specs);
  EXPECT_TRUE(StatusIs(LoadUsps(nan, Split::kTrain).status(), absl::StatusCode::kDataLoss,
                       {nan + ":/train/data", "pixel 0 of image 0"}));
}

int g_handler_calls = 0;
herr_t CountingHandler(hid_t, void*) {
  ++g_handler_calls;
  return 0;
}

herr_t CountingHandlerV1(void*) {
  ++g_handler_calls;
  return 0;
}

TEST_F(UspsFormatTest, ErrorPrintingIsSilencedAndRestored) {
  H5E_auto2_t old_func = nullptr;
  void* old_data = nullptr;
  ASSERT_GE(H5Eget_auto2(H5E_DEFAULT, &old_func, &old_data), 0);
  ASSERT_GE(H5Eset_auto2(H5E_DEFAULT, CountingHandler, nullptr), 0);
  const std::string path = TempPath("usps_no_test_for_quiet.h5");
  std::vector<DatasetSpec> specs = GoodSpecs();
  specs.resize(2);
  WriteHdf5(path, specs);
  g_handler_calls = 0;
  EXPECT_FALSE(LoadUsps(path, Split::kTest).ok());  // H5Lexists fails inside
  testutil::WriteBytes(TempPath("usps_garbage.h5"), std::string(4096, '\x42'));
  EXPECT_FALSE(LoadUsps(TempPath("usps_garbage.h5"), Split::kTrain).ok());
  EXPECT_EQ(g_handler_calls, 0);
  H5E_auto2_t now = nullptr;
  void* now_data = nullptr;
  ASSERT_GE(H5Eget_auto2(H5E_DEFAULT, &now, &now_data), 0);
  EXPECT_EQ(now, &CountingHandler);

  // A handler installed through the deprecated v1 interface is restored as well.
  ASSERT_GE(H5Eset_auto1(CountingHandlerV1, nullptr), 0);
  EXPECT_FALSE(LoadUsps(path, Split::kTest).ok());
  EXPECT_EQ(g_handler_calls, 0);
  H5E_auto1_t now_v1 = nullptr;
  ASSERT_GE(H5Eget_auto1(&now_v1, &now_data), 0);
  EXPECT_EQ(now_v1, &CountingHandlerV1);
  H5Eset_auto2(H5E_DEFAULT, old_func, old_data);
}

// The real file, when OTGEN_USPS_H5 names it (CI passes
// --test_env=OTGEN_USPS_H5=<path to usps.h5>).
class UspsRealTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* env = std::getenv("OTGEN_USPS_H5");
    path_ = env == nullptr ? "" : env;
    if (path_.empty()) GTEST_SKIP() << "OTGEN_USPS_H5 is not set; pass --test_env=OTGEN_USPS_H5=/path/to/usps.h5";
    if (!std::ifstream(path_).good()) GTEST_SKIP() << "OTGEN_USPS_H5=" << path_ << " does not exist";
  }
  void TearDown() override { EXPECT_EQ(OpenHdf5Objects(), 0); }
  std::string path_;
};

void CheckSplit(const InMemoryDataset& d, int64_t n, const std::vector<int64_t>& counts) {
  EXPECT_EQ(d.size(), n);
  EXPECT_EQ(d.example_shape(), (nn::Shape{1, 16, 16}));
  EXPECT_EQ(d.ClassCounts(), counts);
  float lo = 1, hi = 0;
  double sum = 0;
  for (float v : d.examples().span()) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    sum += v;
  }
  EXPECT_GE(lo, 0.0f);
  EXPECT_LE(hi, 1.0f);
  EXPECT_LT(lo, 0.01f);  // backgrounds are (near) 0 and strokes reach (near) 1
  EXPECT_GT(hi, 0.99f);
  const double mean = sum / d.examples().numel();
  EXPECT_GT(mean, 0.1);
  EXPECT_LT(mean, 0.4);
}

TEST_F(UspsRealTest, TrainAndTestSplits) {
  absl::StatusOr<InMemoryDataset> train = LoadUsps(path_, Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  CheckSplit(*train, 7291, {1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644});
  absl::StatusOr<InMemoryDataset> test = LoadUsps(path_, Split::kTest);
  ASSERT_TRUE(test.ok()) << test.status();
  CheckSplit(*test, 2007, {359, 264, 198, 166, 200, 160, 170, 147, 166, 177});
  absl::StatusOr<InMemoryDataset> sym = LoadUsps(path_, Split::kTest, {.scaling = PixelScaling::kSymmetric});
  ASSERT_TRUE(sym.ok());
  for (int64_t i = 0; i < sym->examples().numel(); ++i) {
    ASSERT_EQ(sym->examples().data()[i], 2.0f * test->examples().data()[i] - 1.0f);
  }
}

}  // namespace
}  // namespace otgen::data
