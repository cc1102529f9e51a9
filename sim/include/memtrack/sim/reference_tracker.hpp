/**
 * @file reference_tracker.hpp
 * @brief `ReferenceTracker`: docs/semantics.md written as plainly as possible, in arbitrary
 * precision.
 *
 * The reference model shares nothing with `core/` but the public value types (`GpuConfig`,
 * `DevicePlacement`, `ErrorKind`). Every quantity is a `boost::multiprecision::cpp_int`, so it
 * cannot overflow: a core value that wrapped past 2^64 - 1 shows up as a difference.
 * Speed is not a goal here; being obviously right is.
 */
#pragma once

#include <memtrack/device_placement.hpp>
#include <memtrack/error.hpp>
#include <memtrack/gpu_config.hpp>

#include <boost/multiprecision/cpp_int.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace memtrack::sim {

/// An integer without bounds.
using BigInt = boost::multiprecision::cpp_int;

/// 2^64 - 1, the largest value a core byte count may take.
[[nodiscard]] const BigInt& max_u64();

/// @return `value` as 64 bits; precondition: 0 <= value <= 2^64 - 1
[[nodiscard]] std::uint64_t to_u64(const BigInt& value);

/// What the reference model says an operation did. Numbers are unbounded on purpose.
struct ReferenceOutcome {
  bool ok{true};
  ErrorKind error_kind{ErrorKind::InvalidConfig};  ///< when !ok
  std::optional<DevicePlacement> device;           ///< the device an error names
  std::optional<DevicePlacement> resolved;         ///< where an allocation went, when ok
  BigInt requested;                                ///< OutOfMemory, InvalidDeallocation
  BigInt available;                                ///< OutOfMemory
  BigInt limit;                                    ///< OutOfMemory on a concrete device
  BigInt allocated;                                ///< InvalidDeallocation

  [[nodiscard]] std::string to_string() const;
};

/// One device's account in the model.
struct ReferenceAccount {
  BigInt limit;
  BigInt allocated;
  BigInt peak;
  BigInt count;
};

/// The reference model of one tracker.
class ReferenceTracker {
 public:
  /// Applies rules 1 and 2; on a rejected config returns the outcome naming the device.
  [[nodiscard]] static std::optional<ReferenceTracker> create(
      const GpuConfig& config, ReferenceOutcome* rejection = nullptr);

  [[nodiscard]] bool can_allocate(DevicePlacement placement, const BigInt& bytes) const;
  ReferenceOutcome allocate(DevicePlacement placement, const BigInt& bytes);
  ReferenceOutcome deallocate(DevicePlacement placement, const BigInt& bytes);
  void reset_peak();
  ReferenceOutcome reset_peak(DevicePlacement placement);

  [[nodiscard]] BigInt available(DevicePlacement placement) const;
  [[nodiscard]] BigInt allocated(DevicePlacement placement) const;
  [[nodiscard]] BigInt peak(DevicePlacement placement) const;
  [[nodiscard]] BigInt limit(DevicePlacement placement) const;
  [[nodiscard]] BigInt count(DevicePlacement placement) const;
  [[nodiscard]] const BigInt& total_peak() const { return total_peak_; }

  /// @return every concrete device, cpu first then GPUs by ascending id
  [[nodiscard]] const std::map<DevicePlacement, ReferenceAccount>& accounts() const {
    return accounts_;
  }
  /// @return whether `placement` is a configured concrete device
  [[nodiscard]] bool knows(DevicePlacement placement) const;

 private:
  std::map<DevicePlacement, ReferenceAccount> accounts_;  // DevicePlacement orders cpu < gpu:N.
  BigInt total_peak_;
};

}  // namespace memtrack::sim
