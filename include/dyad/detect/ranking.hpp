// From car scores to what an operator reads: the ranking of the cars, the worst segment of a
// car, and AUROC as printed. The CLI, the HTML report and the demo all rank through here.
#pragma once

#include "dyad/detect/car_score.hpp"

#include <charconv>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace dyad::detect {

// Indices of `cars`, highest score first; ties in car-id order, NaN last.
inline std::vector<std::size_t> car_ranking(std::span<const CarScore> cars) {
  std::vector<std::size_t> order(cars.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const double sa = cars[a].score, sb = cars[b].score;
    if (std::isnan(sa) || std::isnan(sb)) return !std::isnan(sa) && std::isnan(sb);
    if (sa != sb) return sa > sb;
    return cars[a].car < cars[b].car;
  });
  return order;
}

// The segment of `car` with the highest score (the first of equals); `segment_cars` and
// `scores` are per segment.
inline std::size_t worst_segment(std::span<const std::string> segment_cars, std::span<const double> scores,
                                 const std::string& car) {
  if (segment_cars.size() != scores.size())
    throw std::invalid_argument("dyad::detect::worst_segment: cars and scores differ in length");
  std::size_t worst = segment_cars.size();
  for (std::size_t i = 0; i < segment_cars.size(); ++i)
    if (segment_cars[i] == car && (worst == segment_cars.size() || scores[i] > scores[worst])) worst = i;
  if (worst == segment_cars.size()) throw std::invalid_argument("dyad::detect::worst_segment: no segment of car '" + car + "'");
  return worst;
}

// An AUROC as printed: three decimals, "n/a" when undefined (all cars of one class).
inline std::string auroc_text(double a) {
  if (std::isnan(a)) return "n/a";
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, a, std::chars_format::fixed, 3);
  return std::string(buf, r.ptr);
}

}  // namespace dyad::detect
