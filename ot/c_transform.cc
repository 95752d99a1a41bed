#include "ot/c_transform.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nn/onednn_context.h"
#include "nn/ops.h"
#include "nn/status_macros.h"
#include "nn/tensor.h"
#include "oneapi/dnnl/dnnl.h"
#include "oneapi/dnnl/dnnl.hpp"
#include "ot/c_transform_kernels.h"

namespace otgen::ot {

namespace ct = internal::ct;

absl::Status CTransformOptions::Validate() const {
  if (!(lambda >= 0.0f) || !std::isfinite(lambda)) {
    return absl::InvalidArgumentError(
        absl::StrCat("CTransformOptions.lambda: expected a finite value >= 0, got ", lambda));
  }
  if (!(prune_threshold >= 10.0f) || !std::isfinite(prune_threshold)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CTransformOptions.prune_threshold: expected a finite value >= 10, got ", prune_threshold));
  }
  if (max_candidates_per_row < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CTransformOptions.max_candidates_per_row: expected a value >= 0, got ", max_candidates_per_row));
  }
  if (tile_size < 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("CTransformOptions.tile_size: expected a value >= 16, got ", tile_size));
  }
  if (row_block < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("CTransformOptions.row_block: expected a value >= 1, got ", row_block));
  }
  if (small_batch_rows < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("CTransformOptions.small_batch_rows: expected a value >= 0, got ", small_batch_rows));
  }
  return absl::OkStatus();
}

std::string CTransformResult::Summary() const {
  return absl::StrFormat("c-transform: b=%d mean=%.6g H=%.6g dense_rows=%d pairs=%d",
                         values.size(), mean_value, semi_dual, dense_rows, candidate_pairs);
}

namespace internal {
namespace {

// A grow-only 64-byte aligned buffer (contents are not preserved when it grows). Large
// buffers are kept across calls: fresh pages cost page faults.
template <typename T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  AlignedBuffer(AlignedBuffer&& o) noexcept : data_(o.data_), capacity_(o.capacity_) {
    o.data_ = nullptr;
    o.capacity_ = 0;
  }
  ~AlignedBuffer() { std::free(data_); }

  T* Reserve(size_t n) {
    if (n > capacity_) {
      std::free(data_);
      // Slack of 64 bytes for full-width vector stores at the end.
      const size_t bytes = ((n * sizeof(T) + 64 + 63) / 64) * 64;
      data_ = static_cast<T*>(std::aligned_alloc(64, bytes));
      OTGEN_CHECK(data_ != nullptr, absl::StrCat("c-transform: cannot allocate ", bytes, " bytes"));
      capacity_ = n;
    }
    return data_;
  }
  T* data() const { return data_; }

 private:
  T* data_ = nullptr;
  size_t capacity_ = 0;
};

// Per-thread state of the streamed passes.
struct ThreadState {
  AlignedBuffer<float> tile;          // rows x tile_size cost tile
  AlignedBuffer<float> acc;           // rows x d gradient accumulator (dense pass, small path)
  std::vector<double> row_sum;        // rows: sum of the weights (dense pass, small path)
  std::vector<MinArgmin> hard;        // rows: lambda = 0 partials
  std::vector<SoftminPartial> soft;   // rows: lambda > 0 partials
  AlignedBuffer<int32_t> cand_index;  // rows x capacity, local target indices
  AlignedBuffer<float> cand_value;    // rows x capacity: u values, then weights
  std::vector<int32_t> cand_count;    // rows
  std::vector<uint8_t> overflow;      // rows
  AlignedBuffer<int32_t> scratch_index;  // tile_size + 16
  AlignedBuffer<float> scratch_value;    // tile_size + 16
  AlignedBuffer<float> gather;           // kGatherRows x d (general-cost sparse gradients)
  AlignedBuffer<float> gather_weight;    // kGatherRows
  Eigen::VectorXf gather_data;
  int64_t pairs = 0;
  // Fused sparse gradient, accumulated in pass 1 while each tile is in cache:
  //   sparse_acc[i] = sum_j exp((m_i - u_ij) / lambda) y_j,  sparse_psum[i] = sum_j exp(...),
  // over the accepted pairs of this thread, in the frame of the thread's running minimum m_i
  // (rescaled whenever m_i drops).
  AlignedBuffer<float> sparse_acc;     // rows x d
  std::vector<double> sparse_psum;     // rows
  AlignedBuffer<float> pair_weight;    // tile_size + 16: weights exp((m_i - u) / lambda) of a row's new pairs
};

constexpr int64_t kGatherRows = 256;
// Probe sample size (lambda > 0): one GEMM tile against a strided sample of the targets.
constexpr int64_t kProbeTargets = 512;
// Rows the probe sends to the dense pass keep their pass-1 values for it (instead of a second
// GEMM over all targets) when they fit in this many bytes.
constexpr int64_t kStoredValueBytes = int64_t{64} << 20;
// Small-batch path: at most this many floats in the b x J value buffer.
constexpr int64_t kSmallBatchMaxElements = int64_t{1} << 22;
// Small-batch screening: every this many targets form the sample that decides whether a call
// screens.
constexpr int64_t kSmallScreenStride = 32;
// Large-batch screening (lambda = 0): targets per bf16 matmul, candidates kept per row, and the
// largest bf16 copy of the targets (entries) it may build.
constexpr int64_t kScreenChunk = 4096;
constexpr int32_t kScreenCandidates = 1024;
// Large-batch screening (lambda > 0): candidates a row may keep (pairs within the threshold of
// its minimum); a block with a fuller row takes the float path.
constexpr int32_t kSoftScreenCandidates = 16384;
constexpr int64_t kLargeScreenMaxEntries = int64_t{1} << 26;

int NumThreads() { return std::max(1, omp_get_max_threads()); }

// Splits [0, n) into `parts` ranges with boundaries on multiples of 16.
std::pair<int64_t, int64_t> StaticRange(int64_t n, int part, int parts) {
  const int64_t blocks = (n + 15) / 16;
  const int64_t lo = std::min(n, 16 * (blocks * part / parts));
  const int64_t hi = std::min(n, 16 * (blocks * (part + 1) / parts));
  return {lo, hi};
}

}  // namespace

class CTransformImpl {
 public:
  CTransformImpl(std::shared_ptr<const TargetSet> targets, const Cost& cost, const CTransformOptions& options)
      : targets_(std::move(targets)), cost_(cost), options_(options) {
    d_ = targets_->dim();
    J_ = targets_->shard_size();
    fused_ = cost_.kind == CostKind::kSquaredEuclidean && d_ > kCostDirectMaxDim;
    lambda_ = options_.lambda;
    inv_lambda_ = lambda_ > 0.0f ? 1.0f / lambda_ : 0.0f;
    threshold_ = options_.prune_threshold * lambda_;
    // Per-target constant part of the offsets.
    base_offset_.Reserve(J_);
    const float* nu = targets_->weights();
    const float* sq = targets_->squared_norms();
    const float inv_s = 1.0f / cost_.scale;
    for (int64_t j = 0; j < J_; ++j) {
      float b = fused_ ? sq[j] * inv_s : 0.0f;
      if (!(nu[j] > 0.0f)) {
        b = ct::kInf;
      } else if (lambda_ > 0.0f) {
        b -= static_cast<float>(static_cast<double>(lambda_) * std::log(static_cast<double>(nu[j])));
      }
      base_offset_.data()[j] = b;
    }
    offset_.Reserve(J_);
    if (!fused_) target_data_ = CostPointData(cost_, targets_->PointsMatrix());
  }

  const std::shared_ptr<const TargetSet>& targets() const { return targets_; }
  const Cost& cost() const { return cost_; }
  const CTransformOptions& options() const { return options_; }

  // With raw_assignment_sums, result->grad_psi holds sum_i pi_ij instead of the supergradient.
  absl::Status Compute(const Eigen::Ref<const RowMatrixXf>& x, const Eigen::Ref<const Eigen::VectorXf>& psi,
                       const CTransformRequest& request, CTransformResult* result,
                       bool raw_assignment_sums = false);

  absl::Status WeightedAssignmentSums(const Eigen::Ref<const RowMatrixXf>& x,
                                      const Eigen::Ref<const Eigen::VectorXf>& psi,
                                      const Eigen::Ref<const Eigen::VectorXf>& values,
                                      const std::vector<int64_t>& assignment,
                                      const Eigen::Ref<const Eigen::VectorXf>& row_weights, Eigen::VectorXf* sums);

 private:
  absl::Status ValidateInputs(const Eigen::Ref<const RowMatrixXf>& x,
                              const Eigen::Ref<const Eigen::VectorXf>& psi) const;
  void PrepareOffsets(const Eigen::Ref<const Eigen::VectorXf>& psi);
  // xs_[i] = ||x_i||^2 / s (fused path) or 0.
  void PrepareRowConstants(const Eigen::Ref<const RowMatrixXf>& x);
  ThreadState& State(int t) { return threads_[t]; }
  void EnsureThreads(int n) {
    if (static_cast<int>(threads_.size()) < n) threads_.resize(n);
  }

  // rows x n tile of g values (fused: -2/s <x, y>; general: c(x, y)) for targets [j0, j0 + n).
  void EvaluateTile(const float* xrows, int64_t ldx, int64_t rows, const float* x_data, int64_t j0,
                    int64_t n, float* tile);

  // The streamed path for one block of rows [r0, r0 + rows).
  absl::Status RunBlock(const Eigen::Ref<const RowMatrixXf>& x, int64_t r0, int64_t rows,
                        const CTransformRequest& request, float* col_sum, CTransformResult* result);
  // The small-batch dense path for all rows.
  absl::Status RunSmallBatch(const Eigen::Ref<const RowMatrixXf>& x, const CTransformRequest& request,
                             float* col_sum, CTransformResult* result);
  // Dense second pass over the rows `rows` (indices into x) with log-normalizers ell (u frame):
  // adds sum_i w_i p_ij to col_sum (if not null) and writes grad_x rows (if grad_x is not null,
  // row r of `rows` to grad_x row rows[r]).
  // With `stored`, row r's tile values are read from stored + r * J_ (its g values kept by
  // pass 1) instead of being recomputed.
  void DensePass(const Eigen::Ref<const RowMatrixXf>& x, const std::vector<int64_t>& rows,
                 const std::vector<float>& ell, const float* row_weights, float* col_sum, RowMatrixXf* grad_x,
                 const float* stored = nullptr);
  // grad_x row of a hard assignment to local target j.
  void HardGradient(const float* xi, int64_t j, float* out) const;

  std::shared_ptr<const TargetSet> targets_;
  Cost cost_;
  CTransformOptions options_;
  int64_t d_ = 0;
  int64_t J_ = 0;
  bool fused_ = false;
  float lambda_ = 0.0f, inv_lambda_ = 0.0f, threshold_ = 0.0f;

