/**
 * @file scenario.hpp
 * @brief A scenario: a `GpuConfig` and a sequence of operations, in memory.
 *
 * What the simulation and the property tests run, shrink and report. On disk a scenario is a
 * trace (`docs/trace-format.md`): `memtrack::traces::write_operations` writes one with the
 * reference model's outcomes, and `memtrack replay` replays it.
 */
#pragma once

#include <memtrack/gpu_config.hpp>
#include <memtrack/sim/operation.hpp>

#include <vector>

namespace memtrack::sim {

/// A configuration and the operations to apply to a tracker made from it.
struct Scenario {
  GpuConfig config;
  std::vector<Operation> operations;

  friend bool operator==(const Scenario&, const Scenario&) = default;
};

}  // namespace memtrack::sim
