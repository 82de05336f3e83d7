// One direction of a GRU layer over a whole sequence as a single tape node.
// Forward: the input projection of every time step is one GEMM; only h_{t-1} W_hh^T stays
// in the time loop, followed by the fused gate kernel. Backward (BPTT): only
// dh_{t-1} = dA_t W_hh is sequential; dW_ih, dW_hh, dx and the biases are single GEMMs over
// all T*B columns.
#pragma once

#include "dyad/core/tape.hpp"
#include "dyad/simd/gru_gates.hpp"

#include <algorithm>
#include <cstring>
#include <span>
#include <stdexcept>

namespace dyad {

// Sequence shape: steps T and batch B; column t*B + b of a [features x T*B] tensor is step t
// of sample b. `lengths` (optional, one per sample) marks steps t >= lengths[b] as padding:
// the state is carried unchanged through them, which is exactly PyTorch's packed-sequence
// result for both directions.
struct SequenceShape {
  Index steps = 0;
  Index batch = 0;
  const int* lengths = nullptr;

  Index columns() const { return steps * batch; }
  bool active(Index t, Index b) const { return lengths == nullptr || t < lengths[b]; }
};

namespace detail {

template <class T>
struct GruDirectionNode {
  Var<T> x, h0, w_ih, w_hh, b_ih, b_hh, out, h_n;
  T* act;  // [3H x T*B]: saved r, z, n; becomes dGi during backward
  T* ghn;  // [H x T*B]: saved W_hn h + b_hn
  SequenceShape seq;
  bool reverse;
  Arena* arena;

  Index step_time(Index k) const { return reverse ? seq.steps - 1 - k : k; }

  void backward() {
    const Index H = h0.rows, G = 3 * H, B = seq.batch, N = seq.columns();
    T* dgh = arena->allocate<T>(static_cast<std::size_t>(G * N));
    T* dh = arena->allocate<T>(static_cast<std::size_t>(H * B));
    T* dh_direct = arena->allocate<T>(static_cast<std::size_t>(H * B));
    Eigen::Map<Matrix<T>> DH(dh, H, B), DHd(dh_direct, H, B);
    if (h_n.needs_grad()) DH = h_n.adjoint(); else DH.setZero();
    for (Index k = seq.steps - 1; k >= 0; --k) {
      const Index t = step_time(k);
      if (out.needs_grad()) DH += out.adjoint().middleCols(t * B, B);
      const Var<T> hp = k == 0 ? h0 : out.block_cols((reverse ? t + 1 : t - 1) * B, B);
      for (Index b = 0; b < B; ++b) {
        const Index c = t * B + b;
        if (seq.active(t, b)) {
          simd::gru_gates_backward(act + c * G, ghn + c * H, hp.val + b * hp.ld, dh + b * H, dgh + c * G,
                                   dh_direct + b * H, static_cast<std::size_t>(H));
        } else {
          std::fill_n(act + c * G, G, T(0));
          std::fill_n(dgh + c * G, G, T(0));
          std::copy_n(dh + b * H, H, dh_direct + b * H);
        }
      }
      DH.noalias() = w_hh.value() * Eigen::Map<Matrix<T>>(dgh + t * B * G, G, B);
      DH += DHd;
    }
    if (h0.needs_grad()) h0.adjoint() += DH;

    const Eigen::Map<Matrix<T>> dGi(act, G, N), dGh(dgh, G, N);
    if (w_ih.needs_grad()) w_ih.adjoint().noalias() += x.value() * dGi.transpose();
    if (b_ih.needs_grad()) b_ih.adjoint() += dGi.rowwise().sum();
    if (x.needs_grad()) x.adjoint().noalias() += w_ih.value() * dGi;
    if (b_hh.needs_grad()) b_hh.adjoint() += dGh.rowwise().sum();
    if (w_hh.needs_grad()) {
      // dW_hh^T = sum_t h_{t-1} dGh_t^T, with h_{t-1} the previous state in processing order.
      const Index first = reverse ? N - B : 0;  // column block whose previous state is h0
      w_hh.adjoint().noalias() += h0.value() * dGh.middleCols(first, B).transpose();
      if (seq.steps > 1) {
        const auto states = out.value();
        if (reverse)
          w_hh.adjoint().noalias() += states.rightCols(N - B) * dGh.leftCols(N - B).transpose();
        else
          w_hh.adjoint().noalias() += states.leftCols(N - B) * dGh.rightCols(N - B).transpose();
      }
    }
  }
};

}  // namespace detail

// Runs one GRU direction. Weights are PyTorch's seen column-major: w_ih = weight_ih^T
// [I x 3H], w_hh = weight_hh^T [H x 3H]; biases [3H x 1]. x is [I x T*B], h0 [H x B].
// Writes the states to `out` [H x T*B] (a row block of the layer output) and the final state
// to `h_n` [H x B]; both are allocated by the caller so directions and layers share buffers.
template <class T>
void gru_direction(Tape<T>& tape, const Var<T>& x, const Var<T>& h0, const Var<T>& w_ih, const Var<T>& w_hh,
                   const Var<T>& b_ih, const Var<T>& b_hh, const Var<T>& out, const Var<T>& h_n,
                   SequenceShape seq, bool reverse) {
  const Index H = h0.rows, G = 3 * H, B = seq.batch, N = seq.columns();
  DYAD_ASSERT(x.cols == N && h0.cols == B && w_ih.rows == x.rows && w_ih.cols == G && w_hh.rows == H &&
              w_hh.cols == G && b_ih.rows == G && b_hh.rows == G && out.rows == H && out.cols == N &&
              h_n.rows == H && h_n.cols == B);
  Arena& arena = tape.arena();
  if (seq.lengths) {  // keep the lengths alive until backward
    int* copy = arena.allocate<int>(static_cast<std::size_t>(B));
    std::copy_n(seq.lengths, B, copy);
    seq.lengths = copy;
  }
  T* act = arena.allocate<T>(static_cast<std::size_t>(G * N));
  Eigen::Map<Matrix<T>> Gi(act, G, N);
  Gi.noalias() = w_ih.value().transpose() * x.value();
  Gi.colwise() += b_ih.value().col(0);

  T* ghn = tape.recording() ? arena.allocate<T>(static_cast<std::size_t>(H * N)) : nullptr;
  T* gh = arena.allocate<T>(static_cast<std::size_t>(G * B));
  Eigen::Map<Matrix<T>> GH(gh, G, B);
  Index t = 0;
  for (Index k = 0; k < seq.steps; ++k) {
    t = reverse ? seq.steps - 1 - k : k;
    const Var<T> hp = k == 0 ? h0 : out.block_cols((reverse ? t + 1 : t - 1) * B, B);
    GH.noalias() = w_hh.value().transpose() * hp.value();
    GH.colwise() += b_hh.value().col(0);
    for (Index b = 0; b < B; ++b) {
      const Index c = t * B + b;
      T* h = out.val + c * out.ld;
      if (seq.active(t, b))
        simd::gru_gates_forward(act + c * G, gh + b * G, hp.val + b * hp.ld, h, ghn ? ghn + c * H : nullptr,
                                static_cast<std::size_t>(H));
      else
        std::copy_n(hp.val + b * hp.ld, H, h);
    }
  }
  h_n.value() = out.value().middleCols(t * B, B);
  tape.template record<detail::GruDirectionNode<T>>(x, h0, w_ih, w_hh, b_ih, b_hh, out, h_n, act, ghn, seq, reverse,
                                                    &arena);
}

}  // namespace dyad
