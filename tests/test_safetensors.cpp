#include "dyad/core/atomic_file.hpp"
#include "dyad/io/safetensors.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef DYAD_FIXTURES
#define DYAD_FIXTURES "tests/fixtures"
#endif

namespace fs = std::filesystem;

namespace {

// A fresh directory per test case, removed at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("dyad_st_" + std::to_string(::getpid()) + "_" + std::to_string(std::random_device{}()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::size_t entries() const {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(path), fs::directory_iterator()));
  }
};

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  FAIL("expected std::runtime_error");
  return {};
}

// A safetensors image from a header text and a buffer of `buffer_size` zero bytes (or given bytes).
std::vector<std::byte> image(const std::string& header, std::vector<std::byte> buffer) {
  std::vector<std::byte> out(8);
  dyad::detail::store_le<std::uint64_t>(out.data(), header.size());
  for (char c : header) out.push_back(static_cast<std::byte>(c));
  out.insert(out.end(), buffer.begin(), buffer.end());
  return out;
}
std::vector<std::byte> zeros(std::size_t n) { return std::vector<std::byte>(n); }

std::string parse_error(const std::string& header, std::size_t buffer_size) {
  return error_of([&] { dyad::SafeTensors::from_bytes(image(header, zeros(buffer_size)), "ckpt.safetensors"); });
}

dyad::SafeTensors sample() {
  dyad::SafeTensors st;
  st.metadata = {{"format", "dyad"}, {"task", "ev"}};
  const std::vector<float> w{1.5f, -2.25f, 3e-8f, 1e30f, 0.0f, -0.0f};
  const std::vector<double> b{0.1, -1e-300};
  const std::vector<std::int64_t> step{42};
  st.add<float>("encoder.weight", {2, 3}, w);
  st.add<double>("encoder.bias", {2}, b);
  st.add("step", {}, step);  // T deduced from the vector
  st.add<float>("empty", {0, 4}, std::vector<float>{});
  return st;
}

}  // namespace

TEST_CASE("safetensors: round trip in memory and through a file") {
  const dyad::SafeTensors st = sample();
  const auto bytes = st.to_bytes();
  const std::uint64_t n = dyad::detail::load_le<std::uint64_t>(bytes.data());
  CHECK((8 + n) % 8 == 0);  // buffer aligned
  CHECK(bytes.size() == 8 + n + 6 * 4 + 2 * 8 + 8);

  for (int pass = 0; pass < 2; ++pass) {
    TempDir dir;
    dyad::SafeTensors back;
    if (pass == 0) {
      back = dyad::SafeTensors::from_bytes(bytes, "mem");
    } else {
      dyad::save_safetensors(dir.path / "m.safetensors", st);
      CHECK(dir.entries() == 1);
      back = dyad::load_safetensors(dir.path / "m.safetensors");
      CHECK(back.source == (dir.path / "m.safetensors").string());
    }
    CHECK(back.metadata == st.metadata);
    REQUIRE(back.tensors.size() == 4);
    for (std::size_t i = 0; i < 4; ++i) {  // same order, same content
      CHECK(back.tensors[i].name == st.tensors[i].name);
      CHECK(back.tensors[i].dtype == st.tensors[i].dtype);
      CHECK(back.tensors[i].shape == st.tensors[i].shape);
      CHECK(back.tensors[i].bytes == st.tensors[i].bytes);
    }
    CHECK(back.get<float>("encoder.weight", {2, 3}) == std::vector<float>{1.5f, -2.25f, 3e-8f, 1e30f, 0.0f, -0.0f});
    CHECK(back.get<double>("encoder.weight")[0] == 1.5);
    CHECK(back.get<double>("encoder.bias") == std::vector<double>{0.1, -1e-300});
    CHECK(back.get<std::int64_t>("step") == std::vector<std::int64_t>{42});
    CHECK(back.get<std::int32_t>("step") == std::vector<std::int32_t>{42});
    CHECK(back.get<float>("empty", {0, 4}).empty());
    CHECK(back.to_bytes() == bytes);
  }
}

