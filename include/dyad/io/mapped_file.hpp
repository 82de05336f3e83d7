// A whole file mapped read-only into memory: its pages are read when touched, so a file
// larger than RAM can be used, and the kernel's page cache is shared between processes.
// dyad's writers replace files by rename (a new inode), so a mapping keeps the file it opened;
// a file truncated in place by another program while mapped would fault (SIGBUS) on access.
#pragma once

#include "dyad/io/atomic_file.hpp"

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

class MappedFile {
 public:
  // Maps `path`. Errors name it: missing or unreadable, a directory, not a regular file (a FIFO
  // or device is refused without blocking), or a mapping the system refuses.
  explicit MappedFile(const std::filesystem::path& path) : path_(path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) detail::throw_os_error("cannot open", path, errno);
    struct Closer {
      int fd;
      ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat info {};
    if (::fstat(fd, &info) != 0) detail::throw_os_error("cannot read", path, errno);
    if (S_ISDIR(info.st_mode)) detail::throw_os_error("cannot read", path, EISDIR);
    if (!S_ISREG(info.st_mode)) throw std::runtime_error("dyad: cannot read '" + path.string() + "': not a regular file");
    size_ = static_cast<std::size_t>(info.st_size);
    if (size_ == 0) return;  // mmap refuses a length of 0; an empty span serves
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
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