  AlignedBuffer<float> base_offset_;  // J
  AlignedBuffer<float> offset_;       // J: base - psi
  Eigen::VectorXf target_data_;       // CostPointData of the targets (general costs)
  Eigen::VectorXf x_data_;            // CostPointData of the batch (general costs)
  std::vector<float> xs_;             // b
  std::vector<ThreadState> threads_;
  std::vector<MinArgmin> hard_rows_;
  std::vector<SoftminPartial> soft_rows_;
  AlignedBuffer<float> gathered_x_;   // dense pass rows x d
  AlignedBuffer<float> stored_g_;     // rows predicted dense x J: their pass-1 tile values
  AlignedBuffer<float> small_values_; // small path b x J
  // bf16 screening copy of the targets (small batches), built on first use.
  bool screen_ready_ = false;
  int64_t screen_pad_ = 0;            // padded row length
  AlignedBuffer<uint16_t> screen_y_;  // J x screen_pad_
  AlignedBuffer<float> screen_err_;   // J: ||y - y^|| + rounding slack
  AlignedBuffer<float> screen_norm_;  // J: ||y^||
  AlignedBuffer<uint16_t> screen_x_;  // b x screen_pad_
  std::vector<float> screen_bound_;   // threads x b: local upper bounds of the screened minimum
  std::vector<float> screen_scale_;   // b: (2/s) ||x_i|| (bound factor of err_j)
  std::vector<float> screen_xerr_;    // b: (2/s) ||x_i - x^_i|| (bound factor of ||y^_j||)
  std::vector<float> small_ell_;      // b
  std::vector<int64_t> screen_refined_;  // threads
  // Probe (lambda > 0, streamed path): a fixed strided sample of the targets.
  bool probe_ready_ = false;
  std::vector<int64_t> probe_index_;  // n_probe local target indices
  AlignedBuffer<float> probe_y_;      // n_probe x d rows
  Eigen::VectorXf probe_data_;        // CostPointData of the probe rows (general costs)
  AlignedBuffer<float> probe_tile_;   // rows x n_probe
  std::vector<float> probe_min_;      // rows: upper bound of the row minimum (u frame)
  std::vector<uint8_t> probe_dense_;  // rows: predicted to need the dense pass
  std::atomic<bool> gemm_failed_{false};
  // Large-batch screening (lambda = 0): bf16 matmuls by (rows, targets, threads), per-row
  // screened upper bounds and candidate lists (local index, lower bound).
  struct ScreenMatmul {
    dnnl::matmul primitive;  // empty: no native bf16 implementation
    dnnl::memory::desc src, weights, dst;
  };
  std::map<std::tuple<int64_t, int64_t, int>, ScreenMatmul> screen_matmuls_;
  bool large_screen_unavailable_ = false;
  AlignedBuffer<float> screen_tile_;       // rows x kScreenChunk screened values
  std::vector<float> screen_ub_;           // rows
  AlignedBuffer<int32_t> screen_cand_;     // rows x kScreenCandidates
  AlignedBuffer<float> screen_cand_lb_;    // rows x kScreenCandidates
  std::vector<int32_t> screen_count_;      // rows
  std::vector<uint8_t> screen_overflow_;   // rows
  // Large-batch soft screening: the kept pairs grouped by target (CSR), their rows and values.
  std::vector<int64_t> soft_pair_start_;   // J + 1
  AlignedBuffer<int32_t> soft_pair_row_;   // pairs
  AlignedBuffer<float> soft_pair_u_;       // pairs

  void BuildScreeningCopy();
  const ScreenMatmul* ScreenMatmulFor(int64_t rows, int64_t n);
  // lambda = 0, fused cost: the row minima and argmins of rows [r0, r0 + rows) into hard_rows_
  // (local to this shard) by bf16 screening and exact refinement. Returns false, having
  // changed nothing in `result`, when screening is unavailable or would not pay for this
  // block: the exact products it needs (all targets for a row whose candidates overflow) exceed
  // 1/8 of the block's pairs.
  bool ScreenHardBlock(const Eigen::Ref<const RowMatrixXf>& x, int64_t r0, int64_t rows, CTransformResult* result);
  // Pass 1 of both screenings: bf16 matmuls against every target; per row the smallest
  // screened upper bound screen_ub_[i] and the candidates whose screened lower bound is at
  // most screen_ub_[i] + margin, at most `capacity` per row (screen_overflow_[i] beyond).
  // False when no native bf16 matmul exists (large_screen_unavailable_), and, stopping after
  // the chunk where it happens, when more than max_overflow rows overflow.
  bool ScreenCandidates(const float* xb, int64_t ldx, int64_t r0, int64_t rows, float margin, int32_t capacity,
                        int64_t max_overflow);
  // Exact minima and argmins of the `n` gathered rows xg (n x d) against every target, through
  // the float GEMM tiles of the streamed path (one pass over the targets for all of them).
  void ExactHardRows(const float* xg, int64_t n, MinArgmin* out);
  // lambda > 0, fused cost: values, column sums and gradients of rows [r0, r0 + rows) from the
  // exact float values of the pairs that screening keeps (u_ij <= min_j u_ij + threshold).
  // Returns false, having changed nothing in `result`, when screening is unavailable, the
  // probe predicts a row with more than kSoftScreenCandidates / 2 pairs, a row keeps more than
  // kSoftScreenCandidates, or all rows more than 1/8 of all pairs.
  absl::StatusOr<bool> ScreenSoftBlock(const Eigen::Ref<const RowMatrixXf>& x, int64_t r0, int64_t rows,
                                       const CTransformRequest& request, float* col_sum, CTransformResult* result);
  // lambda = 0: from the thread-combined hard_rows_ of rows [r0, r0 + rows): the cross-shard
  // minimum, values, assignments, column sums and gradients.
  absl::Status FinishHardBlock(const Eigen::Ref<const RowMatrixXf>& x, int64_t r0, int64_t rows,
                               const CTransformRequest& request, float* col_sum, CTransformResult* result);
  void BuildProbe();
  // Upper bounds of the row minima and the dense-path prediction for rows [r0, r0 + rows).
  void RunProbe(const float* xb, int64_t ldx, int64_t rows, const float* xdata, int64_t budget);
};

void CTransformImpl::BuildProbe() {
  const int64_t n = std::min<int64_t>(J_, kProbeTargets);
  probe_index_.resize(n);
  float* py = probe_y_.Reserve(n * d_);
  const float* points = targets_->points();
  for (int64_t k = 0; k < n; ++k) {
    probe_index_[k] = (k * J_) / n;
    std::memcpy(py + k * d_, points + probe_index_[k] * d_, sizeof(float) * d_);
  }
  if (!fused_) probe_data_ = CostPointData(cost_, Eigen::Map<const RowMatrixXf>(py, n, d_));
  probe_ready_ = true;
}

void CTransformImpl::RunProbe(const float* xb, int64_t ldx, int64_t rows, const float* xdata, int64_t budget) {
  if (!probe_ready_) BuildProbe();
  const int64_t n = static_cast<int64_t>(probe_index_.size());
  float* tile = probe_tile_.Reserve(rows * n);
  if (fused_) {
    // G = -2/s X P^T with the probe rows P (n x d).
    const dnnl_status_t st =
        dnnl_sgemm('N', 'T', rows, n, d_, -2.0f / cost_.scale, xb, ldx, probe_y_.data(), d_, 0.0f, tile, n);
    if (st != dnnl_success) gemm_failed_.store(true);
  } else {
    Eigen::Map<const RowMatrixXf, 0, Eigen::OuterStride<>> xm(xb, rows, d_, Eigen::OuterStride<>(ldx));
    Eigen::Map<const Eigen::VectorXf> xd(xdata, rows);
    EvaluateCostTile(cost_, xm, xd, Eigen::Map<const RowMatrixXf>(probe_y_.data(), n, d_), probe_data_,
                     Eigen::Map<RowMatrixXf>(tile, rows, n));
  }
  std::vector<float> off(n);
  for (int64_t k = 0; k < n; ++k) off[k] = offset_.data()[probe_index_[k]];
  probe_min_.assign(rows, ct::kInf);
  probe_dense_.assign(rows, 0);
  for (int64_t i = 0; i < rows; ++i) {
    const float* g = tile + i * n;
    float m = ct::kInf;
    for (int64_t k = 0; k < n; ++k) m = std::min(m, g[k] + off[k]);
    probe_min_[i] = m;
    if (!(m < ct::kInf)) continue;
    int64_t count = 0;
    for (int64_t k = 0; k < n; ++k) count += (g[k] + off[k] <= m + threshold_);
    // Candidates relative to this upper bound of the minimum, extrapolated to all targets.
    if (static_cast<double>(count) * static_cast<double>(J_) / static_cast<double>(n) > static_cast<double>(budget)) {
      probe_dense_[i] = 1;
    }
  }
}

void CTransformImpl::BuildScreeningCopy() {
  screen_pad_ = (d_ + ct::kBf16Pad - 1) / ct::kBf16Pad * ct::kBf16Pad;
  uint16_t* ys = screen_y_.Reserve(J_ * screen_pad_);
  float* err = screen_err_.Reserve(J_);
  float* nrm = screen_norm_.Reserve(J_);
  const float* points = targets_->points();
  for (int64_t j = 0; j < J_; ++j) {
    const double e = ct::ToBf16Row(points + j * d_, d_, ys + j * screen_pad_);
    double n2 = 0.0, y2 = 0.0;
    for (int64_t k = 0; k < d_; ++k) {
      const double v = ct::FromBf16(ys[j * screen_pad_ + k]);
      n2 += v * v;
      y2 += static_cast<double>(points[j * d_ + k]) * points[j * d_ + k];
    }
    // Float accumulation of a d-term dot product errs by at most about d eps |x| |y|; 1e-4 |y|
    // per unit |x| covers it generously for d up to ~10^3 (and the exact path has its own).
    err[j] = static_cast<float>(e + (1e-4 + 1e-7 * d_) * std::sqrt(y2));
    nrm[j] = static_cast<float>(std::sqrt(n2));
  }
  screen_ready_ = true;
}

absl::Status CTransformImpl::ValidateInputs(const Eigen::Ref<const RowMatrixXf>& x,
                                            const Eigen::Ref<const Eigen::VectorXf>& psi) const {
  if (x.rows() == 0) return absl::InvalidArgumentError("x: expected at least one source point, got 0 rows");
  if (x.cols() != d_) {
    return absl::InvalidArgumentError(absl::StrCat("x: expected ", d_,
                                                   " columns (the dimension of the targets), got ", x.cols()));
  }
  if (psi.size() != J_) {
    return absl::InvalidArgumentError(
        absl::StrCat("psi: expected ", J_, " entries (one per target of the shard), got ", psi.size()));
  }
  for (int64_t i = 0; i < x.rows(); ++i) {
    const float* xi = x.data() + i * x.outerStride();
    const int64_t k = ct::FirstNonFinite(xi, d_);
    if (k >= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("x: entry (", i, ", ", k, ") is ", xi[k], "; expected finite values"));
    }
    if (cost_.kind == CostKind::kCosine && ct::Dot(xi, xi, d_) == 0.0f) {
      bool zero = true;
      for (int64_t q = 0; q < d_; ++q) zero = zero && xi[q] == 0.0f;
      if (zero) {
        return absl::InvalidArgumentError(
            absl::StrCat("x: point ", i, " is zero; the cosine cost needs non-zero points"));
      }
    }
  }
  const int64_t j = ct::FirstNonFinite(psi.data(), J_);
  if (j >= 0) {
    return absl::InvalidArgumentError(absl::StrCat("psi: entry ", j, " is ", psi[j], "; expected finite values"));
  }
  return absl::OkStatus();
}

void CTransformImpl::PrepareOffsets(const Eigen::Ref<const Eigen::VectorXf>& psi) {
  Eigen::Map<Eigen::VectorXf>(offset_.data(), J_) = Eigen::Map<const Eigen::VectorXf>(base_offset_.data(), J_) - psi;
}

