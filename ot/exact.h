// Exact discrete optimal transport: the "Discrete-OT" reference of seed 002 (Sec. 6.1,
// Fig. 1-b), against which learned transport maps are scored.
//
// For two discrete measures mu = sum_i a_i delta_{x_i} (n atoms) and nu = sum_j b_j delta_{y_j}
// (m atoms) and a cost matrix C (n x m, C_ij = c(x_i, y_j)) it solves the Kantorovich linear
// program exactly (up to double rounding)
//
//   primal:  min_P <C, P> = sum_ij C_ij P_ij   s.t.  P 1 = a,  P^T 1 = b,  P >= 0
//   dual:    max_{f, g} <a, f> + <b, g>        s.t.  f_i + g_j <= C_ij  for all i, j
//
// the discrete form of the Monge/Kantorovich problems of seed 002 eqs. 1-2 (f, g are the
// Kantorovich potentials phi, psi of eq. 2). At the optimum both values agree and
// f_i + g_j = C_ij wherever P_ij > 0 (complementary slackness, seed 002 Theorem 1 / eq. 21).
//
// Algorithms:
//   * General weights: a primal network simplex on the bipartite transport graph (sources ->
//     targets, uncapacitated), started from an artificial spanning tree (big M, after taking
//     row and column minima out of C so that M scales with the spread of C, not its offset),
//     with block search pricing (the pivot rule of LEMON's NetworkSimplex used by Bonneel et
//     al. 2011 and POT's ot.emd: scan blocks of ~sqrt(n m) arcs, enter the most negative
//     reduced cost of the first block that has one), strongly feasible trees (Cunningham
//     1976) against cycling, and the tree stored as parent / preorder thread / subtree-size
//     lists so a pivot costs O(size of the re-hung subtree). A basic optimal plan has at most
//     n + m - 1 non-zeros.
//   * n = m with uniform weights: the linear assignment problem (ot/assignment.h,
//     Jonker-Volgenant), dispatched automatically; the plan is a permutation with mass 1/n.
// Flows, potentials and reduced costs are in double whether the costs are float or double.
// "Optimal" means no reduced cost below -64 ulps of the potentials' magnitude (about
// 1e-14 (n + m) times the spread of C): the returned cost is the LP optimum up to that.
// Weights are normalized to sum 1 internally (they must already sum to 1 within
// `weight_sum_tolerance`), so the plan's marginals are a / sum(a) and b / sum(b).
//
// Returned potentials are cleaned by two c-transforms (g_j = min_i C_ij - f_i, then
// f_i = min_j C_ij - g_j: dual feasible in floating point, still optimal) and shifted by a
// constant so that <a, f> = <b, g> = cost / 2.
//
// Layout: cost matrices are row-major (row i = source i, column j = target j, any outer
// stride); point clouds are row-major float n x d (`RowMatrixXf`, one point per row); weights
// are column vectors. The point-cloud overloads build the n x m cost matrix in double (one
// Eigen double GEMM for <x, y> on centred points when d > 4, direct differences otherwise),
// so they need 8 n m bytes.
//
// Usage:
//   otgen::ot::RowMatrixXf x = ..., y = ...;       // n x d and m x d samples
//   // Uniform weights, squared Euclidean cost (the W2^2 Discrete-OT map of seed 002):
//   OTGEN_ASSIGN_OR_RETURN(otgen::ot::ExactOTResult r,
//                          otgen::ot::SolveExactOT(x, y, otgen::ot::Cost::SquaredEuclidean()));
//   for (const otgen::ot::TransportEntry& e : r.plan) { /* x_{e.i} -> y_{e.j}, mass e.mass */ }
//   // General weights on a given cost matrix:
//   OTGEN_ASSIGN_OR_RETURN(otgen::ot::ExactOTResult s, otgen::ot::SolveExactOT(cost, a, b));
//   std::cout << s.BriefReport() << "\n";
//   otgen::ot::RowMatrixXd p = s.DensePlan();
#ifndef OTGEN_OT_EXACT_H_
#define OTGEN_OT_EXACT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "Eigen/Dense"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ot/cost.h"
#include "ot/types.h"

namespace otgen::ot {

struct ExactOTOptions {
  // Maximum number of network simplex pivots; must be > 0. The result's termination says
  // whether it was reached (then the plan and potentials are not optimal, and the plan may
  // miss part of the mass). The assignment path always finishes.
  int64_t max_iterations = 100'000'000;
  // The weights must each sum to 1 within this relative tolerance: |sum(a) - 1| <= tol.
  // In [0, 1).
  double weight_sum_tolerance = 1e-5;
  // Use the assignment solver when n = m and both weight vectors are uniform.
  bool use_assignment_for_uniform = true;
  // Weights count as uniform when max_i |a_i n - 1| <= this (after normalization). In [0, 1).
  double uniform_weight_tolerance = 1e-9;
  // Network simplex pricing: the number of arcs scanned per block before the best candidate
  // enters. 0 picks max(sqrt(n m), 64) (LEMON's default block size rule).
  int64_t block_size = 0;

