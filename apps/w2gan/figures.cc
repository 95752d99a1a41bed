#include "apps/w2gan/figures.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nn/status_macros.h"

namespace otgen::apps::w2gan {

eval::Rgba SourceColor() { return {0.85, 0.2, 0.75, 0.8}; }
eval::Rgba TargetColor() { return {0.15, 0.65, 0.25, 0.8}; }
eval::Rgba MappedColor() { return {0.85, 0.1, 0.1, 0.9}; }

Box BoundingBox(const std::vector<ot::RowMatrixXf>& sets, double margin) {
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const ot::RowMatrixXf& s : sets) {
    for (Eigen::Index i = 0; i < s.rows(); ++i) {
      if (!std::isfinite(s(i, 0)) || !std::isfinite(s(i, 1))) continue;
      x0 = std::min<double>(x0, s(i, 0));
      x1 = std::max<double>(x1, s(i, 0));
      y0 = std::min<double>(y0, s(i, 1));
      y1 = std::max<double>(y1, s(i, 1));
    }
  }
  if (!(x0 <= x1)) x0 = -1, x1 = 1, y0 = -1, y1 = 1;
  const double side = std::max({x1 - x0, y1 - y0, 1e-6}) * (1.0 + 2.0 * margin);
  const double cx = 0.5 * (x0 + x1), cy = 0.5 * (y0 + y1);
  return Box{cx - side / 2, cx + side / 2, cy - side / 2, cy + side / 2};
}

ot::RowMatrixXf GridPoints(const Box& box, int res) {
  ot::RowMatrixXf g(static_cast<Eigen::Index>(res) * res, 2);
  const double dx = (box.x_max - box.x_min) / res, dy = (box.y_max - box.y_min) / res;
  for (int r = 0; r < res; ++r) {
    for (int c = 0; c < res; ++c) {
      g(r * res + c, 0) = static_cast<float>(box.x_min + (c + 0.5) * dx);
      g(r * res + c, 1) = static_cast<float>(box.y_max - (r + 0.5) * dy);
    }
  }
  return g;
}

std::array<float, 3> Viridis(double t) {
  // matplotlib's viridis at t = 0, 1/8, ..., 1.
  static constexpr float kAnchors[9][3] = {
      {0.267004f, 0.004874f, 0.329415f}, {0.282327f, 0.140926f, 0.457517f}, {0.253935f, 0.265254f, 0.529983f},
      {0.206756f, 0.371758f, 0.553117f}, {0.163625f, 0.471133f, 0.558148f}, {0.127568f, 0.566949f, 0.550556f},
      {0.134692f, 0.658636f, 0.517649f}, {0.477504f, 0.821444f, 0.318195f}, {0.993248f, 0.906157f, 0.143936f}};
  if (!(t >= 0.0)) t = 0.0;
  if (t > 1.0) t = 1.0;
  const double s = t * 8.0;
  const int k = std::min(7, static_cast<int>(s));
  const double f = s - k;
  std::array<float, 3> rgb;
  for (int c = 0; c < 3; ++c) rgb[c] = static_cast<float>((1.0 - f) * kAnchors[k][c] + f * kAnchors[k + 1][c]);
  return rgb;
}

absl::Status WriteHeatMap(const std::string& path, const Eigen::Ref<const Eigen::VectorXf>& values, int res) {
  if (res < 2 || values.size() != static_cast<Eigen::Index>(res) * res) {
    return absl::InvalidArgumentError(absl::StrCat("WriteHeatMap ", path, ": expected ", res, " x ", res,
                                                   " values (res >= 2), got ", values.size()));
  }
  if (!values.allFinite()) {
    return absl::InvalidArgumentError(absl::StrCat("WriteHeatMap ", path, ": values must be finite"));
  }
  const double lo = values.minCoeff(), hi = values.maxCoeff();
  const double span = hi > lo ? hi - lo : 1.0;
  const int bar = std::max(4, res / 20), gap = std::max(2, res / 50);
  const int height = res + gap + bar;
  std::vector<float> pixels(3 * static_cast<size_t>(height) * res, 1.0f);
  auto put = [&](int r, int c, const std::array<float, 3>& rgb) {
    for (int ch = 0; ch < 3; ++ch) pixels[(static_cast<size_t>(ch) * height + r) * res + c] = rgb[ch];
  };
  for (int r = 0; r < res; ++r) {
    for (int c = 0; c < res; ++c) put(r, c, Viridis((values[r * res + c] - lo) / span));
  }
  for (int r = res + gap; r < height; ++r) {
    for (int c = 0; c < res; ++c) put(r, c, Viridis((c + 0.5) / res));
  }
  return eval::WriteImageGrid(path, pixels, 1, 3, height, res,
                              {.columns = 1, .padding = 0, .scale = 1, .range = eval::PixelRange::kUnit});
}

absl::Status PlotPointSets(const std::string& path, const std::vector<ot::RowMatrixXf>& sets,
                           const std::vector<eval::Rgba>& colors, const std::vector<std::string>& labels,
                           eval::PlotOptions options) {
  if (colors.size() != sets.size() || labels.size() != sets.size()) {
    return absl::InvalidArgumentError(absl::StrCat("PlotPointSets ", path, ": ", sets.size(), " sets but ",
                                                   colors.size(), " colors and ", labels.size(), " labels"));
  }
  options.equal_aspect = true;
  eval::Figure fig(options);
  for (size_t k = 0; k < sets.size(); ++k) {
    OTGEN_RETURN_IF_ERROR(fig.AddScatter(sets[k], {.label = labels[k], .color = colors[k], .marker_size = 2.0}));
  }
  return fig.Write(path);
}

absl::Status PlotPaths(const std::string& path, const std::vector<ot::RowMatrixXf>& snapshots,
                       const Eigen::Ref<const ot::RowMatrixXf>& targets, eval::PlotOptions options) {
  if (snapshots.empty()) return absl::InvalidArgumentError(absl::StrCat("PlotPaths ", path, ": no snapshots"));
  const Eigen::Index n = snapshots[0].rows();
  for (const ot::RowMatrixXf& s : snapshots) {
    if (s.rows() != n || s.cols() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("PlotPaths ", path, ": every snapshot must be ", n, " x 2, got ", s.rows(), " x ", s.cols()));
    }
  }
  options.equal_aspect = true;
  eval::Figure fig(options);
  if (targets.rows() > 0) {
    OTGEN_RETURN_IF_ERROR(fig.AddScatter(targets, {.label = "target x", .color = TargetColor(), .marker_size = 1.5}));
  }
  std::vector<double> xs(snapshots.size()), ys(snapshots.size());
  for (Eigen::Index i = 0; i < n; ++i) {
    for (size_t t = 0; t < snapshots.size(); ++t) {
      xs[t] = snapshots[t](i, 0);
      ys[t] = snapshots[t](i, 1);
    }
    OTGEN_RETURN_IF_ERROR(fig.AddLine(xs, ys, {.color = eval::Rgba{0.4, 0.4, 0.4, 0.7}, .line_width = 0.8}));
  }
  OTGEN_RETURN_IF_ERROR(fig.AddScatter(snapshots.front(), {.label = "G_0(z) = z", .color = SourceColor(), .marker_size = 2.0}));
  OTGEN_RETURN_IF_ERROR(fig.AddScatter(snapshots.back(), {.label = "G(z)", .color = MappedColor(), .marker_size = 2.0}));
  return fig.Write(path);
}

}  // namespace otgen::apps::w2gan