void CTransformImpl::PrepareRowConstants(const Eigen::Ref<const RowMatrixXf>& x) {
  const int64_t b = x.rows();
  xs_.assign(b, 0.0f);
  if (fused_) {
    const double inv_s = 1.0 / cost_.scale;
    for (int64_t i = 0; i < b; ++i) {
      xs_[i] = static_cast<float>(ct::SquaredNormDouble(x.data() + i * x.outerStride(), d_) * inv_s);
    }
  } else {
    x_data_ = CostPointData(cost_, x);
  }
}

void CTransformImpl::EvaluateTile(const float* xrows, int64_t ldx, int64_t rows, const float* x_data,
                                  int64_t j0, int64_t n, float* tile) {
  if (fused_) {
    const dnnl_status_t st = dnnl_sgemm('N', 'N', rows, n, d_, -2.0f / cost_.scale, xrows, ldx,
                                        targets_->transposed_points() + j0, J_, 0.0f, tile, n);
    if (st != dnnl_success) gemm_failed_.store(true);
    return;
  }
  Eigen::Map<const RowMatrixXf, 0, Eigen::OuterStride<>> xm(xrows, rows, d_, Eigen::OuterStride<>(ldx));
  Eigen::Map<const Eigen::VectorXf> xd(x_data, rows);
  Eigen::Map<const RowMatrixXf> ym(targets_->points() + j0 * d_, n, d_);
  Eigen::Map<RowMatrixXf> out(tile, rows, n);
  EvaluateCostTile(cost_, xm, xd, ym, target_data_.segment(j0, n), out);
}

void CTransformImpl::HardGradient(const float* xi, int64_t j, float* out) const {
  const float* yj = targets_->points() + j * d_;
  if (cost_.kind == CostKind::kSquaredEuclidean) {
    const float c = 2.0f / cost_.scale;
    for (int64_t k = 0; k < d_; ++k) out[k] = c * (xi[k] - yj[k]);
    return;
  }
  std::vector<double> g(d_);
  CostGradientX(cost_, absl::MakeConstSpan(xi, d_), absl::MakeConstSpan(yj, d_), absl::MakeSpan(g));
  for (int64_t k = 0; k < d_; ++k) out[k] = static_cast<float>(g[k]);
}

absl::Status CTransformImpl::Compute(const Eigen::Ref<const RowMatrixXf>& x,
                                     const Eigen::Ref<const Eigen::VectorXf>& psi,
                                     const CTransformRequest& request, CTransformResult* result,
                                     bool raw_assignment_sums) {
  OTGEN_RETURN_IF_ERROR(ValidateInputs(x, psi));
  const int64_t b = x.rows();
  PrepareOffsets(psi);
  PrepareRowConstants(x);
  result->values.resize(b);
  result->assignment.resize(lambda_ == 0.0f ? b : 0);
  if (request.grad_x) {
    result->grad_x.resize(b, d_);
    result->grad_x.setZero();
  } else {
    result->grad_x.resize(0, 0);
  }
  float* col_sum = nullptr;
  if (request.grad_psi) {
    result->grad_psi.resize(J_);
    result->grad_psi.setZero();
    col_sum = result->grad_psi.data();
  } else {
    result->grad_psi.resize(0);
  }
  result->dense_rows = 0;
  result->candidate_pairs = 0;
  result->screened_rows = 0;
  gemm_failed_.store(false);

  if (b <= options_.small_batch_rows && b * J_ <= kSmallBatchMaxElements) {
    OTGEN_RETURN_IF_ERROR(RunSmallBatch(x, request, col_sum, result));
  } else {
    for (int64_t r0 = 0; r0 < b; r0 += options_.row_block) {
      const int64_t rows = std::min<int64_t>(options_.row_block, b - r0);
      bool screened = false;
      if (fused_ && options_.large_batch_screening && !large_screen_unavailable_ &&
          J_ * ((d_ + ct::kBf16Pad - 1) / ct::kBf16Pad * ct::kBf16Pad) <= kLargeScreenMaxEntries) {
        // Whether a block is screened depends on this call's inputs alone (no state carried
        // across calls), so that a run resumed from a checkpoint takes the same paths.
        if (lambda_ > 0.0f) {
          OTGEN_ASSIGN_OR_RETURN(screened, ScreenSoftBlock(x, r0, rows, request, col_sum, result));
        } else {
          screened = ScreenHardBlock(x, r0, rows, result);
          if (screened) OTGEN_RETURN_IF_ERROR(FinishHardBlock(x, r0, rows, request, col_sum, result));
        }
      }
      if (!screened) OTGEN_RETURN_IF_ERROR(RunBlock(x, r0, rows, request, col_sum, result));
    }
  }
  if (gemm_failed_.load()) return absl::InternalError("c-transform: dnnl_sgemm failed");

  const Eigen::Map<const Eigen::VectorXf> nu = targets_->WeightsVector();
  if (request.grad_psi && !raw_assignment_sums) {
    result->grad_psi = nu - result->grad_psi * (1.0f / static_cast<float>(b));
  }
  if (request.grad_x) {
    OTGEN_RETURN_IF_ERROR(targets_->AllReduceSum(absl::MakeSpan(result->grad_x.data(), result->grad_x.size())));
  }
  const double mean = result->values.cast<double>().mean();
  // Targets of weight 0 contribute 0 (psi is finite).
  double dot = nu.cast<double>().dot(psi.cast<double>());
  OTGEN_RETURN_IF_ERROR(targets_->AllReduceSum(absl::MakeSpan(&dot, 1)));
  result->mean_value = mean;
  result->semi_dual = mean + dot;
  return absl::OkStatus();
}

