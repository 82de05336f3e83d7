// The LSTM's (PyTorch's nn.LSTM, gate order i, f, g, o) per-step kernels for one sample:
//   i = s(a_i), f = s(a_f), g = tanh(a_g), o = s(a_o), a = gi + gh,
//   c = f c_prev + i g, h = o tanh(c),
// gi holds W_ih x + b_ih, gh holds W_hh h_prev + b_hh.
#pragma once

#include "dyad/config.hpp"
#include "dyad/simd/activations.hpp"

#include <xsimd/xsimd.hpp>

#include <cmath>
#include <cstddef>

namespace dyad::simd {

// Forward: leaves (i, f, g, o) in gi (the saved activations), writes c and h. c may be c_prev
// (scoring keeps one cell state per sample and updates it in place).
template <class T>
inline void lstm_gates_forward(T* DYAD_RESTRICT gi, const T* DYAD_RESTRICT gh, const T* c_prev, T* c, T* DYAD_RESTRICT h,
                               std::size_t H) {
  using Array = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
  using ConstArray = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
  const auto n = static_cast<Eigen::Index>(H);
  Array i(gi, n), f(gi + H, n), g(gi + 2 * H, n), o(gi + 3 * H, n), out(h, n), cell(c, n);
  const ConstArray hi(gh, n), hf(gh + H, n), hg(gh + 2 * H, n), ho(gh + 3 * H, n), cp(c_prev, n);
  i = sigmoid(i + hi);
  f = sigmoid(f + hf);
  g = (g + hg).tanh();
  o = sigmoid(o + ho);
  cell = f * cp + i * g;
  out = o * cell.tanh();
}

// Backward for one sample. `act` holds the saved (i, f, g, o) and is overwritten with the
// gradient of the pre-activations (gi and gh share it). dc carries the cell state's gradient:
// in, the part from step t + 1 (f_{t+1} dc_{t+1}); out, this step's part for c_prev. The
// previous state has no direct path: dh_prev is zero.
template <class T>
inline void lstm_gates_backward(T* DYAD_RESTRICT act, const T* DYAD_RESTRICT c, const T* DYAD_RESTRICT c_prev,
                                const T* DYAD_RESTRICT dh, T* DYAD_RESTRICT dc, T* DYAD_RESTRICT dh_prev, std::size_t H) {
  using B = xsimd::batch<T>;
  T* ai = act;
  T* af = act + H;
  T* ag = act + 2 * H;
  T* ao = act + 3 * H;
  std::size_t j = 0;
  const B one(T(1));
  for (; j + B::size <= H; j += B::size) {
    const B i = B::load_unaligned(ai + j), f = B::load_unaligned(af + j), g = B::load_unaligned(ag + j),
            o = B::load_unaligned(ao + j), gh = B::load_unaligned(dh + j), tc = xsimd::tanh(B::load_unaligned(c + j));
    const B dcell = B::load_unaligned(dc + j) + gh * o * (one - tc * tc);
    (gh * tc * o * (one - o)).store_unaligned(ao + j);
    (dcell * B::load_unaligned(c_prev + j) * f * (one - f)).store_unaligned(af + j);
    (dcell * g * i * (one - i)).store_unaligned(ai + j);
    (dcell * i * (one - g * g)).store_unaligned(ag + j);
    (dcell * f).store_unaligned(dc + j);
    B(T(0)).store_unaligned(dh_prev + j);
  }
  for (; j < H; ++j) {
    const T i = ai[j], f = af[j], g = ag[j], o = ao[j], gh = dh[j], tc = std::tanh(c[j]);
    const T dcell = dc[j] + gh * o * (T(1) - tc * tc);
    ao[j] = gh * tc * o * (T(1) - o);
    af[j] = dcell * c_prev[j] * f * (T(1) - f);
    ai[j] = dcell * g * i * (T(1) - i);
    ag[j] = dcell * i * (T(1) - g * g);
    dc[j] = dcell * f;
    dh_prev[j] = T(0);
  }
}

}  // namespace dyad::simd
