// The small fleet database of the fleet_db target (and of its seeds, make_corpus.cpp): a tiny
// calibrated model over toy data (four cars of five segments, car1 faulty) and a database that
// `dyad monitor` filled with two updates (segments 0-1, then 2 of every car). The JSON columns
// that dyad parses when it reads the database back are listed in kJsonColumns.
#pragma once

#include "../toy_data.hpp"

#include <dyad/model.hpp>
#include <dyad/monitor/monitor.hpp>

#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

namespace dyad::fuzz {

// A JSON column parsed on read: its table, column, and how its rows are ordered to pick one.
struct JsonColumn {
  const char* table;
  const char* column;
  const char* key;  // the row's key columns, ordered by which OFFSET picks a row
};
inline constexpr std::array<JsonColumn, 3> kJsonColumns{{
    {"segments", "errors", "car, segment"},  // recent_segments (every Monitor::update)
    {"car_status", "signals", "car"},        // car_state, fleet (dyad status, report, compare)
    {"status_history", "signals", "id"},     // history (dyad status --car, report)
}};

class FleetDbFixture {
 public:
  using Model = dyad::Model<float>;

  FleetDbFixture() : model_(config()) {
    std::error_code ec;
    const std::filesystem::path shm = "/dev/shm";  // tmpfs: SQLite's syncs cost nothing
    dir_ = (std::filesystem::is_directory(shm, ec) && ::access(shm.c_str(), W_OK) == 0 ? shm
                                                                                       : std::filesystem::temp_directory_path()) /
           ("dyad_fuzz_fleet_db_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_, ec);
    std::filesystem::create_directories(dir_);
    model_path_ = dir_ / "model.safetensors";
    db_path_ = dir_ / "base.db";
    work_path_ = dir_ / "fleet.db";
    const Dataset all = test::toy_dataset(20, config().roles, 5, 4, 8, 4);
    FitOptions o;
    o.calibration_fraction = 0.3;
    model_.fit(all, {}, o);
    model_.save(model_path_);
    auto part = [&](std::int64_t from, std::int64_t to) {
      Dataset d(all.columns());
      d.set_labelled(all.labelled());
      for (std::size_t i = 0; i < all.size(); ++i)
        if (all.meta(i).segment >= from && all.meta(i).segment < to) {
          const auto v = all.values(i);
          d.add(all.meta(i), std::vector<float>(v.data(), v.data() + v.size()));
        }
      return d;
    };
    batch_ = part(3, 5);
    {
      monitor::FleetDb db(db_path_);
      monitor::Monitor<Model> m(model_, model_path_, db, options());
      m.update(part(0, 2));
      m.update(part(2, 3));
    }  // closing the last connection checkpoints the WAL into the file
    std::ifstream in(db_path_, std::ios::binary);
    base_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  ~FleetDbFixture() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  FleetDbFixture(const FleetDbFixture&) = delete;
  FleetDbFixture& operator=(const FleetDbFixture&) = delete;

  static ModelConfig config() {
    ModelConfig c = test::tiny_config();
    c.threads = 1;
    return c;
  }
  static monitor::MonitorOptions options() {
    monitor::MonitorOptions o;
    o.window = 3;
    return o;
  }

  const Model& model() const { return model_; }
  const std::filesystem::path& model_path() const { return model_path_; }
  // Segments 3 and 4 of every car: what the next update brings.
  const Dataset& batch() const { return batch_; }

  // Writes the base database afresh to a file beside it (no WAL left there) and returns its path.
  const std::filesystem::path& fresh_database() const {
    std::error_code ec;
    for (const char* suffix : {"-wal", "-shm", "-journal"}) std::filesystem::remove(work_path_.string() + suffix, ec);
    std::ofstream(work_path_, std::ios::binary | std::ios::trunc).write(base_.data(), static_cast<std::streamsize>(base_.size()));
    return work_path_;
  }

  // Puts every table of `db` (a fresh_database() kept open) back as the base database holds
  // it, in one transaction: much cheaper than opening a copy of the file for every input.
  void restore(sql::Database& db) const {
    if (db.scalar("SELECT count(*) FROM pragma_database_list WHERE name = 'base'") == 0)
      db.exec(("ATTACH DATABASE '" + db_path_.string() + "' AS base").c_str(), "attaching the base database");
    static constexpr const char* kTables[] = {"models",   "policies",   "input_checks",   "promotions", "cars",
                                              "segments", "car_status", "status_history", "alarms"};
    std::string sql = "BEGIN IMMEDIATE;";
    for (auto t = std::rbegin(kTables); t != std::rend(kTables); ++t) sql += std::string("DELETE FROM main.") + *t + ";";
    for (const char* t : kTables) sql += std::string("INSERT INTO main.") + t + " SELECT * FROM base." + t + ";";
    sql += "COMMIT;";
    db.exec(sql.c_str(), "restoring the base database");
  }

 private:
  Model model_;
  std::filesystem::path dir_, model_path_, db_path_, work_path_;
  Dataset batch_;
  std::vector<char> base_;
};

}  // namespace dyad::fuzz
