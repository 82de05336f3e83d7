// dyad::ingest: timestamps, the spec, the session cutter and the raw-export reader.
#include <dyad/data/csv.hpp>
#include <dyad/ingest/ingest.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

using namespace dyad;
using namespace dyad::ingest;

TEST_CASE("parse_timestamp reads ISO-8601 with zones and fractions, and epoch seconds or milliseconds") {
  CHECK(*parse_timestamp("1970-01-01T00:00:00Z") == 0.0);
  CHECK(*parse_timestamp("2021-01-01T00:00:00Z") == 1609459200.0);
  CHECK(*parse_timestamp("2021-01-01 00:00:10") == 1609459210.0);  // no zone: UTC
  CHECK(*parse_timestamp("2021-01-01T00:00:10.250Z") == doctest::Approx(1609459210.25));
  CHECK(*parse_timestamp("2021-01-01T02:00:00+02:00") == 1609459200.0);
  CHECK(*parse_timestamp("2020-12-31T19:00:00-0500") == 1609459200.0);
  CHECK(*parse_timestamp("2021-01-01T01:00:00+01") == 1609459200.0);
  CHECK(*parse_timestamp("2024-02-29T12:00:00Z") == 1709208000.0);  // a leap day
  CHECK(*parse_timestamp("1609459200") == 1609459200.0);
  CHECK(*parse_timestamp("1609459200.5") == 1609459200.5);
  CHECK(*parse_timestamp("1609459200123") == doctest::Approx(1609459200.123));  // detected as ms
  CHECK(*parse_timestamp("1609459200", TimestampUnit::milliseconds) == doctest::Approx(1609459.2));
  for (const char* bad : {"", "2021-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "2021-01-01T24:00:00Z", "2021-01-01T00:00:00Q",
                          "2021-01-01T00:00:00.Z", "2021-01-01", "noon", "12:00", "1e400", "nan", "2021-01-01T00:00:00+25:00"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_timestamp(bad).has_value());
  }
  CHECK_FALSE(parse_timestamp("1609459200", TimestampUnit::iso8601).has_value());
}

