// dyad::Ensemble<T, Hidden, Latent>: K DyAD networks trained from different seeds on the same
// cars and scored together, so that a verdict does not hinge on one training seed (on simulated
// fleets the seed alone moves a single model's car AUROC by up to 0.2). Each member's segment
// scores are z-scored against its own scores of its training segments and averaged over the
// members; the ensemble is calibrated on those averaged scores. An ensemble of one is a plain
// Model: it scores, saves and loads exactly as the model does, so every dyad command takes both.
#pragma once

#include "dyad/io/ensemble_checkpoint.hpp"
#include "dyad/model.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <numeric>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace dyad {

// Member k's seed: the ensemble's seed plus k times 2^64 / golden ratio, so member 0 is the model
// a single fit with that seed gives, and the members of ensembles with nearby seeds differ.
inline std::uint64_t member_seed(std::uint64_t seed, int k) { return seed + static_cast<std::uint64_t>(k) * 0x9E3779B97F4A7C15ull; }

// Mean and standard deviation of each segment score a member produces (detect::score_names
// order: rec_error, then latent, pattern and combined scores when fitted), over its training
// segments: what turns its scores into z-scores comparable with the other members'.
struct ScoreScale {
  std::vector<double> mean, sd;

  std::size_t size() const { return mean.size(); }
  static ScoreScale fit(const Scores& s) {
    ScoreScale scale;
    for (const Eigen::VectorXd* v : columns(s)) {
      if (v->size() == 0) break;
      const double m = v->mean();
      const double var = v->size() > 1 ? (v->array() - m).square().sum() / static_cast<double>(v->size() - 1) : 0;
      scale.mean.push_back(m);
      scale.sd.push_back(var > 0 && std::isfinite(var) ? std::sqrt(var) : 1.0);  // a constant score only shifts
    }
    return scale;
  }
  // The segment score columns of `s`, in score_names order (empty vectors: not produced).
  static std::array<const Eigen::VectorXd*, 4> columns(const Scores& s) {
    return {&s.rec_error, &s.latent_score, &s.pattern_score, &s.combined_score};
  }
  static std::array<Eigen::VectorXd*, 4> columns(Scores& s) {
    return {&s.rec_error, &s.latent_score, &s.pattern_score, &s.combined_score};
  }
};

template <class T, int Hidden = Eigen::Dynamic, int Latent = Eigen::Dynamic>
class Ensemble {
 public:
  using Member = Model<T, Hidden, Latent>;
  using Scalar = T;
  using Workspace = typename Member::Workspace;

  // `members` untrained networks; member k is initialised from member_seed(config.seed, k).
  explicit Ensemble(ModelConfig config = Member::default_config(), int members = 1) {
    if (members < 1 || members > limits::ensemble)
      throw std::invalid_argument("dyad::Ensemble: " + std::to_string(members) + " members; an ensemble has 1 to " +
                                  std::to_string(limits::ensemble));
    for (int k = 0; k < members; ++k) {
      ModelConfig c = config;
      c.seed = member_seed(config.seed, k);
      members_.emplace_back(std::move(c));
    }
  }
  // A single model: an ensemble of one, with the model's calibration.
  explicit Ensemble(Member model) : calibration_(model.calibration()) {
    model.set_calibration({});
    members_.push_back(std::move(model));
  }
  // Trained members with their score scales and the ensemble's calibration (a checkpoint's).
  // They must share the architecture, columns, normaliser and fitted scores.
  Ensemble(std::vector<Member> members, std::vector<ScoreScale> scales, detect::Calibration calibration = {})
      : members_(std::move(members)), scales_(std::move(scales)) {
    if (members_.empty() || members_.size() > limits::ensemble)
      throw std::invalid_argument("dyad::Ensemble: " + std::to_string(members_.size()) + " members; an ensemble has 1 to " +
                                  std::to_string(limits::ensemble));
    if (members_.size() > 1 && scales_.size() != members_.size())
      throw std::invalid_argument("dyad::Ensemble: " + std::to_string(scales_.size()) + " score scales for " +
                                  std::to_string(members_.size()) + " members");
    for (std::size_t k = 0; k < members_.size(); ++k) check_member(k);
    set_calibration(std::move(calibration));
  }

