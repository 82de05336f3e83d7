// Every tape node against central finite differences, in double (tight) and float (loose).
#include "gradcheck.hpp"

#include <dyad/nn/recurrent.hpp>
#include <dyad/ops/activation.hpp>
#include <dyad/ops/gaussian.hpp>
#include <dyad/ops/linear.hpp>
#include <dyad/ops/losses.hpp>

#include <dyad/simd/gru_gates.hpp>
#include <dyad/simd/lstm_gates.hpp>
#include <dyad/simd/packed_gemm.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>

using namespace dyad;
using dyad::test::max_gradient_error;
using dyad::test::random_matrix;

namespace {
// A loss that weighs every output entry differently: MSE against a fixed random target.
template <class T>
Var<T> probe(Tape<T>& tape, const Var<T>& y, const Matrix<T>& target) {
  return mse(tape, y, Tape<T>::constant(target.data(), target.rows(), target.cols()));
}
// Weights ~ U(-w, w). A float RNN with U(-1, 1) weights over several steps amplifies a 1e-2
// perturbation far beyond the linear range of float's finite difference; at PyTorch's own
// initialisation scale, 1/sqrt(H), it is checked like the other cells (double: every cell at 1).
template <class T>
double weight_scale(Cell cell, Index H) {
  return std::is_same_v<T, float> && cell == Cell::rnn ? 1.0 / std::sqrt(static_cast<double>(H)) : 1.0;
}
template <class T>
double tolerance() {
  return dyad::test::GradTolerance<T>::tol;
}
}  // namespace

TEST_CASE_TEMPLATE("linear: gradient of x, W and b", T, double, float) {
  Rng rng(1);
  std::vector<Matrix<T>> in{random_matrix<T>(rng, 4, 7), random_matrix<T>(rng, 4, 3), random_matrix<T>(rng, 3, 1)};
  const Matrix<T> target = random_matrix<T>(rng, 3, 7);
  const double err = max_gradient_error<T>(in, [&](Tape<T>& tape, const std::vector<Var<T>>& v) {
    return probe(tape, linear(tape, v[0], v[1], v[2]), target);
  });
  MESSAGE("max relative error " << err);
  CHECK(err < tolerance<T>());
}

TEST_CASE_TEMPLATE("relu: gradient away from the kink", T, double, float) {
  Rng rng(2);
  Matrix<T> x = random_matrix<T>(rng, 5, 6);
  for (Index i = 0; i < x.size(); ++i)  // keep entries off 0 by more than the FD step
    if (std::abs(x.data()[i]) < T(0.05)) x.data()[i] = T(0.3);
  std::vector<Matrix<T>> in{x};
  const Matrix<T> target = random_matrix<T>(rng, 5, 6);
  const double err =
      max_gradient_error<T>(in, [&](Tape<T>& tape, const std::vector<Var<T>>& v) { return probe(tape, relu(tape, v[0]), target); });
  MESSAGE("max relative error " << err);
  CHECK(err < tolerance<T>());
}

TEST_CASE_TEMPLATE("reparameterize and KL: gradients of mu and log_var", T, double, float) {
  Rng rng(3);
  std::vector<Matrix<T>> in{random_matrix<T>(rng, 3, 4), random_matrix<T>(rng, 3, 4)};
  const Matrix<T> eps = random_matrix<T>(rng, 3, 4, 2.0), target = random_matrix<T>(rng, 3, 4);
  const double err = max_gradient_error<T>(in, [&](Tape<T>& tape, const std::vector<Var<T>>& v) {
    const Var<T> z = reparameterize(tape, v[0], v[1], Tape<T>::constant(eps.data(), 3, 4), T(0.7));
    return weighted_sum<T>(tape, {{T(1), probe(tape, z, target)}, {T(0.3), kl_divergence(tape, v[0], v[1])}});
  });
  MESSAGE("max relative error " << err);
  CHECK(err < tolerance<T>());
}

