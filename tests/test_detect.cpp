#include <doctest/doctest.h>

#include "dyad/core/random.hpp"
#include "dyad/detect/car_score.hpp"
#include "dyad/detect/evaluation.hpp"
#include "dyad/detect/latent.hpp"
#include "dyad/detect/protocol.hpp"
#include "dyad/detect/roc.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <vector>

using namespace dyad::detect;

namespace {
// Pairwise definition of AUROC, O(n^2).
double brute_auroc(const std::vector<double>& s, const std::vector<int>& l) {
  double wins = 0, pairs = 0;
  for (std::size_t i = 0; i < s.size(); ++i)
    for (std::size_t j = 0; j < s.size(); ++j)
      if (l[i] == 1 && l[j] == 0) {
        pairs += 1;
        wins += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
      }
  return wins / pairs;
}
std::vector<std::string> ids(const char* prefix, int n) {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i) v.push_back(prefix + std::to_string(i));
  return v;
}
}  // namespace

TEST_CASE("top_count rounds h/1000*n with halves to even, at least one") {
  CHECK(top_count(10, 100) == 1);
  CHECK(top_count(10, 50) == 1);   // 0.5 -> 0 -> at least 1
  CHECK(top_count(10, 150) == 2);  // 1.5 -> 2
  CHECK(top_count(10, 250) == 2);  // 2.5 -> 2
  CHECK(top_count(10, 350) == 4);  // 3.5 -> 4
  CHECK(top_count(10, 260) == 3);  // 2.6 -> 3
  CHECK(top_count(3, 500) == 2);   // 1.5 -> 2
  CHECK(top_count(3, 950) == 3);   // 2.85 -> 3
  CHECK(top_count(1, 50) == 1);
  CHECK(top_count(1, 950) == 1);
  CHECK(top_count(7, 1000) == 7);
  CHECK_THROWS_AS(top_count(10, 1001), std::invalid_argument);
  CHECK_THROWS_AS(top_count(10, -1), std::invalid_argument);
}

TEST_CASE("robust and average car scores") {
  const std::vector<double> s{3, 9, 1, 7, 5, 2, 10, 4, 8, 6};
  CHECK(robust_score(s, 100) == 10.0);
  CHECK(robust_score(s, 150) == 9.5);
  CHECK(robust_score(s, 350) == doctest::Approx(8.5));  // 10, 9, 8, 7
  CHECK(robust_score(s, 1000) == doctest::Approx(5.5));
  CHECK(average_score(s) == doctest::Approx(5.5));
  CHECK(robust_score(std::vector<double>{2.5}, 50) == 2.5);
  CHECK(robust_score(std::vector<double>{1, 4}, 500) == 4.0);  // 1.0 -> 1
  CHECK_THROWS_AS(robust_score(std::vector<double>{}, 100), std::invalid_argument);
  CHECK_THROWS_AS(average_score(std::vector<double>{}), std::invalid_argument);
  CHECK_THROWS_AS(robust_score(std::vector<double>{1, std::nan("")}, 100), std::invalid_argument);
}

TEST_CASE("car_scores groups segments by car") {
  const std::vector<std::string> cars{"b", "a", "b", "c", "a", "b"};
  const std::vector<int> labels{1, 0, 1, 0, 0, 1};
  const std::vector<double> scores{1, 2, 5, 7, 4, 3};
  const auto r = car_scores(cars, labels, scores, 500);
  REQUIRE(r.size() == 3);
  CHECK(r[0].car == "a");
  CHECK(r[0].label == 0);
  CHECK(r[0].segments == 2);
  CHECK(r[0].score == 4.0);  // top round(1.0) = 1 of {2, 4}
  CHECK(r[1].car == "b");
  CHECK(r[1].label == 1);
  CHECK(r[1].segments == 3);
  CHECK(r[1].score == 4.0);  // top round(1.5) = 2 of {1, 5, 3}
  CHECK(r[2].car == "c");
  CHECK(r[2].score == 7.0);
  const auto avg = car_average_scores(cars, labels, scores);
  CHECK(avg[1].score == 3.0);
  CHECK(avg[0].score == 3.0);

  std::vector<double> bad = scores;
  bad[4] = std::nan("");
  try {
    car_scores(cars, labels, bad, 500);
    FAIL("NaN accepted");
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    CHECK(msg.find("segment 4") != std::string::npos);
    CHECK(msg.find("'a'") != std::string::npos);
  }
  CHECK_THROWS_AS(car_scores(cars, labels, std::vector<double>{1, 2}, 500), std::invalid_argument);
  CHECK_THROWS_AS(car_scores(cars, std::vector<int>{1, 0, 0, 0, 0, 1}, scores, 500), std::invalid_argument);
  CHECK_THROWS_AS(car_scores(cars, std::vector<int>{1, 0, 1, 2, 0, 1}, scores, 500), std::invalid_argument);
  CHECK_THROWS_AS(car_scores({}, {}, {}, 500), std::invalid_argument);
}

