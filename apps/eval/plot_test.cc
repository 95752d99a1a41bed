#include "apps/eval/plot.h"

#include <cairo/cairo.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "apps/eval/test_util.h"
#include "gtest/gtest.h"

namespace otgen::eval {
namespace {

using testutil::ReadBytes;
using testutil::StatusIs;
using testutil::TempPath;

// Frees Fontconfig's caches once all tests ran (LeakSanitizer would report them).
uint32_t BigEndian32(const std::string& b, size_t at) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(b[at])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(b[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(b[at + 2])) << 8) | static_cast<uint8_t>(b[at + 3]);
}

// Checks the PNG signature and that the first chunk is IHDR with the given size.
::testing::AssertionResult IsPng(const std::string& bytes, uint32_t width, uint32_t height) {
  if (bytes.size() < 33 || bytes.substr(0, 8) != std::string("\x89PNG\r\n\x1a\n", 8)) {
    return ::testing::AssertionFailure() << "no PNG signature";
  }
  if (BigEndian32(bytes, 8) != 13 || bytes.substr(12, 4) != "IHDR") {
    return ::testing::AssertionFailure() << "first chunk is not a 13-byte IHDR";
  }
  if (BigEndian32(bytes, 16) != width || BigEndian32(bytes, 20) != height) {
    return ::testing::AssertionFailure() << "IHDR size " << BigEndian32(bytes, 16) << " x " << BigEndian32(bytes, 20)
                                         << ", expected " << width << " x " << height;
  }
  return ::testing::AssertionSuccess();
}

int CountOccurrences(const std::string& text, const std::string& what) {
  int count = 0;
  for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++count;
  return count;
}

// A PNG read back through Cairo: pixel (x, y) as 0xAARRGGBB (premultiplied; opaque here).
class PngImage {
 public:
  explicit PngImage(const std::string& path) : surface_(cairo_image_surface_create_from_png(path.c_str())) {}
  ~PngImage() { cairo_surface_destroy(surface_); }
  bool ok() const { return cairo_surface_status(surface_) == CAIRO_STATUS_SUCCESS; }
  int width() const { return cairo_image_surface_get_width(surface_); }
  int height() const { return cairo_image_surface_get_height(surface_); }
  uint32_t Pixel(int x, int y) const {
    if (x < 0 || y < 0 || x >= width() || y >= height()) {
      ADD_FAILURE() << "pixel (" << x << ", " << y << ") outside the " << width() << " x " << height() << " image";
      return 0;
    }
    cairo_surface_flush(surface_);
    const unsigned char* data = cairo_image_surface_get_data(surface_);
    return reinterpret_cast<const uint32_t*>(data + y * cairo_image_surface_get_stride(surface_))[x] | 0xff000000u;
  }

