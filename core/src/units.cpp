#include <memtrack/units.hpp>

#include "textkit.hpp"

#include <array>
#include <string>
#include <utility>

namespace memtrack {
namespace {

using u128 = detail::uint128;

struct Unit {
  std::string_view name;
  u128 multiplier;
};

constexpr u128 power(u128 base, unsigned exponent) {
  u128 value = 1;
  for (unsigned i = 0; i < exponent; ++i)
    value *= base;
  return value;
}

constexpr std::array<Unit, 14> units{{
    {"", 1},
    {"B", 1},
    {"KiB", power(1024, 1)},
    {"MiB", power(1024, 2)},
    {"GiB", power(1024, 3)},
    {"TiB", power(1024, 4)},
    {"PiB", power(1024, 5)},
    {"EiB", power(1024, 6)},
    {"KB", power(1000, 1)},
    {"MB", power(1000, 2)},
    {"GB", power(1000, 3)},
    {"TB", power(1000, 4)},
    {"PB", power(1000, 5)},
    {"EB", power(1000, 6)},
}};

Error size_error(std::string_view text, std::string_view why) {
  return Error::parse_error("invalid byte size '" + std::string(text) + "': " + std::string(why));
}

std::string with_decimal_point(u128 scaled, unsigned decimals) {
  // Digits are produced least significant first, then reversed.
  std::string reversed;
  unsigned produced = 0;
  while (scaled != 0 || produced <= decimals) {
    if (produced == decimals && decimals != 0) reversed.push_back('.');
    reversed.push_back(static_cast<char>('0' + static_cast<int>(scaled % 10)));
    scaled /= 10;
    ++produced;
  }
  return {reversed.rbegin(), reversed.rend()};
}

}  // namespace

Result<std::uint64_t> parse_byte_size(std::string_view text) {
  constexpr std::string_view expected =
      "expected a number of bytes with an optional unit (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB), "
      "e.g. 24GiB or 1.5GB";
  std::size_t number_end = 0;
  while (number_end < text.size() &&
         (textkit::is_digit(text[number_end]) || text[number_end] == '.')) {
    ++number_end;
  }
  const std::string_view number = text.substr(0, number_end);
  std::string_view unit_name = text.substr(number_end);
  while (!unit_name.empty() && unit_name.front() == ' ')
    unit_name.remove_prefix(1);

  const auto parts = textkit::split_decimal(number);  // refuses 1., .5, 1..5, 1.2.3
  if (!parts) return size_error(text, expected);
  const auto [integer_part, fraction_part] = textkit::significant(*parts);
  if (integer_part.size() > textkit::max_decimal_digits || fraction_part.size() > 18) {
    return size_error(text, "exceeds 2^64 - 1 bytes or has more than 18 decimal places");
  }

  const Unit* unit = nullptr;
  for (const Unit& candidate : units) {
    if (candidate.name == unit_name) unit = &candidate;
  }
  if (unit == nullptr) return size_error(text, expected);

  // Bounds: integer < 10^20 < 2^67 and multiplier <= 2^60 keep every product below 2^127.
  const auto integer = textkit::digits_value<u128>(integer_part);
  const auto fraction = textkit::digits_value<u128>(fraction_part);
  const u128 fraction_scale = power(10, static_cast<unsigned>(fraction_part.size()));
  const u128 fraction_bytes = fraction * unit->multiplier;
  if (fraction_bytes % fraction_scale != 0) {
    return size_error(text, "is not a whole number of bytes");
  }
  const u128 bytes = integer * unit->multiplier + fraction_bytes / fraction_scale;
  if (bytes > max_bytes) return size_error(text, "exceeds 2^64 - 1 bytes");
  return static_cast<std::uint64_t>(bytes);
}

std::string format_gib(std::uint64_t bytes, unsigned decimals) {
  const u128 scale = power(10, decimals);
  const u128 gib = u128{1} << 30U;
  return with_decimal_point((u128{bytes} * scale + gib / 2) / gib, decimals);
}

std::string format_percent(std::uint64_t numerator, std::uint64_t denominator) {
  if (denominator == 0) return "-";
  return with_decimal_point((u128{numerator} * 10000 + denominator / 2) / denominator, 2);
}

}  // namespace memtrack
