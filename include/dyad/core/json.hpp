// The strict JSON readers every file format of dyad shares (configurations, checkpoint
// metadata, calibrations, ingest specs, training states), and the edit distance behind their
// "did you mean" errors. Errors are std::invalid_argument("<where>: key '<key>': ..."):
// nlohmann's get<int> would wrap 4294967297 to 1 and truncate 1.5 silently; these refuse
// anything that is not exactly representable.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dyad::detail {

// At most 60 characters of a value for an error message, as JSON (control bytes escaped).
inline std::string json_excerpt(const nlohmann::json& v) {
  std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

// The JSON document in the file at `path`; `what` names the file in the open error ("the
// ingest spec"). A syntax error gives the byte offset nlohmann reports.
inline nlohmann::json read_json_file(const std::filesystem::path& path, std::string_view what) {
  std::ifstream in(path);
  if (!in) {
    const int err = errno;
    throw std::runtime_error(path.string() + ": cannot open " + std::string(what) +
                             (err ? std::string(": ") + std::strerror(err) : std::string()));
  }
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::invalid_argument(path.string() + ": invalid JSON at byte " + std::to_string(e.byte) + ": " + e.what());
  }
}

[[noreturn]] inline void json_key_error(std::string_view where, std::string_view key, const std::string& message) {
  throw std::invalid_argument(std::string(where) + ": key '" + std::string(key) + "': " + message);
}

// An integer in [lo, hi]: a JSON integer, or a float with an integral value up to 2^53 (Python
// tools may write 128.0; beyond 2^53 a float no longer says which integer was meant).
template <class I>
I json_integer(const nlohmann::json& v, std::string_view where, std::string_view key, I lo, I hi) {
  auto fail = [&]() {
    json_key_error(where, key,
                   "must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + json_excerpt(v));
  };
  auto in_range = [&](auto x) {
    if (std::cmp_less(x, lo) || std::cmp_greater(x, hi)) fail();
    return static_cast<I>(x);
  };
  if (v.is_number_unsigned()) return in_range(v.get<std::uint64_t>());
  if (v.is_number_integer()) return in_range(v.get<std::int64_t>());
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!(std::abs(d) <= 0x1p53) || d != std::trunc(d)) fail();
    return in_range(static_cast<std::int64_t>(d));
  }
  fail();
  return lo;  // unreachable
}

// A finite number (JSON has no NaN or infinity; nlohmann refuses overflowing literals).
inline double json_number(const nlohmann::json& v, std::string_view where, std::string_view key) {
  if (!v.is_number()) json_key_error(where, key, "must be a number, got " + json_excerpt(v));
  const double d = v.get<double>();
  if (!std::isfinite(d)) json_key_error(where, key, "must be finite, got " + json_excerpt(v));
  return d;
}

inline bool json_bool(const nlohmann::json& v, std::string_view where, std::string_view key) {
  if (!v.is_boolean()) json_key_error(where, key, "must be true or false, got " + json_excerpt(v));
  return v.get<bool>();
}

inline std::string json_string(const nlohmann::json& v, std::string_view where, std::string_view key) {
  if (!v.is_string()) json_key_error(where, key, "must be a string, got " + json_excerpt(v));
  return v.get<std::string>();
}

inline std::vector<std::string> json_strings(const nlohmann::json& v, std::string_view where, std::string_view key) {
  if (!v.is_array()) json_key_error(where, key, "must be a list of strings, got " + json_excerpt(v));
  std::vector<std::string> out;
  out.reserve(v.size());
  for (const auto& e : v) {
    if (!e.is_string()) json_key_error(where, key, "must be a list of strings, has " + json_excerpt(e));
    out.push_back(e.get<std::string>());
  }
  return out;
}

inline std::vector<double> json_numbers(const nlohmann::json& v, std::string_view where, std::string_view key) {
  if (!v.is_array()) json_key_error(where, key, "must be a list of numbers, got " + json_excerpt(v));
  std::vector<double> out;
  out.reserve(v.size());
  for (const auto& e : v) {
    if (!e.is_number()) json_key_error(where, key, "must be a list of finite numbers, has " + json_excerpt(e));
    out.push_back(e.get<double>());
  }
  return out;
}

// The member `key` of object `j`; names the key when it is missing.
inline const nlohmann::json& json_member(const nlohmann::json& j, std::string_view where, std::string_view key) {
  if (!j.is_object()) throw std::invalid_argument(std::string(where) + ": expected a JSON object, got " + json_excerpt(j));
  const auto it = j.find(key);
  if (it == j.end()) json_key_error(where, key, "is missing");
  return *it;
}

// The numbers of j[key], which must be `size` of them.
inline std::vector<double> json_vector(const nlohmann::json& j, const std::string& where, const char* key, std::size_t size) {
  std::vector<double> v = json_numbers(json_member(j, where, key), where, key);
  if (v.size() != size) json_key_error(where, key, "has " + std::to_string(v.size()) + " values, expected " + std::to_string(size));
  return v;
}

// Levenshtein distance, for "did you mean" (keys are short).
inline std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = up;
    }
  }
  return row[b.size()];
}

}  // namespace dyad::detail
