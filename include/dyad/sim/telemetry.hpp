// A simulated raw telematics export: every sample of every car of a fleet, interleaved in time
// as a fleet platform exports them (driving, parked and charging; jittered clocks, dropped rows,
// empty cells), and the list of charging sessions it contains, the ground truth `dyad ingest`
// is checked against. The cars are fleet_cars(cfg.fleet): the segment simulator's habits,
// ageing, faults and labels. Timeline and physics: docs/simulator.md §9.
//
//   write_raw_telemetry(cfg, os)     the CSV, streamed in memory that does not grow with cfg.days;
//                                    returns the charging sessions written, in (car, time) order
//   telemetry_spec(cfg)              the ingest spec (JSON) that reads the export back
//   write_telemetry_labels(cfg, os)  car,label
//   write_charging_sessions(s, os)   car,label,first_s,last_s,rows,mileage_km
#pragma once

#include "dyad/core/random.hpp"
#include "dyad/core/text.hpp"
#include "dyad/sim/faults.hpp"
#include "dyad/sim/fleet.hpp"
#include "dyad/sim/pack.hpp"
#include "dyad/sim/sensors.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <ostream>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace dyad::sim {

enum class TimestampFormat {
  iso8601,   // 2021-01-01T00:00:10.250Z
  epoch_s,   // 1609459210.250
  epoch_ms,  // 1609459210250
};

// The export's column name for each of dyad's names.
struct TelemetryColumns {
  std::string car = "vin", timestamp = "time", volt = "pack_voltage", current = "pack_current", soc = "soc_pct",
              max_single_volt = "cell_v_max", min_single_volt = "cell_v_min", max_temp = "temp_max", min_temp = "temp_min",
              mileage = "odometer_km", state = "state";
};

struct TelemetryConfig {
  // cars, faulty, seed, cells; steps = the sensor-glitch window and the spec's length.
  // segments_per_car and dt_s are not used: the export runs for `days` every `interval_s`.
  FleetConfig fleet;
  double days = 7;                              // continuous days per car, from 2021-01-01 00:00 UTC (detail::kEpoch)
  double interval_s = 10;                       // nominal sampling period, 0.1 .. 600 s
  double jitter_s = 1;                          // each sample at nominal + U(-jitter, +jitter); below interval_s / 2
  double drop_rate = 0.01;                      // probability that a row is not written
  double empty_rate = 0.002;                    // probability that a signal cell (one of the 7 signals) is written empty
  bool current_negative_when_charging = false;  // the export's sign; dyad's own is charging-positive
  TimestampFormat timestamps = TimestampFormat::iso8601;
  char delimiter = ',';
  TelemetryColumns columns;
};

// One charging session as written: its rows are contiguous CHARGING rows of the car.
struct ChargingSession {
  std::string car;
  int label = 0;
  double first_s = 0, last_s = 0;  // epoch seconds of the first and last CHARGING row written
  std::size_t rows = 0;            // CHARGING rows written
  double mileage_km = 0;           // odometer at the first of them
};

// The `state` column.
enum class VehicleState : std::uint8_t { driving, parked, charging };
inline std::string_view state_name(VehicleState s) {
  return s == VehicleState::driving ? "DRIVING" : s == VehicleState::parked ? "PARKED" : "CHARGING";
}

namespace detail {

inline void validate(const TelemetryConfig& c) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("dyad::sim::TelemetryConfig: " + what); };
  validate(c.fleet);
  if (c.fleet.cars == 0) fail("fleet.cars must be positive");
  if (!(c.days > 0 && c.days <= 3660)) fail("days (" + text::rounded_text(c.days) + ") must be in (0, 3660]");
  if (!(c.interval_s >= 0.1 && c.interval_s <= 600))
    fail("interval_s (" + text::rounded_text(c.interval_s) + ") must be in [0.1, 600]");
  if (!(c.jitter_s >= 0 && c.jitter_s < c.interval_s / 2))
    fail("jitter_s (" + text::rounded_text(c.jitter_s) + ") must be at least 0 and below interval_s / 2 (" +
         text::rounded_text(c.interval_s / 2) + "), so that each car's samples stay in order");
  if (!(c.drop_rate >= 0 && c.drop_rate < 1)) fail("drop_rate (" + text::rounded_text(c.drop_rate) + ") must be in [0, 1)");
  if (!(c.empty_rate >= 0 && c.empty_rate <= 1)) fail("empty_rate (" + text::rounded_text(c.empty_rate) + ") must be in [0, 1]");
  if (c.timestamps != TimestampFormat::iso8601 && c.timestamps != TimestampFormat::epoch_s &&
      c.timestamps != TimestampFormat::epoch_ms)
    fail("timestamps is not a TimestampFormat");
  // Nothing is quoted, so the delimiter must not occur in any value (digits, '.', '-', ':', ids).
  const char d = c.delimiter;
  const bool printable_punct = d > ' ' && d < 0x7f && !std::isalnum(static_cast<unsigned char>(d));
  if (!(d == '\t' || (printable_punct && std::string_view(".-+:\"_").find(d) == std::string_view::npos)))
    fail("delimiter must be a tab or a punctuation character other than . - + : \" _");
  const TelemetryColumns& n = c.columns;
  const std::pair<const char*, const std::string*> names[] = {{"car", &n.car},
                                                              {"timestamp", &n.timestamp},
                                                              {"volt", &n.volt},
                                                              {"current", &n.current},
                                                              {"soc", &n.soc},
                                                              {"max_single_volt", &n.max_single_volt},
                                                              {"min_single_volt", &n.min_single_volt},
                                                              {"max_temp", &n.max_temp},
                                                              {"min_temp", &n.min_temp},
                                                              {"mileage", &n.mileage},
                                                              {"state", &n.state}};
  for (std::size_t i = 0; i < std::size(names); ++i) {
    const std::string& s = *names[i].second;
    const std::string field = std::string("columns.") + names[i].first;
    if (s.empty()) fail(field + " must not be empty");
    if (s.find_first_of(std::string{d, '"', '\n', '\r'}) != std::string::npos)
      fail(field + " ('" + s + "') must not contain the delimiter, a quote or a line break");
    for (std::size_t j = 0; j < i; ++j)
      if (*names[j].second == s) fail(field + " ('" + s + "') is also columns." + names[j].first + "; column names must differ");
  }
}

