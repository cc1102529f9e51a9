/**
 * @file replay.hpp
 * @brief Replaying traces through the production tracker, in lockstep with the reference model,
 * verifying the recording's own checkpoints; the engine behind `memtrack replay` and
 * `memtrack fit`.
 */
#pragma once

#include <memtrack/memory_tracker.hpp>
#include <memtrack/sim/allocators/pytorch_model.hpp>
#include <memtrack/sim/lockstep.hpp>
#include <memtrack/traces/reader.hpp>

#include <bitset>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace memtrack::traces {

/// Where a replay puts allocations.
enum class Placement : std::uint8_t {
  Recorded,  ///< on the device the trace names (mapped onto the replay's GPUs)
  Auto,      ///< every GPU allocation on `auto`: the first GPU with room, else the CPU
};

/// How to replay.
/// How device memory answers allocations during a replay (docs/allocator-model.md).
enum class AllocatorModel : std::uint8_t {
  exact,    ///< requested bytes against the budget: the tracker alone
  pytorch,  ///< PyTorch's CUDA caching allocator on every GPU (the CPU stays exact)
};

/// @return "exact" or "pytorch"
[[nodiscard]] std::string_view to_string(AllocatorModel model) noexcept;

/// What the `pytorch` model needs to know of the replay.
struct PytorchReplayOptions {
  sim::allocators::AllocatorSettings settings;
  /**
   * By replay GPU id: the bytes cudaMalloc may hand the process (the device's CUDA total minus
   * its context, capped by the budget) and the device total. A GPU not named gets its tracker
   * limit as both.
   */
  std::map<std::uint32_t, sim::allocators::DeviceLimits> limits;
  /// By replay GPU id: the CUDA context's bytes, counted in what a device needs.
  std::map<std::uint32_t, std::uint64_t> context_bytes;
  /**
   * Whether the capacities are the recording's own (taken from its `oom` event): then a recorded
   * `oom` must be reproduced, and not reproducing it is a failure.
   */
  bool recorded_capacity{false};
  /// Whether the recording's allocator truth is checked: only when the settings are the
  /// recording's own (under other settings its segments are not the model's to reproduce).
  bool verify{true};
};

struct ReplayOptions {
  /// Compare every operation with the reference model (off: the production tracker alone).
  bool lockstep{true};
  Placement placement{Placement::Recorded};
  /**
   * Whether the budgets are the recording's own. Then the recording's outcomes (an allocation
   * it made, one it refused, where `auto` went) must be reproduced exactly; a difference is a
   * failure. With other budgets a difference is the answer (a refusal), not a failure.
   */
  bool recorded_budgets{true};
  AllocatorModel allocator{AllocatorModel::exact};
  PytorchReplayOptions pytorch;  ///< with `AllocatorModel::pytorch`
  /// The replay of a trace stops after its event of this number (1-based), as if the trace
  /// ended there but without the end's checks (what is still allocated is not a leak); 0: it
  /// replays every event. For a second pass that needs nothing past a point the first found.
  std::uint64_t last_event{0};
};

/// Where a trace position is.
struct TracePosition {
  std::string trace;       ///< the file
  std::uint64_t event{0};  ///< 1-based event number in that trace
  std::uint64_t line{0};   ///< its line
  /// Where the event came from in the user's own file, when the trace was imported on the fly
  /// (`snap.json traceEvents index 8123`); set by the caller that knows it, else empty.
  std::string origin;

  /// @return `origin (trace line N)` when the origin is known, else `FILE:LINE`
  [[nodiscard]] std::string to_string() const;
};

/// The first allocation the replay refused.
struct Refusal {
  TracePosition at;
  std::uint64_t bytes{0};
  DevicePlacement device{};    ///< the device asked for (after mapping; `auto` under auto)
  std::uint64_t available{0};  ///< available(device) at that moment
  std::string event_text;      ///< the event's line as the trace has it
  /// the event's call stack, innermost first, where the trace records it (at most 256 frames)
  std::vector<Frame> frames;
};

