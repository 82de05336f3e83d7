// The binary segment store (`dyad pack`): a long CSV's segments in one safetensors file that
// is memory-mapped when read, so opening it parses nothing, the values are read in place (a
// store larger than RAM trains: its pages are loaded as batches touch them) and every reader
// check of the safetensors format applies. Layout, all little-endian:
//   values F32 [rows, columns]    every time step of every segment, segment after segment
//   offsets I64 [segments + 1]    segment i is rows [offsets[i], offsets[i + 1])
//   segment I64, label I32, car I32 (index into the car names), mileage F64, timestamp F64:
//                                 one per segment (NaN: missing)
//   car_names U8, car_name_offsets I64 [cars + 1]: the car ids, concatenated
//   __metadata__ "dyad.segment_store": {"version": 1, "columns": [...], "labelled": true}
// The writer streams: values go straight to the file, the per-segment fields to temporary
// files appended at the end, and the header, whose room is reserved up front, is written last.
#pragma once

#include "dyad/core/atomic_file.hpp"
#include "dyad/core/json.hpp"
#include "dyad/core/mapped_file.hpp"
#include "dyad/data/csv.hpp"
#include "dyad/data/dataset.hpp"
#include "dyad/io/safetensors.hpp"

#include <nlohmann/json.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace dyad {

inline constexpr const char* kSegmentStoreKey = "dyad.segment_store";
inline constexpr int kSegmentStoreVersion = 1;

struct PackReport {
  std::size_t segments = 0, rows = 0, cars = 0;
};

namespace detail {

// An anonymous temporary file (std::tmpfile: gone when closed or when the process dies) that
// collects one per-segment field as raw little-endian bytes.
class SpillFile {
 public:
  SpillFile() : f_(std::tmpfile()) {
    if (!f_) throw std::runtime_error(std::string("dyad pack: cannot create a temporary file: ") + std::strerror(errno));
  }
  ~SpillFile() { std::fclose(f_); }
  SpillFile(const SpillFile&) = delete;
  SpillFile& operator=(const SpillFile&) = delete;

  template <class T>
  void put(T v) {
    if (std::fwrite(&v, sizeof v, 1, f_) != 1) fail("write");
    bytes_ += sizeof v;
  }
  std::size_t bytes() const { return bytes_; }
  // Appends everything written so far to `os`.
  void copy_to(std::ostream& os) {
    if (std::fflush(f_) != 0 || std::fseek(f_, 0, SEEK_SET) != 0) fail("read back");
    char buf[1 << 16];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f_)) > 0;) os.write(buf, static_cast<std::streamsize>(n));
    if (std::ferror(f_)) fail("read back");
  }

 private:
  [[noreturn]] void fail(const char* what) const {
    throw std::runtime_error(std::string("dyad pack: cannot ") + what + " a temporary file: " + std::strerror(errno));
  }
  std::FILE* f_;
  std::size_t bytes_ = 0;
};

// read_csv_segments' sink that writes the store to `os` (whose file descriptor is `fd`).
class SegmentStoreSink {
 public:
  SegmentStoreSink(std::ostream& os, int fd, std::string name) : os_(os), fd_(fd), name_(std::move(name)) {
    static_assert(std::endian::native == std::endian::little, "dyad's segment store writer assumes a little-endian CPU");
  }

  void start(std::vector<std::string> columns, bool labelled) {
    metadata_ = nlohmann::json{{"version", kSegmentStoreVersion}, {"columns", columns}, {"labelled", labelled}}.dump();
    width_ = columns.size();
    // Room for the header: the metadata (escaped once more as a JSON string) and nine tensor
    // entries of at most ~120 characters each; the buffer then starts 64-byte aligned.
    const std::size_t room = 2 * metadata_.size() + 64 + 9 * 160;
    reserved_ = (8 + room + 63) / 64 * 64 - 8;
    const std::string blank(8 + reserved_, ' ');
    os_.write(blank.data(), static_cast<std::streamsize>(blank.size()));
    offsets_.put<std::int64_t>(0);
  }

