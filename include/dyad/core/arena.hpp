// A bump allocator for activations saved between forward and backward. It is rewound,
// not freed, after every step, so a warmed-up training step makes no heap allocation.
#pragma once

#include "dyad/config.hpp"

#include <cstddef>
#include <cstring>
#include <new>
#include <vector>

namespace dyad {

class Arena {
 public:
  explicit Arena(std::size_t initial_bytes = std::size_t{1} << 20) { add_block(initial_bytes); }
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  ~Arena() { release(); }

  // Uninitialised storage for n objects of trivially destructible type U, 64-byte aligned.
  template <class U>
  U* allocate(std::size_t n) {
    return static_cast<U*>(allocate_bytes(n * sizeof(U)));
  }
  template <class U>
  U* allocate_zeroed(std::size_t n) {
    U* p = allocate<U>(n);
    std::memset(static_cast<void*>(p), 0, n * sizeof(U));
    return p;
  }

  void* allocate_bytes(std::size_t bytes) {
    bytes = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    requested_ += bytes;
    high_water_ = std::max(high_water_, requested_);
    if (used_ + bytes > blocks_[current_].size) {
      // Move on to a later block that fits, or add one; rewind() merges them.
      while (++current_ < blocks_.size() && bytes > blocks_[current_].size) {
      }
      if (current_ == blocks_.size()) add_block(std::max(bytes, 2 * blocks_.back().size));
      used_ = 0;
    }
    void* p = blocks_[current_].data + used_;
    used_ += bytes;
    return p;
  }

  // Frees nothing; if a step outgrew the first block, replace all blocks by one that holds
  // the most any step has asked for (not the sum of the blocks, which can be 3x that).
  void rewind() {
    if (blocks_.size() > 1) {
      release();
      add_block(high_water_);
    }
    current_ = 0;
    used_ = 0;
    requested_ = 0;
  }

  // Bytes in use across blocks, and the most a step has asked for: its saved-activation memory.
  std::size_t offset() const {
    std::size_t o = used_;
    for (std::size_t i = 0; i < current_; ++i) o += blocks_[i].size;
    return o;
  }
  std::size_t high_water_bytes() const { return high_water_; }
  std::size_t capacity_bytes() const {
    std::size_t c = 0;
    for (const auto& b : blocks_) c += b.size;
    return c;
  }
  // How many times the arena asked the system for memory (for no-allocation tests).
  std::size_t system_allocations() const { return system_allocations_; }

 private:
  struct Block {
    std::byte* data;
    std::size_t size;
  };
  void add_block(std::size_t bytes) {
    bytes = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    auto* p = static_cast<std::byte*>(::operator new (bytes, std::align_val_t{kAlignment}));
    blocks_.push_back({p, bytes});
    ++system_allocations_;
  }
  void release() {
    for (auto& b : blocks_) ::operator delete (b.data, std::align_val_t{kAlignment});
    blocks_.clear();
  }

  std::vector<Block> blocks_;
  std::size_t current_ = 0;
  std::size_t used_ = 0;
  std::size_t requested_ = 0;  // since the last rewind
  std::size_t high_water_ = 0;
  std::size_t system_allocations_ = 0;
};

}  // namespace dyad