TEST_CASE_TEMPLATE("smooth L1: both branches, with and without padding", T, double, float) {
  Rng rng(4);
  const Index T_ = 5, B = 3;
  std::vector<Matrix<T>> in{random_matrix<T>(rng, 2, T_ * B, 3.0)};
  Matrix<T> target = random_matrix<T>(rng, 2, T_ * B, 3.0);
  for (Index i = 0; i < target.size(); ++i)  // keep |pred - target| off 1 (the kink)
    if (std::abs(std::abs(in[0].data()[i] - target.data()[i]) - T(1)) < T(0.05)) target.data()[i] += T(0.3);
  const int lengths[] = {5, 2, 4};
  for (const bool padded : {false, true}) {
    const SequenceShape seq{T_, B, padded ? lengths : nullptr};
    const double err = max_gradient_error<T>(in, [&](Tape<T>& tape, const std::vector<Var<T>>& v) {
      return smooth_l1(tape, v[0], Tape<T>::constant(target.data(), 2, T_ * B), &seq);
    });
    MESSAGE("max relative error " << err);
    CHECK(err < tolerance<T>());
  }
}

TEST_CASE("smooth L1 value: quadratic below 1, linear above, padding left out") {
  Tape<double> tape(Mode::inference);
  Matrix<double> p(1, 4), t(1, 4);
  p << 0.5, 3.0, -2.0, 100.0;
  t << 0.0, 0.0, 0.0, 0.0;
  const int lengths[] = {1, 1};  // T = 2, B = 2: the columns of step 1 are padding
  const SequenceShape seq{2, 2, lengths};
  CHECK(smooth_l1(tape, Tape<double>::constant(p.data(), 1, 4), Tape<double>::constant(t.data(), 1, 4), &seq).scalar() ==
        doctest::Approx((0.125 + 2.5) / 2));
  CHECK(smooth_l1(tape, Tape<double>::constant(p.data(), 1, 4), Tape<double>::constant(t.data(), 1, 4)).scalar() ==
        doctest::Approx((0.125 + 2.5 + 1.5 + 99.5) / 4));
}

TEST_CASE_TEMPLATE("GRU / RNN / LSTM direction: H=20, T=6, B=3, non-zero h0, forward and reverse, with and without padding", T,
                   double, float) {
  Rng rng(5);
  const Index I = 3, H = 20, T_ = 6, B = 3;  // H = 20 runs the SIMD body and the scalar tail
  const int lengths[] = {6, 3, 1};
  ThreadPool two(2);  // a single direction on two threads splits the batch
  for (const Cell cell : {Cell::gru, Cell::rnn, Cell::lstm})
    for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &two})
      for (const bool reverse : {false, true})
        for (const bool padded : {false, true}) {
          CAPTURE(to_string(cell));
          CAPTURE(reverse);
          CAPTURE(padded);
          CAPTURE(pool != nullptr);
          const Index G = gates(cell) * H;
          const double w = weight_scale<T>(cell, H);
          std::vector<Matrix<T>> in{random_matrix<T>(rng, I, T_ * B), random_matrix<T>(rng, H, B),
                                    random_matrix<T>(rng, I, G, w),   random_matrix<T>(rng, H, G, w),
                                    random_matrix<T>(rng, G, 1, w),   random_matrix<T>(rng, G, 1, w)};
          const Matrix<T> t_out = random_matrix<T>(rng, H, T_ * B), t_hn = random_matrix<T>(rng, H, B);
          const SequenceShape seq{T_, B, padded ? lengths : nullptr};
          const double err = max_gradient_error<T>(
              in,
              [&](Tape<T>& tape, const std::vector<Var<T>>& v) {
                Var<T> out = tape.variable(H, T_ * B), h_n = tape.variable(H, B);
                recurrent_direction(tape, cell, v[0], v[1], v[2], v[3], v[4], v[5], out, h_n, seq, reverse);
                return weighted_sum<T>(tape, {{T(1), probe(tape, out, t_out)}, {T(1), probe(tape, h_n, t_hn)}});
              },
              pool);
          MESSAGE("max relative error " << err);
          CHECK(err < tolerance<T>());
        }
}

