// The fleet history (dyad/monitor): the schema and its version, segments stored once, car
// states with their alarms, and Monitor::update as one transaction.
#include <dyad/model.hpp>
#include <dyad/monitor/monitor.hpp>

#include "toy_data.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <latch>
#include <map>
#include <string>
#include <thread>
#include <vector>

using namespace dyad;
using namespace dyad::monitor;

namespace {

// A fresh database path in the temp directory (and its WAL files removed).
std::filesystem::path fresh_db(const std::string& name) {
  const auto p = std::filesystem::temp_directory_path() / name;
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(p.string() + suffix);
  return p;
}

// A model trained and calibrated on a toy fleet (20 cars, every 4th faulty), saved to `path`.
Model<double> calibrated_model(const std::filesystem::path& path, std::uint64_t seed = 5) {
  ModelConfig c = test::tiny_config();
  c.seed = seed;
  Model<double> m(c);
  FitOptions o;
  o.calibration_fraction = 0.3;
  m.fit(test::toy_dataset(100, c.roles, 3, 12, 12, 4), {}, o);
  m.save(path);
  return m;
}

std::int64_t count(FleetDb& db, const char* sql) { return db.database().scalar(sql); }

}  // namespace

TEST_CASE("fleet database: created at the schema version, reopened, and foreign files refused") {
  const auto path = fresh_db("dyad_test_fleet_schema.db");
  {
    FleetDb db(path);
    CHECK(db.schema_version() == kSchemaVersion);
    CHECK(count(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table'") == 9);
    sql::Statement mode(db.database(), "PRAGMA journal_mode");
    REQUIRE(mode.step());
    CHECK(mode.text(0) == "wal");
  }
  {
    FleetDb again(path);  // no migration twice
    CHECK(again.schema_version() == kSchemaVersion);
  }
  {
    sql::Database raw(path);
    raw.exec("PRAGMA user_version = 99", "test");
  }
  CHECK_THROWS_WITH_AS(FleetDb{path}, doctest::Contains("schema version 99, newer than this dyad's 2"), std::runtime_error);

  const auto other = fresh_db("dyad_test_fleet_other.db");
  {
    sql::Database raw(other);
    raw.exec("CREATE TABLE t (x)", "test");
  }
  CHECK_THROWS_WITH_AS(FleetDb{other}, doctest::Contains("is an SQLite database, but not a dyad fleet database"),
                       std::runtime_error);

  const auto text = fresh_db("dyad_test_fleet_text.db");
  std::ofstream(text) << "car,segment\nthis is not a database, but long enough to have a header page of sorts....\n";
  CHECK_THROWS_WITH_AS(FleetDb{text}, doctest::Contains((text.string() + ": file is not a database").c_str()), std::runtime_error);
  for (const auto& p : {path, other, text}) fresh_db(p.filename().string());
}

namespace {
std::string file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
// What `f` throws (empty when it throws nothing).
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return {};
}
}  // namespace

TEST_CASE("fleet database: a refused file is left exactly as it was (not switched to WAL)") {
  const auto other = fresh_db("dyad_test_fleet_untouched_other.db");
  {
    sql::Database raw(other);
    raw.exec("CREATE TABLE t (x); INSERT INTO t VALUES (1)", "test");
  }
  const auto newer = fresh_db("dyad_test_fleet_untouched_newer.db");
  {
    sql::Database raw(newer);
    raw.exec("CREATE TABLE t (x); PRAGMA user_version = 99", "test");
  }
  for (const auto& p : {other, newer}) {
    CAPTURE(p);
    const std::string before = file_bytes(p);
    REQUIRE(before.size() >= 100);
    CHECK(before[18] == 1);  // the file format's read and write versions: 1 is a rollback journal, 2 WAL
    CHECK(before[19] == 1);
    CHECK_THROWS_AS(FleetDb{p}, std::runtime_error);
    CHECK(file_bytes(p) == before);
    CHECK(!std::filesystem::exists(p.string() + "-wal"));
    fresh_db(p.filename().string());
  }
}

TEST_CASE("fleet database: another application's database is refused whatever its user_version") {
  const auto path = fresh_db("dyad_test_fleet_foreign_version.db");
  SUBCASE("a negative version") {
    {
      sql::Database raw(path);
      raw.exec("PRAGMA user_version = -1", "test");
    }
    CHECK_THROWS_WITH_AS(FleetDb{path}, doctest::Contains("not a dyad fleet database (schema version -1)"), std::runtime_error);
  }
  SUBCASE("version 1 with other tables") {
    {
      sql::Database raw(path);
      raw.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT); PRAGMA user_version = 1", "test");
    }
    CHECK_THROWS_WITH_AS(FleetDb{path}, doctest::Contains("not a dyad fleet database (schema version 1, yet no table"),
                         std::runtime_error);
  }
  SUBCASE("a dyad table without one of its columns") {
    {
      FleetDb db(path);
      db.database().exec("ALTER TABLE segments DROP COLUMN mileage", "test");
    }
    CHECK_THROWS_WITH_AS(FleetDb{path}, doctest::Contains("yet table 'segments' has no column 'mileage'"), std::runtime_error);
  }
  fresh_db(path.filename().string());
}

