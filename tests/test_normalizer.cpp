#include "dyad/data/csv.hpp"
#include "dyad/data/normalizer.hpp"
#include "dyad/io/safetensors.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#ifndef DYAD_FIXTURES
#define DYAD_FIXTURES "tests/fixtures"
#endif

namespace {

// Two segments, three columns, small enough to do by hand:
//   a: [1, 2, 3] and [10, 14]   b: [0, 0, 0] and [5, 5]   c: constant 7
dyad::Dataset hand_example() {
  dyad::Dataset d({"a", "b", "c"});
  d.add({"car1", 0}, std::vector<float>{1, 0, 7, 2, 0, 7, 3, 0, 7});
  d.add({"car1", 1}, std::vector<float>{10, 5, 7, 14, 5, 7});
  return d;
}

}  // namespace

TEST_CASE("normalizer: matches the hand computation of dyad-method section 2") {
  const auto d = hand_example();
  const auto n = dyad::Normalizer::fit(d);
  CHECK(n.columns() == d.columns());
  // a: mean (2 + 12) / 2 = 7; std (sqrt(2/3) + 2) / 2 (population std, not sample std);
  //    range 13 -> 1.3 < std, so std is the scale.
  CHECK(n.mean()[0] == doctest::Approx(7.0).epsilon(1e-15));
  CHECK(n.scale()[0] == doctest::Approx((std::sqrt(2.0 / 3.0) + 2.0) / 2.0).epsilon(1e-15));
  // b: mean (0 + 5) / 2 = 2.5; every segment is flat (std 0), range 5 -> scale 0.5.
  CHECK(n.mean()[1] == 2.5);
  CHECK(n.scale()[1] == doctest::Approx(0.5).epsilon(1e-15));
  // c: constant -> the 1e-4 floor.
  CHECK(n.mean()[2] == 7.0);
  CHECK(n.scale()[2] == 1e-4);

  CHECK(n.transform(7.0, 0) == 0.0);
  CHECK(n.transform(5.0, "b") == doctest::Approx(5.0));
  CHECK(n.inverse(n.transform(3.25, "a"), "a") == doctest::Approx(3.25).epsilon(1e-15));

  auto applied = d;
  n.apply(applied);
  CHECK(applied.values(0)(0, 0) == static_cast<float>((1.0 - 7.0) / n.scale()[0]));
  CHECK(applied.values(1)(1, 1) == 5.0f);
  CHECK(applied.values(1)(1, 2) == 0.0f);

  // Only the first segment: a mean 2, std sqrt(2/3), range 2 -> 0.2 < std.
  const auto first = dyad::Normalizer::fit(d, std::vector<std::size_t>{0});
  CHECK(first.mean()[0] == 2.0);
  CHECK(first.scale()[0] == doctest::Approx(std::sqrt(2.0 / 3.0)).epsilon(1e-15));
}