TEST_CASE("the spec: the contract keys, defaults, and errors that name the key") {
  const auto j = nlohmann::json::parse(R"({
    "columns": {"car": "VIN", "timestamp": "time", "volt": "pack_v", "current": "pack_a", "soc": "soc_pct",
                "max_single_volt": "cell_vmax", "min_single_volt": "cell_vmin", "max_temp": "t_max",
                "min_temp": "t_min", "mileage": "odometer_km"},
    "charging": {"column": "state", "values": ["CHARGING"]},
    "charging_current": "negative",
    "interval_s": 10, "max_gap_s": 60, "length": 128, "stride": 64})");
  const Spec s = spec_from_json(j);
  CHECK(s.car == "VIN");
  CHECK(s.timestamp == "time");
  CHECK(s.mileage == "odometer_km");
  REQUIRE(s.signals.size() == 7);
  CHECK(s.signals[0] == std::pair<std::string, std::string>{"volt", "pack_v"});  // canonical order
  CHECK(s.signals[6] == std::pair<std::string, std::string>{"min_temp", "t_min"});
  CHECK(s.charging_column == "state");
  CHECK(s.current_negative);
  CHECK(s.length == 128);
  CHECK(s.stride == 64);

  auto error = [](const char* text) {
    try {
      spec_from_json(nlohmann::json::parse(text), "my.json");
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error(R"({"columns": {"timestamp": "t", "volt": "v"}, "charging": {"column": "s", "values": ["C"]}})") ==
        "my.json: key 'columns.car': is missing (the export's car id column)");
  CHECK(error(R"({"columns": {"car": "c", "timestamp": "t", "current": "a"}, "intervall_s": 5})") ==
        "my.json: key 'intervall_s': unknown key (did you mean 'interval_s'?)");
  CHECK(error(R"({"columns": {"car": "c", "timestamp": "t", "current": "a"}, "charging_current": "up"})")
            .find("key 'charging_current': must be \"positive\" or \"negative\"") != std::string::npos);
  CHECK(error(R"({"columns": {"car": "c", "timestamp": "t", "volt": "v"}})").find("key 'charging'") != std::string::npos);
  CHECK(error(R"({"columns": {"car": "c", "timestamp": "t", "current": "a"}, "interval_s": 30, "max_gap_s": 20})")
            .find("key 'max_gap_s'") != std::string::npos);
  CHECK(error(R"({"columns": {"car": "c", "timestamp": "t", "current": "a"}, "length": 1})").find("key 'length'") !=
        std::string::npos);
  // A signal name that the long CSV could not read back (fuzz_spec found an empty one).
  for (const char* name : {"", " x", "a,b", "a\\\"b", "a\\u0001b"})
    CHECK(error((std::string(R"({"columns": {"car": "c", "timestamp": "t", ")") + name + R"(": "v"}})").c_str())
              .find("cannot be a column of the long CSV") != std::string::npos);
  CHECK(error(R"({"columns": {"car": "c", "timestamp": "t", "current": "a"}, "scale": {"volt": 2}})")
            .find("key 'scale.volt': is not a mapped signal") != std::string::npos);
}

namespace {
Spec small_spec(int length = 4, int stride = 2) {
  Spec s;
  s.car = "car";
  s.timestamp = "time";
  s.signals = {{"volt", "v"}, {"current", "a"}};
  s.interval_s = 10;
  s.max_gap_s = 30;
  s.length = length;
  s.stride = stride;
  s.max_disorder_s = 100;
  return s;
}

// A charging sample whose signals are linear in time (so interpolation is exact).
Sample linear_sample(double t, bool charging = true) {
  Sample s;
  s.t = t;
  s.values[0] = static_cast<float>(300 + 0.01 * t);
  s.values[1] = static_cast<float>(charging ? 20 + 0.001 * t : 0);
  s.mileage = 1000 + 0.1 * t;
  s.charging = charging;
  return s;
}

struct Collected {
  std::vector<Window> windows;
  std::vector<std::vector<float>> values;
  auto sink() {
    return [this](const Window& w) {
      windows.push_back(w);
      values.emplace_back(w.values.begin(), w.values.end());
    };
  }
};
}  // namespace

TEST_CASE("SessionCutter: a jittered session resamples exactly onto the grid and is cut into strided windows") {
  const Spec spec = small_spec(4, 2);
  SessionCutter cut(spec, 2);
  Collected got;
  // 13 samples over 120 s with +-2 s jitter: grid points 0, 10, ..., floor(last/10)*10.
  const double jitter[] = {0, 1.5, -2, 0.5, 2, -1, 0, 1, -1.5, 2, 0, -0.5, 0};
  for (int i = 0; i < 13; ++i) cut.push(linear_sample(1000 + 10 * i + jitter[i]), got.sink());
  cut.finish(got.sink());
  // Grid: 1000..1120 (13 points): windows start at 0, 2, 4, 6, 8 (8 + 4 <= 13).
  REQUIRE(got.windows.size() == 5);
  for (std::size_t w = 0; w < 5; ++w) {
    CHECK(got.windows[w].segment == static_cast<std::int64_t>((1000 + 20 * w) * 1000));  // the start in epoch ms
    CHECK(got.windows[w].start_s == 1000 + 20.0 * w);
    CHECK(got.windows[w].mileage == doctest::Approx(1000 + 0.1 * (1000 + 20.0 * w)));
    for (int t = 0; t < 4; ++t) {
      const double g = 1000 + 20.0 * w + 10 * t;
      CHECK(got.values[w][t * 2] == doctest::Approx(300 + 0.01 * g).epsilon(1e-6));
      CHECK(got.values[w][t * 2 + 1] == doctest::Approx(20 + 0.001 * g).epsilon(1e-6));
    }
  }
  CHECK(cut.counts().sessions == 1);
  CHECK(cut.counts().charging_rows == 13);
  CHECK(cut.counts().windows == 5);
  CHECK(cut.counts().short_session + cut.counts().gap == 0);
}

TEST_CASE("SessionCutter: gaps, state changes, holes in a signal, disorder and duplicates") {
  SUBCASE("a gap longer than max_gap_s or a non-charging row ends a session; short sessions are dropped and counted") {
    SessionCutter cut(small_spec(4, 4), 2);
    Collected got;
    for (int i = 0; i < 6; ++i) cut.push(linear_sample(10.0 * i), got.sink());        // 0..50: one window
    for (int i = 0; i < 3; ++i) cut.push(linear_sample(100 + 10.0 * i), got.sink());  // after a 50 s gap: too short
    cut.push(linear_sample(130, false), got.sink());                                  // not charging
    for (int i = 0; i < 4; ++i) cut.push(linear_sample(140 + 10.0 * i), got.sink());  // a new session: one window
    cut.finish(got.sink());
    CHECK(cut.counts().sessions == 3);
    CHECK(cut.counts().windows == 2);
    CHECK(cut.counts().not_charging == 1);
    CHECK(cut.counts().short_session == 3);
    REQUIRE(got.windows.size() == 2);
    CHECK(got.windows[0].start_s == 0);
    CHECK(got.windows[1].start_s == 140);
    CHECK(got.windows[1].segment == 140000);
  }
  SUBCASE("a missing cell is interpolated across a hole up to max_gap_s; a longer hole cuts the session") {
    SessionCutter cut(small_spec(4, 4), 2);
    Collected got;
    for (int i = 0; i < 12; ++i) {
      Sample s = linear_sample(10.0 * i);
      if (i == 2 || i == 3) s.values[0] = NAN;  // a 30 s hole in volt: bridged
      if (i >= 6 && i <= 8) s.values[1] = NAN;  // a 40 s hole in current: cuts at 70, 80
      cut.push(s, got.sink());
    }
    cut.finish(got.sink());
    CHECK(cut.counts().cells_interpolated == 2);
    // Grid 0..110: points 7 and 8 have no current; runs [0, 6] (7 points: one window of 4) and
    // [9, 11] (3 points: none).
    REQUIRE(got.windows.size() == 1);
    CHECK(got.values[0][2 * 2] == doctest::Approx(300 + 0.01 * 20));  // the bridged volt at t = 20
    CHECK(cut.counts().gap > 0);
  }
  SUBCASE("rows out of order within max_disorder_s are sorted in; older ones and repeats are dropped") {
    SessionCutter cut(small_spec(4, 4), 2);
    Collected got;
    for (double t : {0.0, 20.0, 10.0, 30.0, 30.0, 40.0, 50.0, 300.0, 45.0})  // 45 after 300: too late
      cut.push(linear_sample(t), got.sink());
    cut.finish(got.sink());
    CHECK(cut.counts().out_of_order == 2);  // the repeated 30 and the late 45
    REQUIRE(got.windows.size() == 1);
    CHECK(got.values[0][2] == doctest::Approx(300 + 0.01 * 10));
  }
}

namespace {
const char* kSpec = R"({
  "columns": {"car": "VIN", "timestamp": "time", "volt": "pack v", "current": "pack_a", "soc": "soc",
              "mileage": "odo"},
  "charging": {"column": "state", "values": ["CHARGING"]},
  "charging_current": "negative", "interval_s": 10, "max_gap_s": 30, "length": 4, "stride": 2})";

