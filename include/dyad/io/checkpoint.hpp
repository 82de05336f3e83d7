// Model checkpoints as one safetensors file: the weights under PyTorch's DynamicVAE
// state_dict names and shapes, and dyad's configuration, normaliser, mileage scale, latent
// scorers and calibration (when calibrated) as JSON strings in __metadata__. A plain PyTorch state_dict exported to
// safetensors (no dyad metadata) also loads: sizes, layers and directions come from the
// tensor shapes, the columns from a configuration the caller names.
#pragma once

#include "dyad/config.hpp"
#include "dyad/core/json.hpp"
#include "dyad/data/normalizer.hpp"
#include "dyad/detect/calibration.hpp"
#include "dyad/detect/latent.hpp"
#include "dyad/io/safetensors.hpp"
#include "dyad/model_config.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dyad {

// Version 2 adds the checksum; version 1 files (no checksum) and plain state_dicts still load.
inline constexpr const char* kCheckpointFormat = "dyad-checkpoint-2";
inline constexpr const char* kCheckpointFormatV1 = "dyad-checkpoint-1";
// "crc32c:<8 lowercase hex digits>", see tensor_checksum.
inline constexpr const char* kChecksumKey = "dyad.checksum";
// Present in an ensemble's checkpoint (dyad/io/ensemble_checkpoint.hpp): its members and score scales.
inline constexpr const char* kEnsembleKey = "dyad.ensemble";

struct LoadOptions {
  // For checkpoints without dyad metadata: the feature roles and training settings.
  // Sizes and the cell are always taken from the tensors. Defaults to the `ev` task.
  std::optional<ModelConfig> config;
  // The configuration names its cell (a params file's rnn_type): a state_dict of another cell
  // is refused, naming the tensor that shows it, instead of being read as the tensors' cell.
  bool config_names_cell = false;
};

namespace detail {

// ---- CRC-32C ------------------------------------------------------------------------------
// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): detects every single-bit flip and
// every burst of up to 32 bits; slicing-by-8 runs at a few GB/s in portable C++ (about 0.1 s
// for a 200 MB model), and it is the CRC that SSE4.2 and ARMv8 compute in hardware.
inline constexpr std::array<std::array<std::uint32_t, 256>, 8> kCrc32cTables = [] {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1u) ? 0x82F63B78u : 0u);
    t[0][i] = c;
  }
  for (std::size_t k = 1; k < 8; ++k)
    for (std::size_t i = 0; i < 256; ++i) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xffu];
  return t;
}();

// The CRC-32C of `data`, continuing from `crc` (the result of the bytes before), so
// crc32c(b, crc32c(a)) == crc32c(a followed by b). crc32c("123456789") == 0xE3069283.
inline std::uint32_t crc32c(std::span<const std::byte> data, std::uint32_t crc = 0) {
  const auto& t = kCrc32cTables;
  const std::byte* p = data.data();
  std::size_t n = data.size();
  crc = ~crc;
  for (; n >= 8; p += 8, n -= 8) {
    // Little-endian assembly by bytes: one load on x86 and ARM, correct on any host.
    const std::uint32_t lo = crc ^ load_le<std::uint32_t>(p), hi = load_le<std::uint32_t>(p + 4);
    crc = t[7][lo & 0xffu] ^ t[6][(lo >> 8) & 0xffu] ^ t[5][(lo >> 16) & 0xffu] ^ t[4][lo >> 24] ^ t[3][hi & 0xffu] ^
          t[2][(hi >> 8) & 0xffu] ^ t[1][(hi >> 16) & 0xffu] ^ t[0][hi >> 24];
  }
  for (; n > 0; ++p, --n) crc = t[0][(crc ^ std::to_integer<std::uint32_t>(*p)) & 0xffu] ^ (crc >> 8);
  return ~crc;
}

