// Data-parallel training and scoring across ranks (dyad/dist/, Trainer with a Communicator),
// over in-process ranks (tests/thread_communicator.hpp); tests/cli/mpi.sh runs the same over
// Open MPI. N ranks must train the model one process trains, up to the order of float sums.
#include "thread_communicator.hpp"
#include "toy_data.hpp"

#include <dyad/dist/agreement.hpp>
#include <dyad/dist/score_across.hpp>
#include <dyad/ensemble.hpp>
#include <dyad/model.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <numeric>
#include <vector>

using namespace dyad;

namespace {

// Fourteen cars of 5 segments, ragged lengths, every fourth car faulty.
const Dataset& fleet() {
  static const Dataset d = test::toy_dataset(70, test::tiny_config().roles, 23, 9, 15, 4);
  return d;
}

ModelConfig config(int batch) {
  ModelConfig c = test::tiny_config();
  c.hidden = 6;
  c.epochs = 3;
  c.batch_size = batch;
  return c;
}

struct Run {
  Model<double> model;
  std::vector<double> losses;  // loss, nll, kl, label of every step
  FitReport report;
};

Run train(const ModelConfig& c, const FitOptions& options) {
  Run run{Model<double>(c), {}, {}};
  run.report = run.model.fit(
      fleet(),
      [&](const Progress& p) {
        if (!p.epoch_end) run.losses.insert(run.losses.end(), {p.loss, p.nll, p.kl, p.label});
      },
      options);
  return run;
}

std::vector<Run> train_on_ranks(int ranks, const ModelConfig& c, FitOptions options) {
  std::vector<Run> runs;
  for (int r = 0; r < ranks; ++r) runs.push_back({Model<double>(c), {}, {}});
  test::ThreadGroup group(ranks);
  group.run([&](const Communicator& comm) {
    FitOptions o = options;
    o.communicator = &comm;
    Run& run = runs[static_cast<std::size_t>(comm.rank())];
    run.report = run.model.fit(
        fleet(),
        [&](const Progress& p) {
          if (!p.epoch_end) run.losses.insert(run.losses.end(), {p.loss, p.nll, p.kl, p.label});
        },
        o);
  });
  return runs;
}

double relative(double a, double b) { return std::abs(a - b) / std::max({std::abs(a), std::abs(b), 1e-300}); }

void check_same_model(const Run& one, const Run& many, double tolerance) {
  REQUIRE(one.losses.size() == many.losses.size());
  for (std::size_t i = 0; i < one.losses.size(); ++i) CHECK(relative(one.losses[i], many.losses[i]) < tolerance);
  const auto& a = one.model.parameters().values();
  const auto& b = many.model.parameters().values();
  CHECK((a - b).cwiseAbs().maxCoeff() / a.cwiseAbs().maxCoeff() < tolerance);
  for (std::size_t j = 0; j < one.model.normalizer().mean().size(); ++j) {
    CHECK(relative(one.model.normalizer().mean()[j], many.model.normalizer().mean()[j]) < 1e-12);
    CHECK(relative(one.model.normalizer().scale()[j], many.model.normalizer().scale()[j]) < 1e-12);
  }
  CHECK(one.model.mileage_scale().min() == many.model.mileage_scale().min());
  CHECK(one.model.mileage_scale().max() == many.model.mileage_scale().max());
  const Scores s1 = one.model.score(fleet()), sn = many.model.score(fleet());
  for (Eigen::Index i = 0; i < s1.rec_error.size(); ++i) {
    CHECK(relative(s1.rec_error[i], sn.rec_error[i]) < 10 * tolerance);
    CHECK(relative(s1.combined_score[i], sn.combined_score[i]) < 100 * tolerance);
  }
  CHECK(one.report.segments == many.report.segments);
  CHECK(one.report.calibration_cars == many.report.calibration_cars);
  CHECK(one.model.calibration().size() == many.model.calibration().size());
}

}  // namespace

TEST_CASE("data parallel: share_of splits n items into contiguous shares that differ by at most one") {
  for (std::size_t n : {0, 1, 5, 7, 64, 257})
    for (int size : {1, 2, 3, 8}) {
      std::size_t next = 0;
      for (int r = 0; r < size; ++r) {
        const Share s = share_of(n, r, size);
        CHECK(s.first == next);
        CHECK(s.count >= n / static_cast<std::size_t>(size));
        CHECK(s.count <= n / static_cast<std::size_t>(size) + 1);
        next += s.count;
      }
      CHECK(next == n);
    }
}

TEST_CASE("data parallel: 2 and 3 ranks train the model one process trains, with identical weights on every rank") {
  FitOptions options;
  options.calibration_fraction = 0.25;
  // 7: shares of 4 and 3 (2 ranks), 3, 2 and 2 (3 ranks), and a last batch of its own size.
  const ModelConfig c = config(7);
  const Run one = train(c, options);
  REQUIRE(one.report.latent_scores);
  REQUIRE(one.model.calibration().size() > 0);
  for (int ranks : {2, 3}) {
    CAPTURE(ranks);
    const std::vector<Run> runs = train_on_ranks(ranks, c, options);
    for (const Run& r : runs) {
      CHECK(r.model.parameters().values() == runs[0].model.parameters().values());
      CHECK(r.losses == runs[0].losses);
    }
    check_same_model(one, runs[0], 1e-9);  // double: only the order of the sums differs
  }
}

