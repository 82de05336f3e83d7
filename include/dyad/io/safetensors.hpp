// The safetensors checkpoint format (https://github.com/huggingface/safetensors):
// u64 little-endian header length N, N bytes of JSON header, then one byte buffer.
//   {"__metadata__": {"k": "v"}, "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...}
// Offsets are relative to the buffer; the tensors must tile it exactly. Reading validates
// everything a corrupt or foreign file can get wrong and names the file and the tensor.
#pragma once

#include "dyad/core/atomic_file.hpp"
#include "dyad/core/excerpt.hpp"
#include "dyad/core/json.hpp"
#include "dyad/core/mapped_file.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <new>
#include <optional>
#include <ostream>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace dyad {

enum class DType : std::uint8_t { BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, I64, U64, F64 };

namespace detail {
struct DTypeInfo {
  DType dtype;
  std::string_view name;
  std::size_t size;
};
inline constexpr std::array<DTypeInfo, 15> kDTypes{{{DType::BOOL, "BOOL", 1},
                                                    {DType::U8, "U8", 1},
                                                    {DType::I8, "I8", 1},
                                                    {DType::F8_E5M2, "F8_E5M2", 1},
                                                    {DType::F8_E4M3, "F8_E4M3", 1},
                                                    {DType::I16, "I16", 2},
                                                    {DType::U16, "U16", 2},
                                                    {DType::F16, "F16", 2},
                                                    {DType::BF16, "BF16", 2},
                                                    {DType::I32, "I32", 4},
                                                    {DType::U32, "U32", 4},
                                                    {DType::F32, "F32", 4},
                                                    {DType::I64, "I64", 8},
                                                    {DType::U64, "U64", 8},
                                                    {DType::F64, "F64", 8}}};
}  // namespace detail

constexpr std::string_view dtype_name(DType d) { return detail::kDTypes[static_cast<std::size_t>(d)].name; }
constexpr std::size_t dtype_size(DType d) { return detail::kDTypes[static_cast<std::size_t>(d)].size; }
inline std::optional<DType> parse_dtype(std::string_view name) {
  for (const auto& info : detail::kDTypes)
    if (info.name == name) return info.dtype;
  return std::nullopt;
}

namespace detail {

template <class U>
U load_le(const std::byte* p) {
  U v = 0;
  for (std::size_t i = 0; i < sizeof(U); ++i) v |= static_cast<U>(std::to_integer<U>(p[i]) << (8 * i));
  return v;
}
template <class U>
void store_le(std::byte* p, U v) {
  for (std::size_t i = 0; i < sizeof(U); ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}

// IEEE binary16 -> binary32, exact (every half is a float).
inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24
    const float f = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -f : f;
  }
  const std::uint32_t bits = exp == 31 ? (sign | 0x7f800000u | (mant << 13)) : (sign | ((exp + 112) << 23) | (mant << 13));
  return std::bit_cast<float>(bits);
}

