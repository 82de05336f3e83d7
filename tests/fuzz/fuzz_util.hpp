// Helpers shared by the fuzz targets: an in-memory file for readers that take a path, the
// "this is a bug" exit, the size guard for models built from fuzzed configurations, and the
// re-sealing of checksummed files.
#pragma once

#include <dyad/io/checkpoint.hpp>
#include <dyad/io/safetensors.hpp>
#include <dyad/model_config.hpp>

#include <nlohmann/json.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

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

// ---- Re-sealing ---------------------------------------------------------------------------
// Checkpoints (ensembles too) and training states carry a CRC-32C seal, metadata
// dyad.checksum = tensor_checksum(contents), which the loaders verify first: a mutated file
// fails there and never reaches the readers of the metadata behind it. Anyone can recompute a
// CRC, so the readers must hold on their own; the targets of sealed formats therefore run
// each input as it is (the seal check itself is fuzzed) and once more re-sealed.

// True when `bytes` parse and their dyad.checksum is what verify_tensor_checksum computes.
inline bool sealed(std::span<const std::uint8_t> bytes) {
  try {
    const SafeTensors st = SafeTensors::from_bytes(std::as_bytes(bytes), "fuzz.safetensors");
    const auto it = st.metadata.find(kChecksumKey);
    return it != st.metadata.end() && it->second == tensor_checksum(st);
  } catch (const std::exception&) {
    return false;
  }
}

// `data` with its seal recomputed as the writer computes it (detail::seal_and_save: the library's
// tensor_checksum of what SafeTensors::from_bytes parses) and written back; nothing when `data`
// does not parse as safetensors (no seal can be computed) or is sealed already. The new value
// replaces the stored one's JSON text in place (the header length adjusted), so every other
// byte stays as mutated: spacing, key order, escapes, padding. When that text is not found
// (escaped otherwise, or no checksum key: the writer always adds one), the file is written again
// by SafeTensors::to_bytes with the seal set. Either way the result is checked with `sealed`.
inline std::optional<std::vector<std::uint8_t>> resealed(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  SafeTensors st;
  try {
    st = SafeTensors::from_bytes(std::as_bytes(bytes), "fuzz.safetensors");
  } catch (const std::exception&) {
    return std::nullopt;
  }
  const std::string seal = tensor_checksum(st);
  const auto it = st.metadata.find(kChecksumKey);
  if (it != st.metadata.end() && it->second == seal) return std::nullopt;
  if (it != st.metadata.end()) {
    const auto n = detail::load_le<std::uint64_t>(reinterpret_cast<const std::byte*>(data));  // from_bytes checked 8 + n <= size
    const std::string_view header(reinterpret_cast<const char*>(data + 8), static_cast<std::size_t>(n));
    std::string old_text;
    try {
      old_text = nlohmann::json(it->second).dump();
    } catch (const std::exception&) {  // not UTF-8: nlohmann would not have written it like this
    }
    const std::string new_text = nlohmann::json(seal).dump();
    // The first few places the old value's text appears (one, unless a key or another value
    // spells the same): the one that seals is the checksum's.
    std::size_t at = old_text.empty() ? std::string_view::npos : header.find(old_text);
    for (int tries = 0; at != std::string_view::npos && tries < 4; ++tries, at = header.find(old_text, at + 1)) {
      std::string h(header);
      h.replace(at, old_text.size(), new_text);
      std::vector<std::uint8_t> out(8 + h.size());
      detail::store_le<std::uint64_t>(reinterpret_cast<std::byte*>(out.data()), h.size());
      std::memcpy(out.data() + 8, h.data(), h.size());
      out.insert(out.end(), data + 8 + n, data + size);
      if (sealed(out)) return out;
    }
  }
  try {
    st.metadata[kChecksumKey] = seal;
    const std::vector<std::byte> image = st.to_bytes();
    std::vector<std::uint8_t> out(image.size());
    std::memcpy(out.data(), image.data(), image.size());
    if (sealed(out)) return out;
  } catch (const std::exception&) {  // e.g. a name that is not UTF-8: to_bytes refuses it
  }
  return std::nullopt;
}

}  // namespace dyad::fuzz
