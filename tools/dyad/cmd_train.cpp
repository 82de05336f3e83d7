// dyad train: fit a model on a long CSV and save it as safetensors.

#include "commands.hpp"
#include "common.hpp"
#include "progress.hpp"

#include <dyad/dist/agreement.hpp>
#include <dyad/dyad.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <optional>
#include <sstream>
#include <system_error>

namespace dyad::cli {

struct TrainArgs {
  std::string data, out, preset, config, init, log_json, resume, rnn_type;
  std::optional<int> epochs, batch_size, threads, checkpoint_every;
  std::optional<double> lr;
  std::optional<std::uint64_t> seed;
  bool no_shuffle = false, no_normalize = false, quiet = false;
  double calibration_fraction = 0.2;
  int calibration_top = 100;
  int ensemble = 1;
};

inline void add_train_options(CLI::App* cmd, TrainArgs& a) {
  cmd->add_option("--data", a.data, "Training data, long CSV (one row per time step) or segment store (dyad pack)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", a.out, "Where to write the model (.safetensors)")->required();
  auto* preset_opt = cmd->add_option("--preset", a.preset, "Upstream configuration: brand1, brand2, brand3, fivefold")
                         ->check(CLI::IsMember(preset_names()));
  cmd->add_option("--config", a.config, "JSON configuration (dyad's keys or upstream's params file, unchanged)")
      ->check(CLI::ExistingFile);
  add_rnn_type_option(cmd, a.rnn_type,
                      "Recurrent cell (the config key rnn_type): gru, rnn (tanh) or lstm; overrides --preset and --config. "
                      "With --init: the cell the model must have");
  cmd->add_option("--epochs", a.epochs, "Epochs")->check(CLI::Range(1, limits::epochs));
  cmd->add_option("--batch-size", a.batch_size, "Segments per mini-batch")->check(CLI::Range(1, limits::batch_size));
  cmd->add_option("--lr", a.lr, "Learning rate")->check(CLI::PositiveNumber);
  cmd->add_option("--seed", a.seed, "Random seed (initialisation, shuffling, latent noise)");
  cmd->add_option("--threads", a.threads, threads_help())->check(CLI::Range(1, limits::threads));
  cmd->add_option(
         "--init", a.init,
         "Fine-tune this model: its architecture, weights, normaliser and settings, changed only by the training flags given")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--no-shuffle", a.no_shuffle, "Keep the data order in every epoch");
  cmd->add_flag("--no-normalize", a.no_normalize, "Use the values as they are (already normalised data)");
  cmd->add_option("--log-json", a.log_json, "Write every batch's and epoch's losses as JSON lines");
  cmd->add_option("--checkpoint-every", a.checkpoint_every,
                  "Write the complete training state to OUT.state every N epochs (SIGINT/SIGTERM always write it)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--resume", a.resume, "Continue the interrupted run saved in this .state file (same --data)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--calibration-fraction", a.calibration_fraction,
                  "Share of the normal cars held out (not trained on) to calibrate the verdicts' p-values; 0: none")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.9));
  cmd->add_option("--calibration-top", a.calibration_top,
                  "h of the calibrated car scores: the mean of a car's top h per mille segment scores")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--ensemble", a.ensemble,
                  "Train K networks from different seeds on the same cars and score with all of them (each score "
                  "z-scored per network, then averaged): verdicts that do not hinge on one seed, at K times the time")
      ->capture_default_str()
      ->check(CLI::Range(1, limits::ensemble));
  cmd->add_flag("-q,--quiet", a.quiet, "No progress line");
  (void)preset_opt;
}

