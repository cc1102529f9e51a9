/**
 * @file scenario.hpp
 * @brief A scenario: a `GpuConfig` and a sequence of operations, as a small text file.
 *
 * Property tests write shrunk counterexamples in this form under `proptests/regressions/`, and a
 * plain test replays every file there. Format (one item a line, `#` starts a comment):
 *
 *     memtrack-scenario 1
 *     memory_fraction 9/10
 *     cpu_memory_limit 17179869184
 *     gpu 0 total=34359738368 usable=25769803776 fraction=0.5 name=RTX 5090
 *     alloc gpu:0 1024
 *     free gpu:0 1024
 *     reset_peak
 *     reset_peak gpu:0
 *
 * In a `gpu` line, `name=` must come last and takes the rest of the line.
 */
#pragma once

#include <memtrack/gpu_config.hpp>
#include <memtrack/result.hpp>
#include <memtrack/sim/operation.hpp>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace memtrack::sim {

/// A configuration and the operations to apply to a tracker made from it.
struct Scenario {
  GpuConfig config;
  std::vector<Operation> operations;

  friend bool operator==(const Scenario&, const Scenario&) = default;
};

/// @return the `memory_fraction`, `cpu_memory_limit` and `gpu` lines of `config` (scenarios and
/// traces share them)
[[nodiscard]] std::string config_to_text(const GpuConfig& config);

/**
 * @brief Parses one `memory_fraction`, `cpu_memory_limit` or `gpu` line into `config`.
 * @return true when the line was one of those, false when it is something else, or a
 * `ParseError` saying what was expected (without a location; the caller adds it)
 */
[[nodiscard]] Result<bool> parse_config_line(std::string_view line, GpuConfig& config);

/// @return the text form; `parse_scenario(to_text(s))` gives back `s`
[[nodiscard]] std::string to_text(const Scenario& scenario);

/**
 * @brief Parses the text form.
 * @param source_name the file name used in error messages
 * @return the scenario, or a `ParseError` of the form `NAME:LINE: what was expected`
 */
[[nodiscard]] Result<Scenario> parse_scenario(std::string_view text, std::string_view source_name);

/// Reads and parses a scenario file (at most 64 MiB).
[[nodiscard]] Result<Scenario> load_scenario(const std::filesystem::path& path);

/// Writes a scenario file through a temporary in the same folder, renamed into place.
[[nodiscard]] Result<void> save_scenario(const std::filesystem::path& path,
                                         const Scenario& scenario);

}  // namespace memtrack::sim
