// dyad monitor: score what is new in a long CSV against a calibrated model, store it in the
// fleet database and update each car's status; status changes go to stdout as JSON lines.
// dyad status: the fleet's current verdicts, or one car's history, from the database.

#include "commands.hpp"
#include "common.hpp"
#include "follow.hpp"
#include "policy_view.hpp"
#include "scoring.hpp"

#include <dyad/ingest/ingest.hpp>
#include <dyad/monitor/monitor.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace dyad::cli {

struct MonitorArgs {
  std::string model, db, data, spec, reject_file;
  std::optional<double> alarm_rate, watch_rate;
  std::size_t window = 0;
  std::optional<int> threads;
  std::optional<double> cost_miss, cost_inspection;
  bool follow = false, promote = false, allow_drift = false;
  std::size_t commit_every = 1000;
  double commit_seconds = 10;
  std::string precision = "fp32";
};

inline void add_monitor_options(CLI::App* cmd, MonitorArgs& a) {
  cmd->add_option("--model", a.model, "Calibrated model (.safetensors, from dyad train or dyad calibrate)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--db", a.db, "Fleet database (SQLite; created when missing)")->required();
  auto* data = cmd->add_option("--data", a.data,
                               "New segments, long CSV or segment store (dyad pack); segments already in the database are skipped")
                   ->check(CLI::ExistingFile);
  auto* follow = cmd->add_flag("--follow", a.follow,
                               "Read the long CSV from standard input as it arrives (instead of --data), committing "
                               "batches as --commit-every and --commit-seconds say");
  data->excludes(follow);
  cmd->add_option("--spec", a.spec, "--data is a raw telematics export: cut it into windows with this ingest spec (dyad ingest)")
      ->check(CLI::ExistingFile)
      ->excludes(follow);
  cmd->add_option("--commit-every", a.commit_every, "--follow and --spec: commit after this many complete segments")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--commit-seconds", a.commit_seconds, "--follow: or after this many seconds, whichever comes first")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 86400.0));
  cmd->add_option("--reject-file", a.reject_file,
                  "--follow: append the rows and segments set aside (with the reason on stderr) to this long CSV")
      ->needs(follow);
  cmd->add_option("--alarm-rate", a.alarm_rate,
                  "False-alarm rate on healthy cars: alarm when the p-value is at most this (default: the policy the database "
                  "holds for the model, else 0.01); a new rate is stored and re-applied to every car")
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
  add_precision_option(cmd, a.precision);
  cmd->add_flag("--allow-drift", a.allow_drift,
                "Score a column whose sign, units or constancy contradict the training data (recorded in the database), "
                "instead of refusing it; --follow always does, with a warning");
  cmd->add_flag("--promote", a.promote,
                "Make --model the database's production model (recorded); without it, a database whose production model is "
                "another refuses --model");
}

// A model for verdicts: it must carry a calibration.
inline Ensemble<float> load_calibrated(const std::string& path) {
  Ensemble<float> model = load_for_scoring(path, "");
  if (model.calibration().empty())
    throw std::invalid_argument(path +
                                ": the model is not calibrated, so its scores have no p-value; train it with "
                                "--calibration-fraction above 0 or run dyad calibrate");
  return model;
}