  void add(SegmentMeta&& meta, std::span<const float> values) {
    os_.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size_bytes()));
    rows_ += values.size() / width_;
    offsets_.put<std::int64_t>(static_cast<std::int64_t>(rows_));
    segment_.put<std::int64_t>(meta.segment);
    label_.put<std::int32_t>(meta.label);
    const auto [it, fresh] = car_ids_.try_emplace(meta.car, static_cast<std::int32_t>(car_names_.size()));
    if (fresh) car_names_.push_back(std::move(meta.car));
    car_.put<std::int32_t>(it->second);
    mileage_.put<double>(meta.mileage);
    timestamp_.put<double>(meta.timestamp);
    ++segments_;
  }

  // Appends the per-segment fields and the car names, then writes the header into its room.
  PackReport finish() {
    for (SpillFile* f : {&offsets_, &segment_, &label_, &car_, &mileage_, &timestamp_}) f->copy_to(os_);
    std::vector<std::int64_t> name_offsets{0};
    std::size_t name_bytes = 0;
    for (const auto& c : car_names_) {
      os_.write(c.data(), static_cast<std::streamsize>(c.size()));
      name_bytes += c.size();
      name_offsets.push_back(static_cast<std::int64_t>(name_bytes));
    }
    os_.write(reinterpret_cast<const char*>(name_offsets.data()), static_cast<std::streamsize>(name_offsets.size() * 8));
    os_.flush();
    if (!os_) throw std::runtime_error(name_ + ": cannot write the segment store");

    const std::size_t n = segments_, cars = car_names_.size();
    std::string h = "{\"__metadata__\":" + nlohmann::json{{kSegmentStoreKey, metadata_}}.dump();
    std::size_t at = 0;
    auto entry = [&](const char* tensor, const char* dtype, std::vector<std::size_t> shape, std::size_t bytes) {
      h += ",\"" + std::string(tensor) + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + nlohmann::json(shape).dump() +
           ",\"data_offsets\":[" + std::to_string(at) + "," + std::to_string(at + bytes) + "]}";
      at += bytes;
    };
    entry("values", "F32", {rows_, width_}, rows_ * width_ * 4);
    entry("offsets", "I64", {n + 1}, (n + 1) * 8);
    entry("segment", "I64", {n}, n * 8);
    entry("label", "I32", {n}, n * 4);
    entry("car", "I32", {n}, n * 4);
    entry("mileage", "F64", {n}, n * 8);
    entry("timestamp", "F64", {n}, n * 8);
    entry("car_names", "U8", {name_bytes}, name_bytes);
    entry("car_name_offsets", "I64", {cars + 1}, (cars + 1) * 8);
    h += "}";
    if (h.size() > reserved_) throw std::logic_error("dyad pack: the header outgrew its reserved room");
    h.resize(reserved_, ' ');
    std::string head(8, '\0');
    for (int i = 0; i < 8; ++i) head[static_cast<std::size_t>(i)] = static_cast<char>((reserved_ >> (8 * i)) & 0xff);
    head += h;
    for (std::size_t done = 0; done < head.size();) {
      const ::ssize_t w = ::pwrite(fd_, head.data() + done, head.size() - done, static_cast<off_t>(done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) throw_os_error("cannot write", name_, errno);
      done += static_cast<std::size_t>(w);
    }
    return {n, rows_, cars};
  }

 private:
  std::ostream& os_;
  int fd_;
  std::string name_, metadata_;
  std::size_t width_ = 0, reserved_ = 0, rows_ = 0, segments_ = 0;
  SpillFile offsets_, segment_, label_, car_, mileage_, timestamp_;
  std::unordered_map<std::string, std::int32_t> car_ids_;
  std::vector<std::string> car_names_;
};

template <class T>
T load_le_value(const std::byte* p) {
  using U = std::conditional_t<sizeof(T) == 8, std::uint64_t, std::uint32_t>;
  return std::bit_cast<T>(load_le<U>(p));
}

}  // namespace detail

