// dyad against PyTorch 1.13 on fixed inputs: the fixtures in tests/fixtures/ were made by
// tests/torch_ref/make_fixtures.py (float64 throughout). Every recurrent cell dyad implements
// (nn.GRU, nn.RNN with tanh, nn.LSTM) is checked as a layer stack, on packed sequences and in
// the whole model.
#include <dyad/io/safetensors.hpp>
#include <dyad/model.hpp>
#include <dyad/nn/recurrent.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace dyad;

namespace {
const std::string kFixtures = DYAD_FIXTURES;

SafeTensors fixture(const std::string& name) { return load_safetensors(kFixtures + "/" + name); }

Vector<double> vec(const SafeTensors& st, const std::string& name) {
  const auto v = st.get<double>(name);
  return Eigen::Map<const Vector<double>>(v.data(), Index(v.size()));
}

// [F, B, H] (PyTorch's h0 / h_n) <-> dyad's [F*H x B], row block f per layer and direction.
Matrix<double> states_from_torch(const Vector<double>& v, Index F, Index B, Index H) {
  Matrix<double> m(F * H, B);
  for (Index f = 0; f < F; ++f)
    for (Index b = 0; b < B; ++b) m.block(f * H, b, H, 1) = v.segment((f * B + b) * H, H);
  return m;
}

double max_rel(const Eigen::Ref<const Matrix<double>>& a, const Eigen::Ref<const Matrix<double>>& b) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  return ((a - b).cwiseAbs().array() / b.cwiseAbs().array().max(1e-8)).maxCoeff();
}

// The fixture's cell: metadata rnn_type (files without it are GRU fixtures).
Cell fixture_cell(const SafeTensors& st) {
  const auto it = st.metadata.find("rnn_type");
  return parse_cell(it == st.metadata.end() ? std::string("gru") : it->second);
}

// Metadata "lengths" ("3,6,1": one per sample) as ints.
std::vector<int> fixture_lengths(const SafeTensors& st) {
  std::vector<int> out;
  const std::string s = st.metadata.at("lengths");
  for (std::size_t pos = 0; pos <= s.size();) {
    const std::size_t end = std::min(s.find(',', pos), s.size());
    out.push_back(std::stoi(s.substr(pos, end - pos)));
    pos = end + 1;
  }
  return out;
}

// The columns t*B + b of m [rows x T*B] with t < lengths[b] (all columns without lengths).
Matrix<double> active_columns(const Eigen::Ref<const Matrix<double>>& m, Index T, Index B, const int* lengths) {
  std::vector<Index> cols;
  for (Index t = 0; t < T; ++t)
    for (Index b = 0; b < B; ++b)
      if (lengths == nullptr || t < lengths[b]) cols.push_back(t * B + b);
  Matrix<double> out(m.rows(), Index(cols.size()));
  for (std::size_t i = 0; i < cols.size(); ++i) out.col(Index(i)) = m.col(cols[i]);
  return out;
}

// A layer fixture (tests/torch_ref/make_fixtures.py recurrent_fixture) run through a
// RecurrentStack: outputs (at active steps when packed), final states and every gradient,
// with the adjoints seeded by torch's upstream gradients (zero at padded steps).
void check_layer_fixture(const std::string& name, bool packed) {
  CAPTURE(name);
  const SafeTensors st = fixture(name);
  const auto meta = [&](const char* k) { return std::stoi(st.metadata.at(k)); };
  const Cell cell = fixture_cell(st);
  CAPTURE(to_string(cell));
  const RecurrentShape shape{meta("input_size"), meta("hidden_size"), meta("num_layers"), meta("bidirectional") == 1, cell};
  const Index T = meta("T"), B = meta("B"), H = shape.hidden, F = shape.factor(), DH = shape.directions() * H;
  std::vector<int> lengths;
  if (packed) {
    lengths = fixture_lengths(st);
    REQUIRE(Index(lengths.size()) == B);
  }
  const int* len = packed ? lengths.data() : nullptr;
  Parameters<double> params;
  RecurrentStack<double> rnn(params, "rnn", shape);
  for (const auto& s : params.slices()) {
    CAPTURE(s.name);
    REQUIRE(params.value(s.name).size() == Index(st.get<double>(s.name.substr(4)).size()));  // gates(cell) * H rows
    params.value(s.name) = vec(st, s.name.substr(4));
  }
  Vector<double> x = vec(st, "input");
  Matrix<double> h0 = states_from_torch(vec(st, "h0"), F, B, H);
  Matrix<double> dx = Matrix<double>::Zero(shape.input, T * B), dh0 = Matrix<double>::Zero(F * H, B);

  Tape<double> tape;
  const auto r = rnn.forward(tape, params, Var<double>(x.data(), dx.data(), shape.input, T * B),
                             Var<double>(h0.data(), dh0.data(), F * H, B), SequenceShape{T, B, len});
  const Matrix<double> out = Eigen::Map<const Matrix<double>>(vec(st, "output").data(), DH, T * B);
  // dyad's output at padded steps is not PyTorch's zero padding: compare the active steps only.
  CHECK(max_rel(active_columns(r.output.value(), T, B, len), active_columns(out, T, B, len)) < 1e-12);
  CHECK(max_rel(r.h_n.value(), states_from_torch(vec(st, "h_n"), F, B, H)) < 1e-12);

  // Seed the adjoints with torch's upstream gradients and compare every input gradient.
  r.output.adjoint() = Eigen::Map<const Matrix<double>>(vec(st, "grad_output").data(), DH, T * B);
  r.h_n.adjoint() = states_from_torch(vec(st, "grad_h_n"), F, B, H);
  tape.backward_seeded();
  // All of dx, padded steps included (PyTorch: zero there).
  CHECK(max_rel(dx, Eigen::Map<const Matrix<double>>(vec(st, "grad.input").data(), shape.input, T * B)) < 1e-10);
  CHECK(max_rel(dh0, states_from_torch(vec(st, "grad.h0"), F, B, H)) < 1e-10);
  for (const auto& s : params.slices()) {
    CAPTURE(s.name);
    CHECK(max_rel(params.grad(s.name), vec(st, "grad." + s.name.substr(4))) < 1e-10);
  }
}
}  // namespace

