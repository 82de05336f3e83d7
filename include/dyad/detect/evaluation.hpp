// Car-level evaluation of several segment scores at once: the per-car ranking and the AUROC
// of each score, robust (top-h per mille) and averaged (dyad-method §6).
#pragma once

#include "dyad/detect/car_score.hpp"
#include "dyad/detect/roc.hpp"

#include <map>
#include <string>
#include <vector>

namespace dyad::detect {

struct ScoreEvaluation {
  std::string name;              // e.g. rec_error, latent_score, combined_score
  std::vector<CarScore> robust;  // one per car, car-id order
  std::vector<CarScore> average;
  double auroc_robust = 0;  // NaN when the cars are all of one class
  double auroc_average = 0;
  std::vector<RocPoint> roc;  // of the robust car score
};

// The AUROC of car scores (faulty = label 1); NaN when the cars are all of one class.
inline double car_auroc(std::span<const CarScore> cars) {
  std::vector<double> s;
  std::vector<int> l;
  int faulty = 0;
  for (const auto& c : cars) s.push_back(c.score), l.push_back(c.label), faulty += c.label;
  if (faulty == 0 || faulty == static_cast<int>(cars.size())) return std::numeric_limits<double>::quiet_NaN();
  return auroc(s, l);
}

// Evaluates every named segment score over the same segments.
inline std::vector<ScoreEvaluation> evaluate_scores(std::span<const std::string> cars, std::span<const int> labels,
                                                    const std::vector<std::pair<std::string, std::vector<double>>>& scores,
                                                    int h_per_mille) {
  std::vector<ScoreEvaluation> out;
  for (const auto& [name, values] : scores) {
    ScoreEvaluation e;
    e.name = name;
    e.robust = car_scores(cars, labels, values, h_per_mille);
    e.average = car_average_scores(cars, labels, values);
    e.auroc_robust = car_auroc(e.robust);
    e.auroc_average = car_auroc(e.average);
    if (!std::isnan(e.auroc_robust)) {
      std::vector<double> s;
      std::vector<int> l;
      for (const auto& c : e.robust) s.push_back(c.score), l.push_back(c.label);
      e.roc = roc_curve(s, l);
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace dyad::detect