TEST_CASE("safetensors: the header is the documented JSON") {
  dyad::SafeTensors st;
  st.add<float>("a", {1}, std::vector<float>{1.0f});
  st.metadata["k"] = "v";
  const auto bytes = st.to_bytes();
  const std::string header(reinterpret_cast<const char*>(bytes.data()) + 8, bytes.size() - 12);
  CHECK(header == R"({"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})" +
                      std::string(1, ' '));                                         // 79 + 1 = 80 bytes
  CHECK(std::memcmp(bytes.data() + bytes.size() - 4, "\x00\x00\x80\x3f", 4) == 0);  // 1.0f little-endian
}

TEST_CASE("safetensors: F16 and BF16 convert exactly; offsets in any order") {
  // Written "by another tool": tensors listed out of buffer order, header unpadded.
  const std::string header = R"({"b":{"dtype":"BF16","shape":[2],"data_offsets":[10,14]},)"
                             R"("h":{"dtype":"F16","shape":[5],"data_offsets":[0,10]}})";
  const std::vector<std::uint16_t> halves{0x3c00, 0xc000, 0x7bff, 0x0001, 0xfc00};  // 1, -2, 65504, 2^-24, -inf
  const std::vector<std::uint16_t> bf{0x3f80, 0xc040};                              // 1, -3
  std::vector<std::byte> buf(14);
  for (std::size_t i = 0; i < 5; ++i) dyad::detail::store_le(buf.data() + 2 * i, halves[i]);
  for (std::size_t i = 0; i < 2; ++i) dyad::detail::store_le(buf.data() + 10 + 2 * i, bf[i]);
  const auto st = dyad::SafeTensors::from_bytes(image(header, buf), "x");
  REQUIRE(st.tensors.size() == 2);
  CHECK(st.tensors[0].name == "h");  // ordered by data offset
  const auto h = st.get<double>("h", {5});
  CHECK(h[0] == 1.0);
  CHECK(h[1] == -2.0);
  CHECK(h[2] == 65504.0);
  CHECK(h[3] == std::ldexp(1.0, -24));
  CHECK((std::isinf(h[4]) && h[4] < 0));
  CHECK(st.get<float>("b") == std::vector<float>{1.0f, -3.0f});
  CHECK(dyad::detail::half_to_float(0x7e00) != dyad::detail::half_to_float(0x7e00));  // NaN stays NaN
  CHECK(dyad::detail::half_to_float(0x0400) == std::ldexp(1.0f, -14));                // smallest normal
  CHECK(dyad::detail::half_to_float(0x83ff) == -std::ldexp(1023.0f, -24));            // largest subnormal
}

