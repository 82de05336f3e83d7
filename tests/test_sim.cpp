#include <dyad/sim/fleet.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace dyad::sim;
namespace c = dyad::sim::col;

namespace {

struct Segment {
  dyad::SegmentMeta meta;
  std::vector<float> v;  // [steps x 7]
  float at(std::size_t t, std::size_t column) const { return v[t * c::count + column]; }
  std::size_t steps() const { return v.size() / c::count; }
};

std::vector<Segment> run_car(const FleetConfig& cfg, const CarInfo& car) {
  std::vector<Segment> out;
  simulate_car(cfg, car, [&](const dyad::SegmentMeta& m, std::span<const float> v) {
    out.push_back({m, std::vector<float>(v.begin(), v.end())});
  });
  return out;
}

bool same_values(const Segment& a, const Segment& b) {
  return a.v.size() == b.v.size() && std::memcmp(a.v.data(), b.v.data(), a.v.size() * sizeof(float)) == 0;
}

// A pack of identical cells, for checks against closed-form expectations.
PackParams uniform_pack(std::size_t cells) {
  const auto n = static_cast<Eigen::Index>(cells);
  PackParams p;
  p.capacity_ah = Eigen::ArrayXd::Constant(n, 120.0);
  p.r0_ohm = Eigen::ArrayXd::Constant(n, 0.7e-3);
  p.r1_share = Eigen::ArrayXd::Ones(n);
  p.soc_offset = Eigen::ArrayXd::Zero(n);
  p.leak_a = Eigen::ArrayXd::Zero(n);
  return p;
}

// Mean of f(segment, t) over the steps where keep(segment, t) holds, for segments after `day`.
template <class Keep, class F>
double mean_over(const std::vector<Segment>& segs, double first_ts, double day, Keep keep, F f) {
  double sum = 0;
  std::size_t n = 0;
  for (const auto& s : segs) {
    if ((s.meta.timestamp - first_ts) / 86400.0 < day) continue;
    for (std::size_t t = 0; t < s.steps(); ++t)
      if (keep(s, t)) sum += f(s, t), ++n;
  }
  REQUIRE(n > 0);
  return sum / static_cast<double>(n);
}

double spread(const Segment& s, std::size_t t) { return s.at(t, c::max_single_volt) - s.at(t, c::min_single_volt); }

// Fastest rise of max_temp over 5 minutes while charging above 40 A, degC per minute.
double max_temp_rate(const std::vector<Segment>& segs, double dt_s) {
  const auto w = static_cast<std::size_t>(300.0 / dt_s);
  double best = 0;
  for (const auto& s : segs)
    for (std::size_t t = w; t < s.steps(); ++t)
      if (s.at(t - w, c::current) > 40 && s.at(t, c::current) > 40)
        best = std::max(best, (s.at(t, c::max_temp) - s.at(t - w, c::max_temp)) / 5.0);
  return best;
}

}  // namespace

TEST_CASE("sim: OCV curve spans 3.0-4.2 V, rises everywhere, same for scalars and arrays") {
  CHECK(ocv(0.0) == doctest::Approx(3.0).epsilon(1e-12));
  CHECK(ocv(1.0) == doctest::Approx(4.2).epsilon(1e-3));
  CHECK(ocv(0.5) == doctest::Approx(3.75).epsilon(0.01));  // flat NMC middle
  for (double s = 0; s < 1.0; s += 0.01) CHECK(ocv(s + 0.01) > ocv(s));
  const Eigen::ArrayXf s = Eigen::ArrayXf::LinSpaced(11, 0.0f, 1.0f);
  const Eigen::ArrayXf v = ocv(s);
  for (Eigen::Index i = 0; i < s.size(); ++i) CHECK(v[i] == doctest::Approx(ocv(double(s[i]))).epsilon(1e-6));
}

