#include "apps/w2gan/w2gan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "apps/common/app_config.h"
#include "apps/common/config.h"
#include "apps/common/network.h"
#include "apps/common/optimizer_factory.h"
#include "apps/eval/domain_adaptation.h"
#include "apps/eval/map_error.h"
#include "apps/eval/mnist_sample_metrics.h"
#include "apps/eval/npy.h"
#include "apps/eval/plot.h"
#include "apps/w2gan/figures.h"
#include "apps/w2gan/generator.h"
#include "apps/w2gan/losses.h"
#include "data/mnist.h"
#include "data/sampler.h"
#include "data/samplers.h"
#include "data/synthetic2d.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "nn/ops.h"
#include "nn/status_macros.h"
#include "ot/exact.h"
#include "ot/regularized_dual.h"
#include "ot/types.h"
#include "optim/optimizer.h"

namespace otgen::apps::w2gan {

using nn::Tensor;
using nn::Var;
using ot::RowMatrixXf;

ot::Potential ModulePotential(nn::Module& module) {
  return [&module](const Var& x) {
    absl::StatusOr<Var> out = module.Forward(x);
    OTGEN_CHECK(out.ok(), out.status().ToString());
    return nn::Reshape(*out, {-1});
  };
}

void SetGradients(const Var& loss, const std::vector<Var>& parameters) {
  std::vector<Var> params = parameters;
  const std::vector<Var> grads = nn::Grad({loss}, params, {}, {.allow_unused = true});
  for (size_t i = 0; i < params.size(); ++i) {
    if (grads[i].defined()) {
      params[i].set_grad(grads[i].value());
    } else {
      params[i].ZeroGrad();
    }
  }
}

namespace {

absl::Status Invalid(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

bool UsesBatchNorm(const NetworkConfig& config) {
  if (config.has_mlp() && config.mlp().batch_norm()) return true;
  for (const LayerConfig& l : config.layers()) {
    if (l.has_batch_norm()) return true;
  }
  return false;
}

// A potential network d -> 1 without batch norm (potentials are evaluated on stacked batches
// and differentiated w.r.t. their inputs).
absl::Status ValidatePotentialNetwork(const NetworkConfig& config, bool present, int64_t dim, const std::string& field) {
  if (!present) return Invalid(field, "required");
  OTGEN_RETURN_IF_ERROR(ValidateNetwork(config, {dim}, {1}, field));
  if (UsesBatchNorm(config)) {
    return Invalid(field, "batch norm is not allowed in a potential/critic (its values are taken per point and "
                          "differentiated w.r.t. the input)");
  }
  return absl::OkStatus();
}

W2CriticLossOptions W2Options(const W2PenaltyConfig& c) {
  return W2CriticLossOptions{.lambda_ineq = c.lambda_ineq(),
                             .ineq_on_pairs = c.ineq_on_pairs(),
                             .ineq_on_interpolates = c.ineq_on_interpolates(),
                             .lambda_eq = c.lambda_eq(),
                             .lambda_eps = c.lambda_eps()};
}

ot::RegularizedDualOptions DualOptions(const BarycentricOtConfig& c) {
  return ot::RegularizedDualOptions{
      .regularizer = c.regularizer() == BarycentricOtConfig::KL ? ot::Regularizer::kKL : ot::Regularizer::kL2,
      .lambda = c.lambda()};
}

bool IsWgan(Method m) { return m == WGAN_GP || m == WGAN_LP; }

}  // namespace

absl::StatusOr<int64_t> DataDimension(const DataConfig& data) {
  switch (data.kind_case()) {
    case DataConfig::kPair2D: return 2;
    case DataConfig::kMvgMnist: return 784;
    case DataConfig::kDomainAdaptation: return 256;
    case DataConfig::KIND_NOT_SET: break;
  }
  return Invalid("data", "expected one of pair_2d, mvg_mnist, domain_adaptation");
}

absl::Status ValidateW2ganConfig(const W2ganConfig& config) {
  OTGEN_ASSIGN_OR_RETURN(const int64_t dim, DataDimension(config.data()));
  if (config.data().has_pair_2d()) {
    const std::string& name = config.data().pair_2d();
    if (name != "4gaussians" && name != "checkerboard" && name != "2spirals") {
      return Invalid("data.pair_2d", absl::StrCat("expected \"4gaussians\", \"checkerboard\" or \"2spirals\", got \"",
                                                  name, "\""));
    }
  } else if (config.data().reverse_pair()) {
    return Invalid("data.reverse_pair", "applies to pair_2d data only");
  }
  if (config.data().has_domain_adaptation()) {
    const DomainAdaptationData& da = config.data().domain_adaptation();
    if (da.usps_path().empty()) return Invalid("data.domain_adaptation.usps_path", "required (the USPS HDF5 file)");
    if (da.mnist_test_subset() < 1 || da.mnist_test_subset() > 10000) {
      return Invalid("data.domain_adaptation.mnist_test_subset",
                     absl::StrCat("expected a value in [1, 10000], got ", da.mnist_test_subset()));
    }
  }
  if (config.batch_size() < 2) {
    return Invalid("batch_size", absl::StrCat("expected >= 2 (the generator's batch norm), got ", config.batch_size()));
  }
  if (config.method() != BARYCENTRIC_OT && config.critic_steps() < 1) {
    return Invalid("critic_steps", absl::StrCat("expected >= 1, got ", config.critic_steps()));
  }
  OTGEN_RETURN_IF_ERROR(ValidateGeneratorConfig(config.generator(), dim, "generator"));
  if (!config.has_generator()) return Invalid("generator", "required");
  OTGEN_RETURN_IF_ERROR(ValidateOptimizerConfig(config.generator_optimizer(), "generator_optimizer"));
  OTGEN_RETURN_IF_ERROR(ValidateOptimizerConfig(config.critic_optimizer(), "critic_optimizer"));
  switch (config.method()) {
    case W2GAN: {
      const PotentialsConfig& p = config.potentials();
      OTGEN_RETURN_IF_ERROR(ValidatePotentialNetwork(p.phi(), p.has_phi(), dim, "potentials.phi"));
      OTGEN_RETURN_IF_ERROR(ValidatePotentialNetwork(p.psi(), p.has_psi(), dim, "potentials.psi"));
      if (absl::Status s = W2Options(config.w2()).Validate(); !s.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("w2.", s.message()));
      }
      if (config.w2().lambda_eps() > 0.0f && p.parameterization() != PotentialsConfig::EPSILON) {
        return Invalid("w2.lambda_eps", "> 0 needs potentials.parameterization: EPSILON (psi = -phi + eps, A.8)");
      }
      break;
    }
    case WGAN_GP:
    case WGAN_LP: {
      OTGEN_RETURN_IF_ERROR(
          ValidatePotentialNetwork(config.wgan().critic(), config.wgan().has_critic(), dim, "wgan.critic"));
      if (!(config.wgan().lambda_gp() >= 0.0f) || !std::isfinite(config.wgan().lambda_gp())) {
        return Invalid("wgan.lambda_gp", absl::StrCat("expected a finite value >= 0, got ", config.wgan().lambda_gp()));
      }
      break;
    }
    case BARYCENTRIC_OT: {
      const BarycentricOtConfig& b = config.barycentric_ot();
      OTGEN_RETURN_IF_ERROR(ValidatePotentialNetwork(b.u(), b.has_u(), dim, "barycentric_ot.u"));
      OTGEN_RETURN_IF_ERROR(ValidatePotentialNetwork(b.v(), b.has_v(), dim, "barycentric_ot.v"));
      if (!(b.lambda() > 0.0f) || !std::isfinite(b.lambda())) {
        return Invalid("barycentric_ot.lambda", absl::StrCat("expected a finite value > 0, got ", b.lambda()));
      }
      if (b.dual_steps() < 1 || b.dual_steps() >= config.schedule().steps()) {
        return Invalid("barycentric_ot.dual_steps",
                       absl::StrCat("expected a value in [1, schedule.steps - 1] = [1, ", config.schedule().steps() - 1,
                                    "] (the rest of the steps fit the map), got ", b.dual_steps()));
      }
      break;
    }
    default:
      return Invalid("method", absl::StrCat("unknown method ", static_cast<int>(config.method())));
  }
  const EvaluationConfig& e = config.evaluation();
  if (e.map_error_points() < 2) {
    return Invalid("evaluation.map_error_points", absl::StrCat("expected >= 2, got ", e.map_error_points()));
  }
  if (e.plot_points() < 1 || e.plot_points() > e.map_error_points()) {
    return Invalid("evaluation.plot_points", absl::StrCat("expected a value in [1, map_error_points = ",
                                                          e.map_error_points(), "], got ", e.plot_points()));
  }
  if (e.heatmap_resolution() < 8 || e.heatmap_resolution() > 2048) {
    return Invalid("evaluation.heatmap_resolution", absl::StrCat("expected a value in [8, 2048], got ", e.heatmap_resolution()));
  }
  if (e.grid_images() < 1) return Invalid("evaluation.grid_images", absl::StrCat("expected >= 1, got ", e.grid_images()));
  const int64_t min_samples = config.data().has_mvg_mnist() && e.mnist_metrics() ? 1000 : 2;
  if (e.output_samples() < min_samples) {
    return Invalid("evaluation.output_samples",
                   absl::StrCat("expected >= ", min_samples,
                                min_samples > 2 ? " (the KID subsets of the MNIST metrics)" : "", ", got ",
                                e.output_samples()));
  }
  return absl::OkStatus();
}

absl::Status ValidateW2ganMessage(const google::protobuf::Message& message) {
  const auto* config = dynamic_cast<const W2ganConfig*>(&message);
  if (config == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("expected a W2ganConfig, got ", message.GetTypeName()));
  }
  return ValidateW2ganConfig(*config);
}