TEST_CASE("AUROC on known cases") {
  CHECK(auroc(std::vector<double>{1, 2, 3, 4}, std::vector<int>{0, 0, 1, 1}) == 1.0);
  CHECK(auroc(std::vector<double>{1, 2, 3, 4}, std::vector<int>{1, 1, 0, 0}) == 0.0);
  CHECK(auroc(std::vector<double>{2, 2, 2, 2, 2}, std::vector<int>{0, 1, 0, 1, 1}) == 0.5);
  // Normal {0.1, 0.4, 0.4}, faulty {0.4, 0.8}: 0.4 beats 0.1 and ties twice (2), 0.8 beats all (3).
  CHECK(auroc(std::vector<double>{0.4, 0.1, 0.8, 0.4, 0.4}, std::vector<int>{0, 0, 1, 1, 0}) == doctest::Approx(5.0 / 6.0));
  CHECK_THROWS_AS(auroc(std::vector<double>{1, 2}, std::vector<int>{0, 0}), std::invalid_argument);
  CHECK_THROWS_AS(auroc(std::vector<double>{1, 2}, std::vector<int>{0}), std::invalid_argument);
  CHECK_THROWS_AS(auroc(std::vector<double>{1, 2}, std::vector<int>{0, 2}), std::invalid_argument);
  CHECK_THROWS_AS(auroc(std::vector<double>{1, std::nan("")}, std::vector<int>{0, 1}), std::invalid_argument);
}

TEST_CASE("AUROC equals the pairwise definition; ROC curve is consistent with it") {
  dyad::Rng rng(7);
  for (int rep = 0; rep < 20; ++rep) {
    const std::size_t n = 5 + rng.below(200);
    std::vector<double> s(n);
    std::vector<int> l(n);
    for (std::size_t i = 0; i < n; ++i) {
      l[i] = rng.uniform() < 0.3 ? 1 : 0;
      s[i] = std::floor(rng.uniform() * 15.0) + 3.0 * l[i] * rng.uniform();  // many ties
    }
    l[0] = 0;
    l[1] = 1;
    CHECK(auroc(s, l) == doctest::Approx(brute_auroc(s, l)).epsilon(1e-12));

    const auto roc = roc_curve(s, l);
    CHECK(roc.front().fpr == 0.0);
    CHECK(roc.front().tpr == 0.0);
    CHECK(roc.back().fpr == 1.0);
    CHECK(roc.back().tpr == 1.0);
    CHECK(roc.back().threshold == -std::numeric_limits<double>::infinity());
    double area = 0;
    std::vector<double> normal, faulty;
    for (std::size_t i = 0; i < n; ++i) (l[i] ? faulty : normal).push_back(s[i]);
    for (std::size_t k = 0; k < roc.size(); ++k) {
      CHECK(roc[k].fpr == doctest::Approx(false_alarm_rate(normal, roc[k].threshold)));
      CHECK(roc[k].tpr == doctest::Approx(detection_rate(faulty, roc[k].threshold)));
      if (k == 0) continue;
      CHECK(roc[k].fpr >= roc[k - 1].fpr);
      CHECK(roc[k].tpr >= roc[k - 1].tpr);
      CHECK(roc[k].threshold < roc[k - 1].threshold);
      area += (roc[k].fpr - roc[k - 1].fpr) * 0.5 * (roc[k].tpr + roc[k - 1].tpr);
    }
    CHECK(area == doctest::Approx(auroc(s, l)).epsilon(1e-12));
  }
}

