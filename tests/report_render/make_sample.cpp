// Builds a realistic fleet report from synthetic numbers (no model needed) and writes it to
// argv[1]; argv[2], when given, receives the counts check.sh expects to find in the DOM.
// 40 cars (32 normal, 8 faulty), 30 segments each, three scores, the worst segment of the six
// most suspicious cars with the four targets of the `ev` task. One car id needs escaping.
#include <dyad/core/random.hpp>
#include <dyad/detect/evaluation.hpp>
#include <dyad/report/html.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: report_sample OUT.html [OUT.expect]\n";
    return 2;
  }
  dyad::Rng rng(20230905);
  const int normal_cars = 32, faulty_cars = 8, segments_per_car = 30, h = 100;
  std::vector<std::string> cars;
  std::vector<int> labels;
  std::vector<double> rec, latent;
  for (int c = 0; c < normal_cars + faulty_cars; ++c) {
    const bool faulty = c >= normal_cars;
    char id[32];
    std::snprintf(id, sizeof id, "EV-%04d", 17 + 37 * c);
    std::string car = c == 5 ? std::string("EV <0202> & \"demo\"") : std::string(id);
    // Faulty packs misbehave in some of their charges only; one faulty car hides well.
    const double fault_share = faulty ? (c == normal_cars + 7 ? 0.0 : rng.uniform(0.03, 0.3)) : 0.02;
    const double base = rng.uniform(0.7, 1.6);
    for (int s = 0; s < segments_per_car; ++s) {
      // Normal packs have the odd unusual charge too (cold weather, a sensor glitch).
      const bool bad = rng.uniform() < fault_share;
      cars.push_back(car);
      labels.push_back(faulty ? 1 : 0);
      rec.push_back(0.004 * base * std::exp(0.35 * rng.normal()) *
                    (bad ? rng.uniform(faulty ? 2.0 : 1.5, faulty ? 12.0 : 4.0) : 1.0));
      latent.push_back(std::sqrt(8.0) * base * std::exp(0.2 * rng.normal()) *
                       (bad ? rng.uniform(faulty ? 1.3 : 1.0, faulty ? 2.4 : 1.4) : 1.0));
    }
  }
  const auto zscore = [](const std::vector<double>& v) {
    const double m = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
    double ss = 0;
    for (double x : v) ss += (x - m) * (x - m);
    const double sd = std::sqrt(ss / static_cast<double>(v.size()));
    std::vector<double> z;
    for (double x : v) z.push_back((x - m) / sd);
    return z;
  };
  const auto zr = zscore(rec), zl = zscore(latent);
  std::vector<double> combined(rec.size());
  for (std::size_t i = 0; i < rec.size(); ++i) combined[i] = 0.5 * (zr[i] + zl[i]);

  dyad::report::ReportData r;
  r.title = "dyad fleet report: synthetic sample";
  r.facts = {{"data", "fleet_test.csv"},
             {"model", "dyad_ev.safetensors (GRU 2x bi, hidden 64, latent 8)"},
             {"segments scored", std::to_string(rec.size())},
             {"h (per mille)", std::to_string(h)}};
  r.scores =
      dyad::detect::evaluate_scores(cars, labels, {{"rec_error", rec}, {"latent_score", latent}, {"combined_score", combined}}, h);
  r.ranking_score = "combined_score";

  // Worst segment of each of the six highest-ranked cars.
  const auto& ranking = r.scores.back().robust;
  std::vector<std::size_t> order(ranking.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return ranking[a].score > ranking[b].score; });
  const char* targets[] = {"max_temp", "max_single_volt", "min_single_volt", "volt"};
  const int steps = 128;
  for (std::size_t k = 0; k < 6 && k < order.size(); ++k) {
    const auto& car = ranking[order[k]];
    std::size_t worst = 0;
    bool found = false;
    for (std::size_t i = 0; i < cars.size(); ++i)
      if (cars[i] == car.car && (!found || combined[i] > combined[worst])) worst = i, found = true;
    dyad::report::SegmentView v;
    v.car = car.car;
    v.segment = static_cast<std::int64_t>(worst % segments_per_car);
    v.label = car.label;
    v.score = combined[worst];
    v.dt_s = 10;
    const double soc0 = rng.uniform(20, 50), fault = car.label == 1 ? rng.uniform(0.5, 1.0) : 0.15;
    for (int j = 0; j < 4; ++j) {
      dyad::report::SignalTrace s;
      s.name = targets[j];
      for (int t = 0; t < steps; ++t) {
        const double soc = soc0 + 0.3 * t, u = static_cast<double>(t) / steps;
        double model = 0, dev = 0;
        switch (j) {
          case 0:
            model = 24 + 9 * u - 2 * u * u;
            dev = fault * 3.0 * u * u;
            break;  // deg C
          case 1:
            model = 3.55 + 0.006 * (soc - 20) + 0.02 * u;
            dev = fault * 0.045 * u;
            break;  // V
          case 2:
            model = 3.53 + 0.006 * (soc - 20) + 0.02 * u;
            dev = -fault * 0.08 * u * u;
            break;  // V
          default:
            model = 355 + 0.58 * (soc - 20) + 2 * u;
            dev = fault * 1.5 * std::sin(6 * u);
            break;  // V
        }
        const double noise = (j == 0 ? 0.15 : j == 3 ? 0.3 : 0.002) * rng.normal();
        s.reconstructed.push_back(model);
        s.measured.push_back(model + dev + noise);
      }
      v.signals.push_back(std::move(s));
    }
    r.worst_segments.push_back(std::move(v));
  }

  dyad::report::write_report(argv[1], r);
  if (argc > 2) {
    std::size_t faulty = 0, charts = 0;
    for (const auto& c : ranking) faulty += c.label == 1 ? 1 : 0;
    for (const auto& v : r.worst_segments) charts += v.signals.size();
    std::ofstream e(argv[2]);
    e << "cars=" << ranking.size() << "\nfaulty=" << faulty << "\nscores=" << r.scores.size()
      << "\nsegments=" << r.worst_segments.size() << "\nsignal_charts=" << charts << "\nsvgs=" << 1 + r.scores.size() + charts
      << "\n";
  }
  return 0;
}