namespace {

// Draws rows of a data set uniformly with replacement (the "sample a mini-batch from Px" of
// Algorithms 1-2), with the caller's Rng.
class DatasetSampler : public data::Sampler {
 public:
  explicit DatasetSampler(data::InMemoryDataset dataset) : dataset_(std::move(dataset)) {}
  const nn::Shape& sample_shape() const override { return dataset_.example_shape(); }
  void SampleInto(int64_t n, nn::Rng& rng, Tensor* out) const override {
    PrepareOutput(n, out);
    const int64_t d = dataset_.example_numel();
    const float* src = dataset_.examples().data();
    float* dst = out->data();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t k = static_cast<int64_t>(rng.UniformInt(static_cast<uint64_t>(dataset_.size())));
      std::memcpy(dst + i * d, src + k * d, sizeof(float) * d);
    }
  }

 private:
  data::InMemoryDataset dataset_;
};

RowMatrixXf ToMatrix(const Tensor& t) {
  const int64_t n = t.dim(0), d = t.numel() / std::max<int64_t>(1, t.dim(0));
  return Eigen::Map<const RowMatrixXf>(t.data(), n, d);
}

Tensor ToTensor(const RowMatrixXf& m) {
  Tensor t = Tensor::Empty({m.rows(), m.cols()});
  std::memcpy(t.data(), m.data(), sizeof(float) * m.size());
  return t;
}

