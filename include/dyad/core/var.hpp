// A tensor on the tape: a column-major matrix view of a value and (optionally) its adjoint.
// Views carry an outer stride so a row block (one direction of a GRU layer, one latent slot)
// is itself a Var without copying.
#pragma once

#include "dyad/config.hpp"

#include <Eigen/Core>

#include <concepts>
#include <stdexcept>
#include <string>

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

  Var block_rows(Index start, Index n) const { return Var(val + start, grad ? grad + start : nullptr, n, cols, ld); }
  Var block_cols(Index start, Index n) const { return Var(val + start * ld, grad ? grad + start * ld : nullptr, rows, n, ld); }
  // The same value, cut off from gradient flow.
  Var detached() const { return Var(val, nullptr, rows, cols, ld); }
};

// ---- Operand checks of the public operations ----------------------------------------------
// Every check runs in every build type (DYAD_ASSERT vanishes under NDEBUG). A check is a compare
// and a branch; the message is built only when it throws, so the success path allocates nothing.
namespace detail {

inline void append_part(std::string& s, const char* p) { s += p; }
inline void append_part(std::string& s, std::string_view p) { s += p; }
template <std::integral I>
void append_part(std::string& s, I i) {
  s += std::to_string(i);
}
// A tensor prints as its shape, "[rows x cols]".
template <class T>
void append_part(std::string& s, const Var<T>& v) {
  s += '[';
  s += std::to_string(v.rows);
  s += " x ";
  s += std::to_string(v.cols);
  s += ']';
}

// Throws std::invalid_argument("dyad::<op>: <parts...>").
template <class... Parts>
[[noreturn]] DYAD_COLD void shape_error(const char* op, const Parts&... parts) {
  std::string message = "dyad::";
  message += op;
  message += ": ";
  (append_part(message, parts), ...);
  throw std::invalid_argument(message);
}

// A usable operand: non-negative sizes, data behind every element, columns that do not overlap.
template <class T>
void check_operand(const char* op, const char* name, const Var<T>& v) {
  if (v.rows < 0 || v.cols < 0) [[unlikely]]
    shape_error(op, name, " is ", v, " (negative size)");
  if (v.val == nullptr && v.size() > 0) [[unlikely]]
    shape_error(op, name, " is ", v, " with no data (null value pointer)");
  if (v.ld < v.rows && v.cols > 1) [[unlikely]]
    shape_error(op, name, " is ", v, " with column stride ", v.ld, " (expected stride >= rows)");
}

// Two operands of one elementwise operation.
template <class T>
void check_same_shape(const char* op, const char* a_name, const Var<T>& a, const char* b_name, const Var<T>& b) {
  if (a.rows != b.rows || a.cols != b.cols) [[unlikely]]
    shape_error(op, a_name, " is ", a, " but ", b_name, " is ", b, " (expected the same shape)");
}

}  // namespace detail

// dst += m.rowwise().sum(), column after column: Eigen's rowwise reduction of a column-major
// matrix walks rows with a stride, which is several times slower for bias gradients.
template <class T, class Dst, class M>
void add_row_sums(Dst&& dst, const M& m) {
  for (Index c = 0; c < m.cols(); ++c) dst += m.col(c);
}

}  // namespace dyad
