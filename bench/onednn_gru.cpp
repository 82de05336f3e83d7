// dyad's GRU stacks against Intel oneDNN's fp32 linear-before-reset GRU (the GRU PyTorch
// defines), on the bidirectional encoder and decoder stacks of each preset, with identical
// weights: both sides run once and their outputs must agree before anything is timed.
// oneDNN is linked here only, as the comparison a C++ engineer would otherwise pick; the
// library never depends on it.
//
//   onednn_gru [--preset fivefold|brand1|brand2|brand3|all] [--threads N] [--steps T]
//              [--reps R] [--side both|dyad|onednn] [--json]
//
// With --side, only that side is timed (both still run once for the parity check). On two
// threads the sides must be timed in separate processes: oneDNN's OpenMP workers and dyad's
// pool otherwise contend for the two cores and slow each other several-fold.
// bench/compare_onednn.py does that and prints the table.
//
// Training is one forward pass (forward_training, keeping oneDNN's workspace) plus the
// backward pass of the whole stack from a seeded output gradient, the weight gradients zeroed
// first on both sides; inference is the forward pass alone. Batches: the preset's training
// batch, and 256 segments for inference (as `dyad bench`). Median of R runs after a warm-up.
// oneDNN gets its best setting: weights reordered once into the layouts it picks (format_tag
// any), its OpenMP threads set to N. It always computes the first layer's input gradient,
// which dyad skips when the input is data (as in the model); the figures say so.
#include <dyad/core/parameters.hpp>
#include <dyad/core/random.hpp>
#include <dyad/core/tape.hpp>
#include <dyad/core/thread_pool.hpp>
#include <dyad/model_config.hpp>
#include <dyad/nn/gru.hpp>

#include <nlohmann/json.hpp>
#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using dyad::Index;
using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

double median_ms(const std::function<void()>& run, int reps) {
  run();  // warm-up: arenas grow, pages are touched, oneDNN's kernels are generated
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::nth_element(ms.begin(), ms.begin() + static_cast<std::ptrdiff_t>(ms.size() / 2), ms.end());
  return ms[ms.size() / 2];
}

// One bidirectional stack's weights in PyTorch's layout, held by dyad's Parameters.
struct Stack {
  dyad::GruShape shape;
  dyad::Parameters<float> params;
  dyad::GruStack<float> gru;
  Stack(Index input, Index hidden, Index layers, std::uint64_t seed) : shape{input, hidden, layers, true} {
    gru = dyad::GruStack<float>(params, "rnn", shape);
    dyad::Rng rng(seed);
    gru.init(params, rng);
  }
  Index input_of(Index layer) const { return layer == 0 ? shape.input : 2 * shape.hidden; }
  const float* tensor(const std::string& name) const { return params.values().data() + params.slice(name).offset; }
};

// dyad: the stack on a tape, forward (and backward from `seed` when training).
struct DyadSide {
  const Stack& s;
  dyad::Parameters<float>& params;
  Index steps, batch;
  bool training;
  Mat x, seed_out;
  dyad::Tape<float> tape;
  std::unique_ptr<dyad::ThreadPool> pool;
  Mat output;

  DyadSide(Stack& stack, Index T, Index B, bool train, int threads, const Mat& input, const Mat& seed)
      : s(stack), params(stack.params), steps(T), batch(B), training(train), x(input), seed_out(seed),
        tape(train ? dyad::Mode::training : dyad::Mode::inference) {
    if (threads > 1) {
      pool = std::make_unique<dyad::ThreadPool>(threads);
      tape.set_pool(pool.get());
    }
  }
  void run() {
    tape.reset();
    if (training) params.zero_grad();
    const dyad::SequenceShape seq{steps, batch, nullptr};
    const auto r = s.gru.forward(tape, params, dyad::Tape<float>::constant(x.data(), x.rows(), x.cols()), dyad::Var<float>{}, seq);
    if (training) {
      r.output.adjoint() = seed_out;
      r.h_n.adjoint().setZero();
      tape.backward_seeded();
    }
    output = r.output.value();
  }
};

// oneDNN: one lbr_gru primitive per layer (a multi-layer oneDNN RNN needs every layer's input
// as wide as its output, which the first layer's is not).
struct OneDnnSide {
  struct Layer {
    dnnl::lbr_gru_forward fwd;
    dnnl::lbr_gru_backward bwd;
    dnnl::memory src, dst, w_layer, w_iter, bias, workspace;
    dnnl::memory bwd_w_layer, bwd_w_iter, diff_src, diff_dst, diff_w_layer, diff_w_iter, diff_bias;
  };
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::vector<Layer> layers;
  bool training;
  Index steps, batch, hidden;