// The training flags given on the command line, applied to `c`; returns them as "key value".
inline std::vector<std::string> apply_training_flags(const TrainArgs& a, TrainingOptions& c) {
  std::vector<std::string> given;
  auto set = [&](const char* key, auto& field, const auto& value) {
    field = value;
    std::ostringstream text;
    text << key << ' ' << value;
    given.push_back(text.str());
  };
  if (a.epochs) set("epochs", c.epochs, *a.epochs);
  if (a.batch_size) set("batch_size", c.batch_size, *a.batch_size);
  if (a.lr) set("learning_rate", c.lr, *a.lr);
  if (a.seed) set("seed", c.seed, *a.seed);
  if (a.threads) set("threads", c.threads, *a.threads);
  if (a.no_shuffle) set("shuffle", c.shuffle, false);
  if (a.no_normalize) set("normalize", c.normalize, false);
  return given;
}

// The configuration: preset, then config file, then flags, each overriding the last.
inline ModelConfig train_config(const TrainArgs& a) {
  ModelConfig c = a.preset.empty() ? preset("fivefold") : preset(a.preset);
  c.threads = hardware_threads();
  if (!a.config.empty()) c = read_config_file(a.config, c);
  if (!a.rnn_type.empty()) c.cell = parse_cell(a.rnn_type);
  apply_training_flags(a, c);
  c.validate();
  return c;
}

// --init: the loaded model keeps its architecture, normaliser and training settings; only the
// training flags given change (--preset only names the columns of a PyTorch state_dict).
inline Model<float> init_model(const TrainArgs& a) {
  if (!a.config.empty())
    throw std::invalid_argument(
        "--init trains the loaded model with its own settings; give training flags "
        "(--epochs, --batch-size, --lr, --seed, --threads, ...) instead of --config");
  LoadOptions load;
  if (!a.preset.empty()) load.config = preset(a.preset);
  if (!a.rnn_type.empty()) {  // a PyTorch state_dict of another cell is refused, naming the tensor
    load.config = load.config.value_or(ModelConfig{});
    load.config->cell = parse_cell(a.rnn_type);
    load.config_names_cell = true;
  }
  Model<float> model = Model<float>::load(a.init, load);
  if (!a.rnn_type.empty() && model.config().cell != load.config->cell)
    throw std::invalid_argument("--rnn-type " + a.rnn_type + ", but " + a.init + " holds a model of " +
                                std::string(to_string(model.config().cell)) + " cells");
  TrainingOptions c = model.config();
  if (!a.threads) c.threads = hardware_threads();  // a setting of this machine, not of the model
  const std::vector<std::string> given = apply_training_flags(a, c);
  model.set_training(c);
  std::cerr << "dyad train: --init " << a.init << ": architecture, normaliser and training settings from the model";
  for (std::size_t i = 0; i < given.size(); ++i) std::cerr << (i ? ", " : "; from the command line: ") << given[i];
  std::cerr << "\n";
  return model;
}

