#include <doctest/doctest.h>

#include "dyad/detect/evaluation.hpp"
#include "dyad/report/html.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace fs = std::filesystem;
using dyad::report::ReportData;
using dyad::report::SegmentView;
using dyad::report::SignalTrace;

namespace {

std::size_t count(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = hay.find(needle); pos != std::string::npos; pos = hay.find(needle, pos + needle.size())) ++n;
  return n;
}

const std::string kNasty = "<b>&\"q'";  // a car id that must be escaped everywhere
const std::string kNastyEscaped = "&lt;b&gt;&amp;&quot;q&#39;";

// 8 cars (5 normal, 3 faulty incl. the nasty id), 4 segments each, three scores.
ReportData sample(bool with_segments = true) {
  std::vector<std::string> cars;
  std::vector<int> labels;
  std::vector<double> rec, lat, comb;
  const char* ids[] = {"n0", "n1", "n2", "n3", "n4", "f0", "f1"};
  for (int c = 0; c < 8; ++c) {
    const std::string id = c < 7 ? ids[c] : kNasty;
    const int label = c >= 5 ? 1 : 0;
    for (int s = 0; s < 4; ++s) {
      cars.push_back(id);
      labels.push_back(label);
      rec.push_back(0.01 * (1 + c) * (1 + 0.1 * s));
      lat.push_back(3.0 + 0.5 * ((c * 7 + s) % 5));
      comb.push_back(-1.0 + 0.3 * c + 0.05 * s);
    }
  }
  ReportData r;
  r.title = "fleet <test> & \"report\"";
  r.facts = {{"data", "fleet&<1>.csv"}, {"h", "100"}};
  r.scores =
      dyad::detect::evaluate_scores(cars, labels, {{"rec_error", rec}, {"latent_score", lat}, {"combined_score", comb}}, 250);
  r.ranking_score = "rec_error";
  if (with_segments) {
    SegmentView a{kNasty, 3, 1, 0.123, 10.0, {}};
    for (const char* name : {"volt", "max_temp", "min_single_volt"}) {
      SignalTrace t{name, {}, {}};
      for (int i = 0; i < 128; ++i) t.measured.push_back(3.6 + 0.001 * i), t.reconstructed.push_back(3.6 + 0.0009 * i);
      a.signals.push_back(t);
    }
    SegmentView b{"n4", 0, 0, 0.05, 10.0, {}};
    b.signals.push_back({"sig<1>", {1, 2, 3, 4}, {1.1, 2.1, 2.9, 4.2}});
    b.signals.push_back({"volt", {5, 5, 5}, {5, 5, 5}});  // constant signal
    r.worst_segments = {a, b};
  }
  return r;
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("dyad_report_" + std::to_string(::getpid()) + "_" + std::to_string(std::random_device{}()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path)) names.push_back(e.path().filename().string());
    return names;
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("report: a complete document with every section and one svg per chart") {
  const ReportData r = sample();
  const std::string html = dyad::report::render_html(r);
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(html.find("<meta charset=\"utf-8\">") != std::string::npos);
  CHECK(html.find("</html>") != std::string::npos);
  for (const char* id : {"id=\"summary\"", "id=\"roc\"", "id=\"ranking\"", "id=\"distributions\"", "id=\"segments\""})
    CHECK_MESSAGE(count(html, id) == 1, id);
  // 1 ROC + 3 distributions + 3 + 2 signal charts.
  CHECK(count(html, "<svg") == 1 + 3 + 5);
  CHECK(count(html, "</svg>") == count(html, "<svg"));
  CHECK(count(html, "<svg class=\"chart roc\"") == 1);
  CHECK(count(html, "<svg class=\"chart dist\"") == 3);
  CHECK(count(html, "<svg class=\"chart signal\"") == 5);
  CHECK(count(html, "<path class=\"curve\"") == 3);
  CHECK(count(html, "<path class=\"measured\"") == 5);
  CHECK(count(html, "<path class=\"reconstructed\"") == 5);
  CHECK(count(html, "<figure class=\"segment") == 2);
  // Axis labels.
  CHECK(count(html, "false positive rate") == 1);
  CHECK(count(html, "true positive rate") == 1);
  CHECK(count(html, ">time (min)</text>") == 5);
  CHECK(count(html, "robust car score") >= 3);
  // Legends: every score's AUROC in the ROC legend, both classes in each distribution.
  for (const auto& e : r.scores)
    CHECK(html.find(e.name + "<tspan class=\"auroc\" dx=\"8\">AUROC " + dyad::detect::auroc_text(e.auroc_robust)) !=
          std::string::npos);
  CHECK(count(html, ">normal (5)</text>") == 3);
  CHECK(count(html, ">faulty (3)</text>") == 3);
  // No scripts, nothing fetched.
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("src=") == std::string::npos);
  CHECK(html.find("url(") == std::string::npos);
  CHECK(html.find("@import") == std::string::npos);
  // Deterministic.
  CHECK(dyad::report::render_html(r) == html);
}

