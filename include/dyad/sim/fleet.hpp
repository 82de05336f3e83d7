// A simulated EV fleet: cars with their own climate, charging habits, ageing and, for some, a
// fault; each car's successive charging sessions become segments, streamed to a callback, a
// Dataset or a long CSV. A car depends only on (seed, index, its fault), so cars can be made in
// any order or in parallel and the fleet is the same. Physics and ranges: docs/simulator.md.
//
//   fleet_cars(cfg)                 every car; exactly cfg.faulty of them faulty (chosen from the seed)
//   make_car(cfg, index, fault)     one car, e.g. a healthy twin of a faulty car (same index)
//   simulate_car(cfg, car, cb)      cb(const SegmentMeta&, std::span<const float>) per segment,
//                                   values row-major [cfg.steps x 7] in signal_columns() order
//   simulate_fleet(cfg, cb)         simulate_car over fleet_cars(cfg), car by car
//   simulate_dataset(cfg)           the fleet in memory
//   write_fleet_csv(cfg, os)        long CSV, streamed in constant memory
#pragma once

#include "dyad/core/random.hpp"
#include "dyad/data/dataset.hpp"
#include "dyad/sim/faults.hpp"
#include "dyad/sim/pack.hpp"
#include "dyad/sim/sensors.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numbers>
#include <optional>
#include <ostream>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace dyad::sim {

struct FleetConfig {
  std::size_t cars = 100;
  std::size_t faulty = 10;             // exactly this many cars carry a fault
  std::size_t segments_per_car = 100;  // successive charging sessions per car
  std::size_t steps = 128;             // time steps per segment
  double dt_s = 10.0;
  std::uint64_t seed = 1;
  std::size_t cells = 96;  // in series
  // When set, every fault starts on this day, counted from the car's first session (else each
  // onset is drawn within the first 30 days). The other draws are the same either way.
  std::optional<double> fault_onset_day;
};

// Who a car is. Everything here is drawn from the car's own stream; edit fault_spec (e.g. a
// twin at full severity) before simulate_car to study one fault.
struct CarInfo {
  std::string id;  // "car0007"
  std::size_t index = 0;
  int label = 0;  // 1 iff fault != none, on every segment of the car
  Fault fault = Fault::none;
  FaultSpec fault_spec;
  std::uint64_t seed = 0;  // the car's stream, from (config seed, index)
  // Climate: ambient = mean + seasonal cosine (peak late July) + daily cosine (peak 15:00) + weather.
  double ambient_mean_c = 15, seasonal_amp_c = 10, daily_amp_c = 4;
  // Habits: share of DC fast sessions, usual plug-in SOC, home AC charger current, driving per day.
  double fast_fraction = 0.2, start_soc_mean = 0.4, ac_current_a = 16, daily_km = 60;
  // Ageing: odometer at the first session; capacity fade and resistance growth per 100,000 km.
  double initial_mileage_km = 0, fade_per_100k_km = 0.07, resistance_growth_per_100k_km = 0.2;
  double first_timestamp_s = 0;  // Unix time of the first session
};

namespace detail {

inline constexpr double kCellAh = 120.0, kCellR0 = 0.7e-3, kCellR1 = 0.35e-3, kRangeKm = 280.0;
inline constexpr double kEpoch = 1609459200.0;  // 2021-01-01 00:00 UTC
// Sub-streams of a car's seed; session k uses kSession + 2k (physics) and kSession + 2k + 1 (glitches).
enum Stream : std::uint64_t { kProfile, kFaultSpec, kFaultType, kBuild, kFaultyKey, kSession = 16 };

// splitmix64 finaliser of a combination: independent streams from (seed, index).
inline std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  std::uint64_t x = a ^ (b * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull);
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

inline void validate(const FleetConfig& c) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("dyad::sim::FleetConfig: " + what); };
  if (c.faulty > c.cars) fail("faulty (" + std::to_string(c.faulty) + ") exceeds cars (" + std::to_string(c.cars) + ")");
  if (c.steps == 0) fail("steps must be positive");
  if (c.cells < 2) fail("cells must be at least 2");
  if (!(c.dt_s > 0) || !std::isfinite(c.dt_s)) fail("dt_s must be positive");
}

// The BMS's charge-rate limit (C-rate) vs temperature: against lithium plating in the cold and
// accelerated ageing when hot.
inline double max_c_rate(double temp_c) {
  return std::clamp(0.1 + 0.055 * temp_c, 0.05, 1.5) * std::clamp((55.0 - temp_c) / 10.0, 0.1, 1.0);
}

