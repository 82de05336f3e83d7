// Central finite-difference checks of tape gradients.
#pragma once

#include <dyad/core/random.hpp>
#include <dyad/core/tape.hpp>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <vector>

namespace dyad::test {

template <class T>
Matrix<T> random_matrix(Rng& rng, Index rows, Index cols, double scale = 1.0) {
  Matrix<T> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = T(rng.uniform(-scale, scale));
  return m;
}

// Step and tolerance per scalar: double is checked tightly, float loosely.
template <class T>
struct GradTolerance;
template <>
struct GradTolerance<double> {
  static constexpr double step = 1e-5, tol = 1e-6, floor = 1e-3;
};
template <>
struct GradTolerance<float> {
  // float's rounding of the loss (~1e-7 relative) divided by the step dominates small gradients.
  static constexpr double step = 1e-2, tol = 2e-2, floor = 1e-2;
};

// Scalars a loss depends on, with their analytic gradient (same length): a tape input, or
// a model's whole parameter store (values() with the grads() a backward pass left).
// `most` > 0 checks only that many of them, a fixed random sample: for inputs of thousands of
// scalars, where every scalar costs two passes and a few hundred already meet every row and
// column panel of the kernels; inputs no larger than `most` are checked in full.
template <class T>
struct GradProbe {
  T* values;
  const T* grads;
  Index size;
  Index most = 0;
};

// Under ASan or TSan a check looks for memory and threading errors, which its first passes
// already meet; the numerics are the optimised build's to check. There every input is capped at
// this many scalars, which keeps `make test-asan` within CI's time (0: no cap).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr Index sanitizer_probe_cap = 48;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr Index sanitizer_probe_cap = 48;
#else
inline constexpr Index sanitizer_probe_cap = 0;
#endif
#else
inline constexpr Index sanitizer_probe_cap = 0;
#endif

// The scalars of `p` a check visits: all of them, or a sample drawn with a fixed seed.
template <class T>
std::vector<Index> probed_indices(const GradProbe<T>& p) {
  std::vector<Index> idx(static_cast<std::size_t>(p.size));
  for (Index k = 0; k < p.size; ++k) idx[static_cast<std::size_t>(k)] = k;
  Index most = p.most;
  if (sanitizer_probe_cap > 0 && (most == 0 || most > sanitizer_probe_cap)) most = sanitizer_probe_cap;
  if (most > 0 && most < p.size) {
    Rng rng(static_cast<std::uint64_t>(p.size));
    rng.shuffle(idx);
    idx.resize(static_cast<std::size_t>(most));
  }
  return idx;
}

// The one finite-difference loop: perturbs every probed scalar by +-step, re-evaluates
// `eval()` (the loss, as double, from the current values) and returns the largest
// |analytic - numeric| / max(|analytic|, |numeric|, floor). Values are restored.
template <class T, class Eval>
double max_probe_error(std::initializer_list<GradProbe<T>> probes, Eval&& eval, double step = GradTolerance<T>::step,
                       double floor = GradTolerance<T>::floor) {
  double worst = 0;
  for (const GradProbe<T>& p : probes)
    for (const Index k : probed_indices(p)) {
      T& x = p.values[k];
      const T saved = x;
      const T hi = T(saved + step), lo = T(saved - step);  // the steps T can represent
      x = hi;
      const double up = eval();
      x = lo;
      const double down = eval();
      x = saved;
      const double numeric = (up - down) / (static_cast<double>(hi) - static_cast<double>(lo));
      const double analytic = p.grads[k];
      worst = std::max(worst, std::abs(analytic - numeric) / std::max({std::abs(analytic), std::abs(numeric), floor}));
    }
  return worst;
}

// `build(tape, vars)` turns the inputs into a scalar loss. Returns the largest relative error
// of the tape's gradient of every input element (max_probe_error), or of `most` sampled
// elements of an input larger than that (0: every element).
template <class T, class Build>
double max_gradient_error(std::vector<Matrix<T>>& inputs, Build&& build, ThreadPool* pool = nullptr,
                          double step = GradTolerance<T>::step, Index most = 0) {
  std::vector<Matrix<T>> grads;
  for (auto& m : inputs) grads.push_back(Matrix<T>::Zero(m.rows(), m.cols()));
  auto as_vars = [&](bool with_grad) {
    std::vector<Var<T>> vars;
    for (std::size_t i = 0; i < inputs.size(); ++i)
      vars.emplace_back(inputs[i].data(), with_grad ? grads[i].data() : nullptr, inputs[i].rows(), inputs[i].cols());
    return vars;
  };
  {
    Tape<T> tape;
    tape.set_pool(pool);
    const Var<T> loss = build(tape, as_vars(true));
    tape.backward(loss);
  }
  auto eval = [&] {
    Tape<T> tape(Mode::inference);
    tape.set_pool(pool);
    return static_cast<double>(build(tape, as_vars(false)).scalar());
  };
  double worst = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i)
    worst = std::max(worst, max_probe_error<T>({{inputs[i].data(), grads[i].data(), inputs[i].size(), most}}, eval, step));
  return worst;
}

}  // namespace dyad::test