// Two cars interleaved: car A charges for 8 samples, car "B;1" for 6, then both drive.
std::string raw_export(char d) {
  std::ostringstream os;
  const std::string sep(1, d);
  os << "\xEF\xBB\xBF"
     << "time" << sep << "VIN" << sep << "\"pack v\"" << sep << "pack_a" << sep << "soc" << sep << "odo" << sep << "state" << sep
     << "extra\r\n";
  for (int i = 0; i < 10; ++i) {
    const bool charging = i < 8;
    char ts[64];
    std::snprintf(ts, sizeof ts, "2021-01-01T00:%02d:%02d.500Z", (i * 10) / 60, (i * 10) % 60);
    const std::string volt = d == ';' ? "350,5" : "350.5";  // a decimal comma in a semicolon file
    os << ts << sep << "A" << sep << (i == 3 ? "NA" : volt) << sep << (charging ? "-50" : "20") << sep << 40 + i << sep << 1000 + i
       << sep << (charging ? "CHARGING" : "DRIVING") << sep << "x\r\n";
    if (i < 6)
      os << ts << sep << "\"B;1\"" << sep << "360" << sep << "-30" << sep << 50 + i << sep << "" << sep << "CHARGING" << sep
         << "y\r\n";
  }
  return os.str();
}

Report ingest_text(const std::string& spec_text, const std::string& text, std::ostringstream& out, Options o = {},
                   std::optional<std::map<std::string, int>> labels = {}) {
  Ingestor ing(spec_from_json(nlohmann::json::parse(spec_text)), out, o, std::move(labels));
  std::istringstream in(text);
  ing.read(in, "fleet.csv");
  return ing.finish();
}
}  // namespace

TEST_CASE("Ingestor reads comma, semicolon and tab exports with BOM, CRLF, quotes and NA, and writes readable segments") {
  for (const char d : {',', ';', '\t'}) {
    CAPTURE(d);
    std::ostringstream out;
    const Report r = ingest_text(kSpec, raw_export(d), out);
    // Car A: 8 charging rows -> grid 0.5..70.5 (8 points) -> windows at 0, 2, 4; car B: 6 rows -> windows at 0, 2.
    CHECK(r.total.windows == 5);
    CHECK(r.total.rows == 16);
    CHECK(r.total.not_charging == 2);
    CHECK(r.total.cells_interpolated == 1);
    CHECK_FALSE(r.labelled);
    std::istringstream back(out.str());
    const Dataset data = read_csv(back, "out.csv");
    CHECK(data.size() == 5);
    CHECK(data.columns() == std::vector<std::string>{"volt", "current", "soc"});
    for (std::size_t i = 0; i < data.size(); ++i) {
      const SegmentValues v = data.values(i);
      CHECK(v.rows() == 4);
      for (Eigen::Index t = 0; t < 4; ++t) CHECK(v(t, 1) > 0);  // charging-positive
      if (data.meta(i).car == "A") {
        CHECK(v(0, 0) == doctest::Approx(350.5));
        CHECK(data.meta(i).mileage == doctest::Approx(1000 + (data.meta(i).timestamp - 1609459200.5) / 10));
      } else {
        CHECK(data.meta(i).car == "B;1");
        CHECK(std::isnan(data.meta(i).mileage));
      }
      CHECK(data.meta(i).segment == std::llround(data.meta(i).timestamp * 1000));
    }
  }
}

