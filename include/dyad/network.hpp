// dyad::Network<T>: DyAD's sequence VAE (dyad-method §4-§5) as its parameters plus const
// pieces that record the encoder, the decoder, the mileage head and the loss on a tape. It
// holds no tape, optimiser, data scaling or scorer: Trainer (dyad/trainer.hpp) owns training,
// Model (dyad/model.hpp) the normaliser, the mileage scale and the fitted scorers. Recording
// on an inference tape reads the parameters only, so any number of threads may share one
// const Network, each with its own tape.
#pragma once

#include "dyad/core/parameters.hpp"
#include "dyad/core/random.hpp"
#include "dyad/core/tape.hpp"
#include "dyad/model_config.hpp"
#include "dyad/nn/recurrent.hpp"
#include "dyad/ops/activation.hpp"
#include "dyad/ops/gaussian.hpp"
#include "dyad/ops/linear.hpp"
#include "dyad/ops/losses.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace dyad {

// The weights of the loss terms (dyad-method §5). kl is the annealed KL weight already divided
// by the batch size, as upstream does.
struct LossWeights {
  double nll = 10, label = 0.01, kl = 0, noise_scale = 0.01;
};

template <class T>
class Network {
 public:
  struct Encoded {
    Var<T> mu, log_var;  // [Z x B]
  };
  struct LossParts {
    Var<T> loss, nll, kl, label;  // label is empty without mileage targets
  };

  // Registers every tensor of `arch` (PyTorch's names and shapes, parameter_shapes()) in one
  // allocation; the values are zero until initialize(). The sizes are checked against the caps.
  explicit Network(const Architecture& arch) : arch_(arch) {
    ModelConfig checked;
    static_cast<Architecture&>(checked) = arch;
    checked.validate();
    const auto& r = arch_.roles;
    const Index E = static_cast<Index>(r.encoder.size()), D = static_cast<Index>(r.condition);
    const Index H = arch_.hidden, Z = arch_.latent, F = arch_.factor(), Dir = arch_.directions();
    const std::vector<ParameterShape> layout = parameter_shapes(arch_);
    params_.add_all(layout);  // the layers below find their slices in it
    encoder_ = RecurrentStack<T>(params_, "encoder_rnn", {E, H, arch_.layers, arch_.bidirectional, arch_.cell});
    decoder_ = RecurrentStack<T>(params_, "decoder_rnn", {D, H, arch_.layers, arch_.bidirectional, arch_.cell});
    hidden2mean_ = add_linear("hidden2mean", F * H, Z);
    hidden2log_v_ = add_linear("hidden2log_v", F * H, Z);
    latent2hidden_ = add_linear("latent2hidden", Z, F * H);
    outputs2embedding_ = add_linear("outputs2embedding", H * Dir, E - D);
    head0_ = add_linear("mean2latent.0", Z, H / 2);
    head2_ = add_linear("mean2latent.2", H / 2, 1);
    if (params_.slices().size() != layout.size())
      throw std::logic_error("dyad: the network registers tensors that parameter_shapes() does not list");
  }

  // PyTorch's default initialisation: every tensor ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  void initialize(Rng& rng);

  const Architecture& architecture() const { return arch_; }
  Parameters<T>& parameters() { return params_; }
  const Parameters<T>& parameters() const { return params_; }
  Index condition_rows() const { return static_cast<Index>(arch_.roles.condition); }

  // x is [E x T*B], the normalised encoder columns (the first condition_rows() condition the
  // decoder). Per-sample flatten (dyad-method §4): h_n is [F*H x B] with one column per
  // sample, so hidden2mean sees concat_f h_n[f, b, :] and never mixes samples. An LSTM's h_n
  // is its final hidden states; its cell states do not enter the latent.
  Encoded encode(Tape<T>& tape, const Var<T>& x, const SequenceShape& seq) const;

  // The reconstructed targets [(E - D) x T*B]: the decoder runs on the conditioning rows of x
  // from the state latent2hidden(z) (an LSTM's cell states from zero).
  Var<T> decode(Tape<T>& tape, const Var<T>& x, const Var<T>& z, const SequenceShape& seq) const;

  // The scaled mileage predicted from mu [1 x B] (upstream's mean2latent).
  Var<T> mileage_head(Tape<T>& tape, const Var<T>& mu) const;

  // The DyAD loss of one mini-batch: weighted smooth-L1 reconstruction, KL, and (when
  // `mileage` [1 x B] is given) the mileage label loss. eps [Z x B] is the latent noise.
  LossParts loss(Tape<T>& tape, const Var<T>& x, const SequenceShape& seq, const Var<T>& eps, const Var<T>& mileage,
                 const LossWeights& w) const;

