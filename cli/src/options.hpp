// The options several commands take, each declared once with one help text. (`--gpu`,
// `--gpu-budget`, `--fraction`, `--cpu-limit` for replays and `--allocator`, `--alloc-conf` are
// the groups DeviceFlags and AllocatorFlags in trace_support.hpp.)
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace memtrack::cli {

/// Adds `--json`: the command's result (or `what`, where the help should say more) as JSON on
/// standard output, exit codes unchanged.
void add_json_flag(CLI::App& command, bool& json, std::string_view what = {});

/// Adds `--production-only`: the production tracker alone, without the reference model.
void add_production_only_flag(CLI::App& command, bool& production_only);

/**
 * @brief Adds `--profile` (a node: a profile, N x profile, a mix or a .profile file) and
 * `--gpus` (how many of a single-GPU profile), checked to 1..max_gpus_per_node.
 * @return the `--profile` option, for a command that takes more there (fit's lists)
 */
CLI::Option* add_profile_flags(CLI::App& command, std::string& profile,
                               std::optional<std::uint32_t>& gpus);

/// Adds `--gpu ID:TOTAL[,usable=SIZE][,fraction=F][,name=TEXT]`, repeatable.
void add_gpu_option(CLI::App& command, std::vector<std::string>& gpus);

/// Adds `--fraction F`: the default share of each GPU's total (a decimal, a percentage, a ratio).
void add_fraction_option(CLI::App& command, std::string& fraction);

/// Adds `--cpu-limit SIZE`: the CPU's memory limit (a size such as 16GiB, never empty).
void add_cpu_limit_option(CLI::App& command, std::string& cpu_limit);

}  // namespace memtrack::cli
