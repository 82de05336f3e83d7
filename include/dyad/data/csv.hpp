// The long CSV (dyad-method §1): a header line, then one row per time step, the rows of a
// segment contiguous and in time order: car,segment[,t][,label][,mileage][,timestamp],<signals...>.
// Reading streams the input in large blocks and parses numbers with std::from_chars, so a
// file of several GB costs no per-row allocation. Every error names `file:line:column`.
#pragma once

#include "dyad/core/atomic_file.hpp"
#include "dyad/core/excerpt.hpp"
#include "dyad/core/text.hpp"
#include "dyad/data/dataset.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <istream>
#include <limits>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

namespace dyad {

struct CsvOptions {
  // Signal columns, in this order. Empty: every column other than car, segment, t, label,
  // mileage, timestamp whose value in the first data row is a number, in header order.
  std::vector<std::string> signals;
  // Longest line accepted, in bytes. A longer line is an error naming it, so that a hostile or
  // broken file (gigabytes without a newline) cannot grow the read buffer without bound.
  std::size_t max_line_bytes = text::default_max_line_bytes;
  // Added to the line numbers after the header in errors: a batch cut from a longer stream
  // (dyad monitor --follow) names the stream's own lines.
  std::size_t data_line_offset = 0;
};

// Reads a long CSV from a stream segment by segment: `sink.start(columns, labelled)` once the
// signal columns are known, then `sink.add(meta, values)` for each segment (values row-major
// [length x columns]) as soon as it is complete, so a sink that writes them out keeps nothing.
// `name` stands for the file in error messages.
template <class Sink>
void read_csv_segments(std::istream& in, std::string_view name, const CsvOptions& options, Sink& sink) {
  constexpr std::size_t none = std::numeric_limits<std::size_t>::max();
  text::LineReader reader(in, name, options.max_line_bytes);
  std::vector<std::string_view> fields;
  text::FieldScratch scratch;
  std::vector<std::string> header;
  std::size_t line_no = 0;
  std::string_view line;

  const text::CsvErrors fail{name, header};
  constexpr std::size_t whole_line = text::CsvErrors::whole_line;
  auto next_nonblank = [&]() {
    while (reader.next(line)) {
      ++line_no;
      if (!text::trim(line).empty()) return true;
    }
    return false;
  };
  auto split = [&]() {
    if (const auto bad = text::split_fields(line, fields, scratch)) fail(line_no, *bad, "unterminated or malformed quoted field");
  };

  // Header.
  if (!next_nonblank()) fail(line_no == 0 ? 1 : line_no, whole_line, "empty file, expected a header line");
  if (line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);  // UTF-8 byte order mark
  split();
  const std::size_t header_line = line_no;
  line_no += options.data_line_offset;
  header.assign(fields.begin(), fields.end());
  {  // a hash map, not a pairwise check: a header of a million columns must not take 10^12 steps
    std::unordered_map<std::string_view, std::size_t> first;  // views into `header`, which no longer changes
    for (std::size_t i = 0; i < header.size(); ++i)
      if (const auto [it, fresh] = first.try_emplace(header[i], i); !fresh && !header[i].empty())
        fail(header_line, i, "duplicate column name (also column " + std::to_string(it->second + 1) + ")");
  }
  auto find = [&](std::string_view col) {
    const auto it = std::find(header.begin(), header.end(), col);
    return it == header.end() ? none : static_cast<std::size_t>(it - header.begin());
  };
  auto header_list = [&] {  // bounded: the header is untrusted text
    std::string s;
    std::size_t i = 0;
    for (; i < header.size() && s.size() < 1000; ++i) s += (i ? ", " : "") + detail::excerpt(header[i], 100);
    if (i < header.size()) s += ", ... (" + std::to_string(header.size()) + " columns)";
    return s;
  };
  const std::size_t car_col = find("car"), seg_col = find("segment"), t_col = find("t"), label_col = find("label"),
                    mileage_col = find("mileage"), time_col = find("timestamp");
  for (const char* required : {"car", "segment"})
    if (find(required) == none)
      fail(header_line, whole_line, std::string("missing required column '") + required + "' (header: " + header_list() + ")");

  std::vector<std::size_t> signal_cols;
  for (const auto& s : options.signals) {
    const std::size_t c = find(s);
    if (c == none) fail(header_line, whole_line, "no signal column '" + detail::excerpt(s) + "' (header: " + header_list() + ")");
    if (std::find(signal_cols.begin(), signal_cols.end(), c) != signal_cols.end())
      throw std::invalid_argument("dyad::read_csv: signal column '" + detail::excerpt(s) + "' requested twice");
    signal_cols.push_back(c);
  }
  const bool auto_signals = options.signals.empty();
  auto is_meta = [&](std::size_t c) {
    return c == car_col || c == seg_col || c == t_col || c == label_col || c == mileage_col || c == time_col;
  };
  bool started = false;
  auto make_dataset = [&] {
    std::vector<std::string> names;
    for (std::size_t c : signal_cols) names.push_back(header[c]);
    if (names.empty()) fail(line_no, whole_line, "no numeric signal columns (header: " + header_list() + ")");
    sink.start(std::move(names), label_col != none);
    started = true;
  };
  if (!auto_signals) make_dataset();

  // Rows.
  SegmentMeta meta;
  std::vector<float> values;
  double last_t = 0;
  std::size_t segment_start = 0;
  bool in_segment = false;
  std::unordered_map<std::string, std::unordered_map<std::int64_t, std::size_t>> seen;  // car -> segment -> first line

  auto parse_double = [&](std::size_t c, bool allow_missing) {
    double v;
    const std::string_view s = fields[c];
    if (allow_missing && s.empty()) return std::numeric_limits<double>::quiet_NaN();
    const auto st = text::parse_number(s, v);
    if (st == text::NumberStatus::out_of_range) fail(line_no, c, "'" + detail::excerpt(s) + "' is out of range");
    if (st != text::NumberStatus::ok)
      fail(line_no, c, (s.empty() ? std::string("missing value") : "'" + detail::excerpt(s) + "' is not a number"));
    if (std::isinf(v) || (!allow_missing && std::isnan(v))) fail(line_no, c, "non-finite value '" + detail::excerpt(s) + "'");
    return v;
  };
  auto finish_segment = [&] {
    if (in_segment) sink.add(std::move(meta), std::span<const float>(values));
    values.clear();
  };

  while (next_nonblank()) {
    split();
    if (fields.size() != header.size()) {
      const std::size_t c = std::min(fields.size(), header.size());
      fail(line_no, c,
           (fields.size() < header.size() ? "missing field: " : "too many fields: ") + std::string("the line has ") +
               std::to_string(fields.size()) + " fields, the header " + std::to_string(header.size()));
    }
    if (!started) {  // first data row decides which columns are numeric signals
      float probe;
      for (std::size_t c = 0; c < header.size(); ++c)
        if (!is_meta(c) && !header[c].empty() && text::parse_number(fields[c], probe) != text::NumberStatus::not_a_number)
          signal_cols.push_back(c);
      make_dataset();
    }

    const std::string_view car = fields[car_col];
    if (car.empty()) fail(line_no, car_col, "missing value");
    std::int64_t segment;
    if (const auto st = text::parse_number(fields[seg_col], segment); st != text::NumberStatus::ok)
      fail(line_no, seg_col,
           "'" + detail::excerpt(fields[seg_col]) +
               (st == text::NumberStatus::out_of_range ? "' is out of range for a 64-bit integer" : "' is not an integer"));
    int label = 0;
    if (label_col != none) {
      const double l = parse_double(label_col, false);
      if (l != 0 && l != 1) fail(line_no, label_col, "'" + detail::excerpt(fields[label_col]) + "' is not 0 or 1");
      label = static_cast<int>(l);
    }
    const double mileage = mileage_col != none ? parse_double(mileage_col, true) : std::numeric_limits<double>::quiet_NaN();
    const double timestamp = time_col != none ? parse_double(time_col, true) : std::numeric_limits<double>::quiet_NaN();
    const double t = t_col != none ? parse_double(t_col, false) : 0.0;

    if (!in_segment || segment != meta.segment || car != meta.car) {
      finish_segment();
      auto& by_segment = seen[std::string(car)];
      if (const auto [it, fresh] = by_segment.try_emplace(segment, line_no); !fresh)
        fail(line_no, seg_col,
             "car '" + detail::excerpt(car) + "' segment " + std::to_string(segment) + " reappears; it started at line " +
                 std::to_string(it->second) + " and rows of a segment must be contiguous");
      meta = SegmentMeta{std::string(car), segment, label, mileage, timestamp};
      segment_start = line_no;
      in_segment = true;
    } else {
      if (label != meta.label)
        fail(line_no, label_col,
             "label " + std::to_string(label) + " differs from the segment's label " + std::to_string(meta.label) + " (line " +
                 std::to_string(segment_start) + ")");
      if (t_col != none && !(t > last_t))
        fail(line_no, t_col,
             "t = " + detail::excerpt(fields[t_col]) +
                 " does not increase within the segment (previous t = " + text::number_text(last_t) + ")");
    }
    last_t = t;

    for (std::size_t c : signal_cols) {
      float v;
      const std::string_view s = fields[c];
      const auto st = text::parse_number(s, v);
      if (st == text::NumberStatus::out_of_range) fail(line_no, c, "'" + detail::excerpt(s) + "' is out of range for float");
      if (st != text::NumberStatus::ok)
        fail(line_no, c, s.empty() ? std::string("missing value") : "'" + detail::excerpt(s) + "' is not a number");
      if (!std::isfinite(v))
        fail(line_no, c, "non-finite value '" + detail::excerpt(s) + "' (DyAD cannot train on NaN or infinity)");
      values.push_back(v);
    }
  }
  if (!started) {  // header only: every non-meta column is a signal
    for (std::size_t c = 0; c < header.size(); ++c)
      if (!is_meta(c) && !header[c].empty()) signal_cols.push_back(c);
    make_dataset();
  }
  finish_segment();
}

// Reads a long CSV from a stream into memory; `name` stands for the file in error messages.
inline Dataset read_csv(std::istream& in, std::string_view name, const CsvOptions& options = {}) {
  struct Collect {
    std::optional<Dataset> data;
    void start(std::vector<std::string> columns, bool labelled) {
      data.emplace(std::move(columns));
      data->set_labelled(labelled);
    }
    void add(SegmentMeta&& meta, std::span<const float> values) { data->add(std::move(meta), values); }
  } collect;
  read_csv_segments(in, name, options, collect);
  return std::move(*collect.data);
}

inline Dataset read_csv(const std::filesystem::path& path, const CsvOptions& options = {}) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) detail::throw_os_error("cannot open", path, errno ? errno : EIO);
  // A directory opens fine and only fails at the first read; say why. (A FIFO is fine: it streams.)
  if (std::error_code ec; std::filesystem::is_directory(path, ec)) detail::throw_os_error("cannot read", path, EISDIR);
  const std::string name = path.string();
  return read_csv(in, name, options);
}

