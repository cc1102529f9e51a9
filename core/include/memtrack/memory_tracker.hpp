/**
 * @file memory_tracker.hpp
 * @brief `MemoryTracker`: byte-exact accounts of GPU and CPU memory, refusing what exceeds a
 * budget.
 *
 * The contract is `docs/semantics.md` (rules 1-9); comments below cite its rule numbers.
 */
#pragma once

#include <memtrack/device_placement.hpp>
#include <memtrack/error.hpp>
#include <memtrack/gpu_config.hpp>
#include <memtrack/observer.hpp>
#include <memtrack/result.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

namespace memtrack {

/// One GPU's account, as returned by `MemoryTracker::gpu_info`.
struct GpuMemoryInfo {
  std::uint64_t allocated{0};         ///< allocated(gpu)
  std::uint64_t peak{0};              ///< peak(gpu)
  std::uint64_t allocation_count{0};  ///< count(gpu): live allocations, saturating

  friend bool operator==(const GpuMemoryInfo&, const GpuMemoryInfo&) = default;
};

/// Every device at once, as returned by `MemoryTracker::summary`.
struct MemorySummary {
  std::map<std::uint32_t, std::uint64_t> gpu_allocated;  ///< by GPU id
  std::map<std::uint32_t, std::uint64_t> gpu_available;  ///< by GPU id
  std::uint64_t cpu_allocated{0};
  std::uint64_t cpu_available{0};
  std::uint64_t total_peak{0};

  friend bool operator==(const MemorySummary&, const MemorySummary&) = default;
};

class SharedMemoryTracker;

/**
 * @brief Tracks allocated, peak and live-allocation count per device against exact budgets.
 *
 * Not thread-safe; see `SharedMemoryTracker`. Every operation that fails changes nothing
 * (rule 6), and no value can wrap: `create` refuses configs whose limits sum past 2^64 - 1, and
 * allocated(d) <= limit(d) always holds.
 */
class MemoryTracker {
 public:
  /**
   * @brief Validates `config` (rule 2) and computes each device's limit exactly (rule 1).
   * @return the tracker, or `ErrorKind::InvalidConfig`
   */
  [[nodiscard]] static Result<MemoryTracker> create(GpuConfig config);

  /// @return whether `allocate(placement, bytes)` would succeed: bytes <= available(placement)
  /// (rule 7); false for an unknown GPU (rule 3)
  [[nodiscard]] bool can_allocate(DevicePlacement placement, std::uint64_t bytes) const noexcept;

  /**
   * @brief Records an allocation of `bytes` (0 is legal) on `placement` (rule 4).
   * @return the device used (`Auto` resolves to the lowest-id GPU with room, else the CPU), or
   * `UnknownDevice` / `OutOfMemory`; on error nothing changed
   */
  Result<DevicePlacement> allocate(DevicePlacement placement, std::uint64_t bytes);

  /**
   * @brief Records that `bytes` were freed on a concrete device (rule 5).
   * @return nothing, or `AmbiguousDevice` (auto), `UnknownDevice`, `InvalidDeallocation`
   */
  Result<void> deallocate(DevicePlacement placement, std::uint64_t bytes);

  /// @return limit(d) - allocated(d); for `Auto` the largest available of any device (rule 7);
  /// 0 for an unknown GPU
  [[nodiscard]] std::uint64_t available(DevicePlacement placement) const noexcept;
  /// @return allocated(d); for `Auto` the sum over all devices; 0 for an unknown GPU
  [[nodiscard]] std::uint64_t allocated(DevicePlacement placement) const noexcept;
  /// @return peak(d); for `Auto` total_peak; 0 for an unknown GPU
  [[nodiscard]] std::uint64_t peak(DevicePlacement placement) const noexcept;
  /// @return limit(d) (rule 1); for `Auto` the sum of all limits; 0 for an unknown GPU
  [[nodiscard]] std::uint64_t limit(DevicePlacement placement) const noexcept;
  /// @return count(d), the live allocations on a concrete device; 0 for `Auto` or an unknown GPU
  [[nodiscard]] std::uint64_t allocation_count(DevicePlacement placement) const noexcept;