std::string JoinPath(const std::string& dir, const std::string& name) { return dir + "/" + name; }

class Experiment {
 public:
  explicit Experiment(W2ganConfig config)
      : config_(std::move(config)),
        dir_(config_.run().output_dir()),
        init_rng_(config_.run().seed(), 1),
        source_rng_(config_.run().seed(), 2),
        target_rng_(config_.run().seed(), 3),
        penalty_rng_(config_.run().seed(), 4) {}

  absl::Status Setup();
  absl::StatusOr<TrainingLoopResult> Run(bool resume);

 private:
  absl::Status LoadData();
  absl::Status BuildModels();
  TrainingLoopSpec Spec() const;

  absl::StatusOr<MetricRow> TrainStep(int64_t step);
  absl::StatusOr<MetricRow> W2ganStep();
  absl::StatusOr<MetricRow> WganStep();
  absl::StatusOr<MetricRow> BarycentricStep(int64_t step);
  absl::Status GeneratorUpdate(const std::function<absl::StatusOr<Var>(const Var&)>& loss_of_generated,
                               double* loss_value);
  absl::StatusOr<MetricRow> Evaluate(int64_t step);
  absl::Status WriteSamples(int64_t step, bool last);
  absl::Status Write2dFigures(int64_t step, bool last);
  absl::Status WriteStaticFigures();

  // G applied to `points` [n, d] in inference mode (batch norm running statistics), in chunks.
  absl::StatusOr<RowMatrixXf> MapPoints(const RowMatrixXf& points);
  // Values of a potential module at points, [n].
  absl::StatusOr<Eigen::VectorXf> PotentialValues(nn::Module& module, const RowMatrixXf& points);
  absl::StatusOr<RowMatrixXf> PotentialGradient(nn::Module& module, const RowMatrixXf& points);
  Var Generate(const Tensor& z) {
    absl::StatusOr<Var> y = generator_->Forward(Var(z));
    OTGEN_CHECK(y.ok(), y.status().ToString());
    return *y;
  }

  W2ganConfig config_;
  std::string dir_;
  int64_t dim_ = 0;
  int image_side_ = 0;  // 0 for 2-D data
  nn::Rng init_rng_, source_rng_, target_rng_, penalty_rng_;
  std::unique_ptr<data::Sampler> source_, target_;

  std::unique_ptr<ResidualGenerator> generator_;
  // W2GAN: phi, psi (or eps); WGAN: critic in a_; Barycentric-OT: u in a_, v in b_.
  std::unique_ptr<nn::layers::Sequential> a_, b_;
  W2Potentials potentials_;
  std::unique_ptr<optim::Optimizer> generator_optimizer_, critic_optimizer_;
  std::vector<Var> generator_parameters_, critic_parameters_;
  nn::TrainingState state_;

  Tensor z_, x_, z2_, x2_;

  // Evaluation.
  RowMatrixXf fixed_source_, fixed_target_;
  std::optional<eval::ReferenceMap> reference_;
  std::optional<eval::DomainAdaptationData> da_;
  MetricRow da_source_baseline_;
  std::unique_ptr<eval::MnistSampleScorer> mnist_scorer_;
};

absl::Status Experiment::LoadData() {
  const DataConfig& data = config_.data();
  OTGEN_ASSIGN_OR_RETURN(dim_, DataDimension(data));
  if (data.has_pair_2d()) {
    OTGEN_ASSIGN_OR_RETURN(data::Synthetic2dPair pair, data::MakeSynthetic2dPair(data.pair_2d()));
    source_ = std::move(pair.source);
    target_ = std::move(pair.target);
    if (data.reverse_pair()) std::swap(source_, target_);
    return absl::OkStatus();
  }
  if (data.has_mvg_mnist()) {
    image_side_ = 28;
    const std::string dir = data.mvg_mnist().mnist_dir().empty() ? "" : ResolveInputPath(data.mvg_mnist().mnist_dir());
    OTGEN_ASSIGN_OR_RETURN(data::InMemoryDataset train,
                           data::LoadMnist(dir, data::Split::kTrain,
                                           {.scaling = data::PixelScaling::kSymmetric, .flatten = true}));
    std::fprintf(stderr, "w2gan: fitting the MNIST Gaussian (mean and covariance of %lld images)...\n",
                 static_cast<long long>(train.size()));
    OTGEN_ASSIGN_OR_RETURN(data::MultivariateNormalSampler mvg, data::MultivariateNormalSampler::Fit(train.examples()));
    source_ = std::make_unique<data::MultivariateNormalSampler>(std::move(mvg));
    target_ = std::make_unique<DatasetSampler>(std::move(train));
    if (config_.evaluation().mnist_metrics()) {
      OTGEN_ASSIGN_OR_RETURN(mnist_scorer_, eval::MnistSampleScorer::Create({}, dir));
    }
    return absl::OkStatus();
  }
  const DomainAdaptationData& c = data.domain_adaptation();
  image_side_ = 16;
  const std::string mnist_dir = c.mnist_dir().empty() ? "" : ResolveInputPath(c.mnist_dir());
  OTGEN_ASSIGN_OR_RETURN(eval::DomainAdaptationData da,
                         eval::LoadDomainAdaptationData(ResolveInputPath(c.usps_path()), mnist_dir,
                                                        {.mnist_subset_seed = c.subset_seed(),
                                                         .mnist_subset_size = c.mnist_test_subset()}));
  const bool usps_to_mnist = c.direction() == DomainAdaptationData::USPS_TO_MNIST;
  source_ = std::make_unique<DatasetSampler>(usps_to_mnist ? da.usps_train : da.mnist_train);
  target_ = std::make_unique<DatasetSampler>(usps_to_mnist ? da.mnist_train : da.usps_train);
  da_ = std::move(da);
  return absl::OkStatus();
}

