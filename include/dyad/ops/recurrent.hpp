// A recurrent layer (GRU, RNN or LSTM; one or two directions) over a whole sequence as a
// single tape node. Forward: the input projection of every time step is one GEMM; only
// h_{t-1} W_hh^T stays in the time loop, followed by the cell's fused gate kernel. Backward (BPTT): only
// dh_{t-1} = dA_t W_hh is sequential; dW_ih, dW_hh, dx and the biases are single GEMMs over
// all T*B columns. With a thread pool, the two directions (or, for one direction, halves of
// the batch) run their time loops on different cores: one synchronisation per layer phase,
// never one per time step.
#pragma once

#include "dyad/core/sequence.hpp"
#include "dyad/core/tape.hpp"
#include "dyad/ops/cell.hpp"
#include "dyad/simd/bf16_gemm.hpp"
#include "dyad/simd/gru_gates.hpp"
#include "dyad/simd/lstm_gates.hpp"
#include "dyad/simd/rnn_gates.hpp"
#include "dyad/simd/packed_gemm.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <span>

namespace dyad {

// One direction's parameters, PyTorch's seen column-major: w_ih = weight_ih^T [I x G],
// w_hh = weight_hh^T [H x G]; biases [G x 1], with G = gates(cell) * H.
template <class T>
struct RecurrentWeights {
  Var<T> w_ih, w_hh, b_ih, b_hh;
  bool reverse = false;
};
template <class T>
using GruWeights = RecurrentWeights<T>;

namespace detail {

template <class T>
struct RecurrentDirection {
  RecurrentWeights<T> w;
  Var<T> h0, out, h_n;  // row blocks of the layer's tensors
  T* act = nullptr;     // [G x N]: saved activations, dGi in backward ([G x B] unless hoisted)
  // GRU: [H x N] saved W_hn h + b_hn (training). LSTM: the cell states, [H x N] when training,
  // [H x B] updated in place when scoring. RNN: none.
  T* saved = nullptr;
  T* gh = nullptr;  // [G x B]: the recurrent product of one step
  // [G x N]: gradient of the recurrent pre-activations (training); act itself for the RNN and
  // LSTM, whose input and recurrent pre-activations add up.
  T* dgh = nullptr;
  T* dh = nullptr;         // [H x B]
  T* dh_direct = nullptr;  // [H x B]
  T* c0 = nullptr;         // LSTM, training: [H x B] zeros, the state before the first step
  T* dc = nullptr;         // LSTM, training: [H x B] the cell state's gradient
  // W_hh packed once per layer call for the per-step products (simd::PackedMatrix; null when
  // the shape does not suit it): W_hh^T h in forward, W_hh dA in backward (training).
  const T* hh_packed = nullptr;
  const T* hh_packed_backward = nullptr;
  // bf16 scoring (tape precision bf16): W_ih^T and W_hh^T packed in bf16, and the state of
  // every sample as the bf16 operand of the next step's product ([H x B]).
  const simd::bf16::bf16* ih_bf16 = nullptr;
  const simd::bf16::bf16* hh_bf16 = nullptr;
  simd::bf16::bf16* state_bf16 = nullptr;
};

// The bf16 kernels for float; never reached for other types (the tape keeps them fp32).
template <class T>
void bf16_multiply_add(const simd::bf16::bf16* packed, Index rows, Index cols, const simd::bf16::bf16* b, Index ldb, T* c,
                       Index ldc, Index n) {
#ifdef DYAD_BF16_KERNELS
  if constexpr (std::is_same_v<T, float>) simd::bf16::multiply_add(packed, rows, cols, b, ldb, c, ldc, n);
#endif
}
template <class T>
void bf16_convert(const T* x, Index ldx, Index rows, Index n, simd::bf16::bf16* out, Index ldo) {
#ifdef DYAD_BF16_KERNELS
  if constexpr (std::is_same_v<T, float>) simd::bf16::convert_columns(x, ldx, rows, n, out, ldo);
#endif
}

template <class T>
struct RecurrentLayerNode {
  Cell cell;
  Var<T> x;
  std::array<RecurrentDirection<T>, 2> dir;
  int directions;
  int shards;  // batch shards per direction
  // The input projection of all steps is one GEMM up front when training (act is saved for
  // backward) or when it fits in cache; large scoring batches project step by step instead,
  // so the [3H x B] buffer stays in cache.
  bool hoisted;
  SequenceShape seq;
  const Tape<T>* tape;
  // x in bf16 (bf16 scoring): columns of x_ld = even(x rows) values.
  const simd::bf16::bf16* x_bf16 = nullptr;
  Index x_ld = 0;

