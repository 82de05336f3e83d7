// Writing a file so that readers see either the old content or the complete new one:
// write a temporary file next to the target, flush, fsync, then rename it over the target.
// If anything fails (including the caller's writer throwing) the temporary is removed and
// the target is left untouched. POSIX only (open/fsync/rename).
//
// What the target may be:
// - a regular file or a new name in an existing directory: replaced whole (an existing file
//   keeps its permission bits; like any atomic replace, it becomes a new inode, so hard links
//   to the old file keep the old content);
// - a symbolic link: followed (chains too, relative links against their own directory); the
//   final target is written atomically, next to itself, and every link stays a link. A
//   dangling link creates its target when the target's directory exists;
// - anything else (a directory, a character or block device such as /dev/null or /dev/full, a
//   FIFO, a socket) is refused with a message naming the path and what it is, before any
//   temporary is created;
// - standard output: /dev/stdout, /dev/stderr, /dev/fd/N and /proc/.../fd/N are refused, since
//   output sent to a stream cannot be withdrawn when a writer fails halfway. Write a file and
//   `cat` it. check_output_path() also refuses "-" (no stdout shorthand).
// The checks and the rename are separate steps: a target swapped for something else between
// them is not detected.
//
// Signals: every temporary is recorded, while it exists, in a fixed-size process-wide registry.
// remove_temporaries_on_signals() installs SIGINT/SIGTERM/SIGHUP handlers that unlink them and
// then die of the same signal; detail::unlink_temporaries() is the async-signal-safe core for
// programs with their own handlers.
#pragma once

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

namespace dyad {

namespace detail {

[[noreturn]] inline void throw_os_error(const std::string& what, const std::string& name, int err) {
  throw std::runtime_error("dyad: " + what + " '" + name + "': " + std::strerror(err));
}
[[noreturn]] inline void throw_os_error(const std::string& what, const std::filesystem::path& path, int err) {
  throw_os_error(what, path.string(), err);
}

// ---- The registry of in-flight temporaries, readable from a signal handler ------------------
// Slots hold NUL-terminated paths. A slot's state moves free -> filling -> ready (owner),
// ready -> unlinking -> ready (a handler, on any thread), ready -> free (owner). The handler
// only touches ready slots, so it never reads a half-written path; lock-free atomics keep it
// async-signal-safe.
class TemporaryRegistry {
 public:
  static constexpr std::size_t kSlots = 32;
  static constexpr std::size_t kPathBytes = 4096;

  // Returns the slot, or -1 when the registry is full or the path too long: the write then goes
  // ahead unprotected (a signal would leave that temporary behind).
  int add(const std::filesystem::path& path) noexcept {
    const std::string& s = path.native();
    if (s.size() >= kPathBytes) return -1;
    for (std::size_t i = 0; i < kSlots; ++i) {
      int expected = kFree;
      if (slots_[i].state.compare_exchange_strong(expected, kFilling, std::memory_order_acquire)) {
        std::memcpy(slots_[i].path.data(), s.c_str(), s.size() + 1);
        slots_[i].state.store(kReady, std::memory_order_release);
        return static_cast<int>(i);
      }
    }
    return -1;
  }

  void remove(int slot) noexcept {
    if (slot < 0) return;
    auto& state = slots_[static_cast<std::size_t>(slot)].state;
    // A handler on another thread may be unlinking this slot's path right now: wait it out.
    for (int expected = kReady; !state.compare_exchange_weak(expected, kFree, std::memory_order_acq_rel); expected = kReady) {
    }
  }

  // Async-signal-safe: only atomics and unlink(2).
  void unlink_all() noexcept {
    for (auto& slot : slots_) {
      int expected = kReady;
      if (slot.state.compare_exchange_strong(expected, kUnlinking, std::memory_order_acquire)) {
        ::unlink(slot.path.data());
        slot.state.store(kReady, std::memory_order_release);
      }
    }
  }

  std::size_t size() const noexcept {
    std::size_t n = 0;
    for (const auto& slot : slots_) n += slot.state.load(std::memory_order_acquire) != kFree;
    return n;
  }

