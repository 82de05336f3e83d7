// y = x W^T + b over all columns at once (PyTorch's nn.Linear), one tape node.
#pragma once

#include "dyad/core/tape.hpp"

namespace dyad {

namespace detail {
template <class T>
struct LinearNode {
  Var<T> x, w, b, y;
  void backward() {
    const auto dy = y.adjoint();
    if (x.needs_grad()) x.adjoint().noalias() += w.value() * dy;
    if (w.needs_grad()) w.adjoint().noalias() += x.value() * dy.transpose();
    if (b.needs_grad()) add_row_sums<T>(b.adjoint().col(0), dy);
  }
};
}  // namespace detail

// x [in x N]; w is PyTorch's weight [out, in] seen column-major, i.e. [in x out]; b [out x 1]
// or empty (val == nullptr) for no bias. Returns y [out x N]. Mismatched shapes throw
// std::invalid_argument.
template <class T>
Var<T> linear(Tape<T>& tape, const Var<T>& x, const Var<T>& w, const Var<T>& b) {
  constexpr const char* op = "linear";
  detail::check_operand(op, "x", x);
  detail::check_operand(op, "weight", w);
  if (w.rows != x.rows) [[unlikely]]
    detail::shape_error(op, "x is ", x, " but weight is ", w, " (expected weight rows = x rows)");
  if (b.val) {
    detail::check_operand(op, "bias", b);
    if (b.rows != w.cols || b.cols != 1) [[unlikely]]
      detail::shape_error(op, "weight is ", w, " but bias is ", b, " (expected bias [weight cols x 1])");
  }
  Var<T> y = tape.variable(w.cols, x.cols);
  // Bias first, product accumulated: a plain `=` makes Eigen zero y before the GEMM.
  if (b.val) {
    y.value().colwise() = b.value().col(0);
    y.value().noalias() += w.value().transpose() * x.value();
  } else {
    y.value().noalias() = w.value().transpose() * x.value();
  }
  tape.template record<detail::LinearNode<T>>(x, w, b, y);
  return y;
}

}  // namespace dyad
