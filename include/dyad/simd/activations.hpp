// Vectorised sigmoid and tanh. sigmoid(x) = 0.5 + 0.5 tanh(x / 2): one accurate kernel
// (xsimd's tanh) serves both gates, with no division.
#pragma once

#include <xsimd/xsimd.hpp>

#include <cmath>
#include <concepts>
#include <cstddef>

namespace dyad::simd {

template <class T, class A>
inline xsimd::batch<T, A> sigmoid(const xsimd::batch<T, A>& x) {
  const xsimd::batch<T, A> half(T(0.5));
  return xsimd::fma(half, xsimd::tanh(half * x), half);
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
