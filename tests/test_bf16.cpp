// bf16 scoring (dyad/core/precision.hpp, dyad/simd/bf16_gemm.hpp): the rounding, the packed
// bf16 product against a double reference on the same rounded operands, a GRU layer against a
// scalar emulation of what bf16 scoring computes, a trained model's ranking, and the rules
// (inference only, float only, fp32 where the CPU has no bf16). The kernel cases need
// AVX512-BF16 and say so where it is missing.
#include "toy_data.hpp"

#include <dyad/model.hpp>
#include <dyad/ops/gru.hpp>
#include <dyad/simd/bf16_gemm.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

using namespace dyad;
namespace bf = dyad::simd::bf16;

namespace {

float rounded(float x) { return bf::to_float(bf::from_float(x)); }

bool skip_without_bf16() {
  if (cpu_has_bf16()) return false;
  MESSAGE("skipped: this CPU has no AVX512-BF16 (" << cpu_features().names() << ")");
  return true;
}

double spearman(const Eigen::VectorXd& a, const Eigen::VectorXd& b) {
  auto ranks = [](const Eigen::VectorXd& v) {
    std::vector<Index> order(static_cast<std::size_t>(v.size()));
    std::iota(order.begin(), order.end(), Index{0});
    std::sort(order.begin(), order.end(), [&](Index i, Index j) { return v[i] < v[j]; });
    Eigen::VectorXd r(v.size());
    for (Index k = 0; k < v.size(); ++k) r[order[static_cast<std::size_t>(k)]] = double(k);
    return r;
  };
  const Eigen::VectorXd ra = ranks(a), rb = ranks(b);
  const Eigen::VectorXd ca = ra.array() - ra.mean(), cb = rb.array() - rb.mean();
  return ca.dot(cb) / std::sqrt(ca.squaredNorm() * cb.squaredNorm());
}

}  // namespace

TEST_CASE("bf16: from_float rounds to nearest even and keeps infinities and NaN") {
  CHECK(bf::from_float(1.0f) == 0x3f80);
  CHECK(bf::from_float(-2.0f) == 0xc000);
  CHECK(rounded(1.0f + 0x1p-8f) == 1.0f);                       // a tie: to the even neighbour
  CHECK(rounded(1.0f + 3 * 0x1p-8f) == 1.0f + 0x1p-6f);         // a tie: up, to the even one
  CHECK(rounded(1.0f + 0x1p-8f + 0x1p-20f) == 1.0f + 0x1p-7f);  // past the tie: up
  CHECK(rounded(std::numeric_limits<float>::infinity()) == std::numeric_limits<float>::infinity());
  CHECK(rounded(std::numeric_limits<float>::max()) == std::numeric_limits<float>::infinity());  // as the hardware does
  CHECK(std::isnan(rounded(std::numeric_limits<float>::quiet_NaN())));
  CHECK(std::isnan(rounded(std::bit_cast<float>(0x7f800001u))));  // a signalling NaN must not become infinity
  CHECK(bf::even(7) == 8);
  CHECK(bf::even(8) == 8);
}

#ifdef DYAD_BF16_KERNELS
TEST_CASE("bf16: the hardware conversion equals from_float; odd rows get a zero pad") {
  if (skip_without_bf16()) return;
  Rng rng(4);
  for (const Index rows : {Index{1}, Index{7}, Index{16}, Index{33}}) {
    CAPTURE(rows);
    const Index n = 5, ldx = rows + 3, ldo = bf::even(rows) + 2;
    std::vector<float> x(static_cast<std::size_t>(ldx * n));
    for (auto& v : x) v = static_cast<float>(rng.normal() * std::pow(10.0, rng.uniform(-3, 3)));
    x[0] = 1.0f + 0x1p-8f;  // a tie
    std::vector<bf::bf16> out(static_cast<std::size_t>(ldo * n), 0xffff);
    bf::convert_columns(x.data(), ldx, rows, n, out.data(), ldo);
    for (Index j = 0; j < n; ++j) {
      for (Index i = 0; i < rows; ++i)
        CHECK(out[static_cast<std::size_t>(j * ldo + i)] == bf::from_float(x[static_cast<std::size_t>(j * ldx + i)]));
      if (rows & 1) CHECK(out[static_cast<std::size_t>(j * ldo + rows)] == 0);
      CHECK(out[static_cast<std::size_t>(j * ldo + ldo - 1)] == 0xffff);  // nothing written past the column
    }
  }
}

