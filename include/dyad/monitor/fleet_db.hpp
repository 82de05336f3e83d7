// The fleet history: one SQLite file (WAL mode) with the models used, the cars, every scored
// segment, each car's status over time and the alarms. Its schema is versioned (PRAGMA
// user_version) and migrated on open; docs/monitor.md documents it. Writers take the lock at
// the start of a transaction, so a crash or kill -9 leaves every committed batch and no part
// of an uncommitted one.
#pragma once

#include "dyad/core/json.hpp"
#include "dyad/data/drift.hpp"
#include "dyad/detect/calibration.hpp"
#include "dyad/monitor/sqlite.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace dyad::monitor {

// The schema version this dyad writes; migrations[v] turns version v into v + 1.
inline constexpr int kSchemaVersion = 2;
static_assert(detect::score_names.size() == 4, "schema 1 has one segments column per score name");

namespace detail {
inline constexpr const char* kMigrations[kSchemaVersion] = {
    // 0 -> 1: the first schema.
    R"sql(
CREATE TABLE models (
  id          TEXT PRIMARY KEY,   -- content hash of the checkpoint file
  path        TEXT NOT NULL,      -- where it was first read from
  added       TEXT NOT NULL,      -- UTC, ISO 8601
  config      TEXT NOT NULL,      -- JSON: the model's configuration
  normalizer  TEXT NOT NULL,      -- JSON: training data means and scales, per column
  calibration TEXT NOT NULL       -- JSON: the healthy calibration cars' scores
);
CREATE TABLE cars (
  car        TEXT PRIMARY KEY,
  first_seen TEXT NOT NULL
);
CREATE TABLE segments (
  model_id       TEXT NOT NULL REFERENCES models(id),
  car            TEXT NOT NULL REFERENCES cars(car),
  segment        INTEGER NOT NULL,
  time           REAL,            -- the data's timestamp of the segment's first step
  mileage        REAL,
  label          INTEGER,         -- as the data says; NULL when unlabelled
  rec_error      REAL NOT NULL,
  latent_score   REAL,
  pattern_score  REAL,
  combined_score REAL,
  errors         TEXT NOT NULL,   -- JSON object: per-signal reconstruction error
  scored         TEXT NOT NULL,   -- UTC, ISO 8601
  PRIMARY KEY (model_id, car, segment)
) WITHOUT ROWID;
CREATE INDEX segments_by_time ON segments (model_id, car, time);
CREATE TABLE car_status (
  car      TEXT NOT NULL REFERENCES cars(car),
  model_id TEXT NOT NULL REFERENCES models(id),
  status   TEXT NOT NULL CHECK (status IN ('ok', 'watch', 'alarm')),
  p_value  REAL NOT NULL,
  score    REAL NOT NULL,
  segments INTEGER NOT NULL,      -- in the window the score is over
  signals  TEXT NOT NULL,         -- JSON list of {"name", "ratio"}, most abnormal first
  time     REAL,                  -- the data time of the car's latest segment
  updated  TEXT NOT NULL,         -- UTC, ISO 8601
  PRIMARY KEY (car, model_id)
);
CREATE TABLE status_history (
  id       INTEGER PRIMARY KEY,
  car      TEXT NOT NULL REFERENCES cars(car),
  model_id TEXT NOT NULL REFERENCES models(id),
  status   TEXT NOT NULL,
  p_value  REAL NOT NULL,
  score    REAL NOT NULL,
  segments INTEGER NOT NULL,
  signals  TEXT NOT NULL,
  time     REAL,
  recorded TEXT NOT NULL
);
CREATE INDEX status_history_by_car ON status_history (car, model_id, id);
CREATE TABLE alarms (
  id           INTEGER PRIMARY KEY,
  car          TEXT NOT NULL REFERENCES cars(car),
  model_id     TEXT NOT NULL REFERENCES models(id),
  opened       TEXT NOT NULL,
  opened_time  REAL,
  updated      TEXT NOT NULL,
  updated_time REAL,
  cleared      TEXT,              -- NULL while the alarm is open
  cleared_time REAL,
  min_p_value  REAL NOT NULL,
  top_signal   TEXT
);
CREATE INDEX alarms_open ON alarms (car, model_id, cleared);
)sql",
    // 1 -> 2: the alarm policy in force, per model, and every change of it; the input columns
    // scored despite drift; the production model, and every switch.
    R"sql(
CREATE TABLE policies (
  id              INTEGER PRIMARY KEY,
  model_id        TEXT NOT NULL REFERENCES models(id),
  alarm_rate      REAL NOT NULL,
  watch_rate      REAL NOT NULL,
  basis           TEXT NOT NULL,  -- how the rates were chosen: 'asked', 'default' or 'cost'
  recorded        TEXT NOT NULL   -- UTC, ISO 8601
);
CREATE INDEX policies_by_model ON policies (model_id, id);
CREATE TABLE input_checks (
  id       INTEGER PRIMARY KEY,
  model_id TEXT NOT NULL REFERENCES models(id),
  recorded TEXT NOT NULL,  -- UTC, ISO 8601
  col      TEXT NOT NULL,  -- the input column that drifted from the training data, scored anyway
  problem  TEXT NOT NULL,  -- sign flipped, units x1000, constant, ...
  seen     TEXT NOT NULL,
  expected TEXT NOT NULL,
  fix      TEXT NOT NULL
);
CREATE TABLE promotions (
  id       INTEGER PRIMARY KEY,
  model_id TEXT NOT NULL REFERENCES models(id),  -- the production model from here on
  recorded TEXT NOT NULL                          -- UTC, ISO 8601
);
)sql"};