TEST_CASE("safetensors: malformed files name the file and the tensor") {
  const std::string P = "ckpt.safetensors: safetensors: ";
  CHECK(error_of([] { dyad::SafeTensors::from_bytes(zeros(5), "ckpt.safetensors"); }) ==
        P + "file of 5 bytes is too short for the 8-byte header length");
  {
    auto img = image("{}", {});
    dyad::detail::store_le<std::uint64_t>(img.data(), 1000);
    CHECK(error_of([&] { dyad::SafeTensors::from_bytes(img, "ckpt.safetensors"); }) ==
          P + "header length 1000 exceeds the file size (10 bytes)");
  }
  CHECK(parse_error(R"({"a": {"dtype": "F32",)", 0).starts_with(P + "bad JSON header: [json.exception.parse_error"));
  CHECK(parse_error("[1, 2]", 0) == P + "the header is not a JSON object");
  CHECK(
      parse_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                  8) == P + "duplicate tensor name 'a'");
  CHECK(parse_error(R"({"a":{"dtype":"F32","dtype":"F64","shape":[1],"data_offsets":[0,4]}})", 4) ==
        P + "duplicate key 'dtype' in the entry of 'a'");
  CHECK(parse_error(R"({"a":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}})", 4) == P + "tensor 'a': unknown dtype 'F31'");
  CHECK(parse_error(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4) ==
        P + "tensor 'a': shape [-1] is not a list of non-negative integers");
  CHECK(parse_error(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4) ==
        P + "tensor 'a': shape [1.5] is not a list of non-negative integers");
  CHECK(parse_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4) ==
        P + "tensor 'a': data_offsets [0] is not [begin, end]");
  CHECK(parse_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}})", 4) ==
        P + "tensor 'a': unknown key 'extra'");
  CHECK(parse_error(R"({"a":{"dtype":"F32","shape":[1]}})", 4) == P + "tensor 'a': needs keys dtype, shape and data_offsets");
  CHECK(parse_error(R"({"a":[1]})", 0) == P + "tensor 'a': entry is not an object");
  CHECK(parse_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4) ==
        P + "tensor 'a': data_offsets [0, 8] out of range of the 4-byte buffer");
  CHECK(parse_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", 4) ==
        P + "tensor 'a': data_offsets [4, 0] out of range of the 4-byte buffer");
  CHECK(parse_error(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8) ==
        P + "tensor 'a': F32 [3] needs 12 bytes, data_offsets give 8");
  CHECK(parse_error(R"({"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8) ==
        P + "tensor 'a': F64 [4294967296, 4294967296] needs too many bytes, data_offsets give 8");
  CHECK(
      parse_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                  12) == P + "tensor 'b': data overlaps tensor 'a'");
  CHECK(
      parse_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                  12) == P + "tensor 'b': data_offsets are not contiguous: bytes [4, 8) after 'a' belong to no tensor");
  CHECK(parse_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8) ==
        P + "tensor 'a': data_offsets are not contiguous: bytes [0, 4) after the buffer start belong to no tensor");
  CHECK(parse_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 6) ==
        P + "the buffer has 2 trailing bytes after the last tensor");
  CHECK(parse_error(R"({"__metadata__":{"k":1}})", 0) == P + "__metadata__ value of 'k' is not a string");
  CHECK(parse_error(R"({"__metadata__":[]})", 0) == P + "__metadata__ is not an object");
  // A valid empty file, with space padding.
  CHECK(dyad::SafeTensors::from_bytes(image("{}      ", {}), "x").tensors.empty());
}

TEST_CASE("safetensors: accessors check shape, dtype and names") {
  const dyad::SafeTensors st = dyad::SafeTensors::from_bytes(sample().to_bytes(), "model.safetensors");
  const std::string P = "model.safetensors: safetensors: ";
  CHECK(error_of([&] {
          st.expect_shape("encoder.weight", {3, 2});
        }) == P + "tensor 'encoder.weight': has shape [2, 3], expected [3, 2]");
  CHECK(error_of([&] { st.get<float>("decoder.weight"); }) == P + "tensor 'decoder.weight': no such tensor");
  CHECK(error_of([&] { st.get<float>("step"); }) == P + "tensor 'step': dtype I64 is not F64, F32, F16 or BF16");
  CHECK(error_of([&] { st.get<std::int64_t>("encoder.bias"); }) == P + "tensor 'encoder.bias': dtype F64 is not I64 or I32");
  CHECK(&st.expect_shape("encoder.bias", {2}) == &st.tensors[1]);

  dyad::SafeTensors big;
  big.add<std::int64_t>("n", {1}, std::vector<std::int64_t>{std::int64_t{1} << 40});
  CHECK(error_of([&] { big.get<std::int32_t>("n"); }) ==
        "<memory>: safetensors: tensor 'n': value 1099511627776 does not fit the requested integer type");
}

