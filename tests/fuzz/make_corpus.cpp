// Writes the generated seed files of the fuzz corpora: tiny dyad checkpoints and plain
// state_dicts (corpus/checkpoint), safetensors of every dtype (corpus/safetensors), the
// presets as params JSON (corpus/params_json), the ingest specs `dyad simulate --spec-out`
// writes (corpus/spec) and every JSON cell of the fleet_db target's database
// (corpus/fleet_db). Deterministic; run after a format change:
//   fuzz_make_corpus tests/fuzz/corpus
#include "../toy_data.hpp"
#include "fleet_db_fixture.hpp"

#include <dyad/ensemble.hpp>
#include <dyad/io/segment_store.hpp>
#include <dyad/sim/telemetry.hpp>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

namespace fs = std::filesystem;
using namespace dyad;

namespace {

ModelConfig tiny(const char* task, bool bidirectional, int layers) {
  ModelConfig c;
  c.task = task;
  c.roles = task_roles(task);
  c.hidden = 4;
  c.latent = 2;
  c.layers = layers;
  c.bidirectional = bidirectional;
  c.epochs = 1;
  c.batch_size = 8;
  c.seed = 3;
  return c;
}

// The weights only, as PyTorch's state_dict exported to safetensors would hold them.
SafeTensors state_dict(const Model<float>& m, bool as_double) {
  SafeTensors st;
  const auto& p = m.parameters();
  for (const auto& s : p.slices()) {
    std::vector<std::size_t> shape(s.shape.begin(), s.shape.end());
    const float* v = p.values().data() + s.offset;
    if (as_double) st.add<double>(s.name, shape, std::vector<double>(v, v + s.size));
    else st.add<float>(s.name, shape, std::vector<float>(v, v + s.size));
  }
  return st;
}

Tensor raw(std::string name, DType dt, std::vector<std::size_t> shape) {
  std::size_t n = dtype_size(dt);
  for (auto d : shape) n *= d;
  std::vector<std::byte> bytes(n);
  for (std::size_t i = 0; i < n; ++i) bytes[i] = static_cast<std::byte>(i * 37 + 11);
  return {std::move(name), dt, std::move(shape), std::move(bytes)};
}

void write_text(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_corpus CORPUS_DIR\n");
    return 2;
  }
  const fs::path root = argv[1];
  for (const char* d : {"checkpoint", "safetensors", "params_json", "segment_store", "spec", "fleet_db"})
    fs::create_directories(root / d);

  // Checkpoints: fresh and fitted (with the latent scorers), three architectures.
  const fs::path ck = root / "checkpoint";
  Model<float> fresh(tiny("ev", true, 1));
  fresh.save(ck / "fresh_ev_bi.safetensors");
  for (const auto& [name, config] :
       {std::pair{"fitted_ev_bi", tiny("ev", true, 1)}, std::pair{"fitted_brand_b_uni2", tiny("brand_b", false, 2)}}) {
    Model<float> m(config);
    m.fit(test::toy_dataset(12, config.roles, 5, 4, 8));
    m.save(ck / (std::string(name) + ".safetensors"));
  }
  {  // calibrated on a held-out normal car and the faulty one (dyad.calibration)
    const ModelConfig config = tiny("ev", true, 1);
    Model<float> m(config);
    FitOptions o;
    o.calibration_fraction = 0.3;
    m.fit(test::toy_dataset(20, config.roles, 5, 4, 8, 4), {}, o);
    m.save(ck / "calibrated_ev_bi.safetensors");
    Ensemble<float> e(config, 2);  // two networks, their score scales and the ensemble's calibration
    e.fit(test::toy_dataset(20, config.roles, 5, 4, 8, 4), {}, o);
    e.save(ck / "ensemble2_ev_bi.safetensors");
  }
  state_dict(fresh, false).save(ck / "state_dict_f32.safetensors");
  state_dict(Model<float>(tiny("ev", false, 1)), true).save(ck / "state_dict_uni_f64.safetensors");
  {  // the other cells: an LSTM checkpoint, and an RNN state_dict whose cell is read off its weights
    ModelConfig lstm = tiny("ev", true, 1), rnn = tiny("ev", false, 2);
    lstm.cell = Cell::lstm;
    rnn.cell = Cell::rnn;
    Model<float>(lstm).save(ck / "fresh_ev_bi_lstm.safetensors");
    state_dict(Model<float>(rnn), false).save(ck / "state_dict_uni2_rnn_f32.safetensors");
  }