TEST_CASE("threshold for a false alarm rate") {
  const std::vector<double> normal{0.5, 0.1, 0.9, 0.3, 0.9, 0.7, 0.2, 0.8, 0.4, 0.6};
  CHECK(threshold_for_false_alarm(normal, 0.0) == 0.9);
  CHECK(threshold_for_false_alarm(normal, 0.1) == 0.9);  // one allowed, but 0.9 is tied
  CHECK(threshold_for_false_alarm(normal, 0.2) == 0.8);
  CHECK(threshold_for_false_alarm(normal, 0.25) == 0.8);
  CHECK(threshold_for_false_alarm(normal, 0.3) == 0.7);
  CHECK(threshold_for_false_alarm(normal, 1.0) == -std::numeric_limits<double>::infinity());
  CHECK(detection_rate(std::vector<double>{0.95, 0.85, 0.5}, 0.8) == doctest::Approx(2.0 / 3.0));
  CHECK_THROWS_AS(threshold_for_false_alarm(normal, 1.5), std::invalid_argument);
  CHECK_THROWS_AS(threshold_for_false_alarm(std::vector<double>{}, 0.1), std::invalid_argument);

  dyad::Rng rng(3);
  for (int rep = 0; rep < 50; ++rep) {
    std::vector<double> s(1 + rng.below(120));
    for (auto& v : s) v = std::floor(rng.uniform() * 30.0);
    for (double rate : {0.0, 0.01, 0.05, 0.1, 0.29, 0.5, 0.99}) {
      const double t = threshold_for_false_alarm(s, rate);
      CHECK(false_alarm_rate(s, t) <= rate);
      // Smallest: the next lower score (any lower threshold) exceeds the rate.
      double below = -std::numeric_limits<double>::infinity();
      for (double v : s)
        if (v < t) below = std::max(below, v);
      if (std::isfinite(t)) CHECK(false_alarm_rate(s, std::nextafter(t, below)) > rate);
    }
  }
}

TEST_CASE("fold split covers every car once and is deterministic") {
  const auto cars = ids("car", 23);
  const auto folds = split_folds(cars, 5, 42);
  REQUIRE(folds.size() == 5);
  std::multiset<std::string> seen;
  for (const auto& f : folds) {
    CHECK((f.size() == 4 || f.size() == 5));
    seen.insert(f.begin(), f.end());
  }
  CHECK(seen == std::multiset<std::string>(cars.begin(), cars.end()));
  CHECK(split_folds(cars, 5, 42) == folds);
  auto reversed = cars;
  std::reverse(reversed.begin(), reversed.end());
  CHECK(split_folds(reversed, 5, 42) == folds);  // independent of input order
  CHECK(split_folds(cars, 5, 43) != folds);
  CHECK_THROWS_AS(split_folds(cars, 1, 0), std::invalid_argument);
  CHECK_THROWS_AS(split_folds(cars, 24, 0), std::invalid_argument);
  CHECK_THROWS_AS(split_folds(std::vector<std::string>{"a", "a", "b"}, 2, 0), std::invalid_argument);

  const auto normal = ids("n", 23), faulty = ids("f", 7);
  const auto normal_folds = split_folds(normal, 5, 42);
  std::multiset<std::string> held_out;
  for (std::size_t k = 0; k < 5; ++k) {
    const FoldCars fc = fold_cars(normal, faulty, 5, k, 42);
    CHECK(fc.held_out_normal == normal_folds[k]);
    held_out.insert(fc.held_out_normal.begin(), fc.held_out_normal.end());
    std::set<std::string> n(fc.train_normal.begin(), fc.train_normal.end());
    CHECK(n.size() + fc.held_out_normal.size() == normal.size());
    n.insert(fc.held_out_normal.begin(), fc.held_out_normal.end());
    CHECK(n == std::set<std::string>(normal.begin(), normal.end()));
    CHECK(fc.validation_faulty.size() == 3);
    CHECK(fc.test_faulty.size() == 4);
    std::set<std::string> f(fc.validation_faulty.begin(), fc.validation_faulty.end());
    f.insert(fc.test_faulty.begin(), fc.test_faulty.end());
    CHECK(f == std::set<std::string>(faulty.begin(), faulty.end()));
    CHECK(fc.validation().size() == fc.train_normal.size() + 3);
    CHECK(fc.test().size() == fc.held_out_normal.size() + 4);
    CHECK(fold_cars(normal, faulty, 5, k, 42).test_faulty == fc.test_faulty);
  }
  CHECK(held_out == std::multiset<std::string>(normal.begin(), normal.end()));
  CHECK_THROWS_AS(fold_cars(normal, faulty, 5, 5, 42), std::invalid_argument);
  CHECK_THROWS_AS(fold_cars(normal, std::vector<std::string>{"f0"}, 5, 0, 42), std::invalid_argument);
  CHECK_THROWS_AS(fold_cars(normal, std::vector<std::string>{"f0", "n3"}, 5, 0, 42), std::invalid_argument);

  const std::vector<std::string> seg_cars{"a", "b", "a", "c"};
  CHECK(segments_of(seg_cars, std::vector<std::string>{"a", "c"}) == std::vector<std::size_t>{0, 2, 3});
}

