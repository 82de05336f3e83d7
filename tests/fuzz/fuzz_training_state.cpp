// Fuzz target: training-state files (`dyad train --resume`). load_training_state takes a path:
// the bytes go to an in-memory file. An accepted state must be internally consistent, and when
// its configuration is small enough to build, restoring it into a Trainer on other data must
// be refused with an exception, never a crash. Each input runs as it is and, when its CRC-32C
// seal (dyad.checksum) no longer matches, once more re-sealed (fuzz_util.hpp), so that
// mutations reach the readers of the metadata behind the seal.
#include "fuzz_util.hpp"

#include <dyad/trainer.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <vector>

namespace {

void load_and_restore(const std::uint8_t* data, std::size_t size) {
  const dyad::fuzz::MemFile file(data, size);
  std::optional<dyad::TrainingState<float>> s;
  try {
    s.emplace(dyad::load_training_state<float>(file.path()));
  } catch (const std::exception&) {
    return;
  }
  if (s->adam_m.size() != s->weights.size() || s->adam_v.size() != s->weights.size() ||
      s->order.size() != static_cast<std::size_t>(s->train_segments))
    dyad::fuzz::bug("an accepted training state is inconsistent");
  if (!dyad::fuzz::buildable(s->config)) return;
  dyad::ModelConfig c = s->config;
  c.threads = 1;
  try {
    dyad::Model<float> model(c);
    dyad::Dataset d(c.roles.encoder);
    std::vector<float> v(4 * c.roles.encoder.size(), 0.5f);
    for (int i = 0; i < 3; ++i) d.add({"car" + std::to_string(i), i, 0, 10.0 + i, 0}, v);
    dyad::Trainer<dyad::Model<float>> trainer(model, d);
    trainer.restore(*s, "fuzz.state");
  } catch (const std::exception&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  load_and_restore(data, size);  // as it is: the seal check itself
  if (const auto sealed = dyad::fuzz::resealed(data, size)) load_and_restore(sealed->data(), sealed->size());
  return 0;
}
