#include "ot/stochastic_semi_dual.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nn/status_macros.h"
#include "ot/dense_kernels.h"
#include "ot/log_sum_exp.h"
#include "ot/target_set.h"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace otgen::ot {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Full-matrix evaluations (phi, F, plans) of fewer entries run on the calling thread.
constexpr double kMinParallelEntries = 65536.0;

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int MaxThreads() {
#if defined(_OPENMP)
  return std::max(1, omp_get_max_threads());
#else
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

// min over j of key_j = c[j] - u[j] - g_sum * b[j] + excluded[j] (excluded: 0 or +inf) and its
// smallest index; -1 and +inf if every key is +inf. The lambda = 0 c-transform of one row at
// psi = u + g_sum * b.
void HardRowArgmin(const float* c, const double* u, const double* b, double g_sum,
                   const double* excluded, int64_t m, double* min_out, int* arg_out) {
  double best = kInf;
  int arg = -1;
  int64_t j = 0;
#ifdef OTGEN_OT_DENSE_KERNELS_AVX512
  if (m >= 16) {
    namespace simd = internal::simd;
    const __m512d vg = _mm512_set1_pd(g_sum);
    __m512d b0 = _mm512_set1_pd(kInf), b1 = b0;
    __m256i x0 = _mm256_set1_epi32(0), x1 = x0;
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i step8 = _mm256_set1_epi32(8), step16 = _mm256_set1_epi32(16);
    for (; j + 16 <= m; j += 16) {
      __m512d k0 = _mm512_sub_pd(simd::Load8(c + j), _mm512_loadu_pd(u + j));
      __m512d k1 = _mm512_sub_pd(simd::Load8(c + j + 8), _mm512_loadu_pd(u + j + 8));
      k0 = _mm512_fnmadd_pd(vg, _mm512_loadu_pd(b + j), k0);
      k1 = _mm512_fnmadd_pd(vg, _mm512_loadu_pd(b + j + 8), k1);
      k0 = _mm512_add_pd(k0, _mm512_loadu_pd(excluded + j));
      k1 = _mm512_add_pd(k1, _mm512_loadu_pd(excluded + j + 8));
      const __mmask8 g0 = _mm512_cmp_pd_mask(k0, b0, _CMP_LT_OQ);
      const __mmask8 g1 = _mm512_cmp_pd_mask(k1, b1, _CMP_LT_OQ);
      b0 = _mm512_mask_blend_pd(g0, b0, k0);
      b1 = _mm512_mask_blend_pd(g1, b1, k1);
      x0 = _mm256_mask_blend_epi32(g0, x0, idx);
      x1 = _mm256_mask_blend_epi32(g1, x1, _mm256_add_epi32(idx, step8));
      idx = _mm256_add_epi32(idx, step16);
    }
    simd::MergeArgmin(&b0, &x0, b1, x1);
    simd::ReduceArgmin(b0, x0, &best, &arg);
    if (!(best < kInf)) arg = -1;
  }
#endif
  for (; j < m; ++j) {
    // Same operations as the vector lanes: (c - u), fused - g_sum * b, + excluded.
    const double key = std::fma(-g_sum, b[j], static_cast<double>(c[j]) - u[j]) + excluded[j];
    if (key < best) {
      best = key;
      arg = static_cast<int>(j);
    }
  }
  *min_out = best;
  *arg_out = arg;
}

// The lambda > 0 update of one step, with D_j = b_j - pi_scale * pi_j:
//   u_j += g D_j,  w_j += hg D_j (kAverage),  bias_j = u_j / lambda + log b_j (as float).
template <bool kAverage>
void SoftUpdate(double* u, double* w, float* bias, const float* pi, const double* b,
                const double* log_b, int64_t m, double g, double hg, double pi_scale,
                double inv_lambda) {
  int64_t j = 0;
#ifdef OTGEN_OT_DENSE_KERNELS_AVX512
  {
    namespace simd = internal::simd;
    const __m512d vg = _mm512_set1_pd(g), vhg = _mm512_set1_pd(hg);
    const __m512d vs = _mm512_set1_pd(pi_scale), vil = _mm512_set1_pd(inv_lambda);
    for (; j + 8 <= m; j += 8) {
      const __m512d d = _mm512_fnmadd_pd(vs, simd::Load8(pi + j), _mm512_loadu_pd(b + j));
      const __m512d uu = _mm512_fmadd_pd(vg, d, _mm512_loadu_pd(u + j));
      _mm512_storeu_pd(u + j, uu);
      if constexpr (kAverage) {
        _mm512_storeu_pd(w + j, _mm512_fmadd_pd(vhg, d, _mm512_loadu_pd(w + j)));
      }
      const __m512d e = _mm512_fmadd_pd(uu, vil, _mm512_loadu_pd(log_b + j));
      _mm256_storeu_ps(bias + j, _mm512_maskz_cvtpd_ps(simd::kAll8, e));
    }
  }
#endif
  for (; j < m; ++j) {
    const double d = std::fma(-pi_scale, static_cast<double>(pi[j]), b[j]);
    u[j] = std::fma(g, d, u[j]);
    if constexpr (kAverage) w[j] = std::fma(hg, d, w[j]);
    bias[j] = static_cast<float>(std::fma(u[j], inv_lambda, log_b[j]));
  }
}

// bias_j = psi_j / lambda + log b_j as float (the table the log-sum-exp kernels read).
void FillBias(const Eigen::VectorXd& psi, const Eigen::VectorXd& log_b, double inv_lambda,
              Eigen::VectorXf* bias) {
  for (Eigen::Index j = 0; j < psi.size(); ++j) {
    (*bias)[j] = static_cast<float>(std::fma(psi[j], inv_lambda, log_b[j]));
  }
}

// psi^{c,lambda} of one row (lambda > 0) from the bias table; the weights pi (m floats) if
// `weights` is not null.
double SoftRow(const float* bias, const float* row, int64_t m, double lambda, float inv_lambda,
               float* weights) {
  const LogSumExpAccumulator acc = RowLogSumExp(bias, row, m, inv_lambda);
  if (weights != nullptr) ExpAffineRow(bias, row, m, -acc.Log(), inv_lambda, weights);
  return -lambda * (static_cast<double>(acc.max) + std::log(static_cast<double>(acc.sum)));
}

absl::Status CheckPsi(const Eigen::Ref<const Eigen::VectorXf>& psi, int64_t m) {
  if (psi.size() != m) {
    return absl::InvalidArgumentError(
        absl::StrCat("psi: expected ", m, " entries (one per target), got ", psi.size()));
  }
  for (Eigen::Index j = 0; j < psi.size(); ++j) {
    if (!std::isfinite(psi[j])) {
      return absl::InvalidArgumentError(
          absl::StrCat("psi: entry ", j, " is ", psi[j], "; expected finite values"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckCostMatrix(const Eigen::Ref<const RowMatrixXf>& c) {
  if (c.rows() < 1 || c.cols() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cost_matrix: expected at least one row (source) and one column (target), got ", c.rows(),
        " x ", c.cols()));
  }
  if (c.rows() > std::numeric_limits<int32_t>::max() ||
      c.cols() > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat("cost_matrix: expected fewer than 2^31 rows and columns, got ",
                                                   c.rows(), " x ", c.cols()));
  }
  for (Eigen::Index i = 0; i < c.rows(); ++i) {
    for (Eigen::Index j = 0; j < c.cols(); ++j) {
      if (!std::isfinite(c(i, j))) {
        return absl::InvalidArgumentError(absl::StrCat("cost_matrix: entry (", i, ", ", j, ") is ",
                                                       c(i, j), "; expected finite costs"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status StochasticSemiDualOptions::Validate() const {
  if (!(lambda >= 0.0f) || !std::isfinite(lambda)) {
    return absl::InvalidArgumentError(
        absl::StrCat("StochasticSemiDualOptions.lambda: expected a finite value >= 0, got ", lambda));
  }
  if (method != StochasticSemiDualMethod::kAsgd && method != StochasticSemiDualMethod::kSgd) {
    return absl::InvalidArgumentError(absl::StrCat(
        "StochasticSemiDualOptions.method: expected kAsgd or kSgd, got ", static_cast<int>(method)));
  }
  if (!(gamma > 0.0f) || !std::isfinite(gamma)) {
    return absl::InvalidArgumentError(
        absl::StrCat("StochasticSemiDualOptions.gamma: expected a finite value > 0, got ", gamma));
  }
  if (!(alpha > 0.0f && alpha <= 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("StochasticSemiDualOptions.alpha: expected a value in (0, 1], got ", alpha));
  }
  if (iterations <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("StochasticSemiDualOptions.iterations: expected a value > 0, got ", iterations));
  }
  if (batch_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("StochasticSemiDualOptions.batch_size: expected a value > 0, got ", batch_size));
  }
  if (check_every < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "StochasticSemiDualOptions.check_every: expected a value >= 0 (0: no checks), got ", check_every));
  }
  return absl::OkStatus();
}

std::string StochasticSemiDualResult::Summary() const {
  std::string s = absl::StrFormat("stochastic semi-dual: %d steps (run %d), F=%.8g", iterations,
                                  run_steps, objective);
  if (marginal_error >= 0.0) absl::StrAppendFormat(&s, ", marginal_error=%.3e", marginal_error);
  if (iterations > 0) {
    absl::StrAppendFormat(&s, ", %.3g us/step", 1e6 * step_seconds / static_cast<double>(iterations));
  }
  return s;
}

absl::StatusOr<std::unique_ptr<StochasticSemiDualSolver>> StochasticSemiDualSolver::Create(
    const Eigen::Ref<const RowMatrixXf>& cost_matrix,
    const Eigen::Ref<const Eigen::VectorXf>& source_weights,
    const Eigen::Ref<const Eigen::VectorXf>& target_weights,
    const StochasticSemiDualOptions& options) {
  OTGEN_RETURN_IF_ERROR(options.Validate());
  OTGEN_RETURN_IF_ERROR(CheckCostMatrix(cost_matrix));
  OTGEN_RETURN_IF_ERROR(ValidateProbabilityWeights(source_weights, cost_matrix.rows(), "source_weights"));
  OTGEN_RETURN_IF_ERROR(ValidateProbabilityWeights(target_weights, cost_matrix.cols(), "target_weights"));
  return std::unique_ptr<StochasticSemiDualSolver>(
      new StochasticSemiDualSolver(RowMatrixXf(cost_matrix), source_weights, target_weights, options));
}

absl::StatusOr<std::unique_ptr<StochasticSemiDualSolver>> StochasticSemiDualSolver::CreateFromPoints(
    const Eigen::Ref<const RowMatrixXf>& source_points,
    const Eigen::Ref<const Eigen::VectorXf>& source_weights,
    const Eigen::Ref<const RowMatrixXf>& target_points,
    const Eigen::Ref<const Eigen::VectorXf>& target_weights, const Cost& cost,
    const StochasticSemiDualOptions& options) {
  OTGEN_RETURN_IF_ERROR(options.Validate());
  if (absl::Status s = cost.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("cost: ", s.message()));
  }
  OTGEN_RETURN_IF_ERROR(ValidatePoints(cost, source_points, "source_points"));
  OTGEN_RETURN_IF_ERROR(ValidatePoints(cost, target_points, "target_points"));
  if (source_points.cols() != target_points.cols()) {
    return absl::InvalidArgumentError(absl::StrCat("target_points: expected ", source_points.cols(),
                                                   " columns (the dimension of source_points), got ",
                                                   target_points.cols()));
  }
  OTGEN_RETURN_IF_ERROR(ValidateProbabilityWeights(source_weights, source_points.rows(), "source_weights"));
  OTGEN_RETURN_IF_ERROR(ValidateProbabilityWeights(target_weights, target_points.rows(), "target_weights"));
  // The sgemm form ||x||^2 + ||y||^2 - 2 <x, y> of translation-invariant costs loses precision
  // far from the origin: evaluate on copies centred at the mean of all points.
  const bool gemm_distance =
      (cost.kind == CostKind::kSquaredEuclidean || cost.kind == CostKind::kLp) &&
      source_points.cols() > kCostDirectMaxDim;
  RowMatrixXf c;
  if (gemm_distance) {
    const Eigen::RowVectorXd sum = source_points.cast<double>().colwise().sum() +
                                   target_points.cast<double>().colwise().sum();
    const Eigen::RowVectorXf center =
        (sum / static_cast<double>(source_points.rows() + target_points.rows())).cast<float>();
    const RowMatrixXf xc = source_points.rowwise() - center;
    const RowMatrixXf yc = target_points.rowwise() - center;
    c = CostMatrix(cost, xc, yc);
  } else {
    c = CostMatrix(cost, source_points, target_points);
  }
  OTGEN_RETURN_IF_ERROR(CheckCostMatrix(c));
  return std::unique_ptr<StochasticSemiDualSolver>(
      new StochasticSemiDualSolver(std::move(c), source_weights, target_weights, options));
}

StochasticSemiDualSolver::StochasticSemiDualSolver(RowMatrixXf cost,
                                                   const Eigen::Ref<const Eigen::VectorXf>& a,
                                                   const Eigen::Ref<const Eigen::VectorXf>& b,
                                                   const StochasticSemiDualOptions& options)
    : cost_(std::move(cost)), n_(cost_.rows()), m_(cost_.cols()), options_(options), rng_(options.seed) {
  a_ = a.cast<double>();
  a_ /= a_.sum();
  b_ = b.cast<double>();
  b_ /= b_.sum();
  log_b_.resize(m_);
  excluded_.resize(m_);
  for (int64_t j = 0; j < m_; ++j) {
    log_b_[j] = b_[j] > 0.0 ? std::log(b_[j]) : -kInf;
    excluded_[j] = b_[j] > 0.0 ? 0.0 : kInf;
  }

  // Walker's alias table (Vose's construction) for i ~ a.
  uniform_sources_ = (a_.array() == a_[0]).all();
  if (!uniform_sources_) {
    alias_prob_.resize(n_);
    alias_index_.assign(n_, 0);
    std::vector<int32_t> small, large;
    Eigen::VectorXd scaled = a_ * static_cast<double>(n_);
    for (int64_t i = 0; i < n_; ++i) {
      (scaled[i] < 1.0 ? small : large).push_back(static_cast<int32_t>(i));
    }
    while (!small.empty() && !large.empty()) {
      const int32_t s = small.back(), l = large.back();
      small.pop_back();
      alias_prob_[s] = scaled[s];
      alias_index_[s] = l;
      scaled[l] = (scaled[l] + scaled[s]) - 1.0;
      if (scaled[l] < 1.0) {
        large.pop_back();
        small.push_back(l);
      }
    }
    // Leftovers are 1 up to rounding.
    for (const std::vector<int32_t>* rest : {&large, &small}) {
      for (int32_t r : *rest) {
        alias_prob_[r] = 1.0;
        alias_index_[r] = r;
      }
    }
  }

  u_ = Eigen::VectorXd::Zero(m_);
  w_ = Eigen::VectorXd::Zero(m_);
  bias_.resize(m_);
  weights_.resize(m_);
  weight_sum_.resize(m_);
  argmins_.assign(options_.batch_size, 0);
  ResetRun(Eigen::VectorXd::Zero(m_));
}

void StochasticSemiDualSolver::ResetRun(const Eigen::VectorXd& psi) {
  u_ = psi;
  w_.setZero();
  g_sum_ = 0.0;
  h_sum_ = 0.0;
  k_ = 0;
  if (options_.lambda > 0.0f) FillBias(u_, log_b_, 1.0 / static_cast<double>(options_.lambda), &bias_);
}

int64_t StochasticSemiDualSolver::SampleSource() {
  const int64_t i = static_cast<int64_t>(rng_.UniformInt(static_cast<uint64_t>(n_)));
  if (uniform_sources_) return i;
  return rng_.UniformDouble() < alias_prob_[i] ? i : alias_index_[i];
}

void StochasticSemiDualSolver::Step() {
  if (options_.lambda > 0.0f) {
    StepSoft();
  } else {
    StepHard();
  }
}

void StochasticSemiDualSolver::StepSoft() {
  ++k_;
  ++total_steps_;
  const double kd = static_cast<double>(k_);
  const double g = options_.alpha == 0.5f ? options_.gamma / std::sqrt(kd)
                                          : options_.gamma * std::pow(kd, -static_cast<double>(options_.alpha));
  const double hg = (kd - 1.0) * g;
  const double lambda = options_.lambda;
  const float inv_lambda_f = static_cast<float>(1.0 / lambda);
  const int batch = options_.batch_size;
  const float* pi = weights_.data();
  if (batch == 1) {
    const int64_t i = SampleSource();
    SoftRow(bias_.data(), cost_.data() + i * m_, m_, lambda, inv_lambda_f, weights_.data());
  } else {
    weight_sum_.setZero();
    for (int s = 0; s < batch; ++s) {
      const int64_t i = SampleSource();
      SoftRow(bias_.data(), cost_.data() + i * m_, m_, lambda, inv_lambda_f, weights_.data());
      weight_sum_ += weights_;
    }
    pi = weight_sum_.data();
  }
  const double pi_scale = 1.0 / static_cast<double>(batch);
  if (options_.method == StochasticSemiDualMethod::kAsgd) {
    SoftUpdate<true>(u_.data(), w_.data(), bias_.data(), pi, b_.data(), log_b_.data(), m_, g, hg,
                     pi_scale, 1.0 / lambda);
  } else {
    SoftUpdate<false>(u_.data(), w_.data(), bias_.data(), pi, b_.data(), log_b_.data(), m_, g, hg,
                      pi_scale, 1.0 / lambda);
  }
}

void StochasticSemiDualSolver::StepHard() {
  ++k_;
  ++total_steps_;
  const double kd = static_cast<double>(k_);
  const double g = options_.alpha == 0.5f ? options_.gamma / std::sqrt(kd)
                                          : options_.gamma * std::pow(kd, -static_cast<double>(options_.alpha));
  const double hg = (kd - 1.0) * g;
  const int batch = options_.batch_size;
  // Argmins at the iterate psi~_{k-1} = u + g_sum b, then the update.
  for (int s = 0; s < batch; ++s) {
    const int64_t i = SampleSource();
    double min = 0.0;
    int arg = 0;
    HardRowArgmin(cost_.data() + i * m_, u_.data(), b_.data(), g_sum_, excluded_.data(), m_, &min, &arg);
    argmins_[s] = arg;
  }
  const double step = g / static_cast<double>(batch);
  const double average_step = hg / static_cast<double>(batch);
  const bool average = options_.method == StochasticSemiDualMethod::kAsgd;
  // D = b - (1/B) sum_s e_{argmin_s}: the b part goes to the scalars, the rest to u and w.
  g_sum_ += g;
  if (average) h_sum_ += hg;
  for (int s = 0; s < batch; ++s) {
    u_[argmins_[s]] -= step;
    if (average) w_[argmins_[s]] -= average_step;
  }
}

Eigen::VectorXd StochasticSemiDualSolver::psi_iterate_double() const { return u_ + g_sum_ * b_; }

Eigen::VectorXd StochasticSemiDualSolver::psi_double() const {
  if (options_.method == StochasticSemiDualMethod::kSgd || k_ == 0) return psi_iterate_double();
  // psi_k = psi~_k - V_k / k with psi~ = u + g_sum b and V = h_sum b + w.
  const double inv_k = 1.0 / static_cast<double>(k_);
  return (u_ - inv_k * w_) + (g_sum_ - h_sum_ * inv_k) * b_;
}

Eigen::VectorXf StochasticSemiDualSolver::psi() const { return psi_double().cast<float>(); }
Eigen::VectorXf StochasticSemiDualSolver::psi_iterate() const { return psi_iterate_double().cast<float>(); }

absl::Status StochasticSemiDualSolver::SetPsi(const Eigen::Ref<const Eigen::VectorXf>& psi) {
  OTGEN_RETURN_IF_ERROR(CheckPsi(psi, m_));
  ResetRun(psi.cast<double>());
  return absl::OkStatus();
}

void StochasticSemiDualSolver::RestartAveraging() { ResetRun(psi_double()); }

void StochasticSemiDualSolver::Evaluate(const Eigen::VectorXd& psi, Eigen::VectorXd* phi,
                                        RowMatrixXf* plan, Eigen::VectorXd* column_sums) const {
  const bool soft = options_.lambda > 0.0f;
  const double lambda = options_.lambda;
  const float inv_lambda_f = soft ? static_cast<float>(1.0 / lambda) : 0.0f;
  Eigen::VectorXf bias;
  if (soft) {
    bias.resize(m_);
    FillBias(psi, log_b_, 1.0 / lambda, &bias);
  }
  phi->resize(n_);
  if (plan != nullptr) plan->setZero(n_, m_);
  const bool parallel = static_cast<double>(n_) * static_cast<double>(m_) >= kMinParallelEntries;
  const int max_threads = parallel ? MaxThreads() : 1;
  // Per-thread column sums, merged in thread order.
  Eigen::MatrixXd partial;
  if (column_sums != nullptr) partial.setZero(m_, max_threads);

#pragma omp parallel num_threads(max_threads) if (parallel)
  {
    const int tid = ThreadId();
    Eigen::VectorXf row_weights;
    if (soft && column_sums != nullptr && plan == nullptr) row_weights.resize(m_);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n_; ++i) {
      const float* row = cost_.data() + i * m_;
      if (soft) {
        float* out = nullptr;
        if (plan != nullptr) {
          out = plan->data() + i * m_;
        } else if (column_sums != nullptr) {
          out = row_weights.data();
        }
        (*phi)[i] = SoftRow(bias.data(), row, m_, lambda, inv_lambda_f, out);
        if (out != nullptr) {
          const double ai = a_[i];
          if (plan != nullptr) {
            Eigen::Map<Eigen::VectorXf>(out, m_) *= static_cast<float>(ai);
            if (column_sums != nullptr) {
              partial.col(tid) += Eigen::Map<const Eigen::VectorXf>(out, m_).cast<double>();
            }
          } else {
            partial.col(tid) += ai * Eigen::Map<const Eigen::VectorXf>(out, m_).cast<double>();
          }
        }
      } else {
        double min = 0.0;
        int arg = 0;
        HardRowArgmin(row, psi.data(), b_.data(), 0.0, excluded_.data(), m_, &min, &arg);
        (*phi)[i] = min;
        if (plan != nullptr) (*plan)(i, arg) = static_cast<float>(a_[i]);
        if (column_sums != nullptr) partial(arg, tid) += a_[i];
      }
    }
  }
  if (column_sums != nullptr) *column_sums = partial.rowwise().sum();
}

double StochasticSemiDualSolver::Objective(const Eigen::VectorXd& psi, const Eigen::VectorXd& phi) const {
  double f = 0.0;
  for (int64_t i = 0; i < n_; ++i) {
    if (a_[i] > 0.0) f += a_[i] * phi[i];
  }
  for (int64_t j = 0; j < m_; ++j) {
    if (b_[j] > 0.0) f += b_[j] * psi[j];
  }
  return f;
}

double StochasticSemiDualSolver::MarginalError(const Eigen::VectorXd& column_sums) const {
  return (column_sums - b_).lpNorm<1>();
}

absl::StatusOr<StochasticSemiDualResult> StochasticSemiDualSolver::Solve() {
  return Solve(options_.iterations);
}

absl::StatusOr<StochasticSemiDualResult> StochasticSemiDualSolver::Solve(int64_t iterations) {
  if (iterations <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("iterations: expected a value > 0, got ", iterations));
  }
  StochasticSemiDualResult result;
  Eigen::VectorXd phi;
  double check_seconds = 0.0;
  const auto start = std::chrono::steady_clock::now();
  for (int64_t t = 1; t <= iterations; ++t) {
    Step();
    if (options_.check_every > 0 && t % options_.check_every == 0) {
      const auto check_start = std::chrono::steady_clock::now();
      const Eigen::VectorXd estimate = psi_double();
      Evaluate(estimate, &phi, nullptr, nullptr);
      result.history.push_back({k_, Objective(estimate, phi)});
      check_seconds += Seconds(check_start);
    }
  }
  result.step_seconds = Seconds(start) - check_seconds;
  result.iterations = iterations;
  result.run_steps = k_;

  const auto eval_start = std::chrono::steady_clock::now();
  const Eigen::VectorXd estimate = psi_double();
  const bool want_error = options_.return_plan || options_.compute_marginal_error;
  Eigen::VectorXd column_sums;
  Evaluate(estimate, &phi, options_.return_plan ? &result.plan : nullptr,
           want_error ? &column_sums : nullptr);
  result.psi = estimate.cast<float>();
  result.phi = phi.cast<float>();
  result.objective = Objective(estimate, phi);
  if (want_error) result.marginal_error = MarginalError(column_sums);
  result.evaluation_seconds = Seconds(eval_start);
  return result;
}

absl::StatusOr<double> StochasticSemiDualSolver::CTransformRow(int64_t i,
                                                               const Eigen::Ref<const Eigen::VectorXf>& psi,
                                                               Eigen::VectorXf* weights) const {
  if (i < 0 || i >= n_) {
    return absl::InvalidArgumentError(absl::StrCat("i: expected a source row in [0, ", n_, "), got ", i));
  }
  OTGEN_RETURN_IF_ERROR(CheckPsi(psi, m_));
  const Eigen::VectorXd p = psi.cast<double>();
  const float* row = cost_.data() + i * m_;
  if (options_.lambda > 0.0f) {
    const double lambda = options_.lambda;
    Eigen::VectorXf bias(m_);
    FillBias(p, log_b_, 1.0 / lambda, &bias);
    if (weights != nullptr) weights->resize(m_);
    return SoftRow(bias.data(), row, m_, lambda, static_cast<float>(1.0 / lambda),
                   weights != nullptr ? weights->data() : nullptr);
  }
  double min = 0.0;
  int arg = 0;
  HardRowArgmin(row, p.data(), b_.data(), 0.0, excluded_.data(), m_, &min, &arg);
  if (weights != nullptr) {
    weights->setZero(m_);
    (*weights)[arg] = 1.0f;
  }
  return min;
}

absl::StatusOr<double> StochasticSemiDualSolver::SemiDual(const Eigen::Ref<const Eigen::VectorXf>& psi,
                                                          Eigen::VectorXf* phi) const {
  OTGEN_RETURN_IF_ERROR(CheckPsi(psi, m_));
  const Eigen::VectorXd p = psi.cast<double>();
  Eigen::VectorXd phi_d;
  Evaluate(p, &phi_d, nullptr, nullptr);
  if (phi != nullptr) *phi = phi_d.cast<float>();
  return Objective(p, phi_d);
}

absl::StatusOr<RowMatrixXf> StochasticSemiDualSolver::TransportPlan(
    const Eigen::Ref<const Eigen::VectorXf>& psi, double* marginal_error) const {
  OTGEN_RETURN_IF_ERROR(CheckPsi(psi, m_));
  const Eigen::VectorXd p = psi.cast<double>();
  Eigen::VectorXd phi, column_sums;
  RowMatrixXf plan;
  Evaluate(p, &phi, &plan, marginal_error != nullptr ? &column_sums : nullptr);
  if (marginal_error != nullptr) *marginal_error = MarginalError(column_sums);
  return plan;
}

}  // namespace otgen::ot
