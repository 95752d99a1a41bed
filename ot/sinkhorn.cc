#include "ot/sinkhorn.h"

#include <algorithm>
#include <cfloat>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nn/status_macros.h"
#include "ot/log_sum_exp.h"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace otgen::ot {

using Index = Eigen::Index;
using ConstMap = Eigen::Map<const RowMatrixXf, 0, Eigen::OuterStride<>>;
using MutableMap = Eigen::Map<RowMatrixXf, 0, Eigen::OuterStride<>>;

namespace internal {

// A float buffer that only grows, 64-byte aligned, uninitialized: large solves reuse it instead
// of paying page faults for fresh memory at every call.
class GrowBuffer {
 public:
  float* Reserve(size_t count) {
    if (count > capacity_) {
      const size_t bytes = ((count * sizeof(float) + 63) / 64) * 64;
      data_.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
      capacity_ = data_ != nullptr ? count : 0;
    }
    return data_.get();
  }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float[], Free> data_;
  size_t capacity_ = 0;
};

struct SinkhornWorkspace {
  GrowBuffer cost;     // n x ld precomputed cost matrix
  GrowBuffer tiles;    // threads x block_rows x ld: streamed cost tiles, plan tiles
  GrowBuffer columns;  // chunks x 2 x ld: per-chunk column (max, sum) accumulators
};

}  // namespace internal

namespace {

constexpr double kWeightSumTolerance = 1e-4;
// Target size of one row block (rows x ld floats): about L2-resident, so the g-update reads
// the block again from cache right after the f-update.
constexpr int64_t kBlockBytes = int64_t{512} << 10;
// Streamed tiles computed by sgemm: larger, to amortize reading (packing) all the targets for
// every tile; at least kMinGemmTileRows rows even when m is large.
constexpr int64_t kGemmTileBytes = int64_t{4} << 20;
constexpr int64_t kMinGemmTileRows = 128;
constexpr int64_t kMaxBlockRows = 1024;
// Row chunks with their own column accumulators in the alternating sweep: enough for dynamic
// load balancing on a few cores, few enough that merging them stays negligible.
constexpr Eigen::Index kMaxChunks = 16;
// Problems with fewer cost entries than this are swept on one thread.
constexpr double kMinParallelEntries = 65536.0;
// Rows per sgemm tile when precomputing the cost matrix.
constexpr Eigen::Index kPrecomputeRows = 512;

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int ThreadCount(const SinkhornOptions& options) {
#if defined(_OPENMP)
  return options.num_threads > 0 ? options.num_threads : std::max(1, omp_get_max_threads());
#else
  (void)options;
  return 1;
#endif
}

int ThreadId() {
#if defined(_OPENMP)
  return omp_get_thread_num();
#else
  return 0;
#endif
}

absl::Status ValidateWeights(const Eigen::Ref<const Eigen::VectorXf>& w, Index n,
                             absl::string_view name, absl::string_view points_name) {
  if (w.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": expected ", n, " entries (one per row of ", points_name, "), got ", w.size()));
  }
  double sum = 0.0;
  for (Index i = 0; i < n; ++i) {
    const float v = w[i];
    if (!std::isfinite(v) || v < 0.0f) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": entry ", i, " is ", v, "; expected finite non-negative weights"));
    }
    sum += v;
  }
  if (!(std::fabs(sum - 1.0) <= kWeightSumTolerance)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: expected %d non-negative entries summing to 1, got sum %.9g", name, n, sum));
  }
  return absl::OkStatus();
}

absl::Status ValidateCloud(const Cost& cost, const Eigen::Ref<const RowMatrixXf>& points,
                           const Eigen::Ref<const Eigen::VectorXf>& weights,
                           absl::string_view points_name, absl::string_view weights_name) {
  OTGEN_RETURN_IF_ERROR(
      ValidatePoints(cost, points, std::string_view(points_name.data(), points_name.size())));
  return ValidateWeights(weights, points.rows(), weights_name, points_name);
}

absl::Status ValidateDims(const Eigen::Ref<const RowMatrixXf>& x,
                          const Eigen::Ref<const RowMatrixXf>& y) {
  if (x.cols() != y.cols()) {
    return absl::InvalidArgumentError(absl::StrCat("target_points: expected dimension ", x.cols(),
                                                   " (that of source_points), got ", y.cols()));
  }
  return absl::OkStatus();
}

// A weighted point cloud in the form the engine needs: raw row-major points, cost point data,
// weights renormalized (in double) to sum exactly 1, and their logs.
struct Cloud {
  const float* external_points = nullptr;
  Index rows = 0;
  Index stride = 0;
  RowMatrixXf centered;     // owned centred copy of the points (see Center), if any
  Eigen::VectorXf data;     // CostPointData
  Eigen::VectorXd weights;  // normalized
  Eigen::VectorXf log_weights;

