// Runs the memtrack command line in-process for tests.
#pragma once

#include "app.hpp"

#include <sstream>
#include <string>
#include <vector>

namespace memtrack::cli {

/// What one `memtrack ARGS...` run printed and returned.
struct CliRun {
  int code;
  std::string out;
  std::string err;
};

inline CliRun memtrack(const std::vector<std::string>& args) {
  std::ostringstream out;
  std::ostringstream err;
  const int code = run(args, out, err);
  return {code, out.str(), err.str()};
}

}  // namespace memtrack::cli
