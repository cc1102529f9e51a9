/**
 * @file operations.hpp
 * @brief A sequence of operations as a trace (a property test's regression, a `sim` divergence):
 * each operation is an event carrying the outcome the reference model gives it.
 *
 * Part of `memtrack::trace_format`, the trace format without the replay: what writes these traces
 * (the property suites) does not depend on the replay or the recorder.
 */
#pragma once

#include <memtrack/result.hpp>
#include <memtrack/sim/scenario.hpp>
#include <memtrack/traces/trace.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace memtrack::traces {

/**
 * @brief The trace of a sequence of operations (a property test's regression, a `sim`
 * divergence): `source` and the configuration as the header, then each operation as its event
 * with the outcome the reference model (`sim::ReferenceTracker`, the rules of
 * `docs/semantics.md`) gives it: `result=` for a refusal, `resolved=` where an `auto` allocation
 * goes. A correct tracker replays it to every outcome. When the model rejects the configuration
 * itself, the operations carry no outcome.
 */
[[nodiscard]] std::vector<TraceEvent> operation_events(const sim::Scenario& scenario);

/// @return the trace of `scenario` as text (`format_trace` of its header and `operation_events`)
[[nodiscard]] std::string format_operations(const sim::Scenario& scenario,
                                            const std::string& source);

/// Writes the trace of `scenario` to `path`, through a temporary renamed into place.
[[nodiscard]] Result<void> write_operations(const std::filesystem::path& path,
                                            const sim::Scenario& scenario,
                                            const std::string& source);

}  // namespace memtrack::traces
