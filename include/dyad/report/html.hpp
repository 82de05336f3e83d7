// A self-contained HTML fleet report: ROC curves, the car ranking, the score distributions of
// normal and faulty cars, and measured vs reconstructed signals of the most suspicious cars'
// worst segments. One file with inline CSS and inline SVG: no JavaScript, nothing fetched.
// Output is deterministic (no timestamps), so equal inputs give byte-identical files.
#pragma once

#include "dyad/core/atomic_file.hpp"
#include "dyad/detect/evaluation.hpp"
#include "dyad/detect/ranking.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dyad::report {

// One target signal of a segment, in original units.
struct SignalTrace {
  std::string name;
  std::vector<double> measured, reconstructed;
};

// One segment shown in detail: its car, index, label, segment score (of ReportData::ranking_score)
// and sampling interval dt_s (seconds per time step; <= 0 plots against the step index).
struct SegmentView {
  std::string car;
  std::int64_t segment = 0;
  int label = 0;
  double score = 0;
  double dt_s = 10;
  std::vector<SignalTrace> signals;
};

// A car's verdict from the fleet database (dyad report --db): the current status and its
// explanation, and the car's updates over time (data time, score, p-value, status).
struct VerdictView {
  std::string car, status;  // ok, watch or alarm
  double p_value = 1, score = 0;
  std::int64_t segments = 0;
  std::vector<std::pair<std::string, double>> signals;  // name and ratio to the healthy median, most abnormal first
  std::string hint;                                     // of the top signal (a hint, not a diagnosis)
  std::vector<double> times, scores, p_values;          // history, oldest first; times in epoch seconds
  std::vector<std::string> statuses;
};

struct ReportData {
  std::string title = "dyad fleet report";
  std::vector<std::pair<std::string, std::string>> facts;  // key/value lines shown at the top
  std::vector<detect::ScoreEvaluation> scores;             // one per score: car scores, AUROCs, ROC points
  std::string ranking_score = "rec_error";                 // whose robust car scores order the ranking table
  std::vector<SegmentView> worst_segments;                 // the worst segment of each of the most suspicious cars
  std::vector<VerdictView> verdicts;                       // from a fleet database: every car, alarms first
};

namespace detail {

// ---- text -----------------------------------------------------------------------------------

inline void append_escaped(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
}

inline std::string escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  append_escaped(out, s);
  return out;
}

// Fixed-point with `decimals` digits, trailing zeros trimmed, never "-0": compact SVG coordinates.
inline std::string fixed(double v, int decimals = 2) {
  if (!std::isfinite(v)) return "0";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, decimals);
  std::string s(buf, r.ptr);
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  return s;
}

// A number for people: `digits` significant digits, "n/a" for NaN.
inline std::string general(double v, int digits = 4) {
  if (std::isnan(v)) return "n/a";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, digits);
  return std::string(buf, r.ptr);
}

// ---- scales and ticks -----------------------------------------------------------------------

struct Scale {
  double d0 = 0, d1 = 1;  // domain
  double r0 = 0, r1 = 1;  // range (pixels)
  bool log = false;
  double operator()(double v) const {
    const double a = log ? std::log10(v) : v, b0 = log ? std::log10(d0) : d0, b1 = log ? std::log10(d1) : d1;
    const double t = b1 == b0 ? 0.5 : (a - b0) / (b1 - b0);
    return r0 + t * (r1 - r0);
  }
};

struct Tick {
  double value;
  std::string label;
};

// 1, 2 or 5 times a power of ten, close to range / target.
inline double nice_step(double range, int target) {
  const double raw = range / std::max(target, 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  return (f < 1.5 ? 1.0 : f < 3.0 ? 2.0 : f < 7.0 ? 5.0 : 10.0) * mag;
}

inline std::string tick_label(double v, double step) {
  if (std::abs(v) < step * 1e-6) return "0";
  if (std::abs(v) >= 1e6 || step < 1e-6) return general(v, 3);
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, decimals);
  return std::string(buf, r.ptr);
}

inline std::vector<Tick> linear_ticks(double lo, double hi, int target) {
  std::vector<Tick> ticks;
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return ticks;
  const double step = nice_step(hi - lo, target);
  const auto k0 = static_cast<long long>(std::ceil(lo / step - 1e-9)), k1 = static_cast<long long>(std::floor(hi / step + 1e-9));
  for (long long k = k0; k <= k1 && ticks.size() < 64; ++k) {
    const double v = static_cast<double>(k) * step;
    ticks.push_back({v, tick_label(v, step)});
  }
  return ticks;
}

// Powers of ten (with 2 and 5 in between when the domain spans few decades), inside [lo, hi].
inline std::vector<Tick> log_ticks(double lo, double hi) {
  std::vector<Tick> ticks;
  if (!(lo > 0) || !(hi > lo)) return ticks;
  const int e0 = static_cast<int>(std::floor(std::log10(lo))), e1 = static_cast<int>(std::ceil(std::log10(hi)));
  const double span = std::log10(hi / lo);
  const int every = std::max(1, (e1 - e0 + 5) / 6);
  const std::vector<double> mult = span <= 2.5 ? std::vector<double>{1, 2, 5}
                                   : span <= 4 ? std::vector<double>{1, 3}
                                               : std::vector<double>{1};
  for (int e = e0; e <= e1; ++e) {
    if ((e - e0) % every != 0) continue;
    for (double m : mult) {
      const double v = m * std::pow(10.0, e);
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) ticks.push_back({v, general(v, 3)});
    }
  }
  return ticks;
}

