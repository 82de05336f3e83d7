// Everything that configures a DyAD model and its training (dyad-method §3, §5, §7): feature
// roles, sizes, loss weights, KL annealing, AdamW, schedule; the upstream presets; and
// upstream's params JSON so users migrating from the PyTorch code pass the same file.
#pragma once

#include "dyad/core/excerpt.hpp"
#include "dyad/core/json.hpp"
#include "dyad/ops/cell.hpp"
#include "dyad/optim/schedule.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace dyad {

// Upper bounds on what a configuration (code, params JSON or checkpoint) may ask for. They
// admit every upstream preset with room (the largest, brand2, has hidden_size 1024) and keep
// all of dyad's int arithmetic far from overflow (e.g. hidden * layers * directions <= 2^18).
// A file that asks for more is refused before anything is allocated.
namespace limits {
inline constexpr int hidden_size = 8192;
inline constexpr int latent_size = 4096;
inline constexpr int num_layers = 16;
inline constexpr std::size_t columns = 1024;  // encoder columns
inline constexpr int epochs = 1'000'000;
inline constexpr int batch_size = 65536;
inline constexpr int threads = 1024;
inline constexpr int min_length = 1'000'000;  // steps
inline constexpr int ensemble = 64;           // members of a dyad::Ensemble
// Trainable values of the whole model (4 GiB of float weights; training keeps 4 copies).
inline constexpr std::int64_t parameters = std::int64_t{1} << 30;
// Elsewhere, next to what they bound: json_depth (dyad/core/json.hpp), the nesting of any JSON
// read; cars (dyad/ingest/ingest.hpp), the distinct car ids of one ingest.
}  // namespace limits

// Feature roles: the encoder sees `encoder` columns; the decoder is conditioned on the
// first `condition` of them and reconstructs the rest (the targets).
struct FeatureRoles {
  std::vector<std::string> encoder;
  std::size_t condition = 2;

  std::vector<std::string> conditions() const {
    return {encoder.begin(), encoder.begin() + static_cast<std::ptrdiff_t>(condition)};
  }
  std::vector<std::string> targets() const { return {encoder.begin() + static_cast<std::ptrdiff_t>(condition), encoder.end()}; }

  void validate() const {
    if (encoder.empty()) throw std::invalid_argument("dyad: no encoder columns configured");
    // Before the quadratic duplicate check below, which a huge list would turn into a hang.
    if (encoder.size() > limits::columns)
      throw std::invalid_argument("dyad: config 'columns' lists " + std::to_string(encoder.size()) +
                                  " encoder columns, above the cap " + std::to_string(limits::columns));
    if (condition == 0 || condition >= encoder.size())
      throw std::invalid_argument("dyad: the decoder needs between 1 and " + std::to_string(encoder.size() - 1) +
                                  " conditioning columns, got " + std::to_string(condition));
    for (std::size_t i = 0; i < encoder.size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (encoder[i] == encoder[j]) throw std::invalid_argument("dyad: column '" + encoder[i] + "' is listed twice");
  }
};

// The paper's task names; upstream's params files spell brand_a / brand_b as batterybranda /
// batterybrandb (dyad-method §7), which are accepted as the same tasks.
inline std::string canonical_task(std::string_view task) {
  if (task == "batterybranda") return "brand_a";
  if (task == "batterybrandb") return "brand_b";
  return std::string(task);
}

// The paper's tasks (dyad-method §3).
inline FeatureRoles task_roles(std::string_view name) {
  const std::string task = canonical_task(name);
  if (task == "ev") return {{"soc", "current", "max_temp", "max_single_volt", "min_single_volt", "volt"}, 2};
  if (task == "brand_a") return {{"soc", "current", "min_temp", "max_single_volt", "max_temp", "min_single_volt", "volt"}, 2};
  if (task == "brand_b") return {{"soc", "current", "min_temp", "max_single_volt", "min_single_volt", "volt", "max_temp"}, 4};
  throw std::invalid_argument("dyad: unknown task '" + std::string(name) +
                              "' (expected ev, brand_a or brand_b; upstream's batterybranda / batterybrandb)");
}

// What the weights' shapes and meaning depend on: fixed once a model is built (checkpoints
// and --init keep it).
struct Architecture {
  std::string task = "ev";  // informational once `roles` is set
  FeatureRoles roles = task_roles("ev");
  int hidden = 64;
  int latent = 32;
  int layers = 1;
  bool bidirectional = true;
  Cell cell = Cell::gru;  // upstream's rnn_type

