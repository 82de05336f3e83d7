// Small helpers shared by the end-to-end benchmark programs (bench_ingest, bench_store).
#pragma once

#include <sys/resource.h>

#include <chrono>

namespace dyad::bench {

// Peak resident memory of this process so far, MiB.
inline double peak_rss_mib() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // KiB on Linux
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace dyad::bench