 private:
  static constexpr int kFree = 0, kFilling = 1, kReady = 2, kUnlinking = 3;
  static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs lock-free atomics");
  struct Slot {
    std::atomic<int> state{kFree};
    std::array<char, kPathBytes> path{};
  };
  std::array<Slot, kSlots> slots_{};
};

// One registry per process (an inline variable: one instance across translation units).
inline constinit TemporaryRegistry temporary_registry{};

// Registers a temporary for its lifetime in scope.
class RegisteredTemporary {
 public:
  explicit RegisteredTemporary(const std::filesystem::path& path) noexcept : slot_(temporary_registry.add(path)) {}
  ~RegisteredTemporary() { temporary_registry.remove(slot_); }
  RegisteredTemporary(const RegisteredTemporary&) = delete;
  RegisteredTemporary& operator=(const RegisteredTemporary&) = delete;

 private:
  int slot_;
};

// The number of temporaries currently registered (for tests and diagnostics).
inline std::size_t registered_temporary_count() noexcept { return temporary_registry.size(); }

// Unlinks every registered temporary. Async-signal-safe (keeps errno): call it from a signal
// handler before the process dies. A write whose temporary is unlinked fails at its rename.
inline void unlink_temporaries() noexcept {
  const int saved = errno;
  temporary_registry.unlink_all();
  errno = saved;
}

inline void remove_temporaries_and_reraise(int sig) {
  unlink_temporaries();
  // Die of the same signal with its default action, so the exit status reports it.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
  ::raise(sig);  // blocked while this handler runs; delivered (and fatal) when it returns
}

// ---- Output targets ---------------------------------------------------------------------------

inline const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// True for the /dev/std* links and paths inside /proc (where /dev/stdout and /dev/fd/N lead;
// its entries pose as regular files).
inline bool is_process_stream(const std::filesystem::path& p) {
  const std::string s = p.lexically_normal().string();
  if (s == "/dev/stdin" || s == "/dev/stdout" || s == "/dev/stderr") return true;
  std::error_code ec;
  const auto dir = std::filesystem::weakly_canonical(p.parent_path().empty() ? "." : p.parent_path(), ec);
  if (ec) return false;
  const std::string d = dir.string();
  return d == "/proc" || d.rfind("/proc/", 0) == 0;
}

struct OutputTarget {
  std::filesystem::path path;  // the file to replace: `target` with its symlinks followed
  bool exists = false;         // a regular file is there now
  mode_t mode = 0;             // its permission bits when it exists
};

// Follows `target`'s symlinks to the file that will be replaced, and refuses anything but a
// regular file or a new name. `label` names the target in messages ("'x'" or "--out 'x'").
inline OutputTarget resolve_output_target(const std::filesystem::path& target, const std::string& label) {
  const auto refuse = [&](const std::filesystem::path& at, const std::string& why) {
    std::string msg = "dyad: refusing to write " + label + ": ";
    if (at != target) msg += "it leads to '" + at.string() + "', which is ";
    else msg += "it is ";
    throw std::runtime_error(msg + why);
  };
  std::filesystem::path p = target;
  for (int hops = 0;; ++hops) {
    if (is_process_stream(p))
      refuse(p,
             "a standard stream or another /proc entry, not a file (outputs are written whole or not at all: "
             "write a file and cat it)");
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) {
      if (errno == ENOENT) return {p, false, 0};  // a new file (perhaps a dangling link's target)
      const int err = errno;
      throw std::runtime_error("dyad: cannot inspect " + label + (p != target ? " at '" + p.string() + "'" : "") + ": " +
                               std::strerror(err));
    }
    if (S_ISREG(st.st_mode)) return {p, true, static_cast<mode_t>(st.st_mode & 07777)};
    if (!S_ISLNK(st.st_mode)) refuse(p, file_kind(st.st_mode));
    if (hops >= 40) throw std::runtime_error("dyad: cannot follow the links of " + label + ": " + std::strerror(ELOOP));
    std::vector<char> buf(static_cast<std::size_t>(st.st_size > 0 ? st.st_size : 255) + 1);
    ssize_t n;
    while ((n = ::readlink(p.c_str(), buf.data(), buf.size())) == static_cast<ssize_t>(buf.size())) buf.resize(buf.size() * 2);
    if (n < 0) throw_os_error("cannot read the link", p, errno);
    const std::filesystem::path link(std::string(buf.data(), static_cast<std::size_t>(n)));
    p = link.is_absolute() ? link : p.parent_path() / link;
  }
}

// Opens a fresh file next to `target`; O_EXCL makes the name ours, mode 0666 lets the umask
// decide. The name is registered before the open, so a signal cannot fall between the two;
// `registration` keeps it registered until the caller is done with the file. Returns fd -1
// and sets `err` on failure.
inline std::pair<int, std::filesystem::path> open_temporary_next_to(const std::filesystem::path& target,
                                                                    std::optional<RegisteredTemporary>& registration, int& err) {
  static std::atomic<unsigned> counter{0};
  const auto dir = target.parent_path();
  for (int attempt = 0;; ++attempt) {
    std::string name = ".";  // built by appending: GCC 12 -O3 warns (falsely, -Wrestrict) on "." + string
    name += target.filename().string();
    name += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
    auto tmp = dir / name;
    registration.emplace(tmp);
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) return {fd, std::move(tmp)};
    err = errno;
    registration.reset();
    if (err != EEXIST || attempt > 100) return {-1, {}};
  }
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
}  // namespace detail

