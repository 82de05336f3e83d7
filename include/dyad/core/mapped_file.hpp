// A whole file mapped read-only into memory: its pages are read when touched, so a file
// larger than RAM can be used, and the kernel's page cache is shared between processes.
// dyad's writers replace files by rename (a new inode), so a mapping keeps the file it opened;
// a file truncated in place by another program while mapped would fault (SIGBUS) on access.
#pragma once

#include "dyad/core/atomic_file.hpp"

#include <cerrno>
#include <cstddef>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>

#include <fcntl.h>
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

}  // namespace detail

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
  }
  ~MappedFile() {
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
};

}  // namespace dyad