  int size() const { return static_cast<int>(members_.size()); }
  const Member& member(int k) const { return members_.at(static_cast<std::size_t>(k)); }
  const std::vector<ScoreScale>& scales() const { return scales_; }  // empty for one member
  // Member 0's configuration; member k differs only in its seed, member_seed(config().seed, k).
  const ModelConfig& config() const { return members_[0].config(); }
  const Normalizer& normalizer() const { return members_[0].normalizer(); }
  // Every member's (they share one): for data normalised beforehand.
  void set_normalizer(const Normalizer& n) {
    for (auto& m : members_) m.set_normalizer(n);
  }
  std::vector<std::size_t> resolve_columns(const Dataset& data) const { return members_[0].resolve_columns(data); }
  double scoring_bytes(std::size_t batch, std::size_t steps) const { return members_[0].scoring_bytes(batch, steps); }

  // ---- Calibrated verdicts ------------------------------------------------------------------
  const detect::Calibration& calibration() const { return calibration_; }
  void set_calibration(detect::Calibration c) {
    if (!c.empty() && c.signals() != config().roles.targets())
      throw std::invalid_argument("dyad::Ensemble: the calibration's signals differ from the model's targets");
    calibration_ = std::move(c);
  }
  // As Model::calibrate, on the ensemble's scores.
  void calibrate(const Dataset& data, std::span<const std::size_t> segments = {}, int h_per_mille = 100,
                 const Communicator& comm = single_process());

  // ---- Training -----------------------------------------------------------------------------
  // Trains every member as Model::fit does, one after the other, on the same training cars
  // (the calibration cars are drawn once, with the ensemble's seed), then fits each member's
  // score scale on its training segments and calibrates the ensemble. The report's steps and
  // seconds are the members' sums. Resuming and periodic training states are for single
  // models; a stop request ends the run without a model.
  FitReport fit(const Dataset& data, const ProgressCallback& progress = {}, FitOptions options = {});

  // ---- Scoring ------------------------------------------------------------------------------
  // Every segment score is the mean over the members of their z-scores (ScoreScale); one
  // member's are its own. Per-target errors are the members' mean, in the shared normalised
  // units (so explanations stay ratios of errors); mu and log_var are member 0's.
  Scores score(const Dataset& data, std::size_t batch = 256) const {
    Workspace ws(config().threads);
    return score(ws, data, batch);
  }
  Scores score(const Dataset& data, std::span<const std::size_t> segments, std::size_t batch = 256) const {
    Workspace ws(config().threads);
    return score(ws, data, segments, batch);
  }
  Scores score(Workspace& ws, const Dataset& data, std::size_t batch = 256) const {
    std::vector<std::size_t> all(data.size());
    std::iota(all.begin(), all.end(), std::size_t{0});
    return score(ws, data, all, batch);
  }
  Scores score(Workspace& ws, const Dataset& data, std::span<const std::size_t> segments, std::size_t batch = 256) const;

  // The members' mean reconstruction of one segment, in original units.
  Reconstruction reconstruct(const Dataset& data, std::size_t segment) const;

  // ---- Checkpoints --------------------------------------------------------------------------
  // One member: a plain checkpoint (dyad/io/checkpoint.hpp). More: an ensemble's checkpoint
  // (dyad/io/ensemble_checkpoint.hpp), checksummed likewise.
  void save(const std::filesystem::path& path) const;

  // Reads an ensemble's checkpoint, or any checkpoint load_checkpoint reads as an ensemble of
  // one. Everything is checked before a member is built, each error naming the file, member
  // and key or tensor.
  static Ensemble load(const std::filesystem::path& path, const LoadOptions& options = {});

