// The data of an HTML report (dyad report, and dyad demo's report.html): from a score file, its
// data and the model that scored it, or from a fleet database.
#pragma once

#include "common.hpp"
#include "policy_view.hpp"

#include <dyad/data/dataset.hpp>
#include <dyad/detect/evaluation.hpp>
#include <dyad/detect/ranking.hpp>
#include <dyad/detect/scores.hpp>
#include <dyad/model.hpp>  // Reconstruction
#include <dyad/monitor/fleet_db.hpp>
#include <dyad/report/html.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace dyad::cli {

// Builds the report: the ranking uses the strongest score present (combined, else rec_error),
// and each of the `cars` highest-ranked cars shows its worst segment under that score.
template <class M>  // a Model or an Ensemble
report::ReportData build_report(const ScoreTable& table, const Dataset& data, const M& model, int top, int detail_cars,
                                std::vector<std::pair<std::string, std::string>> facts) {
  report::ReportData r;
  r.facts = std::move(facts);
  r.scores = detect::evaluate_scores(table.cars, table.labels, detect::score_columns(table), top);
  r.ranking_score = r.scores.back().name;
  const auto& ranking = r.scores.back().robust;
  const auto& seg_score = table.column(r.ranking_score);
  std::map<std::pair<std::string, std::int64_t>, std::size_t> where;
  for (std::size_t i = 0; i < data.size(); ++i) where[{data.meta(i).car, data.meta(i).segment}] = i;
  const std::vector<std::size_t> order = detect::car_ranking(ranking);
  for (std::size_t k = 0; k < std::min<std::size_t>(order.size(), static_cast<std::size_t>(detail_cars)); ++k) {
    const std::string& car = ranking[order[k]].car;
    const std::size_t worst = detect::worst_segment(table.cars, seg_score, car);
    auto it = where.find({car, table.segments[worst]});
    if (it == where.end())
      throw std::invalid_argument("dyad report: car '" + car + "' segment " + std::to_string(table.segments[worst]) +
                                  " is in the scores but not in the data file");
    const Reconstruction rec = model.reconstruct(data, it->second);
    report::SegmentView v{car, table.segments[worst], table.labels[worst], seg_score[worst], 10.0, {}};
    for (std::size_t j = 0; j < rec.targets.size(); ++j) {
      const auto col = static_cast<Eigen::Index>(j);
      report::SignalTrace s{rec.targets[j], {}, {}};
      s.measured.assign(rec.measured.col(col).data(), rec.measured.col(col).data() + rec.measured.rows());
      s.reconstructed.assign(rec.reconstructed.col(col).data(), rec.reconstructed.col(col).data() + rec.reconstructed.rows());
      v.signals.push_back(std::move(s));
    }
    r.worst_segments.push_back(std::move(v));
  }
  return r;
}

// The report of a fleet database: every car's current verdict under the model, and the
// history of the flagged ones.
inline report::ReportData build_db_report(monitor::FleetDb& db, const std::string& db_path, const std::string& model_id) {
  const std::string id = model_id.empty() ? db.active_model() : model_id;
  if (id.empty()) throw std::invalid_argument(db_path + ": no verdicts yet (run dyad monitor first)");
  const auto fleet = db.fleet(id);
  if (fleet.empty()) throw std::invalid_argument(db_path + ": no car has a verdict under model '" + id + "'");
  report::ReportData r;
  r.title = "dyad fleet verdicts";
  const auto segments = db.database().scalar("SELECT count(*) FROM segments");
  r.facts = {{"database", db_path},
             {"model", id + (id == db.active_model() ? " (production)" : " (not the production model)")},
             {"segments scored", std::to_string(segments)}};
  if (const auto others = db.other_models(id); !others.empty())
    r.facts.emplace_back("other models", std::to_string(others.size()) + " (dyad report --model-id ID shows one)");
  const PolicyView policy = policy_view(db, id);
  r.facts.emplace_back("alarm policy", policy.policy ? "alarm at p <= " + rate_text(policy.policy->policy.alarm_rate) +
                                                           ", watch at p <= " + rate_text(policy.policy->policy.watch_rate) + " (" +
                                                           policy.policy->basis + ", since " + policy.policy->recorded + ")"
                                                     : std::string("not recorded (a database from an older dyad)"));
  r.facts.emplace_back("calibration", std::to_string(policy.calibration_cars) + " healthy cars; finest rate 1/" +
                                          std::to_string(policy.calibration_cars + 1) + " = " + rate_text(policy.finest_rate));
  if (std::isfinite(policy.data_from))
    r.facts.emplace_back("data period",
                         monitor::data_time_text(policy.data_from) + " to " + monitor::data_time_text(policy.data_to));
  for (const auto& c : fleet) {
    report::VerdictView v;
    v.car = c.car;
    v.status = detect::status_name(c.status);
    v.p_value = c.p_value;
    v.score = c.score;
    v.segments = c.segments;
    for (const auto& s : c.signals) v.signals.emplace_back(s.name, s.ratio);
    if (!c.signals.empty()) v.hint = detect::signal_hint(c.signals.front().name);
    if (c.status != detect::Status::ok)
      for (const auto& h : db.history(c.car)) {
        if (h.model_id != id) continue;
        v.times.push_back(h.time);
        v.scores.push_back(h.score);
        v.p_values.push_back(h.p_value);
        v.statuses.push_back(detect::status_name(h.status));
      }
    r.verdicts.push_back(std::move(v));
  }
  return r;
}

}  // namespace dyad::cli
