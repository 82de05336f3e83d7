// Shared pieces of the dyad command line: the ranks, --threads and --precision, reading data
// for a model, output directories and times. The progress line of training is in progress.hpp.
#pragma once

#include <dyad/config.hpp>
#include <dyad/core/cpu.hpp>
#include <dyad/core/precision.hpp>
#include <dyad/data/csv.hpp>
#include <dyad/data/dataset.hpp>
#include <dyad/detect/calibration.hpp>
#include <dyad/dist/communicator.hpp>
#include <dyad/core/atomic_file.hpp>
#include <dyad/io/segment_store.hpp>
#include <dyad/model_config.hpp>

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <initializer_list>
#include <iostream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace dyad::cli {

// The ranks this process is one of: MPI's when mpirun launched a dyad built with MPI (main.cpp),
// else the single process. Only `train` and `score` run across ranks.
inline const Communicator* cli_ranks = nullptr;
inline const Communicator& ranks() { return cli_ranks ? *cli_ranks : single_process(); }

inline bool stderr_is_tty() { return ::isatty(STDERR_FILENO) == 1; }

inline std::string clock(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

// The default of --threads for train, score, cv, bench and demo: every hardware thread.
inline int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return std::clamp(n == 0 ? 1 : static_cast<int>(n), 1, limits::threads);
}
inline std::string threads_help() {
  return "Worker threads (default: every hardware thread, " + std::to_string(hardware_threads()) + " here)";
}

// --precision of score, monitor and bench: the arithmetic of the GRU products.
inline void add_precision_option(CLI::App* cmd, std::string& precision) {
  cmd->add_option("--precision", precision,
                  "fp32, or bf16: the GRU products in bfloat16 with fp32 accumulation, on CPUs with AVX512-BF16 "
                  "(elsewhere fp32, with a note)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "bf16"}));
}
// The precision asked for; a bf16 request this CPU cannot run gets a note and runs fp32.
inline Precision chosen_precision(const std::string& name, const char* who) {
  const Precision p = parse_precision(name);
  if (effective_precision(p) != p)
    std::cerr << who << ": note: --precision bf16 needs AVX512-BF16, which this CPU lacks (it has: " << cpu_features().names()
              << "); computing in fp32\n";
  return p;
}

// --rnn-type: one of the cells (dyad/ops/cell.hpp), in upstream's spelling.
inline void add_rnn_type_option(CLI::App* cmd, std::string& value, const std::string& help) {
  cmd->add_option("--rnn-type", value, help)->check(CLI::IsMember({"gru", "rnn", "lstm"}, CLI::ignore_case));
}

// Reads a --config file over `base`; names once the upstream keys it ignores.
inline ModelConfig read_config_file(const std::string& path, const ModelConfig& base) {
  std::vector<std::string> ignored;
  ModelConfig c = config_from_file(path, base, &ignored);
  if (!ignored.empty()) {
    std::cerr << "dyad: note: " << path << ": ignoring upstream keys dyad does not use:";
    for (const auto& k : ignored) std::cerr << ' ' << k;
    std::cerr << "\n";
  }
  return c;
}

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

// Leaves out (and says how many) segments shorter than the configuration's min_length.
inline void drop_short_segments(Dataset& data, const std::string& source, const ModelConfig& config) {
  const std::size_t short_segments = data.drop_short_segments(static_cast<std::size_t>(config.min_length));
  if (short_segments)
    std::cerr << "dyad: note: " << source << ": left out " << short_segments << " of " << data.size() + short_segments
              << " segments, shorter than min_length " << config.min_length << " steps\n";
}

// Reads only the model's encoder columns (plus metadata) from a long CSV, leaving out (and
// saying how many) segments shorter than the configuration's min_length.
inline Dataset read_model_data(const std::string& path, const ModelConfig& config) {
  CsvOptions options;
  options.signals = config.roles.encoder;
  Dataset data = read_data(path, options);  // a long CSV or a segment store (dyad pack)
  drop_short_segments(data, path, config);
  if (data.size() == 0)
    throw std::runtime_error(path + ": no segment of at least min_length " + std::to_string(config.min_length) + " steps");
  return data;
}

// A rate as people write it: 0.01, 0.142857.
inline std::string rate_text(double rate) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", rate);
  return buf;
}

// The shortest rate, as rate_text writes it, that is at least `rate`: what to ask for to reach it.
inline std::string rate_at_least(double rate) {
  const double unit = std::pow(10.0, std::floor(std::log10(rate)) - 3);
  return rate_text(std::ceil(rate / unit - 1e-9) * unit);
}

// One line on what a model's calibration can state (none: say how to get one).
inline void print_calibration_summary(const char* who, const detect::Calibration& c) {
  if (c.empty()) {
    std::cerr << who << ": not calibrated: no p-values or statuses (dyad calibrate adds them)\n";
    return;
  }
  std::cerr << who << ": calibrated on " << c.size() << " healthy cars it did not train on";
  if (!c.faulty_cars().empty()) std::cerr << " (and " << c.faulty_cars().size() << " faulty cars, for --cost-miss)";
  std::cerr << ", car scores of the top " << c.h_per_mille()
            << " per mille segments; the finest false-alarm rate it can state is 1/" << c.size() + 1 << " = " << c.finest_rate()
            << "\n";
  if (const double rate = detect::AlarmPolicy{}.alarm_rate; c.finest_rate() > rate)
    std::cerr << who << ": warning: dyad monitor's default alarm rate, " << rate << ", needs at least "
              << detect::calibration_cars_for(rate) << " healthy calibration cars; with " << c.size()
              << ", monitor refuses it: give it --alarm-rate " << rate_at_least(c.finest_rate())
              << " or above, or calibrate on more healthy cars (dyad calibrate, or a larger --calibration-fraction)\n";
}

}  // namespace dyad::cli
