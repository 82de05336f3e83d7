// Everything that configures a DyAD model and its training (dyad-method §3, §5, §7): feature
// roles, sizes, loss weights, KL annealing, AdamW, schedule; the upstream presets; and
// upstream's params JSON so users migrating from the PyTorch code pass the same file.
#pragma once

#include "dyad/optim/schedule.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace dyad {

// Feature roles: the encoder sees `encoder` columns; the decoder is conditioned on the
// first `condition` of them and reconstructs the rest (the targets).
struct FeatureRoles {
  std::vector<std::string> encoder;
  std::size_t condition = 2;

  std::vector<std::string> conditions() const { return {encoder.begin(), encoder.begin() + static_cast<std::ptrdiff_t>(condition)}; }
  std::vector<std::string> targets() const { return {encoder.begin() + static_cast<std::ptrdiff_t>(condition), encoder.end()}; }

  void validate() const {
    if (encoder.empty()) throw std::invalid_argument("dyad: no encoder columns configured");
    if (condition == 0 || condition >= encoder.size())
      throw std::invalid_argument("dyad: the decoder needs between 1 and " + std::to_string(encoder.size() - 1) +
                                  " conditioning columns, got " + std::to_string(condition));
    for (std::size_t i = 0; i < encoder.size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (encoder[i] == encoder[j]) throw std::invalid_argument("dyad: column '" + encoder[i] + "' is listed twice");
  }
};

// The paper's tasks (dyad-method §3).
inline FeatureRoles task_roles(std::string_view task) {
  if (task == "ev") return {{"soc", "current", "max_temp", "max_single_volt", "min_single_volt", "volt"}, 2};
  if (task == "brand_a")
    return {{"soc", "current", "min_temp", "max_single_volt", "max_temp", "min_single_volt", "volt"}, 2};
  if (task == "brand_b")
    return {{"soc", "current", "min_temp", "max_single_volt", "min_single_volt", "volt", "max_temp"}, 4};
  throw std::invalid_argument("dyad: unknown task '" + std::string(task) + "' (expected ev, brand_a or brand_b)");
}

struct ModelConfig {
  // Architecture
  std::string task = "ev";  // informational once `roles` is set
  FeatureRoles roles = task_roles("ev");
  int hidden = 64;
  int latent = 32;
  int layers = 1;
  bool bidirectional = true;
  // Loss
  double noise_scale = 0.01;
  double nll_weight = 10;
  double label_weight = 0.01;
  Anneal anneal = Anneal::linear;
  double anneal0 = 0.1;
  double k = 0.0025;
  double x0 = 500;
  // Optimisation
  double lr = 1e-3;
  double weight_decay = 1e-6;
  double cosine_factor = 1.0;
  int epochs = 10;
  int batch_size = 64;
  std::uint64_t seed = 0;
  int threads = 1;
  bool shuffle = true;
  bool normalize = true;

  int directions() const { return bidirectional ? 2 : 1; }
  int factor() const { return layers * directions(); }

  void validate() const {
    roles.validate();
    auto positive = [](const char* name, double v) {
      if (!(v > 0)) throw std::invalid_argument(std::string("dyad: config '") + name + "' must be > 0, got " + std::to_string(v));
    };
    positive("hidden_size", hidden);
    positive("latent_size", latent);
    positive("num_layers", layers);
    positive("epochs", epochs);
    positive("batch_size", batch_size);
    positive("learning_rate", lr);
    positive("threads", threads);
    if (hidden < 2) throw std::invalid_argument("dyad: hidden_size must be >= 2 (the mileage head has hidden_size / 2 units)");
    if (weight_decay < 0 || noise_scale < 0 || cosine_factor < 0 || anneal0 < 0 || nll_weight < 0 || label_weight < 0)
      throw std::invalid_argument("dyad: weights, weight_decay, noise_scale, cosine_factor and anneal0 must be >= 0");
    if (anneal == Anneal::linear && !(x0 > 0)) throw std::invalid_argument("dyad: linear KL annealing needs x0 > 0");
  }

