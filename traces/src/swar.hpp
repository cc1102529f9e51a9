// Eight characters at a time ("SWAR": SIMD within a register), for the importers' scans of
// digits and strings: a 64-bit word whose lowest byte is the first character. A test's result
// is exact up to the first byte it marks; the bytes after it may be marked wrongly (a carry or
// a borrow crosses into them), so a caller takes only the first mark.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

namespace memtrack::traces::swar {

/// @return `byte` in each byte of a word
constexpr std::uint64_t each_byte(std::uint8_t byte) noexcept {
  return 0x0101010101010101ULL * byte;
}

/// @return the 8 bytes at `p`, the first in the lowest byte
inline std::uint64_t load8(const char* p) noexcept {
  std::uint64_t word = 0;
  std::memcpy(&word, p, sizeof word);
  if constexpr (std::endian::native == std::endian::big) word = __builtin_bswap64(word);
  return word;
}

/// @return a word whose bytes are nonzero where `word`'s are not decimal digits (exact up to
/// the first such byte: the bytes after it may be wrong)
constexpr std::uint64_t non_digits(std::uint64_t word) noexcept {
  // A digit is 0x30 to 0x39: its high nibble is 3, and still 3 after adding 6.
  return ((word & each_byte(0xF0)) ^ each_byte(0x30)) |
         (((word + each_byte(0x06)) & each_byte(0xF0)) ^ each_byte(0x30));
}

/// @return the high bit of each byte of `word` that is not zero
constexpr std::uint64_t nonzero_bytes(std::uint64_t word) noexcept {
  return (((word & each_byte(0x7F)) + each_byte(0x7F)) | word) & each_byte(0x80);
}

/// @return the high bit of each byte that is not a hexadecimal digit (either case; exact up to
/// the first such byte)
constexpr std::uint64_t non_hex_digits(std::uint64_t word) noexcept {
  const std::uint64_t folded = word | each_byte(0x20);  // 'A'-'F' to 'a'-'f'
  const std::uint64_t low = folded & each_byte(0x7F);   // no carry between bytes below
  const std::uint64_t from_a = low + each_byte(0x80 - 'a');
  const std::uint64_t past_f = low + each_byte(0x80 - 'f' - 1);
  const std::uint64_t letters = from_a & ~past_f & ~folded & each_byte(0x80);
  return nonzero_bytes(non_digits(word)) & ~letters;
}

/// @return how many of the word's bytes, from the first, pass (`other`: a marker in each byte
/// that does not, as the two functions above give)
inline unsigned leading_run(std::uint64_t other) noexcept {
  return other == 0 ? 8 : static_cast<unsigned>(std::countr_zero(other)) / 8;
}

/// @return the high bit of each byte equal to `byte` (exact up to the first such byte)
constexpr std::uint64_t bytes_equal(std::uint64_t word, char byte) noexcept {
  const std::uint64_t zero_where_equal = word ^ each_byte(static_cast<std::uint8_t>(byte));
  return (zero_where_equal - each_byte(0x01)) & ~zero_where_equal & each_byte(0x80);
}

/// @return the high bit of each byte below `bound` (at most 0x80; exact up to the first such
/// byte)
constexpr std::uint64_t bytes_below(std::uint64_t word, std::uint8_t bound) noexcept {
  return (word - each_byte(bound)) & ~word & each_byte(0x80);
}

/// @return the value of `count` (1 to 8) decimal digits, the first in the lowest byte
constexpr std::uint64_t digits_value(std::uint64_t word, unsigned count) noexcept {
  word = (word & each_byte(0x0F)) << (64 - 8 * count);  // leading zeros for the missing
  word = (word * (10 * 256 + 1)) >> 8U;                 // pairs of digits
  word = ((word & 0x00FF00FF00FF00FFULL) * (100 * 65536 + 1)) >> 16U;  // fours
  return ((word & 0x0000FFFF0000FFFFULL) * (10000ULL * (1ULL << 32U) + 1)) >> 32U;
}

/// @return the value of `count` (1 to 8) hexadecimal digits, the first in the lowest byte
constexpr std::uint64_t hex_digits_value(std::uint64_t word, unsigned count) noexcept {
  // '0'-'9' are 0x3N, 'a'-'f' 0x6N and 'A'-'F' 0x4N: a letter's low nibble + 9 is its value.
  word = (word & each_byte(0x0F)) + ((word >> 6U) & each_byte(0x01)) * 9;
  word <<= 64 - 8 * count;
  word = ((word << 4U) | (word >> 8U)) & 0x00FF00FF00FF00FFULL;
  word = ((word << 8U) | (word >> 16U)) & 0x0000FFFF0000FFFFULL;
  return ((word << 16U) | (word >> 32U)) & 0xFFFFFFFFULL;
}

/// 10 to the power of 0 to 8 (the weight of a run of digits)
inline constexpr std::array<std::uint64_t, 9> powers_of_ten{
    1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

}  // namespace memtrack::traces::swar