// Streams of a car's seed used only here, far from fleet.hpp's session streams.
enum TelemetryStream : std::uint64_t {
  kTelemetryPlan = 1ull << 40,
  kTelemetryDrive,
  kTelemetryNoise,
  kTelemetryClock,
  kTelemetryExport,
  kTelemetryGlitch,
  kTelemetryWeather,
  kTelemetryFaultAge
};

// The pack off the charger: driving (a signed current, no CV rule) or parked at rest, with the
// cells, resistances and thermal model of Pack (pack.hpp), which takes over while the charger
// delivers. At rest only the RC voltage relaxes, so the per-cell work stops once it has gone.
class RoadPack {
 public:
  RoadPack(double soc, double temp_c) : soc_(soc), thermal_{temp_c, temp_c} {}

  double soc() const { return soc_; }
  double temperature() const { return thermal_.temp_c; }

  // New parameters (ageing, fault progress) at the same mean SOC, polarisation and temperatures.
  void rebuild(PackParams p) {
    p_ = std::move(p);
    const Eigen::ArrayXd base = p_.balance_soc + p_.soc_offset, inv_cap = p_.capacity_ah.inverse();
    base_ = base.cast<float>();
    inv_cap_ = inv_cap.cast<float>();
    r0_ = p_.r0_ohm.cast<float>();
    r1_share_ = p_.r1_share.cast<float>();
    leak_ = p_.leak_a.cast<float>();
    leaking_ = (p_.leak_a > 0).any();
    base_mean_ = base.mean();
    inv_cap_mean_ = inv_cap.mean();
    sum_r0_ = p_.r0_ohm.sum();
    sum_r1_share_ = p_.r1_share.sum();
    cells_stale_ = true;
  }

  // Continues from a charging Pack (with these same parameters) after its last step `last`:
  // the SOC and bulk temperature it reached, the probe offsets and RC voltage that reading shows.
  void take_over(const Pack& pack, const PackReading& last) {
    soc_ = pack.soc();
    thermal_.temp_c = thermal_.hot_c = pack.temperature();
    update_cells();
    const double f = resistance_factor(thermal_.temp_c), i = last.current_a;
    v1_ = (last.pack_v - i * (p_.bus_ohm + p_.hotspot_ohm) - ocv_sum_ - f * i * sum_r0_) / sum_r1_share_;
    thermal_.hot_rise_c = last.max_temp_c - thermal_.temp_c - p_.probe_hot_c;  // holds a hot joint's excess too
    thermal_.cold_drop_c = thermal_.temp_c - p_.probe_cold_c - last.min_temp_c;
    relaxed_ = false;
  }

  // Advances by dt_s at current_a (negative: discharging).
  PackReading step(double current_a, double dt_s, double ambient_c) {
    const double i = current_a, f = resistance_factor(thermal_.temp_c);
    if (i != 0 || v1_ != 0) {
      const double e = std::exp(-dt_s / p_.tau1_s);
      v1_ = v1_ * e + f * p_.r1_ohm * (1.0 - e) * i;
      if (i == 0 && std::abs(v1_) < 1e-7) v1_ = 0;  // relaxed: below a microvolt per cell
    }
    soc_ += i * dt_s / 3600.0 * inv_cap_mean_;
    if (i != 0 || cells_stale_) update_cells();
    if (i != 0 || !relaxed_) {
      v_ = ocv_ + static_cast<float>(f * i) * r0_ + static_cast<float>(v1_) * r1_share_;
      max_v_ = v_.maxCoeff();
      min_v_ = v_.minCoeff();
      sum_v_ = v_.sum();
      relaxed_ = i == 0 && v1_ == 0;
    }
    PackReading r;
    r.current_a = i;
    r.soc = soc_;
    r.max_cell_v = max_v_;
    r.min_cell_v = min_v_;
    r.pack_v = sum_v_ + i * (p_.bus_ohm + p_.hotspot_ohm);

    // Pack::step's thermal model, for a current of either sign.
    const double heat_w = i * (i * f * sum_r0_ + v1_ * sum_r1_share_) + i * i * p_.bus_ohm;
    thermal_.step(p_, i, heat_w, leak_w_, ambient_c, dt_s, r);
    return r;
  }

