// C[M x N] += A[M x K] B[K x N] with A and B in bfloat16 and C in fp32: the GRU products of
// bf16 scoring (dyad/core/precision.hpp). The layout is PackedMatrix's (packed_gemm.hpp) with
// K taken in pairs, since VDPBF16PS multiplies a pair of bf16 per fp32 lane and adds both
// products into it: A is packed once into panels of up to 48 rows, each [K/2][rows][2], and B
// is column-major bf16 whose columns hold an even number of rows (the odd one out is zero).
// The kernels are compiled for AVX512-BF16 whatever the compiler's target, so callers must
// check cpu_has_bf16() first; pack() and the conversions also run anywhere in plain C++.
// Measured on one AMD EPYC core for the per-step product (H = 64-1024, 256 columns): 422-459
// GFLOP/s against the fp32 PackedMatrix's 213-221 (bench_ops: BM_RecurrentProduct, kind 2).
#pragma once

#include "dyad/core/cpu.hpp"
#include "dyad/core/tape.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>

#if defined(DYAD_X86_64)
#include <immintrin.h>
#define DYAD_BF16_KERNELS 1
#define DYAD_TARGET_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#endif

namespace dyad::simd::bf16 {

using bf16 = std::uint16_t;

// Round to nearest even, as VCVTNEPS2BF16 does (a NaN stays a quiet NaN).
inline bf16 from_float(float f) {
  std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<bf16>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<bf16>(u >> 16);
}
inline float to_float(bf16 b) { return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16); }

// K rounded up to whole pairs: the rows of a packed panel's K and of each column of B.
inline Index even(Index k) { return k + (k & 1); }

inline constexpr Index kLanes = 16;        // fp32 lanes of a 512-bit register
inline constexpr Index kPanelVectors = 3;  // rows per panel in vectors: 3 x 8 accumulators fit
inline constexpr Index kColumns = 8;       // columns of B per kernel call

// Whether A of M rows can be packed: whole vectors of rows.
inline bool supports(Index rows) { return rows > 0 && rows % kLanes == 0; }
inline std::size_t packed_size(Index rows, Index cols) { return static_cast<std::size_t>(rows * even(cols)); }

// Packs A(i, k) = a[i * row_stride + k * col_stride] (either storage order) into `out`
// (packed_size values).
inline void pack(const float* a, Index row_stride, Index col_stride, Index rows, Index cols, bf16* out) {
  for (Index i0 = 0; i0 < rows; i0 += kPanelVectors * kLanes) {
    const Index h = std::min(kPanelVectors * kLanes, rows - i0);
    for (Index k = 0; k < cols; k += 2)
      for (Index r = 0; r < h; ++r) {
        const float* row = a + (i0 + r) * row_stride;
        *out++ = from_float(row[k * col_stride]);
        *out++ = k + 1 < cols ? from_float(row[(k + 1) * col_stride]) : bf16{0};
      }
  }
}

#ifdef DYAD_BF16_KERNELS
namespace detail {

template <int M, int N>
DYAD_TARGET_BF16 void kernel(const bf16* a, Index pairs, const bf16* b, Index ldb, float* c, Index ldc) {
  __m512 acc[M][N];
#pragma GCC unroll 8
  for (int j = 0; j < N; ++j)
#pragma GCC unroll 8
    for (int v = 0; v < M; ++v) acc[v][j] = _mm512_loadu_ps(c + j * ldc + v * kLanes);
  for (Index p = 0; p < pairs; ++p, a += M * 2 * kLanes) {
    __m512bh av[M];
#pragma GCC unroll 8
    for (int v = 0; v < M; ++v) av[v] = (__m512bh)_mm512_loadu_si512(a + v * 2 * kLanes);
#pragma GCC unroll 8
    for (int j = 0; j < N; ++j) {
      std::int32_t pair;
      std::memcpy(&pair, b + j * ldb + 2 * p, sizeof pair);
      const __m512bh bj = (__m512bh)_mm512_set1_epi32(pair);
#pragma GCC unroll 8
      for (int v = 0; v < M; ++v) acc[v][j] = _mm512_dpbf16_ps(acc[v][j], av[v], bj);
    }
  }
#pragma GCC unroll 8
  for (int j = 0; j < N; ++j)
#pragma GCC unroll 8
    for (int v = 0; v < M; ++v) _mm512_storeu_ps(c + j * ldc + v * kLanes, acc[v][j]);
}

template <int M>
DYAD_TARGET_BF16 void panel(const bf16* a, Index pairs, const bf16* b, Index ldb, float* c, Index ldc, Index n) {
  Index j = 0;
  for (; j + kColumns <= n; j += kColumns) kernel<M, kColumns>(a, pairs, b + j * ldb, ldb, c + j * ldc, ldc);
  b += j * ldb;
  c += j * ldc;
  switch (n - j) {
    case 7: kernel<M, 7>(a, pairs, b, ldb, c, ldc); break;
    case 6: kernel<M, 6>(a, pairs, b, ldb, c, ldc); break;
    case 5: kernel<M, 5>(a, pairs, b, ldb, c, ldc); break;
    case 4: kernel<M, 4>(a, pairs, b, ldb, c, ldc); break;
    case 3: kernel<M, 3>(a, pairs, b, ldb, c, ldc); break;
    case 2: kernel<M, 2>(a, pairs, b, ldb, c, ldc); break;
    case 1: kernel<M, 1>(a, pairs, b, ldb, c, ldc); break;
    default: break;
  }
}

}  // namespace detail

// c[M x N] (column-major, leading dimension ldc) += A b, with A [M x K] packed by pack() and
// b [K x N] bf16 column-major with leading dimension ldb >= even(K), zero in row K when K is odd.
DYAD_TARGET_BF16 inline void multiply_add(const bf16* packed, Index rows, Index cols, const bf16* b, Index ldb, float* c, Index ldc,
                                          Index n) {
  const Index pairs = even(cols) / 2;
  for (Index i0 = 0; i0 < rows; i0 += kPanelVectors * kLanes) {
    const bf16* a = packed + i0 * even(cols);
    switch (std::min(kPanelVectors * kLanes, rows - i0) / kLanes) {
      case 1: detail::panel<1>(a, pairs, b, ldb, c + i0, ldc, n); break;
      case 2: detail::panel<2>(a, pairs, b, ldb, c + i0, ldc, n); break;
      default: detail::panel<3>(a, pairs, b, ldb, c + i0, ldc, n); break;
    }
  }
}

// Columns of x [rows x n] (leading dimension ldx) to bf16 columns of even(rows) values
// (leading dimension ldo), the padding row zero: VCVTNEPS2BF16, 16 values at a time.
DYAD_TARGET_BF16 inline void convert_columns(const float* x, Index ldx, Index rows, Index n, bf16* out, Index ldo) {
  for (Index j = 0; j < n; ++j, x += ldx, out += ldo) {
    Index i = 0;
    for (; i + kLanes <= rows; i += kLanes)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + i)));
    if (i < rows) {
      const auto mask = static_cast<__mmask16>((1u << (rows - i)) - 1u);
      const __m256i v = (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, x + i));
      _mm256_mask_storeu_epi16(out + i, mask, v);
    }
    if (rows & 1) out[rows] = 0;
  }
}
#endif

}  // namespace dyad::simd::bf16
