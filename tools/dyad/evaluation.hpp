// Shared by evaluate and demo: the car ranking and AUROCs of a score file, as a table or as
// JSON. Defined in cmd_evaluate.cpp.
#pragma once

#include <dyad/detect/evaluation.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace dyad::cli {

// Prints the car ranking (by the last score, the strongest: detect::score_names) and the AUROCs.
void print_evaluation(const std::vector<detect::ScoreEvaluation>& ev, int top, std::size_t max_rows = SIZE_MAX,
                      bool labelled = true);

nlohmann::json evaluation_json(const std::vector<detect::ScoreEvaluation>& ev, int top, bool labelled = true);

}  // namespace dyad::cli
