// The memtrack command line: every subcommand, runnable in-process for tests.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace memtrack::cli {

/// Exit codes shared by every subcommand.
enum ExitCode : int {
  exit_ok = 0,         ///< success; for checks, "it fits" / "all agree"
  exit_failure = 1,    ///< the check ran and failed (does not fit, divergence)
  exit_bad_input = 2,  ///< bad arguments or input files
};

/**
 * @brief Runs `memtrack ARGS...`.
 * @param args the arguments after the program name
 * @return the process exit code
 */
int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace memtrack::cli
