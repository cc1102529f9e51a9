// One function per subcommand: each adds itself to the app and sets `run` when chosen.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <ostream>

namespace memtrack::cli {

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

}  // namespace memtrack::cli
