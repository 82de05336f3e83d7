// dyad::Model: the whole graph's gradient, the paper's properties, scoring semantics,
// determinism and checkpoints.
#include "gradcheck.hpp"
#include "toy_data.hpp"

#include <dyad/model.hpp>

#include <doctest/doctest.h>

#include <filesystem>
#include <numeric>

using namespace dyad;
using dyad::test::toy_dataset;

namespace {
ModelConfig tiny_config(int layers = 2, bool bidirectional = true) {
  ModelConfig c;
  c.roles = {{"a", "b", "c", "d"}, 1};
  c.hidden = 4;
  c.latent = 2;
  c.layers = layers;
  c.bidirectional = bidirectional;
  c.noise_scale = 0.5;
  c.label_weight = 0.3;
  c.epochs = 2;
  c.batch_size = 4;
  c.seed = 11;
  return c;
}

std::vector<std::size_t> all_indices(const Dataset& d) {
  std::vector<std::size_t> idx(d.size());
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  return idx;
}

// Gradient of the full DyAD loss for the listed segments, noise drawn from a fixed seed.
template <class T>
Vector<T> loss_gradient(Model<T>& m, const Dataset& d, std::span<const std::size_t> idx, double* value = nullptr) {
  Tape<T> tape;
  m.parameters().zero_grad();
  Rng noise(99);
  const auto parts = m.loss(tape, d, m.resolve_columns(d), idx, 0.2, &noise);
  tape.backward(parts.loss);
  if (value) *value = parts.loss.scalar();
  return m.parameters().grads();
}
}  // namespace

TEST_CASE("the whole encoder-latent-decoder loss matches finite differences (double)") {
  for (const bool ragged : {false, true}) {
    CAPTURE(ragged);
    auto config = tiny_config();
    Model<double> m(config);
    const Dataset d = toy_dataset(5, config.roles, 3, ragged ? 4 : 6, 6);
    m.fit(d);  // fits the normaliser and mileage scale; the check runs at the trained weights
    const auto idx = all_indices(d);
    const Vector<double> analytic = loss_gradient(m, d, idx);
    // The loss is O(10), so a larger step than the per-node checks keeps rounding out of it.
    // The probe perturbs the weights in the parameter store itself.
    Vector<double>& p = m.parameters().values();
    const double worst = dyad::test::max_probe_error<double>(
        {{p.data(), analytic.data(), p.size()}},
        [&] {
          double value = 0;
          loss_gradient(m, d, idx, &value);
          return value;
        },
        1e-4, 1e-3);
    MESSAGE("whole model, max relative error " << worst);
    CHECK(worst < 1e-6);
  }
}

TEST_CASE("the whole model's float gradient agrees with the checked double gradient") {
  auto config = tiny_config();
  const Dataset d = toy_dataset(5, config.roles, 3, 4, 6);
  Model<float> f(config);
  f.fit(d);
  Model<double> g(config);
  g.set_normalizer(f.normalizer());
  g.set_mileage_scale(f.mileage_scale());
  g.parameters().assign(f.parameters());
  const auto idx = all_indices(d);
  loss_gradient(f, d, idx);
  loss_gradient(g, d, idx);
  const Vector<double> a = f.parameters().packed(true).cast<double>(), b = g.parameters().packed(true);
  const double err = ((a - b).cwiseAbs().array() / (b.cwiseAbs().array().max(1e-2))).maxCoeff();
  MESSAGE("float vs double gradient, max relative error (floor 1e-2) " << err);
  CHECK(err < 1e-3);
}

TEST_CASE("KL is >= 0 and 0 at the prior; eps = 0 gives z = mu") {
  Rng rng(1);
  for (int trial = 0; trial < 20; ++trial) {
    const Matrix<double> mu = dyad::test::random_matrix<double>(rng, 3, 4, 3.0),
                         lv = dyad::test::random_matrix<double>(rng, 3, 4, 3.0);
    Tape<double> tape(Mode::inference);
    CHECK(kl_divergence(tape, Tape<double>::constant(mu.data(), 3, 4), Tape<double>::constant(lv.data(), 3, 4)).scalar() >= 0.0);
    const Matrix<double> zero = Matrix<double>::Zero(3, 4);
    const auto z = reparameterize(tape, Tape<double>::constant(mu.data(), 3, 4), Tape<double>::constant(lv.data(), 3, 4),
                                  Tape<double>::constant(zero.data(), 3, 4), 1.0);
    CHECK(z.value() == mu);
  }
  const Matrix<double> zero = Matrix<double>::Zero(2, 5);
  Tape<double> tape(Mode::inference);
  CHECK(kl_divergence(tape, Tape<double>::constant(zero.data(), 2, 5), Tape<double>::constant(zero.data(), 2, 5)).scalar() == 0.0);
}