inline double ambient_c(const CarInfo& car, double timestamp_s) {
  const double day = (timestamp_s - kEpoch) / 86400.0, hour = std::fmod(timestamp_s, 86400.0) / 3600.0;
  return car.ambient_mean_c + car.seasonal_amp_c * std::cos(2 * std::numbers::pi * (day - 200.0) / 365.25) +
         car.daily_amp_c * std::cos(2 * std::numbers::pi * (hour - 15.0) / 24.0);
}

// A car's pack as built (cell-to-cell spread, thermal and sensor details) and its aged state.
struct CarBuild {
  Eigen::ArrayXd cap_z, r_z, age_z, offset;  // per-cell deviations
  double cap_sd = 0, r_sd = 0;
  PackParams shared;  // the parameters that are not per cell
  SensorCalibration cal;

  CarBuild(const CarInfo& car, std::size_t cells) {
    Rng rng(mix(car.seed, kBuild));
    const auto n = static_cast<Eigen::Index>(cells);
    auto z = [&] { return std::clamp(rng.normal(), -3.0, 3.0); };
    cap_z = Eigen::ArrayXd::NullaryExpr(n, z);
    r_z = Eigen::ArrayXd::NullaryExpr(n, z);
    age_z = Eigen::ArrayXd::NullaryExpr(n, z);
    offset = rng.uniform(0.001, 0.004) * Eigen::ArrayXd::NullaryExpr(n, z);
    cap_sd = rng.uniform(0.003, 0.006);
    r_sd = rng.uniform(0.025, 0.045);
    shared.balance_soc = rng.uniform(0.45, 0.65);
    shared.bus_ohm = rng.uniform(4e-3, 7e-3);
    shared.passive_w_per_k = rng.uniform(8.0, 15.0);
    shared.active_w_per_k = rng.uniform(250.0, 350.0);
    shared.cooling_on_c = rng.uniform(28.0, 32.0);
    shared.coolant_c = rng.uniform(20.0, 24.0);
    shared.probe_hot_c = rng.uniform(0.3, 1.5);
    shared.probe_cold_c = rng.uniform(0.3, 1.5);
    shared.probe_c_per_kw = rng.uniform(0.5, 1.0);
    cal.current_gain = 1.0 + 0.003 * z();
    cal.current_offset_a = 0.05 * z();
    cal.soc_bias = 0.01 * z();
  }

  // Cells that age faster (age_z > 0) lose capacity and gain resistance faster, so the spread
  // widens with mileage.
  PackParams at(const CarInfo& car, double mileage_km) const {
    const double age = mileage_km / 1e5;
    PackParams p = shared;
    const Eigen::ArrayXd wear = age * (1.0 + 0.1 * age_z);
    p.capacity_ah = kCellAh * (1.0 + cap_sd * cap_z) * (1.0 - car.fade_per_100k_km * wear);
    p.r0_ohm = kCellR0 * (1.0 + r_sd * r_z) * (1.0 + car.resistance_growth_per_100k_km * wear);
    p.r1_share = p.r0_ohm / p.r0_ohm.mean();
    p.r1_ohm = kCellR1 * (1.0 + car.resistance_growth_per_100k_km * age);
    p.soc_offset = offset;
    p.leak_a = Eigen::ArrayXd::Zero(offset.size());
    return p;
  }
};

}  // namespace detail

// Car `index` of the fleet with the given fault (parameters from the car's own fault stream,
// so the car with Fault::none is its healthy twin).
inline CarInfo make_car(const FleetConfig& cfg, std::size_t index, Fault fault = Fault::none) {
  detail::validate(cfg);
  CarInfo c;
  char id[32];
  std::snprintf(id, sizeof id, "car%04zu", index);
  c.id = id;
  c.index = index;
  c.seed = detail::mix(cfg.seed, index);
  Rng rng(detail::mix(c.seed, detail::kProfile));
  c.ambient_mean_c = rng.uniform(0.0, 22.0);
  c.seasonal_amp_c = rng.uniform(4.0, 12.0);
  c.daily_amp_c = rng.uniform(2.0, 5.0);
  // About one car in five is a ride-hailing or fleet car that mostly fast-charges.
  c.fast_fraction = rng.uniform() < 0.2 ? rng.uniform(0.5, 0.9) : rng.uniform(0.0, 0.35);
  c.start_soc_mean = rng.uniform(0.2, 0.6);
  c.ac_current_a = rng.uniform(10.0, 30.0);
  c.daily_km = rng.uniform(25.0, 250.0);
  c.initial_mileage_km = std::round(rng.uniform(500.0, 120000.0));
  c.fade_per_100k_km = rng.uniform(0.04, 0.10);
  c.resistance_growth_per_100k_km = rng.uniform(0.10, 0.35);
  c.first_timestamp_s = detail::kEpoch + std::round(rng.uniform(0.0, 365.0 * 86400.0));
  Rng fault_rng(detail::mix(c.seed, detail::kFaultSpec));
  c.fault = fault;
  c.fault_spec = draw_fault(fault, fault_rng, cfg.cells);
  if (cfg.fault_onset_day) c.fault_spec.onset_days = *cfg.fault_onset_day;
  c.label = fault == Fault::none ? 0 : 1;
  return c;
}