  int directions() const { return bidirectional ? 2 : 1; }
  int factor() const { return layers * directions(); }  // <= 32 under the caps
};

// How a model is trained, and the threads score() uses by default: a built model may change
// these (Model::set_training), e.g. to fine-tune with another learning rate.
struct TrainingOptions {
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
  std::uint64_t seed = 0;  // initialisation, shuffling, latent noise
  int threads = 1;
  bool shuffle = true;
  bool normalize = true;
  // Segments shorter than this many steps are left out of training and scoring and counted
  // (upstream's min_length; 0 keeps every segment).
  int min_length = 0;
};

// Everything a params file or checkpoint configures: the architecture and the training options.
struct ModelConfig : Architecture, TrainingOptions {
  // Trainable values of the model this configuration builds (closed form of parameter_shapes()).
  // Exact in int64 for any sizes within the caps; call after validate() for other configs.
  std::int64_t parameter_count() const {
    const std::int64_t H = hidden, Z = latent, L = layers, Dir = directions(), F = L * Dir;
    const auto E = static_cast<std::int64_t>(roles.encoder.size()), D = static_cast<std::int64_t>(roles.condition);
    const std::int64_t G = gates(cell) * H;
    auto rnn = [&](std::int64_t input) {
      std::int64_t n = 0;
      for (std::int64_t l = 0; l < L; ++l) n += Dir * (G * (l == 0 ? input : Dir * H) + G * H + 2 * G);
      return n;
    };
    return rnn(E) + rnn(D) + 2 * (F * H * Z + Z) + (Z * F * H + F * H) + (Dir * H * (E - D) + (E - D)) + (Z * (H / 2) + H / 2) +
           (H / 2 + 1);
  }

  // Checks every setting; errors name the key (as in the params JSON) and the allowed range.
  void validate() const {
    roles.validate();
    auto range = [](const char* key, auto v, auto lo, auto hi, const char* why = "") {
      if (std::cmp_less(v, lo) || std::cmp_greater(v, hi))
        throw std::invalid_argument(std::string("dyad: config '") + key + "' must be in [" + std::to_string(lo) + ", " +
                                    std::to_string(hi) + "]" + why + ", got " + std::to_string(v));
    };
    range("hidden_size", hidden, 2, limits::hidden_size, " (the mileage head has hidden_size / 2 units)");
    range("latent_size", latent, 1, limits::latent_size);
    range("num_layers", layers, 1, limits::num_layers);
    range("epochs", epochs, 1, limits::epochs);
    range("batch_size", batch_size, 1, limits::batch_size);
    range("threads", threads, 1, limits::threads);
    range("min_length", min_length, 0, limits::min_length);
    if (parameter_count() > limits::parameters)
      throw std::invalid_argument("dyad: config: the model would have " + std::to_string(parameter_count()) +
                                  " parameters, above the cap " + std::to_string(limits::parameters) +
                                  " (lower hidden_size, latent_size or num_layers)");
    // NaN fails every comparison, so each check is written to fail for it.
    auto non_negative = [](const char* key, double v, bool strict = false) {
      if (!std::isfinite(v) || (strict ? !(v > 0) : !(v >= 0)))
        throw std::invalid_argument(std::string("dyad: config '") + key + "' must be finite and " + (strict ? "> 0" : ">= 0") +
                                    ", got " + std::to_string(v));
    };
    non_negative("learning_rate", lr, true);
    non_negative("weight_decay", weight_decay);
    non_negative("noise_scale", noise_scale);
    non_negative("cosine_factor", cosine_factor);
    non_negative("anneal0", anneal0);
    non_negative("nll_weight", nll_weight);
    non_negative("latent_label_weight", label_weight);
    if (!std::isfinite(k)) throw std::invalid_argument("dyad: config 'k' must be finite, got " + std::to_string(k));
    if (!std::isfinite(x0)) throw std::invalid_argument("dyad: config 'x0' must be finite, got " + std::to_string(x0));
    if (anneal == Anneal::linear && !(x0 > 0)) throw std::invalid_argument("dyad: linear KL annealing needs x0 > 0");
  }

