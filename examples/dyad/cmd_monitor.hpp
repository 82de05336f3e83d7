// dyad monitor: score what is new in a long CSV against a calibrated model, store it in the
// fleet database and update each car's status; status changes go to stdout as JSON lines.
// dyad status: the fleet's current verdicts, or one car's history, from the database.
#pragma once

#include "cmd_score.hpp"
#include "common.hpp"

#include <dyad/monitor/monitor.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <optional>

namespace dyad::cli {

struct MonitorArgs {
  std::string model, db, data;
  double alarm_rate = 0.01;
  std::optional<double> watch_rate;
  std::size_t window = 0;
  std::optional<int> threads;
  std::optional<double> cost_miss, cost_inspection;
};

inline void add_monitor_options(CLI::App* cmd, MonitorArgs& a) {
  cmd->add_option("--model", a.model, "Calibrated model (.safetensors, from dyad train or dyad calibrate)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--db", a.db, "Fleet database (SQLite; created when missing)")->required();
  cmd->add_option("--data", a.data, "New segments, long CSV; segments already in the database are skipped")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--alarm-rate", a.alarm_rate, "False-alarm rate on healthy cars: alarm when the p-value is at most this")
      ->capture_default_str()
      ->check(CLI::Range(1e-9, 0.999999));
  cmd->add_option("--watch-rate", a.watch_rate, "Watch when the p-value is at most this (default: 5x the alarm rate)")
      ->check(CLI::Range(1e-9, 0.999999));
  cmd->add_option("--window", a.window, "A car's score is over its last N segments (default: all)");
  cmd->add_option("--cost-miss", a.cost_miss,
                  "With --cost-inspection: choose the alarm rate that minimises the expected cost on the calibration cars")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--cost-inspection", a.cost_inspection, "Cost of inspecting one flagged car (with --cost-miss)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--threads", a.threads, threads_help())->check(CLI::Range(1, limits::threads));
}

// The status thresholds: the asked rates, or the cost-based operating point; warns when no car
// can reach the alarm rate with this calibration.
inline detect::AlarmPolicy alarm_policy(const MonitorArgs& a, const detect::Calibration& cal) {
  detect::AlarmPolicy p;
  p.alarm_rate = a.alarm_rate;
  if (a.cost_miss.has_value() != a.cost_inspection.has_value())
    throw std::invalid_argument("--cost-miss and --cost-inspection go together");
  if (a.cost_miss) {
    p.alarm_rate = cal.cost_alarm_rate(cal.kind(), *a.cost_miss, *a.cost_inspection);
    std::cerr << "dyad monitor: the cost-based operating point on the calibration cars is an alarm rate of " << p.alarm_rate
              << "\n";
    if (p.alarm_rate == 0)
      std::cerr << "dyad monitor: warning: at these costs no car is worth an alarm; every status will be ok or watch\n";
  }
  if (p.alarm_rate == 0) p.alarm_rate = 1e-12;  // alarm nothing (p-values are at least 1/(n+1))
  p.watch_rate = a.watch_rate.value_or(std::min(0.999999, 5 * p.alarm_rate));
  if (p.alarm_rate < cal.finest_rate() && !a.cost_miss)
    std::cerr << "dyad monitor: warning: --alarm-rate " << p.alarm_rate << " is below the finest rate this calibration can state, 1/"
              << cal.size() + 1 << " = " << cal.finest_rate() << " (" << cal.size()
              << " calibration cars): no car can alarm. Calibrate on more healthy cars (dyad calibrate)\n";
  p.validate();
  return p;
}

inline int run_monitor(const MonitorArgs& a) {
  const auto start = std::chrono::steady_clock::now();
  const Model<float> model = load_for_scoring(a.model, "");
  if (model.calibration().empty())
    throw std::invalid_argument(a.model + ": the model is not calibrated, so its scores have no p-value; train it with "
                                "--calibration-fraction above 0 or run dyad calibrate");
  monitor::MonitorOptions options;
  options.policy = alarm_policy(a, model.calibration());
  options.window = a.window;
  const Dataset data = read_model_data(a.data, model.config());
  warn_out_of_range(model, data, "dyad monitor");
  monitor::FleetDb db(a.db);
  monitor::Monitor<Model<float>> mon(model, a.model, db, options, a.threads.value_or(hardware_threads()));
  const monitor::UpdateReport r = mon.update(data);
  for (const auto& c : r.changes) std::printf("%s\n", monitor::to_json(c).dump().c_str());
  std::fflush(stdout);
  std::size_t alarms = 0, watches = 0;
  for (const auto& c : db.fleet(mon.id())) {
    alarms += c.status == detect::Status::alarm;
    watches += c.status == detect::Status::watch;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cerr << "dyad monitor: " << r.new_segments << " new of " << r.segments << " segments scored with model " << mon.id()
            << ", " << r.cars << " cars updated, " << r.changes.size() << " status changes in " << clock(seconds)
            << "; the fleet now has " << alarms << " alarm(s) and " << watches << " on watch (alarm rate " << options.policy.alarm_rate
            << ", watch rate " << options.policy.watch_rate << ")\n";
  return 0;
}

struct StatusArgs {
  std::string db, car, model_id;
  bool json = false;
};

inline void add_status_options(CLI::App* cmd, StatusArgs& a) {
  cmd->add_option("--db", a.db, "Fleet database written by dyad monitor")->required()->check(CLI::ExistingFile);
  cmd->add_option("--car", a.car, "One car's history instead of the fleet table");
  cmd->add_option("--model-id", a.model_id, "The model whose verdicts to show (default: the one used last)");
  cmd->add_flag("--json", a.json, "Print JSON instead of a table");
}

inline nlohmann::json car_state_json(const monitor::CarState& c) {
  return {{"car", c.car},         {"status", detect::status_name(c.status)}, {"p_value", c.p_value},
          {"score", c.score},     {"segments", c.segments},                  {"signals", monitor::signals_json(c.signals)},
          {"model_id", c.model_id}, {"time", std::isnan(c.time) ? nlohmann::json() : nlohmann::json(c.time)},
          {"updated", c.updated}};
}

inline int run_status(const StatusArgs& a) {
  monitor::FleetDb db(a.db);
  if (!a.car.empty()) {
    const auto h = db.history(a.car);
    if (h.empty()) throw std::invalid_argument(a.db + ": no car '" + a.car + "' in the fleet database");
    if (a.json) {
      nlohmann::json j = {{"car", a.car}, {"history", nlohmann::json::array()}};
      for (const auto& c : h) j["history"].push_back(car_state_json(c));
      std::printf("%s\n", j.dump().c_str());
      return 0;
    }
    std::printf("%-20s %-16s %-6s %9s %12s %8s  %s\n", "updated", "model", "status", "p_value", "score", "segments", "top signal");
    for (const auto& c : h)
      std::printf("%-20s %-16s %-6s %9.4g %12.5g %8lld  %s\n", c.updated.c_str(), c.model_id.c_str(), detect::status_name(c.status),
                  c.p_value, c.score, static_cast<long long>(c.segments), c.signals.empty() ? "" : c.signals.front().name.c_str());
    return 0;
  }
  const std::string model = a.model_id.empty() ? db.latest_model() : a.model_id;
  const auto fleet = model.empty() ? std::vector<monitor::CarState>{} : db.fleet(model);
  if (!a.model_id.empty() && fleet.empty()) throw std::invalid_argument(a.db + ": no car has a verdict under model '" + a.model_id + "'");
  if (a.json) {
    nlohmann::json j = {{"model_id", model.empty() ? nlohmann::json() : nlohmann::json(model)}, {"cars", nlohmann::json::array()}};
    for (const auto& c : fleet) j["cars"].push_back(car_state_json(c));
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  if (fleet.empty()) {
    std::printf("no verdicts yet: run dyad monitor first\n");
    return 0;
  }
  std::printf("model %s\n%-16s %-6s %9s %12s %8s  %s\n", model.c_str(), "car", "status", "p_value", "score", "segments",
              "most abnormal signal (ratio to healthy median): hint");
  for (const auto& c : fleet) {
    std::string why;
    if (!c.signals.empty()) {
      const auto& s = c.signals.front();
      char ratio[32];
      std::snprintf(ratio, sizeof ratio, "%.3g", s.ratio);
      why = s.name + " (x" + ratio + ")";
      if (c.status != detect::Status::ok) why += ": " + std::string(detect::signal_hint(s.name));
    }
    std::printf("%-16s %-6s %9.4g %12.5g %8lld  %s\n", c.car.c_str(), detect::status_name(c.status), c.p_value, c.score,
                static_cast<long long>(c.segments), why.c_str());
  }
  return 0;
}

}  // namespace dyad::cli
