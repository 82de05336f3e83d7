// The command line's progress line (tools/dyad/progress.hpp) into a pipe or log file: a line
// at every epoch end and at least every 10 seconds in between, with speed and ETA.
#include "../tools/dyad/progress.hpp"

#include <doctest/doctest.h>

#include <iostream>
#include <sstream>
#include <string>
#include <tuple>

namespace {

// What ProgressLine writes to stderr for these progress reports.
std::string progress_output(const std::string& prefix, std::initializer_list<std::pair<double, bool>> reports) {
  std::ostringstream captured;
  auto* old = std::cerr.rdbuf(captured.rdbuf());
  dyad::cli::ProgressLine line(false, prefix);
  for (const auto& [seconds, epoch_end] : reports) {
    dyad::Progress p;
    p.epochs = 2, p.batches = 100, p.batch = 1, p.seconds = seconds, p.epoch_end = epoch_end;
    p.segments_per_s = 1234, p.seconds_left = 65;
    line(p);
  }
  std::cerr.rdbuf(old);
  return captured.str();
}

// An ensemble of three networks: each report is (member, seconds, seconds_left) at an epoch end.
std::string ensemble_output(std::initializer_list<std::tuple<int, double, double>> reports) {
  std::ostringstream captured;
  auto* old = std::cerr.rdbuf(captured.rdbuf());
  dyad::cli::ProgressLine line;
  for (const auto& [member, seconds, left] : reports) {
    dyad::Progress p;
    p.epochs = 1, p.batches = 10, p.batch = 10, p.epoch_end = true;
    p.member = member, p.members = 3, p.seconds = seconds, p.seconds_left = left;
    line(p);
  }
  std::cerr.rdbuf(old);
  return captured.str();
}

std::size_t lines(const std::string& s) { return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n')); }

}  // namespace

TEST_CASE("ProgressLine into a log: every epoch end and at least every 10 s, with seg/s and ETA") {
  if (dyad::cli::stderr_is_tty()) return;  // a terminal gets the live line instead (not under ctest)
  // Reports at 1, 4 and 9 s say nothing; 10.5 s is due; then 12 s is not, 21 s is; epoch ends always.
  const std::string out =
      progress_output("", {{1, false}, {4, false}, {9, false}, {10.5, false}, {12, false}, {21, false}, {22, true}, {23, false}});
  CHECK(lines(out) == 3);
  CHECK(out.find("1234 seg/s  ETA 1:05") != std::string::npos);
  CHECK(out.find("elapsed 0:22") != std::string::npos);
  // The epoch-end line carries the ETA too (a run of short epochs prints no other line).
  CHECK(out.find("elapsed 0:22  ETA 1:05\n") != std::string::npos);
  // cv names the fold on every line.
  const std::string fold = progress_output("fold 2/5", {{11, false}, {30, true}});
  CHECK(lines(fold) == 2);
  CHECK(fold.rfind("fold 2/5  epoch 1/2", 0) == 0);
  CHECK(fold.find("\nfold 2/5  epoch 1/2") != std::string::npos);
}

TEST_CASE("ProgressLine: an ensemble's ETA is the whole run's, the networks to come included") {
  if (dyad::cli::stderr_is_tty()) return;
  // Network 1 half done after 30 s: 30 s left of it, and two more networks of about 60 s each.
  CHECK(ensemble_output({{0, 30, 30}}).find("network 1/3  epoch 1/1") != std::string::npos);
  CHECK(ensemble_output({{0, 30, 30}}).find("elapsed 0:30  ETA 2:30\n") != std::string::npos);
  // Network 1 took 60 s; network 2 has 40 s left after 20 s, and network 3 will take about 60 s.
  const std::string out = ensemble_output({{0, 30, 30}, {0, 60, 0}, {1, 20, 40}, {2, 50, 0}});
  CHECK(lines(out) == 4);
  CHECK(out.find("network 1/3  epoch 1/1  batch 10/10") != std::string::npos);
  CHECK(out.find("elapsed 1:00  ETA 2:00\n") != std::string::npos);
  CHECK(out.find("network 2/3") != std::string::npos);
  CHECK(out.find("elapsed 0:20  ETA 1:40\n") != std::string::npos);
  // Networks 1 and 2 took 60 s each; the last is done.
  CHECK(out.find("network 3/3  epoch 1/1  batch 10/10") != std::string::npos);
  CHECK(out.find("elapsed 0:50  ETA 0:00\n") != std::string::npos);
}
