// Shared by the commands that score with a saved model (score, calibrate, monitor, compare):
// loading it and warning about values far outside its training range. Defined in cmd_score.cpp.
#pragma once

#include <dyad/data/dataset.hpp>
#include <dyad/ensemble.hpp>

#include <string>

namespace dyad::cli {

// A model for scoring: a single model is an ensemble of one (dyad/ensemble.hpp).
Ensemble<float> load_for_scoring(const std::string& path, const std::string& preset_name);

// Values far outside the model's training range (a unit mix-up such as cell voltage in mV)
// are named, car, segment and column, before scoring.
void warn_out_of_range(const Ensemble<float>& model, const Dataset& data, const char* who = "dyad score");

}  // namespace dyad::cli
