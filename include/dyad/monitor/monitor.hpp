// dyad::monitor::Monitor: keeps a fleet's verdicts current as data arrives. Each update scores
// only the segments the database does not hold for the model, stores them, and recomputes the
// affected cars' robust scores over their last `window` segments, p-values (against the
// model's calibration), statuses and explanations, all in one transaction.
#pragma once

#include "dyad/core/precision.hpp"
#include "dyad/data/dataset.hpp"
#include "dyad/detect/calibration.hpp"
#include "dyad/detect/scores.hpp"
#include "dyad/monitor/fleet_db.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace dyad::monitor {

// The id of a model file: the FNV-1a 64-bit hash of its bytes, as 16 hex digits. Any change to
// the weights, configuration or calibration gives a new id.
inline std::string model_id(const std::filesystem::path& checkpoint) {
  std::ifstream in(checkpoint, std::ios::binary);
  if (!in) throw std::runtime_error(checkpoint.string() + ": cannot open the model file");
  std::uint64_t h = 0xcbf29ce484222325ull;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    for (std::streamsize i = 0; i < in.gcount(); ++i) h = (h ^ static_cast<unsigned char>(buf[i])) * 0x100000001b3ull;
    if (!in) break;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

// A car whose status changed in an update. A car seen for the first time has no old status.
struct StatusChange {
  std::string car;
  std::optional<detect::Status> old_status;
  detect::Status new_status = detect::Status::ok;
  double p_value = 1, score = 0;
  std::string top_signal;
  double time = std::nan("");  // the data time of the car's latest segment
};

// One JSON object per change: what `dyad monitor` prints, one per line.
inline nlohmann::json to_json(const StatusChange& c) {
  return {{"car", c.car},
          {"old_status", c.old_status ? nlohmann::json(detect::status_name(*c.old_status)) : nlohmann::json()},
          {"new_status", detect::status_name(c.new_status)},
          {"p_value", c.p_value},
          {"score", c.score},
          {"top_signal", c.top_signal},
          {"time", std::isnan(c.time) ? nlohmann::json() : nlohmann::json(c.time)}};
}

struct MonitorOptions {
  detect::AlarmPolicy policy;
  std::string policy_basis = "asked";  // how the rates were chosen, as the database records it
  // Make this model the database's production model when another is. Without it, a database
  // whose production model is another refuses the monitor: one model's verdicts per database.
  bool promote = false;
  std::size_t window = 0;                 // a car's score is over its last `window` segments; 0: all of them
  Precision precision = Precision::fp32;  // of the scoring (Model::Workspace)
};

struct UpdateReport {
  std::size_t segments = 0;      // in the data
  std::size_t new_segments = 0;  // scored and stored (the rest were in the database)
  std::size_t cars = 0;          // whose state was recomputed
  std::vector<StatusChange> changes;
};

// The segments of each car of `data` that a window of `window` segments holds: its latest by
// timestamp, then segment id (every segment when window is 0), in data order.
inline std::vector<std::size_t> window_segments(const Dataset& data, std::size_t window) {
  std::vector<std::size_t> all(data.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  if (window == 0) return all;
  std::map<std::string, std::vector<std::size_t>> by_car;
  for (std::size_t i : all) by_car[data.meta(i).car].push_back(i);
  std::vector<std::size_t> out;
  for (auto& [car, rows] : by_car) {
    auto key = [&](std::size_t i) {  // as the database orders: latest time first, no time last
      const double t = data.meta(i).timestamp;
      return std::tuple(!std::isnan(t), std::isnan(t) ? 0.0 : t, data.meta(i).segment);
    };
    std::sort(rows.begin(), rows.end(), [&](std::size_t a, std::size_t b) { return key(a) > key(b); });
    rows.resize(std::min(rows.size(), window));
    out.insert(out.end(), rows.begin(), rows.end());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The verdict on every car of `data` under a calibrated model, each over its last `window`
// segments, without a database: what a model would say (dyad compare).
template <class M>
std::vector<detect::Verdict> verdicts(const M& model, typename M::Workspace& ws, const Dataset& data,
                                      const MonitorOptions& options) {
  if (model.calibration().empty()) throw std::invalid_argument("dyad::monitor::verdicts: the model is not calibrated");
  const std::vector<std::size_t> rows = window_segments(data, options.window);
  const ScoreTable t = to_score_table(data, rows, model.score(ws, data, rows));
  return model.calibration().verdicts(t, options.policy);
}

template <class M>
class Monitor {
 public:
  // `model` must be calibrated; it and `db` must outlive the monitor. `threads` score.
  Monitor(const M& model, const std::filesystem::path& model_path, FleetDb& db, MonitorOptions options, int threads = 1)
      : model_(model), db_(db), options_(options), workspace_(threads, options.precision) {
    options_.policy.validate();
    if (model.calibration().empty())
      throw std::invalid_argument(model_path.string() +
                                  ": the model is not calibrated, so its scores have no p-value; train it with a "
                                  "calibration fraction above 0 or run dyad calibrate");
    id_ = model_id(model_path);
    record_.id = id_;
    record_.path = std::filesystem::absolute(model_path).string();
    record_.config = model.config().to_json();
    if constexpr (requires { model.size(); })  // a dyad::Ensemble: how many networks score
      if (model.size() > 1) record_.config["ensemble"] = model.size();
    const auto& n = model.normalizer();
    record_.normalizer = {{"columns", n.columns()}, {"mean", n.mean()}, {"scale", n.scale()}};
    record_.calibration = model.calibration().to_json();
  }

  const std::string& id() const { return id_; }
  const detect::AlarmPolicy& policy() const { return options_.policy; }

  // Makes the options' alarm policy the one in force for this model in the database. When the
  // database held another (or none), the change is recorded and every car's status is the new
  // policy applied to its stored p-value, without rescoring: two cars with the same p-value
  // never have different statuses. Returns the cars whose status changed.
  UpdateReport apply_policy() {
    sql::Transaction t(db_.database());
    db_.add_model(record_);
    claim_production();
    UpdateReport r;
    sync_policy(r);
    t.commit();
    return r;
  }

  // Scores the segments of `data` not yet stored for this model and updates their cars. The
  // scoring runs outside any transaction; storing the segments and the cars' new states is one
  // transaction, so on any error (or a kill) nothing of this update is kept, and other writers
  // wait only for the database work, not for the scoring.
  UpdateReport update(const Dataset& data) {
    UpdateReport r;
    r.segments = data.size();
    std::vector<std::size_t> fresh = unscored(data, [&](const auto& keys) { return db_.unscored(id_, keys); });
    if (fresh.empty()) return r;
    const Scores s = model_.score(workspace_, data, fresh);
    const ScoreTable table = to_score_table(data, fresh, s);

    sql::Transaction t(db_.database());
    db_.add_model(record_);
    claim_production();
    sync_policy(r);
    // Another writer may have stored some of them meanwhile: keep the rows still missing.
    const std::vector<bool> still = db_.unscored(id_, keys_of(data, fresh));
    const auto& cal = model_.calibration();
    std::vector<SegmentRecord> rows;
    std::set<std::string> cars;
    for (std::size_t j = 0; j < fresh.size(); ++j) {
      if (!still[j]) continue;
      const SegmentMeta& m = data.meta(fresh[j]);
      SegmentRecord& row = rows.emplace_back();
      row.car = m.car;
      row.segment = m.segment;
      row.time = m.timestamp;
      row.mileage = m.mileage;
      if (data.labelled()) row.label = m.label;
      for (const auto& [name, values] : table.columns)
        if (name.size() < 6 || name.compare(name.size() - 6, 6, "_error") != 0 || name == "rec_error") row.scores[name] = values[j];
      for (const auto& signal : cal.signals()) row.errors.push_back(table.column(signal + "_error")[j]);
      cars.insert(m.car);
    }
    r.new_segments = rows.size();
    db_.add_segments(id_, rows, cal.signals());
    const std::string now = detail::utc_now();
    for (const auto& car : cars) {
      const auto before = db_.car_state(car, id_);
      CarState c = state_of(car, now);
      db_.set_car_state(c);
      ++r.cars;
      if (before ? before->status != c.status : c.status != detect::Status::ok)
        r.changes.push_back({car, before ? std::optional(before->status) : std::nullopt, c.status, c.p_value, c.score,
                             c.signals.empty() ? std::string() : c.signals.front().name, c.time});
    }
    t.commit();
    return r;
  }

 private:
  static std::vector<std::pair<std::string, std::int64_t>> keys_of(const Dataset& data, const std::vector<std::size_t>& rows) {
    std::vector<std::pair<std::string, std::int64_t>> keys;
    keys.reserve(rows.size());
    for (std::size_t i : rows) keys.emplace_back(data.meta(i).car, data.meta(i).segment);
    return keys;
  }
  // The rows of `data` whose (car, segment) `missing` reports absent, each key once.
  template <class Missing>
  static std::vector<std::size_t> unscored(const Dataset& data, Missing missing) {
    std::vector<std::size_t> rows;
    std::set<std::pair<std::string, std::int64_t>> seen;
    for (std::size_t i = 0; i < data.size(); ++i)
      if (seen.emplace(data.meta(i).car, data.meta(i).segment).second) rows.push_back(i);
    const std::vector<bool> absent = missing(keys_of(data, rows));
    std::vector<std::size_t> out;
    for (std::size_t j = 0; j < rows.size(); ++j)
      if (absent[j]) out.push_back(rows[j]);
    return out;
  }

  // This model is the database's production model: it becomes it when there is none, or when
  // options_.promote asks; another production model refuses the update (nothing is kept).
  void claim_production() {
    const std::string active = db_.active_model();
    if (active == id_) return;
    if (!active.empty() && !options_.promote)
      throw std::invalid_argument(db_.database().path().string() + ": the production model of this database is " + active +
                                  ", and this model (" + id_ + ", " + record_.path +
                                  ") is another: one model's verdicts per database. dyad compare shows what it would change; "
                                  "--promote (MonitorOptions::promote) makes it the production model");
    db_.promote(id_);
  }

  // Records options_.policy when the database's policy for the model differs, and re-applies
  // it to every car's stored p-value (inside the caller's transaction).
  void sync_policy(UpdateReport& r) {
    const auto stored = db_.policy(id_);
    if (stored && stored->policy == options_.policy) return;
    db_.add_policy(id_, options_.policy, options_.policy_basis);
    // Also with no policy stored yet: a database from before policies were kept (schema 1)
    // holds states made under rates nobody recorded.
    const std::string now = detail::utc_now();
    for (CarState c : db_.fleet(id_)) {
      const detect::Status status = options_.policy.status(c.p_value);
      if (status == c.status) continue;
      const detect::Status old = c.status;
      c.status = status;
      c.updated = now;
      db_.set_car_state(c);
      r.changes.push_back(
          {c.car, old, status, c.p_value, c.score, c.signals.empty() ? std::string() : c.signals.front().name, c.time});
    }
  }

  // The car's verdict over its last `window` stored segments.
  CarState state_of(const std::string& car, const std::string& now) {
    const auto& cal = model_.calibration();
    const auto recent = db_.recent_segments(id_, car, options_.window, cal.signals());
    ScoreTable t;
    for (const auto& seg : recent) {
      t.cars.push_back(car);
      t.segments.push_back(seg.segment);
      t.labels.push_back(0);
      for (const auto& [name, v] : seg.scores) t.columns[name].push_back(v);
      for (std::size_t k = 0; k < cal.signals().size(); ++k) t.columns[cal.signals()[k] + "_error"].push_back(seg.errors[k]);
    }
    const detect::Verdict v = cal.verdicts(t, options_.policy).front();
    CarState c;
    c.car = car;
    c.model_id = id_;
    c.status = v.status;
    c.p_value = v.p_value;
    c.score = v.score;
    c.segments = static_cast<std::int64_t>(v.segments);
    c.signals = v.signals;
    c.time = recent.front().time;
    c.updated = now;
    return c;
  }

  const M& model_;
  FleetDb& db_;
  MonitorOptions options_;
  typename M::Workspace workspace_;
  std::string id_;
  ModelRecord record_;
};

}  // namespace dyad::monitor