absl::Status CTransformImpl::RunBlock(const Eigen::Ref<const RowMatrixXf>& x, int64_t r0, int64_t rows,
                                      const CTransformRequest& request, float* col_sum,
                                      CTransformResult* result) {
  const bool soft = lambda_ > 0.0f;
  const bool want_grads = request.grad_x || request.grad_psi;
  const int64_t cap = options_.max_candidates_per_row;
  const bool collect = soft && want_grads && cap > 0;
  // The fused path accumulates grad_x of the sparse rows during pass 1.
  const bool accumulate = collect && fused_ && request.grad_x;
  const int64_t T = options_.tile_size;
  const int64_t tiles = (J_ + T - 1) / T;
  const int nt = static_cast<int>(std::min<int64_t>(NumThreads(), tiles));
  EnsureThreads(nt);
  const float* xb = x.data() + r0 * x.outerStride();
  const int64_t ldx = x.outerStride();
  const float* xdata = fused_ ? nullptr : x_data_.data() + r0;
  const float* off = offset_.data();
  const int32_t cap32 = static_cast<int32_t>(cap);

  // ---- Probe: initial running minima, and rows predicted to overflow their candidate lists ----
  // (only worth it when the targets span several tiles; its targets are visited again below).
  const bool probe = collect && J_ >= 4 * kProbeTargets;
  if (probe) RunProbe(xb, ldx, rows, xdata, cap * nt / 2);
  // Slots of the predicted dense rows whose tile values pass 1 keeps (-1: recomputed).
  std::vector<int64_t> slot(rows, -1);
  int64_t stored_rows = 0;
  if (probe) {
    const int64_t predicted = std::count(probe_dense_.begin(), probe_dense_.begin() + rows, 1);
    if (predicted > 0 && predicted * J_ * static_cast<int64_t>(sizeof(float)) <= kStoredValueBytes) {
      for (int64_t i = 0; i < rows; ++i) {
        if (probe_dense_[i]) slot[i] = stored_rows++;
      }
      stored_g_.Reserve(stored_rows * J_);
    }
  }
  float* const stored = stored_g_.data();

  // ---- Pass 1: shard-local partials per thread ----
  int team = 1;  // the team OpenMP actually provides (1 inside another parallel region)
#pragma omp parallel num_threads(nt)
  {
    if (omp_get_thread_num() == 0) team = omp_get_num_threads();
    ThreadState& ts = State(omp_get_thread_num());
    float* tile = ts.tile.Reserve(rows * T);
    if (soft) {
      ts.soft.assign(rows, SoftminPartial{});
      // The probe's minimum bounds the row minimum from above: starting the running minimum
      // there keeps every candidate of the final minimum and drops early stale ones.
      if (probe) {
        for (int64_t i = 0; i < rows; ++i) ts.soft[i].min = probe_min_[i];
      }
    } else {
      ts.hard.assign(rows, MinArgmin{});
    }
    int32_t* scratch_index = nullptr;
    float* scratch_value = nullptr;
    float* sparse_acc = nullptr;
    if (collect) {
      ts.cand_index.Reserve(rows * cap);
      ts.cand_value.Reserve(rows * cap);
      ts.cand_count.assign(rows, 0);
      ts.overflow.assign(rows, 0);
      if (probe) {
        for (int64_t i = 0; i < rows; ++i) ts.overflow[i] = probe_dense_[i];
      }
      scratch_index = ts.scratch_index.Reserve(T + 16);
      scratch_value = ts.scratch_value.Reserve(T + 16);
    }
    if (accumulate) {
      sparse_acc = ts.sparse_acc.Reserve(rows * d_);
      std::memset(sparse_acc, 0, sizeof(float) * rows * d_);
      ts.sparse_psum.assign(rows, 0.0);
      ts.pair_weight.Reserve(T + 16);
    }
    // Static tile ranges: each thread's partial sums (softmin, candidates, gradients) cover the
    // same tiles on every call, so that results are bit-reproducible at a fixed thread count.
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t j0 = t * T;
      const int64_t n = std::min(T, J_ - j0);
      EvaluateTile(xb, ldx, rows, xdata, j0, n, tile);
      if (stored_rows > 0) {
        for (int64_t i = 0; i < rows; ++i) {
          if (slot[i] >= 0) std::memcpy(stored + slot[i] * J_ + j0, tile + i * n, sizeof(float) * n);
        }
      }
      for (int64_t i = 0; i < rows; ++i) {
        const float* g = tile + i * n;
        if (!soft) {
          ct::HardRowMin(g, off + j0, n, targets_->shard_offset() + j0, &ts.hard[i].value, &ts.hard[i].index);
          continue;
        }
        SoftminPartial& p = ts.soft[i];
        const bool take = collect && !ts.overflow[i];
        const float m_before = p.min;
        const int64_t count = ct::SoftRowFold(g, off + j0, n, inv_lambda_, threshold_, static_cast<int32_t>(j0),
                                              &p.min, &p.sum, take ? scratch_index : nullptr,
                                              take ? scratch_value : nullptr);
        if (accumulate && take && p.min < m_before && ts.sparse_psum[i] > 0.0) {
          // The running minimum dropped: move the accumulated gradient to the new frame.
          const float scale = ct::ScalarExp((p.min - m_before) * inv_lambda_);
          float* a = sparse_acc + i * d_;
          for (int64_t k = 0; k < d_; ++k) a[k] *= scale;
          ts.sparse_psum[i] *= scale;
        }
        if (count == 0) continue;
        int32_t c = ts.cand_count[i];
        int32_t* ci = ts.cand_index.data() + i * cap;
        float* cv = ts.cand_value.data() + i * cap;
        if (c + count > cap) {
          // Drop the stale candidates (beyond the threshold of the current minimum).
          c = ct::KeepCandidatesUpTo(p.min + threshold_, c, ci, cv);
          // Still (nearly) full: this row goes to the dense pass.
          if (c + count > cap || 4 * (c + count) > 3 * cap32) {
            ts.overflow[i] = 1;
            ts.cand_count[i] = 0;
            continue;
          }
        }
        std::memcpy(ci + c, scratch_index, sizeof(int32_t) * count);
        std::memcpy(cv + c, scratch_value, sizeof(float) * count);
        ts.cand_count[i] = c + static_cast<int32_t>(count);
        if (accumulate) {
          // Add the row's new pairs to its gradient accumulator (the target rows of this tile
          // are shared by all source rows, so they stay in cache across rows).
          float* pw = ts.pair_weight.data();
          ct::ExpShifted(scratch_value, count, p.min, inv_lambda_, pw);
          double psum = 0.0;
          for (int64_t k = 0; k < count; ++k) psum += pw[k];
          ts.sparse_psum[i] += psum;
          ct::AccumulateWeightedRows(pw, scratch_index, count, targets_->points(), d_, sparse_acc + i * d_);
        }
      }
    }
  }
  if (gemm_failed_.load()) return absl::InternalError("c-transform: dnnl_sgemm failed");

  // ---- Combine across threads, then across shards ----
  float* values = result->values.data() + r0;
  if (!soft) {
    hard_rows_.assign(rows, MinArgmin{});
    for (int t = 0; t < team; ++t) {
      for (int64_t i = 0; i < rows; ++i) hard_rows_[i] = CombineMinArgmin(hard_rows_[i], threads_[t].hard[i]);
    }
    return FinishHardBlock(x, r0, rows, request, col_sum, result);
  }

  soft_rows_.assign(rows, SoftminPartial{});
  for (int t = 0; t < team; ++t) {
    for (int64_t i = 0; i < rows; ++i) {
      soft_rows_[i] = CombineSoftmin(soft_rows_[i], threads_[t].soft[i], inv_lambda_);
    }
  }
  OTGEN_RETURN_IF_ERROR(targets_->AllReduceSoftmin(absl::MakeSpan(soft_rows_), inv_lambda_));
  std::vector<float> ell(rows);
  for (int64_t i = 0; i < rows; ++i) {
    const double e = static_cast<double>(soft_rows_[i].min) - static_cast<double>(lambda_) * std::log(soft_rows_[i].sum);
    ell[i] = static_cast<float>(e);
    values[i] = static_cast<float>(xs_[r0 + i] + e);
  }
  if (!want_grads) return absl::OkStatus();

  // ---- Rows for the dense pass ----
  std::vector<uint8_t> dense(rows, collect ? 0 : 1);
  if (collect) {
    for (int t = 0; t < team; ++t) {
      for (int64_t i = 0; i < rows; ++i) dense[i] |= threads_[t].overflow[i];
    }
  }
  std::vector<int64_t> dense_rows;
  for (int64_t i = 0; i < rows; ++i) {
    if (dense[i]) dense_rows.push_back(r0 + i);
  }
  result->dense_rows += static_cast<int64_t>(dense_rows.size());

  // ---- Sparse path: weights of the candidates ----
  if (collect && dense_rows.size() < static_cast<size_t>(rows)) {
    const float* points = targets_->points();
    const float two_over_s = 2.0f / cost_.scale;
    for (int t = 0; t < team; ++t) threads_[t].pairs = 0;
#pragma omp parallel num_threads(team)
    {
      ThreadState& mine = State(omp_get_thread_num());
      // Phase A: the candidates of each pass-1 thread ("owner") become weights. An owner's
      // targets (tiles) are disjoint from the other owners', so the column sums need no
      // synchronization when each owner's lists are handled by one thread.
#pragma omp for schedule(static)
      for (int owner = 0; owner < team; ++owner) {
        ThreadState& ts = State(owner);
        for (int64_t i = 0; i < rows; ++i) {
          if (dense[i]) continue;
          const float limit = soft_rows_[i].min + threshold_;
          const float e = ell[i];
          const int32_t c = ts.cand_count[i];
          const int32_t* ci = ts.cand_index.data() + i * cap;
          float* cv = ts.cand_value.data() + i * cap;
          // Stale candidates (beyond the threshold of the final minimum) get weight 0.
          for (int32_t k = 0; k < c; ++k) cv[k] = cv[k] <= limit ? cv[k] : ct::kInf;
          ct::ExpShifted(cv, c, e, inv_lambda_, cv);
          int64_t kept = 0;
          for (int32_t k = 0; k < c; ++k) kept += cv[k] > 0.0f;
          ts.pairs += kept;
          if (col_sum != nullptr) {
            for (int32_t k = 0; k < c; ++k) col_sum[ci[k]] += cv[k];
          }
        }
      }
      // Phase B: gradient rows, one row per task.
      if (request.grad_x) {
        ThreadState& ts = mine;
        float* acc = ts.acc.Reserve(d_);
        const float* xd_all = fused_ ? nullptr : x_data_.data();
#pragma omp for schedule(dynamic, 1)
        for (int64_t i = 0; i < rows; ++i) {
          if (dense[i]) continue;
          const float* xi = xb + i * ldx;
          float* gi = result->grad_x.data() + (r0 + i) * d_;
          if (fused_) {
            // sum_j pi_ij y_j = sum_t exp((m_i - m_ti) / lambda) acc_ti / s_i.
            std::memset(acc, 0, sizeof(float) * d_);
            double psum = 0.0;
            const double m = soft_rows_[i].min;
            const double inv_s = 1.0 / soft_rows_[i].sum;
            for (int t = 0; t < team; ++t) {
              const ThreadState& other = threads_[t];
              if (!(other.sparse_psum[i] > 0.0)) continue;
              const double f = std::exp((m - other.soft[i].min) * inv_lambda_) * inv_s;
              ct::Axpy(static_cast<float>(f), other.sparse_acc.data() + i * d_, d_, acc);
              psum += f * other.sparse_psum[i];
            }
            const float ps = static_cast<float>(psum);
            for (int64_t k = 0; k < d_; ++k) gi[k] = two_over_s * (ps * xi[k] - acc[k]);
          } else {
            // General costs: gather the candidates in chunks and use the cost's tile gradient.
            float* gather = ts.gather.Reserve(kGatherRows * d_);
            float* gw = ts.gather_weight.Reserve(kGatherRows);
            ts.gather_data.resize(kGatherRows);
            Eigen::Map<const RowMatrixXf> xm(xi, 1, d_);
            Eigen::Map<RowMatrixXf> gm(gi, 1, d_);
            const Eigen::VectorXf xdi = Eigen::VectorXf::Constant(1, xd_all[r0 + i]);
            int64_t filled = 0;
            auto flush = [&]() {
              if (filled == 0) return;
              Eigen::Map<const RowMatrixXf> ym(gather, filled, d_);
              Eigen::Map<const RowMatrixXf> wm(gw, 1, filled);
              AccumulateCostGradientTile(cost_, xm, xdi, ym, ts.gather_data.head(filled), wm, gm);
              filled = 0;
            };
            for (int t = 0; t < team; ++t) {
              const ThreadState& other = threads_[t];
              const int32_t c = other.cand_count[i];
              const int32_t* ci = other.cand_index.data() + i * cap;
              const float* cv = other.cand_value.data() + i * cap;
              for (int32_t k = 0; k < c; ++k) {
                if (!(cv[k] > 0.0f)) continue;
                std::memcpy(gather + filled * d_, points + static_cast<int64_t>(ci[k]) * d_, sizeof(float) * d_);
                gw[filled] = cv[k];
                ts.gather_data[filled] = target_data_[ci[k]];
                if (++filled == kGatherRows) flush();
              }
            }
            flush();
          }
        }
      }
    }
    for (int t = 0; t < team; ++t) result->candidate_pairs += threads_[t].pairs;
  }

  // ---- Dense path for the overflowing rows ----
  if (!dense_rows.empty()) {
    std::vector<float> dense_ell;
    dense_ell.reserve(dense_rows.size());
    for (int64_t r : dense_rows) dense_ell.push_back(ell[r - r0]);
    // Rows with kept values first (in slot order, so that row r's values are at r * J_), then
    // the rest.
    std::vector<int64_t> kept_rows, other_rows;
    std::vector<float> kept_ell, other_ell;
    for (size_t k = 0; k < dense_rows.size(); ++k) {
      const bool kept = slot[dense_rows[k] - r0] >= 0;
      (kept ? kept_rows : other_rows).push_back(dense_rows[k]);
      (kept ? kept_ell : other_ell).push_back(dense_ell[k]);
    }
    RowMatrixXf* grad_x = request.grad_x ? &result->grad_x : nullptr;
    if (!kept_rows.empty()) {
      // Every kept row is dense (the probe's prediction sets its overflow flag), so the kept
      // rows are exactly the slots 0, 1, ... in order.
      DensePass(x, kept_rows, kept_ell, nullptr, col_sum, grad_x, stored);
    }
    if (!other_rows.empty()) DensePass(x, other_rows, other_ell, nullptr, col_sum, grad_x);
  }
  return absl::OkStatus();
}

absl::Status CTransformImpl::FinishHardBlock(const Eigen::Ref<const RowMatrixXf>& x, int64_t r0, int64_t rows,
                                             const CTransformRequest& request, float* col_sum,
                                             CTransformResult* result) {
  OTGEN_RETURN_IF_ERROR(targets_->AllReduceMinArgmin(absl::MakeSpan(hard_rows_.data(), rows)));
  const int64_t ldx = x.outerStride();
  const float* xb = x.data() + r0 * ldx;
  float* values = result->values.data() + r0;
  const int64_t offset = targets_->shard_offset();
  for (int64_t i = 0; i < rows; ++i) {
    values[i] = xs_[r0 + i] + hard_rows_[i].value;
    result->assignment[r0 + i] = hard_rows_[i].index;
    const int64_t j = hard_rows_[i].index - offset;
    if (j < 0 || j >= J_) continue;  // another shard's target
    if (col_sum != nullptr) col_sum[j] += 1.0f;
    if (request.grad_x) HardGradient(xb + i * ldx, j, result->grad_x.data() + (r0 + i) * d_);
  }
  return absl::OkStatus();
}

const CTransformImpl::ScreenMatmul* CTransformImpl::ScreenMatmulFor(int64_t rows, int64_t n) {
  const auto key = std::make_tuple(rows, n, NumThreads());
  auto it = screen_matmuls_.find(key);
  if (it == screen_matmuls_.end()) {
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    ScreenMatmul m;
    m.src = dnnl::memory::desc({rows, screen_pad_}, dt::bf16, tag::ab);
    // The chunk of row-major bf16 targets (n x pad) read as the pad x n weights.
    m.weights = dnnl::memory::desc({screen_pad_, n}, dt::bf16, tag::ba);
    m.dst = dnnl::memory::desc({rows, n}, dt::f32, tag::ab);
    dnnl::primitive_attr attr;
    attr.set_output_scales(0, {-2.0f / cost_.scale});
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(m.src, m.weights, m.dst), attr,
                                          nn::OneDnnContext::Get().engine(), /*allow_empty=*/true);
    if (pd) {
      // Only a native bf16 kernel is worth it (not the reference one or a float emulation).
      const std::string impl = pd.impl_info_str();
      if (impl.find("bf16") != std::string::npos || impl.find("amx") != std::string::npos) {
        m.primitive = dnnl::matmul(pd);
      }
    }
    it = screen_matmuls_.emplace(key, std::move(m)).first;
  }
  return it->second.primitive ? &it->second : nullptr;
}