  Index H() const { return dir[0].h0.rows; }
  // Columns [b0, b1) of the batch that task `task` owns, and its direction.
  void task_range(int task, int& d, Index& b0, Index& b1) const {
    d = task / shards;
    const int s = task % shards;
    b0 = seq.batch * s / shards;
    b1 = seq.batch * (s + 1) / shards;
  }
  Index G() const { return gates(cell) * H(); }
  static Index time_of(const RecurrentDirection<T>& g, Index k, Index steps) { return g.w.reverse ? steps - 1 - k : k; }
  // The state before step t in processing order: h0, or the output of the previous step.
  Var<T> previous(const RecurrentDirection<T>& g, Index k, Index t) const {
    return k == 0 ? g.h0 : g.out.block_cols((g.w.reverse ? t + 1 : t - 1) * seq.batch, seq.batch);
  }
  // The LSTM's cell states [H x B] before step t (training: columns of `saved`, or c0).
  T* previous_cell(const RecurrentDirection<T>& g, Index k, Index t) const {
    return k == 0 ? g.c0 : g.saved + (g.w.reverse ? t + 1 : t - 1) * seq.batch * H();
  }

  void forward_range(int d, Index b0, Index b1) {
    RecurrentDirection<T>& g = dir[static_cast<std::size_t>(d)];
    const Index H = this->H(), G = this->G(), B = seq.batch, nb = b1 - b0;
    Eigen::Map<Matrix<T>> GH(g.gh + b0 * G, G, nb);
    const bool training = tape->recording(), bf16 = g.hh_bf16 != nullptr;
    if (cell == Cell::lstm && !training) std::fill_n(g.saved + b0 * H, H * nb, T(0));  // c0 = 0
    if (bf16) bf16_convert(g.h0.val + b0 * g.h0.ld, g.h0.ld, H, nb, g.state_bf16 + b0 * H, H);
    Index t = 0;
    for (Index k = 0; k < seq.steps; ++k) {
      t = time_of(g, k, seq.steps);
      const Var<T> hp = previous(g, k, t);
      if (!hoisted) {
        Eigen::Map<Matrix<T>> GI(g.act + b0 * G, G, nb);
        GI.colwise() = g.w.b_ih.value().col(0);
        if (x_bf16) bf16_multiply_add(g.ih_bf16, G, x.rows, x_bf16 + (t * B + b0) * x_ld, x_ld, g.act + b0 * G, G, nb);
        else GI.noalias() += g.w.w_ih.value().transpose() * x.value().middleCols(t * B + b0, nb);
      }
      // Bias first, product accumulated: Eigen would otherwise zero the buffer before the GEMM.
      GH.colwise() = g.w.b_hh.value().col(0);
      if (bf16) bf16_multiply_add(g.hh_bf16, G, H, g.state_bf16 + b0 * H, H, g.gh + b0 * G, G, nb);
      else if (g.hh_packed)
        simd::PackedMatrix<T>::multiply_add(g.hh_packed, G, H, hp.val + b0 * hp.ld, hp.ld, g.gh + b0 * G, G, nb);
      else GH.noalias() += g.w.w_hh.value().transpose() * hp.value().middleCols(b0, nb);
      T* const cp = cell == Cell::lstm && training ? previous_cell(g, k, t) : nullptr;
      for (Index b = b0; b < b1; ++b) {
        const Index c = t * B + b;
        T* h = g.out.val + c * g.out.ld;
        T* a = g.act + (hoisted ? c : b) * G;
        const auto h_size = static_cast<std::size_t>(H);
        if (seq.active(t, b)) {
          switch (cell) {
            case Cell::gru:
              simd::gru_gates_forward(a, g.gh + b * G, hp.val + b * hp.ld, h, training ? g.saved + c * H : nullptr, h_size);
              break;
            case Cell::rnn: simd::rnn_gates_forward(a, g.gh + b * G, h, h_size); break;
            case Cell::lstm:
              if (training) simd::lstm_gates_forward(a, g.gh + b * G, cp + b * H, g.saved + c * H, h, h_size);
              else simd::lstm_gates_forward(a, g.gh + b * G, g.saved + b * H, g.saved + b * H, h, h_size);
              break;
          }
        } else {
          std::copy_n(hp.val + b * hp.ld, H, h);
          if (cp) std::copy_n(cp + b * H, H, g.saved + c * H);  // the cell state carries too
        }
      }
      // The next step's operand. Once per step, not per sample: reading a state straight after
      // the gate pass stored it stalled on store forwarding (a quarter of the time on AMD).
      if (bf16) bf16_convert(g.out.val + (t * B + b0) * g.out.ld, g.out.ld, H, nb, g.state_bf16 + b0 * H, H);
    }
    g.h_n.value().middleCols(b0, nb) = g.out.value().middleCols(t * B + b0, nb);
  }

