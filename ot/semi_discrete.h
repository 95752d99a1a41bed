// Semi-discrete optimal transport: the dual vector psi in R^J against a discrete target measure
// nu = sum_j nu_j delta_{y_j}, learned by stochastic (super)gradient ascent on batches of source
// samples. This is the inner loop of seed 000's Algorithm 1 (SDOT).
//
// Problem (seed 000 eqs. 98-99; lambda >= 0, c-transforms as in ot/c_transform.h):
//
//   maximize_psi  H_lambda(psi) = E_{x ~ mu}[ psi^{c,lambda}(x) ] + sum_j nu_j psi_j,
//
// a concave function whose supergradient is D(psi) = nu - E_x[pi(x)] (eq. 101), pi(x) the
// (soft) assignment of x to the targets. Each step draws a batch B_k of b source samples and
// estimates D by D_k = nu - (1/b) sum_{x in B_k} pi(x). Two ascent methods:
//
//   kAsgd (eq. 102, Genevay et al. 2016):
//     psi~_k = psi~_{k-1} + gamma / k^alpha * D_k(psi~_{k-1}),
//     psi_k  = (1/k) (psi~_1 + ... + psi~_k)            (the estimate, `psi()`),
//   kAdam: Adam ascent on psi with bias correction (optim/adam.h); the estimate is the iterate.
//
// Both use the optimizers of optim/ (optim::Asgd with maximize = true, optim::Adam).
//
// Warm starts: every Solve() continues from the current state. With restart_each_solve (the
// default, Algorithm 1 "inner loop with K iterations of ASGD (102) starting from psi_{n-1}"),
// each Solve() starts a fresh run of (102) from the previous estimate: psi~_0 = psi_{n-1}, step
// counter k = 1, 2, ... and a new average. Without it, the step counter and the average carry
// over across calls (one long ASGD run). Adam's moments always carry over.
//
// Where a restarted run starts (`warm_start`, ASGD only):
//   kAverage (default, Algorithm 1 as written): psi~_0 = psi_bar_K of the previous run;
//   kIterate: psi~_0 = psi~_K, the last iterate of the previous run. The estimate handed to
//     the generator is still the run's average psi_bar_K; only the next run's starting point
//     differs. The average lags the iterate by about K/2 steps, so with a moving generator the
//     dual restarts closer to where the ascent was heading.
//
// Running estimate of H (eq. 99): each step evaluates the batch semi-dual
//   H_k = (1/b) sum_{x in B_k} psi~_{k-1}^{c,lambda}(x) + sum_j nu_j psi~_{k-1, j}
// at the iterate it differentiates (a by-product of the supergradient). Solve() reports the
// mean of H_k over its iterations (`h_estimate`, an unbiased estimate of the average of
// H_lambda over the iterates of this inner loop; the quantity plotted in seed 000 Fig. 4) and
// the per-iteration values.
//
// State for checkpoints: ExportState() returns named tensors (psi iterate, the optimizer's
// slots such as the ASGD average or Adam's moments, step counters); ImportState() restores
// them. Counters are stored exactly as float tensors of shape [2] = {k / 2^24, k mod 2^24}.
//
// Memory layout: psi is a float vector indexed like the local shard of the targets
// (ot/target_set.h); batches are b x d row-major floats (or nn::Tensors [b, ...]).
//
// Usage (SDOT inner loop, seed 000 Sec. 6.1: K = 10, gamma = 5, alpha = 0.5, batches of 200):
//   OTGEN_ASSIGN_OR_RETURN(auto solver, otgen::ot::SemiDiscreteSolver::Create(targets, cost, options));
//   for (int n = 0; n < N; ++n) {
//     OTGEN_ASSIGN_OR_RETURN(otgen::ot::SemiDiscreteResult r, solver->Solve(sampler));
//     // generator step with psi = solver->psi() ...
//   }
#ifndef OTGEN_OT_SEMI_DISCRETE_H_
#define OTGEN_OT_SEMI_DISCRETE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "Eigen/Dense"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nn/autograd.h"
#include "nn/tensor.h"
#include "optim/optimizer.h"
#include "ot/c_transform.h"
#include "ot/cost.h"
#include "ot/target_set.h"
#include "ot/types.h"

namespace otgen::ot {

// Starting point of each restarted ASGD run (see above).
enum class SemiDiscreteWarmStart {
  kAverage,  // the previous run's average (seed 000 Algorithm 1)
  kIterate,  // the previous run's last iterate
};

enum class SemiDiscreteMethod {
  kAsgd,  // averaged stochastic gradient ascent, eq. 102
  kAdam,  // Adam ascent
};

struct SemiDiscreteOptions {
  // The c-transform (lambda >= 0 is options.ctransform.lambda).
  CTransformOptions ctransform;
  SemiDiscreteMethod method = SemiDiscreteMethod::kAsgd;
  // Source samples per step (b > 0).
  int batch_size = 200;
  // Ascent steps per Solve() (K of Algorithm 1, > 0).
  int iterations = 10;
  // ASGD step gamma / k^alpha: gamma > 0, alpha in (0, 1]. Seed 000 SDOT: gamma = 5, alpha = 0.5.
  float gamma = 5.0f;
  float alpha = 0.5f;
  // ASGD: each Solve() starts a fresh run of eq. 102 from the current estimate (see above).
  bool restart_each_solve = true;
  // ASGD: where a restarted run starts; no effect for Adam (its estimate is the iterate).
  SemiDiscreteWarmStart warm_start = SemiDiscreteWarmStart::kAverage;
  // Adam: learning rate > 0, betas in [0, 1), eps >= 0.
  float adam_learning_rate = 1e-3f;
  float adam_beta1 = 0.9f;
  float adam_beta2 = 0.999f;
  float adam_epsilon = 1e-8f;

