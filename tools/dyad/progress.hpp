// The command line's progress line for training (train, cv, demo): rewritten in place on a
// terminal, a line at a time into a pipe or log file.
#pragma once

#include "common.hpp"

#include <dyad/model.hpp>  // dyad::Progress

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>

namespace dyad::cli {

// A live progress line on a terminal (rewritten in place). Into a pipe or log file: a line at
// the end of each epoch and at least every 10 seconds in between, so a long epoch shows its
// speed. Every line ends with the ETA of the whole run: for an ensemble, the network in
// training's time left plus, for each network still to come, the mean time of those done (the
// current one's projected time while none is). `prefix` says which run it is (e.g. "fold 2/5").
class ProgressLine {
 public:
  explicit ProgressLine(bool quiet = false, std::string prefix = "")
      : quiet_(quiet), tty_(stderr_is_tty()), prefix_(prefix.empty() ? prefix : prefix + "  ") {}

  void operator()(const Progress& p) {
    if (quiet_) return;
    char buf[288];
    const std::string member =
        p.members > 1 ? "network " + std::to_string(p.member + 1) + "/" + std::to_string(p.members) + "  " : "";
    const std::string when =
        p.epoch_end ? "elapsed " + clock(p.seconds) + "  ETA " + clock(seconds_left(p)) : "ETA " + clock(seconds_left(p));
    std::snprintf(buf, sizeof buf,
                  "%sepoch %d/%d  batch %zu/%zu  loss %.4f (nll %.4f  kl %.2f  label %.4f)  lr %.2e  kl_w %.3g  %.0f seg/s  %s",
                  member.c_str(), p.epoch + 1, p.epochs, p.batch, p.batches, p.loss, p.nll, p.kl, p.label, p.lr, p.kl_weight,
                  p.segments_per_s, when.c_str());
    if (tty_) {
      std::cerr << "\r\033[K" << prefix_ << buf << (p.epoch_end ? "\n" : "") << std::flush;
    } else if (p.epoch_end || p.seconds >= last_ + kLogInterval) {
      last_ = p.seconds;
      std::cerr << prefix_ << buf << "\n";
    }
  }

 private:
  // The whole run's time left at `p`: the network in training's, plus the networks to come.
  double seconds_left(const Progress& p) {
    if (p.member != member_) {  // the previous network is done; its last report had its time
      if (p.member > member_) {
        done_seconds_ += member_seconds_;
        done_members_ += p.member - member_;
      }
      member_ = p.member;
      last_ = 0;  // the new network's clock starts again
    }
    member_seconds_ = p.seconds;
    const int to_come = std::max(0, p.members - p.member - 1);
    const double per_member = done_members_ > 0 ? done_seconds_ / done_members_ : p.seconds + p.seconds_left;
    return p.seconds_left + to_come * per_member;
  }

  static constexpr double kLogInterval = 10;  // seconds
  bool quiet_, tty_;
  std::string prefix_;
  double last_ = 0;
  int member_ = 0, done_members_ = 0;             // the network in training; how many are done
  double member_seconds_ = 0, done_seconds_ = 0;  // its time so far; theirs in all
};

}  // namespace dyad::cli
