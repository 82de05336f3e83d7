// dyad demo: simulate a fleet, train on the normal cars of a training split, score every
// test segment, print the car ranking and AUROCs, and write the HTML report.

#include "commands.hpp"
#include "common.hpp"
#include "evaluation.hpp"
#include "progress.hpp"
#include "report_data.hpp"

#include <dyad/dyad.hpp>

#include <CLI/CLI.hpp>

#include <filesystem>

namespace dyad::cli {

struct DemoArgs {
  std::string out = "demo-out";
  sim::FleetConfig fleet{100, 10, 40, 128, 10.0, 1, 96, {}};
  double train_fraction = 0.7;
  int epochs = 10;
  int threads = hardware_threads();
  int top = 100;
};

inline void add_demo_options(CLI::App* cmd, DemoArgs& a) {
  cmd->add_option("--out", a.out, "Output directory (fleet.csv, model.safetensors, scores.csv, report.html)")
      ->capture_default_str();
  cmd->add_option("--cars", a.fleet.cars, "Cars in the simulated fleet")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--faulty", a.fleet.faulty, "Faulty cars")->capture_default_str();
  cmd->add_option("--segments", a.fleet.segments_per_car, "Segments per car")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--seed", a.fleet.seed, "Seed of the fleet, split and training")->capture_default_str();
  cmd->add_option("--epochs", a.epochs, "Training epochs")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--threads", a.threads, threads_help())->check(CLI::Range(1, limits::threads));
  cmd->add_option("--train-fraction", a.train_fraction, "Share of normal cars used for training")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 0.95));
}

inline int run_demo(const DemoArgs& a) {
  namespace fs = std::filesystem;
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return clock(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()); };
  prepare_output_directory(a.out, "--out", {"fleet.csv", "model.safetensors", "scores.csv", "report.html"});
  std::cerr << "[1/4] simulating " << a.fleet.cars << " cars (" << a.fleet.faulty << " faulty) x " << a.fleet.segments_per_car
            << " charging segments ...\n";
  const Dataset fleet = sim::simulate_dataset(a.fleet);
  write_csv(fs::path(a.out) / "fleet.csv", fleet);

  // Car-level split: a share of the normal cars trains; the rest and every faulty car are tested.
  detect::FleetCars cars = detect::fleet_cars(fleet);
  Rng rng(a.fleet.seed);
  rng.shuffle(cars.normal);
  const auto n_train = static_cast<std::size_t>(a.train_fraction * static_cast<double>(cars.normal.size()));
  const std::vector<std::string> train_cars(cars.normal.begin(), cars.normal.begin() + static_cast<std::ptrdiff_t>(n_train));
  std::vector<std::string> test_cars(cars.normal.begin() + static_cast<std::ptrdiff_t>(n_train), cars.normal.end());
  test_cars.insert(test_cars.end(), cars.faulty.begin(), cars.faulty.end());
  const Dataset train = fleet.subset(detect::segments_of(cars.per_segment, train_cars));
  const Dataset test = fleet.subset(detect::segments_of(cars.per_segment, test_cars));

  ModelConfig config = preset("fivefold");
  config.epochs = a.epochs;
  config.threads = a.threads;
  config.seed = a.fleet.seed;
  std::cerr << "[2/4] training the fivefold model on " << train.size() << " segments of " << train_cars.size() << " normal cars ("
            << elapsed() << ")\n";
  Model<float> model(config);
  ProgressLine line;
  model.fit(train, std::ref(line));
  model.save(fs::path(a.out) / "model.safetensors");

  std::cerr << "[3/4] scoring " << test.size() << " segments of " << test_cars.size() << " test cars (" << elapsed() << ")\n";
  const Scores s = model.score(test);
  write_scores_csv(fs::path(a.out) / "scores.csv", test, s);
  const ScoreTable table = to_score_table(test, s);
  std::printf("\nTest cars ranked by the combined score (top %d per mille of each car's segments):\n\n", a.top);
  print_evaluation(detect::evaluate_scores(table.cars, table.labels, detect::score_columns(table), a.top), a.top, 20);

  std::cerr << "[4/4] writing the report (" << elapsed() << ")\n";
  const auto r = build_report(table, test, model, a.top, 6,
                              {{"fleet", std::to_string(a.fleet.cars) + " simulated cars, " + std::to_string(a.fleet.faulty) +
                                             " faulty, seed " + std::to_string(a.fleet.seed)},
                               {"training", std::to_string(train_cars.size()) + " normal cars, " + std::to_string(train.size()) +
                                                " segments, " + std::to_string(a.epochs) + " epochs, preset fivefold"},
                               {"test", std::to_string(test_cars.size()) + " cars, " + std::to_string(test.size()) + " segments"},
                               {"h (per mille)", std::to_string(a.top)}});
  report::write_report(fs::path(a.out) / "report.html", r);
  std::printf("\nwrote %s/{fleet.csv, model.safetensors, scores.csv, report.html} in %s\n", a.out.c_str(), elapsed().c_str());
  return 0;
}

// The table entries (commands.hpp): the arguments live here, filled by CLI11, read by run.
namespace {
DemoArgs demo_args;
}  // namespace

namespace command {
void demo_options(CLI::App* cmd) { add_demo_options(cmd, demo_args); }
int demo_run() { return run_demo(demo_args); }
}  // namespace command

}  // namespace dyad::cli
