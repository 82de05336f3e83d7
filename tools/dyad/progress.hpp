// The command line's progress line for training (train, cv, demo): rewritten in place on a
// terminal, a line at a time into a pipe or log file.
#pragma once

#include "common.hpp"

#include <dyad/model.hpp>  // dyad::Progress

#include <cstdio>
#include <iostream>
#include <string>

namespace dyad::cli {

// A live progress line on a terminal (rewritten in place). Into a pipe or log file: a line at
// the end of each epoch and at least every 10 seconds in between, so a long epoch shows its
// speed and ETA. `prefix` says which run it is (e.g. "fold 2/5").
class ProgressLine {
 public:
  explicit ProgressLine(bool quiet = false, std::string prefix = "")
      : quiet_(quiet), tty_(stderr_is_tty()), prefix_(prefix.empty() ? prefix : prefix + "  ") {}

  void operator()(const Progress& p) {
    if (quiet_) return;
    char buf[256];
    const std::string member = p.members > 1 ? "network " + std::to_string(p.member + 1) + "/" + std::to_string(p.members) + "  " : "";
    std::snprintf(buf, sizeof buf,
                  "%sepoch %d/%d  batch %zu/%zu  loss %.4f (nll %.4f  kl %.2f  label %.4f)  lr %.2e  kl_w %.3g  %.0f seg/s  %s %s",
                  member.c_str(), p.epoch + 1, p.epochs, p.batch, p.batches, p.loss, p.nll, p.kl, p.label, p.lr, p.kl_weight,
                  p.segments_per_s, p.epoch_end ? "elapsed" : "ETA", clock(p.epoch_end ? p.seconds : p.seconds_left).c_str());
    if (tty_) {
      std::cerr << "\r\033[K" << prefix_ << buf << (p.epoch_end ? "\n" : "") << std::flush;
    } else if (p.epoch_end || p.seconds >= last_ + kLogInterval) {
      last_ = p.seconds;
      std::cerr << prefix_ << buf << "\n";
    }
  }

 private:
  static constexpr double kLogInterval = 10;  // seconds
  bool quiet_, tty_;
  std::string prefix_;
  double last_ = 0;
};

}  // namespace dyad::cli
