// Text and CSV primitives shared by every reader and writer of text files (the long CSV, the
// score table, the ingest of telematics exports, the segment store's packer, the command line):
// a line reader with a bounded line length, field splitting with RFC 4180 quoting, whole-field
// number parsing, `file:line:column` errors, and number and field formatting.
#pragma once

#include "dyad/core/excerpt.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <istream>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace dyad::text {

// The longest line a LineReader accepts unless told otherwise (CsvOptions::max_line_bytes).
inline constexpr std::size_t default_max_line_bytes = std::size_t{16} << 20;

// Hands out lines (without '\n' and a trailing '\r') from big reads of an istream. A line longer
// than `max_line` bytes is an error `name:line:1: ...`. So is a first line that shows the file
// is not UTF-8 text with LF or CRLF line ends: UTF-16 (a byte-order mark FF FE or FE FF, or NUL
// bytes) and CR-only (classic Mac) line ends are named as such, rather than read as one
// enormous line or as a header of garbled column names.
class LineReader {
 public:
  LineReader(std::istream& in, std::string_view name, std::size_t max_line = default_max_line_bytes)
      : in_(in), name_(name), max_line_(max_line), buf_(std::min<std::size_t>(std::size_t{1} << 12, max_line + 1)) {}

  bool next(std::string_view& line) {
    for (;;) {
      if (const void* nl = std::memchr(buf_.data() + scan_, '\n', end_ - scan_)) {
        const auto stop = static_cast<std::size_t>(static_cast<const char*>(nl) - buf_.data());
        if (stop - begin_ > max_line_) too_long();
        line = take(stop);
        if (lines_ == 0) check_first_line(line);
        begin_ = scan_ = stop + 1;
        ++lines_;
        return true;
      }
      scan_ = end_;
      if (end_ - begin_ > max_line_) too_long();  // before reading (and buffering) any more of it
      if (eof_) {
        if (begin_ == end_) return false;
        line = take(end_);  // last line without a trailing newline
        if (lines_ == 0) check_first_line(line);
        begin_ = end_;
        ++lines_;
        return true;
      }
      refill();
    }
  }

 private:
  [[noreturn]] void too_long() const {
    if (lines_ == 0) check_first_line(std::string_view(buf_.data() + begin_, end_ - begin_));
    throw std::runtime_error(std::string(name_) + ":" + std::to_string(lines_ + 1) + ":1: line longer than " +
                             std::to_string(max_line_) + " bytes (CsvOptions::max_line_bytes)");
  }
  // Refuses a first line that is UTF-16 or holds CRs (which LF or CRLF text cannot have there).
  void check_first_line(std::string_view line) const {
    auto fail = [&](const std::string& why) { throw std::runtime_error(std::string(name_) + ":1: " + why); };
    if (line.starts_with("\xFF\xFE") || line.starts_with("\xFE\xFF"))
      fail(std::string("the file is UTF-16 (") + (line[0] == '\xFF' ? "little" : "big") +
           "-endian byte-order mark): dyad reads UTF-8 text; save or convert it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)");
    if (const auto nul = line.find('\0'); nul != std::string_view::npos)
      fail("the first line holds a NUL byte (at byte " + std::to_string(nul + 1) +
           "): UTF-16 text without a byte-order mark, or not a text file; dyad reads UTF-8 text (e.g. iconv -f UTF-16 -t UTF-8)");
    if (const auto cr = line.find('\r'); cr != std::string_view::npos)
      fail(
          "the first line holds a carriage return (at byte " + std::to_string(cr + 1) +
          ") that does not end it: the file's lines end in CR only (classic Mac); convert them to LF or CRLF (e.g. tr '\\r' '\\n')");
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
  constexpr double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
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
inline std::optional<std::size_t> split_fields(std::string_view line, std::vector<std::string_view>& fields, FieldScratch& scratch,
                                               char delim = ',') {
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
    std::string where =
        std::string(file) + ":" + std::to_string(line) + ":" + std::to_string(column == whole_line ? 1 : column + 1) + ": ";
    if (column < header.size()) where += "column '" + detail::excerpt(header[column]) + "': ";
    throw std::runtime_error(where + message);
  }
};

// The shortest text that reads back as exactly `v` (std::to_chars), for messages and files.
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

// `v` as printf's "%g" writes it: 6 significant digits, trailing zeros dropped, an exponent
// beyond them (7.1234567 -> "7.12346", 1e6 -> "1e+06"). Not number_text, which writes the
// shortest exact form ("7.1234567", "1000000"): the simulator's messages keep their own.
inline std::string rounded_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace dyad::text
