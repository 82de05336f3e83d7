// A fixed set of worker threads for the few, large parallel regions of a step (the two
// directions of a GRU layer, batch shards, column halves of a GEMM). Dispatch allocates
// nothing; workers spin briefly before sleeping so back-to-back regions stay cheap.
#pragma once

#include "dyad/core/denormals.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace dyad {

class ThreadPool {
 public:
  // `threads` counts the calling thread: ThreadPool(2) starts one worker.
  explicit ThreadPool(int threads) {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs f(i) for every i in [0, tasks) across the pool and the caller; returns when all are done.
  template <class F>
  void run(int tasks, F&& f) {
    if (workers_.empty() || tasks <= 1) {
      for (int i = 0; i < tasks; ++i) f(i);
      return;
    }
    using Fn = std::remove_reference_t<F>;
    context_ = const_cast<void*>(static_cast<const void*>(&f));
    call_ = [](void* c, int i) { (*static_cast<Fn*>(c))(i); };
    tasks_ = tasks;
    next_.store(0, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    acked_.store(0, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    drain();
    // Every worker acknowledges the region, so none is still reading this job's fields
    // when the next run() rewrites them.
    const int workers = static_cast<int>(workers_.size());
    while (done_.load(std::memory_order_acquire) < tasks_ || acked_.load(std::memory_order_acquire) < workers)
      std::this_thread::yield();
  }

 private:
  void drain() {
    for (int i; (i = next_.fetch_add(1, std::memory_order_acq_rel)) < tasks_;) {
      call_(context_, i);
      done_.fetch_add(1, std::memory_order_acq_rel);
    }
  }

  void work() {
    const FlushDenormals ftz;  // workers only ever run dyad's kernels
    std::uint64_t seen = 0;
    for (;;) {
      // Spin a little: the next parallel region usually follows within microseconds.
      for (int spin = 0; spin < 20000 && generation_.load(std::memory_order_acquire) == seen; ++spin) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      }
      if (generation_.load(std::memory_order_acquire) == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      }
      seen = generation_.load(std::memory_order_acquire);
      if (stop_) return;
      drain();
      acked_.fetch_add(1, std::memory_order_acq_rel);
    }
  }

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<int> next_{0}, done_{0}, acked_{0};
  int tasks_ = 0;
  void* context_ = nullptr;
  void (*call_)(void*, int) = nullptr;
  std::atomic<bool> stop_{false};
};

}  // namespace dyad