TEST_CASE("fleet database: two connections creating the same new database both succeed") {
  // Each round two threads open a database that does not exist yet at the same moment: the
  // second waits for the first (busy timeout) rather than failing with "database is locked",
  // and finds the schema made rather than making it twice.
  for (int round = 0; round < 20; ++round) {
    const auto path = fresh_db("dyad_test_fleet_race.db");
    std::latch start(2);
    std::array<std::string, 2> errors;
    auto open = [&](std::size_t i) {
      start.arrive_and_wait();
      errors[i] = error_of([&] {
        FleetDb db(path);
        if (db.schema_version() != kSchemaVersion)
          throw std::runtime_error("schema version " + std::to_string(db.schema_version()));
      });
    };
    std::thread a(open, 0), b(open, 1);
    a.join();
    b.join();
    CAPTURE(round);
    CHECK(errors[0] == "");
    CHECK(errors[1] == "");
  }
  fresh_db("dyad_test_fleet_race.db");
}

TEST_CASE("fleet database: damaged JSON names the file, the table, the column and the car") {
  const auto path = fresh_db("dyad_test_fleet_damaged.db");
  FleetDb db(path);
  db.add_model({"m1", "/models/m1.safetensors", {}, {}, {}});
  {
    sql::Transaction t(db.database());
    db.add_segments("m1", {{"carA", 7, 1000.0, 1.0, 0, {{"rec_error", 0.5}}, {0.1, 0.2}}}, {"volt", "max_temp"});
    CarState c;
    c.car = "carA";
    c.model_id = "m1";
    c.signals = {{"volt", 2.0}};
    c.updated = "2026-12-02T00:00:00Z";
    db.set_car_state(c);
    t.commit();
  }
  auto has = [](const std::string& message, std::initializer_list<std::string> parts) {
    for (const auto& p : parts)
      if (message.find(p) == std::string::npos) return false;
    return true;
  };
  const std::string file = path.string() + ": ";
  db.database().exec("UPDATE segments SET errors = '{\"volt\": 0.1, \"max_' WHERE car = 'carA'", "test");
  std::string e = error_of([&] { db.recent_segments("m1", "carA", 0, {"volt", "max_temp"}); });
  CHECK_MESSAGE(has(e, {file, "table segments", "column errors", "car 'carA'", "segment 7"}), e);
  db.database().exec("UPDATE segments SET errors = '{\"volt\": 0.1}' WHERE car = 'carA'", "test");  // valid JSON, a signal missing
  e = error_of([&] { db.recent_segments("m1", "carA", 0, {"volt", "max_temp"}); });
  CHECK_MESSAGE(has(e, {file, "table segments", "column errors", "car 'carA'", "max_temp"}), e);

  db.database().exec("UPDATE car_status SET signals = '[{\"name\": \"volt\", \"ra' WHERE car = 'carA'", "test");
  e = error_of([&] { db.fleet("m1"); });
  CHECK_MESSAGE(has(e, {file, "table car_status", "column signals", "car 'carA'"}), e);
  e = error_of([&] { db.car_state("carA", "m1"); });
  CHECK_MESSAGE(has(e, {file, "table car_status", "column signals", "car 'carA'"}), e);
  db.database().exec("UPDATE status_history SET signals = '{}}' WHERE car = 'carA'", "test");
  e = error_of([&] { db.history("carA"); });
  CHECK_MESSAGE(has(e, {file, "table status_history", "column signals", "car 'carA'"}), e);
  db.database().exec("UPDATE status_history SET signals = '[]', status = 'fine' WHERE car = 'carA'", "test");
  e = error_of([&] { db.history("carA"); });
  CHECK_MESSAGE(has(e, {file, "table status_history", "column status", "car 'carA'", "'fine'"}), e);
  // 200,000 nested arrays: refused by the nesting limit, not a stack overflow.
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  db.database().exec(("UPDATE car_status SET signals = '" + deep + "' WHERE car = 'carA'").c_str(), "test");
  e = error_of([&] { db.fleet("m1"); });
  CHECK_MESSAGE(has(e, {file, "table car_status", "column signals", "car 'carA'", "deeper than 64 levels"}), e);
  fresh_db(path.filename().string());
}