TEST_CASE("safetensors: building a bad value is refused, and saving it leaves no file") {
  dyad::SafeTensors st = sample();
  CHECK(error_of([&] { st.add<float>("step", {1}, std::vector<float>{1}); }) ==
        "<memory>: safetensors: tensor 'step': duplicate tensor name");
  CHECK(error_of([&] {
          st.add<float>("x", {2, 2}, std::vector<float>{1, 2, 3});
        }) == "<memory>: safetensors: tensor 'x': shape [2, 2] does not hold 3 values");
  CHECK(error_of([&] {
          st.add(dyad::Tensor{"__metadata__", dyad::DType::U8, {1}, zeros(1)});
        }) == "<memory>: safetensors: tensor '__metadata__': reserved name");

  TempDir dir;
  const fs::path target = dir.path / "bad.safetensors";
  st.tensors.push_back({"short", dyad::DType::F32, {3}, zeros(8)});  // bypasses add()
  CHECK(error_of([&] { dyad::save_safetensors(target, st); }) ==
        target.string() + ": safetensors: tensor 'short': F32 [3] needs 12 bytes, have 8");
  CHECK(dir.entries() == 0);
  st.tensors.back() = {"step", dyad::DType::F32, {2}, zeros(8)};
  CHECK(error_of([&] { dyad::save_safetensors(target, st); }) ==
        target.string() + ": safetensors: tensor 'step': duplicate tensor name");
  CHECK(dir.entries() == 0);
}

TEST_CASE("safetensors: missing file names the path and the OS reason") {
  CHECK(error_of([] { dyad::load_safetensors("/nonexistent/dir/m.safetensors"); }) ==
        "dyad: cannot open '/nonexistent/dir/m.safetensors': No such file or directory");
}

TEST_CASE("atomic write: replaces the target whole, or leaves everything as it was") {
  TempDir dir;
  const fs::path target = dir.path / "out.txt";
  auto read = [&] {
    std::ifstream in(target);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };

  dyad::write_file_atomically(target, [](std::ostream& os) { os << "first"; });
  CHECK(read() == "first");
  dyad::write_file_atomically(target,
                              [](std::ostream& os) { os << std::string(1 << 20, 'x') << "end"; });  // bigger than the buffer
  CHECK(read() == std::string(1 << 20, 'x') + "end");
  CHECK(dir.entries() == 1);

  // The writer throws halfway: the old content survives, no temporary is left.
  CHECK_THROWS_WITH_AS(dyad::write_file_atomically(target,
                                                   [](std::ostream& os) {
                                                     os << std::string(200000, 'y');
                                                     throw std::logic_error("writer failed");
                                                   }),
                       "writer failed", std::logic_error);
  CHECK(read() == std::string(1 << 20, 'x') + "end");
  CHECK(dir.entries() == 1);

  const fs::path fresh = dir.path / "fresh.txt";
  CHECK_THROWS_AS(dyad::write_file_atomically(fresh, [](std::ostream&) { throw std::runtime_error("no"); }), std::runtime_error);
  CHECK(!fs::exists(fresh));
  CHECK(dir.entries() == 1);

  CHECK(error_of([&] { dyad::write_file_atomically(dir.path / "missing" / "f.txt", [](std::ostream& os) { os << 1; }); }) ==
        "dyad: cannot create a temporary file for '" + (dir.path / "missing" / "f.txt").string() + "': No such file or directory");
}

TEST_CASE("atomic write: a full disk is reported with the path and the OS reason") {
  if (!fs::exists("/dev/full")) return;
  // /dev/full's directory is /dev, where we cannot create files as a normal user; so simulate
  // the write failure with a stream buffer over /dev/full directly.
  const int fd = ::open("/dev/full", O_WRONLY);
  REQUIRE(fd >= 0);
  {
    dyad::detail::FdStreambuf buf(fd);
    std::ostream os(&buf);
    os << std::string(100, 'z');
    os.flush();
    CHECK(!os);
    CHECK(buf.error() == ENOSPC);
  }
  ::close(fd);
}

TEST_CASE("safetensors: every fixture written by the Python tools reads and round-trips") {
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(DYAD_FIXTURES)) {
    if (entry.path().extension() != ".safetensors") continue;
    CAPTURE(entry.path().string());
    const auto st = dyad::load_safetensors(entry.path());
    CHECK(!st.tensors.empty());
    const auto again = dyad::SafeTensors::from_bytes(st.to_bytes(), "again");
    CHECK(again.metadata == st.metadata);
    REQUIRE(again.tensors.size() == st.tensors.size());
    for (std::size_t i = 0; i < st.tensors.size(); ++i) {
      CHECK(again.tensors[i].name == st.tensors[i].name);
      CHECK(again.tensors[i].shape == st.tensors[i].shape);
      CHECK(again.tensors[i].bytes == st.tensors[i].bytes);
    }
    ++files;
  }
  CHECK(files >= 1);  // at least io_small_expected.safetensors
}

