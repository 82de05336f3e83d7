// A whole file mapped read-only into memory: its pages are read when touched, so a file
// larger than RAM can be used, and the kernel's page cache is shared between processes.
// dyad's writers replace files by rename (a new inode), so a mapping keeps the file it opened.
// A file truncated or rewritten in place by another program while mapped (`cp` over it, `rsync
// --inplace`) faults with SIGBUS when a page past its new end is touched. Every mapping is
// recorded in a process-wide registry, and report_mapped_file_faults() installs a SIGBUS handler
// that turns such a fault into one clear message naming the file and exit status 1 (temporaries
// removed, as on SIGTERM). A handler, not a check: a check before each access would cost every
// read and still race with the writer.
#pragma once

#include "dyad/core/atomic_file.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace dyad {
namespace detail {

// A regular file open for reading. Errors name the path: missing or unreadable, a directory, or
// anything but a regular file (a FIFO or device is refused: opened without blocking, so a FIFO
// without a writer cannot hang the caller).
class RegularFile {
 public:
  explicit RegularFile(const std::filesystem::path& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd_ < 0) throw_os_error("cannot open", path, errno);
    struct stat info {};
    int err = 0;
    if (::fstat(fd_, &info) != 0) err = errno;
    else if (S_ISDIR(info.st_mode)) err = EISDIR;
    if (err != 0 || !S_ISREG(info.st_mode)) {
      ::close(fd_);
      if (err != 0) throw_os_error("cannot read", path, err);
      throw std::runtime_error("dyad: cannot read '" + path.string() + "': not a regular file");
    }
    size_ = static_cast<std::size_t>(info.st_size);
  }
  ~RegularFile() { ::close(fd_); }
  RegularFile(const RegularFile&) = delete;
  RegularFile& operator=(const RegularFile&) = delete;
  int fd() const { return fd_; }
  std::size_t size() const { return size_; }

 private:
  int fd_ = -1;
  std::size_t size_ = 0;
};

// ---- The registry of mapped ranges, readable from a signal handler ---------------------------
// As TemporaryRegistry (atomic_file.hpp): slots move free -> filling -> ready (owner), ready ->
// reading -> ready (the handler), ready -> free (owner, waiting out a handler that reads it).
class MappingRegistry {
 public:
  static constexpr std::size_t kSlots = 64;
  static constexpr std::size_t kPathBytes = 1024;

  int add(const void* start, std::size_t size, const std::filesystem::path& path) noexcept {
    for (std::size_t i = 0; i < kSlots; ++i) {
      int expected = kFree;
      if (slots_[i].state.compare_exchange_strong(expected, kFilling, std::memory_order_acquire)) {
        Slot& s = slots_[i];
        s.start = reinterpret_cast<std::uintptr_t>(start);
        s.size = size;
        const std::string& p = path.native();
        const std::size_t n = std::min(p.size(), kPathBytes - 1);
        std::memcpy(s.path.data(), p.data(), n);
        s.path[n] = '\0';
        s.state.store(kReady, std::memory_order_release);
        return static_cast<int>(i);
      }
    }
    return -1;  // full: a fault in this mapping is reported as a plain SIGBUS
  }

  void remove(int slot) noexcept {
    if (slot < 0) return;
    auto& state = slots_[static_cast<std::size_t>(slot)].state;
    for (int expected = kReady; !state.compare_exchange_weak(expected, kFree, std::memory_order_acq_rel); expected = kReady) {
    }
  }

  // Async-signal-safe: copies the path of the mapping holding `address` into `path` (NUL
  // terminated); false when no registered mapping holds it.
  bool path_of(const void* address, std::array<char, kPathBytes>& path) noexcept {
    const auto a = reinterpret_cast<std::uintptr_t>(address);
    for (auto& slot : slots_) {
      int expected = kReady;
      if (!slot.state.compare_exchange_strong(expected, kReading, std::memory_order_acquire)) continue;
      const bool hit = a >= slot.start && a - slot.start < slot.size;
      if (hit) path = slot.path;
      slot.state.store(kReady, std::memory_order_release);
      if (hit) return true;
    }
    return false;
  }

 private:
  static constexpr int kFree = 0, kFilling = 1, kReady = 2, kReading = 3;
  struct Slot {
    std::atomic<int> state{kFree};
    std::uintptr_t start = 0;
    std::size_t size = 0;
    std::array<char, kPathBytes> path{};
  };
  std::array<Slot, kSlots> slots_{};
};

inline constinit MappingRegistry mapping_registry{};

inline void write_text(int fd, const char* text) noexcept { (void)!::write(fd, text, std::strlen(text)); }

// SIGBUS in a registered mapping: the file shrank under it. Says so, removes the temporaries and
// exits 1; any other SIGBUS gets the default action (a core dump, as before).
inline void mapped_file_fault(int sig, siginfo_t* info, void*) {
  std::array<char, MappingRegistry::kPathBytes> path;
  if (info && mapping_registry.path_of(info->si_addr, path)) {
    write_text(STDERR_FILENO, "dyad: error: '");
    write_text(STDERR_FILENO, path.data());
    write_text(STDERR_FILENO,
               "' changed while dyad was reading it (truncated or rewritten in place, e.g. by cp or rsync --inplace). "
               "Writers must replace such a file by rename: write a new file next to it, then mv it over the old one.\n");
    unlink_temporaries();
    ::_exit(1);
  }
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
  ::raise(sig);  // blocked while this handler runs; delivered (and fatal) when it returns
}

}  // namespace detail

// Installs the SIGBUS handler that names a mapped file changed under a running program (see
// the top of this file). For programs: a library does not take signals on its own.
inline void report_mapped_file_faults() {
  struct sigaction sa {};
  sa.sa_sigaction = detail::mapped_file_fault;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGBUS, &sa, nullptr);
}

class MappedFile {
 public:
  // Maps `path`. Errors name it: as detail::RegularFile's, or a mapping the system refuses.
  explicit MappedFile(const std::filesystem::path& path) : path_(path) {
    const detail::RegularFile file(path);
    size_ = file.size();
    if (size_ == 0) return;  // mmap refuses a length of 0; an empty span serves
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, file.fd(), 0);
    if (p == MAP_FAILED) detail::throw_os_error("cannot map", path, errno);
    data_ = static_cast<const std::byte*>(p);
    slot_ = detail::mapping_registry.add(data_, size_, path);
  }
  ~MappedFile() {
    detail::mapping_registry.remove(slot_);
    if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  int slot_ = -1;
};

}  // namespace dyad
