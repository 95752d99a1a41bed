#include "nn/tensor_math.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nn/onednn_context.h"
#include "nn/random.h"
#include "nn/tensor.h"

namespace otgen::nn::math {
namespace {

using internal::KernelPath;

constexpr float kInf = std::numeric_limits<float>::infinity();

// ---------------------------------------------------------------------------------------
// Naive references: multi-index loops in double precision.

// A dense double array with a shape, the oracle's output.
struct Ref {
  Shape shape;
  std::vector<double> v;
};

std::vector<int64_t> Unravel(int64_t flat, const Shape& shape) {
  std::vector<int64_t> index(shape.size());
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    index[i] = flat % shape[i];
    flat /= shape[i];
  }
  return index;
}

int64_t Ravel(const std::vector<int64_t>& index, const Shape& shape) {
  int64_t flat = 0;
  for (size_t i = 0; i < shape.size(); ++i) flat = flat * shape[i] + index[i];
  return flat;
}

// The flat index into a tensor of `shape` read at `out_index` under NumPy broadcasting.
int64_t BroadcastFlat(const std::vector<int64_t>& out_index, const Shape& shape) {
  const size_t lead = out_index.size() - shape.size();
  std::vector<int64_t> index(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) index[i] = shape[i] == 1 ? 0 : out_index[lead + i];
  return Ravel(index, shape);
}

double At(const Tensor& t, int64_t flat) { return t.data()[flat]; }

// Element-wise comparison: |actual - expected| <= atol + rtol * |expected| (NaN matches NaN,
// infinities must match exactly).
void ExpectClose(const Tensor& actual, const Ref& expected, double atol, double rtol, const std::string& what) {
  ASSERT_EQ(actual.shape(), expected.shape) << what;
  ASSERT_EQ(actual.numel(), static_cast<int64_t>(expected.v.size())) << what;
  int failures = 0;
  for (int64_t i = 0; i < actual.numel(); ++i) {
    const double a = actual.data()[i];
    const double e = expected.v[i];
    bool ok;
    if (std::isnan(e)) {
      ok = std::isnan(a);
    } else if (std::isinf(e)) {
      ok = a == e;
    } else {
      ok = std::fabs(a - e) <= atol + rtol * std::fabs(e);
    }
    if (!ok && ++failures <= 5) {
      ADD_FAILURE() << what << ": element " << i << " of " << ShapeToString(actual.shape()) << " is " << a
                    << ", expected " << e;
    }
  }
  EXPECT_EQ(failures, 0) << what;
}

void ExpectEqualTensors(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  for (int64_t i = 0; i < a.numel(); ++i) {
    ASSERT_EQ(a.data()[i], b.data()[i]) << what << ": element " << i;
  }
}

double Dot(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double s = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) s += static_cast<double>(a.data()[i]) * b.data()[i];
  return s;
}

double AbsDot(const Tensor& a, const Tensor& b) {
  double s = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) s += std::fabs(static_cast<double>(a.data()[i]) * b.data()[i]);
  return s;
}

