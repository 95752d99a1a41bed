#include "apps/eval/plot.h"

#include <cairo/cairo-svg.h>
#include <cairo/cairo.h>
#include <fontconfig/fontconfig.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numbers>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "apps/common/file_io.h"
#include "nn/status_macros.h"

namespace otgen::eval {
namespace {

using Series = Figure::Series;
using Kind = Figure::Kind;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr char kFontFamily[] = "sans-serif";

// ---------------------------------------------------------------------------------------------
// Cairo resource handles.

struct SurfaceDeleter {
  void operator()(cairo_surface_t* s) const { cairo_surface_destroy(s); }
};
struct ContextDeleter {
  void operator()(cairo_t* c) const { cairo_destroy(c); }
};
using SurfacePtr = std::unique_ptr<cairo_surface_t, SurfaceDeleter>;
using ContextPtr = std::unique_ptr<cairo_t, ContextDeleter>;

cairo_status_t AppendToString(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

absl::Status CairoError(cairo_status_t status, absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": Cairo error: ", cairo_status_to_string(status)));
}

// ---------------------------------------------------------------------------------------------
// Layout: the plot rectangle in pixels and the data box.

struct Range {
  double lo = kInf;
  double hi = -kInf;
  void Add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return lo > hi; }
};

struct Layout {
  double left = 0, top = 0, width = 0, height = 0;  // plot area, pixels
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1;            // data box (y in log10 units when log_y)
  bool log_y = false;
  int num_categories = 0;  // bar charts
  int num_bar_series = 0;

  double Px(double x) const { return left + (x - x0) / (x1 - x0) * width; }
  // y in data units (log applied here); NaN for non-positive values on a log axis.
  double Py(double y) const {
    const double t = log_y ? (y > 0.0 ? std::log10(y) : std::numeric_limits<double>::quiet_NaN()) : y;
    return top + height - (t - y0) / (y1 - y0) * height;
  }
  double PyTransformed(double t) const { return top + height - (t - y0) / (y1 - y0) * height; }
};

bool ValidY(double y, bool log_y) { return std::isfinite(y) && (!log_y || y > 0.0); }
double TransformY(double y, bool log_y) { return log_y ? std::log10(y) : y; }

// Widens an empty or degenerate range.
void FixRange(Range* r, double default_lo, double default_hi) {
  if (r->empty()) {
    r->lo = default_lo;
    r->hi = default_hi;
  } else if (r->lo == r->hi) {
    const double pad = std::max(0.5, 0.1 * std::fabs(r->lo));
    r->lo -= pad;
    r->hi += pad;
  }
}

absl::StatusOr<Layout> ComputeLayout(const PlotOptions& o, const std::vector<Series>& series) {
  OTGEN_RETURN_IF_ERROR(o.Validate());
  Layout l;
  l.log_y = o.log_y;
  const double fs = o.font_size;
  double right, bottom;
  l.top = o.title.empty() ? 8.0 : 2.2 * fs + 4.0;
  if (o.axes) {
    l.left = 5.2 * fs + 8.0 + (o.y_label.empty() ? 0.0 : 1.6 * fs);
    bottom = 1.8 * fs + 8.0 + (o.x_label.empty() ? 0.0 : 1.6 * fs);
    right = std::max(1.5 * fs, 12.0);
  } else {
    l.left = right = bottom = 8.0;
  }
  l.width = o.width - l.left - right;
  l.height = o.height - l.top - bottom;
  if (l.width < 16.0 || l.height < 16.0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "plot options: a %dx%d image leaves a %.0fx%.0f plot area with font_size %g; expected at least 16x16 "
        "(larger image or smaller font)",
        o.width, o.height, l.width, l.height, o.font_size));
  }

  Range xr, yr;
  bool has_bars = false;
  for (const Series& s : series) {
    switch (s.kind) {
      case Kind::kScatter:
      case Kind::kLine:
        for (size_t i = 0; i < s.x.size(); ++i) {
          if (std::isfinite(s.x[i]) && ValidY(s.y[i], o.log_y)) {
            xr.Add(s.x[i]);
            yr.Add(TransformY(s.y[i], o.log_y));
          }
        }
        break;
      case Kind::kArrows:
        for (size_t i = 0; i < s.x.size(); ++i) {
          for (auto [x, y] : {std::pair(s.x[i], s.y[i]), std::pair(s.x2[i], s.y2[i])}) {
            if (std::isfinite(x) && ValidY(y, o.log_y)) {
              xr.Add(x);
              yr.Add(TransformY(y, o.log_y));
            }
          }
        }
        break;
      case Kind::kBars:
        has_bars = true;
        l.num_categories = static_cast<int>(s.y.size());
        ++l.num_bar_series;
        for (double h : s.y) {
          if (ValidY(h, o.log_y)) yr.Add(TransformY(h, o.log_y));
        }
        break;
    }
  }
  const bool bars_from_zero = has_bars && !o.log_y && (yr.empty() || yr.lo >= 0.0);
  if (has_bars) {
    xr.Add(-0.5);
    xr.Add(l.num_categories - 0.5);
    if (!o.log_y) yr.Add(0.0);
  }
  FixRange(&xr, 0.0, 1.0);
  FixRange(&yr, 0.0, 1.0);
  const double m = o.margin_fraction;
  const double xspan = xr.hi - xr.lo, yspan = yr.hi - yr.lo;
  l.x0 = o.x_min ? *o.x_min : (has_bars ? xr.lo : xr.lo - m * xspan);
  l.x1 = o.x_max ? *o.x_max : (has_bars ? xr.hi : xr.hi + m * xspan);
  l.y0 = o.y_min ? TransformY(*o.y_min, o.log_y) : (bars_from_zero ? 0.0 : yr.lo - m * yspan);
  l.y1 = o.y_max ? TransformY(*o.y_max, o.log_y) : yr.hi + m * yspan;
  if (!(l.x0 < l.x1)) {
    return absl::InvalidArgumentError(absl::StrCat("plot options: x range [", l.x0, ", ", l.x1, "] is empty"));
  }
  if (!(l.y0 < l.y1)) {
    return absl::InvalidArgumentError(absl::StrCat("plot options: y range [", l.y0, ", ", l.y1, "]",
                                                   o.log_y ? " (log10)" : "", " is empty"));
  }
  if (o.equal_aspect && !o.log_y) {
    const double ux = (l.x1 - l.x0) / l.width, uy = (l.y1 - l.y0) / l.height;
    if (ux > uy) {
      const double c = 0.5 * (l.y0 + l.y1), half = 0.5 * ux * l.height;
      l.y0 = c - half;
      l.y1 = c + half;
    } else {
      const double c = 0.5 * (l.x0 + l.x1), half = 0.5 * uy * l.width;
      l.x0 = c - half;
      l.x1 = c + half;
    }
  }
  return l;
}

