#include "apps/sdot/sdot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "apps/common/app_config.h"
#include "apps/common/config.h"
#include "apps/common/network.h"
#include "apps/common/optimizer_factory.h"
#include "apps/common/progress.h"
#include "apps/eval/npy.h"
#include "apps/eval/plot.h"
#include "data/mnist.h"
#include "nn/autograd.h"
#include "nn/ops.h"
#include "nn/status_macros.h"
#include "optim/asgd.h"

namespace otgen::apps::sdot {
namespace {

constexpr int64_t kImageSide = 28;
constexpr int64_t kImageDim = kImageSide * kImageSide;
// Independent random streams derived from run.seed.
constexpr uint64_t kInitStream = 0;
constexpr uint64_t kTrainStream = 1;
constexpr uint64_t kEvalStream = 2;
constexpr uint64_t kPreviewStream = 3;

absl::Status Invalid(const std::string& field, const std::string& expected, double got) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": expected ", expected, ", got ", got));
}

absl::StatusOr<data::PixelScaling> PixelRangeOf(const SdotConfig& config) {
  absl::StatusOr<data::PixelScaling> s = data::ParsePixelScaling(config.data().pixel_range());
  if (!s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("data.pixel_range: expected \"symmetric\" or \"unit\", got \"",
                                                   config.data().pixel_range(), "\""));
  }
  return s;
}

Eigen::Map<const ot::RowMatrixXf> AsMatrix(const nn::Tensor& t) {
  return Eigen::Map<const ot::RowMatrixXf>(t.data(), t.dim(0), t.numel() / t.dim(0));
}


// Copies of the module's buffers (batch-norm running statistics), restored by Restore().
class BufferSnapshot {
 public:
  explicit BufferSnapshot(const nn::Module& module) {
    for (auto& [name, t] : module.NamedBuffers()) saved_.emplace_back(t, t.Clone());
  }
  ~BufferSnapshot() {
    for (auto& [live, copy] : saved_) live.CopyFrom(copy);
  }

 private:
  std::vector<std::pair<nn::Tensor, nn::Tensor>> saved_;
};

// The process's peak resident memory (VmHWM), 0 when unknown.
double PeakResidentMiB() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0.0;
  char line[256];
  double kib = 0.0;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (std::sscanf(line, "VmHWM: %lf kB", &kib) == 1) break;
  }
  std::fclose(f);
  return kib / 1024.0;
}

}  // namespace

absl::Status ValidateSdotConfig(const SdotConfig& c) {
  OTGEN_RETURN_IF_ERROR(ValidateCommon(c));
  if (c.batch_size() < 1) return Invalid("batch_size", ">= 1", c.batch_size());
  if (c.data().train_limit() < 0) return Invalid("data.train_limit", ">= 0 (0 = all images)", c.data().train_limit());
  OTGEN_RETURN_IF_ERROR(PixelRangeOf(c).status());
  if (c.latent().dim() < 1) return Invalid("latent.dim", ">= 1", c.latent().dim());
  if (!(c.latent().bound() > 0) || !std::isfinite(c.latent().bound())) {
    return Invalid("latent.bound", "a finite value > 0", c.latent().bound());
  }
  OTGEN_RETURN_IF_ERROR(ValidateNetwork(c.generator(), {c.latent().dim()}, {1, kImageSide, kImageSide}, "generator"));
  OTGEN_RETURN_IF_ERROR(ValidateOptimizerConfig(c.generator_optimizer(), "generator_optimizer"));
  const DualConfig& d = c.dual();
  if (!(d.lambda() >= 0) || !std::isfinite(d.lambda())) return Invalid("dual.lambda", "a finite value >= 0", d.lambda());
  if (d.inner_iterations() < 1) return Invalid("dual.inner_iterations", ">= 1", d.inner_iterations());
  if (!(d.prune_threshold() >= 10) || !std::isfinite(d.prune_threshold())) {
    return Invalid("dual.prune_threshold", "a finite value >= 10", d.prune_threshold());
  }
  OTGEN_RETURN_IF_ERROR(ValidateOptimizerConfig(d.optimizer(), "dual.optimizer"));
  if (d.parameterization() == DualConfig::VECTOR) {
    if (d.optimizer().kind() == OptimizerConfig::SGD) {
      return absl::InvalidArgumentError("dual.optimizer.kind: a vector dual (SDOT) takes ASGD or ADAM, got SGD");
    }
    if (d.has_network()) {
      return absl::InvalidArgumentError("dual.network: only used with parameterization: NETWORK (SDOTNN)");
    }
  } else {
    if (!d.has_network()) return absl::InvalidArgumentError("dual.network: required with parameterization: NETWORK");
    OTGEN_RETURN_IF_ERROR(ValidateNetwork(d.network(), {1, kImageSide, kImageSide}, {1}, "dual.network"));
  }
  if (c.sinkhorn_loss().enabled()) {
    if (!(d.lambda() > 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("sinkhorn_loss.enabled: the Sinkhorn divergence needs dual.lambda > 0, got ", d.lambda()));
    }
    if (!(c.sinkhorn_loss().tolerance() > 0)) {
      return Invalid("sinkhorn_loss.tolerance", "> 0", c.sinkhorn_loss().tolerance());
    }
    if (c.sinkhorn_loss().max_iterations() < 1) {
      return Invalid("sinkhorn_loss.max_iterations", ">= 1", c.sinkhorn_loss().max_iterations());
    }
  }
  if (c.inner_loop_study().eval_batch() < 1) {
    return Invalid("inner_loop_study.eval_batch", ">= 1", c.inner_loop_study().eval_batch());
  }
  if (c.evaluation().num_samples() < 0) return Invalid("evaluation.num_samples", ">= 0", c.evaluation().num_samples());
  if (c.evaluation().grid_samples() < 0) {
    return Invalid("evaluation.grid_samples", ">= 0", c.evaluation().grid_samples());
  }
  return absl::OkStatus();
}

