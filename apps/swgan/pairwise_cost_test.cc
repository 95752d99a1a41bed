#include "apps/swgan/pairwise_cost.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "nn/autograd.h"
#include "nn/ops.h"
#include "nn/random.h"
#include "nn/tensor.h"
#include "ot/cost.h"

namespace otgen::apps::swgan {
namespace {

using nn::Tensor;
using nn::Var;

double WeightedSum(const ot::Cost& cost, const Tensor& x, const Tensor& y, const Tensor& w) {
  const int64_t n = x.dim(0), m = y.dim(0), d = x.numel() / n;
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < m; ++j) {
      s += w.data()[i * m + j] * ot::EvaluateCost(cost, absl::MakeConstSpan(x.data() + i * d, d),
                                                  absl::MakeConstSpan(y.data() + j * d, d));
    }
  }
  return s;
}

// Values against ot::EvaluateCost and both gradients of sum_ij W_ij c(x_i, y_j) against
// central differences (in double, through EvaluateCost).
void CheckCost(const ot::Cost& cost, int64_t d, uint64_t seed) {
  nn::Rng rng(seed);
  const int64_t n = 3, m = 4;
  Var x = Var::Parameter(Tensor::Normal({n, 1, d}, 0, 1, rng));  // non-flat examples
  Var y = Var::Parameter(Tensor::Normal({m, d}, 0.3f, 1, rng));
  const Tensor w = Tensor::Uniform({n, m}, 0.0f, 1.0f, rng);
  Var c = PairwiseCost(cost, x, y).value();
  ASSERT_EQ(c.shape(), (nn::Shape{n, m}));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < m; ++j) {
      const double ref = ot::EvaluateCost(cost, absl::MakeConstSpan(x.value().data() + i * d, d),
                                          absl::MakeConstSpan(y.value().data() + j * d, d));
      EXPECT_NEAR(c.value().data()[i * m + j], ref, 1e-4 * (1 + std::abs(ref))) << cost.ToString();
    }
  }
  std::vector<Var> g = nn::Grad({nn::SumAll(nn::Mul(c, Var::Constant(w)))}, {x, y});
  for (int which = 0; which < 2; ++which) {
    Tensor p = (which == 0 ? x : y).value();
    for (int64_t k = 0; k < p.numel(); ++k) {
      const float saved = p.data()[k];
      const float h = 1e-3f;
      p.data()[k] = saved + h;
      const double up = WeightedSum(cost, x.value(), y.value(), w);
      p.data()[k] = saved - h;
      const double down = WeightedSum(cost, x.value(), y.value(), w);
      p.data()[k] = saved;
      EXPECT_NEAR(g[which].value().data()[k], (up - down) / (2 * h), 2e-3)
          << cost.ToString() << (which == 0 ? " x" : " y") << " entry " << k;
    }
    EXPECT_EQ(g[which].shape(), p.shape());
  }
}

TEST(PairwiseCostTest, L1ValuesAndGradients) {
  CheckCost(ot::Cost::L1(), 3, 1);
  CheckCost(ot::Cost::L1(2.0f), 20, 2);
}

TEST(PairwiseCostTest, CosineValuesAndGradients) {
  CheckCost(ot::Cost::Cosine(), 3, 3);
  CheckCost(ot::Cost::Cosine(), 20, 4);  // the sgemm path (d > 16)
}

TEST(PairwiseCostTest, SquaredEuclideanValuesAndGradients) {
  CheckCost(ot::Cost::SquaredEuclidean(), 2, 5);
  CheckCost(ot::Cost::SquaredEuclidean(0.5f), 24, 6);
}

TEST(PairwiseCostTest, ConstantsGiveNoGraphAndBadShapesAreRejected) {
  nn::Rng rng(7);
  const Tensor x = Tensor::Normal({3, 2}, 0, 1, rng);
  Var c = PairwiseCost(ot::Cost::L1(), Var::Constant(x), Var::Constant(x)).value();
  EXPECT_FALSE(c.requires_grad());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.value().data()[i * 3 + i], 0.0f);
  EXPECT_FALSE(PairwiseCost(ot::Cost::L1(), Var::Constant(x), Var::Constant(Tensor::Zeros({3, 3}))).ok());
  EXPECT_FALSE(PairwiseCostValues(ot::Cost::L1(0.0f), x, x).ok());
}

}  // namespace
}  // namespace otgen::apps::swgan
