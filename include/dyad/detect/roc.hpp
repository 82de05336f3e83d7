// Ranking quality and operating points of a fault score. Label 1 (faulty) is the positive
// class and higher scores mean "more faulty". One rule throughout: a car is flagged when its
// score is strictly above the threshold.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <numeric>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace dyad::detect {

namespace detail {
struct ClassCounts {
  std::size_t normal = 0, faulty = 0;
};
inline ClassCounts check_labelled(std::span<const double> scores, std::span<const int> labels, const char* fn) {
  if (scores.size() != labels.size())
    throw std::invalid_argument(std::string(fn) + ": " + std::to_string(scores.size()) + " scores but " +
                                std::to_string(labels.size()) + " labels");
  ClassCounts c;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    if (std::isnan(scores[i])) throw std::invalid_argument(std::string(fn) + ": score " + std::to_string(i) + " is NaN");
    if (labels[i] == 0) ++c.normal;
    else if (labels[i] == 1) ++c.faulty;
    else
      throw std::invalid_argument(std::string(fn) + ": label " + std::to_string(i) + " is " + std::to_string(labels[i]) +
                                  " (expected 0 normal or 1 faulty)");
  }
  if (c.normal == 0 || c.faulty == 0)
    throw std::invalid_argument(std::string(fn) + ": needs both classes, got " + std::to_string(c.normal) + " normal and " +
                                std::to_string(c.faulty) + " faulty");
  return c;
}
inline std::vector<std::size_t> order_descending(std::span<const double> scores) {
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
  return order;
}
inline void check_rate_input(std::span<const double> scores, const char* fn) {
  if (scores.empty()) throw std::invalid_argument(std::string(fn) + ": no scores");
  for (std::size_t i = 0; i < scores.size(); ++i)
    if (std::isnan(scores[i])) throw std::invalid_argument(std::string(fn) + ": score " + std::to_string(i) + " is NaN");
}
inline double fraction_above(std::span<const double> scores, double threshold) {
  std::size_t above = 0;
  for (double s : scores) above += s > threshold ? 1 : 0;
  return static_cast<double>(above) / static_cast<double>(scores.size());
}
}  // namespace detail

// Area under the ROC curve = P(faulty score > normal score) + 0.5 P(tie), in O(n log n):
// walking tie groups from the top, each faulty car beats every normal car below its group.
// Counts are multiples of 0.5, so equal rankings give bit-identical AUROCs.
inline double auroc(std::span<const double> scores, std::span<const int> labels) {
  const auto c = detail::check_labelled(scores, labels, "dyad::detect::auroc");
  const auto order = detail::order_descending(scores);
  double wins = 0.0;
  std::size_t normal_above = 0;
  for (std::size_t i = 0; i < order.size();) {
    std::size_t f = 0, n = 0, j = i;
    for (; j < order.size() && scores[order[j]] == scores[order[i]]; ++j) (labels[order[j]] == 1 ? f : n) += 1;
    wins += static_cast<double>(f) * (static_cast<double>(c.normal - normal_above - n) + 0.5 * static_cast<double>(n));
    normal_above += n;
    i = j;
  }
  return wins / (static_cast<double>(c.normal) * static_cast<double>(c.faulty));
}

// One ROC point: the rates of cars scoring strictly above `threshold`.
struct RocPoint {
  double fpr = 0.0;
  double tpr = 0.0;
  double threshold = 0.0;
};

// ROC curve from (0, 0) (threshold = highest score) to (1, 1) (threshold = -inf), one point per
// distinct score, fpr and tpr non-decreasing. Tied scores give one diagonal step, so the
// trapezoidal area equals auroc().
inline std::vector<RocPoint> roc_curve(std::span<const double> scores, std::span<const int> labels) {
  const auto c = detail::check_labelled(scores, labels, "dyad::detect::roc_curve");
  const auto order = detail::order_descending(scores);
  const double nn = static_cast<double>(c.normal), nf = static_cast<double>(c.faulty);
  std::vector<RocPoint> points{{0.0, 0.0, scores[order.front()]}};
  std::size_t n = 0, f = 0;
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    for (; j < order.size() && scores[order[j]] == scores[order[i]]; ++j) (labels[order[j]] == 1 ? f : n) += 1;
    const double next = j < order.size() ? scores[order[j]] : -std::numeric_limits<double>::infinity();
    points.push_back({static_cast<double>(n) / nn, static_cast<double>(f) / nf, next});
    i = j;
  }
  return points;
}

// Smallest threshold at which the fraction of normal cars scoring strictly above it is <= rate:
// the (m+1)-th largest normal score, m the largest count with m / n <= rate; -inf when rate
// allows every normal car to be flagged.
inline double threshold_for_false_alarm(std::span<const double> normal_scores, double rate) {
  detail::check_rate_input(normal_scores, "dyad::detect::threshold_for_false_alarm");
  if (!(rate >= 0.0 && rate <= 1.0))
    throw std::invalid_argument("dyad::detect::threshold_for_false_alarm: rate must be in [0, 1], got " + std::to_string(rate));
  const std::size_t n = normal_scores.size();
  // Same double comparison a caller would use to check the result.
  const auto allowed = [&](std::size_t m) { return static_cast<double>(m) / static_cast<double>(n) <= rate; };
  auto m = std::min(n, static_cast<std::size_t>(rate * static_cast<double>(n)));
  while (m < n && allowed(m + 1)) ++m;
  while (m > 0 && !allowed(m)) --m;
  if (m == n) return -std::numeric_limits<double>::infinity();
  std::vector<double> v(normal_scores.begin(), normal_scores.end());
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(m), v.end(), std::greater<>());
  return v[m];
}

// Fraction of normal cars scoring strictly above the threshold.
inline double false_alarm_rate(std::span<const double> normal_scores, double threshold) {
  detail::check_rate_input(normal_scores, "dyad::detect::false_alarm_rate");
  return detail::fraction_above(normal_scores, threshold);
}

// Fraction of faulty cars scoring strictly above the threshold.
inline double detection_rate(std::span<const double> faulty_scores, double threshold) {
  detail::check_rate_input(faulty_scores, "dyad::detect::detection_rate");
  return detail::fraction_above(faulty_scores, threshold);
}

}  // namespace dyad::detect
