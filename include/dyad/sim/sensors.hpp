// Telemetry as the BMS reports it: the seven signal columns, per-channel noise and resolution,
// per-car calibration errors, and the glitches of a failing sensor channel.
#pragma once

#include "dyad/core/random.hpp"
#include "dyad/sim/pack.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace dyad::sim {

// Column order of every simulated segment (CONVENTIONS.md).
inline const std::vector<std::string>& signal_columns() {
  static const std::vector<std::string> columns{"volt",     "current", "soc", "max_single_volt", "min_single_volt",
                                                "max_temp", "min_temp"};
  return columns;
}

// Column indices into a row of signal_columns().
namespace col {
inline constexpr std::size_t volt = 0, current = 1, soc = 2, max_single_volt = 3, min_single_volt = 4, max_temp = 5, min_temp = 6,
                             count = 7;
}

// Calibration errors fixed per car: a current-sensor gain and offset, and a BMS SOC bias.
struct SensorCalibration {
  double current_gain = 1.0, current_offset_a = 0.0, soc_bias = 0.0;
};

// Noise sd and resolution per column, in the column's unit (V, A, %, V, V, degC, degC).
inline constexpr double kSensorNoise[col::count] = {0.15, 0.1, 0.0, 1.5e-3, 1.5e-3, 0.2, 0.2};
inline constexpr double kSensorResolution[col::count] = {0.1, 0.1, 0.1, 1e-3, 1e-3, 1.0, 1.0};

inline double quantise(double x, double resolution) { return std::round(x / resolution) * resolution; }

// One telemetry row from the true state. The SOC is the BMS's coulomb count, so it carries a
// bias but no noise (it never runs backwards while charging). Always draws six normals, so a
// healthy and a faulty twin car see the same noise.
inline void measure(const PackReading& r, const SensorCalibration& cal, Rng& rng, std::span<float> row) {
  double x[col::count];
  x[col::volt] = r.pack_v;
  x[col::current] = r.current_a * cal.current_gain + cal.current_offset_a;
  x[col::soc] = 100.0 * std::clamp(r.soc + cal.soc_bias, 0.0, 1.0);
  x[col::max_single_volt] = r.max_cell_v;
  x[col::min_single_volt] = r.min_cell_v;
  x[col::max_temp] = r.max_temp_c;
  x[col::min_temp] = r.min_temp_c;
  for (std::size_t c = 0; c < col::count; ++c) {
    if (kSensorNoise[c] > 0) x[c] += kSensorNoise[c] * rng.normal();
    row[c] = static_cast<float>(quantise(x[c], kSensorResolution[c])) + 0.0f;  // + 0: no "-0" in CSVs
  }
  // Noise must not swap the extremes.
  row[col::max_single_volt] = std::max(row[col::max_single_volt], row[col::min_single_volt]);
  row[col::max_temp] = std::max(row[col::max_temp], row[col::min_temp]);
}

// One glitch of a failing sensor on `channel` of a segment (row-major [steps x col::count]):
// a dropout (reads 0 for a run of steps), a stuck value (frozen for a run), or a few spikes,
// upward on a max channel, downward on a min channel.
inline void inject_glitch(std::span<float> values, std::size_t channel, Rng& rng) {
  const std::size_t steps = values.size() / col::count;
  auto at = [&](std::size_t t) -> float& { return values[t * col::count + channel]; };
  const std::size_t start = static_cast<std::size_t>(rng.below(steps));
  switch (rng.below(3)) {
    case 0: {
      const std::size_t end = std::min<std::size_t>(steps, start + 1 + rng.below(20));
      for (std::size_t t = start; t < end; ++t) at(t) = 0.0f;
      break;
    }
    case 1: {
      const std::size_t end = std::min<std::size_t>(steps, start + 10 + rng.below(50));
      const float frozen = at(start);
      for (std::size_t t = start; t < end; ++t) at(t) = frozen;
      break;
    }
    default: {
      const double size = channel == col::volt                                   ? rng.uniform(15.0, 60.0)
                          : channel == col::max_temp || channel == col::min_temp ? rng.uniform(8.0, 30.0)
                                                                                 : rng.uniform(0.1, 0.6);
      const double sign = channel == col::min_single_volt || channel == col::min_temp ? -1.0
                          : channel == col::volt && rng.uniform() < 0.5               ? -1.0
                                                                                      : 1.0;
      for (std::uint64_t n = 1 + rng.below(4); n > 0; --n) {
        float& v = at(static_cast<std::size_t>(rng.below(steps)));
        v = static_cast<float>(quantise(v + sign * size, kSensorResolution[channel]));
      }
    }
  }
}

}  // namespace dyad::sim
