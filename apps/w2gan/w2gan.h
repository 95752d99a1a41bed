// apps/w2gan: W2GAN (seed 002, Leygonie et al., "Adversarial Computation of Optimal Transport
// Maps") and the baselines of its Section 6 on the same data, as one configurable experiment.
//
// Methods (W2ganConfig.method; see w2gan.proto and losses.h for the formulas):
//   W2GAN          Algorithms 1-2: per generator iteration, critic_steps updates of (phi, psi)
//                  minimizing -L_OT + lambda_ineq L_ineq (+ lambda_eq L_eq + lambda_eps L_eps),
//                  each on fresh batches z ~ Pz, x ~ Px (and an independent pair for the
//                  interpolates of eq. 25), then one generator update minimizing mean phi(G(z)).
//   WGAN_GP/LP     the same loop with a W1 critic and a two-/one-sided gradient penalty.
//   BARYCENTRIC_OT steps 1..dual_steps: the regularized dual in (u, v) on batches (z, x);
//                  then the generator fitted to the barycentric projection of M(V).
// The generator is G(z) = s H(z) + skip(z), the identity at step 0 (generator.h).
//
// Data (W2ganConfig.data):
//   pair_2d            "4gaussians" | "checkerboard" | "2spirals" (Section 6.1): fresh samples
//                      every batch. Evaluation on a fixed batch of 512 source and 512 target
//                      points (evaluation.seed): the map error of DATASETS.md against the exact
//                      discrete OT assignment ("Discrete-OT"), and the exact OT cost between
//                      G(z) and the target batch. Figures (Figs. 1-4): data.png, discrete_ot.png,
//                      map_<step>.png (arrows z -> G(z) over the targets), for W2GAN
//                      grad_<step>.png (arrows G(z) -> G(z) - grad phi(G(z))) and heat maps
//                      phi_<step>.png / psi_<step>.png (critic_<step>.png for WGAN, u/v for
//                      Barycentric-OT), and at the end path.png (the fixed points' trajectories
//                      G_t(z) through the sampled steps, from mapped_<step>.npy).
//   mvg_mnist          Gaussian -> MNIST (Section 6.2, Fig. 5): inputs.png / outputs_<step>.png
//                      grids, samples.npy, and (evaluation.mnist_metrics) the classifier metrics
//                      of DATASETS.md at the end.
//   domain_adaptation  USPS <-> MNIST at 16x16 (Table 1): 1-NN accuracy of the target test set
//                      with the mapped labelled source training set ("da_accuracy"), beside the
//                      unmapped "source" baseline; USPS -> MNIST also on all 10000 MNIST test
//                      images ("da_accuracy_all").
// Inputs of the networks are flat [B, d] vectors (d = 2, 784, 256); images are pixels in
// [-1, 1].
//
// Outputs (apps/common/training_loop.h): config.pbtxt, metrics.csv, losses.png/.svg,
// checkpoints with --resume, the figures above and samples.npy (the mapped fixed batch).
//
//   W2ganConfig config;  // from apps/w2gan/configs/fig2_checkerboard_w2gan.pbtxt
//   OTGEN_RETURN_IF_ERROR(ValidateW2ganConfig(config));
//   OTGEN_ASSIGN_OR_RETURN(TrainingLoopResult r, RunW2gan(config, /*resume=*/false));
#ifndef OTGEN_APPS_W2GAN_W2GAN_H_
#define OTGEN_APPS_W2GAN_W2GAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "apps/common/training_loop.h"
#include "apps/w2gan/w2gan.pb.h"
#include "nn/autograd.h"
#include "nn/module.h"
#include "ot/w2_penalty.h"

namespace otgen::apps::w2gan {

// Checks every field (errors name it, e.g. "w2.lambda_ineq: expected a finite value > 0, got
// 0"). Does not read data files (RunW2gan reports missing files).
absl::Status ValidateW2ganConfig(const W2ganConfig& config);
// The ConfigValidator form for PrepareAppConfig.
absl::Status ValidateW2ganMessage(const google::protobuf::Message& message);

// Data dimension of the config's data: 2, 784 or 256.
absl::StatusOr<int64_t> DataDimension(const DataConfig& data);

// Runs the experiment (see above) with the shared training loop.
absl::StatusOr<TrainingLoopResult> RunW2gan(const W2ganConfig& config, bool resume);

// `module` (mapping [B, d] to [B, 1]) as a potential [B, d] -> [B]. The input shape must have
// been validated (a shape error aborts).
ot::Potential ModulePotential(nn::Module& module);

// Sets each parameter's .grad() to d loss / d parameter (a fresh gradient; nothing else is
// differentiated, unlike Backward which would also reach other leaves).
void SetGradients(const nn::Var& loss, const std::vector<nn::Var>& parameters);

}  // namespace otgen::apps::w2gan

#endif  // OTGEN_APPS_W2GAN_W2GAN_H_