// ---- SdotModel --------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<SdotModel>> SdotModel::Create(const SdotConfig& config) {
  OTGEN_RETURN_IF_ERROR(ValidateSdotConfig(config));
  OTGEN_ASSIGN_OR_RETURN(data::PixelScaling scaling, PixelRangeOf(config));
  absl::StatusOr<data::InMemoryDataset> train =
      data::LoadMnist(ResolveInputPath(config.data().mnist_dir()), data::Split::kTrain, {.scaling = scaling});
  if (!train.ok()) {
    return absl::Status(train.status().code(), absl::StrCat("data.mnist_dir: ", train.status().message()));
  }
  nn::Tensor images = train->examples();
  const int64_t limit = config.data().train_limit();
  if (limit > 0 && limit < images.dim(0)) images = images.Rows(0, limit).Clone();
  std::unique_ptr<SdotModel> model(new SdotModel());
  OTGEN_RETURN_IF_ERROR(model->Init(config, std::move(images)));
  return model;
}

absl::StatusOr<std::unique_ptr<SdotModel>> SdotModel::Create(const SdotConfig& config, nn::Tensor targets) {
  OTGEN_RETURN_IF_ERROR(ValidateSdotConfig(config));
  std::unique_ptr<SdotModel> model(new SdotModel());
  OTGEN_RETURN_IF_ERROR(model->Init(config, std::move(targets)));
  return model;
}