TEST_CASE("choose_h picks the best AUROC, ties to the smallest h") {
  // 20 segments per car, so h = 50k averages the top k. Normal cars: one glitch (10) among
  // 1s; faulty cars: 8 charges at 5. k = 1, 2 rank the glitches first (AUROC 0); every k >= 3
  // separates perfectly, so the choice is h = 150.
  std::vector<std::string> cars;
  std::vector<int> labels;
  std::vector<double> scores;
  for (int c = 0; c < 6; ++c) {
    const bool faulty = c >= 4;
    for (int i = 0; i < 20; ++i) {
      cars.push_back("car" + std::to_string(c));
      labels.push_back(faulty ? 1 : 0);
      scores.push_back(faulty ? (i < 8 ? 5.0 + 0.01 * c : 1.0) : (i == 3 ? 10.0 - 0.1 * c : 1.0));
    }
  }
  const HChoice choice = choose_h(cars, labels, scores);
  CHECK(choice.h_per_mille == 150);
  CHECK(choice.auroc == 1.0);
  REQUIRE(choice.auroc_by_h.size() == kHGrid.size());
  CHECK(choice.auroc_by_h[0] == 0.0);
  CHECK(choice.auroc_by_h[1] == 0.0);
  for (std::size_t i = 0; i < kHGrid.size(); ++i)
    CHECK(choice.auroc_by_h[i] == car_auroc(car_scores(cars, labels, scores, kHGrid[i])));
  CHECK(choose_h(cars, labels, scores, std::vector<int>{900, 300}).h_per_mille == 300);
  CHECK_THROWS_AS(choose_h(cars, labels, scores, std::vector<int>{}), std::invalid_argument);
}