bool CTransformImpl::ScreenCandidates(const float* xb, int64_t ldx, int64_t r0, int64_t rows, float margin,
                                      int32_t capacity, int64_t max_overflow) {
  if (!screen_ready_) BuildScreeningCopy();
  const int64_t pad = screen_pad_;
  const int64_t chunk = std::min<int64_t>(kScreenChunk, J_);
  const ScreenMatmul* full = ScreenMatmulFor(rows, chunk);
  const ScreenMatmul* tail = J_ % chunk == 0 ? full : ScreenMatmulFor(rows, J_ % chunk);
  if (full == nullptr || tail == nullptr) {
    large_screen_unavailable_ = true;
    return false;
  }
  const float alpha = -2.0f / cost_.scale;
  // bf16 rows of x and the factors of the error bound (as in the small-batch path):
  //   |g - g^| <= (2/s) (||x|| err_j + ||x - x^|| ||y^_j||).
  uint16_t* xs = screen_x_.Reserve(rows * pad);
  screen_scale_.resize(rows);
  screen_xerr_.resize(rows);
  for (int64_t i = 0; i < rows; ++i) {
    const double ex = ct::ToBf16Row(xb + i * ldx, d_, xs + i * pad);
    const double nx = std::sqrt(static_cast<double>(xs_[r0 + i]) * cost_.scale);
    screen_scale_[i] = static_cast<float>(-alpha * nx * (1.0 + 1e-5));
    screen_xerr_[i] = static_cast<float>(-alpha * (ex + 1e-6 * nx));
  }
  float* g = screen_tile_.Reserve(rows * chunk);
  screen_ub_.assign(rows, ct::kInf);
  int32_t* cand = screen_cand_.Reserve(rows * capacity);
  float* cand_lb = screen_cand_lb_.Reserve(rows * capacity);
  screen_count_.assign(rows, 0);
  screen_overflow_.assign(rows, 0);
  const float* off = offset_.data();
  const float* err = screen_err_.data();
  const float* nrm = screen_norm_.data();
  const int nt = static_cast<int>(std::min<int64_t>(NumThreads(), rows));
  EnsureThreads(nt);
  nn::OneDnnContext& ctx = nn::OneDnnContext::Get();
  dnnl::memory src(full->src, ctx.engine(), xs);

  // Screened values chunk by chunk; candidates below the running upper bound plus the margin.
  for (int64_t j0 = 0; j0 < J_; j0 += chunk) {
    const int64_t n = std::min(chunk, J_ - j0);
    const ScreenMatmul* mm = n == chunk ? full : tail;
    dnnl::memory weights(mm->weights, ctx.engine(), screen_y_.data() + j0 * pad);
    dnnl::memory dst(mm->dst, ctx.engine(), g);
    mm->primitive.execute(ctx.stream(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}});
    ctx.stream().wait();
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      if (screen_overflow_[i]) continue;
      const float* gi = g + i * n;
      const float a = screen_scale_[i], c = screen_xerr_[i];
      const float ub = std::min(screen_ub_[i], ct::ScreenUpperMin(gi, off + j0, err + j0, nrm + j0, a, c, n));
      screen_ub_[i] = ub;
      int32_t* sel = State(omp_get_thread_num()).scratch_index.Reserve(chunk + 16);
      const int64_t count =
          ct::ScreenSelect(gi, off + j0, err + j0, nrm + j0, a, c, ub + margin, n, static_cast<int32_t>(j0), sel);
      if (count == 0) continue;
      int32_t* ci = cand + i * capacity;
      float* cl = cand_lb + i * capacity;
      int32_t have = screen_count_[i];
      if (have + count > capacity) {
        have = ct::KeepCandidatesUpTo(ub + margin, have, ci, cl);  // drop those the new bound excludes
        if (have + count > capacity) {
          screen_overflow_[i] = 1;
          continue;
        }
      }
      for (int64_t q = 0; q < count; ++q) {
        const int32_t j = sel[q];
        ci[have + q] = j;
        cl[have + q] = gi[j - j0] + off[j] - a * err[j] - c * nrm[j];
      }
      screen_count_[i] = have + static_cast<int32_t>(count);
    }
    // Once more than max_overflow rows overflow the block takes the float path: stop here.
    if (std::count(screen_overflow_.begin(), screen_overflow_.end(), 1) > max_overflow) return false;
  }
  return true;
}

void CTransformImpl::ExactHardRows(const float* xg, int64_t n, MinArgmin* out) {
  const int64_t T = options_.tile_size;
  const int64_t tiles = (J_ + T - 1) / T;
  const int nt = static_cast<int>(std::min<int64_t>(NumThreads(), tiles));
  EnsureThreads(nt);
  const float* off = offset_.data();
  int team = 1;
#pragma omp parallel num_threads(nt)
  {
    if (omp_get_thread_num() == 0) team = omp_get_num_threads();
    ThreadState& ts = State(omp_get_thread_num());
    float* tile = ts.tile.Reserve(n * T);
    ts.hard.assign(n, MinArgmin{});
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t j0 = t * T;
      const int64_t m = std::min(T, J_ - j0);
      EvaluateTile(xg, d_, n, nullptr, j0, m, tile);
      for (int64_t i = 0; i < n; ++i) {
        ct::HardRowMin(tile + i * m, off + j0, m, j0, &ts.hard[i].value, &ts.hard[i].index);
      }
    }
  }
  // The minimum with ties to the smallest index: the same whichever thread took which tile.
  for (int64_t i = 0; i < n; ++i) {
    out[i] = MinArgmin{};
    for (int t = 0; t < team; ++t) out[i] = CombineMinArgmin(out[i], threads_[t].hard[i]);
  }
}

bool CTransformImpl::ScreenHardBlock(const Eigen::Ref<const RowMatrixXf>& x, int64_t r0, int64_t rows,
                                     CTransformResult* result) {
  const int64_t ldx = x.outerStride();
  const float* xb = x.data() + r0 * ldx;
  // Screening pays while the exact products it needs stay below 1/8 of the block's pairs
  // (beyond that the float path's GEMM over all pairs is faster), which is decided from this
  // call's inputs alone. A row whose candidates overflow needs all J_ products, so more than
  // rows / 8 such rows end the screening as soon as they appear.
  if (!ScreenCandidates(xb, ldx, r0, rows, /*margin=*/0.0f, kScreenCandidates, /*max_overflow=*/rows / 8)) {
    return false;
  }
  const float alpha = -2.0f / cost_.scale;
  const float* off = offset_.data();
  const int32_t* cand = screen_cand_.data();
  const float* cand_lb = screen_cand_lb_.data();
  std::vector<int64_t> overflow_rows;
  int64_t needed = 0;
  for (int64_t i = 0; i < rows; ++i) {
    if (screen_overflow_[i]) {
      overflow_rows.push_back(i);
      needed += J_;
      continue;
    }
    const float ub = screen_ub_[i];
    const float* cl = cand_lb + i * kScreenCandidates;
    for (int32_t k = 0; k < screen_count_[i]; ++k) needed += cl[k] <= ub;
  }
  if (8 * needed > rows * J_) return false;
  const int nt = static_cast<int>(std::min<int64_t>(NumThreads(), rows));

  // ---- Pass 2: exact float values of the surviving candidates ----
  const float* points = targets_->points();
  const int64_t shard_offset = targets_->shard_offset();
  hard_rows_.assign(rows, MinArgmin{});
#pragma omp parallel for num_threads(nt) schedule(dynamic, 4)
  for (int64_t i = 0; i < rows; ++i) {
    if (screen_overflow_[i]) continue;
    const float* xi = xb + i * ldx;
    float best = ct::kInf;
    int64_t arg = -1;
    const float ub = screen_ub_[i];
    const int32_t* ci = cand + i * kScreenCandidates;
    const float* cl = cand_lb + i * kScreenCandidates;
    // Candidates are in increasing index order: strict < keeps the first minimum.
    for (int32_t k = 0; k < screen_count_[i]; ++k) {
      if (!(cl[k] <= ub)) continue;
      const int32_t j = ci[k];
      const float u = alpha * ct::Dot(xi, points + static_cast<int64_t>(j) * d_, d_) + off[j];
      if (u < best) {
        best = u;
        arg = j;
      }
    }
    hard_rows_[i] = MinArgmin{best, arg < 0 ? -1 : shard_offset + arg};
  }
  // ---- Rows whose candidates overflowed: every target, all such rows in one streamed pass ----
  if (!overflow_rows.empty()) {
    const int64_t n = static_cast<int64_t>(overflow_rows.size());
    float* xg = gathered_x_.Reserve(n * d_);
    for (int64_t r = 0; r < n; ++r) std::memcpy(xg + r * d_, xb + overflow_rows[r] * ldx, sizeof(float) * d_);
    std::vector<MinArgmin> exact(n);
    ExactHardRows(xg, n, exact.data());
    for (int64_t r = 0; r < n; ++r) {
      const MinArgmin e = exact[r];
      hard_rows_[overflow_rows[r]] = MinArgmin{e.value, e.index < 0 ? -1 : shard_offset + e.index};
    }
  }
  result->candidate_pairs += needed;
  result->screened_rows += rows - static_cast<int64_t>(overflow_rows.size());
  return true;
}