// SIGINT / SIGTERM during training: the first asks fit() to stop at the next step boundary
// and save the training state; a second one removes temporaries and ends the process at once.
inline volatile std::sig_atomic_t train_stop_signal = 0;
extern "C" inline void on_train_signal(int sig) {
  if (train_stop_signal) {
    detail::unlink_temporaries();
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  train_stop_signal = sig;
}

inline std::string shell_quote(const std::string& s) {
  if (!s.empty() &&
      s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=+:,@%") == std::string::npos)
    return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// A resumed run takes its configuration from the state file; flags may not change it.
inline ModelConfig resume_config(const TrainArgs& a, const ModelConfig& saved) {
  if (!a.preset.empty() || !a.config.empty() || !a.init.empty() || !a.rnn_type.empty())
    throw std::invalid_argument(
        "--resume takes the configuration and weights from the state file; drop --preset, --config, --rnn-type and --init");
  ModelConfig c = saved;
  auto same = [&](const char* flag, auto given, auto was) {
    if (given && *given != was)
      throw std::invalid_argument(std::string(flag) + " " + std::to_string(*given) + " differs from the interrupted run's " +
                                  std::to_string(was) + "; a resumed run keeps its settings");
  };
  same("--epochs", a.epochs, saved.epochs);
  same("--batch-size", a.batch_size, saved.batch_size);
  same("--lr", a.lr, saved.lr);
  same("--seed", a.seed, saved.seed);
  if (a.no_shuffle && saved.shuffle) throw std::invalid_argument("--no-shuffle differs from the interrupted run (it shuffled)");
  if (a.no_normalize && saved.normalize)
    throw std::invalid_argument("--no-normalize differs from the interrupted run (it normalised)");
  if (a.threads) c.threads = *a.threads;
  return c;
}

inline int run_train(const TrainArgs& a) {
  // Under mpirun every rank runs this with the same arguments and trains the same model on its
  // share of each batch (dyad/trainer.hpp); rank 0 writes the model, states and log, and only
  // its messages are shown (main.cpp).
  const Communicator& comm = ranks();
  // Every output is checked before any expensive work.
  const std::string state_path = a.out + ".state";
  check_output_path(a.out, "--out");
  check_output_path(state_path, "--out (its .state file)");
  if (!a.log_json.empty()) check_output_path(a.log_json, "--log-json");
  const std::vector<NamedPath> inputs{{"--data", a.data}, {"--config", a.config}, {"--init", a.init}};
  check_output_not_input(a.out, "--out", inputs);
  check_output_not_input(state_path, "--out (its .state file)", inputs);  // --resume may name it: that is resuming
  check_output_not_input(a.log_json, "--log-json", inputs);
  check_output_not_input(a.out, "--out", {{"--resume", a.resume}});
  check_output_not_input(a.log_json, "--log-json", {{"--resume", a.resume}});

  std::optional<TrainingState<float>> resumed;
  ModelConfig config;
  if (!a.resume.empty()) {
    resumed = load_training_state<float>(a.resume);
    config = resume_config(a, resumed->config);
    if (config.threads != resumed->config.threads)
      std::cerr << "dyad train: note: the interrupted run used " << resumed->config.threads << " threads, this one "
                << config.threads << "; the model may differ from an uninterrupted run in the last bits\n";
  } else if (a.init.empty()) {
    config = train_config(a);
  }
  if (a.ensemble > 1 && (!a.resume.empty() || !a.init.empty() || a.checkpoint_every))
    throw std::invalid_argument("--ensemble " + std::to_string(a.ensemble) +
                                " trains its networks afresh in one run: --resume, --init and --checkpoint-every are for "
                                "single models");
  Ensemble<float> model = a.init.empty() ? Ensemble<float>(config, a.ensemble) : Ensemble<float>(init_model(a));
  FitOptions options;
  options.refit_normalizer = a.init.empty();
  const Dataset data = read_model_data(a.data, model.config());
  {  // every rank fits the same model to its share of its own copy of the data
    std::vector<RankInput> inputs{{"--data '" + a.data + "'", fingerprint(data)},
                                  {"the configuration", Fingerprint().add(model.config().to_json().dump()).value()}};
    if (!a.init.empty()) inputs.push_back({"--init '" + a.init + "'", file_fingerprint(a.init)});
    if (!a.resume.empty()) inputs.push_back({"--resume '" + a.resume + "'", file_fingerprint(a.resume)});
    check_ranks_agree(comm, inputs);
  }
  if (!data.labelled())
    std::cerr << "dyad train: " << a.data << " has no label column (unlabelled): every segment is trained on as normal\n";
  std::cerr << "dyad train: " << data.size() << " segments from " << a.data << "; H " << model.config().hidden << ", layers "
            << model.config().layers << (model.config().bidirectional ? " x2" : "") << ", Z " << model.config().latent << ", "
            << to_string(model.config().cell) << " cells, " << model.member(0).parameters().count() << " parameters"
            << (model.size() > 1 ? " in each of " + std::to_string(model.size()) + " networks" : std::string()) << "\n";
  options.calibration_fraction = a.calibration_fraction;
  options.calibration_top = a.calibration_top;
  options.state_path = state_path;
  options.checkpoint_every = a.checkpoint_every.value_or(0);
  options.stop = &train_stop_signal;
  options.communicator = &comm;
  if (resumed) options.resume = a.resume;
  if (comm.size() > 1)
    std::cerr << "dyad train: data-parallel over " << comm.size() << " MPI ranks, " << model.config().threads
              << " thread(s) each; batches of " << model.config().batch_size << " segments split across them\n";
  ProgressLine line(a.quiet || !comm.root());
  std::vector<nlohmann::json> log;
  train_stop_signal = 0;
  std::signal(SIGINT, on_train_signal);
  std::signal(SIGTERM, on_train_signal);
  FitReport r;
  try {
    r = model.fit(
        data,
        [&](const Progress& p) {
          line(p);
          if (!a.log_json.empty() && comm.root()) {
            log.push_back({{"epoch", p.epoch + 1},
                           {"batch", p.batch},
                           {"step", p.step},
                           {"epoch_end", p.epoch_end},
                           {"loss", p.loss},
                           {"nll", p.nll},
                           {"kl", p.kl},
                           {"label", p.label},
                           {"lr", p.lr},
                           {"kl_weight", p.kl_weight},
                           {"segments_per_s", p.segments_per_s},
                           {"seconds", p.seconds}});
            if (p.members > 1) log.back()["network"] = p.member + 1;
          }
        },
        options);
  } catch (...) {
    remove_temporaries_on_signals();
    throw;
  }
  remove_temporaries_on_signals();  // back to the plain handlers for the writes below
  if (r.interrupted && model.size() > 1) {
    std::cerr << "\ndyad train: interrupted by signal " << train_stop_signal << " before the ensemble's " << model.size()
              << " networks were trained; nothing was written\n";
    return 130;
  }
  if (r.interrupted && !comm.root()) return 130;
  if (r.interrupted) {
    std::cerr << "\ndyad train: interrupted by signal " << train_stop_signal << " after " << r.steps
              << " steps; saved the training state to " << state_path << "\nresume with: dyad train --resume "
              << shell_quote(state_path) << " --data " << shell_quote(a.data) << " --out " << shell_quote(a.out)
              << (a.log_json.empty() ? "" : " --log-json " + shell_quote(a.log_json)) << "\n";
    return 130;
  }
  if (!comm.root()) return 0;  // the same model as rank 0's, which writes it
  model.save(a.out);
  if (!a.log_json.empty())
    write_file_atomically(a.log_json, [&](std::ostream& os) {
      for (const auto& j : log) os << j.dump() << '\n';
    });
  // The model is complete: a leftover state would only confuse a later --resume.
  std::error_code ignored;
  if (r.states_written > 0 || resumed) std::filesystem::remove(state_path, ignored);
  std::cerr << "dyad train: " << (r.resumed ? "resumed and " : "")
            << (model.size() > 1 ? "trained " + std::to_string(model.size()) + " networks, each " : std::string()) << "trained on "
            << r.segments << " normal segments";
  if (r.faulty_excluded) std::cerr << " (" << r.faulty_excluded << " faulty segments left out: one-class training)";
  std::cerr << ", " << r.steps << " steps in " << clock(r.seconds) << ", final loss " << r.final_loss
            << (r.label_loss ? "" : "; no mileage in the data, so no mileage loss") << "\n";
  print_calibration_summary("dyad train", model.calibration());
  std::cerr << "wrote " << a.out << "\n";
  return 0;
}

// The table entries (commands.hpp): the arguments live here, filled by CLI11, read by run.
namespace {
TrainArgs train_args;
}  // namespace

namespace command {
void train_options(CLI::App* cmd) { add_train_options(cmd, train_args); }
int train_run() { return run_train(train_args); }
}  // namespace command

}  // namespace dyad::cli