TEST_CASE("Ingestor: labels, implausible values, unparsable rows and structural errors") {
  SUBCASE("a labels file adds the label column; a car missing from it is an error") {
    std::ostringstream out;
    const Report r = ingest_text(kSpec, raw_export(','), out, {}, std::map<std::string, int>{{"A", 1}, {"B;1", 0}});
    CHECK(r.labelled);
    std::istringstream back(out.str());
    const Dataset data = read_csv(back, "out.csv");
    for (std::size_t i = 0; i < data.size(); ++i) CHECK(data.meta(i).label == (data.meta(i).car == "A" ? 1 : 0));
    std::ostringstream out2;
    CHECK_THROWS_WITH(ingest_text(kSpec, raw_export(','), out2, {}, std::map<std::string, int>{{"A", 1}}),
                      doctest::Contains("car 'B;1' is not in the labels file"));
  }
  SUBCASE("implausible values are dropped and counted with file:line, or errors with --strict") {
    std::string text = raw_export(',');
    const auto at = text.find("\"B;1\",360");
    text.replace(at, 9, "\"B;1\",-36");  // a negative pack voltage on line 3
    std::ostringstream out;
    const Report r = ingest_text(kSpec, text, out);
    CHECK(r.total.out_of_range == 1);
    REQUIRE(r.implausible.count("volt") == 1);
    CHECK(r.implausible.at("volt").where.at(0).starts_with("fleet.csv:3: -36 is not a positive pack voltage"));
    Options strict;
    strict.strict = true;
    std::ostringstream out2;
    CHECK_THROWS_WITH(ingest_text(kSpec, text, out2, strict),
                      "fleet.csv:3:3: column 'pack v': -36 is not a positive pack voltage (--strict)");
  }
  SUBCASE("unparsable rows are dropped and counted by reason") {
    std::string text = raw_export(',');
    text += "yesterday,A,350,-50,40,1000,CHARGING,x\n";
    text += "2021-01-01T01:00:00Z,A,volts,-50,40,1000,CHARGING,x\n";
    text += "2021-01-01T01:00:10Z,A\n";
    std::ostringstream out;
    const Report r = ingest_text(kSpec, text, out);
    CHECK(r.total.unparsable == 3);
    CHECK(r.dropped.at("unparsable").where.at(0) == "fleet.csv:18: timestamp 'yesterday'");
    CHECK(r.dropped.at("unparsable").where.at(1) == "fleet.csv:19: volt 'volts'");
    const auto j = r.to_json();
    CHECK(j["total"]["dropped"]["unparsable"] == 3);
    CHECK(j["cars"]["A"]["windows"] == 3);
  }
  SUBCASE("a mapped column missing from the header is an error naming the file, line, spec key and columns") {
    std::ostringstream out;
    std::string text = raw_export(',');
    text.replace(text.find("odo"), 3, "km");
    CHECK_THROWS_WITH(ingest_text(kSpec, text, out),
                      doctest::Contains("fleet.csv:1:1: column 'odo' (spec columns.mileage) is not in the header"));
  }
}

TEST_CASE("read_labels reads car,label with a header and names bad lines") {
  const auto dir = std::filesystem::temp_directory_path() / "dyad_test_labels";
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& text) {
    std::ofstream(dir / "labels.csv") << text;
    return dir / "labels.csv";
  };
  const auto labels = read_labels(write("vin,faulty\r\nA,1\nB,0\n\n"));
  CHECK(labels == std::map<std::string, int>{{"A", 1}, {"B", 0}});
  CHECK_THROWS_WITH(read_labels(write("vin,faulty\nA,2\n")), doctest::Contains("labels.csv:2:2: label '2' is not 0 or 1"));
  CHECK_THROWS_WITH(read_labels(write("vin,faulty\nA,1\nA,0\n")), doctest::Contains("labels.csv:3:2: car 'A' has another label"));
  CHECK_THROWS_WITH(read_labels(write("vin,faulty\n")), doctest::Contains("no labels"));
  std::filesystem::remove_all(dir);
}

#include <dyad/sim/telemetry.hpp>

TEST_CASE("simulate --raw then ingest: the windows are what the simulator's session list predicts") {
  for (const bool negative : {false, true}) {
    CAPTURE(negative);
    sim::TelemetryConfig cfg;
    cfg.fleet.cars = 4;
    cfg.fleet.faulty = 0;  // sensor glitches of faulty cars may be implausible values, dropped by design
    cfg.fleet.seed = 5;
    cfg.days = 2;
    cfg.drop_rate = 0;
    cfg.empty_rate = 0;
    cfg.current_negative_when_charging = negative;
    cfg.timestamps = negative ? sim::TimestampFormat::epoch_ms : sim::TimestampFormat::iso8601;
    std::ostringstream raw;
    const auto sessions = sim::write_raw_telemetry(cfg, raw);
    REQUIRE(!sessions.empty());
    Spec spec = spec_from_json(sim::telemetry_spec(cfg));
    std::map<std::string, std::uint64_t> predicted;
    std::uint64_t total = 0;
    for (const auto& s : sessions) {
      const auto points = static_cast<std::uint64_t>(std::floor((s.last_s - s.first_s) / spec.interval_s + 1e-9)) + 1;
      const auto L = static_cast<std::uint64_t>(spec.length), stride = static_cast<std::uint64_t>(spec.stride);
      const std::uint64_t w = points >= L ? (points - L) / stride + 1 : 0;
      predicted[s.car] += w;
      total += w;
    }
    REQUIRE(total > 0);
    std::ostringstream out;
    Ingestor ing(spec, out);
    std::istringstream in(raw.str());
    ing.read(in, "raw.csv");
    const Report r = ing.finish();
    CHECK(r.total.sessions == sessions.size());
    CHECK(r.total.windows == total);
    for (const auto& [car, n] : predicted) CHECK(r.cars.at(car).windows == n);
    CHECK(r.total.unparsable + r.total.out_of_range + r.total.out_of_order == 0);
    std::istringstream back(out.str());
    const Dataset data = read_csv(back, "segments.csv");
    CHECK(data.size() == total);
    const auto current = data.column_index("current");
    for (std::size_t i = 0; i < data.size(); ++i) CHECK(data.values(i).col(static_cast<Eigen::Index>(current)).minCoeff() > 0);
  }
}

