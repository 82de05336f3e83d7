// dyad::Trainer and the training state: a run stopped at any step boundary and resumed from
// its state file ends in the bit-identical model; resuming with other data or settings is
// refused; const scoring from several threads; inputs far out of range; memory estimates.
#include "toy_data.hpp"

#include <dyad/dyad.hpp>

#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

using namespace dyad;
using dyad::test::toy_dataset;
namespace fs = std::filesystem;

namespace {

ModelConfig resume_config(int threads = 1) {
  ModelConfig c;
  c.roles = {{"a", "b", "c", "d"}, 1};
  c.hidden = 6;
  c.latent = 3;
  c.layers = 2;
  c.noise_scale = 0.5;
  c.label_weight = 0.3;
  c.epochs = 3;
  c.batch_size = 4;
  c.seed = 21;
  c.threads = threads;
  return c;
}

struct TempDir {
  fs::path path;
  TempDir() : path(fs::temp_directory_path() / ("dyad_trainer_" + std::to_string(::getpid()))) { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

bool same_bits(const Vector<float>& a, const Vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.size())) == 0;
}

}  // namespace

TEST_CASE("an interrupted run resumes to the bit-identical model, with 1 and 2 workers") {
  TempDir dir;
  const Dataset d = toy_dataset(24, resume_config().roles, 5, 8, 12, 3);  // ragged, some faulty cars
  for (const int threads : {1, 2}) {
    CAPTURE(threads);
    Model<float> whole(resume_config(threads));
    const FitReport full = whole.fit(d);
    const long b = full.steps / 3;  // batches per epoch (15 normal segments: 4, the last one short)
    REQUIRE(b == 4);
    const Scores expected = whole.score(d);

    // Stop after step k: mid-epoch, at an epoch's end, after the last step.
    for (const long stop_after : {2L, b, b + 1, 2 * b, 3 * b}) {
      CAPTURE(stop_after);
      const fs::path state = dir.path / "m.state";
      volatile std::sig_atomic_t stop = 0;
      FitOptions first;
      first.state_path = state;
      first.stop = &stop;
      Model<float> a(resume_config(threads));
      const FitReport r1 = a.fit(
          d,
          [&](const Progress& p) {
            if (p.step == stop_after) stop = 1;
          },
          first);
      CHECK(r1.interrupted);
      CHECK(r1.steps == stop_after);
      REQUIRE(fs::exists(state));

      // A fresh process: a model with different initial weights, the state file, the same data.
      Model<float> m2(resume_config(threads));
      m2.parameters().values().setConstant(0.5f);  // the weights must come from the state
      FitOptions second;
      second.resume = state;
      std::vector<long> steps_seen;
      const FitReport r2 = m2.fit(
          d,
          [&](const Progress& p) {
            if (!p.epoch_end) steps_seen.push_back(p.step);
          },
          second);
      CHECK(r2.resumed);
      CHECK_FALSE(r2.interrupted);
      CHECK(r2.steps == full.steps);
      CHECK(steps_seen.size() == static_cast<std::size_t>(full.steps - stop_after));
      if (!steps_seen.empty()) CHECK(steps_seen.front() == stop_after + 1);
      CHECK(same_bits(m2.parameters().values(), whole.parameters().values()));
      const Scores got = m2.score(d);  // the scorers fitted after training too
      CHECK(got.rec_error == expected.rec_error);
      CHECK(got.combined_score == expected.combined_score);
    }
  }
}

TEST_CASE("periodic training states: every N epochs, atomically, each one resumable") {
  TempDir dir;
  const Dataset d = toy_dataset(20, resume_config().roles, 8);
  Model<float> whole(resume_config());
  whole.fit(d);

  const fs::path state = dir.path / "m.state";
  FitOptions periodic;
  periodic.state_path = state;
  periodic.checkpoint_every = 1;
  Model<float> a(resume_config());
  const FitReport r = a.fit(d, {}, periodic);
  CHECK(r.states_written == 2);  // after epochs 1 and 2; the third ends the run
  CHECK(same_bits(a.parameters().values(), whole.parameters().values()));
  // The last state (after epoch 2) resumes to the same model.
  Model<float> b(resume_config());
  FitOptions resume;
  resume.resume = state;
  CHECK(b.fit(d, {}, resume).steps == r.steps);
  CHECK(same_bits(b.parameters().values(), whole.parameters().values()));
  for (const auto& e : fs::directory_iterator(dir.path))
    CHECK_MESSAGE(e.path().filename().string().find(".tmp-") == std::string::npos, "temporary left: ", e.path());
}

