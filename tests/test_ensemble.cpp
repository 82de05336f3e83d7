// dyad::Ensemble (dyad/ensemble.hpp): members from derived seeds on one split, z-scored and
// averaged scores, the ensemble's calibration, and its checkpoint (round trip and refusals).
#include "toy_data.hpp"

#include <dyad/ensemble.hpp>

#include <doctest/doctest.h>

#include <filesystem>
#include <string>

using namespace dyad;

namespace {

std::filesystem::path temp_file(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("dyad_test_ensemble_" + name + ".safetensors");
}

// Twelve cars, every third one faulty: enough for a calibration split and fitted latent scores.
const Dataset& fleet() {
  static const Dataset d = test::toy_dataset(60, test::tiny_config().roles, 11, 10, 14, 3);
  return d;
}

FitOptions calibrated() {
  FitOptions o;
  o.calibration_fraction = 0.3;
  return o;
}

const Ensemble<double>& trained_trio() {
  static const Ensemble<double> e = [] {
    Ensemble<double> e(test::tiny_config(), 3);
    e.fit(fleet(), {}, calibrated());
    return e;
  }();
  return e;
}

// Rewrites a saved ensemble file after `edit`, with a fresh checksum, so the reader's own checks
// (not the checksum's) meet the change.
template <class Edit>
std::filesystem::path edited_copy(const std::string& name, Edit edit) {
  const auto path = temp_file("edit");
  trained_trio().save(path);
  SafeTensors st = load_safetensors(path);
  edit(st);
  st.source = temp_file(name).string();
  st.metadata[kChecksumKey] = tensor_checksum(st);
  st.save(st.source);
  return st.source;
}

}  // namespace

TEST_CASE("ensemble: member k is seeded member_seed(seed, k); member 0 is the single model of that seed") {
  CHECK(member_seed(5, 0) == 5);
  CHECK(member_seed(5, 1) != member_seed(6, 0));
  const auto& e = trained_trio();
  REQUIRE(e.size() == 3);
  for (int k = 0; k < 3; ++k) CHECK(e.member(k).config().seed == member_seed(5, k));
  // A single model of seed 5 holds out the same cars (drawn with the ensemble's seed) and trains
  // to the same weights.
  Model<double> single(test::tiny_config());
  single.fit(fleet(), {}, calibrated());
  CHECK(single.parameters().values() == e.member(0).parameters().values());
  CHECK(single.parameters().values() != e.member(1).parameters().values());
  // Same training data: every member has the same normaliser.
  CHECK(e.member(2).normalizer().mean() == single.normalizer().mean());
}

TEST_CASE("ensemble: a segment score is the members' mean z-score; target errors their mean") {
  const auto& e = trained_trio();
  REQUIRE(e.scales().size() == 3);
  REQUIRE(e.member(0).has_latent_scorer());
  const Scores s = e.score(fleet());
  Scores m[3] = {e.member(0).score(fleet()), e.member(1).score(fleet()), e.member(2).score(fleet())};
  for (const Eigen::Index i : {Eigen::Index{0}, Eigen::Index{17}, Eigen::Index{59}}) {
    for (std::size_t c = 0; c < 4; ++c) {
      double z = 0;
      for (int k = 0; k < 3; ++k)
        z += ((*ScoreScale::columns(std::as_const(m[k]))[c])[i] - e.scales()[k].mean[c]) / e.scales()[k].sd[c];
      CHECK((*ScoreScale::columns(s)[c])[i] == doctest::Approx(z / 3).epsilon(1e-12));
    }
    CHECK(s.target_error(i, 1) ==
          doctest::Approx((m[0].target_error(i, 1) + m[1].target_error(i, 1) + m[2].target_error(i, 1)) / 3).epsilon(1e-12));
    CHECK(s.mu(i, 0) == m[0].mu(i, 0));
  }
}