  static Cloud Make(const Cost& cost, const Eigen::Ref<const RowMatrixXf>& points,
                    const Eigen::Ref<const Eigen::VectorXf>& w, const Eigen::RowVectorXf* center) {
    Cloud c;
    c.rows = points.rows();
    if (center != nullptr) {
      c.centered = points.rowwise() - *center;
      c.stride = points.cols();
      c.data = CostPointData(cost, c.centered);
    } else {
      c.external_points = points.data();
      c.stride = std::max<Index>(points.outerStride(), points.cols());
      c.data = CostPointData(cost, points);
    }
    c.weights = w.cast<double>();
    c.weights /= c.weights.sum();
    c.log_weights.resize(c.rows);
    for (Index i = 0; i < c.rows; ++i) {
      c.log_weights[i] = c.weights[i] > 0.0 ? static_cast<float>(std::log(c.weights[i]))
                                            : -std::numeric_limits<float>::infinity();
    }
    return c;
  }

  const float* points() const { return centered.size() > 0 ? centered.data() : external_points; }
};

// Translation-invariant costs evaluated through ||x||^2 + ||y||^2 - 2 <x, y> (sgemm path) lose
// precision to cancellation when the clouds sit far from the origin; the solver then works on
// copies centred at the mean of all points (costs, plans and x-gradients are unchanged).
std::optional<Eigen::RowVectorXf> Center(const Cost& cost, const Eigen::Ref<const RowMatrixXf>& x,
                                         const Eigen::Ref<const RowMatrixXf>* y) {
  const bool gemm_distance =
      (cost.kind == CostKind::kSquaredEuclidean || cost.kind == CostKind::kLp) &&
      x.cols() > kCostDirectMaxDim;
  if (!gemm_distance) return std::nullopt;
  Eigen::RowVectorXd sum = x.cast<double>().colwise().sum();
  double count = static_cast<double>(x.rows());
  if (y != nullptr) {
    sum += y->cast<double>().colwise().sum();
    count += static_cast<double>(y->rows());
  }
  return Eigen::RowVectorXf((sum / count).cast<float>());
}

// log(r_i / a_i) = f_i / eps + log sum_j b_j exp((g_j - C_ij) / eps) for the row accumulator
// of the f-update, in double: the row marginal of the plan of the *current* f without rounding
// the updated potential to float (which would hide changes below one float ulp of f / eps).
double LogRowRatio(float f_i, double inv_eps, const LogSumExpAccumulator& acc) {
  return static_cast<double>(f_i) * inv_eps + static_cast<double>(acc.max) +
         std::log(static_cast<double>(acc.sum));
}

// One transport problem (x, a) -> (y, b): owns the cost matrix access (precomputed buffer or
// streamed tiles) and runs the sweeps.
class Engine {
 public:
  Engine(const SinkhornOptions& options, const Cost& cost, const Cloud& x, const Cloud& y,
         Index dim, internal::SinkhornWorkspace* ws)
      : cost_(cost), x_(x), y_(y), dim_(dim), ws_(ws) {
    n_ = x.rows;
    m_ = y.rows;
    ld_ = (m_ + 15) / 16 * 16;
    threads_ = ThreadCount(options);
    precomputed_ = static_cast<double>(n_) * static_cast<double>(m_) * sizeof(float) <=
                   static_cast<double>(options.max_cost_matrix_bytes);
    // Streamed tiles that come from an sgemm (dimension above the direct kernels) are taller, so
    // that packing the targets is amortized over more rows.
    const bool gemm_tiles = dim > kCostDirectMaxDim && cost.kind != CostKind::kL1;
    if (options.tile_rows > 0) {
      block_rows_ = options.tile_rows;
    } else {
      const bool streamed_gemm = !precomputed_ && gemm_tiles;
      const int64_t bytes = streamed_gemm ? kGemmTileBytes : kBlockBytes;
      const int64_t min_rows = streamed_gemm ? kMinGemmTileRows : 16;
      block_rows_ = std::clamp<int64_t>(bytes / (ld_ * static_cast<int64_t>(sizeof(float))),
                                        min_rows, kMaxBlockRows);
      block_rows_ = block_rows_ / 16 * 16;
    }
    block_rows_ = std::min<Index>(block_rows_, n_);
    num_blocks_ = (n_ + block_rows_ - 1) / block_rows_;
    num_chunks_ = std::min<Index>(num_blocks_, kMaxChunks);
    // Small problems run on the calling thread: a parallel region costs microseconds, and far
    // more when another process holds one of the cores.
    const double entries = static_cast<double>(n_) * static_cast<double>(m_);
    parallel_ = threads_ > 1 && entries >= kMinParallelEntries;
    precompute_parallel_ =
        threads_ > 1 &&
        entries * static_cast<double>(std::max<Index>(dim, 16)) >= 16.0 * kMinParallelEntries;
    tiles_ = ws_->tiles.Reserve(static_cast<size_t>(threads_) * block_rows_ * ld_);
    columns_ = ws_->columns.Reserve(static_cast<size_t>(num_chunks_) * 2 * ld_);
    if (columns_ != nullptr) {
      for (Index k = 0; k < num_chunks_; ++k) {
        chunk_max_.push_back(columns_ + static_cast<size_t>(k) * 2 * ld_);
        chunk_sum_.push_back(columns_ + static_cast<size_t>(k) * 2 * ld_ + ld_);
      }
    }
    row_bias_.resize(n_);
    col_bias_.resize(m_);
    row_error_.resize(n_);
    row_ratio_.resize(n_);
    if (precomputed_) {
      cost_matrix_ = ws_->cost.Reserve(static_cast<size_t>(n_) * ld_);
      PrecomputeCost();
    }
  }