absl::StatusOr<bool> CTransformImpl::ScreenSoftBlock(const Eigen::Ref<const RowMatrixXf>& x, int64_t r0,
                                                     int64_t rows, const CTransformRequest& request, float* col_sum,
                                                     CTransformResult* result) {
  const int64_t ldx = x.outerStride();
  const float* xb = x.data() + r0 * ldx;
  // The decision depends on this call's inputs alone (no pause state), so that a run resumed
  // from a checkpoint takes the same paths as an uninterrupted one. The probe (a float GEMM
  // against 512 sampled targets) predicts rows that would keep too many pairs.
  if (J_ >= 4 * kProbeTargets) {
    RunProbe(xb, ldx, rows, nullptr, kSoftScreenCandidates / 2);
    if (std::find(probe_dense_.begin(), probe_dense_.begin() + rows, 1) != probe_dense_.begin() + rows) return false;
  }
  // A row that overflows ends the screening of the block (max_overflow = 0).
  if (!ScreenCandidates(xb, ldx, r0, rows, threshold_, kSoftScreenCandidates, /*max_overflow=*/0)) return false;
  // ---- The kept pairs grouped by target: rows pair_row[p], p in [start[j], start[j + 1]) ----
  const int32_t* cand = screen_cand_.data();
  const float* cand_lb = screen_cand_lb_.data();
  std::vector<int64_t>& start = soft_pair_start_;
  start.assign(J_ + 1, 0);
  for (int64_t i = 0; i < rows; ++i) {
    const float limit = screen_ub_[i] + threshold_;
    const int32_t* ci = cand + i * kSoftScreenCandidates;
    const float* cl = cand_lb + i * kSoftScreenCandidates;
    for (int32_t k = 0; k < screen_count_[i]; ++k) start[ci[k] + 1] += cl[k] <= limit;
  }
  for (int64_t j = 0; j < J_; ++j) start[j + 1] += start[j];
  const int64_t pairs = start[J_];
  if (8 * pairs > rows * J_) return false;  // the float GEMM beats gathered dot products here
  int32_t* pair_row = soft_pair_row_.Reserve(pairs);
  float* pair_u = soft_pair_u_.Reserve(pairs);
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t i = 0; i < rows; ++i) {
      const float limit = screen_ub_[i] + threshold_;
      const int32_t* ci = cand + i * kSoftScreenCandidates;
      const float* cl = cand_lb + i * kSoftScreenCandidates;
      for (int32_t k = 0; k < screen_count_[i]; ++k) {
        if (cl[k] <= limit) pair_row[fill[ci[k]]++] = static_cast<int32_t>(i);
      }
    }
  }

  // ---- Exact values of the kept pairs; per-thread soft-min partials ----
  // Each thread takes a range of targets holding about pairs / nt pairs, so that the column
  // sums need no synchronization.
  const int nt = NumThreads();
  EnsureThreads(nt);
  std::vector<int64_t> bounds(nt + 1, J_);
  bounds[0] = 0;
  for (int t = 1; t < nt; ++t) {
    bounds[t] = std::upper_bound(start.begin(), start.end(), pairs * t / nt) - start.begin() - 1;
  }
  const float alpha = -2.0f / cost_.scale;
  const float* off = offset_.data();
  const float* points = targets_->points();
  // The calling thread's targets [j_lo, j_hi) within a team of any size.
  auto thread_targets = [&]() {
    const int t = omp_get_thread_num(), size = omp_get_num_threads();
    return std::pair<int64_t, int64_t>{bounds[t * nt / size], bounds[(t + 1) * nt / size]};
  };
  // Into the thread's pair_weight: exp((shift_i - u_p) / lambda) for its pairs p (row i).
  auto pair_weights = [&](ThreadState& ts, int64_t p_lo, int64_t n, auto shift_of_row) {
    float* shifted = ts.scratch_value.Reserve(n + 16);
    float* w = ts.pair_weight.Reserve(n + 16);
    for (int64_t p = 0; p < n; ++p) shifted[p] = pair_u[p_lo + p] - shift_of_row(pair_row[p_lo + p]);
    ct::ExpShifted(shifted, n, 0.0f, inv_lambda_, w);
    return w;
  };
  int team = 1;
#pragma omp parallel num_threads(nt)
  {
    if (omp_get_thread_num() == 0) team = omp_get_num_threads();
    ThreadState& ts = State(omp_get_thread_num());
    const auto [j_lo, j_hi] = thread_targets();
    const int64_t p_lo = start[j_lo], n = start[j_hi] - p_lo;
    ts.soft.assign(rows, SoftminPartial{});
    for (int64_t j = j_lo; j < j_hi; ++j) {
      const float* yj = points + j * d_;
      for (int64_t p = start[j]; p < start[j + 1]; ++p) {
        const int32_t i = pair_row[p];
        const float u = alpha * ct::Dot(xb + i * ldx, yj, d_) + off[j];
        pair_u[p] = u;
        ts.soft[i].min = std::min(ts.soft[i].min, u);
      }
    }
    const float* w = pair_weights(ts, p_lo, n, [&](int32_t i) { return ts.soft[i].min; });
    for (int64_t p = 0; p < n; ++p) ts.soft[pair_row[p_lo + p]].sum += w[p];
  }
  soft_rows_.assign(rows, SoftminPartial{});
  for (int t = 0; t < team; ++t) {
    for (int64_t i = 0; i < rows; ++i) soft_rows_[i] = CombineSoftmin(soft_rows_[i], threads_[t].soft[i], inv_lambda_);
  }
  OTGEN_RETURN_IF_ERROR(targets_->AllReduceSoftmin(absl::MakeSpan(soft_rows_), inv_lambda_));
  std::vector<float> ell(rows);
  float* values = result->values.data() + r0;
  for (int64_t i = 0; i < rows; ++i) {
    const double e = static_cast<double>(soft_rows_[i].min) - static_cast<double>(lambda_) * std::log(soft_rows_[i].sum);
    ell[i] = static_cast<float>(e);
    values[i] = static_cast<float>(xs_[r0 + i] + e);
  }
  result->candidate_pairs += pairs;
  result->screened_rows += rows;
  if (col_sum == nullptr && !request.grad_x) return true;

  // ---- Weights pi_ij = exp((ell_i - u_ij) / lambda): column sums and grad_x ----
  const bool grad_x = request.grad_x;
  int weight_team = 1;
#pragma omp parallel num_threads(team)
  {
    if (omp_get_thread_num() == 0) weight_team = omp_get_num_threads();
    ThreadState& ts = State(omp_get_thread_num());
    const auto [j_lo, j_hi] = thread_targets();
    const int64_t p_lo = start[j_lo], n = start[j_hi] - p_lo;
    const float* w = pair_weights(ts, p_lo, n, [&](int32_t i) { return ell[i]; });
    float* acc = nullptr;
    if (grad_x) {
      acc = ts.acc.Reserve(rows * d_);
      std::memset(acc, 0, sizeof(float) * rows * d_);
      ts.row_sum.assign(rows, 0.0);
    }
    for (int64_t j = j_lo; j < j_hi; ++j) {
      const float* yj = points + j * d_;
      float sum = 0.0f;
      for (int64_t p = start[j]; p < start[j + 1]; ++p) {
        const float pi = w[p - p_lo];
        sum += pi;
        if (grad_x && pi > 0.0f) {
          const int32_t i = pair_row[p];
          ct::Axpy(pi, yj, d_, acc + i * d_);
          ts.row_sum[i] += pi;
        }
      }
      if (col_sum != nullptr) col_sum[j] += sum;
    }
  }
  if (grad_x) {
    const float two_over_s = 2.0f / cost_.scale;
#pragma omp parallel for num_threads(team) schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      const float* xi = xb + i * ldx;
      float* gi = result->grad_x.data() + (r0 + i) * d_;
      double psum = 0.0;
      for (int t = 0; t < weight_team; ++t) psum += threads_[t].row_sum[i];
      const float ps = static_cast<float>(psum);
      for (int64_t k = 0; k < d_; ++k) {
        float a = 0.0f;
        for (int t = 0; t < weight_team; ++t) a += threads_[t].acc.data()[i * d_ + k];
        gi[k] = two_over_s * (ps * xi[k] - a);
      }
    }
  }
  return true;
}

void CTransformImpl::DensePass(const Eigen::Ref<const RowMatrixXf>& x, const std::vector<int64_t>& rows,
                               const std::vector<float>& ell, const float* row_weights, float* col_sum,
                               RowMatrixXf* grad_x, const float* stored) {
  const int64_t nd = static_cast<int64_t>(rows.size());
  const int64_t T = options_.tile_size;
  const int64_t tiles = (J_ + T - 1) / T;
  const int nt = static_cast<int>(std::min<int64_t>(NumThreads(), tiles));
  EnsureThreads(nt);
  // Gather the rows (contiguous, so that one GEMM covers them).
  float* xg = gathered_x_.Reserve(nd * d_);
  std::vector<float> xdg(nd, 0.0f);
  for (int64_t r = 0; r < nd; ++r) {
    std::memcpy(xg + r * d_, x.data() + rows[r] * x.outerStride(), sizeof(float) * d_);
    if (!fused_) xdg[r] = x_data_[rows[r]];
  }
  const float* off = offset_.data();
  const bool want_grad = grad_x != nullptr;
  int team = 1;
#pragma omp parallel num_threads(nt)
  {
    if (omp_get_thread_num() == 0) team = omp_get_num_threads();
    ThreadState& ts = State(omp_get_thread_num());
    float* tile = ts.tile.Reserve(nd * T);
    float* acc = nullptr;
    if (want_grad) {
      acc = ts.acc.Reserve(nd * d_);
      std::memset(acc, 0, sizeof(float) * nd * d_);
    }
    ts.row_sum.assign(nd, 0.0);
    // Static tile ranges, as in RunBlock's pass 1: reproducible per-thread sums.
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t j0 = t * T;
      const int64_t n = std::min(T, J_ - j0);
      if (stored != nullptr) {
        for (int64_t r = 0; r < nd; ++r) std::memcpy(tile + r * n, stored + r * J_ + j0, sizeof(float) * n);
      } else {
        EvaluateTile(xg, d_, nd, xdg.data(), j0, n, tile);
      }
      for (int64_t r = 0; r < nd; ++r) {
        ts.row_sum[r] += ct::DenseRowWeights(tile + r * n, off + j0, n, ell[r], inv_lambda_,
                                             row_weights != nullptr ? row_weights[r] : 1.0f,
                                             col_sum != nullptr ? col_sum + j0 : nullptr);
      }
      if (!want_grad) continue;
      if (fused_) {
        const dnnl_status_t st = dnnl_sgemm('N', 'T', nd, d_, n, 1.0f, tile, n, targets_->transposed_points() + j0,
                                            J_, 1.0f, acc, d_);
        if (st != dnnl_success) gemm_failed_.store(true);
      } else {
        Eigen::Map<const RowMatrixXf> xm(xg, nd, d_);
        Eigen::Map<const Eigen::VectorXf> xd(xdg.data(), nd);
        Eigen::Map<const RowMatrixXf> ym(targets_->points() + j0 * d_, n, d_);
        Eigen::Map<const RowMatrixXf> wm(tile, nd, n);
        Eigen::Map<RowMatrixXf> am(acc, nd, d_);
        AccumulateCostGradientTile(cost_, xm, xd, ym, target_data_.segment(j0, n), wm, am);
      }
    }
  }
  if (!want_grad) return;
  const float two_over_s = 2.0f / cost_.scale;
  for (int64_t r = 0; r < nd; ++r) {
    float* gi = grad_x->data() + rows[r] * d_;
    double psum = 0.0;
    for (int t = 0; t < team; ++t) psum += threads_[t].row_sum[r];
    for (int64_t k = 0; k < d_; ++k) {
      float a = 0.0f;
      for (int t = 0; t < team; ++t) a += threads_[t].acc.data()[r * d_ + k];
      gi[k] = fused_ ? two_over_s * (static_cast<float>(psum) * xg[r * d_ + k] - a) : a;
    }
  }
}

