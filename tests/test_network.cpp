// dyad::Network (the VAE's parameters and its const tape pieces), dyad::gather_batch (data to
// the network's input) and dyad::detect::SegmentScorers (the scores fitted after training).
#include "gradcheck.hpp"
#include "toy_data.hpp"

#include <dyad/data/batch.hpp>
#include <dyad/detect/scorers.hpp>
#include <dyad/network.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <thread>
#include <vector>

using namespace dyad;

namespace {
Architecture small_architecture(int layers, bool bidirectional) {
  Architecture a;
  a.roles = {{"a", "b", "c", "d"}, 1};
  a.hidden = 4;
  a.latent = 2;
  a.layers = layers;
  a.bidirectional = bidirectional;
  return a;
}

// A random input [E x T*B] with segment b of length lengths[b] (padding zero).
template <class T>
Matrix<T> random_input(Rng& rng, Index E, Index steps, const std::vector<int>& lengths) {
  const auto B = static_cast<Index>(lengths.size());
  Matrix<T> x = Matrix<T>::Zero(E, steps * B);
  for (Index b = 0; b < B; ++b)
    for (Index t = 0; t < lengths[static_cast<std::size_t>(b)]; ++t)
      for (Index e = 0; e < E; ++e) x(e, t * B + b) = T(rng.uniform(-1.5, 1.5));
  return x;
}
}  // namespace

TEST_CASE("Network registers parameter_shapes() in order and initialises like PyTorch") {
  for (const bool bidirectional : {false, true}) {
    const Architecture a = small_architecture(2, bidirectional);
    Network<double> net(a);
    const auto shapes = parameter_shapes(a);
    REQUIRE(net.parameters().slices().size() == shapes.size());
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      CHECK(net.parameters().slices()[i].name == shapes[i].name);
      CHECK(net.parameters().slices()[i].shape == shapes[i].shape);
    }
    CHECK(net.parameters().count() == ModelConfig{a, {}}.parameter_count());
    CHECK(net.parameters().values().cwiseAbs().maxCoeff() == 0.0);  // zero until initialised
    Rng rng(3);
    net.initialize(rng);
    // GRU tensors within 1/sqrt(H); a linear layer's within 1/sqrt(fan_in) (hidden2mean: F*H).
    CHECK(net.parameters().value("encoder_rnn.weight_hh_l1").cwiseAbs().maxCoeff() <= 0.5);
    CHECK(net.parameters().value("encoder_rnn.weight_hh_l1").cwiseAbs().maxCoeff() > 0.25);
    const double fan_in = 4.0 * 2 * (bidirectional ? 2 : 1);
    CHECK(net.parameters().value("hidden2mean.weight").cwiseAbs().maxCoeff() <= 1 / std::sqrt(fan_in));
  }
}

TEST_CASE("Network refuses an architecture outside the caps before allocating") {
  Architecture a = small_architecture(1, true);
  a.hidden = 200000;
  CHECK_THROWS_WITH_AS(Network<float>{a}, doctest::Contains("hidden_size"), std::invalid_argument);
  a = small_architecture(1, true);
  a.roles = {{"a"}, 1};  // nothing left to reconstruct
  CHECK_THROWS_AS(Network<float>{a}, std::invalid_argument);
}