  bool precomputed() const { return precomputed_; }
  bool allocation_failed() const {
    return tiles_ == nullptr || columns_ == nullptr || (precomputed_ && cost_matrix_ == nullptr);
  }

  // f_new = T(g) (rows), g_new = T(f_new) (columns), in one pass over C. Returns the L1 row
  // marginal error of the plan of (f, g): sum_i a_i |exp((f_i - f_new_i) / eps) - 1|.
  //
  // The row blocks form num_chunks_ contiguous chunks, each with its own column accumulators,
  // handed to threads dynamically (a thread that loses its core does not stall the sweep) and
  // merged in chunk order: the result does not depend on the thread count or the schedule.
  double AlternatingIteration(float eps, const float* f, const float* g, float* f_new,
                              float* g_new) {
    const float inv = 1.0f / eps;
    const double inv_d = 1.0 / static_cast<double>(eps);
    for (Index j = 0; j < m_; ++j) col_bias_[j] = g[j] * inv + y_.log_weights[j];
#pragma omp parallel num_threads(threads_) if (parallel_)
    {
      float* scratch = tiles_ + static_cast<size_t>(ThreadId()) * block_rows_ * ld_;
#pragma omp for schedule(dynamic, 1) nowait
      for (Index chunk = 0; chunk < num_chunks_; ++chunk) {
        float* cmax = chunk_max_[chunk];
        float* csum = chunk_sum_[chunk];
        std::fill(cmax, cmax + m_, -FLT_MAX);
        std::fill(csum, csum + m_, 0.0f);
        for (Index block = ChunkBegin(chunk); block < ChunkBegin(chunk + 1); ++block) {
          const Index i0 = block * block_rows_;
          const Index rows = std::min<Index>(block_rows_, n_ - i0);
          const float* c = CostRows(i0, rows, scratch);
          for (Index r = 0; r < rows; ++r) {
            const Index i = i0 + r;
            const LogSumExpAccumulator acc = RowLogSumExp(col_bias_.data(), c + r * ld_, m_, inv);
            const float fi = -eps * acc.Log();
            f_new[i] = fi;
            row_bias_[i] = fi * inv + x_.log_weights[i];
            // r_i / a_i = exp((f_i - f_new_i) / eps), with f_new_i unrounded.
            row_error_[i] =
                x_.weights[i] > 0.0
                    ? x_.weights[i] * std::fabs(std::exp(LogRowRatio(f[i], inv_d, acc)) - 1.0)
                    : 0.0;
          }
          AccumulateColumnLogSumExp(c, ld_, rows, m_, row_bias_.data() + i0, inv, cmax, csum);
        }
      }
    }
    // g_new_j = -eps log of the merged column sums. On the calling thread: the merge costs
    // about num_chunks_ * m / 16 vector exps, less than a second barrier would.
    const float* maxes[kMaxChunks];
    const float* sums[kMaxChunks];
    for (Index k = 0; k < num_chunks_; ++k) {
      maxes[k] = chunk_max_[k];
      sums[k] = chunk_sum_[k];
    }
    MergeColumnLogSumExp(maxes, sums, static_cast<int>(num_chunks_), m_, chunk_max_[0],
                         chunk_sum_[0]);
    for (Index j = 0; j < m_; ++j) {
      g_new[j] = -eps * (chunk_max_[0][j] + std::log(chunk_sum_[0][j]));
    }
    double err = 0.0;
    for (Index i = 0; i < n_; ++i) err += row_error_[i];
    return err;
  }

