// memtrack report: a trace replayed into a self-contained HTML (or SVG) picture per device.
#pragma once

#include "compare.hpp"
#include "trace_support.hpp"

#include <memtrack/device_placement.hpp>
#include <memtrack/result.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace memtrack::cli::report {

/// One pixel column of a series: the exact minimum and maximum over a run of events, and the
/// event that reached the maximum first (what a hover shows).
struct Column {
  std::uint64_t first_event{0};
  std::uint64_t last_event{0};
  std::uint64_t min{0};
  std::uint64_t max{0};
  std::uint64_t last{0};       ///< the value after the column's last event
  std::uint64_t max_event{0};  ///< the event that set the maximum (earlier, when carried in)
  std::string max_op;          ///< the keyword of that event: alloc, free, baseline, check...
  std::uint64_t max_op_bytes{0};
  bool defined{true};  ///< false before the series' first value (nothing to draw there)

  friend bool operator==(const Column&, const Column&) = default;
};

/**
 * @brief A series over event numbers 1, 2, ... kept as at most `columns` columns with exact
 * minimum and maximum, in memory bounded by the column count however long the trace: columns
 * span a power of two of events, and double (pairs merged) when the trace outgrows them.
 */
class ColumnSeries {
 public:
  explicit ColumnSeries(std::size_t columns);

  /// The value after event `event` (`op`: a keyword with static storage, e.g. from
  /// `traces::keyword`; events ascending; several values for one event: the last
  /// counts as `last`, all count for min and max).
  void add(std::uint64_t event, std::uint64_t value, std::string_view op, std::uint64_t op_bytes);

  /// @return whether any value was added
  [[nodiscard]] bool empty() const { return !seen_; }

  /**
   * @brief The columns over events 1 to `events` (a value holds until the next one; before the
   * first, 0): at most `columns`, each spanning `events_per_column(events)` events.
   */
  [[nodiscard]] std::vector<Column> finish(std::uint64_t events) const;

  [[nodiscard]] std::uint64_t events_per_column(std::uint64_t events) const;

 private:
  struct Sample {
    std::uint64_t value{0};
    std::uint64_t event{0};
    std::string_view op;  ///< a keyword with static storage: no copy per event
    std::uint64_t op_bytes{0};
  };
  struct Bucket {
    bool used{false};
    std::uint64_t min{0};
    Sample max;
    Sample last;
    Sample carry_in;            ///< the value before the bucket's first value
    bool carry_defined{false};  ///< whether there was one (not before the series' first value)
    bool carry_inside{false};   ///< whether an event of the bucket held it (then it is counted)
  };
  static void include(Bucket& bucket, const Sample& sample);
  static Bucket merge(const Bucket& a, const Bucket& b);
  static void merge_pairs(std::vector<Bucket>& buckets);

  std::size_t columns_;
  std::uint64_t width_{1};
  std::vector<Bucket> buckets_;  ///< up to 2 x columns_ while recording
  Sample last_;                  ///< the latest value (0 before any)
  bool seen_{false};
};

/// An allocation alive at a device's peak.
struct LiveAllocation {
  std::uint64_t bytes{0};
  std::string tag;
  std::optional<std::uint64_t> address;
  std::uint64_t event{0};  ///< when it was allocated
  std::optional<std::uint64_t> time_ns;
  std::string where;  ///< the innermost frame of the user's code, where the trace has frames
};

/// A refused allocation, drawn as a marker (or, past `max_markers`, several in one).
struct RefusalMarker {
  std::uint64_t event{0};  ///< the first of them
  std::uint64_t bytes{0};  ///< the first one's
  std::uint64_t count{1};
  std::string where;  ///< the first one's frame in the user's code, where the trace has frames
};