 private:
  void update_cells() {
    const double charge_ah = (soc_ - base_mean_) / inv_cap_mean_;
    soc_cells_ = (base_ + static_cast<float>(charge_ah) * inv_cap_).max(-0.2f).min(1.2f);
    ocv_ = ocv(soc_cells_);
    ocv_sum_ = ocv_.sum();
    leak_w_ = leaking_ ? static_cast<double>((leak_ * ocv_).sum()) : 0.0;
    cells_stale_ = false;
    relaxed_ = false;
  }

  PackParams p_;
  Eigen::ArrayXf base_, inv_cap_, r0_, r1_share_, leak_, soc_cells_, ocv_, v_;
  double base_mean_ = 0, inv_cap_mean_ = 0, sum_r0_ = 0, sum_r1_share_ = 0, ocv_sum_ = 0, leak_w_ = 0;
  bool leaking_ = false, cells_stale_ = true, relaxed_ = false;
  double soc_, v1_ = 0;
  PackThermal thermal_;
  double max_v_ = 0, min_v_ = 0, sum_v_ = 0;
};

// One sample of one car, as measured, before it is written (or dropped).
struct TelemetryRow {
  std::int64_t t_ms = 0;          // Unix time, milliseconds
  float values[col::count] = {};  // signal_columns() order, dyad's sign convention
  std::int64_t odometer_hm = 0;   // odometer in 0.1 km
  std::uint32_t session = 0;      // the car's charging session serial (from 1); 0 when not charging
  VehicleState state = VehicleState::parked;
  std::uint8_t empty = 0;  // bit c: signal c is written empty
  bool dropped = false;
};

// One car's continuous timeline, generated sample by sample in time order. Days: 2-4 trips
// (1 day in 10 without), first departure 06:30-09:30, the others 0.3-5 h after arriving, none
// after 22:30. After a trip the driver plugs in when the SOC is at or below the session's plug-in
// SOC (at least 15 %) or the trip was cut short by a low battery; otherwise, 12 % of the time
// below 75 % SOC, for a 4-18 min top-up. AC stays plugged in until the next departure, DC until
// done. CHARGING rows are held back in windows of fleet.steps samples so that a sensor fault can
// glitch a window as simulate_car glitches a segment.
class CarTimeline {
 public:
  CarTimeline(const TelemetryConfig& cfg, const CarInfo& car)
      : cfg_(&cfg), car_(&car), build_(car, cfg.fleet.cells), plan_(mix(car.seed, kTelemetryPlan)),
        drive_(mix(car.seed, kTelemetryDrive)), noise_(mix(car.seed, kTelemetryNoise)), clock_(mix(car.seed, kTelemetryClock)),
        export_(mix(car.seed, kTelemetryExport)), glitch_(mix(car.seed, kTelemetryGlitch)),
        weather_rng_(mix(car.seed, kTelemetryWeather)), road_(0.5, 15.0) {
    start_s_ = kEpoch;
    end_ms_ = static_cast<std::int64_t>(std::llround(start_s_ * 1000.0)) +
              static_cast<std::int64_t>(std::llround(cfg.days * 86400.0 * 1000.0));
    // The export starts with the fault half to fully developed, so faulty cars look faulty.
    Rng age(mix(car.seed, kTelemetryFaultAge));
    fault_age0_days_ = car.fault_spec.onset_days + car.fault_spec.growth_days * age.uniform(0.5, 1.0);
    // Loggers are not synchronised: each car samples at its own phase within the interval.
    phase_s_ = cfg.jitter_s + clock_.uniform() * (cfg.interval_s - 2.0 * cfg.jitter_s);
    weather_c_ = 2.0 * weather_rng_.normal();
    odometer_km_ = car.initial_mileage_km;
    const double cap_ah = kCellAh * static_cast<double>(cfg.fleet.cells);
    kwh_per_km_ = cap_ah * 3.7 / 1000.0 / kRangeKm;  // the rated range on a new pack
    road_ = RoadPack(std::clamp(plan_.normal(0.7, 0.15), 0.25, 0.95), ambient(start_s_));
    road_.rebuild(params_at(start_s_));
    last_pack_v_ = 3.7 * static_cast<double>(cfg.fleet.cells);
    plug_soc_ = draw_plug_soc();
    depart_s_ = next_departure(start_s_);
    chunk_.resize(cfg.fleet.steps * col::count);
    chunk_rows_.resize(cfg.fleet.steps);
    draw_next_time();
  }

  // Generates samples until every sample before horizon_ms is in rows() and final.
  void run_until(std::int64_t horizon_ms) {
    while (next_ms_ < horizon_ms || chunk_n_ > 0) {
      if (next_ms_ >= end_ms_) {
        close_chunk();
        break;
      }
      sample();
    }
  }

