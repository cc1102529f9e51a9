// Golden files for the cli tests: an output compared byte for byte with a committed file, and
// rewritten instead when MEMTRACK_UPDATE_GOLDEN is set (after an intended change of output: the
// rewritten files are committed with the change, saying why).
#pragma once

#include <memtrack/traces/io.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace memtrack::cli {

/**
 * Every `prefix NUMBER suffix` in `text` (NUMBER a non-empty run of `chars`) with NUMBER replaced
 * by `mask`. (By hand: GCC 12 warns inside <regex> under the sanitizer build.)
 */
inline std::string mask_number(std::string text, std::string_view prefix, std::string_view chars,
                               std::string_view suffix, std::string_view mask) {
  std::size_t at = text.find(prefix);
  while (at != std::string::npos) {
    const std::size_t start = at + prefix.size();
    std::size_t end = start;
    while (end < text.size() && chars.find(text[end]) != std::string_view::npos)
      ++end;
    if (end > start && std::string_view(text).substr(end, suffix.size()) == suffix) {
      text.replace(start, end - start, mask);
      end = start + mask.size();
    }
    at = text.find(prefix, end);
  }
  return text;
}

/// The output with the one figure a run cannot repeat, how long it took, masked.
inline std::string without_timings(std::string text) {
  constexpr std::string_view digits = "0123456789";
  text = mask_number(std::move(text), "in ", "0123456789.", " s: ", "T");
  text = mask_number(std::move(text), " s: ", digits, " ops/s", "R");
  text = mask_number(std::move(text), "\"seconds\": ", "0123456789.e+-", "", "T");
  return mask_number(std::move(text), "\"operations_per_second\": ", digits, "", "R");
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