 private:
  // Member k shares member 0's architecture, columns, normaliser and fitted scores.
  void check_member(std::size_t k) const;

  static void standardise(Scores& s, const ScoreScale& scale) {
    const auto cols = ScoreScale::columns(s);
    for (std::size_t c = 0; c < scale.size(); ++c) *cols[c] = (cols[c]->array() - scale.mean[c]) / scale.sd[c];
  }

  std::vector<Member> members_;
  std::vector<ScoreScale> scales_;  // one per member when there are several
  detect::Calibration calibration_;
};

template <class T, int Hidden, int Latent>
void Ensemble<T, Hidden, Latent>::calibrate(const Dataset& data, std::span<const std::size_t> segments, int h_per_mille,
                                            const Communicator& comm) {
  set_calibration(detail::calibration_of(*this, data, segments, h_per_mille, comm));
}

template <class T, int Hidden, int Latent>
FitReport Ensemble<T, Hidden, Latent>::fit(const Dataset& data, const ProgressCallback& progress, FitOptions options) {
  if (members_.size() == 1) {
    FitReport r = members_[0].fit(data, progress, options);
    set_calibration(members_[0].calibration());
    members_[0].set_calibration({});
    return r;
  }
  if (!options.resume.empty() || options.checkpoint_every > 0)
    throw std::invalid_argument("dyad::Ensemble::fit: resuming and periodic training states are for single models, not " +
                                std::to_string(members_.size()) + "-member ensembles");
  options.state_path.clear();
  const Communicator& comm = options.communicator ? *options.communicator : single_process();
  options.calibration_seed = options.calibration_seed.value_or(config().seed);
  options.calibrate = false;
  const FitSplit split = split_for_fit(data, config(), options);
  FitReport total;
  total.members = size();
  std::vector<ScoreScale> scales;
  for (int k = 0; k < size(); ++k) {
    ProgressCallback member_progress;
    if (progress)
      member_progress = [&](const Progress& p) {
        Progress q = p;
        q.member = k;
        q.members = size();
        progress(q);
      };
    const FitReport r = members_[static_cast<std::size_t>(k)].fit(data, member_progress, options);
    total.steps += r.steps;
    total.seconds += r.seconds;
    if (r.interrupted) {
      total.interrupted = true;
      return total;
    }
    total.segments = r.segments;
    total.faulty_excluded = r.faulty_excluded;
    total.short_excluded = r.short_excluded;
    total.label_loss = r.label_loss;
    total.latent_scores = r.latent_scores;
    total.final_loss += r.final_loss / size();
    scales.push_back(ScoreScale::fit(score_across(comm, members_[static_cast<std::size_t>(k)], data, split.train)));
  }
  scales_ = std::move(scales);
  calibration_ = {};
  if (!split.calibration.empty()) {
    calibrate(data, split.calibration, options.calibration_top, comm);
    total.calibration_cars = calibration_.size();
    total.calibration_segments = split.calibration.size();
  }
  return total;
}

template <class T, int Hidden, int Latent>
Scores Ensemble<T, Hidden, Latent>::score(Workspace& ws, const Dataset& data, std::span<const std::size_t> segments,
                                          std::size_t batch) const {
  Scores out = members_[0].score(ws, data, segments, batch);
  if (members_.size() == 1) return out;
  standardise(out, scales_[0]);
  for (std::size_t k = 1; k < members_.size(); ++k) {
    Scores s = members_[k].score(ws, data, segments, batch);
    standardise(s, scales_[k]);
    const auto from = ScoreScale::columns(std::as_const(s));
    const auto to = ScoreScale::columns(out);
    for (std::size_t c = 0; c < scales_[k].size(); ++c) *to[c] += *from[c];
    out.target_error += s.target_error;
  }
  const double K = static_cast<double>(members_.size());
  for (std::size_t c = 0; c < scales_[0].size(); ++c) *ScoreScale::columns(out)[c] /= K;
  out.target_error /= K;
  return out;
}

