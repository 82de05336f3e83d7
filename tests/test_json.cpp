// The shared JSON readers (dyad/core/json.hpp) against hostile nesting: json_excerpt is bounded
// in size and depth, and every JSON read refuses nesting beyond limits::json_depth.
#include "dyad/core/json.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <unistd.h>

using dyad::detail::json_excerpt;
using dyad::detail::parse_json;

namespace {

// `depth` nested arrays: "[[[...]]]".
std::string nested(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  FAIL("expected an exception");
  return {};
}

}  // namespace

TEST_CASE("json_excerpt: at most 60 characters of any value, written as dump() writes it") {
  CHECK(json_excerpt(nlohmann::json{1, 2.5, "x"}) == R"([1,2.5,"x"])");
  CHECK(json_excerpt(nlohmann::json{{"a", {1, nullptr}}, {"b", true}}) == R"({"a":[1,null],"b":true})");
  CHECK(json_excerpt(nlohmann::json::array()) == "[]");
  CHECK(json_excerpt(nlohmann::json::object()) == "{}");
  CHECK(json_excerpt(1e-320) == "1e-320");
  CHECK(json_excerpt("tab\there") == R"("tab\there")");
  const std::string long_string(100000, 'x');
  CHECK(json_excerpt(long_string) == "\"" + std::string(56, 'x') + "...");
  nlohmann::json many = nlohmann::json::array();
  for (int i = 0; i < 100000; ++i) many.push_back(i);
  const std::string e = json_excerpt(many);
  CHECK(e.size() == 60);
  CHECK(e.starts_with("[0,1,2,3,"));
  CHECK(e.ends_with("..."));
  // Exactly 60 characters stay whole; 61 are cut to 57 and "...".
  CHECK(json_excerpt(std::string(58, 'y')).size() == 60);
  CHECK(json_excerpt(std::string(59, 'y')) == "\"" + std::string(56, 'y') + "...");
}

TEST_CASE("json_excerpt: a value 200,000 levels deep gives its first characters, no stack overflow") {
  // nlohmann's parser and destructor are iterative, so the value can exist; dump() would recurse
  // once per level and overflow the stack (SIGSEGV), which is what json_excerpt used to call.
  const nlohmann::json deep = nlohmann::json::parse(nested(200000));
  CHECK(json_excerpt(deep) == std::string(57, '[') + "...");
  nlohmann::json deep_objects = nlohmann::json::parse([] {
    std::string s;
    for (int i = 0; i < 200000; ++i) s += "{\"k\":";
    s += "1";
    s += std::string(200000, '}');
    return s;
  }());
  CHECK(json_excerpt(deep_objects).starts_with(R"({"k":{"k":{"k":)"));
  CHECK(json_excerpt(deep_objects).size() == 60);
}

TEST_CASE("a value 200,000 levels deep is destroyed without recursing (nlohmann destroys iteratively)") {
  for (int round = 0; round < 2; ++round) {  // reaching the end of each scope is the test
    nlohmann::json deep = nlohmann::json::parse(nested(200000));
    CHECK(deep.is_array());
  }
}

TEST_CASE("parse_json refuses nesting beyond limits::json_depth, naming the source and the limit") {
  static_assert(dyad::limits::json_depth == 64);
  CHECK(parse_json(nested(64), "x").is_array());
  CHECK(parse_json(R"({"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["})", "x").is_object());
  CHECK(error_of([] { parse_json(nested(65), "config.json"); }) ==
        "config.json: JSON nests arrays and objects deeper than 64 levels (at byte 64), dyad's nesting limit");
  CHECK(error_of([] { parse_json(nested(200000), "m (dyad.config)"); }).starts_with("m (dyad.config): JSON nests"));
  CHECK_THROWS_AS(parse_json("[1,", "x"), nlohmann::json::parse_error);
}

TEST_CASE("read_json_file: a file of 200,000 nested arrays is refused, naming the file and the nesting limit") {
  const auto path = std::filesystem::temp_directory_path() / ("dyad_test_json_" + std::to_string(::getpid()) + ".json");
  std::ofstream(path) << R"({"epochs": )" << nested(200000) << "}";
  const std::string e = error_of([&] { dyad::detail::read_json_file(path, "the configuration"); });
  CHECK(e == path.string() + ": JSON nests arrays and objects deeper than 64 levels (at byte 74), dyad's nesting limit");
  std::ofstream(path) << R"({"epochs": [1, 2)";
  CHECK_THROWS_WITH_AS(dyad::detail::read_json_file(path, "the configuration"),
                       doctest::Contains((path.string() + ": invalid JSON at byte").c_str()), std::invalid_argument);
  std::filesystem::remove(path);
}