TEST_CASE("fleet database: opened read-only, it is never created, changed or written") {
  const auto missing = fresh_db("dyad_test_fleet_ro_missing.db");
  CHECK_THROWS_WITH_AS(FleetDb(missing, sql::Access::read_only),
                       doctest::Contains((missing.string() + ": no such database file").c_str()), std::runtime_error);
  CHECK(!std::filesystem::exists(missing));
  const auto empty = fresh_db("dyad_test_fleet_ro_empty.db");
  std::ofstream{empty};
  CHECK_THROWS_WITH_AS(FleetDb(empty, sql::Access::read_only),
                       doctest::Contains((empty.string() + ": is empty, not a dyad fleet database").c_str()), std::runtime_error);
  CHECK(std::filesystem::file_size(empty) == 0);
  const auto path = fresh_db("dyad_test_fleet_ro.db");
  FleetDb(path).add_model({"m1", "/models/m1.safetensors", {}, {}, {}});
  const std::string before = file_bytes(path);
  {
    FleetDb ro(path, sql::Access::read_only);
    CHECK(sqlite3_db_readonly(ro.database().handle(), "main") == 1);
    CHECK(ro.model_ids() == std::vector<std::string>{"m1"});
    CHECK_THROWS_WITH_AS(ro.add_model({"m2", "/models/m2.safetensors", {}, {}, {}}), doctest::Contains("readonly"),
                         std::runtime_error);
  }
  CHECK(file_bytes(path) == before);
  for (const auto& p : {missing, empty, path}) fresh_db(p.filename().string());
}

