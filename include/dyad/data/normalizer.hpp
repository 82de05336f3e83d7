// Per-column normalisation of segment values (dyad-method §2) and min-max scaling of mileage.
// Fitted on training segments, stored with the model (columns, mean, scale), applied to any data.
#pragma once

#include "dyad/core/text.hpp"
#include "dyad/data/dataset.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace dyad {

class Normalizer {
 public:
  Normalizer() = default;
  // Restores a fitted state (e.g. from a checkpoint); every scale must be a positive normal
  // number (finite, not subnormal: dividing by a subnormal overflows to infinity).
  Normalizer(std::vector<std::string> columns, std::vector<double> mean, std::vector<double> scale)
      : columns_(std::move(columns)), mean_(std::move(mean)), scale_(std::move(scale)) {
    if (mean_.size() != columns_.size() || scale_.size() != columns_.size())
      throw std::invalid_argument("dyad::Normalizer: " + std::to_string(columns_.size()) + " columns but " +
                                  std::to_string(mean_.size()) + " means and " + std::to_string(scale_.size()) + " scales");
    for (std::size_t c = 0; c < columns_.size(); ++c) {
      if (!std::isfinite(mean_[c]) || !std::isnormal(scale_[c]) || !(scale_[c] > 0))
        throw std::invalid_argument("dyad::Normalizer: column '" + columns_[c] + "' has mean " + text::number_text(mean_[c]) +
                                    " and scale " + text::number_text(scale_[c]) + " (need finite, scale > 0 and not subnormal)");
      if (std::find(columns_.begin(), columns_.begin() + static_cast<std::ptrdiff_t>(c), columns_[c]) !=
          columns_.begin() + static_cast<std::ptrdiff_t>(c))
        throw std::invalid_argument("dyad::Normalizer: column '" + columns_[c] + "' appears twice");
    }
  }

  // Leaves the listed columns as they are (mean 0, scale 1): for data normalised beforehand.
  static Normalizer identity(const std::vector<std::string>& columns) {
    return Normalizer(columns, std::vector<double>(columns.size(), 0.0), std::vector<double>(columns.size(), 1.0));
  }

  // mean_c = mean over segments of the segment mean; std_c = mean over segments of the segment's
  // population std (ddof 0); range_c = max - min over all values;
  // scale_c = max(max(1e-4, std_c), 0.1 * range_c).
  static Normalizer fit(const Dataset& data, std::span<const std::size_t> segments, std::span<const std::string> columns) {
    if (segments.empty()) throw std::invalid_argument("dyad::Normalizer::fit: no segments to fit on");
    return from_moments(moments(data, segments, columns), columns);
  }

  // What fit() gathers from the segments, per column: the sums of the segment means and
  // population stds, and the extremes. Moments of disjoint sets of segments combine by adding
  // the sums and taking the extremes, which is how data-parallel training fits the normaliser
  // of all ranks' segments (dyad/trainer.hpp).
  struct Moments {
    double segments = 0;
    std::vector<double> sum_mean, sum_std, lo, hi;
  };
  static Moments moments(const Dataset& data, std::span<const std::size_t> segments, std::span<const std::string> columns) {
    std::vector<std::size_t> cols;
    for (const auto& name : columns) cols.push_back(data.column_index(name));
    const std::size_t k = cols.size();
    Moments m{static_cast<double>(segments.size()), std::vector<double>(k, 0.0), std::vector<double>(k, 0.0),
              std::vector<double>(k, std::numeric_limits<double>::infinity()),
              std::vector<double>(k, -std::numeric_limits<double>::infinity())};
    std::vector<double> seg_mean(k), seg_var(k);
    for (std::size_t s : segments) {
      if (s >= data.size())
        throw std::out_of_range("dyad::Normalizer::fit: segment index " + std::to_string(s) + " >= " + std::to_string(data.size()));
      const auto v = data.values(s);
      const auto n = static_cast<double>(v.rows());
      // Two passes over the (cache-resident) segment, like numpy's std.
      std::fill(seg_mean.begin(), seg_mean.end(), 0.0);
      std::fill(seg_var.begin(), seg_var.end(), 0.0);
      for (Eigen::Index t = 0; t < v.rows(); ++t)
        for (std::size_t j = 0; j < k; ++j) {
          const double x = v(t, static_cast<Eigen::Index>(cols[j]));
          seg_mean[j] += x;
          m.lo[j] = std::min(m.lo[j], x);
          m.hi[j] = std::max(m.hi[j], x);
        }
      for (std::size_t j = 0; j < k; ++j) seg_mean[j] /= n;
      for (Eigen::Index t = 0; t < v.rows(); ++t)
        for (std::size_t j = 0; j < k; ++j) {
          const double d = v(t, static_cast<Eigen::Index>(cols[j])) - seg_mean[j];
          seg_var[j] += d * d;
        }
      for (std::size_t j = 0; j < k; ++j) {
        m.sum_mean[j] += seg_mean[j];
        m.sum_std[j] += std::sqrt(seg_var[j] / n);
      }
    }
    return m;
  }
  static Normalizer from_moments(const Moments& m, std::span<const std::string> columns) {
    const std::size_t k = columns.size();
    if (!(m.segments > 0)) throw std::invalid_argument("dyad::Normalizer::fit: no segments to fit on");
    if (m.sum_mean.size() != k || m.sum_std.size() != k || m.lo.size() != k || m.hi.size() != k)
      throw std::invalid_argument("dyad::Normalizer::from_moments: moments of " + std::to_string(m.sum_mean.size()) +
                                  " columns for " + std::to_string(k));
    std::vector<double> mean(k), scale(k);
    for (std::size_t j = 0; j < k; ++j) {
      mean[j] = m.sum_mean[j] / m.segments;
      scale[j] = std::max(std::max(1e-4, m.sum_std[j] / m.segments), 0.1 * (m.hi[j] - m.lo[j]));
      if (!std::isfinite(mean[j]) || !std::isfinite(scale[j]))
        throw std::invalid_argument("dyad::Normalizer::fit: column '" + columns[j] + "' holds NaN or infinite values");
    }
    return Normalizer(std::vector<std::string>(columns.begin(), columns.end()), std::move(mean), std::move(scale));
  }
  static Normalizer fit(const Dataset& data, std::span<const std::size_t> segments) { return fit(data, segments, data.columns()); }
  static Normalizer fit(const Dataset& data, std::span<const std::string> columns) { return fit(data, all(data), columns); }
  static Normalizer fit(const Dataset& data) { return fit(data, all(data), data.columns()); }

