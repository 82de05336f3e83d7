// Inputs checked against the training data (dyad/data/drift.hpp): a flipped sign, units off by
// 100 or 1000 and a constant column are found and named; data like the training data, a small
// batch, one absurd value and a centred signal are not judged.
#include <dyad/data/drift.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

using namespace dyad;

namespace {

// `cars` segments of 50 steps of volt (around 380), current (around 40) and temp (around 0.5,
// centred: its mean is within 3 scales of zero), each transformed by `f` before it is stored.
template <class F>
Dataset fleet(std::size_t cars, F f) {
  Dataset d(std::vector<std::string>{"volt", "current", "temp"});
  for (std::size_t c = 0; c < cars; ++c) {
    std::vector<float> v;
    for (int t = 0; t < 50; ++t) {
      float row[3] = {380.f + static_cast<float>((t * 7 + c) % 11), 40.f + static_cast<float>((t * 3 + c) % 5),
                      0.5f + 0.3f * static_cast<float>(std::sin(t + static_cast<int>(c)))};
      f(row, t);
      v.insert(v.end(), row, row + 3);
    }
    d.add({"car" + std::to_string(c), 0, 0, 1.0, static_cast<double>(c)}, v);
  }
  return d;
}

const std::vector<std::string> kColumns{"volt", "current", "temp"};
const std::vector<std::size_t> kCols{0, 1, 2};
const Normalizer kNorm(kColumns, {385, 42, 0.5}, {4, 2, 0.3});

}  // namespace

TEST_CASE("input_drift: a flipped sign, units off by 1000 or 100 and a constant column are named with the fix") {
  CHECK(input_drift(fleet(10, [](float*, int) {}), kCols, kNorm).empty());

  auto flipped = input_drift(fleet(10, [](float* r, int) { r[1] = -r[1]; }), kCols, kNorm);
  REQUIRE(flipped.size() == 1);
  CHECK(flipped[0].column == "current");
  CHECK(flipped[0].problem == "sign flipped");
  CHECK(flipped[0].fix.find("charging_current") != std::string::npos);
  CHECK(drift_text(flipped[0]).find("training mean 42") != std::string::npos);

  auto milli = input_drift(fleet(10, [](float* r, int) { r[0] *= 1000; }), kCols, kNorm);
  REQUIRE(milli.size() == 1);
  CHECK(milli[0].problem == "units x1000");
  CHECK(milli[0].fix.find("\"scale\": {\"volt\": 0.001}") != std::string::npos);
  auto fraction = input_drift(fleet(10, [](float* r, int) { r[0] /= 100; }), kCols, kNorm);
  REQUIRE(fraction.size() == 1);
  CHECK(fraction[0].problem == "units /100");
  CHECK(fraction[0].fix.find("\"scale\": {\"volt\": 100}") != std::string::npos);

  auto stuck = input_drift(fleet(50, [](float* r, int) { r[0] = 12; }), kCols, kNorm);
  REQUIRE(stuck.size() == 1);
  CHECK(stuck[0].problem == "constant");
  CHECK(stuck[0].seen == "every value 12");
}

TEST_CASE("input_drift: what it does not judge") {
  // A centred signal's sign or ratio says nothing.
  CHECK(input_drift(fleet(10, [](float* r, int) { r[2] = -r[2] * 100; }), kCols, kNorm).empty());
  // One absurd value (a glitch) does not move the median.
  CHECK(input_drift(fleet(10,
                          [](float* r, int t) {
                            if (t == 3) r[0] = 1e9f;
                          }),
                    kCols, kNorm)
            .empty());
  // Too few values, or too few segments to call a column constant (a week of integer
  // temperatures can be).
  CHECK(input_drift(fleet(1, [](float* r, int) { r[1] = -r[1]; }), kCols, kNorm).empty());
  CHECK(input_drift(fleet(49, [](float* r, int) { r[0] = 12; }), kCols, kNorm).empty());
  // An identity normaliser knows nothing of the training data.
  CHECK(input_drift(fleet(10, [](float* r, int) { r[1] = -r[1]; }), kCols, Normalizer::identity(kColumns)).empty());
  // A trickle charge (a hundredth of the training current) is no unit error.
  CHECK(input_drift(fleet(10, [](float* r, int) { r[1] /= 100; }), kCols, kNorm).empty());
  // A shift that is no unit factor is left to the model (a faulty fleet runs hotter).
  CHECK(input_drift(fleet(10, [](float* r, int) { r[1] *= 3; }), kCols, kNorm).empty());
}
