// The examples each subcommand's --help shows: one table, printed as each subcommand's footer and
// run, every one, by cli/tests/documented_examples_tests.cpp (so a shown example cannot rot).
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace memtrack::cli {

/// One example: the command line as a user types it, and what it answers.
struct Example {
  std::string_view subcommand;  ///< e.g. "fit"
  std::string_view line;        ///< the whole command line, starting with "memtrack "
  std::string_view what;        ///< one line: what it answers or does
};

/// Every subcommand's examples, in the order --help shows them.
[[nodiscard]] std::span<const Example> examples();

/// @return the footer of `memtrack SUBCOMMAND --help`: its examples, then the exit codes
[[nodiscard]] std::string examples_footer(std::string_view subcommand);

}  // namespace memtrack::cli
