// dyad::Trainer: one-class training of a Model, one mini-batch per step() (dyad-method §5).
// It owns what training needs besides the network: the tape, the worker pool, AdamW, the two
// random streams (segment order, latent noise), the cosine and KL schedules, and its position
// in them. That position is the training state: state() / restore() round-trip it exactly, so
// an interrupted run resumes to the bit-identical model (same seed and threads).
//
// Data-parallel (FitOptions::communicator of N ranks): every rank keeps the same segment order,
// random streams and optimiser, and computes its share of each mini-batch (share_of). The
// gradients and loss values are summed over ranks, so every rank applies the same AdamW update
// to the same weights. The normaliser and the scorers are fitted from shares summed over ranks
// too; the mileage scale and the calibration split read only the segments' metadata.
#pragma once

#include "dyad/core/memory.hpp"
#include "dyad/io/training_state.hpp"
#include "dyad/model.hpp"
#include "dyad/optim/adamw.hpp"
#include "dyad/optim/schedule.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

namespace dyad {

namespace detail {

// The normal cars held out for calibration: a fraction of them, drawn with `seed` from the
// sorted ids (so the split depends on the set of cars and the seed only).
inline std::unordered_set<std::string> calibration_cars(const Dataset& data, const FitOptions& options, std::uint64_t seed) {
  const double f = options.calibration_fraction;
  if (!(f >= 0 && f < 1))
    throw std::invalid_argument("dyad::Model::fit: the calibration fraction must be in [0, 1), got " + std::to_string(f));
  if (f == 0) return {};
  detect::top_count(1, options.calibration_top);  // refused before training, not after
  std::set<std::string> normal_set;
  for (std::size_t i = 0; i < data.size(); ++i)
    if (data.meta(i).label == 0) normal_set.insert(data.meta(i).car);
  std::vector<std::string> normal(normal_set.begin(), normal_set.end());
  const auto k = std::max<std::size_t>(1, static_cast<std::size_t>(std::llround(f * static_cast<double>(normal.size()))));
  if (normal.size() < k + 1)
    throw std::invalid_argument("dyad::Model::fit: holding out calibration cars needs at least 2 normal cars, the data has " +
                                std::to_string(normal.size()) + "; train on all of them with a calibration fraction of 0");
  Rng rng(seed ^ 0xCA1Bull);
  rng.shuffle(normal);
  return {normal.begin(), normal.begin() + static_cast<std::ptrdiff_t>(k)};
}

}  // namespace detail

// Which segments of `data` a fit trains on and which it calibrates on (dyad-method §5: one-class
// training on the normal segments of at least min_length steps).
struct FitSplit {
  std::vector<std::size_t> train;        // normal segments of the cars not held out
  std::vector<std::size_t> calibration;  // the held-out normal cars' and the faulty cars' (empty: none held out)
  std::size_t faulty_excluded = 0, short_excluded = 0;
};

inline FitSplit split_for_fit(const Dataset& data, const ModelConfig& config, const FitOptions& options) {
  const std::unordered_set<std::string> held_out =
      detail::calibration_cars(data, options, options.calibration_seed.value_or(config.seed));
  FitSplit split;
  std::size_t healthy_calibration = 0;
  for (std::size_t i = 0; i < data.size(); ++i) {
    const bool is_short = data.length(i) < static_cast<std::size_t>(config.min_length);
    if (data.meta(i).label != 0) {
      ++split.faulty_excluded;
      if (!is_short) split.calibration.push_back(i);
    } else if (is_short) {
      ++split.short_excluded;
    } else if (held_out.count(data.meta(i).car)) {
      split.calibration.push_back(i);
      ++healthy_calibration;
    } else {
      split.train.push_back(i);
    }
  }
  if (held_out.empty()) split.calibration.clear();
  else if (healthy_calibration == 0)
    throw std::invalid_argument("dyad::Model::fit: the cars held out for calibration have no segment of at least min_length " +
                                std::to_string(config.min_length) + " steps");
  return split;
}

template <class M>
class Trainer {
 public:
  using T = typename M::Scalar;

