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
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dyad::limits {
// How deeply any JSON dyad reads (configurations, specs, checkpoint metadata, calibrations,
// training states) may nest arrays and objects. dyad's own files nest 5 levels at most; the
// limit keeps hostile input from making any code that walks a value recursively (dump(),
// comparisons, copies) overflow the stack. (The safetensors header has its own, lower limit.)
inline constexpr std::size_t json_depth = 64;
}  // namespace dyad::limits

namespace dyad::detail {

// The byte offset at which `json` first nests arrays and objects deeper than `limit`, or
// nullopt. Brackets inside strings do not count. Exact for valid JSON; on invalid JSON the
// parser stops at the error before nesting any deeper than counted here. One pass over the
// bytes, without allocating: a small fraction of what parsing the text costs.
inline std::optional<std::size_t> nesting_beyond(std::string_view json, std::size_t limit) {
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') ++i;  // skips the escaped character, which may be a quote
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::nullopt;
}

// Parses `text`, refusing nesting deeper than `max_depth` first (std::runtime_error "<where>:
// JSON nests arrays and objects deeper than N levels ..."). Syntax errors are nlohmann's
// parse_error, for the caller to word. Every JSON dyad reads goes through here (or
// read_json_file, which does).
inline nlohmann::json parse_json(std::string_view text, std::string_view where, std::size_t max_depth = limits::json_depth) {
  if (const auto at = nesting_beyond(text, max_depth))
    throw std::runtime_error(std::string(where) + ": JSON nests arrays and objects deeper than " + std::to_string(max_depth) +
                             " levels (at byte " + std::to_string(*at) + "), dyad's nesting limit");
  return nlohmann::json::parse(text.begin(), text.end());
}

// At most 60 characters of a value for an error message, as JSON (control bytes escaped, bad
// UTF-8 replaced). Never dumps the whole value: written element by element until the budget
// is spent, so neither a huge value nor a deep one (each level writes at least one character,
// so the recursion stops within 61 levels) costs more than the excerpt.
inline std::string json_excerpt(const nlohmann::json& v) {
  constexpr std::size_t budget = 60;
  std::string out;
  auto full = [&] { return out.size() > budget; };
  auto scalar = [&](const nlohmann::json& x) {
    if (x.is_string()) {  // a prefix of a long string (the budget's worth is enough)
      const auto& s = x.get_ref<const std::string&>();
      out += nlohmann::json(s.substr(0, budget + 1)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else {
      out += x.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
  };
  auto write = [&](auto& self, const nlohmann::json& x) -> void {
    if (x.is_array()) {
      out += '[';
      bool first = true;
      for (const auto& e : x) {
        if (full()) return;
        if (!first) out += ',';
        first = false;
        self(self, e);
      }
      out += ']';
    } else if (x.is_object()) {
      out += '{';
      bool first = true;
      for (const auto& [key, e] : x.items()) {
        if (full()) return;
        if (!first) out += ',';
        first = false;
        scalar(nlohmann::json(key.substr(0, budget + 1)));
        out += ':';
        if (full()) return;
        self(self, e);
      }
      out += '}';
    } else {
      scalar(x);
    }
  };
  write(write, v);
  return out.size() > budget ? out.substr(0, budget - 3) + "..." : out;
}

// The JSON document in the file at `path`; `what` names the file in the open error ("the
// ingest spec"). A syntax error gives the byte offset nlohmann reports; nesting deeper than
// limits::json_depth is refused (parse_json).
inline nlohmann::json read_json_file(const std::filesystem::path& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    throw std::runtime_error(path.string() + ": cannot open " + std::string(what) +
                             (err ? std::string(": ") + std::strerror(err) : std::string()));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw std::runtime_error(path.string() + ": cannot read " + std::string(what));
  try {
    return parse_json(text.view(), path.string());
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
