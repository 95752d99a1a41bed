#include "apps/eval/npy.h"

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "apps/common/file_io.h"
#include "nn/status_macros.h"

namespace otgen::eval {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the .npy reader/writer assumes a little-endian host");

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
constexpr size_t kMaxHeaderQuote = 200;  // header characters quoted in error messages

std::string QuoteHeader(absl::string_view header) {
  std::string shown(header.substr(0, kMaxHeaderQuote));
  while (!shown.empty() && (shown.back() == ' ' || shown.back() == '\n')) shown.pop_back();
  if (header.size() > kMaxHeaderQuote) shown += "...";
  return shown;
}

// A recursive-descent parser for the header dict literal.
class HeaderParser {
 public:
  HeaderParser(absl::string_view text, absl::string_view path) : text_(text), path_(path) {}

  absl::Status Error(absl::string_view expected) const {
    const std::string got = pos_ < text_.size() ? absl::StrCat("'", text_.substr(pos_, 1), "'") : "end of header";
    return absl::InvalidArgumentError(absl::StrCat(path_, ": malformed .npy header at character ", pos_,
                                                   ": expected ", expected, ", got ", got, " in \"",
                                                   QuoteHeader(text_), "\""));
  }

  void SkipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool Consume(char c) {
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  bool AtEnd() {
    SkipSpace();
    return pos_ == text_.size();
  }

  absl::StatusOr<std::string> ParseString() {
    SkipSpace();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) return Error("a quoted string");
    const char quote = text_[pos_++];
    const size_t end = text_.find(quote, pos_);
    if (end == absl::string_view::npos) return Error(absl::StrCat("a closing ", std::string(1, quote)));
    std::string s(text_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }

  absl::StatusOr<bool> ParseBool() {
    SkipSpace();
    if (text_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (text_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    return Error("True or False");
  }

  absl::StatusOr<int64_t> ParseDim() {
    SkipSpace();
    const size_t start = pos_;
    int64_t value = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      if (__builtin_mul_overflow(value, 10, &value) ||
          __builtin_add_overflow(value, text_[pos_] - '0', &value)) {
        return Error("a dimension below 2^63");
      }
      ++pos_;
    }
    if (pos_ == start) return Error("a non-negative integer dimension");
    if (pos_ < text_.size() && text_[pos_] == 'L') ++pos_;  // Python 2 long suffix
    return value;
  }

  // A tuple of non-negative integers: "()", "(5,)", "(3, 4)", "(3, 4,)".
  absl::StatusOr<std::vector<int64_t>> ParseShape() {
    if (!Consume('(')) return Error("'(' opening the shape tuple");
    std::vector<int64_t> shape;
    if (Consume(')')) return shape;
    while (true) {
      OTGEN_ASSIGN_OR_RETURN(int64_t dim, ParseDim());
      shape.push_back(dim);
      if (Consume(')')) {
        // A 1-tuple needs its comma in Python: "(5)" is the integer 5.
        if (shape.size() == 1) return Error("',' after the only dimension of a 1-d shape, as in (5,)");
        return shape;
      }
      if (!Consume(',')) return Error("',' or ')' in the shape tuple");
      if (Consume(')')) return shape;
    }
  }

 private:
  absl::string_view text_;
  absl::string_view path_;
  size_t pos_ = 0;
};

absl::StatusOr<NpyDtype> ParseDtype(absl::string_view descr, absl::string_view path) {
  if (descr == "<f4") return NpyDtype::kFloat32;
  if (descr == "<f8") return NpyDtype::kFloat64;
  if (descr == "<i4") return NpyDtype::kInt32;
  if (descr == "<i8") return NpyDtype::kInt64;
  if (descr == "|u1" || descr == "<u1" || descr == "u1") return NpyDtype::kUint8;
  return absl::InvalidArgumentError(absl::StrCat(
      path, ": unsupported .npy dtype '", descr,
      "'; expected one of '<f4', '<f8', '<i4', '<i8', '|u1' (little-endian float32/float64, int32/int64, uint8)"));
}

uint32_t LoadLe(const char* p, int bytes) {
  uint32_t v = 0;
  for (int k = bytes - 1; k >= 0; --k) v = (v << 8) | static_cast<uint8_t>(p[k]);
  return v;
}

template <typename T>
T LoadElement(const char* data, int64_t index) {
  T v;
  std::memcpy(&v, data + index * static_cast<int64_t>(sizeof(T)), sizeof(T));
  return v;
}

absl::StatusOr<NpyHeader> ParseHeaderImpl(absl::string_view prefix, uint64_t file_size, absl::string_view path);

// Opens `path` and parses its header, reading only the preamble and the header dict.
absl::StatusOr<std::pair<apps::InputFile, NpyHeader>> OpenNpy(const std::string& path) {
  OTGEN_ASSIGN_OR_RETURN(apps::InputFile file, apps::InputFile::Open(path));
  std::string prefix(static_cast<size_t>(std::min<uint64_t>(file.size(), kMagicSize + 2 + 4)), '\0');
  OTGEN_RETURN_IF_ERROR(file.ReadAt(0, prefix.data(), prefix.size()));
  if (prefix.size() >= kMagicSize + 4 && prefix.substr(0, kMagicSize) == absl::string_view(kMagic, kMagicSize)) {
    const int major = static_cast<uint8_t>(prefix[6]);
    const size_t length_bytes = major == 1 ? 2 : 4;
    if (prefix.size() >= kMagicSize + 2 + length_bytes) {
      const uint64_t preamble = kMagicSize + 2 + length_bytes;
      const uint64_t header_end =
          std::min<uint64_t>(file.size(), preamble + LoadLe(prefix.data() + kMagicSize + 2, static_cast<int>(length_bytes)));
      const size_t have = prefix.size();
      if (header_end > have) {
        prefix.resize(static_cast<size_t>(header_end));
        OTGEN_RETURN_IF_ERROR(file.ReadAt(have, prefix.data() + have, prefix.size() - have));
      }
    }
  }
  OTGEN_ASSIGN_OR_RETURN(NpyHeader header, ParseHeaderImpl(prefix, file.size(), path));
  return std::make_pair(std::move(file), std::move(header));
}

// Elements per conversion chunk when the stored dtype is not the output type.
constexpr int64_t kChunkElements = 1 << 16;

std::string IndexString(const std::vector<int64_t>& shape, int64_t flat) {
  std::vector<int64_t> index(shape.size());
  for (int k = static_cast<int>(shape.size()) - 1; k >= 0; --k) {
    index[k] = flat % shape[k];
    flat /= shape[k];
  }
  return absl::StrCat("(", absl::StrJoin(index, ", "), ")");
}

// Converts an integer to float32, failing unless it is exactly representable.
std::optional<float> ExactFloat(int64_t v) {
  const float f = static_cast<float>(v);
  if (static_cast<long double>(f) != static_cast<long double>(v)) return std::nullopt;
  return f;
}

}  // namespace

absl::string_view NpyDtypeName(NpyDtype dtype) {
  switch (dtype) {
    case NpyDtype::kFloat32:
      return "<f4";
    case NpyDtype::kFloat64:
      return "<f8";
    case NpyDtype::kInt32:
      return "<i4";
    case NpyDtype::kInt64:
      return "<i8";
    case NpyDtype::kUint8:
      return "|u1";
  }
  return "?";
}

int NpyDtypeSize(NpyDtype dtype) {
  switch (dtype) {
    case NpyDtype::kFloat32:
    case NpyDtype::kInt32:
      return 4;
    case NpyDtype::kFloat64:
    case NpyDtype::kInt64:
      return 8;
    case NpyDtype::kUint8:
      return 1;
  }
  return 0;
}

namespace {

// `bytes` holds the start of the file: at least the preamble and the header dict when the file
// has them; `file_size` is the size of the whole file.
absl::StatusOr<NpyHeader> ParseHeaderImpl(absl::string_view bytes, uint64_t file_size, absl::string_view path) {
  if (bytes.size() < kMagicSize || bytes.substr(0, kMagicSize) != absl::string_view(kMagic, kMagicSize)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": not a .npy file: bad magic; expected the 6 bytes \"\\x93NUMPY\" at the start"));
  }
  if (bytes.size() < kMagicSize + 2) {
    return absl::DataLossError(absl::StrCat(path, ": truncated .npy file: ", bytes.size(),
                                            " bytes, expected at least 8 (magic and version)"));
  }
  NpyHeader header;
  header.major_version = static_cast<uint8_t>(bytes[6]);
  header.minor_version = static_cast<uint8_t>(bytes[7]);
  if (header.major_version < 1 || header.major_version > 3 || header.minor_version != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": unsupported .npy format version ",
                                                   header.major_version, ".", header.minor_version,
                                                   "; expected 1.0, 2.0 or 3.0"));
  }
  const int length_bytes = header.major_version == 1 ? 2 : 4;
  const size_t preamble = kMagicSize + 2 + length_bytes;
  if (bytes.size() < preamble) {
    return absl::DataLossError(absl::StrCat(path, ": truncated .npy file: ", bytes.size(), " bytes, expected at least ",
                                            preamble, " (magic, version, header length)"));
  }
  const uint32_t header_length = LoadLe(bytes.data() + kMagicSize + 2, length_bytes);
  if (bytes.size() - preamble < header_length) {
    return absl::DataLossError(absl::StrCat(path, ": truncated .npy header: the preamble announces ", header_length,
                                            " header bytes, the file has ", bytes.size() - preamble));
  }
  header.data_offset = static_cast<int64_t>(preamble + header_length);
  const absl::string_view text = bytes.substr(preamble, header_length);

  HeaderParser parser(text, path);
  if (!parser.Consume('{')) return parser.Error("'{' opening the header dict");
  std::optional<std::string> descr;
  std::optional<bool> fortran_order;
  std::optional<std::vector<int64_t>> shape;
  while (!parser.Consume('}')) {
    OTGEN_ASSIGN_OR_RETURN(std::string key, parser.ParseString());
    if (!parser.Consume(':')) return parser.Error(absl::StrCat("':' after key '", key, "'"));
    if (key == "descr" && !descr) {
      OTGEN_ASSIGN_OR_RETURN(descr, parser.ParseString());
    } else if (key == "fortran_order" && !fortran_order) {
      OTGEN_ASSIGN_OR_RETURN(fortran_order, parser.ParseBool());
    } else if (key == "shape" && !shape) {
      OTGEN_ASSIGN_OR_RETURN(shape, parser.ParseShape());
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": malformed .npy header: ",
          key == "descr" || key == "fortran_order" || key == "shape" ? "duplicate" : "unknown", " key '", key, "'; expected exactly the keys 'descr', 'fortran_order', 'shape' in \"", QuoteHeader(text),
          "\""));
    }
    if (!parser.Consume(',')) {
      if (!parser.Consume('}')) return parser.Error("',' or '}' after a dict value");
      break;
    }
  }
  if (!parser.AtEnd()) return parser.Error("only spaces and a newline after the header dict");
  if (!descr || !fortran_order || !shape) {
    std::vector<std::string> missing;
    if (!descr) missing.push_back("'descr'");
    if (!fortran_order) missing.push_back("'fortran_order'");
    if (!shape) missing.push_back("'shape'");
    return absl::InvalidArgumentError(absl::StrCat(path, ": malformed .npy header: missing key ",
                                                   absl::StrJoin(missing, ", "), " in \"", QuoteHeader(text), "\""));
  }
  OTGEN_ASSIGN_OR_RETURN(header.dtype, ParseDtype(*descr, path));
  if (*fortran_order) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": .npy array is in Fortran order (fortran_order: True); expected C order "
              "(save np.ascontiguousarray(x))"));
  }
  header.shape = std::move(*shape);
  const int64_t item = NpyDtypeSize(header.dtype);
  int64_t count = 1;
  for (int64_t d : header.shape) {
    if (__builtin_mul_overflow(count, d, &count)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": .npy shape (", absl::StrJoin(header.shape, ", "),
                                                     ") has too many elements"));
    }
  }
  int64_t data_bytes = 0;
  if (__builtin_mul_overflow(count, item, &data_bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": .npy shape (", absl::StrJoin(header.shape, ", "),
                                                   ") has too many bytes"));
  }
  header.num_elements = count;
  const int64_t available = static_cast<int64_t>(file_size) - header.data_offset;
  if (available != data_bytes) {
    return absl::DataLossError(absl::StrCat(
        path, ": ", available < data_bytes ? "truncated" : "oversized", " .npy data: shape (",
        absl::StrJoin(header.shape, ", "), ") of ", NpyDtypeName(header.dtype), " needs ", data_bytes,
        " bytes after the header, the file has ", available));
  }
  return header;
}

}  // namespace

