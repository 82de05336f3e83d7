// A stacked, optionally bidirectional recurrent network (PyTorch's nn.GRU, nn.RNN or nn.LSTM)
// over parameters in the flat store.
#pragma once

#include "dyad/core/parameters.hpp"
#include "dyad/core/random.hpp"
#include "dyad/ops/recurrent.hpp"

#include <array>
#include <cmath>
#include <string>
#include <vector>

namespace dyad {

struct RecurrentShape {
  Index input = 0;
  Index hidden = 0;
  Index layers = 1;
  bool bidirectional = false;
  Cell cell = Cell::gru;

  Index directions() const { return bidirectional ? 2 : 1; }
  Index factor() const { return layers * directions(); }  // F: states in h_n
};

using GruShape = RecurrentShape;

template <class T>
class RecurrentStack {
 public:
  RecurrentStack() = default;

  // Registers `<prefix>.weight_ih_l<k>[_reverse]` etc. with PyTorch's shapes (or takes them
  // from `params` when already registered there with those shapes).
  RecurrentStack(Parameters<T>& params, const std::string& prefix, RecurrentShape shape) : shape_(shape) {
    const auto H = static_cast<std::int64_t>(shape.hidden), G = gates(shape.cell) * H;
    for (Index l = 0; l < shape.layers; ++l) {
      const auto in = static_cast<std::int64_t>(l == 0 ? shape.input : shape.hidden * shape.directions());
      for (Index d = 0; d < shape.directions(); ++d) {
        const std::string suffix = "_l" + std::to_string(l) + (d ? "_reverse" : "");
        ids_.push_back({params.add_or_find(prefix + ".weight_ih" + suffix, {G, in}),
                        params.add_or_find(prefix + ".weight_hh" + suffix, {G, H}),
                        params.add_or_find(prefix + ".bias_ih" + suffix, {G}),
                        params.add_or_find(prefix + ".bias_hh" + suffix, {G})});
      }
    }
  }

  const RecurrentShape& shape() const { return shape_; }

  // PyTorch's default: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)).
  void init(Parameters<T>& params, Rng& rng) const {
    const double bound = 1.0 / std::sqrt(static_cast<double>(shape_.hidden));
    for (const auto& id : ids_)
      for (Index p : {id.w_ih, id.w_hh, id.b_ih, id.b_hh}) {
        auto v = params.var(p);
        for (Index i = 0; i < v.size(); ++i) v.val[i] = T(rng.uniform(-bound, bound));
      }
  }

  struct Result {
    Var<T> output;  // [D*H x T*B]: the last layer's states, directions stacked by rows
    Var<T> h_n;     // [F*H x B]: final state of (layer l, direction d) in row block l*D + d
  };

  // x [I x T*B]; h0 [F*H x B] laid out like h_n, or an empty Var for zeros (an LSTM's cell
  // states always start at zero; h_n holds the final hidden states, not the cell states).
  // Mismatched shapes throw std::invalid_argument before anything is put on the tape.
  Result forward(Tape<T>& tape, Parameters<T>& params, const Var<T>& x, Var<T> h0, SequenceShape seq) const;

 private:
  struct LayerIds {
    Index w_ih, w_hh, b_ih, b_hh;
  };

  // The stack-level operands; each layer's weights are checked again by gru_layer.
  void check_forward(const Parameters<T>& params, const Var<T>& x, const Var<T>& h0, const SequenceShape& seq) const {
    constexpr const char* op = "RecurrentStack::forward";
    if (ids_.empty() || shape_.hidden < 1) [[unlikely]]
      detail::shape_error(op, "the stack has no parameters (default-constructed, or hidden size ", shape_.hidden, ")");
    if (static_cast<std::size_t>(ids_.back().b_hh) >= params.slices().size()) [[unlikely]]
      detail::shape_error(op, "params holds ", params.slices().size(), " parameters but the stack's last is number ",
                          ids_.back().b_hh, " (pass the Parameters the RecurrentStack was registered in)");
    detail::check_operand(op, "x", x);
    detail::check_sequence(op, "x", x.cols, seq);
    if (x.rows != shape_.input) [[unlikely]]
      detail::shape_error(op, "x is ", x, " but the stack's input size is ", shape_.input, " (expected x rows = input size)");
    const Index rows = shape_.factor() * shape_.hidden;
    if (h0.val != nullptr) {
      detail::check_operand(op, "h0", h0);
      if (h0.rows != rows || h0.cols != seq.batch) [[unlikely]]
        detail::shape_error(op, "h0 is ", h0, " but the stack holds ", shape_.factor(), " states of hidden size ", shape_.hidden,
                            " and seq.batch is ", seq.batch, " (expected h0 [", rows, " x ", seq.batch,
                            "] = [layers * directions * hidden x batch], or an empty Var for zeros)");
    }
  }

  RecurrentShape shape_;
  std::vector<LayerIds> ids_;
};

template <class T>
auto RecurrentStack<T>::forward(Tape<T>& tape, Parameters<T>& params, const Var<T>& x, Var<T> h0, SequenceShape seq) const
    -> Result {
  check_forward(params, x, h0, seq);
  const Index H = shape_.hidden, D = shape_.directions(), B = seq.batch;
  if (h0.val == nullptr) {
    h0 = tape.variable(shape_.factor() * H, B);
    h0.value().setZero();
    h0 = h0.detached();
  }
  Var<T> h_n = tape.variable(shape_.factor() * H, B);
  Var<T> input = x;
  for (Index l = 0; l < shape_.layers; ++l) {
    Var<T> out = tape.variable(D * H, seq.columns());
    std::array<RecurrentWeights<T>, 2> w;
    for (Index d = 0; d < D; ++d) {
      const auto& id = ids_[static_cast<std::size_t>(l * D + d)];
      w[static_cast<std::size_t>(d)] = {params.var(id.w_ih), params.var(id.w_hh), params.var(id.b_ih), params.var(id.b_hh), d == 1};
    }
    recurrent_layer<T>(tape, shape_.cell, input, std::span<const RecurrentWeights<T>>(w.data(), static_cast<std::size_t>(D)),
                       h0.block_rows(l * D * H, D * H), out, h_n.block_rows(l * D * H, D * H), seq);
    input = out;
  }
  return {input, h_n};
}

template <class T>
using GruStack = RecurrentStack<T>;

// Compiled once elsewhere when DYAD_EXTERN_TEMPLATES is defined (dyad/instantiate.hpp).
#ifdef DYAD_EXTERN_TEMPLATES
extern template class RecurrentStack<float>;
extern template class RecurrentStack<double>;
#endif

}  // namespace dyad
