// What replay, fit (and report) share: opening any recording as a canonical trace, and choosing
// the budgets to replay it against.
#pragma once

#include <memtrack/traces/importers.hpp>

#include <CLI/CLI.hpp>
#include <memtrack/traces/reader.hpp>
#include <memtrack/traces/replay.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

namespace memtrack::cli {

/// A recording opened for replay, and how it was opened.
struct OpenedTrace {
  traces::TraceReader reader;
  std::string imported_from;          ///< the source format when it was imported on the fly
  std::set<std::uint32_t> used_gpus;  ///< the GPU ids its operations name
  std::uint64_t events{0};            ///< how many events it has (for progress)
  /// Imported on the fly: 1 + each event's position in the source file (0: unknown), 8 bytes
  /// each in native order (`origin` reads one), and its unit.
  std::shared_ptr<const traces::Spool> origins;
  std::string origin_unit;
  /// By trace GPU id: the device's capacity its first recorded `oom` implies (the bytes the
  /// process had reserved then plus the device's free bytes), where the recording says both.
  std::map<std::uint32_t, std::uint64_t> oom_capacity;
  /// The path it was opened from, and for a recording imported on the fly its canonical trace,
  /// kept in a temporary file (memory stays flat whatever its length; a second replay reads it
  /// again without importing it again).
  std::string path;
  std::shared_ptr<const traces::Spool> imported_trace;

