// A Communicator over threads of one process, for testing data-parallel code without MPI
// (and under the sanitizers): `size` threads each hold one, and every reduction adds the ranks'
// contributions in rank order, so every rank receives the bitwise same result, as MPI's do.
#pragma once

#include <dyad/dist/communicator.hpp>

#include <algorithm>
#include <barrier>
#include <exception>
#include <functional>
#include <span>
#include <thread>
#include <vector>

namespace dyad::test {

class ThreadGroup {
 public:
  explicit ThreadGroup(int size) : size_(size), sync_(size), slots_(static_cast<std::size_t>(size)) {}
  int size() const { return size_; }

  // Runs body(communicator) on `size` threads, one per rank, waits for them, and rethrows the
  // first exception a rank threw (that rank leaves the group, so the others do not wait on it).
  void run(const std::function<void(const Communicator&)>& body);

 private:
  friend class ThreadCommunicator;
  int size_;
  std::barrier<> sync_;
  std::vector<std::vector<double>> slots_;
};

class ThreadCommunicator : public Communicator {
 public:
  ThreadCommunicator(ThreadGroup& group, int rank) : group_(group), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return group_.size(); }
  void sum(std::span<float> v) const override { reduce(v, false); }
  void sum(std::span<double> v) const override { reduce(v, false); }
  void max(std::span<double> v) const override { reduce(v, true); }

 private:
  template <class X>
  void reduce(std::span<X> v, bool maximum) const {
    auto& slots = group_.slots_;
    slots[static_cast<std::size_t>(rank_)].assign(v.begin(), v.end());
    group_.sync_.arrive_and_wait();
    for (std::size_t i = 0; i < v.size(); ++i) {
      X acc = static_cast<X>(slots[0][i]);
      for (std::size_t r = 1; r < slots.size(); ++r) {
        const X x = static_cast<X>(slots[r][i]);
        acc = maximum ? std::max(acc, x) : acc + x;
      }
      v[i] = acc;
    }
    group_.sync_.arrive_and_wait();  // nobody refills a slot before every rank has read them
  }
  ThreadGroup& group_;
  int rank_;
};

inline void ThreadGroup::run(const std::function<void(const Communicator&)>& body) {
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(size_));
  {
    std::vector<std::jthread> ranks;
    for (int r = 0; r < size_; ++r)
      ranks.emplace_back([this, r, &body, &errors] {
        try {
          const ThreadCommunicator comm(*this, r);
          body(comm);
        } catch (...) {
          errors[static_cast<std::size_t>(r)] = std::current_exception();
          sync_.arrive_and_drop();
        }
      });
  }
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace dyad::test
