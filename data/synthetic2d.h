// The 2-D toy distributions of the seeds (DATASETS.md), as Samplers of shape {2}: training
// draws a fresh batch every step from the caller's nn::Rng.
//
//   name            definition (all equal mixture weights)
//   grid25          25 Gaussians, means {-4,-2,0,2,4}^2, std 0.05 (PacGAN/VEEGAN mode-coverage
//                   benchmark, used by SWGAN, seed 001)
//   grid25_wgangp   WGAN-GP toy: the same grid divided by 2.828 (spacing 0.7072, std 0.01768)
//   ring8           8 Gaussians, means (cos, sin)(2 pi k / 8), std 0.01
//   ring8_wgangp    WGAN-GP toy: means 2 (cos, sin)(2 pi k / 8) / 1.414, std 0.02 / 1.414
//   swissroll       WGAN-GP toy (sklearn make_swiss_roll, noise 0.25): t = 1.5 pi (1 + 2 U),
//                   (x, z) = (t cos t, t sin t) + N(0, 0.25^2 I), divided by 7.5
//   W2GAN pairs (seed 002, Section 6.1; source Pz, target Px), from the authors' code:
//   4gaussians_source / _target   means (+-1, +-1)/sqrt(2) times 1 (source) or 2 (target),
//                   std 0.1; point i of a batch uses mean i mod 4, then the batch is shuffled
//   checkerboard_source / _target with diag = sqrt(0.25^2 + 0.25^2), square centres
//                   1.5 {(.25,.25), (-.25,-.25), (.25,-.25), (-.25,.25), (0,0)} / diag (source)
//                   and 1.5 {(0,.25), (0,-.25), (.25,0), (-.25,0)} / diag (target); point =
//                   centre + (U[0,1)^2 - 0.5) 0.5; point i uses centre i mod K, then the batch
//                   is shuffled (as 4gaussians; the authors' generator does the same)
//   2spirals_source / _target     n = (0.001 + sqrt(U) 570) degrees in radians, e = 0.1/0.15,
//                   source 0.15 (n cos n + u1 e, -n sin n + u2 e), target
//                   0.15 (-n cos n + u1 e, n sin n + u2 e), u1, u2 ~ U[0, 1)
//
// Modes assigned "in turn, then shuffled" give every batch of a multiple of K points
// exactly n/K points per mode; the shuffle is a Fisher-Yates permutation of the rows.
// Mixtures (grid25, ring8 and variants, 4gaussians) expose their means and std through
// mixture(), which the mode-coverage evaluation needs. Computation is in double, stored
// as float. Random draws: with cyclic assignment first the Fisher-Yates shuffle of the
// batch's modes; then per point, in order, the mode (UniformInt, random assignment only)
// and the noise coordinates (x first).
//
//   OTGEN_ASSIGN_OR_RETURN(std::unique_ptr<Synthetic2d> data, MakeSynthetic2d("grid25"));
//   nn::Tensor x = data->Sample(256, rng);           // {256, 2}
//   const GaussianMixture2d* mix = data->mixture();  // 25 means, stddev 0.05
#ifndef OTGEN_DATA_SYNTHETIC2D_H_
#define OTGEN_DATA_SYNTHETIC2D_H_

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "data/sampler.h"
#include "nn/random.h"
#include "nn/tensor.h"

namespace otgen::data {

// An equal-weight mixture of isotropic 2-D Gaussians.
struct GaussianMixture2d {
  std::vector<std::array<double, 2>> means;
  double stddev = 0.0;
};

// A 2-D distribution: samples are {n, 2}.
class Synthetic2d : public Sampler {
 public:
  explicit Synthetic2d(std::string name) : name_(std::move(name)) {}

  const nn::Shape& sample_shape() const override { return shape_; }
  // The registry name ("grid25", "checkerboard_target", ...).
  const std::string& name() const { return name_; }
  // Means and std for Gaussian mixtures; nullptr otherwise.
  virtual const GaussianMixture2d* mixture() const { return nullptr; }

 private:
  std::string name_;
  nn::Shape shape_ = {2};
};

// How mixture components are assigned to the points of a batch.
enum class ModeAssignment {
  kRandom,          // each point draws its mode uniformly (UniformInt)
  kCyclicShuffled,  // point i takes mode i mod K, then the rows are shuffled
};

class GaussianMixture2dSampler : public Synthetic2d {
 public:
  // Requires at least one mean and stddev >= 0 (checked).
  GaussianMixture2dSampler(std::string name, GaussianMixture2d mixture, ModeAssignment assignment);

  void SampleInto(int64_t n, nn::Rng& rng, nn::Tensor* out) const override;
  const GaussianMixture2d* mixture() const override { return &mixture_; }
  ModeAssignment assignment() const { return assignment_; }

 private:
  GaussianMixture2d mixture_;
  ModeAssignment assignment_;
};

// Uniform on axis-aligned squares of side `side` around `centers`, centres in turn, then
// shuffled.
class SquaresSampler : public Synthetic2d {
 public:
  SquaresSampler(std::string name, std::vector<std::array<double, 2>> centers, double side);

  void SampleInto(int64_t n, nn::Rng& rng, nn::Tensor* out) const override;
  const std::vector<std::array<double, 2>>& centers() const { return centers_; }
  double side() const { return side_; }

 private:
  std::vector<std::array<double, 2>> centers_;
  double side_;
};

// The WGAN-GP swiss roll (see the table above).
class SwissRollSampler : public Synthetic2d {
 public:
  SwissRollSampler() : Synthetic2d("swissroll") {}
  void SampleInto(int64_t n, nn::Rng& rng, nn::Tensor* out) const override;

  static constexpr double kNoise = 0.25;
  static constexpr double kScale = 7.5;
};

// W2GAN's 2-spirals, source (target = false) or target (true).
class TwoSpiralsSampler : public Synthetic2d {
 public:
  explicit TwoSpiralsSampler(bool target);
  void SampleInto(int64_t n, nn::Rng& rng, nn::Tensor* out) const override;
  bool target() const { return target_; }

  static constexpr double kStartDegrees = 0.001;
  static constexpr double kSpanDegrees = 570.0;
  static constexpr double kScale = 0.15;
  static constexpr double kNoise = 0.1 / 0.15;  // e, before scaling

 private:
  bool target_;
};

// Every name MakeSynthetic2d accepts, in table order.
std::vector<std::string> Synthetic2dNames();

// The distribution called `name`; InvalidArgumentError listing the valid names otherwise.
absl::StatusOr<std::unique_ptr<Synthetic2d>> MakeSynthetic2d(std::string_view name);

// A W2GAN source/target pair by base name: "4gaussians", "checkerboard" or "2spirals".
struct Synthetic2dPair {
  std::unique_ptr<Synthetic2d> source;
  std::unique_ptr<Synthetic2d> target;
};
absl::StatusOr<Synthetic2dPair> MakeSynthetic2dPair(std::string_view name);

}  // namespace otgen::data

#endif  // OTGEN_DATA_SYNTHETIC2D_H_
