// Private helpers shared by the core's parsers. Not installed.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace memtrack::detail {

/// @return the value of a canonical decimal (digits only, no leading zeros unless "0"), or
/// nothing when the text is not one or exceeds 2^64 - 1
[[nodiscard]] inline std::optional<std::uint64_t> parse_canonical_u64(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  if (text.size() > 1 && text.front() == '0') return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

/// @return whether every character is a decimal digit (true for empty text)
[[nodiscard]] inline bool all_digits(std::string_view text) noexcept {
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace memtrack::detail
