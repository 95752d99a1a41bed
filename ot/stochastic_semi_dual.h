// The semi-dual of discrete optimal transport, maximized by stochastic (averaged) supergradient
// ascent on a precomputed cost matrix: Genevay, Cuturi, Peyre, Bach, "Stochastic Optimization
// for Large-scale Optimal Transport" (NIPS 2016), Algorithm 2 (averaged SGD) applied to a
// discrete source measure; the workload of POT's ot.stochastic.solve_semi_dual_entropic.
// ot/semi_discrete.h is the counterpart for a continuous (sampled) source.
//
// Problem. Source weights a (n), target weights b (m), costs C (n x m, C_ij = c(x_i, y_j)),
// lambda >= 0. The semi-dual (seed 000 eqs. 12 and 99 with mu = sum_i a_i delta_{x_i} and
// nu = sum_j b_j delta_{y_j}) is the concave function of psi in R^m
//
//   F(psi) = sum_i a_i psi^{c,lambda}(i) + sum_j b_j psi_j,
//   psi^{c,lambda}(i) = -lambda log sum_j b_j exp((psi_j - C_ij) / lambda)     (lambda > 0),
//   psi^{c,0}(i)      = min_{j : b_j > 0} C_ij - psi_j                         (lambda = 0).
//
// Its supergradient is E_{i ~ a}[b - pi_i] (seed 000 eq. 101), with the (soft) assignment of row i
//
//   pi_i(j) = b_j exp((psi_j - C_ij) / lambda) / sum_k b_k exp((psi_k - C_ik) / lambda)  (lambda > 0),
//   pi_i(j) = 1 if j is the argmin of row i (ties: smallest j), else 0                   (lambda = 0),
//
// i.e. d psi^{c,lambda}(i) / d psi_j = -pi_i(j). max_psi F is the (entropic) OT cost:
// for lambda > 0, max F = OT_lambda(a, b) = min_{P in Pi(a, b)} <P, C> + lambda KL(P | a (x) b),
// the value ot/sinkhorn.h reports as regularized_cost at epsilon = lambda (maximizing the
// Sinkhorn dual over f for fixed g gives f = g^{c,lambda}, where the dual equals F(g)); for
// lambda = 0, max F = the exact OT cost (ot/exact.h). F(psi + t 1) = F(psi): psi is determined up
// to a constant. The primal plan of psi is P_ij = a_i pi_i(j) (lambda = 0: row i puts its mass a_i
// on its argmin); its rows sum to a, and its column error ||P^T 1 - b||_1 = ||grad F(psi)||_1
// measures how far psi is from optimal.
//
// Algorithm (seed 000 eq. 102; Genevay et al. 2016, Alg. 2). Step k = 1, 2, ... draws a batch B_k
// of `batch_size` source indices i ~ a (independently, by Walker's alias method; POT draws i
// uniformly, which is the same only for uniform a) and
//
//   psi~_k = psi~_{k-1} + gamma / k^alpha * (b - (1/|B_k|) sum_{i in B_k} pi_i(psi~_{k-1})),
//   kAsgd:  psi_k = (1/k) (psi~_1 + ... + psi~_k)   (the estimate),
//   kSgd:   psi_k = psi~_k.
//
// One step reads one row of C per sample (m floats): for lambda > 0 a log-sum-exp (max, then
// sum of exp, AVX-512 kernels of ot/log_sum_exp.h) and the weights, then the update of psi~ and
// of the average fused in one vectorized pass; for lambda = 0 one vectorized argmin pass and an
// O(1) update. No allocation, single-threaded (at m = 1000 a step takes about 0.6 us for
// lambda > 0 and 0.2 us for lambda = 0 on one Zen 4 core; see stochastic_semi_dual_bench.cc).
// The full-matrix evaluations (phi, F, plans: O(n m)) split the rows across OpenMP threads.
// The average is never formed per step: with D_s the step's supergradient estimate,
//   psi_k = psi~_k - V_k / k,   V_k = sum_{s <= k} (s - 1) gamma_s D_s
// (sum_{l <= k} psi~_l = k psi~_k - V_k), so the ASGD average costs one more fused multiply-add
// per entry for lambda > 0, and for lambda = 0, where D_s = b - (indicators), psi~ and V are kept
// as (vector touched at the argmins) + (scalar) * b: O(1) per step beyond the argmin pass.
// Iterates and averages are kept in double; the exponent table psi~_j / lambda + log b_j that
// the float kernels read is refreshed in the same pass. Values carry float rounding of about
// 1e-7 (|psi| + |C|) relative to lambda in the exponents (as in ot/sinkhorn.h).
//
// Runs and warm starts. Solve() takes options.iterations steps continuing the current run (the
// step counter k, the average and the index stream carry over, so Solve() twice equals one
// Solve() of twice the iterations). SetPsi(psi) starts a new run from psi~_0 = psi (k = 0, fresh
// average); RestartAveraging() starts a new run from the current estimate. The index stream is
// seeded by options.seed (nn::Rng, reproducible across machines) and never restarted.
//
// Target weights b_j = 0 are outside the support of nu: never an argmin, pi_i(j) = 0, psi_j never
// changes. Sources of weight a_i = 0 are never drawn (phi_i is still reported; their plan rows
// are 0). Weights are renormalized to sum exactly 1 (they must sum to 1 within 1e-5).
//
// Layout: C is n x m row-major float (row i = source i), copied into the solver (4 n m bytes);
// psi has m entries, phi n; plans are n x m row-major float.
//
// Usage (POT: ot.stochastic.solve_semi_dual_entropic(a, b, M, reg=0.01, method="ASGD")):
//   otgen::ot::StochasticSemiDualOptions options;
//   options.lambda = 0.01f;
//   options.gamma = 10.0f;           // POT's default lr is lambda / max_i a_i
//   options.iterations = 100000;
//   OTGEN_ASSIGN_OR_RETURN(auto solver,
//                          otgen::ot::StochasticSemiDualSolver::Create(cost_matrix, a, b, options));
//   // or StochasticSemiDualSolver::CreateFromPoints(x, a, y, b, otgen::ot::Cost::SquaredEuclidean(), options)
//   OTGEN_ASSIGN_OR_RETURN(otgen::ot::StochasticSemiDualResult r, solver->Solve());
//   std::cout << r.Summary() << "\n";   // r.psi, r.phi, r.objective (F(psi))
#ifndef OTGEN_OT_STOCHASTIC_SEMI_DUAL_H_
#define OTGEN_OT_STOCHASTIC_SEMI_DUAL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "Eigen/Dense"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nn/random.h"
#include "ot/cost.h"
#include "ot/types.h"

