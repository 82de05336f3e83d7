// Every public operation checks its operands in every build type (this binary is built with
// NDEBUG): a mismatch throws std::invalid_argument naming the operation, the operands and their
// shapes, before anything is recorded; a matched call still computes the right thing.
#include <dyad/nn/recurrent.hpp>
#include <dyad/ops/activation.hpp>
#include <dyad/ops/gaussian.hpp>
#include <dyad/ops/linear.hpp>
#include <dyad/ops/losses.hpp>

#include <doctest/doctest.h>

#include <array>
#include <stdexcept>
#include <string>
#include <vector>

using namespace dyad;

namespace {

// The message of the std::invalid_argument that f throws, or a marker no check will match.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "<no std::invalid_argument was thrown>";
}

// Checks that `message` holds every one of `parts`.
void check_names(const std::string& message, std::initializer_list<const char*> parts) {
  INFO("message: " << message);
  for (const char* p : parts) {
    INFO("expected to contain: " << p);
    CHECK(message.find(p) != std::string::npos);
  }
}

// A tensor with its own value and gradient storage, filled with a ramp.
struct Operand {
  Matrix<double> value, grad;
  Operand(Index rows, Index cols) : value(rows, cols), grad(Matrix<double>::Zero(rows, cols)) {
    for (Index i = 0; i < value.size(); ++i) value.data()[i] = 0.1 * static_cast<double>(i % 7) - 0.25;
  }
  Var<double> var() { return Var<double>(value.data(), grad.data(), value.rows(), value.cols()); }
  Var<double> constant() const { return Tape<double>::constant(value.data(), value.rows(), value.cols()); }
};

}  // namespace

TEST_CASE("linear: the brief's example message, in full") {
  Tape<double> tape;
  Operand x(6, 64), w(5, 32), b(32, 1);
  CHECK(error_of([&] { linear(tape, x.var(), w.var(), b.var()); }) ==
        "dyad::linear: x is [6 x 64] but weight is [5 x 32] (expected weight rows = x rows)");
  CHECK(tape.size() == 0);  // nothing recorded by the failed call
}

