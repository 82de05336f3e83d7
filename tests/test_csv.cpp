#include "dyad/core/random.hpp"
#include "dyad/data/csv.hpp"

#include <doctest/doctest.h>

#include <bit>
#include <charconv>
#include <cstring>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <streambuf>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

dyad::Dataset parse(const std::string& text, dyad::CsvOptions options = {}) {
  std::istringstream in(text);
  return dyad::read_csv(in, "e.csv", options);
}

std::string error_of(const std::string& text, dyad::CsvOptions options = {}) {
  try {
    parse(text, options);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  FAIL("expected std::runtime_error for:\n" << text);
  return {};
}

bool same_double(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

void check_same(const dyad::Dataset& a, const dyad::Dataset& b) {
  REQUIRE(a.columns() == b.columns());
  REQUIRE(a.size() == b.size());
  std::size_t differ = 0;  // counted, so that a big dataset gives one failure, not thousands
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto &ma = a.meta(i), &mb = b.meta(i);
    const bool same = ma.car == mb.car && ma.segment == mb.segment && ma.label == mb.label && same_double(ma.mileage, mb.mileage) &&
                      same_double(ma.timestamp, mb.timestamp) && a.length(i) == b.length(i);
    if (!same && differ++ == 0)
      CHECK_MESSAGE(same, "first difference at segment " << i << " (car '" << ma.car << "' / '" << mb.car << "')");
  }
  CHECK(differ == 0);
  const auto va = a.raw_values(), vb = b.raw_values();
  REQUIRE(va.size() == vb.size());
  differ = 0;
  for (std::size_t k = 0; k < va.size(); ++k) differ += std::bit_cast<std::uint32_t>(va[k]) != std::bit_cast<std::uint32_t>(vb[k]);
  CHECK(differ == 0);
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("dyad_csv_" + std::to_string(::getpid()) + "_" + std::to_string(std::random_device{}()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::size_t entries() const {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(path), fs::directory_iterator()));
  }
};

// A random dataset with awkward values: tiny, huge, negative zero, odd car names, missing mileage.
dyad::Dataset random_dataset(std::size_t segments, std::uint64_t seed) {
  dyad::Rng rng(seed);
  dyad::Dataset d({"volt", "current", "soc"});
  const char* cars[] = {"car-1", "b,2", "q\"uote", " padded "};
  std::vector<float> v;
  for (std::size_t s = 0; s < segments; ++s) {
    const std::size_t len = 1 + static_cast<std::size_t>(rng.uniform() * 40);
    v.resize(len * 3);
    for (auto& x : v) x = static_cast<float>((rng.uniform() - 0.5) * std::pow(10.0, static_cast<int>(rng.uniform() * 20) - 10));
    v[0] = -0.0f;
    dyad::SegmentMeta m{cars[s % 4], static_cast<std::int64_t>(s) - 3, static_cast<int>(s % 3 == 0),
                        s % 5 == 0 ? std::nan("") : rng.uniform() * 1e5,
                        s % 7 == 0 ? std::nan("") : 1.6e9 + static_cast<double>(s) * 0.1};
    d.add(m, v);
  }
  return d;
}

const std::string kHeader = "car,segment,t,label,mileage,timestamp,volt,current,note,soc\n";

}  // namespace

