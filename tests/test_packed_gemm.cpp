// simd::PackedMatrix (dyad/simd/packed_gemm.hpp): the packed product equals the plain one for
// both storage orders of A, every panel height, column counts around the kernel's block, and
// leading dimensions larger than the rows.
#include <dyad/core/random.hpp>
#include <dyad/simd/packed_gemm.hpp>

#include <doctest/doctest.h>

#include <vector>

using namespace dyad;

TEST_CASE_TEMPLATE("packed product: C += A B for row- and column-major A, any N and leading dimensions", T, double, float) {
  using P = simd::PackedMatrix<T>;
  using M = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  Rng rng(3);
  auto random = [&](Index r, Index c) {
    M m(r, c);
    for (Index i = 0; i < m.size(); ++i) m.data()[i] = T(rng.normal());
    return m;
  };
  const Index S = static_cast<Index>(xsimd::batch<T>::size);
  for (const Index rows : {S, 2 * S, 3 * S, 4 * S, 7 * S})
    for (const Index K : {Index{1}, Index{5}, Index{64}})
      for (const Index N : {Index{1}, Index{3}, Index{8}, Index{13}, Index{33}})
        for (const bool row_major : {false, true}) {
          CAPTURE(rows);
          CAPTURE(K);
          CAPTURE(N);
          CAPTURE(row_major);
          REQUIRE(P::supports(rows));
          const M A = random(rows, K);
          const M storage = row_major ? M(A.transpose()) : A;  // A(i, k) at i * K + k, or k * rows + i
          std::vector<T> packed(P::packed_size(rows, K));
          P::pack(storage.data(), row_major ? K : 1, row_major ? 1 : rows, rows, K, packed.data());
          const M Bfull = random(K + 2, N), C0 = random(rows + 1, N);  // b and c with ld > rows
          M C = C0;
          P::multiply_add(packed.data(), rows, K, Bfull.data(), K + 2, C.data(), rows + 1, N);
          const M expected = C0.topRows(rows) + A * Bfull.topRows(K);
          CHECK((C.topRows(rows) - expected).cwiseAbs().maxCoeff() <= T(1e-4) * (T(1) + expected.cwiseAbs().maxCoeff()));
          CHECK(C.row(rows) == C0.row(rows));  // rows past M untouched
        }
  CHECK_FALSE(P::supports(S + 1));
  CHECK_FALSE(P::supports(0));
}
