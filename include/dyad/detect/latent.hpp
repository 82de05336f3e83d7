// A second fault score from the latent space, and a way to blend it with the reconstruction
// error. A faulty pack can be reconstructed well yet encode to an unusual latent mean `mu`;
// its Mahalanobis distance to the training segments' latent cloud catches that. Both classes
// keep their state as plain vectors so a model checkpoint can store them.
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace dyad::detect {

namespace detail {
inline void require_finite_rows(const Eigen::Ref<const Eigen::MatrixXd>& x, const char* fn) {
  for (Eigen::Index r = 0; r < x.rows(); ++r)
    if (!x.row(r).allFinite())
      throw std::invalid_argument(std::string(fn) + ": latent row " + std::to_string(r) + " is not finite");
}
}  // namespace detail

// Mahalanobis distance of a segment's latent mean to the training segments' latent means.
class LatentScorer {
 public:
  // Ridge, relative to the mean latent variance, added to the covariance diagonal. Collapsed
  // (near-constant) latent dimensions would otherwise have almost no variance and let noise in
  // them dominate the distance; 1e-3 shrinks distances along a dimension of average variance by 0.05%.
  static constexpr double kDefaultRidge = 1e-3;

  LatentScorer() = default;

  // Restores a scorer from mean() and covariance() (row-major Z x Z, ridge included).
  LatentScorer(std::vector<double> mean, std::vector<double> covariance) : mean_(std::move(mean)), cov_(std::move(covariance)) {
    const std::size_t z = mean_.size();
    if (z == 0 || cov_.size() != z * z)
      throw std::invalid_argument("dyad::detect::LatentScorer: mean has " + std::to_string(z) + " entries, covariance " +
                                  std::to_string(cov_.size()) + " (expected Z >= 1 and Z*Z)");
    for (const auto* v : {&mean_, &cov_})
      for (double x : *v)
        if (!std::isfinite(x)) throw std::invalid_argument("dyad::detect::LatentScorer: mean or covariance is not finite");
    const auto zi = static_cast<Eigen::Index>(z);
    const Eigen::LLT<Eigen::MatrixXd> llt(Eigen::Map<const Eigen::MatrixXd>(cov_.data(), zi, zi));
    if (llt.info() != Eigen::Success)
      throw std::invalid_argument("dyad::detect::LatentScorer: covariance is not positive definite (use a ridge > 0)");
    chol_ = llt.matrixL();
  }

  // Fits on the latent means of training segments, one row per segment ([n x Z], n >= 2):
  // mean, unbiased covariance S, then S + ridge * trace(S) / Z * I.
  static LatentScorer fit(const Eigen::Ref<const Eigen::MatrixXd>& mu, double ridge = kDefaultRidge) {
    const char* fn = "dyad::detect::LatentScorer::fit";
    if (mu.rows() < 2 || mu.cols() < 1)
      throw std::invalid_argument(std::string(fn) + ": need at least 2 segments and 1 latent dimension, got [" +
                                  std::to_string(mu.rows()) + " x " + std::to_string(mu.cols()) + "]");
    if (!(ridge >= 0.0 && std::isfinite(ridge)))
      throw std::invalid_argument(std::string(fn) + ": ridge must be finite and >= 0, got " + std::to_string(ridge));
    detail::require_finite_rows(mu, fn);
    const Eigen::RowVectorXd mean = mu.colwise().mean();
    const Eigen::MatrixXd centred = mu.rowwise() - mean;
    Eigen::MatrixXd s = (centred.transpose() * centred) / static_cast<double>(mu.rows() - 1);
    s = (0.5 * (s + s.transpose())).eval();  // exactly symmetric, so the stored state is too
    s.diagonal().array() += ridge * s.trace() / static_cast<double>(s.rows());
    return LatentScorer(std::vector<double>(mean.data(), mean.data() + mean.size()),
                        std::vector<double>(s.data(), s.data() + s.size()));
  }

  // Distance sqrt((x - mean)^T Sigma^-1 (x - mean)) for every row of mu ([n x Z]).
  std::vector<double> score(const Eigen::Ref<const Eigen::MatrixXd>& mu) const {
    const char* fn = "dyad::detect::LatentScorer::score";
    if (mean_.empty()) throw std::runtime_error(std::string(fn) + ": scorer is not fitted");
    if (mu.cols() != static_cast<Eigen::Index>(dim()))
      throw std::invalid_argument(std::string(fn) + ": latent has " + std::to_string(mu.cols()) + " columns, scorer " +
                                  std::to_string(dim()));
    detail::require_finite_rows(mu, fn);
    const Eigen::Map<const Eigen::RowVectorXd> mean(mean_.data(), static_cast<Eigen::Index>(mean_.size()));
    // |L^-1 d| = Mahalanobis distance. One solve per segment (O(Z^2) each): a blocked solve of
    // all of them would round a segment's score differently with the others scored beside it,
    // and scoring across ranks (dyad/dist/score_across.hpp) must match one process bit for bit.
    std::vector<double> dist(static_cast<std::size_t>(mu.rows()));
    Eigen::VectorXd d(mu.cols());
    for (Eigen::Index i = 0; i < mu.rows(); ++i) {
      d = (mu.row(i) - mean).transpose();
      chol_.triangularView<Eigen::Lower>().solveInPlace(d);
      dist[static_cast<std::size_t>(i)] = d.norm();
    }
    return dist;
  }

  std::size_t dim() const { return mean_.size(); }
  const std::vector<double>& mean() const { return mean_; }
  const std::vector<double>& covariance() const { return cov_; }

 private:
  std::vector<double> mean_, cov_;
  // The Cholesky factor L, kept as a plain matrix: a default Eigen::LLT holds an
  // uninitialised status that copying an unfitted scorer would read (UBSan).
  Eigen::MatrixXd chol_;
};

// Blends two scores of different units (e.g. rec_error and latent distance): z-scores each with
// a mean and standard deviation fitted on normal (training) data, then averages the z-scores.
class ScoreCombiner {
 public:
  ScoreCombiner() = default;

  // Restores from means() and stds() (two entries each).
  ScoreCombiner(std::vector<double> means, std::vector<double> stds) : means_(std::move(means)), stds_(std::move(stds)) {
    if (means_.size() != 2 || stds_.size() != 2)
      throw std::invalid_argument("dyad::detect::ScoreCombiner: needs 2 means and 2 stds, got " + std::to_string(means_.size()) +
                                  " and " + std::to_string(stds_.size()));
    for (std::size_t i = 0; i < 2; ++i)
      if (!std::isfinite(means_[i]) || !std::isnormal(stds_[i]) || !(stds_[i] > 0.0))
        throw std::invalid_argument("dyad::detect::ScoreCombiner: score " + std::to_string(i) +
                                    " needs a finite mean and a finite std > 0 (not subnormal)");
  }

  // Mean and sample standard deviation (n - 1) of each score on normal data.
  static ScoreCombiner fit(std::span<const double> first, std::span<const double> second) {
    std::vector<double> means, stds;
    for (auto s : {first, second}) {
      const std::string which = means.empty() ? "first" : "second";
      if (s.size() < 2)
        throw std::invalid_argument("dyad::detect::ScoreCombiner::fit: the " + which + " score needs at least 2 values");
      double sum = 0.0;
      for (double v : s) {
        if (!std::isfinite(v))
          throw std::invalid_argument("dyad::detect::ScoreCombiner::fit: the " + which + " score is not finite");
        sum += v;
      }
      const double mean = sum / static_cast<double>(s.size());
      double ss = 0.0;
      for (double v : s) ss += (v - mean) * (v - mean);
      const double sd = std::sqrt(ss / static_cast<double>(s.size() - 1));
      if (!std::isnormal(sd) || !(sd > 0.0))  // a subnormal sd is a constant score's rounding noise
        throw std::invalid_argument("dyad::detect::ScoreCombiner::fit: the " + which + " score is constant");
      means.push_back(mean);
      stds.push_back(sd);
    }
    return ScoreCombiner(std::move(means), std::move(stds));
  }

  // 0.5 * (z(first) + z(second)), element by element.
  std::vector<double> combine(std::span<const double> first, std::span<const double> second) const {
    if (means_.empty()) throw std::runtime_error("dyad::detect::ScoreCombiner::combine: combiner is not fitted");
    if (first.size() != second.size())
      throw std::invalid_argument("dyad::detect::ScoreCombiner::combine: " + std::to_string(first.size()) + " first scores but " +
                                  std::to_string(second.size()) + " second scores");
    std::vector<double> out(first.size());
    for (std::size_t i = 0; i < out.size(); ++i)
      out[i] = 0.5 * ((first[i] - means_[0]) / stds_[0] + (second[i] - means_[1]) / stds_[1]);
    return out;
  }

  const std::vector<double>& means() const { return means_; }
  const std::vector<double>& stds() const { return stds_; }

 private:
  std::vector<double> means_, stds_;
};

}  // namespace dyad::detect
