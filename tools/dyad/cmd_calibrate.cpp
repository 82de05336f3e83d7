// dyad calibrate: recalibrate a model's verdicts on other healthy cars (and, for the cost-based
// operating point, labelled faulty ones) without retraining it.

#include "commands.hpp"
#include "common.hpp"
#include "scoring.hpp"

#include <dyad/dyad.hpp>

#include <CLI/CLI.hpp>

namespace dyad::cli {

struct CalibrateArgs {
  std::string model, data, out;
  int top = 100;
  std::optional<int> threads;
};

inline void add_calibrate_options(CLI::App* cmd, CalibrateArgs& a) {
  cmd->add_option("--model", a.model, "Trained model (.safetensors)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--data", a.data,
                  "Long CSV of cars the model did not train on: healthy ones (label 0 or no label column), and any "
                  "labelled faulty ones (label 1) for --cost-miss")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", a.out, "Where to write the recalibrated model (.safetensors; may be --model)")->required();
  cmd->add_option("--top", a.top, "h: a car's score is the mean of its top h per mille segment scores")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--threads", a.threads, threads_help())->check(CLI::Range(1, limits::threads));
}

inline int run_calibrate(const CalibrateArgs& a) {
  check_output_path(a.out, "--out");
  check_output_not_input(a.out, "--out", {{"--model", a.model}, {"--data", a.data}});
  Ensemble<float> model = load_for_scoring(a.model, "");
  if (!model.calibration().empty())
    std::cerr << "dyad calibrate: replacing the calibration on " << model.calibration().size() << " cars in " << a.model << "\n";
  const Dataset data = read_model_data(a.data, model.config());
  warn_out_of_range(model, data, "dyad calibrate");
  Ensemble<float>::Workspace workspace(a.threads.value_or(hardware_threads()));
  const Scores s = model.score(workspace, data);
  model.set_calibration(detect::Calibration::fit(to_score_table(data, s), model.config().roles.targets(), a.top));
  print_calibration_summary("dyad calibrate", model.calibration());
  model.save(a.out);
  std::cerr << "wrote " << a.out << "\n";
  return 0;
}

// The table entries (commands.hpp): the arguments live here, filled by CLI11, read by run.
namespace {
CalibrateArgs calibrate_args;
}  // namespace

namespace command {
void calibrate_options(CLI::App* cmd) { add_calibrate_options(cmd, calibrate_args); }
int calibrate_run() { return run_calibrate(calibrate_args); }
}  // namespace command

}  // namespace dyad::cli