TEST_CASE("csv: reads segments, metadata and chosen signals") {
  const std::string text = kHeader +
                           "A,1,0,0,1200.5,100,350.1,10,hello,50\n"
                           "A,1,10,0,1200.5,110,350.2,11,x,51\n"
                           "A,2,0,0,1300,200,351,12,x,52\n"
                           "B,1,0,1,,,360,-5,x,60\n";
  const auto d = parse(text);  // auto: numeric non-meta columns of the first row
  CHECK(d.columns() == std::vector<std::string>{"volt", "current", "soc"});
  REQUIRE(d.size() == 3);
  CHECK(d.length(0) == 2);
  CHECK(d.length(1) == 1);
  CHECK(d.meta(0).car == "A");
  CHECK(d.meta(1).segment == 2);
  CHECK(d.meta(0).mileage == 1200.5);
  CHECK(d.meta(0).timestamp == 100);  // the segment's first row
  CHECK(d.meta(2).label == 1);
  CHECK(std::isnan(d.meta(2).mileage));
  CHECK(std::isnan(d.meta(2).timestamp));
  CHECK(d.values(0)(1, 0) == 350.2f);
  CHECK(d.values(0)(1, 2) == 51.0f);
  CHECK(d.values(2)(0, 1) == -5.0f);

  const auto chosen = parse(text, {{"soc", "volt"}});  // explicit order
  CHECK(chosen.columns() == std::vector<std::string>{"soc", "volt"});
  CHECK(chosen.values(0)(1, 0) == 51.0f);
  CHECK(chosen.values(0)(1, 1) == 350.2f);

  // Only car and segment are required; the rest defaults.
  const auto minimal = parse("segment,x,car\n7,1.5,Z\n7,2.5,Z\n");
  REQUIRE(minimal.size() == 1);
  CHECK(minimal.meta(0).car == "Z");
  CHECK(minimal.meta(0).label == 0);
  CHECK(std::isnan(minimal.meta(0).mileage));
  CHECK(minimal.length(0) == 2);
}

TEST_CASE("csv: CRLF, BOM, blank lines, quoting, spaces, missing final newline") {
  const std::string text =
      "\xEF\xBB\xBF"
      "car,segment,\"v,1\",soc\r\n"
      "\r\n"
      "\"x, \"\"y\"\"\",3, +1.5 ,\"2\"\r\n"
      "\"x, \"\"y\"\"\",3,1e-50,-0\r\n"
      "\n"
      "w,4,7,8";
  const auto d = parse(text);
  CHECK(d.columns() == std::vector<std::string>{"v,1", "soc"});
  REQUIRE(d.size() == 2);
  CHECK(d.meta(0).car == "x, \"y\"");
  CHECK(d.length(0) == 2);
  CHECK(d.values(0)(0, 0) == 1.5f);
  CHECK(d.values(0)(0, 1) == 2.0f);
  CHECK(d.values(0)(1, 0) == 0.0f);  // underflow to zero is accepted
  CHECK(std::signbit(d.values(0)(1, 1)));
  CHECK(d.values(1)(0, 1) == 8.0f);
}

TEST_CASE("csv: a header alone gives an empty dataset") {
  const auto d = parse("car,segment,t,volt,soc\n");
  CHECK(d.empty());
  CHECK(d.columns() == std::vector<std::string>{"volt", "soc"});
}