absl::Status Experiment::BuildModels() {
  OTGEN_ASSIGN_OR_RETURN(generator_, ResidualGenerator::Create(config_.generator(), dim_, init_rng_, "generator"));
  generator_parameters_ = generator_->Parameters();
  state_.modules.push_back({"generator", generator_.get()});
  auto build = [&](const NetworkConfig& net, const std::string& field) -> absl::Status {
    OTGEN_ASSIGN_OR_RETURN(std::unique_ptr<nn::layers::Sequential> m, BuildNetwork(net, {dim_}, {1}, init_rng_, field));
    (a_ ? b_ : a_) = std::move(m);
    return absl::OkStatus();
  };
  switch (config_.method()) {
    case W2GAN:
      OTGEN_RETURN_IF_ERROR(build(config_.potentials().phi(), "potentials.phi"));
      OTGEN_RETURN_IF_ERROR(build(config_.potentials().psi(), "potentials.psi"));
      potentials_.phi = ModulePotential(*a_);
      if (config_.potentials().parameterization() == PotentialsConfig::EPSILON) {
        potentials_.eps = ModulePotential(*b_);
        potentials_.psi = ot::EpsilonReparameterizedPsi(potentials_.phi, potentials_.eps);
        state_.modules.push_back({"phi", a_.get()});
        state_.modules.push_back({"eps", b_.get()});
      } else {
        potentials_.psi = ModulePotential(*b_);
        state_.modules.push_back({"phi", a_.get()});
        state_.modules.push_back({"psi", b_.get()});
      }
      break;
    case WGAN_GP:
    case WGAN_LP:
      OTGEN_RETURN_IF_ERROR(build(config_.wgan().critic(), "wgan.critic"));
      state_.modules.push_back({"critic", a_.get()});
      break;
    case BARYCENTRIC_OT:
      OTGEN_RETURN_IF_ERROR(build(config_.barycentric_ot().u(), "barycentric_ot.u"));
      OTGEN_RETURN_IF_ERROR(build(config_.barycentric_ot().v(), "barycentric_ot.v"));
      state_.modules.push_back({"u", a_.get()});
      state_.modules.push_back({"v", b_.get()});
      break;
    default:
      return Invalid("method", "unknown");
  }
  critic_parameters_ = a_->Parameters();
  if (b_) {
    for (const Var& p : b_->Parameters()) critic_parameters_.push_back(p);
  }
  OTGEN_ASSIGN_OR_RETURN(generator_optimizer_,
                         MakeOptimizer(config_.generator_optimizer(), generator_parameters_, "generator_optimizer"));
  OTGEN_ASSIGN_OR_RETURN(critic_optimizer_,
                         MakeOptimizer(config_.critic_optimizer(), critic_parameters_, "critic_optimizer"));
  state_.optimizers = {{"generator", generator_optimizer_.get()}, {"critic", critic_optimizer_.get()}};
  state_.rngs = {{"source", &source_rng_}, {"target", &target_rng_}, {"penalty", &penalty_rng_}};
  return absl::OkStatus();
}

