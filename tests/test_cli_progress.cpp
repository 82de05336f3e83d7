// The command line's progress line (tools/dyad/progress.hpp) into a pipe or log file: a line
// at every epoch end and at least every 10 seconds in between, with speed and ETA.
#include "../tools/dyad/progress.hpp"

#include <doctest/doctest.h>

#include <iostream>
#include <sstream>
#include <string>

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

std::size_t lines(const std::string& s) { return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n')); }

}  // namespace

TEST_CASE("ProgressLine into a log: every epoch end and at least every 10 s, with seg/s and ETA") {
  if (dyad::cli::stderr_is_tty()) return;  // a terminal gets the live line instead (not under ctest)
  // Reports at 1, 4 and 9 s say nothing; 10.5 s is due; then 12 s is not, 21 s is; epoch ends always.
  const std::string out = progress_output("", {{1, false}, {4, false}, {9, false}, {10.5, false}, {12, false},
                                              {21, false}, {22, true}, {23, false}});
  CHECK(lines(out) == 3);
  CHECK(out.find("1234 seg/s  ETA 1:05") != std::string::npos);
  CHECK(out.find("elapsed 0:22") != std::string::npos);
  // cv names the fold on every line.
  const std::string fold = progress_output("fold 2/5", {{11, false}, {30, true}});
  CHECK(lines(fold) == 2);
  CHECK(fold.rfind("fold 2/5  epoch 1/2", 0) == 0);
  CHECK(fold.find("\nfold 2/5  epoch 1/2") != std::string::npos);
}
