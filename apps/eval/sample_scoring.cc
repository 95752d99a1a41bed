#include "apps/eval/sample_scoring.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "apps/common/file_io.h"
#include "apps/eval/npy.h"
#include "data/synthetic2d.h"
#include "nn/status_macros.h"

namespace otgen::eval {
namespace {

// Values this far outside the nominal pixel range are reported as a warning.
constexpr float kRangeSlack = 1e-3f;
// Values beyond this magnitude cannot be pixels in [-1, 1] or [0, 1] (e.g. bytes 0-255).
constexpr float kMaxPixelMagnitude = 2.0f;

absl::Status WithPrefix(const absl::Status& s, absl::string_view prefix) {
  return absl::Status(s.code(), absl::StrCat(prefix, s.message()));
}

std::string Csv(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return absl::StrFormat("%.9g", v);
}

absl::StatusOr<PixelRange> ResolvePixelRange(const std::string& name, float min_value, bool* guessed) {
  *guessed = false;
  if (name == "symmetric" || name == "[-1,1]") return PixelRange::kSymmetric;
  if (name == "unit" || name == "[0,1]") return PixelRange::kUnit;
  if (name == "auto" || name.empty()) {
    *guessed = true;
    // Symmetric images reach -1 (MNIST's background); [0, 1] images from a tanh generator
    // trained on [0, 1] data overshoot below 0 by a little (SDOT default run: min -0.23).
    return min_value < -0.5f ? PixelRange::kSymmetric : PixelRange::kUnit;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--pixel_range: expected auto, symmetric ([-1,1]) or unit ([0,1]), got \"", name, "\""));
}

absl::StatusOr<ModeCoverageResult> Coverage(const Eigen::Ref<const ot::RowMatrixXf>& points, const std::string& name,
                                            const ModeCoverageOptions& options) {
  OTGEN_ASSIGN_OR_RETURN(std::unique_ptr<data::Synthetic2d> set, data::MakeSynthetic2d(name));
  if (set->mixture() == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("--dataset: ", name,
                                                   " is not a Gaussian mixture, so mode coverage does not apply; "
                                                   "expected one of ",
                                                   absl::StrJoin(MixtureDatasetNames(), ", ")));
  }
  return EvaluateModeCoverage(points, *set->mixture(), options);
}

}  // namespace

absl::StatusOr<SampleKind> SampleKindFromShape(const nn::Shape& s) {
  if (s.size() == 2 && s[1] == 784) return SampleKind::kMnistImages;
  if (s.size() == 3 && s[1] == 28 && s[2] == 28) return SampleKind::kMnistImages;
  if (s.size() == 4 && s[1] == 1 && s[2] == 28 && s[3] == 28) return SampleKind::kMnistImages;
  if (s.size() == 2 && s[1] == 2) return SampleKind::kPoints2d;
  return absl::InvalidArgumentError(
      absl::StrCat("--samples: expected MNIST images [N, 784], [N, 1, 28, 28] or [N, 28, 28], or 2-D points "
                   "[N, 2]; got an array of shape ",
                   nn::ShapeToString(s)));
}

std::vector<std::string> MixtureDatasetNames() {
  std::vector<std::string> out;
  for (const std::string& name : data::Synthetic2dNames()) {
    absl::StatusOr<std::unique_ptr<data::Synthetic2d>> set = data::MakeSynthetic2d(name);
    if (set.ok() && (*set)->mixture() != nullptr) out.push_back(name);
  }
  return out;
}