absl::Status Experiment::Setup() {
  OTGEN_RETURN_IF_ERROR(ValidateW2ganConfig(config_));
  OTGEN_RETURN_IF_ERROR(LoadData());
  OTGEN_RETURN_IF_ERROR(BuildModels());
  // The fixed evaluation batch, from its own seed.
  nn::Rng eval_rng(config_.evaluation().seed(), 7);
  const int64_t n = image_side_ == 0 ? config_.evaluation().map_error_points() : config_.evaluation().output_samples();
  fixed_source_ = ToMatrix(source_->Sample(n, eval_rng).Reshape({n, dim_}));
  if (image_side_ == 0) {
    fixed_target_ = ToMatrix(target_->Sample(n, eval_rng).Reshape({n, dim_}));
    OTGEN_ASSIGN_OR_RETURN(reference_, eval::ComputeReferenceMap(fixed_source_, fixed_target_));
    std::fprintf(stderr, "w2gan: Discrete-OT reference on %lld fixed points: mean displacement %.4f, W2^2 %.4f\n",
                 static_cast<long long>(n), reference_->mean_displacement, reference_->ot_cost);
  }
  if (da_) {
    const bool usps_to_mnist = config_.data().domain_adaptation().direction() == DomainAdaptationData::USPS_TO_MNIST;
    const data::InMemoryDataset& train = usps_to_mnist ? da_->usps_train : da_->mnist_train;
    if (usps_to_mnist) {
      OTGEN_ASSIGN_OR_RETURN(eval::TransferResult r,
                             eval::OneNearestNeighborTransfer("source", train, da_->mnist_test_subset));
      OTGEN_ASSIGN_OR_RETURN(eval::TransferResult all, eval::OneNearestNeighborTransfer("source", train, da_->mnist_test));
      da_source_baseline_ = {{"da_source_accuracy", r.accuracy}, {"da_source_accuracy_all", all.accuracy}};
    } else {
      OTGEN_ASSIGN_OR_RETURN(eval::TransferResult r, eval::OneNearestNeighborTransfer("source", train, da_->usps_test));
      da_source_baseline_ = {{"da_source_accuracy", r.accuracy}};
    }
    std::fprintf(stderr, "w2gan: 1-NN accuracy without mapping (source baseline): %.2f%%\n",
                 100.0 * da_source_baseline_["da_source_accuracy"]);
  }
  return absl::OkStatus();
}

TrainingLoopSpec Experiment::Spec() const {
  TrainingLoopSpec spec;
  spec.name = "w2gan";
  switch (config_.method()) {
    case W2GAN:
      spec.step_columns = {"critic_loss", "dual", "ineq", "eq", "eps", "generator_loss"};
      spec.progress_columns = {"dual", "ineq", "generator_loss"};
      spec.plots = {{"losses", {"critic_loss", "dual", "generator_loss"}, "W2GAN losses", "value"},
                    {"penalties", {"ineq", "eq", "eps"}, "W2GAN penalties", "value"}};
      break;
    case WGAN_GP:
    case WGAN_LP:
      spec.step_columns = {"critic_loss", "wasserstein", "gradient_penalty", "generator_loss"};
      spec.progress_columns = {"wasserstein", "gradient_penalty"};
      spec.plots = {{"losses", {"critic_loss", "wasserstein", "generator_loss"}, "WGAN losses", "value"}};
      break;
    default:
      spec.step_columns = {"dual_loss", "mean_density", "map_loss"};
      spec.progress_columns = {"dual_loss", "mean_density", "map_loss"};
      spec.plots = {{"losses", {"dual_loss", "map_loss"}, "Barycentric-OT losses", "value"}};
      break;
  }
  if (image_side_ == 0) {
    spec.eval_columns = {"map_error", "map_error_relative", "exact_ot_cost"};
    spec.plots.push_back({"map_error", {"map_error_relative"}, "map error relative to the mean displacement", "E / D"});
  } else if (da_) {
    spec.eval_columns = {"da_accuracy", "da_source_accuracy"};
    if (config_.data().domain_adaptation().direction() == DomainAdaptationData::USPS_TO_MNIST) {
      spec.eval_columns.push_back("da_accuracy_all");
      spec.eval_columns.push_back("da_source_accuracy_all");
    }
  } else if (mnist_scorer_) {
    spec.eval_columns = eval::MnistSampleMetrics::RowColumns("eval_");
  }
  return spec;
}

absl::StatusOr<MetricRow> Experiment::TrainStep(int64_t step) {
  switch (config_.method()) {
    case W2GAN: return W2ganStep();
    case WGAN_GP:
    case WGAN_LP: return WganStep();
    default: return BarycentricStep(step);
  }
}

absl::Status Experiment::GeneratorUpdate(const std::function<absl::StatusOr<Var>(const Var&)>& loss_of_generated,
                                         double* loss_value) {
  source_->SampleInto(config_.batch_size(), source_rng_, &z_);
  const Var y = Generate(z_.Reshape({config_.batch_size(), dim_}));
  OTGEN_ASSIGN_OR_RETURN(Var loss, loss_of_generated(y));
  *loss_value = loss.item();
  generator_optimizer_->ZeroGrad();
  SetGradients(loss, generator_parameters_);
  generator_optimizer_->Step();
  return absl::OkStatus();
}

absl::StatusOr<MetricRow> Experiment::W2ganStep() {
  const int64_t batch = config_.batch_size();
  const W2CriticLossOptions options = W2Options(config_.w2());
  double dual = 0, ineq = 0, eq = 0, eps = 0, critic = 0;
  for (int t = 0; t < config_.critic_steps(); ++t) {
    W2CriticBatch b;
    {
      nn::NoGradGuard no_grad;
      source_->SampleInto(batch, source_rng_, &z_);
      target_->SampleInto(batch, target_rng_, &x_);
      b.generated = Var(Generate(z_.Reshape({batch, dim_})).value());
      b.data = Var(x_.Reshape({batch, dim_}));
      if (options.ineq_on_interpolates) {
        source_->SampleInto(batch, source_rng_, &z2_);
        target_->SampleInto(batch, target_rng_, &x2_);
        b.generated2 = Var(Generate(z2_.Reshape({batch, dim_})).value());
        b.data2 = Var(x2_.Reshape({batch, dim_}));
      }
    }
    OTGEN_ASSIGN_OR_RETURN(W2CriticTerms terms, W2CriticLoss(potentials_, b, penalty_rng_, options));
    critic_optimizer_->ZeroGrad();
    SetGradients(terms.loss, critic_parameters_);
    critic_optimizer_->Step();
    critic += terms.loss.item();
    dual += terms.dual;
    ineq += terms.ineq;
    eq += terms.eq;
    eps += terms.eps;
  }
  const double k = config_.critic_steps();
  double generator_loss = 0;
  OTGEN_RETURN_IF_ERROR(
      GeneratorUpdate([this](const Var& y) { return W2GeneratorLoss(potentials_.phi, y); }, &generator_loss));
  return MetricRow{{"critic_loss", critic / k}, {"dual", dual / k}, {"ineq", ineq / k},
                   {"eq", eq / k},              {"eps", eps / k},   {"generator_loss", generator_loss}};
}

