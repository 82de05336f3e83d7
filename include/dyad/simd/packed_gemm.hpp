// C[M x N] += A[M x K] B[K x N] for an A that is used many times: the GRU's recurrent weights,
// multiplied into the state at every one of T steps. A general GEMM (Eigen's) packs A again on
// every call; here A is packed once into row panels, and each call runs a register-blocked
// xsimd kernel over them: a panel of up to 3 vectors of rows times NR columns of B accumulates
// in registers over all of K, with B read in place (column-major, any leading dimension).
// Measured on one AMD EPYC core for the per-step product of H = 64-1024 and 32-256 columns:
// 206-230 GFLOP/s against Eigen 3.4's 91-166, 1.3-2.5x (bench_ops: BM_RecurrentProduct).
#pragma once

#include "dyad/core/tape.hpp"

#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <cstddef>
#include <utility>

namespace dyad::simd {

template <class T>
class PackedMatrix {
  using V = xsimd::batch<T>;
  static constexpr Index S = static_cast<Index>(V::size);
  // Rows per panel in vectors, and columns of B per kernel call: the accumulators (MV x NR
  // registers) plus MV rows of A and one broadcast fit in the register file.
  static constexpr Index MV = S >= 16 ? 3 : 2;
  static constexpr Index NR = S >= 16 ? 8 : (S >= 8 ? 6 : 4);

 public:
  // Whether A of M rows can be packed: whole vectors of rows (the GRU's 3H and H are, for H a
  // multiple of 16); the caller falls back to a general GEMM otherwise.
  static bool supports(Index rows) { return rows > 0 && rows % S == 0; }
  static std::size_t packed_size(Index rows, Index cols) { return static_cast<std::size_t>(rows * cols); }

  // Packs A(i, k) = a[i * row_stride + k * col_stride] (either storage order) into `out`
  // (packed_size values): panels of MV * S rows, the last one of fewer, each [K][rows].
  static void pack(const T* a, Index row_stride, Index col_stride, Index rows, Index cols, T* out) {
    for (Index i0 = 0; i0 < rows; i0 += MV * S) {
      const Index h = std::min(MV * S, rows - i0);
      for (Index k = 0; k < cols; ++k)
        for (Index r = 0; r < h; ++r) *out++ = a[(i0 + r) * row_stride + k * col_stride];
    }
  }

  // c[M x N] (column-major, leading dimension ldc) += A b, with A packed by pack() and b [K x N]
  // column-major with leading dimension ldb.
  static void multiply_add(const T* packed, Index rows, Index cols, const T* b, Index ldb, T* c, Index ldc, Index n) {
    for (Index i0 = 0; i0 < rows; i0 += MV * S) {
      const Index vectors = std::min(MV * S, rows - i0) / S;
      const T* a = packed + i0 * cols;
      switch (vectors) {
        case 1: panel<1>(a, cols, b, ldb, c + i0, ldc, n); break;
        case 2: panel<2>(a, cols, b, ldb, c + i0, ldc, n); break;
        default: panel<MV>(a, cols, b, ldb, c + i0, ldc, n); break;
      }
    }
  }

 private:
  template <Index M>
  static void panel(const T* a, Index K, const T* b, Index ldb, T* c, Index ldc, Index n) {
    Index j = 0;
    for (; j + NR <= n; j += NR) kernel<M, NR>(a, K, b + j * ldb, ldb, c + j * ldc, ldc);
    // The last columns, in one call of their own width. (clang-format 14 would split the
    // templated lambda from its call.)
    // clang-format off
    [&]<Index... W>(std::integer_sequence<Index, W...>) {
      ((n - j == W + 1 ? kernel<M, W + 1>(a, K, b + j * ldb, ldb, c + j * ldc, ldc) : void()), ...);
    }(std::make_integer_sequence<Index, NR - 1>{});
    // clang-format on
  }

  template <Index M, Index N>
  static void kernel(const T* a, Index K, const T* b, Index ldb, T* c, Index ldc) {
    V acc[M][N];
    for (Index j = 0; j < N; ++j)
      for (Index v = 0; v < M; ++v) acc[v][j] = V::load_unaligned(c + j * ldc + v * S);
    for (Index k = 0; k < K; ++k, a += M * S) {
      V av[M];
      for (Index v = 0; v < M; ++v) av[v] = V::load_unaligned(a + v * S);
      for (Index j = 0; j < N; ++j) {
        const V bj(b[j * ldb + k]);
        for (Index v = 0; v < M; ++v) acc[v][j] = xsimd::fma(av[v], bj, acc[v][j]);
      }
    }
    for (Index j = 0; j < N; ++j)
      for (Index v = 0; v < M; ++v) acc[v][j].store_unaligned(c + j * ldc + v * S);
  }
};

}  // namespace dyad::simd