  const std::vector<std::string>& columns() const { return columns_; }
  const std::vector<double>& mean() const { return mean_; }
  const std::vector<double>& scale() const { return scale_; }

  std::size_t column_index(std::string_view name) const {
    for (std::size_t c = 0; c < columns_.size(); ++c)
      if (columns_[c] == name) return c;
    throw std::invalid_argument("dyad::Normalizer: column '" + std::string(name) + "' was not fitted");
  }

  double transform(double x, std::size_t column) const { return (x - mean_.at(column)) / scale_.at(column); }
  double transform(double x, std::string_view column) const { return transform(x, column_index(column)); }
  double inverse(double y, std::size_t column) const { return y * scale_.at(column) + mean_.at(column); }
  double inverse(double y, std::string_view column) const { return inverse(y, column_index(column)); }

  // Normalises the fitted columns of `data` in place (matched by name; other columns untouched).
  void apply(Dataset& data) const {
    std::vector<std::size_t> cols;
    for (const auto& name : columns_) cols.push_back(data.column_index(name));
    const std::size_t width = data.num_columns();
    const std::span<float> v = data.raw_values();
    for (std::size_t row = 0; row < v.size(); row += width)
      for (std::size_t j = 0; j < cols.size(); ++j) {
        float& x = v[row + cols[j]];
        x = static_cast<float>((static_cast<double>(x) - mean_[j]) / scale_[j]);
      }
  }

 private:
  static std::vector<std::size_t> all(const Dataset& data) {
    std::vector<std::size_t> idx(data.size());
    std::iota(idx.begin(), idx.end(), std::size_t{0});
    return idx;
  }

  std::vector<std::string> columns_;
  std::vector<double> mean_, scale_;
};

// Min-max scaling to [0, 1] over the training data (used for the mileage target, dyad-method §5).
class MinMax {
 public:
  MinMax() = default;
  MinMax(double min, double max) : min_(min), max_(max) {
    if (!std::isfinite(min) || !std::isfinite(max) || max < min)
      throw std::invalid_argument("dyad::MinMax: need finite min <= max, got " + std::to_string(min) + ", " + std::to_string(max));
    // The range divides: it must be 0 (a constant, see range()) or a normal finite number.
    if (max != min && (!std::isnormal(max - min) || !std::isfinite(max - min)))
      throw std::invalid_argument("dyad::MinMax: the range max - min of " + text::number_text(min) + ", " + text::number_text(max) +
                                  " is " + text::number_text(max - min) + ", not a usable scale (subnormal or overflowing)");
  }

  // Ignores NaN (missing) values; throws if nothing is left.
  static MinMax fit(std::span<const double> values) {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (double x : values)
      if (!std::isnan(x)) lo = std::min(lo, x), hi = std::max(hi, x);
    if (lo > hi) throw std::invalid_argument("dyad::MinMax::fit: no values (all missing)");
    return MinMax(lo, hi);
  }
  // Over the mileage of the given segments (segments without mileage are skipped).
  static MinMax fit_mileage(const Dataset& data, std::span<const std::size_t> segments) {
    std::vector<double> m;
    m.reserve(segments.size());
    for (std::size_t s : segments) m.push_back(data.meta(s).mileage);
    return fit(m);
  }
  static MinMax fit_mileage(const Dataset& data) {
    std::vector<double> m;
    for (std::size_t s = 0; s < data.size(); ++s) m.push_back(data.meta(s).mileage);
    return fit(m);
  }

  double min() const { return min_; }
  double max() const { return max_; }
  // A constant feature maps to x - min (range taken as 1) instead of dividing by zero.
  double range() const { return max_ == min_ ? 1.0 : max_ - min_; }
  double transform(double x) const { return (x - min_) / range(); }
  double inverse(double y) const { return y * range() + min_; }

 private:
  double min_ = 0, max_ = 1;
};

}  // namespace dyad
