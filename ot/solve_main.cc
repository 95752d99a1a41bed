// bazel run -c opt //ot:solve -- --source=X.npy --target=Y.npy --method=exact --output_dir=out
// See ot/solve.h for the flags and outputs.
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "ot/solve.h"

ABSL_FLAG(std::string, source, "", "Source points, n x d (.npy float32/float64 C order, or .csv).");
ABSL_FLAG(std::string, target, "", "Target points, m x d (.npy or .csv).");
ABSL_FLAG(std::string, source_weights, "", "Source weights, n entries summing to 1 (default uniform).");
ABSL_FLAG(std::string, target_weights, "", "Target weights, m entries summing to 1 (default uniform).");
ABSL_FLAG(std::string, method, "exact", "exact | sinkhorn | sinkhorn_divergence | semi_discrete");
ABSL_FLAG(std::string, cost, "sqeuclidean", "sqeuclidean | l1 | cosine | lp");
ABSL_FLAG(float, p, 2.0f, "Exponent of the lp cost ||x - y||^p (p >= 1).");
ABSL_FLAG(float, scale, 1.0f, "Every cost is divided by this scale.");
ABSL_FLAG(float, epsilon, 0.01f, "Sinkhorn epsilon (> 0), or the semi-discrete softmin lambda (>= 0).");
ABSL_FLAG(int, max_iterations, 1000, "Sinkhorn iterations at the target epsilon.");
ABSL_FLAG(float, tolerance, 1e-4f, "Sinkhorn L1 marginal error tolerance.");
ABSL_FLAG(int64_t, steps, 10000, "Semi-discrete ASGD steps.");
ABSL_FLAG(int64_t, batch, 1, "Semi-discrete source samples per step.");
ABSL_FLAG(float, gamma, 1.0f, "Semi-discrete ASGD step gamma / k^alpha.");
ABSL_FLAG(float, alpha, 0.5f, "Semi-discrete ASGD exponent alpha.");
ABSL_FLAG(uint64_t, seed, 0, "Seed of the semi-discrete sampling.");
ABSL_FLAG(std::string, output_dir, "", "Folder for cost.txt and the .npy results.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Optimal transport between point clouds stored as .npy or .csv files.");
  absl::ParseCommandLine(argc, argv);
  otgen::ot::SolveOptions o;
  o.source = absl::GetFlag(FLAGS_source);
  o.target = absl::GetFlag(FLAGS_target);
  o.source_weights = absl::GetFlag(FLAGS_source_weights);
  o.target_weights = absl::GetFlag(FLAGS_target_weights);
  o.method = absl::GetFlag(FLAGS_method);
  o.cost = absl::GetFlag(FLAGS_cost);
  o.p = absl::GetFlag(FLAGS_p);
  o.scale = absl::GetFlag(FLAGS_scale);
  o.epsilon = absl::GetFlag(FLAGS_epsilon);
  o.max_iterations = absl::GetFlag(FLAGS_max_iterations);
  o.tolerance = absl::GetFlag(FLAGS_tolerance);
  o.semi_discrete_steps = absl::GetFlag(FLAGS_steps);
  o.semi_discrete_batch = absl::GetFlag(FLAGS_batch);
  o.semi_discrete_gamma = absl::GetFlag(FLAGS_gamma);
  o.semi_discrete_alpha = absl::GetFlag(FLAGS_alpha);
  o.seed = absl::GetFlag(FLAGS_seed);
  o.output_dir = absl::GetFlag(FLAGS_output_dir);
  absl::StatusOr<std::string> out = otgen::ot::RunSolve(o);
  if (!out.ok()) {
    std::fprintf(stderr, "solve: %s\n", out.status().ToString().c_str());
    return 1;
  }
  std::fputs(out->c_str(), stdout);
  return 0;
}
