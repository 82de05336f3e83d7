// dyad report: one self-contained HTML page with ROC curves, the car ranking, score
// distributions and the reconstruction of the most suspicious cars' worst segments.
#pragma once

#include "cmd_evaluate.hpp"
#include "common.hpp"

#include <dyad/report/html.hpp>

#include <CLI/CLI.hpp>

#include <map>

namespace dyad::cli {

struct ReportArgs {
  std::string scores, data, model, out, preset;
  int top = 100;
  int cars = 6;
};

inline void add_report_options(CLI::App* cmd, ReportArgs& a) {
  cmd->add_option("--scores", a.scores, "Score file written by `dyad score`")->required()->check(CLI::ExistingFile);
  cmd->add_option("--data", a.data, "The data file that was scored (long CSV)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--model", a.model, "The model that scored it")->required()->check(CLI::ExistingFile);
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
inline report::ReportData build_report(const ScoreTable& table, const Dataset& data, Model<float>& model, int top,
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

inline int run_report(const ReportArgs& a) {
  check_output_path(a.out, "--out");  // before loading the model, data and scores
  Model<float> model = Model<float>::load(a.model, a.preset.empty() ? LoadOptions{} : LoadOptions{preset(a.preset)});
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