  // PyTorch's weight [3H x in] (gates r, z, n) as oneDNN's ldigo [1 x 2 x in x 3 x H] (gates
  // u = z, r, o = n), direction d.
  static void to_ldigo(const float* w, Index in, Index H, int d, std::vector<float>& out) {
    const int pt_gate[3] = {1, 0, 2};
    for (Index i = 0; i < in; ++i)
      for (int g = 0; g < 3; ++g)
        for (Index o = 0; o < H; ++o)
          out[static_cast<std::size_t>((((d * in) + i) * 3 + g) * H + o)] = w[(pt_gate[g] * H + o) * in + i];
  }

  dnnl::memory reordered(const std::vector<float>& user, const dnnl::memory::dims& dims, tag t, const dnnl::memory::desc& want) {
    dnnl::memory from({dims, dt::f32, t}, engine, const_cast<float*>(user.data()));
    dnnl::memory to(want, engine);
    dnnl::reorder(from, to).execute(stream, from, to);
    stream.wait();
    return to;
  }

  OneDnnSide(const Stack& s, Index T, Index B, bool train, const Mat& input)
      : training(train), steps(T), batch(B), hidden(s.shape.hidden) {
    const Index H = hidden;
    const auto prop = train ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
    const auto dir = dnnl::rnn_direction::bidirectional_concat;
    const dnnl::memory::desc none;
    for (Index l = 0; l < s.shape.layers; ++l) {
      const Index in = s.input_of(l);
      Layer L;
      const dnnl::memory::desc src_md({T, B, in}, dt::f32, tag::tnc), dst_md({T, B, 2 * H}, dt::f32, tag::tnc);
      const dnnl::memory::desc wl_any({1, 2, in, 3, H}, dt::f32, tag::any), wi_any({1, 2, H, 3, H}, dt::f32, tag::any);
      const dnnl::memory::desc bias_md({1, 2, 4, H}, dt::f32, tag::ldgo);
      const dnnl::lbr_gru_forward::primitive_desc fpd(dnnl::lbr_gru_forward::desc(prop, dir, src_md, none, wl_any, wi_any, bias_md,
                                                                                  dst_md, none),
                                                      engine);
      std::vector<float> wl(static_cast<std::size_t>(2 * in * 3 * H)), wi(static_cast<std::size_t>(2 * H * 3 * H)),
          bias(static_cast<std::size_t>(2 * 4 * H));
      for (int d = 0; d < 2; ++d) {
        const std::string suffix = "_l" + std::to_string(l) + (d ? "_reverse" : "");
        to_ldigo(s.tensor("rnn.weight_ih" + suffix), in, H, d, wl);
        to_ldigo(s.tensor("rnn.weight_hh" + suffix), H, H, d, wi);
        const float* bi = s.tensor("rnn.bias_ih" + suffix);
        const float* bh = s.tensor("rnn.bias_hh" + suffix);
        float* b = bias.data() + d * 4 * H;
        for (Index o = 0; o < H; ++o) {
          b[o] = bi[H + o] + bh[H + o];  // u: z's biases
          b[H + o] = bi[o] + bh[o];      // r
          b[2 * H + o] = bi[2 * H + o];  // o: the input part of n
          b[3 * H + o] = bh[2 * H + o];  // the recurrent part of n, inside r * (...)
        }
      }
      L.fwd = dnnl::lbr_gru_forward(fpd);
      L.w_layer = reordered(wl, {1, 2, in, 3, H}, tag::ldigo, fpd.weights_layer_desc());
      L.w_iter = reordered(wi, {1, 2, H, 3, H}, tag::ldigo, fpd.weights_iter_desc());
      L.bias = dnnl::memory(bias_md, engine);
      std::memcpy(L.bias.get_data_handle(), bias.data(), bias.size() * sizeof(float));
      L.src = l == 0 ? dnnl::memory(src_md, engine) : layers.back().dst;
      if (l == 0) std::memcpy(L.src.get_data_handle(), input.data(), static_cast<std::size_t>(input.size()) * sizeof(float));
      L.dst = dnnl::memory(dst_md, engine);
      if (train) {
        L.workspace = dnnl::memory(fpd.workspace_desc(), engine);
        const dnnl::lbr_gru_backward::primitive_desc bpd(dnnl::lbr_gru_backward::desc(dnnl::prop_kind::backward, dir, src_md, none,
                                                                                      wl_any, wi_any, bias_md, dst_md, none, src_md,
                                                                                      none, wl_any, wi_any, bias_md, dst_md, none),
                                                         engine, fpd);
        L.bwd = dnnl::lbr_gru_backward(bpd);
        L.bwd_w_layer = reordered(wl, {1, 2, in, 3, H}, tag::ldigo, bpd.weights_layer_desc());
        L.bwd_w_iter = reordered(wi, {1, 2, H, 3, H}, tag::ldigo, bpd.weights_iter_desc());
        L.diff_src = dnnl::memory(src_md, engine);
        L.diff_dst = dnnl::memory(dst_md, engine);
        L.diff_w_layer = dnnl::memory(bpd.diff_weights_layer_desc(), engine);
        L.diff_w_iter = dnnl::memory(bpd.diff_weights_iter_desc(), engine);
        L.diff_bias = dnnl::memory(bpd.diff_bias_desc(), engine);
      }
      layers.push_back(std::move(L));
    }
  }