// UTC now as 2026-12-02T17:08:43Z.
inline std::string utc_now() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}
}  // namespace detail

// A data time (seconds since 1970, UTC) as an operator reads it: 2026-03-14 09:30 UTC; empty
// for no time.
inline std::string data_time_text(double t) {
  if (!std::isfinite(t) || std::abs(t) > 1e12) return "";
  const std::time_t s = static_cast<std::time_t>(std::floor(t));
  std::tm tm{};
  if (!gmtime_r(&s, &tm)) return "";
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

// A model as the database records it.
struct ModelRecord {
  std::string id, path;
  nlohmann::json config, normalizer, calibration;
};

// One scored segment.
struct SegmentRecord {
  std::string car;
  std::int64_t segment = 0;
  double time = std::nan(""), mileage = std::nan("");
  std::optional<int> label;
  std::map<std::string, double> scores;  // rec_error and those the model produces
  std::vector<double> errors;            // per signal, in the calibration's signal order
};

// An alarm policy as the database records it: the rates, how they were chosen, and when.
struct StoredPolicy {
  detect::AlarmPolicy policy;
  std::string basis, recorded;
};

// A car's state under one model.
struct CarState {
  std::string car, model_id;
  detect::Status status = detect::Status::ok;
  double p_value = 1, score = 0;
  std::int64_t segments = 0;
  std::vector<detect::SignalRatio> signals;
  double time = std::nan("");
  std::string updated;
};

inline nlohmann::json signals_json(const std::vector<detect::SignalRatio>& s) {
  nlohmann::json j = nlohmann::json::array();
  // A signal the healthy cars reconstruct perfectly has an infinite ratio: JSON null.
  for (const auto& r : s)
    j.push_back({{"name", r.name}, {"ratio", std::isfinite(r.ratio) ? nlohmann::json(r.ratio) : nlohmann::json()}});
  return j;
}

class FleetDb {
 public:
  // Opens the database. With Access::read_write (dyad monitor) it is created when missing and
  // migrated to kSchemaVersion; with Access::read_only (status, report, compare) it must be a
  // dyad fleet database already, and nothing is written to it. Either way a file that is not a
  // dyad fleet database, or one from a newer dyad, is refused before anything in it changes.
  explicit FleetDb(const std::filesystem::path& path, sql::Access access = sql::Access::read_write) : db_(path, access) {
    if (access == sql::Access::read_only) {
      std::int64_t version = 0;
      try {
        version = checked_version();
      } catch (const sql::Error& e) {
        // A WAL database read without write access needs its -shm file, or leave to create it.
        if ((e.code() & 0xff) != SQLITE_READONLY && (e.code() & 0xff) != SQLITE_CANTOPEN) throw;
        const std::string& name = db_.path().string();
        throw std::runtime_error(name +
                                 ": cannot read the fleet database without writing beside it: it is in WAL mode, and SQLite "
                                 "needs " +
                                 name +
                                 "-shm, which does not exist and cannot be created in its directory (copy the "
                                 "database, with its -wal file if there is one, to a directory you can write; " +
                                 e.what() + ")");
      }
      if (version == 0)
        throw std::runtime_error(db_.path().string() + ": is empty, not a dyad fleet database (dyad monitor creates one)");
      // An older schema reads as it is (dyad monitor migrates it): version 1 has no policy.
      has_policies_ = version >= 2;
      db_.exec("PRAGMA query_only=ON", "setting up the connection");
      return;
    }
    // Only once the file is known to be ours, or empty, does anything change it.
    const auto version = checked_version();
    use_wal();
    db_.exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", "setting up the connection");
    if (version < kSchemaVersion) migrate();
  }

  sql::Database& database() { return db_; }
  // Whether the file records alarm policies (schema 2 on; a read-only older file does not).
  bool has_policies() const { return has_policies_; }
  int schema_version() { return static_cast<int>(db_.scalar("PRAGMA user_version")); }

  // Records the model once (by id).
  void add_model(const ModelRecord& m) {
    sql::Statement s(db_, "INSERT OR IGNORE INTO models (id, path, added, config, normalizer, calibration) VALUES (?,?,?,?,?,?)");
    s.bind(1, m.id)
        .bind(2, m.path)
        .bind(3, detail::utc_now())
        .bind(4, m.config.dump())
        .bind(5, m.normalizer.dump())
        .bind(6, m.calibration.dump());
    s.run();
  }
  std::vector<std::string> model_ids() {
    std::vector<std::string> out;
    sql::Statement s(db_, "SELECT id FROM models ORDER BY added, id");
    while (s.step()) out.push_back(s.text(0));
    return out;
  }
  // The model whose car states were updated last (empty when none was).
  std::string latest_model() {
    sql::Statement s(db_, "SELECT model_id FROM status_history ORDER BY id DESC LIMIT 1");
    return s.step() ? s.text(0) : std::string();
  }

  // The production model: the one last promoted, or in a database from before promotions
  // were kept, the one whose car states were updated last (empty when there is none).
  std::string active_model() {
    if (has_policies_) {
      sql::Statement s(db_, "SELECT model_id FROM promotions ORDER BY id DESC LIMIT 1");
      if (s.step()) return s.text(0);
    }
    return latest_model();
  }
  // Records `model_id` as the production model from now on (inside the caller's transaction).
  void promote(const std::string& model_id) {
    sql::Statement s(db_, "INSERT INTO promotions (model_id, recorded) VALUES (?, ?)");
    s.bind(1, model_id).bind(2, detail::utc_now());
    s.run();
  }
  // The models with car states other than `model_id`.
  std::vector<std::string> other_models(const std::string& model_id) {
    std::vector<std::string> out;
    sql::Statement s(db_, "SELECT DISTINCT model_id FROM car_status WHERE model_id != ? ORDER BY model_id");
    s.bind(1, model_id);
    while (s.step()) out.push_back(s.text(0));
    return out;
  }

  // The alarm policy in force for the model: the last one recorded (none before the first
  // dyad monitor of schema 2).
  std::optional<StoredPolicy> policy(const std::string& model_id) {
    if (!has_policies_) return std::nullopt;
    sql::Statement s(db_,
                     "SELECT alarm_rate, watch_rate, basis, recorded FROM policies WHERE model_id = ? ORDER BY id DESC LIMIT 1");
    s.bind(1, model_id);
    if (!s.step()) return std::nullopt;
    StoredPolicy p;
    p.policy.alarm_rate = s.real(0);
    p.policy.watch_rate = s.real(1);
    p.basis = s.text(2);
    p.recorded = s.text(3);
    try {
      p.policy.validate();
    } catch (const std::exception& e) {
      throw damaged("policies", "alarm_rate", "", model_id, "", e.what());
    }
    return p;
  }
  // Records a new policy for the model (inside the caller's transaction).
  void add_policy(const std::string& model_id, const detect::AlarmPolicy& p, const std::string& basis) {
    sql::Statement s(db_, "INSERT INTO policies (model_id, alarm_rate, watch_rate, basis, recorded) VALUES (?,?,?,?,?)");
    s.bind(1, model_id).bind(2, p.alarm_rate).bind(3, p.watch_rate).bind(4, basis).bind(5, detail::utc_now());
    s.run();
  }
  // Records input columns scored although they drift from the model's training data
  // (--allow-drift, or a --follow stream).
  void add_input_checks(const std::string& model_id, const std::vector<InputDrift>& drifts) {
    sql::Statement s(db_,
                     "INSERT INTO input_checks (model_id, recorded, col, problem, seen, expected, fix) VALUES (?,?,?,?,?,?,?)");
    const std::string now = detail::utc_now();
    for (const auto& d : drifts) {
      s.bind(1, model_id).bind(2, now).bind(3, d.column).bind(4, d.problem).bind(5, d.seen).bind(6, d.expected).bind(7, d.fix);
      s.run();
    }
  }

  // The model's stored calibration (as the models table holds it).
  detect::Calibration calibration(const std::string& model_id) {
    sql::Statement s(db_, "SELECT calibration FROM models WHERE id = ?");
    s.bind(1, model_id);
    if (!s.step()) throw std::invalid_argument(db_.path().string() + ": no model '" + model_id + "'");
    try {
      return detect::Calibration::from_json(dyad::detail::parse_json(s.text(0), "the value"), "the value");
    } catch (const std::exception& e) {
      throw damaged("models", "calibration", "", model_id, "", std::string("not the calibration dyad wrote: ") + e.what());
    }
  }
  // The data times of the model's first and last stored segments (NaN when none has a time).
  std::pair<double, double> data_period(const std::string& model_id) {
    sql::Statement s(db_, "SELECT min(time), max(time) FROM segments WHERE model_id = ?");
    s.bind(1, model_id);
    s.step();
    return {s.real(0), s.real(1)};
  }

  // Which of `keys` the model has not scored yet (one primary-key lookup each: the cost is the
  // batch's, not the history's).
  std::vector<bool> unscored(const std::string& model_id, const std::vector<std::pair<std::string, std::int64_t>>& keys) {
    sql::Statement s(db_, "SELECT 1 FROM segments WHERE model_id = ? AND car = ? AND segment = ?");
    std::vector<bool> out(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      s.bind(1, model_id).bind(2, keys[i].first).bind(3, keys[i].second);
      out[i] = !s.step();
      s.reset();
    }
    return out;
  }

  // Adds segments (inside the caller's transaction); `signals` names SegmentRecord::errors.
  void add_segments(const std::string& model_id, const std::vector<SegmentRecord>& rows, const std::vector<std::string>& signals) {
    const std::string now = detail::utc_now();
    sql::Statement car(db_, "INSERT OR IGNORE INTO cars (car, first_seen) VALUES (?, ?)");
    sql::Statement seg(db_,
                       "INSERT INTO segments (model_id, car, segment, time, mileage, label, rec_error, latent_score, "
                       "pattern_score, combined_score, errors, scored) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
    std::string last_car;
    for (const auto& r : rows) {
      if (r.car != last_car) car.bind(1, r.car).bind(2, now).run(), last_car = r.car;
      nlohmann::json errors = nlohmann::json::object();
      for (std::size_t k = 0; k < signals.size(); ++k) errors[signals[k]] = r.errors.at(k);
      seg.bind(1, model_id).bind(2, r.car).bind(3, r.segment).bind(4, r.time).bind(5, r.mileage).bind(6, r.label);
      for (int k = 0; k < 4; ++k) {  // the score columns, in score_names order (NaN: NULL)
        const auto it = r.scores.find(std::string(detect::score_names[static_cast<std::size_t>(k)]));
        seg.bind(7 + k, it == r.scores.end() ? std::nan("") : it->second);
      }
      seg.bind(11, errors.dump()).bind(12, now);
      seg.run();
    }
  }

  // The car's last `window` segments under the model (all when window is 0), newest first.
  std::vector<SegmentRecord> recent_segments(const std::string& model_id, const std::string& car, std::size_t window,
                                             const std::vector<std::string>& signals) {
    sql::Statement s(db_,
                     "SELECT segment, time, mileage, label, rec_error, latent_score, pattern_score, combined_score, errors "
                     "FROM segments WHERE model_id = ? AND car = ? ORDER BY time DESC, segment DESC LIMIT ?");
    s.bind(1, model_id).bind(2, car).bind(3, window == 0 ? std::int64_t{-1} : static_cast<std::int64_t>(window));
    std::vector<SegmentRecord> out;
    while (s.step()) {
      SegmentRecord r;
      r.car = car;
      r.segment = s.integer(0);
      r.time = s.real(1);
      r.mileage = s.real(2);
      if (!s.is_null(3)) r.label = static_cast<int>(s.integer(3));
      for (int k = 0; k < 4; ++k)
        if (!s.is_null(4 + k)) r.scores[std::string(detect::score_names[static_cast<std::size_t>(k)])] = s.real(4 + k);
      try {
        const auto errors = dyad::detail::parse_json(s.text(8), "the value");
        for (const auto& name : signals) r.errors.push_back(errors.at(name).get<double>());
      } catch (const std::exception& e) {  // nlohmann's, or nesting beyond the limit
        throw damaged("segments", "errors", car, model_id, "segment " + std::to_string(r.segment),
                      std::string("not the JSON object of per-signal errors dyad wrote: ") + e.what());
      }
      out.push_back(std::move(r));
    }
    return out;
  }

  std::optional<CarState> car_state(const std::string& car, const std::string& model_id) {
    sql::Statement
        s(db_, "SELECT status, p_value, score, segments, signals, time, updated FROM car_status WHERE car = ? AND model_id = ?");
    s.bind(1, car).bind(2, model_id);
    if (!s.step()) return std::nullopt;
    return read_state(s, "car_status", car, model_id);
  }

  // Every car's state under the model: alarms first, then watch, then ok, each by p-value.
  std::vector<CarState> fleet(const std::string& model_id) {
    sql::Statement s(db_,
                     "SELECT status, p_value, score, segments, signals, time, updated, car FROM car_status WHERE model_id = ? "
                     "ORDER BY CASE status WHEN 'alarm' THEN 0 WHEN 'watch' THEN 1 ELSE 2 END, p_value, score DESC, car");
    s.bind(1, model_id);
    std::vector<CarState> out;
    while (s.step()) out.push_back(read_state(s, "car_status", s.text(7), model_id));
    return out;
  }

  // The car's states over time under every model, oldest first.
  std::vector<CarState> history(const std::string& car) {
    sql::Statement s(db_,
                     "SELECT status, p_value, score, segments, signals, time, recorded, model_id FROM status_history "
                     "WHERE car = ? ORDER BY id");
    s.bind(1, car);
    std::vector<CarState> out;
    while (s.step()) out.push_back(read_state(s, "status_history", car, s.text(7)));
    return out;
  }

  // Records the car's new state (inside the caller's transaction): the current state, a row of
  // history, and the alarm it opens, updates or clears.
  void set_car_state(const CarState& c) {
    const std::string signals = signals_json(c.signals).dump(), status = detect::status_name(c.status);
    const auto previous = car_state(c.car, c.model_id);
    sql::Statement up(db_,
                      "INSERT INTO car_status (car, model_id, status, p_value, score, segments, signals, time, updated) "
                      "VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (car, model_id) DO UPDATE SET status = excluded.status, "
                      "p_value = excluded.p_value, score = excluded.score, segments = excluded.segments, "
                      "signals = excluded.signals, time = excluded.time, updated = excluded.updated");
    sql::Statement hist(db_,
                        "INSERT INTO status_history (car, model_id, status, p_value, score, segments, signals, time, recorded) "
                        "VALUES (?,?,?,?,?,?,?,?,?)");
    for (sql::Statement* st : {&up, &hist}) {  // the same nine values, as the current state and as history
      st->bind(1, c.car).bind(2, c.model_id).bind(3, status).bind(4, c.p_value).bind(5, c.score).bind(6, c.segments);
      st->bind(7, signals).bind(8, c.time).bind(9, c.updated);
      st->run();
    }

    const bool was_alarm = previous && previous->status == detect::Status::alarm, is_alarm = c.status == detect::Status::alarm;
    const std::string top = c.signals.empty() ? std::string() : c.signals.front().name;
    if (is_alarm && !was_alarm) {
      sql::Statement open(db_,
                          "INSERT INTO alarms (car, model_id, opened, opened_time, updated, updated_time, min_p_value, top_signal) "
                          "VALUES (?,?,?,?,?,?,?,?)");
      open.bind(1, c.car).bind(2, c.model_id).bind(3, c.updated).bind(4, c.time).bind(5, c.updated).bind(6, c.time);
      open.bind(7, c.p_value).bind(8, top);
      open.run();
    } else if (is_alarm) {
      sql::Statement update(db_,
                            "UPDATE alarms SET updated = ?, updated_time = ?, min_p_value = min(min_p_value, ?), top_signal = ? "
                            "WHERE car = ? AND model_id = ? AND cleared IS NULL");
      update.bind(1, c.updated).bind(2, c.time).bind(3, c.p_value).bind(4, top).bind(5, c.car).bind(6, c.model_id);
      update.run();
    } else if (was_alarm) {
      sql::Statement clear(db_,
                           "UPDATE alarms SET cleared = ?, cleared_time = ? WHERE car = ? AND model_id = ? AND cleared IS NULL");
      clear.bind(1, c.updated).bind(2, c.time).bind(3, c.car).bind(4, c.model_id);
      clear.run();
    }
  }

 private:
  // Switches the file to WAL mode. Another connection creating the same database may hold a
  // lock, and this PRAGMA then fails at once with SQLITE_BUSY, without the busy handler (it
  // holds a read lock that it cannot upgrade while waiting): it is retried for as long as the
  // busy timeout.
  void use_wal() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(sql::kBusyTimeoutMs);
    for (;;) {
      try {
        sql::Statement s(db_, "PRAGMA journal_mode=WAL");
        if (s.step() && s.text(0) == "wal") return;
      } catch (const sql::Error& e) {
        if ((e.code() & 0xff) != SQLITE_BUSY || std::chrono::steady_clock::now() > deadline) throw;
      }
      // Not switched (the file system may not allow WAL): as SQLite left it, in the end.
      if (std::chrono::steady_clock::now() > deadline) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  // The file's schema version once its identity is checked: 0 for an empty database, else a
  // version this dyad knows whose tables and columns are all there. Reads only.
  std::int64_t checked_version() {
    // One snapshot for all the reads (inside the caller's transaction if there is one): a
    // writer creating the database meanwhile is seen either before or after.
    struct Snapshot {
      sql::Database& db;
      bool own = sqlite3_get_autocommit(db.handle()) != 0;
      explicit Snapshot(sql::Database& d) : db(d) {
        if (own) db.exec("BEGIN", "reading the schema");
      }
      ~Snapshot() {
        if (own) sqlite3_exec(db.handle(), "COMMIT", nullptr, nullptr, nullptr);
      }
    } snapshot(db_);
    const std::string& name = db_.path().string();
    const auto version = db_.scalar("PRAGMA user_version");
    if (version > kSchemaVersion)
      throw std::runtime_error(name + ": the fleet database has schema version " + std::to_string(version) +
                               ", newer than this dyad's " + std::to_string(kSchemaVersion) + "; use a newer dyad");
    if (version < 0)
      throw std::runtime_error(name + ": is an SQLite database, but not a dyad fleet database (schema version " +
                               std::to_string(version) + ")");
    if (version == 0) {
      // A file that is not empty yet has no version is not ours.
      if (db_.scalar("SELECT count(*) FROM sqlite_master") > 0)
        throw std::runtime_error(name + ": is an SQLite database, but not a dyad fleet database (no schema version)");
      return 0;
    }
    // Another application's database may carry the same number: the tables and columns that
    // version has must all be there.
    const auto have = schema_of(db_);
    for (const auto& [table, columns] : schema_at(static_cast<int>(version))) {
      const auto it = have.find(table);
      if (it == have.end())
        throw std::runtime_error(name + ": is an SQLite database, but not a dyad fleet database (schema version " +
                                 std::to_string(version) + ", yet no table '" + table + "')");
      for (const auto& c : columns)
        if (std::find(it->second.begin(), it->second.end(), c) == it->second.end())
          throw std::runtime_error(name + ": is an SQLite database, but not a dyad fleet database (schema version " +
                                   std::to_string(version) + ", yet table '" + table + "' has no column '" + c + "')");
    }
    return version;
  }

  // Each table's columns.
  static std::map<std::string, std::vector<std::string>> schema_of(sql::Database& db) {
    std::map<std::string, std::vector<std::string>> out;
    sql::Statement s(db,
                     "SELECT m.name, c.name FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS c "
                     "WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, c.cid");
    while (s.step()) out[s.text(0)].push_back(s.text(1));
    return out;
  }
  // The tables and columns of schema `version`: the migrations up to it, run in memory.
  static std::map<std::string, std::vector<std::string>> schema_at(int version) {
    sql::Database mem = sql::Database::in_memory("schema version " + std::to_string(version));
    for (int v = 0; v < version; ++v) mem.exec(detail::kMigrations[v], "building the schema");
    return schema_of(mem);
  }

  // Migrates to kSchemaVersion under the write lock. Another dyad may have created or migrated
  // the file since it was checked, so it is checked again once the lock is held.
  void migrate() {
    sql::Transaction t(db_);
    const auto version = checked_version();
    if (version == kSchemaVersion) return;  // done meanwhile by another writer
    for (auto v = version; v < kSchemaVersion; ++v)
      db_.exec(detail::kMigrations[v], "migrating the schema to version " + std::to_string(v + 1));
    db_.exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str(), "setting the schema version");
    t.commit();
  }

  // A value in the database that is not what dyad wrote there: the error names the file, the
  // table, the column and the row.
  std::runtime_error damaged(const char* table, const char* column, const std::string& car, const std::string& model_id,
                             const std::string& row, const std::string& what) const {
    return std::runtime_error(db_.path().string() + ": damaged value in table " + table + ", column " + column + " (car '" + car +
                              "'" + (row.empty() ? std::string() : ", " + row) + ", model '" + model_id + "'): " + what);
  }

  // The state in the row `s` is on: status, p_value, score, segments, signals, time, then the
  // time it was recorded; `table` names it in errors.
  CarState read_state(sql::Statement& s, const char* table, const std::string& car, const std::string& model_id) const {
    CarState c;
    c.car = car;
    c.model_id = model_id;
    const std::string status = s.text(0);
    if (status == "alarm") c.status = detect::Status::alarm;
    else if (status == "watch") c.status = detect::Status::watch;
    else if (status == "ok") c.status = detect::Status::ok;
    else throw damaged(table, "status", car, model_id, "", "'" + status + "' is none of ok, watch, alarm");
    c.p_value = s.real(1);
    c.score = s.real(2);
    c.segments = s.integer(3);
    try {
      for (const auto& r : dyad::detail::parse_json(s.text(4), "the value"))
        c.signals.push_back({r.at("name"), r.at("ratio").is_null() ? HUGE_VAL : r.at("ratio").get<double>()});
    } catch (const std::exception& e) {
      throw damaged(table, "signals", car, model_id, "",
                    std::string("not the JSON list of {\"name\", \"ratio\"} dyad wrote: ") + e.what());
    }
    c.time = s.real(5);
    c.updated = s.text(6);
    return c;
  }

  sql::Database db_;
  bool has_policies_ = true;
};

}  // namespace dyad::monitor