Shape RefBroadcastShape(const Shape& a, const Shape& b) {
  const size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t da = i + a.size() >= r ? a[i + a.size() - r] : 1;
    const int64_t db = i + b.size() >= r ? b[i + b.size() - r] : 1;
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Binary reference in float, the precision the kernels promise to match exactly.
Ref RefBinary(BinaryKind kind, const Tensor& a, const Tensor& b) {
  Ref r{RefBroadcastShape(a.shape(), b.shape()), {}};
  const int64_t n = NumElements(r.shape);
  for (int64_t f = 0; f < n; ++f) {
    const std::vector<int64_t> index = Unravel(f, r.shape);
    const float x = a.data()[BroadcastFlat(index, a.shape())];
    const float y = b.data()[BroadcastFlat(index, b.shape())];
    float z = 0.0f;
    switch (kind) {
      case BinaryKind::kAdd:
        z = x + y;
        break;
      case BinaryKind::kSub:
        z = x - y;
        break;
      case BinaryKind::kMul:
        z = x * y;
        break;
      case BinaryKind::kDiv:
        z = x / y;
        break;
      case BinaryKind::kMax:
        z = x > y ? x : y;
        break;
      case BinaryKind::kMin:
        z = x < y ? x : y;
        break;
    }
    r.v.push_back(z);
  }
  return r;
}

// Output shape and the mapping x flat index -> output flat index of a reduction.
struct RefReducePlan {
  Shape out_shape;
  std::vector<int64_t> target;  // per x element
  std::vector<int64_t> count;   // per output element
};

RefReducePlan PlanRefReduce(const Shape& shape, const std::vector<int>& axes, bool keepdim) {
  const int rank = static_cast<int>(shape.size());
  std::vector<bool> reduced(rank, axes.empty());
  for (int a : axes) reduced[a < 0 ? a + rank : a] = true;
  RefReducePlan p;
  Shape keep_shape;
  for (int i = 0; i < rank; ++i) {
    keep_shape.push_back(reduced[i] ? 1 : shape[i]);
    if (!reduced[i] || keepdim) p.out_shape.push_back(reduced[i] ? 1 : shape[i]);
  }
  p.count.assign(NumElements(keep_shape), 0);
  for (int64_t f = 0; f < NumElements(shape); ++f) {
    std::vector<int64_t> index = Unravel(f, shape);
    for (int i = 0; i < rank; ++i) {
      if (reduced[i]) index[i] = 0;
    }
    p.target.push_back(Ravel(index, keep_shape));
    ++p.count[p.target.back()];
  }
  return p;
}

Ref RefReduce(ReduceKind kind, const Tensor& x, const std::vector<int>& axes, bool keepdim) {
  const RefReducePlan p = PlanRefReduce(x.shape(), axes, keepdim);
  const double init = kind == ReduceKind::kMax ? -INFINITY : kind == ReduceKind::kMin ? INFINITY : 0.0;
  Ref r{p.out_shape, std::vector<double>(p.count.size(), init)};
  for (int64_t f = 0; f < x.numel(); ++f) {
    double& o = r.v[p.target[f]];
    const double v = At(x, f);
    if (kind == ReduceKind::kMax) {
      o = std::max(o, v);
    } else if (kind == ReduceKind::kMin) {
      o = std::min(o, v);
    } else {
      o += v;
    }
  }
  if (kind == ReduceKind::kMean) {
    for (size_t i = 0; i < r.v.size(); ++i) r.v[i] /= p.count[i];
  }
  return r;
}

Ref RefLogSumExp(const Tensor& x, const std::vector<int>& axes, bool keepdim) {
  const Ref m = RefReduce(ReduceKind::kMax, x, axes, keepdim);
  const RefReducePlan p = PlanRefReduce(x.shape(), axes, keepdim);
  Ref r{p.out_shape, std::vector<double>(p.count.size(), 0.0)};
  for (int64_t f = 0; f < x.numel(); ++f) r.v[p.target[f]] += std::exp(At(x, f) - m.v[p.target[f]]);
  for (size_t i = 0; i < r.v.size(); ++i) r.v[i] = m.v[i] + std::log(r.v[i]);
  return r;
}

// Sum over `axis` of `f` applied per slice: helpers for softmax / argmin.
struct Split {
  int64_t outer, d, inner;
};
Split SplitShape(const Shape& shape, int axis) {
  const int rank = static_cast<int>(shape.size());
  const int a = axis < 0 ? axis + rank : axis;
  Split s{1, shape[a], 1};
  for (int i = 0; i < a; ++i) s.outer *= shape[i];
  for (int i = a + 1; i < rank; ++i) s.inner *= shape[i];
  return s;
}

Ref RefSoftmax(const Tensor& x, int axis, bool log) {
  const Split s = SplitShape(x.shape(), axis);
  Ref r{x.shape(), std::vector<double>(x.numel())};
  for (int64_t o = 0; o < s.outer; ++o) {
    for (int64_t i = 0; i < s.inner; ++i) {
      double m = -INFINITY;
      for (int64_t k = 0; k < s.d; ++k) m = std::max(m, At(x, (o * s.d + k) * s.inner + i));
      double z = 0.0;
      for (int64_t k = 0; k < s.d; ++k) z += std::exp(At(x, (o * s.d + k) * s.inner + i) - m);
      for (int64_t k = 0; k < s.d; ++k) {
        const int64_t f = (o * s.d + k) * s.inner + i;
        r.v[f] = log ? At(x, f) - m - std::log(z) : std::exp(At(x, f) - m) / z;
      }
    }
  }
  return r;
}

std::vector<int64_t> RefArg(const Tensor& x, int axis, bool max) {
  const Split s = SplitShape(x.shape(), axis);
  std::vector<int64_t> out;
  for (int64_t o = 0; o < s.outer; ++o) {
    for (int64_t i = 0; i < s.inner; ++i) {
      int64_t best = 0;
      for (int64_t k = 1; k < s.d; ++k) {
        const double v = At(x, (o * s.d + k) * s.inner + i);
        const double b = At(x, (o * s.d + best) * s.inner + i);
        if (max ? v > b : v < b) best = k;
      }
      out.push_back(best);
    }
  }
  return out;
}

// op(a) @ op(b), plus sum_k |a_ik b_kj| for error bounds.
void RefMatMul(const Tensor& a, const Tensor& b, bool ta, bool tb, Ref* c, std::vector<double>* abs_sum) {
  const bool batched = a.rank() == 3;
  const int64_t batch = batched ? a.dim(0) : 1;
  const int64_t m = ta ? a.dim(-1) : a.dim(-2);
  const int64_t k = ta ? a.dim(-2) : a.dim(-1);
  const int64_t n = tb ? b.dim(-2) : b.dim(-1);
  c->shape = batched ? Shape{batch, m, n} : Shape{m, n};
  c->v.assign(batch * m * n, 0.0);
  abs_sum->assign(batch * m * n, 0.0);
  for (int64_t t = 0; t < batch; ++t) {
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double s = 0.0, sa = 0.0;
        for (int64_t l = 0; l < k; ++l) {
          const double x = At(a, t * m * k + (ta ? l * m + i : i * k + l));
          const double y = At(b, t * k * n + (tb ? j * k + l : l * n + j));
          s += x * y;
          sa += std::fabs(x * y);
        }
        c->v[(t * m + i) * n + j] = s;
        (*abs_sum)[(t * m + i) * n + j] = sa;
      }
    }
  }
}

Ref RefPermute(const Tensor& x, const std::vector<int>& perm) {
  Shape out_shape;
  for (int p : perm) out_shape.push_back(x.shape()[p]);
  Ref r{out_shape, std::vector<double>(x.numel())};
  for (int64_t f = 0; f < x.numel(); ++f) {
    const std::vector<int64_t> in = Unravel(f, x.shape());
    std::vector<int64_t> out(perm.size());
    for (size_t i = 0; i < perm.size(); ++i) out[i] = in[perm[i]];
    r.v[Ravel(out, out_shape)] = At(x, f);
  }
  return r;
}

Ref RefBroadcastTo(const Tensor& x, const Shape& shape) {
  Ref r{shape, {}};
  for (int64_t f = 0; f < NumElements(shape); ++f) r.v.push_back(At(x, BroadcastFlat(Unravel(f, shape), x.shape())));
  return r;
}

std::string Str(const Shape& s) { return ShapeToString(s); }

// ---------------------------------------------------------------------------------------
// Every test runs on each kernel path.

class TensorMathTest : public ::testing::TestWithParam<KernelPath> {
 protected:
  void SetUp() override { internal::SetKernelPath(GetParam()); }
  void TearDown() override { internal::SetKernelPath(KernelPath::kAuto); }

  Tensor Normal(const Shape& shape, float stddev = 1.0f) { return Tensor::Normal(shape, 0.0f, stddev, rng_); }
  Tensor Uniform(const Shape& shape, float lo, float hi) { return Tensor::Uniform(shape, lo, hi, rng_); }

  Rng rng_{20240611};
};

INSTANTIATE_TEST_SUITE_P(Paths, TensorMathTest,
                         ::testing::Values(KernelPath::kAuto, KernelPath::kPrimitive, KernelPath::kLoop),
                         [](const ::testing::TestParamInfo<KernelPath>& info) {
                           switch (info.param) {
                             case KernelPath::kAuto:
                               return std::string("Auto");
                             case KernelPath::kPrimitive:
                               return std::string("Primitive");
                             case KernelPath::kLoop:
                               return std::string("Loop");
                           }
                           return std::string("Unknown");
                         });

TEST(BroadcastShapesTest, NumPyRules) {
  EXPECT_EQ(BroadcastShapes({5, 7}, {7}), (Shape{5, 7}));
  EXPECT_EQ(BroadcastShapes({5, 1}, {1, 7}), (Shape{5, 7}));
  EXPECT_EQ(BroadcastShapes({}, {3, 4}), (Shape{3, 4}));
  EXPECT_EQ(BroadcastShapes({2, 3, 4, 5}, {1, 3, 1, 1}), (Shape{2, 3, 4, 5}));
  EXPECT_EQ(BroadcastShapes({4, 1, 6}, {3, 1}), (Shape{4, 3, 6}));
  EXPECT_EQ(BroadcastShapes({0, 3}, {1, 3}), (Shape{0, 3}));
  EXPECT_EQ(BroadcastShapes({0}, {1}), (Shape{0}));
  EXPECT_TRUE(Broadcastable({}, {}));
  EXPECT_FALSE(Broadcastable({5, 7}, {5}));
  EXPECT_FALSE(Broadcastable({2, 3}, {3, 2}));
  EXPECT_FALSE(Broadcastable({0}, {2}));
}