// ---------------------------------------------------------------------------------------------
// Ticks.

struct Tick {
  double position;  // data units (log10 units on a log axis)
  std::string label;
};

double NiceStep(double span, double target_count) {
  const double raw = span / std::max(1.0, target_count);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double r = raw / mag;
  return (r < 1.5 ? 1.0 : r < 3.0 ? 2.0 : r < 7.0 ? 5.0 : 10.0) * mag;
}

std::string FormatTick(double v, double step) {
  if (std::fabs(v) < 1e-9 * step) return "0";
  const double a = std::fabs(v);
  if (a >= 1e6 || a < 1e-4) return absl::StrFormat("%.3g", v);
  const int decimals = std::clamp(static_cast<int>(-std::floor(std::log10(step) + 1e-9)), 0, 10);
  return absl::StrFormat("%.*f", decimals, v);
}

std::vector<Tick> LinearTicks(double lo, double hi, double target_count) {
  std::vector<Tick> ticks;
  const double step = NiceStep(hi - lo, target_count);
  const double eps = 1e-9 * step;
  for (double k = std::ceil((lo - eps) / step); k * step <= hi + eps; k += 1.0) {
    const double v = k * step;
    ticks.push_back({v, FormatTick(v, step)});
  }
  return ticks;
}

std::vector<Tick> LogTicks(double lo, double hi, double target_count) {
  std::vector<Tick> ticks;
  const double first = std::ceil(lo - 1e-9), last = std::floor(hi + 1e-9);
  if (last - first >= 1.0) {
    const double every = std::max(1.0, std::ceil((last - first + 1.0) / std::max(2.0, target_count)));
    for (double k = first; k <= last; k += every) ticks.push_back({k, absl::StrFormat("%g", std::pow(10.0, k))});
    return ticks;
  }
  // Less than two decades: nice linear steps of the values, placed logarithmically.
  const double vlo = std::pow(10.0, lo), vhi = std::pow(10.0, hi);
  const double step = NiceStep(vhi - vlo, target_count);
  for (double k = std::ceil(vlo / step); k * step <= vhi * (1 + 1e-12); k += 1.0) {
    const double v = k * step;
    if (v > 0.0) ticks.push_back({std::log10(v), FormatTick(v, step)});
  }
  return ticks;
}

// ---------------------------------------------------------------------------------------------
// Drawing.

void SetColor(cairo_t* cr, const Rgba& c) { cairo_set_source_rgba(cr, c.r, c.g, c.b, c.a); }

enum class Align { kLeft, kCenter, kRight };

// Draws `text` with its baseline at y, aligned horizontally at x.
void DrawText(cairo_t* cr, const std::string& text, double x, double y, Align align) {
  if (text.empty()) return;
  cairo_text_extents_t e;
  cairo_text_extents(cr, text.c_str(), &e);
  double start = x;
  if (align == Align::kCenter) start = x - (e.x_bearing + 0.5 * e.width);
  if (align == Align::kRight) start = x - (e.x_bearing + e.width);
  cairo_move_to(cr, start, y);
  cairo_show_text(cr, text.c_str());
}

double TextWidth(cairo_t* cr, const std::string& text) {
  cairo_text_extents_t e;
  cairo_text_extents(cr, text.c_str(), &e);
  return e.x_advance;
}

