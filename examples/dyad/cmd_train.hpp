// dyad train: fit a model on a long CSV and save it as safetensors.
#pragma once

#include "common.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace dyad::cli {

struct TrainArgs {
  std::string data, out, preset, config, init, log_json;
  std::optional<int> epochs, batch_size, threads;
  std::optional<double> lr;
  std::optional<std::uint64_t> seed;
  bool no_shuffle = false, no_normalize = false, quiet = false;
};

inline void add_train_options(CLI::App* cmd, TrainArgs& a) {
  cmd->add_option("--data", a.data, "Training data, long CSV (one row per time step)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out", a.out, "Where to write the model (.safetensors)")->required();
  auto* preset_opt = cmd->add_option("--preset", a.preset, "Upstream configuration: brand1, brand2, brand3, fivefold")
                         ->check(CLI::IsMember(preset_names()));
  cmd->add_option("--config", a.config, "JSON configuration (dyad's keys or upstream's params file)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--epochs", a.epochs, "Epochs")->check(CLI::PositiveNumber);
  cmd->add_option("--batch-size", a.batch_size, "Segments per mini-batch")->check(CLI::PositiveNumber);
  cmd->add_option("--lr", a.lr, "Learning rate")->check(CLI::PositiveNumber);
  cmd->add_option("--seed", a.seed, "Random seed (initialisation, shuffling, latent noise)");
  cmd->add_option("--threads", a.threads, "Worker threads")->check(CLI::PositiveNumber);
  cmd->add_option("--init", a.init, "Start from this model's weights and normaliser (fine-tuning)")->check(CLI::ExistingFile);
  cmd->add_flag("--no-shuffle", a.no_shuffle, "Keep the data order in every epoch");
  cmd->add_flag("--no-normalize", a.no_normalize, "Use the values as they are (already normalised data)");
  cmd->add_option("--log-json", a.log_json, "Write every batch's and epoch's losses as JSON lines");
  cmd->add_flag("-q,--quiet", a.quiet, "No progress line");
  (void)preset_opt;
}

// The configuration: preset, then config file, then flags, each overriding the last.
inline ModelConfig train_config(const TrainArgs& a) {
  ModelConfig c = a.preset.empty() ? preset("fivefold") : preset(a.preset);
  if (!a.config.empty()) c = config_from_file(a.config, c);
  if (a.epochs) c.epochs = *a.epochs;
  if (a.batch_size) c.batch_size = *a.batch_size;
  if (a.lr) c.lr = *a.lr;
  if (a.seed) c.seed = *a.seed;
  if (a.threads) c.threads = *a.threads;
  if (a.no_shuffle) c.shuffle = false;
  if (a.no_normalize) c.normalize = false;
  c.validate();
  return c;
}

inline int run_train(const TrainArgs& a) {
  ModelConfig config = train_config(a);
  Model<float> model(config);
  FitOptions options;
  if (!a.init.empty()) {
    model = Model<float>::load(a.init, {config});
    // Sizes come from the checkpoint; training settings from the command line.
    ModelConfig& c = model.config();
    c.epochs = config.epochs, c.batch_size = config.batch_size, c.lr = config.lr, c.seed = config.seed;
    c.threads = config.threads, c.shuffle = config.shuffle, c.normalize = config.normalize;
    options.refit_normalizer = false;
  }
  const Dataset data = read_model_data(a.data, model.config());
  std::cerr << "dyad train: " << data.size() << " segments from " << a.data << "; H " << model.config().hidden
            << ", layers " << model.config().layers << (model.config().bidirectional ? " x2" : "") << ", Z "
            << model.config().latent << ", " << model.parameters().count() << " parameters\n";
  ProgressLine line(a.quiet);
  std::vector<nlohmann::json> log;
  const FitReport r = model.fit(
      data,
      [&](const Progress& p) {
        line(p);
        if (!a.log_json.empty())
          log.push_back({{"epoch", p.epoch + 1}, {"batch", p.batch}, {"step", p.step}, {"epoch_end", p.epoch_end},
                         {"loss", p.loss}, {"nll", p.nll}, {"kl", p.kl}, {"label", p.label}, {"lr", p.lr},
                         {"kl_weight", p.kl_weight}, {"segments_per_s", p.segments_per_s}, {"seconds", p.seconds}});
      },
      options);
  model.save(a.out);
  if (!a.log_json.empty())
    write_file_atomically(a.log_json, [&](std::ostream& os) {
      for (const auto& j : log) os << j.dump() << '\n';
    });
  std::cerr << "dyad train: trained on " << r.segments << " normal segments";
  if (r.faulty_excluded) std::cerr << " (" << r.faulty_excluded << " faulty segments left out: one-class training)";
  std::cerr << ", " << r.steps << " steps in " << clock(r.seconds) << ", final loss " << r.final_loss
            << (r.label_loss ? "" : "; no mileage in the data, so no mileage loss") << "\nwrote " << a.out << "\n";
  return 0;
}

}  // namespace dyad::cli