absl::Status SdotModel::Init(const SdotConfig& config, nn::Tensor targets) {
  config_ = config;
  if (!targets.defined() || targets.rank() < 2 || targets.numel() / std::max<int64_t>(targets.dim(0), 1) != kImageDim ||
      targets.dim(0) < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("targets: expected {J, 1, 28, 28} images, got ",
                     targets.defined() ? nn::ShapeToString(targets.shape()) : "undefined"));
  }
  const int64_t J = targets.dim(0);
  target_images_ = targets.Reshape({J, 1, kImageSide, kImageSide});
  OTGEN_ASSIGN_OR_RETURN(targets_, ot::InMemoryTargetSet::CreateUniform(AsMatrix(target_images_)));
  OTGEN_ASSIGN_OR_RETURN(cost_, ot::NormalizedSquaredEuclideanCost(AsMatrix(target_images_)));
  // The target set holds its own copy; only the network dual reads the images as a tensor.
  if (config.dual().parameterization() != DualConfig::NETWORK) target_images_ = nn::Tensor();

  const uint64_t seed = config.run().seed();
  nn::Rng init(seed, kInitStream);
  rng_ = nn::Rng(seed, kTrainStream);
  OTGEN_ASSIGN_OR_RETURN(generator_, BuildNetwork(config.generator(), {config.latent().dim()},
                                                  {1, kImageSide, kImageSide}, init, "generator"));
  generator_->Train(true);
  OTGEN_ASSIGN_OR_RETURN(generator_optimizer_, MakeOptimizer(config.generator_optimizer(), generator_->Parameters(),
                                                             "generator_optimizer"));
  state_.modules.emplace_back("generator", generator_.get());
  state_.optimizers.emplace_back("generator_optimizer", generator_optimizer_.get());
  state_.rngs.emplace_back("latent", &rng_);

  const DualConfig& dual = config.dual();
  ot::CTransformOptions ct;
  ct.lambda = dual.lambda();
  ct.prune_threshold = dual.prune_threshold();
  if (!network_dual()) {
    ot::SemiDiscreteOptions options;
    options.ctransform = ct;
    options.batch_size = config.batch_size();
    options.iterations = dual.inner_iterations();
    options.restart_each_solve = true;
    options.warm_start = dual.warm_start() == DualConfig::ITERATE ? ot::SemiDiscreteWarmStart::kIterate
                                                                  : ot::SemiDiscreteWarmStart::kAverage;
    if (dual.optimizer().kind() == OptimizerConfig::ASGD) {
      options.method = ot::SemiDiscreteMethod::kAsgd;
      options.gamma = dual.optimizer().gamma();
      options.alpha = dual.optimizer().alpha();
    } else {
      options.method = ot::SemiDiscreteMethod::kAdam;
      options.adam_learning_rate = dual.optimizer().lr();
      options.adam_beta1 = dual.optimizer().beta1();
      options.adam_beta2 = dual.optimizer().beta2();
      options.adam_epsilon = dual.optimizer().eps();
    }
    OTGEN_ASSIGN_OR_RETURN(solver_, ot::SemiDiscreteSolver::Create(targets_, cost_, options));
    state_.tensor_maps.emplace_back("solver", &solver_state_);
  } else {
    OTGEN_ASSIGN_OR_RETURN(psi_network_, BuildNetwork(dual.network(), {1, kImageSide, kImageSide}, {1}, init,
                                                      "dual.network"));
    psi_network_->Train(true);
    OTGEN_ASSIGN_OR_RETURN(psi_optimizer_, MakeOptimizer(dual.optimizer(), psi_network_->Parameters(), "dual.optimizer",
                                                         /*maximize=*/true));
    OTGEN_ASSIGN_OR_RETURN(ot::CTransform transform, ot::CTransform::Create(targets_, cost_, ct));
    network_transform_ = std::make_unique<ot::CTransform>(std::move(transform));
    state_.modules.emplace_back("psi_network", psi_network_.get());
    state_.optimizers.emplace_back("psi_optimizer", psi_optimizer_.get());
  }
  if (config.sinkhorn_loss().enabled()) {
    ot::SinkhornOptions so;
    so.epsilon = dual.lambda();
    so.tolerance = config.sinkhorn_loss().tolerance();
    so.max_iterations = config.sinkhorn_loss().max_iterations();
    so.return_plan = true;
    OTGEN_RETURN_IF_ERROR(so.Validate());
    sinkhorn_ = std::make_unique<ot::SinkhornSolver>(so);
  }
  state_.metadata["config"] = ConfigToText(config);

  if (config.inner_loop_study().enabled()) {
    const std::string& path = config.inner_loop_study().generator_checkpoint();
    if (!path.empty()) {
      absl::StatusOr<nn::CheckpointProto> ckpt = nn::ReadCheckpoint(ResolveInputPath(path));
      if (!ckpt.ok()) {
        return absl::Status(ckpt.status().code(),
                            absl::StrCat("inner_loop_study.generator_checkpoint: ", ckpt.status().message()));
      }
      absl::Status loaded = nn::LoadModule(*ckpt, "generator", *generator_);
      if (!loaded.ok()) {
        return absl::Status(loaded.code(), absl::StrCat("inner_loop_study.generator_checkpoint: ", path, ": ",
                                                        loaded.message()));
      }
    }
    nn::Rng eval_rng(seed, kEvalStream);
    OTGEN_ASSIGN_OR_RETURN(nn::Tensor x, Sample(config.inner_loop_study().eval_batch(), eval_rng));
    eval_batch_ = AsMatrix(x);
    if (solver_) solver_->RestartAveraging();
    if (auto* asgd = dynamic_cast<optim::Asgd*>(psi_optimizer_.get())) asgd->Restart();
  }
  return absl::OkStatus();
}

