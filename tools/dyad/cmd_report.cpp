// dyad report: one self-contained HTML page with ROC curves, the car ranking, score
// distributions and the reconstruction of the most suspicious cars' worst segments; or, with
// --db, the verdicts in a fleet database and each flagged car's trend.
#include "commands.hpp"
#include "common.hpp"
#include "report_data.hpp"

#include <dyad/ensemble.hpp>
#include <dyad/io/scores_csv.hpp>

#include <CLI/CLI.hpp>

namespace dyad::cli {

struct ReportArgs {
  std::string scores, data, model, out, preset, db, model_id;
  int top = 100;
  int cars = 6;
};

inline void add_report_options(CLI::App* cmd, ReportArgs& a) {
  auto* scores = cmd->add_option("--scores", a.scores, "Score file written by `dyad score`")->check(CLI::ExistingFile);
  auto* data =
      cmd->add_option("--data", a.data, "The data file that was scored (long CSV or segment store)")->check(CLI::ExistingFile);
  auto* model = cmd->add_option("--model", a.model, "The model that scored it")->check(CLI::ExistingFile);
  auto* db = cmd->add_option("--db", a.db,
                             "Instead: the verdicts in a fleet database (dyad monitor; read only), with each flagged car's trend");
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

inline int run_report(const ReportArgs& a) {
  check_output_path(a.out, "--out");  // before loading the model, data and scores
  check_output_not_input(a.out, "--out", {{"--scores", a.scores}, {"--data", a.data}, {"--model", a.model}, {"--db", a.db}});
  if (!a.db.empty()) {
    monitor::FleetDb db(a.db, sql::Access::read_only);
    report::write_report(a.out, build_db_report(db, a.db, a.model_id));
    std::cerr << "dyad report: wrote " << a.out << "\n";
    return 0;
  }
  if (a.scores.empty() || a.data.empty() || a.model.empty())
    throw std::invalid_argument("report needs --scores, --data and --model (or --db FLEET.db)");
  const Ensemble<float> model = Ensemble<float>::load(a.model, a.preset.empty() ? LoadOptions{} : LoadOptions{preset(a.preset)});
  const ScoreTable table = read_scores_csv(a.scores);
  if (!table.labelled)
    throw std::invalid_argument(a.scores +
                                " has no label column (unlabelled cars): the report's ROC curves need labels; "
                                "`dyad evaluate` ranks unlabelled cars");
  const Dataset data = read_model_data(a.data, model.config());
  const auto r = build_report(table, data, model, a.top, a.cars,
                              {{"scores", a.scores},
                               {"data", a.data},
                               {"model", a.model},
                               {"segments scored", std::to_string(table.size())},
                               {"h (per mille)", std::to_string(a.top)}});
  report::write_report(a.out, r);
  std::cerr << "dyad report: wrote " << a.out << "\n";
  return 0;
}

// The table entries (commands.hpp): the arguments live here, filled by CLI11, read by run.
namespace {
ReportArgs report_args;
}  // namespace

namespace command {
void report_options(CLI::App* cmd) { add_report_options(cmd, report_args); }
int report_run() { return run_report(report_args); }
}  // namespace command

}  // namespace dyad::cli
