// The long CSV (dyad-method §1): a header line, then one row per time step, the rows of a
// segment contiguous and in time order: car,segment[,t][,label][,mileage][,timestamp],<signals...>.
// Reading streams the input in large blocks and parses numbers with std::from_chars, so a
// file of several GB costs no per-row allocation. Every error names `file:line:column`.
#pragma once

#include "dyad/core/excerpt.hpp"
#include "dyad/data/dataset.hpp"
#include "dyad/io/atomic_file.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
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
#include <type_traits>
#include <unordered_map>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace dyad {

struct CsvOptions {
  // Signal columns, in this order. Empty: every column other than car, segment, t, label,
  // mileage, timestamp whose value in the first data row is a number, in header order.
  std::vector<std::string> signals;
  // Longest line accepted, in bytes. A longer line is an error naming it, so that a hostile or
  // broken file (gigabytes without a newline) cannot grow the read buffer without bound.
  std::size_t max_line_bytes = std::size_t{16} << 20;
  // Added to the line numbers after the header in errors: a batch cut from a longer stream
  // (dyad monitor --follow) names the stream's own lines.
  std::size_t data_line_offset = 0;
};

namespace detail {

// Hands out lines (without '\n' and a trailing '\r') from big reads of an istream. A line longer
// than `max_line` bytes is an error `name:line:1: ...`.
class LineReader {
 public:
  LineReader(std::istream& in, std::string_view name, std::size_t max_line = CsvOptions{}.max_line_bytes)
      : in_(in), name_(name), max_line_(max_line), buf_(std::min<std::size_t>(std::size_t{1} << 12, max_line + 1)) {}

  bool next(std::string_view& line) {
    for (;;) {
      if (const void* nl = std::memchr(buf_.data() + scan_, '\n', end_ - scan_)) {
        const auto stop = static_cast<std::size_t>(static_cast<const char*>(nl) - buf_.data());
        if (stop - begin_ > max_line_) too_long();
        line = take(stop);
        begin_ = scan_ = stop + 1;
        ++lines_;
        return true;
      }
      scan_ = end_;
      if (end_ - begin_ > max_line_) too_long();  // before reading (and buffering) any more of it
      if (eof_) {
        if (begin_ == end_) return false;
        line = take(end_);  // last line without a trailing newline
        begin_ = end_;
        ++lines_;
        return true;
      }
      refill();
    }
  }

 private:
  [[noreturn]] void too_long() const {
    throw std::runtime_error(std::string(name_) + ":" + std::to_string(lines_ + 1) + ":1: line longer than " +
                             std::to_string(max_line_) + " bytes (CsvOptions::max_line_bytes)");
  }
  std::string_view take(std::size_t stop) const {
    std::string_view s(buf_.data() + begin_, stop - begin_);
    if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
    return s;
  }
  void refill() {
    const std::size_t keep = end_ - begin_;
    std::memmove(buf_.data(), buf_.data() + begin_, keep);
    scan_ -= begin_;
    begin_ = 0;
    end_ = keep;
    // Grow for a line longer than the buffer (but, as checked in next(), not than max_line_),
    // and on every refill up to 1 MiB reads: small inputs stay cheap, large files read in
    // large chunks. Never past what max_line_ needs.
    if (end_ == buf_.size() || (refills_++ > 0 && buf_.size() < (std::size_t{1} << 20) && buf_.size() <= max_line_))
      buf_.resize(max_line_ < buf_.size() * 2 ? max_line_ + 1 : buf_.size() * 2);
    in_.read(buf_.data() + end_, static_cast<std::streamsize>(buf_.size() - end_));
    end_ += static_cast<std::size_t>(in_.gcount());
    if (in_.bad()) throw std::runtime_error(std::string(name_) + ":" + std::to_string(lines_ + 1) + ": read error");
    if (!in_) eof_ = true;
  }