absl::StatusOr<SampleScores> ScoreSamples(const nn::Tensor& samples, const SampleScoringOptions& options,
                                          const MnistScorerProvider& mnist_scorer) {
  if (!samples.defined()) return absl::InvalidArgumentError("--samples: expected an array, got none");
  OTGEN_ASSIGN_OR_RETURN(const SampleKind kind, SampleKindFromShape(samples.shape()));
  const std::vector<std::string> mixtures = MixtureDatasetNames();
  SampleScores out;
  out.kind = kind;
  out.num_samples = samples.dim(0);
  if (out.num_samples < 1) return absl::InvalidArgumentError("--samples: expected at least one sample, got 0");
  const absl::Span<const float> values = samples.span();
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      const int64_t row_size = samples.numel() / samples.dim(0);
      return absl::InvalidArgumentError(absl::StrCat("--samples: sample ", i / row_size, " holds the non-finite value ",
                                                     values[i], "; expected finite values"));
    }
  }
  out.min_value = *std::min_element(values.begin(), values.end());
  out.max_value = *std::max_element(values.begin(), values.end());

  // The data set, checked against the kind.
  const bool is_mixture = std::find(mixtures.begin(), mixtures.end(), options.dataset) != mixtures.end();
  if (!options.dataset.empty() && options.dataset != "mnist" && !is_mixture) {
    return absl::InvalidArgumentError(absl::StrCat("--dataset: expected mnist or a Gaussian-mixture 2-D set (",
                                                   absl::StrJoin(mixtures, ", "), "), got \"", options.dataset,
                                                   "\""));
  }
  if (options.dataset == "mnist" && kind != SampleKind::kMnistImages) {
    return absl::InvalidArgumentError(
        absl::StrCat("--samples: --dataset=mnist expects images [N, 784], [N, 1, 28, 28] or [N, 28, 28], got ",
                     nn::ShapeToString(samples.shape())));
  }
  if (is_mixture && kind != SampleKind::kPoints2d) {
    return absl::InvalidArgumentError(absl::StrCat("--samples: --dataset=", options.dataset,
                                                   " expects 2-D points [N, 2], got ",
                                                   nn::ShapeToString(samples.shape())));
  }

  if (kind == SampleKind::kMnistImages) {
    out.dataset = "mnist";
    out.dataset_guessed = options.dataset.empty();
    OTGEN_ASSIGN_OR_RETURN(out.pixel_range, ResolvePixelRange(options.pixel_range, out.min_value,
                                                              &out.pixel_range_guessed));
    if (std::max(std::fabs(out.min_value), std::fabs(out.max_value)) > kMaxPixelMagnitude) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "--samples: pixel values span [%g, %g]; expected images in [-1, 1] or [0, 1] (rescale byte images by "
          "1/255)",
          out.min_value, out.max_value));
    }
    if (!mnist_scorer) return absl::InvalidArgumentError("ScoreSamples: no MNIST scorer for image samples");
    absl::StatusOr<const MnistSampleScorer*> scorer = mnist_scorer();
    if (!scorer.ok()) {
      return absl::Status(scorer.status().code(),
                          absl::StrCat("MNIST classifier and reference data: ", scorer.status().message()));
    }
    if (*scorer == nullptr) return absl::InvalidArgumentError("ScoreSamples: the MNIST scorer provider gave null");
    OTGEN_ASSIGN_OR_RETURN(out.mnist, (*scorer)->Score(samples, out.pixel_range));
    OTGEN_ASSIGN_OR_RETURN(out.mnist_baseline, (*scorer)->RealVsRealBaseline());
    return out;
  }

  const Eigen::Map<const ot::RowMatrixXf> points(samples.data(), samples.dim(0), 2);
  if (!options.dataset.empty()) {
    out.dataset = options.dataset;
    OTGEN_ASSIGN_OR_RETURN(out.coverage, Coverage(points, options.dataset, options.mode_coverage));
    return out;
  }
  out.dataset_guessed = true;
  for (const std::string& name : mixtures) {
    OTGEN_ASSIGN_OR_RETURN(ModeCoverageResult r, Coverage(points, name, options.mode_coverage));
    if (!out.coverage.has_value() || r.hq_count > out.coverage->hq_count) {
      out.coverage = r;
      out.dataset = name;
    }
    out.candidates.emplace_back(name, std::move(r));
  }
  return out;
}

absl::StatusOr<SampleScores> ScoreSamplesFile(const std::string& path, const SampleScoringOptions& options,
                                              const MnistScorerProvider& mnist_scorer) {
  absl::StatusOr<nn::Tensor> samples = ReadNpyTensor(path);
  if (!samples.ok()) return WithPrefix(samples.status(), "--samples: ");
  absl::StatusOr<SampleScores> scores = ScoreSamples(*samples, options, mnist_scorer);
  if (!scores.ok()) {
    // Failures of the reference data are not about the file.
    if (absl::StartsWith(scores.status().message(), "MNIST classifier")) return scores.status();
    return WithPrefix(scores.status(), absl::StrCat(path, ": "));
  }
  return scores;
}