namespace {
std::string ingest_all(const Spec& spec, const std::string& text, Report* report = nullptr) {
  std::ostringstream out;
  Ingestor ing(spec, out);
  std::istringstream in(text);
  ing.read(in, "raw.csv");
  const Report r = ing.finish();
  if (report) *report = r;
  return out.str();
}
}  // namespace

TEST_CASE("ingest: rows out of order (swapped neighbours, one car's rows late) give the same windows as sorted rows") {
  sim::TelemetryConfig cfg;
  cfg.fleet.cars = 3;
  cfg.fleet.faulty = 0;
  cfg.days = 1;
  cfg.drop_rate = 0;
  cfg.empty_rate = 0;
  std::ostringstream raw;
  sim::write_raw_telemetry(cfg, raw);
  const Spec spec = spec_from_json(sim::telemetry_spec(cfg));
  Report sorted_report;
  const std::string sorted = ingest_all(spec, raw.str(), &sorted_report);
  REQUIRE(sorted_report.total.windows > 0);
  // Swap neighbouring rows, and delay every 50th row by 20 rows (a few minutes: within max_disorder_s).
  std::istringstream in(raw.str());
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  dyad::Rng rng(3);
  for (std::size_t i = 1; i + 1 < lines.size(); i += 2)
    if (rng.uniform(0, 1) < 0.5) std::swap(lines[i], lines[i + 1]);
  for (std::size_t i = 1; i + 21 < lines.size(); i += 50)
    std::rotate(lines.begin() + static_cast<long>(i), lines.begin() + static_cast<long>(i) + 1,
                lines.begin() + static_cast<long>(i) + 21);
  std::string shuffled;
  for (const auto& l : lines) shuffled += l + "\n";
  Report shuffled_report;
  const std::string out = ingest_all(spec, shuffled, &shuffled_report);
  CHECK(shuffled_report.total.out_of_order == 0);
  CHECK(shuffled_report.total.windows == sorted_report.total.windows);
  // Cars finish in another order, but each car's windows are the same rows.
  auto per_car = [](const std::string& text) {
    std::map<std::string, std::string> cars;
    std::istringstream s(text);
    std::string l;
    std::getline(s, l);
    while (std::getline(s, l)) cars[l.substr(0, l.find(','))] += l + "\n";
    return cars;
  };
  CHECK(per_car(out) == per_car(sorted));
}

TEST_CASE("ingest: dropped rows and empty cells: windows only lose, cells are bridged, the account adds up") {
  sim::TelemetryConfig cfg;
  cfg.fleet.cars = 4;
  cfg.fleet.faulty = 0;
  cfg.days = 2;
  cfg.drop_rate = 0.03;
  cfg.empty_rate = 0.01;
  std::ostringstream raw;
  const auto sessions = sim::write_raw_telemetry(cfg, raw);
  const Spec spec = spec_from_json(sim::telemetry_spec(cfg));
  std::uint64_t upper = 0;
  for (const auto& s : sessions) {
    const auto points = static_cast<std::uint64_t>(std::floor((s.last_s - s.first_s) / spec.interval_s + 1e-9)) + 1;
    upper += points >= 128 ? (points - 128) / 64 + 1 : 0;
  }
  Report r;
  const std::string out = ingest_all(spec, raw.str(), &r);
  CHECK(r.total.windows <= upper);
  CHECK(r.total.windows >= upper * 8 / 10);  // 3% dropped rows rarely open a hole over 60 s
  CHECK(r.total.cells_interpolated > 0);
  CHECK(r.total.charging_rows + r.total.not_charging + r.total.unparsable + r.total.out_of_range + r.total.out_of_order ==
        r.total.rows);
  std::istringstream back(out);
  CHECK(read_csv(back, "segments.csv").size() == r.total.windows);
}

