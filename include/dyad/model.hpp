// dyad::Model<T, Hidden, Latent>: the DyAD sequence VAE (dyad-method §4-§6) with fit, score,
// save and load. Hidden and Latent are compile-time sizes, or Eigen::Dynamic (the default)
// for a model whose sizes come from its configuration or checkpoint. They are checks (a
// configuration or checkpoint of other sizes is refused) and documentation in the type; they
// do not reach the kernels, whose time goes into GEMMs of at least H x B (H 64-1024, B up to
// 256) and gate passes vectorised over H, both at their speed with run-time sizes. Training
// is in dyad/trainer.hpp, the detection protocol in dyad/detect/.
#pragma once

#include "dyad/core/memory.hpp"
#include "dyad/core/parameters.hpp"
#include "dyad/core/random.hpp"
#include "dyad/core/tape.hpp"
#include "dyad/data/csv.hpp"  // detail::number_text
#include "dyad/data/dataset.hpp"
#include "dyad/data/normalizer.hpp"
#include "dyad/detect/latent.hpp"
#include "dyad/detect/scores.hpp"
#include "dyad/io/checkpoint.hpp"
#include "dyad/model_config.hpp"
#include "dyad/nn/gru.hpp"
#include "dyad/ops/activation.hpp"
#include "dyad/ops/gaussian.hpp"
#include "dyad/ops/linear.hpp"
#include "dyad/ops/losses.hpp"
#include "dyad/optim/adamw.hpp"
#include "dyad/optim/schedule.hpp"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
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
};

struct FitReport {
  std::size_t segments = 0;         // segments trained on
  std::size_t faulty_excluded = 0;  // segments labelled faulty, left out (one-class training)
  std::size_t short_excluded = 0;   // normal segments shorter than ModelConfig::min_length, left out
  long steps = 0;
  double seconds = 0;
  double final_loss = 0;
  bool label_loss = false;     // false when the data has no mileage
  bool latent_scores = false;  // latent, pattern and combined scores fitted (needs a few segments)
  bool interrupted = false;    // stopped early through FitOptions::stop; the state is saved
  bool resumed = false;        // continued from FitOptions::resume
  int states_written = 0;      // training-state files written
};

// One segment's targets and their reconstruction, in the data's original units.
struct Reconstruction {
  std::vector<std::string> targets;
  Eigen::MatrixXd measured;       // [T x targets]
  Eigen::MatrixXd reconstructed;  // [T x targets]
};

