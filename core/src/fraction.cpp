#include <memtrack/fraction.hpp>

#include <memtrack/units.hpp>

#include "textkit.hpp"

#include <cmath>
#include <string>

namespace memtrack {
namespace {

using u128 = detail::uint128;

u128 gcd128(u128 a, u128 b) noexcept {
  while (b != 0) {
    const u128 r = a % b;
    a = b;
    b = r;
  }
  return a;
}

u128 pow10_128(unsigned exponent) noexcept {
  u128 value = 1;
  for (unsigned i = 0; i < exponent; ++i)
    value *= 10;
  return value;
}

std::string u128_to_string(u128 value) {
  if (value == 0) return "0";
  std::string reversed;
  while (value != 0) {
    reversed.push_back(static_cast<char>('0' + static_cast<int>(value % 10)));
    value /= 10;
  }
  return {reversed.rbegin(), reversed.rend()};
}

Error fraction_error(std::string_view text, std::string_view why) {
  return Error::invalid_config("invalid fraction '" + std::string(text) + "': " + std::string(why));
}

// Reduces numerator/denominator and checks 0 < value <= 1 and that both fit in 64 bits.
Result<std::pair<std::uint64_t, std::uint64_t>> reduce(u128 numerator, u128 denominator,
                                                       std::string_view text) {
  if (denominator == 0) return fraction_error(text, "the denominator is 0");
  if (numerator == 0) return fraction_error(text, "must be greater than 0");
  if (numerator > denominator) return fraction_error(text, "must be at most 1");
  const u128 divisor = gcd128(numerator, denominator);
  numerator /= divisor;
  denominator /= divisor;
  if (denominator > UINT64_MAX) {
    return fraction_error(text, "too precise: its exact denominator exceeds 2^64 - 1");
  }
  return std::pair{static_cast<std::uint64_t>(numerator), static_cast<std::uint64_t>(denominator)};
}

}  // namespace

Fraction::Fraction(double value) : Fraction(from_double(value).value()) {}

Result<Fraction> Fraction::of(std::uint64_t numerator, std::uint64_t denominator) {
  const std::string text = std::to_string(numerator) + "/" + std::to_string(denominator);
  auto reduced = reduce(numerator, denominator, text);
  if (!reduced) return reduced.error();
  return Fraction{reduced->first, reduced->second};
}

Result<Fraction> Fraction::from_double(double value) {
  const std::string text = std::to_string(value);
  if (std::isnan(value)) return fraction_error("nan", "must be a number in (0, 1]");
  if (!(value > 0.0)) return fraction_error(text, "must be greater than 0");
  if (!(value <= 1.0)) return fraction_error(text, "must be at most 1");
  // value = mantissa * 2^(exponent - 53) exactly, with mantissa a 53-bit integer: this is a
  // decomposition of the bits, not a rounding step.
  int exponent = 0;
  const double significand = std::frexp(value, &exponent);  // value = significand * 2^exponent
  auto mantissa = static_cast<std::uint64_t>(std::ldexp(significand, 53));
  int shift = 53 - exponent;  // value = mantissa / 2^shift, shift >= 52 since value <= 1
  while (shift > 0 && (mantissa & 1U) == 0) {
    mantissa >>= 1U;
    --shift;
  }
  if (shift > 63) {
    return fraction_error(
        text, "too small: its exact denominator 2^" + std::to_string(shift) + " exceeds 2^64 - 1");
  }
  return Fraction{mantissa, std::uint64_t{1} << static_cast<unsigned>(shift)};
}

Result<Fraction> Fraction::parse(std::string_view text) {
  const std::string_view original = text;
  constexpr std::string_view expected =
      "expected a decimal in (0, 1] such as 0.9 or 1, a percentage such as 90%, or a ratio such "
      "as 9/10";
  if (text.empty()) return fraction_error(original, expected);

  if (const auto slash = text.find('/'); slash != std::string_view::npos) {
    const std::string_view top = text.substr(0, slash);
    const std::string_view bottom = text.substr(slash + 1);
    // Each side up to 20 digits (2^64 - 1 has 20): 128 bits hold them, and reduce() decides.
    if (top.empty() || bottom.empty() || !textkit::all_digits(top) ||
        !textkit::all_digits(bottom) || top.size() > textkit::max_decimal_digits ||
        bottom.size() > textkit::max_decimal_digits) {
      return fraction_error(original, expected);
    }
    const auto numerator = textkit::digits_value<u128>(top);
    const auto denominator = textkit::digits_value<u128>(bottom);
    auto reduced = reduce(numerator, denominator, original);
    if (!reduced) return reduced.error();
    return Fraction{reduced->first, reduced->second};
  }

  const bool percent = text.back() == '%';
  if (percent) text.remove_suffix(1);
  const auto parts = textkit::split_decimal(text);  // refuses 1., .5, 1..5, 1.2.3
  if (!parts) return fraction_error(original, expected);
  const auto [integer_part, fraction_part] = textkit::significant(*parts);
  // Bounded so the 128-bit arithmetic below cannot wrap: anything longer is either > 1 or more
  // precise than a 64-bit denominator can hold.
  if (integer_part.size() > 3) return fraction_error(original, "must be at most 1");
  if (fraction_part.size() > 30) {
    return fraction_error(original, "too precise: at most 30 decimal places");
  }
  const u128 numerator = textkit::digits_value<u128>(integer_part) *
                             pow10_128(static_cast<unsigned>(fraction_part.size())) +
                         textkit::digits_value<u128>(fraction_part);
  u128 denominator = pow10_128(static_cast<unsigned>(fraction_part.size()));
  if (percent) denominator *= 100;
  auto reduced = reduce(numerator, denominator, original);
  if (!reduced) return reduced.error();
  return Fraction{reduced->first, reduced->second};
}

std::string Fraction::to_string() const {
  if (numerator_ == denominator_) return "1";
  // A finite decimal exists iff the denominator divides 10^k for some k; 10^19 is the largest
  // power of ten below 2^64.
  for (unsigned places = 1; places <= 19; ++places) {
    const u128 scale = pow10_128(places);
    if (scale % denominator_ == 0) {
      const std::string digits = u128_to_string(scale / denominator_ * numerator_);
      return "0." + std::string(places - digits.size(), '0') + digits;
    }
  }
  return std::to_string(numerator_) + "/" + std::to_string(denominator_);
}

}  // namespace memtrack
