// One function per subcommand: each adds itself to the app and sets `run` when chosen.
#pragma once

#include "app.hpp"

#include <memtrack/error.hpp>
#include <memtrack/recorder/probe.hpp>
#include <memtrack/result.hpp>
#include <memtrack/sim/profile.hpp>

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include <functional>
#include <memory>
#include <ostream>
#include <string_view>

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

/**
 * @brief How a command's run ends: an exit code once it has printed its result, or bad input,
 * which `app.cpp` alone prints (`memtrack COMMAND: WHAT`, or JSON under `--json`) and answers
 * with `exit_bad_input`.
 */
using Outcome = Result<ExitCode>;

/// @return bad input: what `error` says, after `context` (e.g. "--cpu-limit: ")
[[nodiscard]] Error bad_input(std::string_view context, const Error& error);

/// What a chosen subcommand will do once parsing is complete.
struct Command {
  std::string name;  ///< how its errors name it: "sim", "profiles show"
  std::function<Outcome(std::ostream& out, std::ostream& err)> run;
};

/// When `command` is chosen, `work(options, out, err)` is what runs (the same for every command).
template <class Options, class Work>
void run_when_chosen(CLI::App& command, Command& chosen, std::shared_ptr<Options> options,
                     Work work) {
  command.callback([&command, &chosen, options, work] {
    chosen.name = command.get_name();
    chosen.run = [options, work](std::ostream& out, std::ostream& err) {
      return Outcome(work(*options, out, err));
    };
  });
}

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
  bool json{false};
};

/// `memtrack probe` on any backend (tests use a simulated device).
Outcome run_probe(recorder::ProbeBackend& backend, const ProbeCommandOptions& options,
                  std::ostream& out, std::ostream& err);

}  // namespace memtrack::cli