namespace otgen::ot {

enum class StochasticSemiDualMethod {
  kAsgd,  // averaged stochastic supergradient ascent (eq. 102, Genevay et al. Alg. 2)
  kSgd,   // plain stochastic supergradient ascent: the estimate is the iterate
};

struct StochasticSemiDualOptions {
  // Entropic regularization lambda >= 0 (0: the hard c-transform, exact OT).
  float lambda = 0.01f;
  StochasticSemiDualMethod method = StochasticSemiDualMethod::kAsgd;
  // Step size gamma / k^alpha: gamma > 0 (finite), alpha in (0, 1]. A good gamma is of the order
  // of lambda / max_j b_j (the inverse curvature; POT's default lr is lambda / max_i a_i) or,
  // for lambda = 0, of the spread of the costs.
  float gamma = 1.0f;
  float alpha = 0.5f;
  // Steps per Solve() (> 0).
  int64_t iterations = 10000;
  // Source indices drawn per step (> 0).
  int batch_size = 1;
  // Seed of the stream of source indices (read by Create).
  uint64_t seed = 0;
  // If > 0, Solve() evaluates F at the estimate after every check_every-th of its steps (an
  // O(n m) pass each) into StochasticSemiDualResult::history. >= 0.
  int64_t check_every = 0;
  // Solve() also returns the dense plan of the estimate (n x m floats) and its marginal error.
  bool return_plan = false;
  // Solve() returns the marginal error without the plan.
  bool compute_marginal_error = false;

