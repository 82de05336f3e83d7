// Loading a fleet: the long CSV (read_csv) against its segment store (dyad pack). The simulator
// writes --segments segments (default 1 million: 10,000 cars x 100 segments of 128 steps) as a
// long CSV, pack_segment_store converts it, then each of these runs in a child process of its
// own, so that its peak memory is its own:
//   csv         read_csv of the whole file (what every command did before the store)
//   pack        pack_segment_store (streams: its memory must not grow with the input)
//   store open  open_segment_store: the dataset is usable (values mapped, not read)
//   store pass  open, then every value of every segment read once (pages in from the cache or disk)
// Timings only; nothing asserts on time.
//
//   bench_store [--segments 1000000] [--steps 128] [--dir DIR] [--keep]
#include "bench_util.hpp"

#include <dyad/io/segment_store.hpp>
#include <dyad/sim/fleet.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

namespace {

using dyad::bench::peak_rss_mib;
using dyad::bench::seconds_since;

// Runs `f` (returning a short note) in a child; prints its time and peak RSS as one JSON line.
template <class F>
bool measure(const char* what, F f) {
  std::fflush(stdout);
  const pid_t child = ::fork();
  if (child == 0) try {
      const auto t0 = std::chrono::steady_clock::now();
      const std::string note = f();
      const double s = seconds_since(t0);
      std::printf("{\"step\":\"%s\",\"seconds\":%.3f,\"peak_rss_mib\":%.1f%s}\n", what, s, peak_rss_mib(), note.c_str());
      std::fflush(stdout);
      std::_Exit(0);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_store: %s: %s\n", what, e.what());
      std::_Exit(1);
    }
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string summed(const dyad::Dataset& d) {
  double sum = 0;
  std::size_t values = 0;
  for (std::size_t i = 0; i < d.size(); ++i) {
    const dyad::SegmentValues v = d.values(i);
    for (Eigen::Index k = 0; k < v.size(); ++k) sum += v.data()[k];
    values += static_cast<std::size_t>(v.size());
  }
  return ",\"segments\":" + std::to_string(d.size()) + ",\"values\":" + std::to_string(values) +
         ",\"checksum\":" + std::to_string(sum);
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t segments = 1'000'000, steps = 128;
  std::filesystem::path dir = std::filesystem::temp_directory_path();
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--segments" && i + 1 < argc) segments = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--steps" && i + 1 < argc) steps = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--dir" && i + 1 < argc) dir = argv[++i];
    else if (a == "--keep") keep = true;
    else {
      std::cerr << "usage: bench_store [--segments 1000000] [--steps 128] [--dir DIR] [--keep]\n";
      return 2;
    }
  }
  if (segments < 100 || steps < 1) {
    std::cerr << "bench_store: --segments must be >= 100 and --steps >= 1\n";
    return 2;
  }
  const auto csv = dir / ("dyad_bench_fleet_" + std::to_string(::getpid()) + ".csv");
  const auto store = dir / ("dyad_bench_fleet_" + std::to_string(::getpid()) + ".dyadset");

  dyad::sim::FleetConfig cfg;
  cfg.segments_per_car = 100;
  cfg.cars = segments / cfg.segments_per_car;
  cfg.faulty = cfg.cars / 10;
  cfg.steps = steps;
  const auto t0 = std::chrono::steady_clock::now();
  {
    std::ofstream os(csv, std::ios::binary);
    dyad::sim::write_fleet_csv(cfg, os);
    if (!os) {
      std::cerr << "bench_store: cannot write " << csv << "\n";
      return 1;
    }
  }
  std::printf("{\"step\":\"simulate\",\"seconds\":%.3f,\"segments\":%zu,\"steps\":%zu,\"csv_bytes\":%ju}\n", seconds_since(t0),
              cfg.cars * cfg.segments_per_car, steps, static_cast<std::uintmax_t>(std::filesystem::file_size(csv)));

  bool ok = measure("csv", [&] { return summed(dyad::read_csv(csv)); });
  ok = ok && measure("pack", [&] {
         const dyad::PackReport r = dyad::pack_segment_store(csv, store);
         return ",\"segments\":" + std::to_string(r.segments) +
                ",\"store_bytes\":" + std::to_string(std::filesystem::file_size(store));
       });
  ok = ok && measure("store open", [&] {
         const dyad::Dataset d = dyad::open_segment_store(store);
         return ",\"segments\":" + std::to_string(d.size());
       });
  ok = ok && measure("store pass", [&] { return summed(dyad::open_segment_store(store)); });
  if (!keep) {
    std::filesystem::remove(csv);
    std::filesystem::remove(store);
  } else {
    std::printf("kept %s and %s\n", csv.c_str(), store.c_str());
  }
  return ok ? 0 : 1;
}
