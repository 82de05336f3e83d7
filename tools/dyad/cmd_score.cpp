// dyad score: per-segment scores of a long CSV under a trained model.

#include "commands.hpp"
#include "common.hpp"
#include "scoring.hpp"

#include <dyad/dist/agreement.hpp>
#include <dyad/dyad.hpp>

#include <CLI/CLI.hpp>

#include <numeric>
#include <vector>

namespace dyad::cli {

struct ScoreArgs {
  std::string model, data, out, preset;
  bool no_normalize = false, allow_drift = false;
  std::optional<int> threads;
  int batch_size = 256;
  std::string precision = "fp32";
};

inline void add_score_options(CLI::App* cmd, ScoreArgs& a) {
  cmd->add_option("--model", a.model, "Trained model (.safetensors, dyad's or a PyTorch state_dict)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--data", a.data, "Data to score, long CSV or segment store (dyad pack)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out", a.out, "Where to write the scores (CSV, one row per segment)")->required();
  cmd->add_option("--preset", a.preset, "Columns for a PyTorch state_dict without dyad metadata")
      ->check(CLI::IsMember(preset_names()));
  cmd->add_flag("--no-normalize", a.no_normalize, "Score the values as they are (data normalised beforehand)");
  cmd->add_flag("--allow-drift", a.allow_drift,
                "Score a column whose sign, units or constancy contradict the training data, with a warning instead of an error");
  cmd->add_option("--threads", a.threads, threads_help())->check(CLI::Range(1, limits::threads));
  cmd->add_option("--batch-size", a.batch_size, "Segments per scoring batch")->check(CLI::PositiveNumber);
  add_precision_option(cmd, a.precision);
}

// A model for scoring: a single model is an ensemble of one (dyad/ensemble.hpp).
Ensemble<float> load_for_scoring(const std::string& path, const std::string& preset_name) {
  LoadOptions options;
  if (!preset_name.empty()) options.config = preset(preset_name);
  return Ensemble<float>::load(path, options);
}

// Values far outside the model's training range (a unit mix-up such as cell voltage in mV)
// are named, car, segment and column, before scoring.
void warn_out_of_range(const Ensemble<float>& model, const Dataset& data, const char* who) {
  std::size_t count = 0;
  const auto cols = model.resolve_columns(data);
  const auto found = out_of_range_values(data, cols, model.normalizer(), 50, 5, &count);
  for (const auto& f : found) {
    const SegmentMeta& m = data.meta(f.segment);
    std::cerr << who << ": warning: car '" << detail::excerpt(m.car, 60) << "' segment " << m.segment << " column '"
              << model.normalizer().columns()[f.column] << "' step " << f.step << ": " << text::number_text(f.value) << " is "
              << text::number_text(std::round(std::abs(f.standardised))) << " scales from the training mean "
              << text::number_text(model.normalizer().mean()[f.column]) << "; check the data's units\n";
  }
  if (count > found.size())
    std::cerr << who << ": warning: " << count - found.size() << " more segment column(s) far outside the training range\n";
}

std::vector<InputDrift> check_input_drift(const Ensemble<float>& model, const Dataset& data, bool allow, const char* who) {
  const auto found = input_drift(data, model.resolve_columns(data), model.normalizer());
  if (found.empty()) return found;
  if (allow) {
    for (const auto& d : found) std::cerr << who << ": warning (--allow-drift): " << drift_text(d) << "\n";
    return found;
  }
  std::string what;
  for (const auto& d : found) what += "\n  " + drift_text(d);
  throw std::invalid_argument("the data is clearly not what the model was trained on:" + what +
                              "\nFix the data (or the ingest spec) and run again; --allow-drift scores it anyway, with warnings");
}

inline int run_score(const ScoreArgs& a) {
  check_output_path(a.out, "--out");  // before loading and scoring, which may take long
  check_output_not_input(a.out, "--out", {{"--model", a.model}, {"--data", a.data}});
  const Precision precision = chosen_precision(a.precision, "dyad score");
  Ensemble<float> model = load_for_scoring(a.model, a.preset);
  if (a.no_normalize) model.set_normalizer(Normalizer::identity(model.config().roles.encoder));
  const Dataset data = read_model_data(a.data, model.config());
  // Every rank scores its share of its own copy of the data with its own copy of the model.
  check_ranks_agree(ranks(),
                    {{"--data '" + a.data + "'", fingerprint(data)}, {"--model '" + a.model + "'", file_fingerprint(a.model)}});
  if (ranks().root()) {  // each reads every value: once, not on every rank
    warn_out_of_range(model, data);
    if (!a.no_normalize) check_input_drift(model, data, a.allow_drift);
  }
  const auto start = std::chrono::steady_clock::now();
  Ensemble<float>::Workspace workspace(a.threads.value_or(hardware_threads()), precision);
  // Under mpirun each rank scores a share of the batches (each the batch one process scores, so
  // the file is byte-identical) and rank 0 writes them all.
  const Communicator& comm = ranks();
  std::vector<std::size_t> all(data.size());
  std::iota(all.begin(), all.end(), std::size_t{0});
  const Scores s = score_across(comm, model, workspace, data, all, static_cast<std::size_t>(a.batch_size));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!comm.root()) return 0;
  write_scores_csv(a.out, data, s);
  std::cerr << "dyad score: " << data.size() << " segments in " << clock(seconds) << " ("
            << static_cast<long>(data.size() / std::max(seconds, 1e-9)) << " seg/s, " << to_string(workspace.precision())
            << (comm.size() > 1 ? ", " + std::to_string(comm.size()) + " MPI ranks" : std::string()) << "); wrote " << a.out
            << "\n";
  return 0;
}

// The table entries (commands.hpp): the arguments live here, filled by CLI11, read by run.
namespace {
ScoreArgs score_args;
}  // namespace

namespace command {
void score_options(CLI::App* cmd) { add_score_options(cmd, score_args); }
int score_run() { return run_score(score_args); }
}  // namespace command

}  // namespace dyad::cli
