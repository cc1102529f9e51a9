// The figures of a replay as JSON, one way for every command that prints them (`fit`, `replay`).
#pragma once

#include <memtrack/traces/replay.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace memtrack::cli {

/// `value` as a JSON number when `given`, else null (a figure that does not apply).
nlohmann::ordered_json number_or_null(bool given, std::uint64_t value);

/// `text` as a JSON string, or null when it is empty.
nlohmann::ordered_json text_or_null(const std::string& text);

/**
 * @brief One device's use of memory, as `sim` and `replay` give it: `{device, budget_bytes,
 * peak_bytes, final_bytes}` (the budget a number, or null where there is none).
 */
nlohmann::ordered_json device_usage_json(const DevicePlacement& device,
                                         nlohmann::ordered_json budget, std::uint64_t peak,
                                         std::uint64_t final_bytes);

/// A share as a JSON number with two decimals (exact integer arithmetic, then parsed); null of 0.
nlohmann::ordered_json percent_number(std::uint64_t part, std::uint64_t whole);

/// One GPU's figures under the pytorch allocator model.
nlohmann::ordered_json modelled_json(const traces::ModelledDevice& m);

/// A call stack, innermost first: `[{file, line, name}]`.
nlohmann::ordered_json frames_json(const std::vector<traces::Frame>& frames);

/// The first OOM the model raised (PyTorch's figures and message), or null.
nlohmann::ordered_json model_oom_json(const std::optional<traces::ModelOutOfMemory>& oom);

/// The recording's own first `oom` and how many it has, or null.
nlohmann::ordered_json recorded_oom_json(const traces::ReplaySummary& s);

/// The first inconsistency (or operation that landed nowhere), or null.
nlohmann::ordered_json inconsistency_json(const std::optional<traces::Inconsistency>& first);

/// The first refused allocation, or null.
nlohmann::ordered_json refusal_json(const std::optional<traces::Refusal>& first);

/// Adds the first OOM the model raised and the recording's own (`first_oom`, `recorded_oom`).
void add_oom_json(nlohmann::ordered_json& json, const traces::ReplaySummary& s);

/**
 * @brief Adds how consistent the recording was: `inconsistencies`, `first_inconsistency`,
 * `allow_inconsistent`, `unlanded` and `first_unlanded` (one writer for `fit` and `replay`).
 */
void add_consistency_json(nlohmann::ordered_json& json, const traces::ReplaySummary& s,
                          bool allow_inconsistent);

}  // namespace memtrack::cli
