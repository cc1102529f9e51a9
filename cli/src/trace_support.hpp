// What replay, fit (and report) share: opening any recording as a canonical trace, and choosing
// the budgets to replay it against.
#pragma once

#include <memtrack/traces/importers.hpp>
#include <memtrack/traces/reader.hpp>
#include <memtrack/traces/replay.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace memtrack::cli {

/// A recording opened for replay, and how it was opened.
struct OpenedTrace {
  traces::TraceReader reader;
  std::string imported_from;  ///< the source format when it was imported on the fly
};

/**
 * @brief Opens a canonical trace, or imports another recording (PyTorch, Kineto, RMM, Nsight)
 * in memory first.
 */
Result<OpenedTrace> open_trace(const std::string& path);

/// The devices a replay runs on.
struct Budgets {
  GpuConfig config;
  std::string description;  ///< "the recording's own devices" or "profile rtx5090 x 2"
  bool recorded{true};      ///< whether these are the recording's own budgets
};

/**
 * @brief The recording's own devices, or `profile` (repeated to `gpus`, by default to as many
 * GPUs as the trace declares).
 */
Result<Budgets> choose_budgets(const traces::TraceHeader& header, const std::string& profile,
                               std::optional<std::uint32_t> gpus, const std::string& trace_name);

/**
 * @brief A profile's budgets: `profile` repeated to `gpus`, or by default to `declared_gpus`
 * (at least one), when it is a single-GPU profile.
 */
Result<Budgets> profile_budgets(const std::string& profile, std::optional<std::uint32_t> gpus,
                                std::size_t declared_gpus);

/// @return how the trace's GPU ids map onto the replay's
std::map<std::uint32_t, std::uint32_t> gpu_map_for(const traces::TraceHeader& header,
                                                   const Budgets& budgets);

}  // namespace memtrack::cli
