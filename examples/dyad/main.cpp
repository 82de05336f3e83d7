// The dyad command line: train, score, and the fleet tools built on the library.
#include "cmd_score.hpp"
#include "cmd_train.hpp"

#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>

int main(int argc, char** argv) {
  using namespace dyad::cli;
  CLI::App app{"dyad " DYAD_VERSION_STRING
               ": find faulty EV battery packs from charging telemetry (DyAD sequence VAE, Nature Communications 14, 5940)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", DYAD_VERSION_STRING);

  TrainArgs train;
  add_train_options(app.add_subcommand("train", "Train a model on normal cars' charging segments"), train);
  ScoreArgs score;
  add_score_options(app.add_subcommand("score", "Score every segment of a data file"), score);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (app.got_subcommand("train")) return run_train(train);
    if (app.got_subcommand("score")) return run_score(score);
  } catch (const std::exception& e) {
    std::cerr << "dyad: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
