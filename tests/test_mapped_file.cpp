// dyad::MappedFile and report_mapped_file_faults(): a file truncated in place while mapped ends
// the program with a message naming it, not "Bus error".
#include "dyad/core/mapped_file.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

TEST_CASE("a mapped file truncated under the reader: the SIGBUS handler names it and exits 1") {
  const fs::path path = fs::temp_directory_path() / ("dyad_mapped_" + std::to_string(::getpid()) + ".dyadset");
  const long page = ::sysconf(_SC_PAGESIZE);
  {
    std::ofstream out(path, std::ios::binary);
    const std::string block(static_cast<std::size_t>(4 * page), 'x');
    out << block;
  }
  int err[2];
  REQUIRE(::pipe(err) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {  // the reader: map, then the file shrinks (as `cp` over it does), then read
    ::dup2(err[1], STDERR_FILENO);
    dyad::report_mapped_file_faults();
    const dyad::MappedFile file(path);
    if (::truncate(path.c_str(), 0) != 0) ::_exit(3);
    volatile unsigned sum = 0;
    for (std::size_t i = 0; i < file.bytes().size(); i += static_cast<std::size_t>(page))
      sum = sum + static_cast<unsigned>(file.bytes()[i]);
    ::_exit(0);  // not reached: the first page faults
  }
  ::close(err[1]);
  std::string message;
  char buf[512];
  for (ssize_t n; (n = ::read(err[0], buf, sizeof buf)) > 0;) message.append(buf, static_cast<std::size_t>(n));
  ::close(err[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  fs::remove(path);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 1);
  CHECK(message.find("dyad: error: '" + path.string() + "' changed while dyad was reading it") == 0);
  CHECK(message.find("replace such a file by rename") != std::string::npos);
}

TEST_CASE("a SIGBUS outside any mapping keeps its default action") {
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    dyad::report_mapped_file_faults();
    ::raise(SIGBUS);  // si_addr is no mapped file's
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGBUS);
}
