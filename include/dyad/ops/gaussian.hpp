// The Gaussian latent: the reparameterisation trick and the closed-form KL to N(0, I).
#pragma once

#include "dyad/core/tape.hpp"

namespace dyad {

namespace detail {
template <class T>
struct ReparameterizeNode {
  Var<T> mu, log_var, eps, z;
  T noise_scale;
  void backward() {
    const auto dz = z.adjoint().array();
    if (mu.needs_grad()) mu.adjoint().array() += dz;
    if (log_var.needs_grad())
      log_var.adjoint().array() += dz * (T(0.5) * noise_scale) * eps.value().array() * (T(0.5) * log_var.value().array()).exp();
  }
};

template <class T>
struct KlNode {
  Var<T> mu, log_var, kl;
  void backward() {
    const T g = kl.grad[0];
    if (mu.needs_grad()) mu.adjoint().array() += g * mu.value().array();
    if (log_var.needs_grad()) log_var.adjoint().array() += g * T(0.5) * (log_var.value().array().exp() - T(1));
  }
};
}  // namespace detail

// z = mu + noise_scale * exp(0.5 log_var) * eps, with eps given (standard normal draws, or
// zero). All [Z x B]; other shapes throw std::invalid_argument.
template <class T>
Var<T> reparameterize(Tape<T>& tape, const Var<T>& mu, const Var<T>& log_var, const Var<T>& eps, T noise_scale) {
  constexpr const char* op = "reparameterize";
  detail::check_operand(op, "mu", mu);
  detail::check_operand(op, "log_var", log_var);
  detail::check_operand(op, "eps", eps);
  detail::check_same_shape(op, "mu", mu, "log_var", log_var);
  detail::check_same_shape(op, "mu", mu, "eps", eps);
  Var<T> z = tape.variable(mu.rows, mu.cols);
  z.value().array() = mu.value().array() + noise_scale * (T(0.5) * log_var.value().array()).exp() * eps.value().array();
  tape.template record<detail::ReparameterizeNode<T>>(mu, log_var, eps, z, noise_scale);
  return z;
}

// kl = -0.5 * sum(1 + log_var - mu^2 - exp(log_var)) over all Z x B entries (not averaged).
template <class T>
Var<T> kl_divergence(Tape<T>& tape, const Var<T>& mu, const Var<T>& log_var) {
  detail::check_operand("kl_divergence", "mu", mu);
  detail::check_operand("kl_divergence", "log_var", log_var);
  detail::check_same_shape("kl_divergence", "mu", mu, "log_var", log_var);
  Var<T> kl = tape.variable(1, 1);
  kl.val[0] = T(-0.5) * (T(1) + log_var.value().array() - mu.value().array().square() - log_var.value().array().exp()).sum();
  tape.template record<detail::KlNode<T>>(mu, log_var, kl);
  return kl;
}

}  // namespace dyad
