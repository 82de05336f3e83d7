// Calibrated verdicts: a car's score becomes a conformal p-value against healthy calibration
// cars the model never trained on, the p-value a status (ok / watch / alarm) at a stated
// false-alarm rate, and the car's per-signal errors a ranked explanation.
//
// With n healthy calibration cars, a healthy car's p-value
//     p = (1 + #{calibration cars scoring at least as high}) / (n + 1)
// is uniform on {1/(n+1), ..., 1} (the cars are exchangeable), so alarming at p <= a flags at
// most a fraction a of healthy cars in expectation. The finest attainable rate is 1/(n+1).
#pragma once

#include "dyad/core/json.hpp"
#include "dyad/detect/car_score.hpp"
#include "dyad/detect/scores.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dyad::detect {

enum class Status { ok, watch, alarm };

inline const char* status_name(Status s) {
  switch (s) {
    case Status::alarm: return "alarm";
    case Status::watch: return "watch";
    default: return "ok";
  }
}

// The false-alarm rates that turn a p-value into a status: alarm when p <= alarm_rate, watch
// when p <= watch_rate, ok otherwise.
struct AlarmPolicy {
  double alarm_rate = 0.01;
  double watch_rate = 0.05;

  void validate() const {
    if (!(alarm_rate > 0 && alarm_rate < 1))
      throw std::invalid_argument("dyad: the alarm rate must be in (0, 1), got " + std::to_string(alarm_rate));
    if (!(watch_rate >= alarm_rate && watch_rate < 1))
      throw std::invalid_argument("dyad: the watch rate must be in [alarm rate, 1), got " + std::to_string(watch_rate));
  }
  Status status(double p) const { return p <= alarm_rate ? Status::alarm : p <= watch_rate ? Status::watch : Status::ok; }
  bool operator==(const AlarmPolicy&) const = default;
};

// The fewest healthy calibration cars whose finest rate, 1/(n+1), reaches `rate`: 99 for 1 %.
inline std::size_t calibration_cars_for(double rate) {
  if (!(rate > 0 && rate < 1))
    throw std::invalid_argument("dyad: a false-alarm rate must be in (0, 1), got " + std::to_string(rate));
  return static_cast<std::size_t>(std::ceil(1.0 / rate - 1.0 - 1e-9));
}

// What a target signal's abnormal error hints at. A hint, not a diagnosis.
inline std::string_view signal_hint(std::string_view signal) {
  if (signal == "max_temp" || signal == "min_temp") return "cooling or thermal";
  if (signal == "min_single_volt") return "a weak or self-discharging cell (internal short)";
  if (signal == "max_single_volt") return "a high-resistance or weak cell";
  if (signal == "volt") return "pack-level or sensor";
  return "";
}

// One signal of a car's explanation: its car-level error over the healthy calibration cars' median.
struct SignalRatio {
  std::string name;
  double ratio = 0;
};

// A car's verdict.
struct Verdict {
  std::string car;
  int label = 0;  // as the data says (0 when unlabelled)
  std::size_t segments = 0;
  double score = 0;    // robust car score of Calibration::kind
  double p_value = 1;  // conformal, against the healthy calibration cars
  Status status = Status::ok;
  std::vector<SignalRatio> signals;  // most abnormal first
};

class Calibration {
 public:
  Calibration() = default;

  // Car-level scores of the cars in `t`: the healthy ones (label 0) become the reference the
  // p-values are taken against; faulty ones (label 1), if any, are kept for the cost-based
  // operating point only. `signals` are the model's target columns: t must hold
  // "<signal>_error" for each. Car scores are robust scores with h = h_per_mille.
  static Calibration fit(const ScoreTable& t, std::span<const std::string> signals, int h_per_mille) {
    top_count(1, h_per_mille);
    Calibration c;
    c.h_ = h_per_mille;
    c.signals_.assign(signals.begin(), signals.end());
    const auto groups = group_by_car(t.cars, t.labels);
    for (const auto& g : groups) (g.label ? c.faulty_cars_ : c.cars_).push_back(g.car);
    if (c.cars_.empty()) throw std::invalid_argument("dyad::Calibration: no healthy car to calibrate on");
    auto per_car = [&](const std::vector<double>& segment_scores, int label) {
      std::vector<double> out, v;
      for (const auto& g : groups) {
        if (g.label != label) continue;
        v.clear();
        for (std::size_t i : g.segments) v.push_back(segment_scores[i]);
        detail::require_scores(v, "dyad::Calibration");
        out.push_back(detail::top_mean(v, top_count(v.size(), h_per_mille)));
      }
      return out;
    };
    for (const auto& [name, values] : score_columns(t)) {
      c.healthy_[name] = per_car(values, 0);
      if (!c.faulty_cars_.empty()) c.faulty_[name] = per_car(values, 1);
    }
    if (c.healthy_.empty()) throw std::invalid_argument("dyad::Calibration: the scores have no score column");
    for (const auto& s : c.signals_) c.signal_errors_[s] = per_car(t.column(s + "_error"), 0);
    c.cache_medians();
    return c;
  }

