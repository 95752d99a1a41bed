#include "nn/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <set>

#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "nn/status_macros.h"

namespace otgen::nn {

// ---- CRC32C ------------------------------------------------------------------------------------

namespace internal {
namespace {

constexpr uint32_t kCrc32cPolynomial = 0x82F63B78u;  // reflected Castagnoli polynomial

constexpr std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kCrc32cPolynomial : c >> 1;
    table[i] = c;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kCrcTable = MakeCrcTable();

}  // namespace

uint32_t Crc32cPortable(absl::string_view data, uint32_t crc) {
  uint32_t c = ~crc;
  for (unsigned char byte : data) c = kCrcTable[(c ^ byte) & 0xFF] ^ (c >> 8);
  return ~c;
}

uint32_t Crc32c(absl::string_view data, uint32_t crc) {
#if defined(__SSE4_2__)
  uint64_t c = static_cast<uint32_t>(~crc);
  const char* p = data.data();
  size_t n = data.size();
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = _mm_crc32_u64(c, word);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n > 0) {
    c32 = _mm_crc32_u8(c32, static_cast<unsigned char>(*p));
    ++p;
    --n;
  }
  return ~c32;
#else
  return Crc32cPortable(data, crc);
#endif
}

}  // namespace internal

namespace {

// ---- File format ---------------------------------------------------------------------------------

constexpr char kMagic[8] = {'O', 'T', 'G', 'E', 'N', 'C', 'K', 'P'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderSize = 24;

void PutU32(uint32_t v, char* out) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}
void PutU64(uint64_t v, char* out) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}
uint32_t GetU32(const char* in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  return v;
}
uint64_t GetU64(const char* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  return v;
}

// The checksum covers the version, the length and the payload.
uint32_t Checksum(const char* header, absl::string_view payload) {
  uint32_t crc = internal::Crc32c(absl::string_view(header + 8, 4));
  crc = internal::Crc32c(absl::string_view(header + 16, 8), crc);
  return internal::Crc32c(payload, crc);
}

absl::Status ErrnoError(int error, const std::string& what) {
  const std::string message = absl::StrCat(what, ": ", std::strerror(error));
  switch (error) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status WriteAll(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, absl::StrCat("writing ", path));
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

std::string Directory(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// ---- Tensors -------------------------------------------------------------------------------------

absl::StatusOr<Tensor> TensorFromProto(const TensorProto& proto) {
  Shape shape(proto.shape().begin(), proto.shape().end());
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) {
      return absl::DataLossError(
          absl::StrCat("checkpoint tensor ", proto.name(), ": negative dimension in shape ", ShapeToString(shape)));
    }
    n *= d;
  }
  if (n != proto.data_size()) {
    return absl::DataLossError(absl::StrCat("checkpoint tensor ", proto.name(), ": shape ", ShapeToString(shape),
                                            " needs ", n, " values, found ", proto.data_size()));
  }
  Tensor t = Tensor::Empty(shape);
  if (n > 0) std::memcpy(t.data(), proto.data().data(), sizeof(float) * static_cast<size_t>(n));
  return t;
}

void FillTensorProto(const std::string& name, const Tensor& tensor, TensorProto* proto) {
  proto->set_name(name);
  for (int64_t d : tensor.shape()) proto->add_shape(d);
  proto->mutable_data()->Resize(static_cast<int>(tensor.numel()), 0.0f);
  if (tensor.numel() > 0) {
    std::memcpy(proto->mutable_data()->mutable_data(), tensor.data(), sizeof(float) * tensor.numel());
  }
}

std::string ModuleTensorName(const std::string& key, const std::string& name) {
  return key.empty() ? name : absl::StrCat(key, "/", name);
}

// A checked module load: destination handles and the checkpoint tensors to copy into them.
struct StagedCopy {
  Tensor destination;
  Tensor source;
};