/// Why a replay failed: the production tracker and the model disagreed, or the replay disagreed
/// with the recording's own truth.
struct ReplayFailure {
  enum class Kind : std::uint8_t { Divergence, Checkpoint, Outcome, Allocator };
  Kind kind{Kind::Divergence};
  TracePosition at;
  std::string event_text;
  std::string what;
  std::string core_state;
  std::string reference_state;  ///< empty without lockstep

  /// @return a multi-line report: where, what, and both states
  [[nodiscard]] std::string to_string() const;
};

/**
 * @brief A free the recording itself gets wrong: a double free, a free of memory it never
 * allocated (on a device with no baseline of memory from before the recording), a free with
 * neither a size nor a known address, or one that frees more than the device has allocated
 * (which the recording did not refuse). Such frees are counted and not applied: the memory they
 * name stays allocated, so a verdict never rests on memory the recording did not free.
 */
struct Inconsistency {
  TracePosition at;
  std::string event_text;
  std::string what;
};

/// What a replay counted.
/// The first allocation the `pytorch` model refused, as PyTorch would raise it.
struct ModelOutOfMemory {
  TracePosition at;
  std::string event_text;
  std::uint32_t gpu{0};  ///< the replay's GPU id
  sim::allocators::OutOfMemory figures;
  std::vector<Frame> frames;  ///< the event's call stack, innermost first, when recorded

  /// @return PyTorch's message ("CUDA out of memory. Tried to allocate ...")
  [[nodiscard]] std::string message() const { return figures.message(static_cast<int>(gpu)); }
};

/// An `oom` the recording itself contains (PyTorch's OutOfMemoryError at that point).
struct RecordedOutOfMemory {
  TracePosition at;
  std::string event_text;
  DevicePlacement device{};  ///< as recorded
  std::uint64_t requested{0};
  std::uint64_t device_free{0};
  std::optional<std::uint64_t> reserved;
  /// Under `pytorch` with the recording's capacity: whether the model refused it too
  std::optional<bool> reproduced;
};

/// One GPU under the `pytorch` model (figures in bytes; peaks ignore resets).
struct ModelledDevice {
  std::uint64_t capacity{0};        ///< what cudaMalloc could hand the process
  std::uint64_t context_bytes{0};   ///< the CUDA context, beside `capacity`
  std::uint64_t allocated_peak{0};  ///< the blocks handed out (after rounding), at most
  std::uint64_t reserved_peak{0};   ///< the segments held from the driver, at most
  std::uint64_t allocated_at_reserved_peak{0};
  std::uint64_t largest_free_at_reserved_peak{0};  ///< the largest cached block then
  std::uint64_t reserved_final{0};
  std::uint64_t allocated_final{0};
  /**
   * The reserved peak had nothing been refused (the same settings on a device without limit); with
   * `context_bytes`, what the device needs.
   */
  std::uint64_t reserved_needed{0};
  std::uint64_t refused{0};  ///< allocations the model refused
  // What the recording's allocator truth verified (on a device whose replay kept to the recording)
  bool verifying{false};  ///< the trace carries this device's segments (events or a layout)
  std::uint64_t addresses_verified{0};  ///< allocations placed at the recorded address
  std::uint64_t segment_events_verified{0};
  std::uint64_t layout_segments_verified{0};
  std::uint64_t layout_blocks_verified{0};
  std::uint64_t layouts_skipped{0};            ///< after the replay departed from the recording
  std::uint64_t start_blocks_undetermined{0};  ///< from `layout start undetermined=`
  std::uint64_t reserved_checks_verified{0};   ///< `check reserved=` equal to the model's
  /// `check reserved=` that cannot be verified: the recording began mid-run without a layout
  std::uint64_t reserved_checks_undetermined{0};
  /// The most the recording's own `check reserved=` said, when it has them
  std::uint64_t recorded_reserved_peak{0};
};

