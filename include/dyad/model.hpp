// dyad::Model<T, Hidden, Latent>: the DyAD sequence VAE (dyad-method §4-§6) with fit, score,
// save and load. Hidden and Latent are compile-time sizes, or Eigen::Dynamic (the default)
// for a model whose sizes come from its configuration or checkpoint.
#pragma once

#include "dyad/core/parameters.hpp"
#include "dyad/core/random.hpp"
#include "dyad/core/tape.hpp"
#include "dyad/data/dataset.hpp"
#include "dyad/data/normalizer.hpp"
#include "dyad/detect/latent.hpp"
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
};

struct FitReport {
  std::size_t segments = 0;         // segments trained on
  std::size_t faulty_excluded = 0;  // segments labelled faulty, left out (one-class training)
  long steps = 0;
  double seconds = 0;
  double final_loss = 0;
  bool label_loss = false;     // false when the data has no mileage
  bool latent_scores = false;  // latent, pattern and combined scores fitted (needs a few segments)
};

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
  ModelConfig& config() { return config_; }  // training settings; sizes are fixed after construction
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
  // Fits the normaliser and the mileage scale on the training segments first.
  FitReport fit(const Dataset& data, const ProgressCallback& progress = {}, FitOptions options = {}) {
    config_.validate();
    const auto cols = resolve_columns(data);
    std::vector<std::size_t> train;
    for (std::size_t i = 0; i < data.size(); ++i)
      if (data.meta(i).label == 0) train.push_back(i);
    FitReport report;
    report.faulty_excluded = data.size() - train.size();
    report.segments = train.size();
    if (train.empty()) throw std::invalid_argument("dyad::Model::fit: no normal (label 0) segments to train on");

    if (!config_.normalize)
      normalizer_ = identity_normalizer();
    else if (options.refit_normalizer)
      normalizer_ = Normalizer::fit(data, train, config_.roles.encoder);
    report.label_loss = fit_mileage(data, train);

    AdamW<T> opt({config_.lr, 0.9, 0.999, 1e-8, config_.weight_decay});
    Rng order_rng(config_.seed ^ 0x5EEDull), noise_rng(config_.seed ^ 0xE95ull);
    Tape<T> tape(Mode::training, arena_guess(static_cast<std::size_t>(config_.batch_size), data.max_length()));
    tape.set_pool(pool());
    const auto B = static_cast<std::size_t>(config_.batch_size);
    const std::size_t batches = (train.size() + B - 1) / B;
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::size_t> order = train;
    long step = 0;
    for (int epoch = 0; epoch < config_.epochs; ++epoch) {
      opt.set_lr(cosine_lr(config_.lr, config_.cosine_factor * config_.lr, epoch, config_.epochs));
      if (config_.shuffle) order_rng.shuffle(order);
      double sum[4] = {0, 0, 0, 0};
      for (std::size_t b = 0; b < batches; ++b) {
        ++step;
        const std::span<const std::size_t> idx(order.data() + b * B, std::min(B, order.size() - b * B));
        const double klw = kl_weight(config_.anneal, config_.anneal0, config_.k, config_.x0, step);
        tape.reset();
        params_.zero_grad();
        const LossParts parts = loss(tape, data, cols, idx, klw, &noise_rng);
        tape.backward(parts.loss);
        const double values[4] = {parts.loss.scalar(), parts.nll.scalar(), parts.kl.scalar(),
                                  parts.label.val ? parts.label.scalar() : 0.0};
        if (!std::isfinite(values[0]) || !params_.grads().allFinite())
          throw std::runtime_error("dyad::Model::fit: the loss or its gradient is not finite at epoch " +
                                   std::to_string(epoch + 1) + ", step " + std::to_string(step) + " (loss " +
                                   std::to_string(values[0]) + ", lr " + std::to_string(opt.lr()) +
                                   "); lower the learning rate or check the data");
        opt.step(params_.values(), params_.grads());
        for (int i = 0; i < 4; ++i) sum[i] += values[i];
        if (progress) {
          Progress p = progress_at(start, epoch, b + 1, batches, step, values, opt.lr(), klw, train.size());
          progress(p);
          if (b + 1 == batches) {
            const double n = static_cast<double>(batches);
            p.loss = sum[0] / n, p.nll = sum[1] / n, p.kl = sum[2] / n, p.label = sum[3] / n;
            p.epoch_end = true;
            progress(p);
          }
        }
        report.final_loss = values[0];
      }
    }
    report.steps = step;
    report.seconds = seconds_since(start);
    fit_latent_scores(data, train);
    report.latent_scores = latent_fitted_ && !combiner_.means().empty();
    return report;
  }

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

  // Scores every segment in evaluation mode (z = mu), `batch` segments at a time, recording
  // no tape. A segment's result does not depend on the other segments of its batch.
  Scores score(const Dataset& data, std::size_t batch = 256) {
    std::vector<std::size_t> all(data.size());
    std::iota(all.begin(), all.end(), std::size_t{0});
    return score(data, all, batch);
  }

  // The same for the listed segments only (row i of the result is segments[i]), without
  // copying them out of the dataset.
  Scores score(const Dataset& data, std::span<const std::size_t> segments, std::size_t batch = 256) {
    const auto cols = resolve_columns(data);
    const auto n = static_cast<Index>(segments.size());
    const auto& roles = config_.roles;
    Scores s;
    s.targets = roles.targets();
    s.rec_error.resize(n);
    s.target_error.resize(n, static_cast<Index>(s.targets.size()));
    s.mu.resize(n, config_.latent);
    s.log_var.resize(n, config_.latent);
    batch = std::max<std::size_t>(batch, 1);
    for (std::size_t first = 0; first < segments.size(); first += batch)
      score_batch(data, cols, segments.subspan(first, std::min(batch, segments.size() - first)), s,
                  static_cast<Index>(first));
    add_latent_scores(s);
    return s;
  }

  // Scores the listed segments into rows row0.. of `out` (sized by the caller). After the
  // first call at a given batch size this allocates nothing.
  void score_batch(const Dataset& data, std::span<const std::size_t> cols, std::span<const std::size_t> idx,
                   Scores& out, Index row0) {
    Tape<T>& tape = inference_tape();
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
  Reconstruction reconstruct(const Dataset& data, std::size_t segment) {
    const auto cols = resolve_columns(data);
    Tape<T>& tape = inference_tape();
    tape.reset();
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
    encoder_ = GruStack<T>(params_, "encoder_rnn", enc);
    decoder_ = GruStack<T>(params_, "decoder_rnn", dec);
    hidden2mean_ = add_linear("hidden2mean", F * H, Z);
    hidden2log_v_ = add_linear("hidden2log_v", F * H, Z);
    latent2hidden_ = add_linear("latent2hidden", Z, F * H);
    outputs2embedding_ = add_linear("outputs2embedding", H * Dir, E - D);
    head0_ = add_linear("mean2latent.0", Z, H / 2);
    head2_ = add_linear("mean2latent.2", H / 2, 1);
  }

  struct LinearIds {
    Index weight, bias, fan_in;
  };
  LinearIds add_linear(const std::string& name, Index in, Index out) {
    return {params_.add(name + ".weight", {out, in}), params_.add(name + ".bias", {out}), in};
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

  Var<T> apply_linear(Tape<T>& tape, const Var<T>& x, const LinearIds& l) {
    return linear(tape, x, params_.var(l.weight), params_.var(l.bias));
  }

  // Per-sample flatten (dyad-method §4): h_n is [F*H x B] with one column per sample, so
  // hidden2mean sees concat_f h_n[f, b, :] and never mixes samples.
  Encoded encode(Tape<T>& tape, const Var<T>& x, const SequenceShape& seq) {
    const auto h = encoder_.forward(tape, params_, x, Var<T>{}, seq).h_n;
    return {apply_linear(tape, h, hidden2mean_), apply_linear(tape, h, hidden2log_v_)};
  }

  // The decoder runs on the conditioning rows of x from the state latent2hidden(z).
  Var<T> decode(Tape<T>& tape, const Var<T>& x, const Var<T>& z, const SequenceShape& seq) {
    const Var<T> h0 = apply_linear(tape, z, latent2hidden_);
    const auto out = decoder_.forward(tape, params_, x.block_rows(0, static_cast<Index>(config_.roles.condition)), h0, seq);
    return apply_linear(tape, out.output, outputs2embedding_);
  }

  Var<T> mileage_head(Tape<T>& tape, const Var<T>& mu) {
    return apply_linear(tape, relu(tape, apply_linear(tape, mu, head0_)), head2_);
  }

  // Normalised encoder columns of the listed segments as [E x T*B] (T = the longest);
  // steps past a segment's end are zero and marked as padding in `seq`.
  Var<T> gather(Tape<T>& tape, const Dataset& data, std::span<const std::size_t> cols,
                std::span<const std::size_t> idx, SequenceShape& seq) {
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
        for (Index e = 0; e < E; ++e)
          col[e] = T((double(v(t, static_cast<Index>(cols[static_cast<std::size_t>(e)]))) - mean[e]) / scale[e]);
      }
    }
    return x;
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

  // Saved activations per segment: about (12 H F + a few E) values per time step.
  std::size_t arena_guess(std::size_t batch, std::size_t steps) const {
    const std::size_t per_step = 14 * static_cast<std::size_t>(config_.hidden * config_.factor()) + 32;
    return std::max<std::size_t>(std::size_t{1} << 20, 2 * batch * steps * per_step * sizeof(T));
  }

  Tape<T>& inference_tape() {
    if (!inference_) inference_ = std::make_unique<Tape<T>>(Mode::inference);
    inference_->set_pool(pool());
    return *inference_;
  }

  // The worker threads of config().threads, started once and kept for every step.
  ThreadPool* pool() {
    if (config_.threads <= 1) return nullptr;
    if (!pool_ || pool_->size() != config_.threads) pool_ = std::make_unique<ThreadPool>(config_.threads);
    return pool_.get();
  }

  static double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  Progress progress_at(std::chrono::steady_clock::time_point start, int epoch, std::size_t batch, std::size_t batches,
                       long step, const double* values, double lr, double klw, std::size_t segments) const {
    Progress p;
    p.epoch = epoch;
    p.epochs = config_.epochs;
    p.batch = batch;
    p.batches = batches;
    p.step = step;
    p.loss = values[0];
    p.nll = values[1];
    p.kl = values[2];
    p.label = values[3];
    p.lr = lr;
    p.kl_weight = klw;
    p.seconds = seconds_since(start);
    const double done = static_cast<double>(step), total = static_cast<double>(batches) * config_.epochs;
    p.segments_per_s = p.seconds > 0 ? done / total * static_cast<double>(segments) * config_.epochs / p.seconds : 0;
    p.seconds_left = done > 0 ? p.seconds * (total - done) / done : 0;
    return p;
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
  std::unique_ptr<Tape<T>> inference_;
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace dyad