// Packs the long CSV read from `in` (`name` in errors; the same checks and messages as
// read_csv) into a segment store at `path`, written atomically.
inline PackReport pack_segment_store(std::istream& in, const std::string& name, const std::filesystem::path& path,
                                     const CsvOptions& options = {}) {
  PackReport report;
  write_file_atomically(path, [&](std::ostream& os, int fd) {
    detail::SegmentStoreSink sink(os, fd, path.string());
    read_csv_segments(in, name, options, sink);
    report = sink.finish();
  });
  return report;
}

inline PackReport pack_segment_store(const std::filesystem::path& csv, const std::filesystem::path& path,
                                     const CsvOptions& options = {}) {
  errno = 0;
  std::ifstream in(csv, std::ios::binary);
  if (!in) detail::throw_os_error("cannot open", csv, errno ? errno : EIO);
  if (std::error_code ec; std::filesystem::is_directory(csv, ec)) detail::throw_os_error("cannot read", csv, EISDIR);
  return pack_segment_store(in, csv.string(), path, options);
}

// Writes a dataset held in memory as a segment store.
inline PackReport write_segment_store(const std::filesystem::path& path, const Dataset& data) {
  PackReport report;
  write_file_atomically(path, [&](std::ostream& os, int fd) {
    detail::SegmentStoreSink sink(os, fd, path.string());
    sink.start(data.columns(), data.labelled());
    for (std::size_t i = 0; i < data.size(); ++i) {
      const SegmentValues v = data.values(i);
      sink.add(SegmentMeta(data.meta(i)), std::span<const float>(v.data(), static_cast<std::size_t>(v.size())));
    }
    report = sink.finish();
  });
  return report;
}

// Whether `path` looks like a safetensors file (a segment store, if it is anything dyad reads
// as data) rather than a CSV: its first 8 bytes give a header length that fits the file and the
// header opens with '{'. A CSV's first 8 bytes read as a length far beyond its size.
inline bool is_safetensors_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char head[9];
  if (!in.read(reinterpret_cast<char*>(head), sizeof head)) return false;
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | head[i];
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  return !ec && n >= 2 && n <= size - 8 && head[8] == '{';
}