// The status thresholds: the asked rates, the cost-based operating point, or else the policy the
// database holds (`stored`), or else the default. A rate no car can reach with this calibration
// is refused (UsageError) with the rate it can reach and the remedies: never a silent "all ok".
inline std::pair<detect::AlarmPolicy, std::string> alarm_policy(const MonitorArgs& a, const detect::Calibration& cal,
                                                                const std::optional<monitor::StoredPolicy>& stored,
                                                                const char* who = "dyad monitor") {
  if (a.cost_miss.has_value() != a.cost_inspection.has_value())
    throw std::invalid_argument("--cost-miss and --cost-inspection go together");
  if (a.cost_miss && a.alarm_rate)
    throw std::invalid_argument("--alarm-rate and --cost-miss choose the alarm rate two ways; give one");
  detect::AlarmPolicy p;
  std::string basis = "asked";
  if (a.cost_miss) {
    basis = "cost";
    p.alarm_rate = cal.cost_alarm_rate(cal.kind(), *a.cost_miss, *a.cost_inspection);
    std::cerr << who << ": the cost-based operating point on the calibration cars is an alarm rate of " << p.alarm_rate << "\n";
    if (p.alarm_rate == 0) {
      std::cerr << who << ": warning: at these costs no car is worth an alarm; every status will be ok or watch\n";
      p.alarm_rate = 1e-12;  // alarm nothing (p-values are at least 1/(n+1))
    }
  } else if (a.alarm_rate) {
    p.alarm_rate = *a.alarm_rate;
  } else if (stored && !a.watch_rate) {
    std::cerr << who << ": the alarm policy stored for this model (" << stored->basis << ", " << stored->recorded
              << "): alarm rate " << stored->policy.alarm_rate << ", watch rate " << stored->policy.watch_rate << "\n";
    return {stored->policy, stored->basis};
  } else {
    p.alarm_rate = stored ? stored->policy.alarm_rate : detect::AlarmPolicy{}.alarm_rate;
    basis = stored ? stored->basis : "default";
  }
  p.watch_rate = a.watch_rate.value_or(std::min(0.999999, 5 * p.alarm_rate));
  if (p.alarm_rate < cal.finest_rate() && !a.cost_miss) {
    const std::string finest = rate_text(cal.finest_rate()), reachable = rate_at_least(cal.finest_rate());
    throw UsageError(std::string(a.alarm_rate ? "--alarm-rate " : "the default --alarm-rate ") + rate_text(p.alarm_rate) +
                     " is below the finest rate this model's calibration can state, 1/" + std::to_string(cal.size() + 1) + " = " +
                     finest + " (" + std::to_string(cal.size()) +
                     " healthy calibration cars): no car could ever alarm. That rate needs at least " +
                     std::to_string(detect::calibration_cars_for(p.alarm_rate)) +
                     " healthy calibration cars. Calibrate on more healthy cars the model did not train on (dyad calibrate), "
                     "train with a larger --calibration-fraction, or ask for --alarm-rate " +
                     reachable + " or above");
  }
  p.validate();
  return {p, basis};
}

inline void print_changes(const monitor::UpdateReport& r) {
  for (const auto& c : r.changes) std::printf("%s\n", monitor::to_json(c).dump().c_str());
  std::fflush(stdout);
}

