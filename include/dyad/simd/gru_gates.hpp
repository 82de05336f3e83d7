// The fused GRU gate kernels, one pass over a sample's 3H gate pre-activations per time
// step (PyTorch's formulation and gate order r, z, n; b_hn sits inside the reset product):
//   r = s(gi_r + gh_r), z = s(gi_z + gh_z), n = tanh(gi_n + r * gh_n), h = (1 - z) n + z h_prev
// gi holds W_ih x + b_ih, gh holds W_hh h_prev + b_hh.
#pragma once

#include "dyad/config.hpp"
#include "dyad/simd/activations.hpp"

#include <cmath>
#include <cstddef>

namespace dyad::simd {

// Forward for one sample; writes the new state to h, leaves (r, z, n) in gi and, when
// training (saved_ghn not null), stores gh_n for backward.
template <class T>
inline void gru_gates_forward(T* DYAD_RESTRICT gi, const T* DYAD_RESTRICT gh, const T* DYAD_RESTRICT h_prev, T* DYAD_RESTRICT h,
                              T* DYAD_RESTRICT saved_ghn, std::size_t H) {
  using Array = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
  using ConstArray = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
  const auto n_ = static_cast<Eigen::Index>(H);
  Array r(gi, n_), z(gi + H, n_), n(gi + 2 * H, n_), out(h, n_);
  const ConstArray hr(gh, n_), hz(gh + H, n_), hn(gh + 2 * H, n_), hp(h_prev, n_);
  // r, z and n overwrite their pre-activations in place: the saved activations for backward.
  r = sigmoid(r + hr);
  z = sigmoid(z + hz);
  n = (n + r * hn).tanh();
  out = n + z * (hp - n);
  if (saved_ghn) Array(saved_ghn, n_) = hn;
}

// Backward for one sample. `act` holds the saved (r, z, n) and is overwritten with the
// gradient of the input pre-activations (dGi); dgh receives the gradient of gh; dh_prev
// receives the direct part z * dh of the previous state's gradient.
template <class T>
inline void gru_gates_backward(T* DYAD_RESTRICT act, const T* DYAD_RESTRICT ghn, const T* DYAD_RESTRICT h_prev,
                               const T* DYAD_RESTRICT dh, T* DYAD_RESTRICT dgh, T* DYAD_RESTRICT dh_prev, std::size_t H) {
  using B = xsimd::batch<T>;
  T* ar = act;
  T* az = act + H;
  T* an = act + 2 * H;
  std::size_t j = 0;
  const B one(T(1));
  for (; j + B::size <= H; j += B::size) {
    const B r = B::load_unaligned(ar + j);
    const B z = B::load_unaligned(az + j);
    const B n = B::load_unaligned(an + j);
    const B g = B::load_unaligned(dh + j);
    const B hp = B::load_unaligned(h_prev + j);
    const B dan = g * (one - z) * (one - n * n);
    const B daz = g * (hp - n) * z * (one - z);
    const B dar = dan * B::load_unaligned(ghn + j) * r * (one - r);
    dar.store_unaligned(ar + j);
    daz.store_unaligned(az + j);
    dan.store_unaligned(an + j);
    dar.store_unaligned(dgh + j);
    daz.store_unaligned(dgh + H + j);
    (dan * r).store_unaligned(dgh + 2 * H + j);
    (g * z).store_unaligned(dh_prev + j);
  }
  for (; j < H; ++j) {
    const T r = ar[j], z = az[j], n = an[j], g = dh[j];
    const T dan = g * (T(1) - z) * (T(1) - n * n);
    const T daz = g * (h_prev[j] - n) * z * (T(1) - z);
    const T dar = dan * ghn[j] * r * (T(1) - r);
    ar[j] = dar;
    az[j] = daz;
    an[j] = dan;
    dgh[j] = dar;
    dgh[H + j] = daz;
    dgh[2 * H + j] = dan * r;
    dh_prev[j] = g * z;
  }
}

}  // namespace dyad::simd