inline std::uint32_t crc32c_u64(std::uint64_t v, std::uint32_t crc) {
  std::byte b[8];
  store_le<std::uint64_t>(b, v);
  return crc32c(b, crc);
}
inline std::uint32_t crc32c_text(std::string_view s, std::uint32_t crc) {
  crc = crc32c_u64(s.size(), crc);
  return crc32c(std::as_bytes(std::span<const char>(s.data(), s.size())), crc);
}

}  // namespace detail

// The checksum save_checkpoint stores under kChecksumKey (and the training state reuses):
// "crc32c:" and 8 hex digits of the CRC-32C of, in order, each metadata entry but the checksum
// itself (key order; key, value) and each tensor in file order (name, dtype, rank, dims, data).
// Strings and data are preceded by their byte length and every integer is a u64 little-endian,
// so no two contents encode alike. Covering the metadata too means a bit flip anywhere in the
// header is caught, not only one in the weights.
inline std::string tensor_checksum(const SafeTensors& st) {
  using namespace detail;
  std::uint32_t crc = 0;
  for (const auto& [key, value] : st.metadata) {
    if (key == kChecksumKey) continue;
    crc = crc32c_text(key, crc);
    crc = crc32c_text(value, crc);
  }
  crc = crc32c_u64(st.tensors.size(), crc);
  for (const auto& t : st.tensors) {
    crc = crc32c_text(t.name, crc);
    crc = crc32c_text(dtype_name(t.dtype), crc);
    crc = crc32c_u64(t.shape.size(), crc);
    for (const std::size_t d : t.shape) crc = crc32c_u64(d, crc);
    crc = crc32c_u64(t.bytes.size(), crc);
    crc = crc32c(t.bytes, crc);
  }
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", static_cast<unsigned>(crc));
  return std::string("crc32c:") + hex;
}

// Checks st.metadata[kChecksumKey] against the contents; throws std::runtime_error naming
// st.source when they disagree ("damaged"), or when the key is missing and `required`.
inline void verify_tensor_checksum(const SafeTensors& st, bool required = false) {
  const auto it = st.metadata.find(kChecksumKey);
  if (it == st.metadata.end()) {
    if (required) throw std::runtime_error(st.source + ": the file is damaged: its metadata '" + kChecksumKey + "' is missing");
    return;
  }
  const std::string& stored = it->second;
  if (!stored.starts_with("crc32c:"))
    throw std::runtime_error(st.source + ": the file is damaged or from a newer dyad: metadata '" + kChecksumKey + "' is " +
                             detail::json_excerpt(stored) + ", not a crc32c checksum");
  const std::string computed = tensor_checksum(st);
  if (computed != stored)
    throw std::runtime_error(st.source + ": the file is damaged: its weights or metadata changed after it was saved (" +
                             kChecksumKey + " is " + detail::json_excerpt(stored) + ", the contents give " + computed + ")");
}

