// The vanilla RNN's (PyTorch's nn.RNN, tanh) per-step kernels for one sample:
//   h = tanh(gi + gh), gi = W_ih x + b_ih, gh = W_hh h_prev + b_hh.
#pragma once

#include "dyad/config.hpp"

#include <Eigen/Core>

#include <cstddef>

namespace dyad::simd {

// Forward: writes the new state to h. Backward needs only h, which the layer keeps as its output.
template <class T>
inline void rnn_gates_forward(const T* DYAD_RESTRICT gi, const T* DYAD_RESTRICT gh, T* DYAD_RESTRICT h, std::size_t H) {
  using Array = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
  using ConstArray = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
  const auto n = static_cast<Eigen::Index>(H);
  Array(h, n) = (ConstArray(gi, n) + ConstArray(gh, n)).tanh();
}

// Backward: da = dh (1 - h^2), the gradient of both pre-activations (gi and gh share it).
// The previous state has no direct path (unlike the GRU's z h_prev): dh_prev is zero.
template <class T>
inline void rnn_gates_backward(const T* DYAD_RESTRICT h, const T* DYAD_RESTRICT dh, T* DYAD_RESTRICT da, T* DYAD_RESTRICT dh_prev,
                               std::size_t H) {
  using Array = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
  using ConstArray = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
  const auto n = static_cast<Eigen::Index>(H);
  const ConstArray y(h, n);
  Array(da, n) = ConstArray(dh, n) * (T(1) - y * y);
  Array(dh_prev, n).setZero();
}

}  // namespace dyad::simd
