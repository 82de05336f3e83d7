// Batches of complete segments from a long CSV that arrives a piece at a time (`dyad monitor
// --follow` reads standard input with it). A segment is complete once the next segment's first
// row, or the end of the input, arrives; a batch is the CSV text of complete segments, ready for
// read_csv behind the header line. SegmentBatcher does the cutting on bytes handed to it (no
// I/O, no clock: what the fuzz target drives); SegmentStream reads a file descriptor as data
// arrives and closes a batch after `every` segments or once `seconds` have passed since the
// last batch and at least one segment is complete.
//
// A long-running reader must not die of one bad row: a data row with a malformed quote, too few
// fields to name its car and segment (a truncated write) or longer than the line limit is set
// aside as a Reject, with its line number and reason, and the stream goes on. Only a
// header without `car` and `segment` columns is an error (nothing after it can be cut).
#pragma once

#include "dyad/core/text.hpp"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstring>
#include <deque>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dyad {

// Cuts a long CSV, fed as bytes in pieces of any size, into batches of whole segments. A header
// without `car` and `segment` columns, or longer than `max_line_bytes`, throws
// std::runtime_error naming `source:line:column`; a bad data row becomes a Reject.
class SegmentBatcher {
 public:
  struct Segment {
    std::size_t offset = 0;      // of its first line in the batch's text
    std::size_t first_line = 0;  // its first line's number in the input
  };
  struct Batch {
    std::string text;            // the data lines, each ending in '\n' (no header)
    std::size_t first_line = 0;  // the input line number of its first data line (the header is line 1)
    std::vector<Segment> segments;
  };
  struct Reject {
    std::size_t line = 0;  // its number in the input
    std::string reason;    // "too few fields (2; the car and segment are fields 1 and 2)"
    std::string text;      // the line (at most max_line_bytes of it), without its end of line
  };

  explicit SegmentBatcher(std::size_t every, std::string source = "stdin",
                          std::size_t max_line_bytes = text::default_max_line_bytes)
      : every_(every), source_(std::move(source)), max_line_(max_line_bytes) {}

  // More input. Complete lines are cut at once; the rest waits for its newline.
  void feed(std::string_view bytes) {
    while (!bytes.empty() && skipping_) {  // the rest of an over-long line, already rejected
      const std::size_t nl = bytes.find('\n');
      if (nl == std::string_view::npos) return;
      bytes.remove_prefix(nl + 1);
      skipping_ = false;
    }
    partial_.append(bytes);
    std::size_t start = 0;
    for (std::size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1)
      line(std::string_view(partial_).substr(start, nl - start));
    partial_.erase(0, start);
    if (partial_.size() > max_line_) {  // longer than allowed before its newline: reject it now
      line(partial_);
      partial_.clear();
      skipping_ = true;
    }
  }
  // The end of the input: an unterminated last line counts as a line.
  void end() {
    eof_ = true;
    if (!partial_.empty()) line(std::exchange(partial_, std::string()));
  }
  bool ended() const { return eof_; }

  // Complete segments not yet in a closed batch.
  std::size_t pending() const { return pending_; }
  // Closes the batch of the pending segments (the time limit came before `every` segments).
  void close_batch() {
    ready_.push_back(std::exchange(batch_, Batch{}));
    pending_ = 0;
  }
  // After end(): the last segment is complete too. False when there was none left.
  bool complete_last() {
    if (current_.empty()) return false;
    complete_current();
    return true;
  }
  // The oldest closed batch, if any.
  std::optional<Batch> pop() {
    if (ready_.empty()) return std::nullopt;
    Batch b = std::move(ready_.front());
    ready_.pop_front();
    return b;
  }
  // The rows set aside since the last call, in input order.
  std::vector<Reject> take_rejects() { return std::exchange(rejects_, {}); }
  // The header line (without its end of line); empty before the first line.
  const std::string& header() const { return header_; }
  const std::string& source() const { return source_; }