  void seed(const Mat& seed_out) {
    std::memcpy(layers.back().diff_dst.get_data_handle(), seed_out.data(),
                static_cast<std::size_t>(seed_out.size()) * sizeof(float));
  }

  void run() {
    for (auto& L : layers) {
      std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC_LAYER, L.src},
                                                 {DNNL_ARG_WEIGHTS_LAYER, L.w_layer},
                                                 {DNNL_ARG_WEIGHTS_ITER, L.w_iter},
                                                 {DNNL_ARG_BIAS, L.bias},
                                                 {DNNL_ARG_DST_LAYER, L.dst}};
      if (training) args.insert({DNNL_ARG_WORKSPACE, L.workspace});
      L.fwd.execute(stream, args);
    }
    if (training)
      for (std::size_t k = layers.size(); k-- > 0;) {
        Layer& L = layers[k];
        for (const auto* m : {&L.diff_w_layer, &L.diff_w_iter, &L.diff_bias})
          std::memset(m->get_data_handle(), 0, m->get_desc().get_size());
        L.bwd.execute(stream, {{DNNL_ARG_SRC_LAYER, L.src},
                               {DNNL_ARG_WEIGHTS_LAYER, L.bwd_w_layer},
                               {DNNL_ARG_WEIGHTS_ITER, L.bwd_w_iter},
                               {DNNL_ARG_BIAS, L.bias},
                               {DNNL_ARG_DST_LAYER, L.dst},
                               {DNNL_ARG_DIFF_DST_LAYER, L.diff_dst},
                               {DNNL_ARG_WORKSPACE, L.workspace},
                               {DNNL_ARG_DIFF_SRC_LAYER, L.diff_src},
                               {DNNL_ARG_DIFF_WEIGHTS_LAYER, L.diff_w_layer},
                               {DNNL_ARG_DIFF_WEIGHTS_ITER, L.diff_w_iter},
                               {DNNL_ARG_DIFF_BIAS, L.diff_bias}});
        if (k > 0) layers[k - 1].diff_dst = L.diff_src;
      }
    stream.wait();
  }
  const float* output() const { return static_cast<const float*>(layers.back().dst.get_data_handle()); }
};

struct Result {
  std::string preset, stack, mode;
  Index input, hidden, layers, batch;
  double flops, dyad_ms, onednn_ms, max_rel_diff;
};

// Forward FLOPs of a bidirectional stack over T steps of B samples (multiply-adds x 2).
double stack_flops(const Stack& s, Index T, Index B) {
  double f = 0;
  for (Index l = 0; l < s.shape.layers; ++l)
    f += 2.0 * 2.0 * 3.0 * double(s.shape.hidden) * double(s.input_of(l) + s.shape.hidden) * double(T) * double(B);
  return f;
}

