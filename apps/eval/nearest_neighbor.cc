#include "apps/eval/nearest_neighbor.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nn/status_macros.h"
#include "oneapi/dnnl/dnnl.h"

namespace otgen::eval {
namespace {

using Index = Eigen::Index;

absl::Status CheckFinite(const Eigen::Ref<const ot::RowMatrixXf>& m, absl::string_view name) {
  for (Index i = 0; i < m.rows(); ++i) {
    for (Index j = 0; j < m.cols(); ++j) {
      if (!std::isfinite(m(i, j))) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, ": entry (", i, ", ", j, ") is ", m(i, j), "; expected finite values"));
      }
    }
  }
  return absl::OkStatus();
}

// C (m x n, row stride ldc) = A (m x k, row stride lda) * B^T, B n x k with row stride ldb.
void SgemmABt(Index m, Index n, Index k, const float* a, Index lda, const float* b, Index ldb, float* c, Index ldc) {
  const dnnl_status_t status = dnnl_sgemm('N', 'T', m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
  if (status != dnnl_success) {
    // Only reachable with broken strides; there is no status to return from here.
    std::fprintf(stderr, "otgen::eval nearest_neighbor: dnnl_sgemm failed with status %d\n", static_cast<int>(status));
    std::abort();
  }
}

}  // namespace

absl::Status NearestNeighborOptions::Validate() const {
  if (query_block < 1) return absl::InvalidArgumentError(absl::StrCat("query_block: expected >= 1, got ", query_block));
  if (train_block < 1) return absl::InvalidArgumentError(absl::StrCat("train_block: expected >= 1, got ", train_block));
  return absl::OkStatus();
}

absl::StatusOr<NearestNeighborClassifier> NearestNeighborClassifier::Create(ot::RowMatrixXf train,
                                                                            std::vector<int> labels,
                                                                            const NearestNeighborOptions& options) {
  OTGEN_RETURN_IF_ERROR(options.Validate());
  if (train.rows() < 1 || train.cols() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("train: expected at least one row and one column, got ", train.rows(), " x ", train.cols()));
  }
  if (static_cast<Index>(labels.size()) != train.rows()) {
    return absl::InvalidArgumentError(
        absl::StrCat("labels: expected ", train.rows(), " labels (one per training row), got ", labels.size()));
  }
  OTGEN_RETURN_IF_ERROR(CheckFinite(train, "train"));
  NearestNeighborClassifier c;
  c.options_ = options;
  c.train_norms_.resize(train.rows());
  for (Index j = 0; j < train.rows(); ++j) {
    const double n2 = train.row(j).cast<double>().squaredNorm();
    c.train_norms_[j] = static_cast<float>(n2);
    c.max_norm_ = std::max(c.max_norm_, std::sqrt(n2));
  }
  c.train_ = std::move(train);
  c.labels_ = std::move(labels);
  return c;
}

