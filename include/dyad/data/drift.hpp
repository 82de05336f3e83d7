// Inputs checked against what the model was trained on: a column of new data whose sign is
// flipped, whose units are off by 100 or 1000, or which is constant, against the normaliser's
// training mean and scale. Such data scores, but every car then looks abnormal with confident
// hints (a spec that forgot "charging_current": "negative"), so score and monitor refuse it
// unless told to go on.
//
// The checks compare the column's mean over the data (the middle 80 % of a sample of at most
// 100,000 values, so that one absurd value moves nothing) with the training mean. Only the
// signals that are positive by construction (current, volt, soc, the cell voltages) are judged
// by their sign, and only those never near zero in use (volt, soc, the cell voltages, when
// their training mean stands more than 3 scales clear of zero) by their ratio: a temperature
// near 0 degC, a trickle charge or a column of the user's own is never an error.
#pragma once

#include "dyad/core/text.hpp"
#include "dyad/data/dataset.hpp"
#include "dyad/data/normalizer.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dyad {

// One column that is clearly not what the model was trained on.
struct InputDrift {
  std::string column;
  std::string problem;   // "sign flipped", "units x1000", "units /100", "constant"
  std::string expected;  // what training saw
  std::string seen;      // what the data holds
  std::string fix;       // the likely spec or unit fix
};

// The columns `cols` of `data` (as resolve_columns gives them, in norm.columns() order) that
// drift clearly from `norm`. Needs 50 segments of at least 5 cars to judge a column constant
// (a week of integer temperatures can be), and 100 values for the rest: a small batch is not
// judged.
inline std::vector<InputDrift> input_drift(const Dataset& data, std::span<const std::size_t> cols, const Normalizer& norm) {
  std::vector<InputDrift> out;
  std::size_t values = 0;
  for (std::size_t i = 0; i < data.size(); ++i) values += data.length(i);
  if (values < 100) return out;
  const std::size_t every = std::max<std::size_t>(1, values / 100000);
  std::set<std::string_view> seen_cars;
  for (std::size_t i = 0; i < data.size() && seen_cars.size() < 5; ++i) seen_cars.insert(data.meta(i).car);
  const std::size_t cars = seen_cars.size();
  std::vector<float> sample;
  for (std::size_t e = 0; e < cols.size(); ++e) {
    const double mean = norm.mean()[e], scale = norm.scale()[e];
    if (mean == 0 && scale == 1) continue;  // an identity normaliser: nothing known
    sample.clear();
    std::size_t k = 0;
    for (std::size_t i = 0; i < data.size(); ++i) {
      const SegmentValues v = data.values(i);
      for (Eigen::Index t = 0; t < v.rows(); ++t, ++k)
        if (k % every == 0) sample.push_back(v(t, static_cast<Eigen::Index>(cols[e])));
    }
    std::erase_if(sample, [](float x) { return std::isnan(x); });
    if (sample.size() < 100) continue;
    std::sort(sample.begin(), sample.end());
    const double lo = sample.front(), hi = sample.back();
    const std::string& name = norm.columns()[e];
    const std::string expected = "training mean " + text::number_text(mean) + ", scale " + text::number_text(scale);
    if (lo == hi) {
      if (cars >= 5 && data.size() >= 50 && scale > 1e-3)
        out.push_back({name, "constant", expected, "every value " + text::number_text(lo),
                       "a stuck sensor or a column mapped to the wrong export column"});
      continue;
    }
    // The mean of the middle 80 %: one absurd value moves nothing, and a skewed signal (the
    // current's long tail) stays comparable with the training mean.
    const std::size_t cut = sample.size() / 10;
    double sum = 0;
    for (std::size_t i = cut; i < sample.size() - cut; ++i) sum += sample[i];
    const double centre = sum / static_cast<double>(sample.size() - 2 * cut);
    const double ratio = centre / mean;
    const std::string seen = "mean " + text::number_text(centre);
    // A dyad signal that is positive by construction (the output is charging-positive; volts and
    // SOC are) has a sign to flip. A temperature near 0 degC has none.
    const bool positive =
        name == "current" || name == "volt" || name == "soc" || name == "max_single_volt" || name == "min_single_volt";
    if (positive && mean > 0 && ratio < -0.5 && ratio > -2) {
      out.push_back({name, "sign flipped", expected, seen,
                     name == "current" ? "the export's sign of charging current: \"charging_current\" in the ingest spec"
                                       : "the export's sign convention for '" + name + "'"});
      continue;
    }
    // Only what is never near zero in use (a pack or cell voltage, an SOC) has a ratio to judge:
    // a cold day's temperatures or a trickle charge may be a hundredth of the training mean.
    const bool never_near_zero = name == "volt" || name == "soc" || name == "max_single_volt" || name == "min_single_volt";
    if (!never_near_zero || !(mean > 3 * scale)) continue;
    for (const auto& [factor, label] : {std::pair{1000.0, "1000"}, std::pair{100.0, "100"}}) {
      const auto scale_fix = [&](double f) {
        return "a unit mix-up: \"scale\": {\"" + name + "\": " + text::number_text(f) + "} in the ingest spec";
      };
      if (ratio > factor / 2 && ratio < factor * 2) {
        out.push_back({name, std::string("units x") + label, expected, seen, scale_fix(1 / factor)});
        break;
      }
      if (ratio > 1 / (factor * 2) && ratio < 2 / factor) {
        out.push_back({name, std::string("units /") + label, expected, seen, scale_fix(factor)});
        break;
      }
    }
  }
  return out;
}

// One line per drift, for an error or a warning.
inline std::string drift_text(const InputDrift& d) {
  return "column '" + d.column + "': " + d.problem + " (" + d.seen + "; " + d.expected + "): likely " + d.fix;
}

}  // namespace dyad