TEST_CASE("normalizer: column subsets, restored state, errors") {
  auto d = hand_example();
  const auto only_c_a = dyad::Normalizer::fit(d, std::vector<std::string>{"c", "a"});
  CHECK(only_c_a.columns() == std::vector<std::string>{"c", "a"});
  CHECK(only_c_a.mean() == std::vector<double>{7.0, 7.0});
  only_c_a.apply(d);
  CHECK(d.values(1)(0, 1) == 5.0f);  // b untouched
  CHECK(d.values(1)(0, 0) == static_cast<float>(3.0 / only_c_a.scale()[1]));

  // A checkpoint restores the same transform, applied by name to a dataset with another column order.
  const dyad::Normalizer restored(only_c_a.columns(), only_c_a.mean(), only_c_a.scale());
  dyad::Dataset other({"x", "a", "c"});
  other.add({"car9", 3}, std::vector<float>{1, 10, 8});
  restored.apply(other);
  CHECK(other.values(0)(0, 0) == 1.0f);
  CHECK(other.values(0)(0, 1) == static_cast<float>(3.0 / only_c_a.scale()[1]));
  CHECK(other.values(0)(0, 2) == static_cast<float>(1.0 / 1e-4));

  dyad::Dataset without_c({"a"});
  CHECK_THROWS_WITH_AS(restored.apply(without_c), "dyad: no column 'c' in the data (columns: a)", std::invalid_argument);
  CHECK_THROWS_WITH_AS(dyad::Normalizer({"a"}, {0.0}, {0.0}),
                       "dyad::Normalizer: column 'a' has mean 0 and scale 0 (need finite, scale > 0 and not subnormal)",
                       std::invalid_argument);
  // A subnormal scale would make every normalised value infinite.
  CHECK_THROWS_WITH_AS(dyad::Normalizer({"a"}, {0.0}, {1e-320}), doctest::Contains("scale 1e-320 (need finite, scale > 0"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(dyad::MinMax(0.0, 1e-320), doctest::Contains("not a usable scale"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(dyad::MinMax(-1e308, 1e308), doctest::Contains("not a usable scale"), std::invalid_argument);
  CHECK_NOTHROW(dyad::MinMax(5.0, 5.0));
  CHECK_THROWS_AS(dyad::Normalizer({"a", "b"}, {0.0}, {1.0}), std::invalid_argument);
  CHECK_THROWS_WITH_AS(dyad::Normalizer({"a", "a"}, {0.0, 0.0}, {1.0, 1.0}), "dyad::Normalizer: column 'a' appears twice",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(restored.transform(1.0, "volt"), "dyad::Normalizer: column 'volt' was not fitted", std::invalid_argument);
  const auto e = hand_example();
  CHECK_THROWS_AS(dyad::Normalizer::fit(e, std::vector<std::size_t>{}), std::invalid_argument);
  CHECK_THROWS_AS(dyad::Normalizer::fit(e, std::vector<std::size_t>{2}), std::out_of_range);
  dyad::Dataset with_nan({"v"});
  with_nan.add({"c", 0}, std::vector<float>{1, std::nanf("")});
  CHECK_THROWS_WITH_AS(dyad::Normalizer::fit(with_nan), "dyad::Normalizer::fit: column 'v' holds NaN or infinite values",
                       std::invalid_argument);
}

TEST_CASE("minmax: mileage scaling with the max == min guard") {
  dyad::Dataset d({"v"});
  for (double m : {1000.0, 3000.0, std::nan(""), 2000.0}) {
    dyad::SegmentMeta meta{"c", 0};
    meta.mileage = m;
    d.add(meta, std::vector<float>{0});
  }
  const auto mm = dyad::MinMax::fit_mileage(d);  // missing mileage skipped
  CHECK(mm.min() == 1000.0);
  CHECK(mm.max() == 3000.0);
  CHECK(mm.transform(2000.0) == 0.5);
  CHECK(mm.inverse(0.25) == 1500.0);
  const auto sub = dyad::MinMax::fit_mileage(d, std::vector<std::size_t>{3, 0});
  CHECK(sub.transform(3000.0) == 2.0);  // unseen values may leave [0, 1]
  const auto flat = dyad::MinMax::fit_mileage(d, std::vector<std::size_t>{1});
  CHECK(flat.range() == 1.0);
  CHECK(flat.transform(3001.0) == 1.0);
  CHECK_THROWS_AS(dyad::MinMax::fit_mileage(d, std::vector<std::size_t>{2}), std::invalid_argument);
  CHECK_THROWS_AS(dyad::MinMax(2.0, 1.0), std::invalid_argument);
}

TEST_CASE("normalizer: agrees with numpy on the fixture (CSV -> Dataset -> fit -> apply)") {
  const auto expected = dyad::load_safetensors(DYAD_FIXTURES "/io_small_expected.safetensors");
  auto d = dyad::read_csv(DYAD_FIXTURES "/io_small.csv");
  CHECK(expected.metadata.at("columns") == "volt,current,soc,flat");
  REQUIRE(d.columns() == std::vector<std::string>{"volt", "current", "soc", "flat"});
  REQUIRE(d.size() == 6);
  CHECK(d.meta(2).label == 1);
  CHECK(d.meta(4).car == "car1");

  const auto n = dyad::Normalizer::fit(d);
  const auto mean = expected.get<double>("mean", {4}), scale = expected.get<double>("scale", {4});
  for (std::size_t c = 0; c < 4; ++c) {
    CAPTURE(c);
    CHECK(n.mean()[c] == doctest::Approx(mean[c]).epsilon(1e-13));
    CHECK(n.scale()[c] == doctest::Approx(scale[c]).epsilon(1e-13));
  }
  CHECK(n.scale()[3] == 1e-4);

  const auto idx = expected.get<std::int64_t>("subset_indices");
  const std::vector<std::size_t> subset(idx.begin(), idx.end());
  const auto s = dyad::Normalizer::fit(d, subset, std::vector<std::string>{"current", "volt"});
  const auto sub_mean = expected.get<double>("subset_mean", {2}), sub_scale = expected.get<double>("subset_scale", {2});
  for (std::size_t c = 0; c < 2; ++c) {
    CHECK(s.mean()[c] == doctest::Approx(sub_mean[c]).epsilon(1e-13));
    CHECK(s.scale()[c] == doctest::Approx(sub_scale[c]).epsilon(1e-13));
  }

  n.apply(d);
  const auto normalised = expected.get<float>("normalised", {31, 4});
  const auto got = d.raw_values();
  REQUIRE(got.size() == normalised.size());
  std::size_t far = 0;  // float results may differ by one rounding of the double value
  for (std::size_t i = 0; i < got.size(); ++i) far += std::abs(got[i] - normalised[i]) > 1e-6f * (1.0f + std::abs(normalised[i]));
  CHECK(far == 0);

  const auto mm = expected.get<double>("mileage_minmax", {2});
  const auto m = dyad::MinMax::fit_mileage(d);
  CHECK(m.min() == mm[0]);
  CHECK(m.max() == mm[1]);

  CHECK(expected.get<double>("half") == expected.get<double>("half_as_f64"));  // F16 decoding matches numpy
}
