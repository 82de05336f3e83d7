// Shared pieces of the dyad command line: the progress line, reading data for a model,
// and small formatting helpers.
#pragma once

#include <dyad/dyad.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <initializer_list>
#include <iostream>
#include <string>
#include <string_view>
#include <system_error>

namespace dyad::cli {

inline bool stderr_is_tty() { return ::isatty(STDERR_FILENO) == 1; }

inline std::string clock(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

// A live progress line on a terminal (rewritten in place), one line per epoch otherwise.
class ProgressLine {
 public:
  explicit ProgressLine(bool quiet = false) : quiet_(quiet), tty_(stderr_is_tty()) {}

  void operator()(const Progress& p) {
    if (quiet_) return;
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "epoch %d/%d  batch %zu/%zu  loss %.4f (nll %.4f  kl %.2f  label %.4f)  lr %.2e  kl_w %.3g  %.0f seg/s  %s %s",
                  p.epoch + 1, p.epochs, p.batch, p.batches, p.loss, p.nll, p.kl, p.label, p.lr, p.kl_weight,
                  p.segments_per_s, p.epoch_end ? "elapsed" : "ETA", clock(p.epoch_end ? p.seconds : p.seconds_left).c_str());
    if (tty_) {
      std::cerr << "\r\033[K" << buf << (p.epoch_end ? "\n" : "") << std::flush;
    } else if (p.epoch_end) {
      std::cerr << buf << "\n";
    }
  }

 private:
  bool quiet_, tty_;
};

// Creates the output directory `dir` (the value of `flag`) and checks that each of `files` can be
// written in it, so a bad directory fails before any work rather than after training.
inline void prepare_output_directory(const std::filesystem::path& dir, std::string_view flag,
                                     std::initializer_list<const char*> files) {
  const std::string label = std::string(flag) + " '" + dir.string() + "'";
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) && !std::filesystem::is_directory(dir, ec))
    throw std::runtime_error("dyad: " + label + ": exists and is not a directory");
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error("dyad: " + label + ": cannot create the directory: " + ec.message());
  for (const char* f : files) check_output_path(dir / f, flag);
}

// Reads only the model's encoder columns (plus metadata) from a long CSV.
inline Dataset read_model_data(const std::string& path, const ModelConfig& config) {
  CsvOptions options;
  options.signals = config.roles.encoder;
  return read_csv(path, options);
}

}  // namespace dyad::cli
