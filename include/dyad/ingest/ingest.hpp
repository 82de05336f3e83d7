// dyad ingest: raw telematics exports (CSV, one row per sample, all cars interleaved) to the
// long CSV of charging windows that train / score read. The spec (ingest/spec.hpp) maps the
// columns; ingest/sessions.hpp cuts each car's samples into windows. The export is streamed:
// memory holds, per car, max_disorder_s of samples and one session, whatever the file size.
//
// Accepted: a comma, semicolon, tab or pipe delimiter (detected from the header line), CRLF,
// a UTF-8 byte-order mark, quoted fields, empty cells and NA / NaN / null (any case) as
// missing, a decimal comma in a non-comma file. Rows that cannot be used are dropped and
// counted by reason, with the first few file:line examples; implausible values too (or, with
// strict, they are errors). Structural problems (a mapped column missing from the header, an
// unreadable file) are errors naming file, line and column.
#pragma once

#include "dyad/core/excerpt.hpp"
#include "dyad/core/text.hpp"
#include "dyad/ingest/sessions.hpp"
#include "dyad/ingest/spec.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <istream>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace dyad::limits {
// Distinct car ids one ingest may hold (each keeps a session's state, ~1.5 KB). Far beyond a
// fleet's export, far below what a mis-mapped car column (a row id, a timestamp) makes of a
// big file: one car per row, memory growing with the file.
inline constexpr std::size_t cars = 100'000;
}  // namespace dyad::limits

namespace dyad::ingest {

struct Options {
  bool strict = false;                                              // implausible values are errors, not dropped rows
  std::size_t examples = 3;                                         // file:line examples kept per reason
  std::size_t max_line_bytes = dyad::text::default_max_line_bytes;  // as CsvOptions's
  std::size_t max_cars = dyad::limits::cars;                        // more distinct car ids are an error
};

// Physically plausible range of a known signal (after scaling and the current's sign).
struct Plausible {
  double lo, hi;
  const char* what;
};
inline std::optional<Plausible> plausible_range(std::string_view signal) {
  if (signal == "max_single_volt" || signal == "min_single_volt") return Plausible{1.5, 5.0, "a cell voltage of 1.5-5 V"};
  if (signal == "volt") return Plausible{1e-9, 2000.0, "a positive pack voltage"};
  if (signal == "soc") return Plausible{0.0, 100.0, "an SOC of 0-100 %"};
  if (signal == "max_temp" || signal == "min_temp") return Plausible{-50.0, 100.0, "a temperature of -50..100 degC"};
  if (signal == "current") return Plausible{-1000.0, 1000.0, "a current within +-1000 A"};
  return std::nullopt;
}

// What ingest found: per car and in total, dropped rows by reason with examples, implausible
// values per column, and warnings.
struct Report {
  std::vector<std::string> files;
  std::map<std::string, RowCounts> cars;
  RowCounts total;
  struct Examples {
    std::uint64_t count = 0;
    std::vector<std::string> where;  // file:line[: detail]
  };
  std::map<std::string, Examples> dropped;      // reason -> examples (unparsable, out_of_order)
  std::map<std::string, Examples> implausible;  // column (dyad name) -> examples
  std::vector<std::string> warnings;
  bool labelled = false;  // the output has a label column
  std::vector<std::string> signals;