  bool empty() const { return cars_.empty(); }
  std::size_t size() const { return cars_.size(); }  // healthy calibration cars
  int h_per_mille() const { return h_; }
  const std::vector<std::string>& cars() const { return cars_; }
  const std::vector<std::string>& faulty_cars() const { return faulty_cars_; }
  const std::vector<std::string>& signals() const { return signals_; }
  // The finest false-alarm rate the calibration can state: 1/(n+1).
  double finest_rate() const { return 1.0 / static_cast<double>(size() + 1); }

  // The score verdicts rank by: the strongest (last in score_names) this calibration holds
  // that `available` (if given) also has.
  std::string kind(const ScoreTable* available = nullptr) const {
    for (auto it = score_names.rbegin(); it != score_names.rend(); ++it) {
      const std::string name(*it);
      if (healthy_.count(name) && (!available || available->has(name))) return name;
    }
    throw std::invalid_argument("dyad::Calibration: no score kind in common with the scores");
  }
  const std::vector<double>& healthy_scores(const std::string& kind) const { return at(healthy_, kind); }
  const std::vector<double>& faulty_scores(const std::string& kind) const { return at(faulty_, kind); }

  // (1 + #{healthy calibration cars scoring >= score}) / (n + 1). NaN scores are refused.
  double p_value(const std::string& kind, double score) const {
    if (std::isnan(score)) throw std::invalid_argument("dyad::Calibration::p_value: the " + kind + " car score is NaN");
    const auto& h = healthy_scores(kind);
    const auto above = std::count_if(h.begin(), h.end(), [score](double x) { return x >= score; });
    return static_cast<double>(1 + above) / static_cast<double>(h.size() + 1);
  }

  // The median car-level error of each signal over the healthy calibration cars.
  double signal_median(const std::string& signal) const {
    const auto it = std::find(signals_.begin(), signals_.end(), signal);
    if (it == signals_.end()) throw std::invalid_argument("dyad::Calibration: no calibration for '" + signal + "'");
    return medians_[static_cast<std::size_t>(it - signals_.begin())];
  }

  // A car's signals ranked by car-level error over the healthy median (errors in signals() order).
  std::vector<SignalRatio> explain(std::span<const double> car_errors) const {
    if (car_errors.size() != signals_.size())
      throw std::invalid_argument("dyad::Calibration::explain: " + std::to_string(car_errors.size()) + " errors for " +
                                  std::to_string(signals_.size()) + " signals");
    std::vector<SignalRatio> out;
    for (std::size_t k = 0; k < signals_.size(); ++k) {
      const double med = medians_[k];
      out.push_back({signals_[k], med > 0 ? car_errors[k] / med : std::numeric_limits<double>::infinity()});
    }
    std::stable_sort(out.begin(), out.end(), [](const SignalRatio& a, const SignalRatio& b) { return a.ratio > b.ratio; });
    return out;
  }

  // The verdict on every car in `t` (ascending car id), its car score over all its segments.
  std::vector<Verdict> verdicts(const ScoreTable& t, const AlarmPolicy& policy) const {
    policy.validate();
    const std::string k = kind(&t);
    const auto& scores = t.column(k);
    std::vector<const std::vector<double>*> errors;
    for (const auto& s : signals_) errors.push_back(&t.column(s + "_error"));
    std::vector<Verdict> out;
    std::vector<double> v, car_errors(signals_.size());
    for (const auto& g : group_by_car(t.cars, t.labels)) {
      auto robust = [&](const std::vector<double>& x) {
        v.clear();
        for (std::size_t i : g.segments) v.push_back(x[i]);
        detail::require_scores(v, "dyad::Calibration::verdicts");
        return detail::top_mean(v, top_count(v.size(), h_));
      };
      Verdict d;
      d.car = g.car;
      d.label = g.label;
      d.segments = g.segments.size();
      d.score = robust(scores);
      d.p_value = p_value(k, d.score);
      d.status = policy.status(d.p_value);
      for (std::size_t s = 0; s < signals_.size(); ++s) car_errors[s] = robust(*errors[s]);
      d.signals = explain(car_errors);
      out.push_back(std::move(d));
    }
    return out;
  }

