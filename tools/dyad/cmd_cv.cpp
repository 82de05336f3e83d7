// dyad cv: the paper's car-grouped k-fold protocol end to end (dyad-method §6).

#include "commands.hpp"
#include "common.hpp"
#include "progress.hpp"

#include <dyad/dyad.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace dyad::cli {

struct CvArgs {
  std::string data, preset = "fivefold", config;
  std::size_t folds = 5;
  std::optional<int> epochs, threads;
  std::uint64_t seed = 0;
  bool json = false, quiet = false;
};

inline void add_cv_options(CLI::App* cmd, CvArgs& a) {
  cmd->add_option("--data", a.data, "Fleet data, long CSV with labelled cars, or its segment store (dyad pack)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--folds", a.folds, "Folds over the normal cars")->capture_default_str()->check(CLI::Range(2, 100));
  cmd->add_option("--preset", a.preset, "Upstream configuration")->capture_default_str()->check(CLI::IsMember(preset_names()));
  cmd->add_option("--config", a.config, "JSON configuration overriding the preset")->check(CLI::ExistingFile);
  cmd->add_option("--epochs", a.epochs, "Epochs per fold")->check(CLI::PositiveNumber);
  cmd->add_option("--threads", a.threads, threads_help())->check(CLI::Range(1, limits::threads));
  cmd->add_option("--seed", a.seed, "Seed of the fold split and of training")->capture_default_str();
  cmd->add_flag("--json", a.json, "Print one JSON object with every fold");
  cmd->add_flag("-q,--quiet", a.quiet, "No progress line");
}

inline int run_cv(const CvArgs& a) {
  ModelConfig config = preset(a.preset);
  config.threads = hardware_threads();
  if (!a.config.empty()) config = read_config_file(a.config, config);
  if (a.epochs) config.epochs = *a.epochs;
  if (a.threads) config.threads = *a.threads;
  config.seed = a.seed;
  const Dataset data = read_model_data(a.data, config);
  if (!data.labelled())
    throw std::invalid_argument(a.data +
                                " has no label column (unlabelled cars): cross-validation measures the AUROC, which "
                                "needs labels (dyad ingest --labels writes them)");
  if (!a.json) {
    std::printf("%-5s %6s %6s %5s", "fold", "train", "test", "h");
    for (const auto n : detect::score_names) std::printf(" %15s", std::string(n).c_str());
    std::printf("\n");
  }
  detect::CvOptions options;
  options.folds = a.folds;
  options.seed = a.seed;
  std::vector<ProgressLine> lines;
  lines.reserve(a.folds);
  options.progress = [&](std::size_t fold) -> ProgressCallback {
    lines.emplace_back(a.quiet || a.json, "fold " + std::to_string(fold) + "/" + std::to_string(a.folds));
    return std::ref(lines.back());
  };
  options.fold_done = [&](const detect::CvFold& f) {
    if (a.json) return;
    std::printf("%-5zu %6zu %6zu %5d", f.fold, f.train_cars, f.test_cars, f.h_per_mille);
    for (const auto& [name, auroc] : f.auroc) std::printf(" %15s", detect::auroc_text(auroc).c_str());
    std::printf("\n");
    std::fflush(stdout);
  };
  const detect::CvResult r = detect::cross_validate(data, config, options, a.data);
  if (a.json) {
    nlohmann::json folds = nlohmann::json::array(), mean = nlohmann::json::object();
    for (const auto& f : r.folds) {
      nlohmann::json j = {{"fold", f.fold}, {"train_cars", f.train_cars}, {"test_cars", f.test_cars}, {"h", f.h_per_mille}};
      for (const auto& [name, auroc] : f.auroc) j[name] = auroc;
      folds.push_back(j);
    }
    for (const auto& [name, auroc] : r.mean) mean[name] = auroc;
    std::printf("%s\n", nlohmann::json{{"folds", folds}, {"mean", mean}}.dump().c_str());
  } else {
    std::printf("%-5s %6s %6s %5s", "mean", "", "", "");
    for (const auto& [name, auroc] : r.mean) std::printf(" %15s", detect::auroc_text(auroc).c_str());
    std::printf("\n(test AUROC of the robust car score; h chosen per fold on the validation cars by rec_error)\n");
  }
  return 0;
}

// The table entries (commands.hpp): the arguments live here, filled by CLI11, read by run.
namespace {
CvArgs cv_args;
}  // namespace

namespace command {
void cv_options(CLI::App* cmd) { add_cv_options(cmd, cv_args); }
int cv_run() { return run_cv(cv_args); }
}  // namespace command

}  // namespace dyad::cli
