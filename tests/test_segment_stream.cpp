// SegmentBatcher and SegmentStream (dyad monitor --follow): bad rows are set aside with their
// line and reason while the stream goes on, batches list their segments, and a stop request
// hands out the complete segments and ends.
#include "dyad/data/segment_stream.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <string>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

using dyad::SegmentBatcher;

TEST_CASE("SegmentBatcher: a row with too few fields is rejected with its line") {
  SegmentBatcher b(1);
  b.feed("car,t,segment\na,0,1\na\na,1,1\n");
  b.end();
  b.complete_last();
  const auto rejects = b.take_rejects();
  REQUIRE(rejects.size() == 1);
  CHECK(rejects[0].line == 3);
  CHECK(rejects[0].reason == "too few fields (1; the car and segment are fields 1 and 3)");
  CHECK(b.pop()->text == "a,0,1\na,1,1\n");
}

TEST_CASE("SegmentBatcher: an unterminated quote is rejected with its line, and the rows after it still arrive") {
  SegmentBatcher b(2);
  b.feed("car,segment,t,volt\na,1,0,3.7\na,1,1,3.8\n\"b,2,0\nb,2,0,3.6\nc,3,0,3.5\n");
  b.end();
  while (b.complete_last()) {
  }
  b.close_batch();
  const auto rejects = b.take_rejects();
  REQUIRE(rejects.size() == 1);
  CHECK(rejects[0].line == 4);
  CHECK(rejects[0].reason == "field 1: a quote that is not closed, or text after a closing quote");
  CHECK(rejects[0].text == "\"b,2,0");
  const auto first = b.pop();
  REQUIRE(first);
  CHECK(first->text == "a,1,0,3.7\na,1,1,3.8\nb,2,0,3.6\n");
  CHECK(first->first_line == 2);
  REQUIRE(first->segments.size() == 2);
  CHECK(first->segments[1].offset == std::string("a,1,0,3.7\na,1,1,3.8\n").size());
  CHECK(first->segments[1].first_line == 5);
  const auto second = b.pop();
  REQUIRE(second);
  CHECK(second->text == "c,3,0,3.5\n");
  CHECK(second->first_line == 6);
}

TEST_CASE("SegmentBatcher: an over-long row is rejected whole, whether it arrives at once or in pieces") {
  for (std::size_t piece : {1, 3, 1000}) {
    CAPTURE(piece);
    SegmentBatcher b(1, "stdin", 16);
    const std::string input = "car,segment,v\na,1,1\n" + std::string(40, '9') + "\na,1,2\nb,2,3\n";
    for (std::size_t at = 0; at < input.size(); at += piece) b.feed(std::string_view(input).substr(at, piece));
    b.end();
    b.complete_last();
    const auto rejects = b.take_rejects();
    REQUIRE(rejects.size() == 1);
    CHECK(rejects[0].line == 3);
    CHECK(rejects[0].reason == "longer than 16 bytes");
    CHECK(b.pop()->text == "a,1,1\na,1,2\n");
    CHECK(b.pop()->text == "b,2,3\n");
  }
}

TEST_CASE("SegmentBatcher: a header without car and segment is the one error") {
  SegmentBatcher b(1);
  CHECK_THROWS_WITH_AS(b.feed("time,volt\n1,2\n"), "stdin:1:1: the header has no 'car' and 'segment' columns", std::runtime_error);
}

TEST_CASE("SegmentStream: a stop request reads what the input holds, hands out the complete segments, leaves the last") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const std::string head = "car,segment,v\na,1,1\na,1,2\nb,2,1\n";  // a is complete, b may go on
  REQUIRE(::write(fds[1], head.data(), head.size()) == static_cast<ssize_t>(head.size()));
  // The writer keeps the pipe open. The stop came before anything was read (as a SIGTERM at the
  // first wait does in dyad monitor; tests/cli/monitor.sh sends a real one): what the pipe holds
  // counts as delivered.
  volatile std::sig_atomic_t stop = SIGTERM;
  sigset_t mask;
  ::pthread_sigmask(SIG_SETMASK, nullptr, &mask);
  dyad::SegmentStream stream(fds[0], 100, 3600);
  stream.stop_when(&stop, mask);
  const auto batch = stream.next();
  REQUIRE(batch);
  CHECK(batch->text == "a,1,1\na,1,2\n");
  CHECK(stream.stopped());
  CHECK_FALSE(stream.next());
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_CASE("SegmentStream: without a stop, the end of the input completes the last segment") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const std::string all = "car,segment,v\na,1,1\nb,2,1\n";
  REQUIRE(::write(fds[1], all.data(), all.size()) == static_cast<ssize_t>(all.size()));
  ::close(fds[1]);
  dyad::SegmentStream stream(fds[0], 100, 3600);
  const auto batch = stream.next();
  REQUIRE(batch);
  CHECK(batch->text == "a,1,1\n");
  CHECK(stream.next()->text == "b,2,1\n");
  CHECK_FALSE(stream.next());
  ::close(fds[0]);
}