  // Same keys as upstream's params JSON (plus dyad's own: columns, condition_columns,
  // weight_decay, seed, threads, shuffle, normalize).
  nlohmann::json to_json() const {
    return {{"task", task},
            {"columns", roles.encoder},
            {"condition_columns", roles.condition},
            {"rnn_type", "gru"},
            {"hidden_size", hidden},
            {"latent_size", latent},
            {"num_layers", layers},
            {"bidirectional", bidirectional},
            {"noise_scale", noise_scale},
            {"nll_weight", nll_weight},
            {"latent_label_weight", label_weight},
            {"anneal_function", to_string(anneal)},
            {"anneal0", anneal0},
            {"k", k},
            {"x0", x0},
            {"learning_rate", lr},
            {"weight_decay", weight_decay},
            {"cosine_factor", cosine_factor},
            {"epochs", epochs},
            {"batch_size", batch_size},
            {"seed", seed},
            {"threads", threads},
            {"shuffle", shuffle},
            {"normalize", normalize}};
  }
};

// Overrides the fields present in `j`; unknown upstream keys (save paths, GPU flags,
// variable_length, ...) are ignored. `where` names the source in errors.
inline ModelConfig config_from_json(const nlohmann::json& j, ModelConfig base = ModelConfig{},
                                  const std::string& where = "config") {
  ModelConfig c = std::move(base);
  if (!j.is_object()) throw std::invalid_argument(where + ": expected a JSON object");
  auto get = [&](const char* key, auto& field) {
    if (!j.contains(key)) return;
    try {
      j.at(key).get_to(field);
    } catch (const nlohmann::json::exception& e) {
      throw std::invalid_argument(where + ": key '" + key + "': " + e.what());
    }
  };
  if (j.contains("task")) {
    get("task", c.task);
    c.roles = task_roles(c.task);
  }
  get("columns", c.roles.encoder);
  get("condition_columns", c.roles.condition);
  if (j.contains("rnn_type")) {
    std::string rnn;
    get("rnn_type", rnn);
    if (rnn != "gru" && rnn != "GRU")
      throw std::invalid_argument(where + ": rnn_type '" + rnn + "' is not supported (dyad implements the GRU)");
  }
  get("hidden_size", c.hidden);
  get("latent_size", c.latent);
  get("num_layers", c.layers);
  get("bidirectional", c.bidirectional);
  get("noise_scale", c.noise_scale);
  get("nll_weight", c.nll_weight);
  get("latent_label_weight", c.label_weight);
  if (j.contains("anneal_function")) {
    std::string f;
    get("anneal_function", f);
    c.anneal = parse_anneal(f);
  }
  get("anneal0", c.anneal0);
  get("k", c.k);
  get("x0", c.x0);
  get("learning_rate", c.lr);
  get("weight_decay", c.weight_decay);
  get("cosine_factor", c.cosine_factor);
  get("epochs", c.epochs);
  get("batch_size", c.batch_size);
  get("seed", c.seed);
  get("threads", c.threads);
  get("shuffle", c.shuffle);
  get("normalize", c.normalize);
  return c;
}

inline ModelConfig config_from_file(const std::filesystem::path& path, ModelConfig base = ModelConfig{}) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path.string() + ": cannot open config file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::invalid_argument(path.string() + ": invalid JSON at byte " + std::to_string(e.byte) + ": " + e.what());
  }
  return config_from_json(j, std::move(base), path.string());
}

// The four shipped upstream configurations (dyad-method §7): GRU, bidirectional, linear
// annealing, k = 0.0025, x0 = 500.
inline ModelConfig preset(std::string_view name) {
  struct Row {
    const char* name;
    const char* task;
    int hidden, layers, latent;
    double lr;
    int epochs, batch;
    double cosine, noise, anneal0, nll_w, label_w;
  };
  static constexpr Row rows[] = {
      {"brand1", "brand_a", 128, 2, 8, 0.005, 3, 128, 0.1, 1.0, 0.01, 10, 0.001},
      {"brand2", "brand_b", 1024, 1, 24, 0.0001, 3, 128, 0.1, 0.01, 0.1, 5, 1},
      {"brand3", "brand_a", 256, 1, 16, 0.005, 5, 128, 0.1, 0.01, 0.1, 10, 0.001},
      {"fivefold", "ev", 64, 1, 32, 0.001, 10, 64, 1.0, 0.01, 0.1, 10, 0.01},
  };
  for (const Row& r : rows) {
    if (name != r.name) continue;
    ModelConfig c;
    c.task = r.task;
    c.roles = task_roles(r.task);
    c.hidden = r.hidden;
    c.layers = r.layers;
    c.latent = r.latent;
    c.lr = r.lr;
    c.epochs = r.epochs;
    c.batch_size = r.batch;
    c.cosine_factor = r.cosine;
    c.noise_scale = r.noise;
    c.anneal0 = r.anneal0;
    c.nll_weight = r.nll_w;
    c.label_weight = r.label_w;
    c.bidirectional = true;
    c.anneal = Anneal::linear;
    c.k = 0.0025;
    c.x0 = 500;
    return c;
  }
  throw std::invalid_argument("dyad: unknown preset '" + std::string(name) + "' (expected brand1, brand2, brand3 or fivefold)");
}

// Floating-point operations of one forward pass over a segment of `steps` time steps: per
// time step, direction and GRU layer 2 * 3H * (I + H), plus the linear layers. A training
// step costs about 3x this (backward is about twice the forward).
inline double forward_flops(const ModelConfig& c, int steps) {
  const double H = c.hidden, Z = c.latent, Dir = c.directions(), F = c.factor(), T = steps;
  const double E = static_cast<double>(c.roles.encoder.size()), D = static_cast<double>(c.roles.condition);
  double gru = 0;
  for (int l = 0; l < c.layers; ++l) {
    const double in_enc = l == 0 ? E : Dir * H, in_dec = l == 0 ? D : Dir * H;
    gru += 2 * 3 * H * (in_enc + H) * Dir * T + 2 * 3 * H * (in_dec + H) * Dir * T;
  }
  const double linear = 2 * (2 * F * H * Z) + 2 * Z * F * H + 2 * Dir * H * (E - D) * T + 2 * (Z * H / 2 + H / 2);
  return gru + linear;
}

inline std::vector<std::string> preset_names() { return {"brand1", "brand2", "brand3", "fivefold"}; }

}  // namespace dyad
