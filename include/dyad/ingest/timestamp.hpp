// Timestamps of telematics exports, as epoch seconds (double: millisecond resolution for
// centuries): ISO-8601 date-times (`2021-03-04T05:06:07`, a space for the T, fractional
// seconds, `Z` or a `+hh:mm` / `+hhmm` / `+hh` offset; none means UTC), or epoch seconds or
// milliseconds as a number. The unit of a number is detected (above 1e11 it is milliseconds:
// 1e11 s is the year 5138) unless the spec names it. Times before 1970 are negative; times
// more than kMaxEpochSeconds (about 31,700 years) from 1970 are not timestamps: within it,
// every time in milliseconds is an exact int64 (dyad ingest numbers windows by it).
#pragma once

#include <charconv>
#include <chrono>
#include <cmath>
#include <optional>
#include <string_view>

namespace dyad::ingest {

enum class TimestampUnit { detect, iso8601, seconds, milliseconds };

inline constexpr double kMaxEpochSeconds = 1e12;

namespace detail {
inline bool digits(std::string_view s, std::size_t at, std::size_t n, int& out) {
  if (at + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

inline std::optional<double> parse_iso8601(std::string_view s) {
  int y, mo, d, h, mi, sec;
  if (!digits(s, 0, 4, y) || s.size() < 19 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' || !digits(s, 8, 2, d) ||
      (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s, 11, 2, h) || s[13] != ':' || !digits(s, 14, 2, mi) ||
      s[16] != ':' || !digits(s, 17, 2, sec))
    return std::nullopt;
  const std::chrono::year_month_day date{std::chrono::year(y), std::chrono::month(static_cast<unsigned>(mo)),
                                         std::chrono::day(static_cast<unsigned>(d))};
  if (!date.ok() || h > 23 || mi > 59 || sec > 60) return std::nullopt;  // 60: a leap second, read as :59 + 1
  std::size_t at = 19;
  double fraction = 0;
  if (at < s.size() && (s[at] == '.' || s[at] == ',')) {
    double scale = 0.1;
    std::size_t n = 0;
    for (++at; at < s.size() && s[at] >= '0' && s[at] <= '9'; ++at, ++n, scale *= 0.1) fraction += (s[at] - '0') * scale;
    if (n == 0) return std::nullopt;
  }
  int offset_s = 0;
  if (at < s.size()) {
    if ((s[at] == 'Z' || s[at] == 'z') && at + 1 == s.size()) {
      at = s.size();
    } else if (s[at] == '+' || s[at] == '-') {
      const int sign = s[at] == '-' ? -1 : 1;
      int oh = 0, om = 0;
      if (!digits(s, at + 1, 2, oh)) return std::nullopt;
      std::size_t rest = at + 3;
      if (rest < s.size() && s[rest] == ':') ++rest;
      if (rest < s.size() && !digits(s, rest, 2, om)) return std::nullopt;
      if (rest < s.size()) rest += 2;
      if (rest != s.size() || oh > 23 || om > 59) return std::nullopt;
      offset_s = sign * (oh * 3600 + om * 60);
      at = s.size();
    } else {
      return std::nullopt;
    }
  }
  const auto days = std::chrono::sys_days(date).time_since_epoch().count();
  return static_cast<double>(days) * 86400.0 + h * 3600.0 + mi * 60.0 + sec + fraction - offset_s;
}
}  // namespace detail

// Epoch seconds of `s`, or nullopt when it is not a timestamp of `unit`.
inline std::optional<double> parse_timestamp(std::string_view s, TimestampUnit unit = TimestampUnit::detect) {
  if (s.empty()) return std::nullopt;
  const bool looks_iso = s.size() >= 19 && s[4] == '-';
  if (unit == TimestampUnit::iso8601 || (unit == TimestampUnit::detect && looks_iso))
    return detail::parse_iso8601(s);  // years 0-9999
  double v = 0;
  const char* b = s.data();
  const char* e = b + s.size();
  const auto [p, ec] = std::from_chars(b, e, v);
  if (ec != std::errc() || p != e || !std::isfinite(v)) return std::nullopt;
  const bool ms = unit == TimestampUnit::milliseconds || (unit == TimestampUnit::detect && std::abs(v) > 1e11);
  const double t = ms ? v / 1000.0 : v;
  if (!(std::abs(t) <= kMaxEpochSeconds)) return std::nullopt;
  return t;
}

}  // namespace dyad::ingest
