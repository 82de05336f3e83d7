// The arithmetic of scoring. fp32 is the default and the only training precision. bf16 stores
// the GRU products' operands (weights, inputs, states) in bfloat16 and accumulates in fp32;
// the gate math and everything else stay fp32. It needs AVX512-BF16: elsewhere a bf16 request
// runs fp32, and effective_precision() says so before anything runs.
#pragma once

#include "dyad/core/cpu.hpp"

#include <stdexcept>
#include <string>
#include <string_view>

namespace dyad {

enum class Precision { fp32, bf16 };

inline const char* to_string(Precision p) { return p == Precision::bf16 ? "bf16" : "fp32"; }

// "fp32" or "bf16"; anything else throws, naming the value.
inline Precision parse_precision(std::string_view s) {
  if (s == "fp32") return Precision::fp32;
  if (s == "bf16") return Precision::bf16;
  throw std::invalid_argument("dyad: unknown precision '" + std::string(s) + "' (expected fp32 or bf16)");
}

// What a request runs as on this machine: bf16 only where the CPU has the bf16 kernels.
inline Precision effective_precision(Precision requested) {
  return requested == Precision::bf16 && cpu_has_bf16() ? Precision::bf16 : Precision::fp32;
}

}  // namespace dyad