  // Prepares a fresh run on the normal (label 0) segments of `data`: fits the normaliser and
  // the mileage scale, checks the run fits in memory. `model` and `data` must outlive it.
  Trainer(M& model, const Dataset& data, const FitOptions& options = {});

  bool done() const { return epoch_ >= config_.epochs; }
  int epoch() const { return epoch_; }  // the epoch the next step belongs to, from 0
  long steps() const { return static_cast<long>(step_); }
  std::size_t batches_per_epoch() const { return batches_; }
  const Tape<T>& tape() const { return *tape_; }  // e.g. its arena's high-water mark

  // Trains on the next mini-batch; reports it (and, after an epoch's last batch, the epoch's
  // means with epoch_end set). Returns true when that batch ended an epoch.
  bool step(const ProgressCallback& progress = {});

  // Whether the last step found FitOptions::stop set, on this rank or (data-parallel) any
  // rank: every rank then stops after the same step.
  bool stop_requested() const { return comm_.size() == 1 ? stop_ && *stop_ : stop_requested_; }
  const Communicator& communicator() const { return comm_; }

  // After the last step: fits the latent, pattern and combined scores on the training segments.
  FitReport finish();
  // The report of a run stopped early (no latent scores fitted).
  FitReport report() const {
    FitReport r = report_;
    r.steps = steps();
    r.seconds = seconds();
    return r;
  }

  TrainingState<T> state() const;
  void save_state(const std::filesystem::path& path) const { save_training_state(path, state()); }

  // Continues the run `s` was taken from. The data must be the same and the configuration
  // compatible (only the thread count may differ; the same count gives the identical model).
  void restore(const TrainingState<T>& s, const std::string& source = "training state");

  // A CRC-32C of what training reads: each normal segment's metadata and encoder columns.
  std::uint64_t fingerprint() const {
    if (fingerprint_) return *fingerprint_;
    std::uint32_t crc = 0;
    std::vector<float> column;
    for (std::size_t i : train_) {
      const SegmentMeta& m = data_.meta(i);
      crc = detail::crc32c_text(m.car, crc);
      crc = detail::crc32c_u64(static_cast<std::uint64_t>(m.segment), crc);
      crc = detail::crc32c_u64(std::bit_cast<std::uint64_t>(m.mileage), crc);
      const SegmentValues v = data_.values(i);
      crc = detail::crc32c_u64(static_cast<std::uint64_t>(v.rows()), crc);
      for (std::size_t c : cols_) {
        column.resize(static_cast<std::size_t>(v.rows()));
        for (Index t = 0; t < v.rows(); ++t) column[static_cast<std::size_t>(t)] = v(t, static_cast<Index>(c));
        crc = detail::crc32c(std::as_bytes(std::span<const float>(column)), crc);
      }
    }
    fingerprint_ = crc;
    return crc;
  }

 private:
  // The normaliser of the training segments; data-parallel, each rank reads its share of them
  // and the moments are combined over ranks.
  Normalizer fit_normalizer() const {
    const auto& columns = config_.roles.encoder;
    if (comm_.size() == 1) return Normalizer::fit(data_, train_, columns);
    const Share share = share_of(train_.size(), comm_.rank(), comm_.size());
    Normalizer::Moments m =
        Normalizer::moments(data_, std::span<const std::size_t>(train_).subspan(share.first, share.count), columns);
    comm_.sum(m.sum_mean);
    comm_.sum(m.sum_std);
    comm_.min(m.lo);
    comm_.max(m.hi);
    m.segments = static_cast<double>(train_.size());
    return Normalizer::from_moments(m, columns);
  }

