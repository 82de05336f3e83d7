// dyad cv: the paper's car-grouped k-fold protocol end to end (dyad-method §6).
#pragma once

#include "cmd_evaluate.hpp"
#include "common.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace dyad::cli {

struct FleetCars {
  std::vector<std::string> per_segment;  // car of every segment
  std::vector<int> labels;               // label of every segment
  std::vector<std::string> normal, faulty;
};

inline FleetCars fleet_cars_of(const Dataset& data) {
  FleetCars f;
  std::map<std::string, int> label;
  for (std::size_t i = 0; i < data.size(); ++i) {
    f.per_segment.push_back(data.meta(i).car);
    f.labels.push_back(data.meta(i).label);
    label[data.meta(i).car] |= data.meta(i).label;
  }
  for (const auto& [car, l] : label) (l ? f.faulty : f.normal).push_back(car);
  return f;
}

// The scores of the listed segments, as the evaluation wants them.
inline std::vector<std::pair<std::string, std::vector<double>>> scores_of(const Scores& s, std::span<const std::size_t> idx) {
  std::vector<std::pair<std::string, std::vector<double>>> out;
  auto put = [&](const char* name, const Eigen::VectorXd& v) {
    if (v.size() != s.rec_error.size()) return;
    std::vector<double> x;
    for (std::size_t i : idx) x.push_back(v[static_cast<Eigen::Index>(i)]);
    out.emplace_back(name, std::move(x));
  };
  put("rec_error", s.rec_error);
  put("latent_score", s.latent_score);
  put("pattern_score", s.pattern_score);
  put("combined_score", s.combined_score);
  return out;
}

template <class V>
std::vector<V> pick(const std::vector<V>& v, std::span<const std::size_t> idx) {
  std::vector<V> out;
  for (std::size_t i : idx) out.push_back(v[i]);
  return out;
}

struct CvArgs {
  std::string data, preset = "fivefold", config;
  std::size_t folds = 5;
  std::optional<int> epochs, threads;
  std::uint64_t seed = 0;
  bool json = false, quiet = false;
};

inline void add_cv_options(CLI::App* cmd, CvArgs& a) {
  cmd->add_option("--data", a.data, "Fleet data, long CSV with labelled cars")->required()->check(CLI::ExistingFile);
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
  const FleetCars cars = fleet_cars_of(data);
  if (cars.normal.size() < a.folds || cars.faulty.size() < 2)
    throw std::invalid_argument(a.data + ": the protocol needs at least " + std::to_string(a.folds) +
                                " normal cars and 2 faulty cars; found " + std::to_string(cars.normal.size()) + " and " +
                                std::to_string(cars.faulty.size()));
  nlohmann::json folds = nlohmann::json::array();
  std::map<std::string, double> sum;
  static constexpr const char* kScores[] = {"rec_error", "latent_score", "pattern_score", "combined_score"};
  if (!a.json) {
    std::printf("%-5s %6s %6s %5s", "fold", "train", "test", "h");
    for (const char* n : kScores) std::printf(" %15s", n);
    std::printf("\n");
  }
  for (std::size_t k = 0; k < a.folds; ++k) {
    const auto fc = detect::fold_cars(cars.normal, cars.faulty, a.folds, k, a.seed);
    const auto train = detect::segments_of(cars.per_segment, fc.train_normal);
    Model<float> model(config);
    ProgressLine line(a.quiet || a.json, "fold " + std::to_string(k + 1) + "/" + std::to_string(a.folds));
    model.fit(data.subset(train), std::ref(line));
    const Scores s = model.score(data);
    const auto val = detect::segments_of(cars.per_segment, fc.validation());
    const auto test = detect::segments_of(cars.per_segment, fc.test());
    const auto val_rec = pick(std::vector<double>(s.rec_error.data(), s.rec_error.data() + s.rec_error.size()), val);
    const int h = detect::choose_h(pick(cars.per_segment, val), pick(cars.labels, val), val_rec).h_per_mille;
    const auto ev = detect::evaluate_scores(pick(cars.per_segment, test), pick(cars.labels, test), scores_of(s, test), h);
    nlohmann::json f = {{"fold", k + 1}, {"train_cars", fc.train_normal.size()}, {"test_cars", fc.test().size()}, {"h", h}};
    if (!a.json) std::printf("%-5zu %6zu %6zu %5d", k + 1, fc.train_normal.size(), fc.test().size(), h);
    for (const auto& e : ev) {
      f[e.name] = e.auroc_robust;
      sum[e.name] += e.auroc_robust;
      if (!a.json) std::printf(" %15s", auroc_text(e.auroc_robust).c_str());
    }
    if (!a.json) std::printf("\n");
    folds.push_back(f);
  }
  nlohmann::json mean;
  for (const auto& [name, v] : sum) mean[name] = v / static_cast<double>(a.folds);
  if (a.json) {
    std::printf("%s\n", nlohmann::json{{"folds", folds}, {"mean", mean}}.dump().c_str());
  } else {
    std::printf("%-5s %6s %6s %5s", "mean", "", "", "");
    for (const char* n : kScores)
      if (mean.contains(n)) std::printf(" %15s", auroc_text(mean[n].get<double>()).c_str());
    std::printf("\n(test AUROC of the robust car score; h chosen per fold on the validation cars by rec_error)\n");
  }
  return 0;
}

}  // namespace dyad::cli