  nlohmann::json to_json() const {
    auto counts = [](const RowCounts& c) {
      return nlohmann::json{{"rows", c.rows},
                            {"charging_rows", c.charging_rows},
                            {"sessions", c.sessions},
                            {"windows", c.windows},
                            {"cells_interpolated", c.cells_interpolated},
                            {"dropped",
                             {{"not_charging", c.not_charging},
                              {"outside_session", c.short_session},
                              {"gap", c.gap},
                              {"unparsable", c.unparsable},
                              {"out_of_range", c.out_of_range},
                              {"out_of_order", c.out_of_order}}}};
    };
    nlohmann::json j;
    j["files"] = files;
    j["signals"] = signals;
    j["labelled"] = labelled;
    j["total"] = counts(total);
    j["cars"] = nlohmann::json::object();
    for (const auto& [car, c] : cars) j["cars"][car] = counts(c);
    auto examples = [](const std::map<std::string, Examples>& m) {
      nlohmann::json o = nlohmann::json::object();
      for (const auto& [k, e] : m) o[k] = {{"count", e.count}, {"examples", e.where}};
      return o;
    };
    j["dropped_examples"] = examples(dropped);
    j["implausible"] = examples(implausible);
    j["warnings"] = warnings;
    return j;
  }
};

// Reads exports one after the other (a car's rows may span files given in time order) and
// writes the windows to `out` as a long CSV: car,segment,t[,label],mileage,timestamp,<signals>.
// The label column is written when `labels` (car -> 0/1) is given or the spec maps a label
// column; without either the output is unlabelled (no label column).
class Ingestor {
 public:
  Ingestor(Spec spec, std::ostream& out, Options options = {}, std::optional<std::map<std::string, int>> labels = {})
      : spec_(std::move(spec)), out_(out), options_(options), labels_(std::move(labels)) {
    if (spec_.signals.size() > kMaxSignals)
      throw std::invalid_argument("dyad ingest: the spec maps " + std::to_string(spec_.signals.size()) + " signals, above " +
                                  std::to_string(kMaxSignals));
    for (const auto& [name, column] : spec_.signals) report_.signals.push_back(name);
    report_.labelled = labels_.has_value() || !spec_.label.empty();
    current_ = spec_.signal_index("current");
    for (const auto& [name, column] : spec_.signals) {
      const auto it = spec_.scale.find(name);
      scale_.push_back(it == spec_.scale.end() ? 1.0 : it->second);
      ranges_.push_back(plausible_range(name));
    }
    const auto m = spec_.scale.find("mileage");
    mileage_scale_ = m == spec_.scale.end() ? 1.0 : m->second;
    out_ << "car,segment,t" << (report_.labelled ? ",label" : "") << ",mileage,timestamp";
    for (const auto& [name, column] : spec_.signals) out_ << ',' << dyad::text::csv_quote(name);
    out_ << '\n';
  }

  void read(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path.string() + ": cannot open the export");
    read(in, path.string());
  }