TEST_CASE("sim: pack charges CC, then CV at the cell limit with a tapering current") {
  const std::size_t cells = 96;
  Pack pack(uniform_pack(cells), 0.7, 25.0);
  std::vector<PackReading> r;
  for (int k = 0; k < 300; ++k) r.push_back(pack.step(120.0, 10.0, 25.0));
  CHECK(r[0].current_a == doctest::Approx(120.0));  // CC
  CHECK(r[10].current_a == doctest::Approx(120.0));
  std::size_t cv = 0;
  while (cv < r.size() && r[cv].current_a > 119.99) ++cv;
  REQUIRE(cv > 10);
  REQUIRE(cv < 200);
  for (std::size_t k = 0; k < r.size(); ++k) {
    CHECK(r[k].max_cell_v <= 4.2 + 1e-4);
    // identical cells: the pack is the sum of cells plus the busbar drop
    CHECK(r[k].pack_v == doctest::Approx(cells * r[k].max_cell_v + r[k].current_a * 5e-3).epsilon(1e-5));
    if (k > 0) CHECK(r[k].soc > r[k - 1].soc);
    if (k > cv) {
      CHECK(r[k].current_a <= r[k - 1].current_a + 1e-6);  // taper
      CHECK(r[k].max_cell_v == doctest::Approx(4.2).epsilon(1e-4));
    }
  }
  CHECK(r.back().current_a < 0.3 * 120.0);
  CHECK(r.back().soc < 1.0);
  CHECK(pack.temperature() > 25.5);  // I^2 R heating beats passive cooling
}

TEST_CASE("sim: a resting pack relaxes to OCV and ambient temperature") {
  Pack pack(uniform_pack(8), 0.5, 35.0);
  PackReading r;
  for (int k = 0; k < 6000; ++k) r = pack.step(0.0, 60.0, 10.0);  // 100 h, 12 thermal time constants
  CHECK(r.current_a == 0.0);
  CHECK(r.max_cell_v == doctest::Approx(ocv(0.5)).epsilon(1e-5));
  CHECK(pack.temperature() == doctest::Approx(10.0).epsilon(0.01));
}

TEST_CASE("sim: fleet_cars labels per car, exactly cfg.faulty faulty cars, ids like car0007") {
  FleetConfig cfg;
  cfg.cars = 60;
  cfg.faulty = 9;
  const auto cars = fleet_cars(cfg);
  REQUIRE(cars.size() == 60);
  CHECK(cars[7].id == "car0007");
  std::size_t faulty = 0;
  std::set<Fault> types;
  for (const auto& car : cars) {
    CHECK(car.label == (car.fault == Fault::none ? 0 : 1));
    CHECK(car.fault_spec.type == car.fault);
    faulty += static_cast<std::size_t>(car.label);
    types.insert(car.fault);
  }
  CHECK(faulty == 9);
  CHECK(types.size() >= 3);  // a mix of fault types

  cfg.seed = 2;
  const auto other = fleet_cars(cfg);
  bool differs = false;
  for (std::size_t i = 0; i < cars.size(); ++i) differs |= cars[i].label != other[i].label;
  CHECK(differs);  // which cars are faulty comes from the seed

  cfg.faulty = 61;
  CHECK_THROWS_AS(fleet_cars(cfg), std::invalid_argument);
}

TEST_CASE("sim: same seed gives the same bytes, another seed differs; CSV layout") {
  FleetConfig cfg;
  cfg.cars = 4;
  cfg.faulty = 2;
  cfg.segments_per_car = 3;
  cfg.steps = 32;
  std::ostringstream a, b, d;
  write_fleet_csv(cfg, a);
  write_fleet_csv(cfg, b);
  CHECK(a.str() == b.str());
  cfg.seed = 99;
  write_fleet_csv(cfg, d);
  CHECK(a.str() != d.str());

  std::istringstream in(a.str());
  std::string line;
  std::getline(in, line);
  CHECK(line == "car,segment,t,label,mileage,timestamp,volt,current,soc,max_single_volt,min_single_volt,max_temp,min_temp");
  std::size_t rows = 0, labelled = 0;
  while (std::getline(in, line)) {
    ++rows;
    std::vector<std::string> fields;
    std::istringstream row(line);
    for (std::string f; std::getline(row, f, ',');) fields.push_back(f);
    REQUIRE(fields.size() == 13);
    CHECK(fields[0].rfind("car", 0) == 0);
    labelled += fields[3] == "1";
  }
  CHECK(rows == 4 * 3 * 32);
  CHECK(labelled == 2 * 3 * 32);  // every row of the two faulty cars
}