TEST_CASE("recurrent layers equal torch.nn.GRU / RNN / LSTM: outputs, final states and every gradient") {
  for (const char* name : {"gru_bi2.safetensors", "gru_uni1.safetensors", "rnn_bi2.safetensors", "rnn_uni1.safetensors",
                           "lstm_bi2.safetensors", "lstm_uni1.safetensors"})
    check_layer_fixture(name, false);
}

TEST_CASE("packed sequences equal PyTorch's pack_padded_sequence for every cell") {
  // Lengths 3, 6, 1 (unsorted; enforce_sorted=False), bidirectional: the reverse direction
  // starts at each sample's last active step, and h_n holds the state after it.
  for (const char* name : {"gru_packed.safetensors", "rnn_packed.safetensors", "lstm_packed.safetensors"})
    check_layer_fixture(name, true);
}

TEST_CASE("AdamW with cosine annealing equals torch.optim.AdamW step by step") {
  const SafeTensors st = fixture("adamw.safetensors");
  const auto m = [&](const char* k) { return std::stod(st.metadata.at(k)); };
  AdamW<double> opt({m("lr"), m("beta1"), m("beta2"), m("eps"), m("weight_decay")});
  Vector<double> p = vec(st, "param0");
  const int steps_per_epoch = std::stoi(st.metadata.at("steps_per_epoch")), t_max = std::stoi(st.metadata.at("T_max"));
  for (int k = 1; k <= std::stoi(st.metadata.at("steps")); ++k) {
    CAPTURE(k);
    const double lr = cosine_lr(m("lr"), m("eta_min"), (k - 1) / steps_per_epoch, t_max);
    CHECK(lr == doctest::Approx(vec(st, "lr." + std::to_string(k))[0]).epsilon(1e-12));
    opt.set_lr(lr);
    opt.step(p, vec(st, "grad." + std::to_string(k)));
    CHECK(max_rel(p, vec(st, "param." + std::to_string(k))) < 1e-10);
  }
}

namespace {
// The reference DynamicVAE of a fixture as a dyad model on identity normalisation.
struct TorchCase {
  SafeTensors st;
  Model<double> model;
  Dataset data;
  std::vector<std::size_t> idx;
};

TorchCase torch_case(const std::string& file) {
  SafeTensors st = fixture(file);
  const auto meta = [&](const char* k) { return std::stoi(st.metadata.at(k)); };
  ModelConfig c;
  const int E = meta("E");
  c.roles.encoder.clear();
  for (int e = 0; e < E; ++e) c.roles.encoder.push_back("c" + std::to_string(e));
  c.roles.condition = std::size_t(meta("D"));
  c.hidden = meta("H");
  c.latent = meta("Z");
  c.layers = meta("layers");
  c.bidirectional = meta("bidirectional") == 1;
  c.cell = fixture_cell(st);
  if (st.metadata.count("nll_weight")) {
    c.nll_weight = std::stod(st.metadata.at("nll_weight"));
    c.label_weight = std::stod(st.metadata.at("label_weight"));
    c.lr = std::stod(st.metadata.at("lr"));
    c.weight_decay = std::stod(st.metadata.at("weight_decay"));
    c.noise_scale = 0;
  }
  Model<double> model(c);
  for (const auto& s : model.parameters().slices()) model.parameters().value(s.name) = vec(st, s.name);
  model.set_mileage_scale(MinMax(0.0, 1.0));  // the fixture's mileage is already in [0, 1]
  const Index B = meta("B"), T = meta("T");
  Dataset data(c.roles.encoder);
  const auto input = st.get<double>("input");
  const auto mileage = st.get<double>("mileage");
  std::vector<std::size_t> idx;
  for (Index b = 0; b < B; ++b) {
    std::vector<float> v(std::size_t(T * E));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = float(input[std::size_t(b * T * E) + i]);
    data.add({"car" + std::to_string(b), 0, 0, mileage[std::size_t(b)], 0.0}, v);
    idx.push_back(std::size_t(b));
  }
  return {std::move(st), std::move(model), std::move(data), std::move(idx)};
}
}  // namespace