  // The paper's operating point: the alarm rate (a p-value threshold) that minimises
  //     cost_miss x (faulty calibration cars not alarmed) + cost_inspection x (cars alarmed)
  // over the healthy and faulty calibration cars. Needs labelled faulty cars in the calibration.
  double cost_alarm_rate(const std::string& kind, double cost_miss, double cost_inspection) const {
    if (!(cost_miss >= 0 && cost_inspection >= 0 && cost_miss + cost_inspection > 0))
      throw std::invalid_argument("dyad: the costs of a miss and of an inspection must be >= 0, not both 0");
    if (faulty_cars_.empty())
      throw std::invalid_argument("dyad: a cost-based operating point needs faulty cars among the calibration data (label 1)");
    std::vector<double> healthy_p, faulty_p;  // each calibration car's p-value, computed once
    for (double s : healthy_scores(kind)) healthy_p.push_back(p_value(kind, s));
    for (double s : faulty_scores(kind)) faulty_p.push_back(p_value(kind, s));
    std::vector<double> candidates = healthy_p;  // every attainable p-value, and 0 (alarm nothing)
    candidates.insert(candidates.end(), faulty_p.begin(), faulty_p.end());
    candidates.push_back(0.0);
    std::sort(candidates.begin(), candidates.end());
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
    double best_rate = 0, best_cost = std::numeric_limits<double>::infinity();
    for (double a : candidates) {
      double cost = 0;
      for (double p : healthy_p) cost += p <= a ? cost_inspection : 0.0;
      for (double p : faulty_p) cost += p <= a ? cost_inspection : cost_miss;
      if (cost < best_cost) best_cost = cost, best_rate = a;  // ties keep the lower rate
    }
    return best_rate;
  }

  nlohmann::json to_json() const {
    return {{"h_per_mille", h_},        {"cars", cars_},       {"faulty_cars", faulty_cars_},    {"scores", healthy_},
            {"faulty_scores", faulty_}, {"signals", signals_}, {"signal_errors", signal_errors_}};
  }

  // Reads to_json()'s output; `where` names the source in errors. Every list must have one
  // finite value per car.
  static Calibration from_json(const nlohmann::json& j, const std::string& where) {
    using dyad::detail::json_key_error;
    Calibration c;
    auto require = [&](const char* key) -> const nlohmann::json& { return dyad::detail::json_member(j, where, key); };
    c.h_ = dyad::detail::json_integer<int>(require("h_per_mille"), where, "h_per_mille", 0, 1000);
    auto strings = [&](const char* key) { return dyad::detail::json_strings(require(key), where, key); };
    c.cars_ = strings("cars");
    c.faulty_cars_ = strings("faulty_cars");
    c.signals_ = strings("signals");
    if (c.cars_.empty()) json_key_error(where, "cars", "is empty: no healthy calibration car");
    auto lists = [&](const char* key, std::size_t n) {
      const auto& v = require(key);
      if (!v.is_object()) json_key_error(where, key, "must be an object of number lists");
      std::map<std::string, std::vector<double>> out;
      for (const auto& [name, list] : v.items()) {
        const std::string k = std::string(key) + "." + name;
        out[name] = dyad::detail::json_numbers(list, where, k);
        if (out[name].size() != n) json_key_error(where, k, "must list " + std::to_string(n) + " numbers, one per car");
      }
      return out;
    };
    c.healthy_ = lists("scores", c.cars_.size());
    c.faulty_ = lists("faulty_scores", c.faulty_cars_.size());
    c.signal_errors_ = lists("signal_errors", c.cars_.size());
    if (c.healthy_.empty()) json_key_error(where, "scores", "holds no score kind");
    for (const auto& [name, list] : c.healthy_) {
      if (std::find(score_names.begin(), score_names.end(), name) == score_names.end())
        json_key_error(where, "scores." + name, "is not a score dyad produces");
      if (!c.faulty_cars_.empty() && !c.faulty_.count(name)) json_key_error(where, "faulty_scores." + name, "is missing");
    }
    for (const auto& s : c.signals_)
      if (!c.signal_errors_.count(s)) json_key_error(where, "signal_errors." + s, "is missing");
    c.cache_medians();
    return c;
  }

 private:
  // The healthy median of each signal, in signals_ order: explain() runs once per car verdict.
  void cache_medians() {
    medians_.clear();
    for (const auto& signal : signals_) {
      std::vector<double> v = at(signal_errors_, signal);
      const std::size_t n = v.size(), m = n / 2;
      std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(m), v.end());
      medians_.push_back(n % 2 ? v[m] : 0.5 * (v[m] + *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(m))));
    }
  }

  static const std::vector<double>& at(const std::map<std::string, std::vector<double>>& m, const std::string& key) {
    auto it = m.find(key);
    if (it == m.end()) throw std::invalid_argument("dyad::Calibration: no calibration for '" + key + "'");
    return it->second;
  }

  int h_ = 100;
  std::vector<std::string> cars_, faulty_cars_, signals_;
  std::map<std::string, std::vector<double>> healthy_, faulty_, signal_errors_;  // [name] -> one value per car
  std::vector<double> medians_;                                                  // of signal_errors_, per signal
};

}  // namespace dyad::detect
