// Vectorised activations. sigmoid(x) = 0.5 + 0.5 tanh(x / 2), so one tanh kernel serves every
// GRU gate with no division. Eigen's vectorised float tanh (a clamped rational function, within
// 4 ulp of std::tanh, tests/test_autodiff.cpp) is twice as fast here as xsimd's exp-based one.
#pragma once

#include <Eigen/Core>
#include <xsimd/xsimd.hpp>

#include <cmath>
#include <concepts>
#include <cstddef>

namespace dyad::simd {

template <class X>
inline auto sigmoid(const Eigen::ArrayBase<X>& x) {
  using T = typename X::Scalar;
  return T(0.5) + T(0.5) * (T(0.5) * x).tanh();
}

template <std::floating_point T>
inline T sigmoid(T x) {
  return T(0.5) + T(0.5) * std::tanh(T(0.5) * x);
}

// y[i] = max(x[i], 0)
template <class T>
inline void relu(const T* x, T* y, std::size_t n) {
  using B = xsimd::batch<T>;
  std::size_t i = 0;
  for (; i + B::size <= n; i += B::size) xsimd::max(B::load_unaligned(x + i), B(T(0))).store_unaligned(y + i);
  for (; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
}

}  // namespace dyad::simd