std::vector<std::string> SdotModel::StepColumns() const {
  if (config_.inner_loop_study().enabled()) return {"h_iterate"};
  std::vector<std::string> columns = {"h", "h_inner"};
  if (!network_dual()) columns.push_back("psi_grad_norm");
  if (sinkhorn_) {
    columns.push_back("w_self");
    columns.push_back("sinkhorn_loss");
  }
  return columns;
}

nn::Tensor SdotModel::SampleLatent(int64_t n, nn::Rng& rng) const {
  const float bound = config_.latent().bound();
  return nn::Tensor::Uniform({n, config_.latent().dim()}, -bound, bound, rng);
}

absl::StatusOr<nn::Tensor> SdotModel::Generate(const nn::Tensor& z) {
  nn::NoGradGuard no_grad;
  BufferSnapshot keep(*generator_);
  const int64_t n = z.dim(0), b = config_.batch_size();
  nn::Tensor out = nn::Tensor::Empty({n, 1, kImageSide, kImageSide});
  for (int64_t i = 0; i < n; i += b) {
    const int64_t rows = std::min(b, n - i);
    OTGEN_ASSIGN_OR_RETURN(nn::Var x, generator_->Forward(nn::Var(z.Rows(i, i + rows))));
    std::copy(x.value().data(), x.value().data() + rows * kImageDim, out.data() + i * kImageDim);
  }
  return out;
}

absl::StatusOr<nn::Tensor> SdotModel::Sample(int64_t n, nn::Rng& rng) { return Generate(SampleLatent(n, rng)); }

absl::StatusOr<nn::Tensor> SdotModel::InnerBatch() {
  nn::NoGradGuard no_grad;
  OTGEN_ASSIGN_OR_RETURN(nn::Var x, generator_->Forward(nn::Var(SampleLatent(config_.batch_size(), rng_))));
  return x.value();
}

absl::StatusOr<nn::Var> SdotModel::NetworkPsi(bool record) {
  std::optional<nn::NoGradGuard> no_grad;
  if (!record) no_grad.emplace();
  OTGEN_ASSIGN_OR_RETURN(nn::Var psi, psi_network_->Forward(nn::Var(target_images_)));
  return nn::Reshape(psi, {target_images_.dim(0)});
}

absl::StatusOr<nn::Var> SdotModel::AveragedNetworkPsi(bool keep_iterate) {
  auto* asgd = dynamic_cast<optim::Asgd*>(psi_optimizer_.get());
  if (asgd == nullptr) return NetworkPsi(/*record=*/false);
  std::vector<nn::Tensor> iterate;
  if (keep_iterate) {
    for (const nn::Var& p : psi_network_->Parameters()) iterate.push_back(p.value().Clone());
  }
  asgd->CopyAveragedToParameters();
  absl::StatusOr<nn::Var> psi = NetworkPsi(/*record=*/false);
  if (keep_iterate) {
    std::vector<nn::Var> params = psi_network_->Parameters();
    for (size_t i = 0; i < params.size(); ++i) params[i].mutable_value().CopyFrom(iterate[i]);
  }
  return psi;
}

absl::StatusOr<double> SdotModel::NetworkDualStep(const nn::Tensor& x) {
  OTGEN_ASSIGN_OR_RETURN(nn::Var psi, NetworkPsi(/*record=*/true));
  OTGEN_ASSIGN_OR_RETURN(nn::Var h, ot::SemiDualObjective(*network_transform_, nn::Var(x), psi));
  psi_optimizer_->ZeroGrad();
  nn::Backward(h);
  psi_optimizer_->Step();
  return static_cast<double>(h.item());
}