TEST_CASE("data parallel: a rank with no segment in a batch still takes part (more ranks than segments)") {
  FitOptions options;
  // 42 normal segments of at least 12 steps train; a batch of 41 leaves a last batch of one,
  // which two of three ranks have no share of.
  std::size_t train_segments = 0;
  for (std::size_t i = 0; i < fleet().size(); ++i) train_segments += fleet().meta(i).label == 0 ? 1 : 0;
  const ModelConfig c = config(static_cast<int>(train_segments) - 1);
  const Run one = train(c, options);
  REQUIRE(one.report.steps == 2 * c.epochs);
  const std::vector<Run> runs = train_on_ranks(3, c, options);
  check_same_model(one, runs[0], 1e-9);
  CHECK(runs[2].model.parameters().values() == runs[0].model.parameters().values());
}

TEST_CASE("data parallel: float training across ranks agrees with one process to about 1e-5") {
  ModelConfig c = config(8);
  FitOptions options;
  options.calibration_fraction = 0.25;
  Model<float> one(c);
  one.fit(fleet(), {}, options);
  std::vector<Model<float>> ranks(2, Model<float>(c));
  test::ThreadGroup group(2);
  group.run([&](const Communicator& comm) {
    FitOptions o = options;
    o.communicator = &comm;
    ranks[static_cast<std::size_t>(comm.rank())].fit(fleet(), {}, o);
  });
  CHECK(ranks[0].parameters().values() == ranks[1].parameters().values());
  const auto& a = one.parameters().values();
  const auto& b = ranks[0].parameters().values();
  CHECK((a - b).cwiseAbs().maxCoeff() / a.cwiseAbs().maxCoeff() < 1e-5);
  const Scores s1 = one.score(fleet()), s2 = ranks[0].score(fleet());
  for (Eigen::Index i = 0; i < s1.rec_error.size(); ++i) CHECK(relative(s1.rec_error[i], s2.rec_error[i]) < 1e-4);
}

TEST_CASE("data parallel: score_across gives every rank the table one process scores, bit for bit") {
  Model<double> model(config(8));
  model.fit(fleet(), {}, {});
  std::vector<std::size_t> some;
  for (std::size_t i = 0; i < fleet().size(); i += 3) some.push_back(i);
  const Scores one = model.score(fleet(), some, 5);  // 24 segments: batches of 5, 5, 5, 5 and 4
  for (int ranks : {2, 3, 7}) {                      // 7: more ranks than batches, some score none
    test::ThreadGroup group(ranks);
    std::vector<Scores> got(static_cast<std::size_t>(ranks));
    group.run([&](const Communicator& comm) {
      got[static_cast<std::size_t>(comm.rank())] = score_across(comm, model, fleet(), some, 5);
    });
    for (const Scores& s : got) {
      CHECK(s.rec_error == one.rec_error);
      CHECK(s.target_error == one.target_error);
      CHECK(s.mu == one.mu);
      CHECK(s.log_var == one.log_var);
      CHECK(s.latent_score == one.latent_score);
      CHECK(s.pattern_score == one.pattern_score);
      CHECK(s.combined_score == one.combined_score);
    }
  }
  // Without fitted latent scorers those scores stay empty on every rank, those with rows or none.
  Model<double> fresh(config(8));
  test::ThreadGroup group(7);
  group.run([&](const Communicator& comm) {
    const Scores s = score_across(comm, fresh, fleet(), some, 5);
    CHECK(s.latent_score.size() == 0);
    CHECK(s.rec_error.size() == static_cast<Eigen::Index>(some.size()));
  });
}

TEST_CASE("data parallel: an ensemble trains across ranks like in one process") {
  FitOptions options;
  options.calibration_fraction = 0.25;
  const ModelConfig c = config(8);
  Ensemble<double> one(c, 2);
  one.fit(fleet(), {}, options);
  std::vector<Ensemble<double>> ranks(2, Ensemble<double>(c, 2));
  test::ThreadGroup group(2);
  group.run([&](const Communicator& comm) {
    FitOptions o = options;
    o.communicator = &comm;
    ranks[static_cast<std::size_t>(comm.rank())].fit(fleet(), {}, o);
  });
  const Scores a = one.score(fleet()), b = ranks[1].score(fleet());
  for (Eigen::Index i = 0; i < a.combined_score.size(); ++i) CHECK(relative(a.combined_score[i], b.combined_score[i]) < 1e-7);
  CHECK(one.calibration().size() == ranks[1].calibration().size());
}