void DrawMarker(cairo_t* cr, Marker marker, double cx, double cy, double s, double line_width) {
  switch (marker) {
    case Marker::kCircle:
      cairo_new_sub_path(cr);
      cairo_arc(cr, cx, cy, s, 0.0, 2.0 * std::numbers::pi);
      cairo_fill(cr);
      break;
    case Marker::kSquare:
      cairo_rectangle(cr, cx - s, cy - s, 2.0 * s, 2.0 * s);
      cairo_fill(cr);
      break;
    case Marker::kTriangle:
      cairo_move_to(cr, cx, cy - 1.15 * s);
      cairo_line_to(cr, cx + s, cy + 0.58 * s);
      cairo_line_to(cr, cx - s, cy + 0.58 * s);
      cairo_close_path(cr);
      cairo_fill(cr);
      break;
    case Marker::kDiamond:
      cairo_move_to(cr, cx, cy - 1.3 * s);
      cairo_line_to(cr, cx + s, cy);
      cairo_line_to(cr, cx, cy + 1.3 * s);
      cairo_line_to(cr, cx - s, cy);
      cairo_close_path(cr);
      cairo_fill(cr);
      break;
    case Marker::kCross:
      cairo_set_line_width(cr, line_width);
      cairo_move_to(cr, cx - s, cy - s);
      cairo_line_to(cr, cx + s, cy + s);
      cairo_move_to(cr, cx - s, cy + s);
      cairo_line_to(cr, cx + s, cy - s);
      cairo_stroke(cr);
      break;
    case Marker::kPlus:
      cairo_set_line_width(cr, line_width);
      cairo_move_to(cr, cx - s, cy);
      cairo_line_to(cr, cx + s, cy);
      cairo_move_to(cr, cx, cy - s);
      cairo_line_to(cr, cx, cy + s);
      cairo_stroke(cr);
      break;
  }
}

void DrawArrow(cairo_t* cr, double x0, double y0, double x1, double y1, double line_width) {
  const double dx = x1 - x0, dy = y1 - y0;
  const double len = std::hypot(dx, dy);
  if (!(len > 1e-6)) return;
  const double head = std::min(3.0 * line_width + 4.0, 0.4 * len);
  const double ux = dx / len, uy = dy / len;
  const double bx = x1 - head * ux, by = y1 - head * uy;  // base of the head
  cairo_set_line_width(cr, line_width);
  cairo_move_to(cr, x0, y0);
  cairo_line_to(cr, bx, by);
  cairo_stroke(cr);
  const double w = 0.45 * head;
  cairo_move_to(cr, x1, y1);
  cairo_line_to(cr, bx - w * uy, by + w * ux);
  cairo_line_to(cr, bx + w * uy, by - w * ux);
  cairo_close_path(cr);
  cairo_fill(cr);
}

bool Inside(const Layout& l, double px, double py, double pad) {
  return px >= l.left - pad && px <= l.left + l.width + pad && py >= l.top - pad && py <= l.top + l.height + pad;
}

void DrawSeries(cairo_t* cr, const Layout& l, const Series& s, int bar_index) {
  SetColor(cr, s.color);
  const SeriesStyle& st = s.style;
  switch (s.kind) {
    case Kind::kScatter:
      for (size_t i = 0; i < s.x.size(); ++i) {
        if (!std::isfinite(s.x[i]) || !ValidY(s.y[i], l.log_y)) continue;
        const double px = l.Px(s.x[i]), py = l.Py(s.y[i]);
        if (!Inside(l, px, py, st.marker_size + st.line_width)) continue;
        DrawMarker(cr, st.marker, px, py, st.marker_size, st.line_width);
      }
      break;
    case Kind::kLine: {
      cairo_set_line_width(cr, st.line_width);
      cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
      cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
      int run = 0;  // vertices in the current run
      double first_x = 0.0, first_y = 0.0;
      for (size_t i = 0; i <= s.x.size(); ++i) {
        const bool valid = i < s.x.size() && std::isfinite(s.x[i]) && ValidY(s.y[i], l.log_y);
        if (valid) {
          const double px = l.Px(s.x[i]), py = l.Py(s.y[i]);
          if (run > 0) {
            cairo_line_to(cr, px, py);
          } else {
            cairo_move_to(cr, px, py);
            first_x = px;
            first_y = py;
          }
          ++run;
        } else if (run > 0) {
          if (run == 1) {
            // An isolated valid point between breaks: a dot the width of the line.
            cairo_new_path(cr);
            cairo_arc(cr, first_x, first_y, st.line_width, 0.0, 2.0 * std::numbers::pi);
            cairo_fill(cr);
          } else {
            cairo_stroke(cr);
          }
          run = 0;
        }
      }
      cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
      break;
    }
    case Kind::kArrows:
      for (size_t i = 0; i < s.x.size(); ++i) {
        if (!std::isfinite(s.x[i]) || !std::isfinite(s.x2[i]) || !ValidY(s.y[i], l.log_y) ||
            !ValidY(s.y2[i], l.log_y)) {
          continue;
        }
        DrawArrow(cr, l.Px(s.x[i]), l.Py(s.y[i]), l.Px(s.x2[i]), l.Py(s.y2[i]), st.line_width);
      }
      break;
    case Kind::kBars: {
      const double group = 0.8;
      const double each = group / std::max(1, l.num_bar_series);
      const double base = l.log_y ? l.top + l.height : l.PyTransformed(0.0);
      for (size_t k = 0; k < s.y.size(); ++k) {
        if (!ValidY(s.y[k], l.log_y)) continue;
        const double xa = static_cast<double>(k) - 0.5 * group + bar_index * each;
        const double pa = l.Px(xa + 0.025 * each), pb = l.Px(xa + 0.975 * each);
        const double top = l.Py(s.y[k]);
        cairo_rectangle(cr, pa, std::min(top, base), pb - pa, std::fabs(base - top));
        cairo_fill(cr);
      }
      break;
    }
  }
}

