// Microbenchmarks of dyad's hot paths (Google Benchmark): one recurrent layer of each cell
// (GRU, RNN, LSTM), Linear, the fused gate kernels of each cell, AdamW, a whole training step and
// scoring, plus a single-threaded Eigen GEMM as the machine's achievable FP32 reference. Timings
// only; nothing here asserts on time.
//
// Names: BM_Gru*, BM_Rnn* and BM_Lstm* run the same code and argument grid for the GRU, the
// vanilla RNN (tanh) and the LSTM (--benchmark_filter='Lstm', or 'Direction_Forward' for every
// cell side by side). The T / B complexity runs are the GRU's only.
//
// Counters
//   items_per_second  segments/s (SetItemsProcessed(iterations * B)); elements/s for the gate
//                     kernels and parameters/s for AdamW.
//   GFLOP             achieved GFLOP/s (a rate), from the FLOP count of the dense math:
//     Recurrent layer, per time step, direction, layer and sample, forward:  2 * G * (I + H)
//       with G = gates(cell) * H: 3H for the GRU, H for the RNN, 4H for the LSTM (the input GEMM
//       2*G*I plus the recurrent GEMM 2*G*H; the gate math, O(H), is left out).
//     Linear [in -> out] per column, forward:                      2 * in * out
//     Backward is about 2x forward (dX and dW are each a GEMM the size of the forward one), so
//     forward + backward counts 3x forward.
//     A model step counts both recurrent stacks and outputs2embedding per step plus the per-sample
//     linears (hidden2mean, hidden2log_v, latent2hidden, the mileage head); losses, the
//     reparameterisation and AdamW are not counted.
//   GEMM M x N x K: 2 * M * N * K.
//
// Every benchmark runs two warm-up steps first (the first grows the tape's arena, the second
// touches the merged block), and resets the tape each iteration, so the timed loop allocates
// nothing and takes no page faults.
#include <dyad/core/parameters.hpp>
#include <dyad/core/random.hpp>
#include <dyad/core/tape.hpp>
#include <dyad/core/thread_pool.hpp>
#include <dyad/model.hpp>
#include <dyad/nn/recurrent.hpp>
#include <dyad/ops/cell.hpp>
#include <dyad/ops/recurrent.hpp>
#include <dyad/ops/linear.hpp>
#include <dyad/optim/adamw.hpp>
#include <dyad/simd/bf16_gemm.hpp>
#include <dyad/simd/gru_gates.hpp>
#include <dyad/simd/lstm_gates.hpp>
#include <dyad/simd/packed_gemm.hpp>
#include <dyad/simd/rnn_gates.hpp>

#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