TEST_CASE("data parallel: a stop request on any rank stops every rank after the same step; rank 0 writes the state") {
  const auto state = std::filesystem::temp_directory_path() / "dyad_test_data_parallel.state";
  std::filesystem::remove(state);
  const ModelConfig c = config(8);
  std::vector<Run> runs;
  for (int r = 0; r < 2; ++r) runs.push_back({Model<double>(c), {}, {}});
  volatile std::sig_atomic_t flags[2] = {0, 0};
  test::ThreadGroup group(2);
  group.run([&](const Communicator& comm) {
    const auto r = static_cast<std::size_t>(comm.rank());
    FitOptions o;
    o.communicator = &comm;
    o.stop = &flags[r];
    o.state_path = state;
    runs[r].report = runs[r].model.fit(
        fleet(),
        [&](const Progress& p) {
          if (r == 1 && p.step == 3) flags[1] = SIGINT;  // only rank 1 is signalled
        },
        o);
  });
  for (const Run& run : runs) {
    CHECK(run.report.interrupted);
    CHECK(run.report.steps == 4);  // rank 1 saw the flag after step 3's reduction: both stop after step 4
  }
  CHECK(runs[0].report.states_written == 1);
  CHECK(runs[1].report.states_written == 0);
  REQUIRE(std::filesystem::exists(state));
  CHECK(load_training_state<double>(state).step == 4);
  std::filesystem::remove(state);
}

TEST_CASE("data parallel: ranks that read different data are refused before training, not left waiting") {
  static const Dataset other = test::toy_dataset(60, test::tiny_config().roles, 23, 9, 15, 4);
  test::ThreadGroup group(2);
  std::vector<Model<double>> ranks(2, Model<double>(config(8)));
  CHECK_THROWS_WITH_AS(group.run([&](const Communicator& comm) {
    FitOptions o;
    o.communicator = &comm;
    ranks[static_cast<std::size_t>(comm.rank())].fit(comm.rank() == 0 ? fleet() : other, {}, o);
  }),
                       "dyad::Model::fit: the ranks disagree on the segments (60 to 70); every rank must read the same --data "
                       "with the same settings",
                       std::invalid_argument);
}

TEST_CASE("data parallel: Normalizer moments of disjoint shares combine to the one-process fit") {
  std::vector<std::size_t> all(fleet().size()), a, b;
  std::iota(all.begin(), all.end(), std::size_t{0});
  for (std::size_t i : all) (i % 3 ? a : b).push_back(i);
  const auto& cols = test::tiny_config().roles.encoder;
  Normalizer::Moments ma = Normalizer::moments(fleet(), a, cols), mb = Normalizer::moments(fleet(), b, cols);
  for (std::size_t j = 0; j < cols.size(); ++j) {
    ma.sum_mean[j] += mb.sum_mean[j];
    ma.sum_std[j] += mb.sum_std[j];
    ma.lo[j] = std::min(ma.lo[j], mb.lo[j]);
    ma.hi[j] = std::max(ma.hi[j], mb.hi[j]);
  }
  ma.segments += mb.segments;
  const Normalizer combined = Normalizer::from_moments(ma, cols), direct = Normalizer::fit(fleet(), all, cols);
  for (std::size_t j = 0; j < cols.size(); ++j) {
    CHECK(relative(combined.mean()[j], direct.mean()[j]) < 1e-13);
    CHECK(relative(combined.scale()[j], direct.scale()[j]) < 1e-13);
  }
  CHECK_THROWS_WITH_AS(Normalizer::from_moments(Normalizer::Moments{}, cols), "dyad::Normalizer::fit: no segments to fit on",
                       std::invalid_argument);
}

TEST_CASE("data parallel: check_ranks_agree names the input and the ranks whose copy differs from rank 0's") {
  // Two datasets of the same size that differ in one value: what a stale copy on one node is.
  Dataset changed = fleet();
  changed.raw_values()[17] += 1;
  CHECK(fingerprint(changed) != fingerprint(fleet()));
  CHECK(fingerprint(fleet()) == fingerprint(Dataset(fleet())));
  test::ThreadGroup group(3);
  CHECK_THROWS_WITH_AS(group.run([&](const Communicator& comm) {
    check_ranks_agree(comm,
                      {{"--data 'fleet.csv'", fingerprint(comm.rank() == 2 ? changed : fleet())}, {"--model 'm.safetensors'", 42}});
  }),
                       "the MPI ranks do not hold the same inputs: --data 'fleet.csv' on rank(s) 2 differs from rank 0's (each "
                       "node reads its own copy: make the copies identical, or put the files on a shared path)",
                       std::runtime_error);
  // Agreeing ranks go on; so does one process. (A fresh group: the failed run dropped every
  // rank from the first one's barrier.)
  test::ThreadGroup agreeing(3);
  agreeing.run([&](const Communicator& comm) { check_ranks_agree(comm, {{"--data", fingerprint(fleet())}, {"--model", 7}}); });
  check_ranks_agree(single_process(), {{"--data", 1}});
}
