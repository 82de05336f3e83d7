// dyad monitor --follow: the long CSV read from standard input as it arrives, for as long as it
// runs. What a long-running service promises:
// - every complete, valid segment is committed (in batches of --commit-every segments or
//   --commit-seconds);
// - a bad row (too few fields, over-long) or a bad segment (a value read_csv refuses, one beyond
//   any model's range such as soc=1e9) is set aside with a logged, counted reason, kept in
//   --reject-file when given, and the stream goes on: no poison pill;
// - SIGTERM or SIGINT commits the complete segments received, then exits with status 0. The
//   segment still arriving is not stored (it may not be whole): the producer sends it again.
// `dyad monitor --spec` uses the same batches: the windows that ingest writes are cut into
// batches as they are written (BatchingBuffer), so memory holds one batch, not the export.
#pragma once

#include "common.hpp"
#include "scoring.hpp"

#include <dyad/core/excerpt.hpp>
#include <dyad/data/batch.hpp>
#include <dyad/data/segment_stream.hpp>
#include <dyad/ensemble.hpp>

#include <signal.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <set>
#include <streambuf>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace dyad::cli {

namespace follow_detail {
inline volatile std::sig_atomic_t stop_signal = 0;
inline void request_stop(int sig) { stop_signal = sig; }
}  // namespace follow_detail

// SIGTERM and SIGINT as stop requests for the life of this object. It blocks them in the calling
// thread, so construct it before any thread is started (threads inherit the mask): the signals
// are then taken only while SegmentStream waits for input (ppoll with wait_mask()), never in the
// middle of scoring or of a transaction.
class StopSignals {
 public:
  StopSignals() {
    follow_detail::stop_signal = 0;
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    ::pthread_sigmask(SIG_BLOCK, &stop, &old_mask_);
    wait_mask_ = old_mask_;
    sigdelset(&wait_mask_, SIGTERM);
    sigdelset(&wait_mask_, SIGINT);
    struct sigaction sa {};
    sa.sa_handler = follow_detail::request_stop;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: the wait returns EINTR
    ::sigaction(SIGTERM, &sa, &old_term_);
    ::sigaction(SIGINT, &sa, &old_int_);
  }
  ~StopSignals() {
    ::sigaction(SIGTERM, &old_term_, nullptr);
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  const sigset_t& wait_mask() const { return wait_mask_; }
  // The signal that asked to stop (0: none).
  int received() const { return follow_detail::stop_signal; }

 private:
  sigset_t old_mask_{}, wait_mask_{};
  struct sigaction old_term_ {
  }, old_int_{};
};

// The rows and segments set aside: each logged to stderr with its reason, counted, and appended
// to --reject-file (a long CSV with the stream's header, to fix and feed again) when given.
class Rejects {
 public:
  // `source` names the stream in messages ("stdin").
  Rejects(std::string path, std::string source) : path_(std::move(path)), source_(std::move(source)) {
    if (path_.empty()) return;
    file_.open(path_, std::ios::app | std::ios::binary);
    if (!file_) throw std::runtime_error("dyad monitor: --reject-file '" + path_ + "': cannot open: " + std::strerror(errno));
    file_.seekp(0, std::ios::end);
    has_header_ = file_.tellp() > 0;
  }

  void row(const std::string& header, const SegmentBatcher::Reject& r) {
    ++rows_;
    std::cerr << "dyad monitor: rejected " << source_ << ":" << r.line << ": " << r.reason << "\n";
    keep(header, r.text + "\n");
  }
  void segment(const std::string& header, std::string_view text, std::size_t first_line, const std::string& reason) {
    ++segments_;
    std::cerr << "dyad monitor: rejected the segment from " << source_ << ":" << first_line << ": " << detail::excerpt(reason, 400)
              << "\n";
    keep(header, text);
  }
  std::size_t rows() const { return rows_; }
  std::size_t segments() const { return segments_; }
  const std::string& path() const { return path_; }
  const std::string& source() const { return source_; }

