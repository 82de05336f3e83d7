// Fuzz target: the streaming batcher of `dyad monitor --follow` (dyad/data/segment_stream.hpp).
// The first input byte picks `every` (1 to 4 segments a batch), the second how the rest, a long
// CSV, is cut into pieces. The rest is fed three ways:
//   1. to SegmentBatcher in those pieces: the reference;
//   2. through a pipe to SegmentStream, as monitor reads stdin: the same batches, or the same error;
//   3. to SegmentBatcher in those pieces with time-outs (a batch closed early) between them and a
//      short maximum line: rejected, or batches as in 1 but cut more often.
// Whatever is accepted must give back every non-blank data line once, in order, each batch
// starting at the line number it states, never splitting a segment, and holding `every`
// segments (all but the last two batches, cut at the end of the input; with time-outs, at most
// `every`).
#include "fuzz_util.hpp"

#include <dyad/data/segment_stream.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using dyad::SegmentBatcher;

struct Outcome {
  std::string header;
  std::vector<SegmentBatcher::Batch> batches;
  std::optional<std::string> error;
};

// Piece sizes from 1 to 1 + seed % 97 bytes, and whether a time-out comes after a piece.
struct Cutter {
  explicit Cutter(unsigned seed) : state(seed), span(1 + seed % 97) {}
  std::uint32_t next() { return (state = state * 1103515245u + 12345u) >> 16; }
  std::size_t piece() { return 1 + next() % span; }
  bool timeout() { return next() % 3 == 0; }
  std::uint32_t state;
  std::size_t span;
};

// Drives the batcher as SegmentStream::next does, in pieces from `cut`.
Outcome drive(std::string_view text, std::size_t every, unsigned seed, bool timeouts, std::size_t max_line) {
  Outcome o;
  SegmentBatcher b(every, "stdin", max_line);
  Cutter cut(seed);
  std::size_t pos = 0;
  try {
    for (;;) {
      if (b.pending() > 0 && (b.ended() || (timeouts && cut.timeout()))) b.close_batch();
      while (auto x = b.pop()) {
        if (x->text.empty()) dyad::fuzz::bug("a batch with no lines");
        o.batches.push_back(std::move(*x));
      }
      if (b.ended()) {
        if (!b.complete_last()) break;
        continue;
      }
      if (pos == text.size()) {
        b.end();
      } else {
        const std::size_t n = std::min(cut.piece(), text.size() - pos);
        b.feed(text.substr(pos, n));
        pos += n;
      }
    }
  } catch (const std::exception& e) {
    o.error = e.what();
  }
  o.header = b.header();
  return o;
}

// The same input written into a pipe and read by SegmentStream (time-outs far away).
std::vector<std::string> through_pipe(std::string_view text, std::size_t every, std::optional<std::string>& error) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) dyad::fuzz::bug("pipe2 failed");
  struct Closer {
    int fd;
    ~Closer() {
      if (fd >= 0) ::close(fd);
    }
  } in{fds[0]}, out{fds[1]};
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(out.fd, text.data() + done, text.size() - done);
    if (n <= 0) dyad::fuzz::bug("writing the pipe failed");
    done += static_cast<std::size_t>(n);
  }
  ::close(out.fd);
  out.fd = -1;
  std::vector<std::string> batches;
  try {
    dyad::SegmentStream stream(in.fd, every, 3600);
    std::size_t first = 0;
    for (std::string b; !(b = stream.next(first)).empty();) batches.push_back(b + "@" + std::to_string(first));
  } catch (const std::exception& e) {
    error = e.what();
  }
  return batches;
}

struct Line {
  std::string text, key;
  std::size_t number;
};

