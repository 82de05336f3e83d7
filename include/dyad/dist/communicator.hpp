// dyad::Communicator: the little that data-parallel training and sharded scoring need from a
// message-passing layer: this process's rank among `size` ranks, and element-wise sums and
// maxima (and so minima) over all ranks, in place, with every rank receiving the result. The base class is the
// single process (rank 0 of 1, every reduction a no-op); dyad/dist/mpi.hpp implements it over
// MPI. The core library never depends on MPI: Trainer and Model take a Communicator.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>

namespace dyad {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const { return 0; }
  virtual int size() const { return 1; }
  // Every rank must make the same calls in the same order with the same lengths (MPI's rule
  // for collectives); each returns once every rank has contributed. The sums are bitwise the
  // same on every rank, so that ranks applying the same update stay identical.
  virtual void sum(std::span<float>) const {}
  virtual void sum(std::span<double>) const {}
  virtual void max(std::span<double>) const {}
  // The minimum is the maximum of the negatives.
  void min(std::span<double> v) const {
    for (double& x : v) x = -x;
    max(v);
    for (double& x : v) x = -x;
  }
  bool root() const { return rank() == 0; }
};

// The one-process communicator, for callers that have none.
inline const Communicator& single_process() {
  static const Communicator one;
  return one;
}

// The contiguous part [first, first + count) of n items that `rank` of `size` handles: the
// first n % size ranks take one more, so shares differ by at most one.
struct Share {
  std::size_t first = 0, count = 0;
};
inline Share share_of(std::size_t n, int rank, int size) {
  const auto r = static_cast<std::size_t>(rank), s = static_cast<std::size_t>(std::max(size, 1));
  const std::size_t base = n / s, extra = n % s;
  return {r * base + std::min(r, extra), base + (r < extra ? 1 : 0)};
}

}  // namespace dyad
