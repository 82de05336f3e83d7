// Checkpoints against damaged and hostile files: the CRC-32C checksum, the configuration and
// metadata checked strictly, tensor shapes checked against the configuration before the model
// is built, and plain state_dicts whose shapes claim absurd sizes.
#include "toy_data.hpp"

#include <dyad/model.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace dyad;
using dyad::test::toy_dataset;

namespace {
const std::string kFixtures = DYAD_FIXTURES;

ModelConfig tiny_config() {
  ModelConfig c;
  c.roles = {{"a", "b", "c", "d"}, 1};
  c.hidden = 4;
  c.latent = 2;
  c.layers = 2;
  c.bidirectional = true;
  c.epochs = 1;
  c.batch_size = 4;
  c.seed = 3;
  return c;
}

struct TempDir {
  std::filesystem::path path = std::filesystem::temp_directory_path() / "dyad_test_checkpoint_hardening";
  TempDir() { std::filesystem::create_directories(path); }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::filesystem::path operator/(const std::string& name) const { return path / name; }
};

// A fitted tiny model saved to `path` (so every metadata entry, scorers included, is present).
void save_fitted(const std::filesystem::path& path) {
  const auto config = tiny_config();
  Model<float> m(config);
  m.fit(toy_dataset(20, config.roles, 2, 8, 10));
  m.save(path);
}

// Writes `st` as a consistent checkpoint: the checksum recomputed after an edit, so that the
// loader's other checks are what a test exercises.
void resave(SafeTensors st, const std::filesystem::path& path) {
  st.metadata[kChecksumKey] = tensor_checksum(st);
  st.save(path);
}

SafeTensors with_config(SafeTensors st, const std::string& key, const nlohmann::json& value) {
  auto j = nlohmann::json::parse(st.metadata.at("dyad.config"));
  j[key] = value;
  st.metadata["dyad.config"] = j.dump();
  return st;
}

std::string load_error(const std::filesystem::path& path, const LoadOptions& options = {}) {
  try {
    Model<float>::load(path, options);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

std::vector<char> read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
// Removes the old file first: ext4 flushes a file truncated and rewritten in place on close,
// which made thousands of rewrites wait on the disk.
void write_bytes(const std::filesystem::path& p, const std::vector<char>& b) {
  std::filesystem::remove(p);
  std::ofstream(p, std::ios::binary).write(b.data(), static_cast<std::streamsize>(b.size()));
}

// Bit-at-a-time CRC-32C, the definition the table-driven version must equal.
std::uint32_t crc32c_reference(std::span<const std::byte> data, std::uint32_t crc = 0) {
  crc = ~crc;
  for (const std::byte b : data) {
    crc ^= std::to_integer<std::uint32_t>(b);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ ((crc & 1u) ? 0x82F63B78u : 0u);
  }
  return ~crc;
}
std::span<const std::byte> bytes_of(std::string_view s) { return std::as_bytes(std::span<const char>(s.data(), s.size())); }
}  // namespace

TEST_CASE("crc32c: published check values, chaining, and the bitwise definition") {
  CHECK(detail::crc32c(bytes_of("123456789")) == 0xE3069283u);
  CHECK(detail::crc32c({}) == 0u);
  // RFC 3720 (iSCSI) B.4: 32 bytes of zeros, of ones, ascending and descending.
  std::vector<std::byte> b(32, std::byte{0});
  CHECK(detail::crc32c(b) == 0x8A9136AAu);
  std::fill(b.begin(), b.end(), std::byte{0xff});
  CHECK(detail::crc32c(b) == 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) b[std::size_t(i)] = std::byte(i);
  CHECK(detail::crc32c(b) == 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) b[std::size_t(i)] = std::byte(31 - i);
  CHECK(detail::crc32c(b) == 0x113FDB5Cu);
  // Every length and alignment through the 8-byte body and the tail; chaining at every split.
  std::vector<std::byte> data(100);
  Rng rng(5);
  for (auto& x : data) x = std::byte(rng.below(256));
  for (std::size_t start = 0; start < 9; ++start)
    for (std::size_t len = 0; start + len <= data.size(); len += 7) {
      const std::span<const std::byte> s(data.data() + start, len);
      CHECK(detail::crc32c(s) == crc32c_reference(s));
      CHECK(detail::crc32c(s.subspan(len / 3), detail::crc32c(s.first(len / 3))) == detail::crc32c(s));
    }
}

TEST_CASE("checkpoint checksum: saved, verified, and any flipped bit is refused") {
  TempDir dir;
  const auto good = dir / "m.safetensors";
  save_fitted(good);
  const SafeTensors st = load_safetensors(good);
  CHECK(st.metadata.at("format") == kCheckpointFormat);
  REQUIRE(st.metadata.count(kChecksumKey));
  CHECK(st.metadata.at(kChecksumKey).starts_with("crc32c:"));
  CHECK(st.metadata.at(kChecksumKey).size() == 15);
  CHECK(st.metadata.at(kChecksumKey) == tensor_checksum(st));
  CHECK_NOTHROW(verify_tensor_checksum(st, true));
  const auto reference = Model<float>::load(good);

  const std::vector<char> bytes = read_bytes(good);
  const std::size_t header_end =
      8 + static_cast<std::size_t>(detail::load_le<std::uint64_t>(reinterpret_cast<const std::byte*>(bytes.data())));
  const auto bad = dir / "bad.safetensors";

  SUBCASE("one bit of the weights: the error names the file and says it is damaged") {
    auto b = bytes;
    b[header_end + 37] ^= 0x10;  // inside encoder_rnn.weight_ih_l0; the value stays finite
    write_bytes(bad, b);
    CHECK_THROWS_WITH_AS(Model<float>::load(bad), doctest::Contains((bad.string() + ": the file is damaged").c_str()),
                         std::runtime_error);
  }
  SUBCASE("one bit of a metadata value (learning_rate's digits) is refused too") {
    auto b = bytes;
    const std::string header(b.begin() + 8, b.begin() + static_cast<std::ptrdiff_t>(header_end));
    const auto at = header.find("learning_rate");
    REQUIRE(at != std::string::npos);
    const auto digit = header.find_first_of("123456789", at);
    b[8 + digit] ^= 0x01;  // still a digit, still valid JSON: only the checksum can tell
    write_bytes(bad, b);
    CHECK_THROWS_WITH_AS(Model<float>::load(bad), doctest::Contains("damaged"), std::runtime_error);
  }
  SUBCASE("every single-bit flip anywhere in the file fails to load; none crashes") {
    // Each byte of the header and the length prefix, one bit each (cycling through the 8), and
    // every 13th byte of the weights.
    std::size_t refused = 0, tried = 0;
    for (std::size_t i = 0; i < bytes.size(); i += i < header_end ? 1 : 13) {
      auto b = bytes;
      b[i] = static_cast<char>(b[i] ^ (1 << (i % 8)));
      write_bytes(bad, b);
      ++tried;
      const std::string e = load_error(bad);
      if (!e.empty()) ++refused;
      else FAIL_CHECK("byte " << i << " bit " << i % 8 << " flipped loads without error");
    }
    CHECK(refused == tried);
  }
  SUBCASE("a NUL in the header's padding (JSON readers stop there) is refused") {
    auto b = bytes;
    REQUIRE(b[header_end - 1] == ' ');  // the writer pads to 8 bytes; this model needs padding
    b[header_end - 1] = '\0';
    write_bytes(bad, b);
    CHECK_THROWS_WITH(Model<float>::load(bad), doctest::Contains("NUL byte"));  // SafeTensors::from_bytes refuses it
  }
  SUBCASE("format 2 without the checksum is damaged; format 1 (older dyad) without it loads") {
    SafeTensors s = st;
    s.metadata.erase(kChecksumKey);
    s.save(bad);
    CHECK_THROWS_WITH_AS(Model<float>::load(bad),
                         doctest::Contains(
                             (bad.string() + ": the file is damaged: its metadata 'dyad.checksum' is missing").c_str()),
                         std::runtime_error);
    s.metadata["format"] = kCheckpointFormatV1;
    s.save(bad);
    const auto old = Model<float>::load(bad);
    CHECK(old.parameters().values() == reference.parameters().values());
    CHECK(old.has_latent_scorer());
    s.metadata["format"] = "dyad-checkpoint-9";
    s.save(bad);
    CHECK_THROWS_WITH(Model<float>::load(bad), doctest::Contains("format \"dyad-checkpoint-9\" is not one this dyad reads"));
  }
  SUBCASE("a checksum of another algorithm is refused") {
    SafeTensors s = st;
    s.metadata[kChecksumKey] = "sha256:00";
    s.save(bad);
    CHECK_THROWS_WITH(Model<float>::load(bad), doctest::Contains("not a crc32c checksum"));
  }
}

TEST_CASE("checkpoint: an unfitted model (no scorers) round-trips, float and double") {
  TempDir dir;
  const Model<double> m(tiny_config());
  m.save(dir / "u.safetensors");
  const auto back = Model<double>::load(dir / "u.safetensors");
  CHECK_FALSE(back.has_latent_scorer());
  CHECK(back.parameters().values() == m.parameters().values());
  CHECK(Model<float>::load(dir / "u.safetensors").parameters().values().size() > 0);
}

TEST_CASE("checkpoint checksum: files without one still load") {
  // The PyTorch-written fixtures carry no checksum.
  const auto torch = Model<float>::load(kFixtures + "/torch_state_dict_fivefold.safetensors", {preset("fivefold")});
  CHECK(torch.config().hidden == 64);
  for (const char* f : {"dyad_model.safetensors", "dyad_model_uni.safetensors", "gru_bi2.safetensors"}) {
    CAPTURE(f);
    const SafeTensors st = load_safetensors(kFixtures + "/" + f);
    CHECK_NOTHROW(verify_tensor_checksum(st));
    CHECK_THROWS_WITH(verify_tensor_checksum(st, true), doctest::Contains("is missing"));
  }
}

TEST_CASE("checkpoint config: absurd or inexact values are refused before the model is built") {
  TempDir dir;
  const auto good = dir / "m.safetensors";
  save_fitted(good);
  const SafeTensors st = load_safetensors(good);
  const auto bad = dir / "bad.safetensors";
  const std::string where = bad.string() + " (dyad.config): key '";
  struct Case {
    const char* key;
    nlohmann::json value;
    const char* says;
  };
  // hidden_size 200000 built a model of 10^11 weights (a double free when Eigen's resize threw);
  // num_layers 2e9 hung; epochs 4294967297 trained one epoch.
  const Case cases[] = {{"hidden_size", 200000, "hidden_size': must be an integer in [2, 8192]"},
                        {"num_layers", 2e9, "num_layers': must be an integer in [1, 16]"},
                        {"epochs", 4294967297ull, "epochs': must be an integer in [1, 1000000], got 4294967297"},
                        {"latent_size", 1e10, "latent_size'"},
                        {"batch_size", 1.5, "batch_size'"},
                        {"threads", -1, "threads'"},
                        {"bidirectional", 1, "bidirectional': must be true or false"},
                        {"learning_rate", "0.1", "learning_rate': must be a number"},
                        {"condition_columns", true, "condition_columns'"}};
  for (const auto& c : cases) {
    CAPTURE(c.key);
    resave(with_config(st, c.key, c.value), bad);
    CHECK_THROWS_WITH_AS(Model<float>::load(bad), doctest::Contains((where + c.says).c_str()), std::runtime_error);
  }
  // A valid configuration whose sizes the tensors do not have: the error names the tensor and
  // the configuration; the model (here ~50M weights) is never built.
  resave(with_config(st, "hidden_size", 2048), bad);
  CHECK_THROWS_WITH_AS(Model<float>::load(bad),
                       doctest::Contains((bad.string() + ": safetensors: tensor 'encoder_rnn.weight_ih_l0': has shape [12, 4], "
                                                         "but a model with hidden_size 2048")
                                             .c_str()),
                       std::runtime_error);
  resave(with_config(st, "bidirectional", false), bad);
  CHECK_THROWS_WITH(Model<float>::load(bad), doctest::Contains("is not a parameter of a DyAD model with hidden_size 4"));
  // Within the caps but too many parameters in total.
  resave(with_config(with_config(with_config(st, "hidden_size", 8192), "latent_size", 4096), "num_layers", 16), bad);
  CHECK_THROWS_WITH_AS(Model<float>::load(bad), doctest::Contains("parameters, above the cap"), std::runtime_error);
  // A tensor of the right name with the wrong shape, configuration unchanged.
  SafeTensors reshaped = st;
  for (auto& t : reshaped.tensors)
    if (t.name == "mean2latent.2.weight") t.shape = {t.shape[1], t.shape[0]};
  resave(reshaped, bad);
  CHECK_THROWS_WITH(Model<float>::load(bad),
                    doctest::Contains("tensor 'mean2latent.2.weight': has shape [2, 1], but a model with hidden_size 4"));
  // A missing tensor.
  SafeTensors missing = st;
  std::erase_if(missing.tensors, [](const Tensor& t) { return t.name == "latent2hidden.bias"; });
  resave(missing, bad);
  CHECK_THROWS_WITH(Model<float>::load(bad), doctest::Contains("tensor 'latent2hidden.bias': missing from the checkpoint"));
  // An integer dtype.
  SafeTensors ints = st;
  for (auto& t : ints.tensors)
    if (t.name == "hidden2mean.bias") t.dtype = DType::I32;
  resave(ints, bad);
  CHECK_THROWS_WITH(Model<float>::load(bad), doctest::Contains("tensor 'hidden2mean.bias': dtype I32"));
}

TEST_CASE("checkpoint metadata: normaliser, mileage and scorers are checked against the configuration") {
  TempDir dir;
  const auto good = dir / "m.safetensors";
  save_fitted(good);
  const SafeTensors st = load_safetensors(good);
  const auto bad = dir / "bad.safetensors";
  auto refused = [&](const std::string& key, const char* field, const nlohmann::json& value, const std::string& says) {
    SafeTensors s = st;
    auto j = nlohmann::json::parse(s.metadata.at(key));
    j[field] = value;
    s.metadata[key] = j.dump();
    resave(s, bad);
    CAPTURE(key);
    CAPTURE(field);
    CHECK_THROWS_WITH_AS(Model<float>::load(bad),
                         doctest::Contains((bad.string() + " (" + key + "): key '" + field + "': " + says).c_str()),
                         std::runtime_error);
  };
  refused("dyad.normalizer", "columns", {"a", "b", "c", "x"}, "is [\"a\",\"b\",\"c\",\"x\"], but the encoder columns");
  refused("dyad.normalizer", "mean", {0.0, 1.0}, "has 2 values, expected 4");
  refused("dyad.normalizer", "mean", {0, 1, 2, "3"}, "must be a list of finite numbers");
  refused("dyad.normalizer", "scale", {1.0, 1.0, 0.0, 1.0}, "column 'c' has scale 0.0 (must be > 0)");
  refused("dyad.normalizer", "scale", {1.0, 1.0, nullptr, 1.0}, "must be a list of finite numbers");  // NaN saves as null
  refused("dyad.mileage", "min", "0", "must be a number");
  refused("dyad.mileage", "max", -1e9, "must be >= min (");
  refused("dyad.latent", "mean", {0.0, 0.0, 0.0}, "has 3 values, expected 2");
  refused("dyad.latent", "covariance", {1.0, 0.0, 0.0}, "has 3 values, expected 4");
  refused("dyad.latent", "covariance", {1.0, 0.0, 0.0, -1.0}, "dyad::detect::LatentScorer: covariance is not positive definite");
  refused("dyad.latent", "pattern_mean", {0.0}, "has 1 values, expected 3");
  refused("dyad.latent", "combiner_stds", {1.0, 0.0}, "must be > 0, got 0.0");
  refused("dyad.latent", "combiner_means", {1.0}, "has 1 values, expected 2");
  // Subnormal scales: dividing by one makes every normalised value or score infinite.
  refused("dyad.normalizer", "scale", {1.0, 1.0, 1e-320, 1.0}, "column 'c' has scale 1e-320 (must be > 0 and not subnormal)");
  refused("dyad.latent", "combiner_stds", {1.0, 1e-320}, "must be > 0, got 1e-320 (subnormal)");
  SafeTensors s = st;
  auto j = nlohmann::json::parse(s.metadata.at("dyad.mileage"));
  j.erase("max");
  s.metadata["dyad.mileage"] = j.dump();
  resave(s, bad);
  CHECK_THROWS_WITH(Model<float>::load(bad), doctest::Contains("(dyad.mileage): key 'max': is missing"));
  s = st;
  s.metadata.erase("dyad.normalizer");
  resave(s, bad);
  CHECK_THROWS_WITH(Model<float>::load(bad), doctest::Contains("metadata 'dyad.normalizer' is missing"));
}

TEST_CASE("checkpoint metadata nested 200,000 levels deep is refused, naming the file, the key and the nesting limit") {
  // Each value is one a reader quotes in its error (json_excerpt), which used to dump the whole
  // value recursively and overflow the stack. The file is sealed with a valid checksum.
  TempDir dir;
  const auto good = dir / "m.safetensors";
  save_fitted(good);
  const SafeTensors st = load_safetensors(good);
  const auto bad = dir / "deep.safetensors";
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  const std::pair<const char*, const char*> cases[] = {{"dyad.normalizer", "mean"},
                                                       {"dyad.mileage", "min"},
                                                       {"dyad.config", "epochs"},
                                                       {"dyad.latent", "mean"},
                                                       {"dyad.calibration", "h_per_mille"}};
  for (const auto& [key, field] : cases) {
    CAPTURE(key);
    SafeTensors s = st;
    // The field's value replaced as text: building the deep value and dumping it would recurse.
    nlohmann::json j = s.metadata.count(key) ? nlohmann::json::parse(s.metadata.at(key)) : nlohmann::json::object();
    j[field] = "DEEP";
    std::string text = j.dump();
    text.replace(text.find("\"DEEP\""), 6, deep);
    s.metadata[key] = text;
    resave(s, bad);
    CHECK(load_error(bad) == bad.string() + ": metadata '" + key +
                                 "': JSON nests arrays and objects deeper than 64 levels (at byte " +
                                 std::to_string(text.find(std::string(64, '[')) + 63) + "), dyad's nesting limit");
  }
}

TEST_CASE("plain state_dicts: sizes read off hostile shapes are bounded before use") {
  TempDir dir;
  const auto good = dir / "m.safetensors";
  save_fitted(good);
  SafeTensors plain = load_safetensors(good);
  plain.metadata.clear();
  ModelConfig roles_only;
  roles_only.roles = tiny_config().roles;
  const auto path = dir / "plain.safetensors";
  plain.save(path);
  CHECK(Model<float>::load(path, {roles_only}).config().hidden == 4);

  // Zero-sized dimensions let a tiny file claim any size.
  auto with_shape = [&](const std::string& name, std::vector<std::size_t> shape) {
    SafeTensors s = plain;
    for (auto& t : s.tensors)
      if (t.name == name) {
        t.shape = std::move(shape);
        t.bytes.clear();
      }
    s.save(path);
    return load_error(path, {roles_only});
  };
  // 2^32 + 4 wrapped to 4 through static_cast<int>.
  CHECK(with_shape("encoder_rnn.weight_hh_l0", {0, 4294967300ull})
            .find("tensor 'encoder_rnn.weight_hh_l0': dimension 1 (hidden_size) is 4294967300, outside [2, 8192]") !=
        std::string::npos);
  CHECK(with_shape("encoder_rnn.weight_hh_l0", {0, 200000}).find("hidden_size") != std::string::npos);
  CHECK(with_shape("hidden2mean.weight", {200000000, 0}).find("tensor 'hidden2mean.weight': dimension 0 (latent_size)") !=
        std::string::npos);
  CHECK(with_shape("encoder_rnn.weight_ih_l0", {0, 5000}).find("(encoder columns) is 5000") != std::string::npos);
  for (const auto& e : {with_shape("encoder_rnn.weight_hh_l0", {0, 200000}), with_shape("hidden2mean.weight", {7, 0})})
    CHECK(e.find(path.string()) == 0);

  // Layers are counted up to the cap, not as far as the file's names go.
  SafeTensors deep = plain;
  for (int l = 2; l <= limits::num_layers; ++l)
    deep.add(Tensor{"encoder_rnn.weight_ih_l" + std::to_string(l), DType::F32, {0}, {}});
  deep.save(path);
  CHECK(load_error(path, {roles_only}).find("the encoder has more than 16 layers") != std::string::npos);
  // A layer count within the cap whose tensors the file lacks: the shape check names one.
  SafeTensors three = plain;
  three.add(Tensor{"encoder_rnn.weight_ih_l2", DType::F32, {0}, {}});
  three.save(path);
  CHECK(load_error(path, {roles_only})
            .find("tensor 'encoder_rnn.weight_ih_l2': has shape [0], but a model with hidden_size 4, "
                  "latent_size 2, num_layers 3") != std::string::npos);
}

TEST_CASE("plain state_dicts: the cell is read off the weights (H, 3H, 4H rows); a conflict names the tensor") {
  auto weights_of = [](const auto& model) {  // a PyTorch state_dict: the weights, no metadata
    SafeTensors st;
    detail::add_weights(st, model);
    return st;
  };
  TempDir dir;
  const auto path = dir / "plain.safetensors";
  ModelConfig roles_only;
  roles_only.roles = tiny_config().roles;
  for (const Cell cell : {Cell::gru, Cell::rnn, Cell::lstm}) {
    CAPTURE(to_string(cell));
    ModelConfig c = tiny_config();
    c.cell = cell;
    Model<double> m(c);
    for (const auto& slice : m.parameters().slices()) m.parameters().value(slice.name).setRandom();
    weights_of(m).save(path);
    // Read as whatever the configuration says (the default, gru): the cell comes from the weights.
    Model<double> back = Model<double>::load(path, {roles_only});
    CHECK(back.config().cell == cell);
    for (const auto& slice : m.parameters().slices())
      CHECK(back.parameters().value(slice.name) == m.parameters().value(slice.name));
    // A configuration that names another cell is refused with the tensor that shows it.
    ModelConfig other = roles_only;
    other.cell = cell == Cell::lstm ? Cell::gru : Cell::lstm;
    const std::string says = "tensor 'encoder_rnn.weight_hh_l0': has " + std::to_string(gates(cell) * 4) +
                             " rows = " + std::to_string(gates(cell)) + " x hidden size 4, the weights of " +
                             std::string(to_string(cell)) + " cells, but the configuration's rnn_type is " +
                             std::string(to_string(other.cell));
    CHECK_THROWS_WITH_AS(Model<double>::load(path, {other, true}), doctest::Contains(says.c_str()), std::runtime_error);
    other.cell = cell;
    CHECK(Model<double>::load(path, {other, true}).config().cell == cell);
  }
  // An encoder of one cell and a decoder of another: the first decoder tensor is named.
  ModelConfig c = tiny_config();
  c.cell = Cell::lstm;
  const SafeTensors lstm = weights_of(Model<float>(c));
  SafeTensors mixed = weights_of(Model<float>(tiny_config()));
  for (auto& t : mixed.tensors)
    if (t.name.starts_with("encoder_rnn.")) t = *lstm.find(t.name);
  mixed.save(path);
  CHECK(load_error(path, {roles_only})
            .find("tensor 'decoder_rnn.weight_ih_l0': has shape [12, 1], but a model with "
                  "hidden_size 4, latent_size 2, num_layers 2, bidirectional lstm") != std::string::npos);
  // Rows that are no cell's.
  SafeTensors odd = weights_of(Model<float>(tiny_config()));
  for (auto& t : odd.tensors)
    if (t.name == "encoder_rnn.weight_hh_l0") {
      t.shape = {8, 4};
      t.bytes.resize(8 * 4 * sizeof(float));
    }
  odd.save(path);
  CHECK(load_error(path, {roles_only})
            .find("tensor 'encoder_rnn.weight_hh_l0': has 8 rows for hidden size 4, which is no "
                  "cell dyad implements (H rows: rnn, 3H: gru, 4H: lstm)") != std::string::npos);
}
