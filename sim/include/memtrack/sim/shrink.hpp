/**
 * @file shrink.hpp
 * @brief Running a whole scenario in lockstep, and shrinking a failing one to a minimal one.
 */
#pragma once

#include <memtrack/sim/lockstep.hpp>
#include <memtrack/sim/scenario.hpp>

#include <cstdint>
#include <functional>
#include <optional>

namespace memtrack::sim {

/// Runs every operation of `scenario` in lockstep.
/// @return the first divergence, or nothing when the core and the model agree throughout
template <CheckableTracker Tracker = MemoryTracker>
std::optional<Divergence> run_scenario(const Scenario& scenario) {
  auto start = LockstepChecker<Tracker>::create(scenario.config);
  if (start.divergence) return start.divergence;
  if (!start.checker) return std::nullopt;  // both rejected the config, identically
  for (const Operation& operation : scenario.operations) {
    if (auto divergence = start.checker->apply(operation)) return divergence;
  }
  return std::nullopt;
}

/**
 * @brief Shrinks a failing scenario: drops the operations after the failure, then removes
 * chunks of operations and unused GPUs for as long as it still fails (delta debugging).
 * @param still_fails true when a candidate still shows the failure
 * @param max_tries stop after this many candidates (long sequences), keeping the best so far
 * @return a scenario that still fails, no larger than `failing`
 */
[[nodiscard]] Scenario shrink_scenario(Scenario failing,
                                       const std::function<bool(const Scenario&)>& still_fails,
                                       std::size_t max_tries = SIZE_MAX);

}  // namespace memtrack::sim
