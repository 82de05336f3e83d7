// Batches of complete segments from a long CSV that arrives a piece at a time (`dyad monitor
// --follow` reads standard input with it). A segment is complete once the next segment's first
// row, or the end of the input, arrives; a batch is the CSV text of complete segments with the
// header line in front, ready for read_csv. SegmentBatcher does the cutting on bytes handed to
// it (no I/O, no clock: what the fuzz target drives); SegmentStream reads a file descriptor as
// data arrives and closes a batch after `every` segments or once `seconds` have passed since the
// last batch and at least one segment is complete.
#pragma once

#include "dyad/core/text.hpp"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
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

// Cuts a long CSV, fed as bytes in pieces of any size, into batches of whole segments. Errors
// (no `car` and `segment` columns, too few fields, a line longer than `max_line_bytes`) throw
// std::runtime_error naming `source:line:column`.
class SegmentBatcher {
 public:
  struct Batch {
    std::string text;            // the data lines, each ending in '\n' (no header)
    std::size_t first_line = 0;  // the input line number of its first data line (the header is line 1)
  };

  explicit SegmentBatcher(std::size_t every, std::string source = "stdin",
                          std::size_t max_line_bytes = text::default_max_line_bytes)
      : every_(every), source_(std::move(source)), max_line_(max_line_bytes) {}

  // More input. Complete lines are cut at once; the rest waits for its newline.
  void feed(std::string_view bytes) {
    partial_.append(bytes);
    std::size_t start = 0;
    for (std::size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1)
      line(partial_.substr(start, nl - start));
    partial_.erase(0, start);
    if (partial_.size() > max_line_)
      throw std::runtime_error(source_ + ":" + std::to_string(lines_ + 1) + ":1: line longer than " + std::to_string(max_line_) +
                               " bytes");
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
    ready_.push_back({std::move(batch_), batch_first_line_});
    batch_.clear();
    pending_ = 0;
    batch_first_line_ = 0;
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
  // The header line (without its end of line); empty before the first line.
  const std::string& header() const { return header_; }

 private:
  void complete_current() {
    if (batch_first_line_ == 0) batch_first_line_ = current_first_line_;
    batch_ += current_;
    current_.clear();
    if (++pending_ >= every_) close_batch();
  }
  void line(std::string text) {
    ++lines_;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (lines_ == 1) {
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
    if (text::trim(text).empty()) return;
    text::split_fields(text, fields_, scratch_);
    const std::size_t need = std::max(car_, segment_);
    if (fields_.size() <= need) throw std::runtime_error(source_ + ":" + std::to_string(lines_) + ":1: too few fields");
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
  bool eof_ = false;
  std::string partial_, header_, key_, current_, batch_;
  std::deque<Batch> ready_;  // closed batches
  std::size_t lines_ = 0, pending_ = 0, car_ = npos, segment_ = npos, current_first_line_ = 0, batch_first_line_ = 0;
  std::vector<std::string_view> fields_;
  text::FieldScratch scratch_;
};

// Reads a long CSV from a file descriptor as it arrives and hands out batches of complete
// segments, each as CSV text with the header: after `every` segments, or once `seconds` have
// passed since the last batch and at least one segment is complete.
class SegmentStream {
 public:
  SegmentStream(int fd, std::size_t every, double seconds, std::string source = "stdin",
                std::size_t max_line_bytes = text::default_max_line_bytes)
      : fd_(fd), seconds_(seconds), source_(source), batcher_(every, std::move(source), max_line_bytes) {}

  // The next batch (empty at the end of the input); `first_line` is its first data line's number.
  std::string next(std::size_t& first_line) {
    for (;;) {
      if (batcher_.pending() > 0 && (batcher_.ended() || seconds_since_batch() >= seconds_)) batcher_.close_batch();
      if (auto batch = batcher_.pop()) {
        first_line = batch->first_line;
        last_batch_ = std::chrono::steady_clock::now();
        return batcher_.header() + "\n" + batch->text;
      }
      if (batcher_.ended()) {
        if (!batcher_.complete_last()) return {};
        continue;
      }
      const double left = seconds_ - seconds_since_batch();
      pollfd p{fd_, POLLIN, 0};
      const int r = ::poll(&p, 1, batcher_.pending() > 0 ? std::max(0, static_cast<int>(left * 1000)) : -1);
      if (r < 0 && errno != EINTR) throw std::runtime_error(source_ + ": poll failed: " + std::strerror(errno));
      if (r > 0) read_some();
    }
  }

 private:
  double seconds_since_batch() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - last_batch_).count();
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
  std::chrono::steady_clock::time_point last_batch_ = std::chrono::steady_clock::now();
};

}  // namespace dyad
