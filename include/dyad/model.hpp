// dyad::Model<T, Hidden, Latent>: the user's façade over DyAD (dyad-method §4-§6), with fit,
// score, save and load. It holds the network (dyad/network.hpp), the input normaliser, the
// mileage scale and the fitted segment scorers (dyad/detect/scorers.hpp). Hidden and Latent are compile-time sizes, or Eigen::Dynamic (the default)
// for a model whose sizes come from its configuration or checkpoint. They are checks (a
// configuration or checkpoint of other sizes is refused) and documentation in the type; they
// do not reach the kernels, whose time goes into GEMMs of at least H x B (H 64-1024, B up to
// 256) and gate passes vectorised over H, both at their speed with run-time sizes. Training
// is in dyad/trainer.hpp, the detection protocol in dyad/detect/. Scoring is const and safe
// from any number of threads, each with its own Workspace.
#pragma once

#include "dyad/core/memory.hpp"
#include "dyad/core/parameters.hpp"
#include "dyad/core/random.hpp"
#include "dyad/core/tape.hpp"
#include "dyad/data/batch.hpp"
#include "dyad/data/dataset.hpp"
#include "dyad/data/normalizer.hpp"
#include "dyad/detect/calibration.hpp"
#include "dyad/detect/scorers.hpp"
#include "dyad/detect/scores.hpp"
#include "dyad/dist/communicator.hpp"
#include "dyad/dist/score_across.hpp"
#include "dyad/io/checkpoint.hpp"
#include "dyad/model_config.hpp"
#include "dyad/network.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <functional>
#include <memory>
#include <numeric>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace dyad {

// What fit() reports after every mini-batch (and at the end of every epoch).
struct Progress {
  int epoch = 0;  // from 0
  int epochs = 0;
  std::size_t batch = 0;  // within the epoch, from 1
  std::size_t batches = 0;
  long step = 0;  // mini-batches so far, from 1
  bool epoch_end = false;
  double loss = 0, nll = 0, kl = 0, label = 0;  // this batch (epoch means when epoch_end)
  double lr = 0, kl_weight = 0;
  double segments_per_s = 0;
  double seconds = 0, seconds_left = 0;
  int member = 0, members = 1;  // which network of an Ensemble is training (from 0), of how many
};
using ProgressCallback = std::function<void(const Progress&)>;

struct FitOptions {
  // Fit the normaliser on the training data (false keeps the current one, e.g. when
  // fine-tuning a loaded model, whose weights expect its own input scaling).
  bool refit_normalizer = true;
  // Crash-safe training: the complete training state is written atomically to `state_path`
  // every `checkpoint_every` epochs (0: never), and when *stop becomes non-zero (a signal
  // handler sets it) at the next step boundary, after which fit() returns early with
  // FitReport::interrupted. An empty state_path with a stop flag just stops.
  std::filesystem::path state_path;
  int checkpoint_every = 0;
  const volatile std::sig_atomic_t* stop = nullptr;
  // Continue the run saved in this state file (dyad/io/training_state.hpp) instead of
  // starting afresh; the data must be the same.
  std::filesystem::path resume;
  // Calibrated verdicts (dyad/detect/calibration.hpp): hold out this fraction of the normal
  // cars (at least one; drawn with the seed), train on the rest, and calibrate on the held-out
  // cars (and on the faulty cars, for the cost-based operating point). 0 trains on every
  // normal car and leaves the model uncalibrated; `dyad train` holds out 0.2.
  double calibration_fraction = 0;
  int calibration_top = 100;  // h of the car scores calibrated, per mille
  // The seed the calibration cars are drawn with (default: the model's), and whether fit()
  // calibrates on them. An Ensemble holds the same cars out of every member and calibrates the
  // members' combined scores itself.
  std::optional<std::uint64_t> calibration_seed;
  bool calibrate = true;
  // Data-parallel training (dyad/dist/): every rank calls fit() with the same data, options and
  // seed; each computes its share of every mini-batch and of the statistics, and the sums over
  // ranks make every rank's model the one a single process trains, up to the order of floating-
  // point sums. Only rank 0 writes the training state. Null: one process.
  const Communicator* communicator = nullptr;
};

