// dyad report: one self-contained HTML page with ROC curves, the car ranking, score
// distributions and the reconstruction of the most suspicious cars' worst segments; or, with
// --db, the verdicts in a fleet database and each flagged car's trend.
#pragma once

#include "cmd_evaluate.hpp"
#include "common.hpp"

#include <dyad/monitor/fleet_db.hpp>
#include <dyad/report/html.hpp>

#include <CLI/CLI.hpp>

#include <map>

namespace dyad::cli {

struct ReportArgs {
  std::string scores, data, model, out, preset, db, model_id;
  int top = 100;
  int cars = 6;
};

inline void add_report_options(CLI::App* cmd, ReportArgs& a) {
  auto* scores = cmd->add_option("--scores", a.scores, "Score file written by `dyad score`")->check(CLI::ExistingFile);
  auto* data = cmd->add_option("--data", a.data, "The data file that was scored (long CSV or segment store)")->check(CLI::ExistingFile);
  auto* model = cmd->add_option("--model", a.model, "The model that scored it")->check(CLI::ExistingFile);
  auto* db = cmd->add_option("--db", a.db, "Instead: the verdicts in a fleet database (dyad monitor), with each flagged car's trend")
                 ->check(CLI::ExistingFile);
  db->excludes(scores)->excludes(data)->excludes(model);
  cmd->add_option("--model-id", a.model_id, "--db: the model whose verdicts to show (default: the one used last)");
  cmd->add_option("--out", a.out, "Output HTML file")->required();
  cmd->add_option("--preset", a.preset, "Columns for a PyTorch state_dict without dyad metadata")
      ->check(CLI::IsMember(preset_names()));
  cmd->add_option("--top", a.top, "h per mille for the robust car score")->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_option("--cars", a.cars, "How many of the most suspicious cars to show in detail")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
}

// Builds the report: the ranking uses the strongest score present (combined, else rec_error),
// and each of the `cars` highest-ranked cars shows its worst segment under that score.
template <class M>  // a Model or an Ensemble
report::ReportData build_report(const ScoreTable& table, const Dataset& data, const M& model, int top,
                                int detail_cars, std::vector<std::pair<std::string, std::string>> facts) {
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
  const std::string id = model_id.empty() ? db.latest_model() : model_id;
  if (id.empty()) throw std::invalid_argument(db_path + ": no verdicts yet (run dyad monitor first)");
  const auto fleet = db.fleet(id);
  if (fleet.empty()) throw std::invalid_argument(db_path + ": no car has a verdict under model '" + id + "'");
  report::ReportData r;
  r.title = "dyad fleet verdicts";
  const auto segments = db.database().scalar("SELECT count(*) FROM segments");
  r.facts = {{"database", db_path}, {"model", id}, {"segments scored", std::to_string(segments)}};
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

inline int run_report(const ReportArgs& a) {
  check_output_path(a.out, "--out");  // before loading the model, data and scores
  if (!a.db.empty()) {
    monitor::FleetDb db(a.db);
    report::write_report(a.out, build_db_report(db, a.db, a.model_id));
    std::cerr << "dyad report: wrote " << a.out << "\n";
    return 0;
  }
  if (a.scores.empty() || a.data.empty() || a.model.empty())
    throw std::invalid_argument("report needs --scores, --data and --model (or --db FLEET.db)");
  const Ensemble<float> model = Ensemble<float>::load(a.model, a.preset.empty() ? LoadOptions{} : LoadOptions{preset(a.preset)});
  const ScoreTable table = read_scores_csv(a.scores);
  if (!table.labelled)
    throw std::invalid_argument(a.scores + " has no label column (unlabelled cars): the report's ROC curves need labels; "
                                           "`dyad evaluate` ranks unlabelled cars");
  const Dataset data = read_model_data(a.data, model.config());
  const auto r = build_report(table, data, model, a.top, a.cars,
                              {{"scores", a.scores}, {"data", a.data}, {"model", a.model},
                               {"segments scored", std::to_string(table.size())}, {"h (per mille)", std::to_string(a.top)}});
  report::write_report(a.out, r);
  std::cerr << "dyad report: wrote " << a.out << "\n";
  return 0;
}

}  // namespace dyad::cli