absl::StatusOr<std::vector<StagedCopy>> StageModule(const CheckpointProto& checkpoint, const std::string& key,
                                                    const Module& module, std::set<std::string>* consumed) {
  const std::string prefix = key.empty() ? "" : key + "/";
  std::map<std::string, const TensorProto*> available;
  for (const TensorProto& t : checkpoint.tensors()) {
    if (t.name().compare(0, prefix.size(), prefix) != 0) continue;
    if (key.empty() && t.name().find('/') != std::string::npos) continue;
    if (!available.emplace(t.name(), &t).second) {
      return absl::DataLossError(absl::StrCat("checkpoint: duplicate tensor ", t.name()));
    }
  }
  std::vector<std::pair<std::string, Tensor>> expected;
  for (auto& [name, p] : module.NamedParameters()) expected.emplace_back(name, p.value());
  for (auto& [name, b] : module.NamedBuffers()) expected.emplace_back(name, b);
  std::vector<StagedCopy> staged;
  for (const auto& [name, destination] : expected) {
    const std::string full = ModuleTensorName(key, name);
    auto it = available.find(full);
    if (it == available.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("checkpoint: missing tensor ", full, " for module ", module.type(), " '", key, "'"));
    }
    const Shape saved(it->second->shape().begin(), it->second->shape().end());
    if (saved != destination.shape()) {
      return absl::InvalidArgumentError(absl::StrCat("checkpoint: tensor ", full, " has shape ", ShapeToString(saved),
                                                     ", module expects ", ShapeToString(destination.shape())));
    }
    OTGEN_ASSIGN_OR_RETURN(Tensor source, TensorFromProto(*it->second));
    staged.push_back({destination, std::move(source)});
    available.erase(it);
  }
  if (!available.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint: unexpected tensor ", available.begin()->first,
                                                   " (module ", module.type(), " '", key, "' has no such entry)"));
  }
  if (consumed != nullptr) {
    for (const auto& [name, t] : expected) consumed->insert(ModuleTensorName(key, name));
  }
  return staged;
}

void Commit(std::vector<StagedCopy>& staged) {
  for (StagedCopy& c : staged) c.destination.CopyFrom(c.source);
}

const OptimizerStateProto* FindOptimizer(const CheckpointProto& checkpoint, const std::string& key) {
  for (const OptimizerStateProto& o : checkpoint.optimizers()) {
    if (o.name() == key) return &o;
  }
  return nullptr;
}

absl::StatusOr<optim::OptimizerState> OptimizerStateFromProto(const OptimizerStateProto& proto) {
  optim::OptimizerState state;
  state.type = proto.type();
  for (const TensorProto& t : proto.tensors()) {
    OTGEN_ASSIGN_OR_RETURN(Tensor value, TensorFromProto(t));
    state.tensors.emplace_back(t.name(), std::move(value));
  }
  // Sorted for a deterministic order (the proto map has none).
  std::map<std::string, int64_t> counters(proto.counters().begin(), proto.counters().end());
  state.counters.assign(counters.begin(), counters.end());
  return state;
}

absl::StatusOr<Rng::State> StageRng(const CheckpointProto& checkpoint, const std::string& key) {
  for (const RngStateProto& r : checkpoint.rngs()) {
    if (r.name() != key) continue;
    if (r.words_size() != 4) {
      return absl::DataLossError(
          absl::StrCat("checkpoint: RNG state ", key, " has ", r.words_size(), " words, expected 4"));
    }
    Rng::State state;
    for (int i = 0; i < 4; ++i) state.words[i] = r.words(i);
    state.has_cached_normal = r.has_cached_normal();
    state.cached_normal = r.cached_normal();
    return state;
  }
  return absl::NotFoundError(absl::StrCat("checkpoint: no RNG state named ", key));
}

}  // namespace

// ---- Files ------------------------------------------------------------------------------------

