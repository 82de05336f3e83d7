// Fuzz target: the safetensors parser (dyad::SafeTensors::from_bytes). What it accepts must
// convert to the numeric types the loaders ask for, and write back (to_bytes) to bytes that
// parse to the same tensors and metadata.
#include "fuzz_util.hpp"

#include <dyad/io/safetensors.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <span>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  dyad::SafeTensors st;
  try {
    st = dyad::SafeTensors::from_bytes(bytes, "fuzz.safetensors");
  } catch (const std::exception&) {
    return 0;
  }
  for (const auto& t : st.tensors) {
    const auto numel = t.numel();
    try {  // each conversion either refuses the dtype or gives one value per element
      if (st.get<float>(t.name).size() != numel) dyad::fuzz::bug("get<float> of '" + t.name + "' has the wrong size");
      if (st.get<double>(t.name, t.shape).size() != numel) dyad::fuzz::bug("get<double> of '" + t.name + "' has the wrong size");
    } catch (const std::runtime_error&) {
    }
    try {
      if (st.get<std::int64_t>(t.name).size() != numel) dyad::fuzz::bug("get<int64_t> of '" + t.name + "' has the wrong size");
      if (st.get<std::int32_t>(t.name).size() != numel) dyad::fuzz::bug("get<int32_t> of '" + t.name + "' has the wrong size");
    } catch (const std::runtime_error&) {
    }
  }
  std::vector<std::byte> again;
  try {
    again = st.to_bytes();
  } catch (const std::exception& e) {
    dyad::fuzz::bug(std::string("to_bytes refuses what from_bytes accepted: ") + e.what());
  }
  dyad::SafeTensors back;
  try {
    back = dyad::SafeTensors::from_bytes(again, "roundtrip.safetensors");
  } catch (const std::exception& e) {
    dyad::fuzz::bug(std::string("from_bytes refuses what to_bytes wrote: ") + e.what());
  }
  if (back.metadata != st.metadata) dyad::fuzz::bug("metadata changed in a write + read round trip");
  if (back.tensors.size() != st.tensors.size()) dyad::fuzz::bug("tensor count changed in a write + read round trip");
  for (std::size_t i = 0; i < st.tensors.size(); ++i) {
    const auto &a = st.tensors[i], &b = back.tensors[i];
    if (a.name != b.name || a.dtype != b.dtype || a.shape != b.shape || a.bytes != b.bytes)
      dyad::fuzz::bug("tensor '" + a.name + "' changed in a write + read round trip");
  }
  return 0;
}
