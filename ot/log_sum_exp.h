// Vectorized exp and log-sum-exp kernels for the log-domain OT solvers (Sinkhorn,
// regularized c-transforms).
//
// The regularized c-transform / soft-min of seed 000 eqs. 11-12 over a discrete measure
// nu = sum_j b_j delta_{y_j},
//
//   psi^{c,lambda}(x_i) = softmin_j (c(x_i, y_j) - psi_j)
//                       = -lambda log sum_j b_j exp((psi_j - C_ij) / lambda),
//
// is a log-sum-exp of v_ij = bias_j - scale * C_ij with bias_j = psi_j / lambda + log b_j and
// scale = 1 / lambda. Sinkhorn's f-update is this over the rows of C and its g-update the same
// over the columns. The kernels compute it stably as (max, sum) pairs,
//
//   log sum_j exp(v_j) = M + log sum_j exp(v_j - M),   M = max_j v_j,
//
// and can fold in blocks one after another (an "online" log-sum-exp: when a block raises the
// maximum, the running sum is rescaled by exp(M_old - M_new)), so a solver can stream the
// costs in tiles. Zero weights (log b_j = -inf) contribute exactly 0.
//
// exp is a degree-6 polynomial on [-ln2/2, ln2/2] after range reduction, vectorized with
// AVX-512 when the build targets it (-march=native on this project's machines) and a scalar
// std::exp fallback otherwise. Relative error <= 3e-7 on [-87.3, 88.7]; arguments below
// -87.3 give exactly 0 (no denormals), above 88.7 +inf.
//
// Layout: C is row-major with a leading dimension (row stride) ldc >= number of columns.
// The kernels are single-threaded: callers split rows or columns across threads.
//
// Usage (a row soft-min, f_i = -eps log sum_j b_j exp((g_j - C_ij) / eps)):
//   for (int j = 0; j < m; ++j) bias[j] = g[j] / eps + std::log(b[j]);
//   otgen::ot::LogSumExpAccumulator acc =
//       otgen::ot::RowLogSumExp(bias.data(), c + i * ldc, m, 1.0f / eps);
//   f[i] = -eps * acc.Log();
#ifndef OTGEN_OT_LOG_SUM_EXP_H_
#define OTGEN_OT_LOG_SUM_EXP_H_

#include <cfloat>
#include <cmath>
#include <cstdint>

namespace otgen::ot {

// A partial log-sum-exp: represents log(sum) + max = log sum_k exp(v_k) over the values folded
// in so far. The empty accumulator has max = -FLT_MAX (not -inf, so that rescaling
// exp(max_old - max_new) never sees -inf - -inf) and sum = 0.
struct LogSumExpAccumulator {
  float max = -FLT_MAX;
  float sum = 0.0f;

  // log sum_k exp(v_k); -inf if nothing (or only -inf values) was folded in.
  float Log() const { return max + std::log(sum); }
  // Folds another accumulator in (e.g. one thread's partial result into another's).
  void Merge(const LogSumExpAccumulator& other);
};

// x[k] = exp(x[k]) for k < n.
void ExpInPlace(float* x, int64_t n);

// out[j] = exp(bias[j] + shift - scale * c[j]) for j < n (a row of a transport plan:
// P_ij = exp(f_i/eps + log a_i + g_j/eps + log b_j - C_ij/eps)). `out` may alias `c`.
void ExpAffineRow(const float* bias, const float* c, int64_t n, float shift, float scale,
                  float* out);

// The (max, sum) of v_j = bias[j] - scale * c[j], j < n, folded into `acc` (pass a default
// accumulator for a fresh row).
void AccumulateRowLogSumExp(const float* bias, const float* c, int64_t n, float scale,
                            LogSumExpAccumulator* acc);

// Convenience: the (max, sum) of one row from scratch.
inline LogSumExpAccumulator RowLogSumExp(const float* bias, const float* c, int64_t n,
                                         float scale) {
  LogSumExpAccumulator acc;
  AccumulateRowLogSumExp(bias, c, n, scale, &acc);
  return acc;
}

// Column log-sum-exp: folds v_ij = row_bias[i] - scale * c[i * ldc + j], i < rows, into the
// column accumulators (col_max[j], col_sum[j]), j < cols (initialize them to -FLT_MAX and 0).
// Processes rows in blocks of 16 so that the rescaling costs one exp per column per block.
void AccumulateColumnLogSumExp(const float* c, int64_t ldc, int64_t rows, int64_t cols,
                               const float* row_bias, float scale, float* col_max, float* col_sum);

// Merges `count` partial column accumulators (e.g. one per row chunk of a parallel sweep),
// in order: for j < cols, (out_max[j], out_sum[j]) = merge over k of (maxes[k][j], sums[k][j]).
// The output may alias the first input.
void MergeColumnLogSumExp(const float* const* maxes, const float* const* sums, int count,
                          int64_t cols, float* out_max, float* out_sum);

namespace internal {

// True when the kernels above use the AVX-512 implementation.
bool LogSumExpUsesAvx512();

// The portable scalar implementations (what the public functions use without AVX-512); kept
// callable so tests can compare both paths on an AVX-512 machine.
void ExpInPlaceGeneric(float* x, int64_t n);
void ExpAffineRowGeneric(const float* bias, const float* c, int64_t n, float shift, float scale,
                         float* out);
void AccumulateRowLogSumExpGeneric(const float* bias, const float* c, int64_t n, float scale,
                                   LogSumExpAccumulator* acc);
void AccumulateColumnLogSumExpGeneric(const float* c, int64_t ldc, int64_t rows, int64_t cols,
                                      const float* row_bias, float scale, float* col_max,
                                      float* col_sum);
void MergeColumnLogSumExpGeneric(const float* const* maxes, const float* const* sums, int count,
                                 int64_t cols, float* out_max, float* out_sum);

}  // namespace internal
}  // namespace otgen::ot

#endif  // OTGEN_OT_LOG_SUM_EXP_H_
