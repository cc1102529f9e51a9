/**
 * @file shared_memory_tracker.hpp
 * @brief `SharedMemoryTracker`: the thread-safe tracker a model registry shares between threads.
 */
#pragma once

#include <memtrack/memory_tracker.hpp>

#include <shared_mutex>

namespace memtrack {

/**
 * @brief A `MemoryTracker` behind a reader-writer lock: queries take it shared, changes exclusive.
 *
 * `allocate` checks and records under one exclusive lock, so two threads can never both see room
 * for the last bytes: there is no window between the check and the record. (`can_allocate`
 * followed by `allocate` is still two steps; use `allocate`'s result, not `can_allocate`, to
 * decide.)
 */
class SharedMemoryTracker {
 public:
  explicit SharedMemoryTracker(MemoryTracker tracker) : tracker_(std::move(tracker)) {}

  SharedMemoryTracker(const SharedMemoryTracker&) = delete;
  SharedMemoryTracker& operator=(const SharedMemoryTracker&) = delete;

  /// @copydoc MemoryTracker::can_allocate
  [[nodiscard]] bool can_allocate(DevicePlacement placement, std::uint64_t bytes) const;
  /// @copydoc MemoryTracker::allocate
  Result<DevicePlacement> allocate(DevicePlacement placement, std::uint64_t bytes);
  /// @copydoc MemoryTracker::deallocate
  Result<void> deallocate(DevicePlacement placement, std::uint64_t bytes);
  [[nodiscard]] std::uint64_t available(DevicePlacement placement) const;
  [[nodiscard]] std::uint64_t allocated(DevicePlacement placement) const;
  [[nodiscard]] std::uint64_t peak(DevicePlacement placement) const;
  [[nodiscard]] std::uint64_t limit(DevicePlacement placement) const;
  [[nodiscard]] std::uint64_t allocation_count(DevicePlacement placement) const;
  void reset_peak();
  Result<void> reset_peak(DevicePlacement placement);
  [[nodiscard]] MemorySummary summary() const;
  [[nodiscard]] Result<GpuMemoryInfo> gpu_info(std::uint32_t gpu_id) const;

  /// Attaches an observer; it is called under the exclusive lock, one event at a time, in the
  /// order the operations took effect.
  void set_observer(MemoryObserver* observer);

  /// @return a consistent copy of the whole tracker (without the observer), under the shared lock
  [[nodiscard]] MemoryTracker snapshot() const;

 private:
  mutable std::shared_mutex mutex_;
  MemoryTracker tracker_;  ///< Guarded by mutex_.
};

}  // namespace memtrack
