// apps/swgan: the smoothed Wasserstein GAN of seed 001 (Sanjabi et al., "On the convergence
// and robustness of training GANs with regularized optimal transport").
//
// Regularized OT (eq. 4) and its dual (Lemma 2.1, eq. 5; ot/regularized_dual.h):
//   d_{c,lambda}(q, p) = max_{phi, psi} E_q phi(x) - E_p psi(y) - E_{q x p} f_lambda(phi(x) - psi(y) - c(x, y)),
// with f_lambda(v) = (v_+)^2 / (2 lambda) (L2) or (lambda / e) exp(v / lambda) (KL), solved
// approximately by potential networks phi, psi (the discriminator); the pseudo-plan density
// m(x, y) = M(phi(x) - psi(y) - c(x, y)) (eq. 6) then gives the generator's gradient.
//
// One generator iteration (a TrainingLoop step) of Algorithm 1 / Algorithm 2:
//   1. Discriminator: for s = 1..dual.max_steps, on fresh batches (z, z' noise; y, y' data;
//      x = G(z), x' = G(z') not recorded; features e(.) = eta(.) with a latent space, else the
//      examples themselves), one ascent step of the batch estimate of eq. 5 for each dual
//      still running:
//        gen_data   phi(e(x)), psi(e(y)), c(e(x), e(y))                      (always)
//        gen_gen    phi(e(x)), psi(e(x')), c(e(x), e(x'))   (Sinkhorn loss or latent space)
//        data_data  phi(e(y)), psi(e(y')), c(e(y), e(y'))                    (latent space)
//      A dual stops after s >= dual.min_steps once |(1/S) sum_k m(x_k, y_k) - 1| <=
//      dual.stop_tolerance (eq. 26, Appendix D.3; the k-th rows of both batches as pairs).
//   2. Generator, on fresh batches, with m held constant (computed from the current duals):
//        REGULARIZED_OT (Algorithm 1): L_G = (1/S^2) sum_ij m_ij c(e(G(z_i)), e(y_j)),
//        SINKHORN_LOSS (Algorithm 2):  L_G = 2 (1/S^2) sum_ij m1_ij c(e(G(z_i)), e(y_j))
//                                            - (1/S^2) sum_ij m2_ij c(e(G(z_i)), e(G(z'_j))),
//      whose gradients are g_t of the algorithms (the cost is differentiated through G and
//      eta, in both arguments of the second term); one generator optimizer step.
//   3. Latent space (Appendix L.1), every latent.update_every iterations: one ascent step in
//      gamma of eq. 46, L(gamma) = 2 d(eta(G(q)), eta(p)) + d(eta(G(q)), eta(G(q)))
//      + d(eta(p), eta(p)), by the envelope theorem with the current duals:
//        grad_gamma L = 2 E[m1 grad c] + E[m2 grad c] + E[m3 grad c].
// metrics.csv: per dual dual_<name> (the batch estimate of eq. 5 at its last step), m_<name>
// (the eq. 26 statistic), steps_<name> (updates taken); generator_loss; latent_objective (on
// latent update iterations: 2 d1 + d2 + d3 from the batch estimates); evaluation columns as
// in apps/wgan_gp/gan_io.h.
//
//   SwganConfig config;  // e.g. apps/swgan/configs/seed001_table1_grid25_d4.pbtxt
//   OTGEN_ASSIGN_OR_RETURN(TrainingLoopResult r, RunSwgan(config, /*resume=*/false));
#ifndef OTGEN_APPS_SWGAN_SWGAN_H_
#define OTGEN_APPS_SWGAN_SWGAN_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "apps/common/training_loop.h"
#include "apps/swgan/swgan.pb.h"
#include "apps/wgan_gp/gan_io.h"
#include "data/sampler.h"
#include "nn/autograd.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "nn/random.h"
#include "nn/tensor.h"
#include "optim/optimizer.h"
#include "ot/cost.h"
#include "ot/regularized_dual.h"