TEST_CASE("ingest: the missing-value tokens and a pipe delimiter") {
  std::ostringstream out;
  std::string text = "time|VIN|pack v|pack_a|soc|odo|state\n";
  const char* volts[] = {"350", "NaN", "null", "N/A", "none", "351", "nan", "352"};
  for (int i = 0; i < 8; ++i) text += "2021-01-01T00:0" + std::to_string(i) + ":00Z|A|" + volts[i] + "|-10|50|1000|CHARGING\n";
  const std::string spec = R"({"columns": {"car": "VIN", "timestamp": "time", "volt": "pack v", "current": "pack_a"},
    "charging": {"column": "state", "values": ["CHARGING"]}, "interval_s": 60, "max_gap_s": 300, "length": 8, "stride": 8})";
  const Report r = ingest_text(spec, text, out);
  CHECK(r.total.cells_interpolated == 5);
  CHECK(r.total.windows == 1);
  std::istringstream back(out.str());
  const Dataset d = read_csv(back, "o.csv");
  REQUIRE(d.size() == 1);
  CHECK(d.values(0)(2, 0) == doctest::Approx(350 + 2.0 / 5));  // between 350 at 0 min and 351 at 5 min
}

TEST_CASE("ingest: an export split into two files (in time order) gives the windows of the whole") {
  sim::TelemetryConfig cfg;
  cfg.fleet.cars = 2;
  cfg.fleet.faulty = 0;
  cfg.days = 1;
  std::ostringstream raw;
  sim::write_raw_telemetry(cfg, raw);
  const Spec spec = spec_from_json(sim::telemetry_spec(cfg));
  Report whole;
  const std::string one = ingest_all(spec, raw.str(), &whole);
  const std::string text = raw.str();
  const std::string header = text.substr(0, text.find('\n') + 1);
  const std::size_t half = text.find('\n', text.size() / 2) + 1;
  std::ostringstream out;
  Ingestor ing(spec, out);
  std::istringstream first(text.substr(0, half)), second(header + text.substr(half));
  ing.read(first, "part1.csv");
  ing.read(second, "part2.csv");
  const Report r = ing.finish();
  CHECK(r.files == std::vector<std::string>{"part1.csv", "part2.csv"});
  CHECK(r.total.windows == whole.total.windows);
  CHECK(out.str() == one);
}

TEST_CASE("ingest: a label column labels each session; an SOC of 0-1 is called out") {
  std::string text = "time,VIN,a,soc,bad\n";
  for (int i = 0; i < 150; ++i)
    text += std::to_string(1609459200 + 10 * i) + ",A,20," + std::to_string(0.3 + 0.001 * i) + "," + (i < 100 ? "0" : "1") + "\n";
  const std::string spec = R"({"columns": {"car": "VIN", "timestamp": "time", "current": "a", "soc": "soc", "label": "bad"},
    "interval_s": 10, "max_gap_s": 30, "length": 50, "stride": 50})";
  std::ostringstream out;
  const Report r = ingest_text(spec, text, out);
  CHECK(r.labelled);
  CHECK(r.total.windows == 3);
  std::istringstream back(out.str());
  const Dataset d = read_csv(back, "o.csv");
  for (std::size_t i = 0; i < d.size(); ++i) CHECK(d.meta(i).label == 1);  // the session had a faulty row
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0].find("0-1 fraction") != std::string::npos);
}

TEST_CASE("ingest: a spec file of 200,000 nested arrays is refused, naming the file and the nesting limit") {
  const auto path = std::filesystem::temp_directory_path() / ("dyad_test_ingest_deep_spec_" + std::to_string(::getpid()) + ".json");
  std::ofstream(path) << R"({"columns": {"car": "VIN", "timestamp": "time", "volt": "v", "current": "a"}, "interval_s": )"
                      << std::string(200000, '[') << std::string(200000, ']') << "}";
  try {
    spec_from_file(path);
    FAIL("expected an error");
  } catch (const std::exception& e) {
    CHECK(std::string(e.what()).starts_with(path.string() + ": JSON nests arrays and objects deeper than 64 levels (at byte "));
  }
  std::filesystem::remove(path);
}

TEST_CASE("ingest: windows before 1970 are numbered by their (negative) start in epoch ms; two exports stay apart") {
  // An export whose clock was never set: each day's windows used to be numbered 0, 1, 2, ...
  // so dyad monitor took the second day's for the first's, "already stored".
  const std::string spec = R"({"columns": {"car": "VIN", "timestamp": "time", "volt": "v", "current": "a"},
    "interval_s": 10, "max_gap_s": 30, "length": 4, "stride": 2})";
  auto day = [&](const std::vector<std::string>& times) {
    std::string text = "time,VIN,v,a\n";
    for (std::size_t i = 0; i < times.size(); ++i) text += times[i] + ",A," + std::to_string(350 + i) + ",20\n";
    std::ostringstream out;
    ingest_text(spec, text, out);
    std::istringstream back(out.str());
    return read_csv(back, "out.csv");
  };
  std::vector<std::string> first, second;
  for (int i = 0; i < 8; ++i) first.push_back(std::to_string(-2 * 86400 + 10 * i));  // 1969-12-30, epoch seconds
  for (int i = 0; i < 8; ++i) {                                                      // 1969-12-31, ISO 8601
    char ts[32];
    std::snprintf(ts, sizeof ts, "1969-12-31T00:%02d:%02dZ", (10 + 10 * i) / 60, (10 + 10 * i) % 60);
    second.push_back(ts);
  }
  const Dataset a = day(first), b = day(second);
  REQUIRE(a.size() == 3);
  REQUIRE(b.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(a.meta(i).segment == (-2 * 86400 + 20 * static_cast<std::int64_t>(i)) * 1000);
    CHECK(b.meta(i).segment == (-86400 + 10 + 20 * static_cast<std::int64_t>(i)) * 1000);
    CHECK(a.meta(i).segment == std::llround(a.meta(i).timestamp * 1000));
    CHECK(b.meta(i).segment == std::llround(b.meta(i).timestamp * 1000));
  }
  // A session across 1970 keeps its ids increasing through zero.
  SessionCutter cut(small_spec(4, 2), 2);
  Collected got;
  for (int i = 0; i < 8; ++i) cut.push(linear_sample(-35 + 10.0 * i), got.sink());
  cut.finish(got.sink());
  REQUIRE(got.windows.size() == 3);
  CHECK(got.windows[0].segment == -35000);
  CHECK(got.windows[1].segment == -15000);
  CHECK(got.windows[2].segment == 5000);
}