  // Reads one export; `name` stands for it in messages.
  void read(std::istream& in, const std::string& name) {
    report_.files.push_back(name);
    dyad::text::LineReader lines(in, name, options_.max_line_bytes);
    std::string_view line;
    std::size_t line_no = 0;
    std::vector<std::string_view> fields;
    dyad::text::FieldScratch scratch;
    // Header: the first non-blank line.
    for (;;) {
      if (!lines.next(line)) throw std::runtime_error(name + ": empty file (no header line)");
      ++line_no;
      if (line_no == 1 && line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
      if (!dyad::text::trim(line).empty()) break;
    }
    const char delim = spec_.delimiter ? spec_.delimiter : detect_delimiter(line);
    if (auto bad = dyad::text::split_fields(line, fields, scratch, delim))
      throw std::runtime_error(name + ":" + std::to_string(line_no) + ":" + std::to_string(*bad + 1) +
                               ": malformed quoted header field");
    const std::vector<std::string> header(fields.begin(), fields.end());
    const Columns cols = map_columns(header, name, line_no, delim);
    const dyad::text::CsvErrors fail{name, header};
    while (lines.next(line)) {
      ++line_no;
      if (dyad::text::trim(line).empty()) continue;
      ++report_.total.rows;
      const auto bad = dyad::text::split_fields(line, fields, scratch, delim);
      if (bad || fields.size() <= cols.last) {
        drop("unparsable", name, line_no,
             bad ? "malformed quoted field " + std::to_string(*bad + 1)
                 : std::to_string(fields.size()) + " fields, the header has " + std::to_string(header.size()));
        continue;
      }
      parse_row(fields, cols, name, line_no, fail);
    }
  }

  // Flushes every car's open sessions; returns the account. Call once, after the last read().
  Report finish() {
    std::vector<std::string> ids;
    for (const auto& [id, car] : cars_) ids.push_back(id);
    std::ranges::sort(ids);
    for (const std::string& id : ids) {
      Car& car = cars_.at(id);
      car.cutter.finish([&](const Window& w) { write(id, w); });
      report_.cars[id] = car.cutter.counts();
    }
    RowCounts total;
    for (const auto& [id, c] : report_.cars) total += c;
    total.rows = report_.total.rows;  // including rows without a car
    total.unparsable = report_.total.unparsable + total.unparsable;
    report_.total = total;
    check_charging();
    if (soc_seen_ > 100 && soc_max_ <= 1.0)
      report_.warnings.push_back(
          "every SOC value is at most 1: it looks like a 0-1 fraction; add \"scale\": {\"soc\": 100} to the spec");
    if (report_.total.windows == 0)
      report_.warnings.push_back("no window written: no charging session of at least length * interval_s (" +
                                 dyad::text::number_text(spec_.length * spec_.interval_s) + " s) without a hole");
    if (!out_) throw std::runtime_error("dyad ingest: writing the output failed");
    return report_;
  }

 private:
  struct Columns {
    std::size_t car, timestamp, mileage, label, charging, last;
    std::vector<std::size_t> signals;
  };
  struct Car {
    SessionCutter cutter;
    bool charging = false;  // the state of its last row
  };
  struct IdHash {  // lets a std::string_view find a std::string key without a copy
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  static constexpr std::size_t none = static_cast<std::size_t>(-1);

  static char detect_delimiter(std::string_view header) {
    std::size_t best_count = 0;
    char best = ',';
    for (const char d : {',', ';', '\t', '|'}) {
      std::size_t count = 0;
      bool quoted = false;
      for (const char c : header) {
        if (c == '"') quoted = !quoted;
        else if (c == d && !quoted) ++count;
      }
      if (count > best_count) best_count = count, best = d;
    }
    return best;
  }

  Columns map_columns(const std::vector<std::string>& header, const std::string& name, std::size_t line_no, char delim) const {
    auto find = [&](const std::string& column, const std::string& role, bool required) {
      for (std::size_t i = 0; i < header.size(); ++i)
        if (header[i] == column) return i;
      if (!required) return none;
      std::string have;
      for (std::size_t i = 0; i < header.size() && i < 12; ++i) have += (i ? ", " : "") + dyad::detail::excerpt(header[i], 40);
      if (header.size() > 12) have += ", ...";
      const std::string d = delim == '\t' ? "tab" : std::string(1, delim);
      throw std::runtime_error(name + ":" + std::to_string(line_no) + ":1: column '" + dyad::detail::excerpt(column, 60) +
                               "' (spec columns." + role + ") is not in the header (delimiter '" + d + "'; columns: " + have + ")");
    };
    Columns c{};
    c.car = find(spec_.car, "car", true);
    c.timestamp = find(spec_.timestamp, "timestamp", true);
    c.mileage = spec_.mileage.empty() ? none : find(spec_.mileage, "mileage", true);
    c.label = spec_.label.empty() ? none : find(spec_.label, "label", true);
    c.charging = spec_.charging_column.empty() ? none : find(spec_.charging_column, "charging.column", true);
    c.last = std::max(c.car, c.timestamp);
    for (const auto& [dyad_name, column] : spec_.signals) c.signals.push_back(find(column, dyad_name, true));
    for (std::size_t i : c.signals) c.last = std::max(c.last, i);
    for (std::size_t i : {c.mileage, c.label, c.charging})
      if (i != none) c.last = std::max(c.last, i);
    return c;
  }

  static bool missing(std::string_view f) {
    if (f.empty()) return true;
    auto is = [&](std::string_view token) {
      return f.size() == token.size() &&
             std::equal(f.begin(), f.end(), token.begin(), [](char a, char b) { return (a | 0x20) == (b | 0x20); });
    };
    return is("na") || is("nan") || is("null") || is("n/a") || is("none");
  }

  // A number, or NaN for a missing cell; nullopt when neither (a decimal comma is accepted in
  // a file whose delimiter is not a comma).
  static std::optional<double> number(std::string_view f) {
    if (missing(f)) return std::numeric_limits<double>::quiet_NaN();
    double v = 0;
    if (dyad::text::parse_number(f, v) == dyad::text::NumberStatus::ok && std::isfinite(v)) return v;
    const auto comma = f.find(',');
    if (comma != std::string_view::npos && f.find(',', comma + 1) == std::string_view::npos && f.size() < 64) {
      char buf[64];
      std::copy(f.begin(), f.end(), buf);
      buf[comma] = '.';
      if (dyad::text::parse_number(std::string_view(buf, f.size()), v) == dyad::text::NumberStatus::ok && std::isfinite(v))
        return v;
    }
    return std::nullopt;
  }

  void parse_row(const std::vector<std::string_view>& fields, const Columns& cols, const std::string& name, std::size_t line_no,
                 const dyad::text::CsvErrors& fail) {
    const std::string_view car = fields[cols.car];
    if (car.empty()) return drop("unparsable", name, line_no, "empty car id");
    Sample s;
    const auto t = parse_timestamp(fields[cols.timestamp], spec_.timestamp_unit);
    if (!t) {
      double v = 0;
      const bool number = spec_.timestamp_unit != TimestampUnit::iso8601 &&
                          dyad::text::parse_number(fields[cols.timestamp], v) == dyad::text::NumberStatus::ok;
      return drop("unparsable", name, line_no,
                  "timestamp '" + dyad::detail::excerpt(fields[cols.timestamp], 40) + "'" +
                      (number ? " is more than 1e12 s (31,700 years) from 1970" : ""));
    }
    s.t = *t;
    bool implausible = false;
    for (std::size_t k = 0; k < cols.signals.size(); ++k) {
      const auto v = number(fields[cols.signals[k]]);
      if (!v)
        return drop("unparsable", name, line_no,
                    spec_.signals[k].first + " '" + dyad::detail::excerpt(fields[cols.signals[k]], 40) + "'");
      double x = *v * scale_[k];
      if (std::abs(x) > std::numeric_limits<float>::max())  // the long CSV holds floats
        return drop("unparsable", name, line_no,
                    spec_.signals[k].first + " " + dyad::text::number_text(x) + " is beyond float range");
      if (static_cast<int>(k) == current_ && spec_.current_negative) x = -x;
      if (!std::isnan(x) && ranges_[k] && !(x >= ranges_[k]->lo && x <= ranges_[k]->hi)) {
        const std::string msg = dyad::text::number_text(x) + " is not " + ranges_[k]->what;
        if (options_.strict) fail(line_no, cols.signals[k], msg + " (--strict)");
        note(report_.implausible[spec_.signals[k].first], name, line_no, msg);
        implausible = true;
      }
      if (spec_.signals[k].first == "soc" && !std::isnan(x)) ++soc_seen_, soc_max_ = std::max(soc_max_, x);
      s.values[k] = static_cast<float>(x);
    }
    Car& c = car_of(car, name, line_no, cols.car);
    ++c.cutter.counts().rows;
    if (implausible) {
      ++c.cutter.counts().out_of_range;
      return;
    }
    if (cols.mileage != none) {
      const auto m = number(fields[cols.mileage]);
      if (!m) return drop_car(c, name, line_no, "mileage '" + dyad::detail::excerpt(fields[cols.mileage], 40) + "'");
      s.mileage = *m * mileage_scale_;
    }
    if (cols.label != none) {
      const auto l = number(fields[cols.label]);
      if (!l || (!std::isnan(*l) && *l != 0 && *l != 1))
        return drop_car(c, name, line_no, "label '" + dyad::detail::excerpt(fields[cols.label], 40) + "' is not 0 or 1");
      s.label = std::isnan(*l) ? -1 : static_cast<int>(*l);
    }
    if (cols.charging != none) {
      const std::string_view state = fields[cols.charging];
      s.charging = std::find(spec_.charging_values.begin(), spec_.charging_values.end(), state) != spec_.charging_values.end();
      note_charging_state(state, s);
    } else {
      const float current = s.values[static_cast<std::size_t>(current_)];
      // A missing current keeps the car's last state: one empty cell must not end a session.
      s.charging = std::isnan(current) ? c.charging : current > spec_.charging_threshold_a;
      c.charging = s.charging;
      if (current < -spec_.charging_threshold_a) ++discharging_rows_;
    }
    c.cutter.push(s, [&](const Window& w) { write(std::string(car), w); });
  }

  // What the checks at finish() need to know of the charging column: the values seen (the
  // first few, with their counts) and the sign of the current on charging rows.
  void note_charging_state(std::string_view state, const Sample& s) {
    if (s.charging) ++charging_matches_;
    const auto it = charging_seen_.find(state);
    if (it != charging_seen_.end()) ++it->second;
    else if (charging_seen_.size() < 20) charging_seen_.emplace(std::string(state), 1);
    if (s.charging && current_ >= 0) {
      const float current = s.values[static_cast<std::size_t>(current_)];
      if (current > spec_.charging_threshold_a) ++charging_positive_;
      else if (current < -spec_.charging_threshold_a) ++charging_negative_;
    }
  }

  // Inputs that cannot be what the spec means: refused with the key to fix, before a model is
  // trained or a fleet judged on them.
  void check_charging() const {
    const std::string sign = spec_.current_negative ? "negative" : "positive";
    if (!spec_.charging_column.empty() && report_.total.rows > 0 && charging_matches_ == 0) {
      std::string seen;
      for (const auto& [value, n] : charging_seen_)
        seen += (seen.empty() ? "" : ", ") + ("'" + dyad::detail::excerpt(value, 40) + "' (" + std::to_string(n) + " rows)");
      std::string asked;
      for (const auto& v : spec_.charging_values) asked += (asked.empty() ? "'" : ", '") + dyad::detail::excerpt(v, 40) + "'";
      throw std::invalid_argument(spec_.source + ": key 'charging.values': no row's '" +
                                  dyad::detail::excerpt(spec_.charging_column, 60) + "' (charging.column) is one of " + asked +
                                  "; the values seen are " + (seen.empty() ? std::string("none") : seen) +
                                  (charging_seen_.size() >= 20 ? " and more" : "") + " (values match exactly, case included)");
    }
    check_current_sign(10);
    if (spec_.charging_column.empty() && current_ >= 0 && report_.total.charging_rows == 0 && discharging_rows_ >= 10)
      throw std::invalid_argument(spec_.source + ": key 'charging_current': no row charges (a current above charging_threshold_a " +
                                  dyad::text::number_text(spec_.charging_threshold_a) + " A under \"charging_current\": \"" + sign +
                                  "\"), but " + std::to_string(discharging_rows_) + " rows have one below -" +
                                  dyad::text::number_text(spec_.charging_threshold_a) + " A: set \"charging_current\": \"" +
                                  (spec_.current_negative ? "positive" : "negative") + "\", or map charging.column");
  }

  // Most charging rows (of at least `rows` with a current beyond the threshold) with a current
  // of the wrong sign: the export's sign is the other one. Checked before each window is written
  // too, so that monitor --spec stops before it commits one.
  void check_current_sign(std::uint64_t rows) const {
    const std::string sign = spec_.current_negative ? "negative" : "positive";
    const std::uint64_t signed_rows = charging_positive_ + charging_negative_;
    if (signed_rows >= rows && charging_negative_ * 2 > signed_rows)
      throw std::invalid_argument(spec_.source + ": key 'charging_current': " + std::to_string(charging_negative_) + " of the " +
                                  std::to_string(signed_rows) +
                                  " charging rows with a current beyond charging_threshold_a come out with a negative "
                                  "charging current under \"charging_current\": \"" +
                                  sign + "\"; this export's charging current is " +
                                  (spec_.current_negative ? "positive" : "negative") + ": set \"charging_current\": \"" +
                                  (spec_.current_negative ? "positive" : "negative") + "\"");
  }

  Car& car_of(std::string_view id, const std::string& name, std::size_t line_no, std::size_t column) {
    auto it = cars_.find(id);
    if (it == cars_.end()) {
      if (cars_.size() >= options_.max_cars)
        throw std::runtime_error(name + ":" + std::to_string(line_no) + ":" + std::to_string(column + 1) + ": more than " +
                                 std::to_string(options_.max_cars) + " cars (distinct values of column '" +
                                 dyad::detail::excerpt(spec_.car, 60) + "', this row's is '" + dyad::detail::excerpt(id, 40) +
                                 "'): is the spec's columns.car right? (the limit is dyad::limits::cars)");
      it = cars_.emplace(std::string(id), Car{SessionCutter(spec_, spec_.signals.size())}).first;
    }
    return it->second;
  }

  void note(Report::Examples& e, const std::string& name, std::size_t line_no, const std::string& detail) const {
    ++e.count;
    if (e.where.size() < options_.examples) e.where.push_back(name + ":" + std::to_string(line_no) + ": " + detail);
  }
  void drop(const char* reason, const std::string& name, std::size_t line_no, const std::string& detail) {
    ++report_.total.unparsable;
    note(report_.dropped[reason], name, line_no, detail);
  }
  void drop_car(Car& c, const std::string& name, std::size_t line_no, const std::string& detail) {
    ++c.cutter.counts().unparsable;
    note(report_.dropped["unparsable"], name, line_no, detail);
  }

  void write(const std::string& car, const Window& w) {
    check_current_sign(10);  // before any window leaves: monitor --spec commits what it gets
    int label = w.label;
    if (labels_) {
      const auto it = labels_->find(car);
      if (it == labels_->end())
        throw std::runtime_error("dyad ingest: car '" + dyad::detail::excerpt(car, 60) +
                                 "' is not in the labels file; list every car (0 normal, 1 faulty)");
      label = it->second;
    } else if (report_.labelled && label < 0) {
      throw std::runtime_error("dyad ingest: car '" + dyad::detail::excerpt(car, 60) +
                               "' has a session without a label in column '" + spec_.label + "'");
    }
    const std::string car_field = dyad::text::csv_quote(car);
    const std::size_t S = spec_.signals.size();
    char buf[64];
    auto put = [&](double v) {
      if (std::isnan(v)) return;
      out_.write(buf, std::to_chars(buf, buf + sizeof buf, v).ptr - buf);
    };
    auto put_float = [&](float v) { out_.write(buf, std::to_chars(buf, buf + sizeof buf, v).ptr - buf); };
    for (std::size_t t = 0; t < static_cast<std::size_t>(spec_.length); ++t) {
      out_ << car_field << ',' << w.segment << ',' << t;
      if (report_.labelled) out_ << ',' << label;
      out_ << ',';
      put(w.mileage);
      out_ << ',';
      put(w.start_s);
      for (std::size_t k = 0; k < S; ++k) {
        out_ << ',';
        put_float(w.values[t * S + k]);
      }
      out_ << '\n';
    }
  }

  Spec spec_;
  std::ostream& out_;
  Options options_;
  std::optional<std::map<std::string, int>> labels_;
  std::unordered_map<std::string, Car, IdHash, std::equal_to<>> cars_;
  std::vector<double> scale_;
  std::vector<std::optional<Plausible>> ranges_;
  double mileage_scale_ = 1;
  int current_ = -1;
  double soc_max_ = -std::numeric_limits<double>::infinity();
  std::uint64_t soc_seen_ = 0;
  std::map<std::string, std::uint64_t, std::less<>> charging_seen_;  // charging.column values, the first 20
  std::uint64_t charging_matches_ = 0, charging_positive_ = 0, charging_negative_ = 0, discharging_rows_ = 0;
  Report report_;
};

// Reads a labels CSV: a header line, then car id and label (0 or 1) per line.
inline std::map<std::string, int> read_labels(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": cannot open the labels file");
  const std::string name = path.string();
  dyad::text::LineReader lines(in, name);
  std::string_view line;
  std::vector<std::string_view> fields;
  dyad::text::FieldScratch scratch;
  std::map<std::string, int> labels;
  std::size_t line_no = 0;
  char delim = ',';
  bool header = false;
  while (lines.next(line)) {
    ++line_no;
    if (line_no == 1 && line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
    if (dyad::text::trim(line).empty()) continue;
    if (!header) {  // its delimiter is the file's
      for (const char d : {';', '\t'})
        if (line.find(d) != std::string_view::npos && line.find(',') == std::string_view::npos) delim = d;
      header = true;
      continue;
    }
    if (auto bad = dyad::text::split_fields(line, fields, scratch, delim))
      throw std::runtime_error(name + ":" + std::to_string(line_no) + ":" + std::to_string(*bad + 1) + ": malformed quoted field");
    if (fields.size() < 2 || fields[0].empty())
      throw std::runtime_error(name + ":" + std::to_string(line_no) + ":1: expected car,label");
    if (fields[1] != "0" && fields[1] != "1")
      throw std::runtime_error(name + ":" + std::to_string(line_no) + ":2: label '" + dyad::detail::excerpt(fields[1], 40) +
                               "' is not 0 or 1");
    const auto [it, fresh] = labels.emplace(std::string(fields[0]), fields[1] == "1" ? 1 : 0);
    if (!fresh && it->second != (fields[1] == "1" ? 1 : 0))
      throw std::runtime_error(name + ":" + std::to_string(line_no) + ":2: car '" + dyad::detail::excerpt(fields[0], 40) +
                               "' has another label on an earlier line");
  }
  if (labels.empty()) throw std::runtime_error(name + ": no labels (expected a header line, then car,label per line)");
  return labels;
}

}  // namespace dyad::ingest
