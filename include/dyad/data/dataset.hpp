// Charging segments with named columns and metadata, stored contiguously so that a
// million segments cost one allocation and a mini-batch copies nothing. The values may also
// live elsewhere (a memory-mapped segment store, dyad/io/segment_store.hpp): then the dataset
// reads them in place, and copies them into its own storage only when asked to change them.
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace dyad {

// Metadata of one charging segment; the label belongs to the car (dyad-method §1).
struct SegmentMeta {
  std::string car;
  std::int64_t segment = 0;
  int label = 0;  // 0 normal, 1 faulty
  double mileage = std::numeric_limits<double>::quiet_NaN();
  double timestamp = std::numeric_limits<double>::quiet_NaN();
};

// Time steps of one segment: [length x columns], row-major (one row per time step).
using SegmentValues = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

class Dataset {
 public:
  Dataset() = default;
  explicit Dataset(std::vector<std::string> columns) : columns_(std::move(columns)) {
    if (columns_.empty()) throw std::invalid_argument("dyad::Dataset: at least one column is needed");
  }

  const std::vector<std::string>& columns() const { return columns_; }
  // False for data without labels (a long CSV without a label column, e.g. `dyad ingest` with
  // no --labels): every label reads 0, which means "unknown", not "normal".
  bool labelled() const { return labelled_; }
  void set_labelled(bool labelled) { labelled_ = labelled; }
  std::size_t num_columns() const { return columns_.size(); }
  std::size_t size() const { return meta_.size(); }
  bool empty() const { return meta_.empty(); }

  // Index of a named column; the error lists what the dataset has.
  std::size_t column_index(std::string_view name) const {
    for (std::size_t i = 0; i < columns_.size(); ++i)
      if (columns_[i] == name) return i;
    std::string have;
    for (const auto& c : columns_) have += (have.empty() ? "" : ", ") + c;
    throw std::invalid_argument("dyad: no column '" + std::string(name) + "' in the data (columns: " + have + ")");
  }
  bool has_column(std::string_view name) const {
    for (const auto& c : columns_)
      if (c == name) return true;
    return false;
  }

  // A dataset over values held by `owner` (kept alive as long as the dataset or a copy of it):
  // segment i is values[offsets[i], offsets[i + 1]), row-major [length x columns]. The offsets
  // must start at 0, grow by a positive multiple of the column count and end at values.size()
  // (checked: a segment store's reader passes untrusted offsets on).
  static Dataset over(std::vector<std::string> columns, std::vector<SegmentMeta> meta, std::vector<std::size_t> offsets,
                      std::span<const float> values, std::shared_ptr<const void> owner, bool labelled = true) {
    Dataset d(std::move(columns));
    const std::size_t width = d.columns_.size();
    if (offsets.size() != meta.size() + 1 || offsets.front() != 0 || offsets.back() != values.size())
      throw std::invalid_argument("dyad::Dataset::over: " + std::to_string(offsets.size()) + " offsets for " +
                                  std::to_string(meta.size()) + " segments and " + std::to_string(values.size()) +
                                  " values (expected segments + 1 offsets from 0 to the value count)");
    for (std::size_t i = 0; i + 1 < offsets.size(); ++i)
      if (offsets[i + 1] <= offsets[i] || (offsets[i + 1] - offsets[i]) % width != 0)
        throw std::invalid_argument("dyad::Dataset::over: segment " + std::to_string(i) + " spans values [" +
                                    std::to_string(offsets[i]) + ", " + std::to_string(offsets[i + 1]) +
                                    "), not a positive multiple of " + std::to_string(width) + " columns");
    d.meta_ = std::move(meta);
    d.offsets_ = std::move(offsets);
    d.external_ = values;
    d.owner_ = std::move(owner);
    d.labelled_ = labelled;
    return d;
  }
  // Whether the values live outside the dataset (see over()).
  bool external() const { return owner_ != nullptr; }

  void reserve(std::size_t segments, std::size_t steps_per_segment = 128) {
    meta_.reserve(segments);
    offsets_.reserve(segments + 1);
    values_.reserve(segments * steps_per_segment * columns_.size());
  }

  // Appends a segment; `values` is row-major [length x num_columns()].
  void add(SegmentMeta meta, std::span<const float> values) {
    if (values.empty() || values.size() % columns_.size() != 0)
      throw std::invalid_argument("dyad::Dataset::add: segment of car '" + meta.car + "' has " + std::to_string(values.size()) +
                                  " values, not a positive multiple of " + std::to_string(columns_.size()) + " columns");
    own_values();
    if (offsets_.empty()) offsets_.push_back(0);
    values_.insert(values_.end(), values.begin(), values.end());
    offsets_.push_back(values_.size());
    meta_.push_back(std::move(meta));
  }

  const SegmentMeta& meta(std::size_t i) const { return meta_.at(i); }
  SegmentMeta& meta(std::size_t i) { return meta_.at(i); }
  std::size_t length(std::size_t i) const { return (offsets_[i + 1] - offsets_[i]) / columns_.size(); }
  std::size_t max_length() const {
    std::size_t m = 0;
    for (std::size_t i = 0; i < size(); ++i) m = std::max(m, length(i));
    return m;
  }
  SegmentValues values(std::size_t i) const {
    return SegmentValues(raw_values().data() + offsets_.at(i), static_cast<Eigen::Index>(length(i)),
                         static_cast<Eigen::Index>(columns_.size()));
  }
  // Mutable access (to normalise in place): external values are copied in first.
  std::span<float> raw_values() {
    own_values();
    return values_;
  }
  std::span<const float> raw_values() const { return owner_ ? external_ : std::span<const float>(values_); }

  // A new dataset holding the listed segments (in that order).
  Dataset subset(std::span<const std::size_t> indices) const {
    Dataset out(columns_);
    out.labelled_ = labelled_;
    for (std::size_t i : indices) {
      const auto v = values(i);
      out.add(meta_[i], std::span<const float>(v.data(), static_cast<std::size_t>(v.size())));
    }
    return out;
  }

  // Keeps the segments of at least `min_length` steps, in order (upstream's min_length; 0
  // keeps all). Returns how many were shorter and left out.
  std::size_t drop_short_segments(std::size_t min_length) {
    std::vector<std::size_t> keep;
    for (std::size_t i = 0; i < size(); ++i)
      if (length(i) >= min_length) keep.push_back(i);
    const std::size_t dropped = size() - keep.size();
    if (dropped) *this = subset(keep);
    return dropped;
  }

 private:
  std::vector<std::string> columns_;
  std::vector<SegmentMeta> meta_;
  std::vector<std::size_t> offsets_;  // into values_, size() + 1 entries once non-empty
  // Copies external values into values_ and lets the owner go.
  void own_values() {
    if (!owner_) return;
    values_.assign(external_.begin(), external_.end());
    external_ = {};
    owner_.reset();
  }

  std::vector<float> values_;
  std::span<const float> external_;  // the values, when owner_ holds them
  std::shared_ptr<const void> owner_;
  bool labelled_ = true;
};

}  // namespace dyad