inline std::string shape_string(std::span<const std::size_t> shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Number of elements, or nullopt on overflow. A zero dimension makes it 0 whatever the others.
inline std::optional<std::size_t> checked_numel(std::span<const std::size_t> shape, std::size_t element_size = 1) {
  if (std::ranges::find(shape, std::size_t{0}) != shape.end()) return 0;
  std::size_t n = element_size;
  for (std::size_t d : shape) {
    if (d != 0 && n > std::numeric_limits<std::size_t>::max() / d) return std::nullopt;
    n *= d;
  }
  return n;
}

// Limits on what a file may ask for. The format itself caps the header at 100 MB. A header
// needs 3 levels of nesting ({"name": {"shape": [...]}}); deeper ones are refused before
// nlohmann builds the value, as its recursive code (dump, copies, comparisons) would overflow
// the stack on one 100000 levels deep.
inline constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
inline constexpr std::size_t kMaxHeaderDepth = 8;
inline constexpr std::size_t kMaxRank = 64;

// SAX handler for the header's first pass: the top-level keys in file order and the first
// duplicate key of any object (nlohmann's DOM keeps the last silently), without building values.
struct HeaderKeys {
  std::vector<bool> open_is_object;                 // one per open array or object
  std::vector<std::set<std::string>> open_objects;  // the keys of each open object
  std::vector<std::string> order;                   // top-level keys, in file order
  std::string duplicate, error;

  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(std::int64_t) { return true; }
  bool number_unsigned(std::uint64_t) { return true; }
  bool number_float(double, const std::string&) { return true; }
  bool string(std::string&) { return true; }
  bool binary(std::vector<std::uint8_t>&) { return true; }
  bool start_object(std::size_t) {
    open_is_object.push_back(true);
    open_objects.emplace_back();
    return true;
  }
  bool end_object() {
    open_is_object.pop_back();
    open_objects.pop_back();
    return true;
  }
  bool start_array(std::size_t) {
    open_is_object.push_back(false);
    return true;
  }
  bool end_array() {
    open_is_object.pop_back();
    return true;
  }
  bool key(std::string& k) {
    const bool top = open_is_object.size() == 1;
    if (!open_objects.back().insert(k).second) {
      if (duplicate.empty())
        duplicate = top ? "duplicate tensor name '" + excerpt(k) + "'"
                        : "duplicate key '" + excerpt(k) + "' in the entry of '" + excerpt(order.empty() ? "" : order.back()) + "'";
    } else if (top) {
      order.push_back(k);
    }
    return true;
  }
  template <class Exception>
  bool parse_error(std::size_t, const std::string&, const Exception& e) {
    error = e.what();  // quotes the input: excerpted by the caller
    return false;
  }
};

template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::F32;
  else if constexpr (std::is_same_v<T, double>) return DType::F64;
  else if constexpr (std::is_same_v<T, std::int32_t>) return DType::I32;
  else if constexpr (std::is_same_v<T, std::int64_t>) return DType::I64;
  else static_assert(sizeof(T) == 0, "dyad: safetensors stores float, double, int32_t or int64_t");
}

}  // namespace detail

struct Tensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::size_t> shape;  // empty = scalar
  std::vector<std::byte> bytes;    // little-endian, row-major

  std::size_t numel() const { return detail::checked_numel(shape).value_or(0); }
};

class SafeTensors {
 public:
  std::map<std::string, std::string> metadata;
  std::vector<Tensor> tensors;      // file order (by data offset)
  std::string source = "<memory>";  // where it was read from; names the file in errors

