// An ensemble's checkpoint (dyad/ensemble.hpp) as one safetensors file, in the format of a
// model's checkpoint (dyad/io/checkpoint.hpp): member k's weights named
// "member<k>.<state_dict name>", the shared configuration (member 0's), normaliser, mileage scale
// and calibration as in a plain checkpoint, and under kEnsembleKey the members' seeds, segment
// scorers and score scales. Checksummed likewise. An ensemble of one is saved as a plain
// checkpoint (save_checkpoint), and every file load_checkpoint reads loads as one member.
#pragma once

#include "dyad/core/json.hpp"
#include "dyad/detect/calibration.hpp"
#include "dyad/detect/scores.hpp"
#include "dyad/io/checkpoint.hpp"
#include "dyad/io/safetensors.hpp"
#include "dyad/model_config.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace dyad {

// What an ensemble's checkpoint holds. M: a dyad::Model; Scale: an aggregate {mean, sd} of
// std::vector<double> (dyad::ScoreScale), one per member.
template <class M, class Scale>
struct EnsembleCheckpoint {
  std::vector<M> members;
  std::vector<Scale> scales;        // empty for a plain checkpoint (one member)
  detect::Calibration calibration;  // the ensemble's; empty for a plain checkpoint (the model keeps its own)
};

namespace detail {

inline std::string ensemble_member_prefix(std::size_t k) { return "member" + std::to_string(k) + "."; }

// The members, scales and calibration of an ensemble's checkpoint `st` (its tensors are moved
// out). Everything is checked before a member is built, each error naming the file, member and
// key or tensor; errors in the file are std::invalid_argument here (runtime_error for dyad.config).
template <class M, class Scale>
EnsembleCheckpoint<M, Scale> read_ensemble(SafeTensors& st) {
  const ModelConfig config = read_config(st);
  const std::string& src = st.source;
  const std::string where = src + " (" + kEnsembleKey + ")";
  const nlohmann::json meta = parse_meta(st, kEnsembleKey);
  const nlohmann::json& list = json_member(meta, where, "members");
  if (!list.is_array() || list.size() < 2 || list.size() > static_cast<std::size_t>(limits::ensemble))
    json_key_error(where, "members",
                   "must be an array of 2 to " + std::to_string(limits::ensemble) + " members, got " + json_excerpt(list));
  // Each member's tensors, their prefix dropped, in a file of their own; none may be left over.
  std::vector<SafeTensors> files(list.size());
  for (std::size_t k = 0; k < files.size(); ++k)
    files[k].source = src + ", member " + std::to_string(k) + " (tensors " + ensemble_member_prefix(k) + "*)";
  for (Tensor& t : st.tensors) {
    std::size_t k = 0;
    while (k < files.size() && !t.name.starts_with(ensemble_member_prefix(k))) ++k;
    if (k == files.size())
      st.fail(t.name, "is not a member's tensor: an ensemble of " + std::to_string(files.size()) +
                          " names them member0. to member" + std::to_string(files.size() - 1) + ".");
    t.name.erase(0, ensemble_member_prefix(k).size());
    files[k].tensors.push_back(std::move(t));
  }
  // The normaliser, mileage scale and calibration are the ensemble's, shared by the members.
  CheckpointExtras shared = read_extras(st, config);
  EnsembleCheckpoint<M, Scale> out;
  for (std::size_t k = 0; k < files.size(); ++k) {
    const std::string at = where + " member " + std::to_string(k);
    const nlohmann::json& m = list[k];
    if (!m.is_object()) json_key_error(where, "members", "member " + std::to_string(k) + " is not an object");
    ModelConfig c = config;
    c.seed = json_integer<std::uint64_t>(json_member(m, at, "seed"), at, "seed", 0, std::numeric_limits<std::uint64_t>::max());
    check_tensors(files[k], c);
    CheckpointExtras extras{shared.normalizer, shared.mileage, std::nullopt, {}};
    const nlohmann::json& scorers = json_member(m, at, "scorers");
    if (!scorers.is_null()) extras.scorers = read_scorers(scorers, at + " scorers", c);
    const std::size_t produced = scorers.is_null() ? 1 : detect::score_names.size();
    Scale scale{json_vector(m, at, "score_mean", produced), json_vector(m, at, "score_sd", produced)};
    for (const double sd : scale.sd)
      if (!std::isnormal(sd) || !(sd > 0))  // a subnormal sd makes every z-score infinite
        json_key_error(at, "score_sd", "must be finite and > 0, got " + json_excerpt(sd) + (sd > 0 ? " (subnormal)" : ""));
    for (const double mean : scale.mean)
      if (!std::isfinite(mean)) json_key_error(at, "score_mean", "must be finite, got " + json_excerpt(mean));
    out.members.push_back(build_model<M>(files[k], c, std::move(extras)));
    out.scales.push_back(std::move(scale));
  }
  out.calibration = std::move(shared.calibration);
  return out;
}

}  // namespace detail

// Writes an ensemble of two or more `members` with their score `scales` (one per member) and the
// ensemble's `calibration` to `path` atomically.
template <class M, class Scale>
void save_ensemble_checkpoint(const std::filesystem::path& path, const std::vector<M>& members, const std::vector<Scale>& scales,
                              const detect::Calibration& calibration) {
  SafeTensors st;
  st.source = path.string();
  nlohmann::json list = nlohmann::json::array();
  for (std::size_t k = 0; k < members.size(); ++k) {
    const M& m = members[k];
    detail::add_weights(st, m, detail::ensemble_member_prefix(k));
    list.push_back({{"seed", m.config().seed},
                    {"scorers", m.has_latent_scorer() ? detail::scorers_json(m) : nlohmann::json()},
                    {"score_mean", scales[k].mean},
                    {"score_sd", scales[k].sd}});
  }
  detail::add_metadata(st, members[0], calibration);
  st.metadata[kEnsembleKey] = nlohmann::json{{"members", std::move(list)}}.dump();
  detail::seal_and_save(st);
}

// Reads the file at `path` (parsed, checksum verified): an ensemble's checkpoint gives its
// members, scales and calibration; any other file load_checkpoint reads (with `options`) gives
// that one model, no scales and an empty calibration. An error in an ensemble's file is
// std::runtime_error; one of a plain file is as load_checkpoint's.
template <class M, class Scale>
EnsembleCheckpoint<M, Scale> load_ensemble_checkpoint(const std::filesystem::path& path, const LoadOptions& options = {}) {
  SafeTensors st = detail::read_checkpoint_file(path);
  if (!st.metadata.count(kEnsembleKey)) {
    EnsembleCheckpoint<M, Scale> one;
    one.members.push_back(load_checkpoint<M>(st, options));
    return one;
  }
  try {  // an error in the file is the file's (runtime_error), not a bad call (invalid_argument)
    return detail::read_ensemble<M, Scale>(st);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(e.what());
  }
}

}  // namespace dyad