absl::StatusOr<MetricRow> Experiment::WganStep() {
  const int64_t batch = config_.batch_size();
  const GradientPenalty kind = config_.method() == WGAN_GP ? GradientPenalty::kGradient : GradientPenalty::kLipschitz;
  const ot::Potential critic = ModulePotential(*a_);
  double loss = 0, w1 = 0, gp = 0;
  for (int t = 0; t < config_.critic_steps(); ++t) {
    Var fake;
    {
      nn::NoGradGuard no_grad;
      source_->SampleInto(batch, source_rng_, &z_);
      target_->SampleInto(batch, target_rng_, &x_);
      fake = Var(Generate(z_.Reshape({batch, dim_})).value());
    }
    OTGEN_ASSIGN_OR_RETURN(WganCriticTerms terms, WganCriticLoss(critic, Var(x_.Reshape({batch, dim_})), fake,
                                                                 penalty_rng_, kind, config_.wgan().lambda_gp()));
    critic_optimizer_->ZeroGrad();
    SetGradients(terms.loss, critic_parameters_);
    critic_optimizer_->Step();
    loss += terms.loss.item();
    w1 += terms.wasserstein;
    gp += terms.penalty;
  }
  const double k = config_.critic_steps();
  double generator_loss = 0;
  OTGEN_RETURN_IF_ERROR(GeneratorUpdate([&critic](const Var& y) { return WganGeneratorLoss(critic, y); }, &generator_loss));
  return MetricRow{{"critic_loss", loss / k}, {"wasserstein", w1 / k}, {"gradient_penalty", gp / k},
                   {"generator_loss", generator_loss}};
}

absl::StatusOr<MetricRow> Experiment::BarycentricStep(int64_t step) {
  const int64_t batch = config_.batch_size();
  const ot::RegularizedDualOptions options = DualOptions(config_.barycentric_ot());
  source_->SampleInto(batch, source_rng_, &z_);
  target_->SampleInto(batch, target_rng_, &x_);
  const Tensor z = z_.Reshape({batch, dim_});
  const Tensor x = x_.Reshape({batch, dim_});
  OTGEN_ASSIGN_OR_RETURN(const Tensor cost, HalfSquaredDistances(z, x));
  const ot::Potential u = ModulePotential(*a_);
  const ot::Potential v = ModulePotential(*b_);
  if (step <= config_.barycentric_ot().dual_steps()) {
    const Var u_z = u(Var(z));
    const Var v_x = v(Var(x));
    OTGEN_ASSIGN_OR_RETURN(Var loss, BarycentricDualLoss(u_z, v_x, cost, options));
    OTGEN_ASSIGN_OR_RETURN(Tensor density, BarycentricDensity(u_z.value(), v_x.value(), cost, options));
    critic_optimizer_->ZeroGrad();
    SetGradients(loss, critic_parameters_);
    critic_optimizer_->Step();
    double mean = 0;
    for (float m : density.span()) mean += m;
    return MetricRow{{"dual_loss", loss.item()}, {"mean_density", mean / density.numel()}};
  }
  Tensor density;
  {
    nn::NoGradGuard no_grad;
    OTGEN_ASSIGN_OR_RETURN(density, BarycentricDensity(u(Var(z)).value(), v(Var(x)).value(), cost, options));
  }
  const Var fz = Generate(z);
  OTGEN_ASSIGN_OR_RETURN(Var loss, BarycentricFitLoss(fz, density, x));
  generator_optimizer_->ZeroGrad();
  SetGradients(loss, generator_parameters_);
  generator_optimizer_->Step();
  double mean = 0;
  for (float m : density.span()) mean += m;
  return MetricRow{{"map_loss", loss.item()}, {"mean_density", mean / density.numel()}};
}