  void backward_range(int d, Index b0, Index b1) {
    RecurrentDirection<T>& g = dir[static_cast<std::size_t>(d)];
    const Index H = this->H(), G = this->G(), B = seq.batch, nb = b1 - b0;
    Eigen::Map<Matrix<T>> DH(g.dh + b0 * H, H, nb), DHd(g.dh_direct + b0 * H, H, nb);
    if (g.h_n.needs_grad()) DH = g.h_n.adjoint().middleCols(b0, nb);
    else DH.setZero();
    if (g.dc) std::fill_n(g.dc + b0 * H, H * nb, T(0));  // c_n is not an output
    for (Index k = seq.steps - 1; k >= 0; --k) {
      const Index t = time_of(g, k, seq.steps);
      if (g.out.needs_grad()) DH += g.out.adjoint().middleCols(t * B + b0, nb);
      const Var<T> hp = previous(g, k, t);
      const T* const cp = cell == Cell::lstm ? previous_cell(g, k, t) : nullptr;
      for (Index b = b0; b < b1; ++b) {
        const Index c = t * B + b;
        const auto h_size = static_cast<std::size_t>(H);
        if (seq.active(t, b)) {
          switch (cell) {
            case Cell::gru:
              simd::gru_gates_backward(g.act + c * G, g.saved + c * H, hp.val + b * hp.ld, g.dh + b * H, g.dgh + c * G,
                                       g.dh_direct + b * H, h_size);
              break;
            case Cell::rnn:
              simd::rnn_gates_backward(g.out.val + c * g.out.ld, g.dh + b * H, g.act + c * G, g.dh_direct + b * H, h_size);
              break;
            case Cell::lstm:
              simd::lstm_gates_backward(g.act + c * G, g.saved + c * H, cp + b * H, g.dh + b * H, g.dc + b * H, g.dh_direct + b * H,
                                        h_size);
              break;
          }
        } else {  // padding: no gradient enters the gates; the states' gradients carry
          std::fill_n(g.act + c * G, G, T(0));
          if (g.dgh != g.act) std::fill_n(g.dgh + c * G, G, T(0));
          std::copy_n(g.dh + b * H, H, g.dh_direct + b * H);
        }
      }
      DH = DHd;
      if (g.hh_packed_backward)
        simd::PackedMatrix<T>::multiply_add(g.hh_packed_backward, H, G, g.dgh + (t * B + b0) * G, G, g.dh + b0 * H, H, nb);
      else DH.noalias() += g.w.w_hh.value() * Eigen::Map<Matrix<T>>(g.dgh + (t * B + b0) * G, G, nb);
    }
    if (g.h0.needs_grad()) g.h0.adjoint().middleCols(b0, nb) += DH;
  }

