/**
 * @file units.hpp
 * @brief Byte quantities: literals (`24_GiB`), checked arithmetic, parsing and printing sizes.
 *
 * Every byte count in memtrack is a `std::uint64_t`. Every addition, subtraction and
 * multiplication that can leave that range goes through the checked helpers here.
 */
#pragma once

#include <memtrack/result.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace memtrack {

namespace detail {
// GCC and Clang provide a 128-bit unsigned integer on every 64-bit target memtrack supports;
// __extension__ keeps -Wpedantic quiet about it. Used only for exact intermediate products.
__extension__ typedef unsigned __int128 uint128;  // NOLINT(modernize-use-using)
}  // namespace detail

/// Largest representable byte count, 2^64 - 1.
inline constexpr std::uint64_t max_bytes = UINT64_MAX;

/// @return `a + b`, or nothing when the sum exceeds 2^64 - 1
[[nodiscard]] constexpr std::optional<std::uint64_t> checked_add(std::uint64_t a,
                                                                 std::uint64_t b) noexcept {
  std::uint64_t sum{};
  if (__builtin_add_overflow(a, b, &sum)) return std::nullopt;
  return sum;
}

/// @return `a - b`, or nothing when `b > a`
[[nodiscard]] constexpr std::optional<std::uint64_t> checked_sub(std::uint64_t a,
                                                                 std::uint64_t b) noexcept {
  if (b > a) return std::nullopt;
  return a - b;
}

/// @return `a * b`, or nothing when the product exceeds 2^64 - 1
[[nodiscard]] constexpr std::optional<std::uint64_t> checked_mul(std::uint64_t a,
                                                                 std::uint64_t b) noexcept {
  std::uint64_t product{};
  if (__builtin_mul_overflow(a, b, &product)) return std::nullopt;
  return product;
}

/**
 * @brief floor(a * b / c), computed exactly through a 128-bit intermediate.
 * @return the quotient, or nothing when `c == 0` or the quotient exceeds 2^64 - 1
 */
[[nodiscard]] constexpr std::optional<std::uint64_t> mul_div_floor(std::uint64_t a, std::uint64_t b,
                                                                   std::uint64_t c) noexcept {
  if (c == 0) return std::nullopt;
  const detail::uint128 quotient = static_cast<detail::uint128>(a) * b / c;
  if (quotient > max_bytes) return std::nullopt;
  return static_cast<std::uint64_t>(quotient);
}

inline namespace literals {
/// `24_GiB` and friends: binary (KiB, MiB, GiB, TiB) and decimal (KB, MB, GB, TB) units.
constexpr std::uint64_t operator""_B(unsigned long long n) noexcept {
  return n;
}
constexpr std::uint64_t operator""_KiB(unsigned long long n) noexcept {
  return n << 10U;
}
constexpr std::uint64_t operator""_MiB(unsigned long long n) noexcept {
  return n << 20U;
}
constexpr std::uint64_t operator""_GiB(unsigned long long n) noexcept {
  return n << 30U;
}
constexpr std::uint64_t operator""_TiB(unsigned long long n) noexcept {
  return n << 40U;
}
constexpr std::uint64_t operator""_KB(unsigned long long n) noexcept {
  return n * 1000U;
}
constexpr std::uint64_t operator""_MB(unsigned long long n) noexcept {
  return n * 1000'000U;
}
constexpr std::uint64_t operator""_GB(unsigned long long n) noexcept {
  return n * 1000'000'000U;
}
}  // namespace literals

/**
 * @brief Parses a byte size: a decimal integer, optionally with a fractional part, and a unit.
 *
 * Units: `B` (or none), `KiB` `MiB` `GiB` `TiB` `PiB` `EiB` (powers of 1024) and `KB` `MB` `GB`
 * `TB` `PB` `EB` (powers of 1000), case-sensitive, with optional spaces before the unit.
 * `1.5GiB` is 1610612736. A fractional value must come out to a whole number of bytes.
 * @return the bytes, or an `ErrorKind::ParseError` naming the text and what was expected
 */
[[nodiscard]] Result<std::uint64_t> parse_byte_size(std::string_view text);

/**
 * @brief Formats `bytes / 2^30` with exactly `decimals` decimal places, rounded half up.
 *
 * Integer arithmetic only: `format_gib(25769803776) == "24.00"`.
 */
[[nodiscard]] std::string format_gib(std::uint64_t bytes, unsigned decimals = 2);

/// Formats `numerator / denominator` as a percentage with two decimals (rounded half up).
[[nodiscard]] std::string format_percent(std::uint64_t numerator, std::uint64_t denominator);

}  // namespace memtrack
