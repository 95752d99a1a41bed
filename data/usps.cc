#include "data/usps.h"

#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "data/file_util.h"
#include "hdf5.h"
#include "nn/status_macros.h"
#include "nn/tensor.h"

namespace otgen::data {
namespace {

// Turns HDF5's automatic error printing off for the lifetime of the guard and restores
// the previous handler afterwards (the caller's choice is left as it was).
class Hdf5ErrorPrintingOff {
 public:
  Hdf5ErrorPrintingOff() {
    unsigned is_v2 = 1;
    if (H5Eauto_is_v2(H5E_DEFAULT, &is_v2) < 0) is_v2 = 1;
    if (is_v2) {
      saved_ = H5Eget_auto2(H5E_DEFAULT, &saved_func2_, &saved_data_) >= 0 ? kV2 : kNone;
    } else {
#ifndef H5_NO_DEPRECATED_SYMBOLS
      // A handler installed with the 1.6-era H5Eset_auto1 (as H5E_BEGIN_TRY also handles).
      saved_ = H5Eget_auto1(&saved_func1_, &saved_data_) >= 0 ? kV1 : kNone;
#endif
    }
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~Hdf5ErrorPrintingOff() {
    if (saved_ == kV2) H5Eset_auto2(H5E_DEFAULT, saved_func2_, saved_data_);
#ifndef H5_NO_DEPRECATED_SYMBOLS
    if (saved_ == kV1) H5Eset_auto1(saved_func1_, saved_data_);
#endif
  }
  Hdf5ErrorPrintingOff(const Hdf5ErrorPrintingOff&) = delete;
  Hdf5ErrorPrintingOff& operator=(const Hdf5ErrorPrintingOff&) = delete;

 private:
  enum Saved { kNone, kV1, kV2 };
  Saved saved_ = kNone;
  H5E_auto2_t saved_func2_ = nullptr;
#ifndef H5_NO_DEPRECATED_SYMBOLS
  H5E_auto1_t saved_func1_ = nullptr;
#endif
  void* saved_data_ = nullptr;
};

// Owns an HDF5 identifier and closes it with the matching H5?close.
class Hdf5Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Hdf5Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~Hdf5Handle() {
    if (id_ >= 0) closer_(id_);
  }
  Hdf5Handle(Hdf5Handle&& other) noexcept : id_(std::exchange(other.id_, -1)), closer_(other.closer_) {}
  Hdf5Handle& operator=(Hdf5Handle&& other) noexcept {
    if (this != &other) {
      if (id_ >= 0) closer_(id_);
      id_ = std::exchange(other.id_, -1);
      closer_ = other.closer_;
    }
    return *this;
  }
  Hdf5Handle(const Hdf5Handle&) = delete;
  Hdf5Handle& operator=(const Hdf5Handle&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_;
  Closer closer_;
};

herr_t CollectError(unsigned /*n*/, const H5E_error2_t* err, void* client) {
  auto* messages = static_cast<std::vector<std::string>*>(client);
  if (err->desc != nullptr && err->desc[0] != '\0' && messages->size() < 3) {
    messages->push_back(absl::StrCat(err->func_name != nullptr ? err->func_name : "?", ": ", err->desc));
  }
  return 0;
}

// HDF5's description of the error on the default stack (most specific first), which is
// then cleared; "" when the stack is empty.
std::string TakeHdf5Error() {
  std::vector<std::string> messages;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, CollectError, &messages);
  H5Eclear2(H5E_DEFAULT);
  if (messages.empty()) return "";
  return absl::StrCat(" (HDF5: ", absl::StrJoin(messages, "; "), ")");
}

std::string Where(const std::string& path, const std::string& dataset) { return absl::StrCat(path, ":", dataset); }

// Opens the dataset at absolute `name` ("/train/data"), checking each link on the way.
absl::StatusOr<Hdf5Handle> OpenDataset(hid_t file, const std::string& path, const std::string& name) {
  for (size_t begin = 1;;) {
    const size_t slash = name.find('/', begin);
    const std::string prefix = name.substr(0, slash);
    const htri_t exists = H5Lexists(file, prefix.c_str(), H5P_DEFAULT);
    if (exists <= 0) {
      TakeHdf5Error();
      const std::string detail = prefix == name ? "" : absl::StrCat(" (", prefix, " is missing or not a group)");
      return absl::NotFoundError(absl::StrCat(path, ": dataset ", name, " not found", detail,
                                              "; expected the USPS layout /train/data, /train/target, /test/data, "
                                              "/test/target"));
    }
    if (slash == std::string::npos) break;
    begin = slash + 1;
  }
  Hdf5Handle object(H5Oopen(file, name.c_str(), H5P_DEFAULT), H5Oclose);
  if (!object.valid()) {
    return absl::DataLossError(absl::StrCat(Where(path, name), ": cannot open object", TakeHdf5Error()));
  }
  if (H5Iget_type(object.get()) != H5I_DATASET) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(path, name), ": is a group or named type, expected a dataset"));
  }
  return object;
}