 private:
  void keep(const std::string& header, std::string_view text) {
    if (path_.empty()) return;
    if (!has_header_) file_ << header << "\n";
    has_header_ = true;
    file_ << text;
    file_.flush();
    if (!file_) throw std::runtime_error("dyad monitor: --reject-file '" + path_ + "': write failed: " + std::strerror(errno));
  }
  std::string path_, source_;
  std::ofstream file_;
  bool has_header_ = false;
  std::size_t rows_ = 0, segments_ = 0;
};

// The valid segments of a batch as a Dataset. When the batch as a whole is not valid, each
// segment is read on its own, so one that read_csv refuses, or with a value no model could
// score (beyond the hard limit of gather_batch), is rejected alone and the batch goes on
// without it.
inline Dataset valid_segments(const Ensemble<float>& model, const std::string& header, const SegmentBatcher::Batch& batch,
                              Rejects& rejects) {
  CsvOptions csv;
  csv.signals = model.config().roles.encoder;
  auto read = [&](std::string_view text, std::size_t first_line) {
    std::istringstream in(header + "\n" + std::string(text));
    csv.data_line_offset = first_line - 2;  // the text's first data line is its line 2
    return read_csv(in, rejects.source(), csv);
  };
  auto beyond_range = [&](const Dataset& d) {
    return out_of_range_values(d, model.resolve_columns(d), model.normalizer(), detail::kMaxStandardised, 1);
  };
  try {  // the common case: the whole batch is valid, read once
    Dataset data = read(batch.text, batch.first_line);
    if (beyond_range(data).empty()) {
      drop_short_segments(data, rejects.source() + " (lines from " + std::to_string(batch.first_line) + ")", model.config());
      return data;
    }
  } catch (const std::exception&) {
  }
  std::string good;
  std::size_t good_first = 0;
  for (std::size_t k = 0; k < batch.segments.size(); ++k) {
    const auto& seg = batch.segments[k];
    const std::size_t end = k + 1 < batch.segments.size() ? batch.segments[k + 1].offset : batch.text.size();
    const std::string_view text = std::string_view(batch.text).substr(seg.offset, end - seg.offset);
    try {
      const Dataset one = read(text, seg.first_line);
      if (const auto far = beyond_range(one); !far.empty()) {
        const OutOfRange& f = far.front();
        throw std::invalid_argument("car '" + detail::excerpt(one.meta(f.segment).car, 60) + "' segment " +
                                    std::to_string(one.meta(f.segment).segment) + " column '" +
                                    model.normalizer().columns()[f.column] + "' step " + std::to_string(f.step) + ": value " +
                                    text::number_text(f.value) + " is beyond any scoring range (" +
                                    text::number_text(f.standardised) + " scales from the training mean)");
      }
    } catch (const std::exception& e) {
      rejects.segment(header, text, seg.first_line, e.what());
      continue;
    }
    if (good.empty()) good_first = seg.first_line;
    good += text;
  }
  if (good.empty()) return Dataset();
  // Line numbers in errors past the first rejected segment would be off, but the segments left
  // were each read above, so this cannot fail.
  Dataset data = read(good, good_first);
  drop_short_segments(data, rejects.source() + " (lines from " + std::to_string(good_first) + ")", model.config());
  return data;
}

// An output stream buffer that cuts what is written to it (a long CSV, from dyad::ingest's
// Ingestor) into batches of `every` segments and hands each to `on_batch` as soon as it is
// complete; finish() hands out the rest.
class BatchingBuffer : public std::streambuf {
 public:
  using OnBatch = std::function<void(const std::string& header, const SegmentBatcher::Batch&)>;
  BatchingBuffer(std::size_t every, std::string source, OnBatch on_batch)
      : batcher_(every, std::move(source)), on_batch_(std::move(on_batch)) {
    setp(buffer_.data(), buffer_.data() + buffer_.size());
  }
  // The end of the written text: the last segment is complete. Returns the rejected rows.
  std::vector<SegmentBatcher::Reject> finish() {
    flush();
    batcher_.end();
    while (batcher_.complete_last()) {
    }
    if (batcher_.pending() > 0) batcher_.close_batch();
    hand_out();
    return batcher_.take_rejects();
  }
  const std::string& header() const { return batcher_.header(); }

 protected:
  int_type overflow(int_type c) override {
    flush();
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(c);
      pbump(1);
    }
    return traits_type::not_eof(c);
  }
  int sync() override {
    flush();
    return 0;
  }

 private:
  void flush() {
    batcher_.feed(std::string_view(pbase(), static_cast<std::size_t>(pptr() - pbase())));
    setp(buffer_.data(), buffer_.data() + buffer_.size());
    hand_out();
  }
  void hand_out() {
    while (auto b = batcher_.pop()) on_batch_(batcher_.header(), *b);
  }
  SegmentBatcher batcher_;
  OnBatch on_batch_;
  std::array<char, 1 << 16> buffer_{};
};

struct FollowReport {
  std::size_t batches = 0;
  int stop_signal = 0;  // SIGTERM or SIGINT when one ended the run
};

// Reads standard input to its end (or a stop signal), handing each batch's valid segments to
// `update(const Dataset&)`, which commits them.
template <class Update>
FollowReport follow_stdin(const Ensemble<float>& model, const StopSignals& signals, std::size_t every, double seconds,
                          Rejects& rejects, Update update) {
  FollowReport report;
  SegmentStream stream(STDIN_FILENO, every, seconds);
  stream.stop_when(&follow_detail::stop_signal, signals.wait_mask());
  auto log_rejected_rows = [&] {
    for (const auto& r : stream.take_rejects()) rejects.row(stream.header(), r);
  };
  while (auto batch = stream.next()) {
    log_rejected_rows();
    Dataset data = valid_segments(model, stream.header(), *batch, rejects);
    if (data.size() == 0) continue;
    warn_out_of_range(model, data, "dyad monitor");
    update(data);
    ++report.batches;
  }
  log_rejected_rows();
  report.stop_signal = signals.received();
  return report;
}

}  // namespace dyad::cli