  /// Rule 8: every peak(d) = allocated(d), total_peak = sum of allocated.
  void reset_peak() noexcept;
  /**
   * @brief Rule 8: peak(d) = allocated(d) for one concrete device; total_peak unchanged.
   * @return nothing, or `AmbiguousDevice` (auto), `UnknownDevice`
   */
  Result<void> reset_peak(DevicePlacement placement);

  /// @return every device's allocated and available, and total_peak
  [[nodiscard]] MemorySummary summary() const;
  /// @return one GPU's account, or `UnknownDevice`
  [[nodiscard]] Result<GpuMemoryInfo> gpu_info(std::uint32_t gpu_id) const;

  /// @return the configuration this tracker was created from
  [[nodiscard]] const GpuConfig& config() const noexcept { return config_; }
  /// @return the configured GPU ids, ascending
  [[nodiscard]] const std::vector<std::uint32_t>& gpu_ids() const noexcept { return gpu_ids_; }

  /// Attaches an observer that sees every allocate, deallocate and reset_peak (null detaches).
  /// The tracker does not own it. With none attached the cost is one predictable branch.
  void set_observer(MemoryObserver* observer) noexcept { observer_.set(observer); }
  /// @return the attached observer, or null
  [[nodiscard]] MemoryObserver* observer() const noexcept { return observer_.get(); }

 private:
  friend class SharedMemoryTracker;

  /// Per-device account. Invariant: allocated <= peak <= limit.
  struct Account {
    std::uint64_t limit{0};
    std::uint64_t allocated{0};
    std::uint64_t peak{0};
    std::uint64_t count{0};
  };

  MemoryTracker() = default;

  /// @return the index into accounts_ of a concrete device, or npos (unknown GPU or `Auto`)
  [[nodiscard]] std::size_t index_of(DevicePlacement placement) const noexcept;
  /// @return the device at accounts_[index]
  [[nodiscard]] DevicePlacement device_at(std::size_t index) const noexcept;
  /// Decides where an allocation would go (rule 4) without changing anything.
  [[nodiscard]] Result<std::size_t> plan_allocation(DevicePlacement placement,
                                                    std::uint64_t bytes) const;
  /// Records an allocation planned by plan_allocation. Precondition: bytes <= available.
  void commit_allocation(std::size_t index, std::uint64_t bytes) noexcept;
  Result<void> apply_deallocation(DevicePlacement placement, std::uint64_t bytes);
  Result<void> apply_reset_peak(DevicePlacement placement);
  /// Tells the observer, if any, about an operation that just happened.
  void notify(ObservedEvent::Kind kind, DevicePlacement requested, std::uint64_t bytes,
              std::optional<DevicePlacement> resolved, const Error* error) const noexcept {
    if (observer_.get() != nullptr) [[unlikely]] {
      observer_.get()->on_event(ObservedEvent{kind, requested, bytes, resolved, error}, *this);
    }
  }

  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  GpuConfig config_;
  std::vector<std::uint32_t>
      gpu_ids_;  ///< Ascending. Invariant: gpu_ids_.size() + 1 == accounts_.size()
  std::vector<Account> accounts_;     ///< GPUs in gpu_ids_ order, then the CPU last.
  std::uint64_t total_allocated_{0};  ///< Invariant: the sum of accounts_[i].allocated.
  std::uint64_t total_peak_{0};    ///< Invariant: total_allocated_ <= total_peak_ <= total_limit_.
  std::uint64_t total_limit_{0};   ///< The sum of all limits; at most 2^64 - 1 (rule 2).
  detail::ObserverSlot observer_;  ///< Not copied: a copy starts without an observer.
};

}  // namespace memtrack
