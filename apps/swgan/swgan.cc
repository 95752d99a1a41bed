#include "apps/swgan/swgan.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "apps/common/config.h"
#include "apps/common/network.h"
#include "apps/common/optimizer_factory.h"
#include "apps/swgan/pairwise_cost.h"
#include "apps/wgan_gp/wgan_losses.h"
#include "nn/ops.h"
#include "nn/status_macros.h"

namespace otgen::apps::swgan {
namespace {

using nn::Tensor;
using nn::Var;
using nn::layers::Sequential;

absl::Status Invalid(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

absl::Status CheckFinite(double value, const std::string& what) {
  if (std::isfinite(value)) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, " is ", value, ": training diverged (lower the learning rates or raise lambda)"));
}

// The per-example output shape of `net` for per-example inputs `input`.
absl::StatusOr<nn::Shape> OutputShapeOf(const Sequential& net, const nn::Shape& input, const std::string& field) {
  nn::Shape batched = {2};
  batched.insert(batched.end(), input.begin(), input.end());
  absl::StatusOr<nn::Shape> out = net.OutputShape(batched);
  if (!out.ok()) return Invalid(field, std::string(out.status().message()));
  return nn::Shape(out->begin() + 1, out->end());
}

// {n} values of a potential network (output {n, 1} or {n}).
absl::StatusOr<Var> PotentialValues(Sequential& net, const Var& x, const std::string& name) {
  OTGEN_ASSIGN_OR_RETURN(Var u, net.Forward(x));
  if (u.rank() == 1 && u.dim(0) == x.dim(0)) return u;
  if (u.rank() == 2 && u.dim(1) == 1) return nn::Reshape(u, {x.dim(0)});
  return absl::InvalidArgumentError(absl::StrCat(name, ": expected outputs of shape [", x.dim(0), ", 1], got ",
                                                 nn::ShapeToString(u.shape())));
}

// The shape potentials take: the latent code's shape with a latent space, else the example's.
absl::StatusOr<nn::Shape> PotentialInputShape(const SwganConfig& config, const nn::Shape& example) {
  if (!config.has_latent()) return example;
  nn::Rng rng(0);
  OTGEN_ASSIGN_OR_RETURN(std::unique_ptr<Sequential> eta,
                         BuildNetwork(config.latent().network(), example, {}, rng, "latent.network"));
  return OutputShapeOf(*eta, example, "latent.network");
}

}  // namespace

ot::Cost CostFromConfig(const CostConfig& config) {
  switch (config.kind()) {
    case CostConfig::L1: return ot::Cost::L1(config.scale());
    case CostConfig::COSINE: return ot::Cost::Cosine(config.scale());
    case CostConfig::SQUARED_EUCLIDEAN: return ot::Cost::SquaredEuclidean(config.scale());
  }
  return ot::Cost::L1(config.scale());
}

ot::RegularizedDualOptions DualOptionsFromConfig(const DualConfig& config) {
  ot::RegularizedDualOptions o;
  o.regularizer = config.regularizer() == DualConfig::KL ? ot::Regularizer::kKL : ot::Regularizer::kL2;
  o.lambda = config.lambda();
  return o;
}

absl::StatusOr<DualEstimate> EvaluateDual(const Var& phi, const Var& psi, const Tensor& cost,
                                          const ot::RegularizedDualOptions& options) {
  OTGEN_RETURN_IF_ERROR(options.Validate());
  const Var c = Var::Constant(cost);
  OTGEN_ASSIGN_OR_RETURN(Var v, ot::Violation(phi, psi, c));
  DualEstimate e;
  e.objective = nn::Sub(nn::Sub(nn::MeanAll(phi), nn::MeanAll(psi)), nn::MeanAll(ot::FLambda(v, options)));
  {
    nn::NoGradGuard no_grad;
    e.density = ot::PseudoPlanDensity(v.Detach(), options).value();
  }
  if (cost.dim(0) == cost.dim(1)) {
    OTGEN_ASSIGN_OR_RETURN(e.statistic, ot::TerminationStatistic(e.density));
  } else {
    e.statistic = std::numeric_limits<double>::quiet_NaN();
  }
  return e;
}