TEST_CASE("fleet database: car states keep their history and open, update and clear alarms") {
  const auto path = fresh_db("dyad_test_fleet_alarms.db");
  FleetDb db(path);
  db.add_model({"m1", "/models/m1.safetensors", {{"k", 1}}, {{"n", 2}}, {{"c", 3}}});
  db.add_model({"m1", "/elsewhere.safetensors", {}, {}, {}});  // the same id: kept once
  CHECK(db.model_ids() == std::vector<std::string>{"m1"});
  SegmentRecord seg{"carA", 7, 1000.0, 12345.0, 0, {{"rec_error", 0.5}, {"combined_score", 1.5}}, {0.1, 0.2}};
  {
    sql::Transaction t(db.database());
    db.add_segments("m1", {seg}, {"volt", "max_temp"});
    t.commit();
  }
  CHECK(db.unscored("m1", {{"carA", 7}, {"carA", 8}, {"carB", 7}}) == std::vector<bool>{false, true, true});
  CHECK(db.unscored("m2", {{"carA", 7}}) == std::vector<bool>{true});  // per model
  const auto back = db.recent_segments("m1", "carA", 0, {"max_temp", "volt"});
  REQUIRE(back.size() == 1);
  CHECK(back[0].errors == std::vector<double>{0.2, 0.1});  // by name, in the order asked
  CHECK(back[0].scores.at("combined_score") == 1.5);
  CHECK(back[0].scores.count("latent_score") == 0);  // NULL: not produced
  CHECK(*back[0].label == 0);

  auto state = [&](detect::Status s, double p, double time) {
    CarState c;
    c.car = "carA";
    c.model_id = "m1";
    c.status = s;
    c.p_value = p;
    c.score = 1 / p;
    c.segments = 1;
    c.signals = {{"max_temp", 3.0}, {"volt", 1.0}};
    c.time = time;
    c.updated = "2026-12-02T00:00:00Z";
    return c;
  };
  db.set_car_state(state(detect::Status::watch, 0.04, 1));
  CHECK(count(db, "SELECT count(*) FROM alarms") == 0);
  db.set_car_state(state(detect::Status::alarm, 0.008, 2));
  db.set_car_state(state(detect::Status::alarm, 0.005, 3));
  CHECK(count(db, "SELECT count(*) FROM alarms WHERE cleared IS NULL") == 1);
  CHECK(db.database().scalar("SELECT min_p_value * 1000 FROM alarms") == 5);
  db.set_car_state(state(detect::Status::ok, 0.5, 4));
  CHECK(count(db, "SELECT count(*) FROM alarms WHERE cleared IS NULL") == 0);
  CHECK(count(db, "SELECT count(*) FROM alarms WHERE cleared_time = 4 AND opened_time = 2") == 1);
  const auto h = db.history("carA");
  REQUIRE(h.size() == 4);
  CHECK(h[1].status == detect::Status::alarm);
  CHECK(h[3].p_value == 0.5);
  CHECK(h[3].signals[0].name == "max_temp");
  CHECK(db.car_state("carA", "m1")->status == detect::Status::ok);
  CHECK(db.latest_model() == "m1");
  // A transaction not committed leaves nothing behind.
  {
    sql::Transaction t(db.database());
    SegmentRecord other = seg;
    other.car = "carB";
    db.add_segments("m1", {other}, {"volt", "max_temp"});
    CHECK(count(db, "SELECT count(*) FROM segments") == 2);
  }
  CHECK(count(db, "SELECT count(*) FROM segments") == 1);
  CHECK(count(db, "SELECT count(*) FROM cars WHERE car = 'carB'") == 0);
  // A segment the model already stored is refused by the key, not duplicated.
  sql::Transaction t(db.database());
  CHECK_THROWS_WITH_AS(db.add_segments("m1", {seg}, {"volt", "max_temp"}), doctest::Contains("UNIQUE constraint failed"),
                       std::runtime_error);
}

