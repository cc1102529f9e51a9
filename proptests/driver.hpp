// Runs generated scenarios through the lockstep checker and records what they covered.
#pragma once

#include "generators.hpp"

#include <memtrack/sim/lockstep.hpp>
#include <memtrack/sim/scenario.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace memtrack::proptest {

/// The situations the default run must reach; the suite fails when any count stays 0.
enum class Covered : std::uint8_t {
  ExactFitAllocation,
  OneOverRefusal,
  AutoFallbackToCpu,
  AutoRefusal,
  OverDeallocation,
  RequestNearTwoToThe64,
  ResetPeakAfterFree,
  RejectedConfig,
  Count_,
};

inline constexpr std::size_t covered_classes = static_cast<std::size_t>(Covered::Count_);

[[nodiscard]] std::string_view to_string(Covered covered);

/// Counts per class and the operations checked.
struct Coverage {
  std::array<std::uint64_t, covered_classes> hits{};
  std::uint64_t operations_checked{0};
  std::uint64_t scenarios{0};
  std::uint64_t longest_sequence{0};

  void add(Covered covered) { ++hits[static_cast<std::size_t>(covered)]; }
  [[nodiscard]] std::uint64_t of(Covered covered) const {
    return hits[static_cast<std::size_t>(covered)];
  }
};

/// The result of one generated scenario.
struct RunResult {
  sim::Scenario scenario;                     ///< the concrete operations actually applied
  std::optional<sim::Divergence> divergence;  ///< the first disagreement, if any
};

/// Resolves each abstract operation against the current state, applies it in lockstep, and
/// stops at the first divergence.
RunResult run_abstract(const GpuConfig& config, const std::vector<AbstractOp>& operations,
                       Coverage& coverage);

}  // namespace memtrack::proptest