struct FitReport {
  std::size_t segments = 0;         // segments trained on
  std::size_t faulty_excluded = 0;  // segments labelled faulty, left out (one-class training)
  std::size_t short_excluded = 0;   // normal segments shorter than ModelConfig::min_length, left out
  long steps = 0;
  double seconds = 0;
  double final_loss = 0;
  bool label_loss = false;               // false when the data has no mileage
  bool latent_scores = false;            // latent, pattern and combined scores fitted (needs a few segments)
  bool interrupted = false;              // stopped early through FitOptions::stop; the state is saved
  bool resumed = false;                  // continued from FitOptions::resume
  int states_written = 0;                // training-state files written
  std::size_t calibration_cars = 0;      // normal cars held out for calibration
  std::size_t calibration_segments = 0;  // their segments and the faulty cars', scored to calibrate
  int members = 1;                       // networks trained (an Ensemble's; steps and seconds are their sums)
};

// One segment's targets and their reconstruction, in the data's original units.
struct Reconstruction {
  std::vector<std::string> targets;
  Eigen::MatrixXd measured;       // [T x targets]
  Eigen::MatrixXd reconstructed;  // [T x targets]
};

namespace detail {

// What Model::calibrate and Ensemble::calibrate store: the calibration on `model`'s robust car
// scores (h = h_per_mille) of the listed segments of `data`, every segment when none are listed.
// With a communicator of several ranks each scores a share of the segments.
template <class M>
detect::Calibration calibration_of(const M& model, const Dataset& data, std::span<const std::size_t> segments, int h_per_mille,
                                   const Communicator& comm = single_process()) {
  std::vector<std::size_t> all;
  if (segments.empty()) {
    all.resize(data.size());
    std::iota(all.begin(), all.end(), std::size_t{0});
    segments = all;
  }
  return detect::Calibration::fit(to_score_table(data, segments, score_across(comm, model, data, segments)),
                                  model.config().roles.targets(), h_per_mille);
}

}  // namespace detail

template <class T, int Hidden = Eigen::Dynamic, int Latent = Eigen::Dynamic>
class Model;