absl::StatusOr<NpyHeader> ParseNpyHeader(absl::string_view bytes, absl::string_view path) {
  return ParseHeaderImpl(bytes, bytes.size(), path);
}

namespace {

// Reads the array at `path` as float32 into the storage returned by `allocate(header)` (a
// float* for header.num_elements values, or an error status): '<f4' data is read in place,
// other dtypes are converted chunk by chunk.
template <typename Allocate>
absl::StatusOr<NpyHeader> ReadFloatsInto(const std::string& path, Allocate allocate) {
  OTGEN_ASSIGN_OR_RETURN(auto opened, OpenNpy(path));
  const apps::InputFile& file = opened.first;
  const NpyHeader& h = opened.second;
  OTGEN_ASSIGN_OR_RETURN(float* out, allocate(h));
  const int64_t n = h.num_elements;
  if (h.dtype == NpyDtype::kFloat32) {
    OTGEN_RETURN_IF_ERROR(file.ReadAt(h.data_offset, out, static_cast<size_t>(n) * sizeof(float)));
    return h;
  }
  const int64_t item = NpyDtypeSize(h.dtype);
  std::vector<char> buffer(static_cast<size_t>(std::min(n, kChunkElements) * item));
  auto not_exact = [&](int64_t i, int64_t v) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", NpyDtypeName(h.dtype), " value ", v, " at index ",
                                                   IndexString(h.shape, i),
                                                   " is not exactly representable as float32; expected "
                                                   "integers of magnitude <= 2^24 (use ReadNpyInt64)"));
  };
  for (int64_t first = 0; first < n; first += kChunkElements) {
    const int64_t count = std::min(kChunkElements, n - first);
    OTGEN_RETURN_IF_ERROR(file.ReadAt(h.data_offset + first * item, buffer.data(), static_cast<size_t>(count * item)));
    const char* data = buffer.data();
    for (int64_t k = 0; k < count; ++k) {
      const int64_t i = first + k;
      switch (h.dtype) {
        case NpyDtype::kFloat64: {
          const double v = LoadElement<double>(data, k);
          const float f = static_cast<float>(v);
          if (std::isfinite(v) && std::isinf(f)) {
            return absl::InvalidArgumentError(absl::StrCat(path, ": <f8 value ", v, " at index ", IndexString(h.shape, i),
                                                           " overflows float32; expected |v| <= 3.4028235e38"));
          }
          out[i] = f;
          break;
        }
        case NpyDtype::kInt32:
        case NpyDtype::kInt64: {
          const int64_t v = h.dtype == NpyDtype::kInt32 ? LoadElement<int32_t>(data, k) : LoadElement<int64_t>(data, k);
          const std::optional<float> f = ExactFloat(v);
          if (!f) return not_exact(i, v);
          out[i] = *f;
          break;
        }
        case NpyDtype::kUint8:
          out[i] = static_cast<uint8_t>(data[k]);
          break;
        case NpyDtype::kFloat32:
          break;  // handled above
      }
    }
  }
  return h;
}

}  // namespace

