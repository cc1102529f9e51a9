// Private helpers for sim's line-oriented text files (scenarios, profiles). Not installed.
#pragma once

#include <memtrack/result.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

namespace memtrack::sim::detail {

/// @return `text` without leading and trailing blanks (spaces, tabs, a CR from CRLF files)
inline std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\r')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

/**
 * @brief Reads a whole text file of at most `max_bytes` (checked before reading, so a huge file
 * is refused without being loaded).
 * @param what the kind of file, for the error ("a scenario")
 */
inline Result<std::string> read_text_file(const std::filesystem::path& path,
                                          std::uintmax_t max_bytes, std::string_view what) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return Error::parse_error(path.string() + ": cannot read: " + ec.message());
  if (size > max_bytes) {
    return Error::parse_error(path.string() + ": " + std::to_string(size) +
                              " bytes, more than the " + std::to_string(max_bytes) + " bytes " +
                              std::string(what) + " may have");
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (!in && !in.eof()) return Error::parse_error(path.string() + ": read failed");
  return buffer.str();
}

}  // namespace memtrack::sim::detail
