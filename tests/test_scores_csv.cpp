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
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    CHECK(m.starts_with(f.string() + ": car 'cccc"));
    CHECK(m.find("...[100000 bytes]...") != std::string::npos);
    CHECK(m.ends_with("' segment 0 has 2 rows; a score file has one row per segment"));
    CHECK(m.size() < f.string().size() + 300);
  }
}