  const std::vector<TelemetryRow>& rows() const { return rows_; }
  // Forgets the first n rows (written); the rest were generated ahead of the horizon.
  void release(std::size_t n) { rows_.erase(rows_.begin(), rows_.begin() + static_cast<std::ptrdiff_t>(n)); }

 private:
  enum class Activity { parked, driving, charging };

  double ambient(double t) const { return ambient_c(*car_, t) + weather_c_; }
  double progress(double t) const { return car_->fault_spec.progress(fault_age0_days_ + (t - start_s_) / 86400.0); }
  PackParams params_at(double t) const {
    PackParams p = build_.at(*car_, odometer_km_);
    apply_fault(car_->fault_spec, progress(t), p);
    return p;
  }
  double draw_plug_soc() { return std::clamp(plan_.normal(car_->start_soc_mean, 0.12), 0.1, 0.7); }
  double day_start(std::int64_t day) const { return start_s_ + 86400.0 * static_cast<double>(day); }
  // Heating and a denser, colder battery: consumption rises below 15 degC.
  double kwh_per_km(double amb) const { return kwh_per_km_ * (1.0 + 0.01 * std::max(0.0, 15.0 - amb)); }
  static double aux_kw(double amb) { return 0.5 + 0.12 * std::max(0.0, 15.0 - amb); }

  void draw_next_time() {
    const double nominal = start_s_ + phase_s_ + static_cast<double>(k_++) * cfg_->interval_s;
    const double t = cfg_->jitter_s > 0 ? nominal + clock_.uniform(-cfg_->jitter_s, cfg_->jitter_s) : nominal;
    const auto ms = static_cast<std::int64_t>(std::llround(t * 1000.0));
    next_ms_ = std::max(ms, last_ms_ + 1);  // strictly increasing after rounding to milliseconds
    last_ms_ = next_ms_;
  }

  // The next departure after arriving at t; sets the trip's planned distance.
  double next_departure(double t) {
    if (trips_left_ > 0) {
      const double dep = t + plan_.uniform(0.3, 5.0) * 3600.0;
      if (dep < day_start(day_) + 22.5 * 3600.0) {
        --trips_left_;
        trip_plan_km_ = day_km_ / trips_per_day_ * plan_.uniform(0.6, 1.4);
        return dep;
      }
    }
    for (;;) {
      ++day_;
      trips_per_day_ = plan_.uniform() < 0.1 ? 0 : 2 + static_cast<int>(plan_.below(3));
      day_km_ = car_->daily_km * plan_.uniform(0.6, 1.4);
      if (trips_per_day_ == 0) continue;
      trips_left_ = trips_per_day_ - 1;
      trip_plan_km_ = day_km_ / trips_per_day_ * plan_.uniform(0.6, 1.4);
      return std::max(day_start(day_) + plan_.uniform(6.5, 9.5) * 3600.0, t + 1800.0);
    }
  }

  // A break between activities long enough to hold at least one sample.
  double min_pause() const { return std::max(60.0, 2.0 * cfg_->interval_s); }

  void depart(double t) {
    PackParams p = params_at(t);
    const double q = p.capacity_ah.mean();
    road_.rebuild(std::move(p));
    mean_kmh_ = drive_.uniform(25.0, 80.0);
    speed_dev_ = 0;
    // The driver does not set off on a trip the battery cannot finish above about 12 % SOC
    // (3.6 V a cell and a 15 % margin: the estimate must not run the weakest cell flat).
    const double amb = ambient(t);
    const double pack_kwh = q * 3.6 * static_cast<double>(cfg_->fleet.cells) / 1000.0;
    const double km_max = (road_.soc() - 0.12) * pack_kwh / (1.15 * (kwh_per_km(amb) + aux_kw(amb) / mean_kmh_));
    trip_km_ = std::max(1.0, std::min(trip_plan_km_, km_max));
    trip_done_km_ = 0;
    activity_ = Activity::driving;
  }

  // `low`: the trip was cut short by a low SOC or a cell near empty, so the car must charge.
  void arrive(double t, bool low) {
    activity_ = Activity::parked;
    planned_depart_s_ = next_departure(t);
    depart_s_ = std::max(planned_depart_s_, t + min_pause());
    const double soc = road_.soc();
    const bool due = low || soc <= std::max(plug_soc_, 0.15);
    const bool top_up = !due && soc < 0.75 && plan_.uniform() < 0.12;
    if (!due && !top_up) return;
    // The session's charger and target, drawn as in simulate_car.
    fast_ = plan_.uniform() < car_->fast_fraction;
    charger_a_ = fast_ ? plan_.uniform(50.0, 150.0) : car_->ac_current_a * plan_.uniform(0.97, 1.03);
    target_ = fast_ ? plan_.uniform(0.8, 0.97) : plan_.uniform() < 0.6 ? 1.0 : plan_.uniform(0.85, 1.0);
    top_up_s_ = top_up ? plan_.uniform(4.0, 18.0) * 60.0 : 0.0;
    plug_s_ = t + std::max(min_pause(), plan_.uniform(60.0, 300.0));
    if (due) plug_soc_ = draw_plug_soc();
    plug_pending_ = soc < target_ - 0.03;
  }

