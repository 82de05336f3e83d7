// The scores a model adds to its reconstruction error, fitted on the training segments' own
// Scores after training: latent_score (Mahalanobis distance of mu), pattern_score (the same
// on the log per-target errors) and combined_score (rec_error and pattern_score, z-scored and
// averaged). A fault can reconstruct well yet encode, or err, in an unusual way.
#pragma once

#include "dyad/detect/latent.hpp"
#include "dyad/detect/scores.hpp"

#include <Eigen/Core>

#include <cmath>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace dyad::detect {

class SegmentScorers {
 public:
  SegmentScorers() = default;  // not fitted: adds nothing

  // Restores fitted scorers (a checkpoint's). The combiner may be unfitted (empty means).
  SegmentScorers(LatentScorer latent, LatentScorer pattern, ScoreCombiner combiner)
      : latent_(std::move(latent)), pattern_(std::move(pattern)), combiner_(std::move(combiner)), fitted_(true) {}

  // Fits on the training segments' scores. Too few or degenerate segments for the statistics
  // leave it unfitted (only rec_error is produced), as a tiny training set must not fail fit().
  static SegmentScorers fit(Scores training) {
    if (training.size() < 2) return {};
    try {
      SegmentScorers s(LatentScorer::fit(training.mu), LatentScorer::fit(log_errors(training.target_error)), {});
      s.add_to(training);
      s.combiner_ = ScoreCombiner::fit(std::span<const double>(training.rec_error.data(), training.size()),
                                       std::span<const double>(training.pattern_score.data(), training.size()));
      return s;
    } catch (const std::invalid_argument&) {
      return {};
    }
  }

  bool fitted() const { return fitted_; }
  bool combined() const { return fitted_ && !combiner_.means().empty(); }  // combined_score produced
  const LatentScorer& latent() const { return latent_; }
  const LatentScorer& pattern() const { return pattern_; }
  const ScoreCombiner& combiner() const { return combiner_; }

  // Fills latent_score, pattern_score and combined_score of `s` from its mu, target_error and
  // rec_error (clears them when not fitted).
  void add_to(Scores& s) const {
    s.latent_score.resize(0);
    s.pattern_score.resize(0);
    s.combined_score.resize(0);
    if (!fitted_) return;
    const std::vector<double> latent = latent_.score(s.mu), pattern = pattern_.score(log_errors(s.target_error));
    s.latent_score = Eigen::Map<const Eigen::VectorXd>(latent.data(), s.mu.rows());
    s.pattern_score = Eigen::Map<const Eigen::VectorXd>(pattern.data(), s.mu.rows());
    if (combiner_.means().empty()) return;
    const std::vector<double> combined = combiner_.combine(std::span<const double>(s.rec_error.data(), s.size()), pattern);
    s.combined_score = Eigen::Map<const Eigen::VectorXd>(combined.data(), s.mu.rows());
  }

  // Which signals a segment gets wrong, on a log scale (errors span decades; +1e-12 keeps a
  // perfectly reconstructed signal finite). A fault shows as an unusual pattern across them.
  // std::log per entry: Eigen's vectorised log rounds differently from its scalar tail, which
  // would make a segment's score depend on where its row falls in the table.
  static Eigen::MatrixXd log_errors(const Eigen::MatrixXd& target_error) {
    return target_error.unaryExpr([](double e) { return std::log(e + 1e-12); });
  }

 private:
  LatentScorer latent_, pattern_;
  ScoreCombiner combiner_;
  bool fitted_ = false;
};

}  // namespace dyad::detect