TEST_CASE("Monitor::update scores only new segments, updates their cars, and is one transaction") {
  const auto model_path = std::filesystem::temp_directory_path() / "dyad_test_monitor_model.safetensors";
  const Model<double> model = calibrated_model(model_path);
  const auto path = fresh_db("dyad_test_monitor.db");
  FleetDb db(path);
  MonitorOptions o;
  o.policy = {0.2, 0.5};
  o.window = 3;
  Monitor<Model<double>> mon(model, model_path, db, o);
  CHECK(mon.id() == model_id(model_path));
  CHECK(mon.id().size() == 16);

  const Dataset fleet = test::toy_dataset(100, test::tiny_config().roles, 9, 12, 12, 4);
  std::vector<std::size_t> first_half, all(fleet.size());
  for (std::size_t i = 0; i < fleet.size(); ++i) {
    all[i] = i;
    if (fleet.meta(i).segment < 3) first_half.push_back(i);
  }
  const UpdateReport r1 = mon.update(fleet.subset(first_half));
  CHECK(r1.new_segments == 60);
  CHECK(r1.cars == 20);
  CHECK(count(db, "SELECT count(*) FROM segments") == 60);
  CHECK(count(db, "SELECT count(*) FROM car_status") == 20);
  // Changes are the cars first seen with a status other than ok.
  for (const auto& c : r1.changes) {
    CHECK(!c.old_status);
    CHECK(c.new_status != detect::Status::ok);
    const auto j = to_json(c);
    CHECK(j["old_status"].is_null());
    CHECK(j["new_status"] == detect::status_name(c.new_status));
  }

  // The whole file again: only the new segments are scored; a second run adds nothing.
  const UpdateReport r2 = mon.update(fleet);
  CHECK(r2.segments == 100);
  CHECK(r2.new_segments == 40);
  CHECK(count(db, "SELECT count(*) FROM segments") == 100);
  const UpdateReport r3 = mon.update(fleet);
  CHECK(r3.new_segments == 0);
  CHECK(r3.cars == 0);
  CHECK(count(db, "SELECT count(*) FROM segments") == 100);
  CHECK(count(db, "SELECT count(*) FROM status_history") == 40);  // two updates of 20 cars

  // Each car's state is its verdict over its last 3 segments, as the calibration computes it.
  const Scores s = model.score(fleet);
  const ScoreTable all_scores = to_score_table(fleet, s);
  std::vector<std::size_t> last3;
  for (std::size_t i = 0; i < fleet.size(); ++i)
    if (fleet.meta(i).segment >= 2) last3.push_back(i);
  ScoreTable window;
  for (std::size_t i : last3) {
    window.cars.push_back(all_scores.cars[i]);
    window.segments.push_back(all_scores.segments[i]);
    window.labels.push_back(0);
    for (const auto& [name, v] : all_scores.columns) window.columns[name].push_back(v[i]);
  }
  const auto expected = model.calibration().verdicts(window, o.policy);
  for (const auto& v : expected) {
    const auto got = db.car_state(v.car, mon.id());
    REQUIRE(got);
    CHECK(got->segments == 3);
    CHECK(got->score == doctest::Approx(v.score).epsilon(1e-12));
    CHECK(got->p_value == v.p_value);
    CHECK(got->status == v.status);
    CHECK(got->signals[0].name == v.signals[0].name);
  }

  // A failure inside the update (a wrong column) keeps nothing of it.
  Dataset other(std::vector<std::string>{"a", "x", "c", "d"});
  other.add({"carZ", 0, 0, 1.0, 1.0}, std::vector<float>(12 * 4, 1.f));
  CHECK_THROWS_WITH_AS(mon.update(other), doctest::Contains("'b'"), std::invalid_argument);
  CHECK(count(db, "SELECT count(*) FROM cars WHERE car = 'carZ'") == 0);
  CHECK(count(db, "SELECT count(*) FROM segments") == 100);

  // An uncalibrated model has no p-values to monitor with.
  Model<double> plain(test::tiny_config());
  CHECK_THROWS_WITH_AS((Monitor<Model<double>>(plain, model_path, db, o)), doctest::Contains("not calibrated"),
                       std::invalid_argument);
  std::filesystem::remove(model_path);
}