  // Same keys as upstream's params JSON (plus dyad's own: columns, condition_columns,
  // weight_decay, seed, threads, shuffle, normalize). config_from_json reads them back.
  nlohmann::json to_json() const {
    return {{"task", task},
            {"columns", roles.encoder},
            {"condition_columns", roles.condition},
            {"rnn_type", to_string(cell)},
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
            {"normalize", normalize},
            {"min_length", min_length}};
  }
};

// One parameter tensor of the model a configuration builds: PyTorch's state_dict name and shape.
struct ParameterShape {
  std::string name;
  std::vector<std::int64_t> shape;
  bool operator==(const ParameterShape&) const = default;
};

// The tensors dyad::Model registers for `c`, in registration (and checkpoint) order, computed
// without building the model: load_checkpoint checks a file against it before allocating.
// Call c.validate() first (sizes must be within the caps).
inline std::vector<ParameterShape> parameter_shapes(const Architecture& c) {
  const std::int64_t H = c.hidden, Z = c.latent, Dir = c.directions(), F = c.layers * Dir, G = gates(c.cell) * H;
  const auto E = static_cast<std::int64_t>(c.roles.encoder.size()), D = static_cast<std::int64_t>(c.roles.condition);
  std::vector<ParameterShape> out;
  for (const auto& [prefix, input] : {std::pair<std::string, std::int64_t>{"encoder_rnn", E}, {"decoder_rnn", D}})
    for (int l = 0; l < c.layers; ++l)
      for (int d = 0; d < Dir; ++d) {
        const std::string suffix = "_l" + std::to_string(l) + (d ? "_reverse" : "");
        out.push_back({prefix + ".weight_ih" + suffix, {G, l == 0 ? input : Dir * H}});
        out.push_back({prefix + ".weight_hh" + suffix, {G, H}});
        out.push_back({prefix + ".bias_ih" + suffix, {G}});
        out.push_back({prefix + ".bias_hh" + suffix, {G}});
      }
  auto linear = [&](const std::string& name, std::int64_t in, std::int64_t outs) {
    out.push_back({name + ".weight", {outs, in}});
    out.push_back({name + ".bias", {outs}});
  };
  linear("hidden2mean", F * H, Z);
  linear("hidden2log_v", F * H, Z);
  linear("latent2hidden", Z, F * H);
  linear("outputs2embedding", H * Dir, E - D);
  linear("mean2latent.0", Z, H / 2);
  linear("mean2latent.2", H / 2, 1);
  return out;
}

// The keys config_from_json reads (ModelConfig::to_json writes all but variable_length).
inline constexpr std::string_view config_keys[] = {"task",
                                                   "columns",
                                                   "condition_columns",
                                                   "rnn_type",
                                                   "hidden_size",
                                                   "latent_size",
                                                   "num_layers",
                                                   "bidirectional",
                                                   "noise_scale",
                                                   "nll_weight",
                                                   "latent_label_weight",
                                                   "anneal_function",
                                                   "anneal0",
                                                   "k",
                                                   "x0",
                                                   "learning_rate",
                                                   "weight_decay",
                                                   "cosine_factor",
                                                   "epochs",
                                                   "batch_size",
                                                   "seed",
                                                   "threads",
                                                   "shuffle",
                                                   "normalize",
                                                   "min_length"};

// Keys of upstream's params files that mean nothing to dyad (other model types, data paths,
// evaluation settings; variable_length, because dyad always uses each segment's true length).
// They are accepted so that upstream's files load unchanged, and reported as ignored.
inline bool upstream_unused_key(std::string_view key) {
  static constexpr std::string_view exact[] = {"project",         "jobs",      "model_type", "kernel_size",    "nhead",
                                               "dim_feedforward", "smoothing", "use_flag",   "variable_length"};
  for (const auto k : exact)
    if (key == k) return true;
  return key.starts_with("granularity_") || key.starts_with("num_granularity_") || key.ends_with("_path");
}

// The known key closest to `key` (by edit distance), for error messages.
inline std::string_view closest_config_key(std::string_view key) {
  std::string_view best = config_keys[0];
  std::size_t best_d = detail::edit_distance(key, best);
  for (const auto k : config_keys)
    if (const std::size_t d = detail::edit_distance(key, k); d < best_d) best = k, best_d = d;
  return best;
}

// Overrides the fields present in `j`. `where` names the source in errors. Upstream's params
// files load unchanged: its keys that dyad does not use (upstream_unused_key) are skipped and,
// when `ignored` is given, appended to it; any other unknown key is an error that names the
// closest known key (a typo must not train with a default silently). Every value must have
// the key's type exactly: integers are JSON integers (or integral floats such as 128.0) within
// the key's range (the caps in dyad::limits), numbers are finite, booleans are true/false;
// 1e10, 1.5, -1, true or "12" for an integer key are refused with the source and the key.
inline ModelConfig config_from_json(const nlohmann::json& j, ModelConfig base = ModelConfig{}, const std::string& where = "config",
                                    std::vector<std::string>* ignored = nullptr) {
  using namespace detail;
  ModelConfig c = std::move(base);
  if (!j.is_object()) throw std::invalid_argument(where + ": expected a JSON object");
  for (const auto& [key, value] : j.items()) {
    if (std::find(std::begin(config_keys), std::end(config_keys), key) != std::end(config_keys)) continue;
    if (!upstream_unused_key(key))
      json_key_error(where, excerpt(key, 60), "unknown key (did you mean '" + std::string(closest_config_key(key)) + "'?)");
    if (ignored) ignored->push_back(key);
  }
  auto has = [&](const char* key) { return j.contains(key); };
  auto integer = [&](const char* key, auto& field, auto lo, auto hi) {
    using I = std::remove_reference_t<decltype(field)>;
    if (has(key)) field = json_integer<I>(j.at(key), where, key, static_cast<I>(lo), static_cast<I>(hi));
  };
  auto number = [&](const char* key, double& field) {
    if (has(key)) field = json_number(j.at(key), where, key);
  };
  auto boolean = [&](const char* key, bool& field) {
    if (has(key)) field = json_bool(j.at(key), where, key);
  };
  if (has("columns")) {
    c.roles.encoder = json_strings(j.at("columns"), where, "columns");
    if (c.roles.encoder.size() > limits::columns)
      json_key_error(where, "columns",
                     "lists " + std::to_string(c.roles.encoder.size()) + " columns, above the cap " +
                         std::to_string(limits::columns));
  }
  if (has("task")) {
    c.task = canonical_task(json_string(j.at("task"), where, "task"));
    // The task only names the roles; with explicit columns an unknown (user's own) task is fine.
    try {
      const FeatureRoles roles = task_roles(c.task);
      if (has("columns")) c.roles.condition = roles.condition;
      else c.roles = roles;
    } catch (const std::invalid_argument& e) {
      if (!has("columns")) json_key_error(where, "task", e.what());
    }
  }
  integer("condition_columns", c.roles.condition, 1, limits::columns - 1);
  if (has("rnn_type")) {
    const std::string rnn = json_string(j.at("rnn_type"), where, "rnn_type");
    try {
      c.cell = parse_cell(rnn);
    } catch (const std::invalid_argument& e) {
      json_key_error(where, "rnn_type", e.what());
    }
  }
  integer("hidden_size", c.hidden, 2, limits::hidden_size);
  integer("latent_size", c.latent, 1, limits::latent_size);
  integer("num_layers", c.layers, 1, limits::num_layers);
  boolean("bidirectional", c.bidirectional);
  number("noise_scale", c.noise_scale);
  number("nll_weight", c.nll_weight);
  number("latent_label_weight", c.label_weight);
  if (has("anneal_function")) {
    const std::string f = json_string(j.at("anneal_function"), where, "anneal_function");
    try {
      c.anneal = parse_anneal(f);
    } catch (const std::invalid_argument& e) {
      json_key_error(where, "anneal_function", e.what());
    }
  }
  number("anneal0", c.anneal0);
  number("k", c.k);
  number("x0", c.x0);
  number("learning_rate", c.lr);
  number("weight_decay", c.weight_decay);
  number("cosine_factor", c.cosine_factor);
  integer("epochs", c.epochs, 1, limits::epochs);
  integer("batch_size", c.batch_size, 1, limits::batch_size);
  integer("seed", c.seed, 0, std::numeric_limits<std::uint64_t>::max());
  integer("threads", c.threads, 1, limits::threads);
  boolean("shuffle", c.shuffle);
  boolean("normalize", c.normalize);
  integer("min_length", c.min_length, 0, limits::min_length);
  if (has("variable_length")) (void)json_bool(j.at("variable_length"), where, "variable_length");
  return c;
}

inline ModelConfig config_from_file(const std::filesystem::path& path, ModelConfig base = ModelConfig{},
                                    std::vector<std::string>* ignored = nullptr) {
  const nlohmann::json j = detail::read_json_file(path, "the config file");
  return config_from_json(j, std::move(base), path.string(), ignored);
}

// The four shipped upstream configurations (dyad-method §7): GRU, bidirectional, linear
// annealing, k = 0.0025, x0 = 500. Set `cell` afterwards for an RNN or LSTM of the same sizes.
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
// time step, direction and layer 2 * G * (I + H) with G = gates(cell) * H (3H for the GRU),
// plus the linear layers. A training
// step costs about 3x this (backward is about twice the forward).
inline double forward_flops(const ModelConfig& c, int steps) {
  const double H = c.hidden, Z = c.latent, Dir = c.directions(), F = c.factor(), T = steps;
  const double E = static_cast<double>(c.roles.encoder.size()), D = static_cast<double>(c.roles.condition);
  const double G = static_cast<double>(gates(c.cell)) * H;
  double rnn = 0;
  for (int l = 0; l < c.layers; ++l) {
    const double in_enc = l == 0 ? E : Dir * H, in_dec = l == 0 ? D : Dir * H;
    rnn += 2 * G * (in_enc + H) * Dir * T + 2 * G * (in_dec + H) * Dir * T;
  }
  const double linear = 2 * (2 * F * H * Z) + 2 * Z * F * H + 2 * Dir * H * (E - D) * T + 2 * (Z * H / 2 + H / 2);
  return rnn + linear;
}

inline std::vector<std::string> preset_names() { return {"brand1", "brand2", "brand3", "fivefold"}; }

}  // namespace dyad
