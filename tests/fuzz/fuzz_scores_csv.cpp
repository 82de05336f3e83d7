// Fuzz target: the score table reader (dyad::read_scores_csv, which takes a path: the bytes go
// to an in-memory file) and what `dyad evaluate` does with the table: car scores and AUROCs.
#include "fuzz_util.hpp"

#include <dyad/detect/evaluation.hpp>
#include <dyad/io/scores_csv.hpp>

#include <cmath>
#include <cstdint>
#include <exception>
#include <string>
#include <utility>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const dyad::fuzz::MemFile file(data, size);
  dyad::ScoreTable t;
  try {
    t = dyad::read_scores_csv(file.path());
  } catch (const std::exception&) {
    return 0;
  }
  if (t.segments.size() != t.size() || t.labels.size() != t.size() || !t.has("rec_error"))
    dyad::fuzz::bug("read_scores_csv returned a ragged table");
  std::vector<std::pair<std::string, std::vector<double>>> scores;
  for (const auto& [name, values] : t.columns) {
    if (values.size() != t.size()) dyad::fuzz::bug("column '" + name + "' has " + std::to_string(values.size()) + " rows");
    scores.emplace_back(name, values);
  }
  try {
    for (const int h : {1, 100, 1000}) {  // top per mille: one segment, the default, all of them
      const auto ev = dyad::detect::evaluate_scores(t.cars, t.labels, scores, h);
      for (const auto& e : ev) {
        const double a = e.auroc_robust;
        if (!std::isnan(a) && !(a >= 0 && a <= 1)) dyad::fuzz::bug("AUROC " + std::to_string(a) + " of '" + e.name + "'");
      }
    }
  } catch (const std::exception&) {
    // e.g. one car with both labels: refused with a message, as the CLI does
  }
  return 0;
}
