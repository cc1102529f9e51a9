/**
 * @file fraction.hpp
 * @brief `Fraction`: an exact rational in (0, 1], the share of a device's memory we may use.
 */
#pragma once

#include <memtrack/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace memtrack {

/**
 * @brief An exact rational number in (0, 1], kept in lowest terms.
 *
 * Invariant: `0 < numerator() <= denominator()`, `gcd(numerator(), denominator()) == 1`, both fit
 * in 64 bits. No floating point is ever used with it: `0.9` parses to 9/10 exactly, and a `double`
 * converts to the exact binary value it holds (0.9 as a double is 8106479329266893/2^53).
 */
class Fraction {
 public:
  /// 1/1.
  constexpr Fraction() noexcept = default;

  /**
   * @brief The exact binary value of `value`.
   * @throws BadResultAccess when `from_double(value)` fails
   */
  explicit Fraction(double value);

  /**
   * @brief `numerator / denominator`, reduced.
   * @return the fraction, or `ErrorKind::InvalidConfig` when it is not in (0, 1]
   */
  [[nodiscard]] static Result<Fraction> of(std::uint64_t numerator, std::uint64_t denominator);

  /**
   * @brief The exact value of a double.
   * @return the fraction, or `ErrorKind::InvalidConfig` when `value` is NaN, outside (0, 1], or so
   * small that its exact denominator needs more than 64 bits (below about 2^-11)
   */
  [[nodiscard]] static Result<Fraction> from_double(double value);

  /**
   * @brief Parses decimal text exactly: `0.9`, `0.925`, `1`, `1.0`, `.5`, `90%`, `92.5%`, or a
   * ratio `9/10`.
   * @return the fraction, or `ErrorKind::InvalidConfig` naming the text and what was expected
   */
  [[nodiscard]] static Result<Fraction> parse(std::string_view text);

  [[nodiscard]] constexpr std::uint64_t numerator() const noexcept { return numerator_; }
  [[nodiscard]] constexpr std::uint64_t denominator() const noexcept { return denominator_; }

  /**
   * @brief The shortest exact text: a decimal when the value has a finite decimal expansion of at
   * most 19 places (`0.9`, `1`, `0.925`), else the ratio (`1/3`). `parse(to_string())` round-trips.
   */
  [[nodiscard]] std::string to_string() const;

  friend constexpr bool operator==(const Fraction&, const Fraction&) noexcept = default;

 private:
  constexpr Fraction(std::uint64_t numerator, std::uint64_t denominator) noexcept
      : numerator_(numerator), denominator_(denominator) {}

  std::uint64_t numerator_{1};
  std::uint64_t denominator_{1};
};

}  // namespace memtrack