absl::StatusOr<NearestNeighborResult> NearestNeighborClassifier::Predict(
    const Eigen::Ref<const ot::RowMatrixXf>& queries) const {
  if (queries.cols() != train_.cols()) {
    return absl::InvalidArgumentError(absl::StrCat("queries: expected ", train_.cols(), " columns (the training dimension), got ",
                                                   queries.cols()));
  }
  OTGEN_RETURN_IF_ERROR(CheckFinite(queries, "queries"));
  const Index m = queries.rows();
  const Index n = train_.rows();
  const Index d = train_.cols();
  NearestNeighborResult result;
  result.predictions.resize(m);
  result.nearest_index.resize(m);
  result.nearest_squared_distance.resize(m);
  if (m == 0) return result;

  // Contiguous copies of query blocks when the caller's rows are strided.
  const bool contiguous = queries.outerStride() == d || m == 1;
  const Index qb = std::min<Index>(options_.query_block, m);
  const Index tb = std::min<Index>(options_.train_block, n);
  ot::RowMatrixXf tile(qb, tb);
  ot::RowMatrixXf query_copy;
  constexpr double kUnitRoundoff = 1.0 / (1 << 24);
  const double t_max = max_norm_;

  struct Candidate {
    float value;
    Index index;
  };
  std::vector<std::vector<Candidate>> candidates(qb);
  std::vector<float> best(qb);
  std::vector<float> slack(qb);

  for (Index q0 = 0; q0 < m; q0 += qb) {
    const Index rows = std::min(qb, m - q0);
    const float* qdata;
    Index qstride;
    if (contiguous) {
      qdata = queries.data() + q0 * d;
      qstride = d;
    } else {
      query_copy = queries.middleRows(q0, rows);
      qdata = query_copy.data();
      qstride = d;
    }
    for (Index r = 0; r < rows; ++r) {
      candidates[r].clear();
      best[r] = std::numeric_limits<float>::infinity();
      const double qn = queries.row(q0 + r).cast<double>().norm();
      const double error = kUnitRoundoff * (2.0 * t_max * t_max + (2.02 * static_cast<double>(d) + 2.0) * qn * t_max);
      // Two values within 2 * error of each other may be in either order exactly; double it
      // again for safety and round up to a float.
      slack[r] = static_cast<float>(4.0 * error) * (1.0f + 1e-6f) + std::numeric_limits<float>::denorm_min();
    }
    for (Index t0 = 0; t0 < n; t0 += tb) {
      const Index cols = std::min(tb, n - t0);
      SgemmABt(rows, cols, d, qdata, qstride, train_.data() + t0 * d, d, tile.data(), tb);
      const float* tn = train_norms_.data() + t0;
      for (Index r = 0; r < rows; ++r) {
        const float* g = tile.data() + r * tb;
        // Pass 1 (vectorized): the tile's minimum of v_j = ||t_j||^2 - 2 q.t_j. (2 g is exact,
        // so v is computed identically with or without FMA contraction in both passes.)
        float tile_min = std::numeric_limits<float>::infinity();
#pragma omp simd reduction(min : tile_min)
        for (Index j = 0; j < cols; ++j) tile_min = std::min(tile_min, tn[j] - 2.0f * g[j]);
        const float s = slack[r];
        if (!(tile_min <= best[r] + s)) continue;  // nothing near the best in this tile
        std::vector<Candidate>& cand = candidates[r];
        if (tile_min < best[r]) {
          best[r] = tile_min;
          const float limit = best[r] + s;
          cand.erase(std::remove_if(cand.begin(), cand.end(), [&](const Candidate& c) { return c.value > limit; }),
                     cand.end());
        }
        // Pass 2: collect the rows within the slack of the best value.
        const float limit = best[r] + s;
        for (Index j = 0; j < cols; ++j) {
          const float v = tn[j] - 2.0f * g[j];
          if (v <= limit) cand.push_back({v, t0 + j});
        }
      }
    }
    for (Index r = 0; r < rows; ++r) {
      const float limit = best[r] + slack[r];
      double best_exact = std::numeric_limits<double>::infinity();
      Index best_index = -1;
      for (const Candidate& c : candidates[r]) {
        if (c.value > limit) continue;
        double s = 0.0;
        for (Index k = 0; k < d; ++k) {
          const double diff = static_cast<double>(queries(q0 + r, k)) - static_cast<double>(train_(c.index, k));
          s += diff * diff;
        }
        if (s < best_exact || (s == best_exact && c.index < best_index)) {
          best_exact = s;
          best_index = c.index;
        }
      }
      if (best_index < 0) {
        // Only when float overflow (|t|^2 beyond 3.4e38) made every approximate value NaN or
        // infinite: fall back to an exact scan.
        for (Index j = 0; j < n; ++j) {
          double s = 0.0;
          for (Index k = 0; k < d; ++k) {
            const double diff = static_cast<double>(queries(q0 + r, k)) - static_cast<double>(train_(j, k));
            s += diff * diff;
          }
          if (best_index < 0 || s < best_exact) {
            best_exact = s;
            best_index = j;
          }
        }
      }
      result.nearest_index[q0 + r] = best_index;
      result.nearest_squared_distance[q0 + r] = best_exact;
      result.predictions[q0 + r] = labels_[best_index];
    }
  }
  return result;
}

absl::StatusOr<NearestNeighborResult> NearestNeighborClassifier::Evaluate(
    const Eigen::Ref<const ot::RowMatrixXf>& queries, absl::Span<const int> labels) const {
  if (static_cast<Index>(labels.size()) != queries.rows()) {
    return absl::InvalidArgumentError(
        absl::StrCat("labels: expected ", queries.rows(), " labels (one per query), got ", labels.size()));
  }
  if (queries.rows() == 0) return absl::InvalidArgumentError("queries: expected at least one query to evaluate");
  OTGEN_ASSIGN_OR_RETURN(NearestNeighborResult r, Predict(queries));
  for (size_t i = 0; i < labels.size(); ++i) r.correct += r.predictions[i] == labels[i] ? 1 : 0;
  r.accuracy = static_cast<double>(r.correct) / static_cast<double>(labels.size());
  return r;
}

}  // namespace otgen::eval