  absl::Status Validate() const;
};

struct SemiDiscreteResult {
  // Steps taken by this Solve().
  int iterations = 0;
  // Mean of the per-step batch semi-dual values H_k (eq. 99) over this Solve().
  double h_estimate = 0.0;
  // H_k of every step of this Solve(), in order.
  std::vector<double> h_history;
  // Euclidean norm of the last step's supergradient D_k.
  double last_supergradient_norm = 0.0;

  // e.g. "semi-discrete: 10 steps, H=0.4213 (last 0.4230), |D|=0.0312"
  std::string Summary() const;
};

// Draws a batch of `batch_size` source samples: a tensor of shape [batch_size, ...] whose
// trailing dimensions flatten to the targets' dimension d (e.g. generator outputs [b, 1, 28, 28]).
using BatchSampler = std::function<absl::StatusOr<nn::Tensor>(int64_t batch_size)>;

class SemiDiscreteSolver {
 public:
  // psi starts at 0. InvalidArgumentError for invalid options, targets or cost.
  static absl::StatusOr<std::unique_ptr<SemiDiscreteSolver>> Create(std::shared_ptr<const TargetSet> targets,
                                                                    const Cost& cost,
                                                                    const SemiDiscreteOptions& options);

  SemiDiscreteSolver(const SemiDiscreteSolver&) = delete;
  SemiDiscreteSolver& operator=(const SemiDiscreteSolver&) = delete;

  // options.iterations ascent steps on batches from `sampler`, continuing from the current
  // state. InvalidArgumentError naming "sampler" if a batch has the wrong shape or non-finite
  // entries; the sampler's own errors are passed through. The steps taken before an error
  // are kept.
  absl::StatusOr<SemiDiscreteResult> Solve(const BatchSampler& sampler);

  // One ascent step on the rows of `batch` (b x d). Returns the batch semi-dual H_k at the
  // iterate before the step. Outside Solve(), consecutive Step() calls form one ASGD run (call
  // RestartAveraging() to start a new one).
  absl::StatusOr<double> Step(const Eigen::Ref<const RowMatrixXf>& batch);

  // The current estimate of the optimal psi: the ASGD average (the iterate before the first
  // ASGD step of a run) or the Adam iterate. Shard-local, J entries.
  Eigen::Map<const Eigen::VectorXf> psi() const;
  // The raw iterate psi~ (equal to psi() for Adam).
  Eigen::Map<const Eigen::VectorXf> psi_iterate() const;
  // Sets the iterate (and the estimate) to `psi`, dropping the optimizer state (moments,
  // averages, counters). InvalidArgumentError naming "psi" for a wrong size or non-finite values.
  absl::Status SetPsi(const Eigen::Ref<const Eigen::VectorXf>& psi);
  // ASGD: starts a new run of eq. 102 (what Solve() does first with restart_each_solve), from
  // the current estimate (warm_start kAverage) or from the current iterate (kIterate). No-op
  // for Adam.
  void RestartAveraging();

  // Ascent steps since creation (or as imported).
  int64_t total_steps() const { return total_steps_; }
  const SemiDiscreteOptions& options() const { return options_; }
  CTransform& transform() { return transform_; }
  // The c-transform result of the last step (values, supergradient, path statistics).
  const CTransformResult& last_result() const { return result_; }

  // Named state tensors: "psi" ([J], the iterate), "optimizer.<k>.<slot>" (e.g.
  // "optimizer.0.averaged", "optimizer.0.exp_avg"), "optimizer.<k>.step" and
  // "solver.total_steps" (counters, shape [2], see above), "solver.method" ([1]: 0 ASGD, 1 Adam).
  std::map<std::string, nn::Tensor> ExportState() const;
  // Restores a state exported by a solver with the same method and number of targets.
  // InvalidArgumentError names the first bad entry; on error the solver is unchanged.
  absl::Status ImportState(const std::map<std::string, nn::Tensor>& state);

 private:
  SemiDiscreteSolver(CTransform transform, const SemiDiscreteOptions& options);

  CTransform transform_;
  SemiDiscreteOptions options_;
  int64_t num_targets_ = 0;
  nn::Var psi_;          // the iterate psi~ (a parameter for the optimizer)
  nn::Tensor grad_;      // the supergradient D_k handed to the optimizer
  std::unique_ptr<optim::Optimizer> optimizer_;
  CTransformResult result_;
  int64_t total_steps_ = 0;
};

// Exact float encoding of a non-negative counter < 2^48 as a [2] tensor {k / 2^24, k mod 2^24},
// and its decoding (InvalidArgumentError naming `name` for a bad shape or value).
nn::Tensor EncodeCounter(int64_t value);
absl::StatusOr<int64_t> DecodeCounter(const nn::Tensor& tensor, const std::string& name);

}  // namespace otgen::ot

#endif  // OTGEN_OT_SEMI_DISCRETE_H_
