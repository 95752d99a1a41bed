#include "ot/assignment.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "ot/dense_kernels.h"

namespace otgen::ot {

namespace internal {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Jonker-Volgenant state: x[i] = column of row i (-1 if free), y[j] = row of column j (-1 if
// free), v = column potentials. Invariant from the end of the column reduction on: for every
// assigned row i, C[i, x[i]] - v[x[i]] = min_j (C[i, j] - v[j]) (its implicit u_i).
template <typename T>
class LapSolver {
 public:
  LapSolver(const T* cost, int64_t stride, int n)
      : cost_(cost), stride_(stride), n_(n), x_(n, -1), y_(n, -1), v_(n, 0.0) {}

  LapSolution Solve(bool jv_initialization) {
    std::vector<int> free_rows;
    if (jv_initialization) {
      free_rows = ColumnReduction();
      AugmentingRowReduction(free_rows);
      AugmentingRowReduction(free_rows);
    } else {
      free_rows.resize(n_);
      for (int i = 0; i < n_; ++i) free_rows[i] = i;
    }
    AugmentAll(free_rows);
    return Finish();
  }

 private:
  const T* Row(int i) const { return cost_ + static_cast<int64_t>(i) * stride_; }

  // Column reduction: v_j = min_i C_ij; column j goes to its argmin row when that row is still
  // free. Then reduction transfer for rows that got a column: lower v of that column by the
  // gap to the row's second best reduced cost. Returns the free rows.
  std::vector<int> ColumnReduction() {
    std::vector<int> argrow(n_, 0);
    std::fill(v_.begin(), v_.end(), kInf);
    for (int i = 0; i < n_; ++i) simd::ColumnMinUpdate(Row(i), i, n_, v_.data(), argrow.data());
    // Scan columns in reverse (as Jonker-Volgenant do) and give each its argmin row if free.
    std::vector<uint8_t> matches(n_, 0);
    for (int j = n_ - 1; j >= 0; --j) {
      const int i = argrow[j];
      if (matches[i] < 2) ++matches[i];
      if (x_[i] < 0) {
        x_[i] = j;
        y_[j] = i;
      }
    }
    std::vector<int> free_rows;
    for (int i = 0; i < n_; ++i) {
      if (x_[i] < 0) {
        free_rows.push_back(i);
      } else if (matches[i] == 1) {
        // Reduction transfer: row i is the argmin of exactly its own column j1.
        const int j1 = x_[i];
        const double mu = simd::RowMinExcept(Row(i), v_.data(), n_, j1);
        if (mu < kInf) v_[j1] -= mu;
      }
    }
    return free_rows;
  }

  // One pass of augmenting row reduction over `free_rows`; the rows still free afterwards are
  // written back to `free_rows`.
  void AugmentingRowReduction(std::vector<int>& free_rows) {
    const int prev_num_free = static_cast<int>(free_rows.size());
    int num_free = 0;
    int k = 0;
    // In exact arithmetic each immediate re-processing strictly lowers a potential, so the
    // pass terminates, but it can take many tiny steps (and rounding can make them tinier).
    // Past about 2n row scans per pass the augmenting phase is cheaper (measured on random
    // Euclidean costs in d = 2 and d = 784), so rows left over go there; it does not need
    // them reduced.
    int64_t budget = 2 * static_cast<int64_t>(n_) + 64;
    while (k < prev_num_free) {
      const int i = free_rows[k++];
      if (--budget < 0) {
        free_rows[num_free++] = i;
        continue;
      }
      double u1, u2;
      int j1, j2;
      simd::TwoSmallestReduced(Row(i), v_.data(), n_, &u1, &j1, &u2, &j2);
      int i0 = y_[j1];
      const double gap = u2 - u1;
      const bool strict = j2 >= 0 && gap > 0.0;
      if (strict) {
        v_[j1] -= gap;
      } else if (i0 >= 0 && j2 >= 0) {
        // Tie: take the second best column instead, which may be free.
        j1 = j2;
        i0 = y_[j1];
      }
      x_[i] = j1;
      y_[j1] = i;
      if (i0 >= 0) {
        x_[i0] = -1;
        if (strict) {
          free_rows[--k] = i0;  // Reduce the displaced row right away.
        } else {
          free_rows[num_free++] = i0;
        }
      }
    }
    free_rows.resize(num_free);
  }

  // Dijkstra shortest augmenting path from each free row over reduced costs C_ij - u_i - v_j.
  void AugmentAll(const std::vector<int>& free_rows) {
    std::vector<double> d(n_), vw(n_);
    std::vector<int> pred(n_);
    std::vector<int> ready;
    std::vector<double> ready_d;
    ready.reserve(n_);
    ready_d.reserve(n_);
    for (const int f : free_rows) {
      ++augmentations_;
      ready.clear();
      ready_d.clear();
      std::copy(v_.begin(), v_.end(), vw.begin());
      std::fill(d.begin(), d.end(), kInf);
      // Distances from row f: d_j = C_fj - v_j (u_f = 0 by the choice of origin).
      double min_d;
      int j1;
      simd::RelaxArgmin(Row(f), vw.data(), 0.0, d.data(), pred.data(), f, n_, &min_d, &j1);
      int end_of_path;
      while (true) {
        ++dijkstra_steps_;
        if (y_[j1] < 0) {
          end_of_path = j1;
          break;
        }
        // Label column j1 permanently and scan its row.
        ready.push_back(j1);
        ready_d.push_back(min_d);
        d[j1] = kInf;
        vw[j1] = -kInf;  // C_ij - vw_j - h = +inf: never relaxed again.
        const int i = y_[j1];
        // Shift so that candidate distances are min_d + (C_ij - v_j) - u_i.
        const double h = static_cast<double>(Row(i)[j1]) - v_[j1] - min_d;
        simd::RelaxArgmin(Row(i), vw.data(), h, d.data(), pred.data(), i, n_, &min_d, &j1);
      }
      // Update the potentials of the permanently labelled columns.
      for (size_t k = 0; k < ready.size(); ++k) v_[ready[k]] += ready_d[k] - min_d;
      // Augment along the alternating path.
      int j = end_of_path;
      while (true) {
        const int i = pred[j];
        y_[j] = i;
        const int next = x_[i];
        x_[i] = j;
        if (i == f) break;
        j = next;
      }
    }
  }

  LapSolution Finish() {
    LapSolution s;
    s.target_of_source = std::move(x_);
    s.target_potential = Eigen::Map<const Eigen::VectorXd>(v_.data(), n_);
    s.source_potential.resize(n_);
    // u_i = min_j (C_ij - v_j): equals C[i, sigma(i)] - v[sigma(i)] up to rounding and makes
    // u_i + v_j <= C_ij hold in floating point.
    for (int i = 0; i < n_; ++i) {
      s.source_potential[i] = simd::RowMinExcept(Row(i), v_.data(), n_, -1);
    }
    s.augmentations = augmentations_;
    s.dijkstra_steps = dijkstra_steps_;
    return s;
  }

  const T* cost_;
  const int64_t stride_;
  const int n_;
  std::vector<int> x_;
  std::vector<int> y_;
  std::vector<double> v_;
  int64_t augmentations_ = 0;
  int64_t dijkstra_steps_ = 0;
};

}  // namespace

template <typename T>
LapSolution SolveLapDense(const T* cost, int64_t stride, int n, bool jv_initialization) {
  LapSolver<T> solver(cost, stride, n);
  return solver.Solve(jv_initialization);
}

template LapSolution SolveLapDense<float>(const float*, int64_t, int, bool);
template LapSolution SolveLapDense<double>(const double*, int64_t, int, bool);

}  // namespace internal

namespace {

template <typename Matrix>
absl::StatusOr<AssignmentResult> SolveAssignmentImpl(const Matrix& cost,
                                                     const AssignmentOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  absl::Status st = options.Validate();
  if (!st.ok()) return st;
  if (cost.rows() == 0 || cost.cols() == 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "cost: expected a non-empty square matrix, got %d x %d", cost.rows(), cost.cols()));
  }
  if (cost.rows() != cost.cols()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("cost: expected a square matrix (assignment needs n = m), got %d x %d",
                        cost.rows(), cost.cols()));
  }
  if (cost.rows() > std::numeric_limits<int>::max()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("cost: %d rows exceed the supported maximum", cost.rows()));
  }
  const int n = static_cast<int>(cost.rows());
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      if (!std::isfinite(cost(i, j))) {
        return absl::InvalidArgumentError(
            absl::StrFormat("cost: expected finite entries, got %g at (%d, %d)",
                            static_cast<double>(cost(i, j)), i, j));
      }
    }
  }
  internal::LapSolution s = internal::SolveLapDense(cost.data(), cost.outerStride(), n,
                                                    options.jonker_volgenant_initialization);
  AssignmentResult r;
  double total = 0.0;
  for (int i = 0; i < n; ++i) total += static_cast<double>(cost(i, s.target_of_source[i]));
  r.cost = total / n;
  r.target_of_source = std::move(s.target_of_source);
  r.source_potential = std::move(s.source_potential);
  r.target_potential = std::move(s.target_potential);
  r.augmentations = s.augmentations;
  r.dijkstra_steps = s.dijkstra_steps;
  r.solve_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace

absl::Status AssignmentOptions::Validate() const { return absl::OkStatus(); }

std::string AssignmentResult::BriefReport() const {
  return absl::StrFormat("Assignment: n=%d cost=%.10g augmentations=%d dijkstra_steps=%d %.4fs",
                         target_of_source.size(), cost, augmentations, dijkstra_steps,
                         solve_seconds);
}

absl::StatusOr<AssignmentResult> SolveAssignment(const Eigen::Ref<const RowMatrixXd>& cost,
                                                 const AssignmentOptions& options) {
  return SolveAssignmentImpl(cost, options);
}

absl::StatusOr<AssignmentResult> SolveAssignment(const Eigen::Ref<const RowMatrixXf>& cost,
                                                 const AssignmentOptions& options) {
  return SolveAssignmentImpl(cost, options);
}

}  // namespace otgen::ot