std::string SampleScores::Report() const {
  std::string out;
  if (kind == SampleKind::kMnistImages) {
    absl::StrAppend(&out, absl::StrFormat("%d MNIST images, pixel range %s%s (values in [%.4g, %.4g])\n", num_samples,
                                          pixel_range == PixelRange::kSymmetric ? "[-1, 1]" : "[0, 1]",
                                          pixel_range_guessed ? " (guessed; set --pixel_range)" : "", min_value,
                                          max_value));
    const float lo = pixel_range == PixelRange::kSymmetric ? -1.0f : 0.0f;
    if (min_value < lo - kRangeSlack || max_value > 1.0f + kRangeSlack) {
      absl::StrAppend(&out, "warning: values lie outside the pixel range\n");
    }
    if (mnist.has_value() && mnist->num_samples < num_samples) {
      absl::StrAppend(&out, absl::StrFormat("scored the first %d images (the protocol's sample count)\n",
                                            mnist->num_samples));
    }
    if (num_samples < kMnistProtocolSamples) {
      absl::StrAppend(&out, absl::StrFormat("note: the protocol scores %d images; fewer samples bias FD upwards\n",
                                            kMnistProtocolSamples));
    }
    if (mnist.has_value() && mnist_baseline.has_value()) {
      absl::StrAppend(&out, FormatMnistReport(*mnist, *mnist_baseline));
    }
    return out;
  }
  absl::StrAppend(&out, absl::StrFormat("%d 2-D points, data set %s%s\n", num_samples, dataset,
                                        dataset_guessed ? " (best fit; set --dataset)" : ""));
  if (num_samples != kModeCoverageSamples) {
    absl::StrAppend(&out, absl::StrFormat("note: the protocol draws %d samples\n", kModeCoverageSamples));
  }
  if (coverage.has_value()) {
    absl::StrAppend(&out, "mode coverage: ", coverage->BriefReport(), "\n");
    absl::StrAppend(&out, "HQ samples per mode: [", absl::StrJoin(coverage->hq_per_mode, " "), "]\n");
  }
  if (!candidates.empty()) {
    absl::StrAppend(&out, "all mixtures tried:\n");
    for (const auto& [name, r] : candidates) {
      absl::StrAppend(&out, absl::StrFormat("  %-20s %s\n", name, r.BriefReport()));
    }
  }
  return out;
}

std::vector<std::string> SampleScores::RowColumns() const {
  std::vector<std::string> cols = {"n"};
  if (kind == SampleKind::kMnistImages) {
    for (std::string& c : MnistSampleMetrics::RowColumns()) cols.push_back(std::move(c));
    for (std::string& c : MnistSampleMetrics::RowColumns("real_")) cols.push_back(std::move(c));
  } else {
    for (const char* c : {"modes_captured", "num_modes", "hq_fraction", "reverse_kl"}) cols.push_back(c);
  }
  return cols;
}

std::map<std::string, double> SampleScores::AsRow() const {
  std::map<std::string, double> row;
  if (kind == SampleKind::kMnistImages) {
    if (mnist.has_value()) {
      row["n"] = static_cast<double>(mnist->num_samples);
      row.merge(mnist->AsRow());
    }
    if (mnist_baseline.has_value()) row.merge(mnist_baseline->AsRow("real_"));
  } else if (coverage.has_value()) {
    row["n"] = static_cast<double>(coverage->num_samples);
    row["modes_captured"] = coverage->modes_captured;
    row["num_modes"] = coverage->num_modes;
    row["hq_fraction"] = coverage->hq_fraction;
    row["reverse_kl"] = coverage->reverse_kl;
  }
  return row;
}

absl::Status AppendScoresCsv(const std::string& path, const SampleScores& scores) {
  const std::vector<std::string> cols = scores.RowColumns();
  const std::map<std::string, double> row = scores.AsRow();
  const std::string header = absl::StrJoin(cols, ",");
  std::string text;
  absl::StatusOr<std::string> existing = apps::ReadFileToString(path);
  if (existing.ok() && !existing->empty()) {
    const absl::string_view first = absl::StripTrailingAsciiWhitespace(
        absl::string_view(*existing).substr(0, existing->find('\n')));
    if (first != header) {
      return absl::FailedPreconditionError(absl::StrCat(path, ": the existing header \"", first,
                                                        "\" differs from this row's columns \"", header,
                                                        "\"; write to another file"));
    }
    if (existing->back() != '\n') {
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": does not end with a newline (an interrupted write?); fix or remove it"));
    }
    text = *std::move(existing);
  } else if (existing.ok() || absl::IsNotFound(existing.status())) {
    text = absl::StrCat(header, "\n");
  } else {
    return existing.status();
  }
  std::vector<std::string> fields;
  for (const std::string& c : cols) {
    auto it = row.find(c);
    fields.push_back(it == row.end() ? "" : Csv(it->second));
  }
  absl::StrAppend(&text, absl::StrJoin(fields, ","), "\n");
  return apps::WriteFileAtomically(path, text);
}

}  // namespace otgen::eval
