// The reverse-mode tape: a flat list of (backward function, node) pairs over whole-tensor
// operations. Nodes and their saved activations live in the tape's arena; no virtual calls,
// no std::function, no allocation per node once the entry list has grown to its size.
#pragma once

#include "dyad/core/arena.hpp"
#include "dyad/core/denormals.hpp"
#include "dyad/core/precision.hpp"
#include "dyad/core/thread_pool.hpp"
#include "dyad/core/var.hpp"

#include <new>
#include <type_traits>
#include <vector>

namespace dyad {

enum class Mode { training, inference };

template <class T>
class Tape {
 public:
  explicit Tape(Mode mode = Mode::training, std::size_t arena_bytes = std::size_t{1} << 22) : mode_(mode), arena_(arena_bytes) {
    entries_.reserve(64);
  }

  bool recording() const { return mode_ == Mode::training; }
  Mode mode() const { return mode_; }
  Arena& arena() { return arena_; }
  const Arena& arena() const { return arena_; }
  // Worker threads the operations may use; none (the default) runs everything on the caller.
  ThreadPool* pool() const { return pool_; }
  void set_pool(ThreadPool* pool) { pool_ = pool; }
  int threads() const { return pool_ ? pool_->size() : 1; }
  // The arithmetic of an inference tape's GRU products (dyad/core/precision.hpp): what runs on
  // this machine, so a bf16 request on a CPU without bf16 reads back fp32. Float tapes only;
  // a training tape always computes in its own type.
  void set_precision(Precision p) {
    if (p == Precision::bf16 && recording())
      throw std::invalid_argument("dyad::Tape: bf16 is for inference tapes; training computes in fp32");
    precision_ = std::is_same_v<T, float> ? effective_precision(p) : Precision::fp32;
  }
  Precision precision() const { return precision_; }
  // Runs f(i) for i in [0, tasks), in parallel when the tape has a pool.
  template <class F>
  void parallel(int tasks, F&& f) const {
    if (pool_) pool_->run(tasks, f);
    else
      for (int i = 0; i < tasks; ++i) f(i);
  }

  // A fresh tensor in the arena; its adjoint starts at zero when the tape records.
  Var<T> variable(Index rows, Index cols) {
    const auto n = static_cast<std::size_t>(rows * cols);
    T* v = arena_.allocate<T>(n);
    T* g = recording() ? arena_.allocate_zeroed<T>(n) : nullptr;
    return Var<T>(v, g, rows, cols);
  }
  // Scratch memory that lives until reset().
  T* scratch(std::size_t n) { return arena_.allocate<T>(n); }
  // Wraps data owned elsewhere; no gradient flows into it.
  static Var<T> constant(const T* data, Index rows, Index cols, Index ld = -1) {
    return Var<T>(const_cast<T*>(data), nullptr, rows, cols, ld);
  }

  // Records a node whose `backward()` runs in reverse order. Node must be trivially destructible.
  template <class Node, class... Args>
  Node* record(Args&&... args) {
    static_assert(std::is_trivially_destructible_v<Node>, "tape nodes live in the arena and are never destroyed");
    if (!recording()) return nullptr;
    void* p = arena_.allocate_bytes(sizeof(Node));
    Node* node = ::new (p) Node{std::forward<Args>(args)...};
    entries_.push_back({[](void* n) { static_cast<Node*>(n)->backward(); }, node});
    return node;
  }

  // Seeds d(loss)/d(loss) = 1 and runs every node backward.
  void backward(const Var<T>& loss) {
    if (!recording()) detail::shape_error("Tape::backward", "an inference tape recorded nothing to differentiate");
    if (loss.size() != 1 || !loss.needs_grad())
      detail::shape_error("Tape::backward", "loss is ", loss, " (expected a [1 x 1] scalar with a gradient)");
    loss.grad[0] += T(1);
    backward_seeded();
  }
  // Runs every node backward from adjoints the caller has already seeded (vector-Jacobian
  // products of several outputs at once).
  void backward_seeded() {
    const FlushDenormals ftz;
    for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) it->backward(it->node);
  }

  // Forgets the recorded step; memory is kept for the next one.
  void reset() {
    entries_.clear();
    arena_.rewind();
  }
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    void (*backward)(void*);
    void* node;
  };
  Mode mode_;
  Precision precision_ = Precision::fp32;
  Arena arena_;
  ThreadPool* pool_ = nullptr;
  std::vector<Entry> entries_;
};

}  // namespace dyad
