#include "ot/solve.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "apps/eval/csv_matrix.h"
#include "apps/eval/npy.h"
#include "nn/status_macros.h"
#include "ot/exact.h"
#include "ot/semi_discrete.h"
#include "ot/sinkhorn.h"
#include "ot/target_set.h"
#include "nn/random.h"
#include "nn/tensor.h"

namespace otgen::ot {
namespace {

absl::Status MakeDirectories(const std::string& directory) {
  for (size_t pos = directory.find('/', 1);; pos = directory.find('/', pos + 1)) {
    const std::string prefix = directory.substr(0, pos);
    if (!prefix.empty() && mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return absl::PermissionDeniedError(absl::StrCat("--output_dir: cannot create ", prefix, ": ", std::strerror(errno)));
    }
    if (pos == std::string::npos) break;
  }
  return absl::OkStatus();
}

absl::StatusOr<Eigen::VectorXf> ReadWeights(const std::string& path, Eigen::Index n, const char* flag) {
  if (path.empty()) return UniformWeights(n);
  OTGEN_ASSIGN_OR_RETURN(RowMatrixXf w, ReadMatrixFile(path));
  if (w.size() != n || (w.rows() != 1 && w.cols() != 1)) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": expected ", n, " weights (one per point), got a ",
                                                   w.rows(), " x ", w.cols(), " array"));
  }
  return Eigen::Map<const Eigen::VectorXf>(w.data(), n);
}

absl::Status WriteVector(const std::string& path, const Eigen::VectorXf& v) {
  return eval::WriteNpy(path, {static_cast<int64_t>(v.size())}, absl::Span<const float>(v.data(), v.size()));
}

absl::Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace

absl::Status SolveOptions::Validate() const {
  if (source.empty()) return absl::InvalidArgumentError("--source: expected a .npy or .csv file of source points");
  if (target.empty()) return absl::InvalidArgumentError("--target: expected a .npy or .csv file of target points");
  if (output_dir.empty()) return absl::InvalidArgumentError("--output_dir: expected a folder for the results");
  if (method != "exact" && method != "sinkhorn" && method != "sinkhorn_divergence" && method != "semi_discrete") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--method: expected exact, sinkhorn, sinkhorn_divergence or semi_discrete, got '", method, "'"));
  }
  if ((method == "sinkhorn" || method == "sinkhorn_divergence") && !(epsilon > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("--epsilon: expected > 0 for ", method, ", got ", epsilon));
  }
  if (method == "semi_discrete" && !(epsilon >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat("--epsilon: expected >= 0 (the softmin lambda), got ", epsilon));
  }
  return ParseCost(cost, p, scale).status();
}

absl::StatusOr<Cost> ParseCost(const std::string& name, float p, float scale) {
  Cost c;
  if (name == "sqeuclidean") {
    c = Cost::SquaredEuclidean(scale);
  } else if (name == "l1") {
    c = Cost::L1(scale);
  } else if (name == "cosine") {
    c = Cost::Cosine(scale);
  } else if (name == "lp") {
    c = Cost::Lp(p, scale);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("--cost: expected sqeuclidean, l1, cosine or lp, got '", name, "'"));
  }
  if (absl::Status s = c.Validate(); !s.ok()) return absl::InvalidArgumentError(absl::StrCat("--cost/--p/--scale: ", s.message()));
  return c;
}

absl::StatusOr<RowMatrixXf> ReadMatrixFile(const std::string& path) {
  if (absl::EndsWith(path, ".csv") || absl::EndsWith(path, ".txt")) return eval::ReadCsvMatrix(path);
  OTGEN_ASSIGN_OR_RETURN(eval::NpyFloatArray array, eval::ReadNpy(path));
  if (array.shape.size() > 2) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": expected a 1-D or 2-D array, got ", array.shape.size(),
                                                   " dimensions"));
  }
  const Eigen::Index rows = array.shape.empty() ? 1 : array.shape[0];
  const Eigen::Index cols = array.shape.size() == 2 ? array.shape[1] : 1;
  RowMatrixXf m(rows, cols);
  std::copy(array.values.begin(), array.values.end(), m.data());
  return m;
}

