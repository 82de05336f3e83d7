// The ingest spec: how a telematics export maps onto dyad's signals and how its charging
// sessions become fixed-length segments (`dyad ingest --spec`). JSON keys:
//
//   columns           {dyad name: export column}; "car" and "timestamp" required, "mileage" and
//                     "label" (0/1 per row) optional, every other entry is a signal written under
//                     its dyad name (volt, current, soc, max_single_volt, min_single_volt,
//                     max_temp, min_temp, or a name of your own that is not a near miss of one)
//   charging          {"column": C, "values": [...]}: rows whose C is one of the values charge;
//                     without it, rows whose charging-positive current exceeds
//                     charging_threshold_a charge
//   charging_current  "positive" (default) or "negative": the export's sign of charging current;
//                     the output is always charging-positive (Ingestor refuses a sign the data
//                     contradicts, and charging values no row holds)
//   interval_s 10, max_gap_s 60, length 128, stride 64: the resampling grid, the longest hole
//                     bridged, the window length in steps and the step between windows
//   delimiter         "," ";" "\t" or "auto" (default: detected from the header line)
//   timestamp_unit    "auto" (default), "iso8601", "s" or "ms"
//   scale             {dyad name: factor} applied on reading (e.g. {"soc": 100} for a 0-1 SOC)
//   max_disorder_s    how far back in time a car's row may arrive and still be sorted in (3600)
#pragma once

#include "dyad/core/excerpt.hpp"
#include "dyad/core/json.hpp"
#include "dyad/core/text.hpp"
#include "dyad/ingest/timestamp.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <cctype>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace dyad::ingest {

// dyad's physical signals in their canonical (simulator and long CSV) order.
inline const std::vector<std::string>& known_signals() {
  static const std::vector<std::string> s = {"volt",     "current", "soc", "max_single_volt", "min_single_volt",
                                             "max_temp", "min_temp"};
  return s;
}

struct Spec {
  std::string source = "the ingest spec";      // where it was read from, for errors
  std::string car, timestamp, mileage, label;  // export column names; mileage, label may be empty
  // Output signals: dyad name and export column, known signals first in canonical order.
  std::vector<std::pair<std::string, std::string>> signals;
  std::map<std::string, double> scale;  // dyad name -> factor
  std::string charging_column;          // empty: charging from the current's sign
  std::vector<std::string> charging_values;
  bool current_negative = false;
  double charging_threshold_a = 0.5;
  double interval_s = 10, max_gap_s = 60, max_disorder_s = 3600;
  int length = 128, stride = 64;
  char delimiter = 0;  // 0: detect
  TimestampUnit timestamp_unit = TimestampUnit::detect;

  // Index in `signals` of dyad signal `name`, or -1.
  int signal_index(std::string_view name) const {
    for (std::size_t i = 0; i < signals.size(); ++i)
      if (signals[i].first == name) return static_cast<int>(i);
    return -1;
  }
};

namespace detail {
// The dyad name that `name` misses by a letter or two, or by case ("Volt", "max_tmp", "lable").
inline std::optional<std::string_view> near_miss(std::string_view name) {
  static constexpr std::string_view names[] = {"volt",     "current",  "soc", "max_single_volt", "min_single_volt",
                                               "max_temp", "min_temp", "car", "timestamp",       "mileage",
                                               "label"};
  std::string lower(name);
  std::ranges::transform(lower, lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const auto n : names) {
    const std::size_t d = dyad::detail::edit_distance(lower, n);
    if (d == 0 || (d <= 2 && n.size() > 3 && lower.size() > 3)) return n;
  }
  return std::nullopt;
}

inline constexpr std::string_view spec_keys[] = {"columns",        "charging", "charging_current", "interval_s",
                                                 "max_gap_s",      "length",   "stride",           "delimiter",
                                                 "timestamp_unit", "scale",    "max_disorder_s",   "charging_threshold_a"};

inline void check_keys(const nlohmann::json& j, std::string_view where, std::span<const std::string_view> keys) {
  for (const auto& [key, value] : j.items()) {
    if (std::find(keys.begin(), keys.end(), key) != keys.end()) continue;
    std::string_view best = keys.front();
    for (const auto k : keys)
      if (dyad::detail::edit_distance(key, k) < dyad::detail::edit_distance(key, best)) best = k;
    dyad::detail::json_key_error(where, dyad::detail::excerpt(key, 60), "unknown key (did you mean '" + std::string(best) + "'?)");
  }
}
}  // namespace detail

