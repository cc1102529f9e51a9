// The text toolkit (core/src/textkit/textkit.hpp) and the size and fraction parsers built on it:
// every value round-trips through format and parse, and each boundary and malformed form is pinned.
// Expected values are written out by hand (or computed with 128-bit arithmetic independent of
// the parsers).
#include "textkit.hpp"

#include <memtrack/fraction.hpp>
#include <memtrack/units.hpp>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

namespace memtrack {
namespace {

using u128 = detail::uint128;

constexpr std::string_view max_u64_text = "18446744073709551615";  // 2^64 - 1, 20 digits
constexpr std::string_view two_to_64_text = "18446744073709551616";

/// `value` in decimal, by repeated division (independent of textkit::decimal).
std::string reference_decimal(u128 value) {
  std::string reversed;
  do {
    reversed.push_back(static_cast<char>('0' + static_cast<int>(value % 10)));
    value /= 10;
  } while (value != 0);
  return {reversed.rbegin(), reversed.rend()};
}

/// A u64 from the whole range, with the edges and digit-count boundaries often.
rc::Gen<std::uint64_t> any_u64() {
  return rc::gen::oneOf(
      rc::gen::arbitrary<std::uint64_t>(),
      rc::gen::element<std::uint64_t>(0, 1, 9, 10, 99, 100, UINT64_MAX, UINT64_MAX - 1,
                                      9999999999999999999ULL, 10000000000000000000ULL),
      rc::gen::map(rc::gen::inRange(0, 64),
                   [](int bits) { return (std::uint64_t{1} << static_cast<unsigned>(bits)) - 1; }));
}

// ---- decimal and hexadecimal integers ----

RC_GTEST_PROP(TextDecimal, EveryValueRoundTrips, ()) {
  const std::uint64_t value = *any_u64();
  const std::string text = textkit::decimal(value);
  RC_ASSERT(text == reference_decimal(value));
  RC_ASSERT(textkit::parse_u64(text) == value);
  RC_ASSERT(textkit::parse_canonical_u64(text) == value);
  // Leading zeros change nothing for parse_u64 and are refused by the canonical form.
  const std::string padded = std::string(*rc::gen::inRange<std::size_t>(1, 30), '0') + text;
  RC_ASSERT(textkit::parse_u64(padded) == value);
  RC_ASSERT(!textkit::parse_canonical_u64(padded).has_value());
}

RC_GTEST_PROP(TextHex, EveryValueRoundTrips, ()) {
  const std::uint64_t value = *any_u64();
  const std::string text = textkit::hex(value);
  RC_ASSERT(textkit::parse_0x_hex(text) == value);
  std::string upper = text.substr(2);
  for (char& c : upper) {
    if (c >= 'a' && c <= 'f') c = static_cast<char>(c - 'a' + 'A');
  }
  RC_ASSERT(textkit::parse_hex_digits(upper) == value);
  // Lowercase, no leading zeros, at most 16 digits.
  RC_ASSERT(text.size() <= 18U);
  RC_ASSERT(text == "0x0" || text[2] != '0');
  for (const char c : text.substr(2))
    RC_ASSERT(textkit::is_digit(c) || (c >= 'a' && c <= 'f'));
}

TEST(TextDecimal, TwoToThe64MinusOneWithAllItsDigitsAndNoMore) {
  EXPECT_EQ(textkit::parse_u64(max_u64_text), UINT64_MAX);
  EXPECT_EQ(textkit::parse_canonical_u64(max_u64_text), UINT64_MAX);
  EXPECT_EQ(textkit::decimal(UINT64_MAX), max_u64_text);
  EXPECT_FALSE(textkit::parse_u64(two_to_64_text).has_value());
  EXPECT_FALSE(textkit::parse_u64("18446744073709551620").has_value());
  EXPECT_FALSE(textkit::parse_u64("99999999999999999999").has_value());
  EXPECT_FALSE(textkit::parse_u64("184467440737095516150").has_value());         // 21 digits
  EXPECT_EQ(textkit::parse_u64("9999999999999999999"), 9999999999999999999ULL);  // 19 nines
  EXPECT_EQ(textkit::parse_u64("000000000000000000000018446744073709551615"), UINT64_MAX);
}

TEST(TextDecimal, RefusesEverythingButDigits) {
  for (const std::string_view bad : {"", "+1", "-1", "-0", " 1", "1 ", "1 2", "1\t", "1\r", "0x10",
                                     "1.0", "1e3", "1,000", "1_000", "١"}) {
    EXPECT_FALSE(textkit::parse_u64(bad).has_value()) << "'" << bad << "'";
    EXPECT_FALSE(textkit::parse_canonical_u64(bad).has_value()) << "'" << bad << "'";
  }
  EXPECT_EQ(textkit::parse_u64("007"), 7U);
  EXPECT_FALSE(textkit::parse_canonical_u64("007").has_value());
  EXPECT_FALSE(textkit::parse_canonical_u64("00").has_value());
  EXPECT_EQ(textkit::parse_canonical_u64("0"), 0U);
}

TEST(TextHex, SixteenDigitsAndNoMore) {
  EXPECT_EQ(textkit::hex(0), "0x0");
  EXPECT_EQ(textkit::hex(255), "0xff");
  EXPECT_EQ(textkit::hex(0x7f0000000000ULL), "0x7f0000000000");
  EXPECT_EQ(textkit::hex(UINT64_MAX), "0xffffffffffffffff");
  EXPECT_EQ(textkit::parse_0x_hex("0xffffffffffffffff"), UINT64_MAX);
  EXPECT_EQ(textkit::parse_0x_hex("0xFfFf"), 0xFFFFU);
  EXPECT_EQ(textkit::parse_0x_hex("0x0000000000000001"), 1U);
  EXPECT_FALSE(textkit::parse_0x_hex("0x10000000000000000").has_value());  // 17 digits: 2^64
  EXPECT_FALSE(textkit::parse_0x_hex("0x00000000000000001").has_value());  // 17 digits
  for (const std::string_view bad :
       {"", "0x", "0X1", "x1", "ff", "0x-1", "0x+1", "0x 1", "0x1 ", "0xg", "0x1.0", "-0x1"}) {
    EXPECT_FALSE(textkit::parse_0x_hex(bad).has_value()) << "'" << bad << "'";
  }
  EXPECT_FALSE(textkit::parse_hex_digits("").has_value());
  EXPECT_FALSE(textkit::parse_hex_digits("0x1").has_value());
}

TEST(TextFormat, AppendsWithoutDisturbingWhatIsThere) {
  std::string out = "a=";
  textkit::append_decimal(out, 0);
  out += " b=";
  textkit::append_decimal(out, 1234567890123ULL);
  out += " addr=";
  textkit::append_hex(out, 0xdeadbeefULL);
  EXPECT_EQ(out, "a=0 b=1234567890123 addr=0xdeadbeef");
}

// ---- blanks, words, lines ----

TEST(TextBlanks, TrimRemovesSpacesTabsAndCarriageReturnsAtEitherEnd) {
  EXPECT_EQ(textkit::trim(" \t x y \t\r"), "x y");
  EXPECT_EQ(textkit::trim("\rx\r"), "x");
  EXPECT_EQ(textkit::trim("x\r\r"), "x");
  EXPECT_EQ(textkit::trim(" \r\t "), "");
  EXPECT_EQ(textkit::trim("x\ny"), "x\ny");  // a newline is not a blank: lines are split first
}

TEST(TextWords, SplitsOnSpacesAndTabsOnlyWithoutCopying) {
  const std::string_view line = "  alloc\tgpu:0  1024 a\rb ";
  std::string_view rest = line;
  std::vector<std::string_view> words;
  for (auto word = textkit::next_word(rest); !word.empty(); word = textkit::next_word(rest))
    words.push_back(word);
  EXPECT_EQ(words, (std::vector<std::string_view>{"alloc", "gpu:0", "1024", "a\rb"}));
  EXPECT_EQ(words[0].data(), line.data() + 2);  // a view into the line
  EXPECT_TRUE(textkit::next_word(rest).empty());
  EXPECT_EQ(textkit::skip_word_blanks(" \t mark text "), "mark text ");
}

TEST(TextLines, ContentDropsCommentsBlanksAndEmptyLinesAndCountsLines) {
  textkit::LineReader reader("first # comment\r\n\n   \r\n# only a comment\n\tsecond\r\nthird");
  std::vector<std::pair<std::string_view, std::size_t>> lines;
  for (std::string_view line; reader.next(line);)
    lines.emplace_back(line, reader.line_number());
  EXPECT_EQ(lines, (std::vector<std::pair<std::string_view, std::size_t>>{
                       {"first", 1}, {"second", 5}, {"third", 6}}));
  EXPECT_EQ(reader.line_number(), 6U);
  textkit::LineReader trailing("a\n");
  std::string_view line;
  EXPECT_TRUE(trailing.next(line));
  EXPECT_FALSE(trailing.next(line));
  EXPECT_EQ(trailing.line_number(), 1U);
}

// ---- decimals with a point ----

TEST(TextDecimalPoint, DigitsOnBothSidesOfOnePoint) {
  const auto parts = textkit::split_decimal("012.340");
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(parts->integer, "012");
  EXPECT_EQ(parts->fraction, "340");
  const auto significant = textkit::significant(*parts);
  EXPECT_EQ(significant.integer, "12");
  EXPECT_EQ(significant.fraction, "34");
  EXPECT_EQ(textkit::significant(*textkit::split_decimal("000.000")).integer, "0");
  EXPECT_EQ(textkit::significant(*textkit::split_decimal("000.000")).fraction, "");
  EXPECT_EQ(textkit::split_decimal("7")->fraction, "");
  for (const std::string_view bad : {"", ".", "1.", ".5", "1..5", "1.2.3", "+1", "-1", "+1.5",
                                     "1 .5", "1. 5", " 1.5", "1.5 ", "1,5", "1.5e3", "1 5"}) {
    EXPECT_FALSE(textkit::split_decimal(bad).has_value()) << "'" << bad << "'";
  }
}

// ---- the size parser (units.cpp) on the toolkit ----

/// The unit names a size may end with, and their multipliers.
struct UnitCase {
  std::string_view name;
  u128 multiplier;
  unsigned binary_exponent;   ///< 2^this for binary units, else 0
  unsigned decimal_exponent;  ///< 10^this for decimal units, else 0
};
const std::vector<UnitCase>& unit_cases() {
  static const std::vector<UnitCase> cases = {
      {"", 1, 0, 0},
      {"B", 1, 0, 0},
      {"KiB", u128{1} << 10U, 10, 0},
      {"MiB", u128{1} << 20U, 20, 0},
      {"GiB", u128{1} << 30U, 30, 0},
      {"TiB", u128{1} << 40U, 40, 0},
      {"PiB", u128{1} << 50U, 50, 0},
      {"EiB", u128{1} << 60U, 60, 0},
      {"KB", 1000, 0, 3},
      {"MB", 1000000, 0, 6},
      {"GB", 1000000000, 0, 9},
      {"TB", 1000000000000ULL, 0, 12},
      {"PB", 1000000000000000ULL, 0, 15},
      {"EB", 1000000000000000000ULL, 0, 18},
  };
  return cases;
}

u128 pow10(unsigned exponent) {
  u128 value = 1;
  for (unsigned i = 0; i < exponent; ++i)
    value *= 10;
  return value;
}

RC_GTEST_PROP(TextSizes, WholeCountsOfEveryUnitRoundTrip, ()) {
  const UnitCase unit = *rc::gen::elementOf(unit_cases());
  const auto count = static_cast<std::uint64_t>(UINT64_MAX / unit.multiplier);
  const std::uint64_t n = *rc::gen::oneOf(rc::gen::inRange<std::uint64_t>(0, count),
                                          rc::gen::just(count), rc::gen::just(count + 1));
  const u128 bytes = u128{n} * unit.multiplier;
  const std::string text = reference_decimal(n) + std::string(unit.name);
  const auto parsed = parse_byte_size(text);
  if (bytes > UINT64_MAX) {
    RC_ASSERT(!parsed.has_value());
  } else {
    RC_ASSERT(parsed.has_value());
    RC_ASSERT(*parsed == static_cast<std::uint64_t>(bytes));
    // A blank between the number and the unit is allowed; leading zeros are.
    if (!unit.name.empty()) {
      const auto spaced = parse_byte_size(reference_decimal(n) + " " + std::string(unit.name));
      RC_ASSERT(spaced.has_value() && *spaced == *parsed);
    }
    const auto padded = parse_byte_size("00" + text);
    RC_ASSERT(padded.has_value() && *padded == *parsed);
  }
}

RC_GTEST_PROP(TextSizes, ExactFractionsOfAUnitRoundTrip, ()) {
  // A fraction r / 2^k of a binary unit (k decimal places) or d digits of a decimal unit's
  // 10^e (d <= e) is a whole number of bytes; at most 18 places.
  const UnitCase unit = *rc::gen::elementOf(unit_cases());
  const unsigned max_places =
      std::min(18U, unit.binary_exponent != 0 ? unit.binary_exponent : unit.decimal_exponent);
  RC_PRE(max_places > 0U);
  const auto places = *rc::gen::inRange<unsigned>(1, max_places + 1);
  const auto whole_units =
      *rc::gen::inRange<std::uint64_t>(0, static_cast<std::uint64_t>(UINT64_MAX / unit.multiplier));
  u128 fraction_digits = 0;  // the decimal digits after the point, as a number
  u128 fraction_bytes = 0;
  if (unit.binary_exponent != 0) {
    // r / 2^places = r * 5^places / 10^places
    const auto r = *rc::gen::inRange<std::uint64_t>(1, std::uint64_t{1} << places);
    u128 five = 1;
    for (unsigned i = 0; i < places; ++i)
      five *= 5;
    fraction_digits = u128{r} * five;
    fraction_bytes = u128{r} << (unit.binary_exponent - places);
  } else {
    const auto digits =
        *rc::gen::inRange<std::uint64_t>(1, static_cast<std::uint64_t>(pow10(places)));
    fraction_digits = digits;
    fraction_bytes = u128{digits} * pow10(unit.decimal_exponent - places);
  }
  std::string after_point = reference_decimal(fraction_digits);
  after_point.insert(0, places - after_point.size(), '0');
  const std::string text =
      reference_decimal(whole_units) + "." + after_point + std::string(unit.name);
  const u128 bytes = u128{whole_units} * unit.multiplier + fraction_bytes;
  const auto parsed = parse_byte_size(text);
  if (bytes > UINT64_MAX) {
    RC_ASSERT(!parsed.has_value());
  } else {
    RC_ASSERT(parsed.has_value());
    RC_ASSERT(*parsed == static_cast<std::uint64_t>(bytes));
  }
}

TEST(TextSizes, TwoToThe64MinusOneBytesWithAllTwentyDigitsAndNoMore) {
  EXPECT_EQ(parse_byte_size("18446744073709551615").value(), UINT64_MAX);
  EXPECT_EQ(parse_byte_size("18446744073709551615B").value(), UINT64_MAX);
  EXPECT_EQ(parse_byte_size("0018446744073709551615").value(), UINT64_MAX);
  for (const std::string bad :
       {"18446744073709551616", "18446744073709551616B", "99999999999999999999"}) {
    const auto parsed = parse_byte_size(bad);
    ASSERT_FALSE(parsed.has_value()) << bad;
    EXPECT_EQ(parsed.error().to_string(),
              "invalid byte size '" + bad + "': exceeds 2^64 - 1 bytes");
  }
  const auto digits21 = parse_byte_size("100000000000000000000");
  ASSERT_FALSE(digits21.has_value());
  EXPECT_EQ(digits21.error().to_string(),
            "invalid byte size '100000000000000000000': exceeds 2^64 - 1 bytes or has more than "
            "18 decimal places");
}

TEST(TextSizes, EighteenDecimalPlacesAndNoMore) {
  EXPECT_EQ(parse_byte_size("0.000000000000000001EB").value(), 1U);  // 18 places
  EXPECT_EQ(parse_byte_size("1.000000000000000001EB").value(), 1000000000000000001ULL);
  EXPECT_EQ(parse_byte_size("0.0000000000000000010EB").value(), 1U);  // a trailing zero
  const auto nineteen = parse_byte_size("0.0000000000000000001EB");
  ASSERT_FALSE(nineteen.has_value());
  EXPECT_EQ(nineteen.error().to_string(),
            "invalid byte size '0.0000000000000000001EB': exceeds 2^64 - 1 bytes or "
            "has more than 18 decimal places");
}

TEST(TextSizes, MalformedNumbersAreRefusedNamingTheText) {
  for (const std::string bad :
       {"1.", "1.GiB", ".5", ".5GiB", "1.2.3GiB", "1..5", "1..5GiB", "+1", "+1GiB", "-1GiB",
        "1 024", "1 024GiB", "1. 5GiB", "1 .5GiB", " 1GiB", "1GiB ", "1\tGiB", "0x10", "1GiB1"}) {
    const auto parsed = parse_byte_size(bad);
    ASSERT_FALSE(parsed.has_value()) << "'" << bad << "' gave " << *parsed;
    EXPECT_EQ(parsed.error().to_string(),
              "invalid byte size '" + bad +
                  "': expected a number of bytes with an optional unit (B, KiB, MiB, GiB, TiB, "
                  "KB, MB, GB, TB), e.g. 24GiB or 1.5GB");
  }
  EXPECT_EQ(parse_byte_size("007GiB").value(), 7ULL << 30U);  // leading zeros are allowed
  EXPECT_EQ(parse_byte_size("1.50GiB").value(), 3ULL << 29U);
}

// ---- the fraction parser (fraction.cpp) on the toolkit ----

RC_GTEST_PROP(TextFractions, RatiosRoundTripReduced, ()) {
  const std::uint64_t denominator = *rc::gen::suchThat(any_u64(), [](auto d) { return d != 0; });
  const std::uint64_t numerator =
      *rc::gen::oneOf(rc::gen::inRange<std::uint64_t>(1, denominator), rc::gen::just(denominator));
  RC_PRE(numerator != 0);
  const std::uint64_t divisor = std::gcd(numerator, denominator);
  const auto parsed =
      Fraction::parse(reference_decimal(numerator) + "/" + reference_decimal(denominator));
  RC_ASSERT(parsed.has_value());
  RC_ASSERT(parsed->numerator() == numerator / divisor);
  RC_ASSERT(parsed->denominator() == denominator / divisor);
  // Its own text parses back to it.
  const auto again = Fraction::parse(parsed->to_string());
  RC_ASSERT(again.has_value() && *again == *parsed);
}

TEST(TextFractions, TheLargestDenominatorWithAllTwentyDigits) {
  const auto parsed = Fraction::parse("1/18446744073709551615");
  ASSERT_TRUE(parsed.has_value()) << parsed.error().to_string();
  EXPECT_EQ(parsed->numerator(), 1U);
  EXPECT_EQ(parsed->denominator(), UINT64_MAX);
  EXPECT_EQ(Fraction::parse("18446744073709551615/18446744073709551615")->denominator(), 1U);
  // 2^64 / 2^65 reduces to 1/2: the digits may exceed 2^64 - 1 when the ratio does not.
  EXPECT_EQ(Fraction::parse("18446744073709551616/36893488147419103232")->denominator(), 2U);
  const auto too_precise = Fraction::parse("1/18446744073709551616");
  ASSERT_FALSE(too_precise.has_value());
  EXPECT_EQ(too_precise.error().to_string(),
            "invalid config: invalid fraction '1/18446744073709551616': too precise: its exact "
            "denominator exceeds 2^64 - 1");
}

TEST(TextFractions, ThirtyDecimalPlacesAndNoMore) {
  // 2^-30 = 5^30 / 10^30 has exactly 30 decimal places; 2^-31 has 31.
  const auto thirty = Fraction::parse("0.000000000931322574615478515625");
  ASSERT_TRUE(thirty.has_value()) << thirty.error().to_string();
  EXPECT_EQ(thirty->numerator(), 1U);
  EXPECT_EQ(thirty->denominator(), std::uint64_t{1} << 30U);
  EXPECT_EQ(Fraction::parse("0.0000000009313225746154785156250000")->denominator(),
            std::uint64_t{1} << 30U);  // trailing zeros are not places
  const auto thirty_one = Fraction::parse("0.0000000004656612873077392578125");
  ASSERT_FALSE(thirty_one.has_value());
  EXPECT_EQ(thirty_one.error().to_string(),
            "invalid config: invalid fraction '0.0000000004656612873077392578125': too precise: "
            "at most 30 decimal places");
}

TEST(TextFractions, MalformedNumbersAreRefusedNamingTheText) {
  for (const std::string bad :
       {"1.",   ".5",   "1..5", "0.5.5", "1.2.3", "+0.5", "-0.5", "+1/2", "1/+2", "0. 5", "0 .5",
        " 0.5", "0.5 ", "1 /2", "1/ 2",  "1/2/3", "/2",   "1/",   "50 %", "0x1",  "1e-1"}) {
    const auto parsed = Fraction::parse(bad);
    ASSERT_FALSE(parsed.has_value()) << "'" << bad << "' gave " << parsed->to_string();
    EXPECT_EQ(parsed.error().to_string(),
              "invalid config: invalid fraction '" + bad +
                  "': expected a decimal in (0, 1] such as 0.9 or 1, a percentage such as 90%, "
                  "or a ratio such as 9/10");
  }
  // Leading zeros are allowed.
  EXPECT_EQ(Fraction::parse("00.5")->denominator(), 2U);
  EXPECT_EQ(Fraction::parse("01/02")->denominator(), 2U);
  EXPECT_EQ(Fraction::parse("0050%")->denominator(), 2U);
}

}  // namespace
}  // namespace memtrack
