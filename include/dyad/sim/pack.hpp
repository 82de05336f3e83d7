// Equivalent-circuit model of a series pack charging from a constant-current / constant-voltage
// charger: per-cell OCV, ohmic and RC polarisation drops, a lumped thermal mass, and the BMS
// rule that lowers the current so that the highest cell never exceeds its limit (CV phase).
// Equations and parameter ranges: docs/simulator.md.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace dyad::sim {

namespace detail {
// double -> double, Eigen::ArrayXf -> float: the formulas below work on both.
template <class S, class = void>
struct scalar_of {
  using type = S;
};
template <class S>
struct scalar_of<S, std::void_t<typename S::Scalar>> {
  using type = typename S::Scalar;
};
}  // namespace detail

// NMC-like open-circuit voltage (V) at state of charge s (0..1): a steep rise out of empty, a
// flat middle and a convex top; 3.0 V at 0, 4.2 V at 1, increasing everywhere. Works on a
// double, a float or an Eigen array (one formula, so the tests check what the pack uses).
template <class S>
auto ocv(const S& s) {
  using std::exp;
  using T = typename detail::scalar_of<S>::type;
  return T(3.6) - T(0.6) * exp(T(-20) * s) + s * (T(0.2) + T(0.4) * s * s);
}
// dOCV/dSOC, V per unit SOC.
template <class S>
auto ocv_slope(const S& s) {
  using std::exp;
  using T = typename detail::scalar_of<S>::type;
  return T(12) * exp(T(-20) * s) + T(0.2) + T(1.2) * s * s;
}

// Resistances rise in the cold (about x2 at 0 degC vs 25 degC, Arrhenius-like).
inline double resistance_factor(double temp_c) { return std::exp(0.028 * (25.0 - std::clamp(temp_c, -30.0, 60.0))); }

// One car's pack as it is at one charging session (after ageing and any fault).
struct PackParams {
  Eigen::ArrayXd capacity_ah;  // per cell
  Eigen::ArrayXd r0_ohm;       // per cell, ohmic resistance at 25 degC
  Eigen::ArrayXd r1_share;     // per cell polarisation resistance / r1_ohm (mean 1)
  Eigen::ArrayXd soc_offset;   // per cell SOC minus balance_soc when the pack sits at the balance point
  Eigen::ArrayXd leak_a;       // per cell self-discharge current (internal short), A
  double balance_soc = 0.55;   // where passive balancing equalises the cells (at rest)
  double r1_ohm = 0.35e-3;     // polarisation resistance of a mean cell at 25 degC
  double tau1_s = 45.0;        // RC time constant
  double bus_ohm = 5e-3;       // busbars and contactors: in the pack voltage, not in cell taps
  double v_cell_max = 4.2;     // BMS charge limit on the highest cell
  // Thermal: one lumped mass, passive loss to ambient, liquid cooling that ramps in above cooling_on_c.
  double heat_capacity_j_per_k = 3.0e5;
  double passive_w_per_k = 10.0;
  double active_w_per_k = 300.0;
  double cooling_on_c = 30.0;
  double coolant_c = 22.0;
  // Extreme probes: static offsets plus a core-to-probe gradient per kW of heat (hot probe) or
  // of cooling (cold probe, near the coolant inlet) that builds up with a lag of probe_tau_s.
  double probe_hot_c = 1.0, probe_cold_c = 1.0, probe_c_per_kw = 0.8, probe_tau_s = 300.0;
  // Local heating seen by the hot probe: a shorted cell's leak power, and a degraded joint
  // (hotspot_ohm > 0) in a small thermal mass coupled to the bulk (thermal fault).
  double short_c_per_w = 3.0;
  double hotspot_ohm = 0.0, hotspot_j_per_k = 1500.0, hotspot_w_per_k = 4.0;
};