TEST_CASE("the gradient of a batch is the mean of the per-segment gradients (every term is a batch mean)") {
  auto config = tiny_config();
  Model<double> m(config);
  const Dataset d = toy_dataset(6, config.roles, 5, 8, 8);  // equal lengths: the NLL mean weighs segments equally
  m.fit(d);
  const auto idx = all_indices(d);
  // One noise stream per segment so the batch sees the same eps as the single-segment runs:
  // use noise 0 to make the latent deterministic.
  TrainingOptions quiet = m.config();
  quiet.noise_scale = 0.0;
  m.set_training(quiet);
  const Vector<double> batch = loss_gradient(m, d, idx);
  Vector<double> sum = Vector<double>::Zero(batch.size());
  for (std::size_t i : idx) {
    const std::size_t one[] = {i};
    sum += loss_gradient(m, d, one);
  }
  CHECK((batch - sum / double(idx.size())).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("a segment's score does not depend on its batch; a batch of one works") {
  for (const bool bidirectional : {false, true}) {
    auto config = tiny_config(1, bidirectional);
    Model<double> m(config);
    const Dataset d = toy_dataset(23, config.roles, 8, 5, 16);  // ragged lengths
    m.fit(d);
    const Scores all = m.score(d, 256);
    for (std::size_t batch : {1, 3, 7}) {
      const Scores s = m.score(d, batch);
      CHECK((s.rec_error - all.rec_error).cwiseAbs().maxCoeff() < 1e-12);
      CHECK((s.mu - all.mu).cwiseAbs().maxCoeff() < 1e-12);
    }
    std::vector<std::size_t> order = all_indices(d);
    Rng(4).shuffle(order);
    const Scores shuffled = m.score(d.subset(order), 5);
    for (std::size_t i = 0; i < order.size(); ++i) {
      CHECK(shuffled.rec_error[Index(i)] == doctest::Approx(all.rec_error[Index(order[i])]).epsilon(1e-12));
      CHECK(shuffled.target_error.row(Index(i)).isApprox(all.target_error.row(Index(order[i])), 1e-12));
    }
    // rec_error is the mean of the per-target errors, which are finite and non-negative
    CHECK(all.rec_error.isApprox(all.target_error.rowwise().mean(), 1e-12));
    CHECK((all.target_error.array() >= 0).all());
  }
}

TEST_CASE("fit: one-class training, progress, bit-identical repeats, finite loss") {
  auto config = tiny_config();
  const Dataset d = toy_dataset(40, config.roles, 9, 10, 14, 3);
  std::size_t faulty = 0;
  for (std::size_t i = 0; i < d.size(); ++i) faulty += d.meta(i).label;
  REQUIRE(faulty > 0);
  Model<float> a(config), b(config);
  int batches = 0, epochs = 0;
  double last_loss = 0;
  const FitReport r = a.fit(d, [&](const Progress& p) {
    if (p.epoch_end) {
      ++epochs;
      CHECK(p.batch == p.batches);
    } else {
      ++batches;
      CHECK(std::isfinite(p.loss));
      CHECK(p.lr > 0);
      CHECK(p.seconds_left >= 0);
      last_loss = p.loss;
    }
  });
  CHECK(r.faulty_excluded == faulty);
  CHECK(r.segments == d.size() - faulty);
  CHECK(epochs == config.epochs);
  CHECK(batches == r.steps);
  CHECK(r.steps == config.epochs * long((r.segments + 3) / 4));
  CHECK(r.final_loss == last_loss);
  CHECK(r.label_loss);
  b.fit(d);
  CHECK(a.parameters().values() == b.parameters().values());  // bit-identical
  auto two = config;                                          // bit-identical on two threads as well
  two.threads = 2;
  Model<float> t1(two), t2(two);
  t1.fit(d);
  t2.fit(d);
  CHECK(t1.parameters().values() == t2.parameters().values());
  config.seed = 12;
  Model<float> c(config);
  c.fit(d);
  CHECK(a.parameters().values() != c.parameters().values());
}

TEST_CASE("fit reduces the loss on learnable data") {
  auto config = tiny_config(1, true);
  config.hidden = 16;
  config.latent = 4;
  config.epochs = 30;
  config.lr = 5e-3;
  const Dataset d = toy_dataset(40, config.roles, 10, 16, 16);
  Model<float> m(config);
  double first = 0, last = 0;
  m.fit(d, [&](const Progress& p) {
    if (!p.epoch_end) return;
    if (p.epoch == 0) first = p.nll;
    last = p.nll;
  });
  MESSAGE("nll " << first << " -> " << last);
  CHECK(last < 0.7 * first);
}

TEST_CASE("errors: missing columns, no normal segments, compile-time sizes, NaN loss") {
  auto config = tiny_config();
  Model<float> m(config);
  Dataset wrong({"a", "b", "x", "d"});
  wrong.add({"car0", 0, 0, 1.0, 0.0}, std::vector<float>(8, 1.f));
  CHECK_THROWS_WITH_AS(m.fit(wrong), doctest::Contains("no column 'c'"), std::invalid_argument);
  const Dataset faulty = toy_dataset(5, config.roles, 1, 6, 6, 1);  // car0 is faulty (0 % 1 == 0? no) -> check below
  Dataset all_faulty(faulty.columns());
  for (std::size_t i = 0; i < faulty.size(); ++i) {
    auto meta = faulty.meta(i);
    meta.label = 1;
    const auto v = faulty.values(i);
    all_faulty.add(meta, std::span<const float>(v.data(), std::size_t(v.size())));
  }
  CHECK_THROWS_WITH_AS(m.fit(all_faulty), doctest::Contains("no normal"), std::invalid_argument);
  CHECK_THROWS_AS((Model<float, 64, 32>(tiny_config())), std::invalid_argument);
  CHECK_NOTHROW((Model<float, 64, 32>(preset("fivefold"))));
  CHECK(Model<float, 64, 32>::default_config().hidden == 64);
  auto hot = config;
  hot.lr = 1e30;
  hot.epochs = 50;
  Model<float> bad(hot);
  CHECK_THROWS_WITH_AS(bad.fit(toy_dataset(20, config.roles)), doctest::Contains("not finite"), std::runtime_error);
}

TEST_CASE("checkpoints: save and load round trip, sizes from the file, plain state_dicts") {
  const auto dir = std::filesystem::temp_directory_path() / "dyad_test_checkpoint";
  std::filesystem::create_directories(dir);
  auto config = tiny_config();
  const Dataset d = toy_dataset(20, config.roles, 2, 8, 12);
  Model<float> m(config);
  m.fit(d);
  const Scores before = m.score(d);
  m.save(dir / "m.safetensors");
  auto loaded = Model<float>::load(dir / "m.safetensors");
  CHECK(loaded.parameters().values() == m.parameters().values());
  CHECK(loaded.config().to_json() == m.config().to_json());
  const Scores after = loaded.score(d);
  CHECK(after.rec_error == before.rec_error);
  CHECK(after.combined_score == before.combined_score);
  CHECK(after.pattern_score == before.pattern_score);
  CHECK(after.latent_score == before.latent_score);
  REQUIRE(before.pattern_score.size() == Index(d.size()));
  // combined = mean of rec_error and pattern_score, each z-scored on the training segments
  const auto& c = m.score_combiner();
  CHECK(before.combined_score[3] == doctest::Approx(0.5 * ((before.rec_error[3] - c.means()[0]) / c.stds()[0] +
                                                           (before.pattern_score[3] - c.means()[1]) / c.stds()[1])));
  // The same file loads as double.
  auto as_double = Model<double>::load(dir / "m.safetensors");
  CHECK(as_double.score(d).rec_error.isApprox(before.rec_error, 1e-4));
  // A compile-time-sized model refuses a checkpoint of other sizes.
  CHECK_THROWS_AS((Model<float, 64, 32>::load(dir / "m.safetensors")), std::invalid_argument);

  // Strip dyad's metadata: a plain state_dict needs the roles from the caller.
  SafeTensors st = load_safetensors(dir / "m.safetensors");
  st.metadata.clear();
  st.save(dir / "plain.safetensors");
  CHECK_THROWS_WITH((Model<float>::load(dir / "plain.safetensors")), doctest::Contains("encoder takes 4 columns"));
  ModelConfig roles_only;
  roles_only.roles = config.roles;
  auto plain = Model<float>::load(dir / "plain.safetensors", {roles_only});
  CHECK(plain.config().hidden == 4);
  CHECK(plain.config().layers == 2);
  CHECK(plain.config().bidirectional);
  CHECK(plain.config().latent == 2);
  CHECK(plain.parameters().values() == m.parameters().values());

  // A corrupted checkpoint names the file and the tensor.
  st.tensors[0].shape = {1, st.tensors[0].numel()};
  st.save(dir / "bad.safetensors");
  CHECK_THROWS_WITH((Model<float>::load(dir / "bad.safetensors", {roles_only})), doctest::Contains("bad.safetensors"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("configuration: presets, upstream params JSON, validation") {
  const auto c = preset("brand1");
  CHECK(c.hidden == 128);
  CHECK(c.layers == 2);
  CHECK(c.latent == 8);
  CHECK(c.roles.encoder.size() == 7);
  CHECK(preset("brand2").roles.condition == 4);
  CHECK_THROWS_WITH(preset("brand9"), doctest::Contains("unknown preset"));
  const auto j = nlohmann::json::parse(R"({"task": "brand_b", "epochs": 3, "batch_size": 128, "learning_rate": 0.0001,
    "cosine_factor": 0.1, "rnn_type": "gru", "hidden_size": 1024, "num_layers": 1, "bidirectional": true,
    "latent_size": 24, "noise_scale": 0.01, "anneal_function": "logistic", "k": 0.0025, "x0": 500, "anneal0": 0.1,
    "nll_weight": 5, "latent_label_weight": 1, "variable_length": false, "save_model_path": "./x"})");
  const auto u = config_from_json(j);
  CHECK(u.hidden == 1024);
  CHECK(u.anneal == Anneal::logistic);
  CHECK(u.roles.condition == 4);
  CHECK(u.label_weight == 1);
  CHECK(config_from_json(u.to_json()).to_json() == u.to_json());
  CHECK(config_from_json(nlohmann::json::parse(R"({"rnn_type": "lstm"})")).cell == Cell::lstm);
  CHECK(config_from_json(nlohmann::json::parse(R"({"rnn_type": "RNN"})")).cell == Cell::rnn);
  CHECK(config_from_json(nlohmann::json::parse(R"({"rnn_type": "GRU"})")).cell == Cell::gru);
  CHECK_THROWS_WITH(config_from_json(nlohmann::json::parse(R"({"rnn_type": "transformer"})")),
                    doctest::Contains("key 'rnn_type': 'transformer' is not a cell dyad implements (expected gru, rnn or lstm)"));
  CHECK_THROWS_WITH(config_from_json(nlohmann::json::parse(R"({"hidden_size": "big"})")), doctest::Contains("hidden_size"));
  auto bad = preset("fivefold");
  bad.roles.condition = 6;
  CHECK_THROWS(bad.validate());
}

TEST_CASE("schedules: cosine annealing and KL annealing") {
  CHECK(cosine_lr(1.0, 0.1, 0, 10) == 1.0);
  CHECK(cosine_lr(1.0, 0.1, 10, 10) == doctest::Approx(0.1));
  CHECK(cosine_lr(1.0, 0.1, 5, 10) == doctest::Approx(0.55));
  CHECK(kl_weight(Anneal::linear, 0.1, 0.0025, 500, 250) == doctest::Approx(0.05));
  CHECK(kl_weight(Anneal::linear, 0.1, 0.0025, 500, 5000) == doctest::Approx(0.1));
  CHECK(kl_weight(Anneal::logistic, 0.1, 0.0025, 500, 500) == doctest::Approx(0.05));
  CHECK(kl_weight(Anneal::constant, 0.1, 0.0025, 500, 1) == 0.1);
}