namespace otgen::apps::swgan {

ot::Cost CostFromConfig(const CostConfig& config);
ot::RegularizedDualOptions DualOptionsFromConfig(const DualConfig& config);

// The batch estimate of eq. 5 for potentials phi [n], psi [m] and costs [n, m].
struct DualEstimate {
  nn::Var objective;       // mean phi - mean psi - mean f_lambda(V), differentiable in phi, psi
  nn::Tensor density;      // m = M(V) [n, m]
  double statistic = 0.0;  // eq. 26: mean of the diagonal of m (NaN unless n == m)
};
absl::StatusOr<DualEstimate> EvaluateDual(const nn::Var& phi, const nn::Var& psi, const nn::Tensor& cost,
                                          const ot::RegularizedDualOptions& options);

// Algorithm 2's generator loss 2 mean(m_xy C_xy) - mean(m_xx C_xx) (densities constant).
absl::StatusOr<nn::Var> SinkhornGeneratorLoss(const nn::Var& cost_xy, const nn::Tensor& density_xy,
                                              const nn::Var& cost_xx, const nn::Tensor& density_xx);

// The gradient surrogate of eq. 46: 2 mean(m1 C1) + mean(m2 C2) + mean(m3 C3) (densities
// constant), whose gradient in gamma is that of 2 d1 + d2 + d3 at the current duals.
absl::StatusOr<nn::Var> LatentSurrogate(const nn::Var& cost_gen_data, const nn::Tensor& density_gen_data,
                                        const nn::Var& cost_gen_gen, const nn::Tensor& density_gen_gen,
                                        const nn::Var& cost_data_data, const nn::Tensor& density_data_data);

// Checks every field (common ones included); errors name the field.
absl::Status ValidateSwganConfig(const SwganConfig& config);

class SwganTrainer {
 public:
  static absl::StatusOr<std::unique_ptr<SwganTrainer>> Create(const SwganConfig& config);
  ~SwganTrainer();

  // Steps 1-3 of the header comment for generator iteration `step` (1-based).
  absl::StatusOr<MetricRow> Iteration(int64_t step);

  // The metrics.csv columns of Iteration for this config.
  std::vector<std::string> StepColumns() const;

  nn::TrainingState* state() { return &state_; }
  nn::layers::Sequential& generator() { return *generator_; }
  gan::GanData& data() { return *data_; }
  const data::Sampler& noise() const { return *noise_; }

 private:
  struct Dual;
  SwganTrainer() = default;

  // Features e(x) of a batch (eta(x) with a latent space, else x itself); recorded in eta's
  // parameters when `record` (and then differentiable in x too).
  absl::StatusOr<nn::Var> Features(const nn::Var& x, bool record);
  absl::StatusOr<nn::Tensor> Generate(bool record, nn::Var* recorded);
  absl::StatusOr<DualEstimate> Estimate(Dual& dual, const nn::Tensor& a, const nn::Tensor& b, bool record);
  absl::Status DiscriminatorSteps(MetricRow* row);
  absl::Status GeneratorStep(MetricRow* row);
  absl::Status LatentStep(MetricRow* row);

  SwganConfig config_;
  ot::Cost cost_;
  ot::RegularizedDualOptions dual_options_;
  std::unique_ptr<gan::GanData> data_;
  std::unique_ptr<data::Sampler> noise_;
  std::unique_ptr<nn::layers::Sequential> generator_, latent_;
  std::vector<nn::Var> generator_params_, latent_params_;
  std::unique_ptr<optim::Optimizer> generator_optimizer_, latent_optimizer_;
  std::vector<std::unique_ptr<Dual>> duals_;  // gen_data, then gen_gen, data_data when used
  Dual* gen_data_ = nullptr;
  Dual* gen_gen_ = nullptr;
  Dual* data_data_ = nullptr;
  nn::Rng init_rng_, noise_rng_;
  nn::Tensor y_, y2_, z_;
  nn::TrainingState state_;
};

absl::StatusOr<TrainingLoopResult> RunSwgan(const SwganConfig& config, bool resume);

}  // namespace otgen::apps::swgan

#endif  // OTGEN_APPS_SWGAN_SWGAN_H_