// Opens a segment store, mapped: the values are read in place. Everything a damaged or
// foreign file can get wrong is checked before the dataset exists (the safetensors layout,
// then each tensor's dtype and shape, the offsets, car indices and names, labels, duplicate
// (car, segment) keys); errors name the file and the tensor. `options.signals`, when given,
// must all be columns of the store, as read_csv requires of a CSV.
inline Dataset open_segment_store(const std::filesystem::path& path, const CsvOptions& options = {}) {
  auto file = std::make_shared<const MappedFile>(path);
  std::vector<std::span<const std::byte>> data;
  const SafeTensors st = SafeTensors::layout(file->bytes(), path.string(), data);
  const std::string where = path.string();
  auto fail = [&](const std::string& message) -> void { throw std::runtime_error(where + ": segment store: " + message); };

  const auto meta_it = st.metadata.find(kSegmentStoreKey);
  if (meta_it == st.metadata.end())
    fail("a safetensors file without '" + std::string(kSegmentStoreKey) +
         "' metadata: not a dyad segment store (dyad pack writes one; a model goes to --model)");
  nlohmann::json m;
  try {
    m = detail::parse_json(meta_it->second, where + ": segment store: metadata '" + std::string(kSegmentStoreKey) + "'");
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("metadata is not JSON: ") + detail::excerpt(e.what()));
  }
  if (!m.is_object() || !m.contains("version") || m["version"] != kSegmentStoreVersion)
    fail("metadata 'version' is not " + std::to_string(kSegmentStoreVersion) + " (written by another dyad version?)");
  if (!m.contains("columns") || !m["columns"].is_array() || m["columns"].empty())
    fail("metadata 'columns' is not a non-empty list");
  std::vector<std::string> columns;
  std::set<std::string> unique;
  for (const auto& c : m["columns"]) {
    if (!c.is_string() || c.get_ref<const std::string&>().empty())
      fail("metadata 'columns' holds an entry that is not a column name");
    if (!unique.insert(c.get<std::string>()).second)
      fail("metadata 'columns' names '" + detail::excerpt(c.get<std::string>()) + "' twice");
    columns.push_back(c.get<std::string>());
  }
  if (!m.contains("labelled") || !m["labelled"].is_boolean()) fail("metadata 'labelled' is not true or false");
  const bool labelled = m["labelled"].get<bool>();
  for (const auto& s : options.signals)
    if (!unique.count(s)) fail("no signal column '" + detail::excerpt(s) + "' (the store holds " + m["columns"].dump() + ")");

  // The tensors, by name, with dtype and rank checked; the shapes' agreement below.
  static constexpr const char* names[] = {"values", "mileage", "timestamp", "offsets",         "segment",
                                          "label",  "car",     "car_names", "car_name_offsets"};
  if (st.tensors.size() != std::size(names))
    fail("holds " + std::to_string(st.tensors.size()) + " tensors, expected " + std::to_string(std::size(names)));
  auto tensor = [&](std::string_view name, DType dtype, std::size_t rank) {
    for (std::size_t i = 0; i < st.tensors.size(); ++i) {
      const Tensor& t = st.tensors[i];
      if (t.name != name) continue;
      if (t.dtype != dtype || t.shape.size() != rank)
        st.fail(name, "is " + std::string(dtype_name(t.dtype)) + " " + detail::shape_string(t.shape) + ", expected " +
                          std::string(dtype_name(dtype)) + " of rank " + std::to_string(rank));
      return std::pair<const Tensor*, std::span<const std::byte>>(&t, data[i]);
    }
    st.fail(name, "missing");
  };
  const auto [values_t, values_b] = tensor("values", DType::F32, 2);
  const auto [offsets_t, offsets_b] = tensor("offsets", DType::I64, 1);
  const std::size_t rows = values_t->shape[0], n = offsets_t->shape[0] - (offsets_t->shape[0] > 0 ? 1 : 0);
  if (values_t->shape[1] != columns.size())
    st.fail("values",
            "has " + std::to_string(values_t->shape[1]) + " columns, the metadata names " + std::to_string(columns.size()));
  if (offsets_t->shape[0] == 0) st.fail("offsets", "is empty (expected segments + 1 entries)");
  auto per_segment = [&](std::string_view name, DType dtype) {
    const auto [t, b] = tensor(name, dtype, 1);
    if (t->shape[0] != n) st.fail(name, "has " + std::to_string(t->shape[0]) + " entries for " + std::to_string(n) + " segments");
    return b;
  };
  const auto segment_b = per_segment("segment", DType::I64), label_b = per_segment("label", DType::I32),
             car_b = per_segment("car", DType::I32), mileage_b = per_segment("mileage", DType::F64),
             timestamp_b = per_segment("timestamp", DType::F64);
  const auto [names_t, names_b] = tensor("car_names", DType::U8, 1);
  const auto [name_offsets_t, name_offsets_b] = tensor("car_name_offsets", DType::I64, 1);
  if (name_offsets_t->shape[0] == 0) st.fail("car_name_offsets", "is empty (expected cars + 1 entries)");
  const std::size_t cars = name_offsets_t->shape[0] - 1;

  std::vector<std::string> car_names(cars);
  std::int64_t prev = 0;
  for (std::size_t c = 0; c <= cars; ++c) {
    const auto o = detail::load_le_value<std::int64_t>(name_offsets_b.data() + 8 * c);
    if ((c == 0 && o != 0) || (c > 0 && o <= prev) || o > static_cast<std::int64_t>(names_t->shape[0]) ||
        (c == cars && o != static_cast<std::int64_t>(names_t->shape[0])))
      st.fail("car_name_offsets", "entry " + std::to_string(c) + " is " + std::to_string(o) +
                                      " (expected 0 first, then increasing to the car_names size " +
                                      std::to_string(names_t->shape[0]) + ")");
    if (c > 0) car_names[c - 1].assign(reinterpret_cast<const char*>(names_b.data()) + prev, static_cast<std::size_t>(o - prev));
    prev = o;
  }

  std::vector<std::size_t> value_offsets(n + 1);
  std::vector<SegmentMeta> meta(n);
  std::unordered_map<std::string_view, std::set<std::int64_t>> keys;
  for (std::size_t i = 0; i <= n; ++i) {
    const auto r = detail::load_le_value<std::int64_t>(offsets_b.data() + 8 * i);
    const auto before = i == 0 ? std::int64_t{-1} : static_cast<std::int64_t>(value_offsets[i - 1] / columns.size());
    if ((i == 0 && r != 0) || (i > 0 && r <= before) || r > static_cast<std::int64_t>(rows) ||
        (i == n && r != static_cast<std::int64_t>(rows)))
      st.fail("offsets", "entry " + std::to_string(i) + " is " + std::to_string(r) + " (expected 0 first, then increasing to the " +
                             std::to_string(rows) + " rows of values)");
    value_offsets[i] = static_cast<std::size_t>(r) * columns.size();
  }
  for (std::size_t i = 0; i < n; ++i) {
    SegmentMeta& s = meta[i];
    const auto car = detail::load_le_value<std::int32_t>(car_b.data() + 4 * i);
    if (car < 0 || static_cast<std::size_t>(car) >= cars)
      st.fail("car",
              "entry " + std::to_string(i) + " is " + std::to_string(car) + ", outside the " + std::to_string(cars) + " car names");
    s.car = car_names[static_cast<std::size_t>(car)];
    s.segment = detail::load_le_value<std::int64_t>(segment_b.data() + 8 * i);
    s.label = detail::load_le_value<std::int32_t>(label_b.data() + 4 * i);
    if (s.label != 0 && s.label != 1)
      st.fail("label", "entry " + std::to_string(i) + " is " + std::to_string(s.label) + " (expected 0 or 1)");
    if (!labelled && s.label != 0) st.fail("label", "entry " + std::to_string(i) + " is 1 in a store without labels");
    s.mileage = detail::load_le_value<double>(mileage_b.data() + 8 * i);
    s.timestamp = detail::load_le_value<double>(timestamp_b.data() + 8 * i);
    if (std::isinf(s.mileage)) st.fail("mileage", "entry " + std::to_string(i) + " is infinite");
    if (std::isinf(s.timestamp)) st.fail("timestamp", "entry " + std::to_string(i) + " is infinite");
    if (!keys[car_names[static_cast<std::size_t>(car)]].insert(s.segment).second)
      st.fail("segment", "car '" + detail::excerpt(s.car) + "' segment " + std::to_string(s.segment) + " appears twice");
  }
  for (const auto& c : car_names)
    if (c.empty()) st.fail("car_names", "holds an empty car id");

  // In place when the values are aligned for float (dyad's writer aligns them to 64 bytes);
  // a foreign writer's unaligned values are copied.
  const std::span<const float> values(reinterpret_cast<const float*>(values_b.data()), rows * columns.size());
  if (reinterpret_cast<std::uintptr_t>(values_b.data()) % alignof(float) == 0)
    return Dataset::over(std::move(columns), std::move(meta), std::move(value_offsets), values, std::move(file), labelled);
  auto copy = std::make_shared<std::vector<float>>(rows * columns.size());
  std::memcpy(copy->data(), values_b.data(), values_b.size());
  const std::span<const float> copied(*copy);
  return Dataset::over(std::move(columns), std::move(meta), std::move(value_offsets), copied, std::move(copy), labelled);
}

// A long CSV or a segment store, whichever `path` holds, with the same result.
inline Dataset read_data(const std::filesystem::path& path, const CsvOptions& options = {}) {
  return is_safetensors_file(path) ? open_segment_store(path, options) : read_csv(path, options);
}

}  // namespace dyad