// Every car of the fleet. The faulty ones are the cfg.faulty cars with the smallest keys drawn
// from their own streams, so the choice depends on the seed and the fleet size only.
inline std::vector<CarInfo> fleet_cars(const FleetConfig& cfg) {
  detail::validate(cfg);
  std::vector<std::pair<std::uint64_t, std::size_t>> keys(cfg.cars);
  for (std::size_t i = 0; i < cfg.cars; ++i) keys[i] = {detail::mix(detail::mix(cfg.seed, i), detail::kFaultyKey), i};
  std::partial_sort(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(cfg.faulty), keys.end());
  std::vector<bool> faulty(cfg.cars, false);
  for (std::size_t k = 0; k < cfg.faulty; ++k) faulty[keys[k].second] = true;
  std::vector<CarInfo> cars;
  cars.reserve(cfg.cars);
  for (std::size_t i = 0; i < cfg.cars; ++i) {
    Rng type_rng(detail::mix(detail::mix(cfg.seed, i), detail::kFaultType));
    cars.push_back(make_car(cfg, i, faulty[i] ? draw_fault_type(type_rng) : Fault::none));
  }
  return cars;
}

// The segments of one car, in session order. Each session: the driver plugs in at some SOC
// after driving (mileage and time advance), a slow AC or fast DC charger offers a current, the
// BMS limits it (temperature C-rate limit, CV at the cell voltage limit) and the charger stops
// at the driver's target SOC or when the CV current has tapered off. The segment is a window of
// cfg.steps steps starting at plug-in (35 %) or later in the session (the time before it is
// simulated in at most 24 coarse steps).
template <class F>
void simulate_car(const FleetConfig& cfg, const CarInfo& car, F&& callback) {
  detail::validate(cfg);
  const detail::CarBuild build(car, cfg.cells);
  std::vector<float> values(cfg.steps * col::count);
  SegmentMeta meta;
  meta.car = car.id;
  meta.label = car.label;
  if (car.fault_spec.cell >= cfg.cells)
    throw std::invalid_argument("dyad::sim::simulate_car: " + car.id + "'s fault is on cell " +
                                std::to_string(car.fault_spec.cell) + " of a " + std::to_string(cfg.cells) + "-cell pack");
  double session_ts = car.first_timestamp_s, previous_end = 0, previous_target = 0.9, km = car.initial_mileage_km;
  for (std::size_t k = 0; k < cfg.segments_per_car; ++k) {
    Rng rng(detail::mix(car.seed, detail::kSession + 2 * k));
    Rng glitch_rng(detail::mix(car.seed, detail::kSession + 2 * k + 1));
    const bool fast = rng.uniform() < car.fast_fraction;
    const double charger_a = fast ? rng.uniform(50.0, 150.0) : car.ac_current_a * rng.uniform(0.97, 1.03);
    const double target = fast ? rng.uniform(0.8, 0.97) : rng.uniform() < 0.6 ? 1.0 : rng.uniform(0.85, 1.0);
    const double start_soc = std::clamp(rng.normal(car.start_soc_mean, 0.12), 0.1, target - 0.1);
    if (k > 0) {  // unplug, then drive from the last session's target down to this plug-in SOC
      const double range_km = detail::kRangeKm * (1.0 - car.fade_per_100k_km * km / 1e5);
      const double driven = range_km * std::max(0.05, previous_target - start_soc + rng.normal(0.0, 0.02));
      km += driven;
      session_ts = previous_end + std::round(std::max(3600.0, driven / car.daily_km * 86400.0 * rng.uniform(0.6, 1.4)));
    }
    previous_target = target;
    const double ambient = detail::ambient_c(car, session_ts) + rng.normal(0.0, 2.0);
    const double start_temp = ambient + rng.uniform(0.0, 8.0);  // still warm from driving

    PackParams params = build.at(car, km);
    const double q = params.capacity_ah.mean();
    const double cc_s = (target - start_soc) * q * 3600.0 / std::min(charger_a, detail::max_c_rate(start_temp) * q);
    const double tau_max = std::max(0.0, cc_s - 0.5 * static_cast<double>(cfg.steps) * cfg.dt_s);
    const double tau = rng.uniform() < 0.35 ? 0.0 : std::round(rng.uniform(0.0, tau_max));
    const double window_ts = session_ts + tau;
    previous_end = session_ts + std::round(std::max(cc_s, tau + static_cast<double>(cfg.steps) * cfg.dt_s));
    const double progress = car.fault_spec.progress((window_ts - car.first_timestamp_s) / 86400.0);
    apply_fault(car.fault_spec, progress, params);
    Pack pack(std::move(params), start_soc, start_temp);

    const double ramp_s = fast ? 60.0 : 30.0, cutoff_a = 0.025 * q;
    double elapsed = 0;
    bool done = false;
    auto advance = [&](double dt) {
      const double offered =
          done ? 0.0 : std::min(charger_a * std::min(1.0, (elapsed + dt) / ramp_s), detail::max_c_rate(pack.temperature()) * q);
      const PackReading r = pack.step(offered, dt, ambient);
      elapsed += dt;
      if (r.soc >= target || (r.current_a < cutoff_a && r.current_a < 0.99 * offered)) done = true;
      return r;
    };
    const int coarse = static_cast<int>(std::min(24.0, std::ceil(tau / cfg.dt_s)));
    for (int i = 0; i < coarse; ++i) advance(tau / coarse);
    for (std::size_t t = 0; t < cfg.steps; ++t)
      measure(advance(cfg.dt_s), build.cal, rng, std::span<float>(values.data() + t * col::count, col::count));
    apply_sensor_fault(car.fault_spec, progress, glitch_rng, values);

    meta.segment = static_cast<std::int64_t>(k);
    meta.mileage = std::round(km * 10.0) / 10.0;
    meta.timestamp = window_ts;
    callback(std::as_const(meta), std::span<const float>(values));
  }
}

