// A one-line progress bar for long runs (sim, fit, replay), on a terminal's standard error only.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>

namespace memtrack::cli {

/// Redrawn at most ten times a second, and only once a run has taken a second.
class ProgressBar {
 public:
  /// @param unit what is counted, e.g. "ops" or "events"
  ProgressBar(std::ostream& err, std::uint64_t total, bool enabled, std::string unit = "ops")
      : err_(err),
        total_(total),
        enabled_(enabled),
        unit_(std::move(unit)),
        started_(std::chrono::steady_clock::now()) {}
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;
  ~ProgressBar() { finish(); }

  void update(std::uint64_t done) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - started_).count();
    if (elapsed < 1.0 || now - last_ < std::chrono::milliseconds(100)) return;  // short runs: none
    last_ = now;
    drawn_ = true;
    constexpr unsigned width = 30;
    // Display only: the share in floating point cannot overflow however long the run.
    const double share =
        total_ == 0 ? 0.0
                    : static_cast<double>(std::min(done, total_)) / static_cast<double>(total_);
    const auto filled = static_cast<unsigned>(share * width);
    err_ << "\r[" << std::string(filled, '#') << std::string(width - filled, ' ') << "] " << done
         << "/" << total_ << " " << unit_ << ", "
         << static_cast<std::uint64_t>(static_cast<double>(done) / elapsed) << " " << unit_ << "/s "
         << std::flush;
  }

  void finish() {
    if (drawn_) err_ << "\r" << std::string(79, ' ') << "\r" << std::flush;
    drawn_ = false;
  }

 private:
  std::ostream& err_;
  std::uint64_t total_;
  bool enabled_;
  std::string unit_;
  bool drawn_{false};
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace memtrack::cli