 private:
  void complete_current() {
    if (batch_.segments.empty()) batch_.first_line = current_first_line_;
    batch_.segments.push_back({batch_.text.size(), current_first_line_});
    batch_.text += current_;
    current_.clear();
    if (++pending_ >= every_) close_batch();
  }
  void reject(std::string_view text, std::string reason) {
    rejects_.push_back({lines_, std::move(reason), std::string(text.substr(0, max_line_))});
  }
  void line(std::string_view text) {
    ++lines_;
    const bool too_long = text.size() > max_line_;
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (lines_ == 1) {
      if (too_long) throw std::runtime_error(source_ + ":1:1: the header is longer than " + std::to_string(max_line_) + " bytes");
      header_ = text;
      std::vector<std::string_view> f;
      text::FieldScratch scratch;
      text::split_fields(header_, f, scratch);
      for (std::size_t i = 0; i < f.size(); ++i) {
        if (f[i] == "car") car_ = i;
        if (f[i] == "segment") segment_ = i;
      }
      if (car_ == npos || segment_ == npos)
        throw std::runtime_error(source_ + ":1:1: the header has no 'car' and 'segment' columns");
      return;
    }
    if (too_long) return reject(text, "longer than " + std::to_string(max_line_) + " bytes");
    if (text::trim(text).empty()) return;
    if (const auto bad = text::split_fields(text, fields_, scratch_))
      return reject(text, "field " + std::to_string(*bad + 1) + ": a quote that is not closed, or text after a closing quote");
    const std::size_t need = std::max(car_, segment_);
    if (fields_.size() <= need)
      return reject(text, "too few fields (" + std::to_string(fields_.size()) + "; the car and segment are fields " +
                              std::to_string(car_ + 1) + " and " + std::to_string(segment_ + 1) + ")");
    std::string key = std::string(fields_[car_]) + '\x1f' + std::string(fields_[segment_]);
    if (key != key_ && !current_.empty()) complete_current();
    if (current_.empty()) current_first_line_ = lines_;
    key_ = std::move(key);
    current_ += text;
    current_ += '\n';
  }

  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  std::size_t every_;
  std::string source_;
  std::size_t max_line_;
  bool eof_ = false, skipping_ = false;
  std::string partial_, header_, key_, current_;
  Batch batch_;
  std::deque<Batch> ready_;  // closed batches
  std::vector<Reject> rejects_;
  std::size_t lines_ = 0, pending_ = 0, car_ = npos, segment_ = npos, current_first_line_ = 0;
  std::vector<std::string_view> fields_;
  text::FieldScratch scratch_;
};

// Reads a long CSV from a file descriptor as it arrives and hands out batches of complete
// segments: after `every` segments, or once `seconds` have passed since the last batch and at
// least one segment is complete.
class SegmentStream {
 public:
  SegmentStream(int fd, std::size_t every, double seconds, std::string source = "stdin",
                std::size_t max_line_bytes = text::default_max_line_bytes)
      : fd_(fd), seconds_(seconds), source_(source), batcher_(every, std::move(source), max_line_bytes) {}

  // A stop request: once `*flag` is set (by a signal handler), next() reads what the input
  // already holds (up to 1 MiB, without waiting: the producer counts it as delivered), hands out
  // the complete segments and then ends; the segment still arriving is left out. The wait for
  // input runs with the signal mask `wait_mask` (ppoll), so a caller that blocks its stop
  // signals everywhere else takes them only there and never misses one between a check of the
  // flag and the wait.
  void stop_when(const volatile std::sig_atomic_t* flag, const sigset_t& wait_mask) {
    stop_ = flag;
    wait_mask_ = wait_mask;
  }
  bool stopped() const { return stop_ && *stop_; }

  // The next batch; nullopt at the end of the input (or after a stop request).
  std::optional<SegmentBatcher::Batch> next() {
    for (;;) {
      const bool stopping = stopped();
      if (stopping && !drained_) drain();
      if (batcher_.pending() > 0 && (stopping || batcher_.ended() || seconds_since_batch() >= seconds_)) batcher_.close_batch();
      if (auto batch = batcher_.pop()) {
        last_batch_ = std::chrono::steady_clock::now();
        return batch;
      }
      if (batcher_.ended()) {  // the last segment is whole: the input ended
        if (!batcher_.complete_last()) return std::nullopt;
        continue;
      }
      if (stopping) return std::nullopt;
      const double left = seconds_ - seconds_since_batch();
      pollfd p{fd_, POLLIN, 0};
      timespec wait{};
      const timespec* timeout = nullptr;
      if (batcher_.pending() > 0) {
        const double s = std::max(0.0, left);
        wait.tv_sec = static_cast<time_t>(s);
        wait.tv_nsec = static_cast<long>((s - static_cast<double>(wait.tv_sec)) * 1e9);
        timeout = &wait;
      }
      const int r = ::ppoll(&p, 1, timeout, stop_ ? &wait_mask_ : nullptr);
      if (r < 0 && errno != EINTR) throw std::runtime_error(source_ + ": poll failed: " + std::strerror(errno));
      if (r > 0) read_some();
    }
  }
  // The rows set aside since the last call (SegmentBatcher::take_rejects).
  std::vector<SegmentBatcher::Reject> take_rejects() { return batcher_.take_rejects(); }
  const std::string& header() const { return batcher_.header(); }

 private:
  double seconds_since_batch() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - last_batch_).count();
  }
  void drain() {
    drained_ = true;
    for (int reads = 0; reads < 16 && !batcher_.ended(); ++reads) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 0) <= 0) break;
      read_some();
    }
  }
  void read_some() {
    char buf[1 << 16];
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) return;
      throw std::runtime_error(source_ + ": read failed: " + std::strerror(errno));
    }
    if (n == 0) batcher_.end();
    else batcher_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
  }

  int fd_;
  double seconds_;
  std::string source_;
  SegmentBatcher batcher_;
  const volatile std::sig_atomic_t* stop_ = nullptr;
  sigset_t wait_mask_{};
  bool drained_ = false;
  std::chrono::steady_clock::time_point last_batch_ = std::chrono::steady_clock::now();
};

}  // namespace dyad