// Model<T>, sizes from the configuration: all of the model's work. A Model<T, Hidden, Latent>
// of compile-time sizes (below) is one of these, so a program compiles the work once per T,
// whatever sizes it names (and not at all with dyad/instantiate.hpp).
template <class T>
class Model<T, Eigen::Dynamic, Eigen::Dynamic> {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "dyad::Model<T>: T is float or double");

 public:
  using Scalar = T;
  static constexpr int hidden_size = Eigen::Dynamic;
  static constexpr int latent_size = Eigen::Dynamic;

  // Builds the network and initialises it like PyTorch from config.seed.
  explicit Model(ModelConfig config = default_config()) : config_(checked(std::move(config))), network_(config_) {
    Rng rng(config_.seed);
    network_.initialize(rng);
    normalizer_ = Normalizer::identity(config_.roles.encoder);
  }

  static ModelConfig default_config() { return ModelConfig{}; }

  const ModelConfig& config() const { return config_; }
  const Architecture& architecture() const { return config_; }
  // Replaces the training options (epochs, learning rate, threads, loss weights, ...); the
  // architecture is fixed once built.
  void set_training(const TrainingOptions& t) {
    ModelConfig c = config_;
    static_cast<TrainingOptions&>(c) = t;
    c.validate();
    config_ = std::move(c);
  }
  const Network<T>& network() const { return network_; }
  Parameters<T>& parameters() { return network_.parameters(); }
  const Parameters<T>& parameters() const { return network_.parameters(); }
  const Normalizer& normalizer() const { return normalizer_; }
  void set_normalizer(Normalizer n) {
    if (n.columns() != config_.roles.encoder)
      throw std::invalid_argument("dyad::Model: normaliser columns differ from the encoder columns");
    normalizer_ = std::move(n);
  }
  const MinMax& mileage_scale() const { return mileage_; }
  void set_mileage_scale(MinMax m) { mileage_ = m; }
  // The scorers fit() fits after training (restored from checkpoints): latent (on mu),
  // pattern (on the log per-target errors) and the combiner of rec_error and pattern_score.
  void set_latent_scores(detect::LatentScorer latent, detect::LatentScorer pattern, detect::ScoreCombiner combiner) {
    const auto targets = config_.roles.encoder.size() - config_.roles.condition;
    if (latent.dim() != static_cast<std::size_t>(config_.latent) || pattern.dim() != targets)
      throw std::invalid_argument("dyad::Model: latent / pattern scorers have " + std::to_string(latent.dim()) + " / " +
                                  std::to_string(pattern.dim()) + " dimensions, the model " + std::to_string(config_.latent) +
                                  " / " + std::to_string(targets));
    scorers_ = detect::SegmentScorers(std::move(latent), std::move(pattern), std::move(combiner));
  }
  const detect::SegmentScorers& scorers() const { return scorers_; }
  bool has_latent_scorer() const { return scorers_.fitted(); }
  const detect::LatentScorer& latent_scorer() const { return scorers_.latent(); }
  const detect::LatentScorer& pattern_scorer() const { return scorers_.pattern(); }
  const detect::ScoreCombiner& score_combiner() const { return scorers_.combiner(); }

  // ---- Calibrated verdicts (dyad/detect/calibration.hpp) -----------------------------------
  // Empty until fit() held out calibration cars, calibrate() ran, or a checkpoint restored one.
  const detect::Calibration& calibration() const { return calibration_; }
  void set_calibration(detect::Calibration c) {
    if (!c.empty() && c.signals() != config_.roles.targets())
      throw std::invalid_argument("dyad::Model: the calibration's signals differ from the model's targets");
    calibration_ = std::move(c);
  }
  // Calibrates on the listed segments of `data` (every segment when empty): their cars with
  // label 0 are the healthy reference, those with label 1 serve the cost-based operating point.
  // Car scores are robust scores with h = h_per_mille.
  void calibrate(const Dataset& data, std::span<const std::size_t> segments = {}, int h_per_mille = 100,
                 const Communicator& comm = single_process());

  // ---- Checkpoints (dyad/io/checkpoint.hpp) -----------------------------------------------
  void save(const std::filesystem::path& path) const;
  static Model load(const std::filesystem::path& path, const LoadOptions& options = {});

  // ---- Training ---------------------------------------------------------------------------

  // Trains on the normal segments of `data` (label 0); faulty ones are counted and left out.
  // Fits the normaliser and the mileage scale on the training segments first. A loop over
  // Trainer::step (dyad/trainer.hpp), which also saves and resumes the training state.
  FitReport fit(const Dataset& data, const ProgressCallback& progress = {}, FitOptions options = {});

  using LossParts = typename Network<T>::LossParts;
  // The full DyAD loss of segments `idx` of `data` (columns `cols` = resolve_columns(data)),
  // recorded on `tape` with KL weight `klw` (dyad-method §5): Trainer::step's forward pass.
  // With noise_rng == nullptr the latent noise is zero (z = mu), as in the gradient fixtures.
  // The mileage label loss is in when label_weight > 0 and every segment has a mileage.
  LossParts loss(Tape<T>& tape, const Dataset& data, std::span<const std::size_t> cols, std::span<const std::size_t> idx,
                 double klw, Rng* noise_rng) {
    return loss(tape, data, cols, idx, Share{0, idx.size()}, klw, noise_rng).parts;
  }

  // Data-parallel training: one rank's share of the mini-batch `batch`, its segments
  // [share.first, share.first + share.count). The loss terms are weighted by the share's part
  // of the batch (its counted steps for the reconstruction mean, its segments for the mileage
  // mean; the KL sum is divided by the whole batch size), so that the ranks' losses and
  // gradients add up to the whole batch's. Every rank draws the whole batch's latent noise and
  // keeps its share's columns, so noise_rng stays the same on every rank.
  struct ShareLoss {
    LossParts parts;
    double nll_part = 1, label_part = 1;
    // loss, nll, kl and label as this share contributes them to the batch's (0 without label).
    std::array<double, 4> values() const {
      return {parts.loss.scalar(), nll_part * parts.nll.scalar(), parts.kl.scalar(),
              parts.label.val ? label_part * parts.label.scalar() : 0.0};
    }
  };
  ShareLoss loss(Tape<T>& tape, const Dataset& data, std::span<const std::size_t> cols, std::span<const std::size_t> batch,
                 Share share, double klw, Rng* noise_rng);

  // ---- Scoring ----------------------------------------------------------------------------

  // What one scoring thread needs: an inference tape (records nothing) and, for threads > 1,
  // its own worker pool. Scoring a const model is safe from any number of threads as long
  // as each uses its own workspace; score() makes one per call. Precision::bf16 computes the
  // GRU products in bf16 where the CPU has AVX512-BF16 (dyad/core/precision.hpp); precision()
  // says what runs, fp32 elsewhere.
  class Workspace {
   public:
    explicit Workspace(int threads = 1, Precision precision = Precision::fp32) : tape_(Mode::inference) {
      if (threads > 1) pool_ = std::make_unique<ThreadPool>(threads);
      tape_.set_pool(pool_.get());
      tape_.set_precision(precision);
    }
    Tape<T>& tape() { return tape_; }
    Precision precision() const { return tape_.precision(); }

   private:
    std::unique_ptr<ThreadPool> pool_;  // declared first: the tape refers to it
    Tape<T> tape_;
  };

  // Scores every segment in evaluation mode (z = mu), `batch` segments at a time, recording
  // no tape. A segment's result does not depend on the other segments of its batch.
  Scores score(const Dataset& data, std::size_t batch = 256) const {
    Workspace ws(config_.threads);
    return score(ws, data, batch);
  }

  // The same for the listed segments only (row i of the result is segments[i]), without
  // copying them out of the dataset.
  Scores score(const Dataset& data, std::span<const std::size_t> segments, std::size_t batch = 256) const {
    Workspace ws(config_.threads);
    return score(ws, data, segments, batch);
  }
  // With a caller's workspace (and so its thread count): every segment, or the listed ones.
  Scores score(Workspace& ws, const Dataset& data, std::size_t batch = 256) const {
    std::vector<std::size_t> all(data.size());
    std::iota(all.begin(), all.end(), std::size_t{0});
    return score(ws, data, all, batch);
  }
  Scores score(Workspace& ws, const Dataset& data, std::span<const std::size_t> segments, std::size_t batch = 256) const;

  // Scores the listed segments into rows row0.. of `out` (sized by the caller), reading the
  // columns resolve_columns(data) gave: score() without its allocations, for a service's hot
  // loop (and the benchmarks). After the first call at a given batch size with the same
  // workspace this allocates nothing; the latent scores are not filled in.
  void score_batch(Workspace& ws, const Dataset& data, std::span<const std::size_t> cols, std::span<const std::size_t> idx,
                   Scores& out, Index row0) const;

  // The reconstruction of one segment (evaluation mode), mapped back to original units.
  Reconstruction reconstruct(const Dataset& data, std::size_t segment) const;

  // Bytes a training run needs at about its peak: the parameters with their gradients and
  // AdamW moments, and the activations a mini-batch of `batch` segments of `steps` steps saves.
  // (A double: absurd settings must not wrap around.)
  double training_bytes(std::size_t batch, std::size_t steps) const {
    return 4.0 * static_cast<double>(parameters().values().size()) * sizeof(T) +
           Network<T>::activation_values(config_, batch, steps, true) * sizeof(T);
  }
  // Bytes scoring needs for a batch of `batch` segments of `steps` steps (no adjoints, no
  // activations kept for backward, but the hoisted input products of a layer).
  double scoring_bytes(std::size_t batch, std::size_t steps) const {
    return Network<T>::activation_values(config_, batch, steps, false) * sizeof(T);
  }

  // Column indices of the encoder columns in `data`; the error names a missing column.
  std::vector<std::size_t> resolve_columns(const Dataset& data) const { return column_indices(data, config_.roles.encoder); }

 private:
  static ModelConfig checked(ModelConfig c) {
    c.validate();
    return c;
  }

  // rec_error, target_error, mu and log_var of the listed segments, `batch` at a time.
  Scores reconstruction_errors(Workspace& ws, const Dataset& data, std::span<const std::size_t> segments, std::size_t batch) const;

  // Mileage feeds the label loss when every training segment has it; none means no label loss
  // (loss() leaves the term out for a batch without mileage).
  bool fit_mileage(const Dataset& data, std::span<const std::size_t> train);

  // The segment scorers are fitted on the training segments' scores.
  // With a communicator of several ranks each scores a share of them.
  void fit_scorers(const Dataset& data, std::span<const std::size_t> train, const Communicator& comm = single_process());

  ModelConfig config_;
  Network<T> network_;
  Normalizer normalizer_;
  MinMax mileage_;
  detect::SegmentScorers scorers_;
  detect::Calibration calibration_;

  template <class M>
  friend class Trainer;
};

