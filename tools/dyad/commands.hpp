// The table of dyad's commands: for each, its name, its help, the function that adds its options
// to a CLI11 subcommand, the function that runs it (after parsing) and whether it runs across
// mpirun's ranks. main.cpp builds the command line from it, in this order (`dyad --help` lists
// them so). Each command lives in its own translation unit, cmd_NAME.cpp (monitor, compare and
// status share cmd_monitor.cpp), which holds its parsed arguments.
#pragma once

#include <array>
#include <stdexcept>
#include <string_view>

namespace CLI {
class App;
}

namespace dyad::cli {

// An invocation that cannot do what it asks (not a failure of data or system): exit status 2,
// as for options CLI11 refuses.
struct UsageError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

struct Command {
  std::string_view name, help;
  void (*add_options)(CLI::App*);  // the options of subcommand `name`
  int (*run)();                    // the exit code
  bool across_ranks;               // runs on every rank under mpirun (else one process only)
};

namespace command {
void train_options(CLI::App*);
int train_run();
void calibrate_options(CLI::App*);
int calibrate_run();
void score_options(CLI::App*);
int score_run();
void simulate_options(CLI::App*);
int simulate_run();
void ingest_options(CLI::App*);
int ingest_run();
void pack_options(CLI::App*);
int pack_run();
void evaluate_options(CLI::App*);
int evaluate_run();
void cv_options(CLI::App*);
int cv_run();
void report_options(CLI::App*);
int report_run();
void monitor_options(CLI::App*);
int monitor_run();
void compare_options(CLI::App*);
int compare_run();
void status_options(CLI::App*);
int status_run();
void bench_options(CLI::App*);
int bench_run();
void demo_options(CLI::App*);
int demo_run();
}  // namespace command

inline constexpr std::array<Command, 14> commands{{
    {"train", "Train a model on normal cars' charging segments", command::train_options, command::train_run, true},
    {"calibrate", "Recalibrate a model's p-values on other healthy cars", command::calibrate_options, command::calibrate_run,
     false},
    {"score", "Score every segment of a data file", command::score_options, command::score_run, true},
    {"simulate", "Write a synthetic fleet's charging telemetry", command::simulate_options, command::simulate_run, false},
    {"ingest", "Cut raw telematics exports into charging windows (the long CSV)", command::ingest_options, command::ingest_run,
     false},
    {"pack", "Pack a long CSV into a segment store that --data reads without parsing", command::pack_options, command::pack_run,
     false},
    {"evaluate", "Car ranking and AUROC of a score file", command::evaluate_options, command::evaluate_run, false},
    {"cv", "The paper's car-grouped k-fold protocol", command::cv_options, command::cv_run, false},
    {"report", "Write a self-contained HTML fleet report", command::report_options, command::report_run, false},
    {"monitor", "Score new segments into the fleet database and update each car's status", command::monitor_options,
     command::monitor_run, false},
    {"compare", "Which cars' verdicts a new model would change", command::compare_options, command::compare_run, false},
    {"status", "The fleet's verdicts, or one car's history, from the fleet database", command::status_options, command::status_run,
     false},
    {"bench", "Time training, scoring and latency of a preset", command::bench_options, command::bench_run, false},
    {"demo", "Simulate a fleet, train, score, rank and report", command::demo_options, command::demo_run, false},
}};

}  // namespace dyad::cli