void DrawLegendSwatch(cairo_t* cr, const Series& s, double x, double cy, double w) {
  SetColor(cr, s.color);
  switch (s.kind) {
    case Kind::kScatter:
      DrawMarker(cr, s.style.marker, x + 0.5 * w, cy, std::min(s.style.marker_size, 0.3 * w), s.style.line_width);
      break;
    case Kind::kLine:
      cairo_set_line_width(cr, s.style.line_width);
      cairo_move_to(cr, x, cy);
      cairo_line_to(cr, x + w, cy);
      cairo_stroke(cr);
      break;
    case Kind::kArrows:
      DrawArrow(cr, x, cy, x + w, cy, s.style.line_width);
      break;
    case Kind::kBars:
      cairo_rectangle(cr, x + 0.2 * w, cy - 0.3 * w, 0.6 * w, 0.6 * w);
      cairo_fill(cr);
      break;
  }
}

void Render(cairo_t* cr, const PlotOptions& o, const Layout& l, const std::vector<Series>& series,
            const std::vector<std::string>& categories) {
  const double fs = o.font_size;
  // Background.
  cairo_set_source_rgb(cr, 1.0, 1.0, 1.0);
  cairo_rectangle(cr, 0, 0, o.width, o.height);
  cairo_fill(cr);
  cairo_select_font_face(cr, kFontFamily, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, fs);

  std::vector<Tick> xticks, yticks;
  if (o.axes) {
    if (l.num_categories > 0) {
      for (int k = 0; k < l.num_categories; ++k) {
        if (k < l.x0 || k > l.x1) continue;
        xticks.push_back({static_cast<double>(k), k < static_cast<int>(categories.size()) ? categories[k]
                                                                                          : absl::StrCat(k)});
      }
    } else {
      xticks = LinearTicks(l.x0, l.x1, std::max(2.0, l.width / (7.0 * fs)));
    }
    const double ytarget = std::max(2.0, l.height / (5.0 * fs));
    yticks = l.log_y ? LogTicks(l.y0, l.y1, ytarget) : LinearTicks(l.y0, l.y1, ytarget);
    if (o.grid) {
      cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
      cairo_set_line_width(cr, 1.0);
      for (const Tick& t : xticks) {
        if (l.num_categories > 0) break;  // no vertical grid for bar charts
        const double px = std::round(l.Px(t.position)) + 0.5;
        cairo_move_to(cr, px, l.top);
        cairo_line_to(cr, px, l.top + l.height);
      }
      for (const Tick& t : yticks) {
        const double py = std::round(l.PyTransformed(t.position)) + 0.5;
        cairo_move_to(cr, l.left, py);
        cairo_line_to(cr, l.left + l.width, py);
      }
      cairo_stroke(cr);
    }
  }

  // Data, clipped to the plot area.
  cairo_save(cr);
  cairo_rectangle(cr, l.left, l.top, l.width, l.height);
  cairo_clip(cr);
  int bar_index = 0;
  for (const Series& s : series) {
    DrawSeries(cr, l, s, bar_index);
    if (s.kind == Kind::kBars) ++bar_index;
  }
  cairo_restore(cr);

  cairo_set_source_rgb(cr, 0.0, 0.0, 0.0);
  if (o.axes) {
    cairo_set_line_width(cr, 1.0);
    cairo_rectangle(cr, std::round(l.left) + 0.5, std::round(l.top) + 0.5, std::round(l.width),
                    std::round(l.height));
    cairo_stroke(cr);
    const double tick = 5.0;
    const double bottom = l.top + l.height;
    for (const Tick& t : xticks) {
      const double px = l.Px(t.position);
      cairo_move_to(cr, px, bottom);
      cairo_line_to(cr, px, bottom + tick);
    }
    for (const Tick& t : yticks) {
      const double py = l.PyTransformed(t.position);
      cairo_move_to(cr, l.left - tick, py);
      cairo_line_to(cr, l.left, py);
    }
    cairo_stroke(cr);
    for (const Tick& t : xticks) DrawText(cr, t.label, l.Px(t.position), bottom + tick + 1.1 * fs, Align::kCenter);
    for (const Tick& t : yticks) {
      DrawText(cr, t.label, l.left - tick - 3.0, l.PyTransformed(t.position) + 0.35 * fs, Align::kRight);
    }
    if (!o.x_label.empty()) {
      DrawText(cr, o.x_label, l.left + 0.5 * l.width, bottom + tick + 2.6 * fs, Align::kCenter);
    }
    if (!o.y_label.empty()) {
      cairo_save(cr);
      cairo_translate(cr, 1.2 * fs, l.top + 0.5 * l.height);
      cairo_rotate(cr, -0.5 * std::numbers::pi);
      DrawText(cr, o.y_label, 0.0, 0.0, Align::kCenter);
      cairo_restore(cr);
    }
  }
  if (!o.title.empty()) {
    cairo_set_font_size(cr, 1.15 * fs);
    DrawText(cr, o.title, 0.5 * o.width, 1.5 * fs, Align::kCenter);
    cairo_set_font_size(cr, fs);
  }

  // Legend in the top-right corner of the plot area.
  if (o.legend) {
    std::vector<const Series*> entries;
    for (const Series& s : series) {
      if (!s.style.label.empty()) entries.push_back(&s);
    }
    if (!entries.empty()) {
      const double row = 1.4 * fs, swatch = 2.0 * fs, pad = 0.5 * fs;
      double text_width = 0.0;
      for (const Series* s : entries) text_width = std::max(text_width, TextWidth(cr, s->style.label));
      const double w = pad + swatch + pad + text_width + pad;
      const double h = pad + row * entries.size() + pad * 0.5;
      const double x = l.left + l.width - w - 6.0, y = l.top + 6.0;
      cairo_rectangle(cr, x, y, w, h);
      cairo_set_source_rgba(cr, 1.0, 1.0, 1.0, 0.85);
      cairo_fill_preserve(cr);
      cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
      cairo_set_line_width(cr, 1.0);
      cairo_stroke(cr);
      for (size_t i = 0; i < entries.size(); ++i) {
        const double cy = y + pad + row * (i + 0.5);
        DrawLegendSwatch(cr, *entries[i], x + pad, cy, swatch);
        cairo_set_source_rgb(cr, 0.0, 0.0, 0.0);
        DrawText(cr, entries[i]->style.label, x + pad + swatch + pad, cy + 0.35 * fs, Align::kLeft);
      }
    }
  }
}

