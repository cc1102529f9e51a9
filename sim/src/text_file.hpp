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

/// Splits text into lines, dropping `#` comments, blanks around each line and empty lines, and
/// counts line numbers for error messages.
class LineReader {
 public:
  explicit LineReader(std::string_view text) : rest_(text) {}

  /// Moves to the next non-empty line. @return false at the end of the text
  bool next(std::string_view& line) {
    while (!rest_.empty()) {
      ++line_number_;
      const std::size_t end = rest_.find('\n');
      line = rest_.substr(0, end);
      rest_ = end == std::string_view::npos ? std::string_view{} : rest_.substr(end + 1);
      if (const std::size_t hash = line.find('#'); hash != std::string_view::npos) {
        line = line.substr(0, hash);
      }
      line = trim(line);
      if (!line.empty()) return true;
    }
    return false;
  }

  /// @return the 1-based number of the line last read (the last line at the end)
  [[nodiscard]] std::size_t line_number() const { return line_number_; }

 private:
  std::string_view rest_;
  std::size_t line_number_{0};
};

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