TEST_CASE("report: no network references except the SVG namespace") {
  const std::string html = dyad::report::render_html(sample());
  const std::string ns = "xmlns=\"http://www.w3.org/2000/svg\"";
  CHECK(count(html, "https://") == 0);
  CHECK(count(html, "http://") == count(html, ns));
  CHECK(count(html, ns) == count(html, "<svg"));
  CHECK(count(html, "//") == count(html, ns));  // no protocol-relative URLs either
}

TEST_CASE("report: ranking table has one row per car, faulty rows marked, in score order") {
  const ReportData r = sample();
  const std::string html = dyad::report::render_html(r);
  CHECK(count(html, "<tr class=\"normal\">") == 5);
  CHECK(count(html, "<tr class=\"faulty\">") == 3);
  CHECK(count(html, "<span class=\"tag faulty\">faulty</span>") == 3 + 1);  // rows + the faulty worst segment
  // rec_error grows with the car index, so the ranking is the nasty id, f1, f0, n4, ..., n0.
  const auto table = html.substr(html.find("<table class=\"ranking\">"));
  const auto row = [&](const std::string& car) { return table.find("<td class=\"car\">" + car + "</td>"); };
  CHECK(row(kNastyEscaped) < row("f1"));
  CHECK(row("f1") < row("f0"));
  CHECK(row("f0") < row("n4"));
  CHECK(row("n1") < row("n0"));
  CHECK(table.find("<td class=\"num\">1</td><td class=\"car\">" + kNastyEscaped + "</td>") != std::string::npos);
  CHECK(table.find("<td class=\"num\">8</td><td class=\"car\">n0</td>") != std::string::npos);
  // The first row is faulty and highlighted.
  CHECK(table.find("<tr class=\"faulty\"><td class=\"num\">1</td>") != std::string::npos);

  SUBCASE("another ranking score reorders the rows") {
    ReportData r2 = r;
    r2.ranking_score = "combined_score";
    const std::string h2 = dyad::report::render_html(r2);
    CHECK(h2.find("<th class=\"num key\">combined_score &#9662;</th>") != std::string::npos);
    CHECK(count(h2, "<tr class=") == 8);
  }
  SUBCASE("an unknown ranking score falls back to the first score") {
    ReportData r2 = r;
    r2.ranking_score = "nope";
    const std::string h2 = dyad::report::render_html(r2);
    CHECK(h2.find("<th class=\"num key\">rec_error &#9662;</th>") != std::string::npos);
    CHECK(count(h2, "<tr class=") == 8);
  }
}

TEST_CASE("report: all user text is escaped") {
  const std::string html = dyad::report::render_html(sample());
  CHECK(html.find(kNasty) == std::string::npos);
  CHECK(html.find("<b>") == std::string::npos);
  CHECK(html.find("<test>") == std::string::npos);
  CHECK(html.find("sig<1>") == std::string::npos);
  CHECK(html.find("fleet&<1>") == std::string::npos);
  CHECK(count(html, "<td class=\"car\">" + kNastyEscaped + "</td>") == 1);
  CHECK(count(html, "<title>" + kNastyEscaped + ": ") == 3);  // one dot per distribution
  CHECK(count(html, "<span class=\"car\">" + kNastyEscaped + "</span>") == 1);
  CHECK(html.find("<title>fleet &lt;test&gt; &amp; &quot;report&quot;</title>") != std::string::npos);
  CHECK(html.find("<h1>fleet &lt;test&gt; &amp; &quot;report&quot;</h1>") != std::string::npos);
  CHECK(html.find("<dd>fleet&amp;&lt;1&gt;.csv</dd>") != std::string::npos);
  CHECK(html.find("sig&lt;1&gt;") != std::string::npos);
  CHECK(dyad::report::detail::escape("a<b>&\"c'") == "a&lt;b&gt;&amp;&quot;c&#39;");
}