TEST_CASE("ingest: timestamps more than 1e12 s from 1970 are not timestamps (their ms would not be an exact id)") {
  CHECK(*parse_timestamp("-1000000000000", TimestampUnit::seconds) == -1e12);
  CHECK_FALSE(parse_timestamp("1000000000001", TimestampUnit::seconds).has_value());
  CHECK_FALSE(parse_timestamp("1e300").has_value());
  CHECK_FALSE(parse_timestamp("-1e300", TimestampUnit::milliseconds).has_value());
  std::string text = raw_export(',');
  text += "1e300,A,350,-50,40,1000,CHARGING,x\n";
  std::ostringstream out;
  const Report r = ingest_text(kSpec, text, out);
  CHECK(r.total.unparsable == 1);
  CHECK(r.dropped.at("unparsable").where.at(0) == "fleet.csv:18: timestamp '1e300' is more than 1e12 s (31,700 years) from 1970");
}

TEST_CASE("SessionCutter: long runs of missing cells are bridged with the interpolated values, in one pass") {
  SUBCASE("a signal given every 500th sample of 5001 is interpolated linearly across each run") {
    Spec spec = small_spec(4, 2);
    spec.max_gap_s = 600;
    spec.max_disorder_s = 10;
    SessionCutter cut(spec, 2);
    Collected got;
    for (int i = 0; i <= 5000; ++i) {
      Sample s = linear_sample(i);
      if (i % 500 != 0) s.values[0] = std::numeric_limits<float>::quiet_NaN();
      cut.push(s, got.sink());
    }
    cut.finish(got.sink());
    CHECK(cut.counts().cells_interpolated == 10 * 499);
    REQUIRE(got.windows.size() == (501 - 4) / 2 + 1);
    for (std::size_t w = 0; w < got.windows.size(); ++w)
      for (int t = 0; t < 4; ++t) {
        const double g = got.windows[w].start_s + 10 * t;
        CHECK(got.values[w][t * 2] == doctest::Approx(300 + 0.01 * g).epsilon(1e-6));
        CHECK(got.values[w][t * 2 + 1] == doctest::Approx(20 + 0.001 * g).epsilon(1e-6));
      }
  }
  SUBCASE("a mapped column empty in every row of a long session: no window, every row accounted for") {
    SessionCutter cut(small_spec(4, 2), 2);
    Collected got;
    constexpr int n = 20000;
    for (int i = 0; i < n; ++i) {
      Sample s = linear_sample(10.0 * i);
      s.values[0] = std::numeric_limits<float>::quiet_NaN();
      cut.push(s, got.sink());
    }
    cut.finish(got.sink());
    CHECK(got.windows.empty());
    CHECK(cut.counts().sessions == 1);
    CHECK(cut.counts().cells_interpolated == 0);
    CHECK(cut.counts().gap == n);
  }
  SUBCASE("missing runs at the session's ends are not bridged; one inside is") {
    SessionCutter cut(small_spec(4, 2), 2);
    Collected got;
    for (int i = 0; i < 12; ++i) {
      Sample s = linear_sample(10.0 * i);
      if (i < 2 || i == 5 || i > 9) s.values[0] = std::numeric_limits<float>::quiet_NaN();
      cut.push(s, got.sink());
    }
    cut.finish(got.sink());
    CHECK(cut.counts().cells_interpolated == 1);
    REQUIRE(got.windows.size() == 3);  // grid points 2..9 are valid: windows at 2, 4, 6
    CHECK(got.windows[0].start_s == 20);
    CHECK(got.values[1][2 * 1] == doctest::Approx(300 + 0.01 * 50));  // the bridged cell
  }
}