TEST_CASE("sim: a car's stream depends only on (seed, index, fault), not on the fleet") {
  FleetConfig small, large;
  small.cars = 3, small.faulty = 0, small.segments_per_car = 4, small.steps = 64;
  large = small;
  large.cars = 9;
  large.segments_per_car = 8;
  std::vector<Segment> from_small, from_large;
  simulate_fleet(small, [&](const dyad::SegmentMeta& m, std::span<const float> v) {
    if (m.car == "car0002") from_small.push_back({m, {v.begin(), v.end()}});
  });
  simulate_fleet(large, [&](const dyad::SegmentMeta& m, std::span<const float> v) {
    if (m.car == "car0002") from_large.push_back({m, {v.begin(), v.end()}});
  });
  REQUIRE(from_small.size() == 4);
  REQUIRE(from_large.size() == 8);
  for (std::size_t k = 0; k < 4; ++k) {  // also: more sessions per car keep the first ones
    CHECK(same_values(from_small[k], from_large[k]));
    CHECK(from_small[k].meta.timestamp == from_large[k].meta.timestamp);
    CHECK(from_small[k].meta.mileage == from_large[k].meta.mileage);
  }
  // Generated alone (e.g. in parallel), a fleet's car is the same as within the fleet.
  large.faulty = 3;
  for (const auto& car : fleet_cars(large)) {
    const auto alone = run_car(small, make_car(small, car.index, car.fault));
    const auto within = run_car(small, car);
    for (std::size_t k = 0; k < alone.size(); ++k) CHECK(same_values(alone[k], within[k]));
  }
}

TEST_CASE("sim: healthy cars are physically sane") {
  FleetConfig cfg;
  cfg.cars = 16;
  cfg.faulty = 0;
  cfg.segments_per_car = 20;
  std::size_t cv_taper_segments = 0, segments = 0;
  std::string last_car;
  double last_ts = 0, last_km = 0;
  simulate_fleet(cfg, [&](const dyad::SegmentMeta& m, std::span<const float> v) {
    ++segments;
    CHECK(m.label == 0);
    CHECK(v.size() == cfg.steps * c::count);
    if (m.car == last_car) {
      CHECK(m.timestamp >= last_ts + cfg.steps * cfg.dt_s);  // sessions do not overlap
      CHECK(m.mileage > last_km);
    }
    last_car = m.car, last_ts = m.timestamp, last_km = m.mileage;
    float peak = 0;
    bool tapered = false;
    for (std::size_t t = 0; t < cfg.steps; ++t) {
      const float* r = &v[t * c::count];
      CHECK(r[c::min_single_volt] >= 2.5f);
      CHECK(r[c::max_single_volt] <= 4.3f);
      CHECK(r[c::max_single_volt] >= r[c::min_single_volt]);
      CHECK(r[c::max_single_volt] - r[c::min_single_volt] < 0.1f);
      // pack = cells x mean cell + busbar drop; the mean lies between the extremes
      CHECK(r[c::volt] >= 96 * r[c::min_single_volt] - 1.0f);  // 1 V: noise of 97 readings
      CHECK(r[c::volt] <= 96 * r[c::max_single_volt] + r[c::current] * 0.008f + 1.0f);
      CHECK(r[c::soc] >= 0.0f);
      CHECK(r[c::soc] <= 100.0f);
      CHECK(r[c::current] > -1.0f);  // sensor offset and noise at rest
      CHECK(r[c::current] <= 152.0f);
      CHECK(r[c::max_temp] >= r[c::min_temp]);
      CHECK(r[c::min_temp] > -30.0f);
      CHECK(r[c::max_temp] < 55.0f);
      if (t > 0) CHECK(r[c::soc] >= v[(t - 1) * c::count + c::soc]);  // charging only adds charge
      peak = std::max(peak, r[c::current]);
      tapered |= peak > 40.0f && r[c::current] < 0.8f * peak && r[c::current] > 1.0f && r[c::max_single_volt] > 4.19f;
    }
    cv_taper_segments += tapered;
  });
  CHECK(segments == 16 * 20);
  CHECK(cv_taper_segments >= 1);  // fast CC into CV is visible in the fleet
}