absl::StatusOr<NpyFloatArray> ReadNpy(const std::string& path) {
  NpyFloatArray out;
  OTGEN_ASSIGN_OR_RETURN(NpyHeader h, ReadFloatsInto(path, [&](const NpyHeader& header) -> absl::StatusOr<float*> {
                           out.values.resize(static_cast<size_t>(header.num_elements));
                           return out.values.data();
                         }));
  out.shape = h.shape;
  out.stored_dtype = h.dtype;
  return out;
}

absl::StatusOr<NpyInt64Array> ReadNpyInt64(const std::string& path) {
  OTGEN_ASSIGN_OR_RETURN(auto opened, OpenNpy(path));
  const apps::InputFile& file = opened.first;
  const NpyHeader& h = opened.second;
  if (h.dtype == NpyDtype::kFloat32 || h.dtype == NpyDtype::kFloat64) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": .npy dtype ", NpyDtypeName(h.dtype),
                                                   " is a float type; expected an integer dtype "
                                                   "('<i4', '<i8' or '|u1')"));
  }
  NpyInt64Array out;
  out.shape = h.shape;
  out.stored_dtype = h.dtype;
  const int64_t n = h.num_elements;
  out.values.resize(static_cast<size_t>(n));
  if (h.dtype == NpyDtype::kInt64) {
    OTGEN_RETURN_IF_ERROR(file.ReadAt(h.data_offset, out.values.data(), static_cast<size_t>(n) * sizeof(int64_t)));
    return out;
  }
  const int64_t item = NpyDtypeSize(h.dtype);
  std::vector<char> buffer(static_cast<size_t>(std::min(n, kChunkElements) * item));
  for (int64_t first = 0; first < n; first += kChunkElements) {
    const int64_t count = std::min(kChunkElements, n - first);
    OTGEN_RETURN_IF_ERROR(file.ReadAt(h.data_offset + first * item, buffer.data(), static_cast<size_t>(count * item)));
    for (int64_t k = 0; k < count; ++k) {
      out.values[first + k] = h.dtype == NpyDtype::kInt32 ? LoadElement<int32_t>(buffer.data(), k)
                                                          : static_cast<uint8_t>(buffer[k]);
    }
  }
  return out;
}

