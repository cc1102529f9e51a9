// One function per subcommand: each adds itself to the app and sets `run` when chosen.
#pragma once

#include <memtrack/recorder/probe.hpp>
#include <memtrack/sim/profile.hpp>

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include <functional>
#include <ostream>

namespace memtrack::cli {

/// The most GPUs a node may have (`--gpus`); see docs/limits.md.
using sim::max_gpus_per_node;

/// A validator for whole-number options: decimal digits only (not empty, no sign, no blanks),
/// so `--ops -1` is refused rather than wrapped to 2^64 - 1.
[[nodiscard]] CLI::Validator whole_number();

/// A validator for options whose value may not be empty (a path, a format name).
[[nodiscard]] CLI::Validator not_empty();

/// A validator for `--gpus`: a whole number from 1 to `max_gpus_per_node`.
[[nodiscard]] CLI::Validator gpu_count();

/// What a chosen subcommand will do once parsing is complete.
struct Command {
  std::function<int(std::ostream& out, std::ostream& err)> run;
};

void add_budget_command(CLI::App& app, Command& chosen);
void add_profiles_command(CLI::App& app, Command& chosen);
void add_sim_command(CLI::App& app, Command& chosen);
void add_replay_command(CLI::App& app, Command& chosen);
void add_fit_command(CLI::App& app, Command& chosen);
void add_import_command(CLI::App& app, Command& chosen);
void add_record_command(CLI::App& app, Command& chosen);
void add_probe_command(CLI::App& app, Command& chosen);
void add_report_command(CLI::App& app, Command& chosen);
void add_compare_command(CLI::App& app, Command& chosen);

/// `memtrack probe`'s options.
struct ProbeCommandOptions {
  std::vector<std::uint32_t> devices;
  std::string output;
  std::string name;
  std::string check;
  bool samples{false};
};

/// `memtrack probe` on any backend (tests use a simulated device).
int run_probe(recorder::ProbeBackend& backend, const ProbeCommandOptions& options,
              std::ostream& out, std::ostream& err);

}  // namespace memtrack::cli