TEST_CASE("sim: every fault shows its signature against a healthy twin") {
  FleetConfig cfg;
  cfg.segments_per_car = 60;
  const double late = 25.0;  // days: the fault has fully developed (onset 5 + growth 14)
  auto pair = [&](std::size_t index, Fault f, double magnitude, double fast_fraction) {
    CarInfo twin = make_car(cfg, index, Fault::none), sick = make_car(cfg, index, f);
    twin.fast_fraction = sick.fast_fraction = fast_fraction;
    twin.daily_km = sick.daily_km = 100;  // about a session a day: 60 sessions span two months
    sick.fault_spec.magnitude = magnitude;
    sick.fault_spec.onset_days = 5;
    sick.fault_spec.growth_days = 14;
    return std::pair{run_car(cfg, twin), run_car(cfg, sick)};
  };
  auto any = [](const Segment&, std::size_t) { return true; };
  auto charging = [](const Segment& s, std::size_t t) { return s.at(t, c::current) > 1.0f; };

  SUBCASE("internal short: a cell lags, the spread grows; nothing before onset") {
    const auto [twin, sick] = pair(3, Fault::internal_short, 0.08, 0.2);
    const double first = make_car(cfg, 3).first_timestamp_s;
    const double extra = mean_over(sick, first, late, any, spread) - mean_over(twin, first, late, any, spread);
    CHECK(extra > 0.03);
    CHECK(extra < 0.15);
    for (std::size_t k = 0; k < sick.size(); ++k)
      if ((sick[k].meta.timestamp - first) / 86400.0 < 5.0) CHECK(same_values(sick[k], twin[k]));
    CHECK(!same_values(sick.back(), twin.back()));
  }
  SUBCASE("high resistance: the max cell pulls away at high current, much less at low") {
    const auto [twin, sick] = pair(4, Fault::high_resistance, 1.8, 0.6);
    const double first = make_car(cfg, 4).first_timestamp_s;
    auto high = [](const Segment& s, std::size_t t) { return s.at(t, c::current) > 60.0f; };
    auto low = [](const Segment& s, std::size_t t) { return s.at(t, c::current) > 1.0f && s.at(t, c::current) < 20.0f; };
    const double at_high = mean_over(sick, first, late, high, spread) - mean_over(twin, first, late, high, spread);
    const double at_low = mean_over(sick, first, late, low, spread) - mean_over(twin, first, late, low, spread);
    CHECK(at_high > 0.03);
    CHECK(at_low < 0.5 * at_high);
  }
  SUBCASE("weak cell: spread grows toward full charge") {
    const auto [twin, sick] = pair(5, Fault::weak_cell, 0.15, 0.3);
    const double first = make_car(cfg, 5).first_timestamp_s;
    auto full = [](const Segment& s, std::size_t t) { return s.at(t, c::soc) > 85.0f && s.at(t, c::current) > 1.0f; };
    auto mid = [](const Segment& s, std::size_t t) { return s.at(t, c::soc) > 45.0f && s.at(t, c::soc) < 60.0f; };
    const double near_full = mean_over(sick, first, late, full, spread) - mean_over(twin, first, late, full, spread);
    const double middle = mean_over(sick, first, late, mid, spread) - mean_over(twin, first, late, mid, spread);
    CHECK(near_full > 0.02);
    CHECK(near_full > middle + 0.015);
  }
  SUBCASE("cooling: temperature rises far faster than the twin's under fast charging") {
    const auto [twin, sick] = pair(6, Fault::cooling, 5e-3, 0.9);
    const double sick_rate = max_temp_rate(sick, cfg.dt_s), twin_rate = max_temp_rate(twin, cfg.dt_s);
    CHECK(sick_rate > 1.0);
    CHECK(sick_rate > twin_rate + 0.5);
    CHECK(twin_rate < 1.0);
    const double first = make_car(cfg, 6).first_timestamp_s;
    auto temp = [](const Segment& s, std::size_t t) { return double(s.at(t, c::max_temp)); };
    CHECK(mean_over(sick, first, late, charging, temp) > mean_over(twin, first, late, charging, temp));
  }
  SUBCASE("sensor: glitches on one channel only, the others match the twin") {
    const auto [twin, sick] = pair(7, Fault::sensor, 0.8, 0.3);
    const std::size_t channel = make_car(cfg, 7, Fault::sensor).fault_spec.channel;
    std::size_t glitched = 0;
    for (std::size_t k = 0; k < sick.size(); ++k) {
      bool differs = false;
      for (std::size_t t = 0; t < sick[k].steps(); ++t)
        for (std::size_t col = 0; col < c::count; ++col) {
          if (col != channel) CHECK(sick[k].at(t, col) == twin[k].at(t, col));
          else differs |= sick[k].at(t, col) != twin[k].at(t, col);
        }
      glitched += differs;
    }
    CHECK(glitched >= 15);  // ~0.8 of ~45 developed sessions
    CHECK(glitched < sick.size());
  }
}