struct DeviceReport {
  DevicePlacement device;
  std::string name;
  std::uint64_t budget{0};
  std::uint64_t total{0};  ///< the device's total (a GPU's CUDA total; the CPU's limit)
  std::uint64_t peak{0};
  std::uint64_t peak_event{0};  ///< where the peak was first reached (0: never above 0)
  std::uint64_t needed{0};      ///< its peak had nothing been refused (as `memtrack fit` says)
  std::uint64_t headroom{0};    ///< budget - needed when it fits, else 0
  std::uint64_t shortfall{0};   ///< needed - budget when it does not fit, else 0
  std::uint64_t final_bytes{0};
  std::uint64_t refused{0};
  std::vector<Column> allocated;
  std::vector<Column> recorded;  ///< the trace's own `check allocated=` (may be empty)
  std::vector<Column> reserved;  ///< the trace's own `check reserved=` (may be empty)
  std::vector<RefusalMarker> refusals;
  std::vector<LiveAllocation> largest_at_peak;  ///< largest first
  std::uint64_t live_at_peak{0};                ///< how many allocations were alive then
};

struct Report {
  std::string file;
  std::string source;
  std::string budgets;  ///< "the recording's own devices" or "profile rtx5090 x 2"
  std::uint64_t events{0};
  std::uint64_t operations{0};
  std::uint64_t refused{0};
  std::uint64_t cpu_fallback_allocations{0};
  std::uint64_t cpu_fallback_bytes{0};
  std::string first_refusal;  ///< empty when nothing was refused
  std::string failure;        ///< empty when the replay agreed throughout
  /// The recording's inconsistencies and operations that landed nowhere, one line each (as
  /// `memtrack fit` prints them); a report with any says no FITS.
  std::string inconsistencies;
  std::uint64_t events_per_column{1};
  /// Each column's times (`t=`, nanoseconds since the source's epoch) over the same columns as
  /// the devices' series; empty when the recording has none.
  std::vector<Column> times;
  /// The recording declares no devices and none were given: no budget is drawn or compared.
  bool measuring_only{false};
  std::vector<DeviceReport> devices;
  /// `--compare B`: this recording (A) beside another (B).
  std::optional<compare::Comparison> comparison;
};

struct ReportOptions {
  std::string file;
  std::string profile;  ///< empty: the recording's own budgets
  std::optional<std::uint32_t> gpus;
  std::size_t columns{1200};
  std::size_t largest{20};
  std::size_t max_markers{5000};  ///< refusal markers drawn one by one per device, then merged
  DeviceFlags devices;            ///< `--gpu`/`--gpu-budget`/... instead of a profile
  AllocatorFlags allocator;       ///< `--allocator`, `--alloc-conf`
  std::string compare;            ///< `--compare B`: another recording to set beside this one
};

/// A DeviceReport with nothing to draw: nothing allocated, refused or recorded on it.
[[nodiscard]] bool idle(const DeviceReport& device);

/// The y axis of a chart: from 0 to `max` in `ticks` steps of `step` bytes, labelled in `unit`.
struct ByteAxis {
  std::uint64_t max{1};
  std::uint64_t step{1};
  std::uint64_t unit{1};  ///< 1, 1 KiB, 1 MiB, ...: every tick is a whole number of units
  std::string unit_name;  ///< "B", "KiB", "MiB", ...
  std::uint64_t ticks{1};
};

/**
 * @brief The y axis for data reaching `highest` bytes: a step of 1, 2 or 5 x 10^k units (B, KiB,
 * MiB, GiB, ...), at most five steps, the top at least 5 % above `highest`.
 */
[[nodiscard]] ByteAxis byte_axis(std::uint64_t highest);

/// `ns` nanoseconds as a readable duration in `unit_ns` (1000: us, 10^6: ms, 10^9: s, 6x10^10:
/// min), with as many decimals (up to 3) as `step_ns` needs: "1.5 s", "250 ms", "2 min".
[[nodiscard]] std::string duration_label(std::uint64_t ns, std::uint64_t unit_ns,
                                         std::uint64_t step_ns);

/// Replays the trace (twice: the series, then what was alive at each device's peak).
[[nodiscard]] Result<Report> build_report(const ReportOptions& options);

/// One self-contained HTML file: inline SVG, CSS and script; nothing fetched.
[[nodiscard]] std::string render_html(const Report& report);

/// The charts alone, one standalone SVG (no script), for CI summaries.
[[nodiscard]] std::string render_svg(const Report& report);

/// 20737062500 -> "20,737,062,500"
[[nodiscard]] std::string grouped(std::uint64_t value);

}  // namespace memtrack::cli::report