absl::StatusOr<RowMatrixXf> Experiment::MapPoints(const RowMatrixXf& points) {
  nn::NoGradGuard no_grad;
  generator_->Eval();
  RowMatrixXf out(points.rows(), points.cols());
  constexpr int64_t kChunk = 4096;
  absl::Status status;
  for (int64_t begin = 0; begin < points.rows() && status.ok(); begin += kChunk) {
    const int64_t n = std::min<int64_t>(kChunk, points.rows() - begin);
    Tensor t = Tensor::Empty({n, points.cols()});
    std::memcpy(t.data(), points.data() + begin * points.cols(), sizeof(float) * n * points.cols());
    absl::StatusOr<Var> y = generator_->Forward(Var(t));
    if (!y.ok()) {
      status = y.status();
      break;
    }
    std::memcpy(out.data() + begin * points.cols(), y->value().data(), sizeof(float) * n * points.cols());
  }
  generator_->Train();
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<Eigen::VectorXf> Experiment::PotentialValues(nn::Module& module, const RowMatrixXf& points) {
  nn::NoGradGuard no_grad;
  OTGEN_ASSIGN_OR_RETURN(Var v, module.Forward(Var(ToTensor(points))));
  return Eigen::Map<const Eigen::VectorXf>(v.value().data(), v.numel());
}

absl::StatusOr<RowMatrixXf> Experiment::PotentialGradient(nn::Module& module, const RowMatrixXf& points) {
  const Var p(ToTensor(points), true);
  OTGEN_ASSIGN_OR_RETURN(Var v, module.Forward(p));
  const Var g = nn::Grad({nn::SumAll(v)}, {p})[0];
  return ToMatrix(g.value());
}

absl::StatusOr<MetricRow> Experiment::Evaluate(int64_t step) {
  (void)step;
  MetricRow row;
  if (reference_) {
    OTGEN_ASSIGN_OR_RETURN(RowMatrixXf mapped, MapPoints(reference_->source));
    OTGEN_ASSIGN_OR_RETURN(eval::MapErrorResult e, eval::EvaluateMapError(*reference_, mapped));
    row["map_error"] = e.mean_error;
    row["map_error_relative"] = e.relative_error;
    OTGEN_ASSIGN_OR_RETURN(ot::ExactOTResult ot, ot::SolveExactOT(mapped, fixed_target_, ot::Cost::SquaredEuclidean(2.0f)));
    row["exact_ot_cost"] = ot.cost;
    return row;
  }
  if (da_) {
    const bool usps_to_mnist = config_.data().domain_adaptation().direction() == DomainAdaptationData::USPS_TO_MNIST;
    const data::InMemoryDataset& train = usps_to_mnist ? da_->usps_train : da_->mnist_train;
    const eval::ImageMap map = [this](const RowMatrixXf& source) { return MapPoints(source); };
    if (usps_to_mnist) {
      OTGEN_ASSIGN_OR_RETURN(eval::TransferResult r,
                             eval::OneNearestNeighborTransfer("USPS -> MNIST", train, da_->mnist_test_subset, map));
      OTGEN_ASSIGN_OR_RETURN(eval::TransferResult all,
                             eval::OneNearestNeighborTransfer("USPS -> MNIST (all)", train, da_->mnist_test, map));
      row["da_accuracy"] = r.accuracy;
      row["da_accuracy_all"] = all.accuracy;
    } else {
      OTGEN_ASSIGN_OR_RETURN(eval::TransferResult r,
                             eval::OneNearestNeighborTransfer("MNIST -> USPS", train, da_->usps_test, map));
      row["da_accuracy"] = r.accuracy;
    }
    for (const auto& [k, v] : da_source_baseline_) row[k] = v;
    return row;
  }
  if (mnist_scorer_) {
    OTGEN_ASSIGN_OR_RETURN(RowMatrixXf mapped, MapPoints(fixed_source_));
    OTGEN_ASSIGN_OR_RETURN(eval::MnistSampleMetrics m, mnist_scorer_->Score(ToTensor(mapped), eval::PixelRange::kSymmetric));
    OTGEN_ASSIGN_OR_RETURN(eval::MnistSampleMetrics real, mnist_scorer_->RealVsRealBaseline());
    std::fprintf(stderr, "%s", eval::FormatMnistReport(m, real).c_str());
    for (const auto& [k, v] : m.AsRow("eval_")) row[k] = v;
  }
  return row;
}

absl::Status Experiment::WriteStaticFigures() {
  if (image_side_ != 0) {
    const int64_t k = std::min<int64_t>(config_.evaluation().grid_images(), fixed_source_.rows());
    Tensor inputs = ToTensor(fixed_source_.topRows(k)).Reshape({k, 1, image_side_, image_side_});
    return eval::WriteImageGrid(JoinPath(dir_, "inputs.png"), inputs, {.scale = 2});
  }
  const int64_t k = config_.evaluation().plot_points();
  eval::PlotOptions opt;
  opt.title = absl::StrCat(config_.data().pair_2d(), ": source Pz (magenta), target Px (green)");
  OTGEN_RETURN_IF_ERROR(PlotPointSets(JoinPath(dir_, "data.png"), {fixed_source_, fixed_target_},
                                      {SourceColor(), TargetColor()}, {"source z ~ Pz", "target x ~ Px"}, opt));
  opt.title = absl::StrCat(config_.data().pair_2d(), ": Discrete-OT map on ", k, " points");
  return eval::PlotMapArrows(JoinPath(dir_, "discrete_ot.png"), reference_->source.topRows(k),
                             reference_->mapped.topRows(k), fixed_target_, opt);
}

absl::Status Experiment::Write2dFigures(int64_t step, bool last) {
  OTGEN_ASSIGN_OR_RETURN(RowMatrixXf mapped, MapPoints(fixed_source_));
  OTGEN_RETURN_IF_ERROR(eval::WriteNpyMatrix(JoinPath(dir_, absl::StrCat("mapped_", step, ".npy")), mapped));
  const int64_t k = config_.evaluation().plot_points();
  const std::string& name = config_.data().pair_2d();
  eval::PlotOptions opt;
  opt.title = absl::StrCat(name, ", step ", step, ": z -> G(z)");
  OTGEN_RETURN_IF_ERROR(eval::PlotMapArrows(JoinPath(dir_, absl::StrCat("map_", step, ".png")),
                                            fixed_source_.topRows(k), mapped.topRows(k), fixed_target_, opt));
  const Box box = BoundingBox({fixed_source_, fixed_target_, mapped}, 0.05);
  const int res = config_.evaluation().heatmap_resolution();
  const RowMatrixXf grid = GridPoints(box, res);
  std::vector<std::pair<std::string, nn::Module*>> heat;
  if (config_.method() == W2GAN) {
    // Fig. 3-a / Fig. 4 bottom row: the direction phi gives the generator, G(z) -> G(z) - grad phi(G(z)).
    RowMatrixXf at = mapped.topRows(k);
    OTGEN_ASSIGN_OR_RETURN(RowMatrixXf g, PotentialGradient(*a_, at));
    opt.title = absl::StrCat(name, ", step ", step, ": G(z) -> G(z) - grad phi(G(z))");
    OTGEN_RETURN_IF_ERROR(eval::PlotMapArrows(JoinPath(dir_, absl::StrCat("grad_", step, ".png")), at, at - g,
                                              fixed_target_, opt));
    heat = {{"phi", a_.get()}};
    if (config_.potentials().parameterization() == PotentialsConfig::TWO_NETWORKS) {
      heat.push_back({"psi", b_.get()});
    } else {
      heat.push_back({"eps", b_.get()});
    }
  } else if (IsWgan(config_.method())) {
    heat = {{"critic", a_.get()}};
  } else {
    heat = {{"u", a_.get()}, {"v", b_.get()}};
  }
  for (const auto& [label, module] : heat) {
    OTGEN_ASSIGN_OR_RETURN(Eigen::VectorXf values, PotentialValues(*module, grid));
    OTGEN_RETURN_IF_ERROR(WriteHeatMap(JoinPath(dir_, absl::StrCat(label, "_", step, ".png")), values, res));
  }
  if (!last) return absl::OkStatus();
  OTGEN_RETURN_IF_ERROR(eval::WriteNpyMatrix(JoinPath(dir_, "samples.npy"), mapped));
  // The generator's path through the saved snapshots (steps <= this one), from the identity.
  std::map<int64_t, std::string> snapshots;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    const std::string file = entry.path().filename().string();
    long long s = 0;
    char tail[8] = {0};
    if (std::sscanf(file.c_str(), "mapped_%lld.%4s", &s, tail) == 2 && std::string(tail) == "npy" && s <= step) {
      snapshots[s] = entry.path().string();
    }
  }
  std::vector<RowMatrixXf> path = {fixed_source_.topRows(k)};
  for (const auto& [s, file] : snapshots) {
    OTGEN_ASSIGN_OR_RETURN(RowMatrixXf m, eval::ReadNpyMatrix(file));
    if (m.rows() < k || m.cols() != 2) return absl::DataLossError(absl::StrCat(file, ": expected ", k, " x 2 or more rows"));
    path.push_back(m.topRows(k));
  }
  opt.title = absl::StrCat(name, ": the generator's path G_t(z), ", snapshots.size(), " snapshots to step ", step);
  return PlotPaths(JoinPath(dir_, "path.png"), path, fixed_target_, opt);
}