// The data lines the batches must give back: after the header, '\r' dropped, blank ones left out.
std::vector<Line> data_lines(std::string_view text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t nl; (nl = text.find('\n', start)) != std::string_view::npos; start = nl + 1)
    lines.emplace_back(text.substr(start, nl - start));
  if (start < text.size()) lines.emplace_back(text.substr(start));
  for (auto& l : lines)
    if (!l.empty() && l.back() == '\r') l.pop_back();
  std::vector<Line> out;
  if (lines.empty()) return out;
  std::vector<std::string_view> f;
  dyad::text::FieldScratch scratch;
  dyad::text::split_fields(lines[0], f, scratch);
  std::size_t car = 0, segment = 0;
  for (std::size_t i = 0; i < f.size(); ++i) {
    if (f[i] == "car") car = i;
    if (f[i] == "segment") segment = i;
  }
  for (std::size_t i = 1; i < lines.size(); ++i) {
    if (dyad::text::trim(lines[i]).empty()) continue;
    dyad::text::split_fields(lines[i], f, scratch);
    if (f.size() <= std::max(car, segment)) break;  // "too few fields": the batcher stops here too
    out.push_back({lines[i], std::string(f[car]) + '\x1f' + std::string(f[segment]), i + 1});
  }
  return out;
}

void check(const Outcome& o, std::string_view text, std::size_t every, bool timeouts) {
  const std::vector<Line> lines = data_lines(text);
  std::size_t at = 0;
  for (std::size_t k = 0; k < o.batches.size(); ++k) {
    const auto& b = o.batches[k];
    if (at == lines.size()) dyad::fuzz::bug("a batch beyond the input's data lines");
    if (b.first_line != lines[at].number)
      dyad::fuzz::bug("batch " + std::to_string(k) + " says it starts at line " + std::to_string(b.first_line) + ", not " +
                      std::to_string(lines[at].number));
    if (k > 0 && lines[at].key == lines[at - 1].key) dyad::fuzz::bug("a segment split across two batches");
    std::size_t segments = 0, pos = 0;
    for (; pos < b.text.size(); ++at) {
      if (at == lines.size()) dyad::fuzz::bug("a batch holds more than the input's data lines");
      const std::string expect = lines[at].text + "\n";
      if (b.text.compare(pos, expect.size(), expect) != 0)
        dyad::fuzz::bug("batch " + std::to_string(k) + " differs from the input at line " + std::to_string(lines[at].number));
      pos += expect.size();
      segments += at == 0 || pos == expect.size() || lines[at].key != lines[at - 1].key;
    }
    // At the end of the input the pending segments close one batch and the last segment
    // another, so only the batches before those two are sure to be full.
    const bool closing = k + 2 >= o.batches.size();
    if (segments > every || (!timeouts && !closing && segments != every))
      dyad::fuzz::bug("batch " + std::to_string(k) + " holds " + std::to_string(segments) +
                      " segments with every = " + std::to_string(every));
  }
  if (!o.error && at != lines.size()) dyad::fuzz::bug("data lines missing from the batches");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t every = 1 + data[0] % 4;
  const unsigned seed = data[1];
  const std::string_view text(reinterpret_cast<const char*>(data) + 2, size - 2);

  const Outcome ref = drive(text, every, seed, false, dyad::text::default_max_line_bytes);
  check(ref, text, every, false);

  if (text.size() < 60000) {  // fits the pipe's buffer, so it can be written before reading
    std::optional<std::string> error;
    const std::vector<std::string> streamed = through_pipe(text, every, error);
    if (error != ref.error)
      dyad::fuzz::bug("SegmentStream and SegmentBatcher disagree on the error: '" + error.value_or("none") + "' vs '" +
                      ref.error.value_or("none") + "'");
    if (!error) {
      if (streamed.size() != ref.batches.size()) dyad::fuzz::bug("SegmentStream gave another number of batches");
      for (std::size_t k = 0; k < streamed.size(); ++k)
        if (streamed[k] != ref.header + "\n" + ref.batches[k].text + "@" + std::to_string(ref.batches[k].first_line))
          dyad::fuzz::bug("SegmentStream's batch " + std::to_string(k) + " differs from SegmentBatcher's");
    }
  }

  const Outcome timed = drive(text, every, seed, true, 16 + seed % 64);
  check(timed, text, every, true);
  return 0;
}