TEST_CASE("Mahalanobis latent score") {
  // Restored state: mean (1, 2), covariance [[4, 1], [1, 2]], inverse [[2, -1], [-1, 4]] / 7.
  const LatentScorer restored({1.0, 2.0}, {4.0, 1.0, 1.0, 2.0});
  Eigen::MatrixXd x(2, 2);
  x << 2.0, 0.0, 1.0, 2.0;
  const auto d = restored.score(x);
  CHECK(d[0] == doctest::Approx(std::sqrt(22.0 / 7.0)));  // delta (1, -2): (2 + 4 + 16) / 7
  CHECK(d[1] == doctest::Approx(0.0));

  // Fitted: points (+-1, 0), (0, +-2): mean 0, covariance diag(2/3, 8/3) (n - 1 = 3).
  Eigen::MatrixXd mu(4, 2);
  mu << 1, 0, -1, 0, 0, 2, 0, -2;
  const auto fitted = LatentScorer::fit(mu, 0.0);
  Eigen::MatrixXd p(1, 2);
  p << 1, 1;
  CHECK(fitted.score(p)[0] == doctest::Approx(std::sqrt(1.5 + 0.375)));
  const auto ridged = LatentScorer::fit(mu, 0.1);  // + 0.1 * (10/3) / 2 on the diagonal
  CHECK(ridged.covariance()[0] == doctest::Approx(2.0 / 3.0 + 1.0 / 6.0));
  CHECK(ridged.covariance()[3] == doctest::Approx(8.0 / 3.0 + 1.0 / 6.0));
  CHECK(ridged.covariance()[1] == 0.0);

  // Invariant to an invertible affine map of the latent space.
  dyad::Rng rng(11);
  Eigen::MatrixXd train(300, 3), test(20, 3), a(3, 3);
  for (Eigen::Index i = 0; i < train.size(); ++i) train.data()[i] = rng.normal();
  train.col(1) += 0.5 * train.col(0);
  for (Eigen::Index i = 0; i < test.size(); ++i) test.data()[i] = rng.normal(0.0, 2.0);
  a << 2, 1, 0, 0, 0.5, -1, 1, 0, 3;
  const Eigen::RowVector3d b(5, -3, 0.25);
  const auto map = [&](const Eigen::MatrixXd& m) { return Eigen::MatrixXd((m * a.transpose()).rowwise() + b); };
  const auto s1 = LatentScorer::fit(train, 0.0).score(test);
  const auto s2 = LatentScorer::fit(map(train), 0.0).score(map(test));
  for (std::size_t i = 0; i < s1.size(); ++i) CHECK(s2[i] == doctest::Approx(s1[i]).epsilon(1e-9));

  // Round trip through the plain-vector state.
  const auto sc = LatentScorer::fit(train);
  const LatentScorer back(sc.mean(), sc.covariance());
  CHECK(back.score(test) == sc.score(test));

  CHECK_THROWS_AS(sc.score(Eigen::MatrixXd::Zero(2, 4)), std::invalid_argument);
  CHECK_THROWS_AS(LatentScorer::fit(Eigen::MatrixXd::Zero(1, 3)), std::invalid_argument);
  CHECK_THROWS_AS(LatentScorer::fit(Eigen::MatrixXd::Zero(5, 3), 0.0), std::invalid_argument);  // singular
  Eigen::MatrixXd inf = train;
  inf(7, 1) = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH_AS(LatentScorer::fit(inf), doctest::Contains("row 7"), std::invalid_argument);
  CHECK_THROWS_AS(LatentScorer({1.0}, {1.0, 0.0}), std::invalid_argument);
  CHECK_THROWS_AS(LatentScorer().score(test), std::runtime_error);
}

TEST_CASE("z-score combiner") {
  const std::vector<double> a{1, 2, 3}, b{10, 20, 30};  // means 2, 20; stds 1, 10
  const auto c = ScoreCombiner::fit(a, b);
  CHECK(c.means() == std::vector<double>{2, 20});
  CHECK(c.stds()[0] == doctest::Approx(1.0));
  CHECK(c.stds()[1] == doctest::Approx(10.0));
  const auto out = c.combine(std::vector<double>{3, 4}, std::vector<double>{10, 40});
  CHECK(out[0] == doctest::Approx(0.0));  // (1 + -1) / 2
  CHECK(out[1] == doctest::Approx(2.0));  // (2 + 2) / 2
  const ScoreCombiner back(c.means(), c.stds());
  CHECK(back.combine(a, b) == c.combine(a, b));
  CHECK_THROWS_AS(c.combine(a, std::vector<double>{1}), std::invalid_argument);
  CHECK_THROWS_AS(ScoreCombiner::fit(std::vector<double>{1, 1}, b), std::invalid_argument);
  CHECK_THROWS_AS(ScoreCombiner({1.0}, {1.0}), std::invalid_argument);
  CHECK_THROWS_AS(ScoreCombiner({1.0, 2.0}, {1.0, 0.0}), std::invalid_argument);
}
