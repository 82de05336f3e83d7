// A tensor on the tape: a column-major matrix view of a value and (optionally) its adjoint.
// Views carry an outer stride so a row block (one direction of a GRU layer, one latent slot)
// is itself a Var without copying.
#pragma once

#include <Eigen/Core>

namespace dyad {

using Eigen::Index;

template <class T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
template <class T>
using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;
template <class T>
using StridedMap = Eigen::Map<Matrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

template <class T>
struct Var {
  T* val = nullptr;
  T* grad = nullptr;  // null when no gradient is wanted (data, inference)
  Index rows = 0;
  Index cols = 0;
  Index ld = 0;  // distance between columns

  Var() = default;
  Var(T* v, T* g, Index r, Index c, Index lead = -1) : val(v), grad(g), rows(r), cols(c), ld(lead < 0 ? r : lead) {}

  bool needs_grad() const { return grad != nullptr; }
  bool contiguous() const { return ld == rows; }
  Index size() const { return rows * cols; }

  StridedMap<T> value() const { return StridedMap<T>(val, rows, cols, Eigen::OuterStride<>(ld)); }
  StridedMap<T> adjoint() const { return StridedMap<T>(grad, rows, cols, Eigen::OuterStride<>(ld)); }
  T scalar() const { return val[0]; }

  Var block_rows(Index start, Index n) const {
    return Var(val + start, grad ? grad + start : nullptr, n, cols, ld);
  }
  Var block_cols(Index start, Index n) const {
    return Var(val + start * ld, grad ? grad + start * ld : nullptr, rows, n, ld);
  }
  // The same value, cut off from gradient flow.
  Var detached() const { return Var(val, nullptr, rows, cols, ld); }
};

// dst += m.rowwise().sum(), column after column: Eigen's rowwise reduction of a column-major
// matrix walks rows with a stride, which is several times slower for bias gradients.
template <class T, class Dst, class M>
void add_row_sums(Dst&& dst, const M& m) {
  for (Index c = 0; c < m.cols(); ++c) dst += m.col(c);
}

}  // namespace dyad
