// Shared by the commands that score with a saved model (score, calibrate, monitor, compare):
// loading it, warning about values far outside its training range, and checking its columns
// against the training data. Defined in cmd_score.cpp.
#pragma once

#include <dyad/data/dataset.hpp>
#include <dyad/data/drift.hpp>
#include <dyad/ensemble.hpp>

#include <string>
#include <vector>

namespace dyad::cli {

// A model for scoring: a single model is an ensemble of one (dyad/ensemble.hpp).
Ensemble<float> load_for_scoring(const std::string& path, const std::string& preset_name);

// Values far outside the model's training range (a unit mix-up such as cell voltage in mV)
// are named, car, segment and column, before scoring.
void warn_out_of_range(const Ensemble<float>& model, const Dataset& data, const char* who = "dyad score");

// Columns that are clearly not what the model was trained on (a flipped sign, units off by 100
// or 1000, a constant: dyad/data/drift.hpp): an error naming each, what was expected, what was
// seen and the likely fix; with `allow` (--allow-drift), warnings. Returns what was found.
std::vector<InputDrift> check_input_drift(const Ensemble<float>& model, const Dataset& data, bool allow,
                                          const char* who = "dyad score");

}  // namespace dyad::cli