 private:
  cairo_surface_t* surface_;
};

constexpr uint32_t kWhite = 0xffffffffu;
constexpr uint32_t kRed = 0xffff0000u;

ot::RowMatrixXf Points(std::initializer_list<std::pair<float, float>> pts) {
  ot::RowMatrixXf m(static_cast<int>(pts.size()), 2);
  int i = 0;
  for (auto [x, y] : pts) {
    m(i, 0) = x;
    m(i, 1) = y;
    ++i;
  }
  return m;
}

PlotOptions Bare() {
  PlotOptions o;
  o.axes = false;
  o.legend = false;
  o.x_min = 0.0;
  o.x_max = 1.0;
  o.y_min = 0.0;
  o.y_max = 1.0;
  return o;
}

TEST(PlotTest, ScatterPointColorsTheExpectedPixel) {
  for (bool axes : {false, true}) {
    PlotOptions o = Bare();
    o.axes = axes;
    o.legend = axes;
    o.title = axes ? "pixel test" : "";
    o.x_label = axes ? "x" : "";
    o.y_label = axes ? "y" : "";
    Figure fig(o);
    ASSERT_TRUE(fig.AddScatter(Points({{0.3f, 0.7f}}),
                               {.label = "point", .color = Rgba{1, 0, 0, 1}, .marker = Marker::kSquare,
                                .marker_size = 4})
                    .ok());
    const std::string path = TempPath(absl::StrCat("pixel", axes, ".png"));
    ASSERT_TRUE(fig.WritePng(path).ok());
    absl::StatusOr<std::array<double, 2>> p = fig.DataToPixel(0.3, 0.7);
    ASSERT_TRUE(p.ok()) << p.status();
    PngImage img(path);
    ASSERT_TRUE(img.ok());
    ASSERT_EQ(img.width(), 640);
    ASSERT_EQ(img.height(), 480);
    const int px = static_cast<int>(std::floor((*p)[0])), py = static_cast<int>(std::floor((*p)[1]));
    EXPECT_EQ(img.Pixel(px, py), kRed) << "axes=" << axes << " at " << px << "," << py;
    // 0.3 of the plot width from its left edge, 0.3 of its height from the bottom.
    EXPECT_GT((*p)[0], 0.3 * 640 - 100);
    EXPECT_LT((*p)[0], 0.3 * 640 + 100);
    // A point of the plot area far from the marker is background.
    absl::StatusOr<std::array<double, 2>> q = fig.DataToPixel(0.7, 0.3);
    ASSERT_TRUE(q.ok());
    EXPECT_EQ(img.Pixel(static_cast<int>((*q)[0]) + 3, static_cast<int>((*q)[1]) + 3), kWhite);
  }
}

TEST(PlotTest, DataToPixelIsTheLinearMap) {
  Figure fig(Bare());  // plot area: 8-pixel margins, 624 x 464
  absl::StatusOr<std::array<double, 2>> a = fig.DataToPixel(0.0, 0.0);
  absl::StatusOr<std::array<double, 2>> b = fig.DataToPixel(1.0, 1.0);
  absl::StatusOr<std::array<double, 2>> c = fig.DataToPixel(0.5, 0.25);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_DOUBLE_EQ((*a)[0], 8.0);
  EXPECT_DOUBLE_EQ((*a)[1], 472.0);
  EXPECT_DOUBLE_EQ((*b)[0], 632.0);
  EXPECT_DOUBLE_EQ((*b)[1], 8.0);
  EXPECT_DOUBLE_EQ((*c)[0], 320.0);
  EXPECT_DOUBLE_EQ((*c)[1], 472.0 - 116.0);
}

TEST(PlotTest, EqualAspectUsesOneScale) {
  PlotOptions o;
  o.equal_aspect = true;
  Figure fig(o);
  ASSERT_TRUE(fig.AddScatter(Points({{-4, -1}, {4, 1}})).ok());
  absl::StatusOr<std::array<double, 2>> o0 = fig.DataToPixel(0, 0), x1 = fig.DataToPixel(1, 0),
                                         y1 = fig.DataToPixel(0, 1);
  ASSERT_TRUE(o0.ok() && x1.ok() && y1.ok());
  EXPECT_NEAR((*x1)[0] - (*o0)[0], (*o0)[1] - (*y1)[1], 1e-9);
  EXPECT_GT((*x1)[0] - (*o0)[0], 1.0);
}

TEST(PlotTest, PngHeaderAndSvgStructure) {
  PlotOptions o = Bare();
  o.width = 300;
  o.height = 200;
  Figure fig(o);
  ASSERT_TRUE(fig.AddScatter(Points({{0.1f, 0.1f}, {0.2f, 0.5f}, {0.9f, 0.9f}, {0.5f, 0.5f}, {0.3f, 0.8f}})).ok());
  const std::string png_path = TempPath("structure.png");
  const std::string svg_path = TempPath("structure.svg");
  ASSERT_TRUE(fig.Write(png_path).ok());
  ASSERT_TRUE(fig.Write(svg_path).ok());
  EXPECT_TRUE(IsPng(ReadBytes(png_path), 300, 200));
  const std::string svg = ReadBytes(svg_path);
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("width=\"300px\""), std::string::npos) << svg.substr(0, 300);
  // With no text (no axes, title or legend): the background is one <rect>, each marker one
  // drawn <path> (Cairo may add unstyled <path> elements inside <clipPath> definitions).
  EXPECT_EQ(CountOccurrences(svg, "<rect"), 1) << svg;
  EXPECT_EQ(CountOccurrences(svg, "<path style="), 5) << svg;
  // Three more markers (one outside the limits, skipped) and two arrows (shaft + head each).
  ASSERT_TRUE(fig.AddScatter(Points({{0.4f, 0.4f}, {0.6f, 0.6f}, {5.0f, 5.0f}}), {.marker = Marker::kDiamond}).ok());
  ASSERT_TRUE(fig.AddArrows(Points({{0.1f, 0.9f}, {0.2f, 0.2f}}), Points({{0.5f, 0.5f}, {0.8f, 0.3f}})).ok());
  absl::StatusOr<std::string> svg2 = fig.RenderSvg();
  ASSERT_TRUE(svg2.ok()) << svg2.status();
  EXPECT_EQ(CountOccurrences(*svg2, "<path style="), 5 + 2 + 4) << *svg2;
}