  // Symmetric problem (y == x): t = T(f), f_new = (f + t) / 2. Returns the row marginal error
  // of the plan of (f, f) and its mass through the pointers.
  void SymmetricIteration(float eps, const float* f, float* f_new, double* row_error,
                          double* mass) {
    const float inv = 1.0f / eps;
    const double inv_d = 1.0 / static_cast<double>(eps);
    for (Index j = 0; j < m_; ++j) col_bias_[j] = f[j] * inv + y_.log_weights[j];
#pragma omp parallel num_threads(threads_) if (parallel_)
    {
      float* scratch = tiles_ + static_cast<size_t>(ThreadId()) * block_rows_ * ld_;
#pragma omp for schedule(dynamic, 1) nowait
      for (Index block = 0; block < num_blocks_; ++block) {
        const Index i0 = block * block_rows_;
        const Index rows = std::min<Index>(block_rows_, n_ - i0);
        const float* c = CostRows(i0, rows, scratch);
        for (Index r = 0; r < rows; ++r) {
          const Index i = i0 + r;
          const LogSumExpAccumulator acc = RowLogSumExp(col_bias_.data(), c + r * ld_, m_, inv);
          row_ratio_[i] = x_.weights[i] > 0.0 ? std::exp(LogRowRatio(f[i], inv_d, acc)) : 1.0;
          f_new[i] = 0.5f * (f[i] - eps * acc.Log());
        }
      }
    }
    double err = 0.0, total = 0.0;
    for (Index i = 0; i < n_; ++i) {
      err += x_.weights[i] * std::fabs(row_ratio_[i] - 1.0);
      total += x_.weights[i] * row_ratio_[i];
    }
    *row_error = err;
    *mass = total;
  }

  // plan(i, j) = exp((f_i + g_j - C_ij) / eps + log a_i + log b_j).
  void Plan(float eps, const float* f, const float* g, RowMatrixXf* plan) {
    plan->resize(n_, m_);
    const float inv = 1.0f / eps;
    for (Index j = 0; j < m_; ++j) col_bias_[j] = g[j] * inv + y_.log_weights[j];
#pragma omp parallel num_threads(threads_) if (parallel_)
    {
      float* scratch = tiles_ + static_cast<size_t>(ThreadId()) * block_rows_ * ld_;
#pragma omp for schedule(dynamic, 1) nowait
      for (Index block = 0; block < num_blocks_; ++block) {
        const Index i0 = block * block_rows_;
        const Index rows = std::min<Index>(block_rows_, n_ - i0);
        const float* c = CostRows(i0, rows, scratch);
        for (Index r = 0; r < rows; ++r) {
          const Index i = i0 + r;
          ExpAffineRow(col_bias_.data(), c + r * ld_, m_, f[i] * inv + x_.log_weights[i], inv,
                       plan->data() + i * m_);
        }
      }
    }
  }

  // grad(i, :) += sum_j P_ij grad_x c(x_i, y_j) with the plan of (f, g).
  void AccumulatePlanGradient(float eps, const float* f, const float* g, RowMatrixXf* grad) {
    const float inv = 1.0f / eps;
    for (Index j = 0; j < m_; ++j) col_bias_[j] = g[j] * inv + y_.log_weights[j];
    const ConstMap y_points(y_.points(), m_, dim_, Eigen::OuterStride<>(y_.stride));
#pragma omp parallel num_threads(threads_) if (parallel_)
    {
      float* scratch = tiles_ + static_cast<size_t>(ThreadId()) * block_rows_ * ld_;
#pragma omp for schedule(dynamic, 1) nowait
      for (Index block = 0; block < num_blocks_; ++block) {
        const Index i0 = block * block_rows_;
        const Index rows = std::min<Index>(block_rows_, n_ - i0);
        // In streaming mode the tile is computed into `scratch` and then overwritten in place by
        // the plan weights (ExpAffineRow allows out == c).
        const float* c = CostRows(i0, rows, scratch);
        for (Index r = 0; r < rows; ++r) {
          const Index i = i0 + r;
          ExpAffineRow(col_bias_.data(), c + r * ld_, m_, f[i] * inv + x_.log_weights[i], inv,
                       scratch + r * ld_);
        }
        const ConstMap x_rows(x_.points() + i0 * x_.stride, rows, dim_,
                              Eigen::OuterStride<>(x_.stride));
        const ConstMap weights(scratch, rows, m_, Eigen::OuterStride<>(ld_));
        AccumulateCostGradientTile(cost_, x_rows, x_.data.segment(i0, rows), y_points, y_.data,
                                   weights, grad->middleRows(i0, rows));
      }
    }
  }