TEST_CASE("resuming with other data, another configuration or a damaged state is refused") {
  TempDir dir;
  const Dataset d = toy_dataset(20, resume_config().roles, 8);
  const fs::path state = dir.path / "m.state";
  volatile std::sig_atomic_t stop = 0;
  FitOptions first;
  first.state_path = state;
  first.stop = &stop;
  Model<float> a(resume_config());
  a.fit(
      d,
      [&](const Progress& p) {
        if (p.step == 2) stop = 1;
      },
      first);
  REQUIRE(fs::exists(state));

  auto resume_error = [&](Model<float>& m, const Dataset& data) {
    FitOptions o;
    o.resume = state;
    try {
      m.fit(data, {}, o);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  {
    Dataset other = toy_dataset(20, resume_config().roles, 8);
    other.raw_values()[5] += 0.25f;  // one value differs
    Model<float> m(resume_config());
    const std::string e = resume_error(m, other);
    CHECK(e.find("training data differs") != std::string::npos);
    CHECK(e.find("m.state") != std::string::npos);
  }
  {
    Model<float> m(resume_config());
    CHECK(resume_error(m, toy_dataset(25, resume_config().roles, 8)).find("20 normal segments then, 25 now") != std::string::npos);
  }
  {
    ModelConfig c = resume_config();
    c.lr = 0.01;
    c.epochs = 4;
    Model<float> m(c);
    const std::string e = resume_error(m, d);
    CHECK(e.find("configuration differs") != std::string::npos);
    CHECK(e.find("learning_rate") != std::string::npos);
    CHECK(e.find("epochs 3 then, 4 now") != std::string::npos);
  }
  {
    // One flipped bit in the saved weights.
    std::fstream f(state, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    const auto size = static_cast<std::streamoff>(f.tellg());
    f.seekg(size - 40);
    char c;
    f.read(&c, 1);
    c ^= 0x10;
    f.seekp(size - 40);
    f.write(&c, 1);
    f.close();
    Model<float> m(resume_config());
    const std::string e = resume_error(m, d);
    CHECK(e.find("m.state") != std::string::npos);
    CHECK(e.find("damaged") != std::string::npos);
  }
  {
    Model<float> m(resume_config());
    m.save(dir.path / "model.safetensors");  // a model, not a state
    FitOptions o;
    o.resume = dir.path / "model.safetensors";
    CHECK_THROWS_WITH_AS(m.fit(d, {}, o), doctest::Contains("not a dyad training state"), std::runtime_error);
  }
}

TEST_CASE("concurrent scoring from threads: a const model gives exactly the sequential scores") {
  for (const int model_threads : {1, 2}) {
    CAPTURE(model_threads);
    ModelConfig c = resume_config(model_threads);
    c.epochs = 1;
    const Dataset d = toy_dataset(30, c.roles, 4, 6, 11, 3);
    Model<float> trained(c);
    trained.fit(d);
    const Model<float>& m = trained;
    const Scores expected = m.score(d, 7);
    std::vector<Scores> got(4);
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < got.size(); ++i)
      threads.emplace_back([&, i] {
        for (int repeat = 0; repeat < 3; ++repeat) got[i] = m.score(d, 7);  // the batch size changes the last bits
      });
    for (auto& t : threads) t.join();
    for (const Scores& s : got) {
      CHECK(s.rec_error == expected.rec_error);
      CHECK(s.mu == expected.mu);
      CHECK(s.target_error == expected.target_error);
      CHECK(s.combined_score == expected.combined_score);
    }
  }
}

TEST_CASE("an input far outside the training range names the car, segment and column") {
  ModelConfig c = resume_config();
  c.epochs = 1;
  Dataset d = toy_dataset(10, c.roles, 4);
  Model<float> m(c);
  m.fit(d);
  // Segment 7 (car1, segment 2), step 3, column 'c' (index 3: toy data inserts 'ignored' at 1).
  const auto v = d.values(7);
  const std::size_t offset = static_cast<std::size_t>(v.data() - d.raw_values().data()) + 3 * d.num_columns() + 3;
  d.raw_values()[offset] = 3e38f;
  try {
    m.score(d);
    FAIL("a volt of 3e38 was scored");
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    CHECK(what.find("car 'car1' segment 2 column 'c' step 3") != std::string::npos);
    CHECK(what.find("far outside the model's training range") != std::string::npos);
  }
}

TEST_CASE("a run that cannot fit in memory is refused up front, naming the batch size") {
  // brand2's H = 1024 saves about 230 KB per segment and step; enough segments of 128 steps
  // to exceed this machine's memory in one batch.
  ModelConfig c = preset("brand2");
  const double per_segment = 2.0 * 128 * (14.0 * 1024 * 2 + 32) * sizeof(float);
  const auto n = static_cast<std::size_t>(static_cast<double>(physical_memory_bytes()) / per_segment) + 10;
  c.batch_size = 65536;  // the largest validate() accepts
  c.epochs = 1;
  Dataset d(c.roles.encoder);
  std::vector<float> v(128 * c.roles.encoder.size(), 1.0f);
  for (std::size_t i = 0; i < n; ++i) {
    v[i % v.size()] += 0.5f;
    d.add({"car" + std::to_string(i / 10), static_cast<std::int64_t>(i % 10), 0, 100.0 + double(i), 0}, v);
  }
  Model<float> m(c);
  CHECK_THROWS_WITH_AS(m.fit(d), doctest::Contains("lower the batch size (--batch-size, config key batch_size)"),
                       std::invalid_argument);
  // A batch larger than the data is the data: a small set trains with the largest batch_size.
  ModelConfig small = resume_config();
  small.batch_size = 65536;
  small.epochs = 1;
  Model<float> ok(small);
  CHECK(ok.fit(toy_dataset(10, small.roles, 4)).steps == 1);
}
