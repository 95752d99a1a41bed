#include "data/synthetic2d.h"

#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace otgen::data {
namespace {

constexpr double kPi = std::numbers::pi;

std::unique_ptr<Synthetic2d> Make(const std::string& name) {
  absl::StatusOr<std::unique_ptr<Synthetic2d>> d = MakeSynthetic2d(name);
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? *std::move(d) : nullptr;
}

int Nearest(const std::vector<std::array<double, 2>>& means, double x, double y) {
  int best = 0;
  double best_d = 1e300;
  for (size_t k = 0; k < means.size(); ++k) {
    const double d = (x - means[k][0]) * (x - means[k][0]) + (y - means[k][1]) * (y - means[k][1]);
    if (d < best_d) {
      best_d = d;
      best = static_cast<int>(k);
    }
  }
  return best;
}

TEST(Synthetic2dTest, FactoryKnowsEveryNameAndRejectsOthers) {
  for (const std::string& name : Synthetic2dNames()) {
    std::unique_ptr<Synthetic2d> d = Make(name);
    ASSERT_NE(d, nullptr) << name;
    EXPECT_EQ(d->name(), name);
    EXPECT_EQ(d->sample_shape(), (nn::Shape{2}));
    nn::Rng rng(1);
    nn::Tensor x = d->Sample(7, rng);
    EXPECT_EQ(x.shape(), (nn::Shape{7, 2})) << name;
    for (float v : x.span()) EXPECT_TRUE(std::isfinite(v)) << name;
    EXPECT_EQ(d->Sample(0, rng).shape(), (nn::Shape{0, 2}));
  }
  EXPECT_EQ(Synthetic2dNames().size(), 11u);
  absl::Status unknown = MakeSynthetic2d("grid26").status();
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.message().find("grid26"), std::string::npos) << unknown;
  EXPECT_NE(unknown.message().find("grid25, grid25_wgangp, ring8"), std::string::npos) << unknown;
  EXPECT_NE(unknown.message().find("2spirals_target"), std::string::npos) << unknown;

