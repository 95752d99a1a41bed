// Mode coverage of 2-D samples against a Gaussian mixture: the benchmark of PacGAN/VEEGAN on
// grid25 (25 Gaussians) and ring8 (8 Gaussians), whose grid25 experiment SWGAN reports (seed
// 001, Appendix K, Fig. 3: "recovering mixture of 2D Gaussians on a grid"), and of the scaled
// WGAN-GP variants (DATASETS.md, "Mode coverage"; mixtures from data/synthetic2d.h).
//
// Protocol: draw N = 2500 samples (kModeCoverageSamples) from the generator; assign each to
// its nearest mean mu_k (Euclidean); the sample is high quality (HQ) when
// ||x - mu_k|| < 3 sigma (`std_multiple` times the mixture's standard deviation). Then
//   modes captured = #{k : at least one HQ sample assigned to mode k},
//   %HQ            = HQ count / N,
//   reverse KL     = KL(q || uniform) = sum_{k : q_k > 0} q_k log(q_k K), q_k = HQ_k / HQ count,
// with empty modes contributing 0 (and reverse KL = +infinity when there is no HQ sample).
// Reference values for real data: K/K modes, %HQ = P(chi_2 < 3) = 1 - exp(-4.5) = 98.89%
// for isotropic 2-D Gaussians, reverse KL about (K - 1) / (2 N) (0.005 for grid25 with
// N = 2500: the multinomial noise of the histogram). %HQ far above 98.9% means the samples
// collapsed onto the means.
//
// Computation in double; one pass over the samples with a brute-force nearest mean (K <= a
// few dozen). Ties go to the lower mode index.
//
// Usage:
//   OTGEN_ASSIGN_OR_RETURN(auto data, otgen::data::MakeSynthetic2d("grid25"));
//   otgen::nn::Tensor x = generator_samples;               // {2500, 2}
//   Eigen::Map<const otgen::ot::RowMatrixXf> points(x.data(), x.dim(0), 2);
//   OTGEN_ASSIGN_OR_RETURN(otgen::eval::ModeCoverageResult r,
//                          otgen::eval::EvaluateModeCoverage(points, *data));
//   std::cerr << r.BriefReport() << "\n";  // "modes 25/25, HQ 98.84% (2471/2500), reverse KL 0.00493"
#ifndef OTGEN_APPS_EVAL_MODE_COVERAGE_H_
#define OTGEN_APPS_EVAL_MODE_COVERAGE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "data/synthetic2d.h"
#include "ot/types.h"

namespace otgen::eval {

// The protocol's number of samples N.
inline constexpr int64_t kModeCoverageSamples = 2500;

struct ModeCoverageOptions {
  // A sample is HQ when its distance to the nearest mean is below std_multiple * stddev (> 0).
  double std_multiple = 3.0;

  absl::Status Validate() const;
};

struct ModeCoverageResult {
  int64_t num_samples = 0;
  int num_modes = 0;                    // K
  int modes_captured = 0;               // modes with >= 1 HQ sample
  int64_t hq_count = 0;
  double hq_fraction = 0.0;             // hq_count / num_samples
  double reverse_kl = 0.0;              // KL(HQ histogram || uniform); +inf if hq_count == 0
  std::vector<int64_t> hq_per_mode;     // K HQ counts
  std::vector<int64_t> nearest_per_mode;  // K counts of all samples by nearest mean

  // E.g. "modes 25/25, HQ 98.84% (2471/2500), reverse KL 0.00493".
  std::string BriefReport() const;
};

// Scores `samples` (n x 2, n >= 1, finite) against `mixture` (at least one mean, stddev > 0).
absl::StatusOr<ModeCoverageResult> EvaluateModeCoverage(const Eigen::Ref<const ot::RowMatrixXf>& samples,
                                                        const data::GaussianMixture2d& mixture,
                                                        const ModeCoverageOptions& options = {});
// The same against the mixture of a 2-D data set (grid25, ring8 and their variants);
// InvalidArgumentError for sets that are not Gaussian mixtures (e.g. swissroll).
absl::StatusOr<ModeCoverageResult> EvaluateModeCoverage(const Eigen::Ref<const ot::RowMatrixXf>& samples,
                                                        const data::Synthetic2d& dataset,
                                                        const ModeCoverageOptions& options = {});

}  // namespace otgen::eval

#endif  // OTGEN_APPS_EVAL_MODE_COVERAGE_H_