// True (noise-free) quantities at the end of one time step.
struct PackReading {
  double current_a = 0, pack_v = 0, soc = 0;  // soc: mean cell SOC, 0..1
  double max_cell_v = 0, min_cell_v = 0, max_temp_c = 0, min_temp_c = 0;
};

// The lumped thermal model that Pack (charging) and RoadPack (sim/telemetry.hpp: driving,
// parked) share: bulk and hot-spot temperatures and the lagged probe gradients, advanced by
// exact exponential updates so that any dt is stable.
struct PackThermal {
  double temp_c = 25, hot_c = 25;          // bulk and hot-spot temperature
  double hot_rise_c = 0, cold_drop_c = 0;  // lagged probe gradients

  // Advances by dt_s at current i (either sign) with heat_w of irreversible heat and leak_w
  // dissipated by a short; writes the extreme probes' readings into r.
  void step(const PackParams& p, double i, double heat_w, double leak_w, double ambient_c, double dt_s, PackReading& r) {
    const double g_active = p.active_w_per_k * std::clamp((temp_c - p.cooling_on_c) / 4.0, 0.0, 1.0);
    const double cooling_w = g_active * std::max(0.0, temp_c - p.coolant_c);
    const double g = p.passive_w_per_k + g_active;
    const double t_eq = (heat_w + leak_w + p.passive_w_per_k * ambient_c + g_active * p.coolant_c) / g;
    temp_c = t_eq + (temp_c - t_eq) * std::exp(-g * dt_s / p.heat_capacity_j_per_k);
    if (p.hotspot_ohm > 0) {
      const double hot_eq = temp_c + i * i * p.hotspot_ohm / p.hotspot_w_per_k;
      hot_c = hot_eq + (hot_c - hot_eq) * std::exp(-p.hotspot_w_per_k * dt_s / p.hotspot_j_per_k);
    } else {
      hot_c = temp_c;
    }
    const double lag = std::exp(-dt_s / p.probe_tau_s);
    const double heat_rise = p.probe_c_per_kw * heat_w / 1000.0, leak_rise = p.short_c_per_w * leak_w;
    hot_rise_c = heat_rise + leak_rise + (hot_rise_c - heat_rise - leak_rise) * lag;
    const double cold_target = p.probe_c_per_kw * cooling_w / 1000.0;
    cold_drop_c = cold_target + (cold_drop_c - cold_target) * lag;
    r.max_temp_c = std::max(hot_c, temp_c + p.probe_hot_c + hot_rise_c);
    r.min_temp_c = temp_c - p.probe_cold_c - cold_drop_c;
  }
};

class Pack {
 public:
  // A pack at rest (no polarisation) at mean SOC `soc` and uniform temperature `temp_c`.
  Pack(PackParams p, double soc, double temp_c) : p_(std::move(p)), thermal_{temp_c, temp_c} {
    const auto n = p_.capacity_ah.size();
    for (const auto* a : {&p_.r0_ohm, &p_.r1_share, &p_.soc_offset, &p_.leak_a})
      if (n == 0 || a->size() != n)
        throw std::invalid_argument("dyad::sim::Pack: PackParams' per-cell arrays must all have the same, positive size");
    const Eigen::ArrayXd base = p_.balance_soc + p_.soc_offset, inv_cap = p_.capacity_ah.inverse();
    // Every cell carries the same charge in series: SOC_i = base_i + charge_ah / Q_i.
    charge_ah_ = (soc - base.mean()) / inv_cap.mean();
    // Per-cell work runs in float: 4x faster exp, and microvolt precision is plenty.
    base_ = base.cast<float>();
    inv_cap_ = inv_cap.cast<float>();
    r0_ = p_.r0_ohm.cast<float>();
    r1_share_ = p_.r1_share.cast<float>();
    leak_ = p_.leak_a.cast<float>();
    leaking_ = (p_.leak_a > 0).any();
    base_mean_ = base.mean();
    inv_cap_mean_ = inv_cap.mean();
    leak_soc_per_h_ = (p_.leak_a * inv_cap).mean();
    sum_r0_ = p_.r0_ohm.sum();
    sum_r1_share_ = p_.r1_share.sum();
    soc_.resize(n), ocv_.resize(n), v_.resize(n), den_.resize(n);
  }