  std::istream& in_;
  std::string_view name_;
  std::size_t max_line_;
  std::vector<char> buf_;
  std::size_t begin_ = 0, scan_ = 0, end_ = 0, lines_ = 0, refills_ = 0;
  bool eof_ = false;
};

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

enum class NumberStatus { ok, not_a_number, out_of_range };

// Clinger's fast path for plain decimals such as "-350.125" or "4.1e3": when the digits fit the
// significand and 10^|exp| is exact, one IEEE multiplication or division rounds correctly.
// Anything else (long mantissas, inf, nan, bad input) is left to from_chars.
template <class T>
bool parse_simple_decimal(const char* p, const char* e, T& value) {
  constexpr std::uint64_t max_mantissa = std::is_same_v<T, float> ? (std::uint64_t{1} << 24) : (std::uint64_t{1} << 53);
  constexpr int max_exp = std::is_same_v<T, float> ? 10 : 22;
  constexpr double pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                         1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  const bool negative = p != e && *p == '-';
  p += negative;
  std::uint64_t m = 0;
  int digits = 0, exp = 0;
  for (; p != e && static_cast<unsigned>(*p - '0') < 10; ++p, ++digits) m = m * 10 + static_cast<unsigned>(*p - '0');
  if (p != e && *p == '.')
    for (++p; p != e && static_cast<unsigned>(*p - '0') < 10; ++p, ++digits, --exp) m = m * 10 + static_cast<unsigned>(*p - '0');
  if (digits == 0 || digits > 19 || m > max_mantissa) return false;
  if (p != e && (*p == 'e' || *p == 'E')) {
    ++p;
    const bool exp_negative = p != e && *p == '-';
    p += (p != e && (*p == '-' || *p == '+'));
    int x = 0, xdigits = 0;
    for (; p != e && static_cast<unsigned>(*p - '0') < 10 && xdigits < 4; ++p, ++xdigits) x = x * 10 + (*p - '0');
    if (xdigits == 0) return false;
    exp += exp_negative ? -x : x;
  }
  if (p != e || exp < -max_exp || exp > max_exp) return false;
  T v = static_cast<T>(m);
  const T scale = static_cast<T>(pow10[exp < 0 ? -exp : exp]);  // exact for |exp| <= max_exp
  v = exp < 0 ? v / scale : v * scale;
  value = negative ? -v : v;
  return true;
}

// Whole-field parse; accepts a leading '+', which from_chars does not.
template <class T>
NumberStatus parse_number(std::string_view s, T& value) {
  const char* b = s.data();
  const char* e = b + s.size();
  if (b != e && *b == '+' && e - b > 1 && b[1] != '-' && b[1] != '+') ++b;
  if (b == e) return NumberStatus::not_a_number;
  if constexpr (std::is_floating_point_v<T>)
    if (parse_simple_decimal(b, e, value)) return NumberStatus::ok;
  const auto [p, ec] = std::from_chars(b, e, value);
  if (ec == std::errc::result_out_of_range && p == e) {
    if constexpr (std::is_same_v<T, float>) {  // underflow is fine for a float signal; overflow is not
      double d;
      if (std::from_chars(b, e, d).ec == std::errc() && std::abs(d) < 1.0) {
        value = static_cast<float>(d);
        return NumberStatus::ok;
      }
    }
    return NumberStatus::out_of_range;
  }
  return ec == std::errc() && p == e ? NumberStatus::ok : NumberStatus::not_a_number;
}

// Storage for the unescaped content of a line's `""`-escaped quoted fields. The bytes are
// appended back to back and the fields' views are made only once the whole line is split:
// appending may move `text` (a reallocation, or the short-string buffer), so a view taken
// earlier could dangle.
struct FieldScratch {
  struct Piece {
    std::size_t field, offset, size;
  };
  std::string text;
  std::vector<Piece> pieces;
};

// Splits a line into fields separated by `delim` (RFC 4180 quoting within one line). Returns
// the 0-based index of a malformed quoted field, or nullopt. Unquoted fields are trimmed; the
// views point into `line` or `scratch` and stay valid until the next call with the same scratch.
inline std::optional<std::size_t> split_quoted_fields(std::string_view line, std::vector<std::string_view>& fields,
                                                      FieldScratch& scratch, char delim = ',') {
  fields.clear();
  scratch.text.clear();
  scratch.pieces.clear();
  const auto bad = [&]() -> std::optional<std::size_t> {
    std::size_t pos = 0;
    for (;;) {
      const std::size_t index = fields.size();
      if (pos < line.size() && line[pos] == '"') {
        std::size_t q = pos + 1;
        bool escaped = false;
        for (;; ++q) {
          q = line.find('"', q);
          if (q == std::string_view::npos) return index;
          if (q + 1 < line.size() && line[q + 1] == '"') escaped = true, ++q;
          else break;
        }
        const std::string_view content = line.substr(pos + 1, q - pos - 1);
        if (escaped) {
          const std::size_t offset = scratch.text.size();
          for (std::size_t i = 0; i < content.size(); ++i) {
            scratch.text += content[i];
            if (content[i] == '"') ++i;
          }
          scratch.pieces.push_back({index, offset, scratch.text.size() - offset});
          fields.emplace_back();  // its view is made below, when `text` no longer grows
        } else {
          fields.push_back(content);
        }
        const std::size_t after = line.find_first_not_of(delim == '\t' ? " " : " \t", q + 1);
        if (after == std::string_view::npos) return std::nullopt;
        if (line[after] != delim) return index;
        pos = after + 1;
      } else {
        const std::size_t stop = std::min(line.find(delim, pos), line.size());
        fields.push_back(trim(line.substr(pos, stop - pos)));
        if (stop == line.size()) return std::nullopt;
        pos = stop + 1;
      }
    }
  }();
  const std::string_view text = scratch.text;
  for (const auto& p : scratch.pieces) fields[p.field] = text.substr(p.offset, p.size);
  return bad;
}

// The common case, a line without quotes, found 16 bytes at a time.
inline std::optional<std::size_t> split_fields(std::string_view line, std::vector<std::string_view>& fields,
                                               FieldScratch& scratch, char delim = ',') {
#if defined(__SSE2__)
  fields.clear();
  const char* p = line.data();
  const std::size_t n = line.size();
  std::size_t start = 0, i = 0;
  const __m128i comma = _mm_set1_epi8(delim), quote = _mm_set1_epi8('"');
  for (; i + 16 <= n; i += 16) {
    const __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, quote))) return split_quoted_fields(line, fields, scratch, delim);
    for (unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, comma))); mask; mask &= mask - 1) {
      const std::size_t stop = i + static_cast<std::size_t>(std::countr_zero(mask));
      fields.push_back(trim({p + start, stop - start}));
      start = stop + 1;
    }
  }
  for (; i < n; ++i) {
    if (p[i] == '"') return split_quoted_fields(line, fields, scratch, delim);
    if (p[i] == delim) {
      fields.push_back(trim({p + start, i - start}));
      start = i + 1;
    }
  }
  fields.push_back(trim({p + start, n - start}));
  return std::nullopt;