TEST_CASE("Network::loss: gradients of the parameters match finite differences, with and without mileage") {
  const std::vector<int> lengths = {5, 3, 5};
  for (const bool with_mileage : {false, true})
    for (const int layers : {1, 2}) {
      CAPTURE(with_mileage);
      CAPTURE(layers);
      Network<double> net(small_architecture(layers, true));
      Rng rng(17);
      net.initialize(rng);
      Matrix<double> x = random_input<double>(rng, 4, 5, lengths);
      Matrix<double> eps = dyad::test::random_matrix<double>(rng, 2, 3);
      Matrix<double> mileage = dyad::test::random_matrix<double>(rng, 1, 3);
      std::vector<int> lens = lengths;
      const SequenceShape seq{5, 3, lens.data()};
      const LossWeights w{2.0, 0.7, 0.3, 0.5};
      auto evaluate = [&](bool backward) {
        Tape<double> tape;
        const Var<double> xv(x.data(), nullptr, x.rows(), x.cols()), ev(eps.data(), nullptr, 2, 3);
        const Var<double> mv = with_mileage ? Var<double>(mileage.data(), nullptr, 1, 3) : Var<double>{};
        const auto parts = net.loss(tape, xv, seq, ev, mv, w);
        CHECK(static_cast<bool>(parts.label.val) == with_mileage);
        if (backward) {
          net.parameters().zero_grad();
          tape.backward(parts.loss);
        }
        return parts.loss.scalar();
      };
      evaluate(true);
      const Vector<double> analytic = net.parameters().grads();
      Vector<double>& p = net.parameters().values();
      const double worst = dyad::test::max_probe_error<double>(
          {{p.data(), analytic.data(), p.size()}}, [&] { return evaluate(false); }, 1e-5, 1e-3);
      MESSAGE("Network::loss, max relative error " << worst);
      CHECK(worst < 1e-6);
    }
}

TEST_CASE("a const Network encodes identically from several threads, each with its own tape") {
  Network<float> net(small_architecture(1, true));
  Rng rng(5);
  net.initialize(rng);
  const Network<float>& shared = net;
  const std::vector<int> lengths = {6, 6};
  const Matrix<float> x = random_input<float>(rng, 4, 6, lengths);
  auto encode = [&] {
    Tape<float> tape(Mode::inference);
    const Var<float> xv(const_cast<float*>(x.data()), nullptr, x.rows(), x.cols());
    return Matrix<float>(shared.encode(tape, xv, SequenceShape{6, 2, nullptr}).mu.value());
  };
  const Matrix<float> sequential = encode();
  std::vector<Matrix<float>> results(4);
  std::vector<std::thread> threads;
  for (auto& r : results)
    threads.emplace_back([&r, &encode] {
      for (int i = 0; i < 20; ++i) r = encode();
    });
  for (auto& t : threads) t.join();
  for (const auto& r : results) CHECK(r == sequential);
}

TEST_CASE("gather_batch lays segments out step-major, normalised, with zero padding") {
  const FeatureRoles roles{{"a", "b", "c"}, 1};
  const Dataset d = dyad::test::toy_dataset(4, roles, 9, 3, 6);  // columns a, ignored, b, c
  const Normalizer norm({"a", "b", "c"}, {1.0, 2.0, 3.0}, {2.0, 4.0, 8.0});
  const auto cols = column_indices(d, roles.encoder);
  CHECK(cols == std::vector<std::size_t>{0, 2, 3});
  Tape<float> tape(Mode::inference);
  const std::size_t idx[] = {3, 0, 2};
  const Batch<float> b = gather_batch(tape, d, cols, idx, norm);
  const Index B = 3;
  Index longest = 0;
  for (std::size_t i : idx) longest = std::max<Index>(longest, static_cast<Index>(d.length(i)));
  CHECK(b.seq.batch == B);
  CHECK(b.seq.steps == longest);
  CHECK(b.x.rows == 3);
  CHECK(b.x.cols == longest * B);
  const bool ragged = b.seq.lengths != nullptr;
  CHECK(ragged == (d.length(3) != d.length(0) || d.length(3) != d.length(2)));
  for (Index j = 0; j < B; ++j) {
    const std::size_t s = idx[j];
    const SegmentValues v = d.values(s);
    for (Index t = 0; t < longest; ++t)
      for (Index e = 0; e < 3; ++e) {
        const float got = b.x.val[(t * B + j) * 3 + e];
        if (t < static_cast<Index>(d.length(s)))
          CHECK(got == doctest::Approx((v(t, static_cast<Index>(cols[e])) - norm.mean()[e]) / norm.scale()[e]).epsilon(1e-6));
        else CHECK(got == 0.0f);
      }
  }
  CHECK_THROWS_WITH(column_indices(d, std::vector<std::string>{"a", "volts"}), doctest::Contains("volts"));
}

