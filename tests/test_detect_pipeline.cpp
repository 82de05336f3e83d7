// The detection protocol's library side: score names and columns (detect/scores.hpp), the car
// ranking, worst segment and AUROC text (detect/ranking.hpp), and cross-validation
// (cross_validation.hpp), which the CLI only prints.
#include "toy_data.hpp"

#include <dyad/cross_validation.hpp>
#include <dyad/detect/ranking.hpp>
#include <dyad/detect/scores.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace dyad;

TEST_CASE("car_ranking: highest first, ties in car-id order, NaN last") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<detect::CarScore> cars = {{"a", 0, 1, 0.5}, {"b", 0, 1, nan}, {"c", 1, 1, 0.9}, {"d", 0, 1, 0.5}};
  CHECK(detect::car_ranking(cars) == std::vector<std::size_t>{2, 0, 3, 1});
  CHECK(detect::car_ranking(std::vector<detect::CarScore>{}).empty());
}

TEST_CASE("worst_segment: the car's highest-scoring segment, the first of equals") {
  const std::vector<std::string> cars = {"a", "b", "a", "a", "b"};
  const std::vector<double> scores = {0.1, 5.0, 0.7, 0.7, 0.2};
  CHECK(detect::worst_segment(cars, scores, "a") == 2);
  CHECK(detect::worst_segment(cars, scores, "b") == 1);
  CHECK_THROWS_WITH_AS(detect::worst_segment(cars, scores, "z"), doctest::Contains("no segment of car 'z'"), std::invalid_argument);
  CHECK_THROWS_AS(detect::worst_segment(cars, std::vector<double>{1.0}, "a"), std::invalid_argument);
}

TEST_CASE("auroc_text: three decimals, n/a when undefined") {
  CHECK(detect::auroc_text(0.87651) == "0.877");
  CHECK(detect::auroc_text(1.0) == "1.000");
  CHECK(detect::auroc_text(std::numeric_limits<double>::quiet_NaN()) == "n/a");
}

TEST_CASE("score_columns: the scores present, weakest to strongest, from Scores and from a ScoreTable") {
  Scores s;
  s.rec_error = Eigen::VectorXd::LinSpaced(4, 1, 4);
  s.targets = {"volt"};
  s.target_error = Eigen::MatrixXd::Constant(4, 1, 9);
  const std::vector<std::size_t> rows = {3, 1};
  auto cols = detect::score_columns(s, rows);  // no latent scorers: rec_error only
  REQUIRE(cols.size() == 1);
  CHECK(cols[0].first == "rec_error");
  CHECK(cols[0].second == std::vector<double>{4, 2});
  s.latent_score = Eigen::VectorXd::Constant(4, 0.5);
  s.pattern_score = Eigen::VectorXd::Constant(4, 0.25);
  s.combined_score = Eigen::VectorXd::LinSpaced(4, 10, 40);
  cols = detect::score_columns(s, rows);
  REQUIRE(cols.size() == 4);
  for (std::size_t k = 0; k < 4; ++k) CHECK(cols[k].first == detect::score_names[k]);
  CHECK(cols.back().second == std::vector<double>{40, 20});  // the strongest comes last

  Dataset d({"volt"});
  const std::vector<float> v = {1.f};
  for (int i = 0; i < 4; ++i) d.add({"car" + std::to_string(i % 2), i, i % 2, 0.0, 0.0}, v);
  const ScoreTable t = to_score_table(d, s);
  CHECK(t.column("volt_error") == std::vector<double>(4, 9.0));
  const auto from_table = detect::score_columns(t);
  REQUIRE(from_table.size() == 4);
  CHECK(from_table.back().first == "combined_score");
  CHECK(from_table.back().second == std::vector<double>{10, 20, 30, 40});
}

TEST_CASE("cross_validate: the paper's protocol, each fold reported as it ends") {
  ModelConfig c;
  c.hidden = 8;
  c.latent = 2;
  c.epochs = 1;
  c.batch_size = 16;
  // 60 segments, 5 per car: 12 cars, every third one faulty (cars 1, 4, 7, 10).
  const Dataset d = test::toy_dataset(60, c.roles, 3, 10, 14, 3);
  const detect::FleetCars cars = detect::fleet_cars(d);
  CHECK(cars.faulty.size() == 4);
  CHECK(cars.normal.size() == 8);
  CHECK(cars.per_segment.size() == d.size());

  detect::CvOptions o;
  o.folds = 3;
  o.seed = 5;
  std::vector<std::size_t> progress_for, done;
  o.progress = [&](std::size_t fold) -> ProgressCallback {
    progress_for.push_back(fold);
    return {};
  };
  o.fold_done = [&](const detect::CvFold& f) { done.push_back(f.fold); };
  const detect::CvResult r = detect::cross_validate(d, c, o, "toy.csv");
  CHECK(progress_for == std::vector<std::size_t>{1, 2, 3});
  CHECK(done == std::vector<std::size_t>{1, 2, 3});
  REQUIRE(r.folds.size() == 3);
  std::vector<double> sum(r.mean.size(), 0.0);
  for (const auto& f : r.folds) {
    CHECK(f.train_cars + f.test_cars <= cars.normal.size() + cars.faulty.size());
    CHECK(f.h_per_mille >= 50);
    CHECK(f.h_per_mille <= 950);
    REQUIRE(f.auroc.size() == r.mean.size());
    for (std::size_t k = 0; k < f.auroc.size(); ++k) {
      CHECK(f.auroc[k].first == detect::score_names[k]);
      CHECK(f.auroc[k].second >= 0.0);
      CHECK(f.auroc[k].second <= 1.0);
      sum[k] += f.auroc[k].second;
    }
  }
  for (std::size_t k = 0; k < r.mean.size(); ++k) CHECK(r.mean[k].second == doctest::Approx(sum[k] / 3));
  // Too few cars for the folds: an error naming the data.
  o.folds = 9;
  CHECK_THROWS_WITH_AS(detect::cross_validate(d, c, o, "toy.csv"),
                       doctest::Contains("toy.csv: the protocol needs at least 9 normal cars and 2 faulty cars; found 8 and 4"),
                       std::invalid_argument);
}
