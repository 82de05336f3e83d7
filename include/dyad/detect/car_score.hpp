// Car-level fault scores from segment scores (dyad-method §6). A fault shows in a minority of
// a car's charges, so the robust score averages only the car's worst h per mille of segments.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace dyad::detect {

// Number of segments the robust score averages: max(round(h/1000 * n), 1). The ratio is rounded
// exactly with halves to even, as Python's round() in the upstream evaluation does, so for
// n = 10 h = 250 averages 2 segments and h = 350 averages 4. h = 1000 takes every segment.
inline std::size_t top_count(std::size_t n, int h_per_mille) {
  if (h_per_mille < 0 || h_per_mille > 1000)
    throw std::invalid_argument("dyad::detect: h must be in [0, 1000] per mille, got " + std::to_string(h_per_mille));
  const std::size_t q = n * static_cast<std::size_t>(h_per_mille), whole = q / 1000, rest = q % 1000;
  const std::size_t k = whole + ((rest > 500 || (rest == 500 && whole % 2 == 1)) ? 1 : 0);
  return std::max<std::size_t>(k, 1);
}

namespace detail {
inline void require_scores(std::span<const double> scores, const char* fn) {
  if (scores.empty()) throw std::invalid_argument(std::string(fn) + ": no segment scores");
  for (std::size_t i = 0; i < scores.size(); ++i)
    if (std::isnan(scores[i])) throw std::invalid_argument(std::string(fn) + ": segment score " + std::to_string(i) + " is NaN");
}
// Mean of the k largest values, summed from the largest down, so every caller gets the same bits.
inline double top_mean(std::vector<double>& v, std::size_t k) {
  std::partial_sort(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end(), std::greater<>());
  double sum = 0.0;
  for (std::size_t i = 0; i < k; ++i) sum += v[i];
  return sum / static_cast<double>(k);
}
}  // namespace detail

// Robust car score: mean of the top max(round(h/1000 * n), 1) segment scores.
inline double robust_score(std::span<const double> scores, int h_per_mille) {
  detail::require_scores(scores, "dyad::detect::robust_score");
  std::vector<double> v(scores.begin(), scores.end());
  return detail::top_mean(v, top_count(v.size(), h_per_mille));
}

// "Average" car score: mean over all segments.
inline double average_score(std::span<const double> scores) {
  detail::require_scores(scores, "dyad::detect::average_score");
  double sum = 0.0;
  for (double s : scores) sum += s;
  return sum / static_cast<double>(scores.size());
}

// Segment indices of one car. The label belongs to the car (dyad-method §1).
struct CarSegments {
  std::string car;
  int label = 0;
  std::vector<std::size_t> segments;
};

// Groups segments by car id, cars in ascending id order (independent of the segment order).
// Throws if a label is not 0/1 or the segments of one car disagree on it.
inline std::vector<CarSegments> group_by_car(std::span<const std::string> cars, std::span<const int> labels) {
  if (cars.size() != labels.size())
    throw std::invalid_argument("dyad::detect::group_by_car: " + std::to_string(cars.size()) + " car ids but " +
                                std::to_string(labels.size()) + " labels");
  std::vector<CarSegments> groups;
  std::unordered_map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < cars.size(); ++i) {
    if (labels[i] != 0 && labels[i] != 1)
      throw std::invalid_argument("dyad::detect: segment " + std::to_string(i) + " of car '" + cars[i] + "' has label " +
                                  std::to_string(labels[i]) + " (expected 0 normal or 1 faulty)");
    auto [it, fresh] = index.try_emplace(cars[i], groups.size());
    if (fresh) groups.push_back({cars[i], labels[i], {}});
    CarSegments& g = groups[it->second];
    if (g.label != labels[i])
      throw std::invalid_argument("dyad::detect: car '" + cars[i] + "' has segments labelled both 0 and 1 (segment " +
                                  std::to_string(i) + ")");
    g.segments.push_back(i);
  }
  std::sort(groups.begin(), groups.end(), [](const CarSegments& a, const CarSegments& b) { return a.car < b.car; });
  return groups;
}

// One car's aggregated score.
struct CarScore {
  std::string car;
  int label = 0;
  std::size_t segments = 0;
  double score = 0.0;
};

namespace detail {
inline void check_segment_scores(std::span<const std::string> cars, std::span<const double> scores, const char* fn) {
  if (scores.size() != cars.size())
    throw std::invalid_argument(std::string(fn) + ": " + std::to_string(scores.size()) + " segment scores but " +
                                std::to_string(cars.size()) + " car ids");
  if (scores.empty()) throw std::invalid_argument(std::string(fn) + ": no segments");
  for (std::size_t i = 0; i < scores.size(); ++i)
    if (std::isnan(scores[i]))
      throw std::invalid_argument(std::string(fn) + ": score of segment " + std::to_string(i) + " (car '" + cars[i] + "') is NaN");
}

template <class Reduce>
std::vector<CarScore> car_scores(std::span<const std::string> cars, std::span<const int> labels, std::span<const double> scores,
                                 Reduce reduce) {
  check_segment_scores(cars, scores, "dyad::detect::car_scores");
  std::vector<CarScore> out;
  std::vector<double> v;
  for (const CarSegments& g : group_by_car(cars, labels)) {
    v.clear();
    for (std::size_t i : g.segments) v.push_back(scores[i]);
    out.push_back({g.car, g.label, v.size(), reduce(v)});
  }
  return out;
}
}  // namespace detail

// Per-car robust scores from per-segment (car, label, score), cars in ascending id order.
inline std::vector<CarScore> car_scores(std::span<const std::string> cars, std::span<const int> labels,
                                        std::span<const double> scores, int h_per_mille) {
  top_count(1, h_per_mille);  // validates h before any work
  return detail::car_scores(cars, labels, scores, [h_per_mille](std::vector<double>& v) {
    return detail::top_mean(v, top_count(v.size(), h_per_mille));
  });
}

// Per-car mean over all segments (the paper's "average" variant).
inline std::vector<CarScore> car_average_scores(std::span<const std::string> cars, std::span<const int> labels,
                                                std::span<const double> scores) {
  return detail::car_scores(cars, labels, scores, [](std::vector<double>& v) { return average_score(v); });
}

}  // namespace dyad::detect