// Domain of [lo, hi] padded by `pad` of its width (in log space for a log scale); degenerate
// and non-finite inputs get a usable domain.
inline std::pair<double, double> padded(double lo, double hi, double pad, bool log) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {0.0, 1.0};
  if (log) {
    const double a = std::log10(lo), b = std::log10(hi), w = std::max(b - a, 0.1);
    return {std::pow(10.0, a - pad * w), std::pow(10.0, b + pad * w)};
  }
  if (hi == lo) {
    const double w = lo == 0 ? 1.0 : std::abs(lo) * 0.1;
    return {lo - w, hi + w};
  }
  const double w = hi - lo;
  return {lo - pad * w, hi + pad * w};
}

// ---- palette --------------------------------------------------------------------------------

inline constexpr const char* kNormal = "#0f766e";
inline constexpr const char* kFaulty = "#dc2626";
inline constexpr const char* kMeasured = "#334155";
inline constexpr const char* kReconstructed = "#ea580c";
inline const char* series_colour(std::size_t i) {
  static constexpr const char* palette[] = {"#2563eb", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d"};
  return palette[i % (sizeof palette / sizeof palette[0])];
}

// ---- output helpers -------------------------------------------------------------------------

// Appends every part to `o` (avoids `"literal" + std::string` temporaries, on which GCC 12 -O3
// reports false -Wrestrict warnings).
template <class... Parts>
void add(std::string& o, const Parts&... parts) {
  (o.append(std::string_view(parts)), ...);
}

// ---- svg helpers ----------------------------------------------------------------------------

inline void svg_open(std::string& o, std::string_view cls, double w, double h, std::string_view aria) {
  const std::string ws = fixed(w), hs = fixed(h);
  add(o, "<svg class=\"", cls, "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"", ws, "\" height=\"", hs, "\" viewBox=\"0 0 ", ws,
      " ", hs, "\" role=\"img\" aria-label=\"");
  append_escaped(o, aria);
  o += "\">\n";
}

inline void svg_text(std::string& o, double x, double y, std::string_view text, std::string_view attrs = {}) {
  add(o, "<text x=\"", fixed(x), "\" y=\"", fixed(y), "\"");
  if (!attrs.empty()) add(o, " ", attrs);
  o += '>';
  append_escaped(o, text);
  o += "</text>";
}

// A label rotated to run upwards, centred on (x, y): the y-axis title.
inline void svg_vertical_label(std::string& o, double x, double y, std::string_view text) {
  add(o, "<text class=\"label\" text-anchor=\"middle\" transform=\"translate(", fixed(x), ",", fixed(y), ") rotate(-90)\">");
  append_escaped(o, text);
  o += "</text>";
}

inline void svg_line(std::string& o, std::string_view cls, double x1, double y1, double x2, double y2,
                     std::string_view extra = {}) {
  add(o, "<line class=\"", cls, "\" x1=\"", fixed(x1), "\" y1=\"", fixed(y1), "\" x2=\"", fixed(x2), "\" y2=\"", fixed(y2), "\"");
  if (!extra.empty()) add(o, " ", extra);
}

// Vertical grid lines and labels below the plot for x ticks; horizontal ones and labels left of
// the plot for y ticks. The plot is the rectangle [x0, x1] x [y0 (top), y1 (bottom)]. Grid lines
// and tick marks are one path each, which keeps the file small.
inline void x_ticks(std::string& o, const Scale& x, const std::vector<Tick>& ticks, double y0, double y1) {
  if (ticks.empty()) return;
  std::string g, m;
  const std::string top = fixed(y0), bottom = fixed(y1);
  for (const Tick& t : ticks) {
    const std::string px = fixed(x(t.value));
    add(g, "M", px, ",", top, "V", bottom);
    add(m, "M", px, ",", bottom, "v4");
  }
  add(o, "<path class=\"grid\" d=\"", g, "\"/><path class=\"tick\" d=\"", m,
      "\"/><g class=\"tick-labels\" text-anchor=\"middle\">");
  for (const Tick& t : ticks) svg_text(o, x(t.value), y1 + 15, t.label);
  o += "</g>\n";
}

inline void y_ticks(std::string& o, const Scale& y, const std::vector<Tick>& ticks, double x0, double x1) {
  if (ticks.empty()) return;
  std::string g, m;
  const std::string left = fixed(x0), right = fixed(x1), outside = fixed(x0 - 4);
  for (const Tick& t : ticks) {
    const std::string py = fixed(y(t.value));
    add(g, "M", left, ",", py, "H", right);
    add(m, "M", outside, ",", py, "h4");
  }
  add(o, "<path class=\"grid\" d=\"", g, "\"/><path class=\"tick\" d=\"", m, "\"/><g class=\"tick-labels\" text-anchor=\"end\">");
  for (const Tick& t : ticks) svg_text(o, x0 - 7, y(t.value) + 3.5, t.label);
  o += "</g>\n";
}

inline void frame(std::string& o, double x0, double y0, double x1, double y1) {
  add(o, "<rect class=\"frame\" x=\"", fixed(x0), "\" y=\"", fixed(y0), "\" width=\"", fixed(x1 - x0), "\" height=\"",
      fixed(y1 - y0), "\"/>\n");
}

// Path data on a grid of 10^-decimals pixels (1 or 2 decimals): "M" absolute to start a run, then
// "l" steps between the rounded points, so no rounding error accumulates and the numbers stay short.
class PathData {
 public:
  explicit PathData(int decimals = 2) : decimals_(decimals == 1 ? 1 : 2), unit_(decimals == 1 ? 10 : 100) {}
  void move_to(double x, double y) {
    px_ = round(x), py_ = round(y);
    d_ += 'M';
    put(px_);
    d_ += ',';
    put(py_);
    drawing_ = false;
  }
  void line_to(double x, double y) {
    const long long nx = round(x), ny = round(y);
    d_ += drawing_ ? ' ' : 'l';
    put(nx - px_);
    d_ += ',';
    put(ny - py_);
    px_ = nx, py_ = ny, drawing_ = true;
  }
  const std::string& str() const { return d_; }

 private:
  long long round(double v) const { return std::isfinite(v) ? std::llround(v * static_cast<double>(unit_)) : 0; }
  // v units of 10^-decimals as a decimal number, trailing zeros trimmed.
  void put(long long v) {
    const unsigned long long a = v < 0 ? 0ull - static_cast<unsigned long long>(v) : static_cast<unsigned long long>(v);
    if (v < 0) d_ += '-';
    d_ += std::to_string(a / unit_);
    if (auto frac = a % unit_) {
      d_ += '.';
      if (decimals_ == 2) {
        d_ += static_cast<char>('0' + frac / 10);
        frac %= 10;
        if (frac) d_ += static_cast<char>('0' + frac);
      } else {
        d_ += static_cast<char>('0' + frac);
      }
    }
  }
  int decimals_;
  unsigned long long unit_;
  std::string d_;
  long long px_ = 0, py_ = 0;
  bool drawing_ = false;
};

// Indices of the points to draw: all of them, or for long series the first, min, max and last
// point of each of `buckets` runs (keeps peaks visible at a bounded file size).
inline std::vector<std::size_t> decimate(const std::vector<double>& v, std::size_t buckets) {
  std::vector<std::size_t> idx;
  const std::size_t n = v.size();
  if (n <= 4 * buckets) {
    for (std::size_t i = 0; i < n; ++i) idx.push_back(i);
    return idx;
  }
  for (std::size_t b = 0; b < buckets; ++b) {
    const std::size_t lo = b * n / buckets, hi = (b + 1) * n / buckets;
    std::size_t mn = lo, mx = lo;
    for (std::size_t i = lo; i < hi; ++i) {
      if (std::isnan(v[i])) continue;
      if (std::isnan(v[mn]) || v[i] < v[mn]) mn = i;
      if (std::isnan(v[mx]) || v[i] > v[mx]) mx = i;
    }
    const std::size_t pick[4] = {lo, std::min(mn, mx), std::max(mn, mx), hi - 1};
    for (std::size_t p : pick)
      if (idx.empty() || idx.back() < p) idx.push_back(p);
  }
  return idx;
}

// Path data of a series over time step index; NaN/inf values break the line. A tenth of a pixel
// is finer than these small charts can show, and dense series are most of the file.
inline std::string series_path(const std::vector<double>& v, const Scale& x, const Scale& y, double step) {
  PathData d(1);
  bool pen_down = false;
  for (std::size_t i : decimate(v, 400)) {
    if (!std::isfinite(v[i])) {
      pen_down = false;
      continue;
    }
    const double px = x(static_cast<double>(i) * step), py = y(v[i]);
    if (pen_down) d.line_to(px, py);
    else d.move_to(px, py);
    pen_down = true;
  }
  return d.str();
}

// ---- sections -------------------------------------------------------------------------------

inline const detect::ScoreEvaluation* ranking_evaluation(const ReportData& r) {
  for (const auto& e : r.scores)
    if (e.name == r.ranking_score) return &e;
  return r.scores.empty() ? nullptr : &r.scores.front();
}

inline void label_tag(std::string& o, int label) {
  o += label == 1 ? "<span class=\"tag faulty\">faulty</span>" : "<span class=\"tag normal\">normal</span>";
}

inline void header_section(std::string& o, const ReportData& r) {
  o += "<header id=\"summary\">\n<h1>";
  append_escaped(o, r.title);
  o += "</h1>\n<p class=\"sub\">";
  if (const auto* e = ranking_evaluation(r)) {
    std::size_t faulty = 0, segments = 0;
    for (const auto& c : e->robust) faulty += c.label == 1 ? 1 : 0, segments += c.segments;
    add(o, std::to_string(e->robust.size()), " cars (", std::to_string(e->robust.size() - faulty), " normal, ",
        std::to_string(faulty), " faulty), ", std::to_string(segments), " segments");
    for (const auto& s : r.scores) {
      o += " &middot; ";
      append_escaped(o, s.name);
      add(o, " AUROC <strong>", detect::auroc_text(s.auroc_robust), "</strong>");
    }
  } else if (!r.verdicts.empty()) {
    std::size_t alarm = 0, watch = 0;
    for (const auto& v : r.verdicts) alarm += v.status == "alarm", watch += v.status == "watch";
    add(o, std::to_string(r.verdicts.size()), " cars: <strong>", std::to_string(alarm), " in alarm</strong>, ",
        std::to_string(watch), " on watch, ", std::to_string(r.verdicts.size() - alarm - watch), " ok");
  } else {
    o += "No scores to report.";
  }
  o += "</p>\n";
  if (!r.facts.empty()) {
    o += "<dl class=\"facts\">\n";
    for (const auto& [k, v] : r.facts) {
      o += "<dt>";
      append_escaped(o, k);
      o += "</dt><dd>";
      append_escaped(o, v);
      o += "</dd>\n";
    }
    o += "</dl>\n";
  }
  o += "<nav>";
  if (!r.verdicts.empty()) o += "<a href=\"#verdicts\">Verdicts</a>";
  if (!r.scores.empty() || r.verdicts.empty())
    o += "<a href=\"#roc\">ROC</a><a href=\"#ranking\">Ranking</a><a href=\"#distributions\">Distributions</a>";
  if (!r.worst_segments.empty() || r.verdicts.empty()) o += "<a href=\"#segments\">Worst segments</a>";
  o += "</nav>\n</header>\n";
}

inline void roc_section(std::string& o, const ReportData& r) {
  o += "<section id=\"roc\">\n<h2>ROC curves</h2>\n<p class=\"note\">Cars ranked by their robust car score "
       "(mean of the car&#39;s worst segments); a car is flagged when its score is above the threshold.</p>\n"
       "<div class=\"row\">\n";
  const double L = 56, T = 14, W = 320, H = 320, R = 18, B = 50;
  const double x0 = L, x1 = L + W, y0 = T, y1 = T + H;
  svg_open(o, "chart roc", L + W + R, T + H + B, "ROC curves of the car scores");
  const Scale x{0, 1, x0, x1}, y{0, 1, y1, y0};
  const auto ticks = linear_ticks(0, 1, 5);
  x_ticks(o, x, ticks, y0, y1);
  y_ticks(o, y, ticks, x0, x1);
  svg_line(o, "diagonal", x0, y1, x1, y0);
  o += "/>\n";
  for (std::size_t i = 0; i < r.scores.size(); ++i) {
    const auto& e = r.scores[i];
    if (e.roc.empty()) continue;
    PathData d;
    d.move_to(x(e.roc.front().fpr), y(e.roc.front().tpr));
    for (std::size_t k = 1; k < e.roc.size(); ++k) d.line_to(x(e.roc[k].fpr), y(e.roc[k].tpr));
    add(o, "<path class=\"curve\" stroke=\"", series_colour(i), "\" d=\"", d.str(), "\"/>\n");
  }
  frame(o, x0, y0, x1, y1);
  svg_text(o, (x0 + x1) / 2, y1 + 36, "false positive rate (normal cars flagged)", "class=\"label\" text-anchor=\"middle\"");
  svg_vertical_label(o, 14, (y0 + y1) / 2, "true positive rate (faulty cars flagged)");
  // Legend, bottom right of the plot (below the diagonal, where curves rarely are).
  o += "\n<g class=\"legend\">";
  if (r.scores.empty()) {
    svg_text(o, (x0 + x1) / 2, (y0 + y1) / 2, "no scores", "text-anchor=\"middle\"");
  } else {
    std::size_t longest = 0;
    for (const auto& e : r.scores) longest = std::max(longest, e.name.size());
    // Width from a generous 7 px per character of the 12 px legend font.
    const double row = 18, lw = std::min(W - 16, 34 + 7.0 * static_cast<double>(longest) + 8 + 82);
    const double lh = row * static_cast<double>(r.scores.size()) + 10, lx = x1 - lw - 8, ly = y1 - lh - 8;
    add(o, "<rect class=\"legend-box\" x=\"", fixed(lx), "\" y=\"", fixed(ly), "\" width=\"", fixed(lw), "\" height=\"", fixed(lh),
        "\" rx=\"6\"/>");
    for (std::size_t i = 0; i < r.scores.size(); ++i) {
      const auto& e = r.scores[i];
      const double cy = ly + 5 + row * (static_cast<double>(i) + 0.5);
      svg_line(o, "legend-line", lx + 8, cy, lx + 28, cy);
      add(o, " stroke=\"", e.roc.empty() ? "#cbd5e1" : series_colour(i), e.roc.empty() ? "\" stroke-dasharray=\"3 3\"/>" : "\"/>");
      add(o, "<text class=\"legend-text\" x=\"", fixed(lx + 34), "\" y=\"", fixed(cy + 4), "\">");
      append_escaped(o, e.name);
      add(o, "<tspan class=\"auroc\" dx=\"8\">AUROC ", detect::auroc_text(e.auroc_robust), "</tspan></text>");
    }
  }
  o += "</g>\n</svg>\n";
  // AUROC table next to the chart.
  o += "<div class=\"side\">\n<table class=\"auroc\">\n<thead><tr><th>score</th><th class=\"num\">AUROC robust</th>"
       "<th class=\"num\">AUROC average</th></tr></thead>\n<tbody>\n";
  for (std::size_t i = 0; i < r.scores.size(); ++i) {
    const auto& e = r.scores[i];
    add(o, "<tr><td><span class=\"swatch\" style=\"background:", series_colour(i), "\"></span>");
    append_escaped(o, e.name);
    add(o, "</td><td class=\"num\">", detect::auroc_text(e.auroc_robust), "</td><td class=\"num\">",
        detect::auroc_text(e.auroc_average), "</td></tr>\n");
  }
  if (r.scores.empty()) o += "<tr><td colspan=\"3\">no scores</td></tr>\n";
  o += "</tbody>\n</table>\n<p class=\"note\"><em>robust</em>: mean of each car&#39;s top-h segment scores; "
       "<em>average</em>: mean of all its segments. 0.5 is chance, 1 a perfect ranking; n/a when the cars "
       "are all of one class.</p>\n</div>\n</div>\n</section>\n";
}

inline void ranking_section(std::string& o, const ReportData& r) {
  o += "<section id=\"ranking\">\n<h2>Car ranking</h2>\n";
  const auto* rank_by = ranking_evaluation(r);
  if (!rank_by || rank_by->robust.empty()) {
    o += "<p class=\"empty\">No cars to rank.</p>\n</section>\n";
    return;
  }
  o += "<p class=\"note\">Most suspicious first, by the robust car score of <strong>";
  append_escaped(o, rank_by->name);
  o += "</strong>. Faulty cars are highlighted.</p>\n<div class=\"scroll\">\n<table class=\"ranking\">\n<thead><tr>"
       "<th class=\"num\">rank</th><th>car</th><th>label</th><th class=\"num\">segments</th>";
  std::vector<std::map<std::string, double>> by_car(r.scores.size());
  for (std::size_t i = 0; i < r.scores.size(); ++i) {
    const bool key = &r.scores[i] == rank_by;
    for (const auto& c : r.scores[i].robust) by_car[i][c.car] = c.score;
    o += key ? "<th class=\"num key\">" : "<th class=\"num\">";
    append_escaped(o, r.scores[i].name);
    o += key ? " &#9662;</th>" : "</th>";
  }
  o += "</tr></thead>\n<tbody>\n";
  const auto order = detect::car_ranking(rank_by->robust);
  for (std::size_t k = 0; k < order.size(); ++k) {
    const auto& c = rank_by->robust[order[k]];
    add(o, c.label == 1 ? "<tr class=\"faulty\">" : "<tr class=\"normal\">", "<td class=\"num\">", std::to_string(k + 1),
        "</td><td class=\"car\">");
    append_escaped(o, c.car);
    o += "</td><td>";
    label_tag(o, c.label);
    add(o, "</td><td class=\"num\">", std::to_string(c.segments), "</td>");
    for (std::size_t i = 0; i < r.scores.size(); ++i) {
      const auto it = by_car[i].find(c.car);
      o += &r.scores[i] == rank_by ? "<td class=\"num key\">" : "<td class=\"num\">";
      if (it == by_car[i].end()) o += "&ndash;";
      else append_escaped(o, general(it->second));
      o += "</td>";
    }
    o += "</tr>\n";
  }
  o += "</tbody>\n</table>\n</div>\n</section>\n";
}

// Strip plot of the robust car scores of one score: normal cars on one row, faulty cars on the
// other, deterministic vertical jitter, a bar at each class median. Wide positive ranges
// (max / min >= 50) use a log axis.
inline void distribution_chart(std::string& o, const detect::ScoreEvaluation& e) {
  const double L = 104, R = 14, T = 30, B = 42, W = 228, row = 44;
  const double x0 = L, x1 = L + W, y0 = T, y1 = T + 2 * row;
  std::string aria = "Distribution of the ";
  add(aria, e.name, " car scores");
  svg_open(o, "chart dist", L + W + R, T + 2 * row + B, aria);
  svg_text(o, 4, 16, e.name, "class=\"title\"");
  std::string auroc = "AUROC ";
  add(auroc, detect::auroc_text(e.auroc_robust));
  svg_text(o, L + W, 16, auroc, "class=\"subtitle\" text-anchor=\"end\"");
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  std::size_t counts[2] = {0, 0};
  for (const auto& c : e.robust)
    if (std::isfinite(c.score)) lo = std::min(lo, c.score), hi = std::max(hi, c.score), ++counts[c.label == 1 ? 1 : 0];
  const bool log = lo > 0 && hi / lo >= 50;
  const auto [d0, d1] = padded(lo, hi, 0.04, log);
  const Scale x{d0, d1, x0, x1, log};
  x_ticks(o, x, log ? log_ticks(d0, d1) : linear_ticks(d0, d1, 5), y0, y1);
  svg_line(o, "sep", x0, y0 + row, x1, y0 + row);
  o += "/>\n";
  frame(o, x0, y0, x1, y1);
  svg_text(o, (x0 + x1) / 2, y1 + 34, log ? "robust car score (log scale)" : "robust car score",
           "class=\"label\" text-anchor=\"middle\"");
  const char* names[2] = {"normal", "faulty"};
  const char* colours[2] = {kNormal, kFaulty};
  o += "<g class=\"legend\">";
  for (int cls = 0; cls < 2; ++cls) {
    const double cy = y0 + row * (cls + 0.5);
    add(o, "<circle cx=\"10\" cy=\"", fixed(cy), "\" r=\"4.5\" fill=\"", colours[cls], "\"/>");
    std::string text = names[cls];
    add(text, " (", std::to_string(counts[cls]), ")");
    svg_text(o, 20, cy + 4, text, "class=\"legend-text\"");
  }
  o += "</g>\n";
  if (counts[0] + counts[1] == 0) svg_text(o, (x0 + x1) / 2, y0 + row + 4, "no cars", "text-anchor=\"middle\"");
  for (int cls = 0; cls < 2; ++cls) {
    const double cy = y0 + row * (cls + 0.5);
    std::vector<double> values;
    add(o, "<g class=\"dots ", names[cls], "\" fill=\"", colours[cls], "\">");
    std::size_t k = 0;
    for (const auto& c : e.robust) {
      if ((c.label == 1 ? 1 : 0) != cls || !std::isfinite(c.score)) continue;
      values.push_back(c.score);
      // Golden-ratio sequence: evenly spread, deterministic jitter in [-0.5, 0.5).
      const double j = std::fmod(static_cast<double>(k++) * 0.6180339887498949, 1.0) - 0.5;
      add(o, "<circle cx=\"", fixed(x(c.score)), "\" cy=\"", fixed(cy + j * row * 0.62), "\" r=\"3.5\"><title>");
      append_escaped(o, c.car);
      add(o, ": ", general(c.score), "</title></circle>");
    }
    o += "</g>\n";
    if (!values.empty()) {
      std::sort(values.begin(), values.end());
      const std::size_t n = values.size();
      const double median = n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
      std::string stroke = "stroke=\"";
      add(stroke, colours[cls], "\"");
      svg_line(o, "median", x(median), cy - row * 0.42, x(median), cy + row * 0.42, stroke);
      add(o, "><title>median ", general(median), "</title></line>\n");
    }
  }
  o += "</svg>\n";
}

inline void distribution_section(std::string& o, const ReportData& r) {
  o += "<section id=\"distributions\">\n<h2>Score distributions</h2>\n<p class=\"note\">Robust car score of every car, "
       "normal and faulty separately; the bar marks each class&#39;s median. A good score separates the rows.</p>\n";
  if (r.scores.empty()) {
    o += "<p class=\"empty\">No scores.</p>\n</section>\n";
    return;
  }
  o += "<div class=\"grid3\">\n";
  for (const auto& e : r.scores) distribution_chart(o, e);
  o += "</div>\n</section>\n";
}

// Measured and reconstructed values of one signal over time (minutes when dt_s > 0, else steps).
inline void signal_chart(std::string& o, const SignalTrace& s, double dt_s) {
  const double L = 52, R = 10, T = 24, B = 40, W = 196, H = 118;
  const double x0 = L, x1 = L + W, y0 = T, y1 = T + H;
  std::string aria = s.name;
  aria += ": measured and reconstructed";
  svg_open(o, "chart signal", L + W + R, T + H + B, aria);
  const bool minutes = dt_s > 0 && std::isfinite(dt_s);
  const double step = minutes ? dt_s / 60.0 : 1.0;
  const std::size_t n = std::max(s.measured.size(), s.reconstructed.size());
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, se = 0;
  std::size_t pairs = 0;
  for (const auto* v : {&s.measured, &s.reconstructed})
    for (double a : *v)
      if (std::isfinite(a)) lo = std::min(lo, a), hi = std::max(hi, a);
  for (std::size_t i = 0; i < std::min(s.measured.size(), s.reconstructed.size()); ++i)
    if (std::isfinite(s.measured[i]) && std::isfinite(s.reconstructed[i])) {
      const double d = s.measured[i] - s.reconstructed[i];
      se += d * d, ++pairs;
    }
  const auto [yd0, yd1] = padded(lo, hi, 0.08, false);
  const double xmax = n > 1 ? static_cast<double>(n - 1) * step : 1.0;
  const Scale x{0, xmax, x0, x1}, y{yd0, yd1, y1, y0};
  x_ticks(o, x, linear_ticks(0, xmax, 5), y0, y1);
  y_ticks(o, y, linear_ticks(yd0, yd1, 4), x0, x1);
  frame(o, x0, y0, x1, y1);
  // Title: the signal and the root mean squared reconstruction error in its units.
  add(o, "<text class=\"title\" x=\"", fixed(x0), "\" y=\"15\">");
  append_escaped(o, s.name);
  if (pairs) add(o, "<tspan class=\"rmse\" dx=\"8\">RMSE ", general(std::sqrt(se / static_cast<double>(pairs)), 3), "</tspan>");
  o += "</text>";
  svg_text(o, (x0 + x1) / 2, y1 + 33, minutes ? "time (min)" : "time step", "class=\"label\" text-anchor=\"middle\"");
  svg_vertical_label(o, 12, (y0 + y1) / 2, s.name);
  o += '\n';
  if (!std::isfinite(lo)) {
    svg_text(o, (x0 + x1) / 2, (y0 + y1) / 2, "no data", "text-anchor=\"middle\"");
  } else {
    add(o, "<path class=\"measured\" stroke=\"", kMeasured, "\" d=\"", series_path(s.measured, x, y, step), "\"/>\n");
    add(o, "<path class=\"reconstructed\" stroke=\"", kReconstructed, "\" d=\"", series_path(s.reconstructed, x, y, step),
        "\"/>\n");
  }
  o += "</svg>\n";
}

inline void segments_section(std::string& o, const ReportData& r) {
  o += "<section id=\"segments\">\n<h2>Worst segments of the most suspicious cars</h2>\n";
  if (r.worst_segments.empty()) {
    o += "<p class=\"empty\">No segments to show.</p>\n</section>\n";
    return;
  }
  add(o, "<p class=\"note\">Each target signal in its original units: <span class=\"key-line\" style=\"border-color:", kMeasured,
      "\"></span> measured, <span class=\"key-line dashed\" style=\"border-color:", kReconstructed,
      "\"></span> reconstructed by the model. Where the two part, the pack behaves unlike the normal "
      "packs the model learnt from.</p>\n");
  for (const auto& v : r.worst_segments) {
    add(o, v.label == 1 ? "<figure class=\"segment faulty\">" : "<figure class=\"segment\">", "\n<figcaption><span class=\"car\">");
    append_escaped(o, v.car);
    add(o, "</span> segment ", std::to_string(v.segment), " ");
    label_tag(o, v.label);
    o += " <span class=\"muted\">";
    append_escaped(o, r.ranking_score);
    add(o, " ", general(v.score), "</span></figcaption>\n<div class=\"charts\">\n");
    if (v.signals.empty()) o += "<p class=\"empty\">No signals.</p>\n";
    for (const auto& s : v.signals) signal_chart(o, s, v.dt_s);
    o += "</div>\n</figure>\n";
  }
  o += "</section>\n";
}

inline const char* status_colour(std::string_view status) {
  return status == "alarm" ? kFaulty : status == "watch" ? "#d97706" : kNormal;
}

// A flagged car's robust score at each update against the days since its first, a dot per
// update in the colour of the status it gave.
inline void trend_chart(std::string& o, const VerdictView& v) {
  const double L = 56, R = 12, T = 24, B = 40, W = 330, H = 130;
  const double x0 = L, x1 = L + W, y0 = T, y1 = T + H;
  svg_open(o, "chart trend", L + W + R, T + H + B, v.car + ": score over time");
  const std::size_t n = v.scores.size();
  double t0 = std::numeric_limits<double>::infinity(), t1 = -t0, lo = t0, hi = -t0;
  for (std::size_t i = 0; i < n; ++i) {
    if (std::isfinite(v.times[i])) t0 = std::min(t0, v.times[i]), t1 = std::max(t1, v.times[i]);
    if (std::isfinite(v.scores[i])) lo = std::min(lo, v.scores[i]), hi = std::max(hi, v.scores[i]);
  }
  const bool timed = std::isfinite(t0);
  auto x_of = [&](std::size_t i) { return timed ? (v.times[i] - t0) / 86400.0 : static_cast<double>(i); };
  const double xmax = timed ? std::max((t1 - t0) / 86400.0, 1.0) : std::max(static_cast<double>(n) - 1, 1.0);
  const auto [yd0, yd1] = padded(std::isfinite(lo) ? lo : 0, std::isfinite(hi) ? hi : 1, 0.1, false);
  const Scale x{0, xmax, x0, x1}, y{yd0, yd1, y1, y0};
  x_ticks(o, x, linear_ticks(0, xmax, 5), y0, y1);
  y_ticks(o, y, linear_ticks(yd0, yd1, 4), x0, x1);
  frame(o, x0, y0, x1, y1);
  svg_text(o, (x0 + x1) / 2, y1 + 33, timed ? "days since its first update" : "update", "class=\"label\" text-anchor=\"middle\"");
  svg_vertical_label(o, 12, (y0 + y1) / 2, "car score");
  PathData d(1);
  bool pen = false;
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(v.scores[i]) || (timed && !std::isfinite(v.times[i]))) {
      pen = false;
      continue;
    }
    if (pen) d.line_to(x(x_of(i)), y(v.scores[i]));
    else d.move_to(x(x_of(i)), y(v.scores[i]));
    pen = true;
  }
  add(o, "<path class=\"curve\" stroke=\"", kMeasured, "\" stroke-width=\"1.5\" d=\"", d.str(), "\"/>\n<g class=\"dots\">");
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(v.scores[i]) || (timed && !std::isfinite(v.times[i]))) continue;
    add(o, "<circle cx=\"", fixed(x(x_of(i)), 1), "\" cy=\"", fixed(y(v.scores[i]), 1), "\" r=\"3.2\" fill=\"",
        status_colour(v.statuses[i]), "\"><title>");
    append_escaped(o, v.statuses[i]);
    add(o, ", p ", general(v.p_values[i], 3), "</title></circle>");
  }
  o += "</g>\n</svg>\n";
}

