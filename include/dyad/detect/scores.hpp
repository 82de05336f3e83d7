// What scoring produces and the detection protocol reads: the per-segment Scores of a model,
// the ScoreTable (scores with their segments' car, segment and label, as `dyad score` writes
// them), and the names of the scores from the weakest to the strongest.
#pragma once

#include "dyad/data/dataset.hpp"

#include <Eigen/Core>

#include <array>
#include <cstdint>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dyad {

// Per-segment results of score(), one row per segment in dataset order.
struct Scores {
  std::vector<std::string> targets;  // the reconstructed columns
  Eigen::VectorXd rec_error;         // MSE over T x targets (dyad-method §6), normalised units
  Eigen::MatrixXd target_error;      // [n x targets]: MSE of each target column over T
  Eigen::MatrixXd mu, log_var;       // [n x Z]
  Eigen::VectorXd latent_score;      // Mahalanobis distance of mu to the training latents
  Eigen::VectorXd pattern_score;     // Mahalanobis distance of the log per-target errors to training's
  Eigen::VectorXd combined_score;    // mean of the z-scored rec_error and pattern_score
  std::size_t size() const { return static_cast<std::size_t>(rec_error.size()); }
};

namespace detect {

// The segment scores, weakest first. The last one a model produces is the strongest, and the
// one cars are ranked by: combined_score when the latent scorers were fitted, else rec_error.
inline constexpr std::array<std::string_view, 4> score_names = {"rec_error", "latent_score", "pattern_score", "combined_score"};

// Named segment scores, in score_names order: what evaluate_scores takes.
using ScoreColumns = std::vector<std::pair<std::string, std::vector<double>>>;

// The scores of the listed segments (rows of `s`).
inline ScoreColumns score_columns(const Scores& s, std::span<const std::size_t> rows) {
  ScoreColumns out;
  auto put = [&](std::string_view name, const Eigen::VectorXd& v) {
    if (v.size() != s.rec_error.size()) return;  // not produced (no fitted latent scorers)
    std::vector<double> x;
    x.reserve(rows.size());
    for (std::size_t i : rows) x.push_back(v[static_cast<Eigen::Index>(i)]);
    out.emplace_back(name, std::move(x));
  };
  put(score_names[0], s.rec_error);
  put(score_names[1], s.latent_score);
  put(score_names[2], s.pattern_score);
  put(score_names[3], s.combined_score);
  return out;
}

}  // namespace detect

// Segment scores with each segment's car, number and label: what `dyad score` writes and
// `evaluate` / `report` read back, in double, so every command ranks the same values.
struct ScoreTable {
  std::vector<std::string> cars;
  std::vector<std::int64_t> segments;
  std::vector<int> labels;
  std::map<std::string, std::vector<double>> columns;  // rec_error, latent_score, ...
  bool labelled = true;                                // false: the labels are unknown (all 0), so there is no AUROC

  std::size_t size() const { return cars.size(); }
  bool has(const std::string& name) const { return columns.count(name) > 0; }
  const std::vector<double>& column(const std::string& name, const std::string& source = "scores") const {
    auto it = columns.find(name);
    if (it == columns.end()) throw std::invalid_argument(source + ": no column '" + name + "'");
    return it->second;
  }
};

// The same table in memory, from the scores `s` of the listed segments of `data` (row i of s
// is segments[i]).
inline ScoreTable to_score_table(const Dataset& data, std::span<const std::size_t> segments, const Scores& s) {
  if (segments.size() != s.size())
    throw std::invalid_argument("dyad::to_score_table: " + std::to_string(s.size()) + " scores for " +
                                std::to_string(segments.size()) + " segments");
  ScoreTable t;
  t.labelled = data.labelled();
  for (std::size_t i : segments) {
    t.cars.push_back(data.meta(i).car);
    t.segments.push_back(data.meta(i).segment);
    t.labels.push_back(data.meta(i).label);
  }
  std::vector<std::size_t> rows(s.size());
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = i;
  for (auto& [name, values] : detect::score_columns(s, rows)) t.columns[name] = std::move(values);
  for (Eigen::Index k = 0; k < s.target_error.cols(); ++k)
    t.columns[s.targets[static_cast<std::size_t>(k)] + "_error"].assign(s.target_error.col(k).data(),
                                                                        s.target_error.col(k).data() + s.size());
  return t;
}
// Every segment of `data`, with its scores.
inline ScoreTable to_score_table(const Dataset& data, const Scores& s) {
  std::vector<std::size_t> all(data.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  return to_score_table(data, all, s);
}

namespace detect {

// The scores a table holds, in score_names order.
inline ScoreColumns score_columns(const ScoreTable& t) {
  ScoreColumns out;
  for (const auto name : score_names)
    if (t.has(std::string(name))) out.emplace_back(name, t.column(std::string(name)));
  return out;
}

}  // namespace detect
}  // namespace dyad