template <class T>
void Model<T, Eigen::Dynamic, Eigen::Dynamic>::calibrate(const Dataset& data, std::span<const std::size_t> segments,
                                                         int h_per_mille, const Communicator& comm) {
  set_calibration(detail::calibration_of(*this, data, segments, h_per_mille, comm));
}

template <class T>
void Model<T, Eigen::Dynamic, Eigen::Dynamic>::save(const std::filesystem::path& path) const {
  save_checkpoint(*this, path);
}

template <class T>
auto Model<T, Eigen::Dynamic, Eigen::Dynamic>::load(const std::filesystem::path& path, const LoadOptions& options) -> Model {
  return load_checkpoint<Model>(path, options);
}

template <class T>
auto Model<T, Eigen::Dynamic, Eigen::Dynamic>::loss(Tape<T>& tape, const Dataset& data, std::span<const std::size_t> cols,
                                                    std::span<const std::size_t> batch, Share share, double klw, Rng* noise_rng)
    -> ShareLoss {
  if (share.count == 0 || share.first + share.count > batch.size())
    throw std::invalid_argument("dyad::Model::loss: share [" + std::to_string(share.first) + ", " +
                                std::to_string(share.first + share.count) + ") of a batch of " + std::to_string(batch.size()));
  const std::span<const std::size_t> idx = batch.subspan(share.first, share.count);
  const Batch<T> b = gather_batch(tape, data, cols, idx, normalizer_);
  const Index B = b.seq.batch;
  Var<T> eps = tape.variable(config_.latent, B).detached();
  const std::size_t z = static_cast<std::size_t>(config_.latent), begin = share.first * z, end = begin + share.count * z;
  for (std::size_t i = 0; i < batch.size() * z; ++i) {
    const T e = noise_rng ? T(noise_rng->normal()) : T(0);
    if (i >= begin && i < end) eps.val[i - begin] = e;
  }
  bool use_label = config_.label_weight > 0;
  for (std::size_t i : batch) use_label = use_label && !std::isnan(data.meta(i).mileage);
  Var<T> mileage;
  if (use_label) {
    mileage = tape.variable(1, B).detached();
    for (Index j = 0; j < B; ++j) mileage.val[j] = T(mileage_.transform(data.meta(idx[static_cast<std::size_t>(j)]).mileage));
  }
  ShareLoss out;
  if (share.count < batch.size()) {
    double steps = 0, all_steps = 0;
    for (std::size_t i : idx) steps += static_cast<double>(data.length(i));
    for (std::size_t i : batch) all_steps += static_cast<double>(data.length(i));
    out.nll_part = steps / all_steps;
    out.label_part = static_cast<double>(share.count) / static_cast<double>(batch.size());
  }
  const LossWeights w{config_.nll_weight * out.nll_part, config_.label_weight * out.label_part,
                      klw / static_cast<double>(batch.size()), config_.noise_scale};
  out.parts = network_.loss(tape, b.x, b.seq, eps, mileage, w);
  return out;
}

