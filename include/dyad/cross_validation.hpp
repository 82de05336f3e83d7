// The paper's evaluation protocol end to end (dyad-method §6): normal cars in car-grouped
// folds; for each fold a model trains on the other folds' normal cars, h is chosen on the
// validation cars by rec_error, and each score's robust car AUROC is taken on the test cars.
#pragma once

#include "dyad/detect/evaluation.hpp"
#include "dyad/detect/protocol.hpp"
#include "dyad/detect/scores.hpp"
#include "dyad/model.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <numeric>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace dyad::detect {

// The cars of a labelled fleet: per segment, and the normal and faulty cars (a car with any
// faulty segment is faulty), each in car-id order.
struct FleetCars {
  std::vector<std::string> per_segment;
  std::vector<int> labels;  // per segment
  std::vector<std::string> normal, faulty;
};

inline FleetCars fleet_cars(const Dataset& data) {
  FleetCars f;
  std::map<std::string, int> label;
  for (std::size_t i = 0; i < data.size(); ++i) {
    f.per_segment.push_back(data.meta(i).car);
    f.labels.push_back(data.meta(i).label);
    label[data.meta(i).car] |= data.meta(i).label;
  }
  for (const auto& [car, l] : label) (l ? f.faulty : f.normal).push_back(car);
  return f;
}

struct CvFold {
  std::size_t fold = 0;  // from 1
  std::size_t train_cars = 0, test_cars = 0;
  int h_per_mille = 0;
  std::vector<std::pair<std::string, double>> auroc;  // test AUROC of the robust car score, score_names order
};

struct CvResult {
  std::vector<CvFold> folds;
  std::vector<std::pair<std::string, double>> mean;  // over the folds, per score
};

struct CvOptions {
  std::size_t folds = 5;
  std::uint64_t seed = 0;  // the fold split (training takes ModelConfig::seed)
  // Called before each fold's training with its number (from 1); returns that fold's training
  // progress callback (may be empty).
  std::function<ProgressCallback(std::size_t fold)> progress;
  std::function<void(const CvFold&)> fold_done;  // e.g. to print each fold as it ends
};

// Runs the protocol on `data` with models of `config`; `where` names the data in errors.
template <class M = Model<float>>
CvResult cross_validate(const Dataset& data, const ModelConfig& config, const CvOptions& options = {},
                        const std::string& where = "data") {
  const FleetCars cars = fleet_cars(data);
  if (cars.normal.size() < options.folds || cars.faulty.size() < 2)
    throw std::invalid_argument(where + ": the protocol needs at least " + std::to_string(options.folds) +
                                " normal cars and 2 faulty cars; found " + std::to_string(cars.normal.size()) + " and " +
                                std::to_string(cars.faulty.size()));
  auto pick = [](const auto& v, std::span<const std::size_t> idx) {
    std::vector<std::decay_t<decltype(v[0])>> out;
    out.reserve(idx.size());
    for (std::size_t i : idx) out.push_back(v[i]);
    return out;
  };
  CvResult result;
  std::map<std::string, double> sum;
  for (std::size_t k = 0; k < options.folds; ++k) {
    const auto fc = fold_cars(cars.normal, cars.faulty, options.folds, k, options.seed);
    M model(config);
    model.fit(data.subset(segments_of(cars.per_segment, fc.train_normal)),
              options.progress ? options.progress(k + 1) : ProgressCallback{});
    // Scores do not depend on the other segments scored with them: score only those needed.
    const auto val = segments_of(cars.per_segment, fc.validation());
    const auto test = segments_of(cars.per_segment, fc.test());
    std::vector<std::size_t> needed = val;
    needed.insert(needed.end(), test.begin(), test.end());
    const Scores s = model.score(data, needed);
    std::vector<std::size_t> val_rows(val.size()), test_rows(test.size());
    std::iota(val_rows.begin(), val_rows.end(), std::size_t{0});
    std::iota(test_rows.begin(), test_rows.end(), val.size());
    const auto val_rec_error = score_columns(s, val_rows).front().second;  // rec_error comes first
    const int h = choose_h(pick(cars.per_segment, val), pick(cars.labels, val), val_rec_error).h_per_mille;
    CvFold fold{k + 1, fc.train_normal.size(), fc.test().size(), h, {}};
    for (const auto& e : evaluate_scores(pick(cars.per_segment, test), pick(cars.labels, test), score_columns(s, test_rows), h)) {
      fold.auroc.emplace_back(e.name, e.auroc_robust);
      sum[e.name] += e.auroc_robust;
    }
    if (options.fold_done) options.fold_done(fold);
    result.folds.push_back(std::move(fold));
  }
  for (const auto name : score_names)
    if (const auto it = sum.find(std::string(name)); it != sum.end())
      result.mean.emplace_back(it->first, it->second / static_cast<double>(options.folds));
  return result;
}

}  // namespace dyad::detect