#else
  return split_quoted_fields(line, fields, scratch, delim);
#endif
}

// Formats `file:line:column: column 'name': message`; a column past the header has no name.
struct CsvErrors {
  static constexpr std::size_t whole_line = std::numeric_limits<std::size_t>::max();  // shown as column 1
  std::string_view file;
  const std::vector<std::string>& header;
  [[noreturn]] void operator()(std::size_t line, std::size_t column, const std::string& message) const {
    std::string where = std::string(file) + ":" + std::to_string(line) + ":" + std::to_string(column == whole_line ? 1 : column + 1) + ": ";
    if (column < header.size()) where += "column '" + excerpt(header[column]) + "': ";
    throw std::runtime_error(where + message);
  }
};

inline std::string number_text(double v) {
  char buf[32];
  return std::string(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

inline std::string csv_quote(std::string_view s) {
  const bool plain = !s.empty() && s.find_first_of(",\"") == std::string_view::npos && trim(s) == s;
  if (plain) return std::string(s);
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace detail

// Reads a long CSV from a stream segment by segment: `sink.start(columns, labelled)` once the
// signal columns are known, then `sink.add(meta, values)` for each segment (values row-major
// [length x columns]) as soon as it is complete, so a sink that writes them out keeps nothing.
// `name` stands for the file in error messages.
template <class Sink>
void read_csv_segments(std::istream& in, std::string_view name, const CsvOptions& options, Sink& sink) {
  constexpr std::size_t none = std::numeric_limits<std::size_t>::max();
  detail::LineReader reader(in, name, options.max_line_bytes);
  std::vector<std::string_view> fields;
  detail::FieldScratch scratch;
  std::vector<std::string> header;
  std::size_t line_no = 0;
  std::string_view line;

  const detail::CsvErrors fail{name, header};
  constexpr std::size_t whole_line = detail::CsvErrors::whole_line;
  auto next_nonblank = [&]() {
    while (reader.next(line)) {
      ++line_no;
      if (!detail::trim(line).empty()) return true;
    }
    return false;
  };
  auto split = [&]() {
    if (const auto bad = detail::split_fields(line, fields, scratch)) fail(line_no, *bad, "unterminated or malformed quoted field");
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
    if (find(required) == none) fail(header_line, whole_line, std::string("missing required column '") + required + "' (header: " + header_list() + ")");

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
    const auto st = detail::parse_number(s, v);
    if (st == detail::NumberStatus::out_of_range) fail(line_no, c, "'" + detail::excerpt(s) + "' is out of range");
    if (st != detail::NumberStatus::ok) fail(line_no, c, (s.empty() ? std::string("missing value") : "'" + detail::excerpt(s) + "' is not a number"));
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
        if (!is_meta(c) && !header[c].empty() && detail::parse_number(fields[c], probe) != detail::NumberStatus::not_a_number)
          signal_cols.push_back(c);
      make_dataset();
    }

    const std::string_view car = fields[car_col];
    if (car.empty()) fail(line_no, car_col, "missing value");
    std::int64_t segment;
    if (const auto st = detail::parse_number(fields[seg_col], segment); st != detail::NumberStatus::ok)
      fail(line_no, seg_col, "'" + detail::excerpt(fields[seg_col]) +
                                 (st == detail::NumberStatus::out_of_range ? "' is out of range for a 64-bit integer" : "' is not an integer"));
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
        fail(line_no, seg_col, "car '" + detail::excerpt(car) + "' segment " + std::to_string(segment) + " reappears; it started at line " +
                                   std::to_string(it->second) + " and rows of a segment must be contiguous");
      meta = SegmentMeta{std::string(car), segment, label, mileage, timestamp};
      segment_start = line_no;
      in_segment = true;
    } else {
      if (label != meta.label)
        fail(line_no, label_col, "label " + std::to_string(label) + " differs from the segment's label " + std::to_string(meta.label) +
                                     " (line " + std::to_string(segment_start) + ")");
      if (t_col != none && !(t > last_t))
        fail(line_no, t_col, "t = " + detail::excerpt(fields[t_col]) + " does not increase within the segment (previous t = " + detail::number_text(last_t) + ")");
    }
    last_t = t;

    for (std::size_t c : signal_cols) {
      float v;
      const std::string_view s = fields[c];
      const auto st = detail::parse_number(s, v);
      if (st == detail::NumberStatus::out_of_range) fail(line_no, c, "'" + detail::excerpt(s) + "' is out of range for float");
      if (st != detail::NumberStatus::ok) fail(line_no, c, s.empty() ? std::string("missing value") : "'" + detail::excerpt(s) + "' is not a number");
      if (!std::isfinite(v)) fail(line_no, c, "non-finite value '" + detail::excerpt(s) + "' (DyAD cannot train on NaN or infinity)");
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
    out += detail::csv_quote(col) + (c + 1 < data.num_columns() ? "," : "\n");
  }
  char num[64];
  auto put = [&](auto v) {
    const auto r = std::to_chars(num, num + sizeof num, v);  // shortest form that reads back exactly
    out.append(num, r.ptr);
  };
  for (std::size_t i = 0; i < data.size(); ++i) {
    const SegmentMeta& m = data.meta(i);
    if (m.car.empty() || m.car.find_first_of("\r\n") != std::string::npos)
      throw std::invalid_argument("dyad::write_csv: segment " + std::to_string(i) + " has a car id that cannot be written: '" + m.car + "'");
    if ((m.label != 0 && m.label != 1) || std::isinf(m.mileage) || std::isinf(m.timestamp))
      throw std::invalid_argument("dyad::write_csv: car '" + m.car + "' segment " + std::to_string(m.segment) +
                                  ": label must be 0 or 1 and mileage/timestamp finite or NaN");
    const std::string car = detail::csv_quote(m.car);
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
