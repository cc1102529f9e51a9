// `memtrack replay --states`: one JSON line per replayed operation (docs/trace-format.md).
#pragma once

#include <memtrack/device_placement.hpp>
#include <memtrack/traces/replay.hpp>

#include <string>
#include <vector>

namespace memtrack::cli {

/// @return the `--states` JSON line for one step (no newline): the operation, its outcome, and
/// every device's allocated, available, peak and count after it
/// @param devices the replay's devices, GPUs ascending then the CPU (`Replayer::devices`)
[[nodiscard]] std::string state_json(const traces::ReplayStep& step,
                                     const std::vector<DevicePlacement>& devices);

}  // namespace memtrack::cli
