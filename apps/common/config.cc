#include "apps/common/config.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "apps/common/file_io.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace otgen::apps {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

class CollectErrors : public google::protobuf::io::ErrorCollector {
 public:
  explicit CollectErrors(std::string source) : source_(std::move(source)) {}
  void AddError(int line, google::protobuf::io::ColumnNumber column, const std::string& message) override {
    errors_.push_back(absl::StrCat(source_, ":", line + 1, ":", column + 1, ": ", message));
  }
  void AddWarning(int line, google::protobuf::io::ColumnNumber column, const std::string& message) override {
    errors_.push_back(absl::StrCat(source_, ":", line + 1, ":", column + 1, ": warning: ", message));
  }
  std::string Joined() const { return absl::StrJoin(errors_, "; "); }

 private:
  std::string source_;
  std::vector<std::string> errors_;
};

// Sets every unset optional field to its default, recursively, so that printing shows the
// complete effective configuration.
void MaterializeDefaults(Message* m) {
  const Descriptor* d = m->GetDescriptor();
  const Reflection* r = m->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_repeated()) {
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        for (int k = 0; k < r->FieldSize(*m, f); ++k) MaterializeDefaults(r->MutableRepeatedMessage(m, f, k));
      }
      continue;
    }
    if (f->containing_oneof() != nullptr && !r->HasField(*m, f)) continue;
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      MaterializeDefaults(r->MutableMessage(m, f));
      continue;
    }
    if (!f->has_presence() || r->HasField(*m, f)) continue;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: r->SetInt32(m, f, f->default_value_int32()); break;
      case FieldDescriptor::CPPTYPE_INT64: r->SetInt64(m, f, f->default_value_int64()); break;
      case FieldDescriptor::CPPTYPE_UINT32: r->SetUInt32(m, f, f->default_value_uint32()); break;
      case FieldDescriptor::CPPTYPE_UINT64: r->SetUInt64(m, f, f->default_value_uint64()); break;
      case FieldDescriptor::CPPTYPE_FLOAT: r->SetFloat(m, f, f->default_value_float()); break;
      case FieldDescriptor::CPPTYPE_DOUBLE: r->SetDouble(m, f, f->default_value_double()); break;
      case FieldDescriptor::CPPTYPE_BOOL: r->SetBool(m, f, f->default_value_bool()); break;
      case FieldDescriptor::CPPTYPE_STRING: r->SetString(m, f, f->default_value_string()); break;
      case FieldDescriptor::CPPTYPE_ENUM: r->SetEnum(m, f, f->default_value_enum()); break;
      case FieldDescriptor::CPPTYPE_MESSAGE: break;
    }
  }
}

absl::StatusOr<Message*> MutableSubMessage(Message* config, const char* name, const Descriptor* expected) {
  const FieldDescriptor* f = config->GetDescriptor()->FindFieldByName(name);
  if (f == nullptr || f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || f->is_repeated() ||
      f->message_type() != expected) {
    return absl::InvalidArgumentError(absl::StrCat("config message ", config->GetDescriptor()->full_name(),
                                                   " has no field '", name, "' of type ", expected->full_name()));
  }
  return config->GetReflection()->MutableMessage(config, f);
}

template <typename T>
absl::StatusOr<T> GetSubMessage(const Message& config, const char* name) {
  const FieldDescriptor* f = config.GetDescriptor()->FindFieldByName(name);
  if (f == nullptr || f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || f->is_repeated() ||
      f->message_type() != T::descriptor()) {
    return absl::InvalidArgumentError(absl::StrCat("config message ", config.GetDescriptor()->full_name(),
                                                   " has no field '", name, "' of type ",
                                                   T::descriptor()->full_name()));
  }
  T result;
  result.CopyFrom(config.GetReflection()->GetMessage(config, f));
  return result;
}

}  // namespace

absl::Status ParseConfig(const std::string& text, const std::string& source, Message* config) {
  config->Clear();
  CollectErrors errors(source);
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, config)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot parse config ", source, " as ",
                                                   config->GetDescriptor()->full_name(), ": ", errors.Joined()));
  }
  return absl::OkStatus();
}

absl::Status LoadConfig(const std::string& path, Message* config) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("config file ", path, ": ", std::strerror(errno)));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ParseConfig(buffer.str(), path, config);
}