  absl::StatusOr<Synthetic2dPair> pair = MakeSynthetic2dPair("checkerboard");
  ASSERT_TRUE(pair.ok());
  EXPECT_EQ(pair->source->name(), "checkerboard_source");
  EXPECT_EQ(pair->target->name(), "checkerboard_target");
  EXPECT_EQ(MakeSynthetic2dPair("grid25").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Synthetic2dTest, SeededAndBufferReuse) {
  std::unique_ptr<Synthetic2d> d = Make("swissroll");
  nn::Rng a(3), b(3);
  nn::Tensor x = d->Sample(100, a);
  nn::Tensor y;
  d->SampleInto(100, b, &y);
  for (int i = 0; i < 200; ++i) ASSERT_EQ(x.data()[i], y.data()[i]);
  const float* storage = y.data();
  d->SampleInto(100, b, &y);
  EXPECT_EQ(y.data(), storage);
  EXPECT_NE(x.data()[0], y.data()[0]);
}

// Mixture statistics: every mode populated in proportion, per-mode mean and std, and the
// high-quality fraction of the mode-coverage protocol (within 3 std: 1 - exp(-4.5)).
void CheckMixture(const std::string& name, int modes, double spacing_or_radius, double stddev, bool ring) {
  SCOPED_TRACE(name);
  std::unique_ptr<Synthetic2d> d = Make(name);
  ASSERT_NE(d, nullptr);
  const GaussianMixture2d* mix = d->mixture();
  ASSERT_NE(mix, nullptr);
  ASSERT_EQ(static_cast<int>(mix->means.size()), modes);
  EXPECT_NEAR(mix->stddev, stddev, 1e-6);
  for (const auto& m : mix->means) {
    if (ring) {
      EXPECT_NEAR(std::hypot(m[0], m[1]), spacing_or_radius, 1e-9);
    } else {
      // Grid: coordinates are multiples of the spacing in [-2, 2] spacings.
      for (double c : m) {
        const double k = c / spacing_or_radius;
        EXPECT_NEAR(k, std::round(k), 1e-9);
        EXPECT_LE(std::abs(std::round(k)), 2.0);
      }
    }
  }
  nn::Rng rng(17);
  constexpr int kN = 100000;
  nn::Tensor x = d->Sample(kN, rng);
  std::vector<int> count(modes, 0);
  std::vector<double> sx(modes, 0), sy(modes, 0), sxx(modes, 0), syy(modes, 0);
  int hq = 0;
  for (int i = 0; i < kN; ++i) {
    const double px = x.data()[2 * i], py = x.data()[2 * i + 1];
    const int k = Nearest(mix->means, px, py);
    const double dx = px - mix->means[k][0], dy = py - mix->means[k][1];
    ++count[k];
    sx[k] += dx;
    sy[k] += dy;
    sxx[k] += dx * dx;
    syy[k] += dy * dy;
    hq += std::hypot(dx, dy) < 3 * mix->stddev;
  }
  const double expected = static_cast<double>(kN) / modes;
  const double sd = std::sqrt(expected * (1 - 1.0 / modes));
  for (int k = 0; k < modes; ++k) {
    EXPECT_NEAR(count[k], expected, 5 * sd) << "mode " << k;
    EXPECT_NEAR(sx[k] / count[k], 0.0, 5 * stddev / std::sqrt(count[k]));
    EXPECT_NEAR(sy[k] / count[k], 0.0, 5 * stddev / std::sqrt(count[k]));
    EXPECT_NEAR(std::sqrt(sxx[k] / count[k]), stddev, 0.05 * stddev) << "mode " << k;
    EXPECT_NEAR(std::sqrt(syy[k] / count[k]), stddev, 0.05 * stddev) << "mode " << k;
  }
  const double hq_fraction = static_cast<double>(hq) / kN;
  EXPECT_NEAR(hq_fraction, 1.0 - std::exp(-4.5), 0.002);  // 0.98889: "about 98.9% HQ"
}

TEST(Synthetic2dTest, Grid25) { CheckMixture("grid25", 25, 2.0, 0.05, false); }
TEST(Synthetic2dTest, Grid25Wgangp) { CheckMixture("grid25_wgangp", 25, 2.0 / 2.828, 0.05 / 2.828, false); }
TEST(Synthetic2dTest, Ring8) { CheckMixture("ring8", 8, 1.0, 0.01, true); }
TEST(Synthetic2dTest, Ring8Wgangp) { CheckMixture("ring8_wgangp", 8, 2.0 / 1.414, 0.02 / 1.414, true); }

TEST(Synthetic2dTest, MixtureMeansExactly) {
  std::unique_ptr<Synthetic2d> grid = Make("grid25");
  std::vector<std::array<double, 2>> means = grid->mixture()->means;
  EXPECT_EQ(means.front(), (std::array<double, 2>{-4.0, -4.0}));
  EXPECT_EQ(means.back(), (std::array<double, 2>{4.0, 4.0}));
  std::unique_ptr<Synthetic2d> wg = Make("grid25_wgangp");
  EXPECT_NEAR(wg->mixture()->means[1][1] - wg->mixture()->means[0][1], 0.7072, 1e-4);
  EXPECT_NEAR(wg->mixture()->stddev, 0.01768, 1e-5);
  std::unique_ptr<Synthetic2d> ring = Make("ring8");
  for (int k = 0; k < 8; ++k) {
    EXPECT_NEAR(ring->mixture()->means[k][0], std::cos(2 * kPi * k / 8), 1e-12);
    EXPECT_NEAR(ring->mixture()->means[k][1], std::sin(2 * kPi * k / 8), 1e-12);
  }
  EXPECT_EQ(Make("swissroll")->mixture(), nullptr);
  EXPECT_EQ(Make("checkerboard_source")->mixture(), nullptr);
}

TEST(Synthetic2dTest, FourGaussiansInTurnThenShuffled) {
  for (const auto& [name, scale] :
       std::vector<std::pair<std::string, double>>{{"4gaussians_source", 1.0}, {"4gaussians_target", 2.0}}) {
    SCOPED_TRACE(name);
    std::unique_ptr<Synthetic2d> d = Make(name);
    const GaussianMixture2d* mix = d->mixture();
    ASSERT_NE(mix, nullptr);
    ASSERT_EQ(mix->means.size(), 4u);
    EXPECT_EQ(mix->stddev, 0.1);
    for (const auto& m : mix->means) {
      EXPECT_NEAR(std::abs(m[0]), scale / std::sqrt(2.0), 1e-12);
      EXPECT_NEAR(std::abs(m[1]), scale / std::sqrt(2.0), 1e-12);
    }
    nn::Rng rng(5);
    constexpr int kN = 1000;
    for (int rep = 0; rep < 3; ++rep) {
      nn::Tensor x = d->Sample(kN, rng);
      std::vector<int> count(4, 0);
      int in_turn = 0;
      double sxx = 0;
      for (int i = 0; i < kN; ++i) {
        const int k = Nearest(mix->means, x.data()[2 * i], x.data()[2 * i + 1]);
        ++count[k];
        in_turn += k == i % 4;
        sxx += std::pow(x.data()[2 * i] - mix->means[k][0], 2);
      }
      // Exactly N / 4 per centre in every batch (modes are > 7 std apart).
      EXPECT_EQ(count, (std::vector<int>{250, 250, 250, 250}));
      // Shuffled: the cyclic order survives only by chance (about N / 4 positions).
      EXPECT_LT(in_turn, 400);
      EXPECT_NEAR(std::sqrt(sxx / kN), 0.1, 0.01);
    }
  }
}

TEST(Synthetic2dTest, CheckerboardSquares) {
  const double diag = std::sqrt(0.25 * 0.25 + 0.25 * 0.25);
  const double c = 1.5 * 0.25 / diag;  // 1.06066
  const std::vector<std::array<double, 2>> source = {{c, c}, {-c, -c}, {c, -c}, {-c, c}, {0, 0}};
  const std::vector<std::array<double, 2>> target = {{0, c}, {0, -c}, {c, 0}, {-c, 0}};
  for (const auto& [name, centers] : std::vector<std::pair<std::string, std::vector<std::array<double, 2>>>>{
           {"checkerboard_source", source}, {"checkerboard_target", target}}) {
    SCOPED_TRACE(name);
    std::unique_ptr<Synthetic2d> d = Make(name);
    auto* squares = dynamic_cast<SquaresSampler*>(d.get());
    ASSERT_NE(squares, nullptr);
    ASSERT_EQ(squares->centers().size(), centers.size());
    for (size_t k = 0; k < centers.size(); ++k) {
      EXPECT_NEAR(squares->centers()[k][0], centers[k][0], 1e-12);
      EXPECT_NEAR(squares->centers()[k][1], centers[k][1], 1e-12);
    }
    EXPECT_EQ(squares->side(), 0.5);
    nn::Rng rng(9);
    const int k_modes = static_cast<int>(centers.size());
    const int n = 2000 * k_modes;
    nn::Tensor x = d->Sample(n, rng);
    std::vector<int> count(k_modes, 0);
    double su = 0, suu = 0;
    int in_turn = 0;
    for (int i = 0; i < n; ++i) {
      const double px = x.data()[2 * i], py = x.data()[2 * i + 1];
      const int k = Nearest(centers, px, py);
      // Inside its square [c - 0.25, c + 0.25)^2 (float rounding aside).
      ASSERT_LE(std::abs(px - centers[k][0]), 0.25 + 1e-6) << i;
      ASSERT_LE(std::abs(py - centers[k][1]), 0.25 + 1e-6) << i;
      ++count[k];
      in_turn += k == i % k_modes;
      su += px - centers[k][0];
      suu += std::pow(px - centers[k][0], 2);
    }
    for (int k = 0; k < k_modes; ++k) EXPECT_EQ(count[k], 2000) << k;
    EXPECT_LT(in_turn, n / k_modes + 300);
    EXPECT_NEAR(su / n, 0.0, 0.005);
    EXPECT_NEAR(suu / n, 0.5 * 0.5 / 12.0, 0.001);  // uniform on a side of 0.5
  }
  // The two boards interleave: no target point falls in a source square and vice versa.
  nn::Rng rng(10);
  nn::Tensor t = Make("checkerboard_target")->Sample(5000, rng);
  for (int i = 0; i < 5000; ++i) {
    for (const auto& s : source) {
      ASSERT_FALSE(std::abs(t.data()[2 * i] - s[0]) < 0.25 && std::abs(t.data()[2 * i + 1] - s[1]) < 0.25);
    }
  }
}

// E[f(t)] for t uniform on [1.5 pi, 4.5 pi] by composite Simpson's rule.
template <typename F>
double SwissRollExpectation(F f) {
  const double a = 1.5 * kPi, b = 4.5 * kPi;
  const int m = 20000;
  const double h = (b - a) / m;
  double s = f(a) + f(b);
  for (int i = 1; i < m; ++i) s += (i % 2 ? 4 : 2) * f(a + i * h);
  return s * h / 3.0 / (b - a);
}

TEST(Synthetic2dTest, SwissRollMoments) {
  std::unique_ptr<Synthetic2d> d = Make("swissroll");
  nn::Rng rng(21);
  constexpr int kN = 400000;
  nn::Tensor x = d->Sample(kN, rng);
  double mx = 0, mz = 0, mxx = 0, mzz = 0, mxz = 0;
  for (int i = 0; i < kN; ++i) {
    const double px = x.data()[2 * i], pz = x.data()[2 * i + 1];
    mx += px;
    mz += pz;
    mxx += px * px;
    mzz += pz * pz;
    mxz += px * pz;
    // Radius 7.5 |p| is t (in [1.5 pi, 4.5 pi]) plus noise of std 0.25.
    const double r = 7.5 * std::hypot(px, pz);
    ASSERT_GT(r, 1.5 * kPi - 2.0);
    ASSERT_LT(r, 4.5 * kPi + 2.0);
  }
  mx /= kN;
  mz /= kN;
  mxx /= kN;
  mzz /= kN;
  mxz /= kN;
  const double s = 7.5, noise = 0.25 * 0.25;
  const double ex = SwissRollExpectation([](double t) { return t * std::cos(t); }) / s;
  const double ez = SwissRollExpectation([](double t) { return t * std::sin(t); }) / s;
  const double exx = (SwissRollExpectation([](double t) { return std::pow(t * std::cos(t), 2); }) + noise) / (s * s);
  const double ezz = (SwissRollExpectation([](double t) { return std::pow(t * std::sin(t), 2); }) + noise) / (s * s);
  const double exz = SwissRollExpectation([](double t) { return t * t * std::cos(t) * std::sin(t); }) / (s * s);
  // Standard errors: coordinates have std ~ 1.2, second moments ~ 1.5.
  const double se1 = 5 * 1.3 / std::sqrt(kN), se2 = 5 * 2.0 / std::sqrt(kN);
  EXPECT_NEAR(mx, ex, se1);
  EXPECT_NEAR(mz, ez, se1);
  EXPECT_NEAR(mxx, exx, se2);
  EXPECT_NEAR(mzz, ezz, se2);
  EXPECT_NEAR(mxz, exz, se2);
  // The noise: sqrt(E||p||^2) versus the noise-free roll.
  EXPECT_NEAR(mxx + mzz, (SwissRollExpectation([](double t) { return t * t; }) + 2 * noise) / (s * s), 2 * se2);
}

TEST(Synthetic2dTest, SwissRollNoiseAcrossTheCurve) {
  // The squared distance of 7.5 p to the noise-free curve (t cos t, t sin t) is the noise
  // component normal to the curve: mean 0.25^2 (the arms are 2 pi apart, far beyond it).
  std::unique_ptr<Synthetic2d> d = Make("swissroll");
  nn::Rng rng(22);
  constexpr int kN = 20000;
  nn::Tensor x = d->Sample(kN, rng);
  const double lo = 1.5 * kPi, hi = 4.5 * kPi;
  double sum_d2 = 0;
  int used = 0;
  for (int i = 0; i < kN; ++i) {
    const double qx = 7.5 * x.data()[2 * i], qz = 7.5 * x.data()[2 * i + 1];
    // Candidate parameters with the point's polar angle; the right arm has t close to r.
    const double r = std::hypot(qx, qz), phi = std::atan2(qz, qx);
    double t0 = phi;
    while (t0 + 2 * kPi <= r + kPi) t0 += 2 * kPi;
    if (t0 < lo + 0.5 || t0 > hi - 0.5) continue;  // skip the ends of the roll
    const auto dist2 = [&](double t) { return std::pow(qx - t * std::cos(t), 2) + std::pow(qz - t * std::sin(t), 2); };
    // Coarse grid over t0 +- 0.5, then a fine grid around the best coarse point.
    double best_t = t0, best = dist2(t0);
    for (int j = -100; j <= 100; ++j) {
      const double t = t0 + j * 0.005;
      if (dist2(t) < best) {
        best = dist2(t);
        best_t = t;
      }
    }
    for (int j = -100; j <= 100; ++j) best = std::min(best, dist2(best_t + j * 0.00005));
    sum_d2 += best;
    ++used;
  }
  ASSERT_GT(used, kN * 8 / 10);
  EXPECT_NEAR(sum_d2 / used, 0.25 * 0.25, 0.0625 * 0.06);
}

TEST(Synthetic2dTest, TwoSpirals) {
  const double a = 0.001 * kPi / 180.0, b = 570.0 * kPi / 180.0;
  // n = a + b sqrt(U): E[n^2] = a^2 + 4ab/3 + b^2/2.
  const double en2 = a * a + 4.0 * a * b / 3.0 + b * b / 2.0;
  std::unique_ptr<Synthetic2d> source = Make("2spirals_source");
  std::unique_ptr<Synthetic2d> target = Make("2spirals_target");
  nn::Rng rng(31);
  constexpr int kN = 200000;
  nn::Tensor xs = source->Sample(kN, rng);
  nn::Tensor xt = target->Sample(kN, rng);
  for (const nn::Tensor* x : {&xs, &xt}) {
    double r2 = 0;
    for (int i = 0; i < kN; ++i) {
      // The noise 0.1 (u1, u2) has mean (0.05, 0.05) and variance 0.01 / 12 per axis.
      r2 += std::pow(x->data()[2 * i] - 0.05, 2) + std::pow(x->data()[2 * i + 1] - 0.05, 2);
    }
    EXPECT_NEAR(r2 / kN, 0.0225 * en2 + 2 * 0.01 / 12.0, 0.01);
  }
  // Target = the source spiral rotated by pi (noise aside): the means add to 2 (0.05, 0.05).
  double sx = 0, sy = 0;
  for (int i = 0; i < kN; ++i) {
    sx += xs.data()[2 * i] + xt.data()[2 * i];
    sy += xs.data()[2 * i + 1] + xt.data()[2 * i + 1];
  }
  EXPECT_NEAR(sx / kN, 0.1, 0.01);
  EXPECT_NEAR(sy / kN, 0.1, 0.01);
  // Every point lies within the noise square of the noise-free spiral.
  std::vector<std::array<double, 2>> curve_s, curve_t;
  for (int j = 0; j <= 20000; ++j) {
    const double n = a + b * j / 20000.0;
    curve_s.push_back({0.15 * std::cos(n) * n, -0.15 * std::sin(n) * n});
    curve_t.push_back({-0.15 * std::cos(n) * n, 0.15 * std::sin(n) * n});
  }
  for (int i = 0; i < 500; ++i) {
    for (const auto& [x, curve] : {std::pair{&xs, &curve_s}, std::pair{&xt, &curve_t}}) {
      const double px = x->data()[2 * i] - 0.05, py = x->data()[2 * i + 1] - 0.05;
      const int k = Nearest(*curve, px, py);
      EXPECT_LE(std::hypot(px - (*curve)[k][0], py - (*curve)[k][1]), 0.05 * std::sqrt(2.0) + 0.002);
    }
  }
}

}  // namespace
}  // namespace otgen::data