  void plug_in(double t) {
    plug_pending_ = false;
    PackParams p = params_at(t);
    q_ = p.capacity_ah.mean();
    pack_.emplace(std::move(p), road_.soc(), road_.temperature());
    ++session_;
    elapsed_s_ = 0;
    charged_steps_ = 0;
    // AC: unplugged shortly before the next departure, charged or not. DC: when done.
    // Top-up: after a few minutes.
    unplug_s_ = top_up_s_ > 0 ? t + top_up_s_
                : fast_       ? HUGE_VAL
                              : std::max(t + 300.0, planned_depart_s_ - plan_.uniform(60.0, 240.0));
    activity_ = Activity::charging;
  }

  void stop_charging(double t) {
    if (charged_steps_ > 0) {
      road_.rebuild(pack_->params());
      road_.take_over(*pack_, last_reading_);
    }
    pack_.reset();
    activity_ = Activity::parked;
    depart_s_ = std::max(planned_depart_s_, t + (fast_ ? plan_.uniform(120.0, 360.0) : min_pause()));
  }

  // What happens between the previous sample and this one, in order.
  void events(double t) {
    for (;;) {
      if (activity_ == Activity::parked && plug_pending_ && t >= plug_s_) {
        plug_in(t);
      } else if (activity_ == Activity::parked && !plug_pending_ && t >= depart_s_) {
        depart(t);
      } else if (activity_ == Activity::charging && t >= unplug_s_) {
        if (top_up_s_ == 0 && pack_->soc() < 0.25) {
          unplug_s_ = t + 1800.0;  // too low to leave: the driver waits for more charge
          planned_depart_s_ = unplug_s_ + 120.0;
        } else {
          stop_charging(t);
        }
      } else {
        return;
      }
    }
  }

  void sample() {
    const std::int64_t ms = next_ms_;
    const double t = static_cast<double>(ms) / 1000.0;
    const double dt = prev_t_ > 0 ? t - prev_t_ : cfg_->interval_s;
    prev_t_ = t;
    draw_next_time();
    const auto hour = static_cast<std::int64_t>((t - start_s_) / 3600.0);
    for (; weather_hour_ < hour; ++weather_hour_) weather_c_ = 0.95 * weather_c_ + 0.62 * weather_rng_.normal();
    const double amb = ambient(t);
    events(t);

    PackReading r;
    VehicleState state = VehicleState::parked;
    switch (activity_) {
      case Activity::parked: r = road_.step(0.0, dt, amb); break;
      case Activity::driving: {
        // Speed wanders around the trip's mean (AR(1), 30 s); power = traction + heating/aux.
        const double rho = std::exp(-dt / 30.0);
        speed_dev_ = rho * speed_dev_ + std::sqrt(1.0 - rho * rho) * 0.35 * mean_kmh_ * drive_.normal();
        const double kmh = std::clamp(mean_kmh_ + speed_dev_, 0.0, 2.0 * mean_kmh_);
        const double p_kw = std::max(0.0, kmh * kwh_per_km(amb) * (1.0 + 0.3 * drive_.normal())) + aux_kw(amb);
        const double q = static_cast<double>(kCellAh);
        const double i = std::max(-p_kw * 1000.0 / std::max(1.0, last_pack_v_), -3.0 * q);
        r = road_.step(i, dt, amb);
        last_pack_v_ = r.pack_v;
        trip_done_km_ += kmh * dt / 3600.0;
        odometer_km_ += kmh * dt / 3600.0;
        state = VehicleState::driving;
        break;
      }
      case Activity::charging: {
        const double offered =
            std::min(charger_a_ * std::min(1.0, (elapsed_s_ + dt) / (fast_ ? 60.0 : 30.0)), max_c_rate(pack_->temperature()) * q_);
        r = pack_->step(offered, dt, amb);
        elapsed_s_ += dt;
        ++charged_steps_;
        last_reading_ = r;
        // The charger stops at the target SOC or when the CV current has tapered off.
        const bool done = r.current_a < 1.0 || r.soc >= target_ || (r.current_a < 0.025 * q_ && r.current_a < 0.99 * offered);
        if (r.current_a >= 1.0) state = VehicleState::charging;
        if (done) stop_charging(t);
        break;
      }
    }

    TelemetryRow row;
    row.t_ms = ms;
    measure(r, build_.cal, noise_, row.values);
    // Keep the sign of the current telling the state: parked, the contactors are open.
    float& current = row.values[col::current];
    current = state == VehicleState::parked    ? 0.0f
              : state == VehicleState::driving ? std::min(current, -0.1f)
                                               : std::max(current, 0.1f);
    row.odometer_hm = static_cast<std::int64_t>(std::llround(odometer_km_ * 10.0));
    row.state = state;
    row.session = state == VehicleState::charging ? session_ : 0;
    row.dropped = cfg_->drop_rate > 0 && export_.uniform() < cfg_->drop_rate;
    if (cfg_->empty_rate > 0)
      for (std::size_t c = 0; c < col::count; ++c)
        if (export_.uniform() < cfg_->empty_rate) row.empty |= static_cast<std::uint8_t>(1u << c);

    if (state == VehicleState::charging) {
      if (chunk_n_ > 0 && chunk_session_ != session_) close_chunk();
      std::copy_n(row.values, col::count, chunk_.data() + chunk_n_ * col::count);
      chunk_rows_[chunk_n_++] = rows_.size();
      chunk_session_ = session_;
      chunk_t_ = t;
      rows_.push_back(row);
      if (chunk_n_ == cfg_->fleet.steps) close_chunk();
    } else {
      close_chunk();
      rows_.push_back(row);
    }
    // Low SOC or a cell near empty ends the trip early, at a charger.
    if (activity_ == Activity::driving) {
      const bool low = road_.soc() < 0.08 || r.min_cell_v < 3.2;
      if (low || trip_done_km_ >= trip_km_) arrive(t, low);
    }
  }

