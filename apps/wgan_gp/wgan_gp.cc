#include "apps/wgan_gp/wgan_gp.h"

#include <cmath>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "apps/common/config.h"
#include "apps/common/network.h"
#include "apps/common/optimizer_factory.h"
#include "nn/autograd.h"
#include "nn/ops.h"
#include "nn/status_macros.h"

namespace otgen::apps::wgan_gp {
namespace {

using nn::Var;

absl::Status Invalid(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

PenaltyOptions PenaltyFromConfig(const LipschitzConfig& config) {
  PenaltyOptions p;
  p.weight = config.penalty_weight();
  switch (config.kind()) {
    case LipschitzConfig::GRADIENT_PENALTY: p.kind = PenaltyKind::kGradient; break;
    case LipschitzConfig::LIPSCHITZ_PENALTY: p.kind = PenaltyKind::kLipschitz; break;
    case LipschitzConfig::WEIGHT_CLIPPING: p.kind = PenaltyKind::kNone; break;
  }
  return p;
}

absl::Status CheckFinite(double value, const char* what) {
  if (std::isfinite(value)) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, " is ", value, ": training diverged (lower the learning rates)"));
}

}  // namespace

absl::Status ValidateWganGpConfig(const WganGpConfig& config) {
  OTGEN_RETURN_IF_ERROR(ValidateCommon(config));
  OTGEN_RETURN_IF_ERROR(gan::ValidateGanDataConfig(config.data(), "data"));
  OTGEN_RETURN_IF_ERROR(gan::ValidateNoiseConfig(config.noise(), "noise"));
  OTGEN_RETURN_IF_ERROR(gan::ValidateGanEvalConfig(config.eval(), "eval"));
  OTGEN_ASSIGN_OR_RETURN(const nn::Shape example, gan::DataExampleShape(config.data()));
  if (!config.has_generator()) return Invalid("generator", "missing (a network config is required)");
  if (!config.has_critic()) return Invalid("critic", "missing (a network config is required)");
  OTGEN_RETURN_IF_ERROR(ValidateNetwork(config.generator(), {config.noise().dim()}, example, "generator"));
  OTGEN_RETURN_IF_ERROR(ValidateNetwork(config.critic(), example, {1}, "critic"));
  OTGEN_RETURN_IF_ERROR(ValidateOptimizerConfig(config.generator_optimizer(), "generator_optimizer"));
  OTGEN_RETURN_IF_ERROR(ValidateOptimizerConfig(config.critic_optimizer(), "critic_optimizer"));
  if (config.critic_steps() < 1) {
    return Invalid("critic_steps", absl::StrCat("expected >= 1, got ", config.critic_steps()));
  }
  const LipschitzConfig& l = config.lipschitz();
  if (!(l.penalty_weight() >= 0) || !std::isfinite(l.penalty_weight())) {
    return Invalid("lipschitz.penalty_weight", absl::StrCat("expected a finite value >= 0, got ", l.penalty_weight()));
  }
  if (l.kind() == LipschitzConfig::WEIGHT_CLIPPING && (!(l.clip_value() > 0) || !std::isfinite(l.clip_value()))) {
    return Invalid("lipschitz.clip_value", absl::StrCat("expected a finite value > 0, got ", l.clip_value()));
  }
  return absl::OkStatus();
}

std::vector<std::string> WganGpTrainer::StepColumns() {
  return {"critic_loss", "wasserstein", "penalty", "grad_norm", "generator_loss"};
}

absl::StatusOr<std::unique_ptr<WganGpTrainer>> WganGpTrainer::Create(const WganGpConfig& config) {
  OTGEN_RETURN_IF_ERROR(ValidateWganGpConfig(config));
  std::unique_ptr<WganGpTrainer> t(new WganGpTrainer());
  t->config_ = config;
  t->penalty_ = PenaltyFromConfig(config.lipschitz());
  const uint64_t seed = config.run().seed();
  t->init_rng_ = nn::Rng(seed, gan::kInitStream);
  t->noise_rng_ = nn::Rng(seed, gan::kNoiseStream);
  t->aux_rng_ = nn::Rng(seed, gan::kAuxStream);
  OTGEN_ASSIGN_OR_RETURN(t->data_, gan::GanData::Create(config.data(), seed));
  t->noise_ = gan::MakeNoiseSampler(config.noise());
  OTGEN_ASSIGN_OR_RETURN(t->generator_, BuildNetwork(config.generator(), {config.noise().dim()},
                                                     t->data_->example_shape(), t->init_rng_, "generator"));
  OTGEN_ASSIGN_OR_RETURN(t->critic_, BuildNetwork(config.critic(), t->data_->example_shape(), {1}, t->init_rng_,
                                                  "critic"));
  t->generator_params_ = t->generator_->Parameters();
  t->critic_params_ = t->critic_->Parameters();
  OTGEN_ASSIGN_OR_RETURN(t->generator_optimizer_,
                         MakeOptimizer(config.generator_optimizer(), t->generator_params_, "generator_optimizer"));
  OTGEN_ASSIGN_OR_RETURN(t->critic_optimizer_,
                         MakeOptimizer(config.critic_optimizer(), t->critic_params_, "critic_optimizer"));
  if (config.lipschitz().kind() == LipschitzConfig::WEIGHT_CLIPPING) {
    ClipParameters(t->critic_params_, config.lipschitz().clip_value());
  }
  t->t_ = nn::Tensor::Zeros({config.data().batch_size()});
  nn::TrainingState& s = t->state_;
  s.modules = {{"generator", t->generator_.get()}, {"critic", t->critic_.get()}};
  s.optimizers = {{"generator", t->generator_optimizer_.get()}, {"critic", t->critic_optimizer_.get()}};
  s.rngs = {{"init", &t->init_rng_}, {"noise", &t->noise_rng_}, {"interpolation", &t->aux_rng_}};
  t->data_->Register(&s);
  return t;
}

