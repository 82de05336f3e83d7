// What a fleet's verdicts stand on, as dyad status and dyad report show it: the alarm policy in
// force, what the model's calibration can state, and the period of the data.
#pragma once

#include "common.hpp"

#include <dyad/monitor/fleet_db.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <tuple>

namespace dyad::cli {

struct PolicyView {
  std::optional<monitor::StoredPolicy> policy;  // none in a database from before policies were kept
  std::size_t calibration_cars = 0;
  double finest_rate = 1;
  double data_from = std::nan(""), data_to = std::nan("");

  std::string text() const {
    std::string out = policy ? "alarm rate " + rate_text(policy->policy.alarm_rate) + ", watch rate " +
                                   rate_text(policy->policy.watch_rate) + " (" + policy->basis + ", since " + policy->recorded + ")"
                             : std::string("alarm policy not recorded (a database from an older dyad: dyad monitor records it)");
    out += "; " + std::to_string(calibration_cars) + " healthy calibration cars, finest rate 1/" +
           std::to_string(calibration_cars + 1) + " = " + rate_text(finest_rate);
    if (std::isfinite(data_from))
      out += "; data from " + monitor::data_time_text(data_from) + " to " + monitor::data_time_text(data_to);
    return out;
  }
};

inline PolicyView policy_view(monitor::FleetDb& db, const std::string& model) {
  PolicyView v;
  v.policy = db.policy(model);
  const detect::Calibration cal = db.calibration(model);
  v.calibration_cars = cal.size();
  v.finest_rate = cal.finest_rate();
  std::tie(v.data_from, v.data_to) = db.data_period(model);
  return v;
}

inline nlohmann::json to_json(const PolicyView& v) {
  auto number = [](double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(); };
  return {{"alarm_rate", v.policy ? nlohmann::json(v.policy->policy.alarm_rate) : nlohmann::json()},
          {"watch_rate", v.policy ? nlohmann::json(v.policy->policy.watch_rate) : nlohmann::json()},
          {"policy_basis", v.policy ? nlohmann::json(v.policy->basis) : nlohmann::json()},
          {"calibration_cars", v.calibration_cars},
          {"finest_rate", v.finest_rate},
          {"data_from", number(v.data_from)},
          {"data_to", number(v.data_to)}};
}

}  // namespace dyad::cli
