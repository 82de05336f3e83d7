// Model checkpoints as one safetensors file: the weights under PyTorch's DynamicVAE
// state_dict names and shapes, and dyad's configuration, normaliser, mileage scale and
// latent scorer as JSON strings in __metadata__. A plain PyTorch state_dict exported to
// safetensors (no dyad metadata) also loads: sizes, layers and directions come from the
// tensor shapes, the columns from a configuration the caller names.
#pragma once

#include "dyad/config.hpp"
#include "dyad/data/normalizer.hpp"
#include "dyad/detect/latent.hpp"
#include "dyad/io/safetensors.hpp"
#include "dyad/model_config.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace dyad {

inline constexpr const char* kCheckpointFormat = "dyad-checkpoint-1";

struct LoadOptions {
  // For checkpoints without dyad metadata: the feature roles and training settings.
  // Sizes are always taken from the tensors. Defaults to the `ev` task.
  std::optional<ModelConfig> config;
};

namespace detail {

inline std::string meta_json(const SafeTensors& st, const std::string& key) {
  auto it = st.metadata.find(key);
  return it == st.metadata.end() ? std::string() : it->second;
}

inline nlohmann::json parse_meta(const SafeTensors& st, const std::string& key) {
  try {
    return nlohmann::json::parse(meta_json(st, key));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(st.source + ": metadata '" + key + "' is not valid JSON: " + e.what());
  }
}

inline std::size_t dim(const SafeTensors& st, const std::string& name, std::size_t axis) {
  const Tensor& t = st.at(name);
  if (t.shape.size() <= axis) st.fail(name, "has too few dimensions");
  return t.shape[axis];
}

// Sizes of a DynamicVAE state_dict, read off its tensor shapes.
inline ModelConfig infer_architecture(const SafeTensors& st, ModelConfig c) {
  const std::size_t H = dim(st, "encoder_rnn.weight_hh_l0", 1);
  int layers = 0;
  while (st.contains("encoder_rnn.weight_ih_l" + std::to_string(layers))) ++layers;
  c.hidden = static_cast<int>(H);
  c.layers = layers;
  c.bidirectional = st.contains("encoder_rnn.weight_ih_l0_reverse");
  c.latent = static_cast<int>(dim(st, "hidden2mean.weight", 0));
  const std::size_t E = dim(st, "encoder_rnn.weight_ih_l0", 1), D = dim(st, "decoder_rnn.weight_ih_l0", 1);
  if (c.roles.encoder.size() != E || c.roles.condition != D)
    throw std::invalid_argument(st.source + ": the checkpoint's encoder takes " + std::to_string(E) +
                                " columns and its decoder " + std::to_string(D) + ", but the configuration names " +
                                std::to_string(c.roles.encoder.size()) + " encoder columns with " +
                                std::to_string(c.roles.condition) + " conditioning; pass the matching preset or config");
  return c;
}

}  // namespace detail

// Writes `model` (any dyad::Model) to `path` atomically.
template <class M>
void save_checkpoint(const M& model, const std::filesystem::path& path) {
  using T = typename M::Scalar;
  SafeTensors st;
  st.source = path.string();
  const auto& params = model.parameters();
  for (const auto& s : params.slices()) {
    std::vector<std::size_t> shape(s.shape.begin(), s.shape.end());
    st.add<T>(s.name, shape, std::span<const T>(params.values().data() + s.offset, static_cast<std::size_t>(s.size)));
  }
  const auto& n = model.normalizer();
  st.metadata["format"] = kCheckpointFormat;
  st.metadata["dyad.version"] = DYAD_VERSION_STRING;
  st.metadata["dyad.config"] = model.config().to_json().dump();
  st.metadata["dyad.normalizer"] = nlohmann::json{{"columns", n.columns()}, {"mean", n.mean()}, {"scale", n.scale()}}.dump();
  st.metadata["dyad.mileage"] =
      nlohmann::json{{"min", model.mileage_scale().min()}, {"max", model.mileage_scale().max()}}.dump();
  if (model.has_latent_scorer()) {
    const auto& l = model.latent_scorer();
    const auto& p = model.pattern_scorer();
    const auto& c = model.score_combiner();
    st.metadata["dyad.latent"] = nlohmann::json{{"mean", l.mean()},
                                                {"covariance", l.covariance()},
                                                {"pattern_mean", p.mean()},
                                                {"pattern_covariance", p.covariance()},
                                                {"combiner_means", c.means()},
                                                {"combiner_stds", c.stds()}}
                                     .dump();
  }
  st.save(path);
}

// Reads a checkpoint written by save_checkpoint, or a plain PyTorch DynamicVAE state_dict.
template <class M>
M load_checkpoint(const std::filesystem::path& path, const LoadOptions& options = {}) {
  using T = typename M::Scalar;
  const SafeTensors st = load_safetensors(path);
  const bool ours = st.metadata.count("dyad.config") > 0;
  ModelConfig config = options.config.value_or(ModelConfig{});
  if (ours) {
    try {
      config = config_from_json(detail::parse_meta(st, "dyad.config"), ModelConfig{}, path.string() + " (dyad.config)");
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(e.what());
    }
  } else {
    config = detail::infer_architecture(st, config);
  }
  M model(config);
  auto& params = model.parameters();
  for (const auto& s : params.slices()) {
    const std::vector<std::size_t> shape(s.shape.begin(), s.shape.end());
    if (!st.contains(s.name)) st.fail(s.name, "missing from the checkpoint (the model needs it)");
    const std::vector<T> v = st.get<T>(s.name, std::span<const std::size_t>(shape));
    std::copy(v.begin(), v.end(), params.values().data() + s.offset);
  }
  for (const auto& t : st.tensors)
    if (params.find(t.name) < 0) st.fail(t.name, "is not a parameter of a DyAD model with this architecture");
  if (!params.values().allFinite()) throw std::runtime_error(path.string() + ": the checkpoint holds NaN or infinite weights");
  if (ours) {
    try {
      const auto n = detail::parse_meta(st, "dyad.normalizer");
      model.set_normalizer(Normalizer(n.at("columns").get<std::vector<std::string>>(),
                                      n.at("mean").get<std::vector<double>>(), n.at("scale").get<std::vector<double>>()));
      const auto m = detail::parse_meta(st, "dyad.mileage");
      model.set_mileage_scale(MinMax(m.at("min").get<double>(), m.at("max").get<double>()));
      if (st.metadata.count("dyad.latent")) {
        const auto l = detail::parse_meta(st, "dyad.latent");
        model.set_latent_scores(
            detect::LatentScorer(l.at("mean").get<std::vector<double>>(), l.at("covariance").get<std::vector<double>>()),
            detect::LatentScorer(l.at("pattern_mean").get<std::vector<double>>(),
                                 l.at("pattern_covariance").get<std::vector<double>>()),
            detect::ScoreCombiner(l.at("combiner_means").get<std::vector<double>>(),
                                  l.at("combiner_stds").get<std::vector<double>>()));
      }
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(path.string() + ": dyad metadata is incomplete: " + e.what());
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(path.string() + ": " + e.what());
    }
  }
  return model;
}

}  // namespace dyad
