// The dyad command line: train, score and the fleet tools built on the library.
#include "cmd_bench.hpp"
#include "cmd_calibrate.hpp"
#include "cmd_cv.hpp"
#include "cmd_demo.hpp"
#include "cmd_evaluate.hpp"
#include "cmd_ingest.hpp"
#include "cmd_monitor.hpp"
#include "cmd_pack.hpp"
#include "cmd_report.hpp"
#include "cmd_score.hpp"
#include "cmd_simulate.hpp"
#include "cmd_train.hpp"

#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>
#include <string_view>

int main(int argc, char** argv) {
  using namespace dyad::cli;
  // Ctrl-C or a kill while an output is being written removes its hidden temporary file.
  dyad::remove_temporaries_on_signals();
  CLI::App app{"dyad " DYAD_VERSION_STRING
               ": find faulty EV battery packs from charging telemetry (DyAD sequence VAE, Nature Communications 14, 5940)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", DYAD_VERSION_STRING);

  TrainArgs train;
  add_train_options(app.add_subcommand("train", "Train a model on normal cars' charging segments"), train);
  CalibrateArgs calibrate;
  add_calibrate_options(app.add_subcommand("calibrate", "Recalibrate a model's p-values on other healthy cars"), calibrate);
  ScoreArgs score;
  add_score_options(app.add_subcommand("score", "Score every segment of a data file"), score);
  SimulateArgs simulate;
  add_simulate_options(app.add_subcommand("simulate", "Write a synthetic fleet's charging telemetry"), simulate);
  IngestArgs ingest;
  add_ingest_options(app.add_subcommand("ingest", "Cut raw telematics exports into charging windows (the long CSV)"), ingest);
  PackArgs pack;
  add_pack_options(app.add_subcommand("pack", "Pack a long CSV into a segment store that --data reads without parsing"), pack);
  EvaluateArgs evaluate;
  add_evaluate_options(app.add_subcommand("evaluate", "Car ranking and AUROC of a score file"), evaluate);
  CvArgs cv;
  add_cv_options(app.add_subcommand("cv", "The paper's car-grouped k-fold protocol"), cv);
  ReportArgs report;
  add_report_options(app.add_subcommand("report", "Write a self-contained HTML fleet report"), report);
  MonitorArgs monitor;
  add_monitor_options(app.add_subcommand("monitor", "Score new segments into the fleet database and update each car's status"),
                      monitor);
  CompareArgs compare;
  add_compare_options(app.add_subcommand("compare", "Which cars' verdicts a new model would change"), compare);
  StatusArgs status;
  add_status_options(app.add_subcommand("status", "The fleet's verdicts, or one car's history, from the fleet database"), status);
  BenchArgs bench;
  add_bench_options(app.add_subcommand("bench", "Time training, scoring and latency of a preset"), bench);
  DemoArgs demo;
  add_demo_options(app.add_subcommand("demo", "Simulate a fleet, train, score, rank and report"), demo);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (app.got_subcommand("train")) return run_train(train);
    if (app.got_subcommand("calibrate")) return run_calibrate(calibrate);
    if (app.got_subcommand("score")) return run_score(score);
    if (app.got_subcommand("simulate")) return run_simulate(simulate);
    if (app.got_subcommand("ingest")) return run_ingest(ingest);
    if (app.got_subcommand("pack")) return run_pack(pack);
    if (app.got_subcommand("evaluate")) return run_evaluate(evaluate);
    if (app.got_subcommand("cv")) return run_cv(cv);
    if (app.got_subcommand("report")) return run_report(report);
    if (app.got_subcommand("monitor")) return run_monitor(monitor);
    if (app.got_subcommand("status")) return run_status(status);
    if (app.got_subcommand("compare")) return run_compare(compare);
    if (app.got_subcommand("demo")) return run_demo(demo);
    if (app.got_subcommand("bench")) return run_bench(bench);
  } catch (const std::exception& e) {
    std::string_view what = e.what();
    if (what.starts_with("dyad: ")) what.remove_prefix(6);  // the library's own prefix, said once
    std::cerr << "dyad: error: " << what << "\n";
    return 1;
  }
  return 0;
}