  // A sensor fault glitches a window of CHARGING samples as it glitches a segment.
  void close_chunk() {
    if (chunk_n_ == 0) return;
    const std::span<float> values(chunk_.data(), chunk_n_ * col::count);
    apply_sensor_fault(car_->fault_spec, progress(chunk_t_), glitch_, values);
    for (std::size_t k = 0; k < chunk_n_; ++k)
      std::copy_n(values.data() + k * col::count, col::count, rows_[chunk_rows_[k]].values);
    chunk_n_ = 0;
  }

  const TelemetryConfig* cfg_;
  const CarInfo* car_;
  CarBuild build_;
  Rng plan_, drive_, noise_, clock_, export_, glitch_, weather_rng_;
  RoadPack road_;
  std::optional<Pack> pack_;
  PackReading last_reading_;
  std::vector<TelemetryRow> rows_;

  // Clock.
  double start_s_ = 0, phase_s_ = 0, prev_t_ = 0;
  std::int64_t end_ms_ = 0, next_ms_ = 0, last_ms_ = INT64_MIN / 2, k_ = 0;
  // Surroundings and wear.
  double fault_age0_days_ = 0, weather_c_ = 0, odometer_km_ = 0, kwh_per_km_ = 0, last_pack_v_ = 0;
  std::int64_t weather_hour_ = 0;
  // Plan.
  Activity activity_ = Activity::parked;
  std::int64_t day_ = -1;
  int trips_per_day_ = 0, trips_left_ = 0;
  double day_km_ = 0, trip_plan_km_ = 0, depart_s_ = 0, planned_depart_s_ = 0;
  // Trip.
  double mean_kmh_ = 40, speed_dev_ = 0, trip_km_ = 0, trip_done_km_ = 0;
  // Charging session.
  double plug_soc_ = 0.3, plug_s_ = 0, unplug_s_ = 0, top_up_s_ = 0, charger_a_ = 0, target_ = 1, q_ = kCellAh;
  double elapsed_s_ = 0;
  bool fast_ = false, plug_pending_ = false;
  std::uint32_t session_ = 0;
  std::size_t charged_steps_ = 0;
  // The open glitch window of CHARGING samples.
  std::vector<float> chunk_;
  std::vector<std::size_t> chunk_rows_;
  std::size_t chunk_n_ = 0;
  std::uint32_t chunk_session_ = 0;
  double chunk_t_ = 0;
};

// x (already on its resolution) with a fixed number of decimals: exact, and faster than
// shortest-form floating point.
inline char* put_fixed(char* p, double x, int decimals) {
  static constexpr std::int64_t kScale[] = {1, 10, 100, 1000};
  const std::int64_t scale = kScale[decimals];
  const double scaled = x * static_cast<double>(scale);
  std::int64_t n = static_cast<std::int64_t>(scaled < 0 ? scaled - 0.5 : scaled + 0.5);
  if (n < 0) {
    *p++ = '-';
    n = -n;
  }
  p = std::to_chars(p, p + 24, n / scale).ptr;
  if (decimals > 0) {
    *p++ = '.';
    std::int64_t frac = n % scale;
    for (int k = decimals - 1; k >= 0; --k, frac /= 10) p[k] = static_cast<char>('0' + frac % 10);
    p += decimals;
  }
  return p;
}

inline char* put_two(char* p, unsigned v) {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
  return p + 2;
}

// Formats rows into a large block and hands the stream whole blocks.
class RowWriter {
 public:
  RowWriter(const TelemetryConfig& cfg, std::ostream& os) : cfg_(cfg), os_(os), buf_(kBlock + 4096) {}

  void header() {
    const TelemetryColumns& n = cfg_.columns;
    std::string h;
    for (const std::string* s : {&n.car, &n.timestamp, &n.volt, &n.current, &n.soc, &n.max_single_volt, &n.min_single_volt,
                                 &n.max_temp, &n.min_temp, &n.mileage, &n.state}) {
      if (!h.empty()) h += cfg_.delimiter;
      h += *s;
    }
    h += '\n';
    os_.write(h.data(), static_cast<std::streamsize>(h.size()));
  }