  // Safetensors: every dtype, a scalar, empty tensors, metadata, no tensors at all.
  const fs::path sf = root / "safetensors";
  SafeTensors all;
  for (const auto& info : detail::kDTypes) all.add(raw(std::string("t_") + std::string(info.name), info.dtype, {2, 3}));
  all.save(sf / "every_dtype.safetensors");
  SafeTensors odd;
  odd.metadata = {{"format", "pt"}, {"note", "scalar, empty and 3-d tensors"}};
  odd.add(raw("scalar", DType::F64, {}));
  odd.add(raw("empty", DType::F32, {0, 4}));
  odd.add(raw("cube", DType::BF16, {2, 2, 2}));
  odd.add(raw("half", DType::F16, {5}));
  odd.save(sf / "odd_shapes.safetensors");
  SafeTensors none;
  none.save(sf / "no_tensors.safetensors");

  // Segment stores: labelled with varying lengths and a missing mileage; unlabelled; empty.
  const fs::path ss = root / "segment_store";
  {
    Dataset d = test::toy_dataset(7, tiny("ev", true, 1).roles, 3, 1, 6, 3);
    d.meta(2).mileage = std::numeric_limits<double>::quiet_NaN();
    write_segment_store(ss / "labelled.dyadset", d);
    d.set_labelled(false);
    for (std::size_t i = 0; i < d.size(); ++i) d.meta(i).label = 0;
    write_segment_store(ss / "unlabelled.dyadset", d);
    write_segment_store(ss / "empty.dyadset", Dataset({"volt", "current"}));
  }

  // Params JSON: the presets as dyad writes them, and upstream-style files.
  const fs::path pj = root / "params_json";
  for (const auto& name : preset_names()) write_text(pj / (name + ".json"), preset(name).to_json().dump(1) + "\n");
  write_text(pj / "tiny.json", tiny("brand_a", false, 2).to_json().dump() + "\n");

  // Ingest specs as `dyad simulate --raw R --spec-out S` writes them (sim::telemetry_spec,
  // dump(2)), with windows short enough for the spec target's fixed exports.
  const fs::path sp = root / "spec";
  for (const auto& [name, steps, interval, negative] :
       {std::tuple{"simulate_default", std::size_t{128}, 10.0, false}, std::tuple{"simulate_steps4", std::size_t{4}, 10.0, true},
        std::tuple{"simulate_steps3_interval1", std::size_t{3}, 1.0, false}}) {
    sim::TelemetryConfig t;
    t.fleet.steps = steps;
    t.interval_s = interval;
    t.jitter_s = interval / 4;
    t.current_negative_when_charging = negative;
    write_text(sp / (std::string(name) + ".json"), sim::telemetry_spec(t).dump(2) + "\n");
  }

  // Fleet database cells: byte 0 picks the column (kJsonColumns), byte 1 the row ('0' + row:
  // '0' is 48, a multiple of every table's row count), then the text dyad stored there.
  const fs::path fd = root / "fleet_db";
  {
    const fuzz::FleetDbFixture f;
    sql::Database db(f.fresh_database());
    for (std::size_t c = 0; c < fuzz::kJsonColumns.size(); ++c) {
      const auto& col = fuzz::kJsonColumns[c];
      sql::Statement s(db, std::string("SELECT ") + col.column + " FROM " + col.table + " ORDER BY " + col.key);
      for (int row = 0; s.step() && row < 4; ++row)
        write_text(fd / (std::string(col.table) + "_" + col.column + "_" + std::to_string(row) + ".bin"),
                   std::string{static_cast<char>('0' + c), static_cast<char>('0' + row)} + s.text(0));
    }
  }
  std::printf("wrote the generated corpus files under %s\n", root.c_str());
  return 0;
}
