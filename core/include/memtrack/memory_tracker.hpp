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

#include <algorithm>
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

  /// What index_of returns for `Auto` and for a GPU the tracker does not have.
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  /**
   * @brief A concrete device's place among the tracker's accounts: its GPUs by id ascending
   * (`gpu_ids()`), then the CPU. Without a branch on the kind for the CPU and a dense GPU id
   * (0, 1, ... n-1), as every operation looks it up (and so may a caller that keeps figures per
   * device, in the same order).
   * @return the index, or npos for `Auto` or a GPU the tracker does not have
   */
  [[nodiscard]] std::size_t index_of(DevicePlacement placement) const noexcept;

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

  /// index_of for a GPU id that is not at its own index (sparse ids, or not configured).
  [[nodiscard]] std::size_t index_of_sparse(DevicePlacement placement) const noexcept;
  /// @return the device at accounts_[index]
  [[nodiscard]] DevicePlacement device_at(std::size_t index) const noexcept;
  /// Decides where an `Auto` allocation would go (rule 4) without changing anything: the
  /// lowest-id GPU with room, else the CPU.
  [[nodiscard]] Result<std::size_t> plan_auto_allocation(std::uint64_t bytes) const;
  /// allocate of `Auto`: plans, commits and tells the observer.
  Result<DevicePlacement> allocate_auto(std::uint64_t bytes);
  /// A refused allocate: tells the observer and @return `error`.
  Result<DevicePlacement> refuse_allocation(DevicePlacement placement, std::uint64_t bytes,
                                            const Error& error) const;
  /// Records an allocation on accounts_[index]. Precondition: bytes <= available.
  void commit_allocation(std::size_t index, std::uint64_t bytes) noexcept;
  /// A refused deallocate (`Auto`, an unknown GPU, more than is allocated): tells the observer
  /// and @return the error.
  Result<void> refuse_deallocation(DevicePlacement placement, std::uint64_t bytes) const;
  Result<void> apply_reset_peak(DevicePlacement placement);
  /// Tells the observer, if any, about an operation that just happened.
  void notify(ObservedEvent::Kind kind, DevicePlacement requested, std::uint64_t bytes,
              std::optional<DevicePlacement> resolved, const Error* error) const noexcept {
    if (observer_.get() != nullptr) [[unlikely]] {
      observer_.get()->on_event(ObservedEvent{kind, requested, bytes, resolved, error}, *this);
    }
  }

  GpuConfig config_;
  std::vector<std::uint32_t>
      gpu_ids_;  ///< Ascending. Invariant: gpu_ids_.size() + 1 == accounts_.size()
  std::vector<Account> accounts_;  ///< GPUs in gpu_ids_ order, then the CPU last.
  /// How many ids lead gpu_ids_ at their own index. Invariant: gpu_ids_[i] == i for every
  /// i < dense_gpu_ids_ (all of them on a node numbered 0, 1, ..., n-1).
  std::size_t dense_gpu_ids_{0};
  std::uint64_t total_allocated_{0};  ///< Invariant: the sum of accounts_[i].allocated.
  std::uint64_t total_peak_{0};    ///< Invariant: total_allocated_ <= total_peak_ <= total_limit_.
  std::uint64_t total_limit_{0};   ///< The sum of all limits; at most 2^64 - 1 (rule 2).
  detail::ObserverSlot observer_;  ///< Not copied: a copy starts without an observer.
};

// The hot path, inline: allocate and deallocate of a concrete device and can_allocate run once
// per operation in every replay, simulation and service, and out of line (a shared library's
// functions may be interposed, so -fPIC code calls even its own) each small step was a call.
// Errors are built out of line (`Error`'s constructors), and `Auto` is planned out of line.
// GCC's size heuristics keep the operations out of line (their error paths count), so they are
// forced inline; the benchmark (bench/tracker_bench.cpp) shows the difference.
#if defined(__GNUC__)
#define MEMTRACK_HOT_INLINE [[gnu::always_inline]] inline
#else
#define MEMTRACK_HOT_INLINE inline
#endif