TEST_CASE_TEMPLATE(
    "GRU / RNN / LSTM direction through the packed W_hh kernel: H = 16 and 48, B = 11, padding, 1 and 2 "
    "threads",
    T, double, float) {
  // H a multiple of 16 runs simd::PackedMatrix for W_hh^T h and W_hh dA: full and partial row
  // panels, and a last column block of 3 of the 11 samples (5 and 6 on two threads).
  Rng rng(9);
  const Index I = 2, T_ = 4, B = 11;
  const int lengths[] = {4, 3, 1, 4, 2, 4, 4, 1, 3, 4, 2};
  ThreadPool two(2);
  for (const Cell cell : {Cell::gru, Cell::rnn, Cell::lstm})
    for (const Index H : {Index{16}, Index{48}})
      for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &two})
        for (const bool reverse : {false, true}) {
          CAPTURE(to_string(cell));
          CAPTURE(H);
          CAPTURE(reverse);
          CAPTURE(pool != nullptr);
          const Index G = gates(cell) * H;
          REQUIRE(simd::PackedMatrix<T>::supports(G));
          REQUIRE(simd::PackedMatrix<T>::supports(H));
          const double w = weight_scale<T>(cell, H);
          std::vector<Matrix<T>> in{random_matrix<T>(rng, I, T_ * B), random_matrix<T>(rng, H, B),
                                    random_matrix<T>(rng, I, G, w),   random_matrix<T>(rng, H, G, w),
                                    random_matrix<T>(rng, G, 1, w),   random_matrix<T>(rng, G, 1, w)};
          const Matrix<T> t_out = random_matrix<T>(rng, H, T_ * B), t_hn = random_matrix<T>(rng, H, B);
          const SequenceShape seq{T_, B, lengths};
          // 256 sampled scalars per input (x in full): every scalar of W_hh at H = 48 would be
          // 9216 pairs of passes, and a wrong panel or column block shows in dh0 and dx anyway.
          const double err = max_gradient_error<T>(
              in,
              [&](Tape<T>& tape, const std::vector<Var<T>>& v) {
                Var<T> out = tape.variable(H, T_ * B), h_n = tape.variable(H, B);
                recurrent_direction(tape, cell, v[0], v[1], v[2], v[3], v[4], v[5], out, h_n, seq, reverse);
                return weighted_sum<T>(tape, {{T(1), probe(tape, out, t_out)}, {T(1), probe(tape, h_n, t_hn)}});
              },
              pool, dyad::test::GradTolerance<T>::step, 256);
          MESSAGE("max relative error " << err);
          CHECK(err < tolerance<T>());
        }
}

TEST_CASE_TEMPLATE("GRU / RNN / LSTM stacks: 2 layers, bidirectional, every parameter and h0, on 1 and 2 threads", T, double,
                   float) {
  ThreadPool two(2);
  for (const Cell cell : {Cell::gru, Cell::rnn, Cell::lstm})
    for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &two}) {
      CAPTURE(to_string(cell));
      CAPTURE(pool != nullptr);
      Rng rng(6);
      const RecurrentShape shape{3, 4, 2, true, cell};
      const Index T_ = 5, B = 3, F = shape.factor(), H = shape.hidden;
      Parameters<T> params;
      RecurrentStack<T> gru(params, "rnn", shape);
      gru.init(params, rng);
      std::vector<Matrix<T>> in{random_matrix<T>(rng, 3, T_ * B), random_matrix<T>(rng, F * H, B)};
      const Matrix<T> t_out = random_matrix<T>(rng, 2 * H, T_ * B), t_hn = random_matrix<T>(rng, F * H, B);
      const SequenceShape seq{T_, B, nullptr};
      // Parameter gradients land in the store, so this check perturbs the store directly.
      Tape<T> tape;
      Matrix<T> dx = Matrix<T>::Zero(3, T_ * B), dh0 = Matrix<T>::Zero(F * H, B);
      auto loss_of = [&](Tape<T>& tp, Var<T> x, Var<T> h0) {
        const auto r = gru.forward(tp, params, x, h0, seq);
        return weighted_sum<T>(tp, {{T(1), probe(tp, r.output, t_out)}, {T(1), probe(tp, r.h_n, t_hn)}});
      };
      tape.backward(loss_of(tape, Var<T>(in[0].data(), dx.data(), 3, T_ * B), Var<T>(in[1].data(), dh0.data(), F * H, B)));
      const Vector<T> analytic = params.grads();
      auto eval = [&] {
        Tape<T> tp(Mode::inference);
        tp.set_pool(pool);
        return static_cast<double>(
            loss_of(tp, Tape<T>::constant(in[0].data(), 3, T_ * B), Tape<T>::constant(in[1].data(), F * H, B)).scalar());
      };
      const double worst = dyad::test::max_probe_error<T>({{params.values().data(), analytic.data(), params.values().size()},
                                                           {in[0].data(), dx.data(), in[0].size()},
                                                           {in[1].data(), dh0.data(), in[1].size()}},
                                                          eval);
      MESSAGE("max relative error " << worst);
      CHECK(worst < tolerance<T>());
    }
}