 private:
  // First row block of a chunk (chunks split the blocks as evenly as possible).
  Index ChunkBegin(Index chunk) const { return chunk * num_blocks_ / num_chunks_; }

  // Rows [i0, i0 + rows) of C with leading dimension ld_: a view of the precomputed matrix, or
  // computed into `scratch` (block_rows_ x ld_).
  const float* CostRows(Index i0, Index rows, float* scratch) const {
    if (precomputed_) return cost_matrix_ + static_cast<size_t>(i0) * ld_;
    EvaluateRows(i0, rows, scratch);
    return scratch;
  }

  void EvaluateRows(Index i0, Index rows, float* out) const {
    const ConstMap x_rows(x_.points() + i0 * x_.stride, rows, dim_,
                          Eigen::OuterStride<>(x_.stride));
    const ConstMap y_points(y_.points(), m_, dim_, Eigen::OuterStride<>(y_.stride));
    MutableMap tile(out, rows, m_, Eigen::OuterStride<>(ld_));
    EvaluateCostTile(cost_, x_rows, x_.data.segment(i0, rows), y_points, y_.data, tile);
  }

  // Tiles of at most kPrecomputeRows rows, one per task: each thread runs its own sgemm
  // (single-threaded: nested OpenMP regions are serialized), on tiles tall enough to amortize
  // packing the targets.
  void PrecomputeCost() {
    const Index chunk =
        std::max<Index>(1, std::min<Index>(kPrecomputeRows, (n_ + threads_ - 1) / threads_));
    const Index chunks = (n_ + chunk - 1) / chunk;
#pragma omp parallel for num_threads(threads_) schedule(dynamic, 1) if (precompute_parallel_)
    for (Index c = 0; c < chunks; ++c) {
      const Index i0 = c * chunk;
      const Index rows = std::min<Index>(chunk, n_ - i0);
      EvaluateRows(i0, rows, cost_matrix_ + static_cast<size_t>(i0) * ld_);
    }
  }

  const Cost& cost_;
  const Cloud& x_;
  const Cloud& y_;
  Index dim_;
  internal::SinkhornWorkspace* ws_;
  Index n_ = 0, m_ = 0, ld_ = 0;
  int threads_ = 1;
  Index block_rows_ = 16;
  Index num_blocks_ = 0;
  Index num_chunks_ = 1;
  bool parallel_ = false;
  bool precompute_parallel_ = false;
  bool precomputed_ = false;
  float* cost_matrix_ = nullptr;
  float* tiles_ = nullptr;
  float* columns_ = nullptr;
  std::vector<float*> chunk_max_;
  std::vector<float*> chunk_sum_;
  std::vector<float> row_bias_;
  std::vector<float> col_bias_;
  std::vector<double> row_error_;
  std::vector<double> row_ratio_;
};

// The epsilon values of the scaling stages above the target (largest first).
std::vector<float> ScalingSchedule(const SinkhornOptions& options, float diameter) {
  std::vector<float> stages;
  if (!options.epsilon_scaling) return stages;
  double eps = options.epsilon_start > 0.0f ? options.epsilon_start : diameter;
  const double target = options.epsilon;
  while (eps > target * (1.0 + 1e-6)) {
    stages.push_back(static_cast<float>(eps));
    eps *= options.epsilon_scaling_factor;
  }
  return stages;
}

bool AllFinite(const Eigen::VectorXf& v) { return v.allFinite(); }

absl::Status NonFiniteError(float eps) {
  return absl::InternalError(
      absl::StrCat("Sinkhorn: potentials became non-finite at epsilon ", eps,
                   "; epsilon is probably too small for float32 relative to the cost scale"));
}

// Alternating Sinkhorn with epsilon-scaling on a prepared engine.
absl::StatusOr<SinkhornResult> RunAlternating(const SinkhornOptions& options, Engine& engine,
                                              const Cloud& x, const Cloud& y, float diameter) {
  const Index n = x.rows, m = y.rows;
  Eigen::VectorXf f = Eigen::VectorXf::Zero(n), g = Eigen::VectorXf::Zero(m);
  Eigen::VectorXf f_new(n), g_new(m);
  SinkhornResult result;
  result.epsilon = options.epsilon;
  result.precomputed_cost = engine.precomputed();

  for (const float eps : ScalingSchedule(options, diameter)) {
    ++result.scaling_stages;
    for (int k = 0; k < options.iterations_per_stage; ++k) {
      engine.AlternatingIteration(eps, f.data(), g.data(), f_new.data(), g_new.data());
      f.swap(f_new);
      g.swap(g_new);
      ++result.scaling_iterations;
    }
  }
  // At the target epsilon. (f, g) has g = T(f) at the target only after one iteration there.
  bool g_exact = false;
  double err = std::numeric_limits<double>::infinity();
  for (int it = 1; it <= options.max_iterations; ++it) {
    err = engine.AlternatingIteration(options.epsilon, f.data(), g.data(), f_new.data(),
                                      g_new.data());
    ++result.iterations;
    if (g_exact && (err <= options.tolerance || it == options.max_iterations)) {
      result.converged = err <= options.tolerance;
      break;  // Return (f, g): the pair whose marginal error is err.
    }
    f.swap(f_new);
    g.swap(g_new);
    g_exact = true;
  }
  if (!AllFinite(f) || !AllFinite(g)) return NonFiniteError(options.epsilon);
  result.marginal_error = err;
  result.regularized_cost = x.weights.dot(f.cast<double>()) + y.weights.dot(g.cast<double>());
  result.f = std::move(f);
  result.g = std::move(g);
  return result;
}