absl::Status CTransformImpl::RunSmallBatch(const Eigen::Ref<const RowMatrixXf>& x, const CTransformRequest& request,
                                           float* col_sum, CTransformResult* result) {
  const int64_t b = x.rows();
  const bool soft = lambda_ > 0.0f;
  const int nt = static_cast<int>(std::min<int64_t>(NumThreads(), std::max<int64_t>(1, J_ / 256)));
  EnsureThreads(nt);
  float* u = small_values_.Reserve(b * J_);
  const float* off = offset_.data();
  const float* points = targets_->points();
  const int64_t ldx = x.outerStride();
  const float alpha = -2.0f / cost_.scale;
  const int64_t shard_offset = targets_->shard_offset();

  // Screening (fused cost): bf16 rows of x, the bound scale of each row.
  const bool screen = fused_ && options_.small_batch_screening && J_ * d_ <= (int64_t{1} << 25);
  std::vector<float>& bound_scale = screen_scale_;
  std::vector<float>& bound_xerr = screen_xerr_;
  if (screen) {
    if (!screen_ready_) BuildScreeningCopy();
    uint16_t* xs = screen_x_.Reserve(b * screen_pad_);
    bound_scale.resize(b);
    bound_xerr.resize(b);
    for (int64_t i = 0; i < b; ++i) {
      const double ex = ct::ToBf16Row(x.data() + i * ldx, d_, xs + i * screen_pad_);
      const double nx = std::sqrt(static_cast<double>(xs_[i]) * cost_.scale);
      // |g - g^| <= (2/s) (||x|| err_j + ||x - x^|| ||y^_j||).
      bound_scale[i] = static_cast<float>(-alpha * nx * (1.0 + 1e-5));
      bound_xerr[i] = static_cast<float>(-alpha * (ex + 1e-6 * nx));
    }
    screen_bound_.assign(static_cast<size_t>(nt) * b, ct::kInf);
    screen_refined_.assign(nt, 0);
  }
  const float limit_slack = soft ? threshold_ : 0.0f;

  const bool want_grad = request.grad_x;
  const bool want_weights = request.grad_x || request.grad_psi;
  std::vector<float>& ell = small_ell_;
  ell.resize(b);
  int team = 1;
  // Combines the threads' partials, then across shards (the master thread calls this inside
  // the parallel region: MPI's "funneled" mode suffices); values; lambda = 0 gradients.
  auto combine = [&]() -> absl::Status {
    if (screen) {
      int64_t refined = 0;
      for (int t = 0; t < team; ++t) refined += screen_refined_[t];
      result->candidate_pairs += refined;
    }
    if (soft) {
      soft_rows_.assign(b, SoftminPartial{});
      for (int t = 0; t < team; ++t) {
        for (int64_t i = 0; i < b; ++i) soft_rows_[i] = CombineSoftmin(soft_rows_[i], threads_[t].soft[i], inv_lambda_);
      }
      OTGEN_RETURN_IF_ERROR(targets_->AllReduceSoftmin(absl::MakeSpan(soft_rows_), inv_lambda_));
      for (int64_t i = 0; i < b; ++i) {
        const double e =
            static_cast<double>(soft_rows_[i].min) - static_cast<double>(lambda_) * std::log(soft_rows_[i].sum);
        ell[i] = static_cast<float>(e);
        result->values[i] = static_cast<float>(xs_[i] + e);
      }
      return absl::OkStatus();
    }
    hard_rows_.assign(b, MinArgmin{});
    for (int t = 0; t < team; ++t) {
      for (int64_t i = 0; i < b; ++i) hard_rows_[i] = CombineMinArgmin(hard_rows_[i], threads_[t].hard[i]);
    }
    OTGEN_RETURN_IF_ERROR(targets_->AllReduceMinArgmin(absl::MakeSpan(hard_rows_)));
    for (int64_t i = 0; i < b; ++i) {
      result->values[i] = xs_[i] + hard_rows_[i].value;
      result->assignment[i] = hard_rows_[i].index;
      const int64_t j = hard_rows_[i].index - shard_offset;
      if (j < 0 || j >= J_) continue;
      if (col_sum != nullptr) col_sum[j] += 1.0f;
      if (request.grad_x) HardGradient(x.data() + i * ldx, j, result->grad_x.data() + i * d_);
    }
    return absl::OkStatus();
  };
  absl::Status combine_status;

  // One parallel region: values and partials, combine (master), weights and gradients.
#pragma omp parallel num_threads(nt)
  {
    const int me = omp_get_thread_num();
    if (me == 0) team = omp_get_num_threads();
    ThreadState& ts = State(me);
    const auto [lo, hi] = StaticRange(J_, me, omp_get_num_threads());
    if (soft) {
      ts.soft.assign(b, SoftminPartial{});
    } else {
      ts.hard.assign(b, MinArgmin{});
    }
    if (screen) {
      const uint16_t* ys = screen_y_.data();
      const float* err = screen_err_.data();
      const float* nrm = screen_norm_.data();
      auto screen_target = [&](int64_t j) {
        for (int64_t i = 0; i < b; ++i) {
          u[i * J_ + j] = alpha * ct::DotBf16(screen_x_.data() + i * screen_pad_, ys + j * screen_pad_, screen_pad_);
        }
      };
      // (a) Whether screening can pay on this thread's targets, decided from this call's
      // inputs alone (no state across calls, no synchronization): their sample of every
      // kSmallScreenStride-th target is screened first, and when more than 7/8 of the sampled
      // pairs would be refined (screened lower bound within limit_slack of the sample's
      // smallest upper bound), the thread's targets take the float path instead: screening
      // cannot prune them (lambda large against the spread of the costs), and the bf16 pass
      // plus refining nearly all of them costs well over the float path. The sample's bound
      // lies above the row minimum when x_i is close to an unsampled target, so a call whose
      // sources each sit close to one target amid a crowd of nearly equidistant ones also
      // takes the float path, where screening would have been somewhat faster.
      constexpr int64_t kStride = kSmallScreenStride;
      const int64_t s_lo = (lo + kStride - 1) / kStride * kStride;
      int64_t sampled = 0, samples = 0;
      for (int64_t j = s_lo; j < hi; j += kStride) screen_target(j);
      for (int64_t i = 0; i < b; ++i) {
        const float* ui = u + i * J_;
        const float a = bound_scale[i], c = bound_xerr[i];
        float m = ct::kInf;
        for (int64_t j = s_lo; j < hi; j += kStride) m = std::min(m, ui[j] + off[j] + a * err[j] + c * nrm[j]);
        for (int64_t j = s_lo; j < hi; j += kStride) {
          sampled += ui[j] + off[j] - a * err[j] - c * nrm[j] <= m + limit_slack;
          ++samples;
        }
      }
      const bool refine = 8 * sampled <= 7 * samples;
      if (refine) {
        // (b) Screened values g^ and the local upper bounds of min_j u_j = g_j + off_j.
        for (int64_t j = lo; j < hi; ++j) {
          if (j % kStride != 0) screen_target(j);
        }
        for (int64_t i = 0; i < b && hi > lo; ++i) {
          screen_bound_[static_cast<size_t>(me) * b + i] = ct::ScreenUpperMin(
              u + i * J_ + lo, off + lo, err + lo, nrm + lo, bound_scale[i], bound_xerr[i], hi - lo);
        }
      } else {
        // The float path's values, and their minima as the local upper bounds.
        for (int64_t j = lo; j < hi; ++j) {
          const float* yj = points + j * d_;
          for (int64_t i = 0; i < b; ++i) u[i * J_ + j] = alpha * ct::Dot(x.data() + i * ldx, yj, d_);
        }
        for (int64_t i = 0; i < b && hi > lo; ++i) {
          screen_bound_[static_cast<size_t>(me) * b + i] =
              ct::ScreenUpperMin(u + i * J_ + lo, off + lo, err + lo, nrm + lo, 0.0f, 0.0f, hi - lo);
        }
      }
#pragma omp barrier
      // (c) Exact float values for the targets that can matter; the others are dropped.
      const int members = omp_get_num_threads();
      int32_t* selected = ts.scratch_index.Reserve(hi - lo + 16);
      float* exact = ts.scratch_value.Reserve(hi - lo + 16);
      int64_t refined = 0;
      for (int64_t i = 0; i < b && hi > lo && refine; ++i) {
        float ub = ct::kInf;
        for (int t = 0; t < members; ++t) ub = std::min(ub, screen_bound_[static_cast<size_t>(t) * b + i]);
        const float* xi = x.data() + i * ldx;
        float* ui = u + i * J_;
        const int64_t count = ct::ScreenSelect(ui + lo, off + lo, err + lo, nrm + lo, bound_scale[i], bound_xerr[i],
                                               ub + limit_slack, hi - lo, static_cast<int32_t>(lo), selected);
        for (int64_t q = 0; q < count; ++q) exact[q] = alpha * ct::Dot(xi, points + static_cast<int64_t>(selected[q]) * d_, d_);
        std::fill(ui + lo, ui + hi, ct::kInf);
        for (int64_t q = 0; q < count; ++q) ui[selected[q]] = exact[q];
        refined += count;
      }
      screen_refined_[me] = refined;
    } else if (hi > lo) {
      if (fused_) {
        for (int64_t j = lo; j < hi; ++j) {
          const float* yj = points + j * d_;
          for (int64_t i = 0; i < b; ++i) u[i * J_ + j] = alpha * ct::Dot(x.data() + i * ldx, yj, d_);
        }
      } else {
        Eigen::Map<const RowMatrixXf> ym(points + lo * d_, hi - lo, d_);
        Eigen::Map<RowMatrixXf, 0, Eigen::OuterStride<>> out(u + lo, b, hi - lo, Eigen::OuterStride<>(J_));
        EvaluateCostTile(cost_, x, x_data_, ym, target_data_.segment(lo, hi - lo), out);
      }
    }
    if (hi > lo) {
      for (int64_t i = 0; i < b; ++i) {
        const float* g = u + i * J_ + lo;
        if (soft) {
          ct::SoftRowFold(g, off + lo, hi - lo, inv_lambda_, threshold_, 0, &ts.soft[i].min, &ts.soft[i].sum,
                          nullptr, nullptr);
        } else {
          ct::HardRowMin(g, off + lo, hi - lo, shard_offset + lo, &ts.hard[i].value, &ts.hard[i].index);
        }
      }
    }
#pragma omp barrier
#pragma omp master
    combine_status = combine();
#pragma omp barrier
    if (combine_status.ok() && soft && want_weights) {
      // Weights, column sums and gradient partials over this thread's targets.
      ts.row_sum.assign(b, 0.0);
      float* acc = nullptr;
      if (want_grad) {
        acc = ts.acc.Reserve(b * d_);
        std::memset(acc, 0, sizeof(float) * b * d_);
      }
      if (hi > lo) {
        for (int64_t i = 0; i < b; ++i) {
          float* p = u + i * J_ + lo;
          ts.row_sum[i] = ct::DenseRowWeights(p, off + lo, hi - lo, ell[i], inv_lambda_, 1.0f,
                                              col_sum != nullptr ? col_sum + lo : nullptr);
          if (want_grad && fused_) {
            for (int64_t j = 0; j < hi - lo; ++j) {
              if (p[j] > 0.0f) ct::Axpy(p[j], points + (lo + j) * d_, d_, acc + i * d_);
            }
          }
        }
        if (want_grad && !fused_) {
          Eigen::Map<const RowMatrixXf> ym(points + lo * d_, hi - lo, d_);
          Eigen::Map<const RowMatrixXf, 0, Eigen::OuterStride<>> wm(u + lo, b, hi - lo, Eigen::OuterStride<>(J_));
          Eigen::Map<RowMatrixXf> am(acc, b, d_);
          AccumulateCostGradientTile(cost_, x, x_data_, ym, target_data_.segment(lo, hi - lo), wm, am);
        }
      }
    }
  }
  OTGEN_RETURN_IF_ERROR(combine_status);
  if (!soft || !want_weights) return absl::OkStatus();
  result->dense_rows += b;
  const int team2 = team;
  if (want_grad) {
    const float two_over_s = 2.0f / cost_.scale;
    for (int64_t i = 0; i < b; ++i) {
      const float* xi = x.data() + i * ldx;
      float* gi = result->grad_x.data() + i * d_;
      double psum = 0.0;
      for (int t = 0; t < team2; ++t) psum += threads_[t].row_sum[i];
      for (int64_t k = 0; k < d_; ++k) {
        float a = 0.0f;
        for (int t = 0; t < team2; ++t) a += threads_[t].acc.data()[i * d_ + k];
        gi[k] = fused_ ? two_over_s * (static_cast<float>(psum) * xi[k] - a) : a;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CTransformImpl::WeightedAssignmentSums(const Eigen::Ref<const RowMatrixXf>& x,
                                                    const Eigen::Ref<const Eigen::VectorXf>& psi,
                                                    const Eigen::Ref<const Eigen::VectorXf>& values,
                                                    const std::vector<int64_t>& assignment,
                                                    const Eigen::Ref<const Eigen::VectorXf>& row_weights,
                                                    Eigen::VectorXf* sums) {
  OTGEN_RETURN_IF_ERROR(ValidateInputs(x, psi));
  const int64_t b = x.rows();
  if (values.size() != b || row_weights.size() != b) {
    return absl::InvalidArgumentError(absl::StrCat("values, row_weights: expected ", b, " entries (one per row of x), got ",
                                                   values.size(), " and ", row_weights.size()));
  }
  sums->resize(J_);
  sums->setZero();
  if (lambda_ == 0.0f) {
    if (static_cast<int64_t>(assignment.size()) != b) {
      return absl::InvalidArgumentError(
          absl::StrCat("assignment: expected ", b, " entries (one per row of x), got ", assignment.size()));
    }
    for (int64_t i = 0; i < b; ++i) {
      const int64_t j = assignment[i] - targets_->shard_offset();
      if (j >= 0 && j < J_) (*sums)[j] += row_weights[i];
    }
    return absl::OkStatus();
  }
  PrepareOffsets(psi);
  PrepareRowConstants(x);
  gemm_failed_.store(false);
  for (int64_t r0 = 0; r0 < b; r0 += options_.row_block) {
    const int64_t rows = std::min<int64_t>(options_.row_block, b - r0);
    std::vector<int64_t> idx(rows);
    std::vector<float> ell(rows), w(rows);
    for (int64_t i = 0; i < rows; ++i) {
      idx[i] = r0 + i;
      ell[i] = values[r0 + i] - xs_[r0 + i];
      w[i] = row_weights[r0 + i];
    }
    DensePass(x, idx, ell, w.data(), sums->data(), nullptr);
  }
  if (gemm_failed_.load()) return absl::InternalError("c-transform: dnnl_sgemm failed");
  return absl::OkStatus();
}

}  // namespace internal

// ---- CTransform -----------------------------------------------------------------------------------

CTransform::CTransform(std::unique_ptr<internal::CTransformImpl> impl) : impl_(std::move(impl)) {}
CTransform::CTransform(CTransform&&) noexcept = default;
CTransform& CTransform::operator=(CTransform&&) noexcept = default;
CTransform::~CTransform() = default;

absl::StatusOr<CTransform> CTransform::Create(std::shared_ptr<const TargetSet> targets, const Cost& cost,
                                              const CTransformOptions& options) {
  OTGEN_RETURN_IF_ERROR(options.Validate());
  if (targets == nullptr) return absl::InvalidArgumentError("targets: expected a target set, got null");
  OTGEN_RETURN_IF_ERROR(cost.Validate());
  if (targets->size() < 1 || targets->shard_size() < 1 || targets->dim() < 1) {
    return absl::InvalidArgumentError(absl::StrCat("targets: expected at least one target of dimension >= 1, got ",
                                                   targets->shard_size(), " targets of dimension ", targets->dim()));
  }
  if (targets->shard_size() > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat("targets: at most 2^31 - 1 targets per shard, got ",
                                                   targets->shard_size()));
  }
  if (cost.kind == CostKind::kCosine) {
    for (int64_t j = 0; j < targets->shard_size(); ++j) {
      if (!(targets->squared_norms()[j] > 0.0f)) {
        return absl::InvalidArgumentError(
            absl::StrCat("targets: point ", j, " is zero; the cosine cost needs non-zero points"));
      }
    }
  }
  return CTransform(std::make_unique<internal::CTransformImpl>(std::move(targets), cost, options));
}

const TargetSet& CTransform::targets() const { return *impl_->targets(); }
const std::shared_ptr<const TargetSet>& CTransform::shared_targets() const { return impl_->targets(); }
const Cost& CTransform::cost() const { return impl_->cost(); }
const CTransformOptions& CTransform::options() const { return impl_->options(); }

absl::Status CTransform::Compute(const Eigen::Ref<const RowMatrixXf>& x, const Eigen::Ref<const Eigen::VectorXf>& psi,
                                 const CTransformRequest& request, CTransformResult* result) {
  return impl_->Compute(x, psi, request, result);
}

absl::StatusOr<CTransformResult> CTransform::Compute(const Eigen::Ref<const RowMatrixXf>& x,
                                                     const Eigen::Ref<const Eigen::VectorXf>& psi,
                                                     const CTransformRequest& request) {
  CTransformResult result;
  OTGEN_RETURN_IF_ERROR(impl_->Compute(x, psi, request, &result));
  return result;
}

absl::Status CTransform::WeightedAssignmentSums(const Eigen::Ref<const RowMatrixXf>& x,
                                                const Eigen::Ref<const Eigen::VectorXf>& psi,
                                                const Eigen::Ref<const Eigen::VectorXf>& values,
                                                const std::vector<int64_t>& assignment,
                                                const Eigen::Ref<const Eigen::VectorXf>& row_weights,
                                                Eigen::VectorXf* sums) {
  return impl_->WeightedAssignmentSums(x, psi, values, assignment, row_weights, sums);
}

// ---- Differentiable form ------------------------------------------------------------------------

namespace {

class CTransformNode : public nn::Node {
 public:
  CTransformNode(std::shared_ptr<internal::CTransformImpl> impl, nn::Tensor grad_x, Eigen::VectorXf col_sum,
                 std::vector<int64_t> assignment)
      : impl_(std::move(impl)),
        grad_x_(std::move(grad_x)),
        col_sum_(std::move(col_sum)),
        assignment_(std::move(assignment)) {}

  std::vector<nn::Var> Backward(const nn::Var& grad_output, const std::vector<bool>& needs) override {
    OTGEN_CHECK(!nn::GradModeEnabled(),
                "CTransformValues: differentiating the c-transform twice (a backward pass with create_graph = "
                "true through it) is not supported; its backward rule is first order only");
    const nn::Tensor& g = grad_output.value();
    const int64_t b = g.numel();
    std::vector<nn::Var> out(2);
    if (needs[0]) {
      OTGEN_CHECK(grad_x_.defined(), "CTransformValues: grad_x was not computed in the forward pass");
      nn::Tensor dx = nn::Tensor::Empty(grad_x_.shape());
      const int64_t d = grad_x_.numel() / b;
      for (int64_t i = 0; i < b; ++i) {
        const float gi = g.data()[i];
        const float* src = grad_x_.data() + i * d;
        float* dst = dx.data() + i * d;
        for (int64_t k = 0; k < d; ++k) dst[k] = gi * src[k];
      }
      out[0] = nn::Var::Constant(dx.Reshape(inputs()[0].shape()));
    }
    if (needs[1]) {
      const int64_t J = inputs()[1].numel();
      nn::Tensor dpsi = nn::Tensor::Empty({J});
      bool uniform = true;
      for (int64_t i = 1; i < b; ++i) uniform = uniform && g.data()[i] == g.data()[0];
      if (uniform) {
        OTGEN_CHECK(col_sum_.size() == J, "CTransformValues: assignment sums were not computed in the forward pass");
        const float g0 = g.data()[0];
        for (int64_t j = 0; j < J; ++j) dpsi.data()[j] = -g0 * col_sum_[j];
      } else {
        const nn::Tensor& xv = inputs()[0].value();
        const nn::Tensor& pv = inputs()[1].value();
        Eigen::Map<const RowMatrixXf> xm(xv.data(), b, xv.numel() / b);
        Eigen::Map<const Eigen::VectorXf> pm(pv.data(), J);
        Eigen::Map<const Eigen::VectorXf> vm(output().value().data(), b);
        Eigen::Map<const Eigen::VectorXf> wm(g.data(), b);
        Eigen::VectorXf sums;
        const absl::Status s = impl_->WeightedAssignmentSums(xm, pm, vm, assignment_, wm, &sums);
        OTGEN_CHECK(s.ok(), absl::StrCat("CTransformValues backward: ", s.ToString()));
        for (int64_t j = 0; j < J; ++j) dpsi.data()[j] = -sums[j];
      }
      out[1] = nn::Var::Constant(dpsi);
    }
    return out;
  }
  const char* name() const override { return "CTransformValues"; }

 private:
  std::shared_ptr<internal::CTransformImpl> impl_;
  nn::Tensor grad_x_;         // [b, d] per-sample gradients (when x requires grad)
  Eigen::VectorXf col_sum_;   // [J] sum_i pi_ij (when psi requires grad)
  std::vector<int64_t> assignment_;
};

}  // namespace

absl::StatusOr<nn::Var> CTransformValues(CTransform& transform, const nn::Var& x, const nn::Var& psi) {
  if (!x.defined() || !psi.defined()) return absl::InvalidArgumentError("x, psi: expected defined Vars");
  if (x.rank() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("x: expected shape [batch, ...] (rank >= 2), got ", nn::ShapeToString(x.shape())));
  }
  if (psi.rank() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("psi: expected shape [J] (rank 1), got ", nn::ShapeToString(psi.shape())));
  }
  const int64_t b = x.dim(0);
  if (b == 0) return absl::InvalidArgumentError("x: expected at least one source point, got 0 rows");
  const int64_t d = x.numel() / b;
  Eigen::Map<const RowMatrixXf> xm(x.value().data(), b, d);
  Eigen::Map<const Eigen::VectorXf> pm(psi.value().data(), psi.numel());
  const bool need_x = nn::AnyRequiresGrad({x});
  const bool need_psi = nn::AnyRequiresGrad({psi});
  CTransformRequest request{.grad_x = need_x, .grad_psi = need_psi};
  CTransformResult r;
  OTGEN_RETURN_IF_ERROR(transform.impl_->Compute(xm, pm, request, &r, /*raw_assignment_sums=*/true));
  nn::Tensor values = nn::Tensor::Empty({b});
  std::memcpy(values.data(), r.values.data(), sizeof(float) * b);
  if (!need_x && !need_psi) return nn::Var::Constant(values);
  nn::Tensor grad_x;
  if (need_x) {
    grad_x = nn::Tensor::Empty({b, d});
    std::memcpy(grad_x.data(), r.grad_x.data(), sizeof(float) * b * d);
  }
  return nn::RecordOp(values, {x, psi},
                      std::make_shared<CTransformNode>(transform.impl_, std::move(grad_x), std::move(r.grad_psi),
                                                       std::move(r.assignment)));
}

absl::StatusOr<nn::Var> SemiDualObjective(CTransform& transform, const nn::Var& x, const nn::Var& psi) {
  OTGEN_ASSIGN_OR_RETURN(nn::Var values, CTransformValues(transform, x, psi));
  const int64_t J = transform.targets().shard_size();
  nn::Tensor nu = nn::Tensor::Empty({J});
  std::memcpy(nu.data(), transform.targets().weights(), sizeof(float) * J);
  return nn::Add(nn::MeanAll(values), nn::SumAll(nn::Mul(nn::Var::Constant(nu), psi)));
}

}  // namespace otgen::ot
