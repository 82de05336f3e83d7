// One car's samples to charging windows (dyad ingest): samples arrive roughly in time order;
// charging ones form sessions, each resampled onto a regular grid and cut into windows.
//
//   order     a sample may arrive up to max_disorder_s after a later one of the same car and is
//             sorted in; an older one, or a repeated timestamp, is dropped as out of order
//   sessions  consecutive charging samples; a non-charging sample or a gap > max_gap_s ends one
//   grid      from the session's first sample every interval_s up to its last, each signal
//             interpolated linearly between its nearest valid samples when they are at most
//             max_gap_s apart (a missing cell is bridged); a grid point a signal cannot be
//             given for cuts the session there
//   windows   every `length` grid points, every `stride`, within each uncut run
//
// Memory per car is bounded by time (max_disorder_s of samples and one session), not by the
// size of the export.
#pragma once

#include "dyad/ingest/spec.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <deque>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace dyad::ingest {

inline constexpr std::size_t kMaxSignals = 16;
// Grid points of one session at most (30 days at 10 s): a longer run of charging rows is closed
// and a new session begun, so that no input can make the grid's buffers unbounded.
inline constexpr double kMaxSessionPoints = 1 << 18;

struct Sample {
  double t = 0;
  double mileage = std::numeric_limits<double>::quiet_NaN();
  std::array<float, kMaxSignals> values{};  // the spec's signals; NaN: missing
  int label = -1;                           // -1: none in the row
  bool charging = false;
};

// Why rows were dropped, and what became of the rest (per car and in total).
struct RowCounts {
  std::uint64_t rows = 0;                // data rows read
  std::uint64_t charging_rows = 0;       // rows in a session
  std::uint64_t sessions = 0;            // charging sessions found
  std::uint64_t windows = 0;             // windows written
  std::uint64_t not_charging = 0;        // dropped: not charging
  std::uint64_t short_session = 0;       // dropped: in a session too short for one window
  std::uint64_t gap = 0;                 // dropped: in a part of a session cut off by a hole > max_gap_s
  std::uint64_t unparsable = 0;          // dropped: a field that is not a timestamp / number / car
  std::uint64_t out_of_range = 0;        // dropped: a physically implausible value
  std::uint64_t out_of_order = 0;        // dropped: a repeated timestamp, or later than max_disorder_s
  std::uint64_t cells_interpolated = 0;  // missing cells bridged from their neighbours

  RowCounts& operator+=(const RowCounts& o) {
    rows += o.rows, charging_rows += o.charging_rows, sessions += o.sessions, windows += o.windows;
    not_charging += o.not_charging, short_session += o.short_session, gap += o.gap, unparsable += o.unparsable;
    out_of_range += o.out_of_range, out_of_order += o.out_of_order, cells_interpolated += o.cells_interpolated;
    return *this;
  }
};

// A window: its place in the car's history and its values, row-major [length x signals].
struct Window {
  std::int64_t segment = 0;                                   // the start in epoch milliseconds, negative before 1970
                                                              // (increasing in time per car)
  double start_s = 0;                                         // epoch seconds of its first step
  double mileage = std::numeric_limits<double>::quiet_NaN();  // odometer at its start
  int label = -1;                                             // the largest label of its session's rows; -1: none
  std::span<const float> values;
};

// One car's stream of samples. `emit(const Window&)` is called for each window, in time order.
class SessionCutter {
 public:
  // Keeps the spec's grid and window settings (a copy: the spec may be a temporary).
  SessionCutter(const Spec& spec, std::size_t signals)
      : spec_{spec.interval_s, spec.max_gap_s, spec.max_disorder_s, spec.length, spec.stride}, signals_(signals) {}

