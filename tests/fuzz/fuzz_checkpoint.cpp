// Fuzz target: model checkpoints, single models and ensembles (dyad::Ensemble<float>::load,
// which reads both, takes a path: the bytes go to an in-memory file), then scoring a tiny fixed dataset with the loaded model, as `dyad score`
// would, and its calibrated verdicts, as `dyad monitor` would. Before loading, the sizes the model would be built with are read the way the loader
// reads them: absurd ones that the checks let through abort (see fuzz_util.hpp), merely large
// ones are skipped. Each input runs as it is and, when its CRC-32C seal (dyad.checksum) no
// longer matches, once more re-sealed (fuzz_util.hpp), so that mutations reach the readers
// of the metadata behind the seal.
#include "fuzz_util.hpp"

#include <dyad/ensemble.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

// The sizes load_checkpoint builds the model with: from dyad's metadata or the tensor shapes.
bool sizes_are_sane(const std::uint8_t* data, std::size_t size) {
  try {
    const auto st = dyad::SafeTensors::from_bytes({reinterpret_cast<const std::byte*>(data), size}, "fuzz.safetensors");
    dyad::ModelConfig c;
    if (const auto it = st.metadata.find("dyad.config"); it != st.metadata.end())
      c = dyad::config_from_json(nlohmann::json::parse(it->second), dyad::ModelConfig{}, "fuzz (dyad.config)");
    else c = dyad::detail::infer_architecture(st, dyad::ModelConfig{});
    c.validate();
    return dyad::fuzz::buildable(c);
  } catch (const std::exception&) {
    return false;  // the loader runs these same steps first and throws the same way
  }
}

// Three segments (lengths 1, 5, 12) over the model's encoder columns plus one it ignores.
dyad::Dataset tiny_dataset(const dyad::ModelConfig& c) {
  std::vector<std::string> columns = c.roles.encoder;
  std::string unused = "unused";
  while (std::find(columns.begin(), columns.end(), unused) != columns.end()) unused += '_';
  columns.push_back(unused);
  dyad::Dataset d(columns);
  std::vector<float> v;
  int segment = 0;
  for (const int length : {1, 5, 12}) {
    v.resize(static_cast<std::size_t>(length) * columns.size());
    for (std::size_t k = 0; k < v.size(); ++k) v[k] = static_cast<float>(k % 7) * 0.5f - 1.0f;
    d.add({"car" + std::to_string(segment % 2), segment, segment % 2, 1000.0 + segment, 1.7e9 + segment}, v);
    ++segment;
  }
  return d;
}

void load_and_score(const std::uint8_t* data, std::size_t size) {
  if (!sizes_are_sane(data, size)) return;
  const dyad::fuzz::MemFile file(data, size);
  std::optional<dyad::Ensemble<float>> model;
  try {
    model.emplace(dyad::Ensemble<float>::load(file.path()));
  } catch (const std::exception&) {
    return;
  }
  const dyad::ModelConfig& c = model->config();
  const dyad::Dataset d = tiny_dataset(c);
  dyad::Scores s;
  try {
    // One thread: a checkpoint's thread count is a setting of the machine it was trained on.
    dyad::Ensemble<float>::Workspace ws(1);
    s = model->score(ws, d);
  } catch (const std::exception& e) {
    // Finite weights far too large (1e31, say: crashes/checkpoint/huge_finite_weights_*) pass
    // the loader's finiteness check and overflow while scoring, which refuses them by name.
    if (std::string_view(e.what()).find(" is not finite") != std::string_view::npos) return;
    dyad::fuzz::bug(std::string("a loaded model cannot score data with its columns: ") + e.what());
  }
  const auto n = static_cast<Eigen::Index>(d.size());
  const auto targets = static_cast<Eigen::Index>(c.roles.encoder.size() - c.roles.condition);
  if (s.rec_error.size() != n || s.target_error.rows() != n || s.target_error.cols() != targets || s.mu.rows() != n ||
      s.mu.cols() != c.latent || s.log_var.cols() != c.latent)
    dyad::fuzz::bug("scores have the wrong shape");
  // A calibration that loaded gives verdicts with p-values in [1/(n+1), 1], unless it holds no
  // score kind the model produces (an error, not a crash).
  const auto& cal = model->calibration();
  if (!cal.empty()) {
    std::vector<dyad::detect::Verdict> verdicts;
    try {
      verdicts = cal.verdicts(dyad::to_score_table(d, s), dyad::detect::AlarmPolicy{});
    } catch (const std::invalid_argument&) {
      return;
    }
    for (const auto& v : verdicts)
      if (!(v.p_value >= cal.finest_rate() && v.p_value <= 1.0) || v.signals.size() != cal.signals().size())
        dyad::fuzz::bug("a verdict's p-value is outside [1/(n+1), 1] or its explanation misses signals");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  load_and_score(data, size);  // as it is: the seal check itself
  if (const auto sealed = dyad::fuzz::resealed(data, size)) load_and_score(sealed->data(), sealed->size());
  return 0;
}
