// End-to-end throughput of `dyad ingest` on one core: the simulator writes a raw telematics
// export of at least --gb GB (every sample of every car, interleaved in time), then Ingestor
// reads it and writes the long CSV of charging windows to a file next to it. Reports MB/s of
// export, rows/s, windows/s and the peak resident memory of the ingest alone (the export is
// streamed, so it must not grow with the file). Timings only; nothing asserts on time.
//
//   bench_ingest [--gb 1.0] [--dir DIR] [--keep]     (DIR: where the files go, default /tmp)
#include "bench_util.hpp"

#include <dyad/ingest/ingest.hpp>
#include <dyad/sim/telemetry.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <iostream>
#include <string>

namespace {

using dyad::bench::peak_rss_mib;
using dyad::bench::seconds_since;

}  // namespace

int main(int argc, char** argv) {
  double gb = 1.0;
  std::filesystem::path dir = std::filesystem::temp_directory_path();
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--gb" && i + 1 < argc) gb = std::atof(argv[++i]);
    else if (a == "--dir" && i + 1 < argc) dir = argv[++i];
    else if (a == "--keep") keep = true;
    else {
      std::cerr << "usage: bench_ingest [--gb 1.0] [--dir DIR] [--keep]\n";
      return 2;
    }
  }
  if (!(gb > 0)) {
    std::cerr << "bench_ingest: --gb must be > 0\n";
    return 2;
  }
  const auto raw = dir / ("dyad_bench_raw_" + std::to_string(::getpid()) + ".csv");
  const auto out = dir / ("dyad_bench_segments_" + std::to_string(::getpid()) + ".csv");
  const auto spec_path = dir / ("dyad_bench_spec_" + std::to_string(::getpid()) + ".json");

  // The export: 200 cars write about 140 MB per simulated day; enough days for `gb`.
  dyad::sim::TelemetryConfig cfg;
  cfg.fleet.cars = 200;
  cfg.fleet.faulty = 20;
  cfg.fleet.seed = 1;
  cfg.days = 1;
  double written = 0;
  {
    // Measure one day's size on a small fleet, then scale the days.
    dyad::sim::TelemetryConfig probe = cfg;
    probe.fleet.cars = 10;
    probe.fleet.faulty = 1;
    std::ostringstream os;
    dyad::sim::write_raw_telemetry(probe, os);
    const double per_car_day = static_cast<double>(os.str().size()) / 10.0;
    cfg.days = std::max(1.0, std::ceil(gb * 1e9 / (per_car_day * static_cast<double>(cfg.fleet.cars)) * 1.02));
  }
  auto t0 = std::chrono::steady_clock::now();
  {
    std::ofstream os(raw, std::ios::binary);
    dyad::sim::write_raw_telemetry(cfg, os);
    if (!os) {
      std::cerr << "bench_ingest: cannot write " << raw << "\n";
      return 1;
    }
  }
  const double gen_s = seconds_since(t0);
  written = static_cast<double>(std::filesystem::file_size(raw));
  std::ofstream(spec_path) << dyad::sim::telemetry_spec(cfg).dump(2);
  std::printf("export: %.2f GB (%zu cars x %.0f days) written in %.1f s (%.0f MB/s)\n", written / 1e9, cfg.fleet.cars, cfg.days,
              gen_s, written / 1e6 / gen_s);
  std::fflush(stdout);

  // The ingest runs in a child process so that its peak memory is its own.
  const pid_t child = ::fork();
  if (child == 0) try {
      const dyad::ingest::Spec spec = dyad::ingest::spec_from_file(spec_path);
      const auto t1 = std::chrono::steady_clock::now();
      dyad::ingest::Report r;
      {
        std::ofstream os(out, std::ios::binary);
        dyad::ingest::Ingestor ingestor(spec, os);
        ingestor.read(raw);
        r = ingestor.finish();
      }
      const double s = seconds_since(t1);
      std::printf(
          "ingest: %.1f s, %.0f MB/s of export, %.2f M rows/s, %llu sessions, %llu windows (%.0f windows/s), "
          "peak RSS %.0f MiB\n",
          s, written / 1e6 / s, static_cast<double>(r.total.rows) / 1e6 / s, static_cast<unsigned long long>(r.total.sessions),
          static_cast<unsigned long long>(r.total.windows), static_cast<double>(r.total.windows) / s, peak_rss_mib());
      std::printf(
          "{\"export_bytes\":%.0f,\"ingest_seconds\":%.3f,\"mb_per_s\":%.1f,\"rows\":%llu,\"windows\":%llu,"
          "\"peak_rss_mib\":%.1f}\n",
          written, s, written / 1e6 / s, static_cast<unsigned long long>(r.total.rows),
          static_cast<unsigned long long>(r.total.windows), peak_rss_mib());
      std::fflush(stdout);
      std::_Exit(0);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_ingest: %s\n", e.what());
      std::_Exit(1);
    }
  int status = 0;
  ::waitpid(child, &status, 0);
  if (!keep) {
    std::filesystem::remove(raw);
    std::filesystem::remove(out);
    std::filesystem::remove(spec_path);
  } else {
    std::printf("kept %s, %s and %s\n", raw.c_str(), spec_path.c_str(), out.c_str());
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
