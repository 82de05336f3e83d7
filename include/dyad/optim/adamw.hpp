// AdamW with PyTorch's exact update order: decoupled weight decay first, then the
// bias-corrected Adam step  p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
#pragma once

#include "dyad/core/var.hpp"

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <utility>

namespace dyad {

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-6;  // dyad-method §5 default (PyTorch's own default is 1e-2)
};

template <class T>
class AdamW {
 public:
  explicit AdamW(AdamWOptions options = {}) : opt_(options) {}

  const AdamWOptions& options() const { return opt_; }
  void set_lr(double lr) { opt_.lr = lr; }
  double lr() const { return opt_.lr; }
  std::int64_t steps() const { return step_; }

  // One update of the flat parameter vector from its flat gradient.
  void step(Vector<T>& params, const Vector<T>& grads) {
    if (m_.size() != params.size()) {
      m_.setZero(params.size());
      v_.setZero(params.size());
      step_ = 0;
    }
    ++step_;
    const double bc1 = 1.0 - std::pow(opt_.beta1, static_cast<double>(step_));
    const double bc2 = 1.0 - std::pow(opt_.beta2, static_cast<double>(step_));
    const T decay = T(1.0 - opt_.lr * opt_.weight_decay);
    const T b1 = T(opt_.beta1), b2 = T(opt_.beta2);
    const T step_size = T(opt_.lr / bc1);
    const T inv_sqrt_bc2 = T(1.0 / std::sqrt(bc2));
    const T eps = T(opt_.eps);
    auto p = params.array();
    const auto g = grads.array();
    p *= decay;
    m_.array() = b1 * m_.array() + (T(1) - b1) * g;
    v_.array() = b2 * v_.array() + (T(1) - b2) * g.square();
    p -= step_size * m_.array() / (v_.array().sqrt() * inv_sqrt_bc2 + eps);
  }

  // Optimiser state for checkpoints that resume training.
  const Vector<T>& first_moment() const { return m_; }
  const Vector<T>& second_moment() const { return v_; }
  // Restores the state saved from first_moment(), second_moment() and steps().
  void restore(Vector<T> m, Vector<T> v, std::int64_t steps) {
    if (m.size() != v.size() || steps < 0) throw std::invalid_argument("dyad::AdamW::restore: moments differ in size or steps < 0");
    m_ = std::move(m);
    v_ = std::move(v);
    step_ = steps;
  }

 private:
  AdamWOptions opt_;
  Vector<T> m_, v_;
  std::int64_t step_ = 0;
};

}  // namespace dyad