namespace detail {

// Parses the file and verifies its checksum: required for the current format, checked
// whenever present, skipped for version-1 checkpoints and plain state_dicts (none written).
inline SafeTensors read_checkpoint_file(const std::filesystem::path& path) {
  const std::string src = path.string();
  SafeTensors st = load_safetensors(path);
  const auto format_it = st.metadata.find("format");
  const std::string format = format_it == st.metadata.end() ? std::string() : format_it->second;
  if (format.starts_with("dyad-checkpoint-") && format != kCheckpointFormat && format != kCheckpointFormatV1)
    throw std::runtime_error(src + ": checkpoint format " + json_excerpt(format) + " is not one this dyad reads (" +
                             kCheckpointFormat + " or " + kCheckpointFormatV1 + "); the file is damaged or from a newer dyad");
  verify_tensor_checksum(st, format == kCheckpointFormat);
  return st;
}

inline nlohmann::json parse_meta(const SafeTensors& st, const std::string& key) {
  const auto it = st.metadata.find(key);
  if (it == st.metadata.end()) throw std::runtime_error(st.source + ": dyad metadata '" + key + "' is missing");
  try {
    return parse_json(it->second, st.source + ": metadata '" + key + "'");
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(st.source + ": metadata '" + key + "' is not valid JSON: " + e.what());
  }
}

inline std::size_t dim(const SafeTensors& st, const std::string& name, std::size_t axis) {
  const Tensor& t = st.at(name);
  if (t.shape.size() <= axis) st.fail(name, "has too few dimensions");
  return t.shape[axis];
}

// Sizes and cell of a DynamicVAE state_dict, read off its tensor shapes (the cell from
// encoder_rnn.weight_hh_l0: H, 3H or 4H rows for the RNN, GRU or LSTM; check_tensors then holds
// every other tensor to that cell). Each size is checked against dyad's caps before use, and
// the layer count stops at the cap, so a hostile file can neither wrap an int nor make dyad
// count (and later build) billions of layers. `keep_cell`: c.cell was asked for, and a file of
// another cell is an error.
inline ModelConfig infer_architecture(const SafeTensors& st, ModelConfig c, bool keep_cell = false) {
  auto bounded = [&](const std::string& name, std::size_t axis, std::size_t lo, std::size_t hi, const char* what) {
    const std::size_t v = dim(st, name, axis);
    if (v < lo || v > hi)
      st.fail(name, "dimension " + std::to_string(axis) + " (" + what + ") is " + std::to_string(v) + ", outside [" +
                        std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return v;
  };
  const std::size_t H = bounded("encoder_rnn.weight_hh_l0", 1, 2, limits::hidden_size, "hidden_size");
  const std::size_t rows = dim(st, "encoder_rnn.weight_hh_l0", 0);
  Cell cell = Cell::gru;
  if (!cell_from_rows(static_cast<std::int64_t>(rows), static_cast<std::int64_t>(H), cell))
    st.fail("encoder_rnn.weight_hh_l0", "has " + std::to_string(rows) + " rows for hidden size " + std::to_string(H) +
                                            ", which is no cell dyad implements (H rows: rnn, 3H: gru, 4H: lstm)");
  if (keep_cell && cell != c.cell)
    st.fail("encoder_rnn.weight_hh_l0", "has " + std::to_string(rows) + " rows = " + std::to_string(gates(cell)) +
                                            " x hidden size " + std::to_string(H) + ", the weights of " +
                                            std::string(to_string(cell)) + " cells, but the configuration's rnn_type is " +
                                            std::string(to_string(c.cell)));
  c.cell = cell;
  const std::size_t Z = bounded("hidden2mean.weight", 0, 1, limits::latent_size, "latent_size");
  const std::size_t E = bounded("encoder_rnn.weight_ih_l0", 1, 1, limits::columns, "encoder columns");
  const std::size_t D = bounded("decoder_rnn.weight_ih_l0", 1, 1, limits::columns, "conditioning columns");
  int layers = 0;
  while (layers <= limits::num_layers && st.contains("encoder_rnn.weight_ih_l" + std::to_string(layers))) ++layers;
  if (layers > limits::num_layers)
    st.fail("encoder_rnn.weight_ih_l" + std::to_string(limits::num_layers),
            "the encoder has more than " + std::to_string(limits::num_layers) + " layers (dyad's cap)");
  c.hidden = static_cast<int>(H);
  c.latent = static_cast<int>(Z);
  c.layers = layers;
  c.bidirectional = st.contains("encoder_rnn.weight_ih_l0_reverse");
  if (c.roles.encoder.size() != E || c.roles.condition != D)
    throw std::invalid_argument(st.source + ": the checkpoint's encoder takes " + std::to_string(E) + " columns and its decoder " +
                                std::to_string(D) + ", but the configuration names " + std::to_string(c.roles.encoder.size()) +
                                " encoder columns with " + std::to_string(c.roles.condition) +
                                " conditioning; pass the matching preset or config");
  return c;
}

// Every tensor of the file is a parameter of the model `c` describes, with its shape and a
// floating-point dtype, and none is missing. Runs before the model is built, so a file whose
// configuration and tensors disagree is refused without allocating anything from it.
inline void check_tensors(const SafeTensors& st, const ModelConfig& c) {
  const std::vector<ParameterShape> expected = parameter_shapes(c);
  std::set<std::string_view> names;
  for (const auto& p : expected) names.insert(p.name);
  auto describe = [&] {
    return "hidden_size " + std::to_string(c.hidden) + ", latent_size " + std::to_string(c.latent) + ", num_layers " +
           std::to_string(c.layers) + (c.bidirectional ? ", bidirectional " : ", unidirectional ") +
           std::string(to_string(c.cell)) + ", " + std::to_string(c.roles.encoder.size()) + " encoder / " +
           std::to_string(c.roles.condition) + " conditioning columns";
  };
  // Unknown names first: afterwards there are at most expected.size() tensors, so the
  // lookups below stay cheap whatever the file holds.
  for (const auto& t : st.tensors)
    if (!names.count(t.name)) st.fail(t.name, "is not a parameter of a DyAD model with " + describe());
  for (const auto& p : expected) {
    const Tensor* t = st.find(p.name);
    if (!t) st.fail(p.name, "missing from the checkpoint (a model with " + describe() + " needs it)");
    if (!std::ranges::equal(t->shape, p.shape, [](std::size_t a, std::int64_t b) { return std::cmp_equal(a, b); })) {
      const std::vector<std::size_t> want(p.shape.begin(), p.shape.end());
      st.fail(p.name, "has shape " + shape_string(t->shape) + ", but a model with " + describe() + " needs " + shape_string(want));
    }
    if (t->dtype != DType::F64 && t->dtype != DType::F32 && t->dtype != DType::F16 && t->dtype != DType::BF16)
      st.fail(p.name, "dtype " + std::string(dtype_name(t->dtype)) + " is not F64, F32, F16 or BF16");
  }
}

// dyad's fitted state besides the weights, read and checked against the configuration.
struct CheckpointScorers {
  detect::LatentScorer latent, pattern;
  detect::ScoreCombiner combiner;
};
struct CheckpointExtras {
  Normalizer normalizer;
  MinMax mileage;
  // Optional rather than default-constructed: a default LatentScorer holds an Eigen::LLT whose
  // status is uninitialised, and moving one reads it (undefined behaviour, UBSan flags it).
  std::optional<CheckpointScorers> scorers;
  detect::Calibration calibration;  // empty when the checkpoint has none
};

// The fitted segment scorers as JSON (the value of dyad.latent), and back.
template <class M>
nlohmann::json scorers_json(const M& model) {
  const auto& l = model.latent_scorer();
  const auto& p = model.pattern_scorer();
  const auto& c = model.score_combiner();
  return {{"mean", l.mean()},
          {"covariance", l.covariance()},
          {"pattern_mean", p.mean()},
          {"pattern_covariance", p.covariance()},
          {"combiner_means", c.means()},
          {"combiner_stds", c.stds()}};
}

inline CheckpointScorers read_scorers(const nlohmann::json& l, const std::string& where, const ModelConfig& c) {
  const auto Z = static_cast<std::size_t>(c.latent), P = c.roles.encoder.size() - c.roles.condition;
  auto scorer = [&](const char* mean_key, const char* cov_key, std::size_t dim) {
    auto mean = json_vector(l, where, mean_key, dim);
    auto cov = json_vector(l, where, cov_key, dim * dim);
    try {
      return detect::LatentScorer(std::move(mean), std::move(cov));
    } catch (const std::invalid_argument& e) {
      json_key_error(where, cov_key, e.what());
    }
  };
  detect::LatentScorer latent = scorer("mean", "covariance", Z);
  detect::LatentScorer pattern = scorer("pattern_mean", "pattern_covariance", P);
  auto means = json_vector(l, where, "combiner_means", 2);
  auto stds = json_vector(l, where, "combiner_stds", 2);
  for (const double s : stds)
    if (!std::isnormal(s) || !(s > 0))
      json_key_error(where, "combiner_stds", "must be > 0, got " + json_excerpt(s) + (s > 0 ? " (subnormal)" : ""));
  return {std::move(latent), std::move(pattern), detect::ScoreCombiner(std::move(means), std::move(stds))};
}

inline CheckpointExtras read_extras(const SafeTensors& st, const ModelConfig& c) {
  CheckpointExtras x;
  const std::string src = st.source;
  {
    const std::string where = src + " (dyad.normalizer)";
    const auto n = parse_meta(st, "dyad.normalizer");
    auto columns = json_strings(json_member(n, where, "columns"), where, "columns");
    if (columns != c.roles.encoder)
      json_key_error(where, "columns",
                     "is " + json_excerpt(columns) + ", but the encoder columns (dyad.config) are " +
                         json_excerpt(c.roles.encoder));
    auto mean = json_vector(n, where, "mean", columns.size());
    auto scale = json_vector(n, where, "scale", columns.size());
    for (std::size_t i = 0; i < scale.size(); ++i)
      if (!std::isnormal(scale[i]) || !(scale[i] > 0))
        json_key_error(where, "scale",
                       "column '" + columns[i] + "' has scale " + json_excerpt(scale[i]) +
                           (scale[i] > 0 ? " (must be > 0 and not subnormal)" : " (must be > 0)"));
    x.normalizer = Normalizer(std::move(columns), std::move(mean), std::move(scale));
  }
  {
    const std::string where = src + " (dyad.mileage)";
    const auto m = parse_meta(st, "dyad.mileage");
    const double lo = json_number(json_member(m, where, "min"), where, "min");
    const double hi = json_number(json_member(m, where, "max"), where, "max");
    if (!(lo <= hi)) json_key_error(where, "max", "must be >= min (" + json_excerpt(lo) + "), got " + json_excerpt(hi));
    x.mileage = MinMax(lo, hi);
  }
  if (st.metadata.count("dyad.latent")) x.scorers = read_scorers(parse_meta(st, "dyad.latent"), src + " (dyad.latent)", c);
  if (st.metadata.count("dyad.calibration")) {
    const std::string where = src + " (dyad.calibration)";
    x.calibration = detect::Calibration::from_json(parse_meta(st, "dyad.calibration"), where);
    if (x.calibration.signals() != c.roles.targets())
      json_key_error(where, "signals",
                     "is " + json_excerpt(x.calibration.signals()) + ", but the model's targets are " +
                         json_excerpt(c.roles.targets()));
  }
  return x;
}

}  // namespace detail

namespace detail {

// The model's weights under their state_dict names, each preceded by `prefix`.
template <class M>
void add_weights(SafeTensors& st, const M& model, const std::string& prefix = "") {
  using T = typename M::Scalar;
  const auto& params = model.parameters();
  for (const auto& s : params.slices()) {
    std::vector<std::size_t> shape(s.shape.begin(), s.shape.end());
    st.add<T>(prefix + s.name, shape, std::span<const T>(params.values().data() + s.offset, static_cast<std::size_t>(s.size)));
  }
}

// The metadata every checkpoint of dyad carries: format, version, configuration, normaliser,
// mileage scale, and the calibration when there is one.
template <class M>
void add_metadata(SafeTensors& st, const M& model, const detect::Calibration& calibration) {
  const auto& n = model.normalizer();
  st.metadata["format"] = kCheckpointFormat;
  st.metadata["dyad.version"] = DYAD_VERSION_STRING;
  st.metadata["dyad.config"] = model.config().to_json().dump();
  st.metadata["dyad.normalizer"] = nlohmann::json{{"columns", n.columns()}, {"mean", n.mean()}, {"scale", n.scale()}}.dump();
  st.metadata["dyad.mileage"] = nlohmann::json{{"min", model.mileage_scale().min()}, {"max", model.mileage_scale().max()}}.dump();
  if (!calibration.empty()) st.metadata["dyad.calibration"] = calibration.to_json().dump();
}

// Adds the checksum (last: it covers everything above) and writes `st` to its source atomically.
inline void seal_and_save(SafeTensors& st) {
  st.metadata[kChecksumKey] = tensor_checksum(st);
  st.save(st.source);
}

}  // namespace detail

// Writes `model` (any dyad::Model) to `path` atomically, with a checksum of its contents, and
// with `calibration` in place of the model's own when given.
template <class M>
void save_checkpoint(const M& model, const std::filesystem::path& path, const detect::Calibration* calibration = nullptr) {
  SafeTensors st;
  st.source = path.string();
  detail::add_weights(st, model);
  detail::add_metadata(st, model, calibration ? *calibration : model.calibration());
  if (model.has_latent_scorer()) st.metadata["dyad.latent"] = detail::scorers_json(model).dump();
  detail::seal_and_save(st);
}

namespace detail {

// The validated dyad.config of one of dyad's checkpoints. Errors are the file's, so they are
// std::runtime_error (like every other error in it), not invalid_argument.
inline ModelConfig read_config(const SafeTensors& st) {
  const std::string where = st.source + " (dyad.config)";
  try {
    ModelConfig config = config_from_json(parse_meta(st, "dyad.config"), ModelConfig{}, where);
    try {
      config.validate();
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(where + ": " + e.what());
    }
    return config;
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(e.what());
  }
}

// The model `config` describes with the weights of `st` (already checked by check_tensors) and,
// for dyad's own files, its extras.
template <class M>
M build_model(const SafeTensors& st, const ModelConfig& config, std::optional<CheckpointExtras> extras) {
  using T = typename M::Scalar;
  M model(config);
  auto& params = model.parameters();
  for (const auto& s : params.slices()) {
    const std::vector<std::size_t> shape(s.shape.begin(), s.shape.end());
    const std::vector<T> v = st.get<T>(s.name, std::span<const std::size_t>(shape));
    std::copy(v.begin(), v.end(), params.values().data() + s.offset);
  }
  if (!params.values().allFinite()) throw std::runtime_error(st.source + ": the checkpoint holds NaN or infinite weights");
  if (extras) {
    model.set_normalizer(std::move(extras->normalizer));
    model.set_mileage_scale(extras->mileage);
    if (extras->scorers)
      model.set_latent_scores(std::move(extras->scorers->latent), std::move(extras->scorers->pattern),
                              std::move(extras->scorers->combiner));
    model.set_calibration(std::move(extras->calibration));
  }
  return model;
}

}  // namespace detail

// Reads a checkpoint written by save_checkpoint, or a plain PyTorch DynamicVAE state_dict.
// Everything in the file is checked before the model is built: the checksum (when present),
// the configuration against dyad's caps, every tensor's name, shape and dtype against that
// configuration, and the normaliser, mileage and scorer metadata against its sizes. An
// ensemble's file (dyad/ensemble.hpp) is refused with a pointer to dyad::Ensemble.
template <class M>
M load_checkpoint(const SafeTensors& st, const LoadOptions& options = {}) {
  const std::string& src = st.source;
  if (st.metadata.count(kEnsembleKey))
    throw std::runtime_error(src + ": the file holds an ensemble of networks (metadata '" + kEnsembleKey +
                             "'), which a single model cannot load; dyad::Ensemble::load reads it");
  if (st.metadata.count("dyad.config")) {
    const ModelConfig config = detail::read_config(st);
    std::optional<detail::CheckpointExtras> extras;
    try {
      detail::check_tensors(st, config);
      extras = detail::read_extras(st, config);
    } catch (const std::invalid_argument& e) {  // a bad file, not a bad call
      throw std::runtime_error(e.what());
    }
    return detail::build_model<M>(st, config, std::move(extras));
  }
  ModelConfig config =
      detail::infer_architecture(st, options.config.value_or(ModelConfig{}), options.config && options.config_names_cell);
  try {
    config.validate();
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(src + ": " + e.what());
  }
  detail::check_tensors(st, config);
  return detail::build_model<M>(st, config, std::nullopt);
}
// The same from the file at `path` (detail::read_checkpoint_file: parsed, checksum verified).
template <class M>
M load_checkpoint(const std::filesystem::path& path, const LoadOptions& options = {}) {
  return load_checkpoint<M>(detail::read_checkpoint_file(path), options);
}

}  // namespace dyad