template <class T, int Hidden, int Latent>
Reconstruction Ensemble<T, Hidden, Latent>::reconstruct(const Dataset& data, std::size_t segment) const {
  Reconstruction r = members_[0].reconstruct(data, segment);
  for (std::size_t k = 1; k < members_.size(); ++k) r.reconstructed += members_[k].reconstruct(data, segment).reconstructed;
  r.reconstructed /= static_cast<double>(members_.size());
  return r;
}

template <class T, int Hidden, int Latent>
void Ensemble<T, Hidden, Latent>::save(const std::filesystem::path& path) const {
  if (members_.size() == 1) return save_checkpoint(members_[0], path, &calibration_);
  save_ensemble_checkpoint(path, members_, scales_, calibration_);
}

template <class T, int Hidden, int Latent>
auto Ensemble<T, Hidden, Latent>::load(const std::filesystem::path& path, const LoadOptions& options) -> Ensemble {
  EnsembleCheckpoint<Member, ScoreScale> file = load_ensemble_checkpoint<Member, ScoreScale>(path, options);
  if (file.scales.empty()) return Ensemble(std::move(file.members[0]));
  try {  // members that disagree are the file's error (runtime_error), not a bad call
    return Ensemble(std::move(file.members), std::move(file.scales), std::move(file.calibration));
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path.string() + ": " + e.what());
  }
}

template <class T, int Hidden, int Latent>
void Ensemble<T, Hidden, Latent>::check_member(std::size_t k) const {
  const Member& m = members_[k];
  const Member& first = members_[0];
  auto fail = [&](const std::string& what) {
    throw std::invalid_argument("dyad::Ensemble: member " + std::to_string(k) + " " + what);
  };
  nlohmann::json a = m.config().to_json(), b = first.config().to_json();
  a.erase("seed");
  b.erase("seed");
  if (a != b) fail("differs from member 0 in its configuration (besides the seed)");
  if (m.normalizer().columns() != first.normalizer().columns() || m.normalizer().mean() != first.normalizer().mean() ||
      m.normalizer().scale() != first.normalizer().scale())
    fail("has another normaliser than member 0 (members train on the same data)");
  if (m.mileage_scale().min() != first.mileage_scale().min() || m.mileage_scale().max() != first.mileage_scale().max())
    fail("has another mileage scale than member 0 (members train on the same data)");
  if (m.has_latent_scorer() != first.has_latent_scorer()) fail("differs from member 0 in having fitted latent scores");
  const std::size_t produced = m.has_latent_scorer() ? detect::score_names.size() : 1;
  if (members_.size() > 1 && scales_[k].size() != produced)
    fail("has a score scale of " + std::to_string(scales_[k].size()) + " scores, but produces " + std::to_string(produced));
  if (members_.size() > 1) {
    const ScoreScale& s = scales_[k];
    if (s.sd.size() != s.mean.size())
      fail("has a score scale of " + std::to_string(s.mean.size()) + " means but " + std::to_string(s.sd.size()) + " sds");
    for (std::size_t c = 0; c < s.size(); ++c)  // the z-scores divide by sd: a subnormal one makes them infinite
      if (!std::isfinite(s.mean[c]) || !std::isnormal(s.sd[c]) || !(s.sd[c] > 0))
        fail("has score " + std::string(detect::score_names[c]) + " scaled by mean " + text::number_text(s.mean[c]) + " and sd " +
             text::number_text(s.sd[c]) + " (need a finite mean and an sd > 0, not subnormal)");
  }
}

// Compiled once elsewhere when DYAD_EXTERN_TEMPLATES is defined (dyad/instantiate.hpp).
#ifdef DYAD_EXTERN_TEMPLATES
extern template class Ensemble<float>;
extern template class Ensemble<double>;
#endif

}  // namespace dyad