// Symmetric averaged iterations (GeomLoss) for OT_eps(a, a).
absl::StatusOr<SinkhornResult> RunSymmetric(const SinkhornOptions& options, Engine& engine,
                                            const Cloud& x, float diameter) {
  const Index n = x.rows;
  Eigen::VectorXf f = Eigen::VectorXf::Zero(n), f_new(n);
  SinkhornResult result;
  result.epsilon = options.epsilon;
  result.precomputed_cost = engine.precomputed();
  result.symmetric = true;
  double row_error = 0.0, mass = 1.0;
  for (const float eps : ScalingSchedule(options, diameter)) {
    ++result.scaling_stages;
    for (int k = 0; k < options.iterations_per_stage; ++k) {
      engine.SymmetricIteration(eps, f.data(), f_new.data(), &row_error, &mass);
      f.swap(f_new);
      ++result.scaling_iterations;
    }
  }
  double err = std::numeric_limits<double>::infinity();
  for (int it = 1; it <= options.max_iterations; ++it) {
    engine.SymmetricIteration(options.epsilon, f.data(), f_new.data(), &row_error, &mass);
    ++result.iterations;
    err = 2.0 * row_error;  // the plan is symmetric: column error == row error
    if (err <= options.tolerance || it == options.max_iterations) {
      result.converged = err <= options.tolerance;
      break;  // Return f: the potential whose marginal error is err.
    }
    f.swap(f_new);
  }
  if (!AllFinite(f)) return NonFiniteError(options.epsilon);
  result.marginal_error = err;
  result.regularized_cost =
      2.0 * x.weights.dot(f.cast<double>()) - static_cast<double>(options.epsilon) * (mass - 1.0);
  result.g = f;
  result.f = std::move(f);
  return result;
}

std::string TimeString(double seconds) {
  if (seconds < 1e-3) return absl::StrFormat("%.0fus", seconds * 1e6);
  if (seconds < 1.0) return absl::StrFormat("%.2fms", seconds * 1e3);
  return absl::StrFormat("%.3fs", seconds);
}

}  // namespace

absl::Status SinkhornOptions::Validate() const {
  if (!std::isfinite(epsilon) || epsilon <= 0.0f) {
    return absl::InvalidArgumentError(
        absl::StrCat("options.epsilon: expected a finite value > 0, got ", epsilon));
  }
  if (!std::isfinite(epsilon_start) || epsilon_start < 0.0f) {
    return absl::InvalidArgumentError(
        absl::StrCat("options.epsilon_start: expected a finite value >= 0 (0: cost diameter), got ",
                     epsilon_start));
  }
  if (!(epsilon_scaling_factor > 0.0f && epsilon_scaling_factor < 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("options.epsilon_scaling_factor: expected a value in (0, 1), got ",
                     epsilon_scaling_factor));
  }
  if (iterations_per_stage < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("options.iterations_per_stage: expected >= 1, got ", iterations_per_stage));
  }
  if (max_iterations < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("options.max_iterations: expected >= 2, got ", max_iterations));
  }
  if (!std::isfinite(tolerance) || tolerance < 0.0f) {
    return absl::InvalidArgumentError(
        absl::StrCat("options.tolerance: expected a finite value >= 0, got ", tolerance));
  }
  if (max_cost_matrix_bytes < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("options.max_cost_matrix_bytes: expected >= 0, got ", max_cost_matrix_bytes));
  }
  if (tile_rows < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("options.tile_rows: expected >= 0 (0: automatic), got ", tile_rows));
  }
  if (num_threads < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("options.num_threads: expected >= 0 (0: OpenMP default), got ", num_threads));
  }
  return absl::OkStatus();
}

