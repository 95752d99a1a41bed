#include "ot/dense_kernels.h"

#include <algorithm>
#include <limits>
#include <random>
#include <vector>

#include "absl/random/random.h"
#include "gtest/gtest.h"

namespace otgen::ot::internal::simd {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Random row and potentials; with `ties` the values are small integers so that many entries
// are equal and the smallest-index rule matters.
template <typename T>
void RandomData(std::mt19937_64& gen, int n, bool ties, std::vector<T>* row, std::vector<double>* v) {
  row->resize(n);
  v->resize(n);
  for (int j = 0; j < n; ++j) {
    if (ties) {
      (*row)[j] = static_cast<T>(absl::Uniform(gen, 0, 3));
      (*v)[j] = absl::Uniform(gen, 0, 2);
    } else {
      (*row)[j] = static_cast<T>(absl::Gaussian<double>(gen));
      (*v)[j] = absl::Gaussian<double>(gen);
    }
  }
}

template <typename T>
class DenseKernelsTest : public ::testing::Test {};
using ScalarTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(DenseKernelsTest, ScalarTypes);

TYPED_TEST(DenseKernelsTest, MatchScalarReferences) {
  using T = TypeParam;
  std::mt19937_64 gen;
  for (int trial = 0; trial < 700; ++trial) {
    const int n = 1 + trial % 70;
    const bool ties = trial % 2 == 1;
    std::vector<T> row;
    std::vector<double> v;
    RandomData(gen, n, ties, &row, &v);

    // ReducedArgmin and RowMinExcept.
    double ref_min = kInf;
    int ref_arg = -1;
    for (int j = 0; j < n; ++j) {
      const double r = static_cast<double>(row[j]) - v[j];
      if (r < ref_min) {
        ref_min = r;
        ref_arg = j;
      }
    }
    double got_min;
    int got_arg;
    ReducedArgmin(row.data(), v.data(), n, &got_min, &got_arg);
    EXPECT_EQ(got_min, ref_min) << "n=" << n;
    EXPECT_EQ(got_arg, ref_arg) << "n=" << n;
    EXPECT_EQ(RowMinExcept(row.data(), v.data(), n, -1), ref_min);
    const int except = static_cast<int>(absl::Uniform(gen, 0, n));
    double ref_except = kInf;
    for (int j = 0; j < n; ++j) {
      if (j != except) ref_except = std::min(ref_except, static_cast<double>(row[j]) - v[j]);
    }
    EXPECT_EQ(RowMinExcept(row.data(), v.data(), n, except), ref_except);

    // TwoSmallestReduced: values must be the two smallest of the multiset; indices distinct,
    // j1 the smallest index attaining u1.
    double u1, u2;
    int j1, j2;
    TwoSmallestReduced(row.data(), v.data(), n, &u1, &j1, &u2, &j2);
    std::vector<double> sorted;
    for (int j = 0; j < n; ++j) sorted.push_back(static_cast<double>(row[j]) - v[j]);
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(u1, sorted[0]);
    EXPECT_EQ(j1, ref_arg);
    if (n == 1) {
      EXPECT_EQ(j2, -1);
      EXPECT_EQ(u2, kInf);
    } else {
      EXPECT_EQ(u2, sorted[1]);
      ASSERT_GE(j2, 0);
      EXPECT_NE(j1, j2);
      EXPECT_EQ(static_cast<double>(row[j2]) - v[j2], u2);
    }

    // ColumnMinUpdate.
    std::vector<double> vmin(n), vmin_ref(n);
    std::vector<int> arg(n, 7), arg_ref(n, 7);
    for (int j = 0; j < n; ++j) vmin[j] = vmin_ref[j] = ties ? 1.0 : absl::Gaussian<double>(gen);
    for (int j = 0; j < n; ++j) {
      if (static_cast<double>(row[j]) < vmin_ref[j]) {
        vmin_ref[j] = static_cast<double>(row[j]);
        arg_ref[j] = 3;
      }
    }
    ColumnMinUpdate(row.data(), 3, n, vmin.data(), arg.data());
    EXPECT_EQ(vmin, vmin_ref);
    EXPECT_EQ(arg, arg_ref);

    // RelaxArgmin, with some entries "scanned" (d = +inf, vw = -inf).
    std::vector<double> d(n), d_ref(n), vw(n);
    std::vector<int> pred(n, -5), pred_ref(n, -5);
    for (int j = 0; j < n; ++j) {
      const bool scanned = absl::Bernoulli(gen, 0.3);
      vw[j] = scanned ? -kInf : v[j];
      d[j] = d_ref[j] = scanned ? kInf : (ties ? 1.0 : absl::Gaussian<double>(gen));
    }
    const double h = ties ? 0.0 : absl::Gaussian<double>(gen);
    double best_ref = kInf;
    int best_arg_ref = -1;
    for (int j = 0; j < n; ++j) {
      const double cand = static_cast<double>(row[j]) - vw[j] - h;
      if (cand < d_ref[j]) {
        d_ref[j] = cand;
        pred_ref[j] = 11;
      }
      if (d_ref[j] < best_ref) {
        best_ref = d_ref[j];
        best_arg_ref = j;
      }
    }
    double best;
    int best_arg;
    RelaxArgmin(row.data(), vw.data(), h, d.data(), pred.data(), 11, n, &best, &best_arg);
    EXPECT_EQ(d, d_ref);
    EXPECT_EQ(pred, pred_ref);
    EXPECT_EQ(best, best_ref);
    EXPECT_EQ(best_arg, best_arg_ref);
  }
}

}  // namespace
}  // namespace otgen::ot::internal::simd