absl::Status ApplyOverrides(const ConfigOverrides& o, Message* config) {
  absl::StatusOr<Message*> run = MutableSubMessage(config, "run", RunConfig::descriptor());
  if (!run.ok()) return run.status();
  absl::StatusOr<Message*> schedule = MutableSubMessage(config, "schedule", ScheduleConfig::descriptor());
  if (!schedule.ok()) return schedule.status();
  auto* r = static_cast<RunConfig*>(*run);
  auto* s = static_cast<ScheduleConfig*>(*schedule);
  if (o.output_dir) r->set_output_dir(*o.output_dir);
  if (o.seed) r->set_seed(*o.seed);
  if (o.threads) r->set_threads(*o.threads);
  if (o.precision) {
    absl::StatusOr<nn::ComputePrecision> p = nn::ParseComputePrecision(*o.precision);
    if (!p.ok()) return absl::InvalidArgumentError(absl::StrCat("--precision: ", p.status().message()));
    r->set_precision(*p == nn::ComputePrecision::kBFloat16 ? RunConfig::BFLOAT16 : RunConfig::FLOAT32);
  }
  if (o.steps) s->set_steps(*o.steps);
  return absl::OkStatus();
}

nn::ComputePrecision ComputePrecisionOf(const RunConfig& run) {
  return run.precision() == RunConfig::BFLOAT16 ? nn::ComputePrecision::kBFloat16 : nn::ComputePrecision::kFloat32;
}

absl::StatusOr<RunConfig> GetRunConfig(const Message& config) { return GetSubMessage<RunConfig>(config, "run"); }

absl::StatusOr<ScheduleConfig> GetScheduleConfig(const Message& config) {
  return GetSubMessage<ScheduleConfig>(config, "schedule");
}

absl::Status ValidateCommon(const Message& config) {
  absl::StatusOr<RunConfig> run = GetRunConfig(config);
  if (!run.ok()) return run.status();
  absl::StatusOr<ScheduleConfig> s = GetScheduleConfig(config);
  if (!s.ok()) return s.status();
  if (run->output_dir().empty()) return absl::InvalidArgumentError("run.output_dir: expected a non-empty path");
  if (run->threads() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("run.threads: expected >= 0 (0 = all cores), got ", run->threads()));
  }
  if (run->precision() == RunConfig::BFLOAT16 && !nn::NativeBFloat16Available()) {
    return absl::InvalidArgumentError(
        "run.precision: BFLOAT16 needs a CPU with native bf16 dot products (AVX512_BF16 or AMX), which this one "
        "lacks; use FLOAT32");
  }
  struct Field {
    const char* name;
    int64_t value;
  };
  for (const Field& f : {Field{"schedule.steps", s->steps()}, Field{"schedule.checkpoint_every", s->checkpoint_every()},
                         Field{"schedule.sample_every", s->sample_every()}, Field{"schedule.eval_every", s->eval_every()},
                         Field{"schedule.keep_checkpoints", s->keep_checkpoints()}}) {
    if (f.value < 0) return absl::InvalidArgumentError(absl::StrCat(f.name, ": expected >= 0, got ", f.value));
  }
  if (s->log_every() <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("schedule.log_every: expected >= 1, got ", s->log_every()));
  }
  return absl::OkStatus();
}

std::string ConfigToText(const Message& config) {
  std::unique_ptr<Message> copy(config.New());
  copy->CopyFrom(config);
  MaterializeDefaults(copy.get());
  std::string text;
  google::protobuf::TextFormat::PrintToString(*copy, &text);
  return text;
}

absl::Status WriteConfig(const std::string& directory, const Message& config) {
  return WriteFileAtomically(absl::StrCat(directory, "/config.pbtxt"),
                             absl::StrCat("# proto-message: ", config.GetDescriptor()->full_name(), "\n",
                                          ConfigToText(config)));
}

absl::Status MakeDirectories(const std::string& directory) {
  if (directory.empty()) return absl::InvalidArgumentError("empty directory name");
  std::string partial;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = directory.find('/', pos + 1);
    partial = directory.substr(0, pos);
    if (partial.empty()) continue;
    if (mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, "create directory", partial);
    }
  }
  struct stat st;
  if (stat(directory.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(directory, " exists and is not a directory"));
  }
  return absl::OkStatus();
}

}  // namespace otgen::apps
