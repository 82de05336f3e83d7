// After warm-up, a training step and a scoring batch make no heap allocation.
#include "toy_data.hpp"

#include <dyad/model.hpp>
#include <dyad/trainer.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

// ASan and TSan replace malloc with their own allocators; interposing it here as well would
// break them (and they allocate on their own), so under them this file only says why it skips.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define DYAD_ALLOCATION_TEST_SKIPPED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define DYAD_ALLOCATION_TEST_SKIPPED 1
#endif
#endif

#ifdef DYAD_ALLOCATION_TEST_SKIPPED
#include <cstdio>

TEST_CASE("allocation tests skipped under a sanitizer (address or thread)") {
  std::printf("SKIPPED test_allocation.cpp: it interposes malloc, which conflicts with the sanitizer's allocator\n");
}
#else

// Counts every heap allocation in the process: operator new and Eigen's aligned_malloc both end in
// these glibc entry points, which this file interposes.
namespace {
std::atomic<long> g_allocations{0};
}
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void* malloc(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t m) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(n, m);
}
void* realloc(void* p, std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, n);
}
void* aligned_alloc(std::size_t a, std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(a, n);
}
int posix_memalign(void** p, std::size_t a, std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  *p = __libc_memalign(a, n);
  return *p ? 0 : 12;
}
}

using namespace dyad;

TEST_CASE("a warmed-up Trainer::step and score_batch allocate nothing, for every cell on 1 and 2 threads") {
  for (const Cell cell : {Cell::gru, Cell::rnn, Cell::lstm})
    for (int threads : {1, 2}) {
      CAPTURE(to_string(cell));
      CAPTURE(threads);
      ModelConfig c = preset("fivefold");  // real sizes: H 64, bidirectional, Z 32
      c.cell = cell;
      c.threads = threads;
      c.batch_size = 64;                                                    // 96 segments: a full batch and a ragged last one
      const Dataset d = dyad::test::toy_dataset(96, c.roles, 1, 100, 128);  // ragged, so padding paths run too
      Model<float> m(c);
      Trainer<Model<float> > trainer(m, d);  // fit()'s own training step
      const auto cols = m.resolve_columns(d);
      Model<float>::Workspace workspace(threads);
      std::vector<std::size_t> batch(32);
      Scores out;
      out.rec_error.resize(96);
      out.target_error.resize(96, 4);
      out.mu.resize(96, c.latent);
      out.log_var.resize(96, c.latent);
      auto step = [&](std::size_t first) {
        trainer.step();  // over an epoch's boundary too: a reshuffle allocates nothing either
        for (std::size_t i = 0; i < batch.size(); ++i) batch[i] = (first + i) % d.size();
        m.score_batch(workspace, d, cols, batch, out, 0);
      };
      step(0);
      step(7);
      const long before = g_allocations.load();
      for (std::size_t k = 1; k <= 3; ++k) step(11 * k);
      CHECK(g_allocations.load() - before == 0);
    }
}

TEST_CASE("the allocation counter sees operator new and Eigen's allocations") {
  const long before = g_allocations.load();
  auto* p = new std::vector<int>(10);
  Eigen::VectorXf v(1000);
  v.setZero();
  CHECK(g_allocations.load() - before >= 3);
  delete p;
}

#endif  // DYAD_ALLOCATION_TEST_SKIPPED
