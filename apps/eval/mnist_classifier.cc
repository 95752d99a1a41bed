#include "apps/eval/mnist_classifier.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "data/batching.h"
#include "data/mnist.h"
#include "nn/checkpoint.h"
#include "nn/ops.h"
#include "nn/precision.h"
#include "nn/status_macros.h"
#include "nn/tensor_math.h"
#include "optim/adam.h"

namespace otgen::eval {

namespace layers = nn::layers;
using nn::Tensor;
using nn::Var;

absl::Status MnistClassifierTrainingOptions::Validate() const {
  if (epochs < 1) return absl::InvalidArgumentError(absl::StrCat("epochs: expected >= 1, got ", epochs));
  if (batch_size < 1) return absl::InvalidArgumentError(absl::StrCat("batch_size: expected >= 1, got ", batch_size));
  if (decay_epochs < 0) return absl::InvalidArgumentError(absl::StrCat("decay_epochs: expected >= 0, got ", decay_epochs));
  if (!(decay_factor > 0)) return absl::InvalidArgumentError(absl::StrCat("decay_factor: expected > 0, got ", decay_factor));
  if (!(learning_rate > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("learning_rate: expected > 0, got ", learning_rate));
  }
  return absl::OkStatus();
}

MnistClassifier::MnistClassifier(uint64_t seed)
    : network_(std::make_unique<layers::Sequential>()),
      recorded_test_accuracy_(std::numeric_limits<double>::quiet_NaN()) {
  nn::Rng rng(seed);
  network_->Emplace<layers::Reshape>(nn::Shape{1, 28, 28});
  network_->Emplace<layers::Conv2d>(1, 32, 5, 1, 2, rng);
  network_->Emplace<layers::ReLU>();
  network_->Emplace<layers::Conv2d>(32, 32, 4, 2, 1, rng);
  network_->Emplace<layers::ReLU>();
  network_->Emplace<layers::Conv2d>(32, 64, 3, 1, 1, rng);
  network_->Emplace<layers::ReLU>();
  network_->Emplace<layers::Conv2d>(64, 64, 4, 2, 1, rng);
  network_->Emplace<layers::ReLU>();
  network_->Emplace<layers::Flatten>();
  network_->Emplace<layers::Linear>(64 * 7 * 7, kFeatureDim, rng);
  network_->Emplace<layers::ReLU>();
  head_ = std::make_unique<layers::Linear>(kFeatureDim, kNumClasses, rng);
}

absl::StatusOr<Var> MnistClassifier::Logits(const Var& images) {
  OTGEN_ASSIGN_OR_RETURN(Var features, network_->Forward(images));
  return head_->Forward(features);
}

absl::StatusOr<ClassifierOutputs> MnistClassifier::Evaluate(const Tensor& images, PixelRange range,
                                                            int64_t batch_size) {
  if (images.rank() < 2 || images.numel() != images.dim(0) * 784) {
    return absl::InvalidArgumentError(absl::StrCat("classifier input: expected [N, 1, 28, 28] or [N, 784], got ",
                                                   nn::ShapeToString(images.shape())));
  }
  nn::NoGradGuard no_grad;
  // A measuring instrument: the same features whatever precision the run trains in.
  const nn::ComputePrecisionGuard float32(nn::ComputePrecision::kFloat32);
  network_->Eval();
  head_->Eval();
  const int64_t n = images.dim(0);
  ClassifierOutputs out;
  out.features = Tensor::Empty({n, kFeatureDim});
  out.probabilities = Tensor::Empty({n, kNumClasses});
  out.predictions.resize(n);
  const Tensor flat = images.Reshape({n, 784});
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    const int64_t end = std::min(n, begin + batch_size);
    Tensor x = flat.Rows(begin, end);
    if (range == PixelRange::kSymmetric) x = nn::math::Unary(nn::math::UnaryKind::kLinear, x, 0.5f, 0.5f);
    for (float v : x.span()) {
      if (!std::isfinite(v)) return absl::InvalidArgumentError("classifier input: non-finite pixel");
    }
    OTGEN_ASSIGN_OR_RETURN(Var features, network_->Forward(Var::Constant(x)));
    OTGEN_ASSIGN_OR_RETURN(Var logits, head_->Forward(features));
    const Tensor p = nn::math::Softmax(logits.value(), 1);
    out.features.Rows(begin, end).CopyFrom(features.value());
    out.probabilities.Rows(begin, end).CopyFrom(p);
    const std::vector<int64_t> arg = nn::math::ArgMax(logits.value(), 1);
    for (int64_t i = begin; i < end; ++i) out.predictions[i] = static_cast<int>(arg[i - begin]);
  }
  return out;
}