namespace {

using dyad::Cell;
using dyad::Index;
using dyad::Matrix;
using dyad::Mode;
using dyad::SequenceShape;
using dyad::Tape;
using dyad::Var;
using Mat = Matrix<float>;

constexpr Index kInput = 6;    // first-layer input width (the "ev" task's encoder columns)
constexpr Index kSteps = 128;  // segment length T
constexpr double kMinTime = 0.3;

Mat random_matrix(dyad::Rng& rng, Index rows, Index cols, double scale = 1.0) {
  Mat m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<float>(scale * rng.normal());
  return m;
}

// A tensor that owns its value and adjoint (weights and seeded outputs outside the tape).
struct Owned {
  Mat value, grad;
  Owned() = default;
  Owned(dyad::Rng& rng, Index rows, Index cols, double scale) : value(random_matrix(rng, rows, cols, scale)) {
    grad = Mat::Zero(rows, cols);
  }
  Var<float> var() { return Var<float>(value.data(), grad.data(), value.rows(), value.cols()); }
};

// Forward FLOPs of one direction of one recurrent layer over a whole batch (see the file comment).
double recurrent_flops(Cell cell, Index input, Index hidden, Index steps, Index batch) {
  return 2.0 * double(dyad::gates(cell)) * double(hidden) * double(input + hidden) * double(steps) * double(batch);
}

void report(benchmark::State& st, double flops_per_iter, std::int64_t items_per_iter) {
  st.SetItemsProcessed(st.iterations() * items_per_iter);
  st.counters["GFLOP"] = benchmark::Counter(flops_per_iter * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

template <class Step>
void warm_up(Step& step) {
  step();  // grows the arena (a step that outgrew it leaves several blocks)
  step();  // runs in the merged block, so its pages are touched before timing
}

// A pool of `threads` (the caller included) attached to the tape; none for one thread.
std::unique_ptr<dyad::ThreadPool> make_pool(Tape<float>& tape, int threads) {
  if (threads <= 1) return nullptr;
  auto pool = std::make_unique<dyad::ThreadPool>(threads);
  tape.set_pool(pool.get());
  return pool;
}

// What one direction of a layer keeps on the tape, forward + backward, plus slack (the warm-up
// grows the arena anyway; this only spares it the first reallocations). Per column (time step x
// sample): the gate activations, later their gradient (G rows), the GRU's recurrent-gate
// gradient (G more), the GRU's saved gh_n or the LSTM's cell state (H) and the stack's output
// with its adjoint (2H); per sample: one step's recurrent product (G) and the states and their
// gradients (8H: h0, h_n, dh, the LSTM's c0 and dc); per layer call: W_hh packed twice (2 * G * H).
// Measured high-water marks at H 64 / 128, B 1 / 64 / 128 stay below it for every cell (the
// GRU's bidirectional stack at H 128, B 128 comes within 1%).
std::size_t recurrent_arena_bytes(Cell cell, Index hidden, Index steps, Index batch, Index directions = 1) {
  const Index G = dyad::gates(cell) * hidden, cols = steps * batch;
  const Index floats = (2 * G + 3 * hidden) * cols + (G + 8 * hidden) * batch + 2 * G * hidden;
  return static_cast<std::size_t>(directions * floats) * sizeof(float) + (std::size_t{1} << 20);
}

// ---- One direction of a recurrent layer (recurrent_direction) ----------------------------------
// Encoder-like: x and h0 need no gradient; the weights and biases do. Output adjoints are
// seeded once, outside the tape (backward only reads them).
void direction_case(benchmark::State& st, Cell cell, bool train, Index H, Index B, Index T, int threads = 1) {
  dyad::Rng rng(1);
  const Index N = T * B, G = dyad::gates(cell) * H;
  const double bound = 1.0 / std::sqrt(double(H));
  const Mat x = random_matrix(rng, kInput, N), h0 = Mat::Zero(H, B);
  Owned w_ih(rng, kInput, G, bound), w_hh(rng, H, G, bound), b_ih(rng, G, 1, bound), b_hh(rng, G, 1, bound);
  Owned out(rng, H, N, 0.0), h_n(rng, H, B, 0.0);  // values written by the layer
  out.grad = random_matrix(rng, H, N, 1e-2);       // the seeded output adjoints
  h_n.grad = random_matrix(rng, H, B, 1e-2);
  const SequenceShape seq{T, B, nullptr};
  Tape<float> tape(train ? Mode::training : Mode::inference, recurrent_arena_bytes(cell, H, T, B));
  const auto pool = make_pool(tape, threads);
  auto step = [&] {
    tape.reset();
    if (train)
      for (Owned* p : {&w_ih, &w_hh, &b_ih, &b_hh}) p->grad.setZero();
    dyad::recurrent_direction(tape, cell, Tape<float>::constant(x.data(), kInput, N), Tape<float>::constant(h0.data(), H, B),
                              w_ih.var(), w_hh.var(), b_ih.var(), b_hh.var(), out.var(), h_n.var(), seq, false);
    if (train) tape.backward_seeded();
    benchmark::DoNotOptimize(out.value.data());
    benchmark::DoNotOptimize(w_hh.grad.data());
    benchmark::ClobberMemory();
  };
  warm_up(step);
  for (auto _ : st) step();
  report(st, (train ? 3.0 : 1.0) * recurrent_flops(cell, kInput, H, T, B), B);
}

// Args {H, B, threads}.
void direction_args_case(benchmark::State& st, Cell cell, bool train) {
  direction_case(st, cell, train, st.range(0), st.range(1), kSteps, static_cast<int>(st.range(2)));
}
void BM_GruDirection_Forward(benchmark::State& st) { direction_args_case(st, Cell::gru, false); }
void BM_GruDirection_FwdBwd(benchmark::State& st) { direction_args_case(st, Cell::gru, true); }
void BM_RnnDirection_Forward(benchmark::State& st) { direction_args_case(st, Cell::rnn, false); }
void BM_RnnDirection_FwdBwd(benchmark::State& st) { direction_args_case(st, Cell::rnn, true); }
void BM_LstmDirection_Forward(benchmark::State& st) { direction_args_case(st, Cell::lstm, false); }
void BM_LstmDirection_FwdBwd(benchmark::State& st) { direction_args_case(st, Cell::lstm, true); }

// Linear growth in T and in B (H = 64): the tape holds one node however long the sequence.
void BM_GruDirection_FwdBwd_OverT(benchmark::State& st) {
  const Index T = st.range(0);
  direction_case(st, Cell::gru, true, 64, 64, T);
  st.SetComplexityN(T);
}
void BM_GruDirection_FwdBwd_OverB(benchmark::State& st) {
  const Index B = st.range(0);
  direction_case(st, Cell::gru, true, 64, B, kSteps);
  st.SetComplexityN(B);
}

// ---- One bidirectional RecurrentStack layer ----------------------------------------------------
void stack_case(benchmark::State& st, Cell cell, bool train) {
  const Index H = st.range(0), B = st.range(1), T = kSteps, N = T * B;
  dyad::Rng rng(2);
  dyad::Parameters<float> params;
  const dyad::RecurrentStack<float> stack(params, "rnn", dyad::RecurrentShape{kInput, H, 1, true, cell});
  stack.init(params, rng);
  const Mat x = random_matrix(rng, kInput, N);
  const Mat seed_out = random_matrix(rng, 2 * H, N, 1e-2), seed_hn = random_matrix(rng, 2 * H, B, 1e-2);
  const SequenceShape seq{T, B, nullptr};
  Tape<float> tape(train ? Mode::training : Mode::inference, recurrent_arena_bytes(cell, H, T, B, 2));
  const auto pool = make_pool(tape, static_cast<int>(st.range(2)));
  auto step = [&] {
    tape.reset();
    if (train) params.zero_grad();
    const auto r = stack.forward(tape, params, Tape<float>::constant(x.data(), kInput, N), Var<float>{}, seq);
    if (train) {
      r.output.adjoint() = seed_out;
      r.h_n.adjoint() = seed_hn;
      tape.backward_seeded();
    }
    benchmark::DoNotOptimize(r.output.val);
    benchmark::DoNotOptimize(params.grads().data());
    benchmark::ClobberMemory();
  };
  warm_up(step);
  for (auto _ : st) step();
  report(st, (train ? 3.0 : 1.0) * 2.0 * recurrent_flops(cell, kInput, H, T, B), B);
}

void BM_GruStackBidir_Forward(benchmark::State& st) { stack_case(st, Cell::gru, false); }
void BM_GruStackBidir_FwdBwd(benchmark::State& st) { stack_case(st, Cell::gru, true); }
void BM_RnnStackBidir_Forward(benchmark::State& st) { stack_case(st, Cell::rnn, false); }
void BM_RnnStackBidir_FwdBwd(benchmark::State& st) { stack_case(st, Cell::rnn, true); }
void BM_LstmStackBidir_Forward(benchmark::State& st) { stack_case(st, Cell::lstm, false); }
void BM_LstmStackBidir_FwdBwd(benchmark::State& st) { stack_case(st, Cell::lstm, true); }

// ---- Linear over T*B columns -----------------------------------------------------------------
// Args {in, out, B}: the model's outputs2embedding (2H -> E-D) and hidden2mean (F*H -> Z)
// shapes, each applied to all T*B columns.
void linear_case(benchmark::State& st, bool train) {
  const Index in = st.range(0), out = st.range(1), B = st.range(2), N = kSteps * B;
  dyad::Rng rng(3);
  Owned x(rng, in, N, 1.0), w(rng, in, out, 1.0 / std::sqrt(double(in))), b(rng, out, 1, 0.1);
  Tape<float> tape(train ? Mode::training : Mode::inference,
                   static_cast<std::size_t>(3 * out * N) * sizeof(float) + (std::size_t{1} << 20));
  auto step = [&] {
    tape.reset();
    if (train) {
      x.grad.setZero();
      w.grad.setZero();
      b.grad.setZero();
    }
    const Var<float> y = dyad::linear(tape, x.var(), w.var(), b.var());
    if (train) {
      y.adjoint().setConstant(1e-3f);
      tape.backward_seeded();
    }
    benchmark::DoNotOptimize(y.val);
    benchmark::DoNotOptimize(x.grad.data());
    benchmark::ClobberMemory();
  };
  warm_up(step);
  for (auto _ : st) step();
  report(st, (train ? 3.0 : 1.0) * 2.0 * double(in) * double(out) * double(N), B);
}

void BM_Linear_Forward(benchmark::State& st) { linear_case(st, false); }
void BM_Linear_FwdBwd(benchmark::State& st) { linear_case(st, true); }

// ---- The fused gate kernels alone over one time step's [G x B] block ---------------------------
// G = gates(cell) * H. The GRU and LSTM kernels work in place (forward turns gi into the saved
// activations, backward turns those into dGi; the LSTM's backward also updates the cell-state
// gradient dc), so every iteration first restores gi (and the LSTM's dc) from pristine copies of
// realistic pre-activations (a vectorised tanh may take value-dependent paths, so the values
// matter). The RNN's kernels leave gi alone; its restore is timed all the same, so the three
// cells subtract alike. BM_*Gates_Restore times that copy alone: forward ~ Forward - Restore,
// backward ~ FwdBwd - Forward. Items: H * B (elements of the state).
struct GateBlock {
  Cell cell;
  Index H, B, G;
  // saved: the GRU's gh_n or the LSTM's new cell state; dgh: the GRU's dGh or the RNN's dA.
  Mat gi0, gi, gh, h_prev, h, saved, dh, dgh, dh_prev, c_prev, dc0, dc;
  GateBlock(Cell c, Index hidden, Index batch) : cell(c), H(hidden), B(batch), G(dyad::gates(c) * hidden) {
    dyad::Rng rng(4);
    gi0 = random_matrix(rng, G, B, 1.0);
    gi = gi0;
    gh = random_matrix(rng, G, B, 0.5);
    h_prev = random_matrix(rng, H, B, 0.5);
    h = Mat::Zero(H, B);
    saved = Mat::Zero(H, B);
    dh = random_matrix(rng, H, B, 1e-2);
    dgh = Mat::Zero(G, B);
    dh_prev = Mat::Zero(H, B);
    if (cell == Cell::lstm) {
      c_prev = random_matrix(rng, H, B, 0.5);
      dc0 = random_matrix(rng, H, B, 1e-2);
      dc = dc0;
    }
  }
  void restore() {
    std::memcpy(gi.data(), gi0.data(), static_cast<std::size_t>(gi.size()) * sizeof(float));
    if (cell == Cell::lstm) std::memcpy(dc.data(), dc0.data(), static_cast<std::size_t>(dc.size()) * sizeof(float));
  }
  void forward() {
    const auto h_ = static_cast<std::size_t>(H);
    switch (cell) {
      case Cell::gru:
        for (Index b = 0; b < B; ++b)
          dyad::simd::gru_gates_forward(gi.col(b).data(), gh.col(b).data(), h_prev.col(b).data(), h.col(b).data(),
                                        saved.col(b).data(), h_);
        break;
      case Cell::rnn:
        for (Index b = 0; b < B; ++b) dyad::simd::rnn_gates_forward(gi.col(b).data(), gh.col(b).data(), h.col(b).data(), h_);
        break;
      case Cell::lstm:
        for (Index b = 0; b < B; ++b)
          dyad::simd::lstm_gates_forward(gi.col(b).data(), gh.col(b).data(), c_prev.col(b).data(), saved.col(b).data(),
                                         h.col(b).data(), h_);
        break;
    }
  }
  void backward() {
    const auto h_ = static_cast<std::size_t>(H);
    switch (cell) {
      case Cell::gru:
        for (Index b = 0; b < B; ++b)
          dyad::simd::gru_gates_backward(gi.col(b).data(), saved.col(b).data(), h_prev.col(b).data(), dh.col(b).data(),
                                         dgh.col(b).data(), dh_prev.col(b).data(), h_);
        break;
      case Cell::rnn:
        for (Index b = 0; b < B; ++b)
          dyad::simd::rnn_gates_backward(h.col(b).data(), dh.col(b).data(), dgh.col(b).data(), dh_prev.col(b).data(), h_);
        break;
      case Cell::lstm:
        for (Index b = 0; b < B; ++b)
          dyad::simd::lstm_gates_backward(gi.col(b).data(), saved.col(b).data(), c_prev.col(b).data(), dh.col(b).data(),
                                          dc.col(b).data(), dh_prev.col(b).data(), h_);
        break;
    }
  }
};

void gates_case(benchmark::State& st, Cell cell, int what) {  // 0 restore only, 1 forward, 2 forward + backward
  GateBlock g(cell, st.range(0), st.range(1));
  for (auto _ : st) {
    g.restore();
    if (what >= 1) g.forward();
    if (what >= 2) g.backward();
    benchmark::DoNotOptimize(g.gi.data());
    benchmark::DoNotOptimize(g.h.data());
    benchmark::DoNotOptimize(g.dgh.data());
    benchmark::DoNotOptimize(g.dh_prev.data());
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(st.iterations() * g.H * g.B);
}
void BM_GruGates_Restore(benchmark::State& st) { gates_case(st, Cell::gru, 0); }
void BM_GruGates_Forward(benchmark::State& st) { gates_case(st, Cell::gru, 1); }
void BM_GruGates_FwdBwd(benchmark::State& st) { gates_case(st, Cell::gru, 2); }
void BM_RnnGates_Restore(benchmark::State& st) { gates_case(st, Cell::rnn, 0); }
void BM_RnnGates_Forward(benchmark::State& st) { gates_case(st, Cell::rnn, 1); }
void BM_RnnGates_FwdBwd(benchmark::State& st) { gates_case(st, Cell::rnn, 2); }
void BM_LstmGates_Restore(benchmark::State& st) { gates_case(st, Cell::lstm, 0); }
void BM_LstmGates_Forward(benchmark::State& st) { gates_case(st, Cell::lstm, 1); }
void BM_LstmGates_FwdBwd(benchmark::State& st) { gates_case(st, Cell::lstm, 2); }

// ---- AdamW over the flat parameter vector of a preset --------------------------------------------
const char* const kPresets[] = {"fivefold", "brand1"};

void BM_AdamW(benchmark::State& st) {
  const dyad::Model<float> model(dyad::preset(kPresets[st.range(0)]));
  dyad::Vector<float> p = model.parameters().values();
  dyad::Rng rng(5);
  dyad::Vector<float> g(p.size());
  for (Index i = 0; i < g.size(); ++i) g[i] = static_cast<float>(1e-2 * rng.normal());
  dyad::AdamW<float> opt({1e-3, 0.9, 0.999, 1e-8, 1e-6});
  opt.step(p, g);
  for (auto _ : st) {
    opt.step(p, g);
    benchmark::DoNotOptimize(p.data());
    benchmark::ClobberMemory();
  }
  st.SetLabel(std::string(kPresets[st.range(0)]) + ", " + std::to_string(p.size()) + " floats");
  st.SetItemsProcessed(st.iterations() * p.size());
  // Reads p, g, m, v and writes p, m, v.
  st.SetBytesProcessed(st.iterations() * p.size() * 7 * static_cast<std::int64_t>(sizeof(float)));
}

// ---- The whole model ------------------------------------------------------------------------------
double model_forward_flops(const dyad::ModelConfig& c, Index T, Index B) {
  const Index E = static_cast<Index>(c.roles.encoder.size()), D = static_cast<Index>(c.roles.condition);
  const Index H = c.hidden, Z = c.latent, Dir = c.directions(), F = c.factor(), G = dyad::gates(c.cell) * H;
  double per_column = 2.0 * double(Dir * H) * double(E - D);  // outputs2embedding
  for (Index l = 0; l < c.layers; ++l) {
    const Index in_enc = l == 0 ? E : Dir * H, in_dec = l == 0 ? D : Dir * H;
    per_column += double(Dir) * 2.0 * double(G) * double(in_enc + H + in_dec + H);
  }
  const double per_sample = 2.0 * (3.0 * double(F * H) * double(Z) + double(Z) * double(H / 2) + double(H / 2));
  return per_column * double(T * B) + per_sample * double(B);
}

// `n` random segments of length T over the preset's encoder columns, with mileage.
dyad::Dataset random_dataset(const dyad::ModelConfig& c, std::size_t n, Index T) {
  dyad::Dataset data(c.roles.encoder);
  dyad::Rng rng(6);
  const std::size_t cols = c.roles.encoder.size();
  std::vector<float> v(static_cast<std::size_t>(T) * cols);
  for (std::size_t s = 0; s < n; ++s) {
    for (auto& e : v) e = static_cast<float>(rng.normal());
    data.add({"car" + std::to_string(s / 8), static_cast<std::int64_t>(s % 8), 0, rng.uniform(0, 1e5), double(s)}, v);
  }
  return data;
}

void BM_Model_TrainStep(benchmark::State& st) {
  dyad::ModelConfig cfg = dyad::preset(kPresets[st.range(0)]);
  cfg.threads = static_cast<int>(st.range(1));
  cfg.epochs = dyad::limits::epochs;  // every iteration is one step of a run that never ends here
  dyad::Model<float> model(cfg);
  const auto B = static_cast<std::size_t>(cfg.batch_size);
  const dyad::Dataset data = random_dataset(cfg, B, kSteps);
  dyad::Trainer<dyad::Model<float>> trainer(model, data);  // the step fit() takes, batch B
  auto step = [&] {
    trainer.step();
    benchmark::ClobberMemory();
  };
  warm_up(step);
  for (auto _ : st) step();
  if (!model.parameters().values().allFinite()) st.SkipWithError("parameters became non-finite");
  st.SetLabel(std::string(kPresets[st.range(0)]) + ", B=" + std::to_string(B) + ", threads=" + std::to_string(cfg.threads));
  report(st, 3.0 * model_forward_flops(cfg, kSteps, static_cast<Index>(B)), static_cast<std::int64_t>(B));
}

void BM_Model_Score(benchmark::State& st) {
  dyad::ModelConfig cfg = dyad::preset(kPresets[st.range(0)]);
  cfg.threads = static_cast<int>(st.range(1));  // score() uses the model's own pool
  dyad::Model<float> model(cfg);
  const std::size_t B = 256;
  const dyad::Dataset data = random_dataset(cfg, B, kSteps);
  for (int i = 0; i < 2; ++i) benchmark::DoNotOptimize(model.score(data, B).rec_error.data());  // warm-up
  for (auto _ : st) {
    const dyad::Scores s = model.score(data, B);
    benchmark::DoNotOptimize(s.rec_error.data());
    benchmark::ClobberMemory();
  }
  st.SetLabel(std::string(kPresets[st.range(0)]) + ", B=" + std::to_string(B) + ", threads=" + std::to_string(cfg.threads));
  report(st, model_forward_flops(cfg, kSteps, static_cast<Index>(B)), static_cast<std::int64_t>(B));
}

// ---- FP32 reference: single-threaded Eigen GEMM ---------------------------------------------------
// 1024^3 is the machine's achievable peak through Eigen; the small shapes are the recurrent
// GEMM of one time step ([3H x H] * [H x B]) at H = 64 / 128, B = 1 / 64 / 128.
void BM_EigenGemm(benchmark::State& st) {
  const Index M = st.range(0), N = st.range(1), K = st.range(2);
  Eigen::setNbThreads(1);
  dyad::Rng rng(8);
  const Mat A = random_matrix(rng, M, K), B = random_matrix(rng, K, N);
  Mat C(M, N);
  for (auto _ : st) {
    C.noalias() = A * B;
    benchmark::DoNotOptimize(C.data());
    benchmark::ClobberMemory();
  }
  st.counters["GFLOP"] =
      benchmark::Counter(2e-9 * double(M) * double(N) * double(K), benchmark::Counter::kIsIterationInvariantRate);
}

// The GRU's per-step recurrent product W_hh^T h [3H x H] x [H x B]: Eigen's GEMM (which packs
// W_hh on every call) against simd::PackedMatrix (packed once, as ops/gru.hpp does per layer).
// kind 0: Eigen; 1: simd::PackedMatrix (fp32); 2: simd::bf16 (bf16 operands, fp32 sums).
void BM_RecurrentProduct(benchmark::State& st) {
  const Index H = st.range(0), B = st.range(1), G = 3 * H;
  const auto kind = st.range(2);
  Eigen::setNbThreads(1);
  dyad::Rng rng(9);
  const Mat w_hh = random_matrix(rng, H, G), h = random_matrix(rng, H, B);
  Mat gh = Mat::Zero(G, B);
  using P = dyad::simd::PackedMatrix<float>;
  namespace bf = dyad::simd::bf16;
  std::vector<float> panels(P::packed_size(G, H));
  std::vector<bf::bf16> panels16(bf::packed_size(G, H)), h16(static_cast<std::size_t>(bf::even(H) * B));
  if (kind == 1 && !P::supports(G)) return st.SkipWithError("H is not a multiple of the SIMD width");
  if (kind == 2 && !dyad::cpu_has_bf16()) return st.SkipWithError("this CPU has no AVX512-BF16");
  P::pack(w_hh.data(), H, 1, G, H, panels.data());
  bf::pack(w_hh.data(), H, 1, G, H, panels16.data());
  for (std::size_t i = 0; i < h16.size(); ++i) h16[i] = bf::from_float(h.data()[i]);  // H even here: no padding row
  for (auto _ : st) {
    if (kind == 1) P::multiply_add(panels.data(), G, H, h.data(), H, gh.data(), G, B);
#ifdef DYAD_BF16_KERNELS
    else if (kind == 2) bf::multiply_add(panels16.data(), G, H, h16.data(), H, gh.data(), G, B);
#endif
    else gh.noalias() += w_hh.transpose() * h;
    benchmark::DoNotOptimize(gh.data());
    benchmark::ClobberMemory();
  }
  st.counters["GFLOP"] =
      benchmark::Counter(2e-9 * double(G) * double(H) * double(B), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

// ---- Registration -------------------------------------------------------------------------------
// threads: 1, or 2 with a ThreadPool on the tape (directions, then batch shards, on two cores).
// Wall-clock time throughout, so the threaded runs show their speed-up.
#define DYAD_LAYER_ARGS                                \
  ArgNames({"H", "B", "threads"})                      \
      ->ArgsProduct({{64, 128}, {1, 64, 128}, {1, 2}}) \
      ->MinTime(kMinTime)                              \
      ->UseRealTime()                                  \
      ->Unit(benchmark::kMillisecond)

// The same grid for every cell (GRU first, under its original names).
BENCHMARK(BM_GruDirection_Forward)->DYAD_LAYER_ARGS;
BENCHMARK(BM_GruDirection_FwdBwd)->DYAD_LAYER_ARGS;
BENCHMARK(BM_GruStackBidir_Forward)->DYAD_LAYER_ARGS;
BENCHMARK(BM_GruStackBidir_FwdBwd)->DYAD_LAYER_ARGS;
BENCHMARK(BM_RnnDirection_Forward)->DYAD_LAYER_ARGS;
BENCHMARK(BM_RnnDirection_FwdBwd)->DYAD_LAYER_ARGS;
BENCHMARK(BM_RnnStackBidir_Forward)->DYAD_LAYER_ARGS;
BENCHMARK(BM_RnnStackBidir_FwdBwd)->DYAD_LAYER_ARGS;
BENCHMARK(BM_LstmDirection_Forward)->DYAD_LAYER_ARGS;
BENCHMARK(BM_LstmDirection_FwdBwd)->DYAD_LAYER_ARGS;
BENCHMARK(BM_LstmStackBidir_Forward)->DYAD_LAYER_ARGS;
BENCHMARK(BM_LstmStackBidir_FwdBwd)->DYAD_LAYER_ARGS;

BENCHMARK(BM_GruDirection_FwdBwd_OverT)
    ->ArgName("T")
    ->RangeMultiplier(2)
    ->Range(16, 512)
    ->Complexity(benchmark::oN)
    ->MinTime(kMinTime)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_GruDirection_FwdBwd_OverB)
    ->ArgName("B")
    ->RangeMultiplier(2)
    ->Range(8, 256)
    ->Complexity(benchmark::oN)
    ->MinTime(kMinTime)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// {in, out, B}: fivefold (H 64, F 2, Z 32, E-D 4, B 64) and brand1 (H 128, F 4, Z 8, E-D 5, B 128).
#define DYAD_LINEAR_ARGS       \
  ArgNames({"in", "out", "B"}) \
      ->Args({128, 4, 64})     \
      ->Args({128, 32, 64})    \
      ->Args({256, 5, 128})    \
      ->Args({512, 8, 128})    \
      ->MinTime(kMinTime)      \
      ->UseRealTime()          \
      ->Unit(benchmark::kMicrosecond)
BENCHMARK(BM_Linear_Forward)->DYAD_LINEAR_ARGS;
BENCHMARK(BM_Linear_FwdBwd)->DYAD_LINEAR_ARGS;

#define DYAD_GATE_ARGS \
  ArgNames({"H", "B"})->ArgsProduct({{64, 128}, {1, 64, 128}})->MinTime(kMinTime)->UseRealTime()->Unit(benchmark::kMicrosecond)
BENCHMARK(BM_GruGates_Restore)->DYAD_GATE_ARGS;
BENCHMARK(BM_GruGates_Forward)->DYAD_GATE_ARGS;
BENCHMARK(BM_GruGates_FwdBwd)->DYAD_GATE_ARGS;
BENCHMARK(BM_RnnGates_Restore)->DYAD_GATE_ARGS;
BENCHMARK(BM_RnnGates_Forward)->DYAD_GATE_ARGS;
BENCHMARK(BM_RnnGates_FwdBwd)->DYAD_GATE_ARGS;
BENCHMARK(BM_LstmGates_Restore)->DYAD_GATE_ARGS;
BENCHMARK(BM_LstmGates_Forward)->DYAD_GATE_ARGS;
BENCHMARK(BM_LstmGates_FwdBwd)->DYAD_GATE_ARGS;

BENCHMARK(BM_AdamW)->ArgName("preset")->DenseRange(0, 1)->MinTime(kMinTime)->UseRealTime()->Unit(benchmark::kMicrosecond);

// preset 0 = fivefold, 1 = brand1.
BENCHMARK(BM_Model_TrainStep)
    ->ArgNames({"preset", "threads"})
    ->ArgsProduct({{0, 1}, {1, 2}})
    ->MinTime(kMinTime)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Model_Score)
    ->ArgNames({"preset", "threads"})
    ->ArgsProduct({{0, 1}, {1, 2}})
    ->MinTime(kMinTime)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK(BM_EigenGemm)
    ->ArgNames({"M", "N", "K"})
    ->Args({1024, 1024, 1024})
    ->Args({192, 1, 64})
    ->Args({192, 64, 64})
    ->Args({384, 128, 128})
    ->MinTime(kMinTime)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

BENCHMARK(BM_RecurrentProduct)
    ->ArgNames({"H", "B", "kind"})
    ->ArgsProduct({{64, 128, 256, 1024}, {32, 128, 256}, {0, 1, 2}})
    ->MinTime(kMinTime)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