TEST_CASE_TEMPLATE("vectorised gate activations agree with std::tanh", T, double, float) {
  const Eigen::Index n = 8001;
  const Eigen::Array<T, Eigen::Dynamic, 1> x = Eigen::Array<T, Eigen::Dynamic, 1>::LinSpaced(n, T(-20), T(20));
  const Eigen::Array<T, Eigen::Dynamic, 1> th = x.tanh(), sg = simd::sigmoid(x);
  double worst_tanh = 0, worst_sigmoid = 0;
  for (Eigen::Index i = 0; i < n; ++i) {
    const double v = double(x[i]);
    worst_tanh = std::max(worst_tanh, std::abs(double(th[i]) - std::tanh(v)));
    worst_sigmoid = std::max(worst_sigmoid, std::abs(double(sg[i]) - 1.0 / (1.0 + std::exp(-v))));
  }
  MESSAGE("max abs error: tanh " << worst_tanh << ", sigmoid " << worst_sigmoid);
  const double eps = std::numeric_limits<T>::epsilon();
  CHECK(worst_tanh < 4 * eps);
  CHECK(worst_sigmoid < 4 * eps);
}

TEST_CASE("float gate pass (whole vectors and the tail) equals the double one within float rounding") {
  Rng rng(12);
  for (const std::size_t H : {std::size_t{5}, std::size_t{16}, std::size_t{37}}) {
    CAPTURE(H);
    std::vector<double> gi(3 * H), gh(3 * H), hp(H), h(H), ghn(H);
    for (auto* v : {&gi, &gh, &hp})
      for (double& x : *v) x = 3 * rng.normal();
    std::vector<float> gif(gi.begin(), gi.end()), ghf(gh.begin(), gh.end()), hpf(hp.begin(), hp.end()), hf(H), ghnf(H);
    simd::gru_gates_forward(gi.data(), gh.data(), hp.data(), h.data(), ghn.data(), H);
    simd::gru_gates_forward(gif.data(), ghf.data(), hpf.data(), hf.data(), ghnf.data(), H);
    for (std::size_t i = 0; i < H; ++i) {
      CHECK(std::abs(hf[i] - h[i]) < 1e-6 * (1 + std::abs(hp[i])));
      CHECK(ghnf[i] == static_cast<float>(gh[2 * H + i]));
    }
    for (std::size_t i = 0; i < 3 * H; ++i) CHECK(std::abs(gif[i] - gi[i]) < 1e-6);  // r, z, n saved for backward
  }
}

TEST_CASE("arena: 64-byte alignment, growth, and one right-sized block after rewind") {
  Arena arena(1024);
  std::size_t after_first_step = 0;
  for (int step = 0; step < 3; ++step) {
    for (int i = 0; i < 10; ++i) {
      float* p = arena.allocate<float>(100 + 37 * std::size_t(i));  // 400 B .. 1.7 KiB each
      CHECK(reinterpret_cast<std::uintptr_t>(p) % kAlignment == 0);
      p[0] = 1.f;
    }
    arena.rewind();
    if (step == 0) after_first_step = arena.system_allocations();
  }
  // 10 allocations rounded to 64 bytes: the most a step asked for.
  std::size_t want = 0;
  for (int i = 0; i < 10; ++i) want += (sizeof(float) * (100 + 37 * std::size_t(i)) + 63) / 64 * 64;
  CHECK(arena.high_water_bytes() == want);
  CHECK(arena.capacity_bytes() == want);                  // merged into exactly one block of that size
  CHECK(arena.system_allocations() == after_first_step);  // later steps fit in it
}
