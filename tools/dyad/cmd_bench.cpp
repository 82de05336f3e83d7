// dyad bench: training steps, scoring and single-segment latency of a preset on synthetic
// data of its shape, with achieved GFLOP/s next to a measured GEMM peak of this machine.

#include "commands.hpp"
#include "common.hpp"

#include <dyad/dyad.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <numeric>

namespace dyad::cli {

struct BenchArgs {
  std::string preset = "fivefold";
  std::string rnn_type = "gru";
  int threads = hardware_threads();
  int steps = 128;
  double seconds = 3;
  bool json = false;
  std::string precision = "fp32";
};

inline void add_bench_options(CLI::App* cmd, BenchArgs& a) {
  cmd->add_option("--preset", a.preset, "Model and batch shape to time")
      ->capture_default_str()
      ->check(CLI::IsMember(preset_names()));
  add_rnn_type_option(cmd, a.rnn_type, "Recurrent cell of the preset's network: gru, rnn or lstm (default: gru)");
  cmd->add_option("--threads", a.threads, threads_help())->check(CLI::Range(1, limits::threads));
  cmd->add_option("--steps", a.steps, "Time steps per segment (T)")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--seconds", a.seconds, "Time spent on each measurement")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_flag("--json", a.json, "End with one JSON object of the results");
  add_precision_option(cmd, a.precision);
}

// Median seconds of `f()` over repeats that fill `budget` seconds (at least 5 after 2 warm-ups).
template <class F>
double median_seconds(double budget, F&& f) {
  f();
  f();
  std::vector<double> t;
  const auto start = std::chrono::steady_clock::now();
  while (t.size() < 5 ||
         (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < budget && t.size() < 10000)) {
    const auto a = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  std::nth_element(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(t.size() / 2), t.end());
  return t[t.size() / 2];
}

// Single-precision GEMM throughput of this machine on `threads` cores (one 768^3 product each).
inline double gemm_peak_gflops(int threads, double budget) {
  const Eigen::Index n = 768;
  std::vector<Eigen::MatrixXf> a(static_cast<std::size_t>(threads), Eigen::MatrixXf::Random(n, n)), c(a);
  const Eigen::MatrixXf b = Eigen::MatrixXf::Random(n, n);
  ThreadPool pool(threads);
  const double s = median_seconds(budget, [&] {
    pool.run(threads, [&](int i) { c[static_cast<std::size_t>(i)].noalias() = a[static_cast<std::size_t>(i)] * b; });
  });
  return 2.0 * double(n) * double(n) * double(n) * threads / s / 1e9;
}

inline int run_bench(const BenchArgs& a) {
  ModelConfig c = preset(a.preset);
  c.cell = parse_cell(a.rnn_type);
  c.threads = a.threads;
  const int T = a.steps, B = c.batch_size, score_batch = 256;
  Dataset data(c.roles.encoder);
  Rng rng(1);
  std::vector<float> v(static_cast<std::size_t>(T) * c.roles.encoder.size());
  for (int s = 0; s < std::max(B, score_batch); ++s) {
    for (auto& x : v) x = static_cast<float>(rng.normal());
    data.add({"car" + std::to_string(s % 10), s, 0, 1000.0 + s, 0.0}, v);
  }
  c.epochs = limits::epochs;  // each timed call is one step of a run that never ends here
  Model<float> model(c);
  auto first = [](int n) {
    std::vector<std::size_t> v(static_cast<std::size_t>(n));
    std::iota(v.begin(), v.end(), std::size_t{0});
    return v;
  };
  const Dataset train_data = data.subset(first(B));
  Trainer<Model<float>> trainer(model, train_data);  // the step fit() takes, batch B
  const double train_s = median_seconds(a.seconds, [&] { trainer.step(); });
  const auto cols = model.resolve_columns(data);
  const std::vector<std::size_t> idx = first(std::max(B, score_batch));
  Model<float>::Workspace workspace(a.threads, chosen_precision(a.precision, "dyad bench"));
  Scores out;
  out.rec_error.resize(score_batch);
  out.target_error.resize(score_batch, static_cast<Eigen::Index>(c.roles.encoder.size() - c.roles.condition));
  out.mu.resize(score_batch, c.latent);
  out.log_var.resize(score_batch, c.latent);
  const double score_s = median_seconds(a.seconds, [&] {
    model.score_batch(workspace, data, cols, std::span<const std::size_t>(idx.data(), static_cast<std::size_t>(score_batch)), out,
                      0);
  });
  const double latency_s = median_seconds(a.seconds, [&] {
    model.score_batch(workspace, data, cols, std::span<const std::size_t>(idx.data(), 1), out, 0);
  });
  const double peak = gemm_peak_gflops(a.threads, std::min(a.seconds, 1.0));
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);

  const double flops = forward_flops(c, T);
  const double train_sps = B / train_s, score_sps = score_batch / score_s;
  const double train_gflops = 3 * flops * train_sps / 1e9, score_gflops = flops * score_sps / 1e9;
  std::printf("dyad bench: preset %s (%s, H %d, layers %d, %s, Z %d), T %d, %d thread%s\n", a.preset.c_str(),
              std::string(to_string(c.cell)).c_str(), c.hidden, c.layers, c.bidirectional ? "bidirectional" : "unidirectional",
              c.latent, T, a.threads, a.threads > 1 ? "s" : "");
  std::printf("  CPU               %s (%s); scoring in %s, training in fp32\n", cpu_brand().c_str(), cpu_features().names().c_str(),
              to_string(workspace.precision()));
  std::printf("  forward cost      %.1f MFLOP per segment (training counted as 3x)\n", flops / 1e6);
  std::printf("  training          %9.1f segments/s  %6.1f GFLOP/s  (batch %d, median step %.2f ms)\n", train_sps, train_gflops, B,
              train_s * 1e3);
  std::printf("  scoring           %9.1f segments/s  %6.1f GFLOP/s  (batch %d)\n", score_sps, score_gflops, score_batch);
  std::printf("  latency, batch 1  %9.3f ms\n", latency_s * 1e3);
  std::printf("  GEMM peak         %9.1f GFLOP/s on %d core%s (768^3 sgemm each); training at %.0f%% of it\n", peak, a.threads,
              a.threads > 1 ? "s" : "", 100 * train_gflops / peak);
  std::printf("  saved activations %9.1f MiB per training step; peak RSS %.1f MiB\n",
              double(trainer.tape().arena().high_water_bytes()) / (1 << 20), double(ru.ru_maxrss) / 1024);
  if (a.json)
    std::printf("%s\n", nlohmann::json{{"preset", a.preset},
                                       {"rnn_type", to_string(c.cell)},
                                       {"threads", a.threads},
                                       {"steps", T},
                                       {"precision", to_string(workspace.precision())},
                                       {"cpu", cpu_brand()},
                                       {"cpu_features", cpu_features().names()},
                                       {"batch", B},
                                       {"train_segments_per_s", train_sps},
                                       {"score_segments_per_s", score_sps},
                                       {"latency_ms_batch1", latency_s * 1e3},
                                       {"train_gflops", train_gflops},
                                       {"score_gflops", score_gflops},
                                       {"gemm_peak_gflops", peak},
                                       {"forward_mflop_per_segment", flops / 1e6},
                                       {"train_arena_mib", double(trainer.tape().arena().high_water_bytes()) / (1 << 20)},
                                       {"peak_rss_mib", double(ru.ru_maxrss) / 1024}}
                            .dump()
                            .c_str());
  return 0;
}

// The table entries (commands.hpp): the arguments live here, filled by CLI11, read by run.
namespace {
BenchArgs bench_args;
}  // namespace

namespace command {
void bench_options(CLI::App* cmd) { add_bench_options(cmd, bench_args); }
int bench_run() { return run_bench(bench_args); }
}  // namespace command

}  // namespace dyad::cli