// Installs SIGINT, SIGTERM and SIGHUP handlers that unlink the registered temporaries, restore
// the default action and re-raise, so the process still dies of the signal (exit status 128+N
// in a shell). A signal that is ignored (nohup; SIGINT of a background job in a script) stays
// ignored. Call it once, early, from a program's main().
inline void remove_temporaries_on_signals() {
  struct sigaction sa {};
  sa.sa_handler = detail::remove_temporaries_and_reraise;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&sa.sa_mask, sig);  // one handler at a time
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction old {};
    if (::sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) continue;
    ::sigaction(sig, &sa, nullptr);
  }
}

// Checks, before any expensive work, that `path` (the value of command-line flag `flag`) can
// be written by write_file_atomically: not "-", not a stream, not an existing non-regular file
// (links followed), and its directory exists and accepts a new file (tried for real, with a
// temporary created and removed: permission bits do not tell about read-only mounts, ACLs or
// root). Throws std::runtime_error naming the flag, the path and the reason.
inline void check_output_path(const std::filesystem::path& path, std::string_view flag) {
  const std::string label = std::string(flag) + " '" + path.string() + "'";
  if (path == "-")
    throw std::runtime_error("dyad: " + label +
                             ": standard output is not supported (outputs are written whole or not "
                             "at all); give a file path");
  if (path.empty() || path.filename().empty() || path.filename() == "." || path.filename() == "..")
    throw std::runtime_error("dyad: " + label + ": not a file path");
  const detail::OutputTarget t = detail::resolve_output_target(path, label);
  const std::filesystem::path dir = t.path.parent_path().empty() ? std::filesystem::path(".") : t.path.parent_path();
  const std::string via = t.path != path ? " (the link leads to '" + t.path.string() + "')" : "";
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    const int err = errno;
    throw std::runtime_error("dyad: " + label + ": " +
                             (err == ENOENT ? "the directory '" + dir.string() + "' does not exist"
                                            : "cannot use the directory '" + dir.string() + "': " + std::strerror(err)) +
                             via);
  }
  if (!S_ISDIR(st.st_mode)) throw std::runtime_error("dyad: " + label + ": '" + dir.string() + "' is not a directory" + via);
  std::optional<detail::RegisteredTemporary> registration;
  int err = 0;
  const auto [fd, tmp] = detail::open_temporary_next_to(t.path, registration, err);
  if (fd < 0)
    throw std::runtime_error("dyad: " + label + ": cannot create files in the directory '" + dir.string() +
                             "': " + std::strerror(err) + via);
  ::close(fd);
  ::unlink(tmp.c_str());
}