  // InvalidArgumentError naming the first bad field, e.g. "StochasticSemiDualOptions.alpha: ...".
  absl::Status Validate() const;
};

// One evaluation of the semi-dual during Solve().
struct StochasticSemiDualCheck {
  int64_t step = 0;       // steps of the current run (k) when evaluated
  double objective = 0.0;  // F(psi_k)
};

struct StochasticSemiDualResult {
  // The estimate psi_k (ASGD average, or the SGD iterate): m entries.
  Eigen::VectorXf psi;
  // Its c-transform phi_i = psi^{c,lambda}(i): n entries.
  Eigen::VectorXf phi;
  // F(psi) = <a, phi> + <b, psi>.
  double objective = 0.0;
  // Steps taken by this Solve(), and steps of the current run (k) after it.
  int64_t iterations = 0;
  int64_t run_steps = 0;
  // F at the estimate every options.check_every steps of this Solve().
  std::vector<StochasticSemiDualCheck> history;
  // P_ij = a_i pi_i(j) (n x m) if options.return_plan, else 0 x 0.
  RowMatrixXf plan;
  // ||P^T 1 - b||_1 if options.return_plan or options.compute_marginal_error, else -1.
  double marginal_error = -1.0;
  // Wall time of the steps, and of the final evaluation (phi, F, plan).
  double step_seconds = 0.0;
  double evaluation_seconds = 0.0;

  // E.g. "stochastic semi-dual: 10000 steps (run 20000), F=0.41234567, marginal_error=1.200e-03,
  // 0.56 us/step" (the marginal error only when computed).
  std::string Summary() const;
};

class StochasticSemiDualSolver {
 public:
  // `cost_matrix` n x m (n, m >= 1, finite), `source_weights` n and `target_weights` m entries,
  // finite, >= 0, summing to 1 within 1e-5. psi starts at 0. InvalidArgumentError naming the
  // argument ("cost_matrix", "source_weights", "target_weights", "StochasticSemiDualOptions.*").
  static absl::StatusOr<std::unique_ptr<StochasticSemiDualSolver>> Create(
      const Eigen::Ref<const RowMatrixXf>& cost_matrix,
      const Eigen::Ref<const Eigen::VectorXf>& source_weights,
      const Eigen::Ref<const Eigen::VectorXf>& target_weights,
      const StochasticSemiDualOptions& options);

  // Builds C_ij = cost(x_i, y_j) once with ot/cost.h (one sgemm for the squared Euclidean and
  // L^p costs in d > 16, on copies centred at the mean of all points, which leaves the costs
  // unchanged and avoids cancellation). source_points n x d, target_points m x d; errors name
  // "source_points", "target_points", "source_weights", "target_weights" or "cost".
  static absl::StatusOr<std::unique_ptr<StochasticSemiDualSolver>> CreateFromPoints(
      const Eigen::Ref<const RowMatrixXf>& source_points,
      const Eigen::Ref<const Eigen::VectorXf>& source_weights,
      const Eigen::Ref<const RowMatrixXf>& target_points,
      const Eigen::Ref<const Eigen::VectorXf>& target_weights, const Cost& cost,
      const StochasticSemiDualOptions& options);

  StochasticSemiDualSolver(const StochasticSemiDualSolver&) = delete;
  StochasticSemiDualSolver& operator=(const StochasticSemiDualSolver&) = delete;

  // options.iterations steps (or `iterations` > 0), continuing the current run, then the
  // evaluation at the estimate (phi, F, and the plan / marginal error if requested).
  absl::StatusOr<StochasticSemiDualResult> Solve();
  absl::StatusOr<StochasticSemiDualResult> Solve(int64_t iterations);

  // One step of eq. 102 (no evaluation).
  void Step();

  // The estimate psi_k (m entries; psi~_0 before the first step of a run).
  Eigen::VectorXf psi() const;
  Eigen::VectorXd psi_double() const;
  // The iterate psi~_k (equal to psi() for kSgd).
  Eigen::VectorXf psi_iterate() const;
  Eigen::VectorXd psi_iterate_double() const;
  // Starts a new run from psi~_0 = psi (step counter 0, fresh average). InvalidArgumentError
  // naming "psi" for a wrong size or non-finite entries.
  absl::Status SetPsi(const Eigen::Ref<const Eigen::VectorXf>& psi);
  // Starts a new run from the current estimate.
  void RestartAveraging();

