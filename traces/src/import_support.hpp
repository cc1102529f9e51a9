// Private helpers shared by the importers. Not installed.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace memtrack::traces::detail {

/// @return `0x` and the lowercase hexadecimal digits of `value`
inline std::string hex(std::uint64_t value) {
  char digits[16];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value, 16);
  return "0x" + std::string(digits, end);
}

/// @return `text` without leading and trailing blanks and a CR
inline std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

/// @return `text` fit for one header line: control characters and '#' become '_', at most 200
inline std::string printable(std::string_view text) {
  std::string out(text.substr(0, 200));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == '#' || c == 0x7F) c = '_';
  }
  return std::string(trim(out));
}

}  // namespace memtrack::traces::detail