inline int run_monitor(const MonitorArgs& a) {
  if (a.data.empty() && !a.follow) throw std::invalid_argument("monitor needs --data FILE or --follow (the long CSV on stdin)");
  // Before any thread starts (they inherit the blocked stop signals, see follow.hpp).
  std::optional<StopSignals> stop_signals;
  if (a.follow) stop_signals.emplace();
  check_output_not_input(a.db, "--db", {{"--model", a.model}, {"--data", a.data}, {"--spec", a.spec}});
  check_output_not_input(a.reject_file, "--reject-file", {{"--model", a.model}, {"--db", a.db}});
  const auto start = std::chrono::steady_clock::now();
  const Ensemble<float> model = load_calibrated(a.model);
  monitor::MonitorOptions options;
  options.window = a.window;
  options.precision = chosen_precision(a.precision, "dyad monitor");
  options.promote = a.promote;
  // The policy is settled, or refused, before the database is created or changed.
  const std::string id = monitor::model_id(a.model);
  std::optional<monitor::StoredPolicy> stored;
  std::string production;  // the database's production model before this run
  if (std::error_code ec; std::filesystem::is_regular_file(a.db, ec) && std::filesystem::file_size(a.db, ec) > 0) {
    try {
      monitor::FleetDb existing(a.db, sql::Access::read_only);
      stored = existing.policy(id);
      production = existing.active_model();
    } catch (const std::exception&) {
      // Not readable as a fleet database yet (another monitor is creating it), or not one at
      // all: the read-write open below says which, under the write lock.
    }
  }
  std::tie(options.policy, options.policy_basis) = alarm_policy(a, model.calibration(), stored);
  // A whole --data file is read and checked before the database is created or changed.
  std::optional<Dataset> whole;
  std::vector<InputDrift> whole_drift;
  if (!a.follow && a.spec.empty()) {
    whole.emplace(read_model_data(a.data, model.config()));
    warn_out_of_range(model, *whole, "dyad monitor");
    whole_drift = check_input_drift(model, *whole, a.allow_drift, "dyad monitor");
  }
  monitor::FleetDb db(a.db);
  monitor::Monitor<Ensemble<float>> mon(model, a.model, db, options, a.threads.value_or(hardware_threads()));
  std::vector<monitor::StatusChange> policy_changes;
  {
    // A new policy applies at once to every car's stored p-value, new data or not.
    const monitor::UpdateReport r = mon.apply_policy();
    print_changes(r);
    if (!r.changes.empty())
      std::cerr << "dyad monitor: the new alarm policy changed " << r.changes.size() << " car status(es), without rescoring\n";
    policy_changes = r.changes;
    if (!production.empty() && production != id)
      std::cerr << "dyad monitor: " << a.db << ": the production model is now " << id << " (" << a.model << "), was " << production
                << "; its verdicts are those of the cars in this run's data\n";
  }
  monitor::UpdateReport total;
  total.changes = policy_changes;
  std::size_t batches = 0;
  // Each batch's columns are checked against the training data before it is scored: drift
  // stops the run (--spec: before the batch is committed) unless allowed; a --follow stream
  // goes on with a warning. What was scored despite drift is recorded.
  auto update = [&](const Dataset& data, const std::vector<InputDrift>* checked = nullptr) {
    const std::vector<InputDrift> drift =
        checked ? *checked : check_input_drift(model, data, a.allow_drift || a.follow, "dyad monitor");
    const monitor::UpdateReport r = mon.update(data);
    if (!drift.empty()) db.add_input_checks(mon.id(), drift);
    print_changes(r);
    total.segments += r.segments;
    total.new_segments += r.new_segments;
    total.cars += r.cars;
    total.changes.insert(total.changes.end(), r.changes.begin(), r.changes.end());
    ++batches;
  };
  FollowReport followed;
  std::optional<Rejects> rejects;
  if (a.follow) {
    rejects.emplace(a.reject_file, "stdin");
    followed = follow_stdin(model, *stop_signals, a.commit_every, a.commit_seconds, *rejects, update);
  } else if (!a.spec.empty()) {
    // A raw export: its windows are cut into batches of --commit-every segments as ingest writes
    // them, and each is scored and committed, so memory holds one batch, not the whole export.
    rejects.emplace("", a.data + " (ingested)");
    BatchingBuffer windows_buffer(a.commit_every, rejects->source(), [&](const std::string& header, const auto& batch) {
      Dataset data = valid_segments(model, header, batch, *rejects);
      if (data.size() == 0) return;
      warn_out_of_range(model, data, "dyad monitor");
      update(data);
    });
    std::ostream windows(&windows_buffer);
    windows.exceptions(std::ios::badbit);  // an error while scoring a batch is rethrown, not a silent bad stream
    ingest::Ingestor ingestor(ingest::spec_from_file(a.spec), windows);
    ingestor.read(std::filesystem::path(a.data));
    const ingest::Report report = ingestor.finish();
    windows.flush();
    for (const auto& r : windows_buffer.finish()) rejects->row(windows_buffer.header(), r);
    std::cerr << "dyad monitor: ingested " << report.total.windows << " windows from " << report.total.rows << " rows of " << a.data
              << " (dyad ingest gives the full account of what it dropped)\n";
    for (const auto& w : report.warnings) std::cerr << "dyad monitor: warning: " << w << "\n";
  } else {
    update(*whole, &whole_drift);
  }
  std::size_t alarms = 0, watches = 0;
  for (const auto& c : db.fleet(mon.id())) {
    alarms += c.status == detect::Status::alarm;
    watches += c.status == detect::Status::watch;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cerr << "dyad monitor: " << total.new_segments << " new of " << total.segments << " segments scored with model " << mon.id()
            << (a.follow ? " in " + std::to_string(batches) + " committed batches" : std::string()) << ", " << total.cars
            << " car updates, " << total.changes.size() << " status changes in " << clock(seconds) << "; the fleet now has "
            << alarms << " alarm(s) and " << watches << " on watch (alarm rate " << options.policy.alarm_rate << ", watch rate "
            << options.policy.watch_rate << ")\n";
  if (rejects && (rejects->rows() || rejects->segments()))
    std::cerr << "dyad monitor: set aside " << rejects->rows() << " row(s) and " << rejects->segments() << " segment(s)"
              << (rejects->path().empty() ? std::string(" (--reject-file keeps them)") : " in " + rejects->path()) << "\n";
  if (followed.stop_signal)
    std::cerr << "dyad monitor: stopped by " << (followed.stop_signal == SIGTERM ? "SIGTERM" : "SIGINT")
              << " after committing every complete segment received\n";
  return 0;
}

struct CompareArgs {
  MonitorArgs monitor;  // --model (the new one), --db, --data, the rates and --window
  std::string against;
  bool json = false;
};

inline void add_compare_options(CLI::App* cmd, CompareArgs& a) {
  MonitorArgs& m = a.monitor;
  cmd->add_option("--model", m.model, "The new calibrated model (.safetensors)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--db", m.db, "Fleet database written by dyad monitor (read only)")->required();
  cmd->add_option("--data", m.data, "Recent segments (long CSV or segment store) for the new model to judge the cars on")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--against", a.against, "The model id to compare with (default: the one used last)");
  cmd->add_option("--alarm-rate", m.alarm_rate, "As for dyad monitor (default: the policy in force for the database's model)")
      ->check(CLI::Range(1e-9, 0.999999));
  cmd->add_option("--watch-rate", m.watch_rate, "As for dyad monitor (default: 5x the alarm rate)")
      ->check(CLI::Range(1e-9, 0.999999));
  cmd->add_option("--window", m.window, "A car's score is over its last N segments of --data (default: all)");
  cmd->add_option("--threads", m.threads, threads_help())->check(CLI::Range(1, limits::threads));
  add_precision_option(cmd, m.precision);
  cmd->add_flag("--json", a.json, "Print one JSON object instead of a table");
}

// What the new model would say about the fleet, against the database's current verdicts.
inline int run_compare(const CompareArgs& a) {
  const MonitorArgs& m = a.monitor;
  const Ensemble<float> model = load_calibrated(m.model);
  monitor::MonitorOptions options;
  options.window = m.window;
  monitor::FleetDb db(m.db, sql::Access::read_only);
  const std::string old_id = a.against.empty() ? db.active_model() : a.against;
  if (old_id.empty()) throw std::invalid_argument(m.db + ": no verdicts yet to compare with (run dyad monitor first)");
  std::map<std::string, monitor::CarState> old;
  for (auto& c : db.fleet(old_id)) old.emplace(c.car, std::move(c));
  if (old.empty()) throw std::invalid_argument(m.db + ": no car has a verdict under model '" + old_id + "'");
  // Without rates of its own, the new model is judged under the policy in force for the old one.
  options.policy = alarm_policy(m, model.calibration(), db.policy(old_id), "dyad compare").first;
  const Dataset data = read_model_data(m.data, model.config());
  warn_out_of_range(model, data, "dyad compare");
  Ensemble<float>::Workspace ws(m.threads.value_or(hardware_threads()), chosen_precision(m.precision, "dyad compare"));
  const auto fresh = monitor::verdicts(model, ws, data, options);
  nlohmann::json changed = nlohmann::json::array();
  std::size_t compared = 0;
  for (const auto& v : fresh) {
    const auto it = old.find(v.car);
    if (it == old.end()) continue;
    ++compared;
    if (it->second.status == v.status) continue;
    changed.push_back({{"car", v.car},
                       {"old_status", detect::status_name(it->second.status)},
                       {"new_status", detect::status_name(v.status)},
                       {"old_p_value", it->second.p_value},
                       {"new_p_value", v.p_value},
                       {"new_score", v.score},
                       {"top_signal", v.signals.empty() ? std::string() : v.signals.front().name}});
  }
  const std::string new_id = monitor::model_id(m.model);
  if (a.json) {
    std::printf("%s\n", nlohmann::json{{"old_model", old_id}, {"new_model", new_id}, {"cars", compared}, {"changed", changed}}
                            .dump()
                            .c_str());
    return 0;
  }
  std::printf("model %s (database) -> %s (%s): %zu of %zu cars would change status\n", old_id.c_str(), new_id.c_str(),
              m.model.c_str(), changed.size(), compared);
  if (!changed.empty()) std::printf("%-16s %-6s %9s   %-6s %9s  %s\n", "car", "old", "p_value", "new", "p_value", "top signal");
  for (const auto& c : changed)
    std::printf("%-16s %-6s %9.4g   %-6s %9.4g  %s\n", c["car"].get<std::string>().c_str(),
                c["old_status"].get<std::string>().c_str(), c["old_p_value"].get<double>(),
                c["new_status"].get<std::string>().c_str(), c["new_p_value"].get<double>(),
                c["top_signal"].get<std::string>().c_str());
  if (compared < fresh.size()) std::printf("(%zu cars of --data have no verdict in the database yet)\n", fresh.size() - compared);
  return 0;
}

struct StatusArgs {
  std::string db, car, model_id;
  bool json = false;
};

inline void add_status_options(CLI::App* cmd, StatusArgs& a) {
  cmd->add_option("--db", a.db, "Fleet database written by dyad monitor (read only)")->required();
  cmd->add_option("--car", a.car, "One car's history instead of the fleet table");
  cmd->add_option("--model-id", a.model_id, "The model whose verdicts to show (default: the one used last)");
  cmd->add_flag("--json", a.json, "Print JSON instead of a table");
}

inline nlohmann::json car_state_json(const monitor::CarState& c) {
  return {{"car", c.car},           {"status", detect::status_name(c.status)},
          {"p_value", c.p_value},   {"score", c.score},
          {"segments", c.segments}, {"signals", monitor::signals_json(c.signals)},
          {"model_id", c.model_id}, {"time", std::isnan(c.time) ? nlohmann::json() : nlohmann::json(c.time)},
          {"updated", c.updated}};
}

inline int run_status(const StatusArgs& a) {
  monitor::FleetDb db(a.db, sql::Access::read_only);
  if (!a.car.empty()) {
    const auto h = db.history(a.car);
    if (h.empty()) throw std::invalid_argument(a.db + ": no car '" + a.car + "' in the fleet database");
    if (a.json) {
      nlohmann::json j = {{"car", a.car}, {"history", nlohmann::json::array()}};
      for (const auto& c : h) j["history"].push_back(car_state_json(c));
      std::printf("%s\n", j.dump().c_str());
      return 0;
    }
    // The data time (of the car's latest segment at that update) as a date, beside when it ran.
    std::printf("%-20s %-20s %-16s %-6s %9s %12s %8s  %s\n", "data time (UTC)", "updated", "model", "status", "p_value", "score",
                "segments", "top signal");
    for (const auto& c : h)
      std::printf("%-20s %-20s %-16s %-6s %9.4g %12.5g %8lld  %s\n", monitor::data_time_text(c.time).c_str(), c.updated.c_str(),
                  c.model_id.c_str(), detect::status_name(c.status), c.p_value, c.score, static_cast<long long>(c.segments),
                  c.signals.empty() ? "" : c.signals.front().name.c_str());
    return 0;
  }
  const std::string model = a.model_id.empty() ? db.active_model() : a.model_id;
  const auto fleet = model.empty() ? std::vector<monitor::CarState>{} : db.fleet(model);
  if (!a.model_id.empty() && fleet.empty())
    throw std::invalid_argument(a.db + ": no car has a verdict under model '" + a.model_id + "'");
  const std::optional<PolicyView> policy = fleet.empty() ? std::nullopt : std::optional(policy_view(db, model));
  const std::vector<std::string> others = model.empty() ? std::vector<std::string>{} : db.other_models(model);
  if (a.json) {
    nlohmann::json j = {{"model_id", model.empty() ? nlohmann::json() : nlohmann::json(model)}, {"other_models", others}};
    if (policy) j.update(to_json(*policy));
    j["cars"] = nlohmann::json::array();
    for (const auto& c : fleet) j["cars"].push_back(car_state_json(c));
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  if (fleet.empty()) {
    std::printf("no verdicts yet: run dyad monitor first\n");
    return 0;
  }
  std::printf("model %s%s\n%s\n", model.c_str(), model == db.active_model() ? " (production)" : " (not the production model)",
              policy->text().c_str());
  if (!others.empty())
    std::printf("(the database also holds the verdicts of %zu other model(s), %s%s: dyad status --model-id ID shows them)\n",
                others.size(), others.front().c_str(), others.size() > 1 ? ", ..." : "");
  std::printf("%-16s %-6s %9s %12s %8s  %s\n", "car", "status", "p_value", "score", "segments",
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

// The table entries (commands.hpp): the arguments live here, filled by CLI11, read by run.
namespace {
MonitorArgs monitor_args;
CompareArgs compare_args;
StatusArgs status_args;
}  // namespace

namespace command {
void monitor_options(CLI::App* cmd) { add_monitor_options(cmd, monitor_args); }
int monitor_run() { return run_monitor(monitor_args); }
void compare_options(CLI::App* cmd) { add_compare_options(cmd, compare_args); }
int compare_run() { return run_compare(compare_args); }
void status_options(CLI::App* cmd) { add_status_options(cmd, status_args); }
int status_run() { return run_status(status_args); }
}  // namespace command

}  // namespace dyad::cli
