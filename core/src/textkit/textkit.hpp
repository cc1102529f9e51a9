// memtrack's one text toolkit: decimal and hexadecimal numbers (parsed and formatted), blanks,
// words and lines, for every parser of core, sim and traces. Internal: never installed; sim and
// traces reach it through a build-tree include path. The parsers run once per trace event, so
// they work on views, allocate nothing and never throw; only the formatters that return a
// `std::string` allocate.
//
// The rules, once for every parser:
// - A number is one or more ASCII digits and nothing else: no sign, no blank, no `0x`, no
//   digit separator. Leading zeros are allowed (`parse_u64`) unless the caller wants the
//   canonical form (`parse_canonical_u64`). At most 2^64 - 1, checked.
// - Blanks between words are spaces and tabs. A CR is part of a line's end: `trim` removes it
//   (at either end, as a CRLF file leaves it), it never separates words.
// - A decimal with a point has digits on both sides of exactly one point (`1.5`; never `1.`,
//   `.5`, `1..5` or `1.2.3`).
#pragma once

#include <memtrack/result.hpp>

#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace memtrack::textkit {

// ---- characters ----

/// @return whether `c` is an ASCII decimal digit
[[nodiscard]] constexpr bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

/// @return whether `c` separates words: a space or a tab
[[nodiscard]] constexpr bool is_word_blank(char c) noexcept {
  return c == ' ' || c == '\t';
}

/// @return whether `trim` removes `c`: a space, a tab or a CR
[[nodiscard]] constexpr bool is_blank(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\r';
}

/// @return whether every character is a decimal digit (true for empty text)
[[nodiscard]] constexpr bool all_digits(std::string_view text) noexcept {
  for (const char c : text) {
    if (!is_digit(c)) return false;
  }
  return true;
}

// ---- blanks, words, lines ----

