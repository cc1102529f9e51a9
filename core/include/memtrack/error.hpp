/**
 * @file error.hpp
 * @brief The one error type of memtrack: a kind, the device, and the numbers involved.
 */
#pragma once

#include <memtrack/device_placement.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace memtrack {

/// What went wrong.
enum class ErrorKind : std::uint8_t {
  InvalidConfig,        ///< A `GpuConfig` breaks rule 2 (duplicate id, zero total, overflow...).
  UnknownDevice,        ///< `gpu:N` names a GPU that is not configured.
  OutOfMemory,          ///< The request exceeds what the device (or any device, for `auto`) has.
  AmbiguousDevice,      ///< `auto` given where a concrete device is needed.
  InvalidDeallocation,  ///< More bytes freed than are allocated on the device.
  ParseError,           ///< Text that is not a placement, fraction or byte size.
  IoError,  ///< A file that cannot be opened, read, written or renamed (the system's reason).
};

/// @return the kind's name, e.g. `"OutOfMemory"`
[[nodiscard]] std::string_view to_string(ErrorKind kind) noexcept;

/**
 * @brief An error with everything a person needs to act on it.
 *
 * Fields not relevant to the kind are 0 / empty. Equality compares every field, so two trackers
 * that fail the same way produce equal errors (the lockstep checker relies on this).
 */
struct Error {
  ErrorKind kind{ErrorKind::InvalidConfig};
  /// The device the operation named (for `InvalidConfig`, the offending GPU if there is one).
  std::optional<DevicePlacement> device;
  /// OutOfMemory, InvalidDeallocation: the bytes requested.
  std::uint64_t requested_bytes{0};
  /// OutOfMemory: available(device) when the request was refused.
  std::uint64_t available_bytes{0};
  /// OutOfMemory on a concrete device: limit(device) (0 for `auto`, which has no single limit).
  std::uint64_t limit_bytes{0};
  /// InvalidDeallocation: allocated(device) when the free was refused.
  std::uint64_t allocated_bytes{0};
  /// InvalidConfig, ParseError, IoError: what was wrong, in words (includes any offending text).
  std::string detail;

  /// @return one line, e.g. `gpu:1: cannot allocate 2147483648 bytes, 1073741824 of 25769803776
  /// available`
  [[nodiscard]] std::string to_string() const;

  friend bool operator==(const Error&, const Error&) = default;

  // Constructors for each kind; they keep the field conventions above in one place.
  [[nodiscard]] static Error invalid_config(std::string detail,
                                            std::optional<DevicePlacement> device = {});
  [[nodiscard]] static Error unknown_device(DevicePlacement device);
  [[nodiscard]] static Error out_of_memory(DevicePlacement device, std::uint64_t requested,
                                           std::uint64_t available, std::uint64_t limit);
  [[nodiscard]] static Error ambiguous_device(std::string_view operation);
  [[nodiscard]] static Error invalid_deallocation(DevicePlacement device, std::uint64_t requested,
                                                  std::uint64_t allocated);
  [[nodiscard]] static Error parse_error(std::string detail);
  [[nodiscard]] static Error io_error(std::string detail);
};

/// Thrown by `Result::value()` when the result holds an error, and by the few constructors that
/// cannot return a `Result` (for example `Fraction(double)`).
class BadResultAccess : public std::runtime_error {
 public:
  explicit BadResultAccess(Error error)
      : std::runtime_error(error.to_string()), error_(std::move(error)) {}

  /// @return the error that was accessed as a value
  [[nodiscard]] const Error& error() const noexcept { return error_; }

 private:
  Error error_;
};

}  // namespace memtrack