absl::StatusOr<MetricRow> SdotModel::GeneratorStep(const nn::Var& psi) {
  ot::CTransform& transform = solver_ ? solver_->transform() : *network_transform_;
  OTGEN_ASSIGN_OR_RETURN(nn::Var x, generator_->Forward(nn::Var(SampleLatent(config_.batch_size(), rng_))));
  OTGEN_ASSIGN_OR_RETURN(nn::Var h, ot::SemiDualObjective(transform, x, psi));
  MetricRow row = {{"h", h.item()}};
  nn::Var loss = h;
  if (sinkhorn_) {
    // grad_x of W_lambda(mu, mu)/2 on the batch: sum_k Q_ik grad_x c(x_i, x_k) with
    // grad_x c = 2 (x_i - x_k) / alpha and Q the symmetric optimal plan (rows sum to 1/b).
    const nn::Tensor& xv = x.value();
    const int64_t b = xv.dim(0);
    Eigen::Map<const ot::RowMatrixXf> X = AsMatrix(xv);
    OTGEN_ASSIGN_OR_RETURN(ot::SinkhornResult self,
                           sinkhorn_->SolveSymmetric(X, ot::UniformWeights(b), cost_));
    const Eigen::VectorXf rows = self.plan.rowwise().sum();
    ot::RowMatrixXf g = (2.0f / cost_.scale) * (rows.asDiagonal() * X - self.plan * X);
    nn::Tensor gt = nn::Tensor::Empty(xv.shape());
    std::copy(g.data(), g.data() + g.size(), gt.data());
    // A surrogate whose gradient in x is grad H - grad W(mu, mu)/2 (eq. 77); its value is unused.
    loss = nn::Sub(h, nn::SumAll(nn::Mul(x, nn::Var::Constant(gt))));
    row["w_self"] = self.regularized_cost;
    row["sinkhorn_loss"] = h.item() - 0.5 * self.regularized_cost;
  }
  generator_optimizer_->ZeroGrad();
  nn::Backward(loss);
  generator_optimizer_->Step();
  for (const auto& [name, v] : row) {
    if (!std::isfinite(v)) {
      return absl::InvalidArgumentError(absl::StrCat(name, " is ", v, ": the generator diverged (lower the learning rates?)"));
    }
  }
  return row;
}

absl::StatusOr<MetricRow> SdotModel::OuterIteration() {
  MetricRow row;
  nn::Var psi;
  if (solver_) {
    OTGEN_ASSIGN_OR_RETURN(ot::SemiDiscreteResult inner, solver_->Solve([this](int64_t) { return InnerBatch(); }));
    row["h_inner"] = inner.h_estimate;
    row["psi_grad_norm"] = inner.last_supergradient_norm;
    const auto estimate = solver_->psi();
    nn::Tensor p = nn::Tensor::Empty({estimate.size()});
    std::copy(estimate.data(), estimate.data() + estimate.size(), p.data());
    psi = nn::Var::Constant(p);
  } else {
    auto* asgd = dynamic_cast<optim::Asgd*>(psi_optimizer_.get());
    if (asgd != nullptr) asgd->Restart();
    double total = 0.0;
    const int K = config_.dual().inner_iterations();
    for (int k = 0; k < K; ++k) {
      OTGEN_ASSIGN_OR_RETURN(nn::Tensor x, InnerBatch());
      OTGEN_ASSIGN_OR_RETURN(double h, NetworkDualStep(x));
      total += h;
    }
    row["h_inner"] = total / K;
    // The ASGD estimate is the average of the iterates. It is also where the next run starts,
    // unless dual.warm_start is ITERATE.
    OTGEN_ASSIGN_OR_RETURN(psi, AveragedNetworkPsi(config_.dual().warm_start() == DualConfig::ITERATE));
    psi = nn::Var::Constant(psi.value());
  }
  OTGEN_ASSIGN_OR_RETURN(MetricRow g, GeneratorStep(psi));
  row.insert(g.begin(), g.end());
  return row;
}

absl::StatusOr<MetricRow> SdotModel::InnerStudyStep() {
  OTGEN_ASSIGN_OR_RETURN(nn::Tensor x, InnerBatch());
  double h = 0.0;
  if (solver_) {
    OTGEN_ASSIGN_OR_RETURN(h, solver_->Step(AsMatrix(x)));
  } else {
    OTGEN_ASSIGN_OR_RETURN(h, NetworkDualStep(x));
  }
  return MetricRow{{"h_iterate", h}};
}

absl::StatusOr<double> SdotModel::EvaluateEstimate() {
  if (eval_batch_.rows() == 0) return absl::FailedPreconditionError("EvaluateEstimate: the inner-loop study is off");
  if (solver_) {
    OTGEN_ASSIGN_OR_RETURN(ot::CTransformResult r,
                           solver_->transform().Compute(eval_batch_, solver_->psi(), {.grad_x = false, .grad_psi = false}));
    return r.semi_dual;
  }
  // SDOTNN: evaluate the averaged parameters (with ASGD), then put the iterate back.
  OTGEN_ASSIGN_OR_RETURN(nn::Var psi, AveragedNetworkPsi(/*keep_iterate=*/true));
  Eigen::Map<const Eigen::VectorXf> pv(psi.value().data(), psi.numel());
  OTGEN_ASSIGN_OR_RETURN(ot::CTransformResult r,
                         network_transform_->Compute(eval_batch_, pv, {.grad_x = false, .grad_psi = false}));
  return r.semi_dual;
}