template <class T, int Hidden = Eigen::Dynamic, int Latent = Eigen::Dynamic>
class Model {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "dyad::Model<T>: T is float or double");

 public:
  using Scalar = T;
  static constexpr int hidden_size = Hidden;
  static constexpr int latent_size = Latent;

  // Builds the network and initialises it like PyTorch from config.seed.
  explicit Model(ModelConfig config = default_config()) : config_(std::move(config)) {
    if constexpr (Hidden != Eigen::Dynamic)
      if (config_.hidden != Hidden)
        throw std::invalid_argument("dyad::Model<T, " + std::to_string(Hidden) + ", ...>: configuration has hidden_size " +
                                    std::to_string(config_.hidden));
    if constexpr (Latent != Eigen::Dynamic)
      if (config_.latent != Latent)
        throw std::invalid_argument("dyad::Model<T, ..., " + std::to_string(Latent) + ">: configuration has latent_size " +
                                    std::to_string(config_.latent));
    config_.validate();
    build();
    Rng rng(config_.seed);
    initialize(rng);
    normalizer_ = identity_normalizer();
  }

  static ModelConfig default_config() {
    ModelConfig c;
    if constexpr (Hidden != Eigen::Dynamic) c.hidden = Hidden;
    if constexpr (Latent != Eigen::Dynamic) c.latent = Latent;
    return c;
  }

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
  Parameters<T>& parameters() { return params_; }
  const Parameters<T>& parameters() const { return params_; }
  const Normalizer& normalizer() const { return normalizer_; }
  void set_normalizer(Normalizer n) {
    if (n.columns() != config_.roles.encoder) throw std::invalid_argument("dyad::Model: normaliser columns differ from the encoder columns");
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
                                  std::to_string(pattern.dim()) + " dimensions, the model " +
                                  std::to_string(config_.latent) + " / " + std::to_string(targets));
    latent_ = std::move(latent);
    pattern_ = std::move(pattern);
    combiner_ = std::move(combiner);
    latent_fitted_ = true;
  }

  // ---- Checkpoints (dyad/io/checkpoint.hpp) -----------------------------------------------
  void save(const std::filesystem::path& path) const { save_checkpoint(*this, path); }
  static Model load(const std::filesystem::path& path, const LoadOptions& options = {}) {
    return load_checkpoint<Model>(path, options);
  }
  bool has_latent_scorer() const { return latent_fitted_; }
  const detect::LatentScorer& latent_scorer() const { return latent_; }
  const detect::LatentScorer& pattern_scorer() const { return pattern_; }
  const detect::ScoreCombiner& score_combiner() const { return combiner_; }

  // ---- Training ---------------------------------------------------------------------------

  // Trains on the normal segments of `data` (label 0); faulty ones are counted and left out.
  // Fits the normaliser and the mileage scale on the training segments first. A loop over
  // Trainer::step (dyad/trainer.hpp), which also saves and resumes the training state.
  FitReport fit(const Dataset& data, const ProgressCallback& progress = {}, FitOptions options = {});

  // The full DyAD loss of one mini-batch, recorded on `tape` (dyad-method §5). With
  // noise_rng == nullptr the latent noise is zero (z = mu), as in the gradient fixtures.
  struct LossParts {
    Var<T> loss, nll, kl, label;
  };
  LossParts loss(Tape<T>& tape, const Dataset& data, std::span<const std::size_t> cols,
                 std::span<const std::size_t> idx, double klw, Rng* noise_rng) {
    SequenceShape seq;
    const Var<T> x = gather(tape, data, cols, idx, seq);
    const Index B = seq.batch, Z = config_.latent;
    Var<T> eps = tape.variable(Z, B).detached();
    for (Index i = 0; i < eps.size(); ++i) eps.val[i] = noise_rng ? T(noise_rng->normal()) : T(0);
    const Encoded e = encode(tape, x, seq);
    const Var<T> z = reparameterize(tape, e.mu, e.log_var, eps, T(config_.noise_scale));
    const Var<T> recon = decode(tape, x, z, seq);
    const auto D = static_cast<Index>(config_.roles.condition), K = x.rows - D;
    LossParts p;
    p.nll = smooth_l1(tape, recon, x.block_rows(D, K), &seq);
    p.kl = kl_divergence(tape, e.mu, e.log_var);
    bool use_label = config_.label_weight > 0;
    for (std::size_t i : idx) use_label = use_label && !std::isnan(data.meta(i).mileage);
    if (use_label) {
      Var<T> target = tape.variable(1, B).detached();
      for (Index b = 0; b < B; ++b)
        target.val[b] = T(mileage_.transform(data.meta(idx[static_cast<std::size_t>(b)]).mileage));
      p.label = mse(tape, mileage_head(tape, e.mu), target);
      p.loss = weighted_sum<T>(tape, {{T(config_.nll_weight), p.nll},
                                      {T(config_.label_weight), p.label},
                                      {T(klw / static_cast<double>(B)), p.kl}});
    } else {
      p.loss = weighted_sum<T>(tape, {{T(config_.nll_weight), p.nll}, {T(klw / static_cast<double>(B)), p.kl}});
    }
    return p;
  }

  // ---- Scoring ----------------------------------------------------------------------------

  // What one scoring thread needs: an inference tape (records nothing) and, for threads > 1,
  // its own worker pool. Scoring a const model is safe from any number of threads as long
  // as each uses its own workspace; score() makes one per call.
  class Workspace {
   public:
    explicit Workspace(int threads = 1) : tape_(Mode::inference) {
      if (threads > 1) pool_ = std::make_unique<ThreadPool>(threads);
      tape_.set_pool(pool_.get());
    }
    Tape<T>& tape() { return tape_; }

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
  Scores score(Workspace& ws, const Dataset& data, std::span<const std::size_t> segments, std::size_t batch = 256) const {
    const auto cols = resolve_columns(data);
    const auto n = static_cast<Index>(segments.size());
    const auto& roles = config_.roles;
    Scores s;
    s.targets = roles.targets();
    s.rec_error.resize(n);
    s.target_error.resize(n, static_cast<Index>(s.targets.size()));
    s.mu.resize(n, config_.latent);
    s.log_var.resize(n, config_.latent);
    batch = std::clamp<std::size_t>(batch, 1, std::max<std::size_t>(segments.size(), 1));
    std::size_t steps = 0;
    for (std::size_t i : segments) steps = std::max(steps, data.length(i));
    check_memory(scoring_bytes(batch, steps), "scoring batches of " + std::to_string(batch) + " segments of up to " +
                                                  std::to_string(steps) + " steps",
                 "lower the batch size (--batch-size)");
    for (std::size_t first = 0; first < segments.size(); first += batch)
      score_batch(ws, data, cols, segments.subspan(first, std::min(batch, segments.size() - first)), s,
                  static_cast<Index>(first));
    add_latent_scores(s);
    return s;
  }

  // Scores the listed segments into rows row0.. of `out` (sized by the caller), reading the
  // columns resolve_columns(data) gave: score() without its allocations, for a service's hot
  // loop (and the benchmarks). After the first call at a given batch size with the same
  // workspace this allocates nothing; the latent scores are not filled in.
  void score_batch(Workspace& ws, const Dataset& data, std::span<const std::size_t> cols, std::span<const std::size_t> idx,
                   Scores& out, Index row0) const {
    Tape<T>& tape = ws.tape();
    tape.reset();
    SequenceShape seq;
    const Var<T> x = gather(tape, data, cols, idx, seq);
    const Encoded e = encode(tape, x, seq);
    const Var<T> recon = decode(tape, x, e.mu, seq);
    const auto D = static_cast<Index>(config_.roles.condition), K = x.rows - D, B = seq.batch;
    const auto target = x.block_rows(D, K).value();
    const auto r = recon.value();
    for (Index b = 0; b < B; ++b) {
      const Index len = seq.lengths ? seq.lengths[b] : seq.steps;
      auto per = out.target_error.row(row0 + b);
      per.setZero();
      for (Index t = 0; t < len; ++t)
        per += (r.col(t * B + b) - target.col(t * B + b)).template cast<double>().array().square().matrix().transpose();
      per /= static_cast<double>(len);
      out.rec_error[row0 + b] = per.mean();
      out.mu.row(row0 + b) = e.mu.value().col(b).transpose().template cast<double>();
      out.log_var.row(row0 + b) = e.log_var.value().col(b).transpose().template cast<double>();
    }
  }


  // The reconstruction of one segment (evaluation mode), mapped back to original units.
  Reconstruction reconstruct(const Dataset& data, std::size_t segment) const {
    const auto cols = resolve_columns(data);
    Workspace ws(1);
    Tape<T>& tape = ws.tape();
    SequenceShape seq;
    const std::size_t one[] = {segment};
    const Var<T> x = gather(tape, data, cols, one, seq);
    const Var<T> recon = decode(tape, x, encode(tape, x, seq).mu, seq);
    const auto D = static_cast<Index>(config_.roles.condition), K = x.rows - D;
    Reconstruction r;
    r.targets = config_.roles.targets();
    r.measured.resize(seq.steps, K);
    r.reconstructed.resize(seq.steps, K);
    const SegmentValues v = data.values(segment);
    for (Index k = 0; k < K; ++k) {
      const auto c = static_cast<std::size_t>(D + k);
      for (Index t = 0; t < seq.steps; ++t) {
        r.measured(t, k) = v(t, static_cast<Index>(cols[c]));
        r.reconstructed(t, k) = double(recon.val[t * K + k]) * normalizer_.scale()[c] + normalizer_.mean()[c];
      }
    }
    return r;
  }

  // Bytes a training run needs at about its peak: the parameters with their gradients and
  // AdamW moments, and the activations a mini-batch of `batch` segments of `steps` steps saves.
  // (A double: absurd settings must not wrap around.)
  double training_bytes(std::size_t batch, std::size_t steps) const {
    return 4.0 * static_cast<double>(params_.values().size()) * sizeof(T) + activation_values(config_, batch, steps, true) * sizeof(T);
  }
  // Bytes scoring needs for a batch of `batch` segments of `steps` steps (no adjoints, no
  // activations kept for backward, but the hoisted input products of a layer).
  double scoring_bytes(std::size_t batch, std::size_t steps) const {
    return activation_values(config_, batch, steps, false) * sizeof(T);
  }

  // Column indices of the encoder columns in `data`; the error names a missing column.
  std::vector<std::size_t> resolve_columns(const Dataset& data) const {
    std::vector<std::size_t> cols;
    for (const auto& name : config_.roles.encoder) cols.push_back(data.column_index(name));
    return cols;
  }

 private:
  struct Encoded {
    Var<T> mu, log_var;
  };

  void build() {
    const auto& r = config_.roles;
    const Index E = static_cast<Index>(r.encoder.size()), D = static_cast<Index>(r.condition);
    const Index H = config_.hidden, Z = config_.latent, F = config_.factor(), Dir = config_.directions();
    const GruShape enc{E, H, config_.layers, config_.bidirectional}, dec{D, H, config_.layers, config_.bidirectional};
    const std::vector<ParameterShape> layout = parameter_shapes(config_);
    params_.add_all(layout);  // one allocation; the layers below find their slices in it
    encoder_ = GruStack<T>(params_, "encoder_rnn", enc);
    decoder_ = GruStack<T>(params_, "decoder_rnn", dec);
    hidden2mean_ = add_linear("hidden2mean", F * H, Z);
    hidden2log_v_ = add_linear("hidden2log_v", F * H, Z);
    latent2hidden_ = add_linear("latent2hidden", Z, F * H);
    outputs2embedding_ = add_linear("outputs2embedding", H * Dir, E - D);
    head0_ = add_linear("mean2latent.0", Z, H / 2);
    head2_ = add_linear("mean2latent.2", H / 2, 1);
    if (params_.slices().size() != layout.size())
      throw std::logic_error("dyad: the model registers tensors that parameter_shapes() does not list");
  }

  struct LinearIds {
    Index weight, bias, fan_in;
  };
  LinearIds add_linear(const std::string& name, Index in, Index out) {
    return {params_.add_or_find(name + ".weight", {out, in}), params_.add_or_find(name + ".bias", {out}), in};
  }

  void initialize(Rng& rng) {
    encoder_.init(params_, rng);
    decoder_.init(params_, rng);
    for (const LinearIds& l : {hidden2mean_, hidden2log_v_, latent2hidden_, outputs2embedding_, head0_, head2_}) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(l.fan_in));
      for (Index p : {l.weight, l.bias}) {
        Var<T> v = params_.var(p);
        for (Index i = 0; i < v.size(); ++i) v.val[i] = T(rng.uniform(-bound, bound));
      }
    }
  }

  // The parameters as tape tensors. Const methods hand them to inference tapes only, which
  // never write values or gradients, so sharing them between threads is safe.
  Parameters<T>& weights() const { return const_cast<Parameters<T>&>(params_); }

  Var<T> apply_linear(Tape<T>& tape, const Var<T>& x, const LinearIds& l) const {
    return linear(tape, x, weights().var(l.weight), weights().var(l.bias));
  }

  // Per-sample flatten (dyad-method §4): h_n is [F*H x B] with one column per sample, so
  // hidden2mean sees concat_f h_n[f, b, :] and never mixes samples.
  Encoded encode(Tape<T>& tape, const Var<T>& x, const SequenceShape& seq) const {
    const auto h = encoder_.forward(tape, weights(), x, Var<T>{}, seq).h_n;
    return {apply_linear(tape, h, hidden2mean_), apply_linear(tape, h, hidden2log_v_)};
  }

  // The decoder runs on the conditioning rows of x from the state latent2hidden(z).
  Var<T> decode(Tape<T>& tape, const Var<T>& x, const Var<T>& z, const SequenceShape& seq) const {
    const Var<T> h0 = apply_linear(tape, z, latent2hidden_);
    const auto out = decoder_.forward(tape, weights(), x.block_rows(0, static_cast<Index>(config_.roles.condition)), h0, seq);
    return apply_linear(tape, out.output, outputs2embedding_);
  }

  Var<T> mileage_head(Tape<T>& tape, const Var<T>& mu) const {
    return apply_linear(tape, relu(tape, apply_linear(tape, mu, head0_)), head2_);
  }

  // Normalised encoder columns of the listed segments as [E x T*B] (T = the longest);
  // steps past a segment's end are zero and marked as padding in `seq`.
  Var<T> gather(Tape<T>& tape, const Dataset& data, std::span<const std::size_t> cols,
                std::span<const std::size_t> idx, SequenceShape& seq) const {
    const auto B = static_cast<Index>(idx.size());
    const auto E = static_cast<Index>(cols.size());
    int* lengths = tape.arena().template allocate<int>(idx.size());
    Index steps = 0;
    bool ragged = false;
    for (Index b = 0; b < B; ++b) {
      lengths[b] = static_cast<int>(data.length(idx[static_cast<std::size_t>(b)]));
      steps = std::max<Index>(steps, lengths[b]);
      ragged |= b > 0 && lengths[b] != lengths[0];
    }
    seq = SequenceShape{steps, B, ragged ? lengths : nullptr};
    Var<T> x = tape.variable(E, steps * B).detached();
    if (ragged) x.value().setZero();
    const auto& mean = normalizer_.mean();
    const auto& scale = normalizer_.scale();
    for (Index b = 0; b < B; ++b) {
      const SegmentValues v = data.values(idx[static_cast<std::size_t>(b)]);
      for (Index t = 0; t < lengths[b]; ++t) {
        T* col = x.val + (t * B + b) * E;
        for (Index e = 0; e < E; ++e) {
          const double z = (double(v(t, static_cast<Index>(cols[static_cast<std::size_t>(e)]))) - mean[e]) / scale[e];
          if (!(std::abs(z) <= kMaxStandardised)) out_of_range(data, idx[static_cast<std::size_t>(b)], cols, e, t, z);
          col[e] = T(z);
        }
      }
    }
    return x;
  }

  // A normalised input this far out (a volt of 3e38, a unit mix-up) would overflow the GRU's
  // products to inf and NaN; no battery signal is a million standard deviations off.
  static constexpr double kMaxStandardised = 1e6;
  [[noreturn]] void out_of_range(const Dataset& data, std::size_t segment, std::span<const std::size_t> cols, Index e,
                                 Index t, double z) const {
    const SegmentMeta& m = data.meta(segment);
    const auto c = static_cast<std::size_t>(e);
    const double value = data.values(segment)(t, static_cast<Index>(cols[c]));
    throw std::invalid_argument("dyad: car '" + m.car + "' segment " + std::to_string(m.segment) + " column '" +
                                config_.roles.encoder[c] + "' step " + std::to_string(t) + ": value " +
                                detail::number_text(value) + " is far outside the model's training range (mean " +
                                detail::number_text(normalizer_.mean()[c]) + ", scale " +
                                detail::number_text(normalizer_.scale()[c]) + ": " + detail::number_text(z) +
                                " scales away); check the data's units");
  }

  // Mileage feeds the label loss when every training segment has it; none means no label loss
  // (loss() leaves the term out for a batch without mileage).
  bool fit_mileage(const Dataset& data, std::span<const std::size_t> train) {
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

  // The latent scorer and the score combiner are fitted on the training segments' scores.
  void fit_latent_scores(const Dataset& data, std::span<const std::size_t> train) {
    latent_fitted_ = false;
    if (train.size() < 2) return;
    Scores s = score(data, train);
    try {
      latent_ = detect::LatentScorer::fit(s.mu);
      pattern_ = detect::LatentScorer::fit(log_errors(s.target_error));
      combiner_ = {};
      latent_fitted_ = true;
      add_latent_scores(s);
      combiner_ = detect::ScoreCombiner::fit(std::span<const double>(s.rec_error.data(), s.size()),
                                             std::span<const double>(s.pattern_score.data(), s.size()));
    } catch (const std::invalid_argument&) {
      // Too few or degenerate training segments for latent statistics: no latent scores.
      latent_fitted_ = false;
      combiner_ = {};
    }
  }

  void add_latent_scores(Scores& s) const {
    s.latent_score.resize(0);
    s.pattern_score.resize(0);
    s.combined_score.resize(0);
    if (!latent_fitted_) return;
    const std::vector<double> latent = latent_.score(s.mu), pattern = pattern_.score(log_errors(s.target_error));
    s.latent_score = Eigen::Map<const Eigen::VectorXd>(latent.data(), s.mu.rows());
    s.pattern_score = Eigen::Map<const Eigen::VectorXd>(pattern.data(), s.mu.rows());
    if (combiner_.means().empty()) return;
    const std::vector<double> combined =
        combiner_.combine(std::span<const double>(s.rec_error.data(), s.size()), pattern);
    s.combined_score = Eigen::Map<const Eigen::VectorXd>(combined.data(), s.mu.rows());
  }

  // Which signals a segment gets wrong, on a log scale (errors span decades; +1e-12 keeps a
  // perfectly reconstructed signal finite). A fault shows as an unusual pattern across them.
  static Eigen::MatrixXd log_errors(const Eigen::MatrixXd& target_error) {
    return (target_error.array() + 1e-12).log().matrix();
  }

  Normalizer identity_normalizer() const { return Normalizer::identity(config_.roles.encoder); }

  // Saved activations of a training step: about (14 H F + 32) values per segment and time
  // step, each with its adjoint; scoring keeps about 8 H F + 32 per step.
  static double activation_values(const ModelConfig& c, std::size_t batch, std::size_t steps, bool training) {
    const double per_step = (training ? 14.0 : 8.0) * c.hidden * c.factor() + 32;
    return (training ? 2.0 : 1.0) * static_cast<double>(batch) * static_cast<double>(steps) * per_step;
  }
  static std::size_t activation_bytes(const ModelConfig& c, std::size_t batch, std::size_t steps) {
    return std::max<std::size_t>(std::size_t{1} << 20, static_cast<std::size_t>(activation_values(c, batch, steps, true) * sizeof(T)));
  }

  ModelConfig config_;
  Parameters<T> params_;
  GruStack<T> encoder_, decoder_;
  LinearIds hidden2mean_{}, hidden2log_v_{}, latent2hidden_{}, outputs2embedding_{}, head0_{}, head2_{};
  Normalizer normalizer_;
  MinMax mileage_;
  detect::LatentScorer latent_, pattern_;
  detect::ScoreCombiner combiner_;
  bool latent_fitted_ = false;

  template <class M>
  friend class Trainer;
};

}  // namespace dyad

#include "dyad/trainer.hpp"  // Model::fit