  // Data-parallel ranks must make the same collective calls: ranks that read other data (a
  // different file under the same name on another node) or another configuration would train
  // different numbers of steps and wait on each other forever. Refused up front instead.
  void check_ranks_see_the_same_run() const {
    if (comm_.size() == 1) return;
    const double mine[5] = {static_cast<double>(data_.size()), static_cast<double>(train_.size()), static_cast<double>(batch_size_),
                            static_cast<double>(model_.parameters().count()), static_cast<double>(config_.epochs)};
    double hi[5], lo[5];
    std::copy(mine, mine + 5, hi);
    std::copy(mine, mine + 5, lo);
    comm_.max(hi);
    comm_.min(lo);
    const char* what[5] = {"segments", "training segments", "batch size", "parameters", "epochs"};
    for (int i = 0; i < 5; ++i)
      if (hi[i] != lo[i])
        throw std::invalid_argument("dyad::Model::fit: the ranks disagree on the " + std::string(what[i]) + " (" +
                                    std::to_string(static_cast<long long>(lo[i])) + " to " +
                                    std::to_string(static_cast<long long>(hi[i])) +
                                    "); every rank must read the same --data with the same settings");
  }

  // Data-parallel ranks apply identical updates and so hold identical weights; a difference
  // (an MPI whose sums differ between ranks) is reported rather than trained on silently.
  void check_ranks_agree() const {
    if (comm_.size() == 1) return;
    const auto& w = model_.parameters().values();
    const double crc = detail::crc32c(std::as_bytes(std::span<const T>(w.data(), static_cast<std::size_t>(w.size()))));
    double hi = crc, lo = crc;
    comm_.max(std::span<double>(&hi, 1));
    comm_.min(std::span<double>(&lo, 1));
    if (hi != lo)
      throw std::runtime_error("dyad::Model::fit: the ranks' weights differ after epoch " + std::to_string(epoch_) +
                               " (their sums over ranks are not bitwise the same on every rank)");
  }

  // The keys of two configurations that differ, ignoring the thread count.
  static std::string config_difference(const ModelConfig& was, const ModelConfig& now) {
    auto a = was.to_json(), b = now.to_json();
    a.erase("threads");
    b.erase("threads");
    std::string diff;
    for (auto it = a.begin(); it != a.end(); ++it)
      if (!b.contains(it.key()) || b[it.key()] != it.value())
        diff += (diff.empty() ? "" : ", ") + it.key() + " " + it.value().dump() + " then, " +
                (b.contains(it.key()) ? b[it.key()].dump() : std::string("none")) + " now";
    return diff;
  }