TEST_CASE("sim: faults drawn for the fleet change the data once developed") {
  FleetConfig cfg;
  cfg.segments_per_car = 40;
  for (Fault f : {Fault::internal_short, Fault::high_resistance, Fault::weak_cell, Fault::cooling, Fault::sensor}) {
    CAPTURE(fault_name(f));
    const CarInfo sick = make_car(cfg, 11, f);
    CHECK(sick.fault_spec.onset_days <= 30.0);
    const auto a = run_car(cfg, sick), b = run_car(cfg, make_car(cfg, 11));
    std::size_t differing = 0;
    for (std::size_t k = 0; k < a.size(); ++k) differing += !same_values(a[k], b[k]);
    CHECK(differing > 0);
  }
}

TEST_CASE("sim: fault_onset_day starts every fault on that day; before it the car is its healthy twin") {
  FleetConfig cfg;
  cfg.segments_per_car = 40;
  cfg.fault_onset_day = 20.0;
  FleetConfig drawn = cfg;
  drawn.fault_onset_day.reset();
  const CarInfo sick = make_car(cfg, 11, Fault::internal_short), free = make_car(drawn, 11, Fault::internal_short);
  CHECK(sick.fault_spec.onset_days == 20.0);
  CHECK(sick.fault_spec.magnitude == free.fault_spec.magnitude);  // the other draws are unchanged
  CHECK(sick.fault_spec.cell == free.fault_spec.cell);
  const auto a = run_car(cfg, sick), b = run_car(cfg, make_car(cfg, 11));
  std::size_t before = 0, after = 0, differing_before = 0, differing_after = 0;
  const double t0 = sick.first_timestamp_s;
  for (std::size_t k = 0; k < a.size(); ++k) {
    const bool early = (a[k].meta.timestamp - t0) / 86400.0 < 20.0;
    (early ? before : after) += 1;
    (early ? differing_before : differing_after) += !same_values(a[k], b[k]);
  }
  CHECK(before > 0);
  CHECK(after > 0);
  CHECK(differing_before == 0);
  CHECK(differing_after > 0);
}

TEST_CASE("sim: write_fault_table lists every car's fault as fleet_cars draws it") {
  FleetConfig cfg;
  cfg.cars = 30;
  cfg.faulty = 6;
  std::ostringstream os;
  write_fault_table(cfg, os);
  std::istringstream in(os.str());
  std::string line;
  std::getline(in, line);
  CHECK(line == "car,label,fault,magnitude,onset_days,growth_days,cell,channel");
  const auto cars = fleet_cars(cfg);
  std::size_t rows = 0, faulty = 0;
  while (std::getline(in, line)) {
    const CarInfo& c = cars[rows++];
    CHECK(line.rfind(c.id + "," + std::to_string(c.label) + "," + std::string(fault_name(c.fault)), 0) == 0);
    faulty += c.label;
    if (c.fault == Fault::sensor) CHECK(line.substr(line.rfind(',') + 1) == signal_columns()[c.fault_spec.channel]);
    if (c.fault == Fault::none) CHECK(line.size() == c.id.size() + 12);  // car,0,none,,,,,
  }
  CHECK(rows == 30);
  CHECK(faulty == 6);
}

TEST_CASE("sim: simulate_dataset holds the fleet with its metadata") {
  FleetConfig cfg;
  cfg.cars = 5;
  cfg.faulty = 2;
  cfg.segments_per_car = 6;
  cfg.steps = 40;
  const dyad::Dataset data = simulate_dataset(cfg);
  CHECK(data.columns() == signal_columns());
  REQUIRE(data.size() == 30);
  const auto cars = fleet_cars(cfg);
  for (std::size_t i = 0; i < data.size(); ++i) {
    CHECK(data.length(i) == 40);
    CHECK(data.meta(i).car == cars[i / 6].id);
    CHECK(data.meta(i).segment == static_cast<std::int64_t>(i % 6));
    CHECK(data.meta(i).label == cars[i / 6].label);
    CHECK(std::isfinite(data.meta(i).mileage));
  }
}

TEST_CASE("sim: inconsistent pack parameters are rejected") {
  PackParams p = uniform_pack(4);
  p.r0_ohm = Eigen::ArrayXd::Constant(3, 1e-3);
  CHECK_THROWS_AS(Pack(p, 0.5, 20.0), std::invalid_argument);
  FleetConfig cfg;
  CarInfo car = make_car(cfg, 0, Fault::weak_cell);
  car.fault_spec.cell = cfg.cells;
  CHECK_THROWS_AS(simulate_car(cfg, car, [](const dyad::SegmentMeta&, std::span<const float>) {}), std::invalid_argument);
}