const std::vector<std::pair<Shape, Shape>>& BinaryShapeCases() {
  static const auto* cases = new std::vector<std::pair<Shape, Shape>>{
      {{5, 7}, {5, 7}},         {{5, 7}, {7}},           {{7}, {5, 7}},
      {{5, 1}, {1, 7}},         {{5, 7}, {5, 1}},        {{5, 1}, {5, 7}},
      {{}, {5, 7}},             {{5, 7}, {}},            {{}, {}},
      {{2, 3, 4, 5}, {1, 3, 1, 1}}, {{1, 3, 1, 1}, {2, 3, 4, 5}}, {{4, 1, 6}, {3, 1}},
      {{64, 300}, {300}},       {{300}, {64, 300}},      {{64, 1}, {1, 300}},
      {{64, 300}, {64, 1}},     {{64, 1}, {64, 300}},    {{8, 16, 10, 10}, {1, 16, 1, 1}},
      {{1, 16, 1, 1}, {8, 16, 10, 10}}, {{8, 16, 10, 10}, {8, 16, 10, 10}}, {{8, 16, 10, 10}, {}},
      {{6, 1, 40, 8}, {6, 30, 1, 8}}, {{0, 3}, {3}},    {{2, 0}, {1}},
  };
  return *cases;
}

TEST_P(TensorMathTest, BinaryMatchesReferenceWithBroadcasting) {
  for (BinaryKind kind : {BinaryKind::kAdd, BinaryKind::kSub, BinaryKind::kMul, BinaryKind::kDiv, BinaryKind::kMax,
                          BinaryKind::kMin}) {
    for (const auto& [sa, sb] : BinaryShapeCases()) {
      const Tensor a = Normal(sa);
      // Divisors bounded away from zero, of both signs.
      Tensor b = Normal(sb);
      if (kind == BinaryKind::kDiv) {
        for (float& v : b.mutable_span()) v = (v >= 0 ? 0.5f : -0.5f) + v;
      }
      const Tensor a0 = a.Clone(), b0 = b.Clone();
      const Tensor c = Binary(kind, a, b);
      ExpectClose(c, RefBinary(kind, a, b), 0.0, 0.0,
                  "Binary " + std::to_string(static_cast<int>(kind)) + " " + Str(sa) + " with " + Str(sb));
      ExpectEqualTensors(a, a0, "input a unchanged");
      ExpectEqualTensors(b, b0, "input b unchanged");
    }
  }
}

TEST_P(TensorMathTest, BinaryOnRowViews) {
  const Tensor x = Normal({50, 40});
  const Tensor y = Normal({50, 40});
  const Tensor xv = x.Rows(10, 30), yv = y.Rows(5, 25);
  ExpectClose(Binary(BinaryKind::kMul, xv, yv), RefBinary(BinaryKind::kMul, xv.Clone(), yv.Clone()), 0.0, 0.0,
              "row views");
}

struct UnaryCase {
  UnaryKind kind;
  float alpha, beta;
  float lo, hi;  // input range
  std::function<double(double)> ref;
  const char* name;
};

TEST_P(TensorMathTest, UnaryMatchesReference) {
  const std::vector<UnaryCase> cases = {
      {UnaryKind::kRelu, 0, 0, -3, 3, [](double x) { return x > 0 ? x : 0.0; }, "relu"},
      {UnaryKind::kLeakyRelu, 0.2f, 0, -3, 3, [](double x) { return x > 0 ? x : 0.2 * x; }, "leaky_relu"},
      {UnaryKind::kTanh, 0, 0, -5, 5, [](double x) { return std::tanh(x); }, "tanh"},
      {UnaryKind::kSigmoid, 0, 0, -12, 12, [](double x) { return 1.0 / (1.0 + std::exp(-x)); }, "sigmoid"},
      {UnaryKind::kExp, 0, 0, -10, 10, [](double x) { return std::exp(x); }, "exp"},
      {UnaryKind::kLog, 0, 0, 1e-3f, 50, [](double x) { return std::log(x); }, "log"},
      {UnaryKind::kSqrt, 0, 0, 0, 50, [](double x) { return std::sqrt(x); }, "sqrt"},
      {UnaryKind::kSquare, 0, 0, -4, 4, [](double x) { return x * x; }, "square"},
      {UnaryKind::kAbs, 0, 0, -4, 4, [](double x) { return std::fabs(x); }, "abs"},
      {UnaryKind::kPow, 3.0f, 0, -3, 3, [](double x) { return x * x * x; }, "pow3"},
      {UnaryKind::kPow, 2.0f, 0, -3, 3, [](double x) { return x * x; }, "pow2"},
      {UnaryKind::kPow, -1.0f, 0, 0.1f, 3, [](double x) { return 1.0 / x; }, "pow-1"},
      {UnaryKind::kPow, 1.7f, 0, 0.01f, 3, [](double x) { return std::pow(x, 1.7); }, "pow1.7"},
      {UnaryKind::kPow, 0.5f, 0, 0.0f, 3, [](double x) { return std::sqrt(x); }, "pow0.5"},
      {UnaryKind::kLinear, 1.5f, -0.3f, -3, 3, [](double x) { return 1.5 * x - 0.3; }, "linear"},
      {UnaryKind::kClip, -0.5f, 0.7f, -2, 2, [](double x) { return std::min(std::max(x, -0.5), 0.7); }, "clip"},
      {UnaryKind::kNeg, 0, 0, -3, 3, [](double x) { return -x; }, "neg"},
      {UnaryKind::kStep, 0, 0, -3, 3, [](double x) { return x > 0 ? 1.0 : 0.0; }, "step"},
      {UnaryKind::kSign, 0, 0, -3, 3, [](double x) { return x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0; }, "sign"},
  };
  for (const UnaryCase& c : cases) {
    // {300, 200}: above kMinParallelElements, the threaded loops and the oneDNN primitives.
    for (const Shape& shape : {Shape{}, Shape{3, 5}, Shape{37, 61}, Shape{4, 3, 50}, Shape{0, 4}, Shape{300, 200}}) {
      Tensor x = Uniform(shape, c.lo, c.hi);
      // Exact zeros and boundary values exercise relu/step/sign/clip edges.
      if (x.numel() > 3 && c.lo <= 0 && c.hi >= 0) {
        x.data()[0] = 0.0f;
        x.data()[1] = c.alpha;
      }
      const Tensor x0 = x.Clone();
      const Tensor y = Unary(c.kind, x, c.alpha, c.beta);
      Ref expected{shape, {}};
      for (int64_t i = 0; i < x.numel(); ++i) expected.v.push_back(c.ref(x.data()[i]));
      ExpectClose(y, expected, 1e-6, 2e-6, std::string("Unary ") + c.name + " " + Str(shape));
      ExpectEqualTensors(x, x0, "input unchanged");
    }
  }
}

