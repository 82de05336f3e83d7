// Refusing a run that cannot fit in memory before it starts, with the estimate and the
// setting to change, instead of an anonymous std::bad_alloc (or the OOM killer) later.
#pragma once

#include <cstddef>
#include <cstdio>
#include <stdexcept>
#include <string>

#include <unistd.h>

namespace dyad {

// Physical memory of the machine, or 0 when the system does not say.
inline std::size_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(page) : 0;
}

inline std::string gib_text(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

// Throws std::invalid_argument when `needed` bytes exceed the machine's memory:
// "<what> needs about X GiB, this machine has Y GiB; <remedy>".
inline void check_memory(double needed, const std::string& what, const std::string& remedy) {
  const std::size_t have = physical_memory_bytes();
  if (have > 0 && needed > static_cast<double>(have))
    throw std::invalid_argument("dyad: " + what + " needs about " + gib_text(needed) + " of memory, this machine has " +
                                gib_text(static_cast<double>(have)) + "; " + remedy);
}

}  // namespace dyad