struct ReplaySummary {
  std::uint64_t events{0};      ///< every event read
  std::uint64_t operations{0};  ///< baseline, alloc, free, reset_peak
  std::uint64_t ok{0};
  std::uint64_t refused{0};       ///< OutOfMemory
  std::uint64_t other_errors{0};  ///< UnknownDevice, InvalidDeallocation, ...
  std::uint64_t checkpoints_verified{0};
  std::uint64_t checkpoints_skipped{0};  ///< on a device whose replay departed from the recording
  std::uint64_t outcome_differences{0};  ///< outcomes unlike the recording's (other budgets)
  std::uint64_t marks{0};
  std::uint64_t frees_by_address{0};         ///< frees whose allocation was found by address
  std::uint64_t frees_of_unseen_address{0};  ///< address never allocated in the trace; by size
  std::uint64_t frees_unresolved{
      0};  ///< no size and an unknown address: not applied (inconsistent)
  std::uint64_t frees_of_refused{0};  ///< of an allocation the replay refused: skipped
  std::uint64_t inconsistencies{0};   ///< frees the recording got wrong (not applied)
  std::optional<Inconsistency> first_inconsistency;
  /// Operations on a device the replay's node does not have (and the recording did not refuse):
  /// they did not land anywhere, so the replay is not whole.
  std::uint64_t unlanded{0};
  std::optional<Inconsistency> first_unlanded;
  std::uint64_t cpu_fallback_allocations{0};  ///< `auto` allocations that went to the CPU
  std::uint64_t cpu_fallback_bytes{0};        ///< their bytes, summed over the run (saturating)
  std::map<DevicePlacement, std::uint64_t> high_water;  ///< max allocated seen, resets ignored
  /**
   * What each device needs: the most it would have held had nothing been refused (every
   * allocation counted where the recording put it, its free applied), resets ignored; the
   * answer to "how much memory does this recording need". Recorded placement only (empty under
   * `auto`, where where an allocation goes depends on the budgets). Saturates at 2^64 - 1.
   */
  std::map<DevicePlacement, std::uint64_t> needed;
  std::optional<Refusal> first_refusal;
  AllocatorModel allocator{AllocatorModel::exact};
  std::map<DevicePlacement, ModelledDevice> modelled;  ///< GPUs, under `pytorch`
  /// `auto` allocations the recording did not place (refused there): accounted exactly, outside
  /// the allocator model
  std::uint64_t unmodelled{0};
  std::optional<ModelOutOfMemory> first_model_oom;  ///< under `pytorch`
  std::uint64_t recorded_ooms{0};
  std::optional<RecordedOutOfMemory> first_recorded_oom;
  std::optional<ReplayFailure> failure;  ///< the replay stops at the first
};

/// One applied operation, for `--states` and reports.
struct ReplayStep {
  std::uint64_t event{0};  ///< 1-based event number in the trace
  const TraceEvent* trace_event{nullptr};
  sim::Operation operation;  ///< as applied (mapped device)
  sim::CoreOutcome outcome;  ///< the production tracker's outcome
  const MemoryTracker* after{nullptr};
  /// For a free: the event that made the allocation it released (see `Replayer::live`); 0 when
  /// it released none the replay knows (a free the tracker refused)
  std::uint64_t released{0};
  /// Whether it took only part of that allocation (a baseline), which stays alive with the rest
  bool released_part{false};
};

/**
 * @brief An allocation alive in the replay: made by the trace being replayed (or last replayed)
 * and not freed since.
 *
 * How a free finds what it releases: by its address when the allocation had one; else (a free
 * by size, or of an address the recording never allocated) by size on its device: memory from
 * before the recording (the device's baselines, latest first) for an address never allocated,
 * else the latest allocation of exactly that size made without an address, else (recorded
 * placement) the latest made with an address, else the baselines. A baseline a free takes part of
 * stays with what is left of it, so the bytes alive on a device are what the tracker says it has
 * allocated.
 */
struct LiveAllocation {
  std::uint64_t event{0};  ///< the event that made it (1-based, in its trace)
  std::uint64_t bytes{0};  ///< what it holds now
  std::optional<std::uint64_t> address;

  friend bool operator==(const LiveAllocation&, const LiveAllocation&) = default;
};

/**
 * @brief Replays traces, one after another, on one set of devices.
 *
 * Several traces share the devices: what one leaves allocated stays while the next runs (a
 * model set loaded in turn).
 */
class Replayer {
 public:
  /// @return a replayer over `config`, or `InvalidConfig`
  [[nodiscard]] static Result<Replayer> create(const GpuConfig& config, ReplayOptions options);

