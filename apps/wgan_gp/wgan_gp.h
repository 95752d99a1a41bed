// apps/wgan_gp: trains a Wasserstein GAN whose critic is kept 1-Lipschitz by a gradient
// penalty (WGAN-GP), a one-sided penalty (WGAN-LP) or weight clipping (WGAN); seed 004
// Section 5, Algorithms 1 and 2 (the losses are in apps/wgan_gp/wgan_losses.h).
//
// One generator iteration (one TrainingLoop step):
//   repeat critic_steps times (Algorithm 1):
//     y ~ data (batch_size), z ~ noise, x = G(z) (not recorded), t ~ U[0, 1]^N;
//     critic loss L = E u(x) - E u(y) + lambda E R(||grad u(t y + (1 - t) x)||);
//     one critic optimizer step on dL/d(critic); with WEIGHT_CLIPPING, clamp the critic.
//   z ~ noise; L_G = -E u(G(z)); one generator optimizer step on dL_G/d(generator)
//   (Algorithm 2).
// metrics.csv columns: critic_loss, wasserstein (E u(y) - E u(x)), penalty and grad_norm (of
// the last critic step), generator_loss; at evaluation steps the columns of
// apps/wgan_gp/gan_io.h (mode coverage and Sinkhorn divergence for 2-D sets, classifier
// metrics for MNIST). Outputs: output_dir/metrics.csv, samples_<step>.png, samples.npy,
// samples.png, loss curves (losses.png/svg, critic.png/svg), ckpt-<step>.pb.
//
// Random streams (all from run.seed, all checkpointed): initialization, data, noise,
// interpolation weights (apps/wgan_gp/gan_io.h kInitStream...kAuxStream).
//
//   WganGpConfig config;  // e.g. from apps/wgan_gp/configs/wgangp_toy_8gaussians.pbtxt
//   OTGEN_RETURN_IF_ERROR(ValidateWganGpConfig(config));
//   OTGEN_ASSIGN_OR_RETURN(TrainingLoopResult r, RunWganGp(config, /*resume=*/false));
#ifndef OTGEN_APPS_WGAN_GP_WGAN_GP_H_
#define OTGEN_APPS_WGAN_GP_WGAN_GP_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "apps/common/training_loop.h"
#include "apps/wgan_gp/gan_io.h"
#include "apps/wgan_gp/wgan_gp.pb.h"
#include "apps/wgan_gp/wgan_losses.h"
#include "data/sampler.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "nn/random.h"
#include "optim/optimizer.h"

namespace otgen::apps::wgan_gp {

// Checks every field (common ones included); errors name the field, e.g.
// "critic_steps: expected >= 1, got 0" or "critic: output shape [2] does not match the
// expected [1]".
absl::Status ValidateWganGpConfig(const WganGpConfig& config);

// The networks, optimizers, data and random streams of a run, and one generator iteration.
class WganGpTrainer {
 public:
  // Validates `config`, loads the data and builds the networks and optimizers.
  static absl::StatusOr<std::unique_ptr<WganGpTrainer>> Create(const WganGpConfig& config);

  // critic_steps critic updates and one generator update; returns the step metrics.
  absl::StatusOr<MetricRow> Iteration();

  nn::TrainingState* state() { return &state_; }
  nn::layers::Sequential& generator() { return *generator_; }
  nn::layers::Sequential& critic() { return *critic_; }
  gan::GanData& data() { return *data_; }
  const data::Sampler& noise() const { return *noise_; }
  const WganGpConfig& config() const { return config_; }

  // metrics.csv columns of Iteration.
  static std::vector<std::string> StepColumns();

 private:
  WganGpTrainer() = default;
  absl::StatusOr<MetricRow> CriticStep();

  WganGpConfig config_;
  PenaltyOptions penalty_;
  std::unique_ptr<gan::GanData> data_;
  std::unique_ptr<data::Sampler> noise_;
  std::unique_ptr<nn::layers::Sequential> generator_, critic_;
  std::vector<nn::Var> generator_params_, critic_params_;
  std::unique_ptr<optim::Optimizer> generator_optimizer_, critic_optimizer_;
  nn::Rng init_rng_, noise_rng_, aux_rng_;
  nn::Tensor real_, z_, t_;
  nn::TrainingState state_;
};

// Trains per `config` (see the header comment); with `resume`, continues from the newest
// checkpoint in run.output_dir.
absl::StatusOr<TrainingLoopResult> RunWganGp(const WganGpConfig& config, bool resume);

}  // namespace otgen::apps::wgan_gp

#endif  // OTGEN_APPS_WGAN_GP_WGAN_GP_H_