template <class T>
Scores Model<T, Eigen::Dynamic, Eigen::Dynamic>::score(Workspace& ws, const Dataset& data, std::span<const std::size_t> segments,
                                                       std::size_t batch) const {
  Scores s = reconstruction_errors(ws, data, segments, batch);
  scorers_.add_to(s);
  return s;
}

template <class T>
void Model<T, Eigen::Dynamic, Eigen::Dynamic>::score_batch(Workspace& ws, const Dataset& data, std::span<const std::size_t> cols,
                                                           std::span<const std::size_t> idx, Scores& out, Index row0) const {
  Tape<T>& tape = ws.tape();
  tape.reset();
  const Batch<T> b = gather_batch(tape, data, cols, idx, normalizer_);
  const auto e = network_.encode(tape, b.x, b.seq);
  const Var<T> recon = network_.decode(tape, b.x, e.mu, b.seq);
  const Index D = network_.condition_rows(), K = b.x.rows - D, B = b.seq.batch;
  const auto target = b.x.block_rows(D, K).value();
  const auto r = recon.value();
  for (Index j = 0; j < B; ++j) {
    const Index len = b.seq.lengths ? b.seq.lengths[j] : b.seq.steps;
    auto per = out.target_error.row(row0 + j);
    per.setZero();
    for (Index t = 0; t < len; ++t)
      per += (r.col(t * B + j) - target.col(t * B + j)).template cast<double>().array().square().matrix().transpose();
    per /= static_cast<double>(len);
    out.rec_error[row0 + j] = per.mean();
    out.mu.row(row0 + j) = e.mu.value().col(j).transpose().template cast<double>();
    out.log_var.row(row0 + j) = e.log_var.value().col(j).transpose().template cast<double>();
  }
}

