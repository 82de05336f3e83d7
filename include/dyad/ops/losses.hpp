// Scalar losses: SmoothL1 (beta 1) and MSE, both averaged over the counted elements, and a
// weighted sum of scalar losses.
#pragma once

#include "dyad/core/sequence.hpp"
#include "dyad/core/tape.hpp"

#include <array>
#include <cmath>
#include <initializer_list>

namespace dyad {

namespace detail {

// Visits the columns that count: all, or the unpadded steps of a sequence.
template <class F>
void for_each_counted_column(Index cols, const SequenceShape* seq, F&& f) {
  if (!seq || !seq->lengths) {
    for (Index c = 0; c < cols; ++c) f(c);
    return;
  }
  for (Index t = 0; t < seq->steps; ++t)
    for (Index b = 0; b < seq->batch; ++b)
      if (seq->active(t, b)) f(t * seq->batch + b);
}

template <class T>
struct SmoothL1Node {
  Var<T> pred, target, loss;
  SequenceShape seq;
  bool masked;
  T inv_count;
  void backward() {
    if (!pred.needs_grad()) return;
    const T g = loss.grad[0] * inv_count;
    for_each_counted_column(pred.cols, masked ? &seq : nullptr, [&](Index c) {
      auto d = pred.adjoint().col(c);
      const auto diff = (pred.value().col(c) - target.value().col(c)).array();
      d.array() += g * diff.max(T(-1)).min(T(1));  // |diff| < 1: diff, else sign(diff)
    });
  }
};

template <class T>
struct MseNode {
  Var<T> pred, target, loss;
  T inv_count;
  void backward() {
    if (pred.needs_grad()) pred.adjoint().array() += (T(2) * loss.grad[0] * inv_count) * (pred.value() - target.value()).array();
  }
};

template <class T>
struct WeightedSumNode {
  static constexpr int kMaxTerms = 8;
  std::array<Var<T>, kMaxTerms> terms;
  std::array<T, kMaxTerms> weights;
  int count;
  Var<T> out;
  void backward() {
    for (int i = 0; i < count; ++i)
      if (terms[i].needs_grad()) terms[i].grad[0] += weights[i] * out.grad[0];
  }
};

}  // namespace detail

namespace detail {
// Operands of a mean loss: same shape and at least one element (a mean of none is 0/0).
template <class T>
void check_mean_loss(const char* op, const Var<T>& pred, const Var<T>& target) {
  check_operand(op, "pred", pred);
  check_operand(op, "target", target);
  check_same_shape(op, "pred", pred, "target", target);
  if (pred.size() == 0) [[unlikely]]
    shape_error(op, "pred is ", pred, " and target is ", target, " (expected at least one element to average)");
}
}  // namespace detail

// SmoothL1 with beta = 1, mean over the rows of every counted column (padded steps of
// `seq`, when given with lengths, are left out). pred and target are [K x T*B]; other shapes,
// or lengths outside [1, steps], throw std::invalid_argument.
template <class T>
Var<T> smooth_l1(Tape<T>& tape, const Var<T>& pred, const Var<T>& target, const SequenceShape* seq = nullptr) {
  detail::check_mean_loss("smooth_l1", pred, target);
  if (seq) detail::check_sequence("smooth_l1", "pred", pred.cols, *seq);
  T sum = 0;
  Index counted = 0;
  detail::for_each_counted_column(pred.cols, seq, [&](Index c) {
    const auto a = (pred.value().col(c) - target.value().col(c)).array().abs();
    sum += (a < T(1)).select(T(0.5) * a.square(), a - T(0.5)).sum();
    ++counted;
  });
  Var<T> loss = tape.variable(1, 1);
  const T inv_count = T(1) / static_cast<T>(counted * pred.rows);
  loss.val[0] = sum * inv_count;
  tape.template record<detail::SmoothL1Node<T>>(pred, target, loss, seq ? *seq : SequenceShape{}, seq != nullptr, inv_count);
  return loss;
}

// Mean squared error over all entries of pred and target (same shape).
template <class T>
Var<T> mse(Tape<T>& tape, const Var<T>& pred, const Var<T>& target) {
  detail::check_mean_loss("mse", pred, target);
  Var<T> loss = tape.variable(1, 1);
  const T inv_count = T(1) / static_cast<T>(pred.size());
  loss.val[0] = (pred.value() - target.value()).squaredNorm() * inv_count;
  tape.template record<detail::MseNode<T>>(pred, target, loss, inv_count);
  return loss;
}

// sum_i w_i * loss_i over at most 8 scalar losses ([1 x 1] each).
template <class T>
Var<T> weighted_sum(Tape<T>& tape, std::initializer_list<std::pair<T, Var<T>>> terms) {
  detail::WeightedSumNode<T> node{};
  if (terms.size() > static_cast<std::size_t>(node.kMaxTerms)) [[unlikely]]
    detail::shape_error("weighted_sum", terms.size(), " terms (expected at most ", node.kMaxTerms, ")");
  std::size_t i = 0;
  for (const auto& term : terms) {
    const Var<T>& v = term.second;
    if (v.rows != 1 || v.cols != 1 || v.val == nullptr) [[unlikely]]
      detail::shape_error("weighted_sum", "term ", i, " is ", v, v.val ? "" : " with no data", " (expected a scalar loss [1 x 1])");
    ++i;
  }
  Var<T> out = tape.variable(1, 1);
  out.val[0] = 0;
  for (const auto& [w, v] : terms) {
    out.val[0] += w * v.val[0];
    node.terms[static_cast<std::size_t>(node.count)] = v;
    node.weights[static_cast<std::size_t>(node.count++)] = w;
  }
  node.out = out;
  tape.template record<detail::WeightedSumNode<T>>(node);
  return out;
}

}  // namespace dyad