TEST_CASE("report: NaN AUROC (cars of one class) shows n/a and no curve") {
  std::vector<std::string> cars = {"a", "a", "b", "c"};
  std::vector<int> labels = {0, 0, 0, 0};
  std::vector<double> s = {0.1, 0.2, 0.3, 0.4};
  ReportData r;
  r.scores = dyad::detect::evaluate_scores(cars, labels, {{"rec_error", s}}, 100);
  REQUIRE(std::isnan(r.scores[0].auroc_robust));
  REQUIRE(r.scores[0].roc.empty());
  const std::string html = dyad::report::render_html(r);
  CHECK(html.find("nan") == std::string::npos);
  CHECK(html.find("rec_error<tspan class=\"auroc\" dx=\"8\">AUROC n/a</tspan>") != std::string::npos);
  CHECK(html.find("<td class=\"num\">n/a</td><td class=\"num\">n/a</td>") != std::string::npos);
  CHECK(html.find("rec_error AUROC <strong>n/a</strong>") != std::string::npos);
  CHECK(count(html, "<path class=\"curve\"") == 0);
  CHECK(count(html, "<tr class=\"normal\">") == 3);
  CHECK(count(html, "<tr class=\"faulty\">") == 0);
  CHECK(count(html, ">faulty (0)</text>") == 1);
}

TEST_CASE("report: empty inputs render") {
  SUBCASE("no worst segments") {
    const std::string html = dyad::report::render_html(sample(false));
    CHECK(html.find("id=\"segments\"") != std::string::npos);
    CHECK(html.find("No segments to show.") != std::string::npos);
    CHECK(count(html, "<svg") == 1 + 3);
    CHECK(count(html, "<tr class=") == 8);
  }
  SUBCASE("nothing at all") {
    const std::string html = dyad::report::render_html(ReportData{});
    for (const char* id : {"id=\"summary\"", "id=\"roc\"", "id=\"ranking\"", "id=\"distributions\"", "id=\"segments\""})
      CHECK(html.find(id) != std::string::npos);
    CHECK(count(html, "<svg") == 1);  // the (empty) ROC chart
    CHECK(html.find("No cars to rank.") != std::string::npos);
    CHECK(html.find("<h1>dyad fleet report</h1>") != std::string::npos);
    CHECK(count(html, "<tr class=") == 0);
  }
  SUBCASE("a segment without signals, signals without data or with NaN gaps") {
    ReportData r = sample(false);
    SegmentView v{"x", 1, 0, 0.0, 0.0, {}};  // dt 0: plotted against the step index
    r.worst_segments.push_back(v);
    v.signals.push_back({"empty", {}, {}});
    const double nan = std::numeric_limits<double>::quiet_NaN();
    v.signals.push_back({"gappy", {1, 2, nan, 4, 5}, {1, 2, 3, 4, 5}});
    r.worst_segments.push_back(v);
    const std::string html = dyad::report::render_html(r);
    CHECK(html.find("No signals.") != std::string::npos);
    CHECK(html.find(">no data</text>") != std::string::npos);
    CHECK(count(html, ">time step</text>") == 2);
    CHECK(count(html, "<svg") == 1 + 3 + 2);
    CHECK(html.find("nan") == std::string::npos);
    // The NaN splits the measured line in two runs.
    const auto p = html.find("<path class=\"measured\"", html.find("aria-label=\"gappy"));
    const auto d = html.substr(p, html.find("/>", p) - p);
    CHECK(count(d, "M") == 2);
  }
}

TEST_CASE("report: wide positive score ranges use a log axis") {
  std::vector<std::string> cars;
  std::vector<int> labels;
  std::vector<double> s;
  for (int c = 0; c < 6; ++c)
    cars.push_back(std::string("c") += std::to_string(c)), labels.push_back(c >= 4), s.push_back(std::pow(10.0, c - 4));
  ReportData r;
  r.scores = dyad::detect::evaluate_scores(cars, labels, {{"rec_error", s}}, 100);
  const std::string html = dyad::report::render_html(r);
  CHECK(html.find("robust car score (log scale)") != std::string::npos);
  CHECK(html.find(">0.001</text>") != std::string::npos);
  CHECK(html.find(">10</text>") != std::string::npos);
}