TEST_CASE("csv: every malformed input names file, line, column and the problem") {
  const std::string H = "car,segment,t,label,mileage,volt\n";
  CHECK(error_of("") == "e.csv:1:1: empty file, expected a header line");
  CHECK(error_of("\n\r\n  \n") == "e.csv:3:1: empty file, expected a header line");
  CHECK(error_of("car,t,volt\nA,0,1\n") == "e.csv:1:1: missing required column 'segment' (header: car, t, volt)");
  CHECK(error_of(H + "A,1,0,0,5,1\n", {{"volt", "soc"}}) ==
        "e.csv:1:1: no signal column 'soc' (header: car, segment, t, label, mileage, volt)");
  CHECK(error_of("car,segment,volt,volt\n") == "e.csv:1:4: column 'volt': duplicate column name (also column 3)");
  CHECK(error_of("car,segment,note\nA,1,hello\n") == "e.csv:2:1: no numeric signal columns (header: car, segment, note)");
  CHECK(error_of(H + "A,1,0,0,5,1\nA,1,1,0,5,abc\n") == "e.csv:3:6: column 'volt': 'abc' is not a number");
  CHECK(error_of(H + "A,1,0,0,5,1\nA,1,1,0,5,1.5.2\n") == "e.csv:3:6: column 'volt': '1.5.2' is not a number");
  CHECK(error_of(H + "A,1,0,0,5,1\nA,1,1,0,5,\n") == "e.csv:3:6: column 'volt': missing value");
  CHECK(error_of(H + "A,1,0,0,5,1\nA,1,1,0,5,nan\n") ==
        "e.csv:3:6: column 'volt': non-finite value 'nan' (DyAD cannot train on NaN or infinity)");
  CHECK(error_of(H + "A,1,0,0,5,-inf\n") ==
        "e.csv:2:6: column 'volt': non-finite value '-inf' (DyAD cannot train on NaN or infinity)");
  CHECK(error_of(H + "A,1,0,0,5,1e39\n") == "e.csv:2:6: column 'volt': '1e39' is out of range for float");
  CHECK(error_of(H + "A,1,0,0,5\n") == "e.csv:2:6: column 'volt': missing field: the line has 5 fields, the header 6");
  CHECK(error_of(H + "A,1,0,0,5,1,2\n") == "e.csv:2:7: too many fields: the line has 7 fields, the header 6");
  CHECK(error_of(H + ",1,0,0,5,1\n") == "e.csv:2:1: column 'car': missing value");
  CHECK(error_of(H + "A,1.5,0,0,5,1\n") == "e.csv:2:2: column 'segment': '1.5' is not an integer");
  CHECK(error_of(H + "A,1,0,2,5,1\n") == "e.csv:2:4: column 'label': '2' is not 0 or 1");
  CHECK(error_of(H + "A,1,0,0,5,1\nA,1,1,1,5,1\n") ==
        "e.csv:3:4: column 'label': label 1 differs from the segment's label 0 (line 2)");
  CHECK(error_of(H + "A,1,0,0,inf,1\n") == "e.csv:2:5: column 'mileage': non-finite value 'inf'");
  CHECK(error_of(H + "A,1,0,0,5,1\nA,1,0,0,5,1\n") ==
        "e.csv:3:3: column 't': t = 0 does not increase within the segment (previous t = 0)");
  CHECK(error_of(H + "A,1,2.5,0,5,1\nA,1,1,0,5,1\n") ==
        "e.csv:3:3: column 't': t = 1 does not increase within the segment (previous t = 2.5)");
  CHECK(error_of(H + "A,1,,0,5,1\n") == "e.csv:2:3: column 't': missing value");
  CHECK(error_of(H + "A,1,0,0,5,1\nA,2,0,0,5,1\nB,1,0,0,5,1\n\nA,1,5,0,5,1\n") ==
        "e.csv:6:2: column 'segment': car 'A' segment 1 reappears; it started at line 2 and rows of a segment must be contiguous");
  CHECK(error_of(H + "\"A,1,0,0,5,1\n") == "e.csv:2:1: column 'car': unterminated or malformed quoted field");
  CHECK(error_of(H + "\"A\"x,1,0,0,5,1\n") == "e.csv:2:1: column 'car': unterminated or malformed quoted field");
  // A new t sequence in a new segment is fine; the same segment number of another car too.
  CHECK(parse(H + "A,1,0,0,5,1\nA,1,1,0,5,1\nB,1,0,0,5,1\nA,2,0,0,5,1\n").size() == 3);
}

TEST_CASE("csv: data_line_offset numbers a batch's lines as in the stream it was cut from") {
  dyad::CsvOptions o;
  o.data_line_offset = 1000;
  std::istringstream in("car,segment,t,v\nc,0,0,1\nc,0,1,x\n");
  CHECK_THROWS_WITH_AS(dyad::read_csv(in, "stdin", o), doctest::Contains("stdin:1003:4: column 'v': 'x' is not a number"),
                       std::runtime_error);
  std::istringstream header_error("car,segment,t,v,v\nc,0,0,1\n");
  CHECK_THROWS_WITH_AS(dyad::read_csv(header_error, "stdin", o), doctest::Contains("stdin:1:5:"), std::runtime_error);
}