  absl::Status Validate() const;
};

enum class ExactOTSolver { kNetworkSimplex, kAssignment };
enum class ExactOTTermination {
  kOptimal,               // Optimal up to double rounding.
  kMaxIterationsReached,  // Stopped by max_iterations: not optimal.
};

// One non-zero of the transport plan: mass P_ij moved from source i to target j.
struct TransportEntry {
  int i = 0;
  int j = 0;
  double mass = 0.0;
};

struct ExactOTResult {
  int rows = 0;  // n
  int cols = 0;  // m
  // <C, P>.
  double cost = 0.0;
  // The non-zeros of P sorted by (i, j); at most n + m - 1 of them (exactly n, one per row,
  // on the assignment path).
  std::vector<TransportEntry> plan;
  // Kantorovich potentials f (n) and g (m): f_i + g_j <= C_ij for all (i, j) and equality on
  // the plan's support; <a, f> + <b, g> = cost.
  Eigen::VectorXd source_potential;
  Eigen::VectorXd target_potential;
  // Network simplex pivots, or augmenting paths on the assignment path.
  int64_t iterations = 0;
  ExactOTSolver solver = ExactOTSolver::kNetworkSimplex;
  ExactOTTermination termination = ExactOTTermination::kOptimal;
  // Wall time of the solve (including building the cost matrix for point clouds).
  double solve_seconds = 0.0;

  bool optimal() const { return termination == ExactOTTermination::kOptimal; }
  // The dense n x m plan.
  RowMatrixXd DensePlan() const;
  // <a, f> + <b, g> for the given weights (the dual objective; equals `cost` at optimality).
  double DualObjective(const Eigen::Ref<const Eigen::VectorXd>& source_weights,
                       const Eigen::Ref<const Eigen::VectorXd>& target_weights) const;
  // For each source i, the target receiving most of its mass (the Discrete-OT map when the
  // plan is a permutation).
  std::vector<int> MainTargets() const;
  // E.g. "ExactOT[network simplex]: 1000 x 800, cost 0.01234, 1799 non-zeros, 5321
  // iterations, 0.0420 s, optimal".
  std::string BriefReport() const;
};

// Cost-matrix API. `cost` is n x m (n, m >= 1) with finite entries; source_weights has n
// entries, target_weights m, all >= 0, each vector summing to 1 (within
// options.weight_sum_tolerance). Errors (InvalidArgument) name the offending argument.
absl::StatusOr<ExactOTResult> SolveExactOT(const Eigen::Ref<const RowMatrixXd>& cost,
                                           const Eigen::Ref<const Eigen::VectorXd>& source_weights,
                                           const Eigen::Ref<const Eigen::VectorXd>& target_weights,
                                           const ExactOTOptions& options = {});
absl::StatusOr<ExactOTResult> SolveExactOT(const Eigen::Ref<const RowMatrixXf>& cost,
                                           const Eigen::Ref<const Eigen::VectorXf>& source_weights,
                                           const Eigen::Ref<const Eigen::VectorXf>& target_weights,
                                           const ExactOTOptions& options = {});
// Uniform weights a = 1/n, b = 1/m.
absl::StatusOr<ExactOTResult> SolveExactOT(const Eigen::Ref<const RowMatrixXd>& cost,
                                           const ExactOTOptions& options = {});
absl::StatusOr<ExactOTResult> SolveExactOT(const Eigen::Ref<const RowMatrixXf>& cost,
                                           const ExactOTOptions& options = {});

// Point-cloud API: C_ij = cost(x_i, y_j) (ot/cost.h: squared Euclidean, Lp (Lp(1) is the
// Euclidean distance), L1, cosine, each divided by cost.scale), evaluated in double.
// source_points n x d, target_points m x d, finite entries.
absl::StatusOr<ExactOTResult> SolveExactOT(const Eigen::Ref<const RowMatrixXf>& source_points,
                                           const Eigen::Ref<const RowMatrixXf>& target_points,
                                           const Cost& cost, const ExactOTOptions& options = {});
absl::StatusOr<ExactOTResult> SolveExactOT(const Eigen::Ref<const RowMatrixXf>& source_points,
                                           const Eigen::Ref<const Eigen::VectorXf>& source_weights,
                                           const Eigen::Ref<const RowMatrixXf>& target_points,
                                           const Eigen::Ref<const Eigen::VectorXf>& target_weights,
                                           const Cost& cost, const ExactOTOptions& options = {});

// The n x m cost matrix C_ij = cost(x_i, y_j) in double, as the point-cloud API builds it.
absl::StatusOr<RowMatrixXd> ExactCostMatrix(const Eigen::Ref<const RowMatrixXf>& source_points,
                                            const Eigen::Ref<const RowMatrixXf>& target_points,
                                            const Cost& cost);

}  // namespace otgen::ot

#endif  // OTGEN_OT_EXACT_H_
