/**
 * @file gpu_config.hpp
 * @brief The devices a tracker manages and the budget inputs of each.
 */
#pragma once

#include <memtrack/fraction.hpp>
#include <memtrack/units.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace memtrack {

/// One GPU as configured.
struct GpuSpec {
  /// The GPU's id: `gpu:<id>`. Ids need not be contiguous.
  std::uint32_t id{0};
  /// Total device memory in bytes (what `cudaMemGetInfo` reports as total). Must be > 0.
  std::uint64_t total_bytes{0};
  /// An optional hard cap on usable bytes (e.g. 24 GiB on a 32 GB card).
  std::optional<std::uint64_t> usable_bytes;
  /// This GPU's own fraction; when absent, `GpuConfig::memory_fraction` applies.
  std::optional<Fraction> memory_fraction;
  /// A human name ("NVIDIA GeForce RTX 5090"); informational only.
  std::string name;

  friend bool operator==(const GpuSpec&, const GpuSpec&) = default;
};

/// Every device of a tracker: the GPUs, the default fraction, and the CPU limit.
struct GpuConfig {
  /// Default CPU memory limit: 16 GiB.
  static constexpr std::uint64_t default_cpu_memory_limit = 16_GiB;

  std::vector<GpuSpec> gpus;
  /// Fraction of each GPU's total we may use, unless the GPU has its own. Default 9/10.
  Fraction memory_fraction{Fraction::of(9, 10).value()};
  /// limit(cpu), in bytes.
  std::uint64_t cpu_memory_limit{default_cpu_memory_limit};

  friend bool operator==(const GpuConfig&, const GpuConfig&) = default;
};

/**
 * @brief limit(gpu) = min(floor(total_bytes x fraction), usable_bytes if set) — rule 1.
 *
 * `fraction` is the GPU's own when set, else `default_fraction`. Exact: never exceeds
 * `total_bytes`, so it cannot overflow.
 */
[[nodiscard]] std::uint64_t gpu_limit(const GpuSpec& gpu,
                                      const Fraction& default_fraction) noexcept;

/**
 * @brief Checks rule 2: unique ids, nonzero totals, and the sum of all limits (GPUs and CPU) at
 * most 2^64 - 1.
 * @return nothing, or `ErrorKind::InvalidConfig` naming the device and the numbers
 */
[[nodiscard]] Result<void> validate(const GpuConfig& config);

}  // namespace memtrack
