#include "report.hpp"

#include "trace_support.hpp"

#include <memtrack/units.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

namespace memtrack::cli::report {
namespace {

using traces::TraceEvent;

}  // namespace

std::string grouped(std::uint64_t value) {
  std::string digits = std::to_string(value);
  std::string out;
  const std::size_t first = digits.size() % 3 == 0 ? 3 : digits.size() % 3;
  out.append(digits, 0, first);
  for (std::size_t i = first; i < digits.size(); i += 3) {
    out += ',';
    out.append(digits, i, 3);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// ColumnSeries

ColumnSeries::ColumnSeries(std::size_t columns) : columns_(std::max<std::size_t>(columns, 1)) {}

void ColumnSeries::include(Bucket& bucket, const Sample& sample) {
  bucket.min = std::min(bucket.min, sample.value);
  if (sample.value > bucket.max.value) bucket.max = sample;
}

ColumnSeries::Bucket ColumnSeries::merge(const Bucket& a, const Bucket& b) {
  if (!b.used) return a;  // b's events held a's last value, already counted
  if (!a.used) {
    // a's events held the value b started from: it is inside the merged column now
    Bucket merged = b;
    if (merged.carry_defined && !merged.carry_inside) {
      include(merged, merged.carry_in);
      merged.carry_inside = true;
    }
    return merged;
  }
  Bucket merged = a;
  merged.min = std::min(a.min, b.min);
  if (b.max.value > a.max.value) merged.max = b.max;
  merged.last = b.last;
  return merged;
}

void ColumnSeries::merge_pairs(std::vector<Bucket>& buckets) {
  std::vector<Bucket> merged((buckets.size() + 1) / 2);
  for (std::size_t i = 0; i < merged.size(); ++i) {
    merged[i] =
        2 * i + 1 < buckets.size() ? merge(buckets[2 * i], buckets[2 * i + 1]) : buckets[2 * i];
  }
  buckets = std::move(merged);
}

void ColumnSeries::add(std::uint64_t event, std::uint64_t value, std::string_view op,
                       std::uint64_t op_bytes) {
  const Sample sample{value, event, op, op_bytes};
  std::uint64_t index = (event - 1) / width_;
  while (index >= 2 * columns_) {
    merge_pairs(buckets_);
    width_ *= 2;
    index = (event - 1) / width_;
  }
  if (buckets_.size() <= index) buckets_.resize(index + 1);
  Bucket& bucket = buckets_[index];
  if (!bucket.used) {
    bucket.used = true;
    bucket.min = value;
    bucket.max = sample;
    bucket.carry_in = last_;
    bucket.carry_defined = seen_;  // before the first value nothing is held, not even 0
    // earlier events of the bucket held the carry
    bucket.carry_inside = seen_ && event > index * width_ + 1;
    if (bucket.carry_inside) include(bucket, last_);
  } else {
    include(bucket, sample);
  }
  bucket.last = sample;
  last_ = sample;
  seen_ = true;
}

std::vector<Column> ColumnSeries::finish(std::uint64_t events) const {
  std::vector<Column> columns;
  if (events == 0) return columns;
  std::vector<Bucket> buckets = buckets_;
  std::uint64_t width = width_;
  const auto needed = [&width, events] { return (events + width - 1) / width; };
  while (needed() > columns_) {
    merge_pairs(buckets);
    width *= 2;
  }
  buckets.resize(needed());
  Sample carry;
  bool defined = false;
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    const Bucket& b = buckets[i];
    Column column;
    column.first_event = i * width + 1;
    column.last_event = std::min<std::uint64_t>((i + 1) * width, events);
    if (b.used) {
      column.min = b.min;
      column.max = b.max.value;
      column.max_event = b.max.event;
      column.max_op = std::string(b.max.op);
      column.max_op_bytes = b.max.op_bytes;
      column.last = b.last.value;
      carry = b.last;
    } else {  // no value in it: the one before holds throughout
      column.min = column.max = column.last = carry.value;
      column.max_event = carry.event;
      column.max_op = std::string(carry.op);
      column.max_op_bytes = carry.op_bytes;
      column.defined = defined;
    }
    defined = defined || b.used;
    columns.push_back(std::move(column));
  }
  return columns;
}

std::uint64_t ColumnSeries::events_per_column(std::uint64_t events) const {
  std::uint64_t width = width_;
  while ((events + width - 1) / width > columns_)
    width *= 2;
  return width;
}

bool idle(const DeviceReport& device) {
  if (device.peak != 0 || device.needed != 0 || device.refused != 0) return false;
  for (const auto* series : {&device.allocated, &device.recorded, &device.reserved}) {
    for (const Column& c : *series) {
      if (c.max != 0) return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// build_report

namespace {

std::string_view op_keyword(const traces::ReplayStep& step) {
  return traces::keyword(step.trace_event->kind);
}

/// What replaying gives a device (pass 1) and the allocations alive at its peak (pass 2).
struct DeviceState {
  DevicePlacement device;
  ColumnSeries allocated;
  ColumnSeries recorded;
  ColumnSeries reserved;
  std::vector<RefusalMarker> refusals;
  std::uint64_t refused{0};
  std::uint64_t peak{0};
  std::uint64_t peak_event{0};
  explicit DeviceState(DevicePlacement d, std::size_t columns)
      : device(d), allocated(columns), recorded(columns), reserved(columns) {}
};

constexpr std::size_t max_kept_refusals = 1'000'000;

/// What the report shows of an allocation beside what the replayer knows of it (its event, bytes
/// and address).
struct AllocationNotes {
  std::string tag;
  std::optional<std::uint64_t> time_ns;
  std::optional<std::uint64_t> stack;  ///< its call stack in the trace's frame table
};

/// Where an allocation was made: the innermost frame of the user's code, else the innermost.
std::string where_of(const traces::FrameTable& table, std::optional<std::uint64_t> stack) {
  if (!stack) return {};
  std::vector<traces::Frame> frames;
  for (const traces::Frame* frame : table.stack(*stack))
    frames.push_back(*frame);
  if (frames.empty()) return {};
  const auto user = user_frame(frames);
  return user ? describe_frame(frames[*user])
              : "no Python frame (" + std::to_string(frames.size()) + " C++ frames)";
}

}  // namespace

namespace {

/// The replay's devices, and the recording's GPU ids onto them (for the replayer, which maps).
class DeviceSlots {
 public:
  DeviceSlots(std::vector<DevicePlacement> devices, std::map<std::uint32_t, std::uint32_t> gpu_map)
      : devices_(std::move(devices)), gpu_map_(std::move(gpu_map)) {}

  [[nodiscard]] std::size_t size() const { return devices_.size(); }
  [[nodiscard]] const std::vector<DevicePlacement>& devices() const { return devices_; }
  [[nodiscard]] const std::map<std::uint32_t, std::uint32_t>& gpu_map() const { return gpu_map_; }

  /// @return the device's slot, or size() when the replay has no such device
  [[nodiscard]] std::size_t slot_of(DevicePlacement d) const {
    for (std::size_t i = 0; i < devices_.size(); ++i) {
      if (devices_[i] == d) return i;
    }
    return devices_.size();
  }

 private:
  std::vector<DevicePlacement> devices_;
  std::map<std::uint32_t, std::uint32_t> gpu_map_;
};

/// One replay of the report's recording, ready to run: the trace, its budgets, a replayer (no
/// lockstep: the picture; `memtrack replay` checks it against the model) and its devices.
struct ReportReplay {
  OpenedTrace trace;
  Budgets budgets;
  traces::ReplayOptions replay_options;
  traces::Replayer replayer;
  DeviceSlots slots;

  /// Makes the replay ready to run again from the recording's start, to stop after its event
  /// `last_event`: its trace reopened (not imported or scanned again), a new replayer on the
  /// same budgets and options.
  Result<void> restart(std::uint64_t last_event) {
    auto reader = reopen(trace);
    if (!reader) return reader.error();
    trace.reader = std::move(*reader);
    replay_options.last_event = last_event;
    auto again = traces::Replayer::create(budgets.config, replay_options);
    if (!again) return again.error();
    replayer = std::move(*again);
    return {};
  }
};

Result<ReportReplay> prepare_replay(const ReportOptions& options) {
  auto trace = open_trace(options.file);
  if (!trace) return trace.error();
  auto budgets = choose_budgets(*trace, options.profile, options.gpus, options.devices);
  if (!budgets) return budgets.error();
  auto gpu_map = gpu_map_for(*trace, *budgets);
  if (!gpu_map) return gpu_map.error();
  traces::ReplayOptions replay_options;
  replay_options.lockstep = false;
  replay_options.recorded_budgets = budgets->recorded;
  if (auto chosen = choose_allocator(*trace, *budgets, *gpu_map, options.allocator, replay_options);
      !chosen) {
    return chosen.error();
  }
  auto replayer = traces::Replayer::create(budgets->config, replay_options);
  if (!replayer) return replayer.error();
  DeviceSlots slots(replayer->devices(), std::move(*gpu_map));
  return ReportReplay{std::move(*trace), std::move(*budgets), replay_options, std::move(*replayer),
                      std::move(slots)};
}

/// Pass 1: each device's series, peak and refusals as the replay goes.
class SeriesPass {
 public:
  SeriesPass(const DeviceSlots& slots, const traces::FrameTable& frames, std::size_t columns)
      : slots_(slots), frames_(frames), times(columns) {
    for (const DevicePlacement d : slots.devices())
      states.emplace_back(d, columns);
  }

  void on_step(const traces::ReplayStep& step) {
    const std::string_view op = op_keyword(step);
    const std::uint64_t bytes = step.operation.bytes;
    if (step.trace_event->time_ns) times.add(step.event, *step.trace_event->time_ns, op, 0);
    for (DeviceState& state : states) {
      const std::uint64_t now = step.after->allocated(state.device);
      state.allocated.add(step.event, now, op, bytes);
      if (now > state.peak) {
        state.peak = now;
        state.peak_event = step.event;
      }
    }
    if (!step.outcome.ok && step.outcome.error &&
        step.outcome.error->kind == ErrorKind::OutOfMemory) {
      // an `auto` refusal found room nowhere: it is drawn on the CPU, the last resort
      DevicePlacement where = step.operation.device;
      if (where.is_auto()) where = Cpu{};
      const std::size_t slot = slots_.slot_of(where);
      if (slot == states.size()) return;
      DeviceState& state = states[slot];
      ++state.refused;
      if (state.refusals.size() < max_kept_refusals) {
        state.refusals.push_back(
            {step.event, bytes, 1, where_of(frames_, step.trace_event->stack)});
      } else {
        ++state.refusals.back().count;
      }
    }
  }

  /// `device`: the check's device on the replay's devices, as the replayer maps it
  void on_check(std::uint64_t event, const TraceEvent& check, DevicePlacement device) {
    const std::size_t slot = slots_.slot_of(device);
    if (slot == states.size()) return;
    if (check.check_allocated) states[slot].recorded.add(event, *check.check_allocated, "check", 0);
    if (check.check_reserved) states[slot].reserved.add(event, *check.check_reserved, "check", 0);
  }

 private:
  const DeviceSlots& slots_;
  const traces::FrameTable& frames_;

 public:
  std::vector<DeviceState> states;
  ColumnSeries times;
};

/// The report's head: the recording, its budgets, the replay's counts and its first refusal.
Report report_head(const ReportOptions& options, const OpenedTrace& trace, const Budgets& budgets,
                   const traces::ReplaySummary& summary, ColumnSeries& times) {
  Report report;
  report.file = options.file;
  report.source = trace.reader.header().source;
  report.budgets = budgets.description;
  // as choose_budgets decides it: no devices recorded and none asked for
  report.measuring_only = options.profile.empty() && !options.devices.given() &&
                          !trace.reader.header().config && trace.reader.header().profile.empty();
  report.events = summary.events;
  report.operations = summary.operations;
  if (!times.empty()) report.times = times.finish(report.events);
  report.refused = summary.refused;
  report.cpu_fallback_allocations = summary.cpu_fallback_allocations;
  report.cpu_fallback_bytes = summary.cpu_fallback_bytes;
  if (summary.first_refusal) {
    const traces::Refusal& r = *summary.first_refusal;
    report.first_refusal = "event " + std::to_string(r.at.event) + " (" + r.at.trace + ":" +
                           std::to_string(r.at.line) + "), " + grouped(r.bytes) + " bytes (" +
                           format_gib(r.bytes) + " GiB) on " + r.device.to_string() + " with " +
                           grouped(r.available) + " bytes available";
  }
  if (summary.failure) report.failure = summary.failure->to_string();
  traces::ReplaySummary located = summary;
  locate_positions({&trace}, located);
  std::ostringstream lines;
  print_inconsistencies(lines, located, false);
  report.inconsistencies = lines.str();
  return report;
}

/// One device's part of the report: its budget and total, peak, the fit summary's needed,
/// headroom and shortfall, its series and its refusal markers (past max_markers, one per column).
DeviceReport device_report(DeviceState& state, const Budgets& budgets,
                           const traces::Replayer& replayer, const std::vector<DeviceFit>& fits,
                           const ReportOptions& options, Report& report) {
  const traces::ReplaySummary& summary = replayer.summary();
  const MemoryTracker& tracker = replayer.tracker();
  DeviceReport device;
  device.device = state.device;
  device.budget = tracker.limit(state.device);
  device.total = device.budget;
  device.name = state.device.to_string();
  if (state.device.is_gpu()) {
    for (const GpuSpec& gpu : budgets.config.gpus) {
      if (gpu.id != state.device.gpu_id()) continue;
      device.total = gpu.total_bytes;
      if (!gpu.name.empty()) device.name += " " + gpu.name;
    }
  }
  device.peak =
      summary.high_water.count(state.device) ? summary.high_water.at(state.device) : state.peak;
  device.peak_event = state.peak_event;
  for (const DeviceFit& fit : fits) {
    if (fit.device != state.device) continue;
    device.needed = fit.needed;
    device.headroom = fit.headroom();
    device.shortfall = fit.shortfall();
  }
  device.final_bytes = tracker.allocated(state.device);
  device.refused = state.refused;
  device.allocated = state.allocated.finish(report.events);
  if (!state.recorded.empty()) device.recorded = state.recorded.finish(report.events);
  if (!state.reserved.empty()) device.reserved = state.reserved.finish(report.events);
  report.events_per_column = state.allocated.events_per_column(report.events);
  if (state.refusals.size() <= options.max_markers) {
    device.refusals = std::move(state.refusals);
    return device;
  }
  const std::uint64_t width = report.events_per_column;
  for (const RefusalMarker& r : state.refusals) {
    if (!device.refusals.empty() &&
        (device.refusals.back().event - 1) / width == (r.event - 1) / width) {
      device.refusals.back().count += r.count;
    } else {
      device.refusals.push_back(r);
    }
  }
  return device;
}

/**
 * @brief The notes of the allocations a replay has alive, by the event that made them. Events
 * come in ascending order, so each is appended, and found by a binary search. A free costs
 * nothing: once enough entries have been added since the last sweep (twice those it kept, and
 * at least as many as were ever alive), those the replayer no longer lists alive (its book is
 * the truth) are swept out, so memory stays proportional to the most that was alive.
 */
class LiveNotes {
 public:
  LiveNotes(const traces::Replayer& replayer, const std::vector<DevicePlacement>& devices)
      : replayer_(replayer), devices_(devices) {}

  /// Notes `event`'s allocation, alive in the replay. Precondition: `event` is past every event
  /// added before.
  void add(std::uint64_t event, AllocationNotes notes) {
    entries_.push_back({event, std::move(notes)});
    if (entries_.size() >= next_sweep_) sweep();
  }
  /// @return `event`'s notes, or null when it has none
  [[nodiscard]] const AllocationNotes* find(std::uint64_t event) const {
    const auto it = std::lower_bound(entries_.begin(), entries_.end(), event,
                                     [](const Entry& e, std::uint64_t v) { return e.event < v; });
    return it != entries_.end() && it->event == event ? &it->notes : nullptr;
  }

 private:
  struct Entry {
    std::uint64_t event;
    AllocationNotes notes;
  };
  static constexpr std::size_t min_sweep = 4096;  ///< fewer entries are not worth a sweep

  /// Keeps the entries of the allocations the replayer has alive.
  void sweep() {
    std::vector<std::uint64_t> alive;
    for (const DevicePlacement device : devices_) {
      replayer_.for_each_live(
          device, [&alive](const traces::LiveAllocation& live) { alive.push_back(live.event); });
    }
    std::sort(alive.begin(), alive.end());
    auto next = alive.begin();
    const auto gone = std::remove_if(entries_.begin(), entries_.end(), [&](const Entry& e) {
      next = std::lower_bound(next, alive.end(), e.event);
      return next == alive.end() || *next != e.event;
    });
    entries_.erase(gone, entries_.end());
    // A sweep visits the replayer's whole table, which is as large as the most it ever had
    // alive: the next one waits for at least as many new entries.
    most_alive_ = std::max(most_alive_, alive.size());
    next_sweep_ = 2 * entries_.size() + std::max(min_sweep, most_alive_);
  }

  const traces::Replayer& replayer_;
  const std::vector<DevicePlacement>& devices_;
  std::vector<Entry> entries_;  ///< by event ascending
  std::size_t next_sweep_{min_sweep};
  std::size_t most_alive_{0};  ///< the most allocations a sweep found alive
};

/// The device's `largest` allocations alive now (as the replayer has them), largest first (the
/// earliest among equals).
void keep_largest(const traces::Replayer& replayer, const LiveNotes& notes,
                  const traces::FrameTable& frames, std::size_t largest, DeviceReport& device) {
  std::vector<traces::LiveAllocation> all;
  replayer.for_each_live(device.device,
                         [&all](const traces::LiveAllocation& live) { all.push_back(live); });
  device.live_at_peak = all.size();
  const std::size_t keep = std::min(largest, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(keep), all.end(),
                    [](const traces::LiveAllocation& a, const traces::LiveAllocation& b) {
                      return a.bytes != b.bytes ? a.bytes > b.bytes : a.event < b.event;
                    });
  static const AllocationNotes none;
  for (std::size_t i = 0; i < keep; ++i) {
    const AllocationNotes* found = notes.find(all[i].event);
    const AllocationNotes& note = found == nullptr ? none : *found;
    device.largest_at_peak.push_back({all[i].bytes, note.tag, all[i].address, all[i].event,
                                      note.time_ns, where_of(frames, note.stack)});
  }
}

/// Pass 2: replays the recording again (`run`, restarted) up to the last device's peak, and
/// lists what was alive at each device's peak.
Result<void> add_largest_at_peaks(const ReportOptions& options, ReportReplay& run, Report& report) {
  std::uint64_t last_peak_event = 0;
  for (const DeviceReport& d : report.devices)
    last_peak_event = std::max(last_peak_event, d.peak_event);
  if (last_peak_event == 0) return {};  // nothing was ever alive: no peak to list
  if (auto restarted = run.restart(last_peak_event); !restarted) return restarted.error();
  auto& [trace, budgets, replay_options, replayer, slots] = run;
  LiveNotes notes(replayer, slots.devices());
  auto replayed =
      replayer.replay(trace.reader, slots.gpu_map(), [&](const traces::ReplayStep& step) {
        const TraceEvent& event = *step.trace_event;
        if (step.outcome.ok && (event.kind == TraceEvent::Kind::Allocate ||
                                event.kind == TraceEvent::Kind::Baseline)) {
          notes.add(step.event,
                    {event.kind == TraceEvent::Kind::Baseline ? std::string("baseline") : event.tag,
                     event.time_ns, event.stack});
        }
        for (DeviceReport& device : report.devices) {
          if (device.peak_event == step.event) {
            keep_largest(replayer, notes, trace.reader.frames(), options.largest, device);
          }
        }
      });
  if (!replayed) return replayed.error();
  return {};
}

}  // namespace

Result<Report> build_report(const ReportOptions& options) {
  // Pass 1: the series, the peaks, the refusals.
  auto opened = prepare_replay(options);
  if (!opened) return opened.error();
  auto& [trace, budgets, replay_options, replayer, slots] = *opened;
  SeriesPass pass(slots, trace.reader.frames(), options.columns);
  auto replayed = replayer.replay(
      trace.reader, slots.gpu_map(), [&](const traces::ReplayStep& step) { pass.on_step(step); },
      [&](std::uint64_t event, const TraceEvent& check, DevicePlacement device) {
        pass.on_check(event, check, device);
      });
  if (!replayed) return replayed.error();

  Report report = report_head(options, trace, budgets, replayer.summary(), pass.times);
  const std::vector<DeviceFit> fits = fit_summary(replayer);
  for (DeviceState& state : pass.states)
    report.devices.push_back(device_report(state, budgets, replayer, fits, options, report));

  // Pass 2: what was alive at each device's peak.
  if (auto added = add_largest_at_peaks(options, *opened, report); !added) return added.error();
  if (!options.compare.empty()) {
    auto comparison = compare::compare_recordings({options.file, options.compare, options.largest});
    if (!comparison) return comparison.error();
    report.comparison = std::move(*comparison);
  }
  return report;
}

}  // namespace memtrack::cli::report
