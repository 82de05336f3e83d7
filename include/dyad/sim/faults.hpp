// Injected faults (dyad-method §9): what each one changes in the pack or the telemetry, how big
// it gets, and how it develops over time (nothing before onset, then a smooth growth over weeks).
#pragma once

#include "dyad/core/random.hpp"
#include "dyad/sim/pack.hpp"
#include "dyad/sim/sensors.hpp"

#include <algorithm>
#include <span>
#include <string_view>

namespace dyad::sim {

enum class Fault { none, internal_short, high_resistance, weak_cell, cooling, sensor };

inline std::string_view fault_name(Fault f) {
  switch (f) {
    case Fault::internal_short: return "internal_short";
    case Fault::high_resistance: return "high_resistance";
    case Fault::weak_cell: return "weak_cell";
    case Fault::cooling: return "cooling";
    case Fault::sensor: return "sensor";
    default: return "none";
  }
}

// One car's fault. `magnitude` is the fully developed size, in the unit of its type:
//   internal_short   SOC deficit of the cell (50-150 mV at 80 % SOC)   (0.05 .. 0.15)
//   high_resistance  factor on the cell's resistances                  (1.3 .. 2.2)
//   weak_cell        fraction of the cell's capacity lost              (0.08 .. 0.22)
//   cooling          degraded joint resistance in an uncooled zone, ohm (2e-3 .. 8e-3)
//   sensor           probability that a session shows a glitch          (0.2 .. 0.8)
struct FaultSpec {
  Fault type = Fault::none;
  double magnitude = 0.0;
  double onset_days = 0.0;    // counted from the car's first session
  double growth_days = 30.0;  // from onset to full magnitude
  std::size_t cell = 0;       // the affected cell
  std::size_t channel = 0;    // sensor fault: column in signal_columns()

  // 0 before onset, 1 when developed, smoothstep in between.
  double progress(double days) const {
    if (type == Fault::none) return 0.0;
    const double u = std::clamp((days - onset_days) / growth_days, 0.0, 1.0);
    return u * u * (3.0 - 2.0 * u);
  }
};

// The fleet's mix of fault types among faulty cars; shorts dominate, as in field reports.
inline Fault draw_fault_type(Rng& rng) {
  const double u = rng.uniform();
  return u < 0.30   ? Fault::internal_short
         : u < 0.50 ? Fault::high_resistance
         : u < 0.70 ? Fault::weak_cell
         : u < 0.85 ? Fault::cooling
                    : Fault::sensor;
}

// A fault of the given type with random severity (uniform over the ranges above), onset within
// the first 30 days and growth over 2 to 6 weeks. Always makes the same draws, whatever the type.
inline FaultSpec draw_fault(Fault type, Rng& rng, std::size_t cells) {
  static constexpr double lo[] = {0, 0.05, 1.3, 0.08, 2.0e-3, 0.2};
  static constexpr double hi[] = {0, 0.15, 2.2, 0.22, 8.0e-3, 0.8};
  static constexpr std::size_t sensor_channels[] = {col::volt, col::max_single_volt, col::min_single_volt, col::max_temp,
                                                    col::min_temp};
  FaultSpec f;
  f.type = type;
  const auto k = static_cast<std::size_t>(type);
  f.magnitude = rng.uniform(lo[k], hi[k]);
  f.onset_days = rng.uniform(0.0, 30.0);
  f.growth_days = rng.uniform(14.0, 42.0);
  f.cell = static_cast<std::size_t>(rng.below(cells));
  f.channel = sensor_channels[rng.below(5)];
  return f;
}

// Changes a session's pack for a fault developed to `progress` (0..1).
inline void apply_fault(const FaultSpec& f, double progress, PackParams& p) {
  if (progress <= 0.0) return;
  const auto c = static_cast<Eigen::Index>(f.cell);
  switch (f.type) {
    case Fault::internal_short: {
      // The short drains the cell faster than balancing restores it: a SOC deficit, plus the
      // leak current that builds it over the growth period (and heats the cell).
      p.soc_offset[c] -= progress * f.magnitude;
      p.leak_a[c] = progress * f.magnitude * p.capacity_ah[c] / (24.0 * f.growth_days);
      break;
    }
    case Fault::high_resistance:
      p.r0_ohm[c] *= 1.0 + progress * (f.magnitude - 1.0);
      p.r1_share[c] *= 1.0 + progress * (f.magnitude - 1.0);
      break;
    case Fault::weak_cell: p.capacity_ah[c] *= 1.0 - progress * f.magnitude; break;
    case Fault::cooling:
      // Coolant flow fails and a joint in the uncooled zone degrades: the hot probe sits on it.
      p.active_w_per_k *= 1.0 - progress;
      p.passive_w_per_k *= 1.0 - 0.4 * progress;
      p.hotspot_ohm = progress * f.magnitude;
      break;
    default: break;
  }
}

// Sensor fault: a session shows a glitch on the fault's channel with probability
// progress * magnitude.
inline void apply_sensor_fault(const FaultSpec& f, double progress, Rng& rng, std::span<float> values) {
  if (f.type != Fault::sensor || progress <= 0.0) return;
  if (rng.uniform() < progress * f.magnitude) inject_glitch(values, f.channel, rng);
}

}  // namespace dyad::sim