inline void verdicts_section(std::string& o, const ReportData& r) {
  if (r.verdicts.empty()) return;
  o += "<section id=\"verdicts\">\n<h2>Verdicts</h2>\n<p class=\"note\">Each car's status from its p-value against healthy "
       "calibration cars the model never trained on; the signal its error is most above the healthy cars' median, with a "
       "hint (not a diagnosis).</p>\n<div class=\"scroll\">\n<table class=\"ranking verdicts\">\n<thead><tr><th>car</th>"
       "<th>status</th><th class=\"num\">p-value</th><th class=\"num\">score</th><th class=\"num\">segments</th>"
       "<th>most abnormal signal</th><th>hint</th></tr></thead>\n<tbody>\n";
  for (const auto& v : r.verdicts) {
    add(o, "<tr class=\"", v.status, "\"><td class=\"car\">");
    append_escaped(o, v.car);
    add(o, "</td><td><span class=\"tag ", v.status, "\">", v.status, "</span></td><td class=\"num\">", general(v.p_value, 3),
        "</td><td class=\"num\">", general(v.score), "</td><td class=\"num\">", std::to_string(v.segments), "</td><td>");
    if (!v.signals.empty()) {
      append_escaped(o, v.signals.front().first);
      add(o, " <span class=\"muted\">&times;", general(v.signals.front().second, 3), "</span>");
    }
    o += "</td><td>";
    if (v.status != "ok") append_escaped(o, v.hint);
    o += "</td></tr>\n";
  }
  o += "</tbody>\n</table>\n</div>\n";
  bool any = false;
  for (const auto& v : r.verdicts) {
    if (v.status == "ok") continue;
    if (!any) o += "<h3>Flagged cars over time</h3>\n<div class=\"grid3\">\n", any = true;
    o += "<figure class=\"trend\"><figcaption><span class=\"car\">";
    append_escaped(o, v.car);
    add(o, "</span> <span class=\"tag ", v.status, "\">", v.status, "</span> <span class=\"muted\">p ", general(v.p_value, 3));
    if (!v.signals.empty()) {
      o += " &middot; ";
      append_escaped(o, v.signals.front().first);
      o += ": ";
      append_escaped(o, v.hint);
    }
    o += "</span></figcaption>\n";
    trend_chart(o, v);
    o += "</figure>\n";
  }
  if (any) o += "</div>\n";
  o += "</section>\n";
}

