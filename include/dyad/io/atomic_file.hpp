// Writing a file so that readers see either the old content or the complete new one:
// write a temporary file next to the target, flush, fsync, then rename it over the target.
// If anything fails (including the caller's writer throwing) the temporary is removed and
// the target is left untouched. POSIX only (open/fsync/rename).
#pragma once

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <ostream>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace dyad {

namespace detail {

[[noreturn]] inline void throw_os_error(const std::string& what, const std::filesystem::path& path, int err) {
  throw std::runtime_error("dyad: " + what + " '" + path.string() + "': " + std::strerror(err));
}

// An output stream buffer over a POSIX file descriptor that remembers the first errno,
// so a failed write can be reported with the OS reason (std::ofstream loses it).
class FdStreambuf final : public std::streambuf {
 public:
  explicit FdStreambuf(int fd) : fd_(fd), buffer_(1 << 16) { setp(buffer_.data(), buffer_.data() + buffer_.size()); }
  int error() const { return error_; }

 protected:
  int_type overflow(int_type ch) override {
    if (!drain()) return traits_type::eof();
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }
  int sync() override { return drain() ? 0 : -1; }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    // Large blocks (tensor buffers) bypass the buffer.
    if (n >= static_cast<std::streamsize>(buffer_.size())) {
      if (!drain() || !write_all(s, static_cast<std::size_t>(n))) return 0;
      return n;
    }
    return std::streambuf::xsputn(s, n);
  }

 private:
  bool drain() {
    const auto n = static_cast<std::size_t>(pptr() - pbase());
    setp(buffer_.data(), buffer_.data() + buffer_.size());
    return write_all(buffer_.data(), n);
  }
  bool write_all(const char* p, std::size_t n) {
    if (error_) return false;
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        error_ = errno;
        return false;
      }
      p += w;
      n -= static_cast<std::size_t>(w);
    }
    return true;
  }

  int fd_;
  int error_ = 0;
  std::vector<char> buffer_;
};

// Opens a fresh file next to `target`; O_EXCL makes the name ours, mode 0666 lets the umask decide.
inline std::pair<int, std::filesystem::path> create_temporary_next_to(const std::filesystem::path& target) {
  static std::atomic<unsigned> counter{0};
  const auto dir = target.parent_path();
  for (int attempt = 0;; ++attempt) {
    std::string name = ".";  // built by appending: GCC 12 -O3 warns (falsely, -Wrestrict) on "." + string
    name += target.filename().string();
    name += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
    auto tmp = dir / name;
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) return {fd, std::move(tmp)};
    if (errno != EEXIST || attempt > 100) throw_os_error("cannot create a temporary file for", target, errno);
  }
}

}  // namespace detail

// Calls `writer(std::ostream&)` to produce the content of `target`, then atomically replaces
// `target`. Exceptions from `writer` propagate unchanged; OS errors name the path and the reason.
template <class Writer>
void write_file_atomically(const std::filesystem::path& target, Writer&& writer) {
  if (target.filename().empty()) throw std::invalid_argument("dyad: not a file path: '" + target.string() + "'");
  auto [fd, tmp] = detail::create_temporary_next_to(target);
  bool fd_open = true;
  try {
    detail::FdStreambuf buf(fd);
    {
      std::ostream os(&buf);
      os.exceptions(std::ios::goodbit);  // failures are reported from buf.error() below
      std::forward<Writer>(writer)(os);
      os.flush();
      if (!os || buf.error()) detail::throw_os_error("cannot write", target, buf.error() ? buf.error() : EIO);
    }
    if (::fsync(fd) != 0) detail::throw_os_error("cannot sync", target, errno);
    fd_open = false;
    if (::close(fd) != 0) detail::throw_os_error("cannot close", target, errno);
    if (::rename(tmp.c_str(), target.c_str()) != 0) detail::throw_os_error("cannot rename a temporary file to", target, errno);
  } catch (...) {
    if (fd_open) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  // Make the rename itself durable; failure here does not undo a complete, renamed file.
  const auto dir = target.parent_path().empty() ? std::filesystem::path(".") : target.parent_path();
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace dyad
