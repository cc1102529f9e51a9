/**
 * @file observer.hpp
 * @brief `MemoryObserver`: an optional hook that sees every change operation of a tracker, after
 * it happened, with its outcome. Recorders (the traces library) build on it.
 */
#pragma once

#include <memtrack/device_placement.hpp>
#include <memtrack/error.hpp>

#include <cstdint>
#include <optional>

namespace memtrack {

class MemoryTracker;

/// One operation as a tracker applied it.
struct ObservedEvent {
  enum class Kind : std::uint8_t { Allocate, Deallocate, ResetPeakAll, ResetPeak };

  Kind kind{Kind::Allocate};
  DevicePlacement requested{};              ///< the placement the caller named
  std::uint64_t bytes{0};                   ///< allocate / deallocate size
  std::optional<DevicePlacement> resolved;  ///< where a successful allocation went
  const Error* error{nullptr};              ///< the error when the operation failed, else null
};

/**
 * @brief Receives every allocate, deallocate and reset_peak of the tracker it is attached to.
 *
 * Called after the operation, with the tracker in its new state (for a failed operation, the
 * unchanged state). With `SharedMemoryTracker` it is called under the exclusive lock, so events
 * arrive one at a time in the order the operations took effect. It must not call back into the
 * tracker's changing operations.
 */
class MemoryObserver {
 public:
  virtual ~MemoryObserver() = default;
  virtual void on_event(const ObservedEvent& event, const MemoryTracker& after) noexcept = 0;
};

namespace detail {
/// Holds a tracker's observer. Copies of a tracker start without one: a snapshot must not
/// report into its original's recording.
class ObserverSlot {
 public:
  ObserverSlot() = default;
  ObserverSlot(const ObserverSlot& /*other*/) noexcept {}
  ObserverSlot(ObserverSlot&& other) noexcept : observer_(other.observer_) {
    other.observer_ = nullptr;
  }
  ObserverSlot& operator=(const ObserverSlot& /*other*/) noexcept {
    observer_ = nullptr;
    return *this;
  }
  ObserverSlot& operator=(ObserverSlot&& other) noexcept {
    observer_ = other.observer_;
    other.observer_ = nullptr;
    return *this;
  }
  ~ObserverSlot() = default;

  [[nodiscard]] MemoryObserver* get() const noexcept { return observer_; }
  void set(MemoryObserver* observer) noexcept { observer_ = observer; }

 private:
  MemoryObserver* observer_{nullptr};
};
}  // namespace detail

}  // namespace memtrack
