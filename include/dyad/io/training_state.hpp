// The complete state of an interrupted training run, so that it resumes to the bit-identical
// model: weights, AdamW moments and step, position in the schedule (epoch, next batch, the
// epoch's segment order), both random streams, normaliser, mileage scale, configuration and a
// fingerprint of the training data. One safetensors file ("M.safetensors.state"), written
// atomically, with a checksum over its tensor bytes.
#pragma once

#include "dyad/config.hpp"
#include "dyad/core/json.hpp"
#include "dyad/core/random.hpp"
#include "dyad/core/var.hpp"
#include "dyad/data/normalizer.hpp"
#include "dyad/io/checkpoint.hpp"
#include "dyad/io/safetensors.hpp"
#include "dyad/model_config.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <charconv>
#include <cstdio>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

namespace dyad {

inline constexpr const char* kTrainingStateFormat = "dyad-training-state-1";

template <class T>
struct TrainingState {
  ModelConfig config;
  Normalizer normalizer;
  MinMax mileage;
  Vector<T> weights, adam_m, adam_v;  // the flat buffers, padding included
  std::int64_t adam_steps = 0;
  std::int64_t step = 0;            // mini-batches done
  int epoch = 0;                    // the epoch the next batch belongs to
  std::int64_t batch = 0;           // the next batch within that epoch (0: the epoch has not begun)
  std::vector<std::int64_t> order;  // the segment order of the current epoch
  Rng::State order_rng, noise_rng;
  std::array<double, 4> epoch_sums{};  // loss, nll, kl, label summed over the epoch's batches so far
  double seconds = 0;                  // training time so far
  std::uint64_t data_fingerprint = 0;  // of the training segments (Trainer::fingerprint)
  std::int64_t train_segments = 0;
};

namespace detail {

// 64-bit words as hex strings: JSON numbers lose bits past 2^53 in many readers.
inline std::string hex64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

inline nlohmann::json rng_json(const Rng::State& s) {
  return {{"words", {hex64(s.words[0]), hex64(s.words[1]), hex64(s.words[2]), hex64(s.words[3])}},
          {"spare", hex64(s.spare_bits)},
          {"has_spare", s.has_spare}};
}

inline std::uint64_t parse_hex64(const std::string& s, const std::string& where) {
  std::uint64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc() || p != s.data() + s.size() || s.size() != 16)
    throw std::runtime_error(where + ": '" + s.substr(0, 32) + "' is not a 16-digit hex number");
  return v;
}

inline Rng::State rng_from_json(const nlohmann::json& j, const std::string& where) {
  Rng::State s;
  const auto& w = j.at("words");
  if (!w.is_array() || w.size() != 4) throw std::runtime_error(where + ": expected 4 words");
  for (std::size_t i = 0; i < 4; ++i) s.words[i] = parse_hex64(w[i].get<std::string>(), where);
  s.spare_bits = parse_hex64(j.at("spare").get<std::string>(), where);
  s.has_spare = j.at("has_spare").get<bool>();
  return s;
}

template <class T>
Vector<T> state_vector(const SafeTensors& st, const char* name) {
  const Tensor& t = st.at(name);
  if (t.dtype != dtype_of<T>())
    st.fail(name, "has dtype " + std::string(dtype_name(t.dtype)) + ", expected " + std::string(dtype_name(dtype_of<T>())) +
                      " (the model's scalar type)");
  if (t.shape.size() != 1) st.fail(name, "is not 1-dimensional");
  const std::vector<T> v = st.get<T>(name);
  return Eigen::Map<const Vector<T>>(v.data(), static_cast<Index>(v.size()));
}

}  // namespace detail