absl::StatusOr<Var> SinkhornGeneratorLoss(const Var& cost_xy, const Tensor& density_xy, const Var& cost_xx,
                                          const Tensor& density_xx) {
  OTGEN_ASSIGN_OR_RETURN(Var a, ot::PseudoPlanGeneratorLoss(cost_xy, density_xy));
  OTGEN_ASSIGN_OR_RETURN(Var b, ot::PseudoPlanGeneratorLoss(cost_xx, density_xx));
  return nn::Sub(nn::MulScalar(a, 2.0f), b);
}

absl::StatusOr<Var> LatentSurrogate(const Var& cost_gen_data, const Tensor& density_gen_data, const Var& cost_gen_gen,
                                    const Tensor& density_gen_gen, const Var& cost_data_data,
                                    const Tensor& density_data_data) {
  OTGEN_ASSIGN_OR_RETURN(Var a, ot::PseudoPlanGeneratorLoss(cost_gen_data, density_gen_data));
  OTGEN_ASSIGN_OR_RETURN(Var b, ot::PseudoPlanGeneratorLoss(cost_gen_gen, density_gen_gen));
  OTGEN_ASSIGN_OR_RETURN(Var c, ot::PseudoPlanGeneratorLoss(cost_data_data, density_data_data));
  return nn::Add(nn::Add(nn::MulScalar(a, 2.0f), b), c);
}

absl::Status ValidateSwganConfig(const SwganConfig& config) {
  OTGEN_RETURN_IF_ERROR(ValidateCommon(config));
  OTGEN_RETURN_IF_ERROR(gan::ValidateGanDataConfig(config.data(), "data"));
  OTGEN_RETURN_IF_ERROR(gan::ValidateNoiseConfig(config.noise(), "noise"));
  OTGEN_RETURN_IF_ERROR(gan::ValidateGanEvalConfig(config.eval(), "eval"));
  OTGEN_ASSIGN_OR_RETURN(const nn::Shape example, gan::DataExampleShape(config.data()));
  if (!config.has_generator()) return Invalid("generator", "missing (a network config is required)");
  OTGEN_RETURN_IF_ERROR(ValidateNetwork(config.generator(), {config.noise().dim()}, example, "generator"));
  if (config.has_latent()) {
    const LatentConfig& l = config.latent();
    if (!l.has_network()) return Invalid("latent.network", "missing (a network config is required)");
    OTGEN_RETURN_IF_ERROR(ValidateOptimizerConfig(l.optimizer(), "latent.optimizer"));
    if (l.update_every() < 1) {
      return Invalid("latent.update_every", absl::StrCat("expected >= 1, got ", l.update_every()));
    }
  }
  OTGEN_ASSIGN_OR_RETURN(const nn::Shape potential_input, PotentialInputShape(config, example));
  if (!config.has_phi()) return Invalid("phi", "missing (a network config is required)");
  if (!config.has_psi()) return Invalid("psi", "missing (a network config is required)");
  OTGEN_RETURN_IF_ERROR(ValidateNetwork(config.phi(), potential_input, {1}, "phi"));
  OTGEN_RETURN_IF_ERROR(ValidateNetwork(config.psi(), potential_input, {1}, "psi"));
  OTGEN_RETURN_IF_ERROR(ValidateOptimizerConfig(config.generator_optimizer(), "generator_optimizer"));
  OTGEN_RETURN_IF_ERROR(ValidateOptimizerConfig(config.potential_optimizer(), "potential_optimizer"));
  const DualConfig& d = config.dual();
  if (!(d.lambda() > 0) || !std::isfinite(d.lambda())) {
    return Invalid("dual.lambda", absl::StrCat("expected a finite value > 0, got ", d.lambda()));
  }
  if (d.max_steps() < 1) return Invalid("dual.max_steps", absl::StrCat("expected >= 1, got ", d.max_steps()));
  if (d.min_steps() < 1 || d.min_steps() > d.max_steps()) {
    return Invalid("dual.min_steps", absl::StrCat("expected in [1, max_steps = ", d.max_steps(), "], got ", d.min_steps()));
  }
  if (!(d.stop_tolerance() >= 0) || !std::isfinite(d.stop_tolerance())) {
    return Invalid("dual.stop_tolerance", absl::StrCat("expected a finite value >= 0, got ", d.stop_tolerance()));
  }
  if (!(config.cost().scale() > 0) || !std::isfinite(config.cost().scale())) {
    return Invalid("cost.scale", absl::StrCat("expected a finite value > 0, got ", config.cost().scale()));
  }
  return absl::OkStatus();
}

