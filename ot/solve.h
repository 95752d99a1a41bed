// The command-line OT solver for users' own data (`bazel run -c opt //ot:solve -- ...`):
// reads point clouds (and optional weights) from NumPy .npy files (float32/float64, C order)
// or CSV, solves exact OT, Sinkhorn, the Sinkhorn divergence or semi-discrete OT, prints
// the cost to stdout and writes potentials / plan / assignment as .npy files.
//
//   solve --source=X.npy --target=Y.npy [--source_weights=a.npy --target_weights=b.npy]
//         --method=exact|sinkhorn|sinkhorn_divergence|semi_discrete
//         --cost=sqeuclidean|l1|cosine|lp [--p=1.5] [--epsilon=0.01] --output_dir=DIR
//
// Outputs in --output_dir (created if needed):
//   exact:               cost.txt, f.npy, g.npy, plan.npy (dense n x m) and, for the n = m
//                        uniform case, assignment.npy (int64 as float32 indices)
//   sinkhorn:            cost.txt, f.npy, g.npy, plan.npy (when n m <= 10^8)
//   sinkhorn_divergence: cost.txt, gradient_x.npy
//   semi_discrete:       cost.txt (the semi-dual value H), psi.npy (the target potential),
//                        with the source given as samples (uniform weights)
// Every input error (missing or malformed file, bad dtype, Fortran order, truncated data,
// mismatched dimensions, bad weights, NaN) is a Status naming the file or the flag.
#ifndef OTGEN_OT_SOLVE_H_
#define OTGEN_OT_SOLVE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ot/cost.h"
#include "ot/types.h"

namespace otgen::ot {

struct SolveOptions {
  std::string source;
  std::string target;
  std::string source_weights;  // empty: uniform
  std::string target_weights;  // empty: uniform
  std::string method = "exact";
  std::string cost = "sqeuclidean";
  float p = 2.0f;
  float scale = 1.0f;
  float epsilon = 0.01f;
  // Sinkhorn
  int max_iterations = 1000;
  float tolerance = 1e-4f;
  // Semi-discrete
  int64_t semi_discrete_steps = 10000;
  int64_t semi_discrete_batch = 1;
  float semi_discrete_gamma = 1.0f;
  float semi_discrete_alpha = 0.5f;
  uint64_t seed = 0;
  std::string output_dir;

  absl::Status Validate() const;
};

// Parses "sqeuclidean" | "l1" | "cosine" | "lp" (with p) into a Cost (scale applied).
absl::StatusOr<Cost> ParseCost(const std::string& name, float p, float scale);

// Reads a matrix from .npy or .csv (by extension); a 1-D .npy is read as a column.
absl::StatusOr<RowMatrixXf> ReadMatrixFile(const std::string& path);

// Runs the solver; returns the line printed on stdout ("cost <value>" and a summary).
absl::StatusOr<std::string> RunSolve(const SolveOptions& options);

}  // namespace otgen::ot

#endif  // OTGEN_OT_SOLVE_H_