template <class F>
void simulate_fleet(const FleetConfig& cfg, F&& callback) {
  for (const CarInfo& car : fleet_cars(cfg)) simulate_car(cfg, car, callback);
}

inline Dataset simulate_dataset(const FleetConfig& cfg) {
  Dataset data(signal_columns());
  data.reserve(cfg.cars * cfg.segments_per_car, cfg.steps);
  simulate_fleet(cfg, [&](const SegmentMeta& meta, std::span<const float> v) { data.add(meta, v); });
  return data;
}

// Long CSV (dyad-method §1): car,segment,t,label,mileage,timestamp,<signal_columns()>; t is the
// step index, timestamp the Unix time of the step. One segment is buffered at a time.
inline void write_fleet_csv(const FleetConfig& cfg, std::ostream& os) {
  os << "car,segment,t,label,mileage,timestamp";
  for (const auto& c : signal_columns()) os << ',' << c;
  os << '\n';
  std::string buf;
  char num[64];
  auto put = [&](auto x) { buf.append(num, std::to_chars(num, num + sizeof num, x).ptr); };
  simulate_fleet(cfg, [&](const SegmentMeta& m, std::span<const float> v) {
    buf.clear();
    for (std::size_t t = 0; t < cfg.steps; ++t) {
      buf += m.car;
      buf += ',';
      put(m.segment);
      buf += ',';
      put(t);
      buf += ',';
      put(m.label);
      buf += ',';
      put(m.mileage);
      buf += ',';
      put(m.timestamp + static_cast<double>(t) * cfg.dt_s);
      for (std::size_t c = 0; c < col::count; ++c) {
        buf += ',';
        put(v[t * col::count + c]);
      }
      buf += '\n';
    }
    os.write(buf.data(), static_cast<std::streamsize>(buf.size()));
  });
  if (!os) throw std::runtime_error("dyad::sim::write_fleet_csv: writing the CSV stream failed");
}

// The fleet's faults, one row per car: car,label,fault,magnitude,onset_days,growth_days,cell,
// channel (the sensor fault's column; empty for the other kinds). The ground truth that the
// explanations of a verdict are checked against.
inline void write_fault_table(const FleetConfig& cfg, std::ostream& os) {
  os << "car,label,fault,magnitude,onset_days,growth_days,cell,channel\n";
  for (const CarInfo& c : fleet_cars(cfg)) {
    const FaultSpec& f = c.fault_spec;
    os << c.id << ',' << c.label << ',' << fault_name(c.fault);
    if (c.fault == Fault::none) {
      os << ",,,,,\n";
      continue;
    }
    os << ',' << f.magnitude << ',' << f.onset_days << ',' << f.growth_days << ',' << f.cell << ','
       << (c.fault == Fault::sensor ? signal_columns()[f.channel] : std::string()) << '\n';
  }
  if (!os) throw std::runtime_error("dyad::sim::write_fault_table: writing failed");
}

}  // namespace dyad::sim
