// Plots for experiment outputs, drawn with Cairo into PNG or SVG files: scatter plots of 2-D
// samples over the true mixture means, arrows z -> G(z) for transport maps, bar charts of
// class histograms, line plots of metric columns (loss curves; several series, ticks, labels,
// legend, optional log-y), and image grids (a batch of grayscale or RGB images tiled into one
// PNG).
//
// A `Figure` holds series in data coordinates and `PlotOptions` (size in pixels, title, axis
// labels, limits, log-y, equal aspect, legend, font size). Rendering maps the data box
// [x_min, x_max] x [y_min, y_max] (automatic limits: the data's range padded by
// `margin_fraction` on each side; bar charts start at 0) linearly (log10 for y with log_y)
// onto the plot area, whose pixel rectangle depends only on the options (fixed margins in
// units of the font size), so `DataToPixel` tells where a data point lands:
//     px = left + (x - x_min) / (x_max - x_min) * plot_width,
//     py = top + plot_height - (y - y_min) / (y_max - y_min) * plot_height,
// pixel coordinates with the origin at the top-left corner of the image (pixel (i, j) covers
// [i, i + 1) x [j, j + 1)). Ticks are at "nice" steps (1, 2, 5 times a power of 10; decades on
// log axes). Each scatter marker, bar, line run and arrow is its own path (in SVG, one <path>
// element per filled marker or bar, two per arrow: shaft and head).
//
// Files are written through a temporary file renamed over the target; errors are Status
// values naming the path (Cairo failures are InternalError). Text uses Cairo's toy font API
// ("sans-serif" through Fontconfig); `ReleasePlotFontCaches()` frees the font caches at exit
// (leak checkers otherwise report Fontconfig's global caches).
//
// Image grids: values in [-1, 1] (tanh generators) or [0, 1] are mapped linearly to bytes
// (round(255 v') after clamping v' = (v + 1) / 2 or v to [0, 1]), tiles are separated by
// `padding` pixels of `padding_value`, and each image pixel may be upscaled to a
// `scale` x `scale` block. Layout: NCHW (channels 1 or 3) or NHW, row-major.
//
// Usage:
//   otgen::eval::PlotOptions opt;
//   opt.title = "grid25, step 10000";
//   OTGEN_RETURN_IF_ERROR(otgen::eval::PlotSamples2d("samples.png", samples, means, opt));
//
//   otgen::eval::Figure fig({.title = "losses", .x_label = "step", .log_y = true});
//   OTGEN_RETURN_IF_ERROR(fig.AddLine(steps, critic_loss, {.label = "critic"}));
//   OTGEN_RETURN_IF_ERROR(fig.AddLine(steps, gen_loss, {.label = "generator"}));
//   OTGEN_RETURN_IF_ERROR(fig.Write("losses.svg"));            // format from the extension
//
//   OTGEN_RETURN_IF_ERROR(otgen::eval::WriteImageGrid("samples_1000.png", images, {}));
#ifndef OTGEN_APPS_EVAL_PLOT_H_
#define OTGEN_APPS_EVAL_PLOT_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "apps/eval/pixel_range.h"
#include "nn/tensor.h"
#include "ot/types.h"

namespace otgen::eval {

// A color with components in [0, 1].
struct Rgba {
  double r = 0.0;
  double g = 0.0;
  double b = 0.0;
  double a = 1.0;
};

// Color `index` (mod 10) of the Tableau 10 palette (matplotlib's default color cycle).
Rgba PaletteColor(int index);

enum class Marker { kCircle, kSquare, kTriangle, kDiamond, kCross, kPlus };

struct SeriesStyle {
  // Legend entry; series with an empty label are not listed.
  std::string label;
  // Default: PaletteColor(index of the series in the figure).
  std::optional<Rgba> color;
  // Scatter markers: shape and half-width in pixels (> 0).
  Marker marker = Marker::kCircle;
  double marker_size = 3.0;
  // Lines, arrows and the strokes of kCross / kPlus markers, in pixels (> 0).
  double line_width = 1.5;
};

struct PlotOptions {
  int width = 640;   // pixels, in [32, 16384]
  int height = 480;  // pixels, in [32, 16384]
  std::string title;
  std::string x_label;
  std::string y_label;
  // Fixed axis limits (data units; for log_y the y limits are values, not logarithms).
  // Unset limits come from the data.
  std::optional<double> x_min, x_max, y_min, y_max;
  // Logarithmic y axis: values <= 0 are skipped (they break line series).
  bool log_y = false;
  // Same data units per pixel on both axes (the limits widen about their centre); linear y only.
  bool equal_aspect = false;
  // Draw the frame, ticks, tick labels, grid and axis labels; false leaves only the data
  // (and title and legend, if any).
  bool axes = true;
  bool grid = true;
  bool legend = true;
  double font_size = 12.0;  // pixels, in [4, 200]
  // Automatic limits: padding on each side as a fraction of the data range, in [0, 1).
  double margin_fraction = 0.05;

  absl::Status Validate() const;
};

// Output file formats.
enum class ImageFormat { kPng, kSvg };
// ".png" or ".svg" (case-insensitive) at the end of `path`; InvalidArgumentError otherwise.
absl::StatusOr<ImageFormat> ImageFormatFromPath(const std::string& path);

class Figure {
 public:
  explicit Figure(PlotOptions options = {});

