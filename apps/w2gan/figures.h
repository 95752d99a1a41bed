// The 2-D figures of apps/w2gan (seed 002, Figs. 1-4): heat maps of a potential over a box
// (Fig. 3 b-c), the generator's path through training (Fig. 4) and scatter plots of several
// point sets in given colors (Fig. 1-a). Arrows and sample scatters come from apps/eval/plot.h.
//
// Heat maps: a res x res grid of cell centres over [x_min, x_max] x [y_min, y_max]; row 0 of
// the image is the top (y_max). Values are mapped linearly from [min, max] to a
// perceptually uniform colormap (viridis, interpolated between 9 anchors) and written as an
// RGB PNG without axes (apps/eval WriteImageGrid), with a scale bar of the same colormap
// below (min at the left, max at the right; the range goes to the caller's log).
//
//   Box box = BoundingBox({source, target}, 0.1);
//   RowMatrixXf grid = GridPoints(box, 200);          // 40000 x 2
//   ... values = phi(grid) ...                         // 40000
//   OTGEN_RETURN_IF_ERROR(WriteHeatMap("phi.png", values, 200));
#ifndef OTGEN_APPS_W2GAN_FIGURES_H_
#define OTGEN_APPS_W2GAN_FIGURES_H_

#include <array>
#include <string>
#include <vector>

#include "Eigen/Dense"
#include "absl/status/status.h"
#include "apps/eval/plot.h"
#include "ot/types.h"

namespace otgen::apps::w2gan {

struct Box {
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;
};

// The smallest box holding every row of `sets` (n_k x 2 each), widened by `margin` times its
// larger side on each side and made square about its centre.
Box BoundingBox(const std::vector<ot::RowMatrixXf>& sets, double margin);

// res * res cell centres, row-major from the top-left corner (y decreasing down the rows).
ot::RowMatrixXf GridPoints(const Box& box, int res);

// The viridis color of t in [0, 1] (clamped).
std::array<float, 3> Viridis(double t);

// Writes values (res * res, the order of GridPoints) as a heat map PNG (see above).
// InvalidArgumentError for a size mismatch or non-finite values.
absl::Status WriteHeatMap(const std::string& path, const Eigen::Ref<const Eigen::VectorXf>& values, int res);

// Scatter of several point sets (n_k x 2) with their colors and labels; equal aspect.
absl::Status PlotPointSets(const std::string& path, const std::vector<ot::RowMatrixXf>& sets,
                           const std::vector<eval::Rgba>& colors, const std::vector<std::string>& labels,
                           eval::PlotOptions options);

// The generator's path: for each point i, the polyline through snapshots[0](i), ...,
// snapshots[T-1](i) (each n x 2), the first snapshot's points as markers and the last's as
// markers of another color, over `targets` (m x 2, may be empty).
absl::Status PlotPaths(const std::string& path, const std::vector<ot::RowMatrixXf>& snapshots,
                       const Eigen::Ref<const ot::RowMatrixXf>& targets, eval::PlotOptions options);

// The colors of the paper's figures: source Pz (magenta), target Px (green), mapped G(z) (red).
eval::Rgba SourceColor();
eval::Rgba TargetColor();
eval::Rgba MappedColor();

}  // namespace otgen::apps::w2gan

#endif  // OTGEN_APPS_W2GAN_FIGURES_H_
