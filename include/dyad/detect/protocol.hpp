// The paper's car-grouped k-fold protocol (dyad-method §6), independent of any model: it deals
// in car ids and per-segment scores only. Cars, never segments, are split, so no car's charges
// are on both sides of a fold.
#pragma once

#include "dyad/core/random.hpp"
#include "dyad/detect/car_score.hpp"
#include "dyad/detect/roc.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

namespace dyad::detect {

// Candidate h values, per mille: 50, 100, ..., 950.
inline constexpr std::array<int, 19> kHGrid{50,  100, 150, 200, 250, 300, 350, 400, 450, 500,
                                            550, 600, 650, 700, 750, 800, 850, 900, 950};

namespace detail {
inline std::vector<std::string> sorted_unique(std::span<const std::string> ids, const char* fn) {
  std::vector<std::string> v(ids.begin(), ids.end());
  std::sort(v.begin(), v.end());
  if (auto it = std::adjacent_find(v.begin(), v.end()); it != v.end())
    throw std::invalid_argument(std::string(fn) + ": car '" + *it + "' is listed twice");
  return v;
}
// Ids sorted first (like upstream), so the split depends on the set of cars and the seed only.
inline std::vector<std::string> shuffled(std::span<const std::string> ids, std::uint64_t seed, const char* fn) {
  auto v = sorted_unique(ids, fn);
  Rng rng(seed);
  rng.shuffle(v);
  return v;
}
}  // namespace detail

// Splits car ids into `folds` folds: sort, shuffle with Rng(seed), cut into contiguous slices
// [f*n/folds, (f+1)*n/folds) as upstream does. Sizes differ by at most one.
inline std::vector<std::vector<std::string>> split_folds(std::span<const std::string> cars, std::size_t folds, std::uint64_t seed) {
  if (folds < 2 || folds > cars.size())
    throw std::invalid_argument("dyad::detect::split_folds: " + std::to_string(folds) + " folds for " +
                                std::to_string(cars.size()) + " cars (need 2 <= folds <= cars)");
  const auto v = detail::shuffled(cars, seed, "dyad::detect::split_folds");
  std::vector<std::vector<std::string>> out(folds);
  for (std::size_t f = 0; f < folds; ++f)
    out[f].assign(v.begin() + static_cast<std::ptrdiff_t>(f * v.size() / folds),
                  v.begin() + static_cast<std::ptrdiff_t>((f + 1) * v.size() / folds));
  return out;
}

// The cars of one fold.
//
// Validation set = train_normal + validation_faulty; test set = held_out_normal + test_faulty.
// This follows upstream (dyad_eval_fivefold notebook), where h is chosen on the training normal
// cars plus some faulty cars, and tested on the held-out normal cars plus the other faulty cars.
// Training-car scores are in-sample (optimistically low), which only matters for ranking the h
// candidates against each other; the held-out cars stay untouched.
//
// Our choice for the faulty cars: they are shuffled once (an Rng stream independent of the
// normal split) and each fold takes a cyclic window of floor(m/2) of them, starting at
// floor(fold*m/folds), for validation; the other ceil(m/2) are test cars. Upstream instead
// validates on one fifth and tests on four fifths; halves give h a less noisy choice while the
// test AUROC still sees at least half of the faulty cars, and the rotating window lets every
// faulty car be a test car in some folds.
struct FoldCars {
  std::vector<std::string> train_normal;       // the model trains on these
  std::vector<std::string> held_out_normal;    // never seen in training
  std::vector<std::string> validation_faulty;  // to choose h
  std::vector<std::string> test_faulty;        // for the reported AUROC

