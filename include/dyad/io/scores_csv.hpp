// The per-segment score table that `dyad score` writes and `dyad evaluate` / `dyad report`
// read: car,segment,label,rec_error,<target>_error...,latent_score,pattern_score,combined_score.
#pragma once

#include "dyad/core/atomic_file.hpp"
#include "dyad/core/excerpt.hpp"
#include "dyad/core/text.hpp"
#include "dyad/data/dataset.hpp"
#include "dyad/detect/scores.hpp"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <unordered_map>
#include <utility>
#include <map>
#include <string>
#include <vector>

namespace dyad {

// Writes one row per segment of `data`, in dataset order, atomically.
inline void write_scores_csv(const std::filesystem::path& path, const Dataset& data, const Scores& s) {
  if (s.size() != data.size()) throw std::invalid_argument("dyad::write_scores_csv: scores and data differ in length");
  write_file_atomically(path, [&](std::ostream& os) {
    std::string out = data.labelled() ? "car,segment,label,rec_error" : "car,segment,rec_error";
    for (const auto& t : s.targets) out += "," + t + "_error";
    const bool latent = s.latent_score.size() == s.rec_error.size();
    const bool pattern = s.pattern_score.size() == s.rec_error.size();
    const bool combined = s.combined_score.size() == s.rec_error.size();
    if (latent) out += ",latent_score";
    if (pattern) out += ",pattern_score";
    if (combined) out += ",combined_score";
    out += '\n';
    char num[32];
    auto put = [&](double v) {
      out += ',';
      out.append(num, std::to_chars(num, num + sizeof num, v).ptr);
    };
    for (std::size_t i = 0; i < data.size(); ++i) {
      const auto& m = data.meta(i);
      out += text::csv_quote(m.car) + "," + std::to_string(m.segment);
      if (data.labelled()) out += "," + std::to_string(m.label);
      const auto r = static_cast<Eigen::Index>(i);
      put(s.rec_error[r]);
      for (Eigen::Index k = 0; k < s.target_error.cols(); ++k) put(s.target_error(r, k));
      if (latent) put(s.latent_score[r]);
      if (pattern) put(s.pattern_score[r]);
      if (combined) put(s.combined_score[r]);
      out += '\n';
      if (out.size() > (1 << 20)) {
        os.write(out.data(), static_cast<std::streamsize>(out.size()));
        out.clear();
      }
    }
    os.write(out.data(), static_cast<std::streamsize>(out.size()));
  });
}

// Reads a score table from a stream (`name` stands for the file in errors, which name the line
// and column). The scores are parsed as double, the writer's shortest round-trip text, so
// evaluate and report rank exactly the values score computed. car and segment are required,
// label (0 / 1) is optional (without it the table is unlabelled); every other column is a
// score, finite in each row, and a (car, segment) appears once.
inline ScoreTable read_scores_csv(std::istream& in, std::string_view name) {
  text::LineReader reader(in, name);
  std::vector<std::string_view> fields;
  text::FieldScratch scratch;
  std::vector<std::string> header;
  const text::CsvErrors fail{name, header};
  constexpr std::size_t whole_line = text::CsvErrors::whole_line, none = static_cast<std::size_t>(-1);
  std::size_t line_no = 0;
  std::string_view line;
  auto next_row = [&] {
    while (reader.next(line)) {
      ++line_no;
      if (line_no == 1 && line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
      if (text::trim(line).empty()) continue;
      if (const auto bad = text::split_fields(line, fields, scratch)) fail(line_no, *bad, "unterminated or malformed quoted field");
      return true;
    }
    return false;
  };
  if (!next_row()) fail(line_no == 0 ? 1 : line_no, whole_line, "empty file, expected a header line");
  header.assign(fields.begin(), fields.end());
  const std::size_t header_line = line_no;
  std::size_t car_col = none, seg_col = none, label_col = none;
  std::vector<std::size_t> score_cols;
  ScoreTable t;
  std::vector<std::vector<double>*> columns;
  for (std::size_t c = 0; c < header.size(); ++c) {
    std::size_t* meta = header[c] == "car"       ? &car_col
                        : header[c] == "segment" ? &seg_col
                        : header[c] == "label"   ? &label_col
                                                 : nullptr;
    if (meta && *meta != none) fail(header_line, c, "duplicate column name (also column " + std::to_string(*meta + 1) + ")");
    if (meta) {
      *meta = c;
      continue;
    }
    if (header[c].empty()) fail(header_line, c, "empty column name");
    const auto [it, fresh] = t.columns.try_emplace(header[c]);
    if (!fresh) fail(header_line, c, "duplicate column name");
    score_cols.push_back(c);
    columns.push_back(&it->second);
  }
  for (const auto& [col, what] : {std::pair{car_col, "car"}, std::pair{seg_col, "segment"}})
    if (col == none) fail(header_line, whole_line, std::string("missing required column '") + what + "'");
  if (!t.has("rec_error")) fail(header_line, whole_line, "no column 'rec_error' (is this a score file?)");
  std::unordered_map<std::string, std::unordered_map<std::int64_t, std::size_t>> seen;  // car -> segment -> line
  while (next_row()) {
    if (fields.size() != header.size())
      fail(line_no, std::min(fields.size(), header.size()),
           (fields.size() < header.size() ? "missing field: " : "too many fields: ") + std::string("the line has ") +
               std::to_string(fields.size()) + " fields, the header " + std::to_string(header.size()));
    const std::string_view car = fields[car_col];
    if (car.empty()) fail(line_no, car_col, "missing value");
    std::int64_t segment = 0;
    if (const auto st = text::parse_number(fields[seg_col], segment); st != text::NumberStatus::ok)
      fail(line_no, seg_col,
           "'" + detail::excerpt(fields[seg_col]) +
               (st == text::NumberStatus::out_of_range ? "' is out of range for a 64-bit integer" : "' is not an integer"));
    int label = 0;
    if (label_col != none) {
      if (fields[label_col] != "0" && fields[label_col] != "1")
        fail(line_no, label_col, "'" + detail::excerpt(fields[label_col]) + "' is not 0 or 1");
      label = fields[label_col] == "1";
    }
    if (const auto [it, fresh] = seen[std::string(car)].try_emplace(segment, line_no); !fresh)
      fail(line_no, seg_col,
           "car '" + detail::excerpt(car) + "' segment " + std::to_string(segment) + " already has a row (line " +
               std::to_string(it->second) + "); a score file has one row per segment");
    for (std::size_t k = 0; k < score_cols.size(); ++k) {
      const std::string_view f = fields[score_cols[k]];
      double v = 0;
      const auto st = text::parse_number(f, v);
      if (st != text::NumberStatus::ok || !std::isfinite(v))
        fail(line_no, score_cols[k],
             f.empty() ? std::string("missing value") : "'" + detail::excerpt(f) + "' is not a finite number");
      columns[k]->push_back(v);
    }
    t.cars.emplace_back(car);
    t.segments.push_back(segment);
    t.labels.push_back(label);
  }
  if (t.size() == 0) fail(line_no, whole_line, "no score rows after the header");
  t.labelled = label_col != none;
  return t;
}

inline ScoreTable read_scores_csv(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": cannot open the score file");
  return read_scores_csv(in, path.string());
}

}  // namespace dyad
