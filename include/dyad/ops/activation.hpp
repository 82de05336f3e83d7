// Elementwise ReLU as one tape node.
#pragma once

#include "dyad/core/tape.hpp"
#include "dyad/simd/activations.hpp"

namespace dyad {

namespace detail {
template <class T>
struct ReluNode {
  Var<T> x, y;
  void backward() {
    if (!x.needs_grad()) return;
    // The subgradient at 0 is 0, as in PyTorch.
    x.adjoint().array() += (x.value().array() > T(0)).select(y.adjoint().array(), T(0));
  }
};
}  // namespace detail

template <class T>
Var<T> relu(Tape<T>& tape, const Var<T>& x) {
  detail::check_operand("relu", "x", x);
  Var<T> y = tape.variable(x.rows, x.cols);
  if (x.contiguous()) simd::relu(x.val, y.val, static_cast<std::size_t>(x.size()));
  else y.value() = x.value().cwiseMax(T(0));
  tape.template record<detail::ReluNode<T>>(x, y);
  return y;
}

}  // namespace dyad