/// @return `text` without leading and trailing blanks (spaces, tabs, CRs)
[[nodiscard]] constexpr std::string_view trim(std::string_view text) noexcept {
  while (!text.empty() && is_blank(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && is_blank(text.back()))
    text.remove_suffix(1);
  return text;
}

/// @return `text` without leading spaces and tabs (what follows a word)
[[nodiscard]] constexpr std::string_view skip_word_blanks(std::string_view text) noexcept {
  std::size_t start = 0;
  while (start < text.size() && is_word_blank(text[start]))
    ++start;
  return text.substr(start);
}

/// Splits off the next space- or tab-separated word. @return it (empty at the end of `rest`)
/// (Inlined where GCC would call it: every trace line runs it once per word.)
[[nodiscard, gnu::always_inline]] constexpr std::string_view next_word(
    std::string_view& rest) noexcept {
  std::size_t start = 0;
  while (start < rest.size() && is_word_blank(rest[start]))
    ++start;
  std::size_t end = start;
  while (end < rest.size() && !is_word_blank(rest[end]))
    ++end;
  const std::string_view word = rest.substr(start, end - start);
  rest.remove_prefix(end);
  return word;
}

/// @return `line` without a `#` comment and without surrounding blanks
[[nodiscard]] constexpr std::string_view content(std::string_view line) noexcept {
  if (const std::size_t hash = line.find('#'); hash != std::string_view::npos) {
    line = line.substr(0, hash);
  }
  return trim(line);
}

/// Splits off the next line of `rest` (up to a `\n`, which neither keeps; the last line may
/// lack one). @return false when `rest` is empty
constexpr bool next_line(std::string_view& rest, std::string_view& line) noexcept {
  if (rest.empty()) return false;
  const std::size_t end = rest.find('\n');
  line = rest.substr(0, end);
  rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
  return true;
}

/// The content lines of a whole text (`content`: comments and blanks dropped, empty lines
/// skipped), with line numbers for error messages.
class LineReader {
 public:
  explicit LineReader(std::string_view text) noexcept : rest_(text) {}

  /// Moves to the next non-empty line. @return false at the end of the text
  bool next(std::string_view& line) noexcept {
    std::string_view raw;
    while (next_line(rest_, raw)) {
      ++line_number_;
      line = content(raw);
      if (!line.empty()) return true;
    }
    return false;
  }

  /// @return the 1-based number of the line last read (the last line at the end)
  [[nodiscard]] std::size_t line_number() const noexcept { return line_number_; }

 private:
  std::string_view rest_;
  std::size_t line_number_{0};
};

/**
 * @brief Reads a whole text file of at most `max_bytes` (checked before reading, so a huge file
 * is refused without being loaded).
 * @param what the kind of file, for the error ("a profile")
 * @return its bytes, or a ParseError naming the file
 */
[[nodiscard]] Result<std::string> read_text_file(const std::filesystem::path& path,
                                                 std::uintmax_t max_bytes, std::string_view what);

// ---- decimal and hexadecimal integers ----

/// The most digits of a 64-bit value in decimal (2^64 - 1 has 20).
inline constexpr std::size_t max_decimal_digits = 20;
/// The most digits of a 64-bit value in hexadecimal.
inline constexpr std::size_t max_hex_digits = 16;

/// @return the value of one or more decimal digits (leading zeros allowed), or nothing for any
/// other text (empty, a sign, a blank, any other character) or a value above 2^64 - 1
[[nodiscard]] constexpr std::optional<std::uint64_t> parse_u64(std::string_view text) noexcept {
  if (text.empty()) return std::nullopt;
  std::uint64_t value = 0;
  // 19 digits stay below 10^19 < 2^64: no overflow check needed for them.
  std::size_t i = 0;
  for (const std::size_t unchecked = text.size() < 19 ? text.size() : 19; i < unchecked; ++i) {
    const auto digit = static_cast<unsigned>(text[i]) - unsigned{'0'};
    if (digit > 9) return std::nullopt;
    value = value * 10 + digit;
  }
  for (; i < text.size(); ++i) {
    const auto digit = static_cast<unsigned>(text[i]) - unsigned{'0'};
    if (digit > 9) return std::nullopt;
    if (value > (UINT64_MAX - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

/// @return the value of `digits`, all decimal digits (`all_digits`), in an unsigned type wide
/// enough for them (unchecked: the caller bounds their count, e.g. 38 for a 128-bit type)
template <typename Unsigned>
[[nodiscard]] constexpr Unsigned digits_value(std::string_view digits) noexcept {
  Unsigned value = 0;
  for (const char c : digits)
    value = value * 10 + static_cast<unsigned>(c - '0');
  return value;
}

/// @return the value of a canonical decimal (`parse_u64` without leading zeros, except "0")
[[nodiscard]] constexpr std::optional<std::uint64_t> parse_canonical_u64(
    std::string_view text) noexcept {
  if (text.size() > 1 && text.front() == '0') return std::nullopt;
  return parse_u64(text);
}

/// Each character's value as a hexadecimal digit (either case), or 255: a table, not
/// comparisons, because an address's digits and letters mix unpredictably.
inline constexpr std::array<std::uint8_t, 256> hex_digit_values = [] {
  std::array<std::uint8_t, 256> table{};
  for (std::size_t c = 0; c < table.size(); ++c) {
    table[c] = c >= '0' && c <= '9'   ? static_cast<std::uint8_t>(c - '0')
               : c >= 'a' && c <= 'f' ? static_cast<std::uint8_t>(c - 'a' + 10)
               : c >= 'A' && c <= 'F' ? static_cast<std::uint8_t>(c - 'A' + 10)
                                      : std::uint8_t{255};
  }
  return table;
}();

/// @return the value of one to 16 hexadecimal digits (either case, no `0x`), or nothing
[[nodiscard]] constexpr std::optional<std::uint64_t> parse_hex_digits(
    std::string_view text) noexcept {
  if (text.empty() || text.size() > max_hex_digits) return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : text) {
    const std::uint8_t digit = hex_digit_values[static_cast<unsigned char>(c)];
    if (digit > 15) return std::nullopt;
    value = (value << 4U) | digit;
  }
  return value;
}

/// @return the value of `0x` and one to 16 hexadecimal digits, or nothing
[[nodiscard]] constexpr std::optional<std::uint64_t> parse_0x_hex(std::string_view text) noexcept {
  if (!text.starts_with("0x")) return std::nullopt;
  return parse_hex_digits(text.substr(2));
}

/// Writes `value`'s decimal digits at `out` (room for `max_decimal_digits`). @return their end
inline char* write_decimal(char* out, std::uint64_t value) noexcept {
  // std::to_chars: two digits a step (the trace writers format every event's numbers with it).
  return std::to_chars(out, out + max_decimal_digits, value).ptr;
}

/// Writes `value`'s lowercase hexadecimal digits (no `0x`) at `out` (room for
/// `max_hex_digits`). @return their end
inline char* write_hex(char* out, std::uint64_t value) noexcept {
  return std::to_chars(out, out + max_hex_digits, value, 16).ptr;
}

/// Appends `value` in decimal.
inline void append_decimal(std::string& out, std::uint64_t value) {
  char digits[max_decimal_digits];
  // (A pointer and a length: the two-pointer overload is the iterator range, which replaces.)
  out.append(digits, static_cast<std::size_t>(write_decimal(digits, value) - digits));
}

/// Appends `0x` and `value` in lowercase hexadecimal.
inline void append_hex(std::string& out, std::uint64_t value) {
  char digits[2 + max_hex_digits] = {'0', 'x'};
  out.append(digits, static_cast<std::size_t>(write_hex(digits + 2, value) - digits));
}

/// @return `value` in decimal
[[nodiscard]] inline std::string decimal(std::uint64_t value) {
  std::string out;
  append_decimal(out, value);
  return out;
}

/// @return `0x` and the lowercase hexadecimal digits of `value`
[[nodiscard]] inline std::string hex(std::uint64_t value) {
  std::string out;
  append_hex(out, value);
  return out;
}

// ---- decimals with a point ----

/// A decimal's digits on each side of its point (`fraction` empty when it has none).
struct DecimalParts {
  std::string_view integer;
  std::string_view fraction;
};

/// @return the digits of `text` as `DIGITS` or `DIGITS.DIGITS`, or nothing for any other text
/// (`1.`, `.5`, `1..5`, `1.2.3`, a sign, a blank)
[[nodiscard]] constexpr std::optional<DecimalParts> split_decimal(std::string_view text) noexcept {
  const std::size_t dot = text.find('.');
  DecimalParts parts{text.substr(0, dot), {}};
  if (dot != std::string_view::npos) {
    parts.fraction = text.substr(dot + 1);
    if (parts.fraction.empty() || !all_digits(parts.fraction)) return std::nullopt;
  }
  if (parts.integer.empty() || !all_digits(parts.integer)) return std::nullopt;
  return parts;
}

/// @return `parts` without the zeros that do not change its value: leading ones of the integer
/// part (one `0` stays) and trailing ones of the fraction
[[nodiscard]] constexpr DecimalParts significant(DecimalParts parts) noexcept {
  while (parts.integer.size() > 1 && parts.integer.front() == '0')
    parts.integer.remove_prefix(1);
  while (!parts.fraction.empty() && parts.fraction.back() == '0')
    parts.fraction.remove_suffix(1);
  return parts;
}

}  // namespace memtrack::textkit
