#include "apps/eval/mode_coverage.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nn/status_macros.h"

namespace otgen::eval {

absl::Status ModeCoverageOptions::Validate() const {
  if (!(std_multiple > 0.0) || !std::isfinite(std_multiple)) {
    return absl::InvalidArgumentError(absl::StrCat("std_multiple: expected a finite value > 0, got ", std_multiple));
  }
  return absl::OkStatus();
}

std::string ModeCoverageResult::BriefReport() const {
  return absl::StrFormat("modes %d/%d, HQ %.2f%% (%d/%d), reverse KL %.4g", modes_captured, num_modes,
                         100.0 * hq_fraction, hq_count, num_samples, reverse_kl);
}

absl::StatusOr<ModeCoverageResult> EvaluateModeCoverage(const Eigen::Ref<const ot::RowMatrixXf>& samples,
                                                        const data::GaussianMixture2d& mixture,
                                                        const ModeCoverageOptions& options) {
  OTGEN_RETURN_IF_ERROR(options.Validate());
  if (samples.rows() < 1 || samples.cols() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("samples: expected n >= 1 rows of 2 coordinates, got ", samples.rows(), " x ", samples.cols()));
  }
  if (mixture.means.empty() || !(mixture.stddev > 0.0) || !std::isfinite(mixture.stddev)) {
    return absl::InvalidArgumentError(absl::StrCat("mixture: expected at least one mean and a finite stddev > 0, got ",
                                                   mixture.means.size(), " means and stddev ", mixture.stddev));
  }
  const int k = static_cast<int>(mixture.means.size());
  const double radius = options.std_multiple * mixture.stddev;
  const double radius2 = radius * radius;
  ModeCoverageResult r;
  r.num_samples = samples.rows();
  r.num_modes = k;
  r.hq_per_mode.assign(k, 0);
  r.nearest_per_mode.assign(k, 0);
  for (Eigen::Index i = 0; i < samples.rows(); ++i) {
    const double x = samples(i, 0), y = samples(i, 1);
    if (!std::isfinite(x) || !std::isfinite(y)) {
      return absl::InvalidArgumentError(
          absl::StrCat("samples: row ", i, " is (", x, ", ", y, "); expected finite coordinates"));
    }
    int best = 0;
    double best_d2 = std::numeric_limits<double>::infinity();
    for (int m = 0; m < k; ++m) {
      const double dx = x - mixture.means[m][0], dy = y - mixture.means[m][1];
      const double d2 = dx * dx + dy * dy;
      if (d2 < best_d2) {
        best_d2 = d2;
        best = m;
      }
    }
    ++r.nearest_per_mode[best];
    if (best_d2 < radius2) ++r.hq_per_mode[best];
  }
  for (int m = 0; m < k; ++m) {
    r.hq_count += r.hq_per_mode[m];
    if (r.hq_per_mode[m] > 0) ++r.modes_captured;
  }
  r.hq_fraction = static_cast<double>(r.hq_count) / static_cast<double>(r.num_samples);
  if (r.hq_count == 0) {
    r.reverse_kl = std::numeric_limits<double>::infinity();
  } else {
    double kl = 0.0;
    for (int m = 0; m < k; ++m) {
      if (r.hq_per_mode[m] == 0) continue;
      const double q = static_cast<double>(r.hq_per_mode[m]) / static_cast<double>(r.hq_count);
      kl += q * std::log(q * k);
    }
    r.reverse_kl = kl;
  }
  return r;
}

absl::StatusOr<ModeCoverageResult> EvaluateModeCoverage(const Eigen::Ref<const ot::RowMatrixXf>& samples,
                                                        const data::Synthetic2d& dataset,
                                                        const ModeCoverageOptions& options) {
  if (dataset.mixture() == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("dataset \"", dataset.name(),
                                                   "\" is not a Gaussian mixture; mode coverage needs mixture means "
                                                   "(grid25, ring8 and their variants)"));
  }
  return EvaluateModeCoverage(samples, *dataset.mixture(), options);
}

}  // namespace otgen::eval