bool EndsWithIgnoreCase(const std::string& s, absl::string_view suffix) {
  return s.size() >= suffix.size() && absl::AsciiStrToLower(s.substr(s.size() - suffix.size())) == suffix;
}

absl::Status CheckPoints(const Eigen::Ref<const ot::RowMatrixXf>& p, absl::string_view name) {
  if (p.cols() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": expected n x 2 points (x, y), got ", p.rows(), " x ", p.cols()));
  }
  return absl::OkStatus();
}

absl::Status WithPath(const absl::Status& s, const std::string& path) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
}

}  // namespace

Rgba PaletteColor(int index) {
  static constexpr unsigned kTableau10[10] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                              0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};
  const unsigned c = kTableau10[((index % 10) + 10) % 10];
  return Rgba{((c >> 16) & 0xff) / 255.0, ((c >> 8) & 0xff) / 255.0, (c & 0xff) / 255.0, 1.0};
}

absl::Status PlotOptions::Validate() const {
  if (width < 32 || width > 16384 || height < 32 || height > 16384) {
    return absl::InvalidArgumentError(
        absl::StrCat("plot options: width and height must be in [32, 16384] pixels, got ", width, " x ", height));
  }
  if (!(font_size >= 4.0 && font_size <= 200.0)) {
    return absl::InvalidArgumentError(absl::StrCat("plot options: font_size must be in [4, 200], got ", font_size));
  }
  if (!(margin_fraction >= 0.0 && margin_fraction < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("plot options: margin_fraction must be in [0, 1), got ", margin_fraction));
  }
  for (auto [name, v] : {std::pair("x_min", x_min), std::pair("x_max", x_max), std::pair("y_min", y_min),
                         std::pair("y_max", y_max)}) {
    if (v && !std::isfinite(*v)) {
      return absl::InvalidArgumentError(absl::StrCat("plot options: ", name, " must be finite, got ", *v));
    }
  }
  if (log_y && ((y_min && *y_min <= 0.0) || (y_max && *y_max <= 0.0))) {
    return absl::InvalidArgumentError("plot options: log_y needs positive y_min and y_max");
  }
  return absl::OkStatus();
}

absl::StatusOr<ImageFormat> ImageFormatFromPath(const std::string& path) {
  if (EndsWithIgnoreCase(path, ".png")) return ImageFormat::kPng;
  if (EndsWithIgnoreCase(path, ".svg")) return ImageFormat::kSvg;
  return absl::InvalidArgumentError(absl::StrCat(path, ": unknown image format; expected a .png or .svg file name"));
}

Figure::Figure(PlotOptions options) : options_(std::move(options)) {}

absl::Status Figure::AddScatter(const Eigen::Ref<const ot::RowMatrixXf>& points, SeriesStyle style) {
  OTGEN_RETURN_IF_ERROR(CheckPoints(points, "points"));
  if (!(style.marker_size > 0.0) || !(style.line_width > 0.0)) {
    return absl::InvalidArgumentError("style: marker_size and line_width must be > 0");
  }
  Series s{Kind::kScatter, style, style.color.value_or(PaletteColor(static_cast<int>(series_.size())))};
  s.x.resize(points.rows());
  s.y.resize(points.rows());
  for (Eigen::Index i = 0; i < points.rows(); ++i) {
    s.x[i] = points(i, 0);
    s.y[i] = points(i, 1);
  }
  series_.push_back(std::move(s));
  return absl::OkStatus();
}

