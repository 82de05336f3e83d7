// Fuzz target: training-state files (`dyad train --resume`). load_training_state takes a path:
// the bytes go to an in-memory file. An accepted state must be internally consistent, and when
// its configuration is small enough to build, restoring it into a Trainer on other data must
// be refused with an exception, never a crash.
#include "fuzz_util.hpp"

#include <dyad/trainer.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const dyad::fuzz::MemFile file(data, size);
  std::optional<dyad::TrainingState<float>> s;
  try {
    s.emplace(dyad::load_training_state<float>(file.path()));
  } catch (const std::exception&) {
    return 0;
  }
  if (s->adam_m.size() != s->weights.size() || s->adam_v.size() != s->weights.size() ||
      s->order.size() != static_cast<std::size_t>(s->train_segments))
    dyad::fuzz::bug("an accepted training state is inconsistent");
  if (!dyad::fuzz::buildable(s->config)) return 0;
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
  return 0;
}
