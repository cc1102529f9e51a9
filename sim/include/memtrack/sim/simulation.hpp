/**
 * @file simulation.hpp
 * @brief Runs a workload on a node through the production tracker, alone or in lockstep with the
 * reference model, and on a divergence shrinks the failing sequence to a minimal scenario.
 */
#pragma once

#include <memtrack/sim/lockstep.hpp>
#include <memtrack/sim/scenario.hpp>
#include <memtrack/sim/shrink.hpp>
#include <memtrack/sim/workload.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace memtrack::sim {

struct SimulationOptions {
  std::string workload{"registry"};
  std::uint64_t seed{1};
  std::uint64_t operations{1'000'000};
  bool lockstep{true};
  /// Called every few thousand operations with the count done so far.
  std::function<void(std::uint64_t done)> progress;
  /// At most this many candidate runs when shrinking a divergence.
  std::size_t shrink_budget{4000};
  /// Attached to the production tracker for the run (e.g. a trace recorder); not owned.
  MemoryObserver* observer{nullptr};
};

/// Per-device figures at the end of a run.
struct DeviceStats {
  DevicePlacement device;
  std::uint64_t limit{0};
  std::uint64_t peak{0};
  std::uint64_t final_allocated{0};
};

/// What a simulation did.
struct SimulationResult {
  std::uint64_t operations{0};
  double seconds{0};
  std::uint64_t ok{0};               ///< operations that succeeded
  std::uint64_t refused{0};          ///< allocations refused (OutOfMemory)
  std::uint64_t fallback_to_cpu{0};  ///< auto allocations that went to the CPU on a GPU node
  std::uint64_t other_errors{0};     ///< unknown device, invalid deallocation, ambiguous device
  std::vector<DeviceStats> devices;  ///< GPUs by id, then the CPU
  std::uint64_t total_peak{0};
  std::optional<Divergence> divergence;  ///< the first disagreement, if any
  std::optional<Scenario> minimal;       ///< the failing sequence, shrunk

  /**
   * @brief Counts one operation's outcome in `ok`, `refused`, `fallback_to_cpu` and
   * `other_errors`.
   * @param gpu_node whether the node has GPUs (then an `auto` allocation on the CPU fell back)
   */
  void count(const Operation& operation, const CoreOutcome& outcome, bool gpu_node);

  /// Takes the final figures of `tracker` on `placements` (ascending: the CPU first), GPUs first.
  template <CheckableTracker Tracker>
  void take_figures(const Tracker& tracker, const std::vector<DevicePlacement>& placements) {
    for (const DevicePlacement d : placements) {
      devices.push_back({d, tracker.limit(d), tracker.peak(d), tracker.allocated(d)});
    }
    // GPUs first, then the CPU.
    std::rotate(devices.begin(), devices.begin() + 1, devices.end());
    total_peak = tracker.peak(Auto{});
  }
};

/// Derives the seed of shard `index`: distinct per shard and reproducible.
[[nodiscard]] std::uint64_t shard_seed(std::uint64_t seed, std::uint64_t index);

/**
 * @brief Runs `options.workload` on `config`.
 * @return the result, or a `ParseError` for an unknown workload / `InvalidConfig`
 */
template <CheckableTracker Tracker = MemoryTracker>
Result<SimulationResult> run_simulation(const GpuConfig& config, const SimulationOptions& options) {
  auto workload = make_workload(options.workload, options.seed);
  if (!workload) return workload.error();
  SimulationResult result;
  Scenario executed{config, {}};
  std::vector<DevicePlacement> devices;
  std::optional<LockstepChecker<Tracker>> checker;
  std::optional<Tracker> alone;
  if (options.lockstep) {
    auto start = LockstepChecker<Tracker>::create(config);
    if (start.divergence) {
      result.divergence = start.divergence;
      result.minimal = executed;
      return result;
    }
    if (!start.checker) return *start.rejection;
    checker.emplace(std::move(*start.checker));
  } else {
    auto created = Tracker::create(config);
    if (!created) return created.error();
    alone.emplace(std::move(*created));
  }
  Tracker& mutable_tracker = checker ? checker->mutable_core() : *alone;
  constexpr bool observable = requires(MemoryObserver * o) {
    mutable_tracker.set_observer(o);
  };
  if constexpr (observable) {
    if (options.observer != nullptr) mutable_tracker.set_observer(options.observer);
  }
  const Tracker& tracker = mutable_tracker;
  devices.push_back(Cpu{});
  for (const GpuSpec& gpu : config.gpus)
    devices.push_back(Gpu{gpu.id});
  std::sort(devices.begin(), devices.end());
  const TrackerViewOf<Tracker> view(tracker, devices);
  const bool has_gpus = !config.gpus.empty();

  const auto started = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < options.operations; ++i) {
    const auto operation = (*workload)->next(view);
    if (!operation) break;
    CoreOutcome outcome;
    if (checker) {
      executed.operations.push_back(*operation);
      if (auto divergence = checker->apply(*operation)) {
        result.divergence = std::move(divergence);
        ++result.operations;
        break;
      }
      outcome = checker->last_core_outcome();
    } else {
      outcome = apply_to_core(*alone, *operation);
    }
    ++result.operations;
    (*workload)->observe(*operation, outcome);
    result.count(*operation, outcome, has_gpus);
    if (options.progress && (i & 4095U) == 4095U) options.progress(i + 1);
  }
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  result.take_figures(tracker, devices);
  if constexpr (observable) {
    if (options.observer != nullptr) mutable_tracker.set_observer(nullptr);
  }
  if (result.divergence) {
    result.minimal = shrink_scenario(
        executed, [](const Scenario& s) { return run_scenario<Tracker>(s).has_value(); },
        options.shrink_budget);
  }
  return result;
}

}  // namespace memtrack::sim