TEST_CASE("bf16: packed product equals a double product of the rounded operands, for every panel and column tail") {
  if (skip_without_bf16()) return;
  Rng rng(5);
  for (const Index rows : {Index{16}, Index{32}, Index{48}, Index{80}, Index{192}})
    for (const Index K : {Index{1}, Index{2}, Index{7}, Index{64}, Index{65}})
      for (const Index N : {Index{1}, Index{5}, Index{8}, Index{9}, Index{19}})
        for (const bool row_major : {false, true}) {
          CAPTURE(rows);
          CAPTURE(K);
          CAPTURE(N);
          CAPTURE(row_major);
          REQUIRE(bf::supports(rows));
          Eigen::MatrixXf A(rows, K), Bm(K, N), C0(rows + 1, N);  // c with ld > rows
          for (float* p : {A.data(), Bm.data(), C0.data()})
            for (Index i = 0; i < (p == A.data() ? A.size() : p == Bm.data() ? Bm.size() : C0.size()); ++i)
              p[i] = static_cast<float>(rng.normal());
          const Eigen::MatrixXf storage = row_major ? Eigen::MatrixXf(A.transpose()) : A;
          std::vector<bf::bf16> packed(bf::packed_size(rows, K));
          bf::pack(storage.data(), row_major ? K : 1, row_major ? 1 : rows, rows, K, packed.data());
          const Index ldb = bf::even(K) + 4;
          std::vector<bf::bf16> b(static_cast<std::size_t>(ldb * N));
          bf::convert_columns(Bm.data(), K, K, N, b.data(), ldb);
          Eigen::MatrixXf C = C0;
          bf::multiply_add(packed.data(), rows, K, b.data(), ldb, C.data(), rows + 1, N);
          const Eigen::MatrixXd Ar = A.unaryExpr([](float v) { return rounded(v); }).cast<double>();
          const Eigen::MatrixXd Br = Bm.unaryExpr([](float v) { return rounded(v); }).cast<double>();
          const Eigen::MatrixXd expected = C0.topRows(rows).cast<double>() + Ar * Br;
          const double scale = 1 + (Ar.cwiseAbs() * Br.cwiseAbs()).maxCoeff();
          CHECK((C.topRows(rows).cast<double>() - expected).cwiseAbs().maxCoeff() <= 1e-6 * scale);
          CHECK(C.row(rows) == C0.row(rows));  // the row past M is untouched
        }
}