  /// @return 1 + the source position of event `index` (0-based; 0: unknown or not imported)
  [[nodiscard]] Result<std::uint64_t> origin(std::uint64_t index) const;
};

/// @return a fresh reader of an opened trace, from its start (the import is not run again)
Result<traces::TraceReader> reopen(const OpenedTrace& trace);

/// One device's answer to "does it fit": what `fit` prints and `report` draws.
struct DeviceFit {
  DevicePlacement device;
  std::uint64_t budget{0};
  std::uint64_t peak{0};    ///< the replay's peak, within the budget (refusals left out)
  std::uint64_t needed{0};  ///< what the recording needs: its peak with nothing refused
  /// The requested bytes the recording needs (as `needed` under the exact model)
  std::uint64_t requested_needed{0};
  /// Under the pytorch model: `budget`, `peak` and `needed` are reserved bytes + the CUDA context
  bool modelled{false};
  [[nodiscard]] bool fits() const { return needed <= budget; }
  [[nodiscard]] std::uint64_t headroom() const { return fits() ? budget - needed : 0; }
  [[nodiscard]] std::uint64_t shortfall() const { return fits() ? 0 : needed - budget; }
};

/**
 * @brief Per device (GPUs ascending, then the CPU): budget, replayed peak and what is needed
 * (under `auto` placement, where an allocation goes depends on the budgets: the replayed peak).
 */
[[nodiscard]] std::vector<DeviceFit> fit_summary(const traces::Replayer& replayer);

/// @return the files a node spec reads: its parts that are paths, and the built-in profiles'
/// files it names (an output must never replace one)
std::vector<std::filesystem::path> profile_files(const std::string& spec);

/**
 * @brief Points the summary's positions (first refusal, first inconsistency, first operation
 * that landed nowhere, failure) into the user's own files where the traces were imported.
 */
void locate_positions(const std::vector<const OpenedTrace*>& traces,
                      traces::ReplaySummary& summary);

/**
 * @brief Opens a canonical trace, or imports another recording (PyTorch, Kineto, RMM, Nsight)
 * in memory first.
 */
Result<OpenedTrace> open_trace(const std::string& path);

/// The devices a replay runs on.
struct Budgets {
  GpuConfig config;
  std::string description;  ///< "the recording's own devices" or "profile rtx5090 x 2"
  bool recorded{true};      ///< whether these are the recording's own budgets
  /// By GPU id, for a profile's GPUs: the device's CUDA total and its context's bytes (what the
  /// `pytorch` allocator model's capacity comes from).
  std::map<std::uint32_t, std::pair<std::uint64_t, std::uint64_t>> cuda_total_and_context;
  /// Whether the budgets are none ("no budget: measuring only").
  bool unlimited{false};
};

/// `--allocator` and `--alloc-conf` (`fit`, `replay`, `report`).
struct AllocatorFlags {
  std::string allocator;   ///< "exact", "pytorch" or empty: by the recording's source
  std::string alloc_conf;  ///< PYTORCH_CUDA_ALLOC_CONF syntax; empty: the recording's own
};

/// Adds `--allocator` and `--alloc-conf` to a command.
void add_allocator_flags(CLI::App& command, AllocatorFlags& flags);

/**
 * @brief Chooses the allocator model and its settings and limits for a replay: `pytorch` by
 * default for recordings that came from PyTorch (snapshots, Kineto), `exact` otherwise; the
 * settings from `--alloc-conf`, else the recording's `allocator_settings`; each GPU's capacity
 * the profile's CUDA total minus its context, capped by the budget, or, without a budget, what
 * the recording's `oom` implies.
 * @return a `ParseError` for an unknown model or setting (naming it), or `pytorch` asked for with
 * `auto` placement
 */
Result<void> choose_allocator(const OpenedTrace& trace, const Budgets& budgets,
                              const std::map<std::uint32_t, std::uint32_t>& gpu_map,
                              const AllocatorFlags& flags, traces::ReplayOptions& options);

/// Devices given by flags instead of a profile (`fit`, `replay`, `report`).
struct DeviceFlags {
  std::vector<std::string> gpus;         ///< `--gpu ID:TOTAL[,usable=..][,fraction=..][,name=..]`
  std::vector<std::string> gpu_budgets;  ///< `--gpu-budget ID:SIZE`: that GPU's limit, exactly
  std::string fraction;                  ///< `--fraction`
  std::string cpu_limit;                 ///< `--cpu-limit`
  [[nodiscard]] bool given() const;
};

/// Adds `--gpu`, `--gpu-budget`, `--fraction` and `--cpu-limit` to a command.
void add_device_flags(CLI::App& command, DeviceFlags& flags);

/**
 * @brief The budgets the device flags give, or nothing when none was given.
 * @return a `ParseError` for a malformed flag, or flags given beside a profile
 */
Result<std::optional<Budgets>> budgets_from_flags(const DeviceFlags& flags,
                                                  const std::string& profile);

/// Parses `--gpu ID:TOTAL[,usable=SIZE][,fraction=F][,name=TEXT]` (as `memtrack budget` takes it).
Result<GpuSpec> parse_gpu_flag(const std::string& text);

/**
 * @brief The recording's own devices; `profile` (repeated to `gpus`, by default to as many GPUs
 * as the trace uses); or, when the recording declares none and no profile is given, no budget
 * (each device it uses unlimited: measuring only).
 */
Result<Budgets> choose_budgets(const OpenedTrace& trace, const std::string& profile,
                               std::optional<std::uint32_t> gpus, const DeviceFlags& flags = {});

/**
 * @brief A profile's budgets: `profile` repeated to `gpus`, or by default to `declared_gpus`
 * (at least one), when it is a single-GPU profile.
 */
Result<Budgets> profile_budgets(const std::string& profile, std::optional<std::uint32_t> gpus,
                                std::size_t declared_gpus);

/**
 * @brief How the trace's GPU ids map onto the replay's: unchanged on the recording's own devices;
 * else the GPUs the trace uses, ascending, onto the node's (after the explicit `--map` entries).
 * @return the map, or a `ParseError` when the node lacks GPUs the trace uses
 */
Result<std::map<std::uint32_t, std::uint32_t>> gpu_map_for(
    const OpenedTrace& trace, const Budgets& budgets,
    const std::map<std::uint32_t, std::uint32_t>& explicit_map = {});

/**
 * @brief Prints, a line each, the frees the recording got wrong and the operations that landed on
 * no device (nothing when there are none).
 * @param allowed whether `--allow-inconsistent` was given
 */
void print_inconsistencies(std::ostream& out, const traces::ReplaySummary& summary, bool allowed);

/// @return a frame as `file:line in name` (escaped for a terminal by the caller)
std::string describe_frame(const traces::Frame& frame);

/**
 * @return the innermost frame of the user's own code: a Python file outside site-packages,
 * dist-packages and the standard library; else the innermost Python frame; else none
 */
std::optional<std::size_t> user_frame(const std::vector<traces::Frame>& frames);

/**
 * @brief Prints where an allocation was made: the innermost user frame, then (with `count` > 1)
 * the first `count` frames of its stack, innermost first. Prints nothing without frames.
 */
void print_frames(std::ostream& out, const std::vector<traces::Frame>& frames, std::uint32_t count);

/**
 * @brief Prints, under the `pytorch` allocator model, each GPU's allocated and reserved peaks,
 * the fragmentation at the reserved peak, the CUDA context, what the recording's allocator truth
 * verified, and the first OOM as PyTorch would raise it; and any `oom` the recording itself has.
 */
void print_allocator(std::ostream& out, const traces::ReplaySummary& summary,
                     std::uint32_t frames = 1, const std::set<DevicePlacement>& uncapped = {});

/**
 * @brief The modelled devices whose capacity is no budget at all: without budgets the model runs
 * on the tracker's stand-in limit (a capacity a recorded OOM implies differs from it, and is real).
 * `print_allocator` prints "no limit" for them, and the JSON a null capacity.
 */
[[nodiscard]] std::set<DevicePlacement> uncapped_devices(const Budgets& budgets,
                                                         const MemoryTracker& tracker,
                                                         const traces::ReplaySummary& summary);

/**
 * @brief Parses `--map` entries: `gpu:1=gpu:0` puts the trace's gpu:1 on the node's gpu:0.
 * @return the map, or a `ParseError` naming the entry
 */
Result<std::map<std::uint32_t, std::uint32_t>> parse_gpu_map(
    const std::vector<std::string>& entries);

}  // namespace memtrack::cli