absl::Status Figure::AddLine(absl::Span<const double> x, absl::Span<const double> y, SeriesStyle style) {
  if (x.size() != y.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("x, y: expected equal lengths, got ", x.size(), " and ", y.size()));
  }
  if (!(style.line_width > 0.0)) return absl::InvalidArgumentError("style: line_width must be > 0");
  Series s{Kind::kLine, style, style.color.value_or(PaletteColor(static_cast<int>(series_.size())))};
  s.x.assign(x.begin(), x.end());
  s.y.assign(y.begin(), y.end());
  series_.push_back(std::move(s));
  return absl::OkStatus();
}

absl::Status Figure::AddArrows(const Eigen::Ref<const ot::RowMatrixXf>& from, const Eigen::Ref<const ot::RowMatrixXf>& to,
                               SeriesStyle style) {
  OTGEN_RETURN_IF_ERROR(CheckPoints(from, "from"));
  OTGEN_RETURN_IF_ERROR(CheckPoints(to, "to"));
  if (from.rows() != to.rows()) {
    return absl::InvalidArgumentError(
        absl::StrCat("from, to: expected the same number of points, got ", from.rows(), " and ", to.rows()));
  }
  if (!(style.line_width > 0.0)) return absl::InvalidArgumentError("style: line_width must be > 0");
  Series s{Kind::kArrows, style, style.color.value_or(PaletteColor(static_cast<int>(series_.size())))};
  for (Eigen::Index i = 0; i < from.rows(); ++i) {
    s.x.push_back(from(i, 0));
    s.y.push_back(from(i, 1));
    s.x2.push_back(to(i, 0));
    s.y2.push_back(to(i, 1));
  }
  series_.push_back(std::move(s));
  return absl::OkStatus();
}

absl::Status Figure::AddBars(absl::Span<const double> heights, SeriesStyle style) {
  if (heights.empty()) return absl::InvalidArgumentError("heights: expected at least one bar");
  for (const Series& s : series_) {
    if (s.kind == Kind::kBars && s.y.size() != heights.size()) {
      return absl::InvalidArgumentError(absl::StrCat("heights: expected ", s.y.size(),
                                                     " bars (as the figure's other bar series), got ", heights.size()));
    }
  }
  Series s{Kind::kBars, style, style.color.value_or(PaletteColor(static_cast<int>(series_.size())))};
  s.y.assign(heights.begin(), heights.end());
  series_.push_back(std::move(s));
  return absl::OkStatus();
}

absl::StatusOr<std::array<double, 2>> Figure::DataToPixel(double x, double y) const {
  OTGEN_ASSIGN_OR_RETURN(Layout l, ComputeLayout(options_, series_));
  if (options_.log_y && !(y > 0.0)) {
    return absl::InvalidArgumentError(absl::StrCat("y: expected a positive value on a log axis, got ", y));
  }
  return std::array<double, 2>{l.Px(x), l.Py(y)};
}

absl::StatusOr<std::string> Figure::RenderPng() const {
  OTGEN_ASSIGN_OR_RETURN(Layout l, ComputeLayout(options_, series_));
  SurfacePtr surface(cairo_image_surface_create(CAIRO_FORMAT_ARGB32, options_.width, options_.height));
  if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS) {
    return CairoError(cairo_surface_status(surface.get()), "creating the image surface");
  }
  {
    ContextPtr cr(cairo_create(surface.get()));
    Render(cr.get(), options_, l, series_, categories_);
    if (cairo_status(cr.get()) != CAIRO_STATUS_SUCCESS) return CairoError(cairo_status(cr.get()), "drawing");
  }
  std::string png;
  const cairo_status_t status = cairo_surface_write_to_png_stream(surface.get(), AppendToString, &png);
  if (status != CAIRO_STATUS_SUCCESS) return CairoError(status, "encoding PNG");
  return png;
}

absl::StatusOr<std::string> Figure::RenderSvg() const {
  OTGEN_ASSIGN_OR_RETURN(Layout l, ComputeLayout(options_, series_));
  std::string svg;
  {
    SurfacePtr surface(cairo_svg_surface_create_for_stream(AppendToString, &svg, options_.width, options_.height));
    if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS) {
      return CairoError(cairo_surface_status(surface.get()), "creating the SVG surface");
    }
    cairo_svg_surface_set_document_unit(surface.get(), CAIRO_SVG_UNIT_PX);
    {
      ContextPtr cr(cairo_create(surface.get()));
      Render(cr.get(), options_, l, series_, categories_);
      if (cairo_status(cr.get()) != CAIRO_STATUS_SUCCESS) return CairoError(cairo_status(cr.get()), "drawing");
    }
    cairo_surface_finish(surface.get());
    if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS) {
      return CairoError(cairo_surface_status(surface.get()), "encoding SVG");
    }
  }
  return svg;
}

absl::Status Figure::WritePng(const std::string& path) const {
  absl::StatusOr<std::string> png = RenderPng();
  if (!png.ok()) return WithPath(png.status(), path);
  return apps::WriteFileAtomically(path, *png);
}

