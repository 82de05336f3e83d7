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

#ifdef DYAD_WITH_MPI
#include <dyad/dist/mpi.hpp>
#endif

#include <chrono>
#include <exception>
#include <iostream>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>

namespace {

// `dyad --version`: the version and whether this build runs across MPI ranks.
std::string version_text() {
#ifdef DYAD_WITH_MPI
  return DYAD_VERSION_STRING "\nMPI: " + dyad::mpi_library_version() + " (mpirun -np N dyad train | score)";
#else
  return DYAD_VERSION_STRING "\nMPI: no (built without MPI; install libopenmpi-dev and rebuild for mpirun)";
#endif
}

}  // namespace

int main(int argc, char** argv) {
  using namespace dyad::cli;
#ifdef DYAD_WITH_MPI
  // MPI only under a launcher; on its own dyad stays a plain process.
  std::optional<dyad::MpiSession> mpi;
  std::unique_ptr<dyad::MpiCommunicator> world;
  if (dyad::MpiSession::launched()) {
    mpi.emplace(&argc, &argv);
    world = std::make_unique<dyad::MpiCommunicator>();
    cli_ranks = world.get();
  }
#endif
  const int rank = ranks().rank(), size = ranks().size();
  // Rank 0 speaks for the job; the other ranks' messages would repeat it N times. Their errors
  // still reach stderr (below).
  std::streambuf* const cerr_buffer = std::cerr.rdbuf();
  if (rank != 0) std::cerr.rdbuf(nullptr);

  // Ctrl-C or a kill while an output is being written removes its hidden temporary file.
  dyad::remove_temporaries_on_signals();
  CLI::App app{"dyad " DYAD_VERSION_STRING
               ": find faulty EV battery packs from charging telemetry (DyAD sequence VAE, Nature Communications 14, 5940)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", version_text());

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
    return rank == 0 ? app.exit(e) : (e.get_exit_code() == 0 ? 0 : 1);  // every rank parses the same arguments
  }
  if (size > 1 && !app.got_subcommand("train") && !app.got_subcommand("score")) {
    if (rank == 0)
      std::cerr << "dyad: error: dyad " << app.get_subcommands().front()->get_name()
                << " runs in one process; of the commands only train and score run across mpirun's " << size << " ranks\n";
    return 2;
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
    // Under mpirun the other ranks may be waiting for this one in a collective, so the job ends
    // (MPI_Abort). Most errors (bad data, a bad model) strike every rank alike: the others let
    // rank 0 report first, whose abort ends them before they say the same thing again.
    if (rank != 0) std::this_thread::sleep_for(std::chrono::seconds(2));
    std::cerr.rdbuf(cerr_buffer);
    std::cerr.clear();
    std::cerr << "dyad: error" << (rank != 0 ? " (rank " + std::to_string(rank) + ")" : std::string()) << ": " << what
              << "\n";
#ifdef DYAD_WITH_MPI
    if (size > 1) dyad::MpiSession::abort(1);
#endif
    return 1;
  }
  return 0;
}
