// dyad::ThreadPool (core/thread_pool.hpp) on its own: every task of a region runs exactly once,
// region after region (spinning workers) and after the workers went to sleep; the caller
// takes part; workers flush denormals like the caller's kernels do.
#include <dyad/core/thread_pool.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

using dyad::ThreadPool;

TEST_CASE("ThreadPool runs every task of every region exactly once") {
  for (const int threads : {1, 2, 4}) {
    CAPTURE(threads);
    ThreadPool pool(threads);
    CHECK(pool.size() == threads);
    auto region = [&](int tasks) {
      std::vector<std::atomic<int>> runs(static_cast<std::size_t>(tasks));
      pool.run(tasks, [&](int i) { runs[static_cast<std::size_t>(i)].fetch_add(1); });
      for (const auto& r : runs) REQUIRE(r.load() == 1);
    };
    for (int k = 0; k < 500; ++k) region(k % 9);                 // back to back, while the workers spin
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // long enough for them to sleep
    region(17);
    region(0);
  }
}

TEST_CASE("ThreadPool: one task runs on the caller; many are shared with the workers") {
  ThreadPool pool(2);
  std::thread::id ran_on;
  pool.run(1, [&](int) { ran_on = std::this_thread::get_id(); });
  CHECK(ran_on == std::this_thread::get_id());
  // Two tasks that each wait (up to 10 s) until both threads have taken one: only a worker
  // that takes part lets them finish early.
  std::mutex m;
  std::set<std::thread::id> seen;
  auto both = [&] {
    std::lock_guard<std::mutex> lock(m);
    return seen.size() == 2;
  };
  pool.run(2, [&](int) {
    {
      std::lock_guard<std::mutex> lock(m);
      seen.insert(std::this_thread::get_id());
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!both() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  });
  CHECK(seen.size() == 2);
}

#ifdef DYAD_HAS_MXCSR
TEST_CASE("ThreadPool workers flush denormals to zero") {
  ThreadPool pool(2);
  const auto caller = std::this_thread::get_id();
  std::atomic<int> worker_tasks{0};
  std::atomic<bool> flushed{false};
  pool.run(2, [&](int) {
    if (std::this_thread::get_id() == caller) {  // hold task 0 until the worker ran task 1
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (worker_tasks.load() == 0 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
      return;
    }
    volatile float tiny = 1e-37f;
    const float product = tiny * 1e-3f;  // 1e-40: a denormal, 0 under FTZ
    flushed = product == 0.0f;
    ++worker_tasks;
  });
  REQUIRE(worker_tasks.load() == 1);
  CHECK(flushed.load());
}
#endif