Result compare(const std::string& preset, const std::string& name, Stack& s, Index T, Index B, bool train, int threads, int reps,
               const std::string& side) {
  dyad::Rng rng(7);
  Mat x(s.shape.input, T * B), seed(2 * s.shape.hidden, T * B);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(rng.normal());
  for (Index i = 0; i < seed.size(); ++i) seed.data()[i] = static_cast<float>(1e-2 * rng.normal());
  DyadSide ours(s, T, B, train, threads, x, seed);
  OneDnnSide theirs(s, T, B, train, x);
  if (train) theirs.seed(seed);
  // Parity before timing: the layer outputs of one forward pass.
  ours.run();
  theirs.run();
  const Eigen::Map<const Mat> ref(theirs.output(), 2 * s.shape.hidden, T * B);
  const double diff = (ours.output - ref).cwiseAbs().maxCoeff() / std::max(1e-30f, ref.cwiseAbs().maxCoeff());
  if (!(diff < 1e-4))
    throw std::runtime_error(preset + " " + name + ": dyad's and oneDNN's outputs differ (max relative " + std::to_string(diff) +
                             "); not timing");
  Result r{preset,
           name,
           train ? "training" : "inference",
           s.shape.input,
           s.shape.hidden,
           s.shape.layers,
           B,
           (train ? 3.0 : 1.0) * stack_flops(s, T, B),
           0,
           0,
           diff};
  const double nan = std::numeric_limits<double>::quiet_NaN();
  r.dyad_ms = side == "onednn" ? nan : median_ms([&] { ours.run(); }, reps);
  r.onednn_ms = side == "dyad" ? nan : median_ms([&] { theirs.run(); }, reps);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string which = "all", side = "both";
  int threads = 1, reps = 10;
  Index steps = 128;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--preset") which = value();
    else if (a == "--threads") threads = std::stoi(value());
    else if (a == "--steps") steps = std::stoi(value());
    else if (a == "--reps") reps = std::stoi(value());
    else if (a == "--side") side = value();
    else if (a == "--json") json = true;
    else {
      std::fprintf(stderr,
                   "usage: onednn_gru [--preset fivefold|brand1|brand2|brand3|all] [--threads N] [--steps T] [--reps R] "
                   "[--side both|dyad|onednn] [--json]\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  if (side != "both" && side != "dyad" && side != "onednn") throw std::invalid_argument("--side is both, dyad or onednn");
  omp_set_num_threads(threads);
  std::vector<std::string> presets = which == "all" ? dyad::preset_names() : std::vector<std::string>{which};
  std::vector<Result> results;
  for (const auto& p : presets) {
    const dyad::ModelConfig c = dyad::preset(p);
    const auto E = static_cast<Index>(c.roles.encoder.size()), D = static_cast<Index>(c.roles.condition);
    Stack encoder(E, c.hidden, c.layers, 1), decoder(D, c.hidden, c.layers, 2);
    for (const bool train : {true, false}) {
      const Index B = train ? c.batch_size : 256;
      const int r = c.hidden >= 1024 ? std::max(3, reps / 3) : reps;
      results.push_back(compare(p, "encoder", encoder, steps, B, train, threads, r, side));
      results.push_back(compare(p, "decoder", decoder, steps, B, train, threads, r, side));
    }
  }
  const dnnl::version_t* v = dnnl::version();
  if (json) {  // NaN (the side not timed) is written as null
    nlohmann::json j = {{"onednn", std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch)},
                        {"threads", threads},
                        {"steps", steps},
                        {"side", side},
                        {"results", nlohmann::json::array()}};
    for (const auto& r : results)
      j["results"].push_back({{"preset", r.preset},
                              {"stack", r.stack},
                              {"mode", r.mode},
                              {"input", r.input},
                              {"hidden", r.hidden},
                              {"layers", r.layers},
                              {"batch", r.batch},
                              {"flops", r.flops},
                              {"dyad_ms", r.dyad_ms},
                              {"onednn_ms", r.onednn_ms},
                              {"max_rel_diff", r.max_rel_diff}});
    std::printf("%s\n", j.dump(1).c_str());
    return 0;
  }
  std::printf("oneDNN %d.%d.%d lbr_gru fp32 against dyad, %d thread(s), T = %lld, median of %d runs\n", v->major, v->minor,
              v->patch, threads, static_cast<long long>(steps), reps);
  std::printf("%-9s %-8s %-10s %5s %5s %3s %4s %10s %10s %8s %9s %9s\n", "preset", "stack", "mode", "input", "H", "L", "B",
              "dyad ms", "oneDNN ms", "dyad x", "dyad GF/s", "oDNN GF/s");
  for (const auto& r : results)
    std::printf("%-9s %-8s %-10s %5lld %5lld %3lld %4lld %10.3f %10.3f %8.2f %9.1f %9.1f\n", r.preset.c_str(), r.stack.c_str(),
                r.mode.c_str(), static_cast<long long>(r.input), static_cast<long long>(r.hidden), static_cast<long long>(r.layers),
                static_cast<long long>(r.batch), r.dyad_ms, r.onednn_ms, r.onednn_ms / r.dyad_ms, r.flops / r.dyad_ms * 1e-6,
                r.flops / r.onednn_ms * 1e-6);
  return 0;
}