absl::StatusOr<ot::RowMatrixXf> ReadNpyMatrix(const std::string& path) {
  ot::RowMatrixXf m;
  OTGEN_RETURN_IF_ERROR(
      ReadFloatsInto(path, [&](const NpyHeader& h) -> absl::StatusOr<float*> {
        if (h.shape.size() != 1 && h.shape.size() != 2) {
          return absl::InvalidArgumentError(absl::StrCat(path, ": .npy array has shape (", absl::StrJoin(h.shape, ", "),
                                                         "); expected a 2-d array (n points x d dims) or a 1-d array"));
        }
        m.resize(h.shape[0], h.shape.size() == 2 ? h.shape[1] : 1);
        return m.data();
      }).status());
  return m;
}

absl::StatusOr<nn::Tensor> ReadNpyTensor(const std::string& path) {
  nn::Tensor t;
  OTGEN_RETURN_IF_ERROR(ReadFloatsInto(path, [&](const NpyHeader& h) -> absl::StatusOr<float*> {
                          t = nn::Tensor::Empty(nn::Shape(h.shape.begin(), h.shape.end()));
                          return t.data();
                        }).status());
  return t;
}

absl::StatusOr<std::string> EncodeNpy(absl::Span<const int64_t> shape, absl::Span<const float> values) {
  int64_t count = 1;
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(count, d, &count)) {
      return absl::InvalidArgumentError(absl::StrCat("shape (", absl::StrJoin(shape, ", "),
                                                     "): expected non-negative dimensions"));
    }
  }
  if (count != static_cast<int64_t>(values.size())) {
    return absl::InvalidArgumentError(absl::StrCat("values: expected ", count, " values for shape (",
                                                   absl::StrJoin(shape, ", "), "), got ", values.size()));
  }
  std::string shape_text = absl::StrJoin(shape, ", ");
  if (shape.size() == 1) shape_text += ",";
  std::string dict = absl::StrCat("{'descr': '<f4', 'fortran_order': False, 'shape': (", shape_text, "), }");
  // Version 1.0 has a 16-bit header length; 2.0 a 32-bit one (only for enormous ranks).
  int major = 1;
  size_t preamble = kMagicSize + 2 + 2;
  size_t total = preamble + dict.size() + 1;
  if (((total + 63) / 64) * 64 - preamble > 65535) {
    major = 2;
    preamble += 2;
    total += 2;
  }
  const size_t padded = ((total + 63) / 64) * 64;
  dict.append(padded - total, ' ');
  dict.push_back('\n');
  const size_t header_length = dict.size();
  std::string out;
  out.reserve(padded + values.size() * sizeof(float));
  out.append(kMagic, kMagicSize);
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  for (size_t k = 0; k < (major == 1 ? 2u : 4u); ++k) out.push_back(static_cast<char>((header_length >> (8 * k)) & 0xff));
  out += dict;
  out.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  return out;
}