absl::StatusOr<MetricRow> WganGpTrainer::CriticStep() {
  const int64_t b = config_.data().batch_size();
  OTGEN_RETURN_IF_ERROR(data_->NextBatch(&real_));
  noise_->SampleInto(b, noise_rng_, &z_);
  nn::Tensor fake;
  {
    nn::NoGradGuard no_grad;
    OTGEN_ASSIGN_OR_RETURN(Var x, generator_->Forward(Var::Constant(z_)));
    fake = x.value();
  }
  if (penalty_.kind != PenaltyKind::kNone) {
    for (int64_t i = 0; i < b; ++i) t_.data()[i] = aux_rng_.Uniform();
  }
  OTGEN_ASSIGN_OR_RETURN(CriticLossTerms terms,
                         CriticLoss(*critic_, Var::Constant(real_), Var::Constant(fake), t_, penalty_));
  OTGEN_RETURN_IF_ERROR(CheckFinite(terms.loss.item(), "the critic loss"));
  critic_optimizer_->ZeroGrad();
  SetGradients(terms.loss, critic_params_);
  critic_optimizer_->Step();
  if (config_.lipschitz().kind() == LipschitzConfig::WEIGHT_CLIPPING) {
    ClipParameters(critic_params_, config_.lipschitz().clip_value());
  }
  return MetricRow{{"critic_loss", terms.loss.item()},
                   {"wasserstein", terms.wasserstein.item()},
                   {"penalty", terms.penalty.item()},
                   {"grad_norm", terms.mean_gradient_norm}};
}

absl::StatusOr<MetricRow> WganGpTrainer::Iteration() {
  MetricRow row;
  for (int k = 0; k < config_.critic_steps(); ++k) {
    OTGEN_ASSIGN_OR_RETURN(row, CriticStep());
  }
  noise_->SampleInto(config_.data().batch_size(), noise_rng_, &z_);
  OTGEN_ASSIGN_OR_RETURN(Var fake, generator_->Forward(Var::Constant(z_)));
  OTGEN_ASSIGN_OR_RETURN(Var loss, GeneratorLoss(*critic_, fake));
  OTGEN_RETURN_IF_ERROR(CheckFinite(loss.item(), "the generator loss"));
  generator_optimizer_->ZeroGrad();
  SetGradients(loss, generator_params_);
  generator_optimizer_->Step();
  row["generator_loss"] = loss.item();
  return row;
}

absl::StatusOr<TrainingLoopResult> RunWganGp(const WganGpConfig& config, bool resume) {
  OTGEN_ASSIGN_OR_RETURN(std::unique_ptr<WganGpTrainer> trainer, WganGpTrainer::Create(config));
  gan::GanEvaluator evaluator(config.eval(), &trainer->data(), &trainer->noise(), config.run().seed(),
                              config.run().output_dir());
  TrainingLoopSpec spec;
  spec.name = "wgan_gp";
  spec.step_columns = WganGpTrainer::StepColumns();
  spec.eval_columns = evaluator.Columns();
  spec.progress_columns = {"critic_loss", "wasserstein", "generator_loss"};
  spec.plots = {
      CurvePlot{"losses", {"critic_loss", "generator_loss"}, "WGAN losses", "loss"},
      CurvePlot{"critic", {"wasserstein", "penalty", "grad_norm"}, "critic: W1 estimate, penalty, ||grad u||",
                "value"},
  };
  TrainingLoopHooks hooks;
  hooks.train_step = [&](int64_t) { return trainer->Iteration(); };
  hooks.evaluate = [&](int64_t step) -> absl::StatusOr<MetricRow> {
    OTGEN_ASSIGN_OR_RETURN(MetricRow row, evaluator.Evaluate(trainer->generator(), step));
    std::fprintf(stderr, "wgan_gp: step %lld: %s\n", static_cast<long long>(step), evaluator.last_report().c_str());
    return row;
  };
  hooks.write_samples = [&](int64_t step, bool last) {
    return evaluator.WriteSamples(trainer->generator(), step, last);
  };
  hooks.before_checkpoint = [&] { return trainer->data().BeforeCheckpoint(); };
  hooks.after_restore = [&] { return trainer->data().AfterRestore(); };
  TrainingLoop loop(config.run(), config.schedule(), spec, trainer->state());
  return loop.Run(hooks, resume);
}

}  // namespace otgen::apps::wgan_gp