TEST_CASE("ingest: more distinct car ids than Options::max_cars (limits::cars) is an error naming file, line and column") {
  static_assert(dyad::limits::cars == 100'000);
  CHECK(Options{}.max_cars == dyad::limits::cars);
  std::string text = "time,VIN,v,a\n";
  for (int car = 1; car <= 5; ++car)
    for (int i = 0; i < 2; ++i) text += std::to_string(1609459200 + 10 * i) + ",C" + std::to_string(car) + ",350,20\n";
  const std::string spec = R"({"columns": {"car": "VIN", "timestamp": "time", "volt": "v", "current": "a"}})";
  Options o;
  o.max_cars = 5;
  std::ostringstream out;
  CHECK(ingest_text(spec, text, out, o).cars.size() == 5);
  o.max_cars = 3;
  std::ostringstream out2;
  CHECK_THROWS_WITH(ingest_text(spec, text, out2, o),
                    "fleet.csv:8:2: more than 3 cars (distinct values of column 'VIN', this row's is 'C4'): is the spec's "
                    "columns.car right? (the limit is dyad::limits::cars)");
}

TEST_CASE("ingest: UTF-16 and CR-only exports are named as such") {
  const std::string spec = R"({"columns": {"car": "VIN", "timestamp": "time", "volt": "v", "current": "a"}})";
  std::ostringstream out;
  CHECK_THROWS_WITH(ingest_text(spec, std::string("\xFF\xFEt\0i\0m\0e\0\n\0", 12), out),
                    doctest::Contains("fleet.csv:1: the file is UTF-16 (little-endian byte-order mark)"));
  CHECK_THROWS_WITH(ingest_text(spec, "time,VIN,v,a\r1609459200,A,350,20\r", out),
                    doctest::Contains("fleet.csv:1: the first line holds a carriage return (at byte 13)"));
}

TEST_CASE(
    "ingest: a charging current of the wrong sign, charging values no row has, and near-miss names are errors naming the key") {
  std::ostringstream out;
  // The export's charging current is negative; a spec that says "positive" is refused.
  std::string positive = kSpec;
  positive.replace(positive.find("\"negative\""), 10, "\"positive\"");
  CHECK_THROWS_WITH_AS(ingest_text(positive, raw_export(','), out),
                       doctest::Contains("key 'charging_current': 14 of the 14 charging rows with a current beyond "
                                         "charging_threshold_a come out with a negative charging current under "
                                         "\"charging_current\": \"positive\"; this export's charging current is negative: set "
                                         "\"charging_current\": \"negative\""),
                       std::invalid_argument);
  // Charging told by the current alone: no row charges, many discharge.
  const std::string by_current = R"({"columns": {"car": "VIN", "timestamp": "time", "volt": "pack v", "current": "pack_a"},
                                     "interval_s": 10, "max_gap_s": 30, "length": 4, "stride": 2})";
  std::string charging_only;
  {
    std::istringstream in(raw_export(','));
    std::string line;
    std::getline(in, line);
    charging_only = line + "\n";
    while (std::getline(in, line))
      if (line.find("DRIVING") == std::string::npos) charging_only += line + "\n";
  }
  CHECK_THROWS_WITH_AS(ingest_text(by_current, charging_only, out),
                       doctest::Contains("key 'charging_current': no row charges (a current above charging_threshold_a 0.5 A "
                                         "under \"charging_current\": \"positive\"), but 14 rows have one below -0.5 A"),
                       std::invalid_argument);
  // charging.values that no row has: the values seen are listed.
  std::string wrong_values = kSpec;
  wrong_values.replace(wrong_values.find("\"CHARGING\""), 10, "\"Charging\"");
  CHECK_THROWS_WITH_AS(ingest_text(wrong_values, raw_export(','), out),
                       doctest::Contains("key 'charging.values': no row's 'state' (charging.column) is one of 'Charging'; the "
                                         "values seen are 'CHARGING' (14 rows), 'DRIVING' (2 rows)"),
                       std::invalid_argument);
  // The spec as written is fine.
  CHECK_NOTHROW(ingest_text(kSpec, raw_export(','), out));

  // A near miss of a dyad name is a typo; a name of one's own is kept.
  auto spec_with = [](const std::string& name) {
    return nlohmann::json::parse(R"({"columns": {"car": "VIN", "timestamp": "time", "current": "a", ")" + name +
                                 R"(": "x"}, "charging": {"column": "s", "values": ["C"]}})");
  };
  for (const auto& [typo, meant] : std::vector<std::pair<std::string, std::string>>{{"Volt", "volt"},
                                                                                    {"max_tmp", "max_temp"},
                                                                                    {"lable", "label"},
                                                                                    {"Timestamp", "timestamp"},
                                                                                    {"min_single_vol", "min_single_volt"}}) {
    CAPTURE(typo);
    CHECK_THROWS_WITH_AS(spec_from_json(spec_with(typo), "spec.json"),
                         doctest::Contains(
                             ("spec.json: key 'columns." + typo + "': is not a dyad name; did you mean '" + meant + "'?").c_str()),
                         std::invalid_argument);
  }
  for (const std::string own : {"cell_delta", "coolant_flow", "cars", "soh"}) {
    CAPTURE(own);
    CHECK(spec_from_json(spec_with(own), "spec.json").signal_index(own) >= 0);
  }
}
