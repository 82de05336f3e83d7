// write_file_atomically's handling of links and non-regular targets, check_output_path's
// messages, and the registry of temporaries that signal handlers clean up.
#include "dyad/core/atomic_file.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

// A fresh directory per test case, removed at the end.
struct AtomicTempDir {
  fs::path path;
  AtomicTempDir() {
    path = fs::temp_directory_path() / ("dyad_af_" + std::to_string(::getpid()) + "_" + std::to_string(std::random_device{}()));
    fs::create_directories(path);
  }
  ~AtomicTempDir() { fs::remove_all(path); }
  std::size_t entries() const {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(path), fs::directory_iterator()));
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text(const fs::path& p, const std::string& text) {
  dyad::write_file_atomically(p, [&](std::ostream& os) { os << text; });
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  FAIL("expected an exception");
  return {};
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("atomic write through a symlink writes its target and keeps the link") {
  AtomicTempDir dir;
  const fs::path real = dir.path / "real.csv", link = dir.path / "link.csv";
  write_text(real, "old");
  fs::create_symlink("real.csv", link);  // relative: resolved against the link's directory
  write_text(link, "new");
  CHECK(fs::is_symlink(link));
  CHECK(fs::read_symlink(link) == "real.csv");
  CHECK(slurp(real) == "new");
  CHECK(dir.entries() == 2);
}

TEST_CASE("atomic write follows a chain of links across directories") {
  AtomicTempDir dir;
  fs::create_directories(dir.path / "a");
  fs::create_directories(dir.path / "b");
  const fs::path real = dir.path / "b" / "real.txt";
  write_text(real, "old");
  fs::create_symlink(real, dir.path / "a" / "l2");  // absolute
  fs::create_symlink("a/l2", dir.path / "l1");      // relative, through a subdirectory
  write_text(dir.path / "l1", "chained");
  CHECK(fs::is_symlink(dir.path / "l1"));
  CHECK(fs::is_symlink(dir.path / "a" / "l2"));
  CHECK(slurp(real) == "chained");
  // The temporary was made next to the final target, and removed.
  CHECK(std::distance(fs::directory_iterator(dir.path / "b"), fs::directory_iterator()) == 1);
  CHECK(std::distance(fs::directory_iterator(dir.path / "a"), fs::directory_iterator()) == 1);
}

TEST_CASE("atomic write keeps the permission bits of the file it replaces") {
  AtomicTempDir dir;
  const fs::path f = dir.path / "f.txt";
  write_text(f, "a");
  fs::permissions(f, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  write_text(f, "b");
  CHECK(slurp(f) == "b");
  CHECK(fs::status(f).permissions() == (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read));
}

TEST_CASE("atomic write to a dangling link creates its target when the directory exists") {
  AtomicTempDir dir;
  const fs::path link = dir.path / "link";
  fs::create_symlink("target.txt", link);
  write_text(link, "made");
  CHECK(fs::is_symlink(link));
  CHECK(slurp(dir.path / "target.txt") == "made");

  const fs::path bad = dir.path / "bad";
  fs::create_symlink("missing/target.txt", bad);
  const std::string e = error_of([&] { write_text(bad, "x"); });
  CHECK(contains(e, "cannot create a temporary file for '" + bad.string() + "' -> '"));
  CHECK(contains(e, "missing/target.txt': No such file or directory"));
  CHECK(fs::is_symlink(bad));
}

TEST_CASE("atomic write refuses directories, FIFOs, sockets, link loops and standard output") {
  AtomicTempDir dir;
  const fs::path sub = dir.path / "sub";
  fs::create_directories(sub);
  CHECK(error_of([&] { write_text(sub, "x"); }) == "dyad: refusing to write '" + sub.string() + "': it is a directory");
  CHECK(fs::is_directory(sub));

  const fs::path fifo = dir.path / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK(error_of([&] { write_text(fifo, "x"); }) == "dyad: refusing to write '" + fifo.string() + "': it is a FIFO (named pipe)");
  CHECK(fs::is_fifo(fifo));

  // Through a link, the message says where the link leads.
  const fs::path to_fifo = dir.path / "to_fifo";
  fs::create_symlink(fifo, to_fifo);
  CHECK(error_of([&] { write_text(to_fifo, "x"); }) ==
        "dyad: refusing to write '" + to_fifo.string() + "': it leads to '" + fifo.string() + "', which is a FIFO (named pipe)");
  CHECK(fs::is_symlink(to_fifo));

  const fs::path sock = dir.path / "s.sock";
  const int sfd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(sfd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (sock.string().size() < sizeof addr.sun_path) {
    std::strcpy(addr.sun_path, sock.c_str());
    REQUIRE(::bind(sfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    CHECK(contains(error_of([&] { write_text(sock, "x"); }), "it is a socket"));
    CHECK(fs::is_socket(sock));
  }
  ::close(sfd);

  fs::create_symlink("loop_b", dir.path / "loop_a");
  fs::create_symlink("loop_a", dir.path / "loop_b");
  CHECK(contains(error_of([&] { write_text(dir.path / "loop_a", "x"); }), "cannot follow the links of"));

  // A link in our directory to /dev/stdout: refused, and the link is left alone.
  const fs::path to_stdout = dir.path / "out";
  fs::create_symlink("/dev/stdout", to_stdout);
  CHECK(contains(error_of([&] { write_text(to_stdout, "x"); }), "a standard stream or another /proc entry, not a file"));
  CHECK(fs::is_symlink(to_stdout));

  CHECK(dyad::detail::registered_temporary_count() == 0);
  for (const auto& e : fs::directory_iterator(dir.path))  // no temporaries left by any refusal
    CHECK(!contains(e.path().filename().string(), ".tmp-"));
}

TEST_CASE("check_output_path names the flag, the path and the reason") {
  AtomicTempDir dir;
  const fs::path missing = dir.path / "missing" / "x.csv";
  CHECK(error_of([&] { dyad::check_output_path(missing, "--out"); }) ==
        "dyad: --out '" + missing.string() + "': the directory '" + (dir.path / "missing").string() + "' does not exist");

  const fs::path file = dir.path / "file";
  write_text(file, "x");
  CHECK(contains(error_of([&] { dyad::check_output_path(file / "x.csv", "--out"); }), "--out '" + (file / "x.csv").string() + "'"));

  CHECK(error_of([&] { dyad::check_output_path(dir.path, "--scores-out"); }) ==
        "dyad: refusing to write --scores-out '" + dir.path.string() + "': it is a directory");
  const fs::path fifo = dir.path / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK(error_of([&] { dyad::check_output_path(fifo, "--log-json"); }) ==
        "dyad: refusing to write --log-json '" + fifo.string() + "': it is a FIFO (named pipe)");
  CHECK(contains(error_of([] { dyad::check_output_path("/dev/null", "--out"); }), "it is a character device"));
  CHECK(
      contains(error_of([] { dyad::check_output_path("/dev/stdout", "--out"); }), "--out '/dev/stdout': it is a standard stream"));
  CHECK(contains(error_of([] { dyad::check_output_path("/dev/fd/1", "--out"); }), "--out '/dev/fd/1': it is a standard stream"));
  CHECK(contains(error_of([] { dyad::check_output_path("-", "--out"); }), "--out '-': standard output is not supported"));
  CHECK(contains(error_of([&] { dyad::check_output_path(dir.path / "", "--out"); }), "not a file path"));

  // Writable places pass and leave nothing behind: a new name, an existing file, a link to one,
  // a dangling link whose directory exists.
  dyad::check_output_path(dir.path / "new.csv", "--out");
  dyad::check_output_path(file, "--out");
  fs::create_symlink("file", dir.path / "link");
  dyad::check_output_path(dir.path / "link", "--out");
  fs::create_symlink("nothing", dir.path / "dangling");
  dyad::check_output_path(dir.path / "dangling", "--out");
  CHECK(dir.entries() == 4);  // file, fifo, link, dangling
  CHECK(dyad::detail::registered_temporary_count() == 0);

  // A directory without write permission (root writes anyway, so only checked otherwise).
  if (::geteuid() != 0) {
    const fs::path ro = dir.path / "ro";
    fs::create_directories(ro);
    fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
    CHECK(error_of([&] { dyad::check_output_path(ro / "x.csv", "--out"); }) == "dyad: --out '" + (ro / "x.csv").string() +
                                                                                   "': cannot create files in the directory '" +
                                                                                   ro.string() + "': Permission denied");
    fs::permissions(ro, fs::perms::owner_all);
  }
}

TEST_CASE("temporaries are registered while written and unregistered after success and failure") {
  AtomicTempDir dir;
  REQUIRE(dyad::detail::registered_temporary_count() == 0);
  const fs::path target = dir.path / "t.txt";
  std::size_t during = 0;
  dyad::write_file_atomically(target, [&](std::ostream& os) {
    during = dyad::detail::registered_temporary_count();
    os << "ok";
  });
  CHECK(during == 1);
  CHECK(dyad::detail::registered_temporary_count() == 0);

  CHECK_THROWS(dyad::write_file_atomically(target, [&](std::ostream&) { throw std::runtime_error("writer failed"); }));
  CHECK(dyad::detail::registered_temporary_count() == 0);
  CHECK(slurp(target) == "ok");
  CHECK(dir.entries() == 1);

  CHECK_THROWS(write_text(dir.path / "no" / "such.txt", "x"));
  CHECK(dyad::detail::registered_temporary_count() == 0);
}

TEST_CASE("a full disk: the stream buffer keeps the system's reason (ENOSPC on /dev/full)") {
  const int fd = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  {
    dyad::detail::FdStreambuf buf(fd);
    std::ostream os(&buf);
    os << std::string(200000, 'x');
    os.flush();
    CHECK_FALSE(os);
    CHECK(buf.error() == ENOSPC);
  }
  ::close(fd);
}

TEST_CASE("a write that fails mid-way reports the system's reason even when the writer throws its own error") {
  // Writers check their stream and throw a message of their own ("writing the output failed",
  // as dyad ingest's does), which used to hide why. A file size limit makes write(2) fail with
  // EFBIG as a full disk fails with ENOSPC; in a child process, so the limit stays there.
  AtomicTempDir dir;
  const fs::path target = dir.path / "out.csv";
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit limit {};
    ::getrlimit(RLIMIT_FSIZE, &limit);
    limit.rlim_cur = 4096;
    ::setrlimit(RLIMIT_FSIZE, &limit);
    std::string message = "no error";
    try {
      dyad::write_file_atomically(target, [](std::ostream& os) {
        os << std::string(1 << 20, 'x');
        if (!os) throw std::runtime_error("dyad ingest: writing the output failed");
      });
    } catch (const std::exception& e) {
      message = e.what();
    }
    const ssize_t n = ::write(fds[1], message.data(), message.size());
    ::_exit(n == static_cast<ssize_t>(message.size()) ? 0 : 1);
  }
  ::close(fds[1]);
  std::string message;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) message.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(message ==
        "dyad: cannot write '" + target.string() + "': " + std::strerror(EFBIG) + " (dyad ingest: writing the output failed)");
  CHECK(dir.entries() == 0);  // no partial output, no temporary
}

TEST_CASE("unlink_temporaries removes an in-flight temporary; the write then fails and leaves nothing") {
  AtomicTempDir dir;
  const fs::path target = dir.path / "t.txt";
  std::size_t files_during = 0;
  const std::string e = error_of([&] {
    dyad::write_file_atomically(target, [&](std::ostream& os) {
      os << "partial";
      files_during = dir.entries();
      dyad::detail::unlink_temporaries();  // what a signal handler does
    });
  });
  CHECK(files_during == 1);
  CHECK(contains(e, "cannot rename a temporary file to '" + target.string() + "'"));
  CHECK(dir.entries() == 0);
  CHECK(dyad::detail::registered_temporary_count() == 0);
}

TEST_CASE("a signal while writing removes the temporary and the process dies of that signal") {
  AtomicTempDir dir;
  const fs::path target = dir.path / "t.txt";
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    CAPTURE(sig);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // The child: default dispositions, then the handlers under test; the writer raises the
      // signal halfway, with the temporary on disk.
      for (int s : {SIGINT, SIGTERM, SIGHUP}) std::signal(s, SIG_DFL);
      dyad::remove_temporaries_on_signals();
      try {
        dyad::write_file_atomically(target, [&](std::ostream& os) {
          os << std::string(100000, 'x');
          os.flush();
          ::raise(sig);
        });
      } catch (...) {
      }
      ::_exit(0);  // reached only if the signal did not kill us
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status));
    if (WIFSIGNALED(status)) CHECK(WTERMSIG(status) == sig);
    CHECK(dir.entries() == 0);
  }
}