TEST_CASE("report: number formatting and path data") {
  using namespace dyad::report::detail;
  CHECK(fixed(1.0) == "1");
  CHECK(fixed(1.5) == "1.5");
  CHECK(fixed(1.256) == "1.26");
  CHECK(fixed(-0.001) == "0");
  CHECK(fixed(-2.5) == "-2.5");
  CHECK(general(std::numeric_limits<double>::quiet_NaN()) == "n/a");
  CHECK(general(0.0123456) == "0.01235");
  CHECK(dyad::detect::auroc_text(0.5) == "0.500");
  CHECK(dyad::detect::auroc_text(std::numeric_limits<double>::quiet_NaN()) == "n/a");
  CHECK(linear_ticks(0, 1, 5).size() == 6);
  CHECK(linear_ticks(0, 1, 5)[1].label == "0.2");
  CHECK(linear_ticks(-3, 3, 4)[0].label == "-2");

  // Relative path steps add up exactly to the rounded absolute points.
  PathData d;
  const double xs[] = {10.004, 11.236, 12.5, 9.999, 100.0}, ys[] = {5.555, 4.444, 7.0, -3.21, 0.0};
  d.move_to(xs[0], ys[0]);
  for (int i = 1; i < 5; ++i) d.line_to(xs[i], ys[i]);
  CHECK(d.str() == "M10,5.56l1.24,-1.12 1.26,2.56 -2.5,-10.21 90,3.21");
  PathData tenth(1);
  tenth.move_to(1.26, 2.0);
  tenth.line_to(2.0, 1.94);
  CHECK(tenth.str() == "M1.3,2l0.7,-0.1");

  // Long series are thinned to first/min/max/last per bucket, keeping spikes.
  std::vector<double> v(10000, 1.0);
  v[5003] = 50.0;
  v[7001] = -20.0;
  const auto idx = decimate(v, 400);
  CHECK(idx.size() <= 1600);
  CHECK(idx.front() == 0);
  CHECK(idx.back() == 9999);
  CHECK(std::find(idx.begin(), idx.end(), std::size_t{5003}) != idx.end());
  CHECK(std::find(idx.begin(), idx.end(), std::size_t{7001}) != idx.end());
  CHECK(std::is_sorted(idx.begin(), idx.end()));
  CHECK(decimate(std::vector<double>(128, 0.0), 400).size() == 128);
}

TEST_CASE("report: write_report writes atomically") {
  TempDir dir;
  const ReportData r = sample();
  const fs::path out = dir.path / "report.html";
  dyad::report::write_report(out, r);
  CHECK(slurp(out) == dyad::report::render_html(r));
  CHECK(dir.entries() == std::vector<std::string>{"report.html"});  // no temporary left behind

  // Replacing an existing report.
  ReportData r2 = sample(false);
  r2.title = "second";
  dyad::report::write_report(out, r2);
  CHECK(slurp(out) == dyad::report::render_html(r2));
  CHECK(dir.entries() == std::vector<std::string>{"report.html"});

  // A failed write (the target is a directory) throws and leaves everything as it was.
  const fs::path sub = dir.path / "taken";
  fs::create_directories(sub / "inner");
  CHECK_THROWS_AS(dyad::report::write_report(sub, r), std::runtime_error);
  CHECK(fs::is_directory(sub / "inner"));
  CHECK(dir.entries().size() == 2);
  CHECK(slurp(out) == dyad::report::render_html(r2));

  // A missing directory throws, naming the path.
  CHECK_THROWS_WITH_AS(dyad::report::write_report(dir.path / "missing" / "r.html", r), doctest::Contains("missing"),
                       std::runtime_error);
}

TEST_CASE("report: verdicts from a fleet database, with a trend chart per flagged car only") {
  ReportData r;
  r.title = "fleet <verdicts>";
  auto view = [](std::string car, std::string status, double p, std::size_t updates) {
    dyad::report::VerdictView v;
    v.car = std::move(car);
    v.status = std::move(status);
    v.p_value = p;
    v.score = 1 / p;
    v.segments = 40;
    v.signals = {{"max_temp", 4.5}, {"volt", 1.1}};
    v.hint = "cooling or thermal";
    for (std::size_t i = 0; i < updates; ++i) {
      v.times.push_back(1.6e9 + 86400.0 * 7 * static_cast<double>(i));
      v.scores.push_back(static_cast<double>(i));
      v.p_values.push_back(0.5 / static_cast<double>(i + 1));
      v.statuses.push_back(i + 1 == updates ? v.status : "ok");
    }
    return v;
  };
  r.verdicts = {view("car<1>", "alarm", 0.005, 4), view("car2", "watch", 0.03, 3), view("car3", "ok", 0.6, 0)};
  const std::string html = dyad::report::render_html(r);
  CHECK(html.find("<section id=\"verdicts\">") != std::string::npos);
  CHECK(html.find("3 cars: <strong>1 in alarm</strong>, 1 on watch, 1 ok") != std::string::npos);
  CHECK(count(html, "<tr class=\"") == 3);
  CHECK(count(html, "class=\"chart trend\"") == 2);  // the ok car has no chart
  CHECK(count(html, "<circle") == 7);                // one dot per update of the flagged cars
  CHECK(html.find("car&lt;1&gt;") != std::string::npos);
  CHECK(html.find("car<1>") == std::string::npos);
  CHECK(html.find("fleet &lt;verdicts&gt;") != std::string::npos);
  // Without labelled scores the ROC, ranking and distribution sections are left out.
  CHECK(html.find("id=\"roc\"") == std::string::npos);
  CHECK(html.find("id=\"segments\"") == std::string::npos);
  CHECK(html.find("days since its first update") != std::string::npos);
}
