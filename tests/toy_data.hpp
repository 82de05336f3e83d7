// Small deterministic datasets for model tests: smooth charging-like curves with noise.
#pragma once

#include <dyad/core/random.hpp>
#include <dyad/data/dataset.hpp>
#include <dyad/model_config.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace dyad::test {

// `n` segments over the columns of `roles` (plus an unused extra column), lengths in
// [min_len, max_len], cars of 5 segments each, car k faulty when k % faulty_every == 1.
inline Dataset toy_dataset(std::size_t n, const FeatureRoles& roles, std::uint64_t seed = 7, int min_len = 12, int max_len = 12,
                           int faulty_every = 0) {
  std::vector<std::string> columns = roles.encoder;
  columns.insert(columns.begin() + 1, "ignored");
  Dataset d(columns);
  Rng rng(seed);
  std::vector<float> v;
  for (std::size_t s = 0; s < n; ++s) {
    const int len = min_len + static_cast<int>(rng.below(static_cast<std::uint64_t>(max_len - min_len + 1)));
    const std::size_t car = s / 5;
    v.assign(static_cast<std::size_t>(len) * columns.size(), 0.f);
    const double phase = rng.uniform(0, 3), level = rng.uniform(-1, 1);
    for (int t = 0; t < len; ++t)
      for (std::size_t c = 0; c < columns.size(); ++c)
        v[static_cast<std::size_t>(t) * columns.size() + c] =
            static_cast<float>(10.0 * c + level + std::sin(0.3 * t + phase + double(c)) + 0.05 * rng.normal());
    const int label = faulty_every > 0 && car % static_cast<std::size_t>(faulty_every) == 1 ? 1 : 0;
    d.add({"car" + std::to_string(car), static_cast<std::int64_t>(s % 5), label, 1000.0 + 37.0 * double(s), double(s)}, v);
  }
  return d;
}

// A one-layer model over toy_dataset's columns a (condition), b, c, d that trains in a moment.
inline ModelConfig tiny_config() {
  ModelConfig c;
  c.roles = {{"a", "b", "c", "d"}, 1};
  c.hidden = 4;
  c.latent = 2;
  c.layers = 1;
  c.epochs = 1;
  c.batch_size = 8;
  c.seed = 5;
  return c;
}

}  // namespace dyad::test