TEST(PlotTest, LinePlotWithLogAxisAndLegend) {
  PlotOptions o;
  o.title = "losses";
  o.x_label = "step";
  o.y_label = "loss";
  o.log_y = true;
  o.y_min = 1.0;
  o.y_max = 100.0;
  o.x_min = 0.0;
  o.x_max = 10.0;
  Figure fig(o);
  const std::vector<double> x = {0, 10};
  ASSERT_TRUE(fig.AddLine(x, std::vector<double>{10, 10}, {.label = "flat", .color = Rgba{1, 0, 0, 1},
                                                           .line_width = 3})
                  .ok());
  // A non-positive value breaks the second line instead of failing.
  ASSERT_TRUE(fig.AddLine(std::vector<double>{0, 5, 10}, std::vector<double>{2, 0, 50}, {.label = "broken"}).ok());
  absl::StatusOr<std::array<double, 2>> lo = fig.DataToPixel(5, 1), mid = fig.DataToPixel(5, 10),
                                         hi = fig.DataToPixel(5, 100);
  ASSERT_TRUE(lo.ok() && mid.ok() && hi.ok());
  EXPECT_NEAR((*mid)[1], 0.5 * ((*lo)[1] + (*hi)[1]), 1e-9);  // 10 is halfway on a log axis
  EXPECT_FALSE(fig.DataToPixel(5, 0).ok());
  const std::string path = TempPath("lines.png");
  ASSERT_TRUE(fig.WritePng(path).ok());
  PngImage img(path);
  ASSERT_TRUE(img.ok());
  // The y = 10 line (3 pixels wide) passes through the pixel of (3, 10).
  absl::StatusOr<std::array<double, 2>> p = fig.DataToPixel(3, 10);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(img.Pixel(static_cast<int>((*p)[0]), static_cast<int>((*p)[1])), kRed);
  // SVG of the same figure has text (glyphs) and still one stroke per line run.
  absl::StatusOr<std::string> svg = fig.RenderSvg();
  ASSERT_TRUE(svg.ok());
  EXPECT_NE(svg->find("<svg"), std::string::npos);
}

TEST(PlotTest, BarChartPixels) {
  Figure fig;
  const std::vector<double> freq = {0.1, 0.3, 0.6};
  ASSERT_TRUE(fig.AddBars(freq, {.label = "generated", .color = Rgba{1, 0, 0, 1}}).ok());
  ASSERT_TRUE(fig.AddBars(std::vector<double>{0.2, 0.2, 0.6}, {.label = "reference"}).ok());
  fig.SetCategories({"a", "b", "c"});
  EXPECT_TRUE(StatusIs(fig.AddBars(std::vector<double>{1, 2}), absl::StatusCode::kInvalidArgument, {"expected 3 bars"}));
  const std::string path = TempPath("bars.png");
  ASSERT_TRUE(fig.WritePng(path).ok());
  PngImage img(path);
  ASSERT_TRUE(img.ok());
  // The first series occupies [k - 0.4, k) of each category, from 0 to its height.
  for (int k = 0; k < 3; ++k) {
    absl::StatusOr<std::array<double, 2>> inside = fig.DataToPixel(k - 0.2, 0.5 * freq[k]);
    absl::StatusOr<std::array<double, 2>> above = fig.DataToPixel(k - 0.2, freq[k] + 0.02);  // y_max = 0.63
    ASSERT_TRUE(inside.ok() && above.ok());
    EXPECT_EQ(img.Pixel(static_cast<int>((*inside)[0]), static_cast<int>((*inside)[1])), kRed) << k;
    EXPECT_NE(img.Pixel(static_cast<int>((*above)[0]), static_cast<int>((*above)[1])), kRed) << k;
  }
  // Bars start at 0: the baseline is the bottom of the plot area.
  absl::StatusOr<std::array<double, 2>> zero = fig.DataToPixel(0, 0);
  ASSERT_TRUE(zero.ok());
  EXPECT_NEAR((*zero)[1], 480 - (1.8 * 12 + 8), 1e-9);
}

