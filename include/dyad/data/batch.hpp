// A mini-batch on a tape: the listed segments' encoder columns, normalised, as the [E x T*B]
// input the network reads (column t*B + b is step t of segment b), with the sequence shape
// that marks the steps past a shorter segment's end as padding.
#pragma once

#include "dyad/core/sequence.hpp"
#include "dyad/core/tape.hpp"
#include "dyad/core/text.hpp"
#include "dyad/data/dataset.hpp"
#include "dyad/data/normalizer.hpp"

#include <algorithm>
#include <cmath>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace dyad {

template <class T>
struct Batch {
  Var<T> x;  // [E x T*B], T the longest segment; padding is zero
  SequenceShape seq;
};

// Indices in `data` of the named columns; the error names a missing one.
inline std::vector<std::size_t> column_indices(const Dataset& data, std::span<const std::string> names) {
  std::vector<std::size_t> cols;
  cols.reserve(names.size());
  for (const auto& name : names) cols.push_back(data.column_index(name));
  return cols;
}

namespace detail {
// A normalised input this far out (a volt of 3e38, a unit mix-up) would overflow the GRU's
// products to inf and NaN; no battery signal is a million standard deviations off.
inline constexpr double kMaxStandardised = 1e6;

[[noreturn]] inline void input_out_of_range(const Dataset& data, std::size_t segment, std::size_t col, const Normalizer& norm,
                                            std::size_t e, Index t, double z) {
  const SegmentMeta& m = data.meta(segment);
  const double value = data.values(segment)(t, static_cast<Index>(col));
  throw std::invalid_argument("dyad: car '" + m.car + "' segment " + std::to_string(m.segment) + " column '" + norm.columns()[e] +
                              "' step " + std::to_string(t) + ": value " + text::number_text(value) +
                              " is far outside the model's training range (mean " + text::number_text(norm.mean()[e]) + ", scale " +
                              text::number_text(norm.scale()[e]) + ": " + text::number_text(z) +
                              " scales away); check the data's units");
}
}  // namespace detail

// A value of a segment far outside what the normaliser was fitted on: a unit mix-up (cell
// voltage in mV), a wrong column, a broken sensor. Scoring still runs (up to the hard limit
// above), but the scores of such a segment mean little.
struct OutOfRange {
  std::size_t segment;  // index in the dataset
  std::size_t column;   // index in norm.columns()
  Index step;
  double value, standardised;
};

// The values of `data` (columns `cols`, as in gather_batch) more than `limit` scales from the
// normaliser's mean, the first in each (segment, column), at most `max` of them; `count`
// receives how many (segment, column) pairs have one.
inline std::vector<OutOfRange> out_of_range_values(const Dataset& data, std::span<const std::size_t> cols, const Normalizer& norm,
                                                   double limit = 50, std::size_t max = 5, std::size_t* count = nullptr) {
  std::vector<OutOfRange> found;
  std::size_t n = 0;
  for (std::size_t i = 0; i < data.size(); ++i) {
    const SegmentValues v = data.values(i);
    for (std::size_t e = 0; e < cols.size(); ++e)
      for (Index t = 0; t < v.rows(); ++t) {
        const double x = v(t, static_cast<Index>(cols[e])), z = (x - norm.mean()[e]) / norm.scale()[e];
        if (std::abs(z) > limit) {
          if (found.size() < max) found.push_back({i, e, t, x, z});
          ++n;
          break;
        }
      }
  }
  if (count) *count = n;
  return found;
}

// Gathers segments `idx` of `data`, columns `cols` (column_indices of norm.columns()), scaled
// by `norm`, onto `tape`. Allocates from the tape's arena only.
template <class T>
Batch<T> gather_batch(Tape<T>& tape, const Dataset& data, std::span<const std::size_t> cols, std::span<const std::size_t> idx,
                      const Normalizer& norm) {
  const auto B = static_cast<Index>(idx.size());
  const auto E = static_cast<Index>(cols.size());
  int* lengths = tape.arena().template allocate<int>(idx.size());
  Index steps = 0;
  bool ragged = false;
  for (Index b = 0; b < B; ++b) {
    lengths[b] = static_cast<int>(data.length(idx[static_cast<std::size_t>(b)]));
    steps = std::max<Index>(steps, lengths[b]);
    ragged |= b > 0 && lengths[b] != lengths[0];
  }
  Batch<T> batch{tape.variable(E, steps * B).detached(), SequenceShape{steps, B, ragged ? lengths : nullptr}};
  T* x = batch.x.val;
  if (ragged) batch.x.value().setZero();
  const auto& mean = norm.mean();
  const auto& scale = norm.scale();
  for (Index b = 0; b < B; ++b) {
    const std::size_t segment = idx[static_cast<std::size_t>(b)];
    const SegmentValues v = data.values(segment);
    for (Index t = 0; t < lengths[b]; ++t) {
      T* col = x + (t * B + b) * E;
      for (Index e = 0; e < E; ++e) {
        const auto c = cols[static_cast<std::size_t>(e)];
        const double z = (double(v(t, static_cast<Index>(c))) - mean[e]) / scale[e];
        if (!(std::abs(z) <= detail::kMaxStandardised))
          detail::input_out_of_range(data, segment, c, norm, static_cast<std::size_t>(e), t, z);
        col[e] = T(z);
      }
    }
  }
  return batch;
}

}  // namespace dyad
