// Fuzz target: the JSON that the fleet database (dyad::monitor::FleetDb) stores and parses
// back: segments.errors, car_status.signals and status_history.signals (fleet_db_fixture.hpp;
// models.config, normalizer and calibration are written but never read back). The first
// byte picks the column, the second its row; the rest is the column's new text. Each input
// starts from the same small database (a tiny calibrated model, four cars, two updates; one
// connection for the process, its tables restored per input), overwrites that one cell, then reads as `dyad status`, `report` and `compare` do
// (fleet, car_state, history, recent_segments) and runs the next Monitor::update (the stored
// errors and state feed the new verdicts). Refusal is any std::exception; what is read must
// hold: signals with names and no NaN ratio, statuses and p-values in range, one state per
// car, verdicts over every calibration signal, and `dyad status` JSON that serialises.
#include "fleet_db_fixture.hpp"
#include "fuzz_util.hpp"

#include <dyad/monitor/fleet_db.hpp>
#include <dyad/monitor/monitor.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <set>
#include <string>
#include <string_view>

namespace {

using dyad::monitor::CarState;

using Monitor = dyad::monitor::Monitor<dyad::fuzz::FleetDbFixture::Model>;

// Built once per process: the base database, a connection to a copy of it and the monitor.
struct Setup {
  dyad::fuzz::FleetDbFixture fixture;
  dyad::monitor::FleetDb db{fixture.fresh_database()};
  Monitor monitor{fixture.model(), fixture.model_path(), db, dyad::fuzz::FleetDbFixture::options()};
};
Setup& setup() {
  static Setup s;
  return s;
}

// What a reader may hand out, whatever the database held.
void check_state(const CarState& c, const dyad::detect::Calibration& cal, bool fresh) {
  if (c.status != dyad::detect::Status::ok && c.status != dyad::detect::Status::watch && c.status != dyad::detect::Status::alarm)
    dyad::fuzz::bug("a car state with an unknown status");
  for (const auto& s : c.signals)
    if (std::isnan(s.ratio)) dyad::fuzz::bug("a signal ratio read back as NaN");
  try {
    (void)dyad::monitor::signals_json(c.signals).dump();  // what `dyad status` prints
  } catch (const std::exception& e) {
    dyad::fuzz::bug(std::string("signals read from the database do not serialise: ") + e.what());
  }
  if (fresh) {  // computed by this update, not read from the fuzzed cell
    if (!(c.p_value >= cal.finest_rate() && c.p_value <= 1.0)) dyad::fuzz::bug("a new verdict's p-value is outside [1/(n+1), 1]");
    if (c.signals.size() != cal.signals().size()) dyad::fuzz::bug("a new verdict's explanation misses signals");
  }
}

// Every reader of the database, each on its own (one refusing does not hide the others).
void read_all(dyad::monitor::FleetDb& db, const std::string& id, const dyad::detect::Calibration& cal,
              const std::set<std::string>& fresh_cars) {
  try {
    (void)db.model_ids();
    (void)db.latest_model();
  } catch (const std::exception&) {
  }
  try {
    std::set<std::string> seen;
    for (const CarState& c : db.fleet(id)) {
      if (!seen.insert(c.car).second) dyad::fuzz::bug("fleet() lists car '" + c.car + "' twice");
      check_state(c, cal, fresh_cars.count(c.car) > 0);
    }
  } catch (const std::exception&) {
  }
  for (const char* car : {"car0", "car1", "car2", "car3"}) {
    try {
      if (const auto c = db.car_state(car, id)) check_state(*c, cal, fresh_cars.count(car) > 0);
    } catch (const std::exception&) {
    }
    try {
      for (const CarState& c : db.history(car)) check_state(c, cal, false);
    } catch (const std::exception&) {
    }
    for (const std::size_t window : {std::size_t{0}, std::size_t{2}}) {
      try {
        const auto rows = db.recent_segments(id, car, window, cal.signals());
        if (window > 0 && rows.size() > window) dyad::fuzz::bug("recent_segments returned more than its window");
        for (const auto& r : rows)
          if (r.errors.size() != cal.signals().size()) dyad::fuzz::bug("a stored segment's errors miss signals");
      } catch (const std::exception&) {
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Setup& set = setup();
  const auto& f = set.fixture;
  auto& db = set.db;
  auto& monitor = set.monitor;
  if (size < 2) return 0;
  const auto& column = dyad::fuzz::kJsonColumns[data[0] % dyad::fuzz::kJsonColumns.size()];
  const std::int64_t row = data[1];
  const std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);
  const auto& cal = f.model().calibration();

  f.restore(db.database());
  {
    const std::string table = column.table, name = column.column, key = column.key;
    dyad::sql::Statement s(db.database(), "UPDATE " + table + " SET " + name + " = ? WHERE (" + key + ") = (SELECT " + key +
                                              " FROM " + table + " ORDER BY " + key + " LIMIT 1 OFFSET ? % (SELECT count(*) FROM " +
                                              table + "))");
    s.bind(1, text).bind(2, row);
    s.run();
    if (sqlite3_changes(db.database().handle()) != 1) dyad::fuzz::bug("the fuzzed cell was not written");
  }
  read_all(db, monitor.id(), cal, {});
  std::set<std::string> fresh;
  try {
    const auto report = monitor.update(f.batch());
    for (const auto& c : report.changes)
      if (!(c.p_value >= cal.finest_rate() && c.p_value <= 1.0))
        dyad::fuzz::bug("a status change's p-value is outside [1/(n+1), 1]");
    if (report.cars != 4) dyad::fuzz::bug("an update of four cars' segments updated " + std::to_string(report.cars));
    fresh = {"car0", "car1", "car2", "car3"};
  } catch (const std::exception&) {  // refused: the transaction rolled back
  }
  read_all(db, monitor.id(), cal, fresh);
  return 0;
}