TEST_CASE("csv: files: path in errors, round trip through write_csv, atomic on failure") {
  TempDir dir;
  const fs::path missing = dir.path / "none.csv";
  CHECK_THROWS_WITH_AS(dyad::read_csv(missing), ("dyad: cannot open '" + missing.string() + "': No such file or directory").c_str(),
                       std::runtime_error);

  const fs::path bad = dir.path / "bad.csv";
  std::ofstream(bad) << "car,segment,volt\nA,1,1\nA,1,x\n";
  CHECK_THROWS_WITH_AS(dyad::read_csv(bad), (bad.string() + ":3:3: column 'volt': 'x' is not a number").c_str(),
                       std::runtime_error);

  // Several MB: many refills of the reader's 1 MiB block, lines cut at block edges.
  const dyad::Dataset original = random_dataset(4000, 11);
  const fs::path file = dir.path / "fleet.csv";
  dyad::write_csv(file, original);
  CHECK(fs::file_size(file) > (3u << 20));
  check_same(dyad::read_csv(file), original);
  check_same(dyad::read_csv(file, {{"volt", "current", "soc"}}), original);
  CHECK(dir.entries() == 2);

  // Through a stream, and the empty dataset.
  std::stringstream ss;
  dyad::write_csv(ss, original.subset(std::vector<std::size_t>{5, 1, 2}));
  check_same(dyad::read_csv(ss, "mem"), original.subset(std::vector<std::size_t>{5, 1, 2}));
  std::stringstream empty;
  dyad::write_csv(empty, dyad::Dataset({"volt"}));
  CHECK(empty.str() == "car,segment,t,label,mileage,timestamp,volt\n");
  check_same(dyad::read_csv(empty, "mem"), dyad::Dataset({"volt"}));

  // A value the reader would reject is refused before anything replaces the file.
  dyad::Dataset with_nan({"volt"});
  with_nan.add({"A", 1}, std::vector<float>{1.0f, std::nanf("")});
  CHECK_THROWS_WITH_AS(dyad::write_csv(file, with_nan), "dyad::write_csv: car 'A' segment 1 column 'volt' holds a non-finite value",
                       std::invalid_argument);
  check_same(dyad::read_csv(file), original);
  CHECK(dir.entries() == 2);
  CHECK_THROWS_AS(dyad::write_csv(dir.path / "t.csv", dyad::Dataset({"t"})), std::invalid_argument);
  CHECK(dir.entries() == 2);
}

TEST_CASE("csv: a line longer than the read block") {
  const std::string note(3u << 20, 'n');
  const auto d = parse("car,segment,note,volt\nA,1," + note + ",1\nA,1,short,2\n");
  REQUIRE(d.size() == 1);
  CHECK(d.columns() == std::vector<std::string>{"volt"});
  CHECK(d.values(0)(1, 0) == 2.0f);
}

TEST_CASE("csv: field splitting and number parsing details") {
  std::vector<std::string_view> f;
  dyad::text::FieldScratch scratch;
  CHECK(!dyad::text::split_fields("a,,\"b\"\"c\",", f, scratch));
  CHECK(f == std::vector<std::string_view>{"a", "", "b\"c", ""});
  CHECK(!dyad::text::split_fields("", f, scratch));
  CHECK(f.size() == 1);
  CHECK(dyad::text::split_fields("x,\"open", f, scratch) == std::optional<std::size_t>(1));

  float v = 0;
  using S = dyad::text::NumberStatus;
  CHECK(dyad::text::parse_number("+2.5", v) == S::ok);
  CHECK(v == 2.5f);
  CHECK(dyad::text::parse_number("+-2", v) == S::not_a_number);
  CHECK(dyad::text::parse_number("+", v) == S::not_a_number);
  CHECK(dyad::text::parse_number("0x10", v) == S::not_a_number);
  CHECK(dyad::text::parse_number("1e400", v) == S::out_of_range);
  std::int64_t i = 0;
  CHECK(dyad::text::parse_number("-9223372036854775808", i) == S::ok);
  CHECK(dyad::text::parse_number("9223372036854775808", i) == S::out_of_range);
}

