// apps/sdot: generative networks learned by semi-discrete (regularized) optimal transport,
// Algorithm 1 of seed 000 (Section 6), for SDOT (psi a vector in R^J) and SDOTNN (psi an MLP).
//
// The problem (eqs. 98-99): min_theta max_psi H_lambda(psi, theta) with
//   H_lambda(psi, theta) = E_z[ psi^{c,lambda}(g_theta(z)) ] + sum_j nu_j psi_j,
//   psi^{c,lambda}(x) = -lambda log sum_j nu_j exp((psi_j - c(x, y_j)) / lambda)   (lambda > 0),
//   psi^{c}(x)        = min_j c(x, y_j) - psi_j                                    (lambda = 0),
// the targets y_j the J MNIST training images with nu_j = 1/J, and
// c(x, y) = ||x - y||^2 / alpha, alpha = (1/J) sum_j ||y_j||^2.
//
// Outer iteration n (SdotModel::OuterIteration):
//   1. K ascent steps on psi warm-started from psi_{n-1}, each on a fresh batch of b samples
//      x = g_theta(z), z ~ U[-1, 1]^100: ASGD (eq. 102; the estimate is the running average of
//      the iterates, restarted from the previous estimate every outer iteration) or Adam. For
//      SDOTNN the step is on the network's parameters t, through eq. 105.
//   2. One generator step (Adam) on a fresh batch B' with the gradient of eq. 104,
//      (1/b) sum_i D_theta g(z_i)^T grad psi^{c,lambda}(g(z_i)), obtained by backpropagating
//      H_lambda(psi_n, theta) through the differentiable c-transform of ot/c_transform.h.
// Optionally (sinkhorn_loss) the generator minimizes the Sinkhorn divergence of eq. 73 instead,
// with the gradient of eq. 77: grad psi^{c,lambda} - grad chi*, chi* the symmetric potential of
// W_lambda(mu_theta, mu_theta) estimated on the batch by a log-domain Sinkhorn solve.
//
// The generator runs in training mode throughout (batch norm on batch statistics, as in the
// reference PyTorch code); samples drawn for evaluation leave the batch-norm running statistics
// and the training random stream untouched, so evaluation never changes the training
// trajectory.
//
// Usage:
//   SdotConfig config = ...;  // apps/sdot/configs/*.pbtxt
//   OTGEN_ASSIGN_OR_RETURN(SdotRunResult r, RunSdot(config, {.resume = false}));
#ifndef OTGEN_APPS_SDOT_SDOT_H_
#define OTGEN_APPS_SDOT_SDOT_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "apps/common/training_loop.h"
#include "apps/eval/mnist_sample_metrics.h"
#include "apps/sdot/sdot.pb.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "nn/random.h"
#include "nn/tensor.h"
#include "optim/optimizer.h"
#include "ot/c_transform.h"
#include "ot/cost.h"
#include "ot/semi_discrete.h"
#include "ot/sinkhorn.h"
#include "ot/target_set.h"

namespace otgen::apps::sdot {

// Checks every field; InvalidArgumentError names the first bad one ("dual.lambda: expected
// >= 0, got -1").
absl::Status ValidateSdotConfig(const SdotConfig& config);

// The state of one run: target set, cost, generator, dual variable, optimizers, random streams.
class SdotModel {
 public:
  // Loads the MNIST targets (data.*) and builds the networks (seeded from run.seed).
  static absl::StatusOr<std::unique_ptr<SdotModel>> Create(const SdotConfig& config);
  // With targets given as images {J, 1, 28, 28} in the configured pixel range (benchmarks,
  // tests); data.* is ignored.
  static absl::StatusOr<std::unique_ptr<SdotModel>> Create(const SdotConfig& config, nn::Tensor targets);

  // One outer iteration of Algorithm 1. Metrics: "h" (H_lambda(psi_n, theta) on B', before
  // the generator step), "h_inner" (mean of the K inner-step estimates), and when they apply
  // "psi_grad_norm" (|D_K|, SDOT), "w_self" and "sinkhorn_loss" (Sinkhorn loss; the latter
  // without the constant -W_lambda(nu, nu)/2).
  absl::StatusOr<apps::MetricRow> OuterIteration();
  // Figure 4: one ascent step on psi for the fixed generator. Metric "h_iterate".
  absl::StatusOr<apps::MetricRow> InnerStudyStep();
  // H_lambda at the current estimate of psi on the fixed evaluation batch (inner-loop study).
  absl::StatusOr<double> EvaluateEstimate();