TEST_P(TensorMathTest, LogIsAccurateToAFewUlps) {
  // log(1 + t) for small t is where a log with an absolute error bound fails.
  std::vector<float> values;
  for (float t = 1e-7f; t < 1.0f; t *= 1.37f) {
    values.push_back(1.0f + t);
    values.push_back(1.0f - t);
  }
  for (float v = 1e-30f; v < 1e30f; v *= 7.3f) values.push_back(v);
  values.push_back(std::numeric_limits<float>::denorm_min());
  values.push_back(3e-42f);
  values.push_back(std::numeric_limits<float>::max());
  const Tensor x = Tensor::FromVector({static_cast<int64_t>(values.size())}, values);
  const Tensor y = Unary(UnaryKind::kLog, x);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double ref = std::log(static_cast<double>(x.data()[i]));
    const float rf = static_cast<float>(ref);
    const double ulp = std::fabs(std::nextafter(rf, kInf) - rf);
    EXPECT_LE(std::fabs(y.data()[i] - ref), 1.0 * ulp) << "log(" << x.data()[i] << ")";
  }
  const Tensor special = Unary(UnaryKind::kLog, Tensor::FromVector({4}, {0.0f, -1.0f, kInf, std::nanf("")}));
  EXPECT_EQ(special.data()[0], -kInf);
  EXPECT_TRUE(std::isnan(special.data()[1]));
  EXPECT_EQ(special.data()[2], kInf);
  EXPECT_TRUE(std::isnan(special.data()[3]));
}

TEST_P(TensorMathTest, LogSoftmaxOfADominantEntryKeepsRelativeAccuracy) {
  // Rows where one logit exceeds the rest by 10..17: its log-probability is about
  // -sum(exp(-gap)), as small as 1e-7. A float sum of exponentials near 1 limits the
  // absolute accuracy to a few ulp(1) ~ 1e-7; the log itself must add no more (oneDNN
  // 2.6's logsoftmax is off by up to 4e-6 here).
  Tensor x = Normal({64, 32});
  for (int64_t r = 0; r < 64; ++r) x.data()[r * 32 + r % 32] += 10.0f + 7.0f * r / 63.0f;
  const Tensor y = LogSoftmax(x, 1);
  const Ref ref = RefSoftmax(x, 1, true);
  for (int64_t r = 0; r < 64; ++r) {
    const int64_t j = r * 32 + r % 32;
    EXPECT_NEAR(y.data()[j], ref.v[j], 5e-7) << "row " << r;
  }
  ExpectClose(y, ref, 1e-5, 1e-6, "LogSoftmax dominant rows");
  ExpectClose(LogSumExp(x, {1}, false), RefLogSumExp(x, {1}, false), 1e-6, 1e-6, "LogSumExp dominant rows");
}

TEST_P(TensorMathTest, NaNHandlingIsTheSameOnEveryPath) {
  // The documented contract (oneDNN's): Relu(NaN) = 0, Clip(NaN) = alpha, LeakyRelu,
  // Tanh, Square and Linear propagate NaN. 1000 elements reach the primitives in kAuto.
  Tensor x = Normal({1000});
  for (int64_t i = 0; i < x.numel(); i += 7) x.data()[i] = std::nanf("");
  const Tensor relu = Unary(UnaryKind::kRelu, x);
  const Tensor clip = Unary(UnaryKind::kClip, x, -0.5f, 0.5f);
  for (int64_t i = 0; i < x.numel(); i += 7) {
    EXPECT_EQ(relu.data()[i], 0.0f) << i;
    EXPECT_EQ(clip.data()[i], -0.5f) << i;
    for (UnaryKind kind : {UnaryKind::kLeakyRelu, UnaryKind::kTanh, UnaryKind::kSquare, UnaryKind::kLinear}) {
      EXPECT_TRUE(std::isnan(Unary(kind, x, 0.2f, 1.0f).data()[i])) << static_cast<int>(kind);
    }
  }
}

TEST_P(TensorMathTest, ReduceMatchesReference) {
  const std::vector<std::vector<int>> axes_cases = {{0},    {1},    {2},     {-1},    {0, 2},
                                                    {1, 2}, {0, 1}, {-3, -1}, {},      {0, 1, 2}};
  for (const Shape& shape : {Shape{4, 5, 6}, Shape{20, 30, 7}, Shape{5, 1, 9}}) {
    const Tensor x = Normal(shape);
    const Tensor x0 = x.Clone();
    for (ReduceKind kind : {ReduceKind::kSum, ReduceKind::kMean, ReduceKind::kMax, ReduceKind::kMin}) {
      for (const std::vector<int>& axes : axes_cases) {
        for (bool keepdim : {false, true}) {
          const Tensor y = Reduce(kind, x, axes, keepdim);
          const Ref r = RefReduce(kind, x, axes, keepdim);
          std::string what = "Reduce " + std::to_string(static_cast<int>(kind)) + " of " + Str(shape) + " over {";
          for (int a : axes) what += std::to_string(a) + ",";
          what += keepdim ? "} keepdim" : "}";
          ExpectClose(y, r, 1e-5 * std::sqrt(static_cast<double>(x.numel())), 1e-5, what);
        }
      }
    }
    ExpectEqualTensors(x, x0, "input unchanged");
  }
}

TEST_P(TensorMathTest, ReduceTwoDimensionalLayouts) {
  // The layouts autograd produces: bias gradients (axis 0), per-sample sums (axis 1),
  // channel sums of NCHW.
  const Tensor x = Normal({256, 512});
  for (ReduceKind kind : {ReduceKind::kSum, ReduceKind::kMean, ReduceKind::kMax, ReduceKind::kMin}) {
    for (int axis : {0, 1}) {
      ExpectClose(Reduce(kind, x, {axis}, false), RefReduce(kind, x, {axis}, false), 1e-4, 1e-5,
                  "Reduce [256, 512] axis " + std::to_string(axis));
    }
  }
  const Tensor img = Normal({8, 16, 6, 6});
  ExpectClose(Reduce(ReduceKind::kSum, img, {0, 2, 3}, true), RefReduce(ReduceKind::kSum, img, {0, 2, 3}, true), 1e-4,
              1e-5, "NCHW channel sums");
}

