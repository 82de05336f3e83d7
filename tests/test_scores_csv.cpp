#include "dyad/io/scores_csv.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

namespace fs = std::filesystem;

namespace {

struct ScoresDir {
  fs::path path;
  ScoresDir() {
    path = fs::temp_directory_path() / ("dyad_scores_" + std::to_string(::getpid()) + "_" + std::to_string(std::random_device{}()));
    fs::create_directories(path);
  }
  ~ScoresDir() { fs::remove_all(path); }
  fs::path write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name, std::ios::binary) << text;
    return path / name;
  }
};

}  // namespace

TEST_CASE("scores csv: several escaped-quote fields on one line read back exactly") {
  // Regression: the shared CSV splitter left dangling views when a line had more than one
  // `""`-escaped field (heap-use-after-free; wrong car ids and extra segments in Release).
  ScoresDir dir;
  const fs::path f = dir.write("s.csv",
                               "car,segment,label,rec_error,\"x\"\"y\",\"p\"\"q\"\n"
                               "\"car \"\"1\"\"\",0,0,0.5,1,2\n"
                               "\"car \"\"1\"\"\",1,0,0.25,3,4\n"
                               "\"a \"\"b\"\", c\",0,1,2.5,5,6\n");
  const dyad::ScoreTable t = dyad::read_scores_csv(f);
  REQUIRE(t.size() == 3);
  CHECK(t.cars == std::vector<std::string>{"car \"1\"", "car \"1\"", "a \"b\", c"});
  CHECK(t.segments == std::vector<std::int64_t>{0, 1, 0});
  CHECK(t.labels == std::vector<int>{0, 0, 1});
  CHECK(t.column("rec_error") == std::vector<double>{0.5, 0.25, 2.5});
  CHECK(t.column("x\"y") == std::vector<double>{1, 3, 5});
  CHECK(t.column("p\"q") == std::vector<double>{2, 4, 6});
}

TEST_CASE("scores csv: a car id in an error message is bounded") {
  ScoresDir dir;
  const std::string car(100000, 'c');
  const fs::path f = dir.write("s.csv", "car,segment,rec_error\n" + car + ",0,1\n" + car + ",0,2\n");
  try {
    dyad::read_scores_csv(f);
    FAIL("expected an error");
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    CHECK(m.starts_with(f.string() + ":3:2: column 'segment': car 'cccc"));
    CHECK(m.find("...[100000 bytes]...") != std::string::npos);
    CHECK(m.ends_with("' segment 0 already has a row (line 2); a score file has one row per segment"));
    CHECK(m.size() < f.string().size() + 400);  // the car id appears once, bounded
  }
}

TEST_CASE("scores csv: scores come back as the exact doubles written, not float-rounded") {
  dyad::Dataset data({"x"});
  const float one[] = {1.0f};
  for (int i = 0; i < 3; ++i) data.add({"car" + std::to_string(i), i, i % 2, 1.0, 2.0}, one);
  dyad::Scores s;
  s.targets = {"x"};
  s.rec_error = Eigen::VectorXd(3);
  s.rec_error << 0.1234567890123456789, 1e-300, 123456789.123456789;
  s.target_error = Eigen::MatrixXd(3, 1);
  s.target_error << 1.0 / 3, 2.0 / 3, 1.0;
  s.mu.resize(3, 1);
  s.log_var.resize(3, 1);
  ScoresDir dir;
  dyad::write_scores_csv(dir.path / "s.csv", data, s);
  const dyad::ScoreTable t = dyad::read_scores_csv(dir.path / "s.csv");
  REQUIRE(t.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(t.column("rec_error")[static_cast<std::size_t>(i)] == s.rec_error[i]);  // bit for bit
    CHECK(t.column("x_error")[static_cast<std::size_t>(i)] == s.target_error(i, 0));
  }
  CHECK(t.labels == std::vector<int>{0, 1, 0});
}

TEST_CASE("scores csv: errors name the file, line and column") {
  ScoresDir dir;
  auto error = [&](const std::string& text) {
    try {
      dyad::read_scores_csv(dir.write("s.csv", text));
    } catch (const std::exception& e) {
      const std::string m = e.what();
      return m.substr(m.find("s.csv"));
    }
    return std::string("no error");
  };
  CHECK(error("car,segment,label,rec_error\na,0,2,1\n") == "s.csv:2:3: column 'label': '2' is not 0 or 1");
  CHECK(error("car,segment,label,rec_error\na,0,0,nan\n") == "s.csv:2:4: column 'rec_error': 'nan' is not a finite number");
  CHECK(error("car,segment,label,rec_error\na,0,0,1e999\n") == "s.csv:2:4: column 'rec_error': '1e999' is not a finite number");
  CHECK(error("car,segment,label,rec_error\na,0,0\n") ==
        "s.csv:2:4: column 'rec_error': missing field: the line has 3 fields, the header 4");
  CHECK(error("car,segment,latent_score\na,0,1\n") == "s.csv:1:1: no column 'rec_error' (is this a score file?)");
  CHECK(error("car,label,rec_error\na,0,1\n") == "s.csv:1:1: missing required column 'segment'");
  CHECK(error("car,segment,rec_error,rec_error\na,0,1,1\n") == "s.csv:1:4: column 'rec_error': duplicate column name");
  CHECK(error("car,segment,rec_error\n") == "s.csv:1:1: no score rows after the header");
  CHECK(error("") == "s.csv:1:1: empty file, expected a header line");
  CHECK(error("car,segment,rec_error\n,0,1\n") == "s.csv:2:1: column 'car': missing value");
}

TEST_CASE("scores csv: unlabelled data gives a score file without a label column, read back as unlabelled") {
  dyad::Dataset data({"x"});
  data.set_labelled(false);
  const float one[] = {1.0f};
  data.add({"a", 0, 0, 1.0, 2.0}, one);
  data.add({"b", 0, 0, 1.0, 2.0}, one);
  dyad::Scores s;
  s.targets = {"x"};
  s.rec_error = Eigen::VectorXd::Constant(2, 0.5);
  s.target_error = Eigen::MatrixXd::Constant(2, 1, 0.5);
  s.mu.resize(2, 1);
  s.log_var.resize(2, 1);
  ScoresDir dir;
  dyad::write_scores_csv(dir.path / "s.csv", data, s);
  std::ifstream in(dir.path / "s.csv");
  std::string header;
  std::getline(in, header);
  CHECK(header == "car,segment,rec_error,x_error");
  const dyad::ScoreTable t = dyad::read_scores_csv(dir.path / "s.csv");
  CHECK_FALSE(t.labelled);
  CHECK(dyad::to_score_table(data, s).labelled == false);
  CHECK(t.labels == std::vector<int>{0, 0});
}