  std::vector<std::string> validation() const {
    auto v = train_normal;
    v.insert(v.end(), validation_faulty.begin(), validation_faulty.end());
    return v;
  }
  std::vector<std::string> test() const {
    auto v = held_out_normal;
    v.insert(v.end(), test_faulty.begin(), test_faulty.end());
    return v;
  }
};

// Cars of fold `fold` (0-based) of `folds`; deterministic in (car sets, folds, fold, seed).
inline FoldCars fold_cars(std::span<const std::string> normal_cars, std::span<const std::string> faulty_cars, std::size_t folds,
                          std::size_t fold, std::uint64_t seed) {
  const char* fn = "dyad::detect::fold_cars";
  if (fold >= folds)
    throw std::invalid_argument(std::string(fn) + ": fold " + std::to_string(fold) + " of " + std::to_string(folds) + " folds");
  if (faulty_cars.size() < 2)
    throw std::invalid_argument(std::string(fn) + ": need at least 2 faulty cars to split into validation and test, got " +
                                std::to_string(faulty_cars.size()));
  {
    const auto normal = detail::sorted_unique(normal_cars, fn);
    for (const auto& c : detail::sorted_unique(faulty_cars, fn))
      if (std::binary_search(normal.begin(), normal.end(), c))
        throw std::invalid_argument(std::string(fn) + ": car '" + c + "' is listed as both normal and faulty");
  }
  FoldCars out;
  auto normal_folds = split_folds(normal_cars, folds, seed);
  out.held_out_normal = std::move(normal_folds[fold]);
  for (std::size_t f = 0; f < folds; ++f)
    if (f != fold) out.train_normal.insert(out.train_normal.end(), normal_folds[f].begin(), normal_folds[f].end());

  const auto faulty = detail::shuffled(faulty_cars, ~seed, fn);
  const std::size_t m = faulty.size(), start = fold * m / folds;
  for (std::size_t i = 0; i < m; ++i) ((i < m / 2) ? out.validation_faulty : out.test_faulty).push_back(faulty[(start + i) % m]);
  return out;
}

// Indices of the segments whose car is in `wanted`, in segment order: to cut per-segment
// arrays down to one side of a fold.
inline std::vector<std::size_t> segments_of(std::span<const std::string> segment_cars, std::span<const std::string> wanted) {
  const std::unordered_set<std::string> set(wanted.begin(), wanted.end());
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < segment_cars.size(); ++i)
    if (set.count(segment_cars[i])) out.push_back(i);
  return out;
}

// The chosen h and the validation AUROC of every candidate (same order as the candidates).
struct HChoice {
  int h_per_mille = 0;
  double auroc = 0.0;
  std::vector<double> auroc_by_h;
};

// Picks h by car-level AUROC of the robust score on a validation set of segments. Ties go to the
// smallest h, the score that needs the fewest bad charges (upstream's `>=` kept the largest).
// Segments are grouped and sorted once; car scores are bit-identical to car_scores(..., h).
inline HChoice choose_h(std::span<const std::string> cars, std::span<const int> labels, std::span<const double> scores,
                        std::span<const int> candidates = kHGrid) {
  if (candidates.empty()) throw std::invalid_argument("dyad::detect::choose_h: no candidate h");
  for (int h : candidates) top_count(1, h);
  detail::check_segment_scores(cars, scores, "dyad::detect::choose_h");
  const auto groups = group_by_car(cars, labels);
  std::vector<std::vector<double>> prefix(groups.size());  // running sums of descending scores
  std::vector<int> car_labels;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    std::vector<double> v;
    for (std::size_t i : groups[g].segments) v.push_back(scores[i]);
    std::sort(v.begin(), v.end(), std::greater<>());
    double sum = 0.0;
    for (double x : v) prefix[g].push_back(sum += x);
    car_labels.push_back(groups[g].label);
  }
  HChoice best;
  std::vector<double> car(groups.size());
  for (int h : candidates) {
    for (std::size_t g = 0; g < groups.size(); ++g) {
      const std::size_t k = top_count(prefix[g].size(), h);
      car[g] = prefix[g][k - 1] / static_cast<double>(k);
    }
    const double a = auroc(car, car_labels);
    best.auroc_by_h.push_back(a);
    if (best.auroc_by_h.size() == 1 || a > best.auroc || (a == best.auroc && h < best.h_per_mille)) {
      best.auroc = a;
      best.h_per_mille = h;
    }
  }
  return best;
}

}  // namespace dyad::detect