TEST_CASE("linear: bias, null operands; a matched call computes W^T x + b and records one node") {
  Tape<double> tape;
  Operand x(4, 3), w(4, 2), b(2, 1), bad_b(3, 1);
  check_names(error_of([&] { linear(tape, x.var(), w.var(), bad_b.var()); }),
              {"dyad::linear", "weight is [4 x 2]", "bias is [3 x 1]"});
  check_names(error_of([&] { linear(tape, Var<double>(nullptr, nullptr, 4, 3), w.var(), b.var()); }),
              {"dyad::linear", "x is [4 x 3]", "no data"});
  check_names(error_of([&] { linear(tape, x.var(), Var<double>(nullptr, nullptr, 4, 2), b.var()); }),
              {"dyad::linear", "weight is [4 x 2]", "no data"});
  check_names(error_of([&] { linear(tape, Var<double>(x.value.data(), nullptr, 4, 3, 2), w.var(), b.var()); }),
              {"dyad::linear", "x is [4 x 3]", "stride 2"});
  CHECK(tape.size() == 0);

  const Var<double> y = linear(tape, x.var(), w.var(), b.var());
  REQUIRE(y.rows == 2);
  REQUIRE(y.cols == 3);
  const Matrix<double> expected = (w.value.transpose() * x.value).colwise() + b.value.col(0);
  CHECK((y.value() - expected).cwiseAbs().maxCoeff() < 1e-12);
  CHECK(tape.size() == 1);
  // No bias (an empty Var) is allowed.
  const Var<double> y2 = linear(tape, x.var(), w.var(), Var<double>{});
  CHECK((y2.value() - w.value.transpose() * x.value).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("relu: a null operand throws; a matched call clamps at 0") {
  Tape<double> tape;
  check_names(error_of([&] { relu(tape, Var<double>(nullptr, nullptr, 2, 3)); }), {"dyad::relu", "x is [2 x 3]", "no data"});
  check_names(error_of([&] { relu(tape, Var<double>(nullptr, nullptr, -1, 3)); }), {"dyad::relu", "x is [-1 x 3]", "negative"});
  Operand x(3, 4);
  const Var<double> y = relu(tape, x.var());
  CHECK((y.value() - x.value.cwiseMax(0.0)).cwiseAbs().maxCoeff() == 0.0);
}

TEST_CASE("reparameterize: log_var and eps must have mu's shape") {
  Tape<double> tape;
  Operand mu(3, 4), lv(3, 4), eps(3, 4), wide(3, 5), tall(4, 4);
  check_names(error_of([&] { reparameterize(tape, mu.var(), wide.var(), eps.constant(), 1.0); }),
              {"dyad::reparameterize", "mu is [3 x 4]", "log_var is [3 x 5]"});
  check_names(error_of([&] { reparameterize(tape, mu.var(), lv.var(), tall.constant(), 1.0); }),
              {"dyad::reparameterize", "mu is [3 x 4]", "eps is [4 x 4]"});
  CHECK(tape.size() == 0);
  const Var<double> z = reparameterize(tape, mu.var(), lv.var(), eps.constant(), 0.5);
  const Matrix<double> expected = (mu.value.array() + 0.5 * (0.5 * lv.value.array()).exp() * eps.value.array()).matrix();
  CHECK((z.value() - expected).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("kl_divergence: mu and log_var of different shapes throw") {
  Tape<double> tape;
  Operand mu(3, 4), lv(3, 4), other(4, 3);
  check_names(error_of([&] { kl_divergence(tape, mu.var(), other.var()); }),
              {"dyad::kl_divergence", "mu is [3 x 4]", "log_var is [4 x 3]"});
  const double expected = -0.5 * (1.0 + lv.value.array() - mu.value.array().square() - lv.value.array().exp()).sum();
  CHECK(kl_divergence(tape, mu.var(), lv.var()).scalar() == doctest::Approx(expected));
}

TEST_CASE("smooth_l1: shapes, sequence columns, lengths and empty operands") {
  Tape<double> tape;
  Operand pred(2, 6), target(2, 6), short_target(2, 5), empty(2, 0);
  check_names(error_of([&] { smooth_l1(tape, pred.var(), short_target.constant()); }),
              {"dyad::smooth_l1", "pred is [2 x 6]", "target is [2 x 5]"});
  check_names(error_of([&] { smooth_l1(tape, empty.var(), empty.constant()); }),
              {"dyad::smooth_l1", "pred is [2 x 0]", "at least one element"});

  const SequenceShape wrong_columns{4, 2, nullptr};  // 8 columns, pred has 6
  check_names(error_of([&] { smooth_l1(tape, pred.var(), target.constant(), &wrong_columns); }),
              {"dyad::smooth_l1", "pred has 6 columns", "4 steps x 2 samples = 8"});
  const SequenceShape no_steps{0, 6, nullptr};
  check_names(error_of([&] { smooth_l1(tape, pred.var(), target.constant(), &no_steps); }),
              {"dyad::smooth_l1", "seq is 0 steps x 6 samples"});
  const int too_long[] = {3, 4};
  const SequenceShape long_seq{3, 2, too_long};
  check_names(error_of([&] { smooth_l1(tape, pred.var(), target.constant(), &long_seq); }),
              {"dyad::smooth_l1", "seq.lengths[1] is 4", "expected 1 to 3"});
  const int zero_length[] = {0, 3};
  const SequenceShape zero_seq{3, 2, zero_length};
  check_names(error_of([&] { smooth_l1(tape, pred.var(), target.constant(), &zero_seq); }),
              {"dyad::smooth_l1", "seq.lengths[0] is 0"});
  CHECK(tape.size() == 0);

  // Matched: |diff| of the ramp vs zeros; with lengths {3, 1} only columns 0, 1, 2, 4 count.
  const Matrix<double> zeros = Matrix<double>::Zero(2, 6);
  const int lengths[] = {3, 1};
  const SequenceShape seq{3, 2, lengths};
  const auto huber = [](double a) { return std::abs(a) < 1 ? 0.5 * a * a : std::abs(a) - 0.5; };
  double sum = 0;
  for (Index c : {0, 1, 2, 4})
    for (Index r = 0; r < 2; ++r) sum += huber(pred.value(r, c));
  CHECK(smooth_l1(tape, pred.var(), Tape<double>::constant(zeros.data(), 2, 6), &seq).scalar() == doctest::Approx(sum / 8));
}

TEST_CASE("mse: shapes and empty operands") {
  Tape<double> tape;
  Operand pred(3, 2), target(3, 2), other(2, 3), empty(0, 4);
  check_names(error_of([&] { mse(tape, pred.var(), other.constant()); }), {"dyad::mse", "pred is [3 x 2]", "target is [2 x 3]"});
  check_names(error_of([&] { mse(tape, empty.var(), empty.constant()); }), {"dyad::mse", "pred is [0 x 4]"});
  target.value.array() += 0.5;
  CHECK(mse(tape, pred.var(), target.constant()).scalar() == doctest::Approx(0.25));
}

TEST_CASE("weighted_sum: non-scalar terms and too many terms throw") {
  Tape<double> tape;
  Operand a(1, 1), b(1, 1), vec(3, 1);
  check_names(error_of([&] {
                weighted_sum<double>(tape, {{1.0, a.var()}, {2.0, vec.var()}});
              }),
              {"dyad::weighted_sum", "term 1 is [3 x 1]", "[1 x 1]"});
  check_names(error_of([&] {
                weighted_sum<double>(tape, {{1.0, Var<double>(nullptr, nullptr, 1, 1)}});
              }),
              {"dyad::weighted_sum", "term 0 is [1 x 1] with no data"});
  const Var<double> s = a.var();
  check_names(
      error_of([&] {
        weighted_sum<double>(tape, {{1.0, s}, {1.0, s}, {1.0, s}, {1.0, s}, {1.0, s}, {1.0, s}, {1.0, s}, {1.0, s}, {1.0, s}});
      }),
      {"dyad::weighted_sum", "9 terms", "at most 8"});
  CHECK(tape.size() == 0);
  a.value(0, 0) = 2;
  b.value(0, 0) = 3;
  CHECK(weighted_sum<double>(tape, {{0.5, a.var()}, {2.0, b.var()}}).scalar() == doctest::Approx(7.0));
}

namespace {
// One GRU direction's operands, I -> H over T steps of B samples.
struct GruOperands {
  Index I, H, T, B;
  Operand x, h0, w_ih, w_hh, b_ih, b_hh;
  GruOperands(Index i, Index h, Index t, Index b)
      : I(i), H(h), T(t), B(b), x(i, t * b), h0(h, b), w_ih(i, 3 * h), w_hh(h, 3 * h), b_ih(3 * h, 1), b_hh(3 * h, 1) {}
};
}  // namespace

TEST_CASE("gru_direction: every operand against x, w_hh and seq") {
  Tape<double> tape;
  GruOperands g(3, 4, 5, 2);
  const SequenceShape seq{5, 2, nullptr};
  Var<double> out = tape.variable(4, 10), h_n = tape.variable(4, 2);
  auto call = [&](const Var<double>& x, const Var<double>& h0, const Var<double>& w_ih, const Var<double>& w_hh,
                  const Var<double>& b_ih, const Var<double>& b_hh, const Var<double>& o, const Var<double>& hn, SequenceShape s) {
    return error_of([&] { gru_direction(tape, x, h0, w_ih, w_hh, b_ih, b_hh, o, hn, s, false); });
  };
  const auto x = g.x.var(), h0 = g.h0.var(), w_ih = g.w_ih.var(), w_hh = g.w_hh.var(), b_ih = g.b_ih.var(), b_hh = g.b_hh.var();

  Operand w_ih_bad_rows(2, 12), w_ih_bad_cols(3, 9), w_hh_bad(4, 11), b_bad(11, 1), h0_bad(4, 3), x_bad(3, 9);
  check_names(call(x, h0, w_ih_bad_rows.var(), w_hh, b_ih, b_hh, out, h_n, seq),
              {"dyad::gru_direction", "x is [3 x 10]", "w_ih is [2 x 12]"});
  check_names(call(x, h0, w_ih_bad_cols.var(), w_hh, b_ih, b_hh, out, h_n, seq),
              {"dyad::gru_direction", "w_ih is [3 x 9]", "w_hh is [4 x 12]"});
  check_names(call(x, h0, w_ih, w_hh_bad.var(), b_ih, b_hh, out, h_n, seq), {"dyad::gru_direction", "w_hh is [4 x 11]"});
  check_names(call(x, h0, w_ih, w_hh, b_bad.var(), b_hh, out, h_n, seq),
              {"dyad::gru_direction", "b_ih is [11 x 1]", "w_hh is [4 x 12]"});
  check_names(call(x, h0, w_ih, w_hh, b_ih, b_bad.var(), out, h_n, seq),
              {"dyad::gru_direction", "b_hh is [11 x 1]", "w_hh is [4 x 12]"});
  check_names(call(x, h0_bad.var(), w_ih, w_hh, b_ih, b_hh, out, h_n, seq),
              {"dyad::gru_direction", "h0 is [4 x 3]", "w_hh is [4 x 12]", "expected h0 [4 x 2]"});
  check_names(call(x, h0, w_ih, w_hh, b_ih, b_hh, out.block_cols(0, 9), h_n, seq),
              {"dyad::gru_direction", "out is [4 x 9]", "x is [3 x 10]", "expected out [4 x 10]"});
  check_names(call(x, h0, w_ih, w_hh, b_ih, b_hh, out, out.block_cols(0, 3), seq),
              {"dyad::gru_direction", "h_n is [4 x 3]", "expected h_n [4 x 2]"});
  check_names(call(x_bad.var(), h0, w_ih, w_hh, b_ih, b_hh, out, h_n, seq),
              {"dyad::gru_direction", "x has 9 columns", "5 steps x 2 samples = 10"});
  check_names(call(x, h0, w_ih, w_hh, b_ih, b_hh, out, h_n, SequenceShape{10, 0, nullptr}),
              {"dyad::gru_direction", "seq is 10 steps x 0 samples"});
  const int lengths[] = {5, 6};
  check_names(call(x, h0, w_ih, w_hh, b_ih, b_hh, out, h_n, SequenceShape{5, 2, lengths}),
              {"dyad::gru_direction", "seq.lengths[1] is 6", "expected 1 to 5"});
  check_names(call(x, h0, w_ih, Var<double>(nullptr, nullptr, 4, 12), b_ih, b_hh, out, h_n, seq),
              {"dyad::gru_direction", "w_hh is [4 x 12]", "no data"});
  CHECK(tape.size() == 0);

  // Matched: the final state is the last output column block, and one node is recorded.
  gru_direction(tape, x, h0, w_ih, w_hh, b_ih, b_hh, out, h_n, seq, false);
  CHECK(tape.size() == 1);
  CHECK((h_n.value() - out.value().rightCols(2)).cwiseAbs().maxCoeff() == 0.0);
  CHECK(out.value().allFinite());
}

TEST_CASE("rnn_direction / lstm_direction: the weights have gates(cell) * hidden columns") {
  Tape<double> tape;
  GruOperands g(3, 4, 5, 2);  // GRU-shaped: w_hh [4 x 12]
  const SequenceShape seq{5, 2, nullptr};
  Var<double> out = tape.variable(4, 10), h_n = tape.variable(4, 2);
  auto call = [&](Cell cell, const Var<double>& w_ih, const Var<double>& w_hh, const Var<double>& b_ih, const Var<double>& b_hh) {
    return error_of([&] { recurrent_direction(tape, cell, g.x.var(), g.h0.var(), w_ih, w_hh, b_ih, b_hh, out, h_n, seq, false); });
  };
  check_names(call(Cell::lstm, g.w_ih.var(), g.w_hh.var(), g.b_ih.var(), g.b_hh.var()),
              {"dyad::lstm_direction", "w_hh is [4 x 12]", "[hidden x 4 * hidden]", "for the lstm"});
  check_names(call(Cell::rnn, g.w_ih.var(), g.w_hh.var(), g.b_ih.var(), g.b_hh.var()),
              {"dyad::rnn_direction", "w_hh is [4 x 12]", "[hidden x 1 * hidden]", "for the rnn"});
  Operand w_ih(3, 16), w_hh(4, 16), b(16, 1), b_short(12, 1);
  check_names(call(Cell::lstm, w_ih.var(), w_hh.var(), b_short.var(), b.var()),
              {"dyad::lstm_direction", "b_ih is [12 x 1]", "w_hh is [4 x 16]"});
  CHECK(tape.size() == 0);
  recurrent_direction(tape, Cell::lstm, g.x.var(), g.h0.var(), w_ih.var(), w_hh.var(), b.var(), b.var(), out, h_n, seq, false);
  CHECK(tape.size() == 1);
  CHECK((h_n.value() - out.value().rightCols(2)).cwiseAbs().maxCoeff() == 0.0);
}

TEST_CASE("gru_layer: direction count and the second direction's weights") {
  Tape<double> tape;
  GruOperands f(3, 4, 5, 2), r(3, 4, 5, 2);
  const SequenceShape seq{5, 2, nullptr};
  Operand h0(8, 2), w_hh_small(3, 9), b_ih_3(12, 3);
  Var<double> out = tape.variable(8, 10), h_n = tape.variable(8, 2);
  const GruWeights<double> fw{f.w_ih.var(), f.w_hh.var(), f.b_ih.var(), f.b_hh.var(), false};
  const GruWeights<double> rw{r.w_ih.var(), r.w_hh.var(), r.b_ih.var(), r.b_hh.var(), true};
  auto call = [&](std::span<const GruWeights<double>> w, const Var<double>& h) {
    return error_of([&] { gru_layer<double>(tape, f.x.var(), w, h, out, h_n, seq); });
  };
  const std::array<GruWeights<double>, 3> three{fw, rw, fw};
  check_names(call(three, h0.var()), {"dyad::gru_layer", "3 weight sets", "1 or 2"});
  check_names(call({}, h0.var()), {"dyad::gru_layer", "0 weight sets"});
  const std::array<GruWeights<double>, 2> mixed{fw, {r.w_ih.var(), w_hh_small.var(), r.b_ih.var(), r.b_hh.var(), true}};
  check_names(call(mixed, h0.var()), {"dyad::gru_layer", "weights[1].w_hh is [3 x 9]", "weights[0].w_hh is [4 x 12]"});
  const std::array<GruWeights<double>, 2> wide_bias{fw, {r.w_ih.var(), r.w_hh.var(), b_ih_3.var(), r.b_hh.var(), true}};
  check_names(call(wide_bias, h0.var()), {"dyad::gru_layer", "weights[1].b_ih is [12 x 3]"});
  const std::array<GruWeights<double>, 2> both{fw, rw};
  check_names(call(both, f.h0.var()), {"dyad::gru_layer", "h0 is [4 x 2]", "weights[0].w_hh is [4 x 12]", "expected h0 [8 x 2]"});
  CHECK(tape.size() == 0);

  // Matched: each direction's final state sits at its end of the sequence.
  gru_layer<double>(tape, f.x.var(), both, h0.var(), out, h_n, seq);
  CHECK(tape.size() == 1);
  CHECK((h_n.value().topRows(4) - out.value().topRows(4).rightCols(2)).cwiseAbs().maxCoeff() == 0.0);
  CHECK((h_n.value().bottomRows(4) - out.value().bottomRows(4).leftCols(2)).cwiseAbs().maxCoeff() == 0.0);
}

TEST_CASE("RecurrentStack::forward: input size, h0, sequence, parameters") {
  Parameters<double> params;
  GruStack<double> gru(params, "rnn", GruShape{3, 4, 2, true});
  Rng rng(1);
  gru.init(params, rng);
  Tape<double> tape;
  const SequenceShape seq{5, 2, nullptr};
  Operand x(3, 10), x_wide(4, 10), x_short(3, 8), h0(16, 2), h0_bad(8, 2);
  auto call = [&](GruStack<double>& stack, Parameters<double>& p, const Var<double>& in, const Var<double>& h, SequenceShape s) {
    return error_of([&] { stack.forward(tape, p, in, h, s); });
  };

  check_names(call(gru, params, x_wide.var(), Var<double>{}, seq),
              {"dyad::RecurrentStack::forward", "x is [4 x 10]", "input size is 3"});
  check_names(call(gru, params, x_short.var(), Var<double>{}, seq),
              {"dyad::RecurrentStack::forward", "x has 8 columns", "5 steps x 2 samples = 10"});
  check_names(call(gru, params, x.var(), h0_bad.var(), seq),
              {"dyad::RecurrentStack::forward", "h0 is [8 x 2]", "expected h0 [16 x 2]"});
  const int lengths[] = {0, 5};
  check_names(call(gru, params, x.var(), Var<double>{}, SequenceShape{5, 2, lengths}),
              {"dyad::RecurrentStack::forward", "seq.lengths[0] is 0"});
  GruStack<double> empty;
  check_names(call(empty, params, x.var(), Var<double>{}, seq), {"dyad::RecurrentStack::forward", "no parameters"});
  Parameters<double> other;
  check_names(call(gru, other, x.var(), Var<double>{}, seq), {"dyad::RecurrentStack::forward", "params holds 0 parameters"});
  CHECK(tape.size() == 0);

  const auto r = gru.forward(tape, params, x.var(), h0.var(), seq);
  CHECK(r.output.rows == 8);
  CHECK(r.output.cols == 10);
  CHECK(r.h_n.rows == 16);
  CHECK(r.h_n.cols == 2);
  CHECK(tape.size() == 2);  // one node per layer
  CHECK(r.output.value().allFinite());
}

TEST_CASE("a float tape checks the same way") {
  Tape<float> tape;
  Matrix<float> x = Matrix<float>::Ones(6, 64), w = Matrix<float>::Ones(5, 32);
  CHECK(error_of([&] {
          linear(tape, Tape<float>::constant(x.data(), 6, 64), Tape<float>::constant(w.data(), 5, 32), Var<float>{});
        }) == "dyad::linear: x is [6 x 64] but weight is [5 x 32] (expected weight rows = x rows)");
}