std::string SinkhornResult::Summary() const {
  return absl::StrFormat(
      "Sinkhorn%s %s: OT_eps=%.7g eps=%g iterations=%d (+%d in %d scaling stages) "
      "marginal_error=%.3g cost_matrix=%s setup=%s iterate=%s",
      symmetric ? " (symmetric)" : "", converged ? "CONVERGED" : "NO_CONVERGENCE", regularized_cost,
      epsilon, iterations, scaling_iterations, scaling_stages, marginal_error,
      precomputed_cost ? "precomputed" : "streamed", TimeString(setup_seconds),
      TimeString(iteration_seconds));
}

std::string SinkhornDivergenceResult::Summary() const {
  return absl::StrFormat(
      "SinkhornDivergence %s: S_eps=%.7g (OT_xy=%.7g OT_xx=%.7g OT_yy=%.7g) eps=%g "
      "iterations=%d/%d/%d marginal_errors=%.3g/%.3g/%.3g",
      converged ? "CONVERGED" : "NO_CONVERGENCE", divergence, xy.regularized_cost,
      xx.regularized_cost, yy.regularized_cost, xy.epsilon, xy.iterations, xx.iterations,
      yy.iterations, xy.marginal_error, xx.marginal_error, yy.marginal_error);
}

SinkhornSolver::SinkhornSolver(const SinkhornOptions& options)
    : options_(options), workspace_(std::make_unique<internal::SinkhornWorkspace>()) {}
SinkhornSolver::~SinkhornSolver() = default;
SinkhornSolver::SinkhornSolver(SinkhornSolver&&) noexcept = default;
SinkhornSolver& SinkhornSolver::operator=(SinkhornSolver&&) noexcept = default;

namespace {

absl::Status AllocationError() {
  return absl::ResourceExhaustedError("Sinkhorn: could not allocate the solver buffers");
}

// Solves one problem on prepared clouds; `symmetric` means y is x (then y_cloud is ignored).
absl::StatusOr<SinkhornResult> SolvePrepared(const SinkhornOptions& options, const Cost& cost,
                                             const Eigen::Ref<const RowMatrixXf>& x,
                                             const Cloud& xc,
                                             const Eigen::Ref<const RowMatrixXf>& y,
                                             const Cloud& yc, bool symmetric,
                                             internal::SinkhornWorkspace* ws, RowMatrixXf* gradient,
                                             bool gradient_sign_positive, bool want_plan) {
  const auto start = std::chrono::steady_clock::now();
  const Cloud& target = symmetric ? xc : yc;
  Engine engine(options, cost, xc, target, x.cols(), ws);
  if (engine.allocation_failed()) return AllocationError();
  const float diameter = symmetric ? CostDiameterBound(cost, x, x) : CostDiameterBound(cost, x, y);
  const double setup = Seconds(start);
  const auto iterate_start = std::chrono::steady_clock::now();
  absl::StatusOr<SinkhornResult> result = symmetric
                                              ? RunSymmetric(options, engine, xc, diameter)
                                              : RunAlternating(options, engine, xc, yc, diameter);
  if (!result.ok()) return result.status();
  result->setup_seconds = setup;
  result->iteration_seconds = Seconds(iterate_start);
  if (want_plan) engine.Plan(options.epsilon, result->f.data(), result->g.data(), &result->plan);
  if (gradient != nullptr) {
    RowMatrixXf term = RowMatrixXf::Zero(xc.rows, x.cols());
    engine.AccumulatePlanGradient(options.epsilon, result->f.data(), result->g.data(), &term);
    if (gradient_sign_positive) {
      *gradient += term;
    } else {
      *gradient -= term;
    }
  }
  return result;
}

}  // namespace

absl::StatusOr<SinkhornResult> SinkhornSolver::Solve(const Eigen::Ref<const RowMatrixXf>& x,
                                                     const Eigen::Ref<const Eigen::VectorXf>& a,
                                                     const Eigen::Ref<const RowMatrixXf>& y,
                                                     const Eigen::Ref<const Eigen::VectorXf>& b,
                                                     const Cost& cost) {
  OTGEN_RETURN_IF_ERROR(options_.Validate());
  OTGEN_RETURN_IF_ERROR(cost.Validate());
  OTGEN_RETURN_IF_ERROR(ValidateCloud(cost, x, a, "source_points", "source_weights"));
  OTGEN_RETURN_IF_ERROR(ValidateCloud(cost, y, b, "target_points", "target_weights"));
  OTGEN_RETURN_IF_ERROR(ValidateDims(x, y));
  const std::optional<Eigen::RowVectorXf> center = Center(cost, x, &y);
  const Cloud xc = Cloud::Make(cost, x, a, center ? &*center : nullptr);
  const Cloud yc = Cloud::Make(cost, y, b, center ? &*center : nullptr);
  return SolvePrepared(options_, cost, x, xc, y, yc, /*symmetric=*/false, workspace_.get(), nullptr,
                       true, options_.return_plan);
}

