// Entropy-regularized optimal transport between weighted point clouds: log-domain Sinkhorn
// with epsilon-scaling, and the debiased Sinkhorn divergence with its gradient in the source
// points (a generator loss).
//
// Problem (seed 000 eq. 8 with lambda = epsilon, discrete measures alpha = sum_i a_i delta_{x_i},
// beta = sum_j b_j delta_{y_j}, C_ij = c(x_i, y_j) from ot/cost.h):
//
//   OT_eps(a, b) = min_{P in Pi(a, b)} <P, C> + eps KL(P | a (x) b),
//   KL(P | a (x) b) = sum_ij P_ij log(P_ij / (a_i b_j)),   (relative entropy w.r.t. a (x) b)
//
// and its dual (seed 000 eq. 9, m_eps(t) = eps (e^{t/eps} - 1)):
//
//   OT_eps(a, b) = max_{f, g} <a, f> + <b, g>
//                               - eps sum_ij a_i b_j (exp((f_i + g_j - C_ij) / eps) - 1).
//
// This is the convention of seed 000 (eqs. 8-9, 72) and of GeomLoss (Feydy et al. 2019). It
// differs from POT's `ot.sinkhorn2(a, b, C, reg)`, which regularizes with -H(P) = sum P log P
// (same optimal plan, since the two regularizers differ by a constant on Pi(a, b)) and reports
// <P, C> only. 0 <= OT_eps - OT_0 <= eps KL(P_0 | a (x) b) (<= eps log n for a permutation).
//
// Sinkhorn iterations (regularized c-transforms, seed 000 eqs. 11-13), in the log domain:
//
//   f_i <- -eps log sum_j b_j exp((g_j - C_ij) / eps)     (f-update: log-sum-exp over row i)
//   g_j <- -eps log sum_i a_i exp((f_i - C_ij) / eps)     (g-update: log-sum-exp over column j)
//
// with the plan P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps). After a g-update the columns of P
// sum exactly to b; the row sums are r_i = a_i exp((f_i - f_new_i) / eps) where f_new is the next
// f-update, so the marginal error ||P 1 - a||_1 comes for free with each iteration.
// One *iteration* = one f-update and one g-update (two log-sum-exp sweeps over the n x m costs,
// done in one pass over memory: each block of rows gets its f-update, then is folded into the
// column accumulators of its row chunk for the g-update; the at most 16 chunks are handed to
// threads dynamically and merged in a fixed order, so results are bitwise independent of the
// thread count).
//
// Epsilon-scaling (GeomLoss / Schmitzer 2019): eps runs through eps_0, eps_0 q, eps_0 q^2, ...
// (eps_0 = options.epsilon_start, by default the cost diameter bound of CostDiameterBound,
// q = options.epsilon_scaling_factor), `iterations_per_stage` iterations each, down to the
// target options.epsilon, where iterations continue until the marginal error is <= tolerance.
//
// Symmetric problems OT_eps(a, a) use the averaged update of GeomLoss,
//   f <- (f + T(f)) / 2,   T(f)_i = -eps log sum_j a_j exp((f_j - C_ij) / eps),
// which converges much faster than alternating updates on these problems.
//
// Returned value: `regularized_cost` is the dual objective above at the returned potentials
// (for the alternating solver the plan has mass exactly 1, so it is <a, f> + <b, g>; for the
// symmetric one 2 <a, f> - eps (mass - 1)). It is a lower bound of OT_eps that is tight at
// convergence. The returned potentials are exactly the pair whose marginal error is reported.
//
// Sinkhorn divergence (seed 000 eq. 72, Genevay et al. 2018, Feydy et al. 2019):
//
//   S_eps(a, b) = OT_eps(a, b) - 1/2 OT_eps(a, a) - 1/2 OT_eps(b, b)
//
// (>= 0, and = 0 iff a = b, for the costs ||x - y|| and ||x - y||^2: Feydy et al. 2019, Thm. 1).
// GeomLoss's SamplesLoss("sinkhorn", p=2, blur=sigma) is S_eps with C = ||x - y||^2 / 2 and
// eps = sigma^2, i.e. Cost::SquaredEuclidean(2.0f) with epsilon = sigma^2 here (GeomLoss runs a
// fixed annealing schedule instead of iterating to a tolerance).
//
// and its gradient in the source points, by the envelope theorem (seed 000 Thm. 6, eqs. 76-77:
// differentiate the dual objective at the optimal potentials; for the symmetric term both
// arguments move and c is symmetric, which gives the factor 2 that cancels the 1/2):
//
//   grad_{x_i} S_eps = sum_j P_ij grad_x c(x_i, y_j) - sum_k Q_ik grad_x c(x_i, x_k),
//
// P the optimal plan of OT_eps(a, b) and Q that of OT_eps(a, a). Dividing by a_i gives the
// per-sample gradient (the "grad psi^{c,lambda} - grad chi" of eq. 77).
//
// Cost matrix: when n m * 4 bytes <= options.max_cost_matrix_bytes (default 512 MiB), C is
// computed once (ot/cost.h tiles: direct kernels for d <= 16, oneDNN sgemm above) and kept in a
// buffer reused across calls; otherwise it is streamed: every iteration recomputes row tiles of
// C (tile_rows x m each) and folds them in, so memory is O(threads * tile_rows * m + 16 m)
// instead of O(n m). Both modes give the same result up to float rounding. Rows are split
// across OpenMP threads (problems under 65536 cost entries run on the calling thread).
//
// Numerics: float32 potentials and costs; log-sum-exps stabilized by the maximum, exp by the
// AVX-512 kernel of ot/log_sum_exp.h. Every exponent (f_i + g_j - C_ij) / eps carries a float
// rounding error of about 1e-7 (|f| + |g| + C) / eps, which sets a floor on the reachable
// marginal error (measured for costs of order 1: ~1e-7 at eps = 0.03, ~1e-5 at eps = 1e-3).
// Sinkhorn also needs more iterations as eps / (cost diameter) decreases (its contraction
// factor tends to 1); epsilon-scaling mitigates it.
//
// Usage:
//   otgen::ot::SinkhornOptions options;
//   options.epsilon = 0.01f;                    // in cost units
//   options.return_plan = true;
//   OTGEN_ASSIGN_OR_RETURN(otgen::ot::SinkhornResult r,
//                          otgen::ot::Sinkhorn(x, a, y, b, otgen::ot::Cost::SquaredEuclidean(),
//                                              options));
//   std::cerr << r.Summary() << "\n";          // r.f, r.g, r.regularized_cost, r.plan
//
//   // As a generator loss (reuses its buffers across calls):
//   otgen::ot::SinkhornSolver solver(options);
//   OTGEN_ASSIGN_OR_RETURN(otgen::ot::SinkhornDivergenceResult s,
//                          solver.Divergence(x, a, y, b, cost, /*compute_gradient=*/true));
//   // s.divergence, s.gradient_x (n x d, d S / d x_i)
#ifndef OTGEN_OT_SINKHORN_H_
#define OTGEN_OT_SINKHORN_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "Eigen/Dense"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ot/cost.h"
#include "ot/types.h"