inline Spec spec_from_json(const nlohmann::json& j, const std::string& where = "spec") {
  using namespace dyad::detail;
  if (!j.is_object()) throw std::invalid_argument(where + ": expected a JSON object");
  detail::check_keys(j, where, detail::spec_keys);
  Spec s;
  s.source = where;
  const nlohmann::json& cols = json_member(j, where, "columns");
  if (!cols.is_object()) json_key_error(where, "columns", "must be an object {dyad name: export column}");
  std::vector<std::pair<std::string, std::string>> extra;
  for (const auto& [name, value] : cols.items()) {
    const std::string column = json_string(value, where, "columns." + name);
    if (column.empty()) json_key_error(where, "columns." + name, "is empty");
    if (name == "car") s.car = column;
    else if (name == "timestamp") s.timestamp = column;
    else if (name == "mileage") s.mileage = column;
    else if (name == "label") s.label = column;
    else if (name == "segment" || name == "t")
      json_key_error(where, "columns." + name, "is written by ingest, not read from the export");
    else if (std::find(known_signals().begin(), known_signals().end(), name) == known_signals().end()) {
      // A near miss of one of dyad's names is a typo, not a signal of the user's own.
      if (const auto near = detail::near_miss(name))
        json_key_error(where, "columns." + dyad::detail::excerpt(name, 60),
                       "is not a dyad name; did you mean '" + std::string(*near) +
                           "'? (a signal of your own needs a name that is not a near miss of volt, current, soc, "
                           "max_single_volt, min_single_volt, max_temp, min_temp, car, timestamp, mileage or label)");
      // It becomes a column name of the long CSV, which must read back as it was written.
      const bool plain =
          !name.empty() && name.front() != ' ' && name.back() != ' ' && std::all_of(name.begin(), name.end(), [](char c) {
            const auto u = static_cast<unsigned char>(c);
            return u >= 0x20 && u != 0x7f && c != ',' && c != ';' && c != '|' && c != '"';
          });
      if (!plain)
        throw std::invalid_argument(where + ": key 'columns': the signal name '" + dyad::detail::excerpt(name, 60) +
                                    "' cannot be a column of the long CSV (it must be non-empty, without control characters, "
                                    "quotes, ',', ';', '|' or surrounding spaces)");
      extra.emplace_back(name, column);
    }
  }
  for (const std::string& name : known_signals())
    if (cols.contains(name)) s.signals.emplace_back(name, cols.at(name).get<std::string>());
  s.signals.insert(s.signals.end(), extra.begin(), extra.end());
  if (s.car.empty()) json_key_error(where, "columns.car", "is missing (the export's car id column)");
  if (s.timestamp.empty()) json_key_error(where, "columns.timestamp", "is missing (the export's time column)");
  if (s.signals.empty()) json_key_error(where, "columns", "maps no signal (e.g. \"volt\": \"pack_voltage\")");
  if (j.contains("charging")) {
    const auto& c = j.at("charging");
    if (!c.is_object()) json_key_error(where, "charging", "must be {\"column\": ..., \"values\": [...]}");
    static constexpr std::string_view keys[] = {"column", "values"};
    detail::check_keys(c, where + ": charging", keys);
    s.charging_column = json_string(json_member(c, where + ": charging", "column"), where, "charging.column");
    s.charging_values = json_strings(json_member(c, where + ": charging", "values"), where, "charging.values");
    if (s.charging_values.empty()) json_key_error(where, "charging.values", "lists no value");
  }
  if (j.contains("charging_current")) {
    const std::string sign = json_string(j.at("charging_current"), where, "charging_current");
    if (sign != "positive" && sign != "negative")
      json_key_error(where, "charging_current", "must be \"positive\" or \"negative\", got \"" + excerpt(sign, 40) + "\"");
    s.current_negative = sign == "negative";
  }
  if (s.charging_column.empty() && s.signal_index("current") < 0)
    json_key_error(where, "charging", "is needed when no \"current\" column is mapped (charging is otherwise told by the current)");
  auto positive = [&](const char* key, double& field, double hi) {
    if (!j.contains(key)) return;
    field = json_number(j.at(key), where, key);
    if (!(field > 0) || field > hi)
      json_key_error(where, key, "must be in (0, " + dyad::text::number_text(hi) + "], got " + json_excerpt(j.at(key)));
  };
  positive("interval_s", s.interval_s, 86400);
  positive("max_gap_s", s.max_gap_s, 86400 * 7);
  positive("max_disorder_s", s.max_disorder_s, 86400 * 7);
  positive("charging_threshold_a", s.charging_threshold_a, 1000);
  if (j.contains("length")) s.length = json_integer<int>(j.at("length"), where, "length", 2, 1 << 20);
  if (j.contains("stride")) s.stride = json_integer<int>(j.at("stride"), where, "stride", 1, 1 << 20);
  if (s.max_gap_s < s.interval_s)
    json_key_error(where, "max_gap_s",
                   "(" + dyad::text::number_text(s.max_gap_s) + ") is below interval_s (" + dyad::text::number_text(s.interval_s) +
                       "): no two samples could be joined");
  if (s.max_gap_s / s.interval_s > 1e4)
    json_key_error(where, "max_gap_s",
                   "spans more than 10000 intervals (" + dyad::text::number_text(s.max_gap_s) + " s at interval_s " +
                       dyad::text::number_text(s.interval_s) + ")");
  if (j.contains("delimiter")) {
    const std::string d = json_string(j.at("delimiter"), where, "delimiter");
    if (d == "auto") s.delimiter = 0;
    else if (d == "," || d == ";" || d == "\t" || d == "|") s.delimiter = d[0];
    else if (d == "tab") s.delimiter = '\t';
    else
      json_key_error(where, "delimiter",
                     "must be \",\", \";\", \"\\t\", \"|\" or \"auto\", got " + json_excerpt(j.at("delimiter")));
  }
  if (j.contains("timestamp_unit")) {
    const std::string u = json_string(j.at("timestamp_unit"), where, "timestamp_unit");
    if (u == "auto") s.timestamp_unit = TimestampUnit::detect;
    else if (u == "iso8601") s.timestamp_unit = TimestampUnit::iso8601;
    else if (u == "s") s.timestamp_unit = TimestampUnit::seconds;
    else if (u == "ms") s.timestamp_unit = TimestampUnit::milliseconds;
    else
      json_key_error(where, "timestamp_unit",
                     "must be \"auto\", \"iso8601\", \"s\" or \"ms\", got " + json_excerpt(j.at("timestamp_unit")));
  }
  if (j.contains("scale")) {
    const auto& sc = j.at("scale");
    if (!sc.is_object()) json_key_error(where, "scale", "must be an object {dyad name: factor}");
    for (const auto& [name, value] : sc.items()) {
      if (s.signal_index(name) < 0 && name != "mileage")
        json_key_error(where, "scale." + name, "is not a mapped signal or mileage");
      const double f = json_number(value, where, "scale." + name);
      if (f == 0) json_key_error(where, "scale." + name, "must not be 0");
      s.scale[name] = f;
    }
  }
  return s;
}

inline Spec spec_from_file(const std::filesystem::path& path) {
  const nlohmann::json j = dyad::detail::read_json_file(path, "the ingest spec");
  return spec_from_json(j, path.string());
}

}  // namespace dyad::ingest