namespace {

// What bf16 scoring computes, one sample at a time in double: the products' operands rounded to
// bf16 (W_hh and the previous state always; W_ih and x when x has 16 rows or more), the gates
// exact. Padding carries the state through, as PyTorch's packed sequences do.
Eigen::MatrixXd emulated_gru(const Eigen::MatrixXf& x, const Eigen::MatrixXf& w_ih, const Eigen::MatrixXf& w_hh,
                             const Eigen::VectorXf& b_ih, const Eigen::VectorXf& b_hh, const Eigen::MatrixXf& h0, Index steps,
                             const int* lengths, bool reverse) {
  const Index H = w_hh.rows(), B = h0.cols();
  const bool inputs = x.rows() >= 16;
  auto r = [](const Eigen::MatrixXf& m, bool round) {
    return m.unaryExpr([&](float v) { return round ? double(rounded(v)) : double(v); }).eval();
  };
  const Eigen::MatrixXd Wih = r(w_ih, inputs), Whh = r(w_hh, true), X = r(x, inputs);
  Eigen::MatrixXd out(H, steps * B);
  for (Index b = 0; b < B; ++b) {
    Eigen::VectorXd h = h0.col(b).cast<double>();
    for (Index k = 0; k < steps; ++k) {
      const Index t = reverse ? steps - 1 - k : k;
      if (t < lengths[b]) {
        const Eigen::VectorXd hr = h.unaryExpr([](double v) { return double(rounded(static_cast<float>(v))); });
        const Eigen::VectorXd gi = Wih.transpose() * X.col(t * B + b) + b_ih.cast<double>();
        const Eigen::VectorXd gh = Whh.transpose() * hr + b_hh.cast<double>();
        auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
        for (Index i = 0; i < H; ++i) {
          const double rg = sig(gi[i] + gh[i]), z = sig(gi[H + i] + gh[H + i]);
          const double n = std::tanh(gi[2 * H + i] + rg * gh[2 * H + i]);
          h[i] = (1 - z) * n + z * h[i];
        }
      }
      out.col(t * B + b) = h;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("bf16: a GRU direction on 1 and 2 threads matches the emulation of bf16 scoring far closer than fp32 does") {
  if (skip_without_bf16()) return;
  Rng rng(8);
  ThreadPool two(2);
  // I = 3 keeps the inputs fp32, I = 24 rounds them; B * T large enough that the input
  // projection runs step by step (not hoisted) for H = 16 and 32 at T = 48.
  for (const Index I : {Index{3}, Index{24}})
    for (const Index H : {Index{16}, Index{32}})
      for (const Index T_ : {Index{5}, Index{48}})
        for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &two})
          for (const bool reverse : {false, true}) {
            CAPTURE(I);
            CAPTURE(H);
            CAPTURE(T_);
            CAPTURE(reverse);
            const Index B = T_ > 5 ? 240 : 11;
            std::vector<int> lengths(static_cast<std::size_t>(B));
            for (auto& l : lengths) l = 1 + static_cast<int>(rng.below(static_cast<std::uint64_t>(T_)));
            lengths[0] = static_cast<int>(T_);
            auto random = [&](Index r, Index c, double s) {
              Eigen::MatrixXf m(r, c);
              for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<float>(s * rng.normal());
              return m;
            };
            const Eigen::MatrixXf x = random(I, T_ * B, 1), w_ih = random(I, 3 * H, 0.5), w_hh = random(H, 3 * H, 0.3),
                                  h0 = random(H, B, 0.5);
            const Eigen::VectorXf b_ih = random(3 * H, 1, 0.1), b_hh = random(3 * H, 1, 0.1);
            const SequenceShape seq{T_, B, lengths.data()};
            auto run = [&](Precision p) {
              Tape<float> tape(Mode::inference);
              tape.set_pool(pool);
              tape.set_precision(p);
              auto c = [](const Eigen::MatrixXf& m) { return Tape<float>::constant(m.data(), m.rows(), m.cols()); };
              Var<float> out = tape.variable(H, T_ * B), h_n = tape.variable(H, B);
              gru_direction(tape, c(x), c(h0), c(w_ih), c(w_hh), c(b_ih), c(b_hh), out, h_n, seq, reverse);
              return Eigen::MatrixXd(out.value().cast<double>());
            };
            const Eigen::MatrixXd expected = emulated_gru(x, w_ih, w_hh, b_ih, b_hh, h0, T_, lengths.data(), reverse);
            const Eigen::ArrayXXd bf16_error = (run(Precision::bf16) - expected).array().abs();
            const Eigen::ArrayXXd fp32_error = (run(Precision::fp32) - expected).array().abs();
            MESSAGE("bf16 mean " << bf16_error.mean() << " max " << bf16_error.maxCoeff() << "; fp32 mean " << fp32_error.mean()
                                 << " max " << fp32_error.maxCoeff());
            // Over a few steps the emulation is exact up to fp32 sums. Over many, a state within
            // rounding error of a bf16 tie may round the other way and carry that on, so the
            // mean, not the largest, difference is what stays far below fp32's.
            if (T_ == 5) CHECK(bf16_error.maxCoeff() < 1e-5);
            CHECK(bf16_error.maxCoeff() < 1e-2);
            CHECK(bf16_error.mean() < fp32_error.mean() / 20);
          }
}

TEST_CASE("bf16: a trained model's segment ranking by rec_error matches fp32's (Spearman >= 0.999), for every cell") {
  if (skip_without_bf16()) return;
  for (const Cell cell : {Cell::gru, Cell::rnn, Cell::lstm}) {
    CAPTURE(to_string(cell));
    ModelConfig c = test::tiny_config();
    c.cell = cell;
    c.hidden = 32;  // bf16 needs whole vectors of gate rows: gates * H a multiple of 16
    c.latent = 4;
    c.epochs = 3;
    const Dataset data = test::toy_dataset(120, c.roles, 21, 20, 40, 4);
    Model<float> model(c);
    model.fit(data);
    Model<float>::Workspace fp32(1), bf16(2, Precision::bf16);
    CHECK(bf16.precision() == Precision::bf16);
    const Scores a = model.score(fp32, data), b = model.score(bf16, data);
    CHECK(a.rec_error != b.rec_error);  // bf16 really ran
    const double rho = spearman(a.rec_error, b.rec_error);
    MESSAGE("Spearman " << rho << ", largest relative rec_error change "
                        << ((a.rec_error - b.rec_error).array() / a.rec_error.array()).abs().maxCoeff());
    CHECK(rho >= 0.999);
    CHECK(((a.rec_error - b.rec_error).array() / a.rec_error.array()).abs().maxCoeff() < 0.05);
  }
}
#endif

TEST_CASE("bf16: what a request runs as; training and double tapes stay in their own type") {
  CHECK(effective_precision(Precision::fp32) == Precision::fp32);
  CHECK(effective_precision(Precision::bf16) == (cpu_has_bf16() ? Precision::bf16 : Precision::fp32));
  CHECK(parse_precision("bf16") == Precision::bf16);
  CHECK(std::string(to_string(Precision::fp32)) == "fp32");
  CHECK_THROWS_WITH_AS(parse_precision("fp16"), "dyad: unknown precision 'fp16' (expected fp32 or bf16)", std::invalid_argument);
  Tape<float> training;
  CHECK_THROWS_WITH_AS(training.set_precision(Precision::bf16),
                       "dyad::Tape: bf16 is for inference tapes; training computes in fp32", std::invalid_argument);
  Tape<double> inference(Mode::inference);
  inference.set_precision(Precision::bf16);
  CHECK(inference.precision() == Precision::fp32);

  // A double model asked for bf16 scores exactly as in fp32.
  const ModelConfig c = test::tiny_config();
  const Dataset data = test::toy_dataset(20, c.roles, 3);
  Model<double> model(c);
  model.fit(data);
  Model<double>::Workspace plain(1), asked(1, Precision::bf16);
  CHECK(asked.precision() == Precision::fp32);
  CHECK(model.score(plain, data).rec_error == model.score(asked, data).rec_error);
}

TEST_CASE("cpu features: the names list what is present; bf16 kernels need AVX512-BF16, BW and VL") {
  const CpuFeatures& f = cpu_features();
  const std::string names = f.names();
  CHECK(!names.empty());
  CHECK((names.find("avx512_bf16") != std::string::npos) == f.avx512_bf16);
  CHECK(cpu_has_bf16() == (f.avx512_bf16 && f.avx512bw && f.avx512vl));
  CHECK(!cpu_brand().empty());
  MESSAGE("CPU: " << cpu_brand() << " (" << names << ")");
}
