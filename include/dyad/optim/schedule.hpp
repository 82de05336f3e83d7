// Learning-rate and KL-weight schedules (dyad-method §5).
#pragma once

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>
#include <string_view>

namespace dyad {

// Cosine annealing per epoch from lr to eta_min over `epochs` (PyTorch's CosineAnnealingLR
// in closed form, T_max = epochs).
inline double cosine_lr(double lr, double eta_min, int epoch, int epochs) {
  if (epochs <= 0) return lr;
  return eta_min + (lr - eta_min) * (1.0 + std::cos(std::numbers::pi * epoch / epochs)) / 2.0;
}

enum class Anneal { linear, logistic, constant };

inline Anneal parse_anneal(std::string_view name) {
  if (name == "linear") return Anneal::linear;
  if (name == "logistic") return Anneal::logistic;
  if (name == "constant") return Anneal::constant;
  throw std::invalid_argument("dyad: unknown KL anneal function '" + std::string(name) +
                              "' (expected linear, logistic or constant)");
}
inline const char* to_string(Anneal a) {
  switch (a) {
    case Anneal::linear: return "linear";
    case Anneal::logistic: return "logistic";
    case Anneal::constant: return "constant";
  }
  return "?";
}

// KL weight at mini-batch `step` (counted from 1).
inline double kl_weight(Anneal f, double anneal0, double k, double x0, long step) {
  switch (f) {
    case Anneal::linear: return anneal0 * std::min(1.0, static_cast<double>(step) / x0);
    case Anneal::logistic: return anneal0 / (1.0 + std::exp(-k * (static_cast<double>(step) - x0)));
    case Anneal::constant: return anneal0;
  }
  return anneal0;
}

}  // namespace dyad