TEST_CASE("the alarm policy lives in the database: recorded, re-applied to every stored p-value, never mixed") {
  const auto model_path = std::filesystem::temp_directory_path() / "dyad_test_monitor_policy.safetensors";
  const Model<double> model = calibrated_model(model_path);
  const auto path = fresh_db("dyad_test_monitor_policy.db");
  FleetDb db(path);
  const Dataset fleet = test::toy_dataset(100, test::tiny_config().roles, 9, 12, 12, 4);
  MonitorOptions o;
  o.policy = {0.2, 0.5};
  o.policy_basis = "default";
  {
    Monitor<Model<double>> mon(model, model_path, db, o);
    CHECK(!db.policy(mon.id()));
    mon.update(fleet);
    const auto stored = db.policy(mon.id());
    REQUIRE(stored);
    CHECK(stored->policy == o.policy);
    CHECK(stored->basis == "default");
    CHECK(mon.apply_policy().changes.empty());  // the same policy again: nothing recorded, nothing changes
    CHECK(count(db, "SELECT count(*) FROM policies") == 1);
  }
  const auto before = db.fleet(model_id(model_path));
  const auto history_rows = count(db, "SELECT count(*) FROM status_history");
  // Another policy: recorded, and every car's status is the new policy at its stored p-value.
  o.policy = {0.5, 0.8};
  o.policy_basis = "asked";
  Monitor<Model<double>> mon(model, model_path, db, o);
  const UpdateReport r = mon.apply_policy();
  CHECK(count(db, "SELECT count(*) FROM policies") == 2);
  CHECK(db.policy(mon.id())->policy == o.policy);
  std::size_t changed = 0;
  for (const auto& old : before) {
    const auto now = db.car_state(old.car, mon.id());
    REQUIRE(now);
    CHECK(now->p_value == old.p_value);  // not rescored
    CHECK(now->status == o.policy.status(old.p_value));
    changed += now->status != old.status;
  }
  CHECK(r.changes.size() == changed);
  CHECK(changed > 0);  // the toy fleet has p-values between 0.2 and 0.8
  CHECK(count(db, "SELECT count(*) FROM status_history") == history_rows + static_cast<std::int64_t>(changed));
  for (const auto& c : r.changes) CHECK(c.new_status == o.policy.status(c.p_value));
  // Two cars with the same p-value have the same status.
  std::map<double, detect::Status> by_p;
  for (const auto& c : db.fleet(mon.id())) CHECK(by_p.try_emplace(c.p_value, c.status).first->second == c.status);
  // The calibration and the data period read back.
  CHECK(db.calibration(mon.id()).size() == model.calibration().size());
  const auto [from, to] = db.data_period(mon.id());
  CHECK(from <= to);
  CHECK(data_time_text(from).ends_with(" UTC"));
  CHECK(data_time_text(std::nan("")).empty());
  // A damaged policy row names the table.
  db.database().exec("UPDATE policies SET alarm_rate = 7", "test");
  CHECK_THROWS_WITH_AS(db.policy(mon.id()), doctest::Contains("table policies"), std::runtime_error);
  std::filesystem::remove(model_path);
}

TEST_CASE("one production model per database: another model is refused unless promoted, and the switch is recorded") {
  const auto tmp = std::filesystem::temp_directory_path();
  const auto path1 = tmp / "dyad_test_monitor_prod1.safetensors", path2 = tmp / "dyad_test_monitor_prod2.safetensors";
  const Model<double> m1 = calibrated_model(path1), m2 = calibrated_model(path2, 6);
  const auto path = fresh_db("dyad_test_monitor_prod.db");
  FleetDb db(path);
  const Dataset fleet = test::toy_dataset(100, test::tiny_config().roles, 9, 12, 12, 4);
  MonitorOptions o;
  o.policy = {0.2, 0.5};
  CHECK(db.active_model().empty());
  Monitor<Model<double>> first(m1, path1, db, o);
  first.update(fleet);
  CHECK(db.active_model() == first.id());  // the first model becomes the production model
  Monitor<Model<double>> second(m2, path2, db, o);
  REQUIRE(second.id() != first.id());
  const auto segments = count(db, "SELECT count(*) FROM segments");
  const std::string refusal = "the production model of this database is " + first.id();
  CHECK_THROWS_WITH_AS(second.update(fleet), doctest::Contains(refusal.c_str()), std::invalid_argument);
  CHECK_THROWS_WITH_AS(second.apply_policy(), doctest::Contains("--promote"), std::invalid_argument);
  CHECK(count(db, "SELECT count(*) FROM segments") == segments);  // refused: nothing kept
  CHECK(db.active_model() == first.id());
  CHECK(db.other_models(first.id()).empty());

  o.promote = true;
  Monitor<Model<double>> promoted(m2, path2, db, o);
  promoted.update(fleet);
  CHECK(db.active_model() == promoted.id());
  CHECK(count(db, "SELECT count(*) FROM promotions") == 2);
  CHECK(db.fleet(promoted.id()).size() == 20);  // it scored what its verdicts need
  CHECK(db.other_models(promoted.id()) == std::vector<std::string>{first.id()});
  // And back: the old model is refused now, until promoted again.
  CHECK_THROWS_AS(first.apply_policy(), std::invalid_argument);
  std::filesystem::remove(path1);
  std::filesystem::remove(path2);
}