TEST(PlotTest, ConveniencePlotsWriteFiles) {
  const ot::RowMatrixXf samples = Points({{0.01f, 0.02f}, {1.98f, 2.03f}, {-2.0f, 0.1f}});
  const ot::RowMatrixXf means = Points({{0, 0}, {2, 2}, {-2, 0}});
  const std::string samples_path = TempPath("samples.png");
  ASSERT_TRUE(PlotSamples2d(samples_path, samples, means, {.title = "grid"}).ok());
  EXPECT_TRUE(IsPng(ReadBytes(samples_path), 640, 480));
  const std::string arrows_path = TempPath("arrows.svg");
  ASSERT_TRUE(PlotMapArrows(arrows_path, samples, means, ot::RowMatrixXf(0, 2)).ok());
  EXPECT_NE(ReadBytes(arrows_path).find("<svg"), std::string::npos);
  const std::string arrows_png = TempPath("arrows.png");
  ASSERT_TRUE(PlotMapArrows(arrows_png, samples, means, Points({{1, 1}, {-1, 1}}), {.title = "map"}).ok());
  EXPECT_TRUE(IsPng(ReadBytes(arrows_png), 640, 480));
  const std::string hist_path = TempPath("hist.png");
  ASSERT_TRUE(PlotClassHistogram(hist_path, std::vector<double>(10, 0.1), std::vector<double>(10, 0.1)).ok());
  EXPECT_TRUE(IsPng(ReadBytes(hist_path), 640, 480));
  const std::string series_path = TempPath("series.png");
  ASSERT_TRUE(PlotSeries(series_path, std::vector<double>{1, 2, 3},
                         {{"a", {1, 2, 3}}, {"b", {3, 2, std::nan("")}}}, {.width = 400, .height = 300})
                  .ok());
  EXPECT_TRUE(IsPng(ReadBytes(series_path), 400, 300));
}

TEST(PlotTest, Errors) {
  Figure fig;
  const std::string missing = TempPath("no_such_dir/plot.png");
  EXPECT_TRUE(StatusIs(fig.Write(missing), absl::StatusCode::kNotFound, {missing}));
  EXPECT_TRUE(StatusIs(fig.Write(TempPath("plot.jpg")), absl::StatusCode::kInvalidArgument, {"plot.jpg", ".png or .svg"}));
  Figure tiny({.width = 10});
  EXPECT_TRUE(StatusIs(tiny.WritePng(TempPath("tiny.png")), absl::StatusCode::kInvalidArgument,
                       {"tiny.png", "width and height"}));
  Figure crowded({.width = 64, .height = 64, .font_size = 40});
  EXPECT_TRUE(StatusIs(crowded.RenderPng().status(), absl::StatusCode::kInvalidArgument, {"plot area"}));
  Figure log({.y_min = 0.0, .log_y = true});
  EXPECT_TRUE(StatusIs(log.RenderSvg().status(), absl::StatusCode::kInvalidArgument, {"log_y"}));
  Figure inverted({.x_min = 1.0, .x_max = 0.0});
  EXPECT_TRUE(StatusIs(inverted.RenderPng().status(), absl::StatusCode::kInvalidArgument, {"x range"}));
  EXPECT_TRUE(StatusIs(fig.AddLine(std::vector<double>{1, 2}, std::vector<double>{1}), absl::StatusCode::kInvalidArgument,
                       {"equal lengths"}));
  EXPECT_TRUE(StatusIs(fig.AddScatter(ot::RowMatrixXf::Zero(2, 3)), absl::StatusCode::kInvalidArgument, {"n x 2"}));
  EXPECT_TRUE(StatusIs(PlotClassHistogram(TempPath("h.png"), std::vector<double>{1}, std::vector<double>{0.5, 0.5}),
                       absl::StatusCode::kInvalidArgument, {"h.png", "reference"}));
}

TEST(PlotTest, ImageFormatFromPath) {
  EXPECT_EQ(*ImageFormatFromPath("a/b.PNG"), ImageFormat::kPng);
  EXPECT_EQ(*ImageFormatFromPath("x.svg"), ImageFormat::kSvg);
  EXPECT_FALSE(ImageFormatFromPath("png").ok());
}

// ---------------------------------------------------------------------------------------------
// Image grids.

