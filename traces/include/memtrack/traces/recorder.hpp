/**
 * @file recorder.hpp
 * @brief Recording from production: a `MemoryObserver` that writes every operation of a
 * `MemoryTracker` or `SharedMemoryTracker` to a canonical trace.
 *
 *     auto recorder =
 *         memtrack::traces::TraceRecorder::create("run.trace.zst", config, "my-server");
 *     tracker.set_observer(recorder->get());
 *     ...
 *     tracker.set_observer(nullptr);
 *     auto ok = (*recorder)->finish();
 *
 * With `SharedMemoryTracker` the observer is called under the tracker's exclusive lock, so the
 * trace has the operations in the order they took effect; the recorder also locks itself, so one
 * recorder may observe several trackers.
 */
#pragma once

#include <memtrack/gpu_config.hpp>
#include <memtrack/memory_tracker.hpp>
#include <memtrack/observer.hpp>
#include <memtrack/traces/operations.hpp>
#include <memtrack/traces/writer.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace memtrack::traces {

/// How a recorder writes.
struct RecorderOptions {
  /// Write `t=` (nanoseconds since the recorder was created) on every event.
  bool timestamps{true};
  /// Every this many operations, write a `check` of every device's allocated bytes (0: never).
  std::uint64_t checkpoint_every{0};
  /// A tag written on every event (e.g. the model or service name); no blanks.
  std::string tag;
};

class TraceRecorder final : public MemoryObserver {
 public:
  /**
   * @brief Starts a trace whose header declares `config` (the tracker's devices and budgets).
   * @param source free text saying what is being recorded
   */
  [[nodiscard]] static Result<std::unique_ptr<TraceRecorder>> create(
      const std::filesystem::path& path, const GpuConfig& config, std::string source,
      RecorderOptions options = {});

  void on_event(const ObservedEvent& event, const MemoryTracker& after) noexcept override;

  /**
   * @brief Writes the trailer and renames the trace into place. Detach the recorder first.
   * @return nothing, or the first error met while recording (the trace is then not written)
   */
  Result<void> finish();

  /// @return how many events were written
  [[nodiscard]] std::uint64_t events() const;

 private:
  TraceRecorder(TraceWriter writer, RecorderOptions options)
      : writer_(std::move(writer)), options_(std::move(options)) {}
  void write(const TraceEvent& event);

  mutable std::mutex mutex_;
  TraceWriter writer_;
  RecorderOptions options_;
  std::chrono::steady_clock::time_point start_{std::chrono::steady_clock::now()};
  std::uint64_t operations_{0};
  std::optional<Error> error_;
};

}  // namespace memtrack::traces