TEST_P(TensorMathTest, ReduceEmptyInputs) {
  const Tensor x = Tensor::Zeros({3, 0});
  const Tensor s = Reduce(ReduceKind::kSum, x, {1}, false);
  ASSERT_EQ(s.shape(), (Shape{3}));
  for (float v : s.span()) EXPECT_EQ(v, 0.0f);
  const Tensor m = Reduce(ReduceKind::kMax, x, {1}, true);
  ASSERT_EQ(m.shape(), (Shape{3, 1}));
  for (float v : m.span()) EXPECT_EQ(v, -kInf);
  EXPECT_EQ(Reduce(ReduceKind::kSum, x, {0}, false).shape(), (Shape{0}));
  EXPECT_EQ(Reduce(ReduceKind::kSum, Tensor::Scalar(2.5f), {}, false).item(), 2.5f);
}

TEST_P(TensorMathTest, LogSumExpMatchesReference) {
  for (const Shape& shape : {Shape{4, 5, 6}, Shape{64, 300}, Shape{3, 1}}) {
    const Tensor x = Normal(shape, 3.0f);
    for (const std::vector<int>& axes : std::vector<std::vector<int>>{{-1}, {0}, {}, {0, -1}}) {
      for (bool keepdim : {false, true}) {
        ExpectClose(LogSumExp(x, axes, keepdim), RefLogSumExp(x, axes, keepdim), 1e-5, 1e-5,
                    "LogSumExp of " + Str(shape));
      }
    }
  }
}

TEST_P(TensorMathTest, LogSumExpAndLogSoftmaxOverLongRows) {
  // Large enough for the primitive path to stream exp(x - max) in blocks of rows,
  // including a partial last block and rows longer than a block.
  for (const Shape& shape : {Shape{300, 1000}, Shape{3, 200000}}) {
    const Tensor x = Normal(shape, 2.0f);
    ExpectClose(LogSumExp(x, {1}, true), RefLogSumExp(x, {1}, true), 1e-5, 1e-6, "LogSumExp " + Str(shape));
    ExpectClose(LogSoftmax(x, -1), RefSoftmax(x, -1, true), 2e-5, 1e-6, "LogSoftmax " + Str(shape));
  }
  const Tensor x = Normal({300, 1000}, 2.0f);
  ExpectClose(LogSumExp(x, {0}, false), RefLogSumExp(x, {0}, false), 1e-5, 1e-6, "LogSumExp over axis 0");
}

TEST_P(TensorMathTest, LogSumExpIsStableForLargeInputs) {
  // exp(1e4) overflows float (and double); the max shift must keep the result finite.
  for (const Shape& shape : {Shape{4, 7}, Shape{64, 300}}) {
    Tensor x = Normal(shape);
    for (float& v : x.mutable_span()) v += 1e4f;
    const Tensor y = LogSumExp(x, {1}, false);
    ExpectClose(y, RefLogSumExp(x, {1}, false), 0.0, 1e-6, "LogSumExp near 1e4");
    Tensor neg = Normal(shape);
    for (float& v : neg.mutable_span()) v -= 1e4f;
    ExpectClose(LogSumExp(neg, {1}, false), RefLogSumExp(neg, {1}, false), 0.0, 1e-6, "LogSumExp near -1e4");
  }
  // Rows of -inf give -inf; a row holding +inf gives +inf; no NaN.
  Tensor x = Tensor::FromVector({3, 3}, {-kInf, -kInf, -kInf, 1.0f, kInf, 2.0f, -kInf, 0.0f, -kInf});
  const Tensor y = LogSumExp(x, {1}, false);
  EXPECT_EQ(y.data()[0], -kInf);
  EXPECT_EQ(y.data()[1], kInf);
  EXPECT_FLOAT_EQ(y.data()[2], 0.0f);
}

TEST_P(TensorMathTest, ArgMinArgMaxMatchReference) {
  const Tensor x = Normal({6, 7, 8});
  for (int axis : {0, 1, 2, -1, -3}) {
    EXPECT_EQ(ArgMin(x, axis), RefArg(x, axis, false)) << "axis " << axis;
    EXPECT_EQ(ArgMax(x, axis), RefArg(x, axis, true)) << "axis " << axis;
  }
}