absl::Status WriteCheckpoint(const std::string& path, const CheckpointProto& checkpoint) {
  const size_t size = checkpoint.ByteSizeLong();
  if (size > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint ", path, ": payload of ", size, " bytes exceeds the 2 GiB protobuf limit"));
  }
  std::string file(kHeaderSize, '\0');
  {
    google::protobuf::io::StringOutputStream stream(&file);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    if (!checkpoint.SerializeToCodedStream(&coded)) {
      return absl::InternalError(absl::StrCat("checkpoint ", path, ": serialization failed"));
    }
  }
  const absl::string_view payload(file.data() + kHeaderSize, file.size() - kHeaderSize);
  std::memcpy(file.data(), kMagic, 8);
  PutU32(kVersion, file.data() + 8);
  PutU64(payload.size(), file.data() + 16);
  PutU32(Checksum(file.data(), payload), file.data() + 12);

  std::string temp = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) return ErrnoError(errno, absl::StrCat("creating a temporary file for ", path));
  absl::Status status = WriteAll(fd, file.data(), file.size(), temp);
  if (status.ok() && ::fchmod(fd, 0644) != 0) status = ErrnoError(errno, absl::StrCat("chmod ", temp));
  if (status.ok() && ::fsync(fd) != 0) status = ErrnoError(errno, absl::StrCat("fsync ", temp));
  if (::close(fd) != 0 && status.ok()) status = ErrnoError(errno, absl::StrCat("closing ", temp));
  if (status.ok() && ::rename(temp.c_str(), path.c_str()) != 0) {
    status = ErrnoError(errno, absl::StrCat("renaming ", temp, " to ", path));
  }
  if (!status.ok()) {
    ::unlink(temp.c_str());
    return status;
  }
  // Make the rename durable.
  const std::string dir = Directory(path);
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return ErrnoError(errno, absl::StrCat("opening directory ", dir));
  if (::fsync(dir_fd) != 0) status = ErrnoError(errno, absl::StrCat("fsync directory ", dir));
  ::close(dir_fd);
  return status;
}

absl::StatusOr<CheckpointProto> ReadCheckpoint(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, absl::StrCat("checkpoint ", path));
  std::string file;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      return ErrnoError(error, absl::StrCat("reading checkpoint ", path));
    }
    if (n == 0) break;
    file.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);

  if (file.size() < kHeaderSize || std::memcmp(file.data(), kMagic, 8) != 0) {
    if (file.size() < kHeaderSize && file.size() >= 8 && std::memcmp(file.data(), kMagic, 8) == 0) {
      return absl::DataLossError(absl::StrCat("checkpoint ", path, ": truncated header (", file.size(), " bytes)"));
    }
    return absl::DataLossError(absl::StrCat("checkpoint ", path, ": not an otgen checkpoint (bad magic)"));
  }
  const uint32_t version = GetU32(file.data() + 8);
  const uint32_t stored_crc = GetU32(file.data() + 12);
  const uint64_t length = GetU64(file.data() + 16);
  const uint64_t actual = file.size() - kHeaderSize;
  if (length != actual) {
    return absl::DataLossError(absl::StrCat("checkpoint ", path, ": header announces ", length,
                                            " payload bytes, file has ", actual,
                                            actual < length ? " (truncated)" : " (corrupted)"));
  }
  const absl::string_view payload(file.data() + kHeaderSize, actual);
  const uint32_t crc = Checksum(file.data(), payload);
  if (crc != stored_crc) {
    return absl::DataLossError(absl::StrCat("checkpoint ", path, ": checksum mismatch (stored ", stored_crc,
                                            ", computed ", crc, "): the file is corrupted"));
  }
  if (version != kVersion) {
    return absl::DataLossError(
        absl::StrCat("checkpoint ", path, ": unsupported format version ", version, " (this build reads ", kVersion, ")"));
  }
  CheckpointProto checkpoint;
  if (!checkpoint.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return absl::DataLossError(absl::StrCat("checkpoint ", path, ": payload does not parse"));
  }
  for (const TensorProto& t : checkpoint.tensors()) OTGEN_RETURN_IF_ERROR(TensorFromProto(t).status());
  return checkpoint;
}

// ---- Pieces -----------------------------------------------------------------------------------

void AddTensor(const std::string& name, const Tensor& tensor, CheckpointProto* checkpoint) {
  FillTensorProto(name, tensor, checkpoint->add_tensors());
}

absl::StatusOr<Tensor> FindTensor(const CheckpointProto& checkpoint, const std::string& name) {
  for (const TensorProto& t : checkpoint.tensors()) {
    if (t.name() == name) return TensorFromProto(t);
  }
  return absl::NotFoundError(absl::StrCat("checkpoint: no tensor named ", name));
}

void SaveModule(const Module& module, const std::string& key, CheckpointProto* checkpoint) {
  for (const auto& [name, p] : module.NamedParameters()) AddTensor(ModuleTensorName(key, name), p.value(), checkpoint);
  for (const auto& [name, b] : module.NamedBuffers()) AddTensor(ModuleTensorName(key, name), b, checkpoint);
}

