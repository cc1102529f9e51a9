/**
 * @file recording.hpp
 * @brief What `memtrack record` and the injection library agree on: the environment that
 * carries the output path, the status file the library leaves, and the CUPTI version it accepts.
 */
#pragma once

#include <memtrack/result.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace memtrack::recorder {

/// Where the library writes the trace (set by `memtrack record`).
inline constexpr const char* output_env = "MEMTRACK_RECORD_OUTPUT";
/// Where the library writes its one-line status (set by `memtrack record`).
inline constexpr const char* status_env = "MEMTRACK_RECORD_STATUS";
/// The CUDA driver loads the library named here and calls its `InitializeInjection`.
inline constexpr const char* injection_env = "CUDA_INJECTION64_PATH";
/// The process `memtrack record` started; the others (its children) write `per_process_path`.
inline constexpr const char* pid_env = "MEMTRACK_RECORD_PID";
/// Seconds between the checkpoints the library writes (0: none); by default 10 in the recorded
/// command's children, none in the command itself.
inline constexpr const char* checkpoint_env = "MEMTRACK_RECORD_CHECKPOINT";
/// The library's file name.
inline constexpr const char* injection_library = "libmemtrack_inject.so";

/// How a recording ended: `ok EVENTS DEVICES` or `error MESSAGE`.
struct RecordingStatus {
  bool ok{false};
  std::uint64_t events{0};
  std::uint32_t devices{0};
  std::string message;  ///< error only: one line
};

[[nodiscard]] std::string format_status(const RecordingStatus& status);
[[nodiscard]] Result<RecordingStatus> parse_status(std::string_view text);

/**
 * @brief The injection library reads records laid out as the CUPTI it was built with: the
 * runtime CUPTI must have the same major version (13 for `CUpti_ActivityMemory4`).
 * @return nothing when `runtime` is fine, else why not (one line)
 */
[[nodiscard]] std::optional<std::string> cupti_version_problem(std::uint32_t runtime,
                                                               std::uint32_t built_with);

/// @return 16 UUID bytes as NVIDIA writes them: GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx
[[nodiscard]] std::string gpu_uuid_text(const char* bytes);

/**
 * @brief Where a child process of the recorded command writes its own trace: `.pidN` before the
 * `.trace` of the name (`out.trace.zst` -> `out.pid42.trace.zst`), or after it when there is none.
 */
[[nodiscard]] std::string per_process_path(const std::string& output, long pid);

/**
 * @brief The injection library for the `memtrack` at `executable`: `MEMTRACK_INJECT_LIBRARY`
 * when set, else beside it or in `../lib`.
 */
[[nodiscard]] std::optional<std::filesystem::path> find_injection_library(
    const std::filesystem::path& executable);

}  // namespace memtrack::recorder