TEST_CASE_TEMPLATE("csv: the fast decimal path rounds exactly like from_chars", T, float, double) {
  dyad::Rng rng(7);
  std::size_t fast = 0, mismatches = 0;
  std::string first_mismatch;
  for (int k = 0; k < 200000; ++k) {
    std::string s = rng.uniform() < 0.3 ? "-" : "";
    const int digits = 1 + static_cast<int>(rng.uniform() * 17);
    const int point = static_cast<int>(rng.uniform() * (digits + 1));
    for (int d = 0; d < digits; ++d) {
      if (d == point && d > 0) s += '.';
      s += static_cast<char>('0' + static_cast<int>(rng.uniform() * 10));
    }
    if (rng.uniform() < 0.3) {
      s += 'e';
      s += std::to_string(static_cast<int>(rng.uniform() * 50) - 25);
    }
    T fast_value{}, reference{};
    if (!dyad::text::parse_simple_decimal(s.data(), s.data() + s.size(), fast_value)) continue;
    ++fast;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), reference);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size() || std::memcmp(&fast_value, &reference, sizeof(T)) != 0) {
      if (mismatches++ == 0) first_mismatch = s;
    }
  }
  CAPTURE(first_mismatch);
  CHECK(mismatches == 0);
  CHECK(fast > 20000);  // the fast path is actually taken
}

TEST_CASE("csv: several escaped-quote fields on one line keep their own text") {
  // Regression: each unescaped field lived in a std::string of a vector that a later field
  // resized, so the earlier views dangled (ASan: heap-use-after-free; Release: garbage car
  // ids and so extra segments).
  const std::string text =
      "\"a\"\"\",\"b\"\"\",car,segment,\"v\"\"1\",volt\n"
      "\"x\"\"\",\"y\"\"\",\"car \"\"one\"\"\",1,\"2\",3\n"
      "\"x\"\"\",\"y\"\"\",\"car \"\"one\"\"\",1,\"4\",5\n"
      "p,q,\"car \"\"two\"\", with a comma\",1,6,7\n";
  const auto d = parse(text);
  CHECK(d.columns() == std::vector<std::string>{"v\"1", "volt"});
  REQUIRE(d.size() == 2);
  CHECK(d.meta(0).car == "car \"one\"");
  CHECK(d.meta(1).car == "car \"two\", with a comma");
  CHECK(d.length(0) == 2);
  CHECK(d.values(0)(1, 0) == 4.0f);
  CHECK(d.values(0)(1, 1) == 5.0f);

  // Many escaped fields, short (inline storage) and long (heap), so that the unescaped text
  // outgrows any first allocation.
  std::string line;
  std::vector<std::string> expected;
  for (int i = 0; i < 64; ++i) {
    const std::string body = std::to_string(i) + std::string(static_cast<std::size_t>(i % 3 == 0 ? 40 : 2), 'z');
    expected.push_back(body + "\"" + body);
    line += (i ? "," : "") + ("\"" + body + "\"\"" + body + "\"");
    if (i % 5 == 0) {
      expected.push_back("plain" + std::to_string(i));
      line += ",plain" + std::to_string(i);
    }
  }
  std::vector<std::string_view> f;
  dyad::text::FieldScratch scratch;
  CHECK(!dyad::text::split_fields(line, f, scratch));
  CHECK(std::vector<std::string>(f.begin(), f.end()) == expected);
}

namespace {
// An endless stream of 'x' without a newline.
struct EndlessLine : std::streambuf {
  char block[4096];
  EndlessLine() { std::memset(block, 'x', sizeof block); }
  int_type underflow() override {
    setg(block, block, block + sizeof block);
    return 'x';
  }
};
}  // namespace