TEST_CASE("fleet database: schema 1 migrates to 2 keeping its rows, and reads as it is when read-only") {
  const auto path = fresh_db("dyad_test_monitor_v1.db");
  {
    sql::Database raw(path);
    raw.exec(dyad::monitor::detail::kMigrations[0], "test");
    raw.exec("PRAGMA user_version = 1; INSERT INTO cars VALUES ('car1', '2026-01-01T00:00:00Z')", "test");
  }
  {
    FleetDb old(path, sql::Access::read_only);
    CHECK(!old.has_policies());
    CHECK(!old.policy("any"));
    CHECK(old.schema_version() == 1);
  }
  FleetDb db(path);
  CHECK(db.schema_version() == 2);
  CHECK(db.has_policies());
  CHECK(count(db, "SELECT count(*) FROM cars") == 1);
  CHECK(count(db, "SELECT count(*) FROM policies") == 0);
}

TEST_CASE("calibration_cars_for: the fewest healthy calibration cars that reach a rate") {
  CHECK(detect::calibration_cars_for(0.01) == 99);
  CHECK(detect::calibration_cars_for(0.05) == 19);
  CHECK(detect::calibration_cars_for(1.0 / 7) == 6);
  CHECK(detect::calibration_cars_for(0.15) == 6);
  CHECK(detect::calibration_cars_for(0.5) == 1);
  for (int n = 1; n < 500; ++n) {  // 1/(n+1) <= rate exactly when n >= calibration_cars_for(rate)
    const double rate = 1.0 / (n + 1);
    CHECK(detect::calibration_cars_for(rate) == static_cast<std::size_t>(n));
  }
  CHECK_THROWS_AS(detect::calibration_cars_for(0), std::invalid_argument);
}

TEST_CASE("window_segments and verdicts: each car's latest segments by time, as the database orders them") {
  Dataset d(std::vector<std::string>{"a", "b", "c", "d"});
  const std::vector<float> v(12 * 4, 1.f);
  // car x: times 30, 10, NaN, 20 (segments 0..3); car y: one segment.
  const double times[] = {30, 10, std::nan(""), 20};
  for (int s = 0; s < 4; ++s) d.add({"x", s, 0, 1.0, times[s]}, v);
  d.add({"y", 7, 0, 1.0, 5.0}, v);
  CHECK(window_segments(d, 0) == std::vector<std::size_t>{0, 1, 2, 3, 4});
  CHECK(window_segments(d, 2) == std::vector<std::size_t>{0, 3, 4});     // x: times 30 and 20
  CHECK(window_segments(d, 3) == std::vector<std::size_t>{0, 1, 3, 4});  // the NaN time last
  CHECK(window_segments(d, 9) == std::vector<std::size_t>{0, 1, 2, 3, 4});

  const auto model_path = std::filesystem::temp_directory_path() / "dyad_test_verdicts_model.safetensors";
  const Model<double> model = calibrated_model(model_path);
  std::filesystem::remove(model_path);
  const Dataset fleet = test::toy_dataset(40, test::tiny_config().roles, 9, 12, 12, 4);
  Model<double>::Workspace ws(1);
  MonitorOptions o;
  o.window = 2;
  const auto v2 = verdicts(model, ws, fleet, o);
  REQUIRE(v2.size() == 8);
  for (const auto& verdict : v2) CHECK(verdict.segments == 2);
  // The same as the calibration's verdicts on the last two segments of each car.
  const ScoreTable all = to_score_table(fleet, model.score(fleet));
  ScoreTable last2;
  for (std::size_t i = 0; i < fleet.size(); ++i) {
    if (fleet.meta(i).segment < 3) continue;
    last2.cars.push_back(all.cars[i]);
    last2.segments.push_back(all.segments[i]);
    last2.labels.push_back(all.labels[i]);
    for (const auto& [name, col] : all.columns) last2.columns[name].push_back(col[i]);
  }
  const auto expected = model.calibration().verdicts(last2, o.policy);
  for (std::size_t i = 0; i < v2.size(); ++i) {
    CHECK(v2[i].car == expected[i].car);
    CHECK(v2[i].p_value == expected[i].p_value);
    CHECK(v2[i].score == doctest::Approx(expected[i].score).epsilon(1e-12));
  }
  Model<double> plain(test::tiny_config());
  CHECK_THROWS_WITH_AS(verdicts(plain, ws, fleet, o), doctest::Contains("not calibrated"), std::invalid_argument);
}