template <class T>
Reconstruction Model<T, Eigen::Dynamic, Eigen::Dynamic>::reconstruct(const Dataset& data, std::size_t segment) const {
  const auto cols = resolve_columns(data);
  Workspace ws(1);
  Tape<T>& tape = ws.tape();
  const std::size_t one[] = {segment};
  const Batch<T> b = gather_batch(tape, data, cols, one, normalizer_);
  const Var<T> recon = network_.decode(tape, b.x, network_.encode(tape, b.x, b.seq).mu, b.seq);
  const Index D = network_.condition_rows(), K = b.x.rows - D;
  Reconstruction r;
  r.targets = config_.roles.targets();
  r.measured.resize(b.seq.steps, K);
  r.reconstructed.resize(b.seq.steps, K);
  const SegmentValues v = data.values(segment);
  for (Index k = 0; k < K; ++k) {
    const auto c = static_cast<std::size_t>(D + k);
    for (Index t = 0; t < b.seq.steps; ++t) {
      r.measured(t, k) = v(t, static_cast<Index>(cols[c]));
      r.reconstructed(t, k) = double(recon.val[t * K + k]) * normalizer_.scale()[c] + normalizer_.mean()[c];
    }
  }
  return r;
}

template <class T>
Scores Model<T, Eigen::Dynamic, Eigen::Dynamic>::reconstruction_errors(Workspace& ws, const Dataset& data,
                                                                       std::span<const std::size_t> segments,
                                                                       std::size_t batch) const {
  const auto cols = resolve_columns(data);
  const auto n = static_cast<Index>(segments.size());
  Scores s;
  s.targets = config_.roles.targets();
  s.rec_error.resize(n);
  s.target_error.resize(n, static_cast<Index>(s.targets.size()));
  s.mu.resize(n, config_.latent);
  s.log_var.resize(n, config_.latent);
  batch = std::clamp<std::size_t>(batch, 1, std::max<std::size_t>(segments.size(), 1));
  std::size_t steps = 0;
  for (std::size_t i : segments) steps = std::max(steps, data.length(i));
  check_memory(scoring_bytes(batch, steps),
               "scoring batches of " + std::to_string(batch) + " segments of up to " + std::to_string(steps) + " steps",
               "lower the batch size (--batch-size)");
  for (std::size_t first = 0; first < segments.size(); first += batch)
    score_batch(ws, data, cols, segments.subspan(first, std::min(batch, segments.size() - first)), s, static_cast<Index>(first));
  return s;
}