  // The metrics.csv columns OuterIteration / InnerStudyStep produce for this config.
  std::vector<std::string> StepColumns() const;

  // g_theta(z) for latent codes z {n, dim}, without recording, in batches of b; batch-norm
  // running statistics are left unchanged.
  absl::StatusOr<nn::Tensor> Generate(const nn::Tensor& z);
  // n samples {n, 1, 28, 28} from latent codes drawn with `rng`.
  absl::StatusOr<nn::Tensor> Sample(int64_t n, nn::Rng& rng);
  // n latent codes {n, dim} drawn with `rng`.
  nn::Tensor SampleLatent(int64_t n, nn::Rng& rng) const;

  // Everything a checkpoint holds, and the hooks that sync the solver's state with it.
  nn::TrainingState& training_state() { return state_; }
  absl::Status BeforeCheckpoint();
  absl::Status AfterRestore();

  const SdotConfig& config() const { return config_; }
  const ot::TargetSet& targets() const { return *targets_; }
  // alpha = mean_j ||y_j||^2, the cost's scale.
  float cost_scale() const { return cost_.scale; }
  nn::layers::Sequential& generator() { return *generator_; }

 private:
  SdotModel() = default;
  absl::Status Init(const SdotConfig& config, nn::Tensor targets);
  bool network_dual() const { return config_.dual().parameterization() == DualConfig::NETWORK; }
  // b samples from the generator for an inner step (no recording).
  absl::StatusOr<nn::Tensor> InnerBatch();
  // psi_t(y_j) for every target {J} (recording when `record`).
  absl::StatusOr<nn::Var> NetworkPsi(bool record);
  // SDOTNN: psi_t of the targets at the ASGD average of the network's parameters (at the
  // parameters themselves with Adam), not recorded. The parameters are left at the average,
  // or put back to the iterate with `keep_iterate`.
  absl::StatusOr<nn::Var> AveragedNetworkPsi(bool keep_iterate);
  // One ascent step of the network dual on `x`; returns the batch H.
  absl::StatusOr<double> NetworkDualStep(const nn::Tensor& x);
  absl::StatusOr<apps::MetricRow> GeneratorStep(const nn::Var& psi);

  SdotConfig config_;
  nn::Tensor target_images_;  // {J, 1, 28, 28}
  std::shared_ptr<const ot::InMemoryTargetSet> targets_;
  ot::Cost cost_;
  nn::Rng rng_;  // the training stream: every latent batch
  std::unique_ptr<nn::layers::Sequential> generator_;
  std::unique_ptr<optim::Optimizer> generator_optimizer_;
  // SDOT
  std::unique_ptr<ot::SemiDiscreteSolver> solver_;
  std::map<std::string, nn::Tensor> solver_state_;
  // SDOTNN
  std::unique_ptr<nn::layers::Sequential> psi_network_;
  std::unique_ptr<optim::Optimizer> psi_optimizer_;
  std::unique_ptr<ot::CTransform> network_transform_;
  // Sinkhorn loss
  std::unique_ptr<ot::SinkhornSolver> sinkhorn_;
  // Inner-loop study: the fixed evaluation batch {eval_batch, 784}.
  ot::RowMatrixXf eval_batch_;
  nn::TrainingState state_;
};

struct SdotRunOptions {
  // Continue from the newest checkpoint in run.output_dir.
  bool resume = false;
  // Scores the final samples when evaluation.mnist_metrics; null: the production scorer
  // (the cached MNIST classifier, trained on first use).
  const eval::MnistSampleScorer* scorer = nullptr;
  // Print the outputs and the metrics report on stdout.
  bool print = true;
};

struct SdotRunResult {
  apps::TrainingLoopResult loop;
  // MNIST metrics of the final samples and the real-vs-real baseline (when computed).
  std::optional<eval::MnistSampleMetrics> metrics;
  std::optional<eval::MnistSampleMetrics> baseline;
};

// Runs the experiment of `config`: the training loop (or the inner-loop study), with
// metrics.csv, loss curves (loss.png/.svg), sample grids (samples_<step>.png), the final
// samples (samples.npy, samples.png) and their MNIST metrics.
absl::StatusOr<SdotRunResult> RunSdot(const SdotConfig& config, const SdotRunOptions& options = {});

}  // namespace otgen::apps::sdot

#endif  // OTGEN_APPS_SDOT_SDOT_H_