TEST_CASE("csv: a line longer than max_line_bytes is an error naming file and line") {
  dyad::CsvOptions small;
  small.max_line_bytes = 20;
  const std::string H = "car,segment,volt\n";
  CHECK(parse(H + "A,1," + std::string(16, '1') + "\n", small).size() == 1);  // exactly 20 bytes
  CHECK(error_of(H + "A,1,1\nA,1," + std::string(17, '1') + "\nA,1,1\n", small) ==
        "e.csv:3:1: line longer than 20 bytes (CsvOptions::max_line_bytes)");
  CHECK(error_of(H + "A,1," + std::string(17, '1'), small) == "e.csv:2:1: line longer than 20 bytes (CsvOptions::max_line_bytes)");
  CHECK(error_of("\n\n" + std::string(21, 'c'), small) == "e.csv:3:1: line longer than 20 bytes (CsvOptions::max_line_bytes)");

  // Longer than the 1 MiB read block, and then beyond the limit.
  dyad::CsvOptions two_mib;
  two_mib.max_line_bytes = 2u << 20;
  CHECK(error_of(H + "A,1," + std::string(3u << 20, '1') + "\n", two_mib) ==
        "e.csv:2:1: line longer than 2097152 bytes (CsvOptions::max_line_bytes)");

  // A stream that never ends a line: stops at the default limit instead of buffering forever.
  EndlessLine endless;
  std::istream in(&endless);
  CHECK_THROWS_WITH_AS(dyad::read_csv(in, "endless.csv"),
                       "endless.csv:1:1: line longer than 16777216 bytes (CsvOptions::max_line_bytes)", std::runtime_error);
}

TEST_CASE("csv: UTF-16 (with or without a byte-order mark) and CR-only line ends are named, with the file") {
  // "car,segment,volt\n" as UTF-16: every ASCII byte followed (LE) or preceded (BE) by a NUL.
  auto utf16 = [](const std::string& ascii, bool big_endian) {
    std::string out;
    for (const char c : ascii) out += big_endian ? std::string{'\0', c} : std::string{c, '\0'};
    return out;
  };
  const std::string text = "car,segment,volt\nA,1,3.5\n";
  CHECK(error_of("\xFF\xFE" + utf16(text, false)) ==
        "e.csv:1: the file is UTF-16 (little-endian byte-order mark): dyad reads UTF-8 text; save or convert it as UTF-8 "
        "(e.g. iconv -f UTF-16 -t UTF-8)");
  CHECK(error_of("\xFE\xFF" + utf16(text, true)).starts_with("e.csv:1: the file is UTF-16 (big-endian byte-order mark)"));
  CHECK(error_of(utf16(text, false)).starts_with("e.csv:1: the first line holds a NUL byte (at byte 2): UTF-16 text"));
  CHECK(error_of("car,segment,volt\rA,1,3.5\rA,1,3.6\r") ==
        "e.csv:1: the first line holds a carriage return (at byte 17) that does not end it: the file's lines end in CR only "
        "(classic Mac); convert them to LF or CRLF (e.g. tr '\\r' '\\n')");
  // CR-only beyond the line limit: named as CR-only, not as a long line.
  dyad::CsvOptions small;
  small.max_line_bytes = 20;
  CHECK(
      error_of("car,segment,volt\r" + std::string(40, '1'), small).starts_with("e.csv:1: the first line holds a carriage return"));
  // CRLF, and a CR inside a later line, are not this error.
  CHECK(parse("car,segment,volt\r\nA,1,3.5\r\n").size() == 1);
}

