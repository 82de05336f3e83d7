// SequenceShape: how a [features x T*B] tensor holds B sequences of up to T steps, with the
// check every sequence operation makes of it at its door. Below ops/ and data/, which both use it.
#pragma once

#include "dyad/core/var.hpp"

namespace dyad {

// Sequence shape: steps T and batch B; column t*B + b of a [features x T*B] tensor is step t
// of sample b. `lengths` (optional, one per sample) marks steps t >= lengths[b] as padding:
// the state is carried unchanged through them, which is exactly PyTorch's packed-sequence
// result for both directions.
struct SequenceShape {
  Index steps = 0;
  Index batch = 0;
  const int* lengths = nullptr;

  Index columns() const { return steps * batch; }
  bool active(Index t, Index b) const { return lengths == nullptr || t < lengths[b]; }
};

namespace detail {

// `seq` describes a tensor `name` with `cols` columns: at least one step and one sample, steps *
// batch columns, and every length in [1, steps]. O(batch), once per operation.
inline void check_sequence(const char* op, const char* name, Index cols, const SequenceShape& seq) {
  if (seq.steps < 1 || seq.batch < 1) [[unlikely]]
    shape_error(op, "seq is ", seq.steps, " steps x ", seq.batch, " samples (expected at least 1 of each)");
  if (cols != seq.steps * seq.batch) [[unlikely]]
    shape_error(op, name, " has ", cols, " columns but seq is ", seq.steps, " steps x ", seq.batch,
                " samples = ", seq.steps * seq.batch, " (expected ", name, " columns = steps * batch)");
  if (seq.lengths)
    for (Index b = 0; b < seq.batch; ++b)
      if (seq.lengths[b] < 1 || seq.lengths[b] > seq.steps) [[unlikely]]
        shape_error(op, "seq.lengths[", b, "] is ", seq.lengths[b], " (expected 1 to ", seq.steps, " = seq.steps)");
}

}  // namespace detail

}  // namespace dyad
