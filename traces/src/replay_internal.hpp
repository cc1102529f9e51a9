/**
 * @file replay_internal.hpp
 * @brief Helpers of the replay engine that are not part of its installed interface (tests use
 * them).
 */
#pragma once

#include <memtrack/traces/trace.hpp>

#include <cstdint>
#include <map>

namespace memtrack::traces::detail {

/// @return the GPU map that puts the trace's declared GPUs, ascending, on 0, 1, ...
[[nodiscard]] std::map<std::uint32_t, std::uint32_t> map_onto_first_gpus(const TraceHeader& header);

}  // namespace memtrack::traces::detail