TEST_CASE("remove_temporaries_on_signals leaves an ignored signal ignored") {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::signal(SIGHUP, SIG_IGN);
    dyad::remove_temporaries_on_signals();
    ::raise(SIGHUP);
    ::_exit(7);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 7);
}

TEST_CASE("check_output_not_input refuses an output that is an input, by any name") {
  AtomicTempDir dir;
  const fs::path raw = dir.path / "raw.csv", other = dir.path / "other.csv";
  write_text(raw, "car,t\na,1\n");
  write_text(other, "car,t\nb,1\n");
  const std::string same = error_of([&] { dyad::check_output_not_input(raw, "--out", {{"--raw", raw}}); });
  CHECK(same == "dyad: --out '" + raw.string() + "' is the same file as --raw '" + raw.string() +
                    "': writing it would destroy the input; give another output path");
  // Another spelling, a symbolic link and a hard link are the same file.
  const fs::path dotted = dir.path / "." / "raw.csv", link = dir.path / "link.csv", hard = dir.path / "hard.csv";
  fs::create_symlink(raw, link);
  fs::create_hard_link(raw, hard);
  for (const fs::path& out : {dotted, link, hard})
    CHECK(contains(error_of([&] {
                     dyad::check_output_not_input(out, "--out", {{"--data", other}, {"--raw", raw}});
                   }),
                   "is the same file as --raw"));
  // A different file, a new name and empty inputs are fine; nothing was touched.
  dyad::check_output_not_input(other, "--out", {{"--raw", raw}, {"--spec", ""}});
  dyad::check_output_not_input(dir.path / "new.csv", "--out", {{"--raw", raw}});
  CHECK(slurp(raw) == "car,t\na,1\n");
}