absl::Status LoadModule(const CheckpointProto& checkpoint, const std::string& key, Module& module) {
  OTGEN_ASSIGN_OR_RETURN(std::vector<StagedCopy> staged, StageModule(checkpoint, key, module, nullptr));
  Commit(staged);
  return absl::OkStatus();
}

void SaveOptimizer(const optim::Optimizer& optimizer, const std::string& key, CheckpointProto* checkpoint) {
  const optim::OptimizerState state = optimizer.ExportState();
  OptimizerStateProto* proto = checkpoint->add_optimizers();
  proto->set_name(key);
  proto->set_type(state.type);
  for (const auto& [name, t] : state.tensors) FillTensorProto(name, t, proto->add_tensors());
  for (const auto& [name, c] : state.counters) (*proto->mutable_counters())[name] = c;
}

absl::Status LoadOptimizer(const CheckpointProto& checkpoint, const std::string& key, optim::Optimizer& optimizer) {
  const OptimizerStateProto* proto = FindOptimizer(checkpoint, key);
  if (proto == nullptr) return absl::NotFoundError(absl::StrCat("checkpoint: no optimizer state named ", key));
  OTGEN_ASSIGN_OR_RETURN(const optim::OptimizerState state, OptimizerStateFromProto(*proto));
  const absl::Status status = optimizer.ImportState(state);
  if (!status.ok()) return absl::Status(status.code(), absl::StrCat("optimizer ", key, ": ", status.message()));
  return absl::OkStatus();
}

void SaveRng(const Rng& rng, const std::string& key, CheckpointProto* checkpoint) {
  const Rng::State state = rng.GetState();
  RngStateProto* proto = checkpoint->add_rngs();
  proto->set_name(key);
  for (uint64_t w : state.words) proto->add_words(w);
  proto->set_has_cached_normal(state.has_cached_normal);
  proto->set_cached_normal(state.cached_normal);
}

absl::Status LoadRng(const CheckpointProto& checkpoint, const std::string& key, Rng& rng) {
  OTGEN_ASSIGN_OR_RETURN(const Rng::State state, StageRng(checkpoint, key));
  rng.SetState(state);
  return absl::OkStatus();
}

// ---- Whole training runs ----------------------------------------------------------------------

absl::Status SaveTrainingState(const std::string& path, const TrainingState& state) {
  CheckpointProto checkpoint;
  checkpoint.set_step(state.step);
  for (const auto& [key, module] : state.modules) SaveModule(*module, key, &checkpoint);
  for (const auto& [name, tensor] : state.tensors) AddTensor(name, *tensor, &checkpoint);
  for (const auto& [key, map] : state.tensor_maps) {
    for (const auto& [name, tensor] : *map) AddTensor(absl::StrCat(key, "/", name), tensor, &checkpoint);
  }
  for (const auto& [key, optimizer] : state.optimizers) SaveOptimizer(*optimizer, key, &checkpoint);
  for (const auto& [key, rng] : state.rngs) SaveRng(*rng, key, &checkpoint);
  for (const auto& [k, v] : state.metadata) (*checkpoint.mutable_metadata())[k] = v;
  return WriteCheckpoint(path, checkpoint);
}