  // Weight and bias gradients of one direction: single GEMMs over all T*B columns.
  void weight_gradients(int d) {
    RecurrentDirection<T>& g = dir[static_cast<std::size_t>(d)];
    const Index G = this->G(), B = seq.batch, N = seq.columns();
    const Eigen::Map<Matrix<T>> dGi(g.act, G, N), dGh(g.dgh, G, N);
    if (g.w.w_ih.needs_grad()) g.w.w_ih.adjoint().noalias() += x.value() * dGi.transpose();
    if (g.w.b_ih.needs_grad()) add_row_sums<T>(g.w.b_ih.adjoint().col(0), dGi);
    if (g.w.b_hh.needs_grad()) add_row_sums<T>(g.w.b_hh.adjoint().col(0), dGh);
    if (g.w.w_hh.needs_grad()) {
      // dW_hh^T = sum_t h_{t-1} dGh_t^T, with h_{t-1} the previous state in processing order.
      const Index first = g.w.reverse ? N - B : 0;  // the column block whose previous state is h0
      g.w.w_hh.adjoint().noalias() += g.h0.value() * dGh.middleCols(first, B).transpose();
      if (seq.steps > 1) {
        const auto states = g.out.value();
        if (g.w.reverse) g.w.w_hh.adjoint().noalias() += states.rightCols(N - B) * dGh.leftCols(N - B).transpose();
        else g.w.w_hh.adjoint().noalias() += states.leftCols(N - B) * dGh.rightCols(N - B).transpose();
      }
    }
  }

