// Quick start: build a dataset in code, fit a DyAD model, score, save and load it again.
#include <dyad/dyad.hpp>

#include <cmath>
#include <iostream>

int main() {
  // Columns of the paper's `ev` task; each segment is T = 64 steps of a CC charge.
  const dyad::FeatureRoles roles = dyad::task_roles("ev");
  dyad::Dataset data(roles.encoder);
  dyad::Rng rng(42);
  std::vector<float> v;
  for (int car = 0; car < 12; ++car) {
    const bool faulty = car >= 10;  // two cars with a cell whose voltage pulls away
    for (int s = 0; s < 20; ++s) {
      const int T = 64;
      v.assign(T * roles.encoder.size(), 0.f);
      const double soc0 = rng.uniform(20, 50), amps = rng.uniform(40, 80);
      for (int t = 0; t < T; ++t) {
        const double soc = soc0 + amps * t * 10.0 / 3600.0 / 1.5, cell = 3.4 + 0.007 * soc + 0.0008 * amps;
        const double spread = faulty ? 0.02 + 0.001 * t : 0.01;
        float* row = &v[t * roles.encoder.size()];  // soc, current, max_temp, max_cell, min_cell, volt
        row[0] = float(soc), row[1] = float(amps + rng.normal(0, 0.3)), row[2] = float(25 + 0.02 * t + 0.0005 * amps * t);
        row[3] = float(cell + spread), row[4] = float(cell), row[5] = float(96 * cell + rng.normal(0, 0.1));
      }
      data.add({"car" + std::to_string(car), s, faulty ? 1 : 0, 1000.0 * car + 50.0 * s, 0.0}, v);
    }
  }

  dyad::ModelConfig config = dyad::preset("fivefold");  // H 64, Z 32, bidirectional
  config.epochs = 20;
  config.batch_size = 32;
  config.lr = 3e-3;
  dyad::Model<float, 64, 32> model(config);
  const auto report = model.fit(data, [](const dyad::Progress& p) {
    if (p.epoch_end && (p.epoch + 1) % 5 == 0) std::cout << "epoch " << p.epoch + 1 << "  loss " << p.loss << "\n";
  });
  std::cout << "trained on " << report.segments << " segments, left out " << report.faulty_excluded << " faulty ones\n";

  const dyad::Scores scores = model.score(data);
  std::vector<std::string> cars;
  std::vector<int> labels;
  for (std::size_t i = 0; i < data.size(); ++i) cars.push_back(data.meta(i).car), labels.push_back(data.meta(i).label);
  const auto ranking = dyad::detect::car_scores(cars, labels, {scores.rec_error.data(), scores.size()}, 100);
  for (const auto& c : ranking) std::cout << c.car << (c.label ? " (faulty)" : "") << "  score " << c.score << "\n";

  model.save("quickstart.safetensors");
  auto again = dyad::Model<float, 64, 32>::load("quickstart.safetensors");
  std::cout << "reloaded model scores identically: " << std::boolalpha << (again.score(data).rec_error == scores.rec_error) << "\n";
}