// The dimensions of `dataset`'s simple dataspace.
absl::StatusOr<std::vector<hsize_t>> Dims(hid_t dataset, const std::string& where) {
  Hdf5Handle space(H5Dget_space(dataset), H5Sclose);
  if (!space.valid()) return absl::DataLossError(absl::StrCat(where, ": cannot read dataspace", TakeHdf5Error()));
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) return absl::DataLossError(absl::StrCat(where, ": cannot read rank", TakeHdf5Error()));
  std::vector<hsize_t> dims(rank);
  if (rank > 0 && H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr) < 0) {
    return absl::DataLossError(absl::StrCat(where, ": cannot read dimensions", TakeHdf5Error()));
  }
  return dims;
}

std::string DimsString(const std::vector<hsize_t>& dims) { return absl::StrCat("[", absl::StrJoin(dims, ", "), "]"); }

absl::Status CheckTypeClass(hid_t dataset, const std::string& where, H5T_class_t expected,
                            std::string_view expected_name) {
  Hdf5Handle type(H5Dget_type(dataset), H5Tclose);
  if (!type.valid()) return absl::DataLossError(absl::StrCat(where, ": cannot read datatype", TakeHdf5Error()));
  const H5T_class_t cls = H5Tget_class(type.get());
  if (cls != expected) {
    std::string_view got = "another type";
    switch (cls) {
      case H5T_INTEGER:
        got = "an integer type";
        break;
      case H5T_FLOAT:
        got = "a float type";
        break;
      case H5T_STRING:
        got = "a string type";
        break;
      case H5T_COMPOUND:
        got = "a compound type";
        break;
      case H5T_ENUM:
        got = "an enum type";
        break;
      case H5T_ARRAY:
        got = "an array type";
        break;
      default:
        break;
    }
    return absl::InvalidArgumentError(absl::StrCat(where, ": expected ", internal::AbslView(expected_name),
                                                   " values, the dataset has ", internal::AbslView(got)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<InMemoryDataset> LoadUsps(const std::string& path, Split split, const UspsOptions& options) {
  // Missing or unreadable files get the same codes as the other loaders.
  OTGEN_RETURN_IF_ERROR(internal::FileSize(path).status());
  Hdf5ErrorPrintingOff quiet;

  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  if (is_hdf5 == 0) {
    H5Eclear2(H5E_DEFAULT);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not an HDF5 file (no HDF5 signature)"));
  }
  if (is_hdf5 < 0) return absl::DataLossError(absl::StrCat(path, ": cannot read as HDF5", TakeHdf5Error()));
  Hdf5Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.valid()) {
    return absl::DataLossError(absl::StrCat(path, ": cannot open HDF5 file (corrupt or truncated?)", TakeHdf5Error()));
  }

  const std::string group = absl::StrCat("/", internal::AbslView(SplitName(split)));
  const std::string data_name = absl::StrCat(group, "/data");
  const std::string target_name = absl::StrCat(group, "/target");
  const std::string data_where = Where(path, data_name);
  const std::string target_where = Where(path, target_name);

  OTGEN_ASSIGN_OR_RETURN(Hdf5Handle data, OpenDataset(file.get(), path, data_name));
  OTGEN_ASSIGN_OR_RETURN(Hdf5Handle target, OpenDataset(file.get(), path, target_name));
  OTGEN_RETURN_IF_ERROR(CheckTypeClass(data.get(), data_where, H5T_FLOAT, "float"));
  OTGEN_RETURN_IF_ERROR(CheckTypeClass(target.get(), target_where, H5T_INTEGER, "integer"));

  OTGEN_ASSIGN_OR_RETURN(std::vector<hsize_t> data_dims, Dims(data.get(), data_where));
  OTGEN_ASSIGN_OR_RETURN(std::vector<hsize_t> target_dims, Dims(target.get(), target_where));
  const bool flat_ok = data_dims.size() == 2 && data_dims[1] == kUspsImageSize * kUspsImageSize;
  const bool image_ok = data_dims.size() == 3 && data_dims[1] == kUspsImageSize && data_dims[2] == kUspsImageSize;
  if (!flat_ok && !image_ok) {
    return absl::InvalidArgumentError(
        absl::StrCat(data_where, ": expected dimensions [N, 256] (or [N, 16, 16]), got ", DimsString(data_dims)));
  }
  if (target_dims.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(target_where, ": expected dimensions [N], got ", DimsString(target_dims)));
  }
  constexpr hsize_t kMaxExamples = (hsize_t{1} << 31) - 1;
  if (data_dims[0] > kMaxExamples) {
    return absl::InvalidArgumentError(
        absl::StrCat(data_where, ": ", data_dims[0], " examples, expected at most ", kMaxExamples));
  }
  if (target_dims[0] != data_dims[0]) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", data_name, " has ", data_dims[0], " images but ",
                                                   target_name, " has ", target_dims[0], " labels"));
  }
  const int64_t n = static_cast<int64_t>(data_dims[0]);
  constexpr int64_t kPixels = kUspsImageSize * kUspsImageSize;

  nn::Tensor examples =
      nn::Tensor::Empty(options.flatten ? nn::Shape{n, kPixels} : nn::Shape{n, 1, kUspsImageSize, kUspsImageSize});
  std::vector<int64_t> raw_labels(n);
  if (n > 0) {
    if (H5Dread(data.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, examples.data()) < 0) {
      return absl::DataLossError(absl::StrCat(data_where, ": read failed", TakeHdf5Error()));
    }
    if (H5Dread(target.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw_labels.data()) < 0) {
      return absl::DataLossError(absl::StrCat(target_where, ": read failed", TakeHdf5Error()));
    }
  }

  const float* pixels = examples.data();
  for (int64_t i = 0; i < n * kPixels; ++i) {
    const float v = pixels[i];
    if (!(v >= 0.0f && v <= 1.0f)) {
      return absl::DataLossError(absl::StrCat(data_where, ": pixel ", i % kPixels, " of image ", i / kPixels, " is ", v,
                                              ", expected a value in [0, 1]"));
    }
  }
  std::vector<int32_t> labels(n);
  for (int64_t i = 0; i < n; ++i) {
    if (raw_labels[i] < 0 || raw_labels[i] >= kUspsNumClasses) {
      return absl::DataLossError(
          absl::StrCat(target_where, ": label ", raw_labels[i], " of example ", i, " is outside 0-9"));
    }
    labels[i] = static_cast<int32_t>(raw_labels[i]);
  }
  internal::ApplyScaling(options.scaling, examples.data(), n * kPixels);
  return InMemoryDataset::Create(std::move(examples), std::move(labels), kUspsNumClasses,
                                 absl::StrCat(path, ":", group));
}

}  // namespace otgen::data