TEST_CASE("ensemble: the score scale is each score's mean and sample deviation over the training segments") {
  Scores s;
  s.rec_error = Eigen::Vector4d(1, 2, 3, 6);
  const ScoreScale scale = ScoreScale::fit(s);
  REQUIRE(scale.size() == 1);  // no latent scores fitted: rec_error only
  CHECK(scale.mean[0] == doctest::Approx(3));
  CHECK(scale.sd[0] == doctest::Approx(std::sqrt(14.0 / 3)));
  s.rec_error.setConstant(2);  // constant scores only shift
  CHECK(ScoreScale::fit(s).sd[0] == 1);
  // The trained members' scales are those of their training segments' scores.
  const auto& e = trained_trio();
  const FitSplit split = split_for_fit(fleet(), e.config(), calibrated());
  const ScoreScale fitted = ScoreScale::fit(e.member(1).score(fleet(), split.train));
  CHECK(fitted.mean == e.scales()[1].mean);
  CHECK(fitted.sd == e.scales()[1].sd);
}

TEST_CASE("ensemble: calibrated on the held-out cars' ensemble scores, once for all members") {
  const auto& e = trained_trio();
  REQUIRE_FALSE(e.calibration().empty());
  for (int k = 0; k < 3; ++k) CHECK(e.member(k).calibration().empty());
  const FitSplit split = split_for_fit(fleet(), e.config(), calibrated());
  Ensemble<double> again = e;
  again.calibrate(fleet(), split.calibration);
  CHECK(again.calibration().to_json() == e.calibration().to_json());
}

TEST_CASE("ensemble: one member is the model itself, saved as a plain checkpoint") {
  Model<double> model(test::tiny_config());
  model.fit(fleet(), {}, calibrated());
  const Scores direct = model.score(fleet());
  Ensemble<double> one(model);
  CHECK(one.size() == 1);
  CHECK(one.calibration().to_json() == model.calibration().to_json());
  const Scores s = one.score(fleet());
  CHECK(s.rec_error == direct.rec_error);
  CHECK(s.combined_score == direct.combined_score);
  const auto path = temp_file("one");
  one.save(path);
  const Model<double> back = Model<double>::load(path);  // a plain checkpoint
  CHECK(back.calibration().to_json() == model.calibration().to_json());
  CHECK(Ensemble<double>::load(path).score(fleet()).rec_error == direct.rec_error);
  // fit() of an ensemble of one is Model::fit.
  Ensemble<double> fitted(test::tiny_config(), 1);
  fitted.fit(fleet(), {}, calibrated());
  CHECK(fitted.score(fleet()).combined_score == direct.combined_score);
  CHECK_FALSE(fitted.calibration().empty());
  std::filesystem::remove(path);
}

TEST_CASE("ensemble: the checkpoint round-trips members, scales and calibration") {
  const auto& e = trained_trio();
  const auto path = temp_file("trio");
  e.save(path);
  const auto back = Ensemble<double>::load(path);
  REQUIRE(back.size() == 3);
  for (int k = 0; k < 3; ++k) {
    CHECK(back.member(k).config().seed == e.member(k).config().seed);
    CHECK(back.member(k).parameters().values() == e.member(k).parameters().values());
    CHECK(back.scales()[static_cast<std::size_t>(k)].sd == e.scales()[static_cast<std::size_t>(k)].sd);
  }
  CHECK(back.calibration().to_json() == e.calibration().to_json());
  CHECK(back.score(fleet()).combined_score == e.score(fleet()).combined_score);
  // The float model reads the double file (as for plain checkpoints).
  CHECK(Ensemble<float>::load(path).size() == 3);
  // A single-model reader says what the file is.
  CHECK_THROWS_WITH_AS(Model<double>::load(path), doctest::Contains("a single model cannot load; dyad::Ensemble::load reads it"),
                       std::runtime_error);
  std::filesystem::remove(path);
}