absl::Status RestoreTrainingState(const std::string& path, TrainingState& state) {
  OTGEN_ASSIGN_OR_RETURN(const CheckpointProto checkpoint, ReadCheckpoint(path));
  const auto in_file = [&path](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
  };
  // 1. Check everything that can be checked without side effects.
  std::set<std::string> consumed;
  std::vector<StagedCopy> copies;
  for (const auto& [key, module] : state.modules) {
    absl::StatusOr<std::vector<StagedCopy>> staged = StageModule(checkpoint, key, *module, &consumed);
    if (!staged.ok()) return in_file(staged.status());
    for (StagedCopy& c : *staged) copies.push_back(std::move(c));
  }
  for (const auto& [name, tensor] : state.tensors) {
    absl::StatusOr<Tensor> saved = FindTensor(checkpoint, name);
    if (!saved.ok()) return in_file(saved.status());
    if (saved->shape() != tensor->shape()) {
      return in_file(absl::InvalidArgumentError(absl::StrCat("checkpoint: tensor ", name, " has shape ",
                                                             ShapeToString(saved->shape()), ", expected ",
                                                             ShapeToString(tensor->shape()))));
    }
    if (!consumed.insert(name).second) {
      return in_file(absl::InvalidArgumentError(absl::StrCat("checkpoint: tensor ", name, " is listed twice")));
    }
    copies.push_back({*tensor, *std::move(saved)});
  }
  std::vector<std::map<std::string, Tensor>> maps(state.tensor_maps.size());
  for (size_t k = 0; k < state.tensor_maps.size(); ++k) {
    const std::string prefix = state.tensor_maps[k].first + "/";
    for (const TensorProto& t : checkpoint.tensors()) {
      if (t.name().compare(0, prefix.size(), prefix) != 0 || consumed.count(t.name())) continue;
      absl::StatusOr<Tensor> value = TensorFromProto(t);
      if (!value.ok()) return in_file(value.status());
      maps[k][t.name().substr(prefix.size())] = *std::move(value);
      consumed.insert(t.name());
    }
  }
  for (const TensorProto& t : checkpoint.tensors()) {
    if (!consumed.count(t.name())) {
      return in_file(absl::InvalidArgumentError(
          absl::StrCat("checkpoint: unexpected tensor ", t.name(), " (no module or tensor of the run has it)")));
    }
  }
  std::vector<Rng::State> rng_states;
  for (const auto& [key, rng] : state.rngs) {
    absl::StatusOr<Rng::State> s = StageRng(checkpoint, key);
    if (!s.ok()) return in_file(s.status());
    rng_states.push_back(*s);
  }
  if (checkpoint.rngs_size() != static_cast<int>(state.rngs.size())) {
    return in_file(absl::InvalidArgumentError(absl::StrCat("checkpoint: holds ", checkpoint.rngs_size(),
                                                           " RNG states, the run has ", state.rngs.size())));
  }
  std::vector<optim::OptimizerState> optimizer_states;
  for (const auto& [key, optimizer] : state.optimizers) {
    const OptimizerStateProto* proto = FindOptimizer(checkpoint, key);
    if (proto == nullptr) {
      return in_file(absl::NotFoundError(absl::StrCat("checkpoint: no optimizer state named ", key)));
    }
    absl::StatusOr<optim::OptimizerState> s = OptimizerStateFromProto(*proto);
    if (!s.ok()) return in_file(s.status());
    optimizer_states.push_back(*std::move(s));
  }
  if (checkpoint.optimizers_size() != static_cast<int>(state.optimizers.size())) {
    return in_file(absl::InvalidArgumentError(absl::StrCat("checkpoint: holds ", checkpoint.optimizers_size(),
                                                           " optimizer states, the run has ",
                                                           state.optimizers.size())));
  }
  // 2. Optimizers check their state themselves on import: roll back if one refuses.
  std::vector<optim::OptimizerState> previous;
  for (size_t i = 0; i < state.optimizers.size(); ++i) {
    optim::Optimizer* optimizer = state.optimizers[i].second;
    previous.push_back(optimizer->ExportState());
    const absl::Status s = optimizer->ImportState(optimizer_states[i]);
    if (!s.ok()) {
      for (size_t j = 0; j < i; ++j) {
        const absl::Status undo = state.optimizers[j].second->ImportState(previous[j]);
        OTGEN_CHECK(undo.ok(), undo.ToString());
      }
      return in_file(absl::Status(s.code(), absl::StrCat("optimizer ", state.optimizers[i].first, ": ", s.message())));
    }
  }
  // 3. Commit.
  Commit(copies);
  for (size_t k = 0; k < state.tensor_maps.size(); ++k) *state.tensor_maps[k].second = std::move(maps[k]);
  for (size_t i = 0; i < state.rngs.size(); ++i) state.rngs[i].second->SetState(rng_states[i]);
  state.step = checkpoint.step();
  state.metadata.clear();
  for (const auto& [k, v] : checkpoint.metadata()) state.metadata[k] = v;
  return absl::OkStatus();
}

}  // namespace otgen::nn