  // Markers at the rows of `points` (n x 2: x, y); non-finite rows are skipped.
  absl::Status AddScatter(const Eigen::Ref<const ot::RowMatrixXf>& points, SeriesStyle style = {});
  // A polyline through (x_i, y_i) (equal lengths); non-finite points (and y <= 0 on a log
  // axis) break the line.
  absl::Status AddLine(absl::Span<const double> x, absl::Span<const double> y, SeriesStyle style = {});
  // Arrows from row i of `from` to row i of `to` (both n x 2).
  absl::Status AddArrows(const Eigen::Ref<const ot::RowMatrixXf>& from, const Eigen::Ref<const ot::RowMatrixXf>& to,
                         SeriesStyle style = {});
  // One bar per category at x = 0, 1, ..., k - 1. Several bar series must have the same k and
  // are drawn side by side within each category.
  absl::Status AddBars(absl::Span<const double> heights, SeriesStyle style = {});
  // Tick labels of the bar categories (default "0", "1", ...); size k.
  void SetCategories(std::vector<std::string> names) { categories_ = std::move(names); }

  const PlotOptions& options() const { return options_; }

  // The encoded image.
  absl::StatusOr<std::string> RenderPng() const;
  absl::StatusOr<std::string> RenderSvg() const;
  // Writes the image (temporary file, then rename).
  absl::Status WritePng(const std::string& path) const;
  absl::Status WriteSvg(const std::string& path) const;
  // Format from the file extension.
  absl::Status Write(const std::string& path) const;

  // Pixel coordinates of the data point (x, y) under the current series and options.
  absl::StatusOr<std::array<double, 2>> DataToPixel(double x, double y) const;

  // Implementation detail (public for the renderer in plot.cc).
  enum class Kind { kScatter, kLine, kArrows, kBars };
  struct Series {
    Kind kind;
    SeriesStyle style;
    Rgba color;
    std::vector<double> x, y;    // points, line vertices, arrow tails, bar heights (y)
    std::vector<double> x2, y2;  // arrow heads
  };

 private:
  PlotOptions options_;
  std::vector<Series> series_;
  std::vector<std::string> categories_;
};

// Scatter of 2-D `samples` (n x 2) over the true `means` (k x 2, may be empty), drawn as
// black crosses on top; equal aspect.
absl::Status PlotSamples2d(const std::string& path, const Eigen::Ref<const ot::RowMatrixXf>& samples,
                           const Eigen::Ref<const ot::RowMatrixXf>& means, PlotOptions options = {});

// Arrows z_i -> G(z_i) (both n x 2) with the source points and their images as markers;
// `targets` (m x 2, may be empty) are drawn underneath for reference. Equal aspect.
absl::Status PlotMapArrows(const std::string& path, const Eigen::Ref<const ot::RowMatrixXf>& source,
                           const Eigen::Ref<const ot::RowMatrixXf>& mapped,
                           const Eigen::Ref<const ot::RowMatrixXf>& targets, PlotOptions options = {});

// Bar chart of class frequencies (k classes), optionally beside `reference` frequencies
// (empty or size k), categories "0" ... "k-1".
absl::Status PlotClassHistogram(const std::string& path, absl::Span<const double> frequencies,
                                absl::Span<const double> reference, PlotOptions options = {});

// One named series of values for PlotSeries.
struct NamedSeries {
  std::string name;
  std::vector<double> values;
};
// Line plot of several series against a common x (each series the length of x).
absl::Status PlotSeries(const std::string& path, absl::Span<const double> x, const std::vector<NamedSeries>& series,
                        PlotOptions options = {});

struct ImageGridOptions {
  // Images per row; 0 picks ceil(sqrt(n)).
  int columns = 0;
  // Pixels between tiles and around the border (>= 0).
  int padding = 2;
  // Each image pixel becomes a scale x scale block (>= 1).
  int scale = 1;
  // Pixel range of the values (apps/eval/pixel_range.h).
  PixelRange range = PixelRange::kSymmetric;
  // Gray level of the padding, in [0, 1].
  double padding_value = 0.5;

  absl::Status Validate() const;
};

// Encodes n images (channels 1 or 3, height x width, NCHW row-major floats) as one PNG.
absl::StatusOr<std::string> EncodeImageGridPng(absl::Span<const float> pixels, int64_t n, int channels, int height,
                                               int width, const ImageGridOptions& options = {});
// Writes the grid of images (NCHW floats) to a PNG file.
absl::Status WriteImageGrid(const std::string& path, absl::Span<const float> pixels, int64_t n, int channels,
                            int height, int width, const ImageGridOptions& options = {});
// A tensor {n, c, h, w} (c = 1 or 3) or {n, h, w}.
absl::Status WriteImageGrid(const std::string& path, const nn::Tensor& images, const ImageGridOptions& options = {});

// Frees Cairo's static data and Fontconfig's caches (cairo_debug_reset_static_data, FcFini).
// Call at most once, at exit, when no thread uses Cairo or Fontconfig any more (leak checkers
// otherwise report Fontconfig's global caches); drawing text afterwards is not supported.
void ReleasePlotFontCaches();

}  // namespace otgen::eval

#endif  // OTGEN_APPS_EVAL_PLOT_H_
