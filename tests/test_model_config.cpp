// ModelConfig: strict number conversion of params JSON keys, the size caps, the parameter
// layout computed without a model, and the parameter store's strong exception guarantee.
#include <dyad/model.hpp>

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <new>
#include <string>
#include <vector>

using namespace dyad;

namespace {
nlohmann::json parse(const std::string& text) { return nlohmann::json::parse(text); }

// The error config_from_json gives for {"<key>": <value>}, or "" when it accepts it.
std::string error_for(const std::string& key, const std::string& value) {
  try {
    config_from_json(parse("{\"" + key + "\": " + value + "}"), ModelConfig{}, "params.json");
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

std::filesystem::path write_temp(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / name;
  std::ofstream(path) << text;
  return path;
}

ModelConfig small_config(int layers = 2, bool bidirectional = true) {
  ModelConfig c;
  c.roles = {{"a", "b", "c", "d", "e"}, 2};
  c.hidden = 5;  // odd: the mileage head has hidden / 2 units
  c.latent = 3;
  c.layers = layers;
  c.bidirectional = bidirectional;
  return c;
}
}  // namespace

TEST_CASE("config: integer keys take exact integers in range, naming the source and the key") {
  for (const char* key : {"hidden_size", "latent_size", "num_layers", "epochs", "batch_size", "threads", "condition_columns"}) {
    CAPTURE(key);
    // 4294967297 wrapped to 1 through get<int>; 1e10 was undefined behaviour; 1.5 truncated.
    for (const char* bad : {"4294967297", "1e10", "1.5", "-1", "0", "true", "\"12\"", "null", "[3]", "2147483648", "1e300"}) {
      CAPTURE(bad);
      const std::string e = error_for(key, bad);
      CHECK(e.find("params.json") != std::string::npos);
      CHECK(e.find(std::string("'") + key + "'") != std::string::npos);
    }
    CHECK(error_for(key, "3").empty());
    CHECK(error_for(key, "3.0").empty());  // integral floats, as Python tools may write them
  }
  CHECK(config_from_json(parse(R"({"hidden_size": 128.0, "epochs": 7})")).hidden == 128);
  CHECK(config_from_json(parse(R"({"epochs": 7})")).epochs == 7);
  CHECK_THROWS_WITH_AS(config_from_json(parse(R"({"epochs": 4294967297})"), ModelConfig{}, "p.json"),
                       doctest::Contains("p.json: key 'epochs': must be an integer in [1, 1000000], got 4294967297"),
                       std::invalid_argument);
  // seed: the whole uint64 range, nothing outside it.
  CHECK(config_from_json(parse(R"({"seed": 18446744073709551615})")).seed == std::numeric_limits<std::uint64_t>::max());
  CHECK(config_from_json(parse(R"({"seed": 0})")).seed == 0);
  for (const char* bad : {"-1", "18446744073709551616", "1.5", "false", "\"7\""}) {
    CAPTURE(bad);
    CHECK(error_for("seed", bad).find("'seed'") != std::string::npos);
  }
}

TEST_CASE("config: number, boolean and string keys take only their own type") {
  for (const char* key : {"learning_rate", "noise_scale", "nll_weight", "latent_label_weight", "anneal0", "k", "x0", "weight_decay",
                          "cosine_factor"}) {
    CAPTURE(key);
    for (const char* bad : {"\"0.1\"", "true", "null", "[1]", "{}"}) {
      CAPTURE(bad);
      CHECK(error_for(key, bad).find(std::string("params.json: key '") + key + "'") != std::string::npos);
    }
    CHECK(error_for(key, "0.25").empty());
    CHECK(error_for(key, "2").empty());
  }
  for (const char* key : {"bidirectional", "shuffle", "normalize"}) {
    CAPTURE(key);
    for (const char* bad : {"1", "0", "\"true\"", "null"})
      CHECK(error_for(key, bad).find(std::string("'") + key + "'") != std::string::npos);
    CHECK(error_for(key, "false").empty());
  }
  for (const char* key : {"task", "rnn_type", "anneal_function"}) {
    CAPTURE(key);
    CHECK(error_for(key, "5").find(std::string("params.json: key '") + key + "'") != std::string::npos);
  }
  CHECK(error_for("columns", "[\"a\", 2]").find("'columns'") != std::string::npos);
  CHECK(error_for("columns", "\"a\"").find("'columns'") != std::string::npos);
  CHECK(error_for("task", "\"nope\"").find("params.json: key 'task': dyad: unknown task 'nope'") != std::string::npos);
  CHECK(error_for("anneal_function", "\"cubic\"").find("key 'anneal_function'") != std::string::npos);
  CHECK_THROWS_WITH_AS(config_from_json(parse("[1, 2]")), doctest::Contains("expected a JSON object"), std::invalid_argument);
}

TEST_CASE("config: a user's own task name with explicit columns round-trips") {
  ModelConfig c = small_config();
  c.task = "my_pack";
  const ModelConfig back = config_from_json(c.to_json());
  CHECK(back.task == "my_pack");
  CHECK(back.roles.encoder == c.roles.encoder);
  CHECK(back.roles.condition == c.roles.condition);
  // A known task still supplies the conditioning count when only columns are given.
  const auto b = config_from_json(parse(R"({"task": "brand_b", "columns": ["a", "b", "c", "d", "e", "f"]})"));
  CHECK(b.roles.condition == 4);
}

TEST_CASE("config files: a missing file and broken JSON are named with the path (and the byte)") {
  const auto missing = std::filesystem::temp_directory_path() / "dyad_no_such_config.json";
  std::filesystem::remove(missing);
  CHECK_THROWS_WITH_AS(config_from_file(missing),
                       (missing.string() + ": cannot open the config file: No such file or directory").c_str(), std::runtime_error);
  const auto broken = write_temp("dyad_params_broken.json", "{\"hidden_size\": 8,\n \"latent_size\": }");
  CHECK_THROWS_WITH_AS(config_from_file(broken), doctest::Contains((broken.string() + ": invalid JSON at byte 36: ").c_str()),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(config_from_file(broken), doctest::Contains("line 2, column 17"), std::invalid_argument);
  // The ingest spec reads its file the same way (dyad::detail::read_json_file).
  CHECK_THROWS_WITH_AS(detail::read_json_file(broken, "the ingest spec"),
                       doctest::Contains((broken.string() + ": invalid JSON at byte 36").c_str()), std::invalid_argument);
  CHECK_THROWS_WITH_AS(detail::read_json_file(missing, "the ingest spec"),
                       doctest::Contains(": cannot open the ingest spec: No such file"), std::runtime_error);
  std::filesystem::remove(broken);
}

TEST_CASE("config: absurd sizes are refused with the key and the cap, before anything is allocated") {
  // The audit's inputs: hidden_size 200000 (double free), num_layers 2e9 (hang).
  const auto big = write_temp("dyad_params_big.json", R"({"task": "ev", "hidden_size": 200000})");
  CHECK_THROWS_WITH_AS(config_from_file(big),
                       doctest::Contains((big.string() + ": key 'hidden_size': must be an integer in [2, 8192]").c_str()),
                       std::invalid_argument);
  const auto deep = write_temp("dyad_params_deep.json", R"({"num_layers": 2e9})");
  CHECK_THROWS_WITH_AS(config_from_file(deep), doctest::Contains("key 'num_layers': must be an integer in [1, 16]"),
                       std::invalid_argument);
  std::filesystem::remove(big);
  std::filesystem::remove(deep);

  // Configurations built in code meet the same caps in validate() (and so in Model's constructor).
  auto refused = [](auto change, const char* what) {
    ModelConfig c = preset("fivefold");
    change(c);
    CAPTURE(what);
    CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains(what), std::invalid_argument);
    CHECK_THROWS_WITH_AS(Model<float>{c}, doctest::Contains(what), std::invalid_argument);
  };
  refused([](ModelConfig& c) { c.hidden = 200000; }, "'hidden_size' must be in [2, 8192]");
  refused([](ModelConfig& c) { c.hidden = 1; }, "'hidden_size' must be in [2, 8192]");
  refused([](ModelConfig& c) { c.latent = 4097; }, "'latent_size' must be in [1, 4096]");
  refused([](ModelConfig& c) { c.layers = 2000000000; }, "'num_layers' must be in [1, 16]");
  refused([](ModelConfig& c) { c.layers = 0; }, "'num_layers'");
  refused([](ModelConfig& c) { c.epochs = 1000001; }, "'epochs' must be in [1, 1000000]");
  refused([](ModelConfig& c) { c.batch_size = 65537; }, "'batch_size' must be in [1, 65536]");
  refused([](ModelConfig& c) { c.threads = 1025; }, "'threads' must be in [1, 1024]");
  refused([](ModelConfig& c) { c.threads = 0; }, "'threads'");
  refused([](ModelConfig& c) { c.lr = std::numeric_limits<double>::quiet_NaN(); }, "'learning_rate'");
  refused([](ModelConfig& c) { c.weight_decay = std::numeric_limits<double>::infinity(); }, "'weight_decay'");
  refused([](ModelConfig& c) { c.k = std::numeric_limits<double>::quiet_NaN(); }, "'k'");
  refused([](ModelConfig& c) { c.noise_scale = -1; }, "'noise_scale'");
  refused(
      [](ModelConfig& c) {
        c.roles.encoder.clear();
        for (int i = 0; i < 1025; ++i) c.roles.encoder.push_back("c" + std::to_string(i));
      },
      "above the cap 1024");
  // Each size within its cap, but together too big a model.
  refused(
      [](ModelConfig& c) {
        c.hidden = limits::hidden_size;
        c.latent = limits::latent_size;
        c.layers = limits::num_layers;
      },
      "parameters, above the cap");
  // Every upstream preset fits, the largest with room.
  for (const auto& name : preset_names()) {
    CAPTURE(name);
    const ModelConfig c = preset(name);
    CHECK_NOTHROW(c.validate());
    CHECK(c.hidden * 4 <= limits::hidden_size);
    CHECK(c.parameter_count() * 10 < limits::parameters);
  }
  // The largest sizes the caps admit do not overflow the closed-form count.
  ModelConfig max = preset("fivefold");
  max.roles.encoder.clear();
  for (std::size_t i = 0; i < limits::columns; ++i) max.roles.encoder.push_back("c" + std::to_string(i));
  max.hidden = limits::hidden_size, max.latent = limits::latent_size, max.layers = limits::num_layers;
  CHECK(max.parameter_count() > 0);
  CHECK(max.factor() * max.hidden <= (1 << 18));
}

TEST_CASE("parameter_shapes and parameter_count describe the model without building it") {
  for (const Cell cell : {Cell::gru, Cell::rnn, Cell::lstm})
    for (const int layers : {1, 2, 3})
      for (const bool bi : {false, true}) {
        CAPTURE(to_string(cell));
        CAPTURE(layers);
        CAPTURE(bi);
        ModelConfig c = small_config(layers, bi);
        c.cell = cell;
        CHECK(config_from_json(c.to_json()).cell == cell);
        CHECK(parameter_shapes(c)[1].shape == std::vector<std::int64_t>{gates(cell) * c.hidden, c.hidden});
        const Model<float> m(c);
        const auto shapes = parameter_shapes(c);
        REQUIRE(shapes.size() == m.parameters().slices().size());
        std::int64_t total = 0;
        for (std::size_t i = 0; i < shapes.size(); ++i) {
          CHECK(shapes[i].name == m.parameters().slices()[i].name);
          CHECK(shapes[i].shape == m.parameters().slices()[i].shape);
          std::int64_t n = 1;
          for (const auto d : shapes[i].shape) n *= d;
          total += n;
        }
        CHECK(total == m.parameters().count());
        CHECK(c.parameter_count() == total);
      }
}

TEST_CASE("Parameters::add: overflowing or unallocatable shapes leave the store as it was") {
  Parameters<float> p;
  p.add("a", {3, 5});
  p.value("a").setConstant(2.f);
  const auto before_slices = p.slices();
  const Vector<float> before_values = p.values();
  auto unchanged = [&] {
    CHECK(p.slices().size() == before_slices.size());
    CHECK(p.slices()[0].name == "a");
    CHECK(p.values() == before_values);
    CHECK(p.grads().size() == before_values.size());
  };
  // 2^62 floats: the byte count overflows size_t, so Eigen's allocation throws bad_alloc
  // (without asking malloc). It used to free the buffer first and leave it dangling: a double free.
  CHECK_THROWS_AS(p.add("huge", {std::int64_t{1} << 31, std::int64_t{1} << 31}), std::bad_alloc);
  unchanged();
  CHECK_THROWS_AS(p.add("overflow", {std::int64_t{1} << 40, std::int64_t{1} << 40}), std::length_error);
  unchanged();
  CHECK_THROWS_AS(p.add("almost", {std::numeric_limits<std::int64_t>::max()}), std::length_error);  // padding overflows
  unchanged();
  CHECK_THROWS_AS(p.add("negative", {-1, 4}), std::invalid_argument);
  unchanged();
  CHECK_THROWS_AS(p.add("a", {2}), std::logic_error);
  unchanged();
  // Still usable: a new parameter is zeroed and earlier values are kept.
  p.add("b", {4});
  CHECK(p.value("a") == Vector<float>::Constant(15, 2.f));
  CHECK(p.value("b") == Vector<float>::Zero(4));
  CHECK(p.slice("b").offset % Parameters<float>::kPad == 0);
  Parameters<double> q;
  CHECK_THROWS_AS(q.add("huge", {std::int64_t{1} << 31, std::int64_t{1} << 31}), std::bad_alloc);
  CHECK(q.slices().empty());
  CHECK(q.values().size() == 0);
}

TEST_CASE("Parameters::add_all registers a layout at once, like add() one at a time") {
  const std::vector<std::pair<std::string, std::vector<std::int64_t>>> layout = {{"w", {3, 5}}, {"b", {3}}, {"s", {}}};
  Parameters<float> one, all;
  for (const auto& [name, shape] : layout) one.add(name, shape);
  all.add_all(layout);
  REQUIRE(all.slices().size() == one.slices().size());
  for (std::size_t i = 0; i < layout.size(); ++i) {
    CHECK(all.slices()[i].name == one.slices()[i].name);
    CHECK(all.slices()[i].shape == one.slices()[i].shape);
    CHECK(all.slices()[i].offset == one.slices()[i].offset);
  }
  CHECK(all.values() == one.values());
  // A layer takes the slice already registered with its shape; another shape is a bug.
  CHECK(all.add_or_find("b", {3}) == 1);
  CHECK(all.add_or_find("new", {2}) == 3);
  CHECK_THROWS_AS(all.add_or_find("w", {5, 3}), std::logic_error);
  // All or nothing: a bad entry (or a name twice) leaves the store as it was.
  all.value("w").setConstant(1.f);
  const Vector<float> before = all.values();
  CHECK_THROWS_AS(all.add_all(std::vector<std::pair<std::string, std::vector<std::int64_t>>>{{"x", {2}}, {"x", {2}}}),
                  std::logic_error);
  CHECK_THROWS_AS(all.add_all(std::vector<std::pair<std::string, std::vector<std::int64_t>>>{{"y", {2}}, {"z", {-2}}}),
                  std::invalid_argument);
  CHECK(all.slices().size() == 4);
  CHECK(all.values() == before);
}

TEST_CASE("Model registers exactly the tensors parameter_shapes lists, in one allocation") {
  ModelConfig c;
  c.hidden = 6;
  c.latent = 3;
  c.layers = 2;
  const Model<float> m(c);
  const auto shapes = parameter_shapes(c);
  REQUIRE(m.parameters().slices().size() == shapes.size());
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    CHECK(m.parameters().slices()[i].name == shapes[i].name);
    CHECK(m.parameters().slices()[i].shape == shapes[i].shape);
  }
}

TEST_CASE("upstream's params files load unchanged; their unused keys are listed, other unknown keys refused") {
  // Upstream's brand-1 file as shipped: its task name, its unused keys and its data paths.
  const auto j = parse(R"({"project": "DyAD", "jobs": 8, "model_type": "rnn", "task": "batterybranda",
    "epochs": 3, "batch_size": 128, "learning_rate": 0.005, "cosine_factor": 0.1, "rnn_type": "gru",
    "hidden_size": 128, "num_layers": 2, "bidirectional": true, "latent_size": 8, "noise_scale": 1.0,
    "anneal_function": "linear", "k": 0.0025, "x0": 500, "anneal0": 0.01, "nll_weight": 10,
    "latent_label_weight": 0.001, "variable_length": false, "min_length": 30, "kernel_size": 3, "nhead": 2,
    "dim_feedforward": 2048, "smoothing": 8, "granularity_all": 1000, "num_granularity_all": 100,
    "granularity_car": 1000, "num_granularity_car": 200, "use_flag": "rec_error", "save_model_path": "./dyad_vae_save",
    "train_path": "../data/train", "test_path": "../data/test", "evaluation_path": "../data/eval"})");
  std::vector<std::string> ignored;
  const ModelConfig c = config_from_json(j, ModelConfig{}, "params_brand1.json", &ignored);
  CHECK(c.task == "brand_a");
  CHECK(c.roles.encoder == task_roles("brand_a").encoder);
  CHECK(c.hidden == 128);
  CHECK(c.layers == 2);
  CHECK(c.min_length == 30);
  CHECK(ignored == std::vector<std::string>{"dim_feedforward", "evaluation_path", "granularity_all", "granularity_car", "jobs",
                                            "kernel_size", "model_type", "nhead", "num_granularity_all", "num_granularity_car",
                                            "project", "save_model_path", "smoothing", "test_path", "train_path", "use_flag",
                                            "variable_length"});
  CHECK(config_from_json(parse(R"({"task": "batterybrandb"})")).roles.condition == 4);
  CHECK(task_roles("batterybrandb").encoder == task_roles("brand_b").encoder);
  // min_length survives a checkpoint's to_json.
  CHECK(config_from_json(c.to_json()).min_length == 30);