  void backward() {
    const int tasks = directions * shards;
    tape->parallel(tasks, [&](int task) {
      int d;
      Index b0, b1;
      task_range(task, d, b0, b1);
      backward_range(d, b0, b1);
    });
    tape->parallel(directions, [&](int d) { weight_gradients(d); });
    if (!x.needs_grad()) return;
    // dx = sum_d W_ih,d dGi,d, split by column halves so threads never add into the same column.
    const Index N = seq.columns(), G = this->G();
    const int parts = tape->threads();
    tape->parallel(parts, [&](int p) {
      const Index c0 = N * p / parts, c1 = N * (p + 1) / parts;
      for (int d = 0; d < directions; ++d) {
        const auto& g = dir[static_cast<std::size_t>(d)];
        x.adjoint().middleCols(c0, c1 - c0).noalias() += g.w.w_ih.value() * Eigen::Map<Matrix<T>>(g.act + c0 * G, G, c1 - c0);
      }
    });
  }
};

// The operands of recurrent_layer / recurrent_direction (`op`). The hidden size H is the first
// direction's w_hh rows ([H x G], G = gates(cell) * H); every other operand is checked against
// it, x and seq. recurrent_layer names the weights "weights[d].w_ih", recurrent_direction (one
// set) plain "w_ih".
template <class T>
void check_recurrent_layer(const char* op, Cell cell, bool one_set, const Var<T>& x, std::span<const RecurrentWeights<T>> weights,
                           const Var<T>& h0, const Var<T>& out, const Var<T>& h_n, const SequenceShape& seq) {
  if (weights.size() != 1 && weights.size() != 2) [[unlikely]]
    shape_error(op, weights.size(), " weight sets (expected 1 or 2 directions)");
  check_operand(op, "x", x);
  check_sequence(op, "x", x.cols, seq);
  static constexpr const char* kPlain[4] = {"w_ih", "w_hh", "b_ih", "b_hh"};
  static constexpr const char* kIndexed[2][4] = {{"weights[0].w_ih", "weights[0].w_hh", "weights[0].b_ih", "weights[0].b_hh"},
                                                 {"weights[1].w_ih", "weights[1].w_hh", "weights[1].b_ih", "weights[1].b_hh"}};
  const Var<T>& w_hh0 = weights[0].w_hh;
  const char* const w_hh0_name = one_set ? kPlain[1] : kIndexed[0][1];
  const Index H = w_hh0.rows, G = gates(cell) * H;
  for (std::size_t d = 0; d < weights.size(); ++d) {
    const RecurrentWeights<T>& w = weights[d];
    const char* const* name = one_set ? kPlain : kIndexed[d];
    check_operand(op, name[0], w.w_ih);
    check_operand(op, name[1], w.w_hh);
    check_operand(op, name[2], w.b_ih);
    check_operand(op, name[3], w.b_hh);
    if (d == 0 && (H < 1 || w.w_hh.cols != G)) [[unlikely]]
      shape_error(op, name[1], " is ", w.w_hh, " (expected [hidden x ", gates(cell), " * hidden] with hidden >= 1 for the ",
                  to_string(cell), ")");
    if (d > 0 && (w.w_hh.rows != H || w.w_hh.cols != G)) [[unlikely]]
      shape_error(op, name[1], " is ", w.w_hh, " but ", w_hh0_name, " is ", w_hh0, " (expected the same shape)");
    if (w.w_ih.rows != x.rows) [[unlikely]]
      shape_error(op, "x is ", x, " but ", name[0], " is ", w.w_ih, " (expected w_ih rows = x rows)");
    if (w.w_ih.cols != G) [[unlikely]]
      shape_error(op, name[0], " is ", w.w_ih, " but ", name[1], " is ", w.w_hh, " (expected w_ih cols = w_hh cols)");
    if (w.b_ih.rows != G || w.b_ih.cols != 1) [[unlikely]]
      shape_error(op, name[2], " is ", w.b_ih, " but ", name[1], " is ", w.w_hh, " (expected b_ih [w_hh cols x 1])");
    if (w.b_hh.rows != G || w.b_hh.cols != 1) [[unlikely]]
      shape_error(op, name[3], " is ", w.b_hh, " but ", name[1], " is ", w.w_hh, " (expected b_hh [w_hh cols x 1])");
  }
  const Index DH = static_cast<Index>(weights.size()) * H, B = seq.batch, N = seq.columns();
  const char* const state_rows = one_set ? "hidden" : "directions * hidden";
  check_operand(op, "h0", h0);
  check_operand(op, "out", out);
  check_operand(op, "h_n", h_n);
  if (h0.rows != DH || h0.cols != B) [[unlikely]]
    shape_error(op, "h0 is ", h0, " but ", w_hh0_name, " is ", w_hh0, " and seq.batch is ", B, " (expected h0 [", DH, " x ", B,
                "] = [", state_rows, " x batch])");
  if (out.rows != DH || out.cols != N) [[unlikely]]
    shape_error(op, "out is ", out, " but x is ", x, " and ", w_hh0_name, " is ", w_hh0, " (expected out [", DH, " x ", N, "] = [",
                state_rows, " x steps * batch])");
  if (h_n.rows != DH || h_n.cols != B) [[unlikely]]
    shape_error(op, "h_n is ", h_n, " but ", w_hh0_name, " is ", w_hh0, " and seq.batch is ", B, " (expected h_n [", DH, " x ", B,
                "] = [", state_rows, " x batch])");
}

// recurrent_layer after its operands were checked.
template <class T>
void run_recurrent_layer(Tape<T>& tape, Cell cell, const Var<T>& x, std::span<const RecurrentWeights<T>> weights, const Var<T>& h0,
                         const Var<T>& out, const Var<T>& h_n, SequenceShape seq) {
  const FlushDenormals ftz;
  const int D = static_cast<int>(weights.size());
  const Index H = weights[0].w_hh.rows, G = gates(cell) * H, B = seq.batch, N = seq.columns();
  Arena& arena = tape.arena();
  const bool training = tape.recording();
  if (seq.lengths) {  // keep the lengths alive until backward
    int* copy = arena.allocate<int>(static_cast<std::size_t>(B));
    std::copy_n(seq.lengths, B, copy);
    seq.lengths = copy;
  }
  auto alloc = [&](Index n) { return arena.allocate<T>(static_cast<std::size_t>(n)); };
  const bool hoisted = training || G * N * static_cast<Index>(sizeof(T)) <= (Index{1} << 20);
  RecurrentLayerNode<T> node{cell, x, {}, D, 1, hoisted, seq, &tape};
  // Directions first; spare threads split the batch (a unidirectional layer on two cores).
  node.shards = static_cast<int>(std::clamp<Index>(tape.threads() / D, 1, B));
  for (int d = 0; d < D; ++d) {
    const auto& w = weights[static_cast<std::size_t>(d)];
    auto& g = node.dir[static_cast<std::size_t>(d)];
    g = {w, h0.block_rows(d * H, H), out.block_rows(d * H, H), h_n.block_rows(d * H, H), alloc(G * (hoisted ? N : B))};
    g.gh = alloc(G * B);
    if (cell == Cell::gru && training) g.saved = alloc(H * N);
    if (cell == Cell::lstm) g.saved = alloc(H * (training ? N : B));
    if (!training) continue;
    g.dgh = cell == Cell::gru ? alloc(G * N) : g.act;
    g.dh = alloc(H * B);
    g.dh_direct = alloc(H * B);
    if (cell == Cell::lstm) {
      g.c0 = alloc(H * B);
      std::fill_n(g.c0, H * B, T(0));
      g.dc = alloc(H * B);
    }
  }
  // bf16 scoring: W_hh packed in bf16 and a bf16 state per direction; W_ih too, with x converted
  // once, when x has enough rows to gain from it. A first layer's few input signals stay fp32:
  // their product is cheap, and rounding the measurements themselves cost the most accuracy.
  namespace bf = simd::bf16;
  const bool bf16 = std::is_same_v<T, float> && !training && tape.precision() == Precision::bf16 && bf::supports(G);
  if constexpr (std::is_same_v<T, float>) {
    if (bf16) {
      const Index I = x.rows;
      const bool inputs = I >= 16;
      if (inputs) {
        node.x_ld = bf::even(I);
        bf::bf16* xb = arena.allocate<bf::bf16>(static_cast<std::size_t>(node.x_ld * N));
        node.x_bf16 = xb;
        tape.parallel(tape.threads(), [&](int p) {
          const Index c0 = N * p / tape.threads(), c1 = N * (p + 1) / tape.threads();
          bf16_convert(x.val + c0 * x.ld, x.ld, I, c1 - c0, xb + c0 * node.x_ld, node.x_ld);
        });
      }
      for (auto& g : node.dir) {
        if (!g.w.w_hh.val) continue;
        if (inputs) {
          bf::bf16* ih = arena.allocate<bf::bf16>(bf::packed_size(G, I));
          bf::pack(g.w.w_ih.val, g.w.w_ih.ld, 1, G, I, ih);  // W_ih^T(i, k) = w_ih(k, i)
          g.ih_bf16 = ih;
        }
        bf::bf16* hh = arena.allocate<bf::bf16>(bf::packed_size(G, H));
        bf::pack(g.w.w_hh.val, g.w.w_hh.ld, 1, G, H, hh);
        g.hh_bf16 = hh;
        g.state_bf16 = arena.allocate<bf::bf16>(static_cast<std::size_t>(H * B));
      }
    }
  }
  // W_hh packed for the per-step products: [3H x H] for W_hh^T h, [H x 3H] for W_hh dA.
  using Packed = simd::PackedMatrix<T>;
  for (auto& g : node.dir) {
    if (!g.w.w_hh.val || bf16) continue;  // a direction this layer does not have, or bf16's
    const Var<T>& w = g.w.w_hh;
    if (Packed::supports(G)) {
      T* p = alloc(G * H);
      Packed::pack(w.val, w.ld, 1, G, H, p);
      g.hh_packed = p;
    }
    if (training && Packed::supports(H)) {
      T* p = alloc(H * G);
      Packed::pack(w.val, 1, w.ld, H, G, p);
      g.hh_packed_backward = p;
    }
  }
  // The hoisted input projections, split by direction and column halves.
  const int halves = std::max(1, tape.threads() / D);
  if (hoisted)
    tape.parallel(D * halves, [&](int task) {
      const auto& g = node.dir[static_cast<std::size_t>(task / halves)];
      const Index c0 = N * (task % halves) / halves, c1 = N * (task % halves + 1) / halves;
      Eigen::Map<Matrix<T>> Gi(g.act + c0 * G, G, c1 - c0);
      Gi.colwise() = g.w.b_ih.value().col(0);
      if (node.x_bf16) bf16_multiply_add(g.ih_bf16, G, x.rows, node.x_bf16 + c0 * node.x_ld, node.x_ld, g.act + c0 * G, G, c1 - c0);
      else Gi.noalias() += g.w.w_ih.value().transpose() * x.value().middleCols(c0, c1 - c0);
    });
  tape.parallel(D * node.shards, [&](int task) {
    int d;
    Index b0, b1;
    node.task_range(task, d, b0, b1);
    node.forward_range(d, b0, b1);
  });
  tape.template record<RecurrentLayerNode<T>>(node);
}

}  // namespace detail

// Runs a recurrent layer of `cell`s in one or two directions over x [I x T*B] from h0 [D*H x B]
// (direction d in row block d), writing the states to out [D*H x T*B] and the final states to
// h_n [D*H x B]. The caller allocates out and h_n so layers share buffers without copies. An
// LSTM starts from cell states c0 = 0, and its final cell states are not an output (dyad's
// definition: the latent reads h_n only, the decoder starts from h0 and c0 = 0).
// Mismatched shapes or sequence lengths throw std::invalid_argument before anything runs.
template <class T>
void recurrent_layer(Tape<T>& tape, Cell cell, const Var<T>& x, std::span<const RecurrentWeights<T>> weights, const Var<T>& h0,
                     const Var<T>& out, const Var<T>& h_n, SequenceShape seq) {
  static constexpr const char* op[] = {"gru_layer", "rnn_layer", "lstm_layer"};
  detail::check_recurrent_layer(op[static_cast<int>(cell)], cell, false, x, weights, h0, out, h_n, seq);
  detail::run_recurrent_layer(tape, cell, x, weights, h0, out, h_n, seq);
}

// One direction of a recurrent layer: x [I x T*B], h0 [H x B] -> out [H x T*B], h_n [H x B].
template <class T>
void recurrent_direction(Tape<T>& tape, Cell cell, const Var<T>& x, const Var<T>& h0, const Var<T>& w_ih, const Var<T>& w_hh,
                         const Var<T>& b_ih, const Var<T>& b_hh, const Var<T>& out, const Var<T>& h_n, SequenceShape seq,
                         bool reverse) {
  static constexpr const char* op[] = {"gru_direction", "rnn_direction", "lstm_direction"};
  const RecurrentWeights<T> w[1] = {{w_ih, w_hh, b_ih, b_hh, reverse}};
  detail::check_recurrent_layer<T>(op[static_cast<int>(cell)], cell, true, x, w, h0, out, h_n, seq);
  detail::run_recurrent_layer<T>(tape, cell, x, w, h0, out, h_n, seq);
}

// The GRU's names for the two above.
template <class T>
void gru_layer(Tape<T>& tape, const Var<T>& x, std::span<const GruWeights<T>> weights, const Var<T>& h0, const Var<T>& out,
               const Var<T>& h_n, SequenceShape seq) {
  recurrent_layer(tape, Cell::gru, x, weights, h0, out, h_n, seq);
}

template <class T>
void gru_direction(Tape<T>& tape, const Var<T>& x, const Var<T>& h0, const Var<T>& w_ih, const Var<T>& w_hh, const Var<T>& b_ih,
                   const Var<T>& b_hh, const Var<T>& out, const Var<T>& h_n, SequenceShape seq, bool reverse) {
  recurrent_direction(tape, Cell::gru, x, h0, w_ih, w_hh, b_ih, b_hh, out, h_n, seq, reverse);
}

}  // namespace dyad