  // psi^{c,lambda}(i) of one source row for the given psi (m entries) and, if `weights` is not
  // null, pi_i (m entries; minus the gradient of the value in psi). The kernels of Step().
  absl::StatusOr<double> CTransformRow(int64_t i, const Eigen::Ref<const Eigen::VectorXf>& psi,
                                       Eigen::VectorXf* weights = nullptr) const;
  // F(psi), and its c-transform in `phi` (n entries) if not null.
  absl::StatusOr<double> SemiDual(const Eigen::Ref<const Eigen::VectorXf>& psi,
                                  Eigen::VectorXf* phi = nullptr) const;
  // The plan P_ij = a_i pi_i(j) of psi (n x m), and its marginal error ||P^T 1 - b||_1 in
  // `marginal_error` if not null.
  absl::StatusOr<RowMatrixXf> TransportPlan(const Eigen::Ref<const Eigen::VectorXf>& psi,
                                            double* marginal_error = nullptr) const;

  int64_t num_sources() const { return n_; }
  int64_t num_targets() const { return m_; }
  const RowMatrixXf& cost_matrix() const { return cost_; }
  const StochasticSemiDualOptions& options() const { return options_; }
  // Steps of the current run (k), and since creation.
  int64_t run_steps() const { return k_; }
  int64_t total_steps() const { return total_steps_; }

 private:
  StochasticSemiDualSolver(RowMatrixXf cost, const Eigen::Ref<const Eigen::VectorXf>& a,
                           const Eigen::Ref<const Eigen::VectorXf>& b,
                           const StochasticSemiDualOptions& options);

  int64_t SampleSource();
  void StepSoft();
  void StepHard();
  // Starts a new run from psi~_0 = psi (m doubles).
  void ResetRun(const Eigen::VectorXd& psi);
  // phi (n) at psi (m doubles); plan (n x m) and column sums of the plan (m) if not null.
  void Evaluate(const Eigen::VectorXd& psi, Eigen::VectorXd* phi, RowMatrixXf* plan,
                Eigen::VectorXd* column_sums) const;
  double Objective(const Eigen::VectorXd& psi, const Eigen::VectorXd& phi) const;
  double MarginalError(const Eigen::VectorXd& column_sums) const;

  RowMatrixXf cost_;  // n x m, contiguous (row stride m)
  int64_t n_ = 0;
  int64_t m_ = 0;
  StochasticSemiDualOptions options_;
  Eigen::VectorXd a_;         // normalized source weights
  Eigen::VectorXd b_;         // normalized target weights
  Eigen::VectorXd log_b_;     // log b_j (-inf for b_j = 0)
  Eigen::VectorXd excluded_;  // +inf for b_j = 0 (outside the support), else 0
  // Walker alias table for i ~ a (uniform_sources_: plain uniform draws).
  Eigen::VectorXd alias_prob_;
  std::vector<int32_t> alias_index_;
  bool uniform_sources_ = false;
  nn::Rng rng_;

  // Run state: psi~ = u_ + g_sum_ * b, V = h_sum_ * b + w_ (see the header comment; g_sum_ and
  // h_sum_ stay 0 for lambda > 0).
  Eigen::VectorXd u_;
  Eigen::VectorXd w_;
  double g_sum_ = 0.0;
  double h_sum_ = 0.0;
  int64_t k_ = 0;
  int64_t total_steps_ = 0;

  // Step workspace (no allocation per step).
  Eigen::VectorXf bias_;      // lambda > 0: u_j / lambda + log b_j, refreshed by each update
  Eigen::VectorXf weights_;     // pi of one sample
  Eigen::VectorXf weight_sum_;  // sum of pi over a batch
  std::vector<int32_t> argmins_;  // lambda = 0: the batch's argmins
};

}  // namespace otgen::ot

#endif  // OTGEN_OT_STOCHASTIC_SEMI_DUAL_H_