absl::Status Experiment::WriteSamples(int64_t step, bool last) {
  if (image_side_ == 0) return Write2dFigures(step, last);
  const int64_t k = std::min<int64_t>(config_.evaluation().grid_images(), fixed_source_.rows());
  OTGEN_ASSIGN_OR_RETURN(RowMatrixXf mapped, MapPoints(last ? fixed_source_ : RowMatrixXf(fixed_source_.topRows(k))));
  Tensor grid = ToTensor(mapped.topRows(k)).Reshape({k, 1, image_side_, image_side_});
  OTGEN_RETURN_IF_ERROR(eval::WriteImageGrid(JoinPath(dir_, absl::StrCat("outputs_", step, ".png")), grid, {.scale = 2}));
  if (!last) return absl::OkStatus();
  return eval::WriteNpyTensor(JoinPath(dir_, "samples.npy"),
                              ToTensor(mapped).Reshape({mapped.rows(), 1, image_side_, image_side_}));
}

absl::StatusOr<TrainingLoopResult> Experiment::Run(bool resume) {
  OTGEN_RETURN_IF_ERROR(MakeDirectories(dir_));
  OTGEN_RETURN_IF_ERROR(WriteStaticFigures());
  TrainingLoop loop(config_.run(), config_.schedule(), Spec(), &state_);
  TrainingLoopHooks hooks;
  hooks.train_step = [this](int64_t step) { return TrainStep(step); };
  hooks.evaluate = [this](int64_t step) { return Evaluate(step); };
  hooks.write_samples = [this](int64_t step, bool last) { return WriteSamples(step, last); };
  return loop.Run(hooks, resume);
}

}  // namespace

absl::StatusOr<TrainingLoopResult> RunW2gan(const W2ganConfig& config, bool resume) {
  Experiment experiment(config);
  OTGEN_RETURN_IF_ERROR(experiment.Setup());
  return experiment.Run(resume);
}

}  // namespace otgen::apps::w2gan
