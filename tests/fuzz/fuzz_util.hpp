// Helpers shared by the fuzz targets: an in-memory file for readers that take a path, the
// "this is a bug" exit, and the size guard for models built from fuzzed configurations.
#pragma once

#include <dyad/model_config.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace dyad::fuzz {

// A property every accepted input must have does not hold: report and abort, so libFuzzer
// (and the replay test) count it as a crash.
[[noreturn]] inline void bug(const std::string& what) {
  std::fprintf(stderr, "dyad fuzz: BUG: %s\n", what.c_str());
  std::abort();
}

// `data` as an anonymous in-memory file (memfd), reachable through /proc/self/fd/N: no disk
// traffic and nothing left behind when a run dies.
class MemFile {
 public:
  MemFile(const std::uint8_t* data, std::size_t size) {
    fd_ = memfd_create("dyad-fuzz", MFD_CLOEXEC);
    if (fd_ < 0) bug(std::string("memfd_create: ") + std::strerror(errno));
    for (std::size_t done = 0; done < size;) {
      const ssize_t n = ::write(fd_, data + done, size - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) bug(std::string("writing the memfd: ") + std::strerror(errno));
      done += static_cast<std::size_t>(n);
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemFile() { ::close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// Number of weights Model::build allocates for `c` (in double, so absurd sizes do not wrap).
inline double parameter_count(const ModelConfig& c) {
  const double E = static_cast<double>(c.roles.encoder.size()), D = static_cast<double>(c.roles.condition);
  const double H = c.hidden, Z = c.latent, L = c.layers, Dir = c.bidirectional ? 2 : 1, F = L * Dir;
  auto gru = [&](double in) {  // per direction: W_ih [3H x in], W_hh [3H x H], two biases [3H]
    return Dir * (3 * H * (in + H) + 6 * H) + (L - 1) * Dir * (3 * H * (Dir * H + H) + 6 * H);
  };
  auto linear = [](double in, double out) { return out * in + out; };
  return gru(E) + gru(D) + 2 * linear(F * H, Z) + linear(Z, F * H) + linear(Dir * H, E - D) + linear(Z, H / 2) + linear(H / 2, 1);
}

// A configuration that validate() accepted but that needs more than this many weights (8 GB
// of floats, three times that once training adds AdamW's moments) is a missing size check.
inline constexpr double kAbsurdParameters = 2e9;
// Sound configurations above this (the fivefold preset has 7e4) are skipped: building the
// brand1 preset (6e5) takes most of a second here, and the fuzzer is after the parser.
inline constexpr double kFuzzParameters = 2e4;

// True when a Model may be built from `c` (already validated) in a fuzz run; aborts on sizes
// validate() should have refused.
inline bool buildable(const ModelConfig& c) {
  const double n = parameter_count(c);
  if (!(n <= kAbsurdParameters))
    bug("validate() accepted hidden_size " + std::to_string(c.hidden) + ", latent_size " + std::to_string(c.latent) +
        ", num_layers " + std::to_string(c.layers) + ", " + std::to_string(c.roles.encoder.size()) +
        " columns: " + std::to_string(n) + " weights");
  return n <= kFuzzParameters;
}

}  // namespace dyad::fuzz