// Writes `data` as a long CSV: car,segment,t,label,mileage,timestamp,<columns> (no label column
// for unlabelled data); t counts the rows of a segment from 0, a NaN mileage or timestamp is an
// empty field. read_csv reads it back exactly.
inline void write_csv(std::ostream& os, const Dataset& data) {
  static constexpr std::string_view meta_names[] = {"car", "segment", "t", "label", "mileage", "timestamp"};
  std::string out;
  for (auto m : meta_names)
    if (m != "label" || data.labelled()) out += std::string(m) + ",";
  for (std::size_t c = 0; c < data.num_columns(); ++c) {
    const std::string& col = data.columns()[c];
    if (std::find(std::begin(meta_names), std::end(meta_names), col) != std::end(meta_names) || col.empty() ||
        col.find_first_of("\r\n") != std::string::npos)
      throw std::invalid_argument("dyad::write_csv: cannot write a signal column named '" + col + "'");
    out += text::csv_quote(col) + (c + 1 < data.num_columns() ? "," : "\n");
  }
  char num[64];
  auto put = [&](auto v) {
    const auto r = std::to_chars(num, num + sizeof num, v);  // shortest form that reads back exactly
    out.append(num, r.ptr);
  };
  for (std::size_t i = 0; i < data.size(); ++i) {
    const SegmentMeta& m = data.meta(i);
    if (m.car.empty() || m.car.find_first_of("\r\n") != std::string::npos)
      throw std::invalid_argument("dyad::write_csv: segment " + std::to_string(i) + " has a car id that cannot be written: '" +
                                  m.car + "'");
    if ((m.label != 0 && m.label != 1) || std::isinf(m.mileage) || std::isinf(m.timestamp))
      throw std::invalid_argument("dyad::write_csv: car '" + m.car + "' segment " + std::to_string(m.segment) +
                                  ": label must be 0 or 1 and mileage/timestamp finite or NaN");
    const std::string car = text::csv_quote(m.car);
    const auto v = data.values(i);
    for (Eigen::Index t = 0; t < v.rows(); ++t) {
      out += car;
      out += ',';
      put(m.segment);
      out += ',';
      put(static_cast<std::int64_t>(t));
      out += ',';
      if (data.labelled()) {
        out += m.label ? '1' : '0';
        out += ',';
      }
      if (!std::isnan(m.mileage)) put(m.mileage);
      out += ',';
      if (!std::isnan(m.timestamp)) put(m.timestamp);
      for (Eigen::Index c = 0; c < v.cols(); ++c) {
        if (!std::isfinite(v(t, c)))
          throw std::invalid_argument("dyad::write_csv: car '" + m.car + "' segment " + std::to_string(m.segment) + " column '" +
                                      data.columns()[static_cast<std::size_t>(c)] + "' holds a non-finite value");
        out += ',';
        put(v(t, c));
      }
      out += '\n';
    }
    if (out.size() > (1 << 20)) {
      os.write(out.data(), static_cast<std::streamsize>(out.size()));
      out.clear();
    }
  }
  os.write(out.data(), static_cast<std::streamsize>(out.size()));
}

// Writes the file atomically (a failure leaves no partial file).
inline void write_csv(const std::filesystem::path& path, const Dataset& data) {
  write_file_atomically(path, [&](std::ostream& os) { write_csv(os, data); });
}

}  // namespace dyad
