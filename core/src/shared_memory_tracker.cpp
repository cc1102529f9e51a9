#include <memtrack/shared_memory_tracker.hpp>

#include <mutex>

namespace memtrack {

bool SharedMemoryTracker::can_allocate(DevicePlacement placement, std::uint64_t bytes) const {
  const std::shared_lock lock(mutex_);
  return tracker_.can_allocate(placement, bytes);
}

Result<DevicePlacement> SharedMemoryTracker::allocate(DevicePlacement placement,
                                                      std::uint64_t bytes) {
  // Check and record under one exclusive lock: no other thread can take the room in between.
  // The observer, if any, is told under the same lock, so events arrive in order.
  const std::unique_lock lock(mutex_);
  return tracker_.allocate(placement, bytes);
}

Result<void> SharedMemoryTracker::deallocate(DevicePlacement placement, std::uint64_t bytes) {
  const std::unique_lock lock(mutex_);
  return tracker_.deallocate(placement, bytes);
}

std::uint64_t SharedMemoryTracker::available(DevicePlacement placement) const {
  const std::shared_lock lock(mutex_);
  return tracker_.available(placement);
}

std::uint64_t SharedMemoryTracker::allocated(DevicePlacement placement) const {
  const std::shared_lock lock(mutex_);
  return tracker_.allocated(placement);
}

std::uint64_t SharedMemoryTracker::peak(DevicePlacement placement) const {
  const std::shared_lock lock(mutex_);
  return tracker_.peak(placement);
}

std::uint64_t SharedMemoryTracker::limit(DevicePlacement placement) const {
  const std::shared_lock lock(mutex_);
  return tracker_.limit(placement);
}

std::uint64_t SharedMemoryTracker::allocation_count(DevicePlacement placement) const {
  const std::shared_lock lock(mutex_);
  return tracker_.allocation_count(placement);
}

void SharedMemoryTracker::reset_peak() {
  const std::unique_lock lock(mutex_);
  tracker_.reset_peak();
}

Result<void> SharedMemoryTracker::reset_peak(DevicePlacement placement) {
  const std::unique_lock lock(mutex_);
  return tracker_.reset_peak(placement);
}

MemorySummary SharedMemoryTracker::summary() const {
  const std::shared_lock lock(mutex_);
  return tracker_.summary();
}

Result<GpuMemoryInfo> SharedMemoryTracker::gpu_info(std::uint32_t gpu_id) const {
  const std::shared_lock lock(mutex_);
  return tracker_.gpu_info(gpu_id);
}

void SharedMemoryTracker::set_observer(MemoryObserver* observer) {
  const std::unique_lock lock(mutex_);
  tracker_.set_observer(observer);
}

MemoryTracker SharedMemoryTracker::snapshot() const {
  const std::shared_lock lock(mutex_);
  return tracker_;
}

}  // namespace memtrack
