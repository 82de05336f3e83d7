// What the CPU running dyad can do, read at run time with cpuid: the kernels are built for the
// compiler's target, but the bf16 products are compiled separately for AVX512-BF16 and chosen
// only where this machine (and its operating system) supports them.
#pragma once

#include <string>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define DYAD_X86_64 1
#endif

namespace dyad {

struct CpuFeatures {
  bool avx2 = false, fma = false, avx512f = false, avx512bw = false, avx512vl = false;
  bool avx512_bf16 = false;  // VDPBF16PS: the bf16 products
  bool amx_bf16 = false;     // reported only; dyad has no AMX kernel

  // The names of the features present, space-separated ("avx2 fma avx512f ... avx512_bf16").
  std::string names() const {
    std::string s;
    auto add = [&](bool on, const char* name) {
      if (!on) return;
      if (!s.empty()) s += ' ';
      s += name;
    };
    add(avx2, "avx2");
    add(fma, "fma");
    add(avx512f, "avx512f");
    add(avx512bw, "avx512bw");
    add(avx512vl, "avx512vl");
    add(avx512_bf16, "avx512_bf16");
    add(amx_bf16, "amx_bf16");
    return s.empty() ? "none of avx2, fma, avx512" : s;
  }
};

namespace detail {

inline CpuFeatures read_cpu_features() {
  CpuFeatures f;
#ifdef DYAD_X86_64
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid(1, a, b, c, d);
  const bool osxsave = (c >> 27) & 1u, fma = (c >> 12) & 1u;
  if (!osxsave) return f;  // the OS does not save the vector registers: nothing past SSE
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  const bool ymm = (lo & 0x6u) == 0x6u, zmm = ymm && (lo & 0xe0u) == 0xe0u;
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2 = ymm && ((b >> 5) & 1u);
  f.fma = ymm && fma;
  f.avx512f = zmm && ((b >> 16) & 1u);
  f.avx512bw = zmm && ((b >> 30) & 1u);
  f.avx512vl = zmm && ((b >> 31) & 1u);
  f.amx_bf16 = (d >> 22) & 1u;
  unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
  __cpuid_count(7, 1, a1, b1, c1, d1);
  f.avx512_bf16 = f.avx512f && ((a1 >> 5) & 1u);
#endif
  return f;
}

}  // namespace detail

// Read once per process.
inline const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detail::read_cpu_features();
  return f;
}

// The processor's name as cpuid gives it ("AMD EPYC 9R14 ...", "Intel(R) Xeon(R) ..."), or
// "unknown".
inline std::string cpu_brand() {
  std::string s;
#ifdef DYAD_X86_64
  unsigned r[4] = {};
  if (__get_cpuid_max(0x80000000u, nullptr) >= 0x80000004u)
    for (unsigned leaf = 0x80000002u; leaf <= 0x80000004u; ++leaf) {
      __cpuid(leaf, r[0], r[1], r[2], r[3]);
      s.append(reinterpret_cast<const char*>(r), sizeof r);
    }
#endif
  s = s.substr(0, s.find('\0'));
  const auto first = s.find_first_not_of(' '), last = s.find_last_not_of(' ');
  return first == std::string::npos ? "unknown" : s.substr(first, last - first + 1);
}

// Whether this machine runs dyad's bf16 kernels (AVX512-BF16 with AVX512BW and VL).
inline bool cpu_has_bf16() {
  const CpuFeatures& f = cpu_features();
  return f.avx512_bf16 && f.avx512bw && f.avx512vl;
}

}  // namespace dyad
