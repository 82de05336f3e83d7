// All trainable parameters in one flat, aligned buffer with a matching gradient buffer.
// Each parameter is a named slice with PyTorch's name and shape, stored in PyTorch's
// row-major order, so a checkpoint is just the list of slices.
#pragma once

#include "dyad/core/var.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace dyad {

struct ParameterSlice {
  std::string name;
  std::vector<std::int64_t> shape;  // PyTorch's shape, e.g. {3*H, I} for weight_ih_l0
  Index offset = 0;
  Index size = 0;
};

template <class T>
class Parameters {
 public:
  // Slices start on 64-byte boundaries so every kernel sees aligned rows.
  static constexpr Index kPad = 64 / sizeof(T);

  // Registers a parameter (zero-initialised; values of earlier ones are kept). Strong
  // exception guarantee: on an invalid or overflowing shape (std::length_error,
  // std::invalid_argument) or a failed allocation (std::bad_alloc) the store is unchanged.
  // Maps and Vars taken before an add() point into the old buffers.
  Index add(std::string name, std::vector<std::int64_t> shape) {
    add_all(std::vector<std::pair<std::string, std::vector<std::int64_t>>>{{std::move(name), std::move(shape)}});
    return static_cast<Index>(slices_.size() - 1);
  }

  // Registers every {name, shape} of `layout` in order, with one allocation: add() copies the
  // whole store each time, so registering a large model one tensor at a time is quadratic.
  // Same guarantees as add().
  template <class Layout>
  void add_all(const Layout& layout) {
    constexpr Index kMax = std::numeric_limits<Index>::max();
    std::vector<ParameterSlice> added;
    Index total = total_;
    for (const auto& entry : layout) {
      const auto& [entry_name, shape] = entry;  // a pair or a ParameterShape
      const std::string& name = entry_name;     // (clang 14 lambdas cannot capture bindings)
      Index n = 1;
      for (const auto d : shape) {
        if (d < 0) throw std::invalid_argument("dyad: parameter '" + name + "' has a negative dimension " + std::to_string(d));
        if (d != 0 && n > kMax / d) throw std::length_error("dyad: parameter '" + name + "': the size of its shape overflows");
        n *= static_cast<Index>(d);
      }
      if (find(name) >= 0 || std::any_of(added.begin(), added.end(), [&](const auto& a) { return a.name == name; }))
        throw std::logic_error("dyad: parameter '" + name + "' registered twice");
      if (n > kMax - (kPad - 1) || (n + kPad - 1) / kPad * kPad > kMax - total)
        throw std::length_error("dyad: parameter '" + name + "': the parameter store's size overflows");
      added.push_back({name, {shape.begin(), shape.end()}, total, n});
      total += (n + kPad - 1) / kPad * kPad;
    }
    // Allocate before touching anything: Eigen's resize frees the old buffer before allocating
    // the new one, so a bad_alloc there left a dangling pointer (a double free later).
    Vector<T> values(total), grads(total);
    values.head(total_) = values_;
    values.tail(total - total_).setZero();
    grads.head(total_) = grads_;
    grads.tail(total - total_).setZero();
    if (slices_.capacity() < slices_.size() + added.size()) slices_.reserve(2 * slices_.size() + added.size() + 8);
    // Commit: nothing below throws (the moves go into reserved space).
    for (auto& a : added) slices_.push_back(std::move(a));
    values_.swap(values);
    grads_.swap(grads);
    total_ = total;
  }

  // The index of parameter `name`, registering it when absent; a registered `name` must have
  // this shape. Layers call this, so a model can register its whole layout first (add_all).
  Index add_or_find(const std::string& name, const std::vector<std::int64_t>& shape) {
    const Index i = find(name);
    if (i < 0) return add(name, shape);
    if (slices_[static_cast<std::size_t>(i)].shape != shape)
      throw std::logic_error("dyad: parameter '" + name + "' is registered with another shape");
    return i;
  }

  const std::vector<ParameterSlice>& slices() const { return slices_; }
  Index count() const {
    Index n = 0;
    for (const auto& s : slices_) n += s.size;
    return n;
  }
  Index find(const std::string& name) const {
    for (std::size_t i = 0; i < slices_.size(); ++i)
      if (slices_[i].name == name) return static_cast<Index>(i);
    return -1;
  }
  const ParameterSlice& slice(Index i) const { return slices_.at(static_cast<std::size_t>(i)); }
  const ParameterSlice& slice(const std::string& name) const {
    const Index i = find(name);
    if (i < 0) throw std::out_of_range("dyad: no parameter named '" + name + "'");
    return slices_[static_cast<std::size_t>(i)];
  }

  // The whole buffers, as the optimiser sees them.
  Vector<T>& values() { return values_; }
  const Vector<T>& values() const { return values_; }
  Vector<T>& grads() { return grads_; }
  const Vector<T>& grads() const { return grads_; }
  void zero_grad() { grads_.setZero(); }

  // Copies the values of a store with the same names and shapes (e.g. a float model's
  // weights into a double model).
  template <class U>
  void assign(const Parameters<U>& other) {
    for (const auto& s : slices_) {
      const auto& o = other.slice(s.name);
      if (o.shape != s.shape) throw std::invalid_argument("dyad: parameter '" + s.name + "' has another shape");
      values_.segment(s.offset, s.size) = other.values().segment(o.offset, o.size).template cast<T>();
    }
  }
  // The values (or gradients) without padding, slice after slice.
  Vector<T> packed(bool gradients = false) const {
    Vector<T> out(count());
    Index at = 0;
    for (const auto& s : slices_) {
      out.segment(at, s.size) = (gradients ? grads_ : values_).segment(s.offset, s.size);
      at += s.size;
    }
    return out;
  }

  // The parameter as a tape tensor. A PyTorch [out, in] row-major weight is the
  // column-major [in x out] matrix, i.e. W^T; a 1-D [n] tensor is an n x 1 column.
  Var<T> var(Index i) {
    const auto& s = slices_.at(static_cast<std::size_t>(i));
    const Index rows = s.shape.size() == 2 ? static_cast<Index>(s.shape[1]) : s.size;
    const Index cols = s.shape.size() == 2 ? static_cast<Index>(s.shape[0]) : 1;
    return Var<T>(values_.data() + s.offset, grads_.data() + s.offset, rows, cols);
  }
  Var<T> var(const std::string& name) { return var(find_or_throw(name)); }
  Eigen::Map<Vector<T>> value(const std::string& name) {
    const auto& s = slice(name);
    return Eigen::Map<Vector<T>>(values_.data() + s.offset, s.size);
  }
  Eigen::Map<Vector<T>> grad(const std::string& name) {
    const auto& s = slice(name);
    return Eigen::Map<Vector<T>>(grads_.data() + s.offset, s.size);
  }

 private:
  Index find_or_throw(const std::string& name) const {
    const Index i = find(name);
    if (i < 0) throw std::out_of_range("dyad: no parameter named '" + name + "'");
    return i;
  }
  std::vector<ParameterSlice> slices_;
  Index total_ = 0;
  Vector<T> values_;
  Vector<T> grads_;
};

}  // namespace dyad