TEST_CASE("csv: text from the file is bounded and escaped in error messages") {
  const std::string H = "car,segment,volt\n";
  const std::string huge(1000000, '7');
  const std::string e = error_of(H + "A,1,1\nA,1,x" + huge + "\n");
  CHECK(e.starts_with("e.csv:3:3: column 'volt': 'x777"));
  CHECK(e.find("...[1000001 bytes]...") != std::string::npos);
  CHECK(e.ends_with("777' is not a number"));
  CHECK(e.size() < 400);
  CHECK(error_of(H + "A,1,1\nA,1,a\x01\x1b"
                     "b\n") == "e.csv:3:3: column 'volt': 'a\\x01\\x1bb' is not a number");

  // A huge column name, and a header of 200000 columns, in the messages that list the header.
  const std::string long_name(100000, 'n');
  const std::string e2 = error_of("car,segment," + long_name + "\nA,1,q\n");
  CHECK(e2.find("...[100000 bytes]...") != std::string::npos);
  CHECK(e2.size() < 400);
  std::string wide = "segment";
  for (int i = 0; i < 200000; ++i) wide += ",c" + std::to_string(i);
  const std::string e3 = error_of(wide + "\n");
  CHECK(e3.starts_with("e.csv:1:1: missing required column 'car' (header: segment, c0, c1, "));
  CHECK(e3.ends_with(", ... (200001 columns))"));
  CHECK(e3.size() < 1300);
  // The duplicate check on such a header names the right columns.
  CHECK(error_of(wide + ",c7\n") == "e.csv:1:200002: column 'c7': duplicate column name (also column 9)");

  // A UTF-8 sequence is not cut by the ellipsis.
  std::string accents;
  for (int i = 0; i < 200; ++i) accents += "\xC3\xA9";                    // é
  const std::string e4 = error_of(H + "A,1,1\nA,1,x" + accents + "y\n");  // both cut points fall inside an é
  CHECK(e4.find("\xC3\xA9...[402 bytes]...\xC3\xA9") != std::string::npos);
}

TEST_CASE("csv: segment ids: out of range is named as such") {
  const std::string H = "car,segment,volt\n";
  CHECK(error_of(H + "A,9223372036854775808,1\n") ==
        "e.csv:2:2: column 'segment': '9223372036854775808' is out of range for a 64-bit integer");
  CHECK(error_of(H + "A,-9223372036854775809,1\n") ==
        "e.csv:2:2: column 'segment': '-9223372036854775809' is out of range for a 64-bit integer");
  CHECK(error_of(H + "A,1e3,1\n") == "e.csv:2:2: column 'segment': '1e3' is not an integer");
  const auto d = parse(H + "A,-9223372036854775808,1\nA,+9223372036854775807,1\n");
  REQUIRE(d.size() == 2);
  CHECK(d.meta(0).segment == std::numeric_limits<std::int64_t>::min());
  CHECK(d.meta(1).segment == std::numeric_limits<std::int64_t>::max());
}

TEST_CASE("csv: a directory is refused with its path and the reason") {
  TempDir dir;
  CHECK_THROWS_WITH_AS(dyad::read_csv(dir.path), ("dyad: cannot read '" + dir.path.string() + "': Is a directory").c_str(),
                       std::runtime_error);
}

TEST_CASE("csv: data without a label column is unlabelled, and stays so through subset and write_csv") {
  std::istringstream in("car,segment,t,volt\na,0,0,1\na,0,1,2\nb,0,0,3\n");
  const dyad::Dataset d = dyad::read_csv(in, "u.csv");
  CHECK_FALSE(d.labelled());
  CHECK(d.meta(0).label == 0);
  const std::size_t first[] = {0};
  CHECK_FALSE(d.subset(first).labelled());
  std::ostringstream out;
  dyad::write_csv(out, d);
  CHECK(out.str().starts_with("car,segment,t,mileage,timestamp,volt\n"));
  std::istringstream back(out.str());
  CHECK_FALSE(dyad::read_csv(back, "back.csv").labelled());
  std::istringstream labelled("car,segment,label,volt\na,0,1,1\n");
  CHECK(dyad::read_csv(labelled, "l.csv").labelled());
}
