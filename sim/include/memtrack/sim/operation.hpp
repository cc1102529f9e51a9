/**
 * @file operation.hpp
 * @brief One tracker operation (allocate, deallocate, reset_peak), with a one-line text form.
 */
#pragma once

#include <memtrack/device_placement.hpp>
#include <memtrack/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace memtrack::sim {

/// An operation applied to a tracker.
struct Operation {
  enum class Kind : std::uint8_t {
    Allocate,      ///< allocate(device, bytes)
    Deallocate,    ///< deallocate(device, bytes)
    ResetPeakAll,  ///< reset_peak()
    ResetPeak,     ///< reset_peak(device)
  };

  Kind kind{Kind::ResetPeakAll};
  DevicePlacement device{};
  std::uint64_t bytes{0};

  [[nodiscard]] static Operation allocate(DevicePlacement device, std::uint64_t bytes) {
    return {Kind::Allocate, device, bytes};
  }
  [[nodiscard]] static Operation deallocate(DevicePlacement device, std::uint64_t bytes) {
    return {Kind::Deallocate, device, bytes};
  }
  [[nodiscard]] static Operation reset_peak_all() { return {Kind::ResetPeakAll, Auto{}, 0}; }
  [[nodiscard]] static Operation reset_peak(DevicePlacement device) {
    return {Kind::ResetPeak, device, 0};
  }

  /// @return `alloc gpu:0 1024`, `free cpu 12`, `reset_peak` or `reset_peak gpu:1`
  [[nodiscard]] std::string to_string() const;

  /// Parses the text form of `to_string`.
  /// @return the operation, or a `ParseError` saying what was expected
  [[nodiscard]] static Result<Operation> parse(std::string_view line);

  friend bool operator==(const Operation&, const Operation&) = default;
};

}  // namespace memtrack::sim