  Replayer(Replayer&&) noexcept;
  Replayer& operator=(Replayer&&) noexcept;
  Replayer(const Replayer&) = delete;
  Replayer& operator=(const Replayer&) = delete;
  ~Replayer();

  /**
   * @brief Replays every event of `reader`.
   * @param gpu_map the trace's GPU ids to the replay's (ids not in it are used as they are)
   * @param on_step called after every applied operation
   * @param on_check called at every `check` event (its 1-based number, the event with its device
   * as recorded, and that device on the replay's devices), verified or not: the recording's own
   * totals, for pictures of them
   * @return nothing (see `summary()`, whose `failure` is set at a divergence or a failed
   * checkpoint), or a `ParseError` for bad input
   */
  Result<void> replay(TraceReader& reader, const std::map<std::uint32_t, std::uint32_t>& gpu_map,
                      const std::function<void(const ReplayStep&)>& on_step = {},
                      const std::function<void(std::uint64_t event, const TraceEvent& check,
                                               DevicePlacement device)>& on_check = {});

  [[nodiscard]] const ReplaySummary& summary() const;
  [[nodiscard]] const MemoryTracker& tracker() const;
  /// @return the devices, GPUs ascending then the CPU
  [[nodiscard]] std::vector<DevicePlacement> devices() const;

  /**
   * @brief Calls `visit` for every allocation alive on `device` (a replay device) now, in no
   * particular order: during a replay (from `on_step`) or after it. What earlier traces left
   * allocated is counted by the tracker but not listed (each replay starts its own book).
   */
  void for_each_live(DevicePlacement device,
                     const std::function<void(const LiveAllocation&)>& visit) const;
  /// @return the allocations alive on `device` now, by event ascending
  [[nodiscard]] std::vector<LiveAllocation> live(DevicePlacement device) const;

 private:
  struct State;
  explicit Replayer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

/**
 * @brief The GPU map that puts the GPUs a recording uses, ascending, on the node's GPUs,
 * ascending; `explicit_map` entries (`--map gpu:1=gpu:0`) first.
 * @return the map, or a `ParseError` when the node has fewer GPUs than the recording uses (naming
 * what is missing) or an explicit entry names a GPU the node lacks
 */
[[nodiscard]] Result<std::map<std::uint32_t, std::uint32_t>> map_used_gpus(
    const std::set<std::uint32_t>& used, const GpuConfig& node,
    const std::map<std::uint32_t, std::uint32_t>& explicit_map = {});

/**
 * @brief Reads a trace to its end and collects the GPU ids its operations name.
 * @return the ids, or the reader's error
 */
[[nodiscard]] Result<std::set<std::uint32_t>> used_gpus(TraceReader& reader);

/// @return the GPU an operation event (alloc, free, baseline, reset_peak of one device) names
[[nodiscard]] inline std::optional<std::uint32_t> operation_gpu(const TraceEvent& event) {
  const bool operation =
      event.kind == TraceEvent::Kind::Baseline || event.kind == TraceEvent::Kind::Allocate ||
      event.kind == TraceEvent::Kind::Free || event.kind == TraceEvent::Kind::ResetPeak;
  if (operation && event.device.is_gpu()) return event.device.gpu_id();
  return std::nullopt;
}

/**
 * @brief The GPU ids a trace's operations name, collected event by event (a pre-scan sees every
 * event, and nearly every one names an id already seen): ids below 1024 are marked in a bitmap
 * first, and only a new one is inserted into the set.
 */
class UsedGpus {
 public:
  /// Adds the GPU `event` names, if it is an operation on one (`operation_gpu`).
  void note(const TraceEvent& event) {
    const auto gpu = operation_gpu(event);
    if (!gpu) return;
    if (*gpu < seen_.size()) {
      if (seen_[*gpu]) return;
      seen_[*gpu] = true;
    }
    ids_.insert(*gpu);
  }
  [[nodiscard]] const std::set<std::uint32_t>& ids() const { return ids_; }

 private:
  std::bitset<1024> seen_;
  std::set<std::uint32_t> ids_;
};

}  // namespace memtrack::traces