  // Takes the car's next sample (counted in counts().rows by the caller).
  template <class Emit>
  void push(const Sample& s, Emit&& emit) {
    if (s.t <= released_t_) {
      ++counts_.out_of_order;
      return;
    }
    if (ordered_.empty() || s.t > ordered_.back().t) {
      ordered_.push_back(s);
    } else {
      stragglers_.push_back(s);
      std::push_heap(stragglers_.begin(), stragglers_.end(), later);
    }
    newest_t_ = std::max(newest_t_, s.t);
    while (pending() && earliest() < newest_t_ - spec_.max_disorder_s) release_earliest(emit);
  }

  // After the car's last sample: releases the rest and closes the open session.
  template <class Emit>
  void finish(Emit&& emit) {
    while (pending()) release_earliest(emit);
    close(emit);
  }

  RowCounts& counts() { return counts_; }
  const RowCounts& counts() const { return counts_; }

 private:
  // Samples not yet released: those that arrived in time order (the common case, O(1) each)
  // and the stragglers, a min-heap on time (O(log n) each, whatever the order).
  static bool later(const Sample& a, const Sample& b) { return a.t > b.t; }
  bool pending() const { return !ordered_.empty() || !stragglers_.empty(); }
  double earliest() const {
    const double inf = std::numeric_limits<double>::infinity();
    return std::min(ordered_.empty() ? inf : ordered_.front().t, stragglers_.empty() ? inf : stragglers_.front().t);
  }

  template <class Emit>
  void release_earliest(Emit& emit) {
    Sample s;
    if (!ordered_.empty() && (stragglers_.empty() || ordered_.front().t <= stragglers_.front().t)) {
      s = ordered_.front();
      ordered_.pop_front();
    } else {
      std::pop_heap(stragglers_.begin(), stragglers_.end(), later);
      s = stragglers_.back();
      stragglers_.pop_back();
    }
    if (s.t == released_t_) {  // a repeated timestamp
      ++counts_.out_of_order;
      return;
    }
    release(s, emit);
  }

  template <class Emit>
  void release(const Sample& s, Emit& emit) {
    released_t_ = s.t;
    if (!s.charging) {
      ++counts_.not_charging;
      close(emit);
      return;
    }
    if (!session_.empty() &&
        (s.t - session_.back().t > spec_.max_gap_s || (s.t - session_.front().t) / spec_.interval_s >= kMaxSessionPoints))
      close(emit);
    session_.push_back(s);
  }