TEST_P(TensorMathTest, ArgMinTiesPickTheFirstIndex) {
  const Tensor row = Tensor::FromVector({2, 5}, {3, 1, 2, 1, 1, 4, 4, 0, 0, 4});
  EXPECT_EQ(ArgMin(row, 1), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(ArgMax(row, 1), (std::vector<int64_t>{0, 0}));
  const Tensor col = Tensor::FromVector({4, 2}, {5, 2, 1, 2, 1, 0, 9, 0});
  EXPECT_EQ(ArgMin(col, 0), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(ArgMax(col, 0), (std::vector<int64_t>{3, 0}));
}

TEST_P(TensorMathTest, SoftmaxMatchesReferenceAndSumsToOne) {
  const std::vector<std::pair<Shape, int>> cases = {
      {{5, 9}, 1}, {{5, 9}, 0}, {{5, 9}, -1}, {{4, 6, 8}, 1}, {{4, 6, 8}, 2}, {{64, 100}, 1}, {{64, 100}, 0}, {{7}, 0}};
  for (const auto& [shape, axis] : cases) {
    const Tensor x = Normal(shape, 4.0f);
    const std::string what = "softmax of " + Str(shape) + " axis " + std::to_string(axis);
    const Tensor p = Softmax(x, axis);
    ExpectClose(p, RefSoftmax(x, axis, false), 1e-7, 2e-6, what);
    ExpectClose(LogSoftmax(x, axis), RefSoftmax(x, axis, true), 1e-5, 2e-6, "log" + what);
    const Tensor sums = Reduce(ReduceKind::kSum, p, {axis}, false);
    for (float s : sums.span()) EXPECT_NEAR(s, 1.0f, 1e-5) << what;
  }
  // Shifts by 1e4 change nothing.
  Tensor x = Normal({6, 10});
  Tensor shifted = x.Clone();
  for (float& v : shifted.mutable_span()) v += 1e4f;
  ExpectClose(Softmax(shifted, 1), RefSoftmax(x, 1, false), 2e-3, 2e-3, "softmax shift invariance");
  ExpectClose(LogSoftmax(shifted, 1), RefSoftmax(shifted, 1, true), 1e-3, 1e-6, "logsoftmax near 1e4");
}

TEST_P(TensorMathTest, MatMulAllTransposesAndBatches) {
  // {m, k, n}; the thin ones (a dimension <= 4) cover each branch of the thin-product loops.
  const std::vector<std::array<int64_t, 3>> sizes = {
      {3, 4, 5},    {1, 7, 1},   {7, 1, 6},    {33, 65, 17}, {64, 128, 96}, {130, 2, 70},
      {70, 1, 33},  {1, 300, 70}, {70, 300, 2}, {3, 50, 40},  {4, 4, 4},     {2, 3, 90}, {40, 37, 4}};
  for (const auto& [m, k, n] : sizes) {
    for (int64_t batch : {0, 3}) {  // 0: unbatched 2-D
      for (bool ta : {false, true}) {
        for (bool tb : {false, true}) {
          Shape sa = ta ? Shape{k, m} : Shape{m, k};
          Shape sb = tb ? Shape{n, k} : Shape{k, n};
          if (batch > 0) {
            sa.insert(sa.begin(), batch);
            sb.insert(sb.begin(), batch);
          }
          const Tensor a = Normal(sa), b = Normal(sb);
          const Tensor c = MatMul(a, b, ta, tb);
          Ref ref;
          std::vector<double> abs_sum;
          RefMatMul(a, b, ta, tb, &ref, &abs_sum);
          const std::string what = "MatMul " + Str(sa) + (ta ? "^T" : "") + " @ " + Str(sb) + (tb ? "^T" : "");
          ASSERT_EQ(c.shape(), ref.shape) << what;
          for (int64_t i = 0; i < c.numel(); ++i) {
            ASSERT_NEAR(c.data()[i], ref.v[i], 1e-6 * k + 2e-6 * abs_sum[i]) << what << " element " << i;
          }
        }
      }
    }
  }
}

// Linear(x, w, b) = x w^T + b, the bias added by the product's output stage, and LinearRelu(x,
// w, b, s) = max(t, 0) + s min(t, 0) of it, on thin and regular shapes.
TEST_P(TensorMathTest, LinearAndLinearReluMatchTheReference) {
  for (const auto& [m, k, n] :
       std::vector<std::array<int64_t, 3>>{{3, 4, 5}, {64, 128, 96}, {130, 2, 70}, {70, 40, 1}, {5, 0, 3}}) {
    for (const std::optional<float> slope : {std::optional<float>(), std::optional<float>(0.0f), std::optional(0.2f)}) {
      const Tensor x = Normal({m, k}), w = Normal({n, k}), b = Normal({n});
      const Tensor y = slope.has_value() ? LinearRelu(x, w, b, *slope) : Linear(x, w, b);
      Ref ref;
      std::vector<double> abs_sum;
      RefMatMul(x, w, false, true, &ref, &abs_sum);
      ASSERT_EQ(y.shape(), (Shape{m, n}));
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          const int64_t e = i * n + j;
          const double t = ref.v[e] + b.data()[j];
          const double want = !slope.has_value() || t > 0 ? t : *slope * t;
          ASSERT_NEAR(y.data()[e], want, 1e-6 * k + 2e-6 * (abs_sum[e] + std::abs(b.data()[j])))
              << (slope.has_value() ? "LinearRelu [" : "Linear [") << m << ", " << k << "] x [" << n << ", " << k
              << "]^T, element " << e;
        }
      }
    }
  }
}

TEST_P(TensorMathTest, MatMulIntoReusesTheOutputBuffer) {
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      const Tensor a = Normal(ta ? Shape{40, 30} : Shape{30, 40});
      const Tensor b = Normal(tb ? Shape{20, 40} : Shape{40, 20});
      Tensor out = Tensor::Full({30, 20}, std::nanf(""));  // stale contents are overwritten
      const float* buffer = out.data();
      MatMulInto(a, b, ta, tb, &out);
      EXPECT_EQ(out.data(), buffer);
      ExpectEqualTensors(out, MatMul(a, b, ta, tb), "MatMulInto vs MatMul");
    }
  }
  const Tensor a = Normal({2, 5, 7}), b = Normal({2, 7, 3});
  Tensor out = Tensor::Full({2, 5, 3}, 9.0f);
  MatMulInto(a, b, false, false, &out);
  ExpectEqualTensors(out, MatMul(a, b), "batched MatMulInto");
  Tensor zeros = Tensor::Full({3, 4}, 9.0f);
  MatMulInto(Tensor::Zeros({3, 0}), Tensor::Zeros({0, 4}), false, false, &zeros);
  for (float v : zeros.span()) EXPECT_EQ(v, 0.0f);
}

TEST_P(TensorMathTest, MatMulDegenerateSizes) {
  const Tensor c = MatMul(Tensor::Zeros({3, 0}), Tensor::Zeros({0, 4}));
  ASSERT_EQ(c.shape(), (Shape{3, 4}));
  for (float v : c.span()) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(MatMul(Tensor::Zeros({0, 5}), Normal({5, 4})).shape(), (Shape{0, 4}));
  EXPECT_EQ(MatMul(Normal({2, 0, 5}), Normal({2, 5, 4})).shape(), (Shape{2, 0, 4}));
}

TEST_P(TensorMathTest, TransposeAndPermuteMatchReference) {
  const Tensor m = Normal({37, 45});
  ExpectClose(Transpose(m), RefPermute(m, {1, 0}), 0, 0, "Transpose");
  const std::vector<std::pair<Shape, std::vector<int>>> cases = {
      {{40, 50}, {1, 0}},           {{3, 40, 50}, {0, 2, 1}},     {{3, 4, 5, 6}, {0, 2, 3, 1}},
      {{3, 4, 5, 6}, {0, 3, 1, 2}}, {{3, 4, 5, 6}, {3, 2, 1, 0}}, {{3, 4, 5, 6}, {0, 1, 2, 3}},
      {{3, 4, 5, 6}, {2, 0, 1, 3}}, {{3, 1, 5, 6}, {1, 3, 2, 0}}, {{2, 3, 4}, {2, 0, 1}},
      {{7}, {0}},                   {{}, {}},                     {{0, 3}, {1, 0}},
  };
  for (const auto& [shape, perm] : cases) {
    const Tensor x = Normal(shape);
    const Tensor y = Permute(x, perm);
    std::string what = "Permute " + Str(shape) + " by {";
    for (int p : perm) what += std::to_string(p) + ",";
    ExpectClose(y, RefPermute(x, perm), 0, 0, what + "}");
    std::vector<int> inverse(perm.size());
    for (size_t i = 0; i < perm.size(); ++i) inverse[perm[i]] = static_cast<int>(i);
    ExpectEqualTensors(Permute(y, inverse), x, what + "} round trip");
  }
}

