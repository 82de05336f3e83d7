// Ranks that agree on their inputs. Under mpirun every rank reads its own copy of --data and
// --model; a stale copy on one node (even one with the same number of segments) would be mixed
// into the results under rank 0's keys without a word. Before any work, every rank hashes what
// it read, and check_ranks_agree() compares the fingerprints: a mismatch is one error, the same
// on every rank, naming the input and the ranks that differ from rank 0.
#pragma once

#include "dyad/data/dataset.hpp"
#include "dyad/dist/communicator.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace dyad {

// A 64-bit FNV-1a hash, fed 8 bytes at a time (a fingerprint against accidents, not attacks).
class Fingerprint {
 public:
  Fingerprint& add(std::span<const std::byte> bytes) {
    std::size_t i = 0;
    for (; i + 8 <= bytes.size(); i += 8) {
      std::uint64_t w;
      std::memcpy(&w, bytes.data() + i, 8);
      mix(w);
    }
    std::uint64_t tail = 0;
    std::memcpy(&tail, bytes.data() + i, bytes.size() - i);
    mix(tail ^ (static_cast<std::uint64_t>(bytes.size() - i) << 56));  // the length tells "ab" from "ab\0"
    return *this;
  }
  Fingerprint& add(std::string_view s) { return add(std::as_bytes(std::span(s.data(), s.size()))); }
  template <class T>
  Fingerprint& add_value(const T& v) {
    return add(std::as_bytes(std::span(&v, 1)));
  }
  std::uint64_t value() const { return h_; }

 private:
  void mix(std::uint64_t w) { h_ = (h_ ^ w) * 0x100000001b3ull; }
  std::uint64_t h_ = 0xcbf29ce484222325ull;
};

// What a Dataset holds: columns, each segment's key, label and values.
inline std::uint64_t fingerprint(const Dataset& data) {
  Fingerprint f;
  for (const auto& c : data.columns()) f.add(c);
  f.add_value(data.size());
  for (std::size_t i = 0; i < data.size(); ++i) {
    const SegmentMeta& m = data.meta(i);
    f.add(m.car).add_value(m.segment).add_value(m.label);
    const SegmentValues v = data.values(i);
    f.add(std::as_bytes(std::span(v.data(), static_cast<std::size_t>(v.size()))));
  }
  return f.value();
}

// The bytes of a file (a model); the error names it.
inline std::uint64_t file_fingerprint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open to fingerprint it");
  Fingerprint f;
  std::vector<char> buf(1 << 20);
  while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0) {
    f.add(std::as_bytes(std::span(buf.data(), static_cast<std::size_t>(in.gcount()))));
    if (!in) break;
  }
  return f.value();
}

// One input's fingerprint on this rank, named for the message ("--data 'fleet.csv'").
struct RankInput {
  std::string name;
  std::uint64_t fingerprint = 0;
};

// Every rank calls this with the same inputs in the same order (a collective). Throws the same
// std::runtime_error on every rank when any rank's fingerprint differs from rank 0's.
inline void check_ranks_agree(const Communicator& comm, const std::vector<RankInput>& inputs) {
  const auto ranks = static_cast<std::size_t>(comm.size());
  if (ranks <= 1 || inputs.empty()) return;
  // Rank 0's fingerprints to everyone, as exact doubles (two 32-bit halves each).
  std::vector<double> root(2 * inputs.size(), 0.0);
  if (comm.root())
    for (std::size_t k = 0; k < inputs.size(); ++k) {
      root[2 * k] = static_cast<double>(inputs[k].fingerprint >> 32);
      root[2 * k + 1] = static_cast<double>(inputs[k].fingerprint & 0xffffffffu);
    }
  comm.sum(root);
  // Which ranks differ, per input.
  std::vector<double> differs(inputs.size() * ranks, 0.0);
  const auto me = static_cast<std::size_t>(comm.rank());
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    const auto hi = static_cast<std::uint64_t>(root[2 * k]), lo = static_cast<std::uint64_t>(root[2 * k + 1]);
    differs[k * ranks + me] = ((hi << 32) | lo) != inputs[k].fingerprint;
  }
  comm.sum(differs);
  std::string message;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    std::string which;
    for (std::size_t r = 0; r < ranks; ++r)
      if (differs[k * ranks + r] != 0) which += (which.empty() ? "" : ", ") + std::to_string(r);
    if (!which.empty())
      message += (message.empty() ? "" : "; ") + inputs[k].name + " on rank(s) " + which + " differs from rank 0's";
  }
  if (!message.empty())
    throw std::runtime_error("the MPI ranks do not hold the same inputs: " + message +
                             " (each node reads its own copy: make the copies identical, or put the files on a shared path)");
}

}  // namespace dyad