TEST(ImageGridTest, GrayscaleValuesPaddingAndScale) {
  // Two 2x3 images in [-1, 1]; padding 1 (gray 0.5 -> 128), scale 2, 2 columns:
  // width 1 + 2 * (6 + 1) = 15, height 1 + 1 * (4 + 1) = 6.
  const std::vector<float> pixels = {-1, 0, 1, 0.5f, -0.5f, 2,   // image 0 (2 clamps to 255)
                                     1, 1, 1, -1, -1, -1};       // image 1
  const std::string path = TempPath("grid_gray.png");
  ASSERT_TRUE(WriteImageGrid(path, pixels, 2, 1, 2, 3, {.columns = 2, .padding = 1, .scale = 2}).ok());
  EXPECT_TRUE(IsPng(ReadBytes(path), 15, 6));
  PngImage img(path);
  ASSERT_TRUE(img.ok());
  auto gray = [](uint32_t v) { return 0xff000000u | (v << 16) | (v << 8) | v; };
  EXPECT_EQ(img.Pixel(0, 0), gray(128));          // padding
  EXPECT_EQ(img.Pixel(1, 1), gray(0));            // image 0 (0, 0) = -1
  EXPECT_EQ(img.Pixel(2, 2), gray(0));            // same pixel, scaled 2x
  EXPECT_EQ(img.Pixel(3, 1), gray(128));          // (0, 1) = 0 -> 127.5 rounds to 128
  EXPECT_EQ(img.Pixel(5, 2), gray(255));          // (0, 2) = 1
  EXPECT_EQ(img.Pixel(1, 3), gray(191));          // (1, 0) = 0.5 -> 191.25
  EXPECT_EQ(img.Pixel(3, 4), gray(64));           // (1, 1) = -0.5 -> 63.75
  EXPECT_EQ(img.Pixel(6, 4), gray(255));          // (1, 2) = 2 clamps
  EXPECT_EQ(img.Pixel(7, 1), gray(128));          // padding between tiles
  EXPECT_EQ(img.Pixel(8, 1), gray(255));          // image 1 (0, 0)
  EXPECT_EQ(img.Pixel(13, 4), gray(0));           // image 1 (1, 2)
}

TEST(ImageGridTest, RgbTensorInUnitRange) {
  // {n=3, c=3, h=1, w=1}: red, green, blue pixels, 2 columns -> 2 rows; no padding.
  nn::Tensor t = nn::Tensor::FromVector({3, 3, 1, 1}, {1, 0, 0, 0, 1, 0, 0, 0, 1});
  const std::string path = TempPath("grid_rgb.png");
  ASSERT_TRUE(WriteImageGrid(path, t, {.columns = 2, .padding = 0, .range = PixelRange::kUnit}).ok());
  EXPECT_TRUE(IsPng(ReadBytes(path), 2, 2));
  PngImage img(path);
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img.Pixel(0, 0), 0xffff0000u);
  EXPECT_EQ(img.Pixel(1, 0), 0xff00ff00u);
  EXPECT_EQ(img.Pixel(0, 1), 0xff0000ffu);
  EXPECT_EQ(img.Pixel(1, 1), 0xff808080u);  // empty slot: padding gray
  // Default columns: ceil(sqrt(5)) = 3 for five 28x28 images.
  nn::Tensor mnist_like = nn::Tensor::Zeros({5, 28, 28});
  const std::string auto_path = TempPath("grid_auto.png");
  ASSERT_TRUE(WriteImageGrid(auto_path, mnist_like).ok());
  EXPECT_TRUE(IsPng(ReadBytes(auto_path), 2 + 3 * 30, 2 + 2 * 30));
}

TEST(ImageGridTest, Errors) {
  const std::vector<float> pixels(12, 0.0f);
  EXPECT_TRUE(StatusIs(WriteImageGrid(TempPath("g.png"), pixels, 2, 2, 2, 3), absl::StatusCode::kInvalidArgument,
                       {"g.png", "1 or 3 channels"}));
  EXPECT_TRUE(StatusIs(WriteImageGrid(TempPath("g.png"), pixels, 3, 1, 2, 3), absl::StatusCode::kInvalidArgument,
                       {"expected 18 values", "got 12"}));
  EXPECT_TRUE(StatusIs(WriteImageGrid(TempPath("g.png"), nn::Tensor::Zeros({4, 4})), absl::StatusCode::kInvalidArgument,
                       {"{n, c, h, w}"}));
  EXPECT_TRUE(StatusIs(WriteImageGrid(TempPath("g.png"), pixels, 2, 1, 2, 3, {.scale = 0}),
                       absl::StatusCode::kInvalidArgument, {"scale"}));
  const std::string missing = TempPath("missing_dir/g.png");
  EXPECT_TRUE(StatusIs(WriteImageGrid(missing, pixels, 2, 1, 2, 3), absl::StatusCode::kNotFound, {missing}));
}

}  // namespace
}  // namespace otgen::eval
