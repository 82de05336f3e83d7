// Calibrated verdicts (dyad/detect/calibration.hpp): conformal p-values, statuses, the
// per-signal explanation, the cost-based operating point and the checkpoint JSON.
#include <dyad/core/random.hpp>
#include <dyad/detect/calibration.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace dyad;
using namespace dyad::detect;

namespace {

// A score table with one segment per car: car i scores scores[i], with per-signal errors.
ScoreTable one_segment_cars(const std::vector<double>& scores, const std::vector<int>& labels,
                            const std::vector<std::vector<double>>& signal_errors = {}) {
  ScoreTable t;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    t.cars.push_back("car" + std::to_string(100 + i));
    t.segments.push_back(0);
    t.labels.push_back(labels[i]);
    t.columns["rec_error"].push_back(scores[i]);
    t.columns["volt_error"].push_back(signal_errors.empty() ? 1.0 : signal_errors[i][0]);
    t.columns["max_temp_error"].push_back(signal_errors.empty() ? 1.0 : signal_errors[i][1]);
  }
  return t;
}
const std::vector<std::string> kSignals = {"volt", "max_temp"};

}  // namespace

TEST_CASE("calibration: the conformal p-value counts the healthy cars scoring at least as high") {
  const auto c = Calibration::fit(one_segment_cars({1, 2, 3, 4}, {0, 0, 0, 0}), kSignals, 100);
  CHECK(c.size() == 4);
  CHECK(c.finest_rate() == doctest::Approx(0.2));
  CHECK(c.p_value("rec_error", 5.0) == doctest::Approx(1.0 / 5));
  CHECK(c.p_value("rec_error", 4.0) == doctest::Approx(2.0 / 5));  // a tie counts as at least as high
  CHECK(c.p_value("rec_error", 2.5) == doctest::Approx(3.0 / 5));
  CHECK(c.p_value("rec_error", 0.0) == doctest::Approx(1.0));
  CHECK_THROWS_WITH_AS(c.p_value("rec_error", std::nan("")), doctest::Contains("car score is NaN"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(c.p_value("combined_score", 1.0), doctest::Contains("no calibration for 'combined_score'"),
                       std::invalid_argument);
  CHECK(c.kind() == "rec_error");
}

TEST_CASE("calibration: healthy cars are alarmed at the asked rate (exchangeable scores)") {
  // n = 99 calibration cars: p <= 0.05 exactly when at most 4 of them score as high, which a
  // healthy car from the same distribution does with probability 5/100.
  Rng rng(7);
  std::size_t alarms = 0, watches = 0, total = 0;
  const AlarmPolicy policy{0.05, 0.2};
  for (int round = 0; round < 200; ++round) {
    std::vector<double> s(99);
    for (double& x : s) x = rng.normal();
    const auto c = Calibration::fit(one_segment_cars(s, std::vector<int>(s.size(), 0)), kSignals, 100);
    for (int i = 0; i < 100; ++i) {
      const Status st = policy.status(c.p_value("rec_error", rng.normal()));
      alarms += st == Status::alarm;
      watches += st == Status::watch;
      ++total;
    }
  }
  const double alarm_rate = double(alarms) / double(total), watch_rate = double(watches + alarms) / double(total);
  // 20000 draws: the standard error of the rate is about 0.005 (calibration draws add some).
  CHECK(alarm_rate == doctest::Approx(0.05).epsilon(0.3));
  CHECK(watch_rate == doctest::Approx(0.20).epsilon(0.15));
}

TEST_CASE("calibration: car scores are robust scores; faulty cars are kept apart; the signal medians") {
  ScoreTable t;
  auto seg = [&](const std::string& car, int label, double score, double volt, double temp) {
    t.cars.push_back(car);
    t.segments.push_back(static_cast<std::int64_t>(t.cars.size()));
    t.labels.push_back(label);
    t.columns["rec_error"].push_back(score);
    t.columns["combined_score"].push_back(-score);
    t.columns["volt_error"].push_back(volt);
    t.columns["max_temp_error"].push_back(temp);
  };
  // h = 500: a 4-segment car averages its top 2.
  for (double x : {1.0, 2.0, 3.0, 4.0}) seg("a", 0, x, x, 10 * x);
  for (double x : {5.0, 1.0, 1.0, 1.0}) seg("b", 0, x, 2 * x, x);
  for (double x : {9.0, 9.0, 1.0, 1.0}) seg("c", 1, x, x, x);
  const auto c = Calibration::fit(t, kSignals, 500);
  CHECK(c.cars() == std::vector<std::string>{"a", "b"});
  CHECK(c.faulty_cars() == std::vector<std::string>{"c"});
  CHECK(c.healthy_scores("rec_error") == std::vector<double>{3.5, 3.0});
  CHECK(c.faulty_scores("rec_error") == std::vector<double>{9.0});
  CHECK(c.healthy_scores("combined_score") == std::vector<double>{-1.5, -1.0});
  CHECK(c.kind() == "combined_score");  // the strongest score it holds
  // volt: a -> (4+3)/2 = 3.5, b -> (10+2)/2 = 6; median 4.75. max_temp: a -> 35, b -> 3; median 19.
  CHECK(c.signal_median("volt") == doctest::Approx(4.75));
  CHECK(c.signal_median("max_temp") == doctest::Approx(19));
  const double car_errors[] = {9.5, 19.0};
  const auto why = c.explain(car_errors);
  REQUIRE(why.size() == 2);
  CHECK(why[0].name == "volt");
  CHECK(why[0].ratio == doctest::Approx(2.0));
  CHECK(why[1].name == "max_temp");
  CHECK(why[1].ratio == doctest::Approx(1.0));

  ScoreTable healthy_free = t;
  for (int& l : healthy_free.labels) l = 1;
  CHECK_THROWS_WITH_AS(Calibration::fit(healthy_free, kSignals, 100), doctest::Contains("no healthy car"), std::invalid_argument);
  const std::vector<std::string> unknown = {"soc"};
  CHECK_THROWS_WITH_AS(Calibration::fit(t, unknown, 100), doctest::Contains("no column 'soc_error'"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(Calibration::fit(t, kSignals, 1001), doctest::Contains("h must be in [0, 1000]"), std::invalid_argument);
}

TEST_CASE("calibration: verdicts give each car its p-value, status and most abnormal signal") {
  // Ten healthy calibration cars scoring 1..10.
  std::vector<double> s;
  for (int i = 1; i <= 10; ++i) s.push_back(i);
  const auto c = Calibration::fit(one_segment_cars(s, std::vector<int>(10, 0)), kSignals, 100);
  // New cars: above all (p = 1/11), above 9 of them (p = 2/11), in the middle, below all.
  const auto t = one_segment_cars({11, 9.5, 5, 0}, {1, 0, 0, 0}, {{1, 4}, {3, 1}, {1, 1}, {1, 1}});
  const AlarmPolicy policy{0.1, 0.3};
  const auto v = c.verdicts(t, policy);
  REQUIRE(v.size() == 4);
  CHECK(v[0].car == "car100");
  CHECK(v[0].label == 1);
  CHECK(v[0].segments == 1);
  CHECK(v[0].score == 11);
  CHECK(v[0].p_value == doctest::Approx(1.0 / 11));
  CHECK(v[0].status == Status::alarm);
  CHECK(v[0].signals[0].name == "max_temp");
  CHECK(v[0].signals[0].ratio == doctest::Approx(4.0));
  CHECK(v[1].p_value == doctest::Approx(2.0 / 11));
  CHECK(v[1].status == Status::watch);
  CHECK(v[1].signals[0].name == "volt");
  CHECK(v[2].status == Status::ok);
  CHECK(v[3].p_value == doctest::Approx(1.0));
  CHECK(std::string(status_name(v[0].status)) == "alarm");
  CHECK(signal_hint("min_single_volt").find("internal short") != std::string_view::npos);
  CHECK(signal_hint("max_temp") == "cooling or thermal");

  CHECK_THROWS_WITH_AS((AlarmPolicy{0.0, 0.1}.validate()), doctest::Contains("alarm rate must be in (0, 1)"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS((AlarmPolicy{0.1, 0.05}.validate()), doctest::Contains("watch rate must be in [alarm rate, 1)"),
                       std::invalid_argument);
  CHECK_THROWS_AS(c.verdicts(t, AlarmPolicy{0.1, 0.05}), std::invalid_argument);
}

TEST_CASE("calibration: the cost-based operating point minimises misses and inspections") {
  // Healthy cars 1..9, faulty cars 8.5 and 20: p(20) = 1/10, p(9) = p(8.5) = 2/10. Alarming at
  // 0.1 flags the 20 (1 inspection, 1 miss), at 0.2 also the 9 and the 8.5 (3 inspections).
  std::vector<double> s;
  std::vector<int> labels;
  for (int i = 1; i <= 9; ++i) s.push_back(i), labels.push_back(0);
  s.push_back(8.5), labels.push_back(1);
  s.push_back(20), labels.push_back(1);
  const auto c = Calibration::fit(one_segment_cars(s, labels), kSignals, 100);
  // Cheap inspections: catch both faulty cars (flag 20, 9, 8.5: 3 inspections, no miss).
  CHECK(c.cost_alarm_rate("rec_error", 100, 1) == doctest::Approx(0.2));
  // A miss costs 1.5 inspections: flag only the sure one (cost 2.5, against 3 for either extreme).
  CHECK(c.cost_alarm_rate("rec_error", 1.5, 1) == doctest::Approx(0.1));
  // Inspections dearer than misses: alarm nothing.
  CHECK(c.cost_alarm_rate("rec_error", 1, 10) == 0.0);
  const auto healthy_only = Calibration::fit(one_segment_cars({1, 2, 3}, {0, 0, 0}), kSignals, 100);
  CHECK_THROWS_WITH_AS(healthy_only.cost_alarm_rate("rec_error", 10, 1), doctest::Contains("needs faulty cars"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(c.cost_alarm_rate("rec_error", 0, 0), doctest::Contains("not both 0"), std::invalid_argument);
}

TEST_CASE("calibration: the JSON round trip, and errors that name the key") {
  const auto c = Calibration::fit(one_segment_cars({1, 2, 3, 7}, {0, 0, 0, 1}, {{1, 2}, {3, 4}, {5, 6}, {7, 8}}), kSignals, 250);
  const auto back = Calibration::from_json(nlohmann::json::parse(c.to_json().dump()), "m.safetensors (dyad.calibration)");
  CHECK(back.to_json() == c.to_json());
  CHECK(back.h_per_mille() == 250);
  CHECK(back.p_value("rec_error", 2.0) == c.p_value("rec_error", 2.0));

  auto broken = [&](auto edit, const char* message) {
    nlohmann::json j = c.to_json();
    edit(j);
    CAPTURE(message);
    CHECK_THROWS_WITH_AS(Calibration::from_json(j, "m.safetensors (dyad.calibration)"), doctest::Contains(message),
                         std::invalid_argument);
  };
  broken([](nlohmann::json& j) { j.erase("cars"); }, "m.safetensors (dyad.calibration): key 'cars': is missing");
  broken([](nlohmann::json& j) { j["cars"] = nlohmann::json::array(); }, "key 'cars': is empty");
  broken([](nlohmann::json& j) { j["scores"]["rec_error"].push_back(1.0); }, "key 'scores.rec_error': must list 3 numbers");
  broken([](nlohmann::json& j) { j["scores"]["rec_error"][0] = "x"; }, "key 'scores.rec_error': must be a list of finite numbers");
  broken([](nlohmann::json& j) { j["scores"]["bogus"] = {1, 2, 3}; }, "key 'scores.bogus': is not a score dyad produces");
  broken([](nlohmann::json& j) { j["h_per_mille"] = 5000; }, "key 'h_per_mille': must be an integer in [0, 1000]");
  broken([](nlohmann::json& j) { j["signal_errors"].erase("volt"); }, "key 'signal_errors.volt': is missing");
  broken([](nlohmann::json& j) { j["faulty_scores"] = nlohmann::json::object(); }, "key 'faulty_scores.rec_error': is missing");
}

// ---- The model: fit holds out calibration cars; checkpoints keep the calibration ----------
#include <dyad/model.hpp>

#include "toy_data.hpp"

#include <filesystem>
#include <set>

TEST_CASE("Model::fit holds out calibration cars, trains on the rest and calibrates on them") {
  const ModelConfig c = test::tiny_config();
  // 20 cars of 5 segments, every 4th faulty (cars 1, 5, 9, 13, 17): 15 normal cars.
  const Dataset d = test::toy_dataset(100, c.roles, 3, 12, 12, 4);

  Model<double> plain(c);
  const FitReport r0 = plain.fit(d);
  CHECK(plain.calibration().empty());
  CHECK(r0.calibration_cars == 0);
  CHECK(r0.segments == 75);

  Model<double> m(c);
  FitOptions o;
  o.calibration_fraction = 0.2;
  o.calibration_top = 400;
  const FitReport r = m.fit(d, {}, o);
  CHECK(r.calibration_cars == 3);            // round(0.2 x 15)
  CHECK(r.segments == 60);                   // the 12 other normal cars
  CHECK(r.calibration_segments == 15 + 25);  // the held-out cars' and the 5 faulty cars'
  const auto& cal = m.calibration();
  REQUIRE(cal.size() == 3);
  CHECK(cal.faulty_cars().size() == 5);
  CHECK(cal.h_per_mille() == 400);
  CHECK(cal.signals() == std::vector<std::string>{"b", "c", "d"});
  for (const auto& car : cal.cars()) CHECK(std::set<std::string>{"car1", "car5", "car9", "car13", "car17"}.count(car) == 0);
  // The same seed holds out the same cars; another seed (usually) others.
  Model<double> again(c);
  again.fit(d, {}, o);
  CHECK(again.calibration().cars() == cal.cars());
  // Its p-values are those of the held-out cars' robust scores, recomputed here.
  const std::string kind = cal.kind();
  const auto v = cal.verdicts(to_score_table(d, m.score(d)), detect::AlarmPolicy{});
  for (const auto& verdict : v) {
    CHECK(verdict.p_value == cal.p_value(kind, verdict.score));
    CHECK(verdict.p_value >= cal.finest_rate());
  }
  // Checkpoints keep it: the loaded model gives the same verdicts bit for bit.
  const auto path = std::filesystem::temp_directory_path() / "dyad_test_calibrated.safetensors";
  m.save(path);
  const auto loaded = Model<double>::load(path);
  CHECK(loaded.calibration().to_json() == cal.to_json());
  const auto w = loaded.calibration().verdicts(to_score_table(d, loaded.score(d)), detect::AlarmPolicy{});
  REQUIRE(w.size() == v.size());
  for (std::size_t i = 0; i < v.size(); ++i) CHECK(w[i].p_value == v[i].p_value);
  std::filesystem::remove(path);

  // Recalibrating on other healthy cars replaces it.
  Model<double> re = loaded;
  std::vector<std::size_t> healthy;
  for (std::size_t i = 0; i < d.size(); ++i)
    if (d.meta(i).label == 0) healthy.push_back(i);
  re.calibrate(d, healthy, 100);
  CHECK(re.calibration().size() == 15);
  CHECK(re.calibration().faulty_cars().empty());

  FitOptions bad = o;
  bad.calibration_fraction = 1.0;
  CHECK_THROWS_WITH_AS(Model<double>(c).fit(d, {}, bad), doctest::Contains("calibration fraction must be in [0, 1), got 1"),
                       std::invalid_argument);
  bad.calibration_fraction = 0.2;
  bad.calibration_top = 2000;
  CHECK_THROWS_WITH_AS(Model<double>(c).fit(d, {}, bad), doctest::Contains("h must be in [0, 1000]"), std::invalid_argument);
  const Dataset one_car = test::toy_dataset(5, c.roles, 3);
  CHECK_THROWS_WITH_AS(Model<double>(c).fit(one_car, {}, o), doctest::Contains("needs at least 2 normal cars, the data has 1"),
                       std::invalid_argument);
}
