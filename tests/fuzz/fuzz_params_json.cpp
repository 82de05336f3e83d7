// Fuzz target: upstream params JSON (`dyad train --config`): nlohmann's parser, then
// dyad::config_from_json, then a Model<float> built from what validates. Integer settings
// must be the JSON's values or be refused (no silent wrap-around), a configuration must
// survive to_json + config_from_json, and validate() must refuse absurd sizes (fuzz_util.hpp).
#include "fuzz_util.hpp"

#include <dyad/model.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <exception>
#include <string>

namespace {

// An accepted integer setting must equal the JSON number it came from: exactly for integers,
// within rounding for a number written as a float (64.0, 1e2).
template <class I>
void check_integer(const nlohmann::json& j, const char* key, I accepted) {
  if (!j.contains(key)) return;
  const auto& v = j.at(key);
  // long double holds every int64 and uint64 exactly.
  const auto a = static_cast<long double>(accepted);
  bool same = true;
  if (v.is_number_unsigned()) same = a == static_cast<long double>(v.get<std::uint64_t>());
  else if (v.is_number_integer()) same = a == static_cast<long double>(v.get<std::int64_t>());
  else if (v.is_number_float()) same = std::fabs(static_cast<long double>(v.get<double>()) - a) < 1;
  if (!same) dyad::fuzz::bug(std::string("config_from_json accepted ") + key + " " + v.dump() + " as " + std::to_string(accepted));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(data, data + size);
  } catch (const nlohmann::json::exception&) {
    return 0;
  }
  dyad::ModelConfig c;
  try {
    c = dyad::config_from_json(j, dyad::ModelConfig{}, "fuzz.json");
  } catch (const std::exception&) {
    return 0;
  }
  check_integer(j, "hidden_size", c.hidden);
  check_integer(j, "latent_size", c.latent);
  check_integer(j, "num_layers", c.layers);
  check_integer(j, "epochs", c.epochs);
  check_integer(j, "batch_size", c.batch_size);
  check_integer(j, "threads", c.threads);
  check_integer(j, "condition_columns", c.roles.condition);
  check_integer(j, "seed", c.seed);

  const nlohmann::json out = c.to_json();
  try {
    if (dyad::config_from_json(out).to_json() != out) dyad::fuzz::bug("to_json + config_from_json changed " + out.dump());
  } catch (const std::exception& e) {
    dyad::fuzz::bug(std::string("config_from_json refuses what to_json wrote: ") + e.what());
  }

  try {
    c.validate();
  } catch (const std::exception&) {
    return 0;
  }
  if (!dyad::fuzz::buildable(c)) return 0;
  try {
    const dyad::Model<float> model(c);
    if (!model.parameters().values().allFinite()) dyad::fuzz::bug("a new model has non-finite weights");
  } catch (const std::exception&) {
  }
  return 0;
}
