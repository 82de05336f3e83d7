#include <dyad/sim/telemetry.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <string_view>
#include <vector>

using namespace dyad::sim;

namespace {

struct Export {
  std::string text;
  std::vector<ChargingSession> sessions;
};

Export run(const TelemetryConfig& cfg) {
  std::ostringstream os;
  Export e;
  e.sessions = write_raw_telemetry(cfg, os);
  e.text = std::move(os).str();
  return e;
}

std::vector<std::string_view> split(std::string_view line, char d) {
  std::vector<std::string_view> out;
  for (std::size_t start = 0;;) {
    const std::size_t end = line.find(d, start);
    out.push_back(line.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

// The helpers throw on malformed input (a test failure naming it) rather than assert per cell:
// an export has hundreds of thousands of cells.
[[noreturn]] void malformed(const std::string& what) { throw std::runtime_error(what); }

std::vector<std::string_view> lines(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    if (end == std::string_view::npos) malformed("the last line has no newline");
    out.push_back(text.substr(0, end));
    text.remove_prefix(end + 1);
  }
  return out;
}

double number(std::string_view s) {
  const std::string copy(s);
  char* end = nullptr;
  const double v = std::strtod(copy.c_str(), &end);
  if (copy.empty() || end != copy.c_str() + copy.size()) malformed("not a number: '" + copy + "'");
  return v;
}

// Unix milliseconds of a timestamp cell in any of the three formats.
std::int64_t parse_ms(std::string_view s, TimestampFormat f) {
  if (f == TimestampFormat::epoch_ms) return static_cast<std::int64_t>(number(s));
  if (f == TimestampFormat::epoch_s) {
    if (s.size() <= 4 || s[s.size() - 4] != '.') malformed("not seconds with 3 decimals: '" + std::string(s) + "'");
    return std::llround(number(s) * 1000.0);
  }
  // 2021-01-01T00:00:10.250Z
  if (s.size() != 24 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != '.' || s[23] != 'Z')
    malformed("not an ISO 8601 UTC time with milliseconds: '" + std::string(s) + "'");
  const auto field = [&](std::size_t pos, std::size_t n) { return static_cast<int>(number(s.substr(pos, n))); };
  using namespace std::chrono;
  const year_month_day ymd{year{field(0, 4)}, month{static_cast<unsigned>(field(5, 2))}, day{static_cast<unsigned>(field(8, 2))}};
  if (!ymd.ok()) malformed("not a date: '" + std::string(s) + "'");
  const std::int64_t days = sys_days{ymd}.time_since_epoch().count();
  return ((days * 24 + field(11, 2)) * 60 + field(14, 2)) * 60000 + field(17, 2) * 1000 + field(20, 3);
}

// One parsed row of an export with the default column order.
struct Row {
  std::string car;
  std::int64_t t_ms = 0;
  double v[7] = {};  // volt, current (charging-positive), soc, max/min cell V, max/min temp; NaN if empty
  double mileage = 0;
  std::string state;
};

std::vector<Row> parse(const TelemetryConfig& cfg, const std::string& text) {
  const auto ls = lines(text);
  REQUIRE(ls.size() > 1);
  std::vector<Row> rows;
  rows.reserve(ls.size() - 1);
  for (std::size_t i = 1; i < ls.size(); ++i) {
    const auto f = split(ls[i], cfg.delimiter);
    if (f.size() != 11) malformed("line " + std::to_string(i + 1) + " has " + std::to_string(f.size()) + " fields");
    Row r;
    r.car = std::string(f[0]);
    r.t_ms = parse_ms(f[1], cfg.timestamps);
    for (std::size_t c = 0; c < 7; ++c) r.v[c] = f[2 + c].empty() ? std::nan("") : number(f[2 + c]);
    if (cfg.current_negative_when_charging) r.v[1] = -r.v[1];
    r.mileage = number(f[9]);
    r.state = std::string(f[10]);
    rows.push_back(std::move(r));
  }
  return rows;
}

TelemetryConfig small(std::uint64_t seed = 7) {
  TelemetryConfig cfg;
  cfg.fleet.cars = 6;
  cfg.fleet.faulty = 2;
  cfg.fleet.seed = seed;
  cfg.days = 3;
  return cfg;
}

// The default-format export of small(), made once for the tests that only read it.
const Export& fixture() {
  static const Export e = run(small());
  return e;
}
const std::vector<Row>& fixture_rows() {
  static const std::vector<Row> rows = parse(small(), fixture().text);
  return rows;
}

// Counts what a writer hands its stream, write by write.
class RecordingStreambuf : public std::streambuf {
 public:
  std::vector<std::size_t> writes;
  std::size_t total = 0;

 protected:
  std::streamsize xsputn(const char*, std::streamsize n) override {
    writes.push_back(static_cast<std::size_t>(n));
    total += static_cast<std::size_t>(n);
    return n;
  }
  int_type overflow(int_type ch) override {
    if (!traits_type::eq_int_type(ch, traits_type::eof())) writes.push_back(1), ++total;
    return traits_type::not_eof(ch);
  }
};

}  // namespace

TEST_CASE("raw telemetry: deterministic given the config") {
  TelemetryConfig cfg = small();
  cfg.days = 0.5;
  cfg.fleet.cars = 3;
  cfg.fleet.faulty = 1;
  const Export a = run(cfg), b = run(cfg);
  CHECK(a.text == b.text);
  REQUIRE(a.sessions.size() == b.sessions.size());
  for (std::size_t i = 0; i < a.sessions.size(); ++i) {
    CHECK(a.sessions[i].first_s == b.sessions[i].first_s);
    CHECK(a.sessions[i].rows == b.sessions[i].rows);
  }
  cfg.fleet.seed = 8;
  CHECK(run(cfg).text != a.text);
}

TEST_CASE("raw telemetry: header, delimiter, timestamps and column names as configured") {
  TelemetryConfig base = small();
  base.days = 0.25;
  base.fleet.cars = 2;
  base.fleet.faulty = 0;
  base.columns.car = "VIN";
  base.columns.timestamp = "ts";
  base.columns.state = "vehicle_state";
  base.columns.soc = "SOC";

  std::vector<std::int64_t> reference_ms;   // the epoch_ms export's times, row by row
  std::vector<std::string> reference_rest;  // and everything but the time
  for (const TimestampFormat f : {TimestampFormat::epoch_ms, TimestampFormat::epoch_s, TimestampFormat::iso8601}) {
    for (const char d : {',', ';', '\t'}) {
      CAPTURE(static_cast<int>(f));
      CAPTURE(static_cast<int>(d));
      TelemetryConfig cfg = base;
      cfg.timestamps = f;
      cfg.delimiter = d;
      const Export e = run(cfg);
      const auto ls = lines(e.text);
      REQUIRE(ls.size() > 100);
      const std::vector<std::string_view> want = {"VIN",      "ts",          "pack_voltage", "pack_current",
                                                  "SOC",      "cell_v_max",  "cell_v_min",   "temp_max",
                                                  "temp_min", "odometer_km", "vehicle_state"};
      CHECK(split(ls[0], d) == want);
      const bool reference = f == TimestampFormat::epoch_ms && d == ',';
      if (!reference) REQUIRE(ls.size() - 1 == reference_ms.size());
      std::size_t other_time = 0, other_rest = 0;
      for (std::size_t i = 1; i < ls.size(); ++i) {
        const auto fields = split(ls[i], d);
        if (fields.size() != 11) malformed("line " + std::to_string(i + 1) + " has " + std::to_string(fields.size()) + " fields");
        const std::int64_t ms = parse_ms(fields[1], f);
        std::string rest(fields[0]);
        for (std::size_t k = 2; k < fields.size(); ++k) rest += "|" + std::string(fields[k]);
        if (reference) {
          reference_ms.push_back(ms);
          reference_rest.push_back(rest);
        } else {  // the same instants, only written differently
          other_time += ms != reference_ms[i - 1];
          other_rest += rest != reference_rest[i - 1];
        }
      }
      CHECK(other_time == 0);
      CHECK(other_rest == 0);
    }
  }
  // The export starts at 2021-01-01 00:00 UTC and stays inside its days.
  CHECK(reference_ms.front() >= 1609459200000);
  CHECK(reference_ms.back() < 1609459200000 + 6 * 3600 * 1000);
  TelemetryConfig cfg = base;
  const Export iso = run(cfg);
  CHECK(lines(iso.text)[1].find(",2021-01-01T00:00:") != std::string_view::npos);
}

TEST_CASE("raw telemetry: the cars' rows interleaved in time order") {
  const auto& rows = fixture_rows();
  std::map<std::string, std::int64_t> last;
  std::set<std::string> first_hundred;
  std::size_t back_in_time = 0, not_after_previous_of_car = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (i > 0) back_in_time += rows[i].t_ms < rows[i - 1].t_ms;  // globally non-decreasing
    auto [it, fresh] = last.try_emplace(rows[i].car, rows[i].t_ms);
    if (!fresh) {
      not_after_previous_of_car += rows[i].t_ms <= it->second;  // strictly increasing per car
      it->second = rows[i].t_ms;
    }
    if (i < 100) first_hundred.insert(rows[i].car);
  }
  CHECK(back_in_time == 0);
  CHECK(not_after_previous_of_car == 0);
  CHECK(last.size() == 6);
  CHECK(first_hundred.size() == 6);  // interleaved from the start, not car after car
}

TEST_CASE("raw telemetry: the current's sign and the vehicle state") {
  const auto& rows = fixture_rows();
  std::map<std::string, std::size_t> states;
  std::size_t wrong_sign = 0;
  for (const Row& r : rows) {
    ++states[r.state];
    const double current = r.v[1];
    if (std::isnan(current)) continue;
    wrong_sign += (current > 0) != (r.state == "CHARGING");
    wrong_sign += r.state == "PARKED" && current != 0.0;
    wrong_sign += r.state == "DRIVING" && !(current < 0.0);
  }
  CHECK(wrong_sign == 0);
  CHECK(states.size() == 3);
  CHECK(states["DRIVING"] > 1000);
  CHECK(states["CHARGING"] > 1000);
  CHECK(states["PARKED"] > states["DRIVING"]);  // cars spend most of their time parked

  // The other convention negates the current and nothing else.
  TelemetryConfig cfg = small();
  cfg.current_negative_when_charging = true;
  const Export neg = run(cfg);
  const auto a = lines(fixture().text), b = lines(neg.text);
  REQUIRE(a.size() == b.size());
  std::size_t differ = 0, charging_not_negative = 0;
  for (std::size_t i = 1; i < a.size(); ++i) {
    const auto fa = split(a[i], ','), fb = split(b[i], ',');
    for (std::size_t k = 0; k < fa.size(); ++k) {
      if (k != 3 || fa[k].empty() || fa[k] == "0.0") {
        differ += fa[k] != fb[k];
      } else {
        differ += number(fb[k]) != -number(fa[k]);
        charging_not_negative += fa[10] == "CHARGING" && !(number(fb[k]) < 0);
      }
    }
  }
  CHECK(differ == 0);
  CHECK(charging_not_negative == 0);
  CHECK(parse(cfg, neg.text).size() == rows.size());
}

TEST_CASE("raw telemetry: the session list matches the CHARGING rows written") {
  const auto& rows = fixture_rows();
  const auto& sessions = fixture().sessions;
  // Contiguous runs of CHARGING rows per car, as a reader of the export sees them.
  std::map<std::string, std::vector<ChargingSession>> runs;
  std::map<std::string, bool> charging;
  for (const Row& r : rows) {
    const bool c = r.state == "CHARGING";
    if (c) {
      auto& list = runs[r.car];
      const double t = static_cast<double>(r.t_ms) / 1000.0;
      if (!charging[r.car]) list.push_back({r.car, 0, t, t, 0, r.mileage});
      list.back().last_s = t;
      ++list.back().rows;
      if (r.mileage != list.back().mileage_km) FAIL_CHECK(r.car << " moves while charging");
    }
    charging[r.car] = c;
  }
  std::vector<ChargingSession> seen;
  for (auto& [car, list] : runs) seen.insert(seen.end(), list.begin(), list.end());
  REQUIRE(seen.size() == sessions.size());
  REQUIRE(sessions.size() >= 6);
  std::map<std::string, int> labels;
  for (const CarInfo& car : fleet_cars(small().fleet)) labels[car.id] = car.label;
  for (std::size_t i = 0; i < seen.size(); ++i) {
    CAPTURE(i);
    CHECK(sessions[i].car == seen[i].car);
    CHECK(sessions[i].rows == seen[i].rows);
    CHECK(sessions[i].first_s == seen[i].first_s);
    CHECK(sessions[i].last_s == seen[i].last_s);
    CHECK(sessions[i].mileage_km == seen[i].mileage_km);
    CHECK(sessions[i].label == labels[sessions[i].car]);
    if (i > 0 && sessions[i].car == sessions[i - 1].car) CHECK(sessions[i].first_s > sessions[i - 1].last_s);
  }

  // The session CSV carries the same numbers.
  std::ostringstream os;
  write_charging_sessions(sessions, os);
  const std::string text = os.str();
  const auto ls = lines(text);
  REQUIRE(ls.size() == sessions.size() + 1);
  CHECK(ls[0] == "car,label,first_s,last_s,rows,mileage_km");
  const auto f = split(ls[1], ',');
  REQUIRE(f.size() == 6);
  CHECK(f[0] == sessions[0].car);
  CHECK(std::llround(number(f[2]) * 1000) == std::llround(sessions[0].first_s * 1000));
  CHECK(std::llround(number(f[3]) * 1000) == std::llround(sessions[0].last_s * 1000));
  CHECK(number(f[4]) == static_cast<double>(sessions[0].rows));
}

TEST_CASE("raw telemetry: short and long charging sessions") {
  std::size_t short_ones = 0, long_ones = 0;
  for (const ChargingSession& s : fixture().sessions) {
    short_ones += s.rows < 128;
    long_ones += s.rows > 256;
  }
  CHECK(short_ones > 0);
  CHECK(long_ones > 0);
}

TEST_CASE("raw telemetry: drop_rate and empty_rate") {
  TelemetryConfig cfg = small();
  cfg.fleet.cars = 3;
  cfg.fleet.faulty = 0;
  cfg.days = 1;
  cfg.drop_rate = 0;
  cfg.empty_rate = 0;
  const double samples = 86400.0 / cfg.interval_s;  // per car, give or take one
  auto count = [&](const std::vector<Row>& rows, std::map<std::string, double>& per_car) {
    std::size_t empty = 0;
    for (const Row& r : rows) {
      per_car[r.car] += 1;
      for (double v : r.v) empty += std::isnan(v);
    }
    return empty;
  };
  {
    std::map<std::string, double> per_car;
    CHECK(count(parse(cfg, run(cfg).text), per_car) == 0);
    REQUIRE(per_car.size() == 3);
    for (const auto& [car, n] : per_car) CHECK(std::abs(n - samples) <= 1.0);
  }
  cfg.drop_rate = 0.05;
  cfg.empty_rate = 0.02;
  std::map<std::string, double> per_car;
  const auto rows = parse(cfg, run(cfg).text);
  const double empty = static_cast<double>(count(rows, per_car));
  for (const auto& [car, n] : per_car) {
    const double sd = std::sqrt(samples * cfg.drop_rate * (1 - cfg.drop_rate));
    CHECK(std::abs((samples - n) - samples * cfg.drop_rate) < 4 * sd + 1);
  }
  const double cells = 7.0 * static_cast<double>(rows.size());
  CHECK(std::abs(empty - cells * cfg.empty_rate) < 4 * std::sqrt(cells * cfg.empty_rate * (1 - cfg.empty_rate)));
}

TEST_CASE("raw telemetry: physically sensible signals") {
  const auto& rows = fixture_rows();
  std::map<std::string, int> labels;
  for (const CarInfo& car : fleet_cars(small().fleet)) labels[car.id] = car.label;
  std::map<std::string, const Row*> previous;
  std::map<std::string, double> charge_start_soc;
  std::size_t soc_rises = 0, sessions = 0, odometer = 0, soc_range = 0, healthy_range = 0;
  auto outside = [](double v, double lo, double hi) { return !std::isnan(v) && !(v > lo && v < hi); };
  for (const Row& r : rows) {
    const Row* p = previous[r.car];
    if (p) {
      // The odometer never runs back and moves only while driving.
      odometer += r.mileage < p->mileage;
      odometer += r.state != "DRIVING" && p->state != "DRIVING" && r.mileage != p->mileage;
    }
    soc_range += outside(r.v[2], -1e-9, 100 + 1e-9);
    if (labels[r.car] == 0) {  // a healthy car's sensors do not glitch
      healthy_range += outside(r.v[3], 3.2, 4.22) + outside(r.v[4], 3.2, 4.22);
      healthy_range += outside(r.v[0], 96 * 3.2, 96 * 4.22 + 2) + outside(r.v[5], -40, 70) + outside(r.v[6], -40, 70);
    }
    // The SOC rises over a charging session.
    if (r.state == "CHARGING" && !std::isnan(r.v[2])) {
      if (!p || p->state != "CHARGING") charge_start_soc[r.car] = r.v[2];
    } else if (p && p->state == "CHARGING" && charge_start_soc.count(r.car)) {
      ++sessions;
      soc_rises += p->v[2] > charge_start_soc[r.car];
      charge_start_soc.erase(r.car);
    }
    previous[r.car] = &r;
  }
  CHECK(odometer == 0);
  CHECK(soc_range == 0);
  CHECK(healthy_range == 0);
  CHECK(sessions > 3);
  CHECK(soc_rises >= sessions - 1);  // a top-up of a few minutes may not move the 0.1 % display
}

TEST_CASE("raw telemetry: streamed in blocks, not buffered whole") {
  RecordingStreambuf buf;
  std::ostream os(&buf);
  write_raw_telemetry(small(), os);
  CHECK(buf.total == fixture().text.size());
  CHECK(buf.writes.size() > 4);
  CHECK(*std::max_element(buf.writes.begin(), buf.writes.end()) <= (std::size_t{2} << 20));
}

TEST_CASE("raw telemetry: labels") {
  std::ostringstream os;
  write_telemetry_labels(small(), os);
  const std::string text = os.str();
  const auto ls = lines(text);
  REQUIRE(ls.size() == 7);
  CHECK(ls[0] == "car,label");
  int faulty = 0;
  for (std::size_t i = 1; i < ls.size(); ++i) {
    const auto f = split(ls[i], ',');
    REQUIRE(f.size() == 2);
    faulty += f[1] == "1";
  }
  CHECK(faulty == 2);
  CHECK(ls[1] == "car0000," + std::to_string(fleet_cars(small().fleet)[0].label));
}

TEST_CASE("telemetry_spec: the ingest contract") {
  TelemetryConfig cfg;
  const nlohmann::json spec = telemetry_spec(cfg);
  std::set<std::string> keys;
  for (const auto& [k, v] : spec.items()) keys.insert(k);
  CHECK(keys == std::set<std::string>{"columns", "charging", "charging_current", "interval_s", "max_gap_s", "length", "stride"});
  const nlohmann::json columns = {{"car", "vin"},
                                  {"timestamp", "time"},
                                  {"volt", "pack_voltage"},
                                  {"current", "pack_current"},
                                  {"soc", "soc_pct"},
                                  {"max_single_volt", "cell_v_max"},
                                  {"min_single_volt", "cell_v_min"},
                                  {"max_temp", "temp_max"},
                                  {"min_temp", "temp_min"},
                                  {"mileage", "odometer_km"}};
  CHECK(spec["columns"] == columns);
  CHECK(spec["charging"] == nlohmann::json{{"column", "state"}, {"values", nlohmann::json::array({"CHARGING"})}});
  CHECK(spec["charging_current"] == "positive");
  CHECK(spec["interval_s"] == 10.0);
  CHECK(spec["max_gap_s"] == 60.0);
  CHECK(spec["length"] == 128);
  CHECK(spec["stride"] == 64);

  cfg.current_negative_when_charging = true;
  cfg.columns.state = "st";
  cfg.columns.mileage = "km";
  const nlohmann::json other = telemetry_spec(cfg);
  CHECK(other["charging_current"] == "negative");
  CHECK(other["charging"]["column"] == "st");
  CHECK(other["columns"]["mileage"] == "km");
}

TEST_CASE("raw telemetry: invalid configs are refused, naming the field") {
  const std::vector<std::pair<std::string, std::function<void(TelemetryConfig&)>>> cases = {
      {"days", [](TelemetryConfig& c) { c.days = 0; }},
      {"days", [](TelemetryConfig& c) { c.days = std::nan(""); }},
      {"interval_s", [](TelemetryConfig& c) { c.interval_s = 0; }},
      {"jitter_s", [](TelemetryConfig& c) { c.jitter_s = 5; }},
      {"jitter_s", [](TelemetryConfig& c) { c.jitter_s = -1; }},
      {"drop_rate", [](TelemetryConfig& c) { c.drop_rate = 1; }},
      {"empty_rate", [](TelemetryConfig& c) { c.empty_rate = -0.1; }},
      {"delimiter", [](TelemetryConfig& c) { c.delimiter = '.'; }},
      {"delimiter", [](TelemetryConfig& c) { c.delimiter = 'a'; }},
      {"timestamps", [](TelemetryConfig& c) { c.timestamps = static_cast<TimestampFormat>(7); }},
      {"columns.soc", [](TelemetryConfig& c) { c.columns.soc = ""; }},
      {"columns.state", [](TelemetryConfig& c) { c.columns.state = "a,b"; }},
      {"columns.mileage", [](TelemetryConfig& c) { c.columns.mileage = "vin"; }},
      {"fleet.cars", [](TelemetryConfig& c) { c.fleet.cars = 0, c.fleet.faulty = 0; }},
      {"faulty", [](TelemetryConfig& c) { c.fleet.faulty = c.fleet.cars + 1; }},
  };
  for (const auto& [field, mutate] : cases) {
    CAPTURE(field);
    TelemetryConfig cfg;
    mutate(cfg);
    std::ostringstream os;
    CHECK_THROWS_WITH_AS(write_raw_telemetry(cfg, os), doctest::Contains(field.c_str()), std::invalid_argument);
    CHECK(os.str().empty());  // refused before anything is written
    CHECK_THROWS_AS(telemetry_spec(cfg), std::invalid_argument);
    CHECK_THROWS_AS(write_telemetry_labels(cfg, os), std::invalid_argument);
  }
}
