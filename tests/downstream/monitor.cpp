// Uses an installed dyad's fleet history through dyad::monitor (dyad plus SQLite).
#include <dyad/monitor/fleet_db.hpp>

#include <cstdio>
#include <filesystem>

int main() {
  const auto path = std::filesystem::temp_directory_path() / "dyad_downstream_fleet.db";
  std::filesystem::remove(path);
  const int version = dyad::monitor::FleetDb(path).schema_version();
  std::filesystem::remove(path);
  std::filesystem::remove(path.string() + "-wal");
  std::filesystem::remove(path.string() + "-shm");
  if (version != dyad::monitor::kSchemaVersion) {
    std::fprintf(stderr, "fleet database schema version %d, expected %d\n", version, dyad::monitor::kSchemaVersion);
    return 1;
  }
  std::printf("dyad::monitor downstream ok (schema version %d)\n", version);
  return 0;
}