TEST_CASE("safetensors: deep nesting is refused before the JSON parser builds it") {
  const std::string P = "ckpt.safetensors: safetensors: ";
  // Regression: 100000 levels overflowed the stack in nlohmann's parser (the DOM it builds and destroys).
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  CHECK(parse_error(R"({"a":)" + deep + "}", 0) ==
        P + "the header nests arrays and objects deeper than 8 levels (at byte 12 of the header)");
  CHECK(parse_error(R"({"a":{"dtype":"F32","shape":)" + deep + R"(,"data_offsets":[0,4]}})", 4) ==
        P + "the header nests arrays and objects deeper than 8 levels (at byte 34 of the header)");
  CHECK(parse_error(std::string(100000, '{'), 0) ==
        P + "the header nests arrays and objects deeper than 8 levels (at byte 8 of the header)");
  // Unbalanced or inside strings (escaped quotes too): brackets in text do not count.
  const auto st = dyad::SafeTensors::from_bytes(
      image(R"({"__metadata__":{"k":"[[[[[[[[[[{{{{{{{{{{"},"a\"[[[[[[[[[[":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})",
            zeros(1)),
      "x");
  CHECK(st.metadata.at("k") == "[[[[[[[[[[{{{{{{{{{{");
  CHECK(st.tensors.at(0).name == "a\"[[[[[[[[[[");
  CHECK(!dyad::detail::nesting_beyond("[[[[[[[[]]]]]]]]", 8));
  CHECK(dyad::detail::nesting_beyond("[[[[[[[[[]]]]]]]]]", 8) == std::optional<std::size_t>(8));
  CHECK(!dyad::detail::nesting_beyond(R"(["\\",[[[[[[[]]]]]]]])", 8));  // an escaped backslash ends the string
}

TEST_CASE("safetensors: the header length is capped at the format's 100 MB") {
  auto img = image("{}", {});
  dyad::detail::store_le<std::uint64_t>(img.data(), 100'000'001);
  CHECK(error_of([&] { dyad::SafeTensors::from_bytes(img, "big.safetensors"); }) ==
        "big.safetensors: safetensors: header length 100000001 exceeds the format's limit of 100000000 bytes");
  dyad::detail::store_le<std::uint64_t>(img.data(), ~std::uint64_t{0});
  CHECK(error_of([&] { dyad::SafeTensors::from_bytes(img, "big.safetensors"); }) ==
        "big.safetensors: safetensors: header length 18446744073709551615 exceeds the format's limit of 100000000 bytes");
}

TEST_CASE("safetensors: text from the file is bounded and escaped in error messages") {
  const std::string P = "ckpt.safetensors: safetensors: ";
  const std::string big(100000, 'n');
  auto bounded = [](const std::string& e) {
    CAPTURE(e);
    CHECK(e.size() < 700);
    CHECK(e.find("...[") != std::string::npos);
  };
  bounded(parse_error(R"({")" + big + R"(":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}})", 4));        // tensor name
  bounded(parse_error(R"({"a":{"dtype":")" + big + R"(","shape":[1],"data_offsets":[0,4]}})", 4));          // dtype
  bounded(parse_error(R"({"a":{")" + big + R"(":1,"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4));  // unknown key
  bounded(parse_error(R"({"a":{"dtype":"F32","shape":[")" + big + R"("],"data_offsets":[0,4]}})", 4));      // shape
  bounded(parse_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,")" + big + R"("]}})", 4));      // data_offsets
  bounded(parse_error(R"({"__metadata__":{")" + big + R"(":1}})", 0));                                      // metadata key
  bounded(parse_error(R"({")" + big + R"(":{},")" + big + R"(":{}})", 0));                                  // duplicate name
  bounded(parse_error(R"({")" + big + R"(":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4));  // duplicate key
  // The parser's own message quotes the token it stopped in.
  const std::string e = parse_error(R"({")" + std::string(1000000, 'q') + "\x01\"}", 0);
  bounded(e);
  CHECK(e.starts_with(P + "bad JSON header: [json.exception.parse_error"));
  // Control characters in a name are escaped, so the message stays one line.
  CHECK(parse_error(R"({"a\nb\u0001":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}})", 4) ==
        P + "tensor 'a\\x0ab\\x01': unknown dtype 'F31'");
  // Names of tensors built in code too.
  dyad::SafeTensors st;
  CHECK(error_of([&] { st.at(big); }).size() < 400);
}

TEST_CASE("safetensors: shapes: rank, zero dimensions, conversions check before allocating") {
  const std::string P = "ckpt.safetensors: safetensors: ";
  std::string dims = "1";
  for (int i = 1; i < 65; ++i) dims += ",1";
  CHECK(parse_error(R"({"a":{"dtype":"U8","shape":[)" + dims + R"(],"data_offsets":[0,1]}})", 1) ==
        P + "tensor 'a': shape has 65 dimensions, more than 64");
  // A zero dimension makes an empty tensor whatever the other dimensions are.
  const auto st =
      dyad::SafeTensors::from_bytes(image(R"({"e":{"dtype":"F64","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})", {}),
                                    "x");
  CHECK(st.at("e").numel() == 0);
  CHECK(st.get<double>("e").empty());
  // The fields are public: a shape that disagrees with the bytes is refused before the
  // conversion allocates for it (2^40 floats here).
  dyad::SafeTensors hand;
  hand.tensors.push_back({"big", dyad::DType::F32, {std::size_t{1} << 40}, {}});
  hand.tensors.push_back({"wrap", dyad::DType::F32, {std::size_t{1} << 62, 4}, {}});
  CHECK(error_of([&] { hand.get<float>("big"); }) ==
        "<memory>: safetensors: tensor 'big': byte size does not match dtype and shape");
  CHECK(error_of([&] { hand.get<double>("wrap"); }) ==
        "<memory>: safetensors: tensor 'wrap': byte size does not match dtype and shape");
}

TEST_CASE("safetensors: many tensors read in file order (no quadratic key lookup)") {
  // Zero-size tensors share an offset; their order is the header's, which is not sorted by name.
  std::string header = "{";
  const int n = 100000;
  for (int i = 0; i < n; ++i)
    header += (i ? ",\"" : "\"") + std::to_string(n - i) + R"(":{"dtype":"U8","shape":[0],"data_offsets":[0,0]})";
  header += "}";
  const auto st = dyad::SafeTensors::from_bytes(image(header, {}), "x");
  REQUIRE(st.tensors.size() == static_cast<std::size_t>(n));
  CHECK(st.tensors.front().name == std::to_string(n));
  CHECK(st.tensors[1].name == std::to_string(n - 1));
  CHECK(st.tensors.back().name == "1");
  CHECK(dyad::SafeTensors::from_bytes(st.to_bytes(), "again").tensors.at(12345).name == st.tensors.at(12345).name);
}

TEST_CASE("safetensors: a directory, a FIFO or a path through a file is refused with the path") {
  TempDir dir;
  CHECK(error_of([&] { dyad::load_safetensors(dir.path); }) == "dyad: cannot read '" + dir.path.string() + "': Is a directory");
  const fs::path fifo = dir.path / "pipe.safetensors";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // Opening a FIFO without a writer used to block forever.
  CHECK(error_of([&] { dyad::load_safetensors(fifo); }) == "dyad: cannot read '" + fifo.string() + "': not a regular file");
  const fs::path file = dir.path / "m.safetensors";
  dyad::save_safetensors(file, sample());
  CHECK(error_of([&] { dyad::load_safetensors(file / "x"); }) ==
        "dyad: cannot open '" + (file / "x").string() + "': Not a directory");
  if (::geteuid() != 0) {  // root reads anything
    fs::permissions(file, fs::perms::none);
    CHECK(error_of([&] { dyad::load_safetensors(file); }) == "dyad: cannot open '" + file.string() + "': Permission denied");
    fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  }
  CHECK(dyad::load_safetensors(file).tensors.size() == 4);
}
