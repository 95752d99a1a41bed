#include "apps/wgan_gp/gan_io.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "apps/common/app_config.h"
#include "apps/eval/mode_coverage.h"
#include "apps/eval/npy.h"
#include "apps/eval/plot.h"
#include "data/cifar10.h"
#include "data/mnist.h"
#include "data/samplers.h"
#include "nn/autograd.h"
#include "nn/status_macros.h"
#include "ot/cost.h"
#include "ot/sinkhorn.h"
#include "ot/types.h"

namespace otgen::apps::gan {
namespace {

constexpr char kMnist[] = "mnist";
constexpr char kCifar10[] = "cifar10";

bool IsImageSet(const std::string& name) { return name == kMnist || name == kCifar10; }

absl::Status Invalid(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

// The true means of a Gaussian-mixture data set as a k x 2 matrix (0 x 2 otherwise).
ot::RowMatrixXf MixtureMeans(const data::Synthetic2d* synthetic) {
  const data::GaussianMixture2d* mix = synthetic == nullptr ? nullptr : synthetic->mixture();
  if (mix == nullptr) return ot::RowMatrixXf(0, 2);
  ot::RowMatrixXf means(static_cast<Eigen::Index>(mix->means.size()), 2);
  for (size_t k = 0; k < mix->means.size(); ++k) {
    means(k, 0) = static_cast<float>(mix->means[k][0]);
    means(k, 1) = static_cast<float>(mix->means[k][1]);
  }
  return means;
}

Eigen::Map<const ot::RowMatrixXf> AsMatrix(const nn::Tensor& t) {
  return Eigen::Map<const ot::RowMatrixXf>(t.data(), t.dim(0), t.numel() / std::max<int64_t>(t.dim(0), 1));
}

}  // namespace

std::vector<std::string> GanDatasetNames() {
  return {"grid25", "grid25_wgangp", "ring8", "ring8_wgangp", "swissroll", kMnist, kCifar10};
}

absl::Status ValidateGanDataConfig(const GanDataConfig& config, const std::string& field) {
  const std::vector<std::string> names = GanDatasetNames();
  if (std::find(names.begin(), names.end(), config.dataset()) == names.end()) {
    return Invalid(field + ".dataset",
                   absl::StrCat("expected one of ", absl::StrJoin(names, ", "), "; got '", config.dataset(), "'"));
  }
  if (config.batch_size() < 2) {
    return Invalid(field + ".batch_size", absl::StrCat("expected >= 2, got ", config.batch_size()));
  }
  if (config.dataset() == kCifar10 && config.directory().empty() && config.files_size() == 0) {
    return Invalid(field + ".directory",
                   "cifar10 needs the folder of the binary version (cifar-10-batches-bin) or `files`");
  }
  if (config.dataset() != kCifar10 && config.files_size() > 0) {
    return Invalid(field + ".files", "only used by the cifar10 data set");
  }
  if (!IsImageSet(config.dataset()) && !config.directory().empty()) {
    return Invalid(field + ".directory", absl::StrCat("not used by the 2-D set '", config.dataset(), "'"));
  }
  return absl::OkStatus();
}

absl::Status ValidateNoiseConfig(const NoiseConfig& config, const std::string& field) {
  if (config.dim() < 1) return Invalid(field + ".dim", absl::StrCat("expected >= 1, got ", config.dim()));
  return absl::OkStatus();
}

absl::Status ValidateGanEvalConfig(const GanEvalConfig& config, const std::string& field) {
  if (config.num_samples() < 0) {
    return Invalid(field + ".num_samples", absl::StrCat("expected >= 0 (0: the protocol's size), got ",
                                                        config.num_samples()));
  }
  if (config.grid_images() < 1) {
    return Invalid(field + ".grid_images", absl::StrCat("expected >= 1, got ", config.grid_images()));
  }
  if (!(config.sinkhorn_epsilon() > 0) || !std::isfinite(config.sinkhorn_epsilon())) {
    return Invalid(field + ".sinkhorn_epsilon", absl::StrCat("expected a finite value > 0, got ",
                                                             config.sinkhorn_epsilon()));
  }
  return absl::OkStatus();
}

absl::StatusOr<nn::Shape> DataExampleShape(const GanDataConfig& config) {
  if (config.dataset() == kMnist) return nn::Shape{1, 28, 28};
  if (config.dataset() == kCifar10) {
    return nn::Shape{data::kCifar10Channels, data::kCifar10ImageSize, data::kCifar10ImageSize};
  }
  OTGEN_RETURN_IF_ERROR(ValidateGanDataConfig(config, "data"));
  return nn::Shape{2};
}

std::unique_ptr<data::Sampler> MakeNoiseSampler(const NoiseConfig& config) {
  if (config.kind() == NoiseConfig::UNIFORM) {
    return std::make_unique<data::UniformSampler>(nn::Shape{config.dim()}, -1.0f, 1.0f);
  }
  return std::make_unique<data::NormalSampler>(nn::Shape{config.dim()}, 0.0f, 1.0f);
}

// ---- GanData ----------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<GanData>> GanData::Create(const GanDataConfig& config, uint64_t seed) {
  OTGEN_RETURN_IF_ERROR(ValidateGanDataConfig(config, "data"));
  std::unique_ptr<GanData> d(new GanData());
  d->config_ = config;
  d->rng_ = nn::Rng(seed, kDataStream);
  OTGEN_ASSIGN_OR_RETURN(d->example_shape_, DataExampleShape(config));
  if (!IsImageSet(config.dataset())) {
    OTGEN_ASSIGN_OR_RETURN(d->synthetic_, data::MakeSynthetic2d(config.dataset()));
    return d;
  }
  // Relative paths are tried as given, then against the folder `bazel run` was called from.
  const std::string directory = config.directory().empty() ? "" : ResolveInputPath(config.directory());
  std::vector<std::string> files;
  for (const std::string& f : config.files()) files.push_back(ResolveInputPath(f));
  absl::StatusOr<data::InMemoryDataset> loaded;
  if (config.dataset() == kMnist) {
    loaded = data::LoadMnist(directory, data::Split::kTrain,
                             {.scaling = data::PixelScaling::kSymmetric});
  } else if (config.files_size() > 0) {
    loaded = data::LoadCifar10Files(files, {.scaling = data::PixelScaling::kSymmetric});
  } else {
    loaded = data::LoadCifar10(directory, data::Split::kTrain, {.scaling = data::PixelScaling::kSymmetric});
  }
  if (!loaded.ok()) {
    return absl::Status(loaded.status().code(), absl::StrCat("data (", config.dataset(), "): ", loaded.status().message()));
  }
  if (loaded->example_shape() != d->example_shape_) {
    return Invalid("data", absl::StrCat("examples of ", config.dataset(), " have shape ",
                                        nn::ShapeToString(loaded->example_shape()), ", expected ",
                                        nn::ShapeToString(d->example_shape_)));
  }
  d->dataset_ = std::make_unique<data::InMemoryDataset>(*std::move(loaded));
  if (d->dataset_->size() < config.batch_size()) {
    return Invalid("data.batch_size", absl::StrCat("the data set holds ", d->dataset_->size(),
                                                   " examples, fewer than one batch of ", config.batch_size()));
  }
  OTGEN_ASSIGN_OR_RETURN(data::EpochBatcher batcher,
                         data::EpochBatcher::Create(d->dataset_->size(),
                                                    {.batch_size = config.batch_size(),
                                                     .last_batch = data::LastBatch::kDrop,
                                                     .shuffle = true},
                                                    nn::Rng(seed, kDataStream)));
  d->batcher_ = std::make_unique<data::EpochBatcher>(std::move(batcher));
  d->batcher_position_ = nn::Tensor::Zeros({2});
  return d;
}

absl::Status GanData::NextBatch(nn::Tensor* batch) {
  if (synthetic_ != nullptr) {
    synthetic_->SampleInto(config_.batch_size(), rng_, batch);
    return absl::OkStatus();
  }
  return dataset_->CopyBatch(batcher_->Next(), batch);
}

void GanData::Register(nn::TrainingState* state) {
  state->rngs.emplace_back("data", &rng_);
  if (batcher_ != nullptr) {
    state->rngs.emplace_back("data_epoch", &batcher_epoch_rng_);
    state->tensors.emplace_back("data_position", &batcher_position_);
  }
}

absl::Status GanData::BeforeCheckpoint() {
  if (batcher_ == nullptr) return absl::OkStatus();
  const data::EpochBatcher::State s = batcher_->GetState();
  batcher_epoch_rng_.SetState(s.epoch_rng);
  // Both counters are below 2^24 for any realistic run (position <= N), exact in float.
  batcher_position_.data()[0] = static_cast<float>(s.epoch);
  batcher_position_.data()[1] = static_cast<float>(s.position);
  return absl::OkStatus();
}

absl::Status GanData::AfterRestore() {
  if (batcher_ == nullptr) return absl::OkStatus();
  data::EpochBatcher::State s;
  s.epoch = static_cast<int64_t>(batcher_position_.data()[0]);
  s.position = static_cast<int64_t>(batcher_position_.data()[1]);
  s.epoch_rng = batcher_epoch_rng_.GetState();
  return batcher_->SetState(s);
}

// ---- Generation -------------------------------------------------------------------------------

absl::StatusOr<nn::Tensor> GenerateSamples(nn::Module& generator, const data::Sampler& noise, int64_t n,
                                           int64_t chunk, nn::Rng& rng) {
  if (n < 1 || chunk < 1) {
    return absl::InvalidArgumentError(absl::StrCat("GenerateSamples: expected n >= 1 and chunk >= 1, got ", n,
                                                   " and ", chunk));
  }
  nn::NoGradGuard no_grad;
  nn::Tensor out;
  nn::Tensor z;
  for (int64_t begin = 0; begin < n; begin += chunk) {
    const int64_t rows = std::min(chunk, n - begin);
    noise.SampleInto(rows, rng, &z);
    OTGEN_ASSIGN_OR_RETURN(nn::Var x, generator.Forward(nn::Var::Constant(z)));
    if (!out.defined()) {
      nn::Shape shape = x.shape();
      shape[0] = n;
      out = nn::Tensor::Empty(shape);
    }
    out.Rows(begin, begin + rows).CopyFrom(x.value());
  }
  return out;
}

// ---- GanEvaluator ----------------------------------------------------------------------------

GanEvaluator::GanEvaluator(GanEvalConfig config, const GanData* data, const data::Sampler* noise, uint64_t seed,
                           std::string output_dir)
    : config_(std::move(config)), data_(data), noise_(noise), seed_(seed), output_dir_(std::move(output_dir)) {
  nn::Rng fixed(seed_, kFixedNoiseStream);
  const int64_t n = data_->is_image() ? config_.grid_images() : num_samples();
  fixed_noise_ = noise_->Sample(n, fixed);
}

int64_t GanEvaluator::num_samples() const {
  if (config_.num_samples() > 0) return config_.num_samples();
  if (!data_->is_image()) return eval::kModeCoverageSamples;
  if (data_->name() == kMnist) return eval::kMnistProtocolSamples;
  return 1000;
}

std::vector<std::string> GanEvaluator::Columns() const {
  if (!data_->is_image()) {
    std::vector<std::string> cols;
    if (data_->synthetic()->mixture() != nullptr) cols = {"eval_modes", "eval_hq", "eval_reverse_kl"};
    cols.push_back("eval_sinkhorn");
    return cols;
  }
  if (data_->name() == kMnist && config_.mnist_metrics()) return eval::MnistSampleMetrics::RowColumns("eval_");
  return {};
}

absl::Status GanEvaluator::EnsureSamples(nn::Module& generator, int64_t step) {
  if (samples_step_ == step && samples_.defined()) return absl::OkStatus();
  nn::Rng rng(seed_, kEvalNoiseStream);
  OTGEN_ASSIGN_OR_RETURN(samples_, GenerateSamples(generator, *noise_, num_samples(), data_->batch_size(), rng));
  samples_step_ = step;
  return absl::OkStatus();
}

absl::StatusOr<MetricRow> GanEvaluator::Evaluate(nn::Module& generator, int64_t step) {
  OTGEN_RETURN_IF_ERROR(EnsureSamples(generator, step));
  MetricRow row;
  for (int64_t k = 0; k < samples_.numel(); ++k) {
    if (!std::isfinite(samples_.data()[k])) {
      return absl::InternalError(absl::StrCat("evaluation at step ", step, ": the generator produced ",
                                              samples_.data()[k], " (diverged)"));
    }
  }
  if (!data_->is_image()) {
    const auto x = AsMatrix(samples_);
    std::vector<std::string> parts;
    if (data_->synthetic()->mixture() != nullptr) {
      OTGEN_ASSIGN_OR_RETURN(eval::ModeCoverageResult mc, eval::EvaluateModeCoverage(x, *data_->synthetic()));
      row["eval_modes"] = mc.modes_captured;
      row["eval_hq"] = mc.hq_fraction;
      row["eval_reverse_kl"] = mc.reverse_kl;
      parts.push_back(mc.BriefReport());
    }
    nn::Rng data_rng(seed_, kEvalDataStream);
    const nn::Tensor real = data_->synthetic()->Sample(samples_.dim(0), data_rng);
    ot::SinkhornOptions options;
    options.epsilon = config_.sinkhorn_epsilon();
    const Eigen::VectorXf w = ot::UniformWeights(samples_.dim(0));
    OTGEN_ASSIGN_OR_RETURN(ot::SinkhornDivergenceResult s,
                           ot::SinkhornDivergence(x, w, AsMatrix(real), w, ot::Cost::SquaredEuclidean(), options));
    row["eval_sinkhorn"] = s.divergence;
    parts.push_back(absl::StrFormat("Sinkhorn divergence %.5g (eps %g)", s.divergence, options.epsilon));
    last_report_ = absl::StrJoin(parts, ", ");
    return row;
  }
  if (data_->name() == kMnist && config_.mnist_metrics()) {
    if (mnist_scorer_ == nullptr) {
      OTGEN_ASSIGN_OR_RETURN(mnist_scorer_, eval::MnistSampleScorer::Create(
          {}, data_->config().directory().empty() ? "" : ResolveInputPath(data_->config().directory())));
    }
    OTGEN_ASSIGN_OR_RETURN(eval::MnistSampleMetrics m, mnist_scorer_->Score(samples_, eval::PixelRange::kSymmetric));
    row = m.AsRow("eval_");
    OTGEN_ASSIGN_OR_RETURN(eval::MnistSampleMetrics real, mnist_scorer_->RealVsRealBaseline());
    last_report_ = absl::StrCat(m.BriefReport(), "\n", eval::FormatMnistReport(m, real));
    return row;
  }
  last_report_ = absl::StrCat(samples_.dim(0), " samples generated (no metric for ", data_->name(), ")");
  return row;
}

absl::Status GanEvaluator::WriteSamples(nn::Module& generator, int64_t step, bool last) {
  written_.clear();
  const std::string grid = absl::StrCat(output_dir_, "/samples_", step, ".png");
  nn::Tensor fixed;
  {
    nn::NoGradGuard no_grad;
    std::vector<nn::Tensor> chunks;
    const int64_t n = fixed_noise_.dim(0), chunk = data_->batch_size();
    for (int64_t begin = 0; begin < n; begin += chunk) {
      const int64_t end = std::min(n, begin + chunk);
      OTGEN_ASSIGN_OR_RETURN(nn::Var x, generator.Forward(nn::Var::Constant(fixed_noise_.Rows(begin, end))));
      if (!fixed.defined()) {
        nn::Shape shape = x.shape();
        shape[0] = n;
        fixed = nn::Tensor::Empty(shape);
      }
      fixed.Rows(begin, end).CopyFrom(x.value());
    }
  }
  const ot::RowMatrixXf means = MixtureMeans(data_->synthetic());
  auto write_picture = [&](const std::string& path, const nn::Tensor& samples, const std::string& title) -> absl::Status {
    if (data_->is_image()) {
      return eval::WriteImageGrid(path, samples.Rows(0, std::min<int64_t>(samples.dim(0), config_.grid_images())),
                                  {.range = eval::PixelRange::kSymmetric});
    }
    eval::PlotOptions options;
    options.title = title;
    return eval::PlotSamples2d(path, AsMatrix(samples), means, options);
  };
  OTGEN_RETURN_IF_ERROR(write_picture(grid, fixed, absl::StrCat(data_->name(), ", step ", step)));
  written_.push_back(grid);
  if (last) {
    OTGEN_RETURN_IF_ERROR(EnsureSamples(generator, step));
    const std::string npy = output_dir_ + "/samples.npy";
    OTGEN_RETURN_IF_ERROR(eval::WriteNpy(npy, samples_.shape(), samples_.span()));
    written_.push_back(npy);
    const std::string png = output_dir_ + "/samples.png";
    OTGEN_RETURN_IF_ERROR(write_picture(
        png, samples_, absl::StrCat(data_->name(), ": ", samples_.dim(0), " samples after ", step, " iterations")));
    written_.push_back(png);
  }
  return absl::OkStatus();
}

}  // namespace otgen::apps::gan