absl::StatusOr<std::string> RunSolve(const SolveOptions& o) {
  OTGEN_RETURN_IF_ERROR(o.Validate());
  OTGEN_ASSIGN_OR_RETURN(const Cost cost, ParseCost(o.cost, o.p, o.scale));
  OTGEN_ASSIGN_OR_RETURN(const RowMatrixXf x, ReadMatrixFile(o.source));
  OTGEN_ASSIGN_OR_RETURN(const RowMatrixXf y, ReadMatrixFile(o.target));
  if (x.cols() != y.cols()) {
    return absl::InvalidArgumentError(absl::StrCat("--source ", o.source, " has points of dimension ", x.cols(),
                                                   " but --target ", o.target, " has dimension ", y.cols()));
  }
  OTGEN_RETURN_IF_ERROR(ValidatePoints(cost, x, absl::StrCat("--source ", o.source)));
  OTGEN_RETURN_IF_ERROR(ValidatePoints(cost, y, absl::StrCat("--target ", o.target)));
  OTGEN_ASSIGN_OR_RETURN(const Eigen::VectorXf a, ReadWeights(o.source_weights, x.rows(), "--source_weights"));
  OTGEN_ASSIGN_OR_RETURN(const Eigen::VectorXf b, ReadWeights(o.target_weights, y.rows(), "--target_weights"));
  OTGEN_RETURN_IF_ERROR(MakeDirectories(o.output_dir));
  const std::string dir = o.output_dir + "/";

  std::string summary;
  double value = 0;
  if (o.method == "exact") {
    OTGEN_ASSIGN_OR_RETURN(ExactOTResult r, SolveExactOT(x, a, y, b, cost));
    value = r.cost;
    summary = r.BriefReport();
    OTGEN_RETURN_IF_ERROR(WriteVector(dir + "f.npy", r.source_potential.cast<float>()));
    OTGEN_RETURN_IF_ERROR(WriteVector(dir + "g.npy", r.target_potential.cast<float>()));
    const RowMatrixXf plan = r.DensePlan().cast<float>();
    OTGEN_RETURN_IF_ERROR(eval::WriteNpyMatrix(dir + "plan.npy", plan));
    if (x.rows() == y.rows() && r.plan.size() == static_cast<size_t>(x.rows())) {
      std::vector<float> assignment(x.rows(), -1.0f);
      for (const TransportEntry& e : r.plan) assignment[e.i] = static_cast<float>(e.j);
      if (std::find(assignment.begin(), assignment.end(), -1.0f) == assignment.end()) {
        OTGEN_RETURN_IF_ERROR(eval::WriteNpy(dir + "assignment.npy", {x.rows()}, assignment));
      }
    }
  } else if (o.method == "sinkhorn" || o.method == "sinkhorn_divergence") {
    SinkhornOptions so;
    so.epsilon = o.epsilon;
    so.max_iterations = o.max_iterations;
    so.tolerance = o.tolerance;
    if (o.method == "sinkhorn") {
      so.return_plan = static_cast<double>(x.rows()) * y.rows() <= 1e8;
      OTGEN_ASSIGN_OR_RETURN(SinkhornResult r, Sinkhorn(x, a, y, b, cost, so));
      value = r.regularized_cost;
      summary = r.Summary();
      OTGEN_RETURN_IF_ERROR(WriteVector(dir + "f.npy", r.f));
      OTGEN_RETURN_IF_ERROR(WriteVector(dir + "g.npy", r.g));
      if (so.return_plan) OTGEN_RETURN_IF_ERROR(eval::WriteNpyMatrix(dir + "plan.npy", r.plan));
    } else {
      OTGEN_ASSIGN_OR_RETURN(SinkhornDivergenceResult r, SinkhornDivergence(x, a, y, b, cost, so, true));
      value = r.divergence;
      summary = r.Summary();
      OTGEN_RETURN_IF_ERROR(eval::WriteNpyMatrix(dir + "gradient_x.npy", r.gradient_x));
    }
  } else {
    // Semi-discrete: the source points are samples of the continuous measure (drawn with
    // replacement, uniform weights); the targets with weights b are the discrete measure.
    OTGEN_ASSIGN_OR_RETURN(std::shared_ptr<const InMemoryTargetSet> targets, InMemoryTargetSet::Create(y, b));
    SemiDiscreteOptions so;
    so.ctransform.lambda = o.epsilon;
    so.batch_size = static_cast<int>(o.semi_discrete_batch);
    so.iterations = static_cast<int>(o.semi_discrete_steps);
    so.gamma = o.semi_discrete_gamma;
    so.alpha = o.semi_discrete_alpha;
    OTGEN_ASSIGN_OR_RETURN(std::unique_ptr<SemiDiscreteSolver> solver, SemiDiscreteSolver::Create(targets, cost, so));
    nn::Rng rng(o.seed);
    const BatchSampler sampler = [&](int64_t batch) -> absl::StatusOr<nn::Tensor> {
      nn::Tensor t = nn::Tensor::Empty({batch, static_cast<int64_t>(x.cols())});
      for (int64_t i = 0; i < batch; ++i) {
        const int64_t row = static_cast<int64_t>(rng.UniformInt(static_cast<uint64_t>(x.rows())));
        std::copy(x.row(row).data(), x.row(row).data() + x.cols(), t.data() + i * x.cols());
      }
      return t;
    };
    OTGEN_ASSIGN_OR_RETURN(SemiDiscreteResult r, solver->Solve(sampler));
    // The semi-dual H(psi) = mean_i psi^c(x_i) + <b, psi> on all source points.
    OTGEN_ASSIGN_OR_RETURN(CTransform transform, CTransform::Create(targets, cost, so.ctransform));
    const Eigen::VectorXf psi = solver->psi();
    OTGEN_ASSIGN_OR_RETURN(CTransformResult full, transform.Compute(x, psi, {.grad_x = false, .grad_psi = false}));
    value = full.semi_dual;
    summary = absl::StrCat(r.Summary(), "; ", full.Summary());
    OTGEN_RETURN_IF_ERROR(WriteVector(dir + "psi.npy", psi));
  }
  OTGEN_RETURN_IF_ERROR(WriteText(dir + "cost.txt", absl::StrFormat("%.9g\n", value)));
  return absl::StrFormat("cost %.9g\n%s\n", value, summary);
}

}  // namespace otgen::ot