  void row(std::string_view car, const TelemetryRow& r) {
    if (used_ + car.size() + 512 > buf_.size()) flush();
    char* p = buf_.data() + used_;
    const char d = cfg_.delimiter;
    p = std::copy(car.begin(), car.end(), p);
    *p++ = d;
    p = put_time(p, r.t_ms);
    static constexpr int kDecimals[col::count] = {1, 1, 1, 3, 3, 0, 0};  // the sensors' resolutions
    for (std::size_t c = 0; c < col::count; ++c) {
      *p++ = d;
      if (r.empty >> c & 1u) continue;
      double v = r.values[c];
      if (c == col::current && cfg_.current_negative_when_charging) v = -v;
      p = put_fixed(p, v, kDecimals[c]);
    }
    *p++ = d;
    p = std::to_chars(p, p + 24, r.odometer_hm / 10).ptr;
    *p++ = '.';
    *p++ = static_cast<char>('0' + r.odometer_hm % 10);
    *p++ = d;
    const std::string_view s = state_name(r.state);
    p = std::copy(s.begin(), s.end(), p);
    *p++ = '\n';
    used_ = static_cast<std::size_t>(p - buf_.data());
  }

  void flush() {
    os_.write(buf_.data(), static_cast<std::streamsize>(used_));
    used_ = 0;
  }

  static constexpr std::size_t kBlock = 1 << 20;

 private:
  char* put_time(char* p, std::int64_t ms) {
    switch (cfg_.timestamps) {
      case TimestampFormat::epoch_ms: return std::to_chars(p, p + 24, ms).ptr;
      case TimestampFormat::epoch_s: {
        p = std::to_chars(p, p + 24, ms / 1000).ptr;
        *p++ = '.';
        return put_fixed_digits(p, static_cast<unsigned>(ms % 1000));
      }
      default: {
        const std::int64_t day = ms / 86400000;
        if (day != day_) {  // the date changes once a day: format it then
          day_ = day;
          const std::chrono::year_month_day ymd{std::chrono::sys_days{std::chrono::days{day}}};
          std::snprintf(date_, sizeof date_, "%04d-%02u-%02uT", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                        static_cast<unsigned>(ymd.day()));
        }
        p = std::copy_n(date_, 11, p);
        const auto in_day = static_cast<unsigned>(ms - day * 86400000);
        const unsigned s = in_day / 1000;
        p = put_two(p, s / 3600);
        *p++ = ':';
        p = put_two(p, s / 60 % 60);
        *p++ = ':';
        p = put_two(p, s % 60);
        *p++ = '.';
        p = put_fixed_digits(p, in_day % 1000);
        *p++ = 'Z';
        return p;
      }
    }
  }
  static char* put_fixed_digits(char* p, unsigned milli) {
    p[0] = static_cast<char>('0' + milli / 100);
    p[1] = static_cast<char>('0' + milli / 10 % 10);
    p[2] = static_cast<char>('0' + milli % 10);
    return p + 3;
  }

  const TelemetryConfig& cfg_;
  std::ostream& os_;
  std::vector<char> buf_;
  std::size_t used_ = 0;
  std::int64_t day_ = -1;
  char date_[32] = {};
};

}  // namespace detail

