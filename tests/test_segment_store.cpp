// The segment store (dyad/io/segment_store.hpp): a CSV packed and opened again is the dataset
// read_csv gives, read in place; the writer streams and leaves nothing on failure; every
// damaged or foreign file is refused with a message naming the file and the tensor.
#include "toy_data.hpp"

#include <dyad/io/segment_store.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

using namespace dyad;
namespace fs = std::filesystem;

namespace {

fs::path temp(const std::string& name) { return fs::temp_directory_path() / ("dyad_test_store_" + name); }

bool same_number(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

void check_same(const Dataset& a, const Dataset& b) {
  REQUIRE(a.size() == b.size());
  CHECK(a.columns() == b.columns());
  CHECK(a.labelled() == b.labelled());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    CHECK(a.meta(i).car == b.meta(i).car);
    CHECK(a.meta(i).segment == b.meta(i).segment);
    CHECK(a.meta(i).label == b.meta(i).label);
    CHECK(same_number(a.meta(i).mileage, b.meta(i).mileage));
    CHECK(same_number(a.meta(i).timestamp, b.meta(i).timestamp));
    CHECK(a.values(i) == b.values(i));
  }
}

// The toy fleet as CSV text, with one missing mileage.
std::string fleet_csv(bool labelled = true) {
  Dataset d = test::toy_dataset(23, test::tiny_config().roles, 4, 3, 9, 3);
  d.meta(4).mileage = std::numeric_limits<double>::quiet_NaN();
  d.set_labelled(labelled);
  if (!labelled)
    for (std::size_t i = 0; i < d.size(); ++i) d.meta(i).label = 0;
  std::ostringstream os;
  write_csv(os, d);
  return os.str();
}

// A store rewritten through the generic safetensors writer after `edit`, so that the store
// reader's own checks, not the format's, meet the damage.
template <class Edit>
fs::path edited_store(const fs::path& store, Edit edit) {
  std::ifstream in(store, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  SafeTensors st = SafeTensors::from_bytes(std::as_bytes(std::span(bytes.data(), bytes.size())), store.string());
  edit(st);
  const fs::path out = temp("edited.dyadset");
  st.save(out);
  return out;
}
Tensor& tensor(SafeTensors& st, std::string_view name) {
  for (auto& t : st.tensors)
    if (t.name == name) return t;
  FAIL("no tensor " << name);
  throw 0;
}

}  // namespace

TEST_CASE("segment store: pack, open in place, identical to read_csv, labelled and not") {
  for (const bool labelled : {true, false}) {
    CAPTURE(labelled);
    const std::string text = fleet_csv(labelled);
    std::istringstream a(text), b(text);
    const Dataset csv = read_csv(a, "fleet.csv");
    const fs::path path = temp("fleet.dyadset");
    const PackReport r = pack_segment_store(b, "fleet.csv", path);
    CHECK(r.segments == csv.size());
    CHECK(r.cars == 5);
    std::size_t rows = 0;
    for (std::size_t i = 0; i < csv.size(); ++i) rows += csv.length(i);
    CHECK(r.rows == rows);
    CHECK(is_safetensors_file(path));
    const Dataset store = open_segment_store(path);
    CHECK(store.external());  // read in place
    check_same(store, csv);
    check_same(read_data(path), csv);
    fs::remove(path);
  }
}

TEST_CASE("segment store: a dataset over mapped values outlives the file name and copies itself in to change") {
  const fs::path path = temp("outlive.dyadset");
  const Dataset original = test::toy_dataset(9, test::tiny_config().roles, 2, 2, 5);
  write_segment_store(path, original);
  Dataset store = open_segment_store(path);
  fs::remove(path);  // the mapping keeps the data
  const Dataset copy = store;
  check_same(copy, original);
  store.raw_values()[0] += 1;  // the mutable view copies the values in first
  CHECK(!store.external());
  CHECK(copy.external());
  CHECK(store.values(0)(0, 0) == original.values(0)(0, 0) + 1);
  CHECK(copy.values(0)(0, 0) == original.values(0)(0, 0));
  Dataset grown = copy;
  grown.add(original.meta(0),
            std::span<const float>(original.values(0).data(), static_cast<std::size_t>(original.values(0).size())));
  CHECK(grown.size() == original.size() + 1);
  CHECK(grown.values(0) == original.values(0));
  CHECK(grown.values(original.size()) == original.values(0));
}

TEST_CASE("segment store: signals are checked as read_csv checks them; an empty store opens empty") {
  const fs::path path = temp("signals.dyadset");
  write_segment_store(path, test::toy_dataset(4, test::tiny_config().roles, 2));
  CsvOptions o;
  o.signals = {"a", "c"};
  CHECK(open_segment_store(path, o).size() == 4);
  o.signals = {"a", "volts"};
  CHECK_THROWS_WITH(open_segment_store(path, o),
                    doctest::Contains("signals.dyadset: segment store: no signal column 'volts' (the store holds"));
  write_segment_store(path, Dataset({"volt"}));
  const Dataset empty = open_segment_store(path);
  CHECK(empty.size() == 0);
  CHECK(empty.columns() == std::vector<std::string>{"volt"});
  fs::remove(path);
}

TEST_CASE("segment store: pack refuses what read_csv refuses, with its message, and leaves no file") {
  const fs::path path = temp("bad.dyadset");
  fs::remove(path);
  std::istringstream in("car,segment,t,volt\nc1,0,0,3.5\nc1,0,1,x\n");
  CHECK_THROWS_WITH(pack_segment_store(in, "bad.csv", path), doctest::Contains("bad.csv:3:4"));
  CHECK(!fs::exists(path));
  for (const auto& entry : fs::directory_iterator(fs::temp_directory_path()))
    CHECK(entry.path().filename().string().find("dyad_test_store_bad.dyadset.") == std::string::npos);  // no temporary
}

TEST_CASE("segment store: damaged or foreign files are refused naming the file and the tensor") {
  const fs::path good = temp("good.dyadset");
  write_segment_store(good, test::toy_dataset(6, test::tiny_config().roles, 2, 2, 5, 3));
  auto refused = [&](auto edit, const std::string& message) {
    CAPTURE(message);
    const fs::path bad = edited_store(good, edit);
    CHECK_THROWS_WITH(open_segment_store(bad), doctest::Contains(message.c_str()));
    fs::remove(bad);
  };
  auto put_i64 = [](Tensor& t, std::size_t i, std::int64_t v) { std::memcpy(t.bytes.data() + 8 * i, &v, 8); };
  auto put_i32 = [](Tensor& t, std::size_t i, std::int32_t v) { std::memcpy(t.bytes.data() + 4 * i, &v, 4); };
  refused([](SafeTensors& st) { st.metadata.clear(); }, "not a dyad segment store");
  refused([](SafeTensors& st) { st.metadata[kSegmentStoreKey] = R"({"version":2,"columns":["a"],"labelled":true})"; },
          "metadata 'version' is not 1");
  refused([](SafeTensors& st) { st.metadata[kSegmentStoreKey] = R"({"version":1,"columns":["a","a"],"labelled":true})"; },
          "names 'a' twice");
  refused([](SafeTensors& st) { st.metadata[kSegmentStoreKey] = R"({"version":1,"columns":["a"],"labelled":true})"; },
          "tensor 'values': has 5 columns, the metadata names 1");
  refused([&](SafeTensors& st) { put_i64(tensor(st, "offsets"), 2, 1); }, "tensor 'offsets': entry 2 is 1");
  refused([&](SafeTensors& st) { put_i32(tensor(st, "car"), 1, 7); }, "tensor 'car': entry 1 is 7, outside the 2 car names");
  refused([&](SafeTensors& st) { put_i32(tensor(st, "label"), 0, 2); }, "tensor 'label': entry 0 is 2 (expected 0 or 1)");
  refused([&](SafeTensors& st) { put_i64(tensor(st, "segment"), 1, 0); }, "tensor 'segment': car 'car0' segment 0 appears twice");
  refused([&](SafeTensors& st) { put_i64(tensor(st, "car_name_offsets"), 1, 0); }, "tensor 'car_name_offsets': entry 1 is 0");
  refused([&](SafeTensors& st) { tensor(st, "mileage").dtype = DType::I64; },
          "tensor 'mileage': is I64 [6], expected F64 of rank 1");
  refused([&](SafeTensors& st) { std::erase_if(st.tensors, [](const Tensor& t) { return t.name == "timestamp"; }); },
          "holds 8 tensors, expected 9");
  {  // a model checkpoint is not data
    SafeTensors model;
    model.add<float>("encoder_rnn.weight_ih_l0", {3, 2}, std::vector<float>(6, 0.5f));
    const fs::path m = temp("model.safetensors");
    model.save(m);
    CHECK_THROWS_WITH(read_data(m),
                      doctest::Contains("model.safetensors: segment store: a safetensors file without 'dyad.segment_store'"));
    fs::remove(m);
  }
  fs::remove(good);
}
