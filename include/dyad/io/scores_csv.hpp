// The per-segment score table that `dyad score` writes and `dyad evaluate` / `dyad report`
// read: car,segment,label,rec_error,<target>_error...,latent_score,pattern_score,combined_score.
#pragma once

#include "dyad/data/csv.hpp"
#include "dyad/detect/scores.hpp"
#include "dyad/io/atomic_file.hpp"
#include "dyad/model.hpp"

#include <charconv>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace dyad {

// Writes one row per segment of `data`, in dataset order, atomically.
inline void write_scores_csv(const std::filesystem::path& path, const Dataset& data, const Scores& s) {
  if (s.size() != data.size()) throw std::invalid_argument("dyad::write_scores_csv: scores and data differ in length");
  write_file_atomically(path, [&](std::ostream& os) {
    std::string out = "car,segment,label,rec_error";
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
      out += detail::csv_quote(m.car) + "," + std::to_string(m.segment) + "," + std::to_string(m.label);
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

// Reads a score table; errors name the file, line and column (the long-CSV reader does the
// parsing: each row is a one-step "segment").
inline ScoreTable read_scores_csv(const std::filesystem::path& path) {
  const Dataset d = read_csv(path);
  if (!d.has_column("rec_error")) throw std::invalid_argument(path.string() + ": no column 'rec_error' (is this a score file?)");
  ScoreTable t;
  for (std::size_t i = 0; i < d.size(); ++i) {
    if (d.length(i) != 1)
      throw std::invalid_argument(path.string() + ": car '" + detail::excerpt(d.meta(i).car) + "' segment " +
                                  std::to_string(d.meta(i).segment) + " has " + std::to_string(d.length(i)) +
                                  " rows; a score file has one row per segment");
    t.cars.push_back(d.meta(i).car);
    t.segments.push_back(d.meta(i).segment);
    t.labels.push_back(d.meta(i).label);
  }
  for (std::size_t c = 0; c < d.num_columns(); ++c) {
    auto& col = t.columns[d.columns()[c]];
    for (std::size_t i = 0; i < d.size(); ++i) col.push_back(d.values(i)(0, static_cast<Eigen::Index>(c)));
  }
  return t;
}

}  // namespace dyad