  // A typo is not a default: the error names the file, the key and the closest known key.
  CHECK(error_for("epoch", "1") == "params.json: key 'epoch': unknown key (did you mean 'epochs'?)");
  CHECK(error_for("hiden_size", "128") == "params.json: key 'hiden_size': unknown key (did you mean 'hidden_size'?)");
  CHECK(error_for("min_length", "-1").find("key 'min_length': must be an integer in [0, ") != std::string::npos);
  CHECK(error_for("variable_length", "1") == "params.json: key 'variable_length': must be true or false, got 1");
  // An untrusted key is quoted with a bounded length.
  CHECK(error_for(std::string(5000, 'x'), "1").size() < 300);
}

TEST_CASE("a built model's training options change; its architecture does not") {
  ModelConfig c;
  c.hidden = 6;
  c.latent = 3;
  Model<float> m(c);
  TrainingOptions t = m.config();
  t.lr = 0.5;
  t.epochs = 2;
  m.set_training(t);
  CHECK(m.config().lr == 0.5);
  CHECK(m.config().epochs == 2);
  CHECK(m.architecture().hidden == 6);
  CHECK(m.architecture().latent == 3);
  t.lr = -1;  // invalid: refused, the model keeps its options
  CHECK_THROWS_WITH_AS(m.set_training(t), doctest::Contains("learning_rate"), std::invalid_argument);
  CHECK(m.config().lr == 0.5);
}