TEST_CASE("ensemble: a damaged or inconsistent ensemble file is refused, naming member, key or tensor") {
  auto refused = [](const std::filesystem::path& p, const std::string& what) {
    CHECK_THROWS_WITH_AS(Ensemble<double>::load(p), doctest::Contains(what.c_str()), std::runtime_error);
    std::filesystem::remove(p);
  };
  refused(edited_copy("missing",
                      [](SafeTensors& st) {
                        std::erase_if(st.tensors, [](const Tensor& t) { return t.name == "member1.hidden2mean.weight"; });
                      }),
          "member 1 (tensors member1.*): safetensors: tensor 'hidden2mean.weight': missing");
  refused(edited_copy("stray", [](SafeTensors& st) { st.tensors.back().name = "member3." + st.tensors.back().name.substr(8); }),
          "is not a member's tensor");
  refused(edited_copy("sd",
                      [](SafeTensors& st) {
                        auto j = nlohmann::json::parse(st.metadata[kEnsembleKey]);
                        j["members"][2]["score_sd"][1] = 0;
                        st.metadata[kEnsembleKey] = j.dump();
                      }),
          "member 2: key 'score_sd': must be finite and > 0");
  // A subnormal sd used to be accepted, and every z-score divided by it was infinite.
  refused(edited_copy("subnormal",
                      [](SafeTensors& st) {
                        auto j = nlohmann::json::parse(st.metadata[kEnsembleKey]);
                        j["members"][2]["score_sd"][1] = 1e-320;
                        st.metadata[kEnsembleKey] = j.dump();
                      }),
          "member 2: key 'score_sd': must be finite and > 0, got 1e-320 (subnormal)");
  // 200,000 nested arrays (quoted in the members error, which used to overflow the stack).
  refused(edited_copy("deep",
                      [](SafeTensors& st) {
                        st.metadata[kEnsembleKey] = R"({"members": )" + std::string(200000, '[') + std::string(200000, ']') + "}";
                      }),
          ".safetensors: metadata 'dyad.ensemble': JSON nests arrays and objects deeper than 64 levels");
  refused(edited_copy("count",
                      [](SafeTensors& st) {
                        auto j = nlohmann::json::parse(st.metadata[kEnsembleKey]);
                        j["members"].erase(1);
                        j["members"].erase(1);
                        st.metadata[kEnsembleKey] = j.dump();
                      }),
          "key 'members': must be an array of 2 to 64 members");
  refused(edited_copy("seed",
                      [](SafeTensors& st) {
                        auto j = nlohmann::json::parse(st.metadata[kEnsembleKey]);
                        j["members"][0]["seed"] = "five";
                        st.metadata[kEnsembleKey] = j.dump();
                      }),
          "member 0: key 'seed'");
}

TEST_CASE("ensemble: construction and fit refuse what they cannot do") {
  CHECK_THROWS_WITH_AS(Ensemble<double>(test::tiny_config(), 0), doctest::Contains("an ensemble has 1 to 64"),
                       std::invalid_argument);
  Ensemble<double> pair(test::tiny_config(), 2);
  FitOptions resume;
  resume.checkpoint_every = 1;
  CHECK_THROWS_WITH_AS(pair.fit(fleet(), {}, resume), doctest::Contains("are for single models"), std::invalid_argument);
  // Members trained on different data do not make an ensemble.
  Model<double> a(test::tiny_config()), b(test::tiny_config());
  a.fit(fleet());
  b.fit(test::toy_dataset(40, test::tiny_config().roles, 12));
  std::vector<Model<double>> members{a, b};
  CHECK_THROWS_WITH_AS(Ensemble<double>(members, {ScoreScale::fit(a.score(fleet())), ScoreScale::fit(b.score(fleet()))}),
                       doctest::Contains("member 1 has another normaliser than member 0"), std::invalid_argument);
  // Score scales must divide: an sd that is subnormal (or 0) would make every z-score infinite.
  const auto& trio = trained_trio();
  std::vector<Model<double>> same{trio.member(0), trio.member(1), trio.member(2)};
  std::vector<ScoreScale> scales = trio.scales();
  scales[1].sd[0] = 1e-320;
  CHECK_THROWS_WITH_AS(Ensemble<double>(same, scales), doctest::Contains("member 1 has score rec_error scaled by mean"),
                       std::invalid_argument);
  scales[1].sd[0] = 1;
  scales[1].sd.pop_back();
  CHECK_THROWS_WITH_AS(Ensemble<double>(same, scales), doctest::Contains("sds"), std::invalid_argument);
}
