#include "apps/w2gan/figures.h"


#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace otgen::apps::w2gan {
namespace {

std::string TempPath(const std::string& name) {
  const char* t = std::getenv("TEST_TMPDIR");
  return std::string(t ? t : "/tmp") + "/" + name;
}

// Width and height from a PNG's IHDR chunk (bytes 16-23, big-endian).
std::pair<int, int> PngSize(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 24 || bytes.compare(1, 3, "PNG") != 0) return {-1, -1};
  auto be32 = [&](int at) {
    return (static_cast<unsigned char>(bytes[at]) << 24) | (static_cast<unsigned char>(bytes[at + 1]) << 16) |
           (static_cast<unsigned char>(bytes[at + 2]) << 8) | static_cast<unsigned char>(bytes[at + 3]);
  };
  return {be32(16), be32(20)};
}

TEST(FiguresTest, ViridisEndpointsAndMonotoneGreen) {
  const auto lo = Viridis(0.0), hi = Viridis(1.0), mid = Viridis(0.5);
  EXPECT_NEAR(lo[0], 0.267004f, 1e-6);
  EXPECT_NEAR(hi[1], 0.906157f, 1e-6);
  EXPECT_NEAR(mid[1], 0.471133f, 1e-6);  // anchor 4 of 0..8
  float previous = -1;
  for (int k = 0; k <= 20; ++k) {
    const float g = Viridis(k / 20.0)[1];
    EXPECT_GT(g, previous);
    previous = g;
  }
  EXPECT_EQ(Viridis(-3.0), lo);
  EXPECT_EQ(Viridis(7.0), hi);
}

TEST(FiguresTest, BoundingBoxIsSquareWithMarginAndGridCoversItFromTheTop) {
  ot::RowMatrixXf a(2, 2), b(1, 2);
  a << 0, 0, 4, 1;
  b << 2, -1;
  const Box box = BoundingBox({a, b}, 0.25);
  // Data box [0, 4] x [-1, 1]: side 4 * 1.5 = 6 around (2, 0).
  EXPECT_DOUBLE_EQ(box.x_min, -1.0);
  EXPECT_DOUBLE_EQ(box.x_max, 5.0);
  EXPECT_DOUBLE_EQ(box.y_min, -3.0);
  EXPECT_DOUBLE_EQ(box.y_max, 3.0);
  const ot::RowMatrixXf g = GridPoints(box, 3);
  ASSERT_EQ(g.rows(), 9);
  EXPECT_FLOAT_EQ(g(0, 0), 0.0f);  // first cell centre: x_min + 1, y_max - 1
  EXPECT_FLOAT_EQ(g(0, 1), 2.0f);
  EXPECT_FLOAT_EQ(g(2, 0), 4.0f);
  EXPECT_FLOAT_EQ(g(8, 1), -2.0f);
}

TEST(FiguresTest, HeatMapHasTheGridSizePlusTheScaleBar) {
  const int res = 50;
  Eigen::VectorXf v(res * res);
  for (int i = 0; i < res * res; ++i) v[i] = static_cast<float>(i % res);
  const std::string path = TempPath("heat.png");
  ASSERT_TRUE(WriteHeatMap(path, v, res).ok());
  const auto [w, h] = PngSize(path);
  EXPECT_EQ(w, res);
  EXPECT_EQ(h, res + 2 + 4);  // gap max(2, res / 50), bar max(4, res / 20)
  EXPECT_FALSE(WriteHeatMap(path, v.head(10), res).ok());
  v[3] = NAN;
  EXPECT_FALSE(WriteHeatMap(path, v, res).ok());
}

TEST(FiguresTest, PathsAndPointSets) {
  ot::RowMatrixXf s0(3, 2), s1(3, 2), t(2, 2);
  s0 << 0, 0, 1, 0, 0, 1;
  s1 = s0 * 2.0f;
  t << 2, 2, -1, -1;
  const std::string path = TempPath("path.png");
  ASSERT_TRUE(PlotPaths(path, {s0, s1}, t, {}).ok());
  EXPECT_EQ(PngSize(path).first, 640);
  EXPECT_FALSE(PlotPaths(path, {s0, t}, t, {}).ok());
  EXPECT_FALSE(PlotPaths(path, {}, t, {}).ok());
  ASSERT_TRUE(PlotPointSets(TempPath("sets.png"), {s0, t}, {SourceColor(), TargetColor()}, {"a", "b"}, {}).ok());
  EXPECT_FALSE(PlotPointSets(TempPath("sets.png"), {s0, t}, {SourceColor()}, {"a", "b"}, {}).ok());
}

}  // namespace
}  // namespace otgen::apps::w2gan
