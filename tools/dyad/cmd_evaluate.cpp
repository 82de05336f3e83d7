// dyad evaluate: car-level ranking and AUROC of every score in a score file.

#include "commands.hpp"
#include "common.hpp"
#include "evaluation.hpp"

#include <dyad/detect/evaluation.hpp>
#include <dyad/detect/ranking.hpp>
#include <dyad/io/scores_csv.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>

namespace dyad::cli {

struct EvaluateArgs {
  std::string scores;
  int top = 100;
  bool json = false;
};

inline void add_evaluate_options(CLI::App* cmd, EvaluateArgs& a) {
  cmd->add_option("--scores", a.scores, "Score file written by `dyad score`")->required()->check(CLI::ExistingFile);
  cmd->add_option("--top", a.top, "h: a car's score is the mean of its top h per mille segment scores")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_flag("--json", a.json, "Print one JSON object instead of tables");
}

// Prints the car ranking (by the last score, the strongest: detect::score_names) and the AUROCs.
void print_evaluation(const std::vector<detect::ScoreEvaluation>& ev, int top, std::size_t max_rows, bool labelled) {
  const auto& key = ev.back();
  const std::vector<std::size_t> order = detect::car_ranking(key.robust);
  std::printf("%-4s %-14s %-7s %8s", "rank", "car", "label", "segments");
  for (const auto& e : ev) std::printf(" %15s", e.name.c_str());
  std::printf("\n");
  for (std::size_t r = 0; r < std::min(max_rows, order.size()); ++r) {
    const std::size_t i = order[r];
    std::printf("%-4zu %-14s %-7s %8zu", r + 1, key.robust[i].car.c_str(),
                !labelled             ? "?"
                : key.robust[i].label ? "FAULTY"
                                      : "normal",
                key.robust[i].segments);
    for (const auto& e : ev) std::printf(" %15.5g", e.robust[i].score);
    std::printf("\n");
  }
  if (max_rows < order.size()) std::printf("... %zu more cars\n", order.size() - max_rows);
  if (!labelled) {
    std::printf("\nno AUROC: the cars are unlabelled (the score file has no label column); the ranking is by %s\n",
                key.name.c_str());
    return;
  }
  std::printf("\ncar-level AUROC (robust: mean of the top %d per mille segments; average: all segments)\n", top);
  for (const auto& e : ev)
    std::printf("  %-15s robust %s   average %s\n", e.name.c_str(), detect::auroc_text(e.auroc_robust).c_str(),
                detect::auroc_text(e.auroc_average).c_str());
}

nlohmann::json evaluation_json(const std::vector<detect::ScoreEvaluation>& ev, int top, bool labelled) {
  nlohmann::json j = {{"top_per_mille", top}, {"labelled", labelled}, {"scores", nlohmann::json::object()}};
  auto num = [&](double v) { return std::isnan(v) || !labelled ? nlohmann::json(nullptr) : nlohmann::json(v); };
  for (const auto& e : ev) {
    nlohmann::json cars = nlohmann::json::array();
    for (std::size_t i = 0; i < e.robust.size(); ++i)
      cars.push_back({{"car", e.robust[i].car},
                      {"label", labelled ? nlohmann::json(e.robust[i].label) : nlohmann::json(nullptr)},
                      {"segments", e.robust[i].segments},
                      {"robust", e.robust[i].score},
                      {"average", e.average[i].score}});
    j["scores"][e.name] = {{"auroc_robust", num(e.auroc_robust)}, {"auroc_average", num(e.auroc_average)}, {"cars", cars}};
  }
  return j;
}

inline int run_evaluate(const EvaluateArgs& a) {
  const ScoreTable t = read_scores_csv(a.scores);
  const auto ev = detect::evaluate_scores(t.cars, t.labels, detect::score_columns(t), a.top);
  if (a.json) std::printf("%s\n", evaluation_json(ev, a.top, t.labelled).dump().c_str());
  else print_evaluation(ev, a.top, SIZE_MAX, t.labelled);
  return 0;
}

// The table entries (commands.hpp): the arguments live here, filled by CLI11, read by run.
namespace {
EvaluateArgs evaluate_args;
}  // namespace

namespace command {
void evaluate_options(CLI::App* cmd) { add_evaluate_options(cmd, evaluate_args); }
int evaluate_run() { return run_evaluate(evaluate_args); }
}  // namespace command

}  // namespace dyad::cli
