/**
 * @file replay.hpp
 * @brief Replaying traces through the production tracker, in lockstep with the reference model,
 * verifying the recording's own checkpoints; the engine behind `memtrack replay` and
 * `memtrack fit`.
 */
#pragma once

#include <memtrack/memory_tracker.hpp>
#include <memtrack/sim/lockstep.hpp>
#include <memtrack/traces/reader.hpp>

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
};

/// Why a replay failed: the production tracker and the model disagreed, or the replay disagreed
/// with the recording's own truth.
struct ReplayFailure {
  enum class Kind : std::uint8_t { Divergence, Checkpoint, Outcome };
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
  std::optional<ReplayFailure> failure;  ///< the replay stops at the first
};

/// One applied operation, for `--states` and reports.
struct ReplayStep {
  std::uint64_t event{0};  ///< 1-based event number in the trace
  const TraceEvent* trace_event{nullptr};
  sim::Operation operation;  ///< as applied (mapped device)
  sim::CoreOutcome outcome;  ///< the production tracker's outcome
  const MemoryTracker* after{nullptr};
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
   * @param on_check called at every `check` event (its 1-based number and the event, device as
   * recorded), verified or not: the recording's own totals, for pictures of them
   * @return nothing (see `summary()`, whose `failure` is set at a divergence or a failed
   * checkpoint), or a `ParseError` for bad input
   */
  Result<void> replay(
      TraceReader& reader, const std::map<std::uint32_t, std::uint32_t>& gpu_map,
      const std::function<void(const ReplayStep&)>& on_step = {},
      const std::function<void(std::uint64_t event, const TraceEvent& check)>& on_check = {});

  [[nodiscard]] const ReplaySummary& summary() const;
  [[nodiscard]] const MemoryTracker& tracker() const;
  /// @return the devices, GPUs ascending then the CPU
  [[nodiscard]] std::vector<DevicePlacement> devices() const;

 private:
  struct State;
  explicit Replayer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

/// @return the GPU map that puts the trace's declared GPUs, ascending, on 0, 1, ...
[[nodiscard]] std::map<std::uint32_t, std::uint32_t> map_onto_first_gpus(const TraceHeader& header);

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
[[nodiscard]] std::optional<std::uint32_t> operation_gpu(const TraceEvent& event);

/// @return the `--states` JSON line for one step (no newline)
[[nodiscard]] std::string state_json(const ReplayStep& step,
                                     const std::vector<DevicePlacement>& devices);

}  // namespace memtrack::traces