  // Resamples the open session and emits its windows.
  template <class Emit>
  void close(Emit& emit) {
    if (session_.empty()) return;
    const std::size_t n = session_.size();
    counts_.charging_rows += n;
    ++counts_.sessions;
    const double t0 = session_.front().t, dt = spec_.interval_s;
    const auto points = static_cast<std::size_t>(std::floor((session_.back().t - t0) / dt + 1e-9)) + 1;
    const std::size_t cols = signals_ + 1;  // the signals, then mileage (which may be missing)
    grid_.assign(points * cols, std::numeric_limits<float>::quiet_NaN());
    mileage_.assign(points, std::numeric_limits<double>::quiet_NaN());
    valid_.assign(points, 1);
    int label = -1;
    for (const Sample& s : session_) label = std::max(label, s.label);
    following_.resize(n + 1);
    for (std::size_t c = 0; c < cols; ++c) {
      auto value = [&](std::size_t i) { return c < signals_ ? double(session_[i].values[c]) : session_[i].mileage; };
      // following_[i]: the first sample at or after i with a value (n: none). One backward pass,
      // so that a run of missing cells costs its length once, not once per cell or grid point.
      following_[n] = n;
      for (std::size_t i = n; i-- > 0;) following_[i] = std::isnan(value(i)) ? following_[i + 1] : i;
      std::size_t prev = n;  // last sample with a value at or before the grid point
      std::size_t next = 0;  // first sample after it
      if (c < signals_)      // cells bridged: each run of missing cells between two close valid ones
        for (std::size_t i = 0; i < n;) {
          if (!std::isnan(value(i))) {
            ++i;
            continue;
          }
          const std::size_t end = following_[i];  // the run is [i, end)
          if (i > 0 && end < n && session_[end].t - session_[i - 1].t <= spec_.max_gap_s) counts_.cells_interpolated += end - i;
          i = end;
        }
      for (std::size_t k = 0; k < points; ++k) {
        const double g = t0 + static_cast<double>(k) * dt;
        while (next < n && session_[next].t <= g) {
          if (!std::isnan(value(next))) prev = next;
          ++next;
        }
        const std::size_t after = following_[next];
        double v = std::numeric_limits<double>::quiet_NaN();
        if (prev < n && session_[prev].t == g) v = value(prev);
        else if (prev < n && after < n && session_[after].t - session_[prev].t <= spec_.max_gap_s) {
          const double w = (g - session_[prev].t) / (session_[after].t - session_[prev].t);
          v = value(prev) + w * (value(after) - value(prev));
        }
        if (c < signals_) {
          grid_[k * signals_ + c] = static_cast<float>(v);
          if (std::isnan(v)) valid_[k] = 0;
        } else {
          mileage_[k] = v;
        }
      }
    }
    // Uncut runs of grid points, and their windows. Rows outside any window-long run are dropped.
    const auto L = static_cast<std::size_t>(spec_.length), stride = static_cast<std::size_t>(spec_.stride);
    bool cut = false, windows = false;
    std::size_t row = 0;  // rows up to here accounted for
    auto drop_rows_before = [&](double t_end, bool in_gap) {
      std::size_t k = row;
      while (k < n && session_[k].t < t_end) ++k;
      (in_gap ? counts_.gap : counts_.short_session) += k - row;
      row = k;
    };
    for (std::size_t k = 0; k < points;) {
      if (!valid_[k]) {
        cut = true;
        ++k;
        continue;
      }
      std::size_t end = k;
      while (end < points && valid_[end]) ++end;
      const double run_start = t0 + static_cast<double>(k) * dt, run_end = t0 + static_cast<double>(end - 1) * dt;
      if (end - k >= L) {
        drop_rows_before(run_start - dt, true);  // rows before the run lie in a cut-off part
        for (std::size_t w = k; w + L <= end; w += stride) {
          Window win;
          win.start_s = t0 + static_cast<double>(w) * dt;
          // The start in epoch milliseconds: the same window of a re-exported session gets the
          // same id, so dyad monitor stores it once; kept increasing should two round alike.
          // Negative before 1970 (a clock never set): ids are the times whatever their sign, so
          // the windows of two such exports stay apart. parse_timestamp bounds |start_s| by
          // kMaxEpochSeconds, so the milliseconds and the +1 fit an int64.
          win.segment = std::max<std::int64_t>(std::llround(win.start_s * 1000.0), next_segment_);
          next_segment_ = win.segment + 1;
          win.mileage = mileage_[w];
          win.label = label;
          win.values = std::span<const float>(grid_.data() + w * signals_, L * signals_);
          emit(win);
          ++counts_.windows;
        }
        windows = true;
        while (row < n && session_[row].t <= run_end + dt) ++row;  // in the run: kept
      }
      k = end;
    }
    if (!windows) {
      (cut ? counts_.gap : counts_.short_session) += n - row;
    } else if (row < n) {
      counts_.gap += n - row;  // after the last window-long run, past a cut
    }
    session_.clear();
  }

  struct Grid {
    double interval_s, max_gap_s, max_disorder_s;
    int length, stride;
  } spec_;
  std::size_t signals_;
  std::deque<Sample> ordered_;
  std::vector<Sample> stragglers_;
  double released_t_ = -std::numeric_limits<double>::infinity();
  double newest_t_ = -std::numeric_limits<double>::infinity();
  std::vector<Sample> session_;
  std::vector<float> grid_;
  std::vector<double> mileage_;
  std::vector<unsigned char> valid_;
  std::vector<std::size_t> following_;
  std::int64_t next_segment_ = std::numeric_limits<std::int64_t>::min();  // no window yet
  RowCounts counts_;
};

}  // namespace dyad::ingest
