// Linear assignment problem: the exact discrete OT problem between two uniform measures with
// the same number of atoms, which is the "Discrete-OT" reference of seed 002 (Sec. 6.1, Fig. 1-b:
// "the optimal assignment algorithm between samples"), i.e. the Monge problem (seed 002 eq. 1)
// restricted to empirical measures of n points each.
//
// Given an n x n cost matrix C it finds the permutation sigma minimizing
//
//   (1/n) sum_i C[i, sigma(i)]                                  (primal)
//
// together with dual potentials (u, v) that solve
//
//   max (1/n) (sum_i u_i + sum_j v_j)  s.t.  u_i + v_j <= C[i, j]  for all i, j      (dual)
//
// with u_i + v_sigma(i) = C[i, sigma(i)] (complementary slackness); u and v are the
// Kantorovich potentials (phi, psi) of seed 002 eq. 2 for the two empirical measures.
//
// Algorithm: Jonker & Volgenant (1987), "A shortest augmenting path algorithm for dense and
// sparse linear assignment problems": column reduction, reduction transfer, two passes of
// augmenting row reduction, then one Dijkstra shortest augmenting path per remaining free row
// with column potentials kept so that reduced costs stay non-negative. Worst case O(n^3),
// typically far less. Costs may be float or double; potentials and reduced costs are always
// computed in double, so the float matrix is solved exactly as given.
//
// Memory layout: `cost` is row-major, row i = source i, column j = target j (any outer stride).
// Extra memory is O(n) besides the input.
//
// Usage:
//   otgen::ot::RowMatrixXd cost = ...;                       // n x n
//   absl::StatusOr<otgen::ot::AssignmentResult> r = otgen::ot::SolveAssignment(cost);
//   if (!r.ok()) return r.status();
//   int j = r->target_of_source[0];                           // sigma(0)
//   double w = r->cost;                                       // (1/n) sum_i C[i, sigma(i)]
#ifndef OTGEN_OT_ASSIGNMENT_H_
#define OTGEN_OT_ASSIGNMENT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "Eigen/Dense"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ot/types.h"

namespace otgen::ot {

struct AssignmentOptions {
  // Runs Jonker-Volgenant's initialization (column reduction, reduction transfer and two
  // passes of augmenting row reduction) before the shortest augmenting paths. Turning it off
  // leaves every row to the augmenting phase (slower, same optimum); useful for testing.
  bool jonker_volgenant_initialization = true;

  absl::Status Validate() const;
};

struct AssignmentResult {
  // (1/n) sum_i C[i, sigma(i)]: the OT cost between the two uniform empirical measures.
  double cost = 0.0;
  // sigma: source i is matched to target target_of_source[i] (a permutation of 0..n-1).
  std::vector<int> target_of_source;
  // Dual potentials: source_potential[i] + target_potential[j] <= C[i, j] for all (i, j),
  // with equality at (i, sigma(i)); mean(source_potential) + mean(target_potential) = cost.
  Eigen::VectorXd source_potential;
  Eigen::VectorXd target_potential;
  // Number of rows that the shortest-augmenting-path phase had to assign.
  int64_t augmentations = 0;
  // Total number of columns labelled permanently by the Dijkstra searches.
  int64_t dijkstra_steps = 0;
  double solve_seconds = 0.0;

  // One line, e.g. "Assignment: n=1000 cost=0.0123 augmentations=312 dijkstra_steps=10234 0.012s".
  std::string BriefReport() const;
};

// Solves the assignment problem for a square cost matrix (n >= 1). Returns
// InvalidArgumentError if `cost` is empty, not square, or has a NaN/Inf entry.
absl::StatusOr<AssignmentResult> SolveAssignment(const Eigen::Ref<const RowMatrixXd>& cost,
                                                 const AssignmentOptions& options = {});
absl::StatusOr<AssignmentResult> SolveAssignment(const Eigen::Ref<const RowMatrixXf>& cost,
                                                 const AssignmentOptions& options = {});

namespace internal {

// Output of the unchecked solver core.
struct LapSolution {
  std::vector<int> target_of_source;
  Eigen::VectorXd source_potential;  // u
  Eigen::VectorXd target_potential;  // v
  int64_t augmentations = 0;
  int64_t dijkstra_steps = 0;
};

// The solver core without input validation: `cost` points to an n x n row-major matrix with
// row stride `stride` (elements), all entries finite, n >= 1. The potentials satisfy
// u_i = min_j (C_ij - v_j) exactly as computed in double.
template <typename T>
LapSolution SolveLapDense(const T* cost, int64_t stride, int n, bool jv_initialization);

extern template LapSolution SolveLapDense<float>(const float*, int64_t, int, bool);
extern template LapSolution SolveLapDense<double>(const double*, int64_t, int, bool);

}  // namespace internal

}  // namespace otgen::ot

#endif  // OTGEN_OT_ASSIGNMENT_H_