absl::StatusOr<double> MnistClassifier::Accuracy(const data::Dataset& dataset) {
  if (!dataset.has_labels()) return absl::InvalidArgumentError("Accuracy: the dataset has no labels");
  const nn::ComputePrecisionGuard float32(nn::ComputePrecision::kFloat32);
  const int64_t n = dataset.size();
  std::vector<int64_t> all(n);
  for (int64_t i = 0; i < n; ++i) all[i] = i;
  OTGEN_ASSIGN_OR_RETURN(Tensor images, dataset.GetBatch(all));
  OTGEN_ASSIGN_OR_RETURN(ClassifierOutputs out, Evaluate(images, PixelRange::kUnit));
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) correct += (out.predictions[i] == dataset.label(i));
  return static_cast<double>(correct) / static_cast<double>(n);
}

absl::Status MnistClassifier::Save(const std::string& path, double test_accuracy) const {
  nn::CheckpointProto proto;
  nn::SaveModule(*network_, "features", &proto);
  nn::SaveModule(*head_, "head", &proto);
  (*proto.mutable_metadata())["test_accuracy"] = absl::StrCat(test_accuracy);
  (*proto.mutable_metadata())["architecture"] = "otgen mnist classifier v1";
  return nn::WriteCheckpoint(path, proto);
}