absl::Status WriteNpy(const std::string& path, absl::Span<const int64_t> shape, absl::Span<const float> values) {
  absl::StatusOr<std::string> bytes = EncodeNpy(shape, values);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", bytes.status().message()));
  }
  return apps::WriteFileAtomically(path, *bytes);
}

absl::Status WriteNpyMatrix(const std::string& path, const Eigen::Ref<const ot::RowMatrixXf>& matrix) {
  const std::vector<int64_t> shape = {matrix.rows(), matrix.cols()};
  if (matrix.outerStride() == matrix.cols() || matrix.rows() <= 1) {
    return WriteNpy(path, shape, absl::MakeConstSpan(matrix.data(), static_cast<size_t>(matrix.size())));
  }
  const ot::RowMatrixXf packed = matrix;
  return WriteNpy(path, shape, absl::MakeConstSpan(packed.data(), static_cast<size_t>(packed.size())));
}

absl::Status WriteNpyTensor(const std::string& path, const nn::Tensor& tensor) {
  if (!tensor.defined()) return absl::InvalidArgumentError(absl::StrCat(path, ": tensor is undefined"));
  const std::vector<int64_t> shape(tensor.shape().begin(), tensor.shape().end());
  return WriteNpy(path, shape, tensor.span());
}

}  // namespace otgen::eval