  const PackParams& params() const { return p_; }
  double temperature() const { return thermal_.temp_c; }
  double soc() const { return base_mean_ + charge_ah_ * inv_cap_mean_; }  // mean cell SOC

  // Advances by dt_s with the charger offering up to max_current_a. The BMS takes the largest
  // current that keeps every cell at or below v_cell_max at the end of the step (CC until a
  // cell reaches the limit, then CV with a tapering current). Exact exponential updates for the
  // RC branch and the thermal masses, so any dt is stable.
  PackReading step(double max_current_a, double dt_s, double ambient_c) {
    const double f = resistance_factor(thermal_.temp_c);
    const double e = std::exp(-dt_s / p_.tau1_s);
    soc_ = (base_ + static_cast<float>(charge_ah_) * inv_cap_).max(-0.2f).min(1.2f);
    ocv_ = ocv(soc_);
    const double v1_decayed = v1_ * e;
    // At the end of the step cell i is (to first order) affine in I:
    //   V_i = ocv_i + r_i v1 e + I [f (R0_i + r_i R1 (1 - e)) + ocv'_i dt / (3600 Q_i)],
    // the last term being the charge the step adds, which matters for long steps.
    den_ = static_cast<float>(f) * (r0_ + r1_share_ * static_cast<float>(p_.r1_ohm * (1.0 - e))) +
           ocv_slope(soc_) * inv_cap_ * static_cast<float>(dt_s / 3600.0);
    const double cv_current =
        ((static_cast<float>(p_.v_cell_max) - ocv_ - r1_share_ * static_cast<float>(v1_decayed)) / den_).minCoeff();
    const double i = std::max(0.0, std::min(max_current_a, cv_current));
    v1_ = v1_decayed + f * p_.r1_ohm * (1.0 - e) * i;
    v_ = ocv_ + r1_share_ * static_cast<float>(v1_decayed) + static_cast<float>(i) * den_;

    PackReading r;  // at the end of the step
    r.current_a = i;
    r.max_cell_v = v_.maxCoeff();
    r.min_cell_v = v_.minCoeff();
    r.pack_v = v_.sum() + i * (p_.bus_ohm + p_.hotspot_ohm);

    // Irreversible heat = current x overpotential (sum of V_i - OCV_i); a short dissipates its leak.
    const double heat_w = i * (i * f * sum_r0_ + v1_ * sum_r1_share_) + i * i * p_.bus_ohm;
    const double leak_w = leaking_ ? static_cast<double>((leak_ * ocv_).sum()) : 0.0;
    thermal_.step(p_, i, heat_w, leak_w, ambient_c, dt_s, r);

    charge_ah_ += i * dt_s / 3600.0;
    if (leaking_) {
      base_ -= leak_ * inv_cap_ * static_cast<float>(dt_s / 3600.0);
      base_mean_ -= leak_soc_per_h_ * dt_s / 3600.0;
    }
    r.soc = soc();
    return r;
  }

 private:
  PackParams p_;
  Eigen::ArrayXf base_, inv_cap_, r0_, r1_share_, leak_;  // SOC_i = base_i + charge_ah_ * inv_cap_i
  Eigen::ArrayXf soc_, ocv_, v_, den_;                    // scratch, sized once
  double sum_r0_ = 0, sum_r1_share_ = 0, base_mean_ = 0, inv_cap_mean_ = 0, leak_soc_per_h_ = 0;
  bool leaking_ = false;
  double charge_ah_ = 0, v1_ = 0;  // series charge since the balance point; mean-cell RC voltage
  PackThermal thermal_;
};

}  // namespace dyad::sim