absl::Status Figure::WriteSvg(const std::string& path) const {
  absl::StatusOr<std::string> svg = RenderSvg();
  if (!svg.ok()) return WithPath(svg.status(), path);
  return apps::WriteFileAtomically(path, *svg);
}

absl::Status Figure::Write(const std::string& path) const {
  OTGEN_ASSIGN_OR_RETURN(ImageFormat format, ImageFormatFromPath(path));
  return format == ImageFormat::kPng ? WritePng(path) : WriteSvg(path);
}

absl::Status PlotSamples2d(const std::string& path, const Eigen::Ref<const ot::RowMatrixXf>& samples,
                           const Eigen::Ref<const ot::RowMatrixXf>& means, PlotOptions options) {
  options.equal_aspect = true;
  Figure fig(std::move(options));
  Rgba sample_color = PaletteColor(0);
  sample_color.a = 0.5;
  OTGEN_RETURN_IF_ERROR(WithPath(
      fig.AddScatter(samples, {.label = "samples", .color = sample_color, .marker_size = 1.8}), path));
  if (means.rows() > 0) {
    OTGEN_RETURN_IF_ERROR(WithPath(fig.AddScatter(means, {.label = "true means",
                                                          .color = Rgba{0, 0, 0, 1},
                                                          .marker = Marker::kCross,
                                                          .marker_size = 4.5,
                                                          .line_width = 1.5}),
                                   path));
  }
  return fig.Write(path);
}

absl::Status PlotMapArrows(const std::string& path, const Eigen::Ref<const ot::RowMatrixXf>& source,
                           const Eigen::Ref<const ot::RowMatrixXf>& mapped,
                           const Eigen::Ref<const ot::RowMatrixXf>& targets, PlotOptions options) {
  options.equal_aspect = true;
  Figure fig(std::move(options));
  if (targets.rows() > 0) {
    Rgba c = PaletteColor(2);
    c.a = 0.35;
    OTGEN_RETURN_IF_ERROR(WithPath(fig.AddScatter(targets, {.label = "target", .color = c, .marker_size = 2.0}), path));
  }
  OTGEN_RETURN_IF_ERROR(WithPath(
      fig.AddArrows(source, mapped, {.label = "z -> G(z)", .color = Rgba{0.45, 0.45, 0.45, 0.6}, .line_width = 0.8}),
      path));
  OTGEN_RETURN_IF_ERROR(
      WithPath(fig.AddScatter(source, {.label = "z", .color = PaletteColor(0), .marker_size = 2.0}), path));
  OTGEN_RETURN_IF_ERROR(WithPath(
      fig.AddScatter(mapped, {.label = "G(z)", .color = PaletteColor(3), .marker = Marker::kTriangle, .marker_size = 2.2}),
      path));
  return fig.Write(path);
}

absl::Status PlotClassHistogram(const std::string& path, absl::Span<const double> frequencies,
                                absl::Span<const double> reference, PlotOptions options) {
  if (!reference.empty() && reference.size() != frequencies.size()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": reference: expected ", frequencies.size(),
                                                   " classes (as frequencies) or none, got ", reference.size()));
  }
  if (options.x_label.empty()) options.x_label = "class";
  if (options.y_label.empty()) options.y_label = "frequency";
  Figure fig(std::move(options));
  OTGEN_RETURN_IF_ERROR(WithPath(fig.AddBars(frequencies, {.label = "generated", .color = PaletteColor(0)}), path));
  if (!reference.empty()) {
    OTGEN_RETURN_IF_ERROR(WithPath(fig.AddBars(reference, {.label = "reference", .color = PaletteColor(7)}), path));
  }
  return fig.Write(path);
}

absl::Status PlotSeries(const std::string& path, absl::Span<const double> x, const std::vector<NamedSeries>& series,
                        PlotOptions options) {
  Figure fig(std::move(options));
  for (const NamedSeries& s : series) {
    OTGEN_RETURN_IF_ERROR(WithPath(fig.AddLine(x, s.values, {.label = s.name}), path));
  }
  return fig.Write(path);
}

// ---------------------------------------------------------------------------------------------
// Image grids.