template <class T>
void save_training_state(const std::filesystem::path& path, const TrainingState<T>& s) {
  SafeTensors st;
  st.source = path.string();
  auto add = [&](const char* name, const Vector<T>& v) {
    st.add<T>(name, {static_cast<std::size_t>(v.size())}, std::span<const T>(v.data(), static_cast<std::size_t>(v.size())));
  };
  add("weights", s.weights);
  add("adam.m", s.adam_m);
  add("adam.v", s.adam_v);
  st.add<std::int64_t>("order", {s.order.size()}, s.order);
  st.metadata["format"] = kTrainingStateFormat;
  st.metadata["dyad.version"] = DYAD_VERSION_STRING;
  st.metadata["dyad.config"] = s.config.to_json().dump();
  st.metadata["dyad.normalizer"] =
      nlohmann::json{{"columns", s.normalizer.columns()}, {"mean", s.normalizer.mean()}, {"scale", s.normalizer.scale()}}.dump();
  st.metadata["dyad.mileage"] = nlohmann::json{{"min", s.mileage.min()}, {"max", s.mileage.max()}}.dump();
  st.metadata["dyad.progress"] = nlohmann::json{{"adam_steps", s.adam_steps},
                                                {"step", s.step},
                                                {"epoch", s.epoch},
                                                {"batch", s.batch},
                                                {"order_rng", detail::rng_json(s.order_rng)},
                                                {"noise_rng", detail::rng_json(s.noise_rng)},
                                                {"epoch_sums", s.epoch_sums},
                                                {"seconds", s.seconds},
                                                {"data_fingerprint", detail::hex64(s.data_fingerprint)},
                                                {"train_segments", s.train_segments}}
                                     .dump();
  st.metadata[kChecksumKey] = tensor_checksum(st);
  st.save(path);
}

// Reads and checks a state file; errors name the file and the key or tensor.
template <class T>
TrainingState<T> load_training_state(const std::filesystem::path& path) {
  const SafeTensors st = load_safetensors(path);
  const std::string where = path.string();
  const auto format = st.metadata.find("format");
  if (format == st.metadata.end() || format->second != kTrainingStateFormat)
    throw std::runtime_error(where + ": not a dyad training state (no format '" + kTrainingStateFormat +
                             "' in the metadata); pass the .state file that `dyad train --checkpoint-every` writes");
  verify_tensor_checksum(st, true);  // states are always dyad-written: the checksum must be there
  TrainingState<T> s;
  try {
    s.config = config_from_json(detail::parse_meta(st, "dyad.config"), ModelConfig{}, where + " (dyad.config)");
    const auto n = detail::parse_meta(st, "dyad.normalizer");
    s.normalizer = Normalizer(n.at("columns").get<std::vector<std::string>>(), n.at("mean").get<std::vector<double>>(),
                              n.at("scale").get<std::vector<double>>());
    const auto m = detail::parse_meta(st, "dyad.mileage");
    s.mileage = MinMax(m.at("min").get<double>(), m.at("max").get<double>());
    const auto p = detail::parse_meta(st, "dyad.progress");
    const std::string progress = where + " (dyad.progress)";
    s.adam_steps =
        detail::json_integer<std::int64_t>(p.at("adam_steps"), progress, "adam_steps", 0, std::numeric_limits<std::int64_t>::max());
    s.step = detail::json_integer<std::int64_t>(p.at("step"), progress, "step", 0, std::numeric_limits<std::int64_t>::max());
    s.epoch = detail::json_integer<int>(p.at("epoch"), progress, "epoch", 0, limits::epochs);
    s.batch = detail::json_integer<std::int64_t>(p.at("batch"), progress, "batch", 0, std::numeric_limits<std::int64_t>::max());
    s.order_rng = detail::rng_from_json(p.at("order_rng"), where + " (order_rng)");
    s.noise_rng = detail::rng_from_json(p.at("noise_rng"), where + " (noise_rng)");
    s.epoch_sums = p.at("epoch_sums").get<std::array<double, 4>>();
    s.seconds = p.at("seconds").get<double>();
    s.data_fingerprint = detail::parse_hex64(p.at("data_fingerprint").get<std::string>(), where + " (data_fingerprint)");
    s.train_segments = detail::json_integer<std::int64_t>(p.at("train_segments"), progress, "train_segments", 1,
                                                          std::numeric_limits<std::int64_t>::max());
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(where + ": training state metadata is incomplete: " + e.what());
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(where + ": " + e.what());
  }
  s.weights = detail::state_vector<T>(st, "weights");
  s.adam_m = detail::state_vector<T>(st, "adam.m");
  s.adam_v = detail::state_vector<T>(st, "adam.v");
  s.order = st.get<std::int64_t>("order");
  if (s.adam_m.size() != s.weights.size() || s.adam_v.size() != s.weights.size())
    st.fail("adam.m", "AdamW moments and weights differ in length");
  if (s.step < 0 || s.adam_steps < 0 || s.epoch < 0 || s.batch < 0 || s.train_segments <= 0 ||
      s.order.size() != static_cast<std::size_t>(s.train_segments))
    throw std::runtime_error(where + ": inconsistent training progress (step, epoch, batch or segment order)");
  return s;
}

}  // namespace dyad