inline constexpr const char* kStyle = R"CSS(
:root{--ink:#0f172a;--muted:#64748b;--line:#e2e8f0;--bg:#f6f7f9;--card:#fff;--head:#f1f5f9}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Liberation Sans",sans-serif}
main{max-width:1220px;margin:0 auto;padding:28px 28px 56px}
h1{font-size:26px;margin:0 0 2px;letter-spacing:-.01em}
h2{font-size:18px;margin:0 0 6px}
.sub{color:var(--muted);margin:0 0 12px}
.sub strong{color:var(--ink)}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 18px;margin:0 0 14px;font-size:13px}
.facts dt{color:var(--muted)}
.facts dd{margin:0;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;overflow-wrap:anywhere}
nav a{color:#2563eb;text-decoration:none;margin-right:18px;font-size:13px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 22px 20px;margin-top:20px}
.note{color:var(--muted);font-size:13px;margin:0 0 14px;max-width:80ch}
.empty{color:var(--muted);font-style:italic}
.row{display:flex;flex-wrap:wrap;gap:28px;align-items:flex-start}
.side{flex:1 1 320px;min-width:0;padding-top:14px}
table{border-collapse:collapse;font-size:13px}
th,td{padding:5px 12px;text-align:left;border-bottom:1px solid var(--line);white-space:nowrap}
th{font-weight:600;color:#334155;background:var(--head)}
.num{text-align:right;font-variant-numeric:tabular-nums}
td.car,.car{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:12.5px}
th.key,td.key{font-weight:600}
.scroll{max-height:640px;overflow:auto;border:1px solid var(--line);border-radius:6px}
.ranking{width:100%}
.ranking thead th{position:sticky;top:0;z-index:1}
.ranking tr:last-child td{border-bottom:0}
tr.faulty td{background:#fef2f2}
tr.faulty td:first-child{box-shadow:inset 3px 0 0 #dc2626}
.tag{display:inline-block;padding:0 8px;border-radius:9px;font-size:11.5px;font-weight:600;line-height:18px}
.tag.normal{background:#ccfbf1;color:#115e59}
.tag.faulty{background:#fee2e2;color:#991b1b}
.tag.alarm{background:#fee2e2;color:#991b1b}
.tag.watch{background:#fef3c7;color:#92400e}
.tag.ok{background:#ccfbf1;color:#115e59}
tr.alarm td:first-child{box-shadow:inset 3px 0 0 #dc2626}
tr.watch td:first-child{box-shadow:inset 3px 0 0 #d97706}
h3{font-size:15px;margin:18px 0 4px}
figure.trend{margin:8px 0 0}
.swatch{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:8px;vertical-align:-1px}
.muted{color:var(--muted)}
.grid3{display:grid;grid-template-columns:repeat(auto-fill,minmax(346px,1fr));gap:14px 22px}
figure.segment{margin:16px 0 0;padding-top:12px;border-top:1px solid var(--line)}
figcaption{font-size:14px;margin-bottom:6px}
figcaption .car{font-weight:600}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(258px,1fr));gap:6px 14px}
.key-line{display:inline-block;width:22px;border-top:2.5px solid;vertical-align:middle;margin:0 4px 0 2px}
.key-line.dashed{border-top-style:dashed}
svg{display:block;max-width:100%;height:auto;overflow:visible}
svg text{font-family:inherit;font-size:11px;fill:#64748b}
svg text.title{font-size:13px;font-weight:600;fill:#0f172a}
svg text.subtitle{font-size:11.5px;fill:#334155}
svg text.label{font-size:11.5px;fill:#475569}
svg text.legend-text{font-size:12px;fill:#1e293b}
svg tspan.auroc,svg tspan.rmse{fill:#64748b;font-weight:400;font-size:11.5px}
svg .grid{stroke:#eef1f5;fill:none}
svg .tick{stroke:#94a3b8;fill:none}
svg .frame{fill:none;stroke:#cbd5e1}
svg .diagonal{stroke:#94a3b8;stroke-dasharray:4 4}
svg .sep{stroke:#e2e8f0}
svg .legend-line{stroke-width:3}
svg .curve{fill:none;stroke-width:2.25;stroke-linejoin:round}
svg .legend-box{fill:#fff;fill-opacity:.92;stroke:#e2e8f0}
svg .dots circle{fill-opacity:.6;stroke:#fff;stroke-width:.6}
svg .median{stroke-width:2.5}
svg .measured{fill:none;stroke-width:1.7;stroke-linejoin:round}
svg .reconstructed{fill:none;stroke-width:1.7;stroke-dasharray:5 3;stroke-linejoin:round}
@media print{body{background:#fff}section{break-inside:avoid;border:0;padding:0}.scroll{max-height:none;overflow:visible}nav{display:none}}
)CSS";

}  // namespace detail

// The whole report as one HTML document.
inline std::string render_html(const ReportData& r) {
  std::string o;
  o.reserve(1 << 16);
  o += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>";
  detail::append_escaped(o, r.title);
  o += "</title>\n<style>";
  o += detail::kStyle;
  o += "</style>\n</head>\n<body>\n<main>\n";
  detail::header_section(o, r);
  detail::verdicts_section(o, r);
  if (!r.scores.empty() || r.verdicts.empty()) {  // a report from a fleet database may have no labelled scores
    detail::roc_section(o, r);
    detail::ranking_section(o, r);
    detail::distribution_section(o, r);
  }
  if (!r.worst_segments.empty() || r.verdicts.empty()) detail::segments_section(o, r);
  o += "<footer class=\"note\" style=\"margin-top:18px\">Written by dyad. Scores follow the DyAD method "
       "(Zhang et al., Nature Communications 14, 5940, 2023).</footer>\n</main>\n</body>\n</html>\n";
  return o;
}

// Renders the report and writes it atomically: `path` holds the old content or the whole new one.
inline void write_report(const std::filesystem::path& path, const ReportData& r) {
  const std::string html = render_html(r);
  write_file_atomically(path, [&](std::ostream& os) { os.write(html.data(), static_cast<std::streamsize>(html.size())); });
}

}  // namespace dyad::report