absl::Status MnistClassifier::Load(const std::string& path) {
  OTGEN_ASSIGN_OR_RETURN(nn::CheckpointProto proto, nn::ReadCheckpoint(path));
  auto arch = proto.metadata().find("architecture");
  if (arch == proto.metadata().end() || arch->second != "otgen mnist classifier v1") {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not an otgen MNIST classifier (v1) checkpoint"));
  }
  OTGEN_RETURN_IF_ERROR(nn::LoadModule(proto, "features", *network_));
  OTGEN_RETURN_IF_ERROR(nn::LoadModule(proto, "head", *head_));
  auto acc = proto.metadata().find("test_accuracy");
  double value = std::numeric_limits<double>::quiet_NaN();
  if (acc != proto.metadata().end()) (void)absl::SimpleAtod(acc->second, &value);
  recorded_test_accuracy_ = value;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<MnistClassifier>> TrainMnistClassifier(const data::Dataset& train,
                                                                      const MnistClassifierTrainingOptions& options) {
  OTGEN_RETURN_IF_ERROR(options.Validate());
  if (!train.has_labels() || train.example_numel() != 784) {
    return absl::InvalidArgumentError("TrainMnistClassifier: expected labelled 28x28 images");
  }
  // The cached classifier is the same whatever precision the caller runs in.
  const nn::ComputePrecisionGuard float32(nn::ComputePrecision::kFloat32);
  auto classifier = std::make_unique<MnistClassifier>(options.seed);
  std::vector<Var> params = classifier->network().Parameters();
  for (const Var& p : classifier->head_->Parameters()) params.push_back(p);
  OTGEN_ASSIGN_OR_RETURN(auto adam, optim::Adam::Create(params, {.lr = options.learning_rate}));
  OTGEN_ASSIGN_OR_RETURN(data::EpochBatcher batcher,
                         data::EpochBatcher::Create(train.size(), {.batch_size = options.batch_size},
                                                    nn::Rng(options.seed, /*stream=*/1)));
  const int64_t steps = options.epochs * batcher.batches_per_epoch();
  classifier->network().Train();
  classifier->head_->Train();
  const absl::Time start = absl::Now();
  Tensor batch;
  double running_loss = 0;
  for (int64_t step = 1; step <= steps; ++step) {
    if (batcher.epoch() >= options.epochs - options.decay_epochs) {
      adam->set_learning_rate(options.learning_rate * options.decay_factor);
    }
    absl::Span<const int64_t> idx = batcher.Next();
    OTGEN_RETURN_IF_ERROR(train.CopyBatch(idx, &batch));
    Tensor one_hot = Tensor::Zeros({static_cast<int64_t>(idx.size()), MnistClassifier::kNumClasses});
    for (size_t i = 0; i < idx.size(); ++i) one_hot.at({static_cast<int64_t>(i), train.label(idx[i])}) = 1.0f;
    OTGEN_ASSIGN_OR_RETURN(Var logits, classifier->Logits(Var::Constant(batch)));
    // Cross-entropy: -mean_i log softmax(logits)_{i, y_i}.
    Var loss = nn::Neg(nn::MulScalar(nn::SumAll(nn::Mul(nn::LogSoftmax(logits, 1), Var::Constant(one_hot))),
                                     1.0f / static_cast<float>(idx.size())));
    adam->ZeroGrad();
    nn::Backward(loss);
    adam->Step();
    running_loss = step == 1 ? loss.item() : 0.98 * running_loss + 0.02 * loss.item();
    if (options.progress && (step % 50 == 0 || step == steps)) {
      const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
      std::fprintf(stderr, "\rtraining MNIST classifier: step %lld/%lld, epoch %lld, loss %.4f, %.0fs elapsed, ETA %.0fs ",
                   static_cast<long long>(step), static_cast<long long>(steps),
                   static_cast<long long>(batcher.epoch()), running_loss, elapsed,
                   elapsed / step * (steps - step));
      std::fflush(stderr);
    }
  }
  if (options.progress) std::fprintf(stderr, "\n");
  return classifier;
}

std::string DefaultClassifierDirectory() {
  if (const char* d = std::getenv("OTGEN_CACHE_DIR"); d != nullptr && *d) return d;
  if (const char* d = std::getenv("XDG_CACHE_HOME"); d != nullptr && *d) return absl::StrCat(d, "/otgen");
  if (const char* d = std::getenv("HOME"); d != nullptr && *d) return absl::StrCat(d, "/.cache/otgen");
  return ".otgen_cache";
}

std::string ClassifierPath(const std::string& directory) { return absl::StrCat(directory, "/mnist_classifier.pb"); }

absl::StatusOr<std::unique_ptr<MnistClassifier>> LoadOrTrainMnistClassifier(
    const std::string& directory, const std::string& mnist_dir, const MnistClassifierTrainingOptions& options) {
  const std::string path = ClassifierPath(directory);
  auto classifier = std::make_unique<MnistClassifier>(options.seed);
  absl::Status loaded = classifier->Load(path);
  if (loaded.ok()) return classifier;
  if (!absl::IsNotFound(loaded)) return loaded;
  std::fprintf(stderr, "no cached MNIST classifier at %s: training one (seed %llu)\n", path.c_str(),
               static_cast<unsigned long long>(options.seed));
  OTGEN_ASSIGN_OR_RETURN(data::InMemoryDataset train, data::LoadMnist(mnist_dir, data::Split::kTrain, {}));
  OTGEN_ASSIGN_OR_RETURN(data::InMemoryDataset test, data::LoadMnist(mnist_dir, data::Split::kTest, {}));
  OTGEN_ASSIGN_OR_RETURN(classifier, TrainMnistClassifier(train, options));
  OTGEN_ASSIGN_OR_RETURN(double accuracy, classifier->Accuracy(test));
  std::fprintf(stderr, "MNIST classifier test accuracy: %.2f%%\n", 100 * accuracy);
  if (accuracy < 0.99) {
    return absl::InternalError(absl::StrCat("the trained MNIST classifier reached ", 100 * accuracy,
                                            "% test accuracy, below the required 99.0%; not caching it"));
  }
  for (size_t pos = directory.find('/', 1); ; pos = directory.find('/', pos + 1)) {
    const std::string prefix = directory.substr(0, pos);
    if (mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return absl::PermissionDeniedError(absl::StrCat("cannot create ", prefix, ": ", std::strerror(errno)));
    }
    if (pos == std::string::npos) break;
  }
  OTGEN_RETURN_IF_ERROR(classifier->Save(path, accuracy));
  OTGEN_RETURN_IF_ERROR(classifier->Load(path));
  return classifier;
}

}  // namespace otgen::eval
