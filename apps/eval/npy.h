// NumPy .npy files: the interchange format between otgen and Python (POT, PyTorch).
//
// Format (numpy.lib.format, NEP 1): the magic "\x93NUMPY", a major and a minor version byte,
// the header length (little-endian uint16 for version 1.0, uint32 for 2.0 and 3.0), then an
// ASCII Python dict literal, e.g.
//
//   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
//
// padded with spaces and ended by '\n' so that the data starts at a multiple of 64 bytes,
// then the raw elements in C (row-major) order.
//
// Reading: versions 1.0, 2.0 and 3.0; dtypes '<f4', '<f8', '<i4', '<i8' and '|u1' ('<u1' too).
// `ReadNpy` converts every supported dtype to float32: '<f8' is rounded to nearest
// (a finite value beyond the float32 range is an error), integers must be exactly
// representable (|v| <= 2^24 or otherwise exact in float32). `ReadNpyInt64` reads the
// integer dtypes (labels) exactly. The header dict must have exactly the keys 'descr',
// 'fortran_order' and 'shape' (as numpy requires); fortran_order True is rejected (C order
// only); the data must be exactly prod(shape) * itemsize bytes.
//
// Writing: version 1.0 ('<f4', C order), through a temporary file renamed over the target
// (version 2.0 only if the header would exceed 65535 bytes, which needs thousands of dims).
//
// Errors name the file and what was expected: InvalidArgumentError for a bad magic, an
// unsupported version or dtype, Fortran order, a malformed header or a value that does not
// convert; DataLossError for truncated or oversized data; the codes of apps/common/file_io.h
// (NotFound, ...) for I/O failures.
//
// Usage:
//   OTGEN_ASSIGN_OR_RETURN(otgen::ot::RowMatrixXf x, otgen::eval::ReadNpyMatrix("x.npy"));
//   OTGEN_RETURN_IF_ERROR(otgen::eval::WriteNpyMatrix("y.npy", y));
//   OTGEN_ASSIGN_OR_RETURN(otgen::eval::NpyInt64Array labels, otgen::eval::ReadNpyInt64("l.npy"));
//
// Python side: np.save("x.npy", x.astype(np.float32)); np.load("y.npy").
#ifndef OTGEN_APPS_EVAL_NPY_H_
#define OTGEN_APPS_EVAL_NPY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "nn/tensor.h"
#include "ot/types.h"

namespace otgen::eval {

enum class NpyDtype {
  kFloat32,  // '<f4'
  kFloat64,  // '<f8'
  kInt32,    // '<i4'
  kInt64,    // '<i8'
  kUint8,    // '|u1'
};

// The numpy descr string: "<f4", "<f8", "<i4", "<i8", "|u1".
absl::string_view NpyDtypeName(NpyDtype dtype);
// Bytes per element.
int NpyDtypeSize(NpyDtype dtype);

// What the header of a .npy file says.
struct NpyHeader {
  int major_version = 1;
  int minor_version = 0;
  NpyDtype dtype = NpyDtype::kFloat32;
  std::vector<int64_t> shape;  // empty for a 0-d array (one element)
  int64_t num_elements = 1;    // product of shape
  int64_t data_offset = 0;     // byte offset of the first element
};

// Parses and validates the preamble and header dict of `bytes` (a whole .npy file) and checks
// that the data size matches the shape. `path` only names the file in error messages.
absl::StatusOr<NpyHeader> ParseNpyHeader(absl::string_view bytes, absl::string_view path);

// An array read as float32.
struct NpyFloatArray {
  std::vector<int64_t> shape;
  NpyDtype stored_dtype = NpyDtype::kFloat32;  // the dtype in the file
  std::vector<float> values;                   // prod(shape) values, C order
};

// An array of an integer dtype read as int64.
struct NpyInt64Array {
  std::vector<int64_t> shape;
  NpyDtype stored_dtype = NpyDtype::kInt64;
  std::vector<int64_t> values;
};

// Reads any supported dtype, converted to float32 (see the header comment).
absl::StatusOr<NpyFloatArray> ReadNpy(const std::string& path);
// Reads an integer dtype ('<i4', '<i8', '|u1'); a float dtype is InvalidArgumentError.
absl::StatusOr<NpyInt64Array> ReadNpyInt64(const std::string& path);
// Reads a 2-D array as an n x d matrix (a 1-D array of n values is n x 1); other ranks are
// InvalidArgumentError.
absl::StatusOr<ot::RowMatrixXf> ReadNpyMatrix(const std::string& path);
// Reads an array of any rank as a Tensor of the same shape (a 0-d array is a scalar tensor).
absl::StatusOr<nn::Tensor> ReadNpyTensor(const std::string& path);

// The bytes of a version 1.0 '<f4' .npy file holding `values` with `shape` (C order).
// InvalidArgumentError if a dimension is negative or prod(shape) != values.size().
absl::StatusOr<std::string> EncodeNpy(absl::Span<const int64_t> shape, absl::Span<const float> values);

// Writes `values` with `shape` as '<f4' .npy (temporary file, then rename).
absl::Status WriteNpy(const std::string& path, absl::Span<const int64_t> shape,
                      absl::Span<const float> values);
// Writes an n x d matrix as a 2-D array.
absl::Status WriteNpyMatrix(const std::string& path, const Eigen::Ref<const ot::RowMatrixXf>& matrix);
// Writes a tensor with its shape.
absl::Status WriteNpyTensor(const std::string& path, const nn::Tensor& tensor);

}  // namespace otgen::eval

#endif  // OTGEN_APPS_EVAL_NPY_H_