absl::Status ImageGridOptions::Validate() const {
  if (columns < 0) return absl::InvalidArgumentError(absl::StrCat("columns: expected >= 0, got ", columns));
  if (padding < 0) return absl::InvalidArgumentError(absl::StrCat("padding: expected >= 0, got ", padding));
  if (scale < 1) return absl::InvalidArgumentError(absl::StrCat("scale: expected >= 1, got ", scale));
  if (!(padding_value >= 0.0 && padding_value <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("padding_value: expected a value in [0, 1], got ", padding_value));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> EncodeImageGridPng(absl::Span<const float> pixels, int64_t n, int channels, int height,
                                               int width, const ImageGridOptions& options) {
  OTGEN_RETURN_IF_ERROR(options.Validate());
  if (n < 1 || (channels != 1 && channels != 3) || height < 1 || width < 1) {
    return absl::InvalidArgumentError(absl::StrCat("images: expected n >= 1 images of 1 or 3 channels and positive size, got n=",
                                                   n, " channels=", channels, " ", height, "x", width));
  }
  const int64_t per_image = static_cast<int64_t>(channels) * height * width;
  if (static_cast<int64_t>(pixels.size()) != n * per_image) {
    return absl::InvalidArgumentError(absl::StrCat("images: expected ", n * per_image, " values (", n, " x ", channels,
                                                   " x ", height, " x ", width, "), got ", pixels.size()));
  }
  const int64_t cols = options.columns > 0 ? std::min<int64_t>(options.columns, n)
                                           : static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
  const int64_t rows = (n + cols - 1) / cols;
  const int64_t tile_w = static_cast<int64_t>(width) * options.scale, tile_h = static_cast<int64_t>(height) * options.scale;
  const int64_t grid_w = options.padding + cols * (tile_w + options.padding);
  const int64_t grid_h = options.padding + rows * (tile_h + options.padding);
  if (grid_w > 32767 || grid_h > 32767) {
    return absl::InvalidArgumentError(absl::StrCat("images: the grid would be ", grid_w, " x ", grid_h,
                                                   " pixels; expected at most 32767 per side (fewer images or smaller scale)"));
  }
  SurfacePtr surface(cairo_image_surface_create(CAIRO_FORMAT_RGB24, static_cast<int>(grid_w), static_cast<int>(grid_h)));
  if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS) {
    return CairoError(cairo_surface_status(surface.get()), "creating the image surface");
  }
  cairo_surface_flush(surface.get());
  unsigned char* data = cairo_image_surface_get_data(surface.get());
  const int stride = cairo_image_surface_get_stride(surface.get());
  auto to_byte = [&](float v) -> uint32_t {
    double u = options.range == PixelRange::kSymmetric ? 0.5 * (static_cast<double>(v) + 1.0) : v;
    if (!(u >= 0.0)) u = 0.0;  // also NaN
    if (u > 1.0) u = 1.0;
    return static_cast<uint32_t>(std::lround(255.0 * u));
  };
  const uint32_t pad_byte = static_cast<uint32_t>(std::lround(255.0 * options.padding_value));
  const uint32_t pad_pixel = (pad_byte << 16) | (pad_byte << 8) | pad_byte;
  for (int64_t y = 0; y < grid_h; ++y) {
    uint32_t* row = reinterpret_cast<uint32_t*>(data + y * stride);
    std::fill(row, row + grid_w, pad_pixel);
  }
  for (int64_t i = 0; i < n; ++i) {
    const int64_t gx = options.padding + (i % cols) * (tile_w + options.padding);
    const int64_t gy = options.padding + (i / cols) * (tile_h + options.padding);
    const float* img = pixels.data() + i * per_image;
    for (int r = 0; r < height; ++r) {
      for (int c = 0; c < width; ++c) {
        uint32_t rgb;
        if (channels == 1) {
          const uint32_t v = to_byte(img[r * width + c]);
          rgb = (v << 16) | (v << 8) | v;
        } else {
          const int64_t plane = static_cast<int64_t>(height) * width;
          rgb = (to_byte(img[r * width + c]) << 16) | (to_byte(img[plane + r * width + c]) << 8) |
                to_byte(img[2 * plane + r * width + c]);
        }
        for (int sy = 0; sy < options.scale; ++sy) {
          uint32_t* out = reinterpret_cast<uint32_t*>(data + (gy + r * options.scale + sy) * stride) + gx +
                          static_cast<int64_t>(c) * options.scale;
          std::fill(out, out + options.scale, rgb);
        }
      }
    }
  }
  cairo_surface_mark_dirty(surface.get());
  std::string png;
  const cairo_status_t status = cairo_surface_write_to_png_stream(surface.get(), AppendToString, &png);
  if (status != CAIRO_STATUS_SUCCESS) return CairoError(status, "encoding PNG");
  return png;
}

absl::Status WriteImageGrid(const std::string& path, absl::Span<const float> pixels, int64_t n, int channels,
                            int height, int width, const ImageGridOptions& options) {
  absl::StatusOr<std::string> png = EncodeImageGridPng(pixels, n, channels, height, width, options);
  if (!png.ok()) return WithPath(png.status(), path);
  return apps::WriteFileAtomically(path, *png);
}

absl::Status WriteImageGrid(const std::string& path, const nn::Tensor& images, const ImageGridOptions& options) {
  if (!images.defined() || (images.rank() != 3 && images.rank() != 4)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": images: expected a tensor {n, c, h, w} or {n, h, w}, got ",
                                                   images.defined() ? nn::ShapeToString(images.shape()) : "undefined"));
  }
  const bool nchw = images.rank() == 4;
  const int64_t c = nchw ? images.dim(1) : 1;
  const int64_t h = images.dim(nchw ? 2 : 1), w = images.dim(nchw ? 3 : 2);
  if (h > 65535 || w > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": images: ", h, " x ", w, " pixels is too large"));
  }
  return WriteImageGrid(path, images.span(), images.dim(0), static_cast<int>(c), static_cast<int>(h),
                        static_cast<int>(w), options);
}

void ReleasePlotFontCaches() {
  cairo_debug_reset_static_data();
  FcFini();
}

}  // namespace otgen::eval