// Inputs pass through float in dyad::Dataset, so the fixtures' inputs are float-exact values.
TEST_CASE("a PyTorch DynamicVAE (per-sample latents) scores identically in dyad") {
  for (const std::string file :
       {"dyad_model.safetensors", "dyad_model_uni.safetensors", "dyad_model_rnn.safetensors", "dyad_model_lstm.safetensors"}) {
    CAPTURE(file);
    auto tc = torch_case(file);
    const Scores s = tc.model.score(tc.data);
    const Index B = Index(tc.idx.size()), Z = tc.model.config().latent;
    const Matrix<double> mu = Eigen::Map<const Eigen::Matrix<double, -1, -1, Eigen::RowMajor>>(vec(tc.st, "mu").data(), B, Z);
    const Matrix<double> lv = Eigen::Map<const Eigen::Matrix<double, -1, -1, Eigen::RowMajor>>(vec(tc.st, "log_var").data(), B, Z);
    const double e_rec = max_rel(s.rec_error, vec(tc.st, "rec_error")), e_mu = max_rel(s.mu, mu), e_lv = max_rel(s.log_var, lv);
    MESSAGE("relative error: rec_error " << e_rec << ", mu " << e_mu << ", log_var " << e_lv);
    CHECK(e_rec < 1e-10);
    CHECK(e_mu < 1e-10);
    CHECK(e_lv < 1e-10);
    // The same weights in float: the model users run.
    Model<float> mf(tc.model.config());
    for (const auto& slice : mf.parameters().slices())
      mf.parameters().value(slice.name) = tc.model.parameters().value(slice.name).cast<float>();
    mf.set_mileage_scale(MinMax(0.0, 1.0));
    const Scores f = mf.score(tc.data);
    const double f_rec = max_rel(f.rec_error, vec(tc.st, "rec_error")), f_mu = max_rel(f.mu, mu), f_lv = max_rel(f.log_var, lv);
    MESSAGE("float: rec_error " << f_rec << ", mu " << f_mu << ", log_var " << f_lv);
    CHECK(f_rec < 1e-4);
    CHECK(f_mu < 1e-4);
    CHECK(f_lv < 1e-4);
  }
}

TEST_CASE("the full DyAD loss, its gradients and three AdamW steps equal PyTorch autograd") {
  for (const std::string file : {"dyad_model.safetensors", "dyad_model_rnn.safetensors", "dyad_model_lstm.safetensors"}) {
    CAPTURE(file);
    auto tc = torch_case(file);
    auto& m = tc.model;
    CHECK(m.config().cell == fixture_cell(tc.st));
    const auto cols = m.resolve_columns(tc.data);
    const double klw = std::stod(tc.st.metadata.at("kl_weight"));
    AdamW<double> opt({m.config().lr, 0.9, 0.999, 1e-8, m.config().weight_decay});
    for (int step = 0; step < 3; ++step) {
      Tape<double> tape;
      m.parameters().zero_grad();
      const auto parts = m.loss(tape, tc.data, cols, tc.idx, klw, nullptr);
      tape.backward(parts.loss);
      CHECK(parts.loss.scalar() == doctest::Approx(vec(tc.st, "step_loss")[step]).epsilon(1e-10));
      if (step == 0) {
        CHECK(parts.loss.scalar() == doctest::Approx(vec(tc.st, "loss")[0]).epsilon(1e-10));
        CHECK(parts.nll.scalar() == doctest::Approx(vec(tc.st, "nll")[0]).epsilon(1e-10));
        CHECK(parts.kl.scalar() == doctest::Approx(vec(tc.st, "kl")[0]).epsilon(1e-10));
        CHECK(parts.label.scalar() == doctest::Approx(vec(tc.st, "label")[0]).epsilon(1e-10));
        double worst = 0;
        for (const auto& s : m.parameters().slices())
          worst = std::max(worst, max_rel(m.parameters().grad(s.name), vec(tc.st, "grad." + s.name)));
        MESSAGE("gradients, max relative error " << worst);
        CHECK(worst < 1e-8);
      }
      opt.step(m.parameters().values(), m.parameters().grads());
    }
    double worst = 0;
    for (const auto& s : m.parameters().slices())
      worst = std::max(worst, max_rel(m.parameters().value(s.name), vec(tc.st, "step3." + s.name)));
    MESSAGE("weights after 3 AdamW steps, max relative error " << worst);
    CHECK(worst < 1e-8);
  }
}

TEST_CASE("a plain PyTorch state_dict at the fivefold size loads with the preset and scores") {
  auto m = Model<float>::load(kFixtures + "/torch_state_dict_fivefold.safetensors", {preset("fivefold")});
  CHECK(m.config().hidden == 64);
  CHECK(m.config().latent == 32);
  CHECK(m.config().bidirectional);
  CHECK_THROWS_WITH(Model<float>::load(kFixtures + "/torch_state_dict_fivefold.safetensors", {preset("brand1")}),
                    doctest::Contains("encoder takes 6 columns"));
}
