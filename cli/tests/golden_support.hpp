// Golden files for the cli tests: an output compared byte for byte with a committed file, and
// rewritten instead when MEMTRACK_UPDATE_GOLDEN is set (after an intended change of output: the
// rewritten files are committed with the change, saying why).
#pragma once

#include <memtrack/traces/io.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

namespace memtrack::cli {

/// The output with the one figure a run cannot repeat, how long it took, masked.
inline std::string without_timings(std::string text) {
  static const std::regex timing(R"(in [0-9.]+ s: [0-9]+ ops/s)");
  static const std::regex seconds(R"("seconds": [0-9.e+-]+)");
  static const std::regex rate(R"("operations_per_second": [0-9]+)");
  text = std::regex_replace(text, timing, "in T s: R ops/s");
  text = std::regex_replace(text, seconds, "\"seconds\": T");
  return std::regex_replace(text, rate, "\"operations_per_second\": R");
}

/// Expects `actual` to be `file`'s content (or writes it there under MEMTRACK_UPDATE_GOLDEN).
inline void expect_golden(const std::filesystem::path& file, const std::string& actual,
                          const std::string& what) {
  if (std::getenv("MEMTRACK_UPDATE_GOLDEN") != nullptr) {
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << actual;
    return;
  }
  auto expected = traces::read_all(file, 1U << 26U);
  ASSERT_TRUE(expected) << expected.error().to_string() << " (" << what
                        << "; MEMTRACK_UPDATE_GOLDEN=1 writes it)";
  EXPECT_EQ(actual, *expected) << "the output of " << what << " changed from " << file.string()
                               << "; if on purpose, regenerate with MEMTRACK_UPDATE_GOLDEN=1 and "
                                  "say why in the commit";
}

}  // namespace memtrack::cli