template <class T>
bool Model<T, Eigen::Dynamic, Eigen::Dynamic>::fit_mileage(const Dataset& data, std::span<const std::size_t> train) {
  std::size_t missing = 0;
  for (std::size_t i : train) missing += std::isnan(data.meta(i).mileage) ? 1 : 0;
  if (missing > 0 && missing < train.size()) {
    for (std::size_t i : train)
      if (std::isnan(data.meta(i).mileage))
        throw std::invalid_argument("dyad::Model::fit: segment " + std::to_string(data.meta(i).segment) + " of car '" +
                                    data.meta(i).car + "' has no mileage while others do");
  }
  if (missing == 0) mileage_ = MinMax::fit_mileage(data, train);
  return missing == 0 && config_.label_weight > 0;
}

template <class T>
void Model<T, Eigen::Dynamic, Eigen::Dynamic>::fit_scorers(const Dataset& data, std::span<const std::size_t> train,
                                                           const Communicator& comm) {
  scorers_ = {};  // score() then gives the reconstruction errors only
  if (train.size() < 2) return;
  scorers_ = detect::SegmentScorers::fit(score_across(comm, *this, data, train));
}

// A model of compile-time sizes: Model<T> with the sizes checked when it is built or loaded
// (a configuration or checkpoint of other sizes is refused) and stated in the type.
template <class T, int Hidden, int Latent>
class Model : public Model<T> {
 public:
  static constexpr int hidden_size = Hidden;
  static constexpr int latent_size = Latent;

  explicit Model(ModelConfig config = default_config()) : Model<T>(checked(std::move(config))) {}
  // A model of these sizes given as Model<T> (e.g. loaded); other sizes are refused.
  explicit Model(Model<T> model) : Model<T>((checked(model.config()), std::move(model))) {}

  static ModelConfig default_config() {
    ModelConfig c;
    if constexpr (Hidden != Eigen::Dynamic) c.hidden = Hidden;
    if constexpr (Latent != Eigen::Dynamic) c.latent = Latent;
    return c;
  }
  static Model load(const std::filesystem::path& path, const LoadOptions& options = {}) {
    return Model(Model<T>::load(path, options));
  }

 private:
  static ModelConfig checked(ModelConfig c) {
    if constexpr (Hidden != Eigen::Dynamic)
      if (c.hidden != Hidden)
        throw std::invalid_argument("dyad::Model<T, " + std::to_string(Hidden) + ", ...>: configuration has hidden_size " +
                                    std::to_string(c.hidden));
    if constexpr (Latent != Eigen::Dynamic)
      if (c.latent != Latent)
        throw std::invalid_argument("dyad::Model<T, ..., " + std::to_string(Latent) + ">: configuration has latent_size " +
                                    std::to_string(c.latent));
    return c;
  }
};

}  // namespace dyad

#include "dyad/trainer.hpp"  // Model::fit