// ---- Trainer ------------------------------------------------------------------------------------

struct SwganTrainer::Dual {
  std::string name;
  std::unique_ptr<Sequential> phi, psi;
  std::vector<Var> params;
  std::unique_ptr<optim::Optimizer> optimizer;
};

SwganTrainer::~SwganTrainer() = default;

absl::StatusOr<std::unique_ptr<SwganTrainer>> SwganTrainer::Create(const SwganConfig& config) {
  OTGEN_RETURN_IF_ERROR(ValidateSwganConfig(config));
  std::unique_ptr<SwganTrainer> t(new SwganTrainer());
  t->config_ = config;
  t->cost_ = CostFromConfig(config.cost());
  t->dual_options_ = DualOptionsFromConfig(config.dual());
  const uint64_t seed = config.run().seed();
  t->init_rng_ = nn::Rng(seed, gan::kInitStream);
  t->noise_rng_ = nn::Rng(seed, gan::kNoiseStream);
  OTGEN_ASSIGN_OR_RETURN(t->data_, gan::GanData::Create(config.data(), seed));
  t->noise_ = gan::MakeNoiseSampler(config.noise());
  const nn::Shape example = t->data_->example_shape();
  OTGEN_ASSIGN_OR_RETURN(t->generator_,
                         BuildNetwork(config.generator(), {config.noise().dim()}, example, t->init_rng_, "generator"));
  t->generator_params_ = t->generator_->Parameters();
  OTGEN_ASSIGN_OR_RETURN(t->generator_optimizer_,
                         MakeOptimizer(config.generator_optimizer(), t->generator_params_, "generator_optimizer"));
  nn::Shape potential_input = example;
  nn::TrainingState& s = t->state_;
  s.modules.emplace_back("generator", t->generator_.get());
  s.optimizers.emplace_back("generator", t->generator_optimizer_.get());
  if (config.has_latent()) {
    OTGEN_ASSIGN_OR_RETURN(t->latent_, BuildNetwork(config.latent().network(), example, {}, t->init_rng_,
                                                    "latent.network"));
    OTGEN_ASSIGN_OR_RETURN(potential_input, OutputShapeOf(*t->latent_, example, "latent.network"));
    t->latent_params_ = t->latent_->Parameters();
    // Ascent on eq. 46 (the loss handed to the optimizer is its negative).
    OTGEN_ASSIGN_OR_RETURN(t->latent_optimizer_,
                           MakeOptimizer(config.latent().optimizer(), t->latent_params_, "latent.optimizer"));
    s.modules.emplace_back("latent", t->latent_.get());
    s.optimizers.emplace_back("latent", t->latent_optimizer_.get());
  }
  std::vector<std::string> names = {"gen_data"};
  if (config.objective() == SwganConfig::SINKHORN_LOSS || config.has_latent()) names.push_back("gen_gen");
  if (config.has_latent()) names.push_back("data_data");
  for (const std::string& name : names) {
    auto d = std::make_unique<Dual>();
    d->name = name;
    OTGEN_ASSIGN_OR_RETURN(d->phi, BuildNetwork(config.phi(), potential_input, {1}, t->init_rng_, "phi"));
    OTGEN_ASSIGN_OR_RETURN(d->psi, BuildNetwork(config.psi(), potential_input, {1}, t->init_rng_, "psi"));
    d->params = d->phi->Parameters();
    for (const Var& p : d->psi->Parameters()) d->params.push_back(p);
    OTGEN_ASSIGN_OR_RETURN(d->optimizer, MakeOptimizer(config.potential_optimizer(), d->params, "potential_optimizer"));
    s.modules.emplace_back("phi_" + name, d->phi.get());
    s.modules.emplace_back("psi_" + name, d->psi.get());
    s.optimizers.emplace_back("potentials_" + name, d->optimizer.get());
    if (name == "gen_data") t->gen_data_ = d.get();
    if (name == "gen_gen") t->gen_gen_ = d.get();
    if (name == "data_data") t->data_data_ = d.get();
    t->duals_.push_back(std::move(d));
  }
  s.rngs = {{"init", &t->init_rng_}, {"noise", &t->noise_rng_}};
  t->data_->Register(&s);
  return t;
}