  const Tensor* find(std::string_view name) const {
    for (const auto& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
  bool contains(std::string_view name) const { return find(name) != nullptr; }
  const Tensor& at(std::string_view name) const {
    if (const Tensor* t = find(name)) return *t;
    fail(name, "no such tensor");
  }

  // Appends a tensor after checking its name and byte size.
  Tensor& add(Tensor t) {
    check(t, source);
    if (contains(t.name)) fail(t.name, "duplicate tensor name");
    tensors.push_back(std::move(t));
    return tensors.back();
  }
  // Appends `values` (row-major) with their natural dtype: float F32, double F64, int32 I32, int64 I64.
  template <class T>
  Tensor& add(std::string name, std::vector<std::size_t> shape, std::span<const T> values) {
    constexpr DType dt = detail::dtype_of<T>();
    if (detail::checked_numel(shape) != values.size())
      fail(name, "shape " + detail::shape_string(shape) + " does not hold " + std::to_string(values.size()) + " values");
    Tensor t{std::move(name), dt, std::move(shape), std::vector<std::byte>(values.size() * sizeof(T))};
    using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    for (std::size_t i = 0; i < values.size(); ++i) detail::store_le(t.bytes.data() + i * sizeof(T), std::bit_cast<U>(values[i]));
    return add(std::move(t));
  }
  template <class T>
  Tensor& add(std::string name, std::vector<std::size_t> shape, const std::vector<T>& values) {
    return add<T>(std::move(name), std::move(shape), std::span<const T>(values));
  }

  // The tensor, after checking that its shape is `shape`.
  const Tensor& expect_shape(std::string_view name, std::span<const std::size_t> shape) const {
    const Tensor& t = at(name);
    if (!std::ranges::equal(t.shape, shape))
      fail(name, "has shape " + detail::shape_string(t.shape) + ", expected " + detail::shape_string(shape));
    return t;
  }
  const Tensor& expect_shape(std::string_view name, std::initializer_list<std::size_t> shape) const {
    return expect_shape(name, std::span<const std::size_t>(shape.begin(), shape.size()));
  }

  // Values converted to T: float/double from F64, F32, F16, BF16; int32/int64 from I32, I64 (range-checked).
  template <class T>
  std::vector<T> get(std::string_view name) const {
    return convert<T>(at(name));
  }
  template <class T>
  std::vector<T> get(std::string_view name, std::initializer_list<std::size_t> shape) const {
    return convert<T>(expect_shape(name, shape));
  }
  template <class T>
  std::vector<T> get(std::string_view name, std::span<const std::size_t> shape) const {
    return convert<T>(expect_shape(name, shape));
  }

  // Parses a whole safetensors image; `source` names it in errors.
  static SafeTensors from_bytes(std::span<const std::byte> file, std::string source = "<memory>") {
    return parse(file, std::move(source), nullptr);
  }
  // The same checks without copying the data: the tensors come back with empty `bytes`, and
  // `data[i]` is where tensor i's bytes lie inside `file` (which must outlive their use).
  static SafeTensors layout(std::span<const std::byte> file, std::string source, std::vector<std::span<const std::byte>>& data) {
    return parse(file, std::move(source), &data);
  }
  std::vector<std::byte> to_bytes() const;
  // Writes the file image to `os` (validating first, so nothing is written for a bad value).
  void write(std::ostream& os) const { write_with_header(os, header(source)); }
  // Writes `path` atomically; errors name `path`.
  void save(const std::filesystem::path& path) const;

  // Throws "<source>: safetensors: tensor '<tensor>': <message>" (also for callers' own checks).
  [[noreturn]] void fail(std::string_view tensor, const std::string& message) const { fail_at(source, tensor, message); }

 private:
  [[noreturn]] static void fail_at(std::string_view where, std::string_view tensor, const std::string& message) {
    throw std::runtime_error(std::string(where) + ": safetensors: tensor '" + detail::excerpt(tensor) + "': " + message);
  }
  static void check(const Tensor& t, std::string_view where) {
    if (t.name == "__metadata__") fail_at(where, t.name, "reserved name");
    const auto size = detail::checked_numel(t.shape, dtype_size(t.dtype));
    if (!size) fail_at(where, t.name, "shape " + detail::excerpt(detail::shape_string(t.shape)) + " overflows");
    if (*size != t.bytes.size())
      fail_at(where, t.name,
              std::string(dtype_name(t.dtype)) + " " + detail::excerpt(detail::shape_string(t.shape)) + " needs " +
                  std::to_string(*size) + " bytes, have " + std::to_string(t.bytes.size()));
  }
  std::string header(std::string_view where) const;
  void write_with_header(std::ostream& os, const std::string& h) const;
  static SafeTensors parse(std::span<const std::byte> file, std::string source, std::vector<std::span<const std::byte>>* data);

  template <class T>
  std::vector<T> convert(const Tensor& t) const {
    // Checked before allocating: the fields are public, so the shape may claim anything.
    const auto bytes = detail::checked_numel(t.shape, dtype_size(t.dtype));
    if (!bytes || *bytes != t.bytes.size()) fail(t.name, "byte size does not match dtype and shape");
    const std::size_t n = *bytes / dtype_size(t.dtype);
    std::vector<T> out(n);
    const std::byte* p = t.bytes.data();
    if constexpr (std::is_floating_point_v<T>) {
      switch (t.dtype) {
        case DType::F64:
          for (std::size_t i = 0; i < n; ++i)
            out[i] = static_cast<T>(std::bit_cast<double>(detail::load_le<std::uint64_t>(p + 8 * i)));
          break;
        case DType::F32:
          for (std::size_t i = 0; i < n; ++i)
            out[i] = static_cast<T>(std::bit_cast<float>(detail::load_le<std::uint32_t>(p + 4 * i)));
          break;
        case DType::F16:
          for (std::size_t i = 0; i < n; ++i)
            out[i] = static_cast<T>(detail::half_to_float(detail::load_le<std::uint16_t>(p + 2 * i)));
          break;
        case DType::BF16:
          for (std::size_t i = 0; i < n; ++i)
            out[i] =
                static_cast<T>(std::bit_cast<float>(static_cast<std::uint32_t>(detail::load_le<std::uint16_t>(p + 2 * i)) << 16));
          break;
        default: fail(t.name, "dtype " + std::string(dtype_name(t.dtype)) + " is not F64, F32, F16 or BF16");
      }
    } else {
      static_assert(std::is_same_v<T, std::int32_t> || std::is_same_v<T, std::int64_t>,
                    "dyad: get<T> needs float, double, int32_t or int64_t");
      for (std::size_t i = 0; i < n; ++i) {
        std::int64_t v;
        if (t.dtype == DType::I64) v = static_cast<std::int64_t>(detail::load_le<std::uint64_t>(p + 8 * i));
        else if (t.dtype == DType::I32) v = static_cast<std::int32_t>(detail::load_le<std::uint32_t>(p + 4 * i));
        else fail(t.name, "dtype " + std::string(dtype_name(t.dtype)) + " is not I64 or I32");
        if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max())
          fail(t.name, "value " + std::to_string(v) + " does not fit the requested integer type");
        out[i] = static_cast<T>(v);
      }
    }
    return out;
  }
};

inline std::string SafeTensors::header(std::string_view where) const {
  // Written as text, not through ordered_json, whose key lookup is linear: a million tensors
  // would take ~10^12 steps. nlohmann still escapes the strings.
  std::set<std::string_view> names;
  std::size_t offset = 0;
  std::string s = "{";
  try {
    if (!metadata.empty()) s += "\"__metadata__\":" + nlohmann::json(metadata).dump();
    for (const auto& t : tensors) {
      check(t, where);
      if (!names.insert(t.name).second) fail_at(where, t.name, "duplicate tensor name");
      s += s.size() > 1 ? "," : "";
      s += nlohmann::json(t.name).dump() + ":{\"dtype\":\"" + std::string(dtype_name(t.dtype)) +
           "\",\"shape\":" + nlohmann::json(t.shape).dump() + ",\"data_offsets\":[" + std::to_string(offset) + "," +
           std::to_string(offset + t.bytes.size()) + "]}";
      offset += t.bytes.size();
    }
  } catch (const nlohmann::json::exception& e) {  // e.g. a name or metadata value that is not UTF-8
    throw std::runtime_error(std::string(where) + ": safetensors: cannot encode the header: " + e.what());
  }
  s += "}";
  if (s.size() > detail::kMaxHeaderBytes)  // no reader, this one included, would accept it
    throw std::runtime_error(std::string(where) + ": safetensors: the header would take " + std::to_string(s.size()) +
                             " bytes, more than the format's limit of " + std::to_string(detail::kMaxHeaderBytes));
  // Pad so that the buffer starts 8-byte aligned (8 + N is a multiple of 8).
  s.append((8 - s.size() % 8) % 8, ' ');
  return s;
}

inline void SafeTensors::write_with_header(std::ostream& os, const std::string& h) const {
  std::byte len[8];
  detail::store_le<std::uint64_t>(len, h.size());
  os.write(reinterpret_cast<const char*>(len), 8);
  os.write(h.data(), static_cast<std::streamsize>(h.size()));
  for (const auto& t : tensors)
    os.write(reinterpret_cast<const char*>(t.bytes.data()), static_cast<std::streamsize>(t.bytes.size()));
}

inline std::vector<std::byte> SafeTensors::to_bytes() const {
  const std::string h = header(source);
  std::vector<std::byte> out(8 + h.size());
  detail::store_le<std::uint64_t>(out.data(), h.size());
  std::memcpy(out.data() + 8, h.data(), h.size());
  for (const auto& t : tensors) out.insert(out.end(), t.bytes.begin(), t.bytes.end());
  return out;
}

inline SafeTensors SafeTensors::parse(std::span<const std::byte> file, std::string source,
                                      std::vector<std::span<const std::byte>>* data) {
  // A plain (std::map) object, not ordered_json: ordered_json finds keys by linear search, so
  // a header of a million keys would take ~10^12 steps. File order comes from `order` below.
  using json = nlohmann::json;
  using detail::excerpt;
  SafeTensors st;
  st.source = std::move(source);
  auto fail_file = [&](const std::string& message) -> void { throw std::runtime_error(st.source + ": safetensors: " + message); };

  if (file.size() < 8) fail_file("file of " + std::to_string(file.size()) + " bytes is too short for the 8-byte header length");
  const std::uint64_t n = detail::load_le<std::uint64_t>(file.data());
  if (n > detail::kMaxHeaderBytes)
    fail_file("header length " + std::to_string(n) + " exceeds the format's limit of " + std::to_string(detail::kMaxHeaderBytes) +
              " bytes");
  if (n > file.size() - 8)
    fail_file("header length " + std::to_string(n) + " exceeds the file size (" + std::to_string(file.size()) + " bytes)");
  const std::string_view text(reinterpret_cast<const char*>(file.data() + 8), static_cast<std::size_t>(n));
  const std::span<const std::byte> buffer = file.subspan(8 + n);

  // JSON cannot hold a raw NUL (strings escape it), but the parser stops at one, so a flipped
  // padding byte would otherwise pass unseen.
  if (const auto nul = text.find('\0'); nul != std::string_view::npos)
    fail_file("the header holds a NUL byte at byte " + std::to_string(nul) + " of the header (damaged or not safetensors)");
  if (const auto at = detail::nesting_beyond(text, detail::kMaxHeaderDepth))
    fail_file("the header nests arrays and objects deeper than " + std::to_string(detail::kMaxHeaderDepth) + " levels (at byte " +
              std::to_string(*at) + " of the header)");

  // First pass, SAX: nlohmann keeps the last of duplicate keys silently, so they are found
  // here, with the top-level keys in file order. (Not a parse callback: nlohmann's callback
  // parser rescans the enclosing object at every object end, quadratic in the number of keys.)
  detail::HeaderKeys keys;
  if (!json::sax_parse(text.begin(), text.end(), &keys)) fail_file("bad JSON header: " + excerpt(keys.error));
  const std::string& duplicate = keys.duplicate;
  const std::vector<std::string>& order = keys.order;
  json h;
  try {  // second pass: the value itself, now known to be valid JSON
    h = detail::parse_json(text, st.source, detail::kMaxHeaderDepth);
  } catch (const json::exception& e) {
    fail_file("bad JSON header: " + excerpt(e.what()));  // the parser's message quotes the input
  }
  if (!duplicate.empty()) fail_file(duplicate);
  if (!h.is_object()) fail_file("the header is not a JSON object");

  struct Span {
    std::size_t begin, end, index;
  };
  std::vector<Span> spans;
  for (const std::string& name : order) {
    const json& entry = h.find(name).value();
    if (name == "__metadata__") {
      if (!entry.is_object()) fail_file("__metadata__ is not an object");
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) fail_file("__metadata__ value of '" + excerpt(k) + "' is not a string");
        st.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    if (!entry.is_object()) st.fail(name, "entry is not an object");
    for (const auto& [k, v] : entry.items())
      if (k != "dtype" && k != "shape" && k != "data_offsets") st.fail(name, "unknown key '" + excerpt(k) + "'");
    const auto jd = entry.find("dtype"), js = entry.find("shape"), jo = entry.find("data_offsets");
    if (jd == entry.end() || js == entry.end() || jo == entry.end()) st.fail(name, "needs keys dtype, shape and data_offsets");
    if (!jd->is_string()) st.fail(name, "dtype is not a string");
    const auto dt = parse_dtype(jd->get_ref<const std::string&>());
    if (!dt) st.fail(name, "unknown dtype '" + excerpt(jd->get_ref<const std::string&>()) + "'");
    if (!js->is_array()) st.fail(name, "shape is not an array");
    if (js->size() > detail::kMaxRank)
      st.fail(name, "shape has " + std::to_string(js->size()) + " dimensions, more than " + std::to_string(detail::kMaxRank));
    std::vector<std::size_t> shape;
    for (const auto& d : *js) {
      if (!d.is_number_unsigned()) st.fail(name, "shape " + excerpt(js->dump()) + " is not a list of non-negative integers");
      shape.push_back(d.get<std::size_t>());
    }
    if (!jo->is_array() || jo->size() != 2 || !(*jo)[0].is_number_unsigned() || !(*jo)[1].is_number_unsigned())
      st.fail(name, "data_offsets " + excerpt(jo->dump()) + " is not [begin, end]");
    const auto begin = (*jo)[0].get<std::uint64_t>(), end = (*jo)[1].get<std::uint64_t>();
    if (begin > end || end > buffer.size())
      st.fail(name, "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] out of range of the " +
                        std::to_string(buffer.size()) + "-byte buffer");
    const auto size = detail::checked_numel(shape, dtype_size(*dt));
    if (!size || *size != end - begin)
      st.fail(name, std::string(dtype_name(*dt)) + " " + detail::shape_string(shape) + " needs " +
                        (size ? std::to_string(*size) : std::string("too many")) + " bytes, data_offsets give " +
                        std::to_string(end - begin));
    spans.push_back({begin, end, st.tensors.size()});
    st.tensors.push_back({name, *dt, std::move(shape), {}});
  }

  // The tensors must tile the buffer exactly, without overlaps or gaps.
  std::ranges::stable_sort(spans,
                           [](const Span& a, const Span& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  std::size_t pos = 0;
  const std::string* prev = nullptr;  // the tensor before, none at the buffer start
  for (const auto& s : spans) {
    const std::string& name = st.tensors[s.index].name;
    if (s.begin < pos) st.fail(name, "data overlaps tensor '" + excerpt(*prev) + "'");
    if (s.begin > pos)
      st.fail(name, "data_offsets are not contiguous: bytes [" + std::to_string(pos) + ", " + std::to_string(s.begin) + ") after " +
                        (prev ? "'" + excerpt(*prev) + "'" : std::string("the buffer start")) + " belong to no tensor");
    pos = s.end;
    prev = &name;
  }
  if (pos != buffer.size())
    fail_file("the buffer has " + std::to_string(buffer.size() - pos) + " trailing bytes after the last tensor");

  std::vector<Tensor> ordered;
  ordered.reserve(spans.size());
  if (data) data->clear();
  for (const auto& s : spans) {
    Tensor& t = st.tensors[s.index];
    if (data) data->push_back(buffer.subspan(s.begin, s.end - s.begin));
    else t.bytes.assign(buffer.begin() + static_cast<std::ptrdiff_t>(s.begin), buffer.begin() + static_cast<std::ptrdiff_t>(s.end));
    ordered.push_back(std::move(t));
  }
  st.tensors = std::move(ordered);
  return st;
}

// Reads `path` whole. Errors name the path: missing or unreadable, a directory, a FIFO or
// device (refused: opened without blocking, so a FIFO without a writer cannot hang the caller),
// a file that does not fit in memory or shrinks while being read.
inline SafeTensors load_safetensors(const std::filesystem::path& path) {
  const detail::RegularFile input(path);
  const int fd = input.fd();
  const std::size_t size = input.size();
  std::vector<std::byte> file;
  try {
    file.resize(size);
  } catch (const std::bad_alloc&) {
    throw std::runtime_error("dyad: cannot read '" + path.string() + "': " + std::to_string(size) + " bytes do not fit in memory");
  }
  for (std::size_t done = 0; done < size;) {
    const ::ssize_t r = ::read(fd, file.data() + done, std::min<std::size_t>(size - done, std::size_t{1} << 30));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) detail::throw_os_error("cannot read", path, errno);
    if (r == 0) throw std::runtime_error("dyad: cannot read '" + path.string() + "': the file shrank while being read");
    done += static_cast<std::size_t>(r);
  }
  return SafeTensors::from_bytes(file, path.string());
}

inline void SafeTensors::save(const std::filesystem::path& path) const {
  const std::string h = header(path.string());  // validate before creating any file
  write_file_atomically(path, [&](std::ostream& os) { write_with_header(os, h); });
}

inline void save_safetensors(const std::filesystem::path& path, const SafeTensors& st) { st.save(path); }

}  // namespace dyad