  double seconds() const {
    return seconds_before_ + std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

  Progress progress_at(std::size_t batch, const double* values, double klw) const {
    Progress p;
    p.epoch = epoch_;
    p.epochs = config_.epochs;
    p.batch = batch;
    p.batches = batches_;
    p.step = static_cast<long>(step_);
    p.loss = values[0];
    p.nll = values[1];
    p.kl = values[2];
    p.label = values[3];
    p.lr = opt_.lr();
    p.kl_weight = klw;
    p.seconds = seconds();
    const double done = static_cast<double>(step_), total = static_cast<double>(batches_) * config_.epochs;
    p.segments_per_s = p.seconds > 0 ? done / total * static_cast<double>(train_.size()) * config_.epochs / p.seconds : 0;
    p.seconds_left = done > 0 ? p.seconds * (total - done) / done : 0;
    return p;
  }

  M& model_;
  const Dataset& data_;
  ModelConfig config_;
  const Communicator& comm_;
  const volatile std::sig_atomic_t* stop_ = nullptr;
  bool stop_requested_ = false;
  std::vector<std::size_t> cols_, train_, order_;
  std::vector<std::size_t> calibration_;  // the held-out normal cars' and the faulty cars' segments
  int calibration_top_ = 100;
  std::size_t batch_size_ = 0, batches_ = 0;
  AdamW<T> opt_;
  Rng order_rng_, noise_rng_;
  std::unique_ptr<ThreadPool> pool_;  // before the tape, which refers to it
  std::unique_ptr<Tape<T>> tape_;
  std::uint64_t step_ = 0;
  int epoch_ = 0;
  std::size_t batch_ = 0;
  std::array<double, 4> epoch_sums_{};
  double seconds_before_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  FitReport report_;
  mutable std::optional<std::uint64_t> fingerprint_;
};

template <class M>
Trainer<M>::Trainer(M& model, const Dataset& data, const FitOptions& options)
    : model_(model), data_(data), config_(model.config()), comm_(options.communicator ? *options.communicator : single_process()),
      stop_(options.stop) {
  config_.validate();
  cols_ = model_.resolve_columns(data);
  FitSplit split = split_for_fit(data, config_, options);
  train_ = std::move(split.train);
  calibration_ = options.calibrate ? std::move(split.calibration) : std::vector<std::size_t>{};
  report_.faulty_excluded = split.faulty_excluded;
  report_.short_excluded = split.short_excluded;
  calibration_top_ = options.calibration_top;
  report_.segments = train_.size();
  if (train_.empty())
    throw std::invalid_argument(report_.short_excluded ? "dyad::Model::fit: no normal (label 0) segment of at least min_length " +
                                                             std::to_string(config_.min_length) + " steps to train on"
                                                       : std::string("dyad::Model::fit: no normal (label 0) segments to train on"));

  // A batch never holds more segments than there are: the memory it needs is for those.
  batch_size_ = std::min(static_cast<std::size_t>(config_.batch_size), train_.size());
  batches_ = (train_.size() + batch_size_ - 1) / batch_size_;
  const std::size_t steps = data.max_length(), rank_batch = share_of(batch_size_, 0, comm_.size()).count;
  check_memory(model_.training_bytes(rank_batch, steps),
               "training with batch_size " + std::to_string(batch_size_) +
                   (comm_.size() > 1 ? " (" + std::to_string(rank_batch) + " per rank)" : std::string()) +
                   " on segments of up to " + std::to_string(steps) + " steps",
               "lower the batch size (--batch-size, config key batch_size)");

  check_ranks_see_the_same_run();
  if (!config_.normalize) model_.normalizer_ = Normalizer::identity(config_.roles.encoder);
  else if (options.refit_normalizer) model_.normalizer_ = fit_normalizer();
  report_.label_loss = model_.fit_mileage(data, train_);

  opt_ = AdamW<T>({config_.lr, 0.9, 0.999, 1e-8, config_.weight_decay});
  order_rng_.reseed(config_.seed ^ 0x5EEDull);
  noise_rng_.reseed(config_.seed ^ 0xE95ull);
  order_ = train_;
  if (config_.threads > 1) pool_ = std::make_unique<ThreadPool>(config_.threads);
  // The arena's first block holds a step's activations (at least 1 MiB).
  const double activations = Network<T>::activation_values(config_, rank_batch, steps, true) * sizeof(T);
  tape_ =
      std::make_unique<Tape<T>>(Mode::training, std::max<std::size_t>(std::size_t{1} << 20, static_cast<std::size_t>(activations)));
  tape_->set_pool(pool_.get());
}

template <class M>
bool Trainer<M>::step(const ProgressCallback& progress) {
  if (done()) throw std::logic_error("dyad::Trainer::step: training is complete");
  if (batch_ == 0) {  // a new epoch: its learning rate and segment order
    if (config_.shuffle) order_rng_.shuffle(order_);
    epoch_sums_ = {};
  }
  opt_.set_lr(cosine_lr(config_.lr, config_.cosine_factor * config_.lr, epoch_, config_.epochs));
  ++step_;
  const std::size_t first = batch_ * batch_size_;
  const std::span<const std::size_t> idx(order_.data() + first, std::min(batch_size_, order_.size() - first));
  const double klw = kl_weight(config_.anneal, config_.anneal0, config_.k, config_.x0, static_cast<long>(step_));
  Parameters<T>& params = model_.parameters();
  tape_->reset();
  params.zero_grad();
  // loss, nll, kl, label, then whether a rank was asked to stop (summed over ranks).
  double values[5] = {0, 0, 0, 0, 0};
  const Share share = share_of(idx.size(), comm_.rank(), comm_.size());
  if (share.count > 0) {
    const auto part = model_.loss(*tape_, data_, cols_, idx, share, klw, &noise_rng_);
    tape_->backward(part.parts.loss);
    const auto v = part.values();
    std::copy(v.begin(), v.end(), values);
  } else {  // more ranks than segments in this batch: nothing to compute, the same noise drawn
    for (std::size_t i = 0; i < idx.size() * static_cast<std::size_t>(config_.latent); ++i) noise_rng_.normal();
  }
  values[4] = stop_ && *stop_ ? 1 : 0;
  if (comm_.size() > 1) {
    comm_.sum(std::span<T>(params.grads().data(), static_cast<std::size_t>(params.grads().size())));
    comm_.sum(std::span<double>(values));
  }
  stop_requested_ = values[4] > 0;
  if (!std::isfinite(values[0]) || !params.grads().allFinite())
    throw std::runtime_error("dyad::Model::fit: the loss or its gradient is not finite at epoch " + std::to_string(epoch_ + 1) +
                             ", step " + std::to_string(step_) + " (loss " + std::to_string(values[0]) + ", lr " +
                             std::to_string(opt_.lr()) + "); lower the learning rate or check the data");
  opt_.step(params.values(), params.grads());
  for (int i = 0; i < 4; ++i) epoch_sums_[static_cast<std::size_t>(i)] += values[i];
  report_.final_loss = values[0];

  const bool epoch_end = ++batch_ == batches_;
  if (progress) {
    Progress p = progress_at(batch_, values, klw);
    progress(p);
    if (epoch_end) {
      const double n = static_cast<double>(batches_);
      p.loss = epoch_sums_[0] / n, p.nll = epoch_sums_[1] / n, p.kl = epoch_sums_[2] / n, p.label = epoch_sums_[3] / n;
      p.epoch_end = true;
      progress(p);
    }
  }
  if (epoch_end) {
    batch_ = 0;
    ++epoch_;
    check_ranks_agree();
  }
  return epoch_end;
}

template <class M>
FitReport Trainer<M>::finish() {
  if (!done()) throw std::logic_error("dyad::Trainer::finish: training is not complete");
  report_.steps = steps();
  report_.seconds = seconds();
  model_.fit_scorers(data_, train_, comm_);
  report_.latent_scores = model_.scorers().combined();
  if (!calibration_.empty()) {
    model_.calibrate(data_, calibration_, calibration_top_, comm_);
    report_.calibration_cars = model_.calibration().size();
    report_.calibration_segments = calibration_.size();
  }
  return report_;
}

template <class M>
auto Trainer<M>::state() const -> TrainingState<T> {
  TrainingState<T> s;
  s.config = config_;
  s.normalizer = model_.normalizer_;
  s.mileage = model_.mileage_;
  s.weights = model_.parameters().values();
  s.adam_m = opt_.first_moment();
  s.adam_v = opt_.second_moment();
  if (s.adam_m.size() == 0) s.adam_m = s.adam_v = Vector<T>::Zero(s.weights.size());  // before the first step
  s.adam_steps = opt_.steps();
  s.step = static_cast<std::int64_t>(step_);
  s.epoch = epoch_;
  s.batch = static_cast<std::int64_t>(batch_);
  s.order.assign(order_.begin(), order_.end());
  s.order_rng = order_rng_.state();
  s.noise_rng = noise_rng_.state();
  s.epoch_sums = epoch_sums_;
  s.seconds = seconds();
  s.data_fingerprint = fingerprint();
  s.train_segments = static_cast<std::int64_t>(train_.size());
  return s;
}

template <class M>
void Trainer<M>::restore(const TrainingState<T>& s, const std::string& source) {
  const std::string diff = config_difference(s.config, config_);
  if (!diff.empty()) throw std::invalid_argument(source + ": the configuration differs from the interrupted run's: " + diff);
  if (s.train_segments != static_cast<std::int64_t>(train_.size()) || s.data_fingerprint != fingerprint())
    throw std::invalid_argument(
        source + ": the training data differs from the interrupted run's (" + std::to_string(s.train_segments) +
        " normal segments then, " + std::to_string(train_.size()) + " now" +
        (s.train_segments == static_cast<std::int64_t>(train_.size()) ? ", same count but other values" : "") +
        "); resume with the same --data and --calibration-fraction");
  if (s.weights.size() != model_.parameters().values().size())
    throw std::invalid_argument(source + ": tensor 'weights' has " + std::to_string(s.weights.size()) + " values, the model " +
                                std::to_string(model_.parameters().values().size()));
  if (s.epoch > config_.epochs || s.batch >= static_cast<std::int64_t>(batches_))
    throw std::invalid_argument(source + ": epoch " + std::to_string(s.epoch) + ", batch " + std::to_string(s.batch) +
                                " is past the run's " + std::to_string(config_.epochs) + " epochs of " + std::to_string(batches_) +
                                " batches");
  std::vector<std::size_t> order(s.order.begin(), s.order.end()), sorted = order;
  std::ranges::sort(sorted);
  if (sorted != train_) throw std::invalid_argument(source + ": tensor 'order' is not a permutation of the training segments");
  if (s.normalizer.columns() != config_.roles.encoder)
    throw std::invalid_argument(source + ": the normaliser's columns differ from the encoder columns");
  model_.normalizer_ = s.normalizer;
  model_.mileage_ = s.mileage;
  model_.parameters().values() = s.weights;
  if (s.adam_steps > 0) opt_.restore(s.adam_m, s.adam_v, s.adam_steps);
  step_ = static_cast<std::uint64_t>(s.step);
  epoch_ = s.epoch;
  batch_ = static_cast<std::size_t>(s.batch);
  order_ = std::move(order);
  order_rng_.set_state(s.order_rng);
  noise_rng_.set_state(s.noise_rng);
  epoch_sums_ = s.epoch_sums;
  seconds_before_ = s.seconds;
  start_ = std::chrono::steady_clock::now();
  report_.resumed = true;
}

template <class T>
FitReport Model<T, Eigen::Dynamic, Eigen::Dynamic>::fit(const Dataset& data, const ProgressCallback& progress, FitOptions options) {
  Trainer<Model> trainer(*this, data, options);
  if (!options.resume.empty()) trainer.restore(load_training_state<T>(options.resume), options.resume.string());
  // Data-parallel ranks hold the same state; rank 0 writes it.
  const bool writes = !options.state_path.empty() && trainer.communicator().root();
  int written = 0;
  while (!trainer.done()) {
    const bool epoch_end = trainer.step(progress);
    if (trainer.stop_requested()) {
      FitReport r = trainer.report();
      if (writes) trainer.save_state(options.state_path), ++written;
      r.interrupted = true;
      r.states_written = written;
      return r;
    }
    if (epoch_end && options.checkpoint_every > 0 && writes && !trainer.done() && trainer.epoch() % options.checkpoint_every == 0)
      trainer.save_state(options.state_path), ++written;
  }
  FitReport r = trainer.finish();
  r.states_written = written;
  return r;
}

// Compiled once elsewhere when DYAD_EXTERN_TEMPLATES is defined (dyad/instantiate.hpp).
#ifdef DYAD_EXTERN_TEMPLATES
extern template class Model<float>;
extern template class Model<double>;
extern template class Trainer<Model<float>>;
extern template class Trainer<Model<double>>;
#endif

}  // namespace dyad