namespace otgen::ot {

struct SinkhornOptions {
  // Target regularization eps > 0, in cost units (choose it relative to the cost scale; the
  // regularized plan blurs at length scale ~sqrt(eps) for the squared Euclidean cost).
  float epsilon = 0.01f;

  // Epsilon-scaling: start from epsilon_start (0 means CostDiameterBound(cost, x, y)) and
  // multiply by epsilon_scaling_factor in (0, 1) per stage while above `epsilon`.
  // false: all iterations at `epsilon`, starting from zero potentials.
  bool epsilon_scaling = true;
  float epsilon_start = 0.0f;
  float epsilon_scaling_factor = 0.5f;
  // Iterations at each epsilon above the target (GeomLoss uses 1).
  int iterations_per_stage = 1;

  // Iterations at the target epsilon (the stages before it are not counted here); >= 2 (the
  // first one only makes the g-potential exact at the new epsilon, the error of the pair is
  // known from the second on).
  int max_iterations = 1000;
  // Stop at the target epsilon once the L1 marginal error sum_i |(P 1)_i - a_i| +
  // sum_j |(P^T 1)_j - b_j| is <= tolerance (1e-3 is also OTT-JAX's default). 0 runs all
  // max_iterations. In float32 the error cannot go much below ~1e-7 (|f| + |g| + max C) / eps:
  // a tolerance under that floor just runs max_iterations.
  float tolerance = 1e-3f;

  // Return the n x m plan in SinkhornResult::plan (Sinkhorn / Solve only).
  bool return_plan = false;

  // Precompute C when n * m * sizeof(float) <= this; stream it in tiles otherwise.
  int64_t max_cost_matrix_bytes = int64_t{512} << 20;
  // Rows per block of the sweeps, i.e. the height of each recomputed tile when streaming
  // (0: automatic: about 512 KiB per block and >= 16 rows; streamed tiles that need an sgemm
  // (d > 16) about 4 MiB and >= 128 rows, to amortize reading all targets per tile).
  int tile_rows = 0;
  // OpenMP threads (0: the OpenMP default, i.e. OMP_NUM_THREADS or the core count).
  int num_threads = 0;

  // InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

struct SinkhornResult {
  // Dual potentials (see the header comment): f for the source points (n), g for the targets
  // (m). For a symmetric solve g == f.
  Eigen::VectorXf f;
  Eigen::VectorXf g;
  // The dual objective at (f, g): OT_eps(a, b) at convergence.
  double regularized_cost = 0.0;
  // P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps), n x m, if options.return_plan (else 0 x 0).
  RowMatrixXf plan;
  // Iterations (f- and g-update pairs) at the target epsilon, and in the epsilon-scaling
  // stages before it.
  int iterations = 0;
  int scaling_iterations = 0;
  int scaling_stages = 0;
  // L1 marginal error of the plan of (f, g) (row and column errors added).
  double marginal_error = 0.0;
  bool converged = false;
  float epsilon = 0.0f;
  // Whether the cost matrix was precomputed (else streamed in tiles).
  bool precomputed_cost = false;
  bool symmetric = false;
  // Wall time of the setup (validation, cost matrix) and of the iterations.
  double setup_seconds = 0.0;
  double iteration_seconds = 0.0;

  // One line, e.g. "Sinkhorn CONVERGED: OT_eps=0.8123 eps=0.01 iterations=57 (+12 in 12
  // scaling stages) marginal_error=8.1e-05 cost_matrix=precomputed time=3.1ms".
  std::string Summary() const;
};

struct SinkhornDivergenceResult {
  // S_eps(a, b) = xy.regularized_cost - (xx.regularized_cost + yy.regularized_cost) / 2.
  double divergence = 0.0;
  // The three solves (potentials and statistics, no plans).
  SinkhornResult xy;
  SinkhornResult xx;
  SinkhornResult yy;
  // d S_eps / d x_i (n x d) if requested, else 0 x 0.
  RowMatrixXf gradient_x;
  bool converged = false;

  std::string Summary() const;
};

namespace internal {
struct SinkhornWorkspace;
}  // namespace internal

// A Sinkhorn solver that keeps its buffers (cost matrix, tiles, accumulators) across calls, so
// repeated solves of similar size (e.g. one per training step) do not pay for fresh memory.
// Not thread-safe: use one per thread (each solve is multithreaded itself).
class SinkhornSolver {
 public:
  explicit SinkhornSolver(const SinkhornOptions& options = SinkhornOptions());
  ~SinkhornSolver();
  SinkhornSolver(SinkhornSolver&&) noexcept;
  SinkhornSolver& operator=(SinkhornSolver&&) noexcept;

  const SinkhornOptions& options() const { return options_; }
  void set_options(const SinkhornOptions& options) { options_ = options; }

  // OT_eps(a, b) between x (n x d, weights a) and y (m x d, weights b): alternating updates.
  // InvalidArgument (naming the argument) for empty or mismatched point sets, non-finite
  // coordinates, weights of the wrong size, negative, non-finite or not summing to 1 (within
  // 1e-4; they are renormalized to sum exactly 1), an invalid cost or invalid options.
  absl::StatusOr<SinkhornResult> Solve(const Eigen::Ref<const RowMatrixXf>& x,
                                       const Eigen::Ref<const Eigen::VectorXf>& a,
                                       const Eigen::Ref<const RowMatrixXf>& y,
                                       const Eigen::Ref<const Eigen::VectorXf>& b,
                                       const Cost& cost);

  // OT_eps(a, a) for one cloud with the symmetric averaged update (g == f in the result).
  absl::StatusOr<SinkhornResult> SolveSymmetric(const Eigen::Ref<const RowMatrixXf>& x,
                                                const Eigen::Ref<const Eigen::VectorXf>& a,
                                                const Cost& cost);

  // S_eps(a, b) (seed 000 eq. 72) and, if compute_gradient, its gradient in x (n x d).
  absl::StatusOr<SinkhornDivergenceResult> Divergence(const Eigen::Ref<const RowMatrixXf>& x,
                                                      const Eigen::Ref<const Eigen::VectorXf>& a,
                                                      const Eigen::Ref<const RowMatrixXf>& y,
                                                      const Eigen::Ref<const Eigen::VectorXf>& b,
                                                      const Cost& cost, bool compute_gradient);

 private:
  SinkhornOptions options_;
  std::unique_ptr<internal::SinkhornWorkspace> workspace_;
};

// One-shot conveniences over SinkhornSolver.
absl::StatusOr<SinkhornResult> Sinkhorn(const Eigen::Ref<const RowMatrixXf>& x,
                                        const Eigen::Ref<const Eigen::VectorXf>& a,
                                        const Eigen::Ref<const RowMatrixXf>& y,
                                        const Eigen::Ref<const Eigen::VectorXf>& b,
                                        const Cost& cost,
                                        const SinkhornOptions& options = SinkhornOptions());

absl::StatusOr<SinkhornDivergenceResult> SinkhornDivergence(
    const Eigen::Ref<const RowMatrixXf>& x, const Eigen::Ref<const Eigen::VectorXf>& a,
    const Eigen::Ref<const RowMatrixXf>& y, const Eigen::Ref<const Eigen::VectorXf>& b,
    const Cost& cost, const SinkhornOptions& options = SinkhornOptions(),
    bool compute_gradient = false);

// Uniform weights 1/n (a convenience for point clouds without weights).
Eigen::VectorXf UniformWeights(Eigen::Index n);

}  // namespace otgen::ot

#endif  // OTGEN_OT_SINKHORN_H_