  // Tape values a batch of `batch` segments of `steps` steps keeps: a training step saves about
  // (14 H F + 32) per segment and step for the GRU, each with its adjoint; scoring about
  // 8 H F + 32. The RNN keeps 6 H F fewer values (one gate, no saved recurrent product), the
  // LSTM 4 H F more in training (four gates and the cell state) and 2 H F more in scoring.
  static double activation_values(const Architecture& a, std::size_t batch, std::size_t steps, bool training) {
    const double per_hidden = a.cell == Cell::gru   ? (training ? 14.0 : 8.0)
                              : a.cell == Cell::rnn ? (training ? 8.0 : 6.0)
                                                    : (training ? 18.0 : 10.0);
    const double per_step = per_hidden * a.hidden * a.factor() + 32;
    return (training ? 2.0 : 1.0) * static_cast<double>(batch) * static_cast<double>(steps) * per_step;
  }

 private:
  struct LinearIds {
    Index weight, bias, fan_in;
  };
  LinearIds add_linear(const std::string& name, Index in, Index out) {
    return {params_.add_or_find(name + ".weight", {out, in}), params_.add_or_find(name + ".bias", {out}), in};
  }

  // The parameters as tape tensors. An inference tape only reads them, so threads may share a
  // const Network; a training tape's backward() adds into their gradients (Trainer's, alone).
  Parameters<T>& weights() const { return const_cast<Parameters<T>&>(params_); }

  Var<T> apply_linear(Tape<T>& tape, const Var<T>& x, const LinearIds& l) const {
    return linear(tape, x, weights().var(l.weight), weights().var(l.bias));
  }

  Architecture arch_;
  Parameters<T> params_;
  RecurrentStack<T> encoder_, decoder_;
  LinearIds hidden2mean_{}, hidden2log_v_{}, latent2hidden_{}, outputs2embedding_{}, head0_{}, head2_{};
};

template <class T>
void Network<T>::initialize(Rng& rng) {
  encoder_.init(params_, rng);
  decoder_.init(params_, rng);
  for (const LinearIds& l : {hidden2mean_, hidden2log_v_, latent2hidden_, outputs2embedding_, head0_, head2_}) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(l.fan_in));
    for (Index p : {l.weight, l.bias}) {
      Var<T> v = params_.var(p);
      for (Index i = 0; i < v.size(); ++i) v.val[i] = T(rng.uniform(-bound, bound));
    }
  }
}

template <class T>
auto Network<T>::encode(Tape<T>& tape, const Var<T>& x, const SequenceShape& seq) const -> Encoded {
  const auto h = encoder_.forward(tape, weights(), x, Var<T>{}, seq).h_n;
  return {apply_linear(tape, h, hidden2mean_), apply_linear(tape, h, hidden2log_v_)};
}

template <class T>
Var<T> Network<T>::decode(Tape<T>& tape, const Var<T>& x, const Var<T>& z, const SequenceShape& seq) const {
  const Var<T> h0 = apply_linear(tape, z, latent2hidden_);
  const auto out = decoder_.forward(tape, weights(), x.block_rows(0, condition_rows()), h0, seq);
  return apply_linear(tape, out.output, outputs2embedding_);
}

template <class T>
Var<T> Network<T>::mileage_head(Tape<T>& tape, const Var<T>& mu) const {
  return apply_linear(tape, relu(tape, apply_linear(tape, mu, head0_)), head2_);
}

template <class T>
auto Network<T>::loss(Tape<T>& tape, const Var<T>& x, const SequenceShape& seq, const Var<T>& eps, const Var<T>& mileage,
                      const LossWeights& w) const -> LossParts {
  const Encoded e = encode(tape, x, seq);
  const Var<T> z = reparameterize(tape, e.mu, e.log_var, eps, T(w.noise_scale));
  const Var<T> recon = decode(tape, x, z, seq);
  LossParts p;
  p.nll = smooth_l1(tape, recon, x.block_rows(condition_rows(), x.rows - condition_rows()), &seq);
  p.kl = kl_divergence(tape, e.mu, e.log_var);
  if (mileage.val) {
    p.label = mse(tape, mileage_head(tape, e.mu), mileage);
    p.loss = weighted_sum<T>(tape, {{T(w.nll), p.nll}, {T(w.label), p.label}, {T(w.kl), p.kl}});
  } else {
    p.loss = weighted_sum<T>(tape, {{T(w.nll), p.nll}, {T(w.kl), p.kl}});
  }
  return p;
}

// Compiled once elsewhere when DYAD_EXTERN_TEMPLATES is defined (dyad/instantiate.hpp).
#ifdef DYAD_EXTERN_TEMPLATES
extern template class Network<float>;
extern template class Network<double>;
#endif

}  // namespace dyad