std::vector<std::string> SwganTrainer::StepColumns() const {
  std::vector<std::string> cols;
  for (const auto& d : duals_) {
    cols.push_back("dual_" + d->name);
    cols.push_back("m_" + d->name);
    cols.push_back("steps_" + d->name);
  }
  cols.push_back("generator_loss");
  if (latent_ != nullptr) cols.push_back("latent_objective");
  return cols;
}

absl::StatusOr<Var> SwganTrainer::Features(const Var& x, bool record) {
  if (latent_ == nullptr) return x;
  if (record) return latent_->Forward(x);
  nn::NoGradGuard no_grad;
  OTGEN_ASSIGN_OR_RETURN(Var e, latent_->Forward(x));
  return Var::Constant(e.value());
}

absl::StatusOr<Tensor> SwganTrainer::Generate(bool record, Var* recorded) {
  // A fresh noise tensor per call: recorded graphs keep their inputs.
  const Tensor z = noise_->Sample(config_.data().batch_size(), noise_rng_);
  if (record) {
    OTGEN_ASSIGN_OR_RETURN(*recorded, generator_->Forward(Var::Constant(z)));
    return recorded->value();
  }
  nn::NoGradGuard no_grad;
  OTGEN_ASSIGN_OR_RETURN(Var x, generator_->Forward(Var::Constant(z)));
  return x.value();
}

absl::StatusOr<DualEstimate> SwganTrainer::Estimate(Dual& dual, const Tensor& a, const Tensor& b, bool record) {
  std::unique_ptr<nn::NoGradGuard> no_grad;
  if (!record) no_grad = std::make_unique<nn::NoGradGuard>();
  OTGEN_ASSIGN_OR_RETURN(Var phi, PotentialValues(*dual.phi, Var::Constant(a), "phi_" + dual.name));
  OTGEN_ASSIGN_OR_RETURN(Var psi, PotentialValues(*dual.psi, Var::Constant(b), "psi_" + dual.name));
  OTGEN_ASSIGN_OR_RETURN(Tensor c, PairwiseCostValues(cost_, a, b));
  return EvaluateDual(phi, psi, c, dual_options_);
}

absl::Status SwganTrainer::DiscriminatorSteps(MetricRow* row) {
  const DualConfig& dc = config_.dual();
  std::vector<bool> running(duals_.size(), true);
  std::vector<int> steps(duals_.size(), 0);
  std::vector<double> objective(duals_.size(), 0.0), statistic(duals_.size(), 0.0);
  for (int s = 1; s <= dc.max_steps(); ++s) {
    const bool need_gen = running[0] || (gen_gen_ != nullptr && running[1]);
    const bool need_gen2 = gen_gen_ != nullptr && running[1];
    const bool need_data2 = data_data_ != nullptr && running[2];
    Tensor x, x2;
    Var unused;
    if (need_gen) { OTGEN_ASSIGN_OR_RETURN(x, Generate(false, &unused)); }
    if (need_gen2) { OTGEN_ASSIGN_OR_RETURN(x2, Generate(false, &unused)); }
    OTGEN_RETURN_IF_ERROR(data_->NextBatch(&y_));
    if (need_data2) OTGEN_RETURN_IF_ERROR(data_->NextBatch(&y2_));
    Tensor a, a2, b, b2;
    if (need_gen) { OTGEN_ASSIGN_OR_RETURN(Var e, Features(Var::Constant(x), false)); a = e.value(); }
    if (need_gen2) { OTGEN_ASSIGN_OR_RETURN(Var e, Features(Var::Constant(x2), false)); a2 = e.value(); }
    { OTGEN_ASSIGN_OR_RETURN(Var e, Features(Var::Constant(y_), false)); b = e.value(); }
    if (need_data2) { OTGEN_ASSIGN_OR_RETURN(Var e, Features(Var::Constant(y2_), false)); b2 = e.value(); }
    bool any = false;
    for (size_t k = 0; k < duals_.size(); ++k) {
      if (!running[k]) continue;
      Dual& d = *duals_[k];
      const Tensor& first = (&d == data_data_) ? b : a;
      const Tensor& second = (&d == gen_data_) ? b : (&d == gen_gen_) ? a2 : b2;
      OTGEN_ASSIGN_OR_RETURN(DualEstimate e, Estimate(d, first, second, /*record=*/true));
      objective[k] = e.objective.item();
      statistic[k] = e.statistic;
      OTGEN_RETURN_IF_ERROR(CheckFinite(objective[k], "the dual objective of " + d.name));
      d.optimizer->ZeroGrad();
      Var loss = nn::Neg(e.objective);  // ascend eq. 5
      wgan_gp::SetGradients(loss, d.params);
      d.optimizer->Step();
      ++steps[k];
      if (s >= dc.min_steps() && dc.stop_tolerance() > 0 && std::abs(e.statistic - 1.0) <= dc.stop_tolerance()) {
        running[k] = false;
      }
      any = any || running[k];
    }
    if (!any) break;
  }
  for (size_t k = 0; k < duals_.size(); ++k) {
    (*row)["dual_" + duals_[k]->name] = objective[k];
    (*row)["m_" + duals_[k]->name] = statistic[k];
    (*row)["steps_" + duals_[k]->name] = steps[k];
  }
  return absl::OkStatus();
}