TEST_CASE("gather_batch names the car, segment, column and step of a value far outside the training range") {
  const FeatureRoles roles{{"a", "b"}, 1};
  Dataset d({"a", "b"});
  std::vector<float> v = {1, 2, 1, 2, 1, 3e30f, 1, 2};  // step 2 of column b
  d.add({"car7", 4, 0, 1000.0, 0.0}, v);
  const Normalizer norm({"a", "b"}, {0.0, 0.0}, {1.0, 1.0});
  Tape<double> tape(Mode::inference);
  const std::size_t idx[] = {0};
  CHECK_THROWS_WITH(gather_batch(tape, d, column_indices(d, roles.encoder), idx, norm),
                    doctest::Contains("car 'car7' segment 4 column 'b' step 2"));
}

TEST_CASE("SegmentScorers: fitted on training scores, unfitted (adding nothing) when they are too few or degenerate") {
  Rng rng(21);
  auto scores = [&](Index n, bool constant_error) {
    Scores s;
    s.targets = {"b", "c", "d"};
    s.mu = dyad::test::random_matrix<double>(rng, n, 2);
    s.log_var = Eigen::MatrixXd::Zero(n, 2);
    s.target_error = (dyad::test::random_matrix<double>(rng, n, 3).array() + 1.5).matrix();
    if (constant_error) s.target_error.setConstant(0.25);
    s.rec_error = s.target_error.rowwise().mean();
    return s;
  };
  const detect::SegmentScorers fitted = detect::SegmentScorers::fit(scores(40, false));
  REQUIRE(fitted.fitted());
  CHECK(fitted.combined());
  CHECK(fitted.latent().dim() == 2);
  CHECK(fitted.pattern().dim() == 3);
  Scores s = scores(7, false);
  fitted.add_to(s);
  REQUIRE(s.combined_score.size() == 7);
  // combined = mean of the z-scored rec_error and pattern_score (the combiner's own statistics).
  for (Index i = 0; i < 7; ++i) {
    const double z1 = (s.rec_error[i] - fitted.combiner().means()[0]) / fitted.combiner().stds()[0];
    const double z2 = (s.pattern_score[i] - fitted.combiner().means()[1]) / fitted.combiner().stds()[1];
    CHECK(s.combined_score[i] == doctest::Approx(0.5 * (z1 + z2)));
  }
  CHECK(s.latent_score.minCoeff() >= 0.0);

  CHECK_FALSE(detect::SegmentScorers::fit(scores(1, false)).fitted());  // one segment: no covariance
  CHECK_FALSE(detect::SegmentScorers::fit(scores(30, true)).fitted());  // constant errors: no spread
  const detect::SegmentScorers none;
  none.add_to(s);  // clears what an earlier scorer added
  CHECK(s.latent_score.size() == 0);
  CHECK(s.pattern_score.size() == 0);
  CHECK(s.combined_score.size() == 0);
  CHECK(s.rec_error.size() == 7);
}

TEST_CASE("out_of_range_values names the segments and columns far outside the normaliser's range (a unit mix-up)") {
  Dataset d({"a", "b"});
  const std::vector<float> ok = {1, 2, 1, 2, 1, 2}, millivolts = {1, 2000, 1, 2100, 1, 2050};
  d.add({"car1", 0, 0, 1.0, 0.0}, ok);
  d.add({"car2", 3, 0, 1.0, 0.0}, millivolts);
  d.add({"car3", 1, 0, 1.0, 0.0}, ok);
  const Normalizer norm({"a", "b"}, {1.0, 2.0}, {0.5, 0.5});
  std::size_t count = 0;
  const std::vector<std::size_t> cols = {0, 1};
  const auto found = out_of_range_values(d, cols, norm, 50, 5, &count);
  REQUIRE(found.size() == 1);
  CHECK(count == 1);
  CHECK(found[0].segment == 1);
  CHECK(found[0].column == 1);
  CHECK(found[0].step == 0);
  CHECK(found[0].value == 2000.0);
  CHECK(found[0].standardised == doctest::Approx((2000.0 - 2.0) / 0.5));
  CHECK(out_of_range_values(d, cols, norm, 1e4).empty());  // within a looser limit
}