absl::Status SdotModel::BeforeCheckpoint() {
  if (solver_) solver_state_ = solver_->ExportState();
  return absl::OkStatus();
}

absl::Status SdotModel::AfterRestore() {
  if (solver_) {
    absl::Status s = solver_->ImportState(solver_state_);
    if (!s.ok()) return absl::Status(s.code(), absl::StrCat("checkpoint: solver ", s.message()));
  }
  return absl::OkStatus();
}

// ---- RunSdot ------------------------------------------------------------------------------------

absl::StatusOr<SdotRunResult> RunSdot(const SdotConfig& config, const SdotRunOptions& options) {
  OTGEN_RETURN_IF_ERROR(ValidateSdotConfig(config));
  OTGEN_RETURN_IF_ERROR(MakeDirectories(config.run().output_dir()));
  OTGEN_RETURN_IF_ERROR(WriteConfig(config.run().output_dir(), config));
  OTGEN_ASSIGN_OR_RETURN(data::PixelScaling scaling, PixelRangeOf(config));
  const eval::PixelRange range =
      scaling == data::PixelScaling::kSymmetric ? eval::PixelRange::kSymmetric : eval::PixelRange::kUnit;
  const eval::ImageGridOptions grid{.columns = 10, .scale = 2, .range = range};
  const bool study = config.inner_loop_study().enabled();
  const std::string& dir = config.run().output_dir();

  // The scorer of the final samples.
  std::unique_ptr<eval::MnistSampleScorer> owned_scorer;
  const eval::MnistSampleScorer* scorer = options.scorer;
  const bool score = !study && config.evaluation().mnist_metrics() && config.evaluation().num_samples() > 0;
  // A missing data folder is reported before anything slow happens.
  if (const std::string mnist_dir = ResolveInputPath(config.data().mnist_dir()); !mnist_dir.empty()) {
    for (data::Split split : {data::Split::kTrain, data::Split::kTest}) {
      for (const std::string& path : {data::MnistImagesPath(mnist_dir, split), data::MnistLabelsPath(mnist_dir, split)}) {
        if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
          std::fclose(f);
        } else {
          return absl::NotFoundError(absl::StrCat("data.mnist_dir: cannot open ", path));
        }
      }
    }
  }
  if (score && scorer == nullptr) {
    if (config.evaluation().num_samples() < 1000) {
      return absl::InvalidArgumentError(absl::StrCat(
          "evaluation.num_samples: the MNIST classifier metrics need >= 1000 samples (KID subsets of 1000), got ",
          config.evaluation().num_samples(), "; set evaluation.mnist_metrics: false to skip them"));
    }
    eval::MnistSampleMetricsOptions so;
    so.max_samples = std::min<int64_t>(eval::kMnistProtocolSamples, config.evaluation().num_samples());
    OTGEN_ASSIGN_OR_RETURN(owned_scorer,
                           eval::MnistSampleScorer::Create(so, ResolveInputPath(config.data().mnist_dir())));
    scorer = owned_scorer.get();
  }
  // The model after the scorer: the scorer's transient memory (MNIST, classifier activations)
  // is freed before the target set is built, which keeps the peak of a run lower.
  OTGEN_ASSIGN_OR_RETURN(std::unique_ptr<SdotModel> model, SdotModel::Create(config));

  TrainingLoopSpec spec;
  spec.name = study ? "sdot (inner-loop study)" : "sdot";
  spec.step_columns = model->StepColumns();
  spec.progress_columns = spec.step_columns;
  if (study) {
    spec.eval_columns = {"h_estimate"};
    spec.plots = {CurvePlot{"loss", {"h_iterate", "h_estimate"}, "H_lambda(psi, theta) along the inner loop", "H"}};
  } else {
    if (score) spec.eval_columns = eval::MnistSampleMetrics::RowColumns();
    spec.plots = {CurvePlot{"loss", {"h"}, "H_lambda(psi, theta) per iteration", "H"}};
    if (config.sinkhorn_loss().enabled()) {
      spec.plots.push_back(CurvePlot{"sinkhorn_loss", {"sinkhorn_loss"}, "Sinkhorn loss per iteration", "loss"});
    }
  }

  // Latent codes of the sample grids: fixed, so that grids of successive steps are comparable.
  nn::Rng preview_rng(config.run().seed(), kPreviewStream);
  const nn::Tensor preview_z = model->SampleLatent(config.evaluation().grid_samples(), preview_rng);
  // The final samples (drawn once, then scored and saved).
  std::optional<std::pair<int64_t, nn::Tensor>> final_samples;
  auto samples_at = [&](int64_t step) -> absl::StatusOr<nn::Tensor> {
    if (final_samples && final_samples->first == step) return final_samples->second;
    nn::Rng eval_rng(config.run().seed(), kEvalStream);
    OTGEN_ASSIGN_OR_RETURN(nn::Tensor s, model->Sample(config.evaluation().num_samples(), eval_rng));
    final_samples.emplace(step, s);
    return s;
  };
  SdotRunResult result;

  TrainingLoopHooks hooks;
  hooks.train_step = [&](int64_t) { return study ? model->InnerStudyStep() : model->OuterIteration(); };
  hooks.before_checkpoint = [&] { return model->BeforeCheckpoint(); };
  hooks.after_restore = [&] { return model->AfterRestore(); };
  if (study) {
    hooks.evaluate = [&](int64_t) -> absl::StatusOr<MetricRow> {
      OTGEN_ASSIGN_OR_RETURN(double h, model->EvaluateEstimate());
      return MetricRow{{"h_estimate", h}};
    };
  } else if (score) {
    hooks.evaluate = [&](int64_t step) -> absl::StatusOr<MetricRow> {
      OTGEN_ASSIGN_OR_RETURN(nn::Tensor samples, samples_at(step));
      OTGEN_ASSIGN_OR_RETURN(eval::MnistSampleMetrics m, scorer->Score(samples, range));
      result.metrics = m;
      return m.AsRow();
    };
  }
  if (!study) {
    hooks.write_samples = [&](int64_t step, bool last) -> absl::Status {
      if (preview_z.dim(0) > 0) {
        OTGEN_ASSIGN_OR_RETURN(nn::Tensor grid_images, model->Generate(preview_z));
        OTGEN_RETURN_IF_ERROR(
            eval::WriteImageGrid(absl::StrFormat("%s/samples_%06d.png", dir, step), grid_images, grid));
        if (last) OTGEN_RETURN_IF_ERROR(eval::WriteImageGrid(dir + "/samples.png", grid_images, grid));
      }
      if (last && config.evaluation().num_samples() > 0) {
        OTGEN_ASSIGN_OR_RETURN(nn::Tensor samples, samples_at(step));
        OTGEN_RETURN_IF_ERROR(eval::WriteNpyTensor(dir + "/samples.npy",
                                                   samples.Reshape({samples.dim(0), kImageDim})));
      }
      return absl::OkStatus();
    };
  }

  OTGEN_ASSIGN_OR_RETURN(ScheduleConfig schedule, GetScheduleConfig(config));
  TrainingLoop loop(config.run(), schedule, spec, &model->training_state());
  OTGEN_ASSIGN_OR_RETURN(result.loop, loop.Run(hooks, options.resume));
  if (score && scorer != nullptr) {
    OTGEN_ASSIGN_OR_RETURN(eval::MnistSampleMetrics baseline, scorer->RealVsRealBaseline());
    result.baseline = baseline;
  }
  if (options.print) {
    std::printf("sdot: outputs in %s (metrics.csv, loss.png/.svg, config.pbtxt, ckpt-*.pb%s)\n", dir.c_str(),
                study ? "" : ", samples.png, samples_*.png, samples.npy");
    if (result.metrics && result.baseline) {
      std::printf("MNIST classifier metrics of %lld final samples:\n%s\n",
                  static_cast<long long>(result.metrics->num_samples),
                  eval::FormatMnistReport(*result.metrics, *result.baseline).c_str());
    }
    std::printf("sdot: wall time %s, peak resident memory %.0f MiB\n", FormatElapsed(result.loop.elapsed).c_str(),
                PeakResidentMiB());
    std::fflush(stdout);
  }
  return result;
}

}  // namespace otgen::apps::sdot