TEST_P(TensorMathTest, SliceAndPadSliceAreAdjoint) {
  const Shape shape = {4, 9, 5};
  for (int axis : {0, 1, 2, -1}) {
    const int a = axis < 0 ? axis + 3 : axis;
    for (const auto& [begin, end] : std::vector<std::pair<int64_t, int64_t>>{{1, 3}, {0, 4}, {2, 2}}) {
      const Tensor y = Normal(shape);
      const Tensor s = Slice(y, axis, begin, end);
      // Reference slice.
      Shape sliced = shape;
      sliced[a] = end - begin;
      Ref ref{sliced, {}};
      for (int64_t f = 0; f < NumElements(sliced); ++f) {
        std::vector<int64_t> index = Unravel(f, sliced);
        index[a] += begin;
        ref.v.push_back(At(y, Ravel(index, shape)));
      }
      ExpectClose(s, ref, 0, 0, "Slice axis " + std::to_string(axis));
      // <PadSlice(x), y> == <x, Slice(y)>.
      const Tensor x = Normal(sliced);
      const Tensor padded = PadSlice(x, shape, axis, begin);
      ASSERT_EQ(padded.shape(), shape);
      EXPECT_NEAR(Dot(padded, y), Dot(x, s), 1e-9 + 1e-12 * AbsDot(x, s)) << "adjoint, axis " << axis;
      // PadSlice places x and zeros elsewhere.
      EXPECT_EQ(SumAll(Unary(UnaryKind::kAbs, padded)), SumAll(Unary(UnaryKind::kAbs, x)));
      ExpectEqualTensors(Slice(padded, axis, begin, end), x, "Slice(PadSlice(x)) == x");
    }
  }
}

TEST_P(TensorMathTest, ConcatMatchesSlices) {
  for (int axis : {0, 1, 2, -2}) {
    const int a = axis < 0 ? axis + 3 : axis;
    Shape s1 = {2, 3, 4}, s2 = {2, 3, 4}, s3 = {2, 3, 4};
    s1[a] = 1;
    s2[a] = 3;
    s3[a] = 0;
    const Tensor x1 = Normal(s1), x2 = Normal(s2), x3 = Normal(s3), x4 = Normal({2, 3, 4});
    const Tensor c = Concat({x1, x2, x3, x4}, axis);
    Shape expected = {2, 3, 4};
    expected[a] = 1 + 3 + 0 + expected[a];
    ASSERT_EQ(c.shape(), expected);
    ExpectEqualTensors(Slice(c, axis, 0, 1), x1, "first part");
    ExpectEqualTensors(Slice(c, axis, 1, 4), x2, "second part");
    ExpectEqualTensors(Slice(c, axis, 4, expected[a]), x4, "last part");
  }
}

TEST_P(TensorMathTest, IndexRowsAndScatterAddRowsAreAdjoint) {
  const Tensor x = Normal({6, 3, 2});
  const std::vector<int64_t> indices = {5, 0, 2, 2, 5, 5, 1};
  const Tensor g = IndexRows(x, indices);
  ASSERT_EQ(g.shape(), (Shape{7, 3, 2}));
  for (size_t i = 0; i < indices.size(); ++i) {
    for (int64_t j = 0; j < 6; ++j) EXPECT_EQ(g.data()[i * 6 + j], x.data()[indices[i] * 6 + j]);
  }
  const Tensor y = Normal({7, 3, 2});
  const Tensor s = ScatterAddRows(y, indices, 6);
  ASSERT_EQ(s.shape(), (Shape{6, 3, 2}));
  // Direct reference with repeated indices.
  std::vector<double> ref(36, 0.0);
  for (size_t i = 0; i < indices.size(); ++i) {
    for (int64_t j = 0; j < 6; ++j) ref[indices[i] * 6 + j] += y.data()[i * 6 + j];
  }
  ExpectClose(s, Ref{{6, 3, 2}, ref}, 1e-6, 1e-6, "ScatterAddRows");
  EXPECT_NEAR(Dot(g, y), Dot(x, s), 1e-5) << "<IndexRows(x), y> == <x, ScatterAddRows(y)>";
  EXPECT_EQ(IndexRows(x, {}).shape(), (Shape{0, 3, 2}));
}

TEST_P(TensorMathTest, BroadcastToAndSumToAreAdjoint) {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{7}, {5, 7}},   {{5, 1}, {5, 7}}, {{}, {4, 3}},           {{1, 3, 1, 1}, {2, 3, 4, 5}},
      {{3, 1}, {4, 3, 6}}, {{2, 3}, {2, 3}}, {{1, 1}, {64, 300}}, {{300}, {64, 300}}, {{64, 1}, {64, 300}},
  };
  for (const auto& [small, big] : cases) {
    const Tensor x = Normal(small);
    const Tensor b = BroadcastTo(x, big);
    ExpectClose(b, RefBroadcastTo(x, big), 0, 0, "BroadcastTo " + Str(small) + " -> " + Str(big));
    const Tensor y = Normal(big);
    const Tensor s = SumTo(y, small);
    ASSERT_EQ(s.shape(), small);
    // Reference: sum over the broadcast pattern.
    Ref ref{small, std::vector<double>(NumElements(small), 0.0)};
    std::vector<double> abs_sum(NumElements(small), 0.0);
    for (int64_t f = 0; f < y.numel(); ++f) {
      const int64_t to = BroadcastFlat(Unravel(f, big), small);
      ref.v[to] += At(y, f);
      abs_sum[to] += std::fabs(At(y, f));
    }
    // Float32 summation errs by up to about log2(n) * 2^-24 * sum |y| whatever the order (which
    // differs between oneDNN's AVX2 and AVX-512 reductions): [64, 300] -> [1, 1] has sum |y| ~ 1.5e4
    // and a sum ~ 5, so the tolerance scales with sum |y|, not with the sum.
    const double scale = *std::max_element(abs_sum.begin(), abs_sum.end());
    ExpectClose(s, ref, 1e-4 + 1e-6 * scale, 1e-5, "SumTo " + Str(big) + " -> " + Str(small));
    EXPECT_NEAR(Dot(b, y), Dot(x, s), 1e-4 + 1e-6 * AbsDot(b, y)) << Str(small) << " / " << Str(big);
  }
}

