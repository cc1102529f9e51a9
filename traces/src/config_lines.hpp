// The configuration lines of a trace's header (`memory_fraction`, `cpu_memory_limit`, `gpu`).
// Private to memtrack::traces; not installed.
#pragma once

#include <memtrack/gpu_config.hpp>
#include <memtrack/result.hpp>

#include <string>
#include <string_view>

namespace memtrack::traces::detail {

/// @return the `memory_fraction`, `cpu_memory_limit` and `gpu` lines of `config`
[[nodiscard]] std::string config_to_text(const GpuConfig& config);

/**
 * @brief Parses one `memory_fraction`, `cpu_memory_limit` or `gpu` line into `config`.
 * @return true when the line was one of those, false when it is something else, or a
 * `ParseError` saying what was expected (without a location; the caller adds it)
 */
[[nodiscard]] Result<bool> parse_config_line(std::string_view line, GpuConfig& config);

}  // namespace memtrack::traces::detail
