#include "data/synthetic2d.h"

#include <cmath>
#include <numbers>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "data/shuffle.h"

namespace otgen::data {
namespace {

constexpr double kPi = std::numbers::pi;

// Mode of each of n points: i mod k in turn, then a Fisher-Yates shuffle (the same as
// shuffling the rows of the batch after generating it in turn).
std::vector<int> CyclicShuffledModes(int64_t n, int k, nn::Rng& rng) {
  std::vector<int> modes(n);
  for (int64_t i = 0; i < n; ++i) modes[i] = static_cast<int>(i % k);
  FisherYatesShuffle(absl::MakeSpan(modes), rng);
  return modes;
}

GaussianMixture2d Grid25(double scale, double stddev) {
  GaussianMixture2d m;
  for (int x = -2; x <= 2; ++x) {
    for (int y = -2; y <= 2; ++y) m.means.push_back({2.0 * x / scale, 2.0 * y / scale});
  }
  m.stddev = stddev / scale;
  return m;
}

GaussianMixture2d Ring8(double radius, double stddev, double scale) {
  GaussianMixture2d m;
  for (int k = 0; k < 8; ++k) {
    const double angle = 2.0 * kPi * k / 8.0;
    m.means.push_back({radius * std::cos(angle) / scale, radius * std::sin(angle) / scale});
  }
  m.stddev = stddev / scale;
  return m;
}

GaussianMixture2d FourGaussians(double scale) {
  // The W2GAN code's centres (+-0.25, +-0.25) / diag, diag = sqrt(0.25^2 + 0.25^2).
  const double c = scale * 0.25 / std::sqrt(0.25 * 0.25 + 0.25 * 0.25);
  GaussianMixture2d m;
  m.means = {{c, c}, {c, -c}, {-c, c}, {-c, -c}};
  m.stddev = 0.1;
  return m;
}

std::vector<std::array<double, 2>> CheckerboardCenters(bool target) {
  const double diag = std::sqrt(0.25 * 0.25 + 0.25 * 0.25);
  const double s = 1.5 / diag;
  if (target) return {{0.0, 0.25 * s}, {0.0, -0.25 * s}, {0.25 * s, 0.0}, {-0.25 * s, 0.0}};
  return {{0.25 * s, 0.25 * s}, {-0.25 * s, -0.25 * s}, {0.25 * s, -0.25 * s}, {-0.25 * s, 0.25 * s}, {0.0, 0.0}};
}

constexpr double kCheckerboardSide = 0.5;

}  // namespace

GaussianMixture2dSampler::GaussianMixture2dSampler(std::string name, GaussianMixture2d mixture,
                                                   ModeAssignment assignment)
    : Synthetic2d(std::move(name)), mixture_(std::move(mixture)), assignment_(assignment) {
  OTGEN_CHECK(!mixture_.means.empty(), absl::StrCat(this->name(), ": a mixture needs at least one mean"));
  OTGEN_CHECK(mixture_.stddev >= 0.0, absl::StrCat(this->name(), ": stddev must be >= 0"));
}

void GaussianMixture2dSampler::SampleInto(int64_t n, nn::Rng& rng, nn::Tensor* out) const {
  PrepareOutput(n, out);
  float* p = out->data();
  const int k = static_cast<int>(mixture_.means.size());
  std::vector<int> modes;
  if (assignment_ == ModeAssignment::kCyclicShuffled) modes = CyclicShuffledModes(n, k, rng);
  for (int64_t i = 0; i < n; ++i) {
    const int mode = assignment_ == ModeAssignment::kCyclicShuffled ? modes[i] : static_cast<int>(rng.UniformInt(k));
    const double nx = rng.Normal();
    const double ny = rng.Normal();
    p[2 * i] = static_cast<float>(mixture_.means[mode][0] + mixture_.stddev * nx);
    p[2 * i + 1] = static_cast<float>(mixture_.means[mode][1] + mixture_.stddev * ny);
  }
}

SquaresSampler::SquaresSampler(std::string name, std::vector<std::array<double, 2>> centers, double side)
    : Synthetic2d(std::move(name)), centers_(std::move(centers)), side_(side) {
  OTGEN_CHECK(!centers_.empty(), absl::StrCat(this->name(), ": needs at least one square"));
  OTGEN_CHECK(side_ >= 0.0, absl::StrCat(this->name(), ": side must be >= 0"));
}

void SquaresSampler::SampleInto(int64_t n, nn::Rng& rng, nn::Tensor* out) const {
  PrepareOutput(n, out);
  float* p = out->data();
  const std::vector<int> modes = CyclicShuffledModes(n, static_cast<int>(centers_.size()), rng);
  for (int64_t i = 0; i < n; ++i) {
    const double u1 = rng.Uniform();
    const double u2 = rng.Uniform();
    const std::array<double, 2>& c = centers_[modes[i]];
    p[2 * i] = static_cast<float>(c[0] + (u1 - 0.5) * side_);
    p[2 * i + 1] = static_cast<float>(c[1] + (u2 - 0.5) * side_);
  }
}

void SwissRollSampler::SampleInto(int64_t n, nn::Rng& rng, nn::Tensor* out) const {
  PrepareOutput(n, out);
  float* p = out->data();
  for (int64_t i = 0; i < n; ++i) {
    const double t = 1.5 * kPi * (1.0 + 2.0 * rng.UniformDouble());
    const double nx = rng.Normal();
    const double nz = rng.Normal();
    p[2 * i] = static_cast<float>((t * std::cos(t) + kNoise * nx) / kScale);
    p[2 * i + 1] = static_cast<float>((t * std::sin(t) + kNoise * nz) / kScale);
  }
}

TwoSpiralsSampler::TwoSpiralsSampler(bool target)
    : Synthetic2d(target ? "2spirals_target" : "2spirals_source"), target_(target) {}

void TwoSpiralsSampler::SampleInto(int64_t n, nn::Rng& rng, nn::Tensor* out) const {
  PrepareOutput(n, out);
  float* p = out->data();
  constexpr double kDegToRad = 2.0 * kPi / 360.0;
  const double sign = target_ ? -1.0 : 1.0;
  for (int64_t i = 0; i < n; ++i) {
    const double angle = kStartDegrees * kDegToRad + std::sqrt(rng.UniformDouble()) * kSpanDegrees * kDegToRad;
    const double u1 = rng.Uniform();
    const double u2 = rng.Uniform();
    p[2 * i] = static_cast<float>(kScale * (sign * std::cos(angle) * angle + u1 * kNoise));
    p[2 * i + 1] = static_cast<float>(kScale * (-sign * std::sin(angle) * angle + u2 * kNoise));
  }
}

std::vector<std::string> Synthetic2dNames() {
  return {"grid25",
          "grid25_wgangp",
          "ring8",
          "ring8_wgangp",
          "swissroll",
          "4gaussians_source",
          "4gaussians_target",
          "checkerboard_source",
          "checkerboard_target",
          "2spirals_source",
          "2spirals_target"};
}

absl::StatusOr<std::unique_ptr<Synthetic2d>> MakeSynthetic2d(std::string_view name) {
  std::unique_ptr<Synthetic2d> d;
  if (name == "grid25") {
    d = std::make_unique<GaussianMixture2dSampler>("grid25", Grid25(1.0, 0.05), ModeAssignment::kRandom);
  } else if (name == "grid25_wgangp") {
    d = std::make_unique<GaussianMixture2dSampler>("grid25_wgangp", Grid25(2.828, 0.05), ModeAssignment::kRandom);
  } else if (name == "ring8") {
    d = std::make_unique<GaussianMixture2dSampler>("ring8", Ring8(1.0, 0.01, 1.0), ModeAssignment::kRandom);
  } else if (name == "ring8_wgangp") {
    d = std::make_unique<GaussianMixture2dSampler>("ring8_wgangp", Ring8(2.0, 0.02, 1.414), ModeAssignment::kRandom);
  } else if (name == "swissroll") {
    d = std::make_unique<SwissRollSampler>();
  } else if (name == "4gaussians_source") {
    d = std::make_unique<GaussianMixture2dSampler>("4gaussians_source", FourGaussians(1.0),
                                                   ModeAssignment::kCyclicShuffled);
  } else if (name == "4gaussians_target") {
    d = std::make_unique<GaussianMixture2dSampler>("4gaussians_target", FourGaussians(2.0),
                                                   ModeAssignment::kCyclicShuffled);
  } else if (name == "checkerboard_source") {
    d = std::make_unique<SquaresSampler>("checkerboard_source", CheckerboardCenters(false), kCheckerboardSide);
  } else if (name == "checkerboard_target") {
    d = std::make_unique<SquaresSampler>("checkerboard_target", CheckerboardCenters(true), kCheckerboardSide);
  } else if (name == "2spirals_source") {
    d = std::make_unique<TwoSpiralsSampler>(false);
  } else if (name == "2spirals_target") {
    d = std::make_unique<TwoSpiralsSampler>(true);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown 2-D data set \"", std::string(name),
                                                   "\"; valid names: ", absl::StrJoin(Synthetic2dNames(), ", ")));
  }
  return d;
}

absl::StatusOr<Synthetic2dPair> MakeSynthetic2dPair(std::string_view name) {
  if (name != "4gaussians" && name != "checkerboard" && name != "2spirals") {
    return absl::InvalidArgumentError(absl::StrCat("unknown W2GAN 2-D pair \"", std::string(name),
                                                   "\"; valid names: 4gaussians, checkerboard, 2spirals"));
  }
  Synthetic2dPair pair;
  absl::StatusOr<std::unique_ptr<Synthetic2d>> source = MakeSynthetic2d(std::string(name) + "_source");
  if (!source.ok()) return source.status();
  absl::StatusOr<std::unique_ptr<Synthetic2d>> target = MakeSynthetic2d(std::string(name) + "_target");
  if (!target.ok()) return target.status();
  pair.source = *std::move(source);
  pair.target = *std::move(target);
  return pair;
}

}  // namespace otgen::data