// An input of a command, named by its option, for check_output_not_input.
struct NamedPath {
  std::string_view flag;  // "--data"
  std::filesystem::path path;
};

// Refuses an output that is one of the command's inputs: the same file by device and inode, so
// through symbolic links, hard links and other spellings of the path. Replacing it would lose
// the input (`ingest --raw x.csv --out x.csv` kept 11 % of the rows). A missing output or input
// is no match; inputs with an empty path are skipped.
inline void check_output_not_input(const std::filesystem::path& out, std::string_view out_flag,
                                   const std::vector<NamedPath>& inputs) {
  struct stat o {};
  if (out.empty() || ::stat(out.c_str(), &o) != 0) return;
  for (const NamedPath& in : inputs) {
    struct stat i {};
    if (in.path.empty() || ::stat(in.path.c_str(), &i) != 0) continue;
    if (i.st_dev == o.st_dev && i.st_ino == o.st_ino)
      throw std::runtime_error("dyad: " + std::string(out_flag) + " '" + out.string() + "' is the same file as " +
                               std::string(in.flag) + " '" + in.path.string() +
                               "': writing it would destroy the input; give another output path");
  }
}

// Calls `writer(std::ostream&)` to produce the content of `target`, then atomically replaces
// `target` (see the top of this file for links and non-regular targets). Exceptions from
// `writer` propagate unchanged, unless a write to the file had failed by then: the writer's
// error is then most likely its view of that failure ("writing failed"), and the error names
// the path and the system's reason (e.g. "No space left on device") with the writer's message.
// OS errors name the path and the reason. A writer taking
// `(std::ostream&, int fd)` also gets the temporary's descriptor, to pwrite() into what it has
// already written (after flushing the stream).
template <class Writer>
void write_file_atomically(const std::filesystem::path& target, Writer&& writer) {
  if (target.filename().empty()) throw std::invalid_argument("dyad: not a file path: '" + target.string() + "'");
  const detail::OutputTarget out = detail::resolve_output_target(target, "'" + target.string() + "'");
  // Errors name what the caller asked for, and where its links lead.
  const std::string name = out.path == target ? target.string() : target.string() + "' -> '" + out.path.string();
  std::optional<detail::RegisteredTemporary> registration;
  int err = 0;
  const auto [fd, tmp] = detail::open_temporary_next_to(out.path, registration, err);
  if (fd < 0) detail::throw_os_error("cannot create a temporary file for", name, err);
  bool fd_open = true;
  try {
    if (out.exists && ::fchmod(fd, out.mode) != 0) detail::throw_os_error("cannot set the permissions of", name, errno);
    detail::FdStreambuf buf(fd);
    {
      std::ostream os(&buf);
      os.exceptions(std::ios::goodbit);  // failures are reported from buf.error() below
      try {
        if constexpr (std::is_invocable_v<Writer, std::ostream&, int>) std::forward<Writer>(writer)(os, fd);
        else std::forward<Writer>(writer)(os);
      } catch (const std::exception& e) {
        if (!buf.error()) throw;
        std::string message = "dyad: cannot write '";  // appended: GCC 12 warns (falsely) on a chain of +
        message += name;
        message += "': ";
        message += std::strerror(buf.error());
        message += " (";
        message += e.what();
        message += ")";
        throw std::runtime_error(message);
      }
      os.flush();
      if (!os || buf.error()) detail::throw_os_error("cannot write", name, buf.error() ? buf.error() : EIO);
    }
    if (::fsync(fd) != 0) detail::throw_os_error("cannot sync", name, errno);
    fd_open = false;
    if (::close(fd) != 0) detail::throw_os_error("cannot close", name, errno);
    if (::rename(tmp.c_str(), out.path.c_str()) != 0) detail::throw_os_error("cannot rename a temporary file to", name, errno);
  } catch (...) {
    if (fd_open) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  registration.reset();
  // Make the rename itself durable; failure here does not undo a complete, renamed file.
  const auto dir = out.path.parent_path().empty() ? std::filesystem::path(".") : out.path.parent_path();
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace dyad