absl::Status SwganTrainer::GeneratorStep(MetricRow* row) {
  Var x;
  OTGEN_RETURN_IF_ERROR(Generate(true, &x).status());
  OTGEN_ASSIGN_OR_RETURN(Var a, Features(x, /*record=*/true));
  OTGEN_RETURN_IF_ERROR(data_->NextBatch(&y_));
  OTGEN_ASSIGN_OR_RETURN(Var b, Features(Var::Constant(y_), false));
  OTGEN_ASSIGN_OR_RETURN(DualEstimate e1, Estimate(*gen_data_, a.value(), b.value(), false));
  OTGEN_ASSIGN_OR_RETURN(Var c1, PairwiseCost(cost_, a, b));
  Var loss;
  if (config_.objective() == SwganConfig::SINKHORN_LOSS) {
    // Algorithm 2: independent generated batches x^-bar, x^-hat for the second dual.
    Var xbar, xhat;
    OTGEN_RETURN_IF_ERROR(Generate(true, &xbar).status());
    OTGEN_RETURN_IF_ERROR(Generate(true, &xhat).status());
    OTGEN_ASSIGN_OR_RETURN(Var abar, Features(xbar, true));
    OTGEN_ASSIGN_OR_RETURN(Var ahat, Features(xhat, true));
    OTGEN_ASSIGN_OR_RETURN(DualEstimate e2, Estimate(*gen_gen_, abar.value(), ahat.value(), false));
    OTGEN_ASSIGN_OR_RETURN(Var c2, PairwiseCost(cost_, abar, ahat));
    OTGEN_ASSIGN_OR_RETURN(loss, SinkhornGeneratorLoss(c1, e1.density, c2, e2.density));
  } else {
    OTGEN_ASSIGN_OR_RETURN(loss, ot::PseudoPlanGeneratorLoss(c1, e1.density));
  }
  OTGEN_RETURN_IF_ERROR(CheckFinite(loss.item(), "the generator loss"));
  generator_optimizer_->ZeroGrad();
  wgan_gp::SetGradients(loss, generator_params_);
  generator_optimizer_->Step();
  (*row)["generator_loss"] = loss.item();
  return absl::OkStatus();
}