absl::StatusOr<SinkhornResult> SinkhornSolver::SolveSymmetric(
    const Eigen::Ref<const RowMatrixXf>& x, const Eigen::Ref<const Eigen::VectorXf>& a,
    const Cost& cost) {
  OTGEN_RETURN_IF_ERROR(options_.Validate());
  OTGEN_RETURN_IF_ERROR(cost.Validate());
  OTGEN_RETURN_IF_ERROR(ValidateCloud(cost, x, a, "source_points", "source_weights"));
  const std::optional<Eigen::RowVectorXf> center = Center(cost, x, nullptr);
  const Cloud xc = Cloud::Make(cost, x, a, center ? &*center : nullptr);
  return SolvePrepared(options_, cost, x, xc, x, xc, /*symmetric=*/true, workspace_.get(), nullptr,
                       true, options_.return_plan);
}

absl::StatusOr<SinkhornDivergenceResult> SinkhornSolver::Divergence(
    const Eigen::Ref<const RowMatrixXf>& x, const Eigen::Ref<const Eigen::VectorXf>& a,
    const Eigen::Ref<const RowMatrixXf>& y, const Eigen::Ref<const Eigen::VectorXf>& b,
    const Cost& cost, bool compute_gradient) {
  OTGEN_RETURN_IF_ERROR(options_.Validate());
  OTGEN_RETURN_IF_ERROR(cost.Validate());
  OTGEN_RETURN_IF_ERROR(ValidateCloud(cost, x, a, "source_points", "source_weights"));
  OTGEN_RETURN_IF_ERROR(ValidateCloud(cost, y, b, "target_points", "target_weights"));
  OTGEN_RETURN_IF_ERROR(ValidateDims(x, y));
  // One common centre for the three problems (translation does not change any of them).
  const std::optional<Eigen::RowVectorXf> center = Center(cost, x, &y);
  const Cloud xc = Cloud::Make(cost, x, a, center ? &*center : nullptr);
  const Cloud yc = Cloud::Make(cost, y, b, center ? &*center : nullptr);
  SinkhornDivergenceResult out;
  RowMatrixXf* grad = nullptr;
  if (compute_gradient) {
    out.gradient_x = RowMatrixXf::Zero(x.rows(), x.cols());
    grad = &out.gradient_x;
  }
  // grad S = sum_j P_ij grad c(x_i, y_j) - sum_k Q_ik grad c(x_i, x_k) (see the header).
  OTGEN_ASSIGN_OR_RETURN(out.xy, SolvePrepared(options_, cost, x, xc, y, yc, false,
                                               workspace_.get(), grad, true, false));
  OTGEN_ASSIGN_OR_RETURN(out.xx, SolvePrepared(options_, cost, x, xc, x, xc, true, workspace_.get(),
                                               grad, false, false));
  OTGEN_ASSIGN_OR_RETURN(out.yy, SolvePrepared(options_, cost, y, yc, y, yc, true, workspace_.get(),
                                               nullptr, true, false));
  out.divergence =
      out.xy.regularized_cost - 0.5 * (out.xx.regularized_cost + out.yy.regularized_cost);
  out.converged = out.xy.converged && out.xx.converged && out.yy.converged;
  return out;
}

absl::StatusOr<SinkhornResult> Sinkhorn(const Eigen::Ref<const RowMatrixXf>& x,
                                        const Eigen::Ref<const Eigen::VectorXf>& a,
                                        const Eigen::Ref<const RowMatrixXf>& y,
                                        const Eigen::Ref<const Eigen::VectorXf>& b,
                                        const Cost& cost, const SinkhornOptions& options) {
  SinkhornSolver solver(options);
  return solver.Solve(x, a, y, b, cost);
}

absl::StatusOr<SinkhornDivergenceResult> SinkhornDivergence(
    const Eigen::Ref<const RowMatrixXf>& x, const Eigen::Ref<const Eigen::VectorXf>& a,
    const Eigen::Ref<const RowMatrixXf>& y, const Eigen::Ref<const Eigen::VectorXf>& b,
    const Cost& cost, const SinkhornOptions& options, bool compute_gradient) {
  SinkhornSolver solver(options);
  return solver.Divergence(x, a, y, b, cost, compute_gradient);
}

Eigen::VectorXf UniformWeights(Eigen::Index n) {
  return Eigen::VectorXf::Constant(n, n > 0 ? 1.0f / static_cast<float>(n) : 0.0f);
}

}  // namespace otgen::ot