inline std::size_t MemoryTracker::index_of(DevicePlacement placement) const noexcept {
  // The CPU, `Auto` and a dense GPU id without a branch on the kind (a mixed trace's devices come
  // at random, and a mispredicted branch costs more than the arithmetic): a GPU id is 0 unless the
  // placement is a GPU's, so the CPU's index is or-ed onto 0 and `Auto`'s all-ones is npos.
  const std::size_t id = placement.gpu_id();
  if (id >= dense_gpu_ids_ && placement.is_gpu()) [[unlikely]]
    return index_of_sparse(placement);
  const std::size_t cpu_mask = std::size_t{0} - std::size_t{placement.is_cpu()};
  const std::size_t auto_mask = std::size_t{0} - std::size_t{placement.is_auto()};
  return id | (cpu_mask & (accounts_.size() - 1)) | auto_mask;
}

inline DevicePlacement MemoryTracker::device_at(std::size_t index) const noexcept {
  if (index == accounts_.size() - 1) return Cpu{};
  return Gpu{gpu_ids_[index]};
}

// Inline: a replay reads a device's allocation after every operation (its high-water mark),
// and a report for every device.
inline std::uint64_t MemoryTracker::allocated(DevicePlacement placement) const noexcept {
  if (placement.is_auto()) return total_allocated_;
  const std::size_t index = index_of(placement);
  return index == npos ? 0 : accounts_[index].allocated;
}

inline bool MemoryTracker::can_allocate(DevicePlacement placement,
                                        std::uint64_t bytes) const noexcept {
  if (placement.is_auto()) return bytes <= available(placement);
  const std::size_t index = index_of(placement);
  if (index == npos) return false;  // rule 3: an unknown GPU takes nothing, not even 0 bytes
  return bytes <= accounts_[index].limit - accounts_[index].allocated;
}

inline void MemoryTracker::commit_allocation(std::size_t index, std::uint64_t bytes) noexcept {
  Account& account = accounts_[index];
  account.allocated += bytes;  // bytes <= limit - allocated: cannot pass the limit.
  account.peak = std::max(account.peak, account.allocated);
  account.count += account.count != UINT64_MAX ? 1U : 0U;  // saturates (no branch)
  total_allocated_ += bytes;  // at most the sum of limits, which fits (rule 2).
  total_peak_ = std::max(total_peak_, total_allocated_);
}

MEMTRACK_HOT_INLINE Result<DevicePlacement> MemoryTracker::allocate(DevicePlacement placement,
                                                                    std::uint64_t bytes) {
  // A concrete device is decided here, without a `Result` for the plan; `Auto`, and every
  // refusal, out of line.
  if (placement.is_auto()) [[unlikely]]
    return allocate_auto(bytes);
  const std::size_t index = index_of(placement);
  if (index == npos) [[unlikely]]
    return refuse_allocation(placement, bytes, Error::unknown_device(placement));
  const Account& account = accounts_[index];
  const std::uint64_t room = account.limit - account.allocated;
  if (bytes > room) [[unlikely]]
    return refuse_allocation(placement, bytes,
                             Error::out_of_memory(placement, bytes, room, account.limit));
  commit_allocation(index, bytes);
  if (observer_.get() != nullptr) [[unlikely]]
    notify(ObservedEvent::Kind::Allocate, placement, bytes, placement, nullptr);
  return placement;
}

MEMTRACK_HOT_INLINE Result<void> MemoryTracker::deallocate(DevicePlacement placement,
                                                           std::uint64_t bytes) {
  const std::size_t index = index_of(placement);  // npos for `Auto` too
  if (index == npos || bytes > accounts_[index].allocated) [[unlikely]]
    return refuse_deallocation(placement, bytes);
  Account& account = accounts_[index];
  account.allocated -= bytes;
  account.count -= account.count != 0 ? 1U : 0U;  // saturates at 0 (no branch)
  total_allocated_ -= bytes;
  if (observer_.get() != nullptr) [[unlikely]]
    notify(ObservedEvent::Kind::Deallocate, placement, bytes, std::nullopt, nullptr);
  return {};
}

}  // namespace memtrack

#undef MEMTRACK_HOT_INLINE
