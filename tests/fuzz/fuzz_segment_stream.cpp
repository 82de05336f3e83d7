// Fuzz target: the streaming batcher of `dyad monitor --follow` (dyad/data/segment_stream.hpp).
// The first input byte picks `every` (1 to 4 segments a batch), the second how the rest, a long
// CSV, is cut into pieces. The rest is fed three ways:
//   1. to SegmentBatcher in those pieces: the reference;
//   2. through a pipe to SegmentStream, as monitor reads stdin: the same batches and rejects, or
//      the same error;
//   3. to SegmentBatcher in those pieces with time-outs (a batch closed early) between them and a
//      short maximum line: batches as in 1 but cut more often, the over-long lines rejected.
// Only a bad header is an error. Otherwise every non-blank data line comes back once, in order:
// in a batch, or as a reject when it is longer than the limit, has a malformed quote or has too
// few fields to name its car and segment. Each batch starts at the line number it states, lists its segments where they
// start, never splits a segment, and holds `every` segments (all but the last two batches, cut at
// the end of the input; with time-outs, at most `every`).
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
  std::vector<std::size_t> rejects;  // their line numbers
  std::optional<std::string> error;
};

void take_rejects(SegmentBatcher& b, std::vector<std::size_t>& to) {
  for (const auto& r : b.take_rejects()) {
    if (r.reason.empty()) dyad::fuzz::bug("a reject without a reason");
    to.push_back(r.line);
  }
}

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
      take_rejects(b, o.rejects);
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
  take_rejects(b, o.rejects);
  o.header = b.header();
  return o;
}

// The same input written into a pipe and read by SegmentStream (time-outs far away).
Outcome through_pipe(std::string_view text, std::size_t every) {
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
  Outcome o;
  dyad::SegmentStream stream(in.fd, every, 3600);
  try {
    while (auto b = stream.next()) o.batches.push_back(std::move(*b));
  } catch (const std::exception& e) {
    o.error = e.what();
  }
  for (const auto& r : stream.take_rejects()) o.rejects.push_back(r.line);
  o.header = stream.header();
  return o;
}

struct Line {
  std::string text, key;
  std::size_t number;
};

struct Expected {
  std::vector<Line> lines;           // what the batches must give back
  std::vector<std::size_t> rejects;  // the line numbers set aside
  bool header_error = false;
};

// The data lines the batches must give back (after the header, '\r' dropped, blank ones left
// out) and those set aside, as the batcher's rules say.
Expected expected(std::string_view text, std::size_t max_line) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t nl; (nl = text.find('\n', start)) != std::string_view::npos; start = nl + 1)
    lines.emplace_back(text.substr(start, nl - start));
  if (start < text.size()) lines.emplace_back(text.substr(start));
  Expected out;
  if (lines.empty()) return out;
  std::vector<std::string_view> f;
  dyad::text::FieldScratch scratch;
  std::string header = lines[0];
  if (header.size() > max_line) out.header_error = true;
  if (!header.empty() && header.back() == '\r') header.pop_back();
  dyad::text::split_fields(header, f, scratch);
  constexpr std::size_t none = static_cast<std::size_t>(-1);
  std::size_t car = none, segment = none;
  for (std::size_t i = 0; i < f.size(); ++i) {
    if (f[i] == "car") car = i;
    if (f[i] == "segment") segment = i;
  }
  if (car == none || segment == none) out.header_error = true;
  if (out.header_error) return out;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    std::string& l = lines[i];
    if (l.size() > max_line) {
      out.rejects.push_back(i + 1);
      continue;
    }
    if (!l.empty() && l.back() == '\r') l.pop_back();
    if (dyad::text::trim(l).empty()) continue;
    if (dyad::text::split_fields(l, f, scratch) || f.size() <= std::max(car, segment)) {
      out.rejects.push_back(i + 1);
      continue;
    }
    out.lines.push_back({l, std::string(f[car]) + '\x1f' + std::string(f[segment]), i + 1});
  }
  return out;
}

void check(const Outcome& o, std::string_view text, std::size_t every, bool timeouts, std::size_t max_line) {
  const Expected want = expected(text, max_line);
  if (o.error) {
    if (!want.header_error) dyad::fuzz::bug("an error on data rows: " + *o.error);
    if (!o.batches.empty()) dyad::fuzz::bug("batches after a header error");
    return;
  }
  if (want.header_error) dyad::fuzz::bug("a bad header accepted");
  if (o.rejects != want.rejects) dyad::fuzz::bug("other lines rejected than the rules say");
  const std::vector<Line>& lines = want.lines;
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
      if (pos == 0 || lines[at].key != lines[at - 1].key) {
        if (segments >= b.segments.size() || b.segments[segments].offset != pos ||
            b.segments[segments].first_line != lines[at].number)
          dyad::fuzz::bug("batch " + std::to_string(k) + " does not list its segment starting at line " +
                          std::to_string(lines[at].number));
        ++segments;
      }
      pos += expect.size();
    }
    if (segments != b.segments.size()) dyad::fuzz::bug("batch " + std::to_string(k) + " lists segments it does not hold");
    // At the end of the input the pending segments close one batch and the last segment
    // another, so only the batches before those two are sure to be full.
    const bool closing = k + 2 >= o.batches.size();
    if (segments > every || (!timeouts && !closing && segments != every))
      dyad::fuzz::bug("batch " + std::to_string(k) + " holds " + std::to_string(segments) +
                      " segments with every = " + std::to_string(every));
  }
  if (at != lines.size()) dyad::fuzz::bug("data lines missing from the batches");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t every = 1 + data[0] % 4;
  const unsigned seed = data[1];
  const std::string_view text(reinterpret_cast<const char*>(data) + 2, size - 2);

  const Outcome ref = drive(text, every, seed, false, dyad::text::default_max_line_bytes);
  check(ref, text, every, false, dyad::text::default_max_line_bytes);

  if (text.size() < 60000) {  // fits the pipe's buffer, so it can be written before reading
    const Outcome streamed = through_pipe(text, every);
    if (streamed.error != ref.error)
      dyad::fuzz::bug("SegmentStream and SegmentBatcher disagree on the error: '" + streamed.error.value_or("none") + "' vs '" +
                      ref.error.value_or("none") + "'");
    if (streamed.rejects != ref.rejects) dyad::fuzz::bug("SegmentStream rejected other lines than SegmentBatcher");
    if (streamed.batches.size() != ref.batches.size()) dyad::fuzz::bug("SegmentStream gave another number of batches");
    for (std::size_t k = 0; k < streamed.batches.size(); ++k)
      if (streamed.batches[k].text != ref.batches[k].text || streamed.batches[k].first_line != ref.batches[k].first_line)
        dyad::fuzz::bug("SegmentStream's batch " + std::to_string(k) + " differs from SegmentBatcher's");
  }

  const std::size_t short_line = 16 + seed % 64;
  const Outcome timed = drive(text, every, seed, true, short_line);
  check(timed, text, every, true, short_line);
  return 0;
}