// Writes the export of every car of cfg.fleet over cfg.days: a header line, then all cars' rows
// merged in time order (ties by car). The cars advance in lock-step, a slice of simulated time
// (at most an hour) at a time, so memory holds one slice, not the run. Deterministic given cfg.
// Returns the charging sessions written, sorted by car, then time.
inline std::vector<ChargingSession> write_raw_telemetry(const TelemetryConfig& cfg, std::ostream& os) {
  detail::validate(cfg);
  const std::vector<CarInfo> cars = fleet_cars(cfg.fleet);
  std::vector<detail::CarTimeline> timelines;
  timelines.reserve(cars.size());
  for (const CarInfo& car : cars) timelines.emplace_back(cfg, car);

  detail::RowWriter out(cfg, os);
  out.header();
  const auto start_ms = static_cast<std::int64_t>(std::llround(detail::kEpoch * 1000.0));
  const std::int64_t end_ms = start_ms + static_cast<std::int64_t>(std::llround(cfg.days * 86400.0 * 1000.0));
  // About 2^18 rows per slice, and at least a minute and at most an hour of simulated time.
  const double slice_s = std::clamp(262144.0 * cfg.interval_s / static_cast<double>(cars.size()), 60.0, 3600.0);
  const auto slice_ms = static_cast<std::int64_t>(slice_s * 1000.0);

  struct Open {  // the session a car is writing
    std::uint32_t serial = 0;
    ChargingSession s;
  };
  std::vector<Open> open(cars.size());
  std::vector<std::vector<ChargingSession>> sessions(cars.size());
  struct Key {
    std::int64_t t_ms;
    std::uint32_t car, index;
  };
  std::vector<Key> keys;
  std::vector<std::size_t> ready(cars.size());
  for (std::int64_t horizon = start_ms; horizon < end_ms;) {
    horizon = std::min(end_ms, horizon + slice_ms);
    keys.clear();
    for (std::size_t c = 0; c < cars.size(); ++c) {
      timelines[c].run_until(horizon);
      const auto& rows = timelines[c].rows();
      ready[c] = 0;
      for (; ready[c] < rows.size() && rows[ready[c]].t_ms < horizon; ++ready[c])
        keys.push_back({rows[ready[c]].t_ms, static_cast<std::uint32_t>(c), static_cast<std::uint32_t>(ready[c])});
    }
    std::sort(keys.begin(), keys.end(),
              [](const Key& a, const Key& b) { return a.t_ms != b.t_ms ? a.t_ms < b.t_ms : a.car < b.car; });
    for (const Key& k : keys) {
      const detail::TelemetryRow& r = timelines[k.car].rows()[k.index];
      if (r.dropped) continue;
      out.row(cars[k.car].id, r);
      if (r.state != VehicleState::charging) continue;
      Open& o = open[k.car];
      const double t = static_cast<double>(r.t_ms) / 1000.0;
      if (o.serial != r.session) {
        if (o.serial != 0) sessions[k.car].push_back(std::move(o.s));
        o.serial = r.session;
        o.s = {cars[k.car].id, cars[k.car].label, t, t, 0, static_cast<double>(r.odometer_hm) / 10.0};
      }
      o.s.last_s = t;
      ++o.s.rows;
    }
    for (std::size_t c = 0; c < cars.size(); ++c) timelines[c].release(ready[c]);
  }
  out.flush();
  if (!os) throw std::runtime_error("dyad::sim::write_raw_telemetry: writing the telemetry stream failed");

  std::vector<ChargingSession> all;
  for (std::size_t c = 0; c < cars.size(); ++c) {
    if (open[c].serial != 0) sessions[c].push_back(std::move(open[c].s));
    for (auto& s : sessions[c]) all.push_back(std::move(s));
  }
  // Car ids sort as the fleet's order up to 10,000 cars; beyond, sort them as text.
  std::stable_sort(all.begin(), all.end(), [](const ChargingSession& a, const ChargingSession& b) { return a.car < b.car; });
  return all;
}

// The `dyad ingest` spec that reads the export: column names, how CHARGING rows are marked, the
// current's sign, and how to cut sessions into segments (a gap longer than max_gap_s splits a
// session; windows of `length` samples every `stride`).
inline nlohmann::json telemetry_spec(const TelemetryConfig& cfg) {
  detail::validate(cfg);
  const TelemetryColumns& n = cfg.columns;
  return {
      {"columns",
       {{"car", n.car},
        {"timestamp", n.timestamp},
        {"volt", n.volt},
        {"current", n.current},
        {"soc", n.soc},
        {"max_single_volt", n.max_single_volt},
        {"min_single_volt", n.min_single_volt},
        {"max_temp", n.max_temp},
        {"min_temp", n.min_temp},
        {"mileage", n.mileage}}},
      {"charging", {{"column", n.state}, {"values", nlohmann::json::array({std::string(state_name(VehicleState::charging))})}}},
      {"charging_current", cfg.current_negative_when_charging ? "negative" : "positive"},
      {"interval_s", cfg.interval_s},
      {"max_gap_s", std::max(60.0, 6.0 * cfg.interval_s)},
      {"length", cfg.fleet.steps},
      {"stride", std::max<std::size_t>(1, cfg.fleet.steps / 2)},
  };
}

// car,label: one row per car of the fleet (1 = carries a fault).
inline void write_telemetry_labels(const TelemetryConfig& cfg, std::ostream& os) {
  detail::validate(cfg);
  std::string buf = "car,label\n";
  for (const CarInfo& car : fleet_cars(cfg.fleet)) buf += car.id + ',' + std::to_string(car.label) + '\n';
  os.write(buf.data(), static_cast<std::streamsize>(buf.size()));
  if (!os) throw std::runtime_error("dyad::sim::write_telemetry_labels: writing the labels failed");
}

// car,label,first_s,last_s,rows,mileage_km: the sessions write_raw_telemetry returned.
inline void write_charging_sessions(std::span<const ChargingSession> sessions, std::ostream& os) {
  std::string buf = "car,label,first_s,last_s,rows,mileage_km\n";
  char num[32];
  auto put = [&](char* end) { buf.append(num, end); };
  for (const ChargingSession& s : sessions) {
    buf += s.car;
    buf += ',';
    put(std::to_chars(num, num + sizeof num, s.label).ptr);
    buf += ',';
    put(detail::put_fixed(num, s.first_s, 3));
    buf += ',';
    put(detail::put_fixed(num, s.last_s, 3));
    buf += ',';
    put(std::to_chars(num, num + sizeof num, s.rows).ptr);
    buf += ',';
    put(detail::put_fixed(num, s.mileage_km, 1));
    buf += '\n';
  }
  os.write(buf.data(), static_cast<std::streamsize>(buf.size()));
  if (!os) throw std::runtime_error("dyad::sim::write_charging_sessions: writing the sessions failed");
}

}  // namespace dyad::sim