absl::Status SwganTrainer::LatentStep(MetricRow* row) {
  Var unused;
  OTGEN_ASSIGN_OR_RETURN(Tensor x, Generate(false, &unused));
  OTGEN_ASSIGN_OR_RETURN(Tensor x2, Generate(false, &unused));
  OTGEN_RETURN_IF_ERROR(data_->NextBatch(&y_));
  OTGEN_RETURN_IF_ERROR(data_->NextBatch(&y2_));
  OTGEN_ASSIGN_OR_RETURN(Var a, Features(Var::Constant(x), true));
  OTGEN_ASSIGN_OR_RETURN(Var a2, Features(Var::Constant(x2), true));
  OTGEN_ASSIGN_OR_RETURN(Var b, Features(Var::Constant(y_), true));
  OTGEN_ASSIGN_OR_RETURN(Var b2, Features(Var::Constant(y2_), true));
  OTGEN_ASSIGN_OR_RETURN(DualEstimate e1, Estimate(*gen_data_, a.value(), b.value(), false));
  OTGEN_ASSIGN_OR_RETURN(DualEstimate e2, Estimate(*gen_gen_, a.value(), a2.value(), false));
  OTGEN_ASSIGN_OR_RETURN(DualEstimate e3, Estimate(*data_data_, b.value(), b2.value(), false));
  OTGEN_ASSIGN_OR_RETURN(Var c1, PairwiseCost(cost_, a, b));
  OTGEN_ASSIGN_OR_RETURN(Var c2, PairwiseCost(cost_, a, a2));
  OTGEN_ASSIGN_OR_RETURN(Var c3, PairwiseCost(cost_, b, b2));
  OTGEN_ASSIGN_OR_RETURN(Var surrogate, LatentSurrogate(c1, e1.density, c2, e2.density, c3, e3.density));
  const double objective = 2 * e1.objective.item() + e2.objective.item() + e3.objective.item();
  OTGEN_RETURN_IF_ERROR(CheckFinite(objective, "the latent objective (eq. 46)"));
  latent_optimizer_->ZeroGrad();
  wgan_gp::SetGradients(nn::Neg(surrogate), latent_params_);
  latent_optimizer_->Step();
  (*row)["latent_objective"] = objective;
  return absl::OkStatus();
}

absl::StatusOr<MetricRow> SwganTrainer::Iteration(int64_t step) {
  MetricRow row;
  OTGEN_RETURN_IF_ERROR(DiscriminatorSteps(&row));
  OTGEN_RETURN_IF_ERROR(GeneratorStep(&row));
  if (latent_ != nullptr && step % config_.latent().update_every() == 0) OTGEN_RETURN_IF_ERROR(LatentStep(&row));
  return row;
}

absl::StatusOr<TrainingLoopResult> RunSwgan(const SwganConfig& config, bool resume) {
  OTGEN_ASSIGN_OR_RETURN(std::unique_ptr<SwganTrainer> trainer, SwganTrainer::Create(config));
  gan::GanEvaluator evaluator(config.eval(), &trainer->data(), &trainer->noise(), config.run().seed(),
                              config.run().output_dir());
  TrainingLoopSpec spec;
  spec.name = "swgan";
  spec.step_columns = trainer->StepColumns();
  spec.eval_columns = evaluator.Columns();
  spec.progress_columns = {"generator_loss", "dual_gen_data", "m_gen_data", "steps_gen_data"};
  std::vector<std::string> duals, stats;
  for (const std::string& c : spec.step_columns) {
    if (c.rfind("dual_", 0) == 0) duals.push_back(c);
    if (c.rfind("m_", 0) == 0 || c.rfind("steps_", 0) == 0) stats.push_back(c);
  }
  spec.plots = {CurvePlot{"losses", {"generator_loss"}, "SWGAN generator loss", "loss"},
                CurvePlot{"duals", duals, "regularized OT dual estimates (eq. 5)", "value"},
                CurvePlot{"discriminator", stats, "eq. 26 statistic and discriminator steps", "value"}};
  TrainingLoopHooks hooks;
  hooks.train_step = [&](int64_t step) { return trainer->Iteration(step); };
  hooks.evaluate = [&](int64_t step) -> absl::StatusOr<MetricRow> {
    OTGEN_ASSIGN_OR_RETURN(MetricRow row, evaluator.Evaluate(trainer->generator(), step));
    std::fprintf(stderr, "swgan: step %lld: %s\n", static_cast<long long>(step), evaluator.last_report().c_str());
    return row;
  };
  hooks.write_samples = [&](int64_t step, bool last) { return evaluator.WriteSamples(trainer->generator(), step, last); };
  hooks.before_checkpoint = [&] { return trainer->data().BeforeCheckpoint(); };
  hooks.after_restore = [&] { return trainer->data().AfterRestore(); };
  TrainingLoop loop(config.run(), config.schedule(), spec, trainer->state());
  return loop.Run(hooks, resume);
}

}  // namespace otgen::apps::swgan
