// Private helpers shared by the importers. Not installed.
#pragma once

#include <memtrack/result.hpp>

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

/// Splits off the next blank-separated word.
inline std::string_view next_word(std::string_view& rest) {
  std::size_t start = 0;
  while (start < rest.size() && (rest[start] == ' ' || rest[start] == '\t'))
    ++start;
  std::size_t end = start;
  while (end < rest.size() && rest[end] != ' ' && rest[end] != '\t')
    ++end;
  const std::string_view word = rest.substr(start, end - start);
  rest.remove_prefix(end);
  return word;
}

/// @return `text` as a decimal count, or a `ParseError` naming `what`
inline Result<std::uint64_t> parse_decimal(std::string_view text, std::string_view what) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc{} && end == text.data() + text.size() && !text.empty()) return value;
  return Error::parse_error("expected " + std::string(what) +
                            " as a decimal number of at most 2^64 - 1, got '" + std::string(text) +
                            "'");
}

}  // namespace memtrack::traces::detail