TEST_P(TensorMathTest, EqualAndGreaterEqualBroadcast) {
  Tensor a = Uniform({4, 6}, 0, 3);
  Tensor b = Uniform({6}, 0, 3);
  for (float& v : a.mutable_span()) v = std::floor(v);
  for (float& v : b.mutable_span()) v = std::floor(v);
  const Tensor eq = Equal(a, b);
  const Tensor ge = GreaterEqual(a, b);
  const Tensor ge_rev = GreaterEqual(b, a);
  ASSERT_EQ(eq.shape(), (Shape{4, 6}));
  ASSERT_EQ(ge_rev.shape(), (Shape{4, 6}));
  int equal_count = 0;
  for (int64_t i = 0; i < 4; ++i) {
    for (int64_t j = 0; j < 6; ++j) {
      const float x = a.data()[i * 6 + j], y = b.data()[j];
      EXPECT_EQ(eq.data()[i * 6 + j], x == y ? 1.0f : 0.0f);
      EXPECT_EQ(ge.data()[i * 6 + j], x >= y ? 1.0f : 0.0f);
      EXPECT_EQ(ge_rev.data()[i * 6 + j], y >= x ? 1.0f : 0.0f);
      equal_count += x == y;
    }
  }
  EXPECT_GT(equal_count, 0);  // the test data has ties
}

TEST_P(TensorMathTest, SumAllAndMaxAbsDiff) {
  const Tensor x = Normal({123, 7});
  double ref = 0.0;
  for (float v : x.span()) ref += v;
  EXPECT_NEAR(SumAll(x), ref, 1e-9);
  EXPECT_EQ(SumAll(Tensor::Zeros({0})), 0.0);
  const Tensor a = Tensor::FromVector({4}, {1, -2, kInf, 0});
  const Tensor b = Tensor::FromVector({4}, {1.5f, 1, kInf, 0});
  EXPECT_EQ(MaxAbsDiff(a, b), 3.0f);
  EXPECT_EQ(MaxAbsDiff(a, a), 0.0f);
  const Tensor c = Tensor::FromVector({4}, {1, -2, std::nanf(""), 0});
  EXPECT_TRUE(std::isnan(MaxAbsDiff(a, c)));
}

TEST_P(TensorMathTest, PrimitiveCacheIsReusedForRepeatedShapes) {
  OneDnnContext& ctx = OneDnnContext::Get();
  const auto run = [&](int64_t rows) {
    const Tensor x = Normal({rows, 300}), w = Normal({300, 40}), bias = Normal({300});
    (void)Binary(BinaryKind::kAdd, x, bias);
    (void)Binary(BinaryKind::kSub, bias, x);
    (void)Unary(UnaryKind::kTanh, x);
    (void)Reduce(ReduceKind::kSum, x, {1}, false);
    (void)Reduce(ReduceKind::kMax, x, {0}, true);
    (void)LogSumExp(x, {1}, false);
    (void)Softmax(x, 1);
    (void)LogSoftmax(x, 0);
    (void)MatMul(x, w);
    (void)MatMul(x, x, false, true);
  };
  // Shapes no other test uses, distinct per kernel path.
  const int64_t rows = 1001 + 2 * static_cast<int64_t>(GetParam());
  run(rows);
  const size_t warm = ctx.cache_size();
  run(rows);
  run(rows);
  EXPECT_EQ(ctx.cache_size(), warm);
  run(rows + 1);
  if (GetParam() == KernelPath::kLoop) {
    EXPECT_EQ(ctx.cache_size(), warm);  // loops never create primitives
  } else {
    EXPECT_GT(ctx.cache_size(), warm);
  }
}

TEST_P(TensorMathTest, ThreadCountChangesKeepResultsCorrect) {
  const int threads = GetNumThreads();
  const Tensor a = Normal({70, 90}), b = Normal({90, 30});
  Ref ref;
  std::vector<double> abs_sum;
  RefMatMul(a, b, false, false, &ref, &abs_sum);
  for (int t : {1, 2}) {
    SetNumThreads(t);
    const Tensor c = MatMul(a, b);
    for (int64_t i = 0; i < c.numel(); ++i) ASSERT_NEAR(c.data()[i], ref.v[i], 1e-4 + 2e-6 * abs_sum[i]);
    ExpectClose(Reduce(ReduceKind::kSum, a, {1}, false), RefReduce(ReduceKind::kSum, a, {1}, false), 1e-4, 1e-5,
                "sum with " + std::to_string(t) + " threads");
  }
  SetNumThreads(threads);
}

// ---------------------------------------------------------------------------------------
// Shape errors abort with both shapes in the message.

class TensorMathDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(TensorMathDeathTest, ShapeErrorsNameBothShapes) {
  EXPECT_DEATH(Binary(BinaryKind::kAdd, Tensor::Zeros({5, 7}), Tensor::Zeros({5})), "\\[5, 7\\] and \\[5\\]");
  EXPECT_DEATH(MatMul(Tensor::Zeros({3, 4}), Tensor::Zeros({5, 6})), "\\[3, 4\\] @ \\[5, 6\\]");
  EXPECT_DEATH(MatMul(Tensor::Zeros({2, 3, 4}), Tensor::Zeros({3, 4, 6})), "\\[2, 3, 4\\] @ \\[3, 4, 6\\]");
  EXPECT_DEATH(BroadcastTo(Tensor::Zeros({3}), {3, 2}), "\\[3\\] to \\[3, 2\\]");
  EXPECT_DEATH(SumTo(Tensor::Zeros({3, 2}), {3}), "\\[3, 2\\] to \\[3\\]");
  EXPECT_DEATH(MaxAbsDiff(Tensor::Zeros({2}), Tensor::Zeros({3})), "\\[2\\] and \\[3\\]");
  EXPECT_DEATH(Concat({Tensor::Zeros({2, 3}), Tensor::Zeros({3, 3})}, 1), "\\[2, 3\\] and \\[3, 3\\]");
  EXPECT_DEATH(PadSlice(Tensor::Zeros({2, 3}), {2, 4}, 0, 0), "\\[2, 3\\] into \\[2, 4\\]");
  EXPECT_DEATH(Slice(Tensor::Zeros({2, 3}), 1, 2, 4), "\\[2, 4\\) along axis 1 of shape \\[2, 3\\]");
  EXPECT_DEATH(IndexRows(Tensor::Zeros({2, 3}), {2}), "index 2 at position 0 out of range for shape \\[2, 3\\]");
  EXPECT_DEATH(Permute(Tensor::Zeros({2, 3}), {0, 0}), "permutation \\[0, 0\\] of shape \\[2, 3\\]");
  EXPECT_DEATH(Reduce(ReduceKind::kSum, Tensor::Zeros({2, 3}), {1, -1}, false), "repeated");
  Tensor wrong = Tensor::Zeros({3, 5});
  EXPECT_DEATH(MatMulInto(Tensor::Zeros({3, 4}), Tensor::Zeros({4, 6}), false, false, &wrong),
               "output of shape \\[3, 5\\] for a product of shape \\[3, 6\\]");
  Tensor square = Tensor::Zeros({4, 4});
  EXPECT_DEATH(MatMulInto(square, Tensor::Zeros({4, 4}), false, false, &square), "overlaps an input");
}

}  // namespace
}  // namespace otgen::nn::math
